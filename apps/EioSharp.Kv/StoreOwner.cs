using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.Supervision;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Kv;

/// <summary>A batch of data commands from one connection, with the reply bytes and the promise that releases them.</summary>
/// <remarks>One per connection, reused: a connection has at most one request in flight.</remarks>
internal sealed class StoreRequest
{
    public readonly List<KvCommand> Commands = new(16);
    public readonly ReplyBuffer Reply; // bounded by the owner (client-output-buffer-limit): see ReplyBuffer

    /// <summary>A request of its own (a store-side or one-off request): its reply buffer is allocated.</summary>
    public StoreRequest() => Reply = new ReplyBuffer(4096);

    /// <summary>A connection's request: its reply buffer's array comes from <paramref name="pool"/> (and goes back to it
    /// when the connection ends, <see cref="KvConnectionSession.ReleaseBuffers"/>).</summary>
    public StoreRequest(ArrayPool<byte> pool) => Reply = new ReplyBuffer(KvConnectionSession.OutputBuffer, pool);
    public int Protocol = 2;
    public KvSession Session = new(); // the connection's: SELECT in a batch changes it for the commands after it

    /// <summary>The wall clock (Unix ms) the connection read for this batch, when nothing was awaited since (an inline
    /// round runs its commands at that time instead of reading the clock again: one clock read per request less on the
    /// unpipelined path); -1: the round reads the clock. Taken (reset to -1) by <see cref="StoreOwner.RunInline"/>;
    /// a queued round ignores it (it runs later).</summary>
    public long BatchNowUnixMs = -1;

    /// <summary>The store's writer epoch in which this connection last had a request in a round that appended under
    /// <c>appendfsync always</c> (<see cref="StoreOwner.AlwaysSync"/>); -1: never.</summary>
    public long WriterEpoch = -1;

    /// <summary>Resolved true when every command has run and its replies are durable; false when the request is parked
    /// on a blocking command (BLPOP...): then <see cref="EarlyReply"/> holds the replies before it and
    /// <see cref="BlockEvents"/> receives one completion event when the rest has run.</summary>
    public Resolver<bool>? Done;

    /// <summary>The connection's reusable completion channel, used instead of a promise per batch (<see cref="Done"/> null)
    /// once armed by <see cref="ArmOutcome"/>: the store adds one <see cref="StoreOutcome"/> per armed batch (as
    /// <see cref="Done"/> would be resolved), the connection takes it. Created at the connection's first queued batch
    /// and kept; safe across domains (the store may run on another domain).</summary>
    internal AsyncQueue<StoreOutcome>? Outcomes;
    private bool _outcomeArmed; // a batch waits on Outcomes: its outcome not added yet

    /// <summary>The connection arms <see cref="Outcomes"/> for the batch it is about to queue (instead of a promise:
    /// no allocation per batch). Call before the request is added to the store's queue (the queue orders this write
    /// before the store's read).</summary>
    internal AsyncQueue<StoreOutcome> ArmOutcome()
    {
        Outcomes ??= new AsyncQueue<StoreOutcome>(1);
        Done = null;
        _outcomeArmed = true;
        return Outcomes;
    }

    /// <summary>Resolves the batch's waiter with <paramref name="finished"/> (<see cref="Done"/>, or the armed
    /// <see cref="Outcomes"/>); does nothing when it was resolved already or nobody waits (inline), as
    /// <see cref="Resolver{T}.TryResolve"/>.</summary>
    internal void Resolve(bool finished)
    {
        if (Done is { } done)
        {
            done.TryResolve(finished);
        }
        else if (_outcomeArmed)
        {
            _outcomeArmed = false;
            Outcomes!.TryAdd(new StoreOutcome(finished, null));
        }
    }

    /// <summary>As <see cref="Resolve"/>, with an error every waiter gets (as <see cref="Resolver{T}.TryResolveError"/>).</summary>
    internal void ResolveError(Exception error)
    {
        if (Done is { } done)
        {
            done.TryResolveError(error);
        }
        else if (_outcomeArmed)
        {
            _outcomeArmed = false;
            Outcomes!.TryAdd(new StoreOutcome(false, error));
        }
    }

    /// <summary>The connection's ordered output once it has subscribed (its blocked replies go through it); null before.</summary>
    public KvPushOutput? Push;

    /// <summary>Where in <see cref="Reply"/> the reply of the blocking command ends, once it was served after the request
    /// had been parked (the replies after it are of commands pipelined after it); -1 otherwise.</summary>
    public int BlockedReplyEnd = -1;

    /// <summary>A connection that went away while blocked: the owner cancels the session's blocked command (nothing else runs).</summary>
    public bool CancelBlock;

    /// <summary>Set by <see cref="StoreOwner.RunInline"/> when this batch's round completed another connection's parked
    /// request (its LPUSH served a blocked BLPOP): that connection's fiber is queued to send its reply, and this one lets it
    /// go first (<see cref="KvConnectionSession"/>). The connection clears it.</summary>
    public bool ServedParked;

    /// <summary>Work for the owner instead of <see cref="Commands"/> (DEBUG subcommands that act on the keyspace): run in
    /// the round with the store, the reply writer and the round's AOF sink (null without an AOF).</summary>
    public Action<KvStore, RespWriter, IAofSink?>? Direct;

    // Owned by the store owner while the request is in its hands.
    internal RespWriter? Writer;
    internal int Next; // the first command not executed yet
    internal bool Parked; // Done was resolved false
    internal byte[]? EarlyReply;
    private bool _completionPending; // parked, and its completion not signalled yet

    /// <summary>The parked request's completion arrives here (<see cref="KvConnection.WatchEvent.Completion"/>), in the
    /// same queue as the connection's blocked-read watcher's reads: the connection waits on one queue, with no fiber and
    /// promise per block. Created by the owner when the request is first parked (before <see cref="Done"/> says so), and
    /// kept for the connection's later blocks. Safe across domains.</summary>
    internal AsyncQueue<KvConnection.WatchEvent>? BlockEvents;

    /// <summary>The owner parks the request: its completion will be signalled once.</summary>
    internal void ArmCompletion()
    {
        BlockEvents ??= new AsyncQueue<KvConnection.WatchEvent>(AsyncQueue<KvConnection.WatchEvent>.Unbounded);
        _completionPending = true;
    }

    /// <summary>Signals the parked request's completion (its blocked command was served, cancelled, or the run failed
    /// with <paramref name="error"/>); does nothing when it was signalled already (as a promise's TryResolve).</summary>
    internal void SignalCompletion(Exception? error = null)
    {
        if (!_completionPending)
        {
            return;
        }

        _completionPending = false;
        BlockEvents!.TryAdd(new KvConnection.WatchEvent(true, 0, error is null ? null : ExceptionDispatchInfo.Capture(error)));
    }
}

/// <summary>What the store answers a batch queued with an armed <see cref="StoreRequest.Outcomes"/>: as the promise's
/// value (<paramref name="Finished"/>: every command ran; false: parked on a blocking command) or its error.</summary>
internal readonly record struct StoreOutcome(bool Finished, Exception? Error);

/// <summary>The store owner could not give a request a normal reply (it crashed, or is gone): every command of the
/// request gets <see cref="ReplyError"/> as its reply; the connection stays open.</summary>
internal sealed class StoreRestartedException(string replyError) : Exception(replyError)
{
    /// <summary>Reply: the store crashed before executing the round, and the new owner reloaded the keyspace from the AOF.</summary>
    public const string NotExecuted = "ERR store restarted before executing this command; it was not executed";

    /// <summary>Reply: the store crashed while committing the round (or with no AOF to reload from): the command may or may not have taken effect.</summary>
    public const string Unknown = "ERR store restarted while executing this command; its outcome is unknown";

    /// <summary>Reply: the store's supervisor gave up, or the server is stopping.</summary>
    public const string Unavailable = "ERR store unavailable: the server is shutting down";

    /// <summary>The error text (without the leading '-').</summary>
    public string ReplyError { get; } = replyError;
}

/// <summary>Where an armed round crash happens (<c>DEBUG CRASH-STORE BEFORE-APPEND|AFTER-APPEND</c>).</summary>
internal enum InjectedRoundCrash
{
    /// <summary>After the round's commands were applied to memory, before anything was appended to the AOF.</summary>
    BeforeAppend = 1,

    /// <summary>After the round was appended (and fsynced under <c>always</c>), before any reply was released.</summary>
    AfterAppend = 2,
}

/// <summary>Where the fsync of an <c>appendfsync always</c> round runs (session 24, h149; docs/rationale.md §148).</summary>
internal enum AlwaysSyncMode
{
    /// <summary>FileWriter.DataSyncAsync: IORING_OP_FSYNC (an io-wq worker) on io_uring, the blocking offload elsewhere; the
    /// store loop awaits it while the domain's connections read and queue the next round (before session 24).</summary>
    Ring,

    /// <summary>fdatasync on the store's domain thread, blocking it (Redis's order).</summary>
    Domain,

    /// <summary>As <see cref="Domain"/>, and the domain's next sleep lasts until the round's writers are back
    /// (<see cref="EioSharp.Domain.HintNextWait"/>); only where the domain defers its output (io_uring), else <see cref="Ring"/>.</summary>
    DomainWait,
}

/// <summary>The failure <c>DEBUG CRASH-STORE</c> injects into the store owner (fault injection for tests).</summary>
internal sealed class StoreCrashInjectedException(string message) : Exception(message);

