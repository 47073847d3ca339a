using System.Globalization;

namespace EioSharp.Kv;

/// <summary>Server settings that connections report (CONFIG GET, INFO) and enforce (AUTH).</summary>
public sealed record KvServerConfig
{
    /// <summary>TCP port; Redis's default 6379.</summary>
    public int Port { get; init; } = 6379;

    /// <summary>Address to bind; loopback by default, like Redis's protected default.</summary>
    public string Bind { get; init; } = "127.0.0.1";

    /// <summary>Data directory holding the AOF.</summary>
    public string Directory { get; init; } = "./data";

    /// <summary>Redis's <c>appendfilename</c>: the base name of the AOF files inside <see cref="AppendDirName"/> (manifest <c>NAME.manifest</c>, <c>NAME.N.base.rdb</c>, <c>NAME.N.incr.aof</c>), and of a pre-7 single file in <see cref="Directory"/>.</summary>
    public string AppendFileName { get; init; } = "appendonly.aof";

    // ---- h53: multi-part AOF ----
    /// <summary>Redis's <c>appenddirname</c> (immutable): the directory inside <see cref="Directory"/> holding the AOF's
    /// base, incremental and manifest files.</summary>
    public string AppendDirName { get; init; } = "appendonlydir";

    /// <summary>Redis's <c>aof-use-rdb-preamble</c>: a rewrite writes the base file in RDB format (<c>.base.rdb</c>), else as commands (<c>.base.aof</c>).</summary>
    public bool AofUseRdbPreamble { get; init; } = true;

    /// <summary>Redis's <c>aof-timestamp-enabled</c>: <c>#TS:&lt;unix seconds&gt;</c> annotation lines are written before the
    /// first command of each second (and at the start of an AOF-format base).</summary>
    public bool AofTimestampEnabled { get; init; }

    /// <summary>Redis's <c>aof-load-truncated</c>: a truncated last file is cut at its last complete command and loaded
    /// (yes), or the server refuses to start (no).</summary>
    public bool AofLoadTruncated { get; init; } = true;

    /// <summary>Redis's <c>no-appendfsync-on-rewrite</c>: while a rewrite runs, the AOF is not fsynced (appends still happen).</summary>
    public bool NoAppendFsyncOnRewrite { get; init; }

    /// <summary>Redis's <c>aof-rewrite-incremental-fsync</c>: the rewrite fsyncs its file every 4 MB written.</summary>
    public bool AofRewriteIncrementalFsync { get; init; } = true;

    /// <summary>Redis's <c>aof-disable-auto-gc</c>: history files a rewrite made obsolete are kept (yes) or removed (no).</summary>
    public bool AofDisableAutoGc { get; init; }
    // ---- end h53 ----

    /// <summary>Whether the AOF is enabled.</summary>
    public bool AppendOnly { get; init; } = true;

    /// <summary>fsync policy: <c>always</c>, <c>everysec</c> (default, like Redis) or <c>no</c>.</summary>
    public string AppendFsync { get; init; } = "everysec";

    /// <summary>Password required by AUTH; null or empty: no authentication.</summary>
    public string? RequirePass { get; init; }

    /// <summary>Redis's <c>aclfile</c>: the users file read at start and by ACL LOAD, written by ACL SAVE; empty: none.</summary>
    public string AclFile { get; init; } = "";

    /// <summary>The <c>user</c> lines of the configuration file (name, then rules), applied to the ACL at start (Redis's
    /// ACLLoadConfiguredUsers); invalid together with <see cref="AclFile"/>.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Users { get; init; } = [];

    /// <summary>Redis's <c>acllog-max-len</c>: most ACL LOG entries kept.</summary>
    public int AclLogMaxLen { get; init; } = 128;

    /// <summary>Redis's <c>acl-pubsub-default</c>: <c>resetchannels</c> (the 7.0 default: new users get no channels) or
    /// <c>allchannels</c> (new users get <c>&amp;*</c>).</summary>
    public string AclPubsubDefault { get; init; } = "resetchannels";

    /// <summary>Most simultaneous clients.</summary>
    public int MaxClients { get; init; } = 10000;

    /// <summary>Redis's <c>busy-reply-threshold</c> (alias <c>lua-time-limit</c>), in milliseconds: a script running
    /// longer makes other clients get <c>-BUSY</c> and may be stopped with SCRIPT KILL / FUNCTION KILL.</summary>
    public int BusyReplyThresholdMs { get; init; } = 5000;

    /// <summary>Compact-encoding thresholds (hash-max-listpack-entries and the like), reported by CONFIG GET.</summary>
    public KvEncodingLimits Encodings { get; init; } = new();

    /// <summary>Number of databases (Redis's <c>databases</c>); SELECT takes 0 to this less one.</summary>
    public int Databases { get; init; } = 16;

    /// <summary>Protocol limits.</summary>
    public RespLimits Limits { get; init; } = RespLimits.Default;

