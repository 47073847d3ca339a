using System.Net;
using System.Net.Sockets;
using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.Net;
using EioSharp.Sync;

namespace EioSharp.Kv;

/// <summary>Composes the server: load the AOF, start the store owner's domain, run the connection domains, shut down cleanly.</summary>
internal static class KvServer
{
    private const int RequestQueueCapacity = 4096; // requests (batches) waiting for the store; connections wait beyond it

    /// <summary>Runs the server until <paramref name="stop"/> resolves (graceful: in-flight commands finish and are fsynced).</summary>
    /// <param name="env">The capabilities.</param>
    /// <param name="options">The parsed options.</param>
    /// <param name="stop">Resolve to shut down.</param>
    /// <param name="log">Where log lines go.</param>
    /// <param name="onListening">Called with the bound address once the server accepts connections.</param>
    /// <param name="requestStop">Starts the shutdown (SHUTDOWN); null: SHUTDOWN is refused.</param>
    /// <param name="signals">Set by the server to its handler of SIGINT and SIGTERM (shutdown-on-sigint, shutdown-on-sigterm)
    /// once it can shut down with flags; until then the caller resolves <paramref name="stop"/> itself.</param>
    public static async Task RunAsync(Stdenv env, KvOptions options, Promise<bool> stop, Action<string> log, Action<EndPoint>? onListening = null,
        Action? requestStop = null, KvSignalShutdown? signals = null)
    {
        var config = options.Config with { Backend = env.Backend };
        KvSupervision.StopForUpstart(config.Supervised, log);
        if (KvSupervision.StartLine(config.Supervised) is { } supervisedLine)
        {
            log(supervisedLine);
        }

        // Redis's pidfile: written at start (a failure is only logged), removed at a clean shutdown.
        if (config.PidFile.Length > 0)
        {
            try
            {
                await (env.Fs / config.PidFile).SaveAsync($"{Environment.ProcessId}\n", FileCreate.OrTruncate((UnixFileMode)0x1B6));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log($"Failed to write PID file: {IKvFiles.ErrorText(e)}");
            }
        }

        var live = new KvLiveConfig(config, options.ConfigFile, new KvFiles(env.Fs)); // CONFIG REWRITE, ACL LOAD/SAVE through the library
        long now = env.Clock.Now.ToUnixTimeMilliseconds();
        var stats = new KvServerStats { StartTimeUnixMs = now, LastSaveUnixSeconds = now / 1000 };
        var commandStats = new KvCommandStats();
        var wallClock = env.Clock;
        commandStats.Clock = () => wallClock.Now.ToUnixTimeMilliseconds(); // read only for a slow-log entry or latency sample
        stats.ResetRequested = commandStats.Reset;
        var pubSub = new KvPubSub { NotifyFlags = KvConnectionState.ParseNotifyKeyspaceEvents(config.NotifyKeyspaceEvents) ?? 0 };
        var store = new KvStore(config.Limits, databases: config.Databases, encodings: config.Encodings) { PubSub = pubSub };
        store.ScriptMonitor.BusyReplyThresholdMs = config.BusyReplyThresholdMs; // shared with the connections (-BUSY, SCRIPT KILL)
        store.ScriptLog = log;
        AppendOnlyFile? aof = null;
        var aofPaths = AofPaths.From(env.Fs, config); // <dir>/<appenddirname>/ with the manifest, base and incr files
        // The data directory holds the AOF and the RDB file (SAVE, BGSAVE): created if missing, also with appendonly no.
        await (env.Fs / config.Directory).MakeDirectoriesAsync(DataDirectoryPermissions, existsOk: true);

        stats.Loading = true; // connections accepted meanwhile get -LOADING (KvConnectionState): the AOF or the RDB file loads
        var rdb = new RdbPersistence(env.Fs, live, stats, env.Clock, log);
        store.RdbSaver = rdb;

        var queue = new AsyncQueue<StoreRequest>(RequestQueueCapacity);
        var tcp = new KvTcpListeners(env.Net, config.TcpBacklog, log); // bind, port: replaced at run time by CONFIG SET
        var clock = env.Clock;
        var scriptMonitor = store.ScriptMonitor;
        live.Applying = (old, next) =>
        {
            // As Redis's updateMaxclients (h50): a larger maxclients needs the file-descriptor limit raised; when it cannot
            // be, CONFIG SET fails with what would fit.
            if (next.MaxClients > old.MaxClients && FileDescriptorLimit.Fit(next.MaxClients, out _) is int fitted && fitted != next.MaxClients)
            {
                throw new KvConfigException($"The operating system is not able to handle the specified number of clients, try with {fitted}");
            }
            scriptMonitor.BusyReplyThresholdMs = next.BusyReplyThresholdMs;
        };
        live.ApplyingNames = tcp.Apply; // port, bind: after the other checks, as it binds sockets (and retires the old ones)
        var context = new KvServerContext(live, stats, queue, env.Clock)
        {
            DebugCommand = options.EnableDebugCommand, Net = env.Net, PubSub = pubSub, ScriptMonitor = store.ScriptMonitor,
            CommandStats = commandStats, Log = log,
        };
        var admin = new ServerAdmin(context, stats, requestStop, log) { Rdb = rdb };
        context.Admin = admin;
        context.Clients.Log = log; // maxmemory-clients: "Evicting client: ..."

        await Switch.RunAsync(async sw =>
        {
            // tcp-backlog: the kernel's queue of connections not yet accepted (capped by net.core.somaxconn), also for the Unix socket.
            await WarnIfBacklogCappedAsync(env.Fs, config.TcpBacklog, log);
            EndPoint tcpEndPoint = await tcp.OpenAtStartAsync(env, sw, config.Bind, config.Port);
            ListeningSocket? unixListener = null;
            if (config.UnixSocket.Length > 0)
            {
                // Redis's unixsocket: the path is replaced if it exists; unixsocketperm (when not 0) is applied with chmod.
                // A socket that cannot be opened is fatal, with Redis's text (exit 1).
                try
                {
                    await (env.Fs / config.UnixSocket).UnlinkAsync(missingOk: true);
                }
                catch (IOException)
                {
                    // As Redis's unlink before bind: its error is not checked; bind says what is wrong.
                }

                try
                {
                    unixListener = env.Net.Listen(sw, new UnixDomainSocketEndPoint(config.UnixSocket), backlog: config.TcpBacklog);
                }
                catch (NetException e)
                {
                    // .NET reports bind's ENOENT (a missing directory) as EADDRNOTAVAIL: say what Redis's strerror says.
                    string? parent = Path.GetDirectoryName(Path.GetFullPath(config.UnixSocket));
                    bool missingDirectory = e.SocketError == SocketError.AddressNotAvailable && parent is not null && !await (env.Fs / parent).ExistsAsync();
                    string reason = missingDirectory ? "No such file or directory" : e.InnerException?.Message ?? e.Message;
                    throw new KvStartupException($"Failed opening Unix socket: bind: {reason}");
                }

                if (config.UnixSocketPerm != 0)
                {
                    await (env.Fs / config.UnixSocket).ChangeModeAsync((UnixFileMode)config.UnixSocketPerm);
                }
            }

            StoreOwner? owner = null;

            // Listening before the AOF is replayed, as Redis: clients connect during the replay and get -LOADING.
            async Task LoadThenServeAsync()
            {
                await KvSupervision.NotifyAsync(env, config.Supervised, "STATUS=Redis is loading...\n", log);
                // As Redis, the RDB file is loaded when there is no AOF to load (appendonly no, or no file yet).
                // With no AOF yet, the base file written at start (AppendOnlyFile.OpenAndLoadAsync) holds what was loaded.
                bool aofExists = config.AppendOnly && await AppendOnlyFile.ExistsAsync(aofPaths);
                if (!aofExists)
                {
                    await RdbPersistence.LoadAtStartAsync(env.Fs, env.Clock, config, sw, store, now, stats, log, tcpEndPoint.ToString()!);
                }

                if (config.AppendOnly)
                {
                    log($"Loading the append-only file {Path.GetFullPath(aofPaths.DirText)} (listening on {tcpEndPoint}; commands get -LOADING until it is loaded).");
                    aof = await LoadAsync(aofPaths, sw, config, () => live.Current, store, now, log);
                }

                stats.Loading = false;

                owner = new StoreOwner(store, aof, queue, stats, live, env.Clock, env.MonoClock, log)
                {
                    Rdb = rdb,
                    Fs = env.Fs, // also for CONFIG SET appendonly yes
                    // Every client is served on the store's domain (one connection domain, the store on it): an inline
                    // round's AOF write can wait for the domain's next submission, before which no reply leaves (io_uring).
                    DeferAofWrites = options.StoreOnMainDomain && options.Domains == 1,
                    // INFO commandstats and SLOWLOG: called directly, in a shard of its own (§221; was a CommandObserver
                    // delegate calling commandStats.Record through the thread's shard).
                    CommandRecorder = new KvCommandRecorder(commandStats, live),
                };
                context.Store = owner;

                // The store owner runs under its supervisor (on the store domain). If the supervisor gives up (restart
                // intensity exceeded), its fiber fails this switch, which stops the server; Program reports it and exits 3.
                var (ownerReady, ownerReadyResolver) = Promise.Create<bool>();
                Task RunStoreAsync() => owner.RunSupervisedAsync(() => ownerReadyResolver.TryResolve(true));
                if (options.StoreOnMainDomain)
                {
                    // A script past busy-reply-threshold holds this domain's thread: its hook lets the connections of this
                    // domain answer -BUSY and take SCRIPT KILL meanwhile (Redis's processEventsWhileBlocked). The store's
                    // own fibers (cron, block timeouts) skip their turn while a round is running.
                    store.ScriptMonitor.WhileBusy = static () => Domain.ProcessEventsWhileBlocked();
                    Fiber.Fork(sw, RunStoreAsync, "kv-store");
                }
                else
                {
                    Fiber.Fork(sw, () => env.DomainManager.RunAsync(RunStoreAsync, "kv-store"), "kv-store");
                }

                await ownerReady.AwaitAsync();
                log($"EioSharp.Kv ready: listening on {tcpEndPoint}, backend {env.Backend}, " +
                    $"appendfsync {config.AppendFsync}, data file {(aof is null ? "(none: appendonly no)" : Path.GetFullPath(Path.Combine(aofPaths.DirText, aof.CurrentFileName)))}, " +
                    $"{options.Domains} connection domain(s)" + (options.StoreOnMainDomain ? ", store on the main domain" : " + 1 store domain") +
                    $", store owner supervised ({StoreOwner.MaxRestarts} restarts in {StoreOwner.RestartPeriod.TotalSeconds:0}s)" +
                    (options.EnableDebugCommand == DebugCommandMode.No ? "." : $", DEBUG command enabled ({options.EnableDebugCommand.ToString().ToLowerInvariant()})."));
                if (unixListener is not null)
                {
                    log($"The server is now ready to accept connections at {config.UnixSocket}");
                }

                onListening?.Invoke(tcpEndPoint);
                if (signals is not null)
                {
                    signals.Handler = signal => admin.ShutdownOnSignal(signal, signal == KvSignal.Interrupt ? live.Current.ShutdownOnSigint : live.Current.ShutdownOnSigterm);
                }

                await KvSupervision.NotifyAsync(env, config.Supervised, "STATUS=Ready to accept connections\n", log);
                await KvSupervision.NotifyAsync(env, config.Supervised, "READY=1\n", log);
                Fiber.ForkDaemon(sw, () => CloseIdleClientsAsync(context), "kv-client-timeout");
                await stop.AwaitAsync();
            }

            // Over maxclients a client is told so, then closed (64 more accepts for that); but connections never take the
            // last file descriptors: the runtime needs two for every thread it starts, and a thread it cannot start ends
            // the process ("Out of memory."; docs/rationale.md §19). Clients over the cap wait in the kernel's backlog.
            int capacity = ListeningSocket.ConnectionCapacity();
            int maxConnections = Math.Max(1, Math.Min(config.MaxClients + 64, capacity));
            if (maxConnections < config.MaxClients + 64)
            {
                log($"WARNING: at most {maxConnections} connection(s) at once: the file-descriptor limit less those open and " +
                    $"{ListeningSocket.DescriptorReserve} kept for the runtime allows no more; raise it with ulimit -n.");
            }

            void OnError(Exception ex) =>
                log(ListeningSocket.PeerOf(ex) is { } peer ? $"WARNING: connection from {peer}: {ex.Message}" : $"WARNING: {ex.Message}");
            Task ServeTcpAsync() => ListeningSocket.RunServerAsync(
                tcp.Listeners,
                (conn, peer) => KvConnection.HandleAsync(context, conn, peer),
                OnError,
                maxConnections: maxConnections,
                domainManager: env.DomainManager,
                additionalDomains: options.Domains - 1);

            // The Unix socket's clients are served on the main domain (Redis's CLIENT LIST: addr=path:0 laddr=path:0 flags=U).
            Task ServeUnixAsync() => unixListener!.RunServerAsync(
                (conn, _) => KvConnection.HandleAsync(context, conn, unixListener.ListeningEndPoint, config.UnixSocket),
                OnError,
                maxConnections: maxConnections);
            try
            {
                await Fiber.FirstAsync(unixListener is null ? ServeTcpAsync : () => Fiber.BothAsync(ServeTcpAsync, ServeUnixAsync), LoadThenServeAsync);
                log("Shutting down: stopped accepting; finishing in-flight commands.");
                await KvSupervision.NotifyAsync(env, config.Supervised, "STOPPING=1\n", log);
            }
            finally
            {
                queue.Close(); // the owner serves what is queued, then stops its supervisor, and fsyncs
                if (owner is null && aof is not null)
                {
                    aof.Dispose();
                }
            }
        }, "kv-server");
        if (config.UnixSocket.Length > 0)
        {
            log("Removing the unix socket file.");
            await (env.Fs / config.UnixSocket).UnlinkAsync(missingOk: true);
        }

        if (config.PidFile.Length > 0)
        {
            log("Removing the pid file.");
            await (env.Fs / config.PidFile).UnlinkAsync(missingOk: true);
        }

        log("EioSharp.Kv stopped; the append-only file is synced.");
    }

