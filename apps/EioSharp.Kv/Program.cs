using System.Runtime.InteropServices;
using EioSharp;
using EioSharp.Kv;
using EioSharp.Supervision;

// EioSharp.Kv: a durable key-value server speaking RESP (redis-cli and redis-benchmark work against it).

KvOptions options;
try
{
    options = KvOptions.Parse(args);
    if (!options.ShowHelp && options.ConfigFile is { } configFile)
    {
        // The configuration file (and its includes) through the library's file capability: a short run of its own, since
        // the file decides how the server's run is set up (maxclients and the file-descriptor limit, domains...).
        List<KvConfigLine> lines = EioMain.Run(env => KvFiles.ReadConfigAsync(env.Fs, configFile), new EioOptions { Backend = options.Backend });
        options = KvOptions.Parse(args, lines);
    }
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
catch (Exception e) when (FindConfigError(e) is { } bad)
{
    // Redis: a bad configuration file is fatal, exit 1.
    Console.Error.WriteLine(bad.Message);
    return 1;
}

if (options.ShowHelp)
{
    Console.WriteLine(KvOptions.Usage);
    return 0;
}

var (stop, stopper) = Promise.Create<bool>();
var logger = new KvLog(); // standard output, or the logfile once the server has opened it
void Log(string line) => logger.Write(line);
var signals = new KvSignalShutdown();

// SIGINT and SIGTERM: once the server is up, a shutdown with the flags of shutdown-on-sigint / shutdown-on-sigterm
// (KvServer); before that (loading), a plain stop.
void OnSignal(PosixSignalContext c, KvSignal signal)
{
    c.Cancel = true;
    if (signals.Handler is { } handler) handler(signal);
    else stopper.TryResolve(true);
}

// As Redis (adjustOpenFilesLimit): maxclients needs maxclients + 32 file descriptors (the 32 are reserved for the runtime,
// the AOF and the listening sockets). Raise the soft RLIMIT_NOFILE up to the hard limit if needed; if that is still not
// enough, lower maxclients to fit and say so, rather than failing accepts with EMFILE under load.
if (FileDescriptorLimit.Fit(options.Config.MaxClients, out string? warning) is int fitted && fitted != options.Config.MaxClients)
{
    // The value shown for a maxclients set beyond an int (KvConfigDirectives' SetShown) goes too: CONFIG GET shows the fitted one.
    options = options with { Config = options.Config with { MaxClients = fitted, AcceptedDirectives = options.Config.AcceptedDirectives.Remove("maxclients") } };
}

if (options.Config.MaxClients < 1)
{
    if (warning is not null) Log($"WARNING: {warning}");
    Console.Error.WriteLine("FATAL: the file-descriptor limit leaves no room for clients (it must be above 32); raise it with ulimit -n.");
    return 1;
}
KvSignalShutdown.UnignoreInterrupt(); // as redis-server: a SIGINT sent to the server is handled even if started ignored
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, KvSignal.Interrupt));
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, KvSignal.Terminate));
// --trace FILE streams the fiber trace; SIGQUIT (kill -QUIT pid) prints the live tree of domains, switches and fibers.
using var diagnostics = EioSharp.Domains.ServerDiagnostics.Install(options.TraceFile);
try
{
    // --backend auto (the default) takes the best backend available here: on 2 cores epoll gives about 1.0x redis-server's
    // throughput where the portable backend gives 0.6-0.8x (docs/BENCHMARKS.md). EIOSHARP_BACKEND overrides auto.
    // The ready line names the backend in use.
    EioMain.Run(
        env => logger.RunWithFileAsync(env.Fs, options.Config.LogFile, () =>
        {
            if (warning is not null)
            {
                Log($"WARNING: {warning}"); // in the logfile when there is one
            }

            // The command line's parse (System.CommandLine: one Option per directive, about 200) and the configuration's
            // copies are garbage now: collect and give the memory back before serving, so an empty server's RSS stays
            // near redis-server's (issue 11's memory target; MemoryFootprintTests).
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            KvNativeHeap.Trim(); // and the C heap the start-up freed (KvNativeHeap)
            // A pipelined batch's keys are prefetched together (KvStore.PrefetchKeys, h146); EIOSHARP_KV_PREFETCH=0 turns
            // it off (A/B of one build).
            if (Environment.GetEnvironmentVariable("EIOSHARP_KV_PREFETCH") == "0") KvStore.PrefetchEnabled = false;
            // appendfsync always: where a round's fdatasync runs (StoreOwner.AlwaysSync, session 24 h149): the default
            // "domainwait" (on the store's domain, then one wake-up when the writers are back; io_uring only, else "ring");
            // EIOSHARP_KV_ALWAYS_SYNC=ring (an IORING_OP_FSYNC or the blocking offload, as before) or =domain (blocking,
            // no wait hint) for an A/B of one build; EIOSHARP_KV_ALWAYS_WAIT_US the hinted wait's base limit (1000).
            StoreOwner.AlwaysSync = Environment.GetEnvironmentVariable("EIOSHARP_KV_ALWAYS_SYNC") switch
            {
                "domain" => AlwaysSyncMode.Domain,
                "ring" => AlwaysSyncMode.Ring,
                _ => AlwaysSyncMode.DomainWait,
            };
            // Overlapped always rounds (session 33, h189; on by default since the lead's quiet A/B, rationale §183): the
            // domainwait round's wait expects the other cohort of writers, not all of them, so the store's round and the
            // clients' turn overlap (StoreOwner.AlwaysOverlap). EIOSHARP_KV_ALWAYS_OVERLAP=0 turns it off.
            // Its guard (session 34, h195, rationale §191) falls back to one cohort while that serves faster (a loaded
            // machine); EIOSHARP_KV_ALWAYS_OVERLAP=1 overlaps unguarded.
            string? overlap = Environment.GetEnvironmentVariable("EIOSHARP_KV_ALWAYS_OVERLAP");
            StoreOwner.AlwaysOverlap = overlap != "0";
            StoreOwner.AlwaysOverlapGuarded = overlap is not ("0" or "1");
            if (int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_ALWAYS_WAIT_US"), out int waitUs) && waitUs > 0)
            {
                StoreOwner.AlwaysSyncWait = TimeSpan.FromMicroseconds(waitUs);
            }
            // A connection domain's sleep while 8 or more connections are in flight waits for several requests
            // (Domain.HintNextWait, at most EIOSHARP_KV_BATCH_WAIT=8, 100 µs or EIOSHARP_KV_BATCH_WAIT_US) rather than
            // for the first (KvBatchWait; session 35, h198, rationale §196): EIOSHARP_KV_BATCH_WAIT=0 turns it off.
            KvBatchWait.Configure(Environment.GetEnvironmentVariable("EIOSHARP_KV_BATCH_WAIT"), Environment.GetEnvironmentVariable("EIOSHARP_KV_BATCH_WAIT_US"));
            return KvServer.RunAsync(env, options, stop, Log, requestStop: () => stopper.TryResolve(true), signals: signals);
        }),
        // Write-behind sends on io_uring (session 22, h141, docs/rationale.md): a reply's write returns at once and its
        // send, which posts no completion where the kernel can skip it, goes with the connection's next receive and the
        // wait in one io_uring_enter (one client: 2.0 -> 1.0 entries per request). Ignored by the other backends;
        // EIOSHARP_URING_WRITE_BEHIND=0 turns it off. The idle spin (EioBackendOptions.UringIdleSpin, session 26, h159) stays
        // off: it cut the ping-pong's sleeps under load, but a quiet A/B showed no gain (docs/rationale.md §156);
        // EIOSHARP_URING_IDLE_SPIN=1 turns it on. A read after one that drained its socket arms the kernel's wait for data at
        // once (EioBackendOptions.UringRecvPollFirst, session 31, h180): a lone client's next request is never there when
        // the reply goes out; EIOSHARP_URING_RECV_POLL_FIRST=0 turns it off.
        new EioOptions { Backend = options.Backend, BackendOptions = new EioBackendOptions { UringWriteBehind = true, UringRecvPollFirst = true } });
    return 0;
}
catch (ArgumentException e) when (e.ParamName?.StartsWith("EIOSHARP_", StringComparison.Ordinal) == true)
{
    // EioMain.Run: the environment override names no backend, or a tuning variable has an invalid value (EioBackendOptions).
    Console.Error.WriteLine(e.Message);
    return 2;
}
catch (Exception ex) when (FindStartup(ex) is { } e)
{
    // As Redis: the log file cannot be opened (fatal, exit 1).
    Console.Error.WriteLine(e.Message);
    return 1;
}
catch (Exception e) when (RestartIntensityExceededException.FindIn(e) is { } gaveUp)
{
    // The store owner kept crashing: its supervisor gave up, which stopped the server. What was acknowledged is in the AOF.
    string cause = gaveUp.InnerException is { } inner ? $" (last failure: {inner.GetType().Name}: {inner.Message})" : "";
    Console.Error.WriteLine($"FATAL: the store owner keeps crashing: {gaveUp.Message.TrimEnd('.')}{cause}. Exiting.");
    return 3;
}
catch (Exception ex) when (FindCorrupt(ex) is { } e)
{
    Console.Error.WriteLine($"FATAL: {e.Message}. Refusing to start; repair the file (redis-check-aof --fix) or move it away.");
    return 1;
}
catch (Exception ex) when (FindRdbError(ex) is { } e)
{
    // As Redis: a dump.rdb that cannot be loaded is fatal (exit 1), the file is left as it is.
    Console.Error.WriteLine($"FATAL: {e.Message}. Refusing to start; check the file with redis-check-rdb, or move it away.");
    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"FATAL: {e.Message}");
    return 1;
}
catch (Exception ex) when (FindConfigError(ex) is { } e)
{
    // The configured users or the ACL file (read when the server starts): as Redis, fatal with exit 1.
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine("Critical error while loading ACLs. Exiting.");
    return 1;
}