    /// <summary>Rewrite the AOF when it has grown by this percentage since the last rewrite (Redis's auto-aof-rewrite-percentage).</summary>
    public int AutoAofRewritePercentage { get; init; } = 100;

    /// <summary>Do not rewrite an AOF smaller than this, in bytes (Redis's auto-aof-rewrite-min-size: 64 MiB).</summary>
    public long AutoAofRewriteMinSize { get; init; } = 64L * 1024 * 1024;

    /// <summary>Value of the <c>server</c> field of HELLO; clients expect <c>redis</c>.</summary>
    public string ServerName { get; init; } = "redis";

    /// <summary>Redis version reported by HELLO and INFO; 7.2.0 so clients enable the features we support.</summary>
    public string Version { get; init; } = "7.2.0";

    /// <summary>The I/O backend name reported by INFO (set by the server).</summary>
    public string Backend { get; init; } = "unknown";

    /// <summary>Redis's <c>notify-keyspace-events</c> at start (CONFIG SET changes it at run time); empty: none.</summary>
    public string NotifyKeyspaceEvents { get; init; } = "";

    /// <summary>Hard output limit of a pub/sub client in bytes (Redis's client-output-buffer-limit pubsub class: 32mb):
    /// over it the client is disconnected at once.</summary>
    public long PubSubOutputHardLimit { get; init; } = 32L * 1024 * 1024;

    /// <summary>Soft output limit of a pub/sub client in bytes (8mb): over it for <see cref="PubSubOutputSoftSeconds"/> the client is disconnected.</summary>
    public long PubSubOutputSoftLimit { get; init; } = 8L * 1024 * 1024;