    // Directory.CreateDirectory's mode for a new directory (before the umask).
    internal const UnixFileMode DataDirectoryPermissions = (UnixFileMode)0x1FF; // 0777

    /// <summary>Opens the AOF through the library (owned by <paramref name="sw"/>) and replays it on a system thread of the
    /// library's pool (Systhread.RunAsync, Eio_unix.run_in_systhread): the domain keeps accepting connections meanwhile.
    /// <c>EIOSHARP_KV_TEST_LOAD_DELAY_MS</c> delays the replay (fault injection for the -LOADING test).</summary>
    private static Task<AppendOnlyFile> LoadAsync(AofPaths paths, Switch sw, KvServerConfig config, Func<KvServerConfig> live, KvStore store, long now, Action<string> log)
    {
        int delayMs = int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_TEST_LOAD_DELAY_MS"), out int d) ? d : 0;
        return AppendOnlyFile.OpenAndLoadAsync(paths, sw, AppendOnlyFile.ParsePolicy(config.AppendFsync), live, store, now, config.Limits, log,
            loadDelay: TimeSpan.FromMilliseconds(delayMs));
    }

    /// <summary>Redis's <c>timeout</c>: every second, closes the clients idle longer than it (blocked and subscribed ones are
    /// exempt), and those over client-output-buffer-limit normal (<see cref="KvClientRegistry.CheckOutputLimits"/>).</summary>
    private static async Task CloseIdleClientsAsync(KvServerContext ctx)
    {
        while (true)
        {
            await ctx.Clock.SleepAsync(TimeSpan.FromSeconds(1));
            int timeout = ctx.Config.Timeout;
            if (timeout > 0)
            {
                ctx.Clients.KillIdle(ctx.Clock.Now.ToUnixTimeMilliseconds(), timeout);
            }

            // client-output-buffer-limit normal: over the hard limit, or over the soft one for more than its seconds.
            ctx.Clients.CheckOutputLimits(ctx.Clock.Now.ToUnixTimeMilliseconds(), ctx.Config, ctx.Stats, ctx.Log);

            // maxmemory-clients: also after CONFIG SET lowered it or maxmemory (growth is checked as it is reported).
            ctx.Clients.EvictClients(ctx.Config, ctx.Stats);
        }
    }

