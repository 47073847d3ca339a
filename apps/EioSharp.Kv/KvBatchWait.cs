namespace EioSharp.Kv;

/// <summary>
/// A connection domain's sleep while many clients have requests in flight (session 33, h188; made the default in session
/// 35, h198; issues 12 and 14; docs/rationale.md §185 and §196): the domain's next sleep waits for several requests
/// (<see cref="Domain.HintNextWait"/>) or a short limit, rather than for the first. Why: on io_uring with DEFER_TASKRUN a
/// client's <c>send</c> that completes a sleeping domain's armed receive wakes its thread inside the client's own system
/// call (and, when the domain's CPU is halted, with an inter-processor interrupt: quietly, 0.27 per EVALSHA against Kv vs
/// 0.014 against redis-server); redis-server, busy longer per request, seldom sleeps, so its clients seldom pay that. A
/// hinted sleep is woken only by the N-th receive (the kernel's lazy wake of poll completions) or by its own timer.
/// </summary>
/// <remarks>
/// <para>Per domain thread (each connection domain runs on one thread). Connections in flight are counted per epoch of
/// <see cref="EpochBatches"/> batches: the distinct connections that ran a batch in the last epoch. The hint is given
/// after a batch's replies are queued, only when that count is at least <see cref="MinConnections"/> (a lone client,
/// the ping-pong's two and small pools sleep as before) and the batch was one command (a pipelining client's send brings
/// many: its batches sleep as before), not under <c>appendfsync always</c> (the store owner hints
/// its own wait there, and a later hint would replace it) and only on the store owner's own domain (the default on two
/// cores): a connection domain whose batches wait for another domain's answer would hold that answer's wake-up back
/// until N completions or the limit.</para>
/// <para><c>EIOSHARP_KV_BATCH_WAIT=N</c> sets N (the most requests a sleep waits for; 0 or 1: off);
/// <c>EIOSHARP_KV_BATCH_WAIT_US</c> the limit (µs). The other backends ignore the hint.</para>
/// </remarks>
internal sealed class KvBatchWait
{
    /// <summary>Batches per epoch of the in-flight count.</summary>
    public const int EpochBatches = 64;

    /// <summary>The fewest connections in flight for which the sleep is hinted.</summary>
    public const int MinConnections = 8;

    /// <summary>The fewest batches expected within <see cref="Limit"/> (at the last epoch's rate) for the hint.</summary>
    public const int MinExpected = 2;

    /// <summary>Whether the last complete epoch's batches came at least <see cref="MinExpected"/> per <see cref="Limit"/>.</summary>
    public bool Fast => _fast;

    /// <summary>The default of <see cref="MaxRequests"/>.</summary>
    public const int DefaultMaxRequests = 8;

    /// <summary>The default of <see cref="Limit"/>.</summary>
    public static readonly TimeSpan DefaultLimit = TimeSpan.FromMicroseconds(100);

    [ThreadStatic]
    private static KvBatchWait? t_current;

    private long _epoch = 1;
    private int _epochBatches;
    private int _epochConnections;
    private int _inFlight;
    private bool _hintPending; // a hint was given since the last batch that gave none
    private long _epochStart; // Stopwatch reading at the current epoch's start (0: none yet)
    private bool _fast; // the last complete epoch's batches came at least MinExpected per Limit

    /// <summary>The most requests a hinted sleep waits for (0 or 1: off). <c>EIOSHARP_KV_BATCH_WAIT=N</c>.</summary>
    public static int MaxRequests { get; set; } = DefaultMaxRequests;

    /// <summary>The longest a hinted sleep lasts. <c>EIOSHARP_KV_BATCH_WAIT_US=N</c>.</summary>
    public static TimeSpan Limit { get; set; } = DefaultLimit;

    /// <summary>The distinct connections that ran a batch in the last complete epoch.</summary>
    public int InFlight => _inFlight;

    /// <summary>Hints given by <see cref="OnBatch(ref long, int, KvServerContext)"/> on this thread (tests).</summary>
    public long Hints { get; private set; }

    /// <summary>The calling thread's counter (null before its first batch; tests).</summary>
    public static KvBatchWait? Current => t_current;