    /// <summary>How long a pub/sub client may stay over the soft limit (60 s).</summary>
    public TimeSpan PubSubOutputSoftSeconds { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Redis's <c>timeout</c>: close a client idle this many seconds (0: never). Blocked and subscribed clients are exempt.</summary>
    public int Timeout { get; init; }

    /// <summary>Redis's <c>tcp-keepalive</c>, in seconds (reported; 0 disables).</summary>
    public int TcpKeepAlive { get; init; } = 300;

    /// <summary>Redis's <c>maxmemory</c> in bytes (0: no limit). Configurable; eviction itself is not part of this server yet.</summary>
    public long MaxMemory { get; init; }

    // ---- h51: client eviction ----

    /// <summary>Redis 7.0's <c>maxmemory-clients</c>: when the memory of all clients (<see cref="KvServerStats.ClientMemoryBytes"/>,
    /// CLIENT LIST <c>tot-mem</c> summed) reaches it, the clients using the most are disconnected until it is under the
    /// limit again (<see cref="KvClientRegistry.EvictClients"/>); clients with CLIENT NO-EVICT on are never evicted.
    /// 0 (default): off. Positive: bytes. Negative: <c>-percent</c> of <see cref="MaxMemory"/> (Redis stores "10%" as -10;
    /// no effect while maxmemory is 0). The limit in force is never under 128 KB (<see cref="ClientEvictionLimit"/>).</summary>
    public long MaxMemoryClients { get; init; }

    /// <summary>The client memory limit in bytes that <see cref="MaxMemoryClients"/> means now (Redis's getClientEvictionLimit):
    /// 0 when client eviction is off; otherwise at least 128 KB.</summary>
    public long ClientEvictionLimit
    {
        get
        {
            long limit;
            if (MaxMemoryClients < 0 && MaxMemory > 0) limit = (long)Math.Min((double)MaxMemory * -(double)MaxMemoryClients / 100, long.MaxValue);
            else if (MaxMemoryClients > 0) limit = MaxMemoryClients;
            else return 0;
            return Math.Max(limit, 128 * 1024);
        }
    }
    // ---- end h51 ----

    /// <summary>Redis's <c>maxmemory-policy</c>.</summary>
    public string MaxMemoryPolicy { get; init; } = "noeviction";

    /// <summary>Redis's <c>maxmemory-samples</c>.</summary>
    public int MaxMemorySamples { get; init; } = 5;

    /// <summary>Redis's <c>slowlog-log-slower-than</c> in microseconds (negative: off; 0: every command).</summary>
    public long SlowlogLogSlowerThan { get; init; } = 10000;

    /// <summary>Redis's <c>slowlog-max-len</c>.</summary>
    public long SlowlogMaxLen { get; init; } = 128;

    /// <summary>Redis's <c>latency-monitor-threshold</c> in milliseconds (0: off).</summary>
    public long LatencyMonitorThreshold { get; init; }

    /// <summary>Redis's <c>hz</c>: background tasks (active expiry, timeouts) run this many times a second (1 to 500).</summary>
    public int Hz { get; init; } = 10;

    /// <summary>Redis's <c>save</c> points ("seconds changes" pairs): a BGSAVE starts when at least <c>changes</c> writes
    /// were made and <c>seconds</c> have passed since the last save. Empty by default (no automatic snapshots: the AOF,
    /// on by default, is the durable copy; redis-server's default is <c>3600 1 300 100 60 10000</c> with the AOF off).</summary>
    public string Save { get; init; } = "";

    // ---- h52: RDB ----

    /// <summary>Redis's <c>rdbcompression</c> (default yes): SAVE, BGSAVE and DUMP write strings over 20 bytes
    /// LZF-compressed when that saves at least 4 bytes (DEBUG OBJECT's serializedlength counts the same).</summary>
    public bool RdbCompression { get; init; } = true;

    /// <summary>Redis's <c>rdbchecksum</c> (default yes; start only): no writes 0 as the RDB file's CRC-64 and does not
    /// check the CRC when loading one.</summary>
    public bool RdbChecksum { get; init; } = true;

    /// <summary>Redis's <c>stop-writes-on-bgsave-error</c> (default yes): while save points are set and the last BGSAVE
    /// (or save) failed, write commands and PING answer <c>-MISCONF Redis is configured to save RDB snapshots...</c>.</summary>
    public bool StopWritesOnBgsaveError { get; init; } = true;

    /// <summary>Redis's <c>rdb-del-sync-files</c> (default no): accepted, no effect (it deletes RDB files made only for
    /// replication; this server has no replication).</summary>
    public bool RdbDelSyncFiles { get; init; }

    /// <summary>Redis's <c>rdb-save-incremental-fsync</c> (default yes): a BGSAVE fsyncs its file every 32 MiB written
    /// (REDIS_AUTOSYNC_BYTES of redis 7.0), so the final fsync does not flush the whole file at once.</summary>
    public bool RdbSaveIncrementalFsync { get; init; } = true;

    /// <summary>Redis's <c>sanitize-dump-payload</c> (no, yes, clients; default no): accepted; RESTORE always checks a
    /// payload completely (as <c>yes</c>) since it rebuilds the value through the creation commands.</summary>
    public string SanitizeDumpPayload { get; init; } = "no";

    /// <summary>Redis's <c>dbfilename</c>: the RDB file inside <see cref="Directory"/> (SAVE, BGSAVE, loaded at start when
    /// there is no AOF to load).</summary>
    public string DbFilename { get; init; } = "dump.rdb";

    /// <summary>Redis's <c>protected-mode</c> (default yes): while no password is set, clients that do not connect from a
    /// loopback address get Redis's <c>-DENIED Redis is running in protected mode...</c> error and are disconnected.</summary>
    public bool ProtectedMode { get; init; } = true;

    /// <summary>Hard output limit of a normal client in bytes (client-output-buffer-limit normal class; Redis's default
    /// 0: none). Non-zero: a client whose pending replies go over it is disconnected.</summary>
    public long NormalOutputHardLimit { get; init; }

    /// <summary>Most bytes of replies pending for one client (one batch of pipelined commands: 513 MiB by default), applied
    /// whatever <see cref="NormalOutputHardLimit"/> says (Redis's default for normal clients is unlimited, which lets one
    /// client exhaust memory). Over it the client is disconnected, the commands after the one that went over are not
    /// run, and the disconnection is counted in INFO (client_output_buffer_limit_disconnections). Keep it above
    /// <c>proto-max-bulk-len</c> so that the largest value can still be read.</summary>
    public long MaxReplyBytes { get; init; } = DefaultMaxReplyBytes;

    /// <summary>The default of <see cref="MaxReplyBytes"/>: 513 MiB, the default proto-max-bulk-len (512 MiB) and 1 MiB
    /// to spare, so that the largest value can be read while one client holds at most that much.</summary>
    public const long DefaultMaxReplyBytes = RespLimits.DefaultMaxBulkLength + (1L << 20);

    /// <summary>The bound actually applied to one client's pending replies: the smaller of <see cref="MaxReplyBytes"/>
    /// and a non-zero <see cref="NormalOutputHardLimit"/>.</summary>
    public long EffectiveReplyLimit => NormalOutputHardLimit > 0 ? Math.Min(NormalOutputHardLimit, MaxReplyBytes) : MaxReplyBytes;

    /// <summary>Soft output limit of a normal client in bytes (0: none).</summary>
    public long NormalOutputSoftLimit { get; init; }

    /// <summary>Seconds a normal client may stay over its soft limit.</summary>
    public long NormalOutputSoftSeconds { get; init; }

    /// <summary>Redis's <c>enable-debug-command</c>: <c>no</c>, <c>yes</c> or <c>local</c>.</summary>
    public string EnableDebugCommand { get; init; } = "no";

    /// <summary>Redis's <c>enable-module-command</c> (no, yes, local): whether MODULE LOAD/LOADEX/UNLOAD are allowed;
    /// allowed, they answer Redis's error for a module that does not load (EioSharp.Kv cannot load Redis modules).</summary>
    public string EnableModuleCommand { get; init; } = "no";

    /// <summary>Redis's <c>loglevel</c> (reported).</summary>
    public string LogLevel { get; init; } = "notice";

    // ---- h55: process directives ----

    /// <summary>Redis's <c>logfile</c> (immutable): the file the server's log lines are appended to; empty (the default):
    /// standard output. A file that cannot be opened at start is fatal (exit 1), as Redis.</summary>
    public string LogFile { get; init; } = "";

    /// <summary>Redis's <c>pidfile</c> (immutable): written at start (the process id and a newline), removed at a clean
    /// shutdown (SHUTDOWN, SIGTERM, SIGINT); empty (the default when not daemonized, as Redis): none.</summary>
    public string PidFile { get; init; } = "";

    /// <summary>Redis's <c>tcp-backlog</c> (immutable): the listen backlog of the TCP and Unix sockets (default 511; the
    /// kernel caps it at net.core.somaxconn).</summary>
    public int TcpBacklog { get; init; } = 511;

    /// <summary>Redis's <c>unixsocket</c> (immutable): also accept clients on this Unix stream socket path; empty (the default): none.</summary>
    public string UnixSocket { get; init; } = "";

    /// <summary>Redis's <c>unixsocketperm</c> (immutable): the permissions given to <see cref="UnixSocket"/> (0 to 0777;
    /// 0, the default: left as created, mode 0777 less the umask).</summary>
    public int UnixSocketPerm { get; init; }

    /// <summary>Redis's <c>supervised</c> (immutable): <c>no</c> (default), <c>upstart</c>, <c>systemd</c> or <c>auto</c>.
    /// With systemd (or auto and NOTIFY_SOCKET set), READY=1 is sent to NOTIFY_SOCKET once the server accepts clients.</summary>
    public string Supervised { get; init; } = "no";

    /// <summary>Redis's <c>shutdown-on-sigint</c>: the SHUTDOWN flags applied on SIGINT (<c>default</c>, or some of
    /// <c>save</c>, <c>nosave</c>, <c>now</c>, <c>force</c> in that order, separated by spaces).</summary>
    public string ShutdownOnSigint { get; init; } = "default";

    /// <summary>Redis's <c>shutdown-on-sigterm</c>: the SHUTDOWN flags applied on SIGTERM (as <see cref="ShutdownOnSigint"/>).</summary>
    public string ShutdownOnSigterm { get; init; } = "default";

    /// <summary>Redis's <c>shutdown-timeout</c>, in seconds: how long a shutdown waits for lagging replicas (there are none
    /// here: accepted and shown only).</summary>
    public int ShutdownTimeout { get; init; } = 10;

    /// <summary>Redis's <c>lfu-log-factor</c> (reported; for the eviction policies).</summary>
    public int LfuLogFactor { get; init; } = 10;

    /// <summary>Redis's <c>lfu-decay-time</c> in minutes (reported; for the eviction policies).</summary>
    public int LfuDecayTime { get; init; } = 1;

    /// <summary>Redis's <c>active-expire-effort</c> (1 to 10).</summary>
    public int ActiveExpireEffort { get; init; } = 1;

    /// <summary>Redis's <c>hll-sparse-max-bytes</c> (reported).</summary>
    public long HllSparseMaxBytes { get; init; } = 3000;

    /// <summary>Redis's <c>tracking-table-max-keys</c> (reported).</summary>
    public long TrackingTableMaxKeys { get; init; } = 1_000_000;

    /// <summary>Redis's <c>client-query-buffer-limit</c> in bytes (reported).</summary>
    public long ClientQueryBufferLimit { get; init; } = 1L << 30;

    // ---- h50: replication, cluster, TLS, tuning ----

    /// <summary>Redis's <c>min-replicas-to-write</c> (alias min-slaves-to-write): with a non-zero value and a non-zero
    /// <see cref="MinReplicasMaxLag"/>, write commands need that many replicas; EioSharp.Kv has none, so they are refused
    /// with <c>-NOREPLICAS Not enough good replicas to write.</c> as redis-server does without replicas.</summary>
    public int MinReplicasToWrite { get; init; }

    /// <summary>Redis's <c>min-replicas-max-lag</c> in seconds (alias min-slaves-max-lag): 0 turns the
    /// <see cref="MinReplicasToWrite"/> check off, as Redis's checkGoodReplicasStatus.</summary>
    public int MinReplicasMaxLag { get; init; } = 10;

    /// <summary>Whether writes are refused with -NOREPLICAS (see <see cref="MinReplicasToWrite"/>).</summary>
    public bool RefusesWritesForReplicas => MinReplicasToWrite > 0 && MinReplicasMaxLag > 0;

    /// <summary>Redis's <c>maxmemory-eviction-tenacity</c> (0 to 100): bounds the time one eviction pass may take
    /// (Redis's evictionTimeLimitUs: 0..10 is 50 us a step, 500 us at the default 10; 100 is no limit).</summary>
    public int MaxMemoryEvictionTenacity { get; init; } = 10;

    /// <summary>How long one eviction pass may run for <see cref="MaxMemoryEvictionTenacity"/> (Redis's evictionTimeLimitUs;
    /// <see cref="TimeSpan.MaxValue"/> at 100: no limit).</summary>
    public TimeSpan EvictionTimeLimit => KvAcceptedDirectives.EvictionTimeLimit(MaxMemoryEvictionTenacity);

    /// <summary>The error of a write refused for want of replicas (Redis's shared.noreplicaserr, without '-').</summary>
    public const string NoReplicasError = "NOREPLICAS Not enough good replicas to write.";

    /// <summary>Redis's <c>latency-tracking</c>: record each command's latency for INFO latencystats (no: nothing is
    /// recorded and the section is empty).</summary>
    public bool LatencyTracking { get; init; } = true;

    /// <summary>Redis's <c>latency-tracking-info-percentiles</c>: the percentiles INFO latencystats prints (0 to 100).</summary>
    public IReadOnlyList<double> LatencyTrackingInfoPercentiles { get; init; } = [50, 99, 99.9];

    /// <summary>Values of the directives accepted with Redis's validation but without effect here (replication,
    /// cluster, TLS, allocator and process tuning; docs/kv.md lists why), by Redis name; a directive not in it has its
    /// Redis default.</summary>
    public System.Collections.Immutable.ImmutableDictionary<string, string> AcceptedDirectives { get; init; } = KvAcceptedDirectives.Empty;

    /// <summary>Whether a password is configured.</summary>
    public bool RequiresAuthentication => !string.IsNullOrEmpty(RequirePass);

    /// <summary>The parameters CONFIG GET reports, by Redis name (every directive of <see cref="KvConfigDirectives"/>).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> GetParameters() =>
        [.. KvConfigDirectives.All.Select(d => new KeyValuePair<string, string>(d.Name, d.Get(this)))];
}

/// <summary>Numbers the server fills in and INFO reports.</summary>
/// <remarks><b>Thread safety</b>: each property is a plain 64-bit value; the server updates them
/// from its own fibers (for counters use <see cref="Interlocked"/> on the returned fields through
/// the increment helpers). Readers may see slightly stale values, which INFO tolerates.</remarks>
public sealed partial class KvServerStats
{
    private long _connectedClients;
    private long _totalConnections;
    private long _totalCommands;
    private long _rejectedConnections;
    private long _netInputBytes;
    private long _netOutputBytes;
    private long _outputLimitDisconnections;
    private long _evictedClients;