static KvConfigException? FindConfigError(Exception e) => e switch
{
    KvConfigException c => c,
    MultipleException m => m.InnerExceptions.Select(FindConfigError).FirstOrDefault(c => c is not null),
    { InnerException: { } inner } => FindConfigError(inner),
    _ => null,
};

static KvStartupException? FindStartup(Exception e) => e switch
{
    KvStartupException c => c,
    MultipleException m => m.InnerExceptions.Select(FindStartup).FirstOrDefault(c => c is not null),
    { InnerException: { } inner } => FindStartup(inner),
    _ => null,
};

static RdbFormatException? FindRdbError(Exception e) => e switch
{
    RdbFormatException c => c,
    MultipleException m => m.InnerExceptions.Select(FindRdbError).FirstOrDefault(c => c is not null),
    { InnerException: { } inner } => FindRdbError(inner),
    _ => null,
};

static AofCorruptException? FindCorrupt(Exception e) => e switch
{
    AofCorruptException c => c,
    MultipleException m => m.InnerExceptions.Select(FindCorrupt).FirstOrDefault(c => c is not null),
    { InnerException: { } inner } => FindCorrupt(inner),
    _ => null,
};

/// <summary>RLIMIT_NOFILE against maxclients, as Redis's <c>adjustOpenFilesLimit</c>.</summary>
internal static class FileDescriptorLimit
{
    /// <summary>File descriptors kept for the runtime, the AOF, the listening sockets and the like (Redis's CONFIG_MIN_RESERVED_FDS).</summary>
    public const int Reserved = 32;