    /// <summary>SHUTDOWN, BGREWRITEAOF and LASTSAVE for the connections.</summary>
    private sealed class ServerAdmin(KvServerContext context, KvServerStats stats, Action? requestStop, Action<string> log) : IKvServerAdmin
    {
        public long LastSaveUnixSeconds => stats.LastSaveUnixSeconds;

        public RdbPersistence? Rdb { get; init; }

        public string? Shutdown(bool noSave, bool save, bool now, bool force)
        {
            if (requestStop is null)
            {
                return "ERR SHUTDOWN is not available on this server";
            }

            // The AOF is always fsynced at shutdown. NOSAVE skips the RDB save, SAVE forces it; without either the file is
            // saved when save points are set (RdbPersistence.SaveAtExit, on the store owner after its last round).
            if (Rdb is { } rdb && (noSave || save))
            {
                rdb.ShutdownSave = save && !noSave;
            }

            log("User requested shutdown...");
            if (context.Store is { WritingInitialAof: true })
            {
                // Redis's prepareForShutdown in AOF_WAIT_REWRITE: the file on disk does not have the dataset yet.
                if (!force)
                {
                    log("Writing initial AOF, can't exit.");
                    log("Errors trying to shut down the server. Check the logs for more information.");
                    return "ERR Errors trying to SHUTDOWN. Check logs.";
                }

                log("Writing initial AOF. Exit anyway.");
            }

            requestStop();
            return null;
        }