    /// <summary>Clients disconnected by <c>maxmemory-clients</c> (INFO stats <c>evicted_clients</c>; CONFIG RESETSTAT zeroes it).</summary>
    public long EvictedClients => Volatile.Read(ref _evictedClients);

    /// <summary>Records a client evicted by <c>maxmemory-clients</c>.</summary>
    public void OnClientEvicted() => Interlocked.Increment(ref _evictedClients);

    /// <summary>Clients disconnected because their output went over client-output-buffer-limit (INFO stats).</summary>
    public long ClientOutputBufferLimitDisconnections => Volatile.Read(ref _outputLimitDisconnections);

    private int _storeResetRequested;

    /// <summary>CONFIG RESETSTAT: zeroes the counters Redis resets (commands, connections, traffic, rejected connections,
    /// output-limit disconnections, aof_rewrites, the per-command and error statistics, and the store's expired_keys,
    /// keyspace_hits, keyspace_misses and evicted_keys: those at once in what INFO shows, in the store before its next
    /// round or in its next <see cref="UpdateFrom"/>, see <see cref="ApplyStoreReset"/>).</summary>
    public void ResetStats()
    {
        Volatile.Write(ref _storeResetRequested, 1);
        ExpiredKeys = 0;
        KeyspaceHits = 0;
        KeyspaceMisses = 0;
        EvictedKeys = 0;
        _aofRewritesBase = Volatile.Read(ref _aofRewritesRaw);
        Interlocked.Exchange(ref _totalCommands, 0);
        Interlocked.Exchange(ref _totalConnections, 0);
        Interlocked.Exchange(ref _rejectedConnections, 0);
        Interlocked.Exchange(ref _netInputBytes, 0);
        Interlocked.Exchange(ref _netOutputBytes, 0);
        Interlocked.Exchange(ref _outputLimitDisconnections, 0);
        Interlocked.Exchange(ref _evictedClients, 0);
        ResetRequested?.Invoke();
    }

