namespace EioSharp.Kv;

/// <summary>
/// A connection domain's sleep while many clients have requests in flight (session 33, h188, issues 12 and 14; docs/rationale.md
/// §183): the domain's next sleep waits for several requests (<see cref="Domain.HintNextWait"/>) or a short limit, rather
/// than for the first. Why: on io_uring with DEFER_TASKRUN a client's <c>send</c> that completes a sleeping domain's armed
/// receive wakes its thread inside the client's own system call (and, when the domain's CPU is halted, with an
/// inter-processor interrupt); redis-server, busy longer per request, seldom sleeps, so its clients seldom pay that. A
/// hinted sleep is woken only by the N-th receive (the kernel's lazy wake of poll completions) or by its own timer.
/// </summary>
/// <remarks>
/// Per domain thread (each connection domain runs on one thread). Connections in flight are counted per epoch of
/// <see cref="EpochBatches"/> batches: the distinct connections that ran a batch in the last epoch. The hint is given after a
/// batch's replies are queued, only when that count is at least <see cref="MinConnections"/> (a lone client, the ping-pong's
/// two and small pools sleep as before) and not under <c>appendfsync always</c> (the store owner hints its own wait there).
/// </remarks>
internal sealed class KvBatchWait
{
    /// <summary>Batches per epoch of the in-flight count.</summary>
    public const int EpochBatches = 64;

    /// <summary>The fewest connections in flight for which the sleep is hinted.</summary>
    public const int MinConnections = 8;

    [ThreadStatic]
    private static KvBatchWait? t_current;

    private long _epoch = 1;
    private int _epochBatches;
    private int _epochConnections;
    private int _inFlight;

    /// <summary>The most requests a hinted sleep waits for (0: off). <c>EIOSHARP_KV_BATCH_WAIT=N</c>.</summary>
    public static int MaxRequests { get; set; }

    /// <summary>The longest a hinted sleep lasts. <c>EIOSHARP_KV_BATCH_WAIT_US=N</c>.</summary>
    public static TimeSpan Limit { get; set; } = TimeSpan.FromMicroseconds(100);

    /// <summary>Called by a session after its batch's replies were queued, on the connection's domain thread.</summary>
    /// <param name="sessionEpoch">The session's mark: the epoch it was last counted in.</param>
    /// <param name="ctx">The server's shared context (its configuration: the fsync policy).</param>
    public static void OnBatch(ref long sessionEpoch, KvServerContext ctx)
    {
        int max = MaxRequests;
        if (max <= 1)
        {
            return;
        }

        var w = t_current ??= new KvBatchWait();
        if (sessionEpoch != w._epoch)
        {
            sessionEpoch = w._epoch;
            w._epochConnections++;
        }

        if (++w._epochBatches >= EpochBatches)
        {
            w._inFlight = w._epochConnections;
            w._epoch++;
            w._epochBatches = 0;
            w._epochConnections = 0;
        }

        if (w._inFlight >= MinConnections && ctx.Config.AppendFsync != "always" && Domain.Current is { } domain)
        {
            domain.HintNextWait(Math.Min(max, w._inFlight / 4), Limit);
        }
    }
}