    private const int RlimitNofile = 7;

    /// <summary>Makes room for <paramref name="maxClients"/> clients: raises the soft limit if the hard one allows, else returns the maxclients that fits.</summary>
    /// <param name="maxClients">The configured maxclients.</param>
    /// <param name="warning">What was changed, for the log; null if nothing was.</param>
    /// <returns>The maxclients to use (below 1 if the limit is below <see cref="Reserved"/> + 1).</returns>
    public static int Fit(int maxClients, out string? warning)
    {
        warning = null;
        long needed = (long)maxClients + Reserved;
        if (GetRLimit(RlimitNofile, out RLimit limit) != 0 || limit.Current >= (ulong)needed)
        {
            return maxClients;
        }

        // As Redis's adjustOpenFilesLimit: try the needed limit, then 16 less at a time, until the hard limit allows it.
        ulong raised = (ulong)needed <= limit.Maximum ? (ulong)needed : (ulong)needed - 16 * (((ulong)needed - limit.Maximum + 15) / 16);
        if (raised > limit.Current && SetRLimit(RlimitNofile, new RLimit { Current = raised, Maximum = limit.Maximum }) == 0)
        {
            limit.Current = raised;
            if (raised >= (ulong)needed)
            {
                return maxClients;
            }
        }

        int fitted = (int)Math.Min(int.MaxValue, (long)limit.Current - Reserved);
        warning = $"You requested maxclients of {maxClients} requiring at least {needed} max file descriptors; the limit is {limit.Current} " +
            $"(hard limit {limit.Maximum}). maxclients has been reduced to {fitted} to compensate for low ulimit. " +
            "If you need higher maxclients increase 'ulimit -n'.";
        return fitted;
    }

    [DllImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static extern int GetRLimit(int resource, out RLimit limit);

    [DllImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static extern int SetRLimit(int resource, in RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }
}