    /// <summary>Called by <see cref="ResetStats"/> so that the owners of other statistics (the store's hits and misses,
    /// command and error statistics, the slow log is not reset) reset theirs.</summary>
    public Action? ResetRequested { get; set; }

    /// <summary>Records a client disconnected for its output buffer limit.</summary>
    public void OnOutputBufferLimitDisconnection() => Interlocked.Increment(ref _outputLimitDisconnections);

    /// <summary>When the server started, Unix ms.</summary>
    public long StartTimeUnixMs { get; set; }

    /// <summary>Process id reported by INFO.</summary>
    public long ProcessId { get; set; } = Environment.ProcessId;

    /// <summary>Clients connected now.</summary>
    public long ConnectedClients => Volatile.Read(ref _connectedClients);

    /// <summary>Connections accepted since start.</summary>
    public long TotalConnectionsReceived => Volatile.Read(ref _totalConnections);

    /// <summary>Commands processed since start.</summary>
    public long TotalCommandsProcessed => Volatile.Read(ref _totalCommands);

    /// <summary>Connections refused because of maxclients.</summary>
    public long RejectedConnections => Volatile.Read(ref _rejectedConnections);

    /// <summary>Bytes read from clients.</summary>
    public long TotalNetInputBytes => Volatile.Read(ref _netInputBytes);