    /// <summary>Sets <see cref="MaxRequests"/> and <see cref="Limit"/> from the environment variables' values (null or
    /// not a number: the default stays).</summary>
    /// <param name="maxRequests"><c>EIOSHARP_KV_BATCH_WAIT</c>: a count, 0 (or 1) turns the hint off.</param>
    /// <param name="limitMicroseconds"><c>EIOSHARP_KV_BATCH_WAIT_US</c>: above 0.</param>
    public static void Configure(string? maxRequests, string? limitMicroseconds)
    {
        if (int.TryParse(maxRequests, out int n) && n >= 0)
        {
            MaxRequests = n;
        }

        if (int.TryParse(limitMicroseconds, out int us) && us > 0)
        {
            Limit = TimeSpan.FromMicroseconds(us);
        }
    }

    /// <summary>Counts one batch of a connection.</summary>
    /// <param name="sessionEpoch">The connection's mark: the epoch it was last counted in (starts at 0).</param>
    /// <returns>The connections in flight: the distinct connections that ran a batch in the last complete epoch.</returns>
    public int Count(ref long sessionEpoch)
    {
        if (sessionEpoch != _epoch)
        {
            sessionEpoch = _epoch;
            _epochConnections++;
        }

        if (++_epochBatches >= EpochBatches)
        {
            // The batches' rate (one clock read per epoch): a sleep waits for company only where company comes within
            // the limit; 16 clients at 300 requests/s each waited out the limit for nothing (session 35).
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            _fast = _epochStart != 0 && (double)EpochBatches * Limit.Ticks * System.Diagnostics.Stopwatch.Frequency
                >= MinExpected * (double)(now - _epochStart) * TimeSpan.TicksPerSecond;
            _epochStart = now;
            _inFlight = _epochConnections;
            _epoch++;
            _epochBatches = 0;
            _epochConnections = 0;
        }

        return _inFlight;
    }

    /// <summary>The completions a connection domain's next sleep waits for, or 0: no hint.</summary>
    /// <param name="inFlight">The connections in flight (<see cref="Count"/>).</param>
    /// <param name="commands">The commands of the batch that just ended: a pipelined batch (more than one) is not
    /// hinted (its client's send already brought several requests; the P16 rows read no gain, session 35).</param>
    /// <param name="maxRequests">The most requests the sleep may wait for (<see cref="MaxRequests"/>).</param>
    /// <param name="always">The fsync policy is <c>always</c>.</param>
    /// <param name="storeHere">The store owner runs on this domain.</param>
    public static int Decide(int inFlight, int commands, int maxRequests, bool always, bool storeHere)
    {
        if (inFlight < MinConnections || commands > 1 || maxRequests <= 1 || always || !storeHere)
        {
            return 0;
        }

        int n = Math.Min(maxRequests, inFlight / 4);
        return n > 1 ? n : 0;
    }

    /// <summary>Called by a session after its batch's replies were queued, on the connection's domain thread: counts the
    /// batch and, when <see cref="Decide"/> says so, hints the domain's next sleep.</summary>
    /// <param name="sessionEpoch">The session's mark: the epoch it was last counted in.</param>
    /// <param name="commands">The commands the batch read.</param>
    /// <param name="ctx">The server's shared context (its configuration: the fsync policy; the store owner).</param>
    public static void OnBatch(ref long sessionEpoch, int commands, KvServerContext ctx)
    {
        int max = MaxRequests;
        if (max <= 1)
        {
            return;
        }

        var w = t_current ??= new KvBatchWait();
        int inFlight = w.Count(ref sessionEpoch);
        if (inFlight < MinConnections || !w._fast)
        {
            return; // a small pool, or company too rare to wait for: counted, nothing else read
        }

        int n = Decide(inFlight, commands, max, ctx.Config.AppendFsync == "always", ctx.Store is { IsOnCurrentDomain: true });
        if (n > 1 && Domain.Current is { } domain)
        {
            w.Hints++;
            w._hintPending = true;
            domain.HintNextWait(n, Limit);
        }
        else if (w._hintPending && Domain.Current is { } other)
        {
            w._hintPending = false;
            other.HintNextWait(0, TimeSpan.Zero); // a pipelined batch after a hinted one: the sleep waits for the first again
        }
    }
}