/// <summary>
/// The single owner of the keyspace (the Eio KV-store design): runs on its own domain, takes requests from a bounded
/// queue, and per round drains every queued request, applies them, appends them to the AOF, fsyncs once (group commit),
/// and only then resolves their promises.
/// </summary>
/// <remarks>
/// <b>Supervision</b>: the owner is the permanent child <c>store</c> of the OneForOne supervisor <c>kv-store</c>
/// (<see cref="RunSupervisedAsync"/>). The queue belongs to the server, not to a run, so requests queued during a
/// crash are served by the next run. Every run after the first starts from the durable truth: a fresh
/// <see cref="KvStore"/> loaded by replaying the AOF (reopened). A crash can only interrupt a round inside
/// <see cref="CommitRound"/> (which has no awaits) if the round itself throws, including a failed fsync under
/// <c>appendfsync always</c> (<see cref="SyncRoundAsync"/>, the only await of a round, protected from cancellation); its requests then get
/// <see cref="StoreRestartedException.NotExecuted"/> (nothing of the round reached the AOF, and memory is discarded) or
/// <see cref="StoreRestartedException.Unknown"/> (the append had begun). An injected crash (<c>CrashChildAsync</c>)
/// lands between rounds: no request is in flight then.
/// </remarks>
internal sealed class StoreOwner(KvStore initialStore, AppendOnlyFile? initialAof, AsyncQueue<StoreRequest> queue, KvServerStats stats,
    KvLiveConfig liveConfig, Clock clock, MonoClock monoClock, Action<string> log)
{
    public const string SupervisorName = "kv-store";
    public const string ChildId = "store";
    public const int MaxRestarts = 5;
    public static readonly TimeSpan RestartPeriod = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_shutdownTimeout = TimeSpan.FromSeconds(30); // the final fsync (and a rewrite in progress)

    private const int MaxRequestsPerRound = 1024; // bounds one group commit; the rest waits for the next round
    private const int IdleCompactionTicks = 10; // cron ticks (1 s at the default hz 10) without a write before the heap is compacted
    private const long IdleCompactionMinAllocatedBytes = 64L << 20; // allocated since the last compaction, at least

    private long _cronDirty = -1; // store.Dirty at the last cron tick
    private int _quietTicks; // cron ticks since the last write
    private long _allocatedAtCompaction; // GC.GetTotalAllocatedBytes() at the last idle compaction
    private long _datasetAtCompaction; // the dataset's size (bytes, our accounting) at the last idle compaction
    private const long IdleCompactionMinDatasetChange = 1L << 20; // or the dataset grew or shrank by this much (and by an eighth) since

    // A round's AOF bytes. Kept at its size while rounds fill it (pipelined 1 KB SETs from 50 clients: about 1 MB a
    // round), so that it is not regrown and dropped every round (large-object heap churn, and the dropped arrays counted
    // toward MemoryReturn's full collections); the cron gives a large array back once the rounds no longer use it.
    private readonly ReplyBuffer _aofBuffer = new(64 * 1024) { KeepCapacity = AofBufferKeep };
    private const int AofBufferKeep = 16 << 20; // a round of 1024 requests of 16 pipelined 1 KB SETs
    private const int AofEarlyWriteBytes = 128 * 1024; // a round's AOF bytes are written once this many are pending (everysec/no)
    private int _aofBufferPeak; // the most a round wrote into _aofBuffer since the last cron tick
    private readonly ReplyBuffer _aofPending = new(4096); // appended but not written: the disk refused it (retried)
    private string? _aofWriteError; // why the last write failed (strerror text); null when it succeeded
    private readonly List<StoreRequest> _round = new(MaxRequestsPerRound);
    private readonly List<StoreRequest> _finished = []; // requests of the round (or unblocked in it) whose replies go out after the commit
    private readonly Dictionary<KvSession, StoreRequest> _parked = new(ReferenceEqualityComparer.Instance);
    private readonly Queue<StoreRequest> _pending = new(); // RunRequest's work list, reused across requests
    private readonly List<KvSession> _unblockedScratch = []; // KvStore.TakeUnblocked's output, reused
    private KvStore? _firstStore = initialStore;
    private readonly KvPubSub? _pubSub = initialStore.PubSub; // txpubsub: keyspace notifications survive a restart
    private readonly KvScriptMonitor _scriptMonitor = initialStore.ScriptMonitor; // scripting: every run's store publishes to the same one
    private AppendOnlyFile? _firstAof = initialAof;
    private AppendOnlyFile? _aof; // the run's AOF; CONFIG SET appendonly opens (cron) and closes (next round) it
    private Switch? _runSwitch; // the run's switch: owns the AOF file and fibers
    private bool _aofOpening; // CONFIG SET appendonly yes: the cron is opening the file
    private bool _aofWaitRewrite; // turned on at run time: the first rewrite (the whole keyspace) has not finished yet
    private volatile bool _aofHasDataset = initialAof is not null; // the file at the AOF path has the whole keyspace
    private long _rewritesOfClosedFiles; // INFO aof_rewrites across files closed by CONFIG SET appendonly no
    private long _aofOpenFailedAtMs; // the last failed attempt to turn the AOF on (retried every second)
    private RoundPhase _phase;
    private volatile Supervisor? _supervisor;
    private volatile int _armedCrash; // 0, or an InjectedRoundCrash: the next round throws at that point
    private volatile bool _stopping;

    // The configuration in force (CONFIG SET publishes new snapshots).
    private KvServerConfig config => liveConfig.Current;

    private enum RoundPhase
    {
        Idle,
        Applying,
        Committing,

        /// <summary>A round of the store loop was applied and its AOF bytes appended to the buffer; the write and the
        /// replies wait for the end of the domain's cycle (<see cref="GatherHeldRoundsAsync"/>).</summary>
        Held,
    }

    private volatile bool _rewriteRequested;

    /// <summary>Told about every command a connection ran on the store (SLOWLOG, INFO commandstats); set before running.</summary>
    public Action<KvSession, KvCommand, TimeSpan, string?>? CommandObserver { get; init; }

    /// <summary>INFO commandstats' and SLOWLOG's recorder of every command a connection ran on the store, called directly
    /// (<see cref="KvStore.CommandRecorder"/>, §221); when set, <see cref="CommandObserver"/> is not called.</summary>
    public KvCommandRecorder? CommandRecorder { get; init; }

    /// <summary>The RDB file (SAVE, BGSAVE, save points, the save at shutdown); null: none.</summary>
    public RdbPersistence? Rdb { get; init; }

    /// <summary>Whether the server keeps an AOF (appendonly yes).</summary>
    public bool HasAppendOnlyFile => config.AppendOnly;

    /// <summary>Whether appendonly was turned on at run time (CONFIG SET appendonly yes) and the first rewrite, the one that
    /// puts the whole keyspace in the file, has not finished: Redis's AOF_WAIT_REWRITE, in which SHUTDOWN without FORCE is
    /// refused (the file on disk does not have the dataset yet). From the CONFIG SET reply until the rewrite lands. Read from
    /// any domain.</summary>
    public bool WritingInitialAof => config.AppendOnly && !_aofHasDataset;

    /// <summary>BGREWRITEAOF: the next cron tick starts a rewrite (after the running one, if any).</summary>
    public void RequestRewrite()
    {
        _rewriteRequested = true;
        stats.AofRewriteScheduled = stats.AofRewriteInProgress;
    }

    /// <summary>The running supervisor (null before it started and after it finished).</summary>
    public Supervisor? Supervisor => _supervisor;

    /// <summary>Runs the supervisor <c>kv-store</c> with the owner as its child, on the calling fiber, until the queue is
    /// closed and drained (normal return) or the restart intensity is exceeded (<see cref="RestartIntensityExceededException"/>).</summary>
    /// <param name="onReady">Called once the first run of the owner is serving the queue.</param>
    public async Task RunSupervisedAsync(Action onReady)
    {
        var spec = new SupervisorSpec(
            SupervisorName,
            RestartStrategy.OneForOne,
            new ChildSpec(ChildId, RunChildAsync) { Restart = RestartType.Permanent, ShutdownTimeout = s_shutdownTimeout })
        {
            MaxRestarts = MaxRestarts,
            Period = RestartPeriod,
            OnReport = r =>
            {
                // A normal run logs nothing: not the first start, nor the stop at shutdown.
                if ((r.Kind == SupervisorReportKind.Started && _supervisor is null) || (r.Kind == SupervisorReportKind.Stopped && _stopping))
                {
                    return;
                }

                log($"supervisor {r}");
            },
        };

        try
        {
            await Supervisor.RunAsync(spec, monoClock, s =>
            {
                _supervisor = s;
                onReady();
            });
        }
        finally
        {
            _supervisor = null;
            FailQueued(new StoreRestartedException(StoreRestartedException.Unavailable));
            if (_firstAof is not null)
            {
                DisposeAof(_firstAof); // the first run never started (a failure before it)
                _firstAof = null;
            }
        }
    }

    /// <summary>Fails the current run of the owner with <paramref name="error"/> (<c>DEBUG CRASH-STORE</c>).</summary>
    /// <returns>False if the owner is not running (being restarted).</returns>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    public Task<bool> CrashAsync(Exception error) =>
        (_supervisor ?? throw new SupervisorNotRunningException(SupervisorName)).CrashChildAsync(ChildId, error);

    /// <summary>Makes the next round throw at <paramref name="point"/> (<c>DEBUG CRASH-STORE BEFORE-APPEND|AFTER-APPEND</c>).</summary>
    public void ArmRoundCrash(InjectedRoundCrash point) => _armedCrash = (int)point;

    private void CrashIfArmed(InjectedRoundCrash point)
    {
        if (_armedCrash == (int)point)
        {
            _armedCrash = 0;
            throw new StoreCrashInjectedException($"crash injected by DEBUG CRASH-STORE {(point == InjectedRoundCrash.BeforeAppend ? "BEFORE-APPEND" : "AFTER-APPEND")}");
        }
    }

    /// <summary>The filesystem the AOF is opened through (<c>env.Fs</c>); required with appendonly yes.</summary>
    public EioPath? Fs { get; init; }

    /// <summary>One run of the owner, in a switch of its own on the store's domain: it owns the AOF's files and fibers
    /// (everysec flusher, rewrite) of the run (<see cref="RunChildCoreAsync"/>).</summary>
    private Task RunChildAsync(ChildContext ctx) => Switch.RunAsync(sw => RunChildCoreAsync(ctx, sw), "kv-store-run");

    /// <summary>One run of the owner: take (run 1) or reload (later runs) the keyspace, then serve the queue.</summary>
    private async Task RunChildCoreAsync(ChildContext ctx, Switch sw)
    {
        KvStore store;
        AppendOnlyFile? aof;
        if (_firstStore is not null)
        {
            // Run 1: the server loaded the AOF before listening (so that a corrupt file refuses to start, as before).
            (store, aof) = (_firstStore, _firstAof);
            _firstStore = null;
            _firstAof = null;
        }
        else if (config.AppendOnly)
        {
            // A restart: the AOF is the durable truth. Memory may have diverged from it (a round applied but not
            // appended), so start from a fresh keyspace replayed from the file.
            store = new KvStore(config.Limits, databases: config.Databases, encodings: config.Encodings)
            {
                PubSub = _pubSub, // keyspace notifications
                ScriptMonitor = _scriptMonitor,
                ScriptLog = log,
            };
            stats.Loading = true; // connections answer -LOADING meanwhile (KvConnectionState), as at start
            try
            {
                // On a system thread of the library's pool, as at start: the domain (and the connections on it) keeps
                // answering while the file is replayed. EIOSHARP_KV_TEST_LOAD_DELAY_MS delays it (the -LOADING test).
                int delayMs = int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_TEST_LOAD_DELAY_MS"), out int d) ? d : 0;
                aof = await AppendOnlyFile.OpenAndLoadAsync(AofPaths.From(Fs ?? throw new InvalidOperationException("StoreOwner.Fs is required with appendonly yes"), config),
                    sw, AppendOnlyFile.ParsePolicy(config.AppendFsync), () => liveConfig.Current, store, clock.Now.ToUnixTimeMilliseconds(), config.Limits, log,
                    onSystemThread: true, loadDelay: TimeSpan.FromMilliseconds(delayMs));
            }
            finally
            {
                stats.Loading = false;
            }

            log($"Store owner restarted (run {ctx.Run}): keyspace reloaded from the append-only file, {store.Count} keys.");
        }
        else
        {
            throw new InvalidOperationException("unreachable: the keyspace is kept across runs without an AOF");
        }

        if (!config.AppendOnly || aof is null)
        {
            // appendonly no: memory is all there is, so every run keeps the same keyspace. (A round interrupted
            // mid-way leaves it partly applied; its requests are told the outcome is unknown.) The same while appendonly
            // yes was set at run time and its first rewrite has not landed: the file at the AOF path is older than memory
            // (TurnAofOnAsync starts over in this run); the cron clears it when the first rewrite has finished.
            _firstStore = store;
            if (ctx.Run > 1)
            {
                log(config.AppendOnly
                    ? $"Store owner restarted (run {ctx.Run}): the first AOF rewrite after CONFIG SET appendonly yes had not finished, keeping the in-memory keyspace ({store.Count} keys)."
                    : $"Store owner restarted (run {ctx.Run}): appendonly no, keeping the in-memory keyspace ({store.Count} keys).");
            }
        }

        stats.UpdateFrom(store);
        store.CommandObserver = CommandObserver;
        store.CommandRecorder = CommandRecorder;
        store.RdbSaver = Rdb;
        _aof = aof;
        _runSwitch = sw;
        Rdb?.Attach(sw);
        try
        {
            aof?.Start(sw, monoClock); // the everysec flusher; rewrites run on sw too
            ctx.Ready();
            await ServeAsync(store);
        }
        finally
        {
            if (!_stopping && config.AppendOnly && _firstStore is null)
            {
                // The run failed: the supervisor's next run replays the AOF; from now until it has, commands get -LOADING
                // (the ones already queued are served by the next run).
                stats.Loading = true;
            }

            FailRound(_aof is null);
            if (_aof is not null)
            {
                DisposeAof(_aof);
                _aof = null;
            }

            _runSwitch = null;
            Rdb?.Detach();
            _aofOpening = false;
            _aofWaitRewrite = false;
        }
    }

    /// <summary>The AOF in force for the next piece of work: CONFIG SET appendonly no closes it here, at once (Redis's
    /// stopAppendOnly: flushed, fsynced, closed; the file stays), so that no write after the reply is appended.</summary>
    private AppendOnlyFile? CurrentAof(KvStore store)
    {
        if (_aof is { } aof && !config.AppendOnly)
        {
            FlushDeferredAof(); // the rounds answered before the CONFIG SET's own round: into the file being closed
            _aofHasDataset = false;
            _aof = null;
            _aofWaitRewrite = false;
            _rewritesOfClosedFiles += aof.Rewrites;
            DisposeAof(aof);
            _aofPending.ResetWrittenCount(); // writes the disk refused are dropped with the file
            _aofWriteError = null;
            stats.AofLastWriteOk = true;
            stats.AofLastWriteError = null;
            stats.AofRewriteInProgress = false;
            stats.AofCurrentSize = 0;
            stats.AofBaseSize = 0;
            _firstStore = store; // a restart of the owner now keeps the in-memory keyspace
            log("Append only file closed (CONFIG SET appendonly no).");
        }

        return _aof;
    }

    /// <summary>CONFIG SET appendonly yes, from the cron: opens (truncating) a temporary live file next to the AOF through
    /// <see cref="Fs"/>, then starts a rewrite of the whole keyspace; rounds append to the temporary file meanwhile (and to
    /// the rewrite's buffer), as Redis's startAppendOnly with its temporary INCR file. The file at the AOF path is replaced
    /// only when the rewrite is complete (<see cref="AppendOnlyFile.TryFinishRewrite"/>). Between rounds only.</summary>
    private async Task TurnAofOnAsync(KvStore store)
    {
        if (!config.AppendOnly || _aof is not null || _aofOpening || _offRewriteRunning || _runSwitch is not { } sw || Fs is not { } fs)
        {
            return; // (a BGREWRITEAOF made while appendonly was no writes the same files: after it)
        }

        long nowMs = clock.Now.ToUnixTimeMilliseconds();
        if (nowMs - _aofOpenFailedAtMs < 1000)
        {
            return;
        }

        _aofOpening = true;
        AppendOnlyFile? aof = null;
        try
        {
            KvServerConfig c = config;
            await (fs / c.Directory).MakeDirectoriesAsync(KvServer.DataDirectoryPermissions, existsOk: true);
            aof = await AppendOnlyFile.CreateForFirstRewriteAsync(AofPaths.From(fs, c), sw, AppendOnlyFile.ParsePolicy(c.AppendFsync), () => liveConfig.Current, log);
            while (_phase != RoundPhase.Idle)
            {
                await monoClock.SleepAsync(TimeSpan.FromMilliseconds(1)); // a busy script's round: after it
            }

            if (!config.AppendOnly || _runSwitch != sw)
            {
                aof.Dispose(); // turned off again (or the run ended) meanwhile
                return;
            }

            aof.Start(sw, monoClock);
            long now = clock.Now.ToUnixTimeMilliseconds();
            aof.StartRewrite();
            aof.TryBeginRewrite(() => store.CreateSnapshotLease(now), stats.UsedMemory); // at once: the temporary incr file is already open
            store.ResetAofDatabase(); // the file starts empty: the first append starts with SELECT
            _aof = aof;
            _aofWaitRewrite = true; // _firstStore stays: until the rewrite lands, a restart of the owner keeps memory
            stats.AofRewriteInProgress = true;
            log($"Append only file enabled (CONFIG SET appendonly yes): rewriting the keyspace into {aof.Path} " +
                $"(appending to {aof.Path}/{aof.CurrentFileName} meanwhile).");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _aofOpenFailedAtMs = clock.Now.ToUnixTimeMilliseconds();
            log($"WARNING: could not turn the append only file on: {ex.Message}; retrying.");
            aof?.Dispose();
        }
        finally
        {
            _aofOpening = false;
        }
    }

    private async Task ServeAsync(KvStore store)
    {
        var sink = new AofBufferSink(_aofBuffer);
        await Switch.RunAsync(sw =>
        {
            Fiber.ForkDaemon(sw, () => CronAsync(store, sink), "kv-cron");
            Fiber.ForkDaemon(sw, () => BlockTimeoutsAsync(store, sink), "kv-block-timeouts");
            // The store loop is a fiber forked on the switch, not its body: a switch body runs in the switch's inner frame
            // (an AsyncLocal in the execution context), which every resume of the loop (one per queued round) switched
            // in and out; a forked fiber runs in the default context (rationale §90). It fails and is cancelled as the
            // body was (the switch records its failure).
            Fiber.Fork(sw, () => ServeLoopAsync(store, sink), "kv-store-loop");
            return Task.CompletedTask;
        }, "kv-store");
    }

    /// <summary>The store loop's fiber (<see cref="ServeAsync"/>): serves the queue, then saves at exit and stops.</summary>
    private async Task ServeLoopAsync(KvStore store, AofBufferSink sink)
    {
        _runStore = store;
        _runSink = sink;
        _storeDomain = Domain.Current;
        _deferWrites = DeferAofWrites && _storeDomain is { DefersOutput: true };
        _syncOnDomain = AlwaysSync == AlwaysSyncMode.Domain || (AlwaysSync == AlwaysSyncMode.DomainWait && _storeDomain is { DefersOutput: true });
        try
        {
            await ServeQueueAsync(store, sink);
        }
        finally
        {
            FlushDeferredAof(); // the run's last answered rounds, before the file is closed
            _deferWrites = false;
            _awaitingRequest = false;
            _storeDomain = null;
            _runStore = null;
            _runSink = null;
        }

        Rdb?.SaveAtExit(store); // the queue was closed and drained: the server is stopping (SHUTDOWN, SIGTERM)

        // Stop the supervisor (rather than return, which a permanent child would be restarted for), and wait for
        // it to cancel this run; the finally then does the final fsync.
        _stopping = true;
        _supervisor?.RequestStop();
        var (never, _) = Promise.Create<bool>();
        await never.AwaitAsync();
    }

    /// <summary>The store loop: takes the queued requests round by round until the queue is closed and drained.</summary>
    private async Task ServeQueueAsync(KvStore store, AofBufferSink sink)
    {
        while (true)
        {
            StoreRequest first;
            _awaitingRequest = true; // idle: a connection of this domain may run its batch inline (CanRunInline)
            try
            {
                first = await queue.TakeAsync();
            }
            catch (StreamClosedException)
            {
                if (HintedRounds > 0)
                {
                    log($"h149: {HintedRounds} hinted rounds, {HintMisses} misses, wait limit {_waitLimit.TotalMicroseconds:F0} us, expected writers {_expectedWriters}" +
                        (OverlapRounds > 0 ? $"; h189: {OverlapRounds} overlapped rounds, {OverlapYields} yields before a round" : "") +
                        (AlwaysOverlapGuarded && AlwaysOverlap
                            ? $"; h195 guard: {GuardOverlapRounds} of {HintedRounds} rounds overlapped, {_overlapGuard.Probes} probes, {_overlapGuard.Switches} kept, {_overlapGuard.Gaps} gaps, " +
                              $"last rates overlap {_overlapGuard.OverlapRate:F0}/s one cohort {_overlapGuard.OneCohortRate:F0}/s, now {(_overlapGuard.Overlap ? "overlap" : "one cohort")}"
                            : ""));
                }

                break; // Shutdown: every request queued before Close has been served.
            }
            finally
            {
                _awaitingRequest = false;
            }

            if (_phase != RoundPhase.Idle)
            {
                // A connection's inline round is running a busy script, whose hook (Domain.ProcessEventsWhileBlocked)
                // resumed this fiber: the round must end first. The request is held (answered if the run fails).
                _heldRequest = first;
                while (_phase != RoundPhase.Idle)
                {
                    await monoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
                }

                _heldRequest = null;
            }

            if (AlwaysOverlap && _syncOnDomain && AlwaysSync == AlwaysSyncMode.DomainWait && _storeDomain is { RunQueueLength: > 0 } overlapDomain
                && _aof is { Policy: FsyncPolicy.Always })
            {
                // Overlapped rounds (h189): the first request woke this loop while fibers resumed by the same wake-up are
                // still to run (a connection whose read needs another hop queues its request after this loop took its
                // round, and then waits a whole fsync for a round of its own): let them queue first (bounded). The
                // request is held meanwhile (answered if the run fails).
                _heldRequest = first;
                for (int i = 0; i < MaxHeldYields && overlapDomain.RunQueueLength > 0; i++)
                {
                    await Cancel.ProtectAsync(s_yield);
                    OverlapYields++;
                }

                _heldRequest = null;
            }

            // Inline rounds answered since the domain last submitted its output: their bytes go first (a round of the
            // queue, its timer work or a change of the file must find the buffer empty).
            FlushDeferredAof();
            _round.Clear();
            _round.Add(first);
            _queuedRounds++;
            queue.TryTakeMany(_round, MaxRequestsPerRound - 1);
            NoteHintOutcome(_round.Count);
            long limit = config.EffectiveReplyLimit;
            foreach (var r in _round)
            {
                r.Reply.Limit = limit;
            }

            AppendOnlyFile? aof = CurrentAof(store);

            if (CommitRound(store, aof, sink, hold: CanHoldRound(aof)))
            {
                // appendfsync always: the round is appended; its fsync runs on the library's system-thread pool while
                // this domain's connection fibers go on reading and queueing (they form the next group commit).
                // Protected: a crash injected meanwhile (CrashChildAsync) still lands between rounds.
                await SyncAndFinishRoundAsync(store, aof!);
            }
            else if (_phase == RoundPhase.Held)
            {
                await GatherHeldRoundsAsync(store, aof!, sink);
            }

            // Timer work that found the store busy (in a round, or waiting for its fsync) runs now, between rounds:
            // under a constant durable load the store is almost never idle when the timers fire.
            if (_cronDue)
            {
                _cronDue = false;
                CronTick(store, CurrentAof(store), sink);
            }

            if (_blockTimeoutsDue)
            {
                _blockTimeoutsDue = false;
                ExpireBlockedRound(store, CurrentAof(store), sink);
            }
        }
    }

    /// <summary>The most times the store loop lets the domain's other ready fibers run while it holds a round's replies
    /// (<see cref="GatherHeldRoundsAsync"/>): bounds the delay a held reply can get under a load that never lets the
    /// domain go idle.</summary>
    private const int MaxHeldYields = 8;

    private static readonly Func<Task> s_yield = static async () => await Fiber.YieldAsync();

    /// <summary>Whether a queued round's AOF write (and its replies) may be held for the rounds that follow in the same
    /// cycle of the store's domain (<see cref="GatherHeldRoundsAsync"/>): an AOF under <c>everysec</c> or <c>no</c>, and no
    /// crash armed (the DEBUG round-crash points are per round). <c>always</c> keeps its group commit per round.</summary>
    private bool CanHoldRound(AppendOnlyFile? aof) =>
        HoldRounds && aof is not null && aof.Policy != FsyncPolicy.Always && _armedCrash == 0;

    /// <summary>Whether the store loop gathers the AOF bytes of the rounds it runs in one cycle of its domain into one
    /// write (<see cref="GatherHeldRoundsAsync"/>); false: one write per round, as before session 16 (tests compare).</summary>
    public bool HoldRounds { get; init; } = true;

    /// <summary>Rounds of the store loop whose AOF write joined an earlier round's (held), and the AOF writes of held
    /// rounds: for tests and diagnostics.</summary>
    public long HeldRoundCount => _heldRounds;

    private long _heldRounds;

    /// <summary>The round just applied is held (<see cref="RoundPhase.Held"/>): its AOF bytes are in <see cref="_aofBuffer"/>
    /// and its replies unreleased. As Redis writes <c>aof_buf</c> once per event-loop iteration in <c>beforeSleep</c>,
    /// before any reply of the iteration goes out: while the store's domain has other fibers ready (connections resumed
    /// by the same poll, which will queue requests), the loop lets them run and serves what they queued as further rounds
    /// appended to the same buffer; when nothing else is ready (the domain is about to poll or sleep), or a timer's work
    /// is due, or after <see cref="MaxHeldYields"/> yields, it writes the bytes once and releases every held reply. No
    /// reply is released before its bytes are handed to <c>write(2)</c>, as before; a request taken in a later round of
    /// the cycle is answered after the same write.</summary>
    private async Task GatherHeldRoundsAsync(KvStore store, AppendOnlyFile aof, AofBufferSink sink)
    {
        int yields = 0;
        while (true)
        {
            // Not across a change of the AOF (CONFIG SET appendonly no closes it between rounds: after the write).
            int start = _round.Count;
            if (config.AppendOnly && CanHoldRound(aof) && start < MaxRequestsPerRound && queue.TryTakeMany(_round, MaxRequestsPerRound - start) > 0)
            {
                _queuedRounds++;
                _heldRounds++;
                long limit = config.EffectiveReplyLimit;
                for (int i = start; i < _round.Count; i++)
                {
                    _round[i].Reply.Limit = limit;
                }

                if (CommitRound(store, aof, sink, start: start, hold: true))
                {
                    await SyncAndFinishRoundAsync(store, aof); // CONFIG SET appendfsync always in the cycle: all of it synced
                    return;
                }

                if (_phase != RoundPhase.Held)
                {
                    return; // written and released (the round could not be held)
                }

                continue;
            }

            if (yields >= MaxHeldYields || _cronDue || _blockTimeoutsDue || _round.Count >= MaxRequestsPerRound || !config.AppendOnly
                || !CanHoldRound(aof) || _storeDomain is not { } domain || domain.RunQueueLength == 0)
            {
                break;
            }

            yields++;
            // Protected: an injected crash (CrashChildAsync) still lands between rounds, after the write and release.
            await Cancel.ProtectAsync(s_yield);
        }

        CommitHeld(store, aof);
    }

    /// <summary>The end of a held cycle: writes the gathered AOF bytes (one write) and releases every held reply.</summary>
    private void CommitHeld(KvStore store, AppendOnlyFile aof)
    {
        if (_aofBuffer.WrittenCount > 0)
        {
            _phase = RoundPhase.Committing;
            try
            {
                CommitAppend(aof, syncAlways: false);
            }
            finally
            {
                ResetAofBuffer();
            }
        }

        FinishRound(store, aof);
    }

    /// <summary>The end of a round that waits for its fsync (<c>appendfsync always</c>), protected from cancellation.</summary>
    /// <remarks>A method of its own: the lambda's closure over the loop's <c>aof</c>, written in <see cref="ServeQueueAsync"/>,
    /// was allocated for every queued round (the compiler creates a closure at the start of the scope that declares the
    /// captured variable), not only for those that wait for an fsync: ~40 B per BLPOP/LPUSH round trip.</remarks>
    private Task SyncAndFinishRoundAsync(KvStore store, AppendOnlyFile aof) =>
        Cancel.ProtectAsync(async () =>
        {
            await SyncRoundAsync(aof);
            FinishRound(store, aof);
        });

    /// <summary>Applies the settings CONFIG SET may have changed that the owner holds: the fsync policy and the encodings.</summary>
    private void ApplyLiveConfig(KvStore store, AppendOnlyFile? aof)
    {
        KvServerConfig c = config;
        if (!ReferenceEquals(c, _appliedConfig) || !ReferenceEquals(store, _appliedStore) || !ReferenceEquals(aof, _appliedAof))
        {
            // What follows from the configuration alone, applied when it changed (CONFIG SET swaps in a new immutable
            // record), or the store or the AOF did (a restart, a rewrite, appendonly toggled): not every round (issue 14,
            // h81: the policy-name comparison, the fsync policy's parse and the tenacity's time limit were per request
            // on the unpipelined path). Nothing else sets these on a served store (only this method does).
            if (!ReferenceEquals(store.Encodings, c.Encodings))
            {
                store.Encodings = c.Encodings;
            }

            KvMemorySettings memory = store.MemorySettings;
            if (memory.MaxMemory != c.MaxMemory || !string.Equals(c.MaxMemoryPolicy, PolicyName(memory.Policy), StringComparison.OrdinalIgnoreCase)
                || memory.Samples != c.MaxMemorySamples || memory.LfuLogFactor != c.LfuLogFactor || memory.LfuDecayTime != c.LfuDecayTime)
            {
                store.MemorySettings = KvMemorySettings.From(c);
            }

            store.EvictionTimeLimit = c.EvictionTimeLimit; // maxmemory-eviction-tenacity (h50)
            store.RdbCompression = c.RdbCompression;
            if (aof is not null)
            {
                FsyncPolicy policy = AppendOnlyFile.ParsePolicy(c.AppendFsync);
                if (policy != aof.Policy)
                {
                    aof.SetPolicy(policy);
                }
            }

            _appliedConfig = c;
            _appliedStore = store;
            _appliedAof = aof;
        }

        // What also follows from the server's state: every round.
        stats.ApplyStoreReset(store); // CONFIG RESETSTAT before the round's commands count (issue 13)
        store.ExternalMemoryBytes = stats.ClientMemoryBytes; // the clients' buffers as each connection last reported them
        store.ExternalMemoryClients = stats.ConnectedClients;
        // MISCONF first (Redis's processCommand checks the disk before min-replicas-to-write), then NOREPLICAS (h50).
        store.WritesDeniedError = stats.DiskWriteError(c) ?? (c.RefusesWritesForReplicas ? KvServerConfig.NoReplicasError : null);
    }

    // The configuration, store and AOF ApplyLiveConfig last applied the configuration-only settings to.
    private KvServerConfig? _appliedConfig;
    private KvStore? _appliedStore;
    private AppendOnlyFile? _appliedAof;

    private static string PolicyName(KvEvictionPolicy policy) => policy switch
    {
        KvEvictionPolicy.NoEviction => "noeviction",
        KvEvictionPolicy.AllKeysLru => "allkeys-lru",
        KvEvictionPolicy.AllKeysLfu => "allkeys-lfu",
        KvEvictionPolicy.AllKeysRandom => "allkeys-random",
        KvEvictionPolicy.VolatileLru => "volatile-lru",
        KvEvictionPolicy.VolatileLfu => "volatile-lfu",
        KvEvictionPolicy.VolatileRandom => "volatile-random",
        _ => "volatile-ttl",
    };

    /// <summary>The cron's part of maxmemory (Redis evicts at CONFIG SET and in a timer after a time-limited round): evicts
    /// while over the limit, and makes the DELs it logs durable like a round.</summary>
    private void CronEvict(KvStore store, AppendOnlyFile? aof, AofBufferSink sink, long now)
    {
        if (!store.EvictionPending)
        {
            store.PerformEvictions(now, null); // only refreshes OutOfMemory (noeviction, or under the limit)
            return;
        }

        FlushDeferredAof();
        _aofBuffer.ResetWrittenCount();
        _phase = RoundPhase.Applying;
        store.PerformEvictions(now, aof is null ? null : sink);
        if (aof is not null && _aofBuffer.WrittenCount > 0)
        {
            _phase = RoundPhase.Committing;
            try
            {
                CommitAppend(aof);
            }
            finally
            {
                ResetAofBuffer();
            }
        }

        PublishAofStatus(aof);
        _phase = RoundPhase.Idle;
    }

    /// <summary>Runs the round's requests (<see cref="_round"/> from <paramref name="start"/>) and appends their AOF
    /// bytes; releases the replies (and returns false) unless the round waits for an fsync (<c>appendfsync always</c>):
    /// then the caller awaits <see cref="SyncRoundAsync"/> and calls <see cref="FinishRound"/>. With
    /// <paramref name="hold"/>, a round that appended bytes is left <see cref="RoundPhase.Held"/> instead (bytes in the
    /// buffer, replies unreleased) for <see cref="GatherHeldRoundsAsync"/>; a round after a held one
    /// (<paramref name="start"/> &gt; 0) appends to the held bytes, and its commit writes and releases them all.</summary>
    private bool CommitRound(KvStore store, AppendOnlyFile? aof, AofBufferSink sink, long nowUnixMs = -1, int start = 0, bool hold = false,
        bool defer = false)
    {
        ApplyLiveConfig(store, aof);
        long now = nowUnixMs >= 0 ? nowUnixMs : clock.Now.ToUnixTimeMilliseconds();
        IAofSink? aofSink = aof is null ? null : sink;
        long commands = 0;
        if (start == 0)
        {
            if (_deferredLength == 0)
            {
                _aofBuffer.ResetWrittenCount(); // (else an inline round appends after the answered rounds' bytes)
            }

            _finished.Clear();
            _roundCommands = 0;
            _roundWritten = false;
        }

        _phase = RoundPhase.Applying;
        for (int i = start; i < _round.Count; i++)
        {
            StoreRequest request = _round[i];
            if (request.CancelBlock)
            {
                if (store.CancelBlocked(request.Session) && _parked.Remove(request.Session, out var parked))
                {
                    parked.SignalCompletion();
                }

                _finished.Add(request);
                continue;
            }

            request.Writer ??= new RespWriter(request.Reply); // the request (one per connection) keeps its writer
            request.Writer.Protocol = request.Protocol;
            request.Next = 0;
            request.BlockedReplyEnd = -1;
            if (request.Direct is { } direct)
            {
                direct(store, request.Writer, aofSink);
                _finished.Add(request);
                continue;
            }

            commands += RunRequest(store, request, now, aofSink);
            if (aof is not null && _aofBuffer.WrittenCount >= AofEarlyWriteBytes && aof.Policy != FsyncPolicy.Always && _armedCrash == 0)
            {
                // A large round (pipelined 1 KB SETs: ~1 MB) is written in pieces as it is applied, while its bytes are
                // still in the CPU's cache, instead of in one write at the end: the kernel's copy into the page cache
                // then reads from cache rather than memory. Same bytes, same order, still before any reply of the
                // round is released; under everysec/no a failed write is kept and retried exactly as at the end of the
                // round (CommitAppend never throws for these policies). Not under always: there a failed write fails
                // the round, which must happen after it is applied (its requests are told the outcome is unknown).
                _roundWritten = true;
                try
                {
                    CommitAppend(aof, syncAlways: false);
                }
                finally
                {
                    ResetAofBuffer();
                }
            }
        }

        CrashIfArmed(InjectedRoundCrash.BeforeAppend);
        _roundCommands += commands;

        if (hold && aof is not null && _aofBuffer.WrittenCount > 0 && aof.Policy != FsyncPolicy.Always && _armedCrash == 0)
        {
            _phase = RoundPhase.Held; // written (with the rounds that follow in this cycle) by GatherHeldRoundsAsync
            return false;
        }

        if (defer && aof is not null && _aofBuffer.WrittenCount > 0 && aof.Policy != FsyncPolicy.Always && _armedCrash == 0 && _deferWrites)
        {
            // An inline round on a domain that sends only when it enters its ring: the round's replies are released now
            // (queued as sends, which the kernel cannot see yet) and its bytes are written by FlushDeferredAof just
            // before the domain next submits, in one write with every round answered meanwhile (Redis's beforeSleep).
            _deferredLength = _aofBuffer.WrittenCount;
            if (!_deferArmed)
            {
                _deferArmed = true;
                _storeDomain!.RunBeforeOutput(_flushDeferred ??= OnBeforeOutput);
            }

            _deferredRounds++;
            FinishRound(store, aof);
            return false;
        }

        if (aof is not null && _aofBuffer.WrittenCount > 0)
        {
            _phase = RoundPhase.Committing;
            bool syncLater = aof.Policy == FsyncPolicy.Always && !_syncOnDomain;
            try
            {
                CommitAppend(aof, syncAlways: !syncLater);
            }
            finally
            {
                ResetAofBuffer();
            }

            if (syncLater)
            {
                return true;
            }

            CrashIfArmed(InjectedRoundCrash.AfterAppend);
            if (_syncOnDomain && AlwaysSync == AlwaysSyncMode.DomainWait && aof.Policy == FsyncPolicy.Always && _storeDomain is { } hinted)
            {
                // The domain's next sleep lasts until the writers are back (one wake-up, as Redis's epoll_wait finds
                // them all): the connections that had a request in a round of the last writer epoch, at most the
                // connected clients, or until the adaptive limit.
                NoteWriters();
                int expect = (int)Math.Min(_expectedWriters, stats.ConnectedClients);
                _hintGuarded = AlwaysOverlap && AlwaysOverlapGuarded && expect >= MinOverlapWriters;
                if (AlwaysOverlap && expect >= MinOverlapWriters && (!AlwaysOverlapGuarded || _overlapGuard.Overlap))
                {
                    // Overlap (session 33, h189): wake when the other cohort is back, not every writer, so the store
                    // applies and fsyncs one cohort while the clients answer the other (redis-server's rounds of ~30).
                    if (OverlapRounds++ == 0)
                    {
                        log($"appendfsync always: overlapped rounds (EIOSHARP_KV_ALWAYS_OVERLAP): a round's wait expects the other cohort, {OverlapExpect(expect, _round.Count)} of {expect} writers");
                    }

                    expect = OverlapExpect(expect, _round.Count);
                    _hintedOverlap = true;
                }
                else
                {
                    _hintedOverlap = false;
                }

                _hintedExpect = expect;
                _hintedAt = System.Diagnostics.Stopwatch.GetTimestamp();
                if (_roundStartedAt != 0)
                {
                    // A round that followed a hinted wait: its own time, from its start (the wait's end) to this hint
                    // (its requests applied, written and fdatasynced; the replies not yet released) (§212).
                    AlwaysRoundTicks += _hintedAt - _roundStartedAt;
                    AlwaysFsyncTicks += _roundFsyncTicks;
                    AlwaysTimedRounds++;
                    _roundStartedAt = 0;
                }

                _roundFsyncTicks = 0;
                hinted.HintNextWait(expect, _waitLimit);
            }
        }

        FinishRound(store, aof);
        return false;
    }

    /// <summary>Where a round's fsync under <c>appendfsync always</c> runs (process-wide; Program sets it from
    /// <c>EIOSHARP_KV_ALWAYS_SYNC</c> for an A/B of one build).</summary>
    public static AlwaysSyncMode AlwaysSync { get; set; } = AlwaysSyncMode.DomainWait;

    /// <summary>The base limit of <see cref="AlwaysSyncMode.DomainWait"/>'s wait for the writers (it adapts between 0.5 ms
    /// and 8 times this; <c>EIOSHARP_KV_ALWAYS_WAIT_US</c>).</summary>
    public static TimeSpan AlwaysSyncWait { get; set; } = TimeSpan.FromMilliseconds(1);

    private bool _syncOnDomain; // the run fsyncs always rounds on its domain (AlwaysSync Domain, or DomainWait on io_uring)

    /// <summary>Under <see cref="AlwaysSyncMode.DomainWait"/>, whether a round's hinted wait expects only the other cohort
    /// (<see cref="OverlapExpect"/>) instead of every writer of the epoch (session 33, h189; docs/rationale.md §183;
    /// the server sets it unless <c>EIOSHARP_KV_ALWAYS_OVERLAP=0</c>; false in an embedded store until set): the store applies and fsyncs one cohort while the clients
    /// answer the other, as redis-server's event loop does with its rounds of ~30, at up to twice the fsyncs per request.
    /// The contract is unchanged: a round's replies are released only after its fdatasync.</summary>
    public static bool AlwaysOverlap { get; set; }

    /// <summary>Fewer writers than this (the writer epoch's count, at most the connected clients) keep one cohort (the
    /// wait for every writer) under <see cref="AlwaysOverlap"/>.</summary>
    internal const int MinOverlapWriters = 8;

    /// <summary>Under <see cref="AlwaysOverlap"/>, whether a guard (<see cref="AlwaysOverlapGuard"/>, session 34, h195;
    /// docs/rationale.md §191) chooses between the overlap and one cohort by the rate each served requests at in recent
    /// rounds, so that a loaded machine, where one cohort is the faster schedule, falls back to it by itself. The server
    /// sets it unless <c>EIOSHARP_KV_ALWAYS_OVERLAP</c> is <c>0</c> (no overlap) or <c>1</c> (the overlap, unguarded);
    /// false in an embedded store until set.</summary>
    public static bool AlwaysOverlapGuarded { get; set; }

    private readonly AlwaysOverlapGuard _overlapGuard = new();
    private bool _hintGuarded; // the last hint's round was one the guard governs (enough writers to overlap)
    private TimeSpan _otherWaitLimit = AlwaysSyncWait; // the wait limit of the schedule the guard does not run now

    /// <summary>Rounds whose hinted wait expected the other cohort (<see cref="AlwaysOverlap"/>; for diagnostics), and
    /// the yields the store loop made before taking a round so that the fibers woken with it could queue first.</summary>
    public long OverlapRounds, OverlapYields;

    /// <summary>The completions the next hinted wait expects under <see cref="AlwaysOverlap"/>, after a round of
    /// <paramref name="roundSize"/> requests with <paramref name="writers"/> writers: those not in the round (the cohort
    /// answered one round earlier, whose requests may be queued in the ring already: then the wait ends at once), and at
    /// least half of the writers, so that a small round (a cohort split unevenly, or a request that missed its cohort)
    /// is followed by one that waits for half (the early returns of the large cohort join it) and the two cohorts even
    /// out instead of taking turns as 4 and 46.</summary>
    internal static int OverlapExpect(int writers, int roundSize) => Math.Max(writers - roundSize, (writers + 1) / 2);
    private long _writerEpoch; // DomainWait: the current writer epoch (8 rounds)
    private int _epochRounds, _epochWriters;
    private long _expectedWriters = 1;
    private int _hintedExpect; // the last hint's count (0: none pending)
    private bool _hintedOverlap; // the last hint expected the other cohort (AlwaysOverlap)
    private long _hintedAt; // Stopwatch ticks when it was given
    private long _roundStartedAt; // Stopwatch ticks when the current round started after a hinted wait (0: it did not)
    private long _roundFsyncTicks; // the current round's fdatasync (Stopwatch ticks)

    /// <summary>The always path's time split per round (session 39, h215, §212; INFO's <c>aof_always_round_us</c>,
    /// <c>aof_always_fsync_us</c>, <c>aof_always_wait_us</c>): <see cref="AlwaysTimedRounds"/> rounds that followed a hinted
    /// wait and hinted again, and their own time (from the wait's end to the next hint: the requests queued, applied,
    /// written and fdatasynced) in Stopwatch ticks; those rounds' fdatasyncs' time on the store's domain (within it); and the
    /// hinted waits' time (from a hint to the next round's start: the clients' part, and the replies' release; only the
    /// <see cref="AlwaysTimedWaits"/> waits of at most 100 ms, a longer one being a pause of the clients). Whether
    /// the schedule is bound by the store (waits near zero) or by the clients (waits longer) is read from these.</summary>
    public long AlwaysTimedRounds, AlwaysRoundTicks, AlwaysFsyncTicks, AlwaysTimedWaits, AlwaysWaitTicks;
    private TimeSpan _waitLimit = AlwaysSyncWait;
    /// <summary>DomainWait rounds that followed a hinted wait, and those whose wait ended at its limit short of the
    /// writers it expected (for diagnostics; the run logs them at its end).</summary>
    public long HintedRounds, HintMisses;

    /// <summary>Rounds the guard (<see cref="AlwaysOverlapGuarded"/>) started with the overlap chosen (diagnostics).</summary>
    public long GuardOverlapRounds;

    /// <summary>Counts the round's distinct connections into the writer epoch; every 8 rounds the epoch's count becomes the
    /// writers the next waits expect (a closed loop's cohorts all show within 8 rounds; a connection that stopped writing
    /// drops out at the next epoch).</summary>
    private void NoteWriters()
    {
        foreach (var r in _round)
        {
            if (r.WriterEpoch != _writerEpoch)
            {
                r.WriterEpoch = _writerEpoch;
                _epochWriters++;
            }
        }

        if (++_epochRounds >= 8)
        {
            _expectedWriters = Math.Max(1, _epochWriters);
            _writerEpoch++;
            _epochRounds = 0;
            _epochWriters = 0;
        }
    }

    /// <summary>At a round's start, whether the hinted wait got its writers; adapts the limit: a wait
    /// that got them sets it to twice its length (at least 0.5 ms); one that did not doubles it (at most the configured
    /// limit x 8).</summary>
    private void NoteHintOutcome(int roundSize)
    {
        if (AlwaysOverlapGuarded && (_hintedExpect <= 1 || !_hintGuarded))
        {
            _overlapGuard.Interrupt(); // a round the guard does not govern: its time is not measured
        }

        if (_hintedExpect <= 1)
        {
            _roundStartedAt = 0;
            return;
        }

        HintedRounds++;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        var waited = System.Diagnostics.Stopwatch.GetElapsedTime(_hintedAt, now);
        _roundStartedAt = now;
        if (now - _hintedAt <= System.Diagnostics.Stopwatch.Frequency / 10)
        {
            // A wait of the clients' turn; a longer one is a pause of theirs (between two benchmark runs, as the guard's
            // gaps), left out.
            AlwaysWaitTicks += now - _hintedAt;
            AlwaysTimedWaits++;
        }
        if (_hintGuarded)
        {
            bool overlapBefore = _overlapGuard.Overlap;
            _overlapGuard.OnRound(roundSize, now, now - _hintedAt);
            if (_overlapGuard.Overlap != overlapBefore)
            {
                // Each schedule keeps its own wait limit: one cohort's waits for every writer push it up under load (to 8
                // ms), and the overlap's probe would then wait that long for each straggler of a cohort.
                (_waitLimit, _otherWaitLimit) = (_otherWaitLimit, _waitLimit);
            }

            if (_overlapGuard.Overlap)
            {
                GuardOverlapRounds++;
            }
        }

        if (roundSize >= _hintedExpect)
        {
            var next = waited * 2;
            if (_hintedOverlap && next < _waitLimit * 0.75)
            {
                // Overlapped rounds: the other cohort is often back before the wait starts (it ends at once), which says
                // nothing about how long the clients take to answer; the limit decays by a quarter instead of falling to
                // the floor, so that the next wait for a cohort still answering does not end at it (a 7/43 split of the
                // rounds under load with the plain rule, h189).
                next = _waitLimit * 0.75;
            }

            _waitLimit = next < TimeSpan.FromMicroseconds(500) ? TimeSpan.FromMicroseconds(500) : next > AlwaysSyncWait * 8 ? AlwaysSyncWait * 8 : next;
        }
        else if (waited >= _waitLimit)
        {
            HintMisses++;
            var next = _waitLimit * 2;
            _waitLimit = next > AlwaysSyncWait * 8 ? AlwaysSyncWait * 8 : next;
        }

        _hintedExpect = 0;
    }

    /// <summary>Whether inline rounds that append to the AOF may leave their write to the moment the store's domain next
    /// hands its output to the kernel (<see cref="Domain.RunBeforeOutput"/>; only where the domain
    /// <see cref="Domain.DefersOutput"/>, io_uring): every reply then goes out after the write, as Redis's
    /// <c>beforeSleep</c>, and a write batch runs inline even while other work is ready (its bytes share the write of
    /// every round answered before that moment). Set it only when every client connection is served on the store's domain
    /// (one connection domain, the store on it): a reply sent by another domain would not wait for the write.
    /// False: such a batch is queued while other work is ready (group commit through the store loop), as before.</summary>
    public bool DeferAofWrites { get; init; }

    /// <summary>Inline rounds whose AOF write was left to the domain's next submission, and the writes that made them
    /// (<see cref="FlushDeferredAof"/>): for tests and diagnostics.</summary>
    public long DeferredRoundCount => _deferredRounds;

    /// <inheritdoc cref="DeferredRoundCount"/>
    public long DeferredWriteCount => _deferredWrites;

    private long _deferredRounds, _deferredWrites;
    private bool _deferWrites; // DeferAofWrites, and the run's domain defers its output
    private int _deferredLength; // bytes at the start of _aofBuffer of answered inline rounds, not written yet
    private bool _deferArmed; // OnBeforeOutput is registered with the domain for its next submission
    private Action? _flushDeferred; // OnBeforeOutput as a delegate, made once

    /// <summary>The domain is about to hand its queued output to the kernel (<see cref="Domain.RunBeforeOutput"/>).</summary>
    private void OnBeforeOutput()
    {
        _deferArmed = false;
        try
        {
            FlushDeferredAof();
        }
        catch (Exception ex)
        {
            // Not an I/O error (those are kept and retried): a bug, or the file closed under the write. The action must
            // not throw (it would stop the domain, and every client with it): the store's run fails instead.
            log($"WARNING: writing the answered rounds' AOF bytes failed: {ex.GetType().Name}: {ex.Message}; restarting the store owner.");
            try
            {
                _ = _supervisor?.CrashChildAsync(ChildId, ex);
            }
            catch (SupervisorNotRunningException)
            {
                // Stopping anyway.
            }
        }
    }

    /// <summary>Writes the AOF bytes of the inline rounds answered since the last write (<see cref="_deferredLength"/>):
    /// from the domain's before-output hook, and before anything else touches the buffer or the file (a queued round,
    /// the cron, block timeouts, the file closed, a failed run). Never throws for an I/O error (<c>everysec</c>/<c>no</c>:
    /// a refused write is kept and retried, writes are refused with -MISCONF meanwhile, as for any round).</summary>
    private void FlushDeferredAof()
    {
        int length = _deferredLength;
        if (length == 0)
        {
            return;
        }

        _deferredLength = 0;
        if (_aof is not { } aof)
        {
            _aofBuffer.RemovePrefix(length); // unreachable: closing the file flushes first
            return;
        }

        _deferredWrites++;
        AppendOrKeep(aof, _aofBuffer.WrittenSpan[..length]);
        if (_aofBuffer.WrittenCount == length)
        {
            ResetAofBuffer();
        }
        else
        {
            // A round is being applied (a busy script let the domain poll, or it failed): its bytes stay, alone.
            _aofBuffer.RemovePrefix(length);
        }

        PublishAofStatus(aof);
    }

    private long _roundCommands; // commands run by the round being committed (and the held rounds before it)
    private bool _roundWritten; // some of the round's (or the held rounds') AOF bytes were written before it ended

    /// <summary>Whether connections may run their batches inline (<see cref="CanRunInline"/>); false: every batch goes
    /// through the queue, as before issue 14 (tests compare the two).</summary>
    public bool InlineRounds { get; init; } = true;

    /// <summary>Rounds run inline by connections (<see cref="RunInline"/>), and rounds of the store loop (from the queue).</summary>
    public long InlineRoundCount => _inlineRounds;

    /// <inheritdoc cref="InlineRoundCount"/>
    public long QueuedRoundCount => _queuedRounds;

    private long _inlineRounds, _queuedRounds;

    /// <summary>Whether the calling thread is the store loop's domain's (the connections there reach the store without a
    /// cross-thread hop; <see cref="KvBatchWait"/> hints only their sleeps). False before the store loop starts.</summary>
    public bool IsOnCurrentDomain => _storeDomain is { } domain && ReferenceEquals(Domain.Current, domain);

    // The inline path (RunInline): what the running store loop serves with, and whether it is idle.
    private KvStore? _runStore;
    private AofBufferSink? _runSink;
    private Domain? _storeDomain;
    private bool _awaitingRequest; // the store loop waits in queue.TakeAsync: no round of it is in progress
    private StoreRequest? _heldRequest; // taken by the store loop while an inline round ran a busy script

    /// <summary>Whether a batch from the calling fiber can run inline now (<see cref="RunInline"/>): the caller is on the
    /// store's domain, the store loop is idle (waiting for a request, no round, no timer work due), the AOF policy is
    /// not <c>always</c> (its rounds wait for an fsync: they go through the queue, where group commit gathers them) and
    /// no crash is armed; and, with an AOF, the batch has no command that may write (see <see cref="MayAppend"/>) or
    /// nothing else is ready to run on this domain (<see cref="Domain.RunQueueLength"/> 0: no other connection's batch
    /// and no queued round can join this one's group commit, so the queue hop would buy a round of one request, the same
    /// AOF write, and two fiber switches more; a BLPOP/LPUSH ping-pong or one client's writes).
    /// Only meaningful until the caller's next await.</summary>
    public bool CanRunInline(StoreRequest request) =>
        InlineRounds && _awaitingRequest && _phase == RoundPhase.Idle && !_cronDue && !_blockTimeoutsDue && _armedCrash == 0 &&
        _runStore is not null && ReferenceEquals(Domain.Current, _storeDomain) &&
        (_aof is null || (config.AppendFsync != "always" && (_deferWrites || !MayAppend(request) || _storeDomain!.RunQueueLength == 0))); // the policy the round will apply, not the file's yet

    private static readonly KvCommandInfo s_exec = KvCommandTable.Find("exec"u8)!; // compared by reference (one table entry per name)

    /// <summary>Whether a batch may append to the AOF: a write command, a script, EXEC. Such a batch goes through the
    /// queue while the AOF is on and other work is ready on the domain: there the batches of a round share one
    /// <c>write(2)</c> of the file (50 clients
    /// unpipelined SET: 0.07 <c>pwrite64</c> per request queued, 1.00 inline; strace -c, docs/BENCHMARKS.md), and a reply
    /// is never sent before its bytes are written, as in Redis. Only a heuristic: an inline round that does append still
    /// writes its bytes before its replies are released.</summary>
    private static bool MayAppend(StoreRequest request)
    {
        foreach (KvCommand command in CollectionsMarshal.AsSpan(request.Commands))
        {
            if (command.Info is not { } info || info.IsWrite || (info.Flags & KvCommandFlags.Script) != 0 || ReferenceEquals(info, s_exec))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Runs <paramref name="request"/> now, on the calling fiber, as a round of its own (the same
    /// <see cref="CommitRound"/> the store loop runs: apply, append to the AOF, publish statistics, release), without
    /// the queue hop and without a promise. Call only when <see cref="CanRunInline"/> is true for it, with no await between.</summary>
    /// <returns>True: every command ran (its replies are in <see cref="StoreRequest.Reply"/>); false: the request is
    /// parked on a blocking command, as when its promise resolves false (its completion arrives in <see cref="StoreRequest.BlockEvents"/>).</returns>
    /// <exception cref="StoreRestartedException">The round failed: the store's run is crashed (the supervisor restarts
    /// it, reloading the AOF) and the commands get the error the store loop would have given them.</exception>
    /// <remarks>Why the queue hop is skipped here (docs/kv.md, "Why each hop exists"; rationale "inline"): with the store on the connection's
    /// domain the hop buys no parallelism; it costs a scheduler round trip (the store fiber woken, the connection fiber
    /// woken by the promise) per batch. Ordering holds: a connection has one batch in flight, and a request from another
    /// connection handed to the store loop but not yet run has no order with this one (its reply has not been sent).</remarks>
    public bool RunInline(StoreRequest request)
    {
        KvStore store = _runStore!;
        AppendOnlyFile? aof = CurrentAof(store);
        request.Done = null;
        request.Reply.Limit = config.EffectiveReplyLimit;
        long batchNow = request.BatchNowUnixMs; // the connection's clock read for the batch, when still current
        request.BatchNowUnixMs = -1;
        _inlineRounds++;
        _round.Clear();
        _round.Add(request);
        _servedParked = false;
        try
        {
            if (CommitRound(store, aof, _runSink!, batchNow, defer: true))
            {
                // Not reached: CanRunInline excludes appendfsync always (the only policy that syncs after the round).
                throw new InvalidOperationException("an inline round cannot wait for an fsync");
            }
        }
        catch (Exception ex)
        {
            // As when a round of the store loop throws: its run fails, the supervisor restarts it (reloading the AOF).
            string reply = _phase == RoundPhase.Applying && _aof is not null && !_roundWritten ? StoreRestartedException.NotExecuted : StoreRestartedException.Unknown;
            FlushDeferredAof(); // the rounds answered before this one (their bytes only: this round's are dropped with the run)
            log($"WARNING: an inline round failed: {ex.GetType().Name}: {ex.Message}; restarting the store owner.");
            bool crashed = false;
            try
            {
                if (_supervisor is { } supervisor)
                {
                    _ = supervisor.CrashChildAsync(ChildId, ex);
                    crashed = true;
                }
            }
            catch (SupervisorNotRunningException)
            {
                // Stopping anyway.
            }

            if (!crashed)
            {
                // No run to restart: leave the owner usable (the round's memory is what it is, as with appendonly no).
                _round.Clear();
                _aofBuffer.ResetWrittenCount();
                _phase = RoundPhase.Idle;
            }

            throw new StoreRestartedException(reply);
        }

        request.ServedParked = _servedParked;
        return !request.Parked;
    }

    private bool _servedParked; // the round being released signalled a parked request's completion (RunInline reads it)

    /// <summary>After a round's AOF bytes were written: empties the buffer, keeping its array (up to
    /// <see cref="AofBufferKeep"/>) for the next round; <see cref="ShrinkAofBufferIfUnused"/> releases it later.</summary>
    private void ResetAofBuffer()
    {
        _aofBufferPeak = Math.Max(_aofBufferPeak, _aofBuffer.WrittenCount);
        _aofBuffer.ResetWrittenCount();
        _aofBuffer.Shrink();
        _deferredLength = 0; // written with the rest
    }

    /// <summary>Cron: gives back a large AOF buffer that no round since the last tick filled to a quarter.</summary>
    private void ShrinkAofBufferIfUnused()
    {
        if (_aofBuffer.WrittenCount == 0 && _aofBufferPeak < _aofBuffer.Capacity / 4)
        {
            _aofBuffer.Shrink(ReplyBuffer.ShrinkAbove);
        }

        _aofBufferPeak = 0;
    }

    /// <summary>fsyncs the round's appended bytes (<c>appendfsync always</c>) without blocking the store's domain: an
    /// IORING_OP_FSYNC on the io_uring backend, the library's system-thread pool (<see cref="Systhread"/>) on the others. The round stays in the
    /// <see cref="RoundPhase.Committing"/> phase (the cron and block-timeout fibers leave the store alone), and nothing
    /// of it is acknowledged before the fsync returns. A failed fsync fails the run as a failed append does.</summary>
    private async Task SyncRoundAsync(AppendOnlyFile aof)
    {
        try
        {
            await aof.SyncAsync(); // on the ring (io_uring) or the library's blocking offload (a system thread)
        }
        catch (IOException ex)
        {
            NoteWriteError(ex);
            throw new IOException($"Writing the append-only file failed: {ex.Message}", ex);
        }

        CrashIfArmed(InjectedRoundCrash.AfterAppend);
    }

    /// <summary>The round is committed: publishes the AOF status and statistics, then releases the replies.</summary>
    private void FinishRound(KvStore store, AppendOnlyFile? aof)
    {
        PublishAofStatus(aof);

        stats.OnCommandsProcessed(_roundCommands);
        stats.UpdateFrom(store); // before the replies go out, so INFO right after a write sees it
        store.PubSub?.Tracking.FlushBroadcasts(); // CLIENT TRACKING BCAST: one message per prefix for the round (issue 13)
        ReleaseReplies(store);
        _round.Clear();
        _phase = RoundPhase.Idle;
    }

    /// <summary>Appends the round's AOF bytes (<see cref="_aofBuffer"/>): the disk-error policy of Redis.</summary>
    /// <remarks>
    /// <c>appendfsync always</c>: a write or fsync that fails means the round cannot be made durable, so nothing of it is
    /// acknowledged: the run fails (its requests are told the outcome is unknown) and the next run reloads the file;
    /// until the file accepts writes again, writes are refused with -MISCONF (the error outlives the run).
    /// <c>everysec</c>/<c>no</c> (as Redis): the round's bytes are kept in memory and retried (every cron tick and before
    /// the next append, in order), the round is acknowledged, and further writes are refused with
    /// <c>-MISCONF Errors writing to the AOF file: ...</c> until a retry succeeds; reads go on being served.
    /// </remarks>
    private void CommitAppend(AppendOnlyFile aof, bool syncAlways = true)
    {
        if (aof.Policy == FsyncPolicy.Always)
        {
            try
            {
                aof.Append(_aofBuffer.WrittenSpan);
                if (syncAlways)
                {
                    long syncStart = System.Diagnostics.Stopwatch.GetTimestamp();
                    aof.SyncForPolicy(); // skipped while a rewrite writes under no-appendfsync-on-rewrite
                    _roundFsyncTicks = System.Diagnostics.Stopwatch.GetTimestamp() - syncStart; // counted if the round is timed
                }
            }
            catch (IOException ex)
            {
                NoteWriteError(ex);
                throw new IOException($"Writing the append-only file failed: {ex.Message}", ex);
            }

            return;
        }

        AppendOrKeep(aof, _aofBuffer.WrittenSpan);
    }

    /// <summary>The <c>everysec</c>/<c>no</c> write of <paramref name="bytes"/>: a failed write keeps them (and what was
    /// refused before) in <see cref="_aofPending"/>, retried in order; never throws for an I/O error.</summary>
    private void AppendOrKeep(AppendOnlyFile aof, ReadOnlySpan<byte> bytes)
    {
        if (_aofPending.WrittenCount > 0)
        {
            _aofPending.Write(bytes); // after what is already waiting
            TryWritePending(aof);
            return;
        }

        try
        {
            aof.Append(bytes);
            NoteWriteOk();
        }
        catch (IOException ex)
        {
            _aofPending.Write(bytes);
            NoteWriteError(ex);
        }
    }

    /// <summary>Retries the bytes the disk refused (or, with nothing pending after a failure, probes the file).</summary>
    private void TryWritePending(AppendOnlyFile aof)
    {
        if (_aofWriteError is null && _aofPending.WrittenCount == 0)
        {
            return;
        }

        try
        {
            if (_aofPending.WrittenCount > 0)
            {
                aof.Append(_aofPending.WrittenSpan);
                _aofPending.ResetWrittenCount();
                _aofPending.Shrink();
            }
            else
            {
                aof.Probe();
            }

            if (aof.Policy == FsyncPolicy.Always)
            {
                aof.SyncForPolicy();
            }

            NoteWriteOk();
        }
        catch (IOException ex)
        {
            NoteWriteError(ex);
        }
    }

    private void NoteWriteError(IOException ex)
    {
        string text = AppendOnlyFile.DescribeError(ex);
        if (_aofWriteError is null)
        {
            log($"WARNING: Error writing to the AOF file: {text} ({ex.Message}); refusing writes (-MISCONF) until it can be written again.");
        }

        _aofWriteError = text;
        PublishAofStatus(null);
    }

    private void NoteWriteOk()
    {
        if (_aofWriteError is not null)
        {
            log("AOF write error looks solved, Redis can write again.");
            _aofWriteError = null;
        }
    }

    /// <summary>Publishes the AOF status (INFO aof_last_write_status; connections refuse writes with -MISCONF while it is err).</summary>
    private void PublishAofStatus(AppendOnlyFile? aof)
    {
        string? error = _aofWriteError ?? aof?.FsyncError;
        if (aof is null && error is null)
        {
            return;
        }

        stats.AofLastWriteError = error;
        stats.AofLastWriteOk = error is null;
    }

    /// <summary>Runs a request's commands from <see cref="StoreRequest.Next"/>, then continues every request the round
    /// unblocked; a request that blocks stays parked. Returns the number of commands run.</summary>
    private long RunRequest(KvStore store, StoreRequest request, long now, IAofSink? aofSink)
    {
        long commands = 0;
        var pending = _pending; // reused: RunRequest does not nest (a round runs its requests one after the other)
        pending.Clear();
        pending.Enqueue(request);
        while (pending.Count > 0)
        {
            var r = pending.Dequeue();
            var all = CollectionsMarshal.AsSpan(r.Commands);
            int prefetchAt = r.Next;
            long clock = 0; // INFO commandstats' clock, carried from one command's end to the next one's start (§217)
            while (r.Next < all.Length)
            {
                if (r.Next == prefetchAt)
                {
                    // A pipelined batch: its next keys' rows are fetched from memory together (KvStore.PrefetchKeys, h146).
                    store.PrefetchKeys(r.Session, all[r.Next..]);
                    prefetchAt += KvStore.PrefetchGroup;
                    clock = 0; // (not counted in the next command's time)
                }

                store.ExecuteBatch(r.Session, all.Slice(r.Next, 1), now, r.Writer!, aofSink, ref clock);
                r.Next++;
                commands++;
                if (r.Session.Blocked is not null)
                {
                    break;
                }

                if (r.Reply.Overflowed)
                {
                    // Its replies went over the client's output limit: the connection will be closed, so (as Redis stops
                    // processing a client flagged CLOSE_ASAP) the commands it pipelined after this one are not run.
                    r.Next = all.Length;
                    break;
                }
            }

            if (r.Session.Blocked is not null)
            {
                _parked[r.Session] = r;
            }
            else
            {
                _finished.Add(r);
            }

            if (store.TakeUnblocked(_unblockedScratch))
            {
                foreach (KvSession s in _unblockedScratch)
                {
                    if (_parked.Remove(s, out var unblocked))
                    {
                        unblocked.BlockedReplyEnd = unblocked.Parked ? unblocked.Reply.WrittenCount : -1;
                        pending.Enqueue(unblocked); // its blocking command got its reply: run what it pipelined after it
                    }
                }

                _unblockedScratch.Clear();
            }
        }

        return commands;
    }

    /// <summary>After the commit: releases the replies of finished requests and tells newly parked ones they wait.</summary>
    private void ReleaseReplies(KvStore store)
    {
        foreach (var r in _finished)
        {
            if (r.Parked)
            {
                r.Parked = false;
                r.SignalCompletion();
                _servedParked = true;
            }
            else
            {
                r.Resolve(true); // neither promise nor armed outcome: run inline (TryRunInline), nobody waits
            }
        }

        _finished.Clear();
        foreach (var r in _parked.Values)
        {
            if (r.Parked)
            {
                continue;
            }

            // Newly blocked: hand the replies before the blocking command to the connection now (a client reading its
            // pipelined replies sees them, as with Redis), and keep the request until it is unblocked.
            r.Parked = true;
            r.EarlyReply = r.Reply.WrittenSpan.ToArray();
            r.Reply.ResetWrittenCount();
            r.ArmCompletion();
            r.Resolve(false);
        }

        stats.BlockedClients = store.BlockedClients;
    }

    /// <summary>Times out blocked commands whose deadline passed and runs what their connections pipelined after them,
    /// as a round of its own (called by the block-timeout fiber between rounds).</summary>
    private void ExpireBlockedRound(KvStore store, AppendOnlyFile? aof, AofBufferSink sink)
    {
        FlushDeferredAof();
        long now = clock.Now.ToUnixTimeMilliseconds();
        List<KvSession>? gone = null;
        foreach (var s in _parked.Keys)
        {
            if (s.Closed)
            {
                (gone ??= []).Add(s);
            }
        }

        foreach (var s in gone ?? [])
        {
            store.CancelBlocked(s); // the client left: its blocked command ends without being served
            if (_parked.Remove(s, out var r))
            {
                r.SignalCompletion();
            }
        }

        if (store.ExpireBlocked(now) == 0)
        {
            stats.BlockedClients = store.BlockedClients;
            return;
        }

        IAofSink? aofSink = aof is null ? null : sink;
        _aofBuffer.ResetWrittenCount();
        _finished.Clear();
        _phase = RoundPhase.Applying;
        foreach (KvSession s in store.TakeUnblocked())
        {
            if (_parked.Remove(s, out var r))
            {
                r.BlockedReplyEnd = r.Parked ? r.Reply.WrittenCount : -1;
                RunRequest(store, r, now, aofSink);
            }
        }

        if (aof is not null && _aofBuffer.WrittenCount > 0)
        {
            _phase = RoundPhase.Committing;
            try
            {
                CommitAppend(aof);
            }
            finally
            {
                ResetAofBuffer();
            }
        }

        PublishAofStatus(aof);

        store.PubSub?.Tracking.FlushBroadcasts(); // CLIENT TRACKING BCAST (issue 13)
        ReleaseReplies(store);
        _phase = RoundPhase.Idle;
    }

    /// <summary>Wakes up for the earliest blocked-command deadline (at most every 100 ms, at least 1 ms apart).</summary>
    private async Task BlockTimeoutsAsync(KvStore store, AofBufferSink sink)
    {
        while (true)
        {
            long next = store.NextBlockDeadline;
            long now = clock.Now.ToUnixTimeMilliseconds();
            long wait = next < 0 ? 100 : Math.Clamp(next - now, 1, 100);
            await monoClock.SleepAsync(TimeSpan.FromMilliseconds(wait));
            if (_phase != RoundPhase.Idle)
            {
                // In a round: run by Domain.ProcessEventsWhileBlocked from a busy script's hook, or the round waits for
                // its fsync. The store loop runs it after the round.
                _blockTimeoutsDue = true;
                continue;
            }

            ExpireBlockedRound(store, CurrentAof(store), sink);
        }
    }

    /// <summary>After a burst of writes, once no write came for a second, compacts the managed heap and returns the
    /// free memory to the OS (docs/kv.md, "Memory"): the garbage of loading (parse buffers, grown arrays) would otherwise
    /// stay in the RSS until the next full collection. Runs only when at least 64 MB were allocated since the last
    /// compaction, or the dataset changed by at least 1 MB and an eighth of its size (a load whose batches run inline
    /// allocates little beyond the data: 10,000 lists of 100 members kept 15 MB of growth slack in the RSS, 1.75x
    /// redis-server's, until this rule), so a lone write after a quiet period costs nothing; the blocking collection pauses the process
    /// (tens of ms per 100 MB of live data).</summary>
    private void MaybeCompactHeap(KvStore store)
    {
        long dirty = store.Dirty;
        if (dirty != _cronDirty)
        {
            _cronDirty = dirty;
            _quietTicks = 0;
            return;
        }
        if (++_quietTicks != IdleCompactionTicks) return;
        long allocated = GC.GetTotalAllocatedBytes();
        long dataset = stats.DatasetBytes;
        // Allocation alone is not enough of a sign: a load whose batches run inline (no queue hop, no promise per batch)
        // allocates little beyond the data, and the data's growth slack is what TrimExcess gives back.
        // The change must be a good part of the data (as MemoryReturn's rule): a full collection costs about the heap.
        long datasetChange = Math.Abs(dataset - _datasetAtCompaction);
        if (allocated - _allocatedAtCompaction < IdleCompactionMinAllocatedBytes &&
            (datasetChange < IdleCompactionMinDatasetChange || datasetChange < Math.Max(dataset, _datasetAtCompaction) / 8)) return;
        store.TrimExcess(); // listpacks and slot arrays lose their growth slack; the collection below returns it
        CompactHeap(dataset);
    }

    // The idle compaction's collection (MaybeCompactHeap, ReleaseStaleSnapshotSpares).
    private void CompactHeap(long dataset)
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        KvNativeHeap.Trim(); // the runtime's freed C heap (JIT arenas of the first requests): 6-7 MB on the JIT build
        _allocatedAtCompaction = GC.GetTotalAllocatedBytes();
        _datasetAtCompaction = dataset;
    }

    /// <summary>Once no leased snapshot (AOF rewrite, BGSAVE) ran for the store's retention (60 s by default), drops
    /// what the store kept for the next one (<see cref="KvStore.ReleaseStaleSnapshotSpares"/>: the idle trim leaves it
    /// while rewrites recur, issue 14, h197) and, when that was at least a megabyte and no write came for a second,
    /// compacts the heap as the idle compaction does, so that an idle server's RSS holds nothing extra; under writes the
    /// next collections take it.</summary>
    private void ReleaseStaleSnapshotSpares(KvStore store)
    {
        long dropped = store.ReleaseStaleSnapshotSpares();
        if (dropped >= IdleCompactionMinDatasetChange && _quietTicks >= IdleCompactionTicks) CompactHeap(stats.DatasetBytes);
    }

    /// <summary>Background work every 100 ms: active expiry, INFO numbers, AOF rewrite start and finish.</summary>
    private async Task CronAsync(KvStore store, AofBufferSink sink)
    {
        while (true)
        {
            await monoClock.SleepAsync(TimeSpan.FromMilliseconds(1000 / Math.Clamp(config.Hz, 1, 500))); // Redis's hz
            if (Fs is not null)
            {
                await _oomScoreAdjuster.ApplyAsync(Fs, config); // oom-score-adj (h50): when it changed
            }
            if (config.AppendOnly && _aof is null)
            {
                await TurnAofOnAsync(store); // CONFIG SET appendonly yes (waits for the end of a round itself)
            }

            if (_phase != RoundPhase.Idle)
            {
                _cronDue = true; // the store is in use (see BlockTimeoutsAsync): the store loop runs the tick after the round
                continue;
            }

            CronTick(store, CurrentAof(store), sink);
        }
    }

    private bool _cronDue, _blockTimeoutsDue; // a timer fired while a round was in progress

    private bool _offRewriteRunning; // BGREWRITEAOF with appendonly no: its base file is being written (owner thread only)

    /// <summary>BGREWRITEAOF while appendonly is no, as redis-server 7.0: the keyspace is snapshotted now (between rounds)
    /// and written as a new base file with a manifest naming only it (<see cref="AppendOnlyFile.RewriteWhileOffAsync"/>),
    /// by a fiber of the run, while the owner goes on serving. INFO shows it as an AOF rewrite.</summary>
    private void StartRewriteWhileOff(KvStore store, Switch sw, EioPath fs, long now)
    {
        _rewriteRequested = false;
        _offRewriteRunning = true;
        stats.AofRewriteScheduled = false;
        stats.AofRewriteInProgress = true;
        KvServerConfig c = config;
        KvSnapshotLease lease = store.CreateSnapshotLease(now);
        ArraySegment<KvSnapshotEntry> snapshot = lease.Entries;
        long used = stats.UsedMemory;
        log("Background append only file rewriting started (appendonly no: a base file only).");
        Fiber.Fork(sw, async () =>
        {
            using KvSnapshotLease held = lease; // ended once the writer has returned
            bool ok = false;
            try
            {
                await AppendOnlyFile.RewriteWhileOffAsync(AofPaths.From(fs, c), sw, c, snapshot, now, used, log);
                ok = true;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                log($"WARNING: background AOF rewrite failed: {AppendOnlyFile.DescribeError(ex)}");
            }
            finally
            {
                _offRewriteRunning = false;
                stats.AofRewriteInProgress = _aof?.RewriteInProgress ?? false;
                stats.AofLastBgRewriteOk = ok;
                if (ok)
                {
                    _rewritesOfClosedFiles++;
                    stats.AofRewrites = _rewritesOfClosedFiles + (_aof?.Rewrites ?? 0);
                }
            }
        }, "kv-aof-rewrite-off");
    }

    private OomScoreAdjuster? _oomScoreAdjusterField;

    private OomScoreAdjuster _oomScoreAdjuster => _oomScoreAdjusterField ??= new OomScoreAdjuster(log);

    /// <summary>One cron tick (see <see cref="CronAsync"/>); only between rounds.</summary>
    private void CronTick(KvStore store, AppendOnlyFile? aof, AofBufferSink sink)
    {
        FlushDeferredAof(); // (before a rewrite switches files, the buffer is reused, or the file is closed)
        ApplyLiveConfig(store, aof);
        long now = clock.Now.ToUnixTimeMilliseconds();
        if (store.ActiveExpireEnabled)
        {
            store.ActiveExpireCycle(now); // DEBUG SET-ACTIVE-EXPIRE 0 stops it
        }

        CronEvict(store, aof, sink, now);
        ShrinkAofBufferIfUnused();
        stats.UpdateFrom(store);
        if (MemoryReturn.MaybeCollect(stats.DatasetBytes))
        {
            _allocatedAtCompaction = GC.GetTotalAllocatedBytes(); // just compacted: the idle compaction need not repeat it
        }
        else
        {
            MaybeCompactHeap(store);
        }
        ReleaseStaleSnapshotSpares(store);
        if (aof is not null)
        {
            TryWritePending(aof);
            PublishAofStatus(aof);
            long rewritesBefore = aof.Rewrites;
            if (aof.TryFinishRewrite())
            {
                stats.AofLastBgRewriteOk = aof.Rewrites > rewritesBefore;
                if (_aofWaitRewrite)
                {
                    // Turned on at run time: until the whole keyspace is in the file, a failed rewrite is tried again.
                    _aofWaitRewrite = !stats.AofLastBgRewriteOk;
                    _rewriteRequested |= _aofWaitRewrite;
                    if (!_aofWaitRewrite)
                    {
                        _aofHasDataset = true;
                        _firstStore = null; // the file now has the whole keyspace: a restart of the owner replays it
                    }
                }

                if (stats.AofLastBgRewriteOk)
                {
                    stats.LastSaveUnixSeconds = now / 1000;
                }
            }

            if ((_rewriteRequested && !aof.RewriteInProgress) || aof.ShouldRewrite(config.AutoAofRewritePercentage, config.AutoAofRewriteMinSize))
            {
                _rewriteRequested = false;
                stats.AofRewriteScheduled = false;
                aof.StartRewrite(); // a fiber opens the next incr file; the switch happens below, at a later tick
            }

            // Not while the disk refuses bytes: they belong before the switch (the snapshot has them already).
            if (_aofPending.WrittenCount == 0 && _aofWriteError is null
                && aof.TryBeginRewrite(() => store.CreateSnapshotLease(now), stats.UsedMemory))
            {
                store.ResetAofDatabase(); // the new incr file starts with SELECT
            }

            if (aof.RewriteFailedToStart)
            {
                aof.RewriteFailedToStart = false;
                stats.AofLastBgRewriteOk = false;
                _rewriteRequested |= _aofWaitRewrite; // turned on at run time: try again
            }

            stats.AofRewriteInProgress = aof.RewriteInProgress;
            stats.AofRewrites = _rewritesOfClosedFiles + aof.Rewrites;
            aof.DeleteHistoryFiles(); // aof-disable-auto-gc set back to no: the history kept meanwhile goes (updateAofAutoGCEnabled)
            stats.AofCurrentSize = aof.Length;
            stats.AofBaseSize = aof.BaseSize;
            stats.AofFsyncs = aof.Fsyncs;
            stats.AofAlwaysHintedRounds = HintedRounds;
            stats.AofAlwaysHintMisses = HintMisses;
            stats.AofAlwaysOverlapRounds = OverlapRounds;
            stats.AofAlwaysGuardProbes = _overlapGuard.Probes;
            stats.AofAlwaysGuardSwitches = _overlapGuard.Switches;
            stats.AofAlwaysTimedRounds = AlwaysTimedRounds;
            double microsPerTick = 1_000_000.0 / System.Diagnostics.Stopwatch.Frequency; // (ticks * 1e6 overflows a long after ~2.5 h of ns ticks)
            stats.AofAlwaysRoundMicros = (long)(AlwaysRoundTicks * microsPerTick);
            stats.AofAlwaysFsyncMicros = (long)(AlwaysFsyncTicks * microsPerTick);
            stats.AofAlwaysWaitMicros = (long)(AlwaysWaitTicks * microsPerTick);
            stats.AofAlwaysTimedWaits = AlwaysTimedWaits;
        }

        else if (_rewriteRequested && !config.AppendOnly && !_offRewriteRunning && _runSwitch is { } sw && Fs is { } fs)
        {
            StartRewriteWhileOff(store, sw, fs, now);
        }

        Rdb?.Cron(store, now); // a scheduled BGSAVE, the save points
        store.PubSub?.Tracking.FlushBroadcasts(); // keys expired or evicted by the cron (BCAST)
    }

    /// <summary>A run ended: answer the requests of an interrupted round (the queue itself survives for the next run).</summary>
    private void FailRound(bool noAof)
    {
        FlushDeferredAof(); // answered rounds before the failed one: their replies are queued, their bytes go to the file
        foreach (var r in _parked.Values)
        {
            // Its blocking command never got data; the keyspace it waited on is gone with this run.
            var error = new StoreRestartedException(StoreRestartedException.NotExecuted);
            if (r.Parked)
            {
                r.Parked = false;
                r.SignalCompletion(error);
            }
            else if (!_round.Contains(r))
            {
                r.ResolveError(error);
            }
        }

        _parked.Clear();
        if (_heldRequest is { } held)
        {
            // Taken from the queue while an inline round ran (ServeQueueAsync): nothing of it ran.
            _heldRequest = null;
            held.ResolveError(new StoreRestartedException(StoreRestartedException.NotExecuted));
        }

        if (_round.Count > 0)
        {
            string reply = _phase == RoundPhase.Applying && !noAof && !_roundWritten ? StoreRestartedException.NotExecuted : StoreRestartedException.Unknown;
            foreach (var r in _round)
            {
                r.ResolveError(new StoreRestartedException(reply));
            }

            log($"WARNING: the store owner stopped in the middle of a round of {_round.Count} request(s); they were answered: {reply}");
        }

        foreach (var r in _finished)
        {
            if (r.Parked)
            {
                // Unblocked by the interrupted round (or a held one): its blocked command was served in memory only.
                r.Parked = false;
                r.SignalCompletion(new StoreRestartedException(StoreRestartedException.Unknown));
            }
        }

        _finished.Clear();
        _round.Clear();
        _aofBuffer.ResetWrittenCount();
        _roundWritten = false;
        _phase = RoundPhase.Idle;
    }

    private void DisposeAof(AppendOnlyFile aof)
    {
        try
        {
            aof.TryFinishRewrite();
            aof.Dispose(); // final fsync, whatever the policy
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            log($"WARNING: closing the append-only file failed: {ex.Message}");
        }
    }

    private void FailQueued(Exception error)
    {
        queue.Close();
        while (queue.TryTake(out var r))
        {
            r.ResolveError(error);
        }
    }
}