    /// <summary>Bytes written to clients.</summary>
    public long TotalNetOutputBytes => Volatile.Read(ref _netOutputBytes);

    /// <summary>Records an accepted connection.</summary>
    public void OnClientConnected()
    {
        Interlocked.Increment(ref _connectedClients);
        Interlocked.Increment(ref _totalConnections);
    }

    /// <summary>Records a closed connection.</summary>
    public void OnClientDisconnected() => Interlocked.Decrement(ref _connectedClients);

    /// <summary>Records a refused connection.</summary>
    public void OnConnectionRejected() => Interlocked.Increment(ref _rejectedConnections);

    /// <summary>Records processed commands.</summary>
    public void OnCommandsProcessed(long count) => Interlocked.Add(ref _totalCommands, count);

    /// <summary>Records network traffic in bytes.</summary>
    public void OnNetworkTraffic(long inputBytes, long outputBytes)
    {
        // The session reports its input and its output apart (one of them 0): no atomic add of nothing on a shared line.
        if (inputBytes != 0) Interlocked.Add(ref _netInputBytes, inputBytes);
        if (outputBytes != 0) Interlocked.Add(ref _netOutputBytes, outputBytes);
    }

    private (long Keys, long Expires)[] _keysPerDatabase = [];
    private int _keysPerDatabaseVersion; // odd while UpdateFrom rewrites _keysPerDatabase in place (a sequence lock)
    private KvStore? _keysPerDatabaseStore; // the store and its KeyspaceCountsVersion when UpdateFrom last compared
    private long _keysPerDatabaseSeen;

    /// <summary>Keys and keys with an expiry, per database (INFO keyspace): a consistent copy (safe from any thread).</summary>
    /// <remarks><see cref="UpdateFrom"/> runs after every round and the counts change in most rounds that create or
    /// delete a key (a BLPOP/LPUSH ping-pong: every round): it rewrites the one array in place under a sequence lock
    /// instead of publishing a new array each time (16 databases: 280 B per round); the reader (INFO, rare) copies.</remarks>
    public (long Keys, long Expires)[] KeysPerDatabase
    {
        get
        {
            var spin = new SpinWait();
            while (true)
            {
                int version = Volatile.Read(ref _keysPerDatabaseVersion);
                if ((version & 1) == 0)
                {
                    var copy = (ValueTuple<long, long>[])Volatile.Read(ref _keysPerDatabase).Clone();
                    Interlocked.MemoryBarrier();
                    if (Volatile.Read(ref _keysPerDatabaseVersion) == version) return copy;
                }
                spin.SpinOnce();
            }
        }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Interlocked.Increment(ref _keysPerDatabaseVersion);
            Volatile.Write(ref _keysPerDatabase, ((long, long)[])value.Clone());
            Interlocked.Increment(ref _keysPerDatabaseVersion);
            _keysPerDatabaseStore = null; // the next UpdateFrom compares every database again
        }
    }

    /// <summary>Keys in the store (copied from <see cref="KvStore.Count"/> by the owner).</summary>
    public long Keys { get; set; }

    /// <summary>Keys with an expiry (<see cref="KvStore.ExpiringCount"/>).</summary>
    public long ExpiringKeys { get; set; }

    /// <summary>Keys removed by expiry (<see cref="KvStore.ExpiredKeys"/>).</summary>
    public long ExpiredKeys { get; set; }

    /// <summary>Successful read lookups (<see cref="KvStore.KeyspaceHits"/>).</summary>
    public long KeyspaceHits { get; set; }

    /// <summary>Failed read lookups (<see cref="KvStore.KeyspaceMisses"/>).</summary>
    public long KeyspaceMisses { get; set; }

    /// <summary>Approximate dataset size in bytes (<see cref="KvStore.UsedBytes"/>).</summary>
    public long DatasetBytes { get; set; }

    private long _clientMemory;

    /// <summary>Client memory counted in used_memory (INFO mem_clients_normal): the sum of every connected client's
    /// CLIENT LIST <c>tot-mem</c> as each connection last reported it (<see cref="KvConnectionState.ReportMemory"/>, at the
    /// end of a batch, around a write, when a subscriber's queue moves), as Redis's clientsCron keeps
    /// stat_clients_type_memory; a closed connection's part is removed. Bytes.</summary>
    public long ClientMemoryBytes => Volatile.Read(ref _clientMemory);

