using System.Net;
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
    public static async Task RunAsync(Stdenv env, KvOptions options, Promise<bool> stop, Action<string> log, Action<EndPoint>? onListening = null,
        Action? requestStop = null)
    {
        var config = options.Config with { Backend = env.Backend };
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
        string aofPath = Path.Combine(config.Directory, config.AppendFileName);
        // The data directory holds the AOF and the RDB file (SAVE, BGSAVE): created if missing, also with appendonly no.
        await (env.Fs / config.Directory).MakeDirectoriesAsync(DataDirectoryPermissions, existsOk: true);

        stats.Loading = true; // connections accepted meanwhile get -LOADING (KvConnectionState): the AOF or the RDB file loads
        var rdb = new RdbPersistence(env.Fs, live, stats, env.Clock, log);
        store.RdbSaver = rdb;

        var queue = new AsyncQueue<StoreRequest>(RequestQueueCapacity);
        var clock = env.Clock;
        var scriptMonitor = store.ScriptMonitor;
        live.Applying = (old, next) =>
        {
            scriptMonitor.BusyReplyThresholdMs = next.BusyReplyThresholdMs;
        };
        var context = new KvServerContext(live, stats, queue, env.Clock)
        {
            DebugCommand = options.EnableDebugCommand, Net = env.Net, PubSub = pubSub, ScriptMonitor = store.ScriptMonitor,
            CommandStats = commandStats, Log = log,
        };
        context.Admin = new ServerAdmin(context, stats, requestStop, log) { Rdb = rdb };
        var address = await ResolveBindAsync(env, config.Bind);

        await Switch.RunAsync(async sw =>
        {
            var listener = env.Net.Listen(sw, new IPEndPoint(address, config.Port), backlog: 511);

            StoreOwner? owner = null;

            // Listening before the AOF is replayed, as Redis: clients connect during the replay and get -LOADING.
            async Task LoadThenServeAsync()
            {
                // As Redis, the RDB file is loaded when there is no AOF to load (appendonly no, or no file yet).
                bool aofExists = config.AppendOnly && await (env.Fs / aofPath).ExistsAsync();
                if (!aofExists && await RdbPersistence.LoadAtStartAsync(env.Fs, env.Clock, config, sw, store, now, stats, log, listener.ListeningEndPoint.ToString()!) && config.AppendOnly)
                {
                    // The AOF starts with what was loaded (so that a restart finds it there), then is replayed as usual.
                    var initial = new System.Buffers.ArrayBufferWriter<byte>(64 * 1024);
                    AofRewriter.Write(store.CreateSnapshot(now), initial);
                    await (env.Fs / aofPath).ReplaceAsync(initial.WrittenMemory, RdbPersistence.FilePermissions);
                    store.Clear();
                    log($"Wrote the loaded keyspace to the new append-only file {Path.GetFullPath(aofPath)} ({initial.WrittenCount} bytes).");
                }

                if (config.AppendOnly)
                {
                    log($"Loading the append-only file {Path.GetFullPath(aofPath)} (listening on {listener.ListeningEndPoint}; commands get -LOADING until it is loaded).");
                    aof = await LoadAsync(env.Fs, aofPath, sw, config, store, now, log);
                }

                stats.Loading = false;

                owner = new StoreOwner(store, aof, queue, stats, live, env.Clock, env.MonoClock, log)
                {
                    Rdb = rdb,
                    Fs = env.Fs, // also for CONFIG SET appendonly yes
                    CommandObserver = (session, command, elapsed, error) => commandStats.Record(command.Info?.Name ?? "unknown", command,
                        (long)elapsed.TotalMicroseconds, error, live.Current, -1, // the time is read only if an entry needs it
                        session.Connection?.RemoteAddress ?? "?", session.Connection?.Name),
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
                log($"EioSharp.Kv ready: listening on {listener.ListeningEndPoint}, backend {env.Backend}, " +
                    $"appendfsync {config.AppendFsync}, data file {(aof is null ? "(none: appendonly no)" : Path.GetFullPath(aofPath))}, " +
                    $"{options.Domains} connection domain(s)" + (options.StoreOnMainDomain ? ", store on the main domain" : " + 1 store domain") +
                    $", store owner supervised ({StoreOwner.MaxRestarts} restarts in {StoreOwner.RestartPeriod.TotalSeconds:0}s)" +
                    (options.EnableDebugCommand == DebugCommandMode.No ? "." : $", DEBUG command enabled ({options.EnableDebugCommand.ToString().ToLowerInvariant()})."));
                onListening?.Invoke(listener.ListeningEndPoint);
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

            try
            {
                await Fiber.FirstAsync(
                    () => listener.RunServerAsync(
                        (conn, peer) => KvConnection.HandleAsync(context, conn, peer),
                        ex => log(ListeningSocket.PeerOf(ex) is { } peer ? $"WARNING: connection from {peer}: {ex.Message}" : $"WARNING: {ex.Message}"),
                        maxConnections: maxConnections,
                        domainManager: env.DomainManager,
                        additionalDomains: options.Domains - 1),
                    LoadThenServeAsync);
                log("Shutting down: stopped accepting; finishing in-flight commands.");
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
        log("EioSharp.Kv stopped; the append-only file is synced.");
    }

    // Directory.CreateDirectory's mode for a new directory (before the umask).
    internal const UnixFileMode DataDirectoryPermissions = (UnixFileMode)0x1FF; // 0777

    /// <summary>Opens the AOF through the library (owned by <paramref name="sw"/>) and replays it on a system thread of the
    /// library's pool (Systhread.RunAsync, Eio_unix.run_in_systhread): the domain keeps accepting connections meanwhile.
    /// <c>EIOSHARP_KV_TEST_LOAD_DELAY_MS</c> delays the replay (fault injection for the -LOADING test).</summary>
    private static Task<AppendOnlyFile> LoadAsync(EioPath fs, string path, Switch sw, KvServerConfig config, KvStore store, long now, Action<string> log)
    {
        int delayMs = int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_TEST_LOAD_DELAY_MS"), out int d) ? d : 0;
        return AppendOnlyFile.OpenAndLoadAsync(fs, path, sw, AppendOnlyFile.ParsePolicy(config.AppendFsync), store, now, config.Limits, log,
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
            ctx.Clients.CheckOutputLimits(ctx.Clock.Now.ToUnixTimeMilliseconds(), ctx.Config, ctx.Stats, Console.Out.WriteLine);
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

        public string? RewriteAppendOnlyFile()
        {
            if (context.Store is not { } owner || !owner.HasAppendOnlyFile)
            {
                return "ERR BGREWRITEAOF needs appendonly yes on this server";
            }

            if (stats.AofRewriteInProgress)
            {
                return "ERR Background append only file rewriting already in progress";
            }

            owner.RequestRewrite();
            return null;
        }
    }

    private static async Task<IPAddress> ResolveBindAsync(Stdenv env, string bind)
    {
        if (IPAddress.TryParse(bind, out var ip))
        {
            return ip;
        }

        var found = await env.Net.GetAddrInfoAsync(bind, 0);
        return found[0].Address;
    }
}