        /// <summary>SIGINT or SIGTERM: Redis's shutdown with the flags of shutdown-on-sigint / shutdown-on-sigterm
        /// (<c>default</c>: as SHUTDOWN without flags). If the shutdown is refused (the initial AOF is being written and
        /// <c>force</c> is not set) the server keeps running, as Redis.</summary>
        public void ShutdownOnSignal(KvSignal signal, string flags)
        {
            string[] f = flags.Split(' ');
            log($"Received {(signal == KvSignal.Interrupt ? "SIGINT" : "SIGTERM")} scheduling shutdown...");
            if (Shutdown(noSave: f.Contains("nosave"), save: f.Contains("save"), now: f.Contains("now"), force: f.Contains("force")) is not null)
            {
                log($"{(signal == KvSignal.Interrupt ? "SIGINT" : "SIGTERM")} received but errors trying to shut down the server, check the logs for more information");
            }
        }

        public string? RewriteAppendOnlyFile()
        {
            if (context.Store is not { } owner)
            {
                return "ERR BGREWRITEAOF is not available";
            }

            if (stats.AofRewriteInProgress)
            {
                return "ERR Background append only file rewriting already in progress";
            }

            owner.RequestRewrite();
            return null;
        }
    }

    /// <summary>As Redis's checkTcpBacklogSettings: a warning when net.core.somaxconn is below tcp-backlog (the kernel
    /// silently caps the backlog there).</summary>
    private static async Task WarnIfBacklogCappedAsync(EioPath fs, int backlog, Action<string> log)
    {
        const string SomaxconnPath = "/proc/sys/net/core/somaxconn";
        try
        {
            if (int.TryParse((await (fs / SomaxconnPath).LoadStringAsync(64)).Trim(), out int somaxconn) && somaxconn < backlog)
            {
                log($"WARNING: The TCP backlog setting of {backlog} cannot be enforced because {SomaxconnPath} is set to the lower value of {somaxconn}.");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or /proc not mounted: nothing to compare with, as Redis.
        }
    }
}