    /// <summary>Adds a connection's change of memory (bytes, may be negative) to <see cref="ClientMemoryBytes"/>.</summary>
    public void OnClientMemoryChanged(long delta) => Interlocked.Add(ref _clientMemory, delta);

    /// <summary>INFO used_memory and what maxmemory is compared with: <see cref="DatasetBytes"/> + <see cref="ClientMemoryBytes"/>.</summary>
    public long UsedMemory => DatasetBytes + ClientMemoryBytes;

    /// <summary>Keys evicted by maxmemory (<see cref="KvStore.EvictedKeys"/>; INFO evicted_keys).</summary>
    public long EvictedKeys { get; set; }

    /// <summary>The store's last eviction attempt left memory over maxmemory with nothing to evict (<see cref="KvStore.OutOfMemory"/>):
    /// with an evicting policy, commands queued in MULTI are then refused with -OOM on the connection.</summary>
    public bool EvictionFailed { get; set; }

    /// <summary>Whether an AOF is loading.</summary>
    public bool Loading { get; set; }

    /// <summary>Connections blocked on a key (BLPOP...), INFO blocked_clients.</summary>
    public long BlockedClients { get; set; }

    /// <summary>Whether a background AOF rewrite is running.</summary>
    public bool AofRewriteInProgress { get; set; }

    private long _aofRewritesRaw, _aofRewritesBase;

    /// <summary>Rewrites completed since start (or CONFIG RESETSTAT); set to the owner's count since start.</summary>
    public long AofRewrites { get => Volatile.Read(ref _aofRewritesRaw) - _aofRewritesBase; set => Volatile.Write(ref _aofRewritesRaw, value); }

    /// <summary>Whether the last AOF write and fsync succeeded (INFO aof_last_write_status ok/err).</summary>
    public bool AofLastWriteOk { get; set; } = true;

    /// <summary>Why the last AOF write or fsync failed (strerror style, e.g. "No space left on device"); null when it succeeded.</summary>
    public string? AofLastWriteError { get; set; }

    /// <summary>Current AOF size in bytes.</summary>
    public long AofCurrentSize { get; set; }

    /// <summary>AOF size after the last rewrite or load, in bytes.</summary>
    public long AofBaseSize { get; set; }

    /// <summary>fsync calls performed.</summary>
    public long AofFsyncs { get; set; }

    /// <summary>appendfsync always: rounds whose sleep waited for their writers (hinted), hinted waits that ended at their
    /// limit, rounds that expected the other cohort (the overlap), and the overlap guard's probes and kept switches
    /// (INFO persistence's <c>aof_always_*</c> lines, Kv only: the durable row's schedule per benchmark run; session 36, h201).</summary>
    public long AofAlwaysHintedRounds { get; set; }

    /// <summary>See <see cref="AofAlwaysHintedRounds"/>.</summary>
    public long AofAlwaysHintMisses { get; set; }

    /// <summary>See <see cref="AofAlwaysHintedRounds"/>.</summary>
    public long AofAlwaysOverlapRounds { get; set; }

    /// <summary>See <see cref="AofAlwaysHintedRounds"/>.</summary>
    public long AofAlwaysGuardProbes { get; set; }

    /// <summary>See <see cref="AofAlwaysHintedRounds"/>.</summary>
    public long AofAlwaysGuardSwitches { get; set; }

    /// <summary>appendfsync always: the rounds that followed a hinted wait and hinted again, their own time (µs: from the
    /// wait's end to the next hint, the requests applied, written and fdatasynced), the round fdatasyncs' time (µs, on
    /// the store's domain) and the hinted waits' time (µs, from a hint to the next round: the clients' part; waits of at
    /// most 100 ms) (INFO persistence's <c>aof_always_timed_rounds</c>, <c>aof_always_round_us</c>, <c>aof_always_fsync_us</c>,
    /// <c>aof_always_timed_waits</c>, <c>aof_always_wait_us</c>, Kv only; session 39, h215, docs/rationale.md §212).</summary>
    public long AofAlwaysTimedRounds { get; set; }

    /// <summary>See <see cref="AofAlwaysTimedRounds"/>.</summary>
    public long AofAlwaysRoundMicros { get; set; }

    /// <summary>See <see cref="AofAlwaysTimedRounds"/>.</summary>
    public long AofAlwaysFsyncMicros { get; set; }

    /// <summary>See <see cref="AofAlwaysTimedRounds"/>.</summary>
    public long AofAlwaysWaitMicros { get; set; }

    /// <summary>The hinted waits <see cref="AofAlwaysWaitMicros"/> sums (those of at most 100 ms; a longer one is a pause of
    /// the clients) (INFO's <c>aof_always_timed_waits</c>).</summary>
    public long AofAlwaysTimedWaits { get; set; }

    private long _memoryPeak;

    /// <summary>Records a used_memory reading and returns the peak so far (INFO used_memory_peak).</summary>
    public long ObserveMemoryPeak(long used)
    {
        long peak = Volatile.Read(ref _memoryPeak);
        while (used > peak)
        {
            long seen = Interlocked.CompareExchange(ref _memoryPeak, used, peak);
            if (seen == peak) return used;
            peak = seen;
        }
        return peak;
    }

    /// <summary>Whether the last AOF rewrite succeeded (INFO aof_last_bgrewrite_status).</summary>
    public bool AofLastBgRewriteOk { get; set; } = true;

    /// <summary>LASTSAVE: start, then the end of the last successful AOF rewrite, Unix seconds (0: use the start time).</summary>
    public long LastSaveUnixSeconds { get; set; }

    /// <summary>A BGREWRITEAOF waits for the running rewrite to finish (INFO aof_rewrite_scheduled).</summary>
    public bool AofRewriteScheduled { get; set; }

    /// <summary>Write commands since the last save (INFO rdb_changes_since_last_save; the store's dirty counter).</summary>
    public long ChangesSinceLastSave { get; set; }

    /// <summary>Resets the store's counters if CONFIG RESETSTAT asked for it since the last call; call on the store owner
    /// before a round runs (so that the round's hits and misses count after the reset) and in <see cref="UpdateFrom"/>.</summary>
    public void ApplyStoreReset(KvStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (Interlocked.Exchange(ref _storeResetRequested, 0) == 1) store.ResetStats();
    }

    /// <summary>The databases the lowest bit set in <paramref name="bits"/> stands for (<see cref="KvKeyspaceTotals.DatabaseBit"/>:
    /// bit 63 for database 63 and every later one), as [first, end) within <paramref name="databases"/>.</summary>
    private static (int First, int End) DatabasesOfBit(ulong bits, int databases)
    {
        int bit = System.Numerics.BitOperations.TrailingZeroCount(bits);
        return (bit, bit == 63 ? databases : Math.Min(bit + 1, databases));
    }

    /// <summary>Copies the store's numbers; call on the store owner.</summary>
    public void UpdateFrom(KvStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        ApplyStoreReset(store);
        Keys = store.Count;
        var perDb = _keysPerDatabase; // only this method (the store owner) writes it
        if (perDb.Length != store.DatabaseCount)
        {
            KeysPerDatabase = new (long, long)[store.DatabaseCount];
            perDb = _keysPerDatabase;
        }
        // The walk over the databases only when a count may have moved since the last call on this store (issue 14: a
        // GET round, or a SET that overwrites, moves none).
        // Only the databases whose counts ever changed (a bit each; every one for a store not seen before): the others
        // still hold no key, as the array's fresh entries say (a ping-pong on database 0: one database, not 16).
        long version = store.KeyspaceCountsVersion;
        bool changed = false;
        ulong walked = 0;
        if (!ReferenceEquals(store, _keysPerDatabaseStore) || version != _keysPerDatabaseSeen)
        {
            walked = ReferenceEquals(store, _keysPerDatabaseStore) ? store.KeyspaceChangedDatabases : ulong.MaxValue;
            if (!ReferenceEquals(store, _keysPerDatabaseStore)) _keysPerDatabaseStore = store;
            _keysPerDatabaseSeen = version;
            // By the bits set (a SET of a new key on database 0: one database visited, not a test of each of 16; session 26).
            for (ulong bits = walked; bits != 0 && !changed; bits &= bits - 1)
            {
                (int first, int end) = DatabasesOfBit(bits, perDb.Length);
                for (int db = first; db < end && !changed; db++) changed = perDb[db] != (store.CountIn(db), store.ExpiringCountIn(db));
            }
        }
        if (changed)
        {
            // In place, under the sequence lock: a reader on another domain copies a whole, consistent set (the getter).
            Interlocked.Increment(ref _keysPerDatabaseVersion);
            for (ulong bits = walked; bits != 0; bits &= bits - 1)
            {
                (int first, int end) = DatabasesOfBit(bits, perDb.Length);
                for (int db = first; db < end; db++) perDb[db] = (store.CountIn(db), store.ExpiringCountIn(db));
            }
            Interlocked.Increment(ref _keysPerDatabaseVersion);
        }
        ExpiringKeys = store.ExpiringCount;
        ExpiredKeys = store.ExpiredKeys;
        KeyspaceHits = store.KeyspaceHits;
        KeyspaceMisses = store.KeyspaceMisses;
        DatasetBytes = store.UsedBytes;
        store.ObserveMemoryPeak();
        ChangesSinceLastSave = Math.Max(0, store.Dirty - RdbDirtyAtLastSave);
        EvictedKeys = store.EvictedKeys;
        EvictionFailed = store.OutOfMemory;
    }
}
