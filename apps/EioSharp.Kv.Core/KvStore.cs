using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>One key captured by <see cref="KvStore.CreateSnapshot"/>.</summary>
/// <param name="Db">The database number.</param>
/// <param name="Key">The key (shared with the store; never modified).</param>
/// <param name="Value">The value: a <c>byte[]</c> string (shared with the store, which does not modify it while the snapshot
/// is alive: for good after <see cref="KvStore.CreateSnapshot"/>, until disposed for a <see cref="KvSnapshotLease"/>) or a deep copy
/// of a <see cref="KvObject"/> that the store does not touch.</param>
/// <param name="ExpireAtUnixMs">Absolute expiry in Unix milliseconds, or -1 for none.</param>
public readonly record struct KvSnapshotEntry(int Db, byte[] Key, object Value, long ExpireAtUnixMs);

/// <summary>The per-connection state the store reads and changes: the selected database.</summary>
/// <remarks><b>Thread safety</b>: the store owner changes it while it executes a request of the connection; the
/// connection reads it only while it has no request in flight.</remarks>
public sealed partial class KvSession
{
    private volatile bool _closed;

    /// <summary>The selected database (SELECT); 0 by default.</summary>
    public int Db { get; set; }

    /// <summary>The connection's client id (CLIENT ID; CLIENT UNBLOCK finds blocked clients by it).</summary>
    public long ClientId { get; init; }

    /// <summary>The blocking command this connection waits on (BLPOP...), or null.</summary>
    public KvBlockedCommand? Blocked { get; internal set; }

    /// <summary>Set by a connection with an ordered push output (subscribed): the store calls it with true just before it
    /// writes the reply of this session's blocked command (served, timed out or unblocked), so that messages pushed from
    /// then on are queued after that reply; with false when a serve attempt wrote nothing after all. Called on the store
    /// owner; must be thread-safe.</summary>
    public Action<bool>? HoldPushes { get; set; }

    /// <summary>Set by the connection when its transaction was discarded without reaching the store (EXEC refused while
    /// a script is busy): the store drops the session's watches before its next request.</summary>
    public bool UnwatchAtNextRequest { get; set; }

    /// <summary>Blocking commands answer nil at once instead of blocking (set while EXEC runs a transaction, as in Redis).</summary>
    public bool NoBlock { get; set; }

    /// <summary>Set by the connection (any thread) when the client went away: a blocked command is not served for it.</summary>
    public bool Closed
    {
        get => _closed;
        set => _closed = value;
    }
}

/// <summary>Classes of keyspace events, with the letters of Redis's <c>notify-keyspace-events</c>.</summary>
[Flags]
public enum KvEventClass
{
    /// <summary>No class.</summary>
    None = 0,
    /// <summary>'g': generic commands (DEL, EXPIRE, RENAME...).</summary>
    Generic = 1 << 0,
    /// <summary>'$': string commands.</summary>
    String = 1 << 1,
    /// <summary>'l': list commands.</summary>
    List = 1 << 2,
    /// <summary>'s': set commands.</summary>
    Set = 1 << 3,
    /// <summary>'h': hash commands.</summary>
    Hash = 1 << 4,
    /// <summary>'z': sorted set commands.</summary>
    ZSet = 1 << 5,
    /// <summary>'x': a key expired.</summary>
    Expired = 1 << 6,
    /// <summary>'e': a key was evicted.</summary>
    Evicted = 1 << 7,
    /// <summary>'t': stream commands.</summary>
    Stream = 1 << 8,
    /// <summary>'m': a key was looked up and missed.</summary>
    KeyMiss = 1 << 9,
    /// <summary>'n': a key was created.</summary>
    New = 1 << 10,
}

/// <summary>Told about every change of the keyspace (WATCH, keyspace notifications, blocked clients, client tracking).</summary>
public interface IKvKeyspaceObserver
{
    /// <summary>A key of database <paramref name="db"/> was changed (written, deleted, expired, renamed...).</summary>
    /// <param name="db">The database number.</param>
    /// <param name="key">The key (valid only during the call).</param>
    /// <param name="eventClass">The event's class.</param>
    /// <param name="eventName">Redis's event name (<c>set</c>, <c>hset</c>, <c>del</c>, <c>expired</c>...).</param>
    void OnKeyChanged(int db, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName);

    /// <summary>A whole database was emptied or swapped (FLUSHDB, FLUSHALL, SWAPDB): every key in it changed.</summary>
    void OnDatabaseChanged(int db);
}

/// <summary>Thresholds for the compact encodings (Redis's <c>*-max-listpack-*</c> and <c>set-max-intset-entries</c>).</summary>
public sealed record KvEncodingLimits
{
    /// <summary>Redis's <c>hash-max-listpack-entries</c>: a hash with more fields becomes a hashtable.</summary>
    /// <remarks>512: redis-server 7.0's compiled default (config.c), which applies without a config file; the sample
    /// redis.conf sets 128.</remarks>
    public int HashMaxListpackEntries { get; init; } = 512;
    /// <summary>Redis's <c>hash-max-listpack-value</c>: a field or value longer than this (bytes) makes the hash a hashtable.</summary>
    public int HashMaxListpackValue { get; init; } = 64;
    /// <summary>Redis's <c>set-max-intset-entries</c>: a set of integers with more members becomes a hashtable.</summary>
    public int SetMaxIntsetEntries { get; init; } = 512;
    /// <summary>Redis's <c>zset-max-listpack-entries</c>.</summary>
    public int ZSetMaxListpackEntries { get; init; } = 128;
    /// <summary>Redis's <c>zset-max-listpack-value</c> (bytes).</summary>
    public int ZSetMaxListpackValue { get; init; } = 64;
    /// <summary>Redis's <c>list-max-listpack-size</c> (negative: a size class, -2 = 8 KB nodes).</summary>
    public int ListMaxListpackSize { get; init; } = -2;
    /// <summary>Redis's <c>list-compress-depth</c> (reported only).</summary>
    public int ListCompressDepth { get; init; }
    /// <summary>Redis's <c>stream-node-max-entries</c> (reported only).</summary>
    public int StreamNodeMaxEntries { get; init; } = 100;
    /// <summary>Redis's <c>stream-node-max-bytes</c> (reported only).</summary>
    public int StreamNodeMaxBytes { get; init; } = 4096;
}

/// <summary>The keyspace of the key-value server (every database) and the executor of its data commands.</summary>
/// <remarks>
/// Keys are binary-safe byte strings. A value is a string (<c>byte[]</c>) or a <see cref="KvObject"/> (list, set,
/// sorted set, hash, stream). Expiry times are absolute Unix milliseconds; a key whose expiry time is in the past is
/// removed when it is next accessed (lazy expiry) or sampled by <see cref="ActiveExpireCycle"/> (active expiry), like Redis.
/// <para><b>Databases</b>: <c>databases</c> numbered databases; each command runs against the database its
/// <see cref="KvSession"/> selected.</para>
/// <para><b>AOF</b>: <see cref="Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/> hands every command that
/// changed data to an <see cref="IAofSink"/>, preceded by <c>SELECT n</c> whenever the database differs from the
/// previous logged command's, rewritten so that replaying it later gives the same state: relative expiries become
/// absolute, random commands log their effect, failed and no-op commands are not logged. Keys removed by expiry are
/// not logged: the absolute expiry in the log removes them again on replay.</para>
/// <para><b>Thread safety</b>: none. One owner (fiber or thread) calls every member.</para>
/// </remarks>
public sealed partial class KvStore
{
    private const int ActiveExpireKeysPerLoop = 20; // Redis ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP
    private const int ActiveExpireAcceptableStalePercent = 10; // Redis ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE
    internal const int EntryOverheadBytes = 48; // rough per-key cost of the row, bucket and array header (KvDatabase), for INFO

    private KvDatabase[] _dbs;
    private readonly Random _random;
    private readonly KvSession _defaultSession = new();
    // The access clock (OBJECT IDLETIME, LRU and LFU, §219): Redis's LRU clock, the Unix seconds of the time a command
    // runs at (the nowUnixMs each command is executed with) modulo 2^24, kept in a field that Execute updates when the
    // time passed in changes; a touch reads the field (it read Environment.TickCount64, ~51 instructions a command).
    // Starts at the wall clock's, so keys loaded before the first command are not idle.
    private uint _accessClock = (uint)(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000);
    private long _accessClockMs = long.MinValue; // the nowUnixMs _accessClock was computed from
    private IAofSink? _aofSinkSeen; // the sink the last command was logged to
    private int _aofDb = -1; // the database the last logged command ran in (-1: unknown, SELECT before the next one)
    private int _expireCursor; // next database for the active expire cycle

    /// <summary>Creates an empty store.</summary>
    /// <param name="limits">Limits; <see cref="RespLimits.MaxBulkLength"/> caps values built by APPEND, SETRANGE and SETBIT. Null: defaults.</param>
    /// <param name="random">Random source for RANDOMKEY, SPOP and the like, and active expiry sampling; null: a new unseeded one.</param>
    /// <param name="databases">Number of databases (Redis's <c>databases</c>, 16 by default); at least 1.</param>
    /// <param name="encodings">Compact-encoding thresholds; null: Redis's defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="databases"/> is less than 1.</exception>
    public KvStore(RespLimits? limits = null, Random? random = null, int databases = 16, KvEncodingLimits? encodings = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(databases, 1);
        Limits = limits ?? RespLimits.Default;
        Encodings = encodings ?? new KvEncodingLimits();
        _random = random ?? new Random();
        _dbs = new KvDatabase[databases];
        for (int i = 0; i < databases; i++) _dbs[i] = new KvDatabase(i, _snapshotEpochs, _totals);
        var blockKeys = new BlockKeyComparer(); // one per store: it remembers the last key it hashed (KeyHashMemo)
        _blockedKeys = new(blockKeys);
        _idleWaiters = new(blockKeys);
        _readySet = new(blockKeys);
    }

    private readonly KvSnapshotEpochs _snapshotEpochs = new();
    private readonly KvKeyspaceTotals _totals = new(); // the databases' sums, kept as they change (issue 14)

    /// <summary>Changes as often as a database's key count or expiring-key count may have changed (or databases were
    /// swapped): while it stands still, <see cref="CountIn"/> and <see cref="ExpiringCountIn"/> of every database are
    /// what they were (the owner's statistics skip the per-database walk then).</summary>
    internal long KeyspaceCountsVersion => _totals.Changes;

    /// <summary>The databases whose counts ever changed (<see cref="KvKeyspaceTotals.ChangedDatabases"/>): a database
    /// whose bit is clear still has no key and no expiring key.</summary>
    internal ulong KeyspaceChangedDatabases => _totals.ChangedDatabases;

    /// <summary>The limits in force.</summary>
    public RespLimits Limits { get; }

    /// <summary>The compact-encoding thresholds in force (CONFIG SET may replace them).</summary>
    public KvEncodingLimits Encodings { get; set; }

    /// <summary>Told about every command a connection's batch ran (<see cref="ExecuteBatch(KvSession, ReadOnlySpan{KvCommand}, long, RespWriter, IAofSink)"/>):
    /// the session, the command, how long it took, and its error reply (null when none). For SLOWLOG and INFO commandstats.</summary>
    public Action<KvSession, KvCommand, TimeSpan, string?>? CommandObserver { get; set; }

    /// <summary>As <see cref="CommandObserver"/>, the server's INFO commandstats and SLOWLOG recorder called directly
    /// (no delegate; the client's address read only for a slow-log entry: §221); when set, the observer is not called.</summary>
    public KvCommandRecorder? CommandRecorder { get; set; }

    /// <summary>Told about every keyspace change; null: nobody listens.</summary>
    public IKvKeyspaceObserver? Observer { get; set; }

    /// <summary>Number of databases.</summary>
    public int DatabaseCount => _dbs.Length;

    /// <summary>Drops the growth slack of every collection in every database (listpacks, intsets and slot arrays
    /// shrink to their contents; docs/kv.md "Memory"), and what the store keeps for its next leased snapshot (the free
    /// string arrays of the copy-on-write, docs/rationale.md §129, and the spare rows and entries arrays) unless a leased
    /// snapshot ended less than the retention ago (<see cref="ReleaseStaleSnapshotSpares"/>: then the rewrites recur, and
    /// the next one reuses them). The server runs it when idle, before its compacting collection; O(keys). Contents,
    /// encodings and SCAN cursors are unchanged.</summary>
    /// <returns>Bytes released (approximately).</returns>
    public long TrimExcess()
    {
        long released = 0;
        foreach (KvDatabase db in _dbs) released += db.TrimExcess();
        return released + (_snapshotEpochs.RetainsSpares ? 0 : DropSnapshotSpares());
    }

    /// <summary>Drops what the store keeps for its next leased snapshot once none ran for the retention (60 s by default,
    /// EIOSHARP_KV_SNAPSHOT_SPARES_MS; issue 14, h197): the free copy-on-write arrays and the spare rows and entries
    /// arrays, so that a server whose rewrites stopped holds nothing extra. The server's cron calls it every tick; O(1)
    /// when there is nothing to drop.</summary>
    /// <returns>Bytes released (approximately); 0 while a snapshot runs or ended within the retention, or nothing is
    /// kept.</returns>
    public long ReleaseStaleSnapshotSpares() =>
        _snapshotEpochs.RetainsSpares || !_snapshotEpochs.HoldsSpares ? 0 : DropSnapshotSpares();

    /// <summary>Drops what the store keeps for its next leased snapshot now (MEMORY PURGE, the stale spares).</summary>
    /// <returns>Bytes released (approximately).</returns>
    internal long DropSnapshotSpares() =>
        _snapshotEpochs.CopyOnWrite.DropFree() + _snapshotEpochs.DropSpareRows() + _snapshotEpochs.DropSpareEntries();

    /// <summary>Number of keys in every database, including expired keys not yet removed.</summary>
    public int Count
        => (int)_totals.Keys;

    /// <summary>Number of keys with an expiry, in every database.</summary>
    public int ExpiringCount
        => (int)_totals.Expiring;

    /// <summary>Number of keys in database <paramref name="db"/> (DBSIZE).</summary>
    public int CountIn(int db) => _dbs[db].Count;

    /// <summary>Number of keys with an expiry in database <paramref name="db"/>.</summary>
    public int ExpiringCountIn(int db) => _dbs[db].Volatile.Count;

    /// <summary>Approximate memory held by keys and string values, in bytes (collections are estimated per key by MEMORY USAGE).</summary>
    public long UsedBytes
        => _totals.DataBytes + _totals.Keys * EntryOverheadBytes; // kept as the databases change: no walk (issue 14)

    /// <summary>Whether the owner's cron runs <see cref="ActiveExpireCycle"/> (DEBUG SET-ACTIVE-EXPIRE 0|1); true by default.</summary>
    public bool ActiveExpireEnabled { get; set; } = true;

    /// <summary>Keys removed because they expired (lazily or actively) since creation.</summary>
    public long ExpiredKeys { get; private set; }

    /// <summary>Successful key lookups by read commands.</summary>
    public long KeyspaceHits { get; private set; }

    /// <summary>Failed key lookups by read commands.</summary>
    public long KeyspaceMisses { get; private set; }

    /// <summary>CONFIG RESETSTAT, on the store owner: zeroes expired_keys, keyspace_hits, keyspace_misses and evicted_keys
    /// (Redis's resetServerStats).</summary>
    public void ResetStats()
    {
        ExpiredKeys = 0;
        KeyspaceHits = 0;
        KeyspaceMisses = 0;
        EvictedKeys = 0;
    }

    /// <summary>Changes made since creation (Redis's <c>dirty</c> counter, INFO rdb_changes_since_last_save).</summary>
    public long Dirty { get; private set; }

    /// <summary>Whether the command named <paramref name="name"/> modifies data (routing and durability).</summary>
    public static bool IsWriteCommand(ReadOnlySpan<byte> name) => KvCommandTable.IsWrite(name);

    private uint AccessClock => _accessClock;

    /// <summary>Sets the access clock to the seconds of <paramref name="nowUnixMs"/> (a compare when the time is the one
    /// the clock was last set from: every command of a request runs at its request's time).</summary>
    private void SetAccessClock(long nowUnixMs)
    {
        if (nowUnixMs == _accessClockMs) return;
        _accessClockMs = nowUnixMs;
        _accessClock = (uint)(nowUnixMs / 1000);
    }

    // ---------------------------------------------------------------- direct access (tests, loaders)

    /// <summary>Reads a string key of database 0 without touching statistics; expired keys are removed and reported missing.</summary>
    /// <returns>False when the key is missing or is not a string.</returns>
    public bool TryGetValue(ReadOnlySpan<byte> key, long nowUnixMs, out byte[] value)
    {
        KvEntry? e = Lookup(_dbs[0], key, nowUnixMs);
        value = e?.Value as byte[] ?? [];
        return e?.Value is byte[];
    }

    /// <summary>A key's absolute expiry in Unix ms (database 0); -1 when it has none, -2 when it does not exist.</summary>
    public long GetExpireAt(ReadOnlySpan<byte> key, long nowUnixMs)
    {
        KvEntry? e = Lookup(_dbs[0], key, nowUnixMs);
        return e is null ? -2 : e.ExpireAt;
    }

    /// <summary>Sets a string key of database 0 directly (no AOF); <paramref name="expireAtUnixMs"/> -1 for no expiry.</summary>
    public void SetValue(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expireAtUnixMs = -1)
    {
        KvDatabase db = _dbs[0];
        if (db.Lookup.TryGetValue(key, out KvEntry? e))
        {
            db.Replace(e, value.ToArray());
            db.SetExpire(e, expireAtUnixMs);
        }
        else
        {
            db.Add(key.ToArray(), value.ToArray(), expireAtUnixMs);
        }
    }

    /// <summary>Removes every key of every database.</summary>
    public void Clear()
    {
        foreach (KvDatabase db in _dbs) db.Clear();
    }

    /// <summary>Captures every live key, value and expiry of every database, in database order, for an AOF rewrite.</summary>
    /// <remarks>Cost: one pass over the keyspace; strings are shared (never modified in place afterwards: the keys whose
    /// arrays it took allocate a new array on their next write), other values are deep copies, so the snapshot stays
    /// valid while the store changes. A snapshot with an end (BGSAVE, the AOF rewrite) takes
    /// <see cref="CreateSnapshotLease"/> instead, so that those keys are overwritten in place again after it.</remarks>
    public KvSnapshotEntry[] CreateSnapshot(long nowUnixMs) => TakeSnapshot(nowUnixMs, epoch: 0, out _, out _).Array!;

    /// <summary>As <see cref="CreateSnapshot(long)"/>, but the long string arrays the snapshot shares with the store are
    /// only protected while the lease is alive: the store does not overwrite them in place until
    /// <see cref="KvSnapshotLease.Dispose"/> (call it when the last reader of the entries is done).</summary>
    /// <param name="nowUnixMs">The current time (expired keys are left out).</param>
    /// <returns>The lease holding the entries; dispose it once (more calls do nothing).</returns>
    /// <remarks>Call it on the store's owner, like every store method. A lease never disposed is as safe as
    /// <see cref="CreateSnapshot(long)"/> but keeps the keys it took (and every key a later lease takes) from being
    /// overwritten in place.</remarks>
    public KvSnapshotLease CreateSnapshotLease(long nowUnixMs)
    {
        KvSnapshotLease lease = _snapshotEpochs.Begin();
        try
        {
            lease.Entries = TakeSnapshot(nowUnixMs, lease.Id, out KvKeyedValue?[]? rows, out bool pooled);
            lease.PooledEntries = pooled;
            lease.Rows = rows;
            return lease;
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    /// <summary>Leased snapshots not disposed yet (tests, DEBUG).</summary>
    internal int LiveSnapshotLeases => _snapshotEpochs.LiveCount;

    /// <summary>The store's running leased snapshots and their totals (tests).</summary>
    internal KvSnapshotEpochs SnapshotEpochs => _snapshotEpochs;

    /// <summary>The string arrays writes left to running leased snapshots, recycled (tests, MEMORY MALLOC-STATS).</summary>
    internal KvCopyOnWriteArrays CopyOnWriteArrays => _snapshotEpochs.CopyOnWrite;

    // One pass over the rows of each database (KvDatabase.SnapshotInto: no KvEntry per key, h208; one reused handle per
    // database before) into an array of the final size (no list growth, no copy at the end): on the store's domain, so
    // its cost stalls every connection (issue 14, h106).
    // rows: for a leased snapshot, the row of each entry whose long string array it marked (null elsewhere; null when
    // none): where its writer may record that the array's bytes are incompressible (h140).
    // pooled: a leased snapshot's entries array, from the last one (KvSnapshotEpochs.RentEntries, h197) or new with room
    // (§207), given back when the lease ends; the snapshot is its first n entries (expired keys not removed yet shorten
    // it: no copy). CreateSnapshot's array is new and of the exact count.
    private ArraySegment<KvSnapshotEntry> TakeSnapshot(long nowUnixMs, int epoch, out KvKeyedValue?[]? rows, out bool pooled)
    {
        rows = null;
        KvSnapshotEntry? functions = FunctionsSnapshotEntry(); // the FUNCTION libraries (KvStore.Scripting.cs)
        int length = Count + (functions is null ? 0 : 1);
        pooled = epoch != 0 && length > 0;
        KvSnapshotEntry[] entries = pooled ? _snapshotEpochs.RentEntries(length) : new KvSnapshotEntry[length];
        int n = 0;
        if (functions is { } f) entries[n++] = f;
        foreach (KvDatabase db in _dbs) n = db.SnapshotInto(entries, n, epoch, nowUnixMs, ref rows); // by row (h208)
        if (!pooled && n < entries.Length) Array.Resize(ref entries, n); // expired keys not removed yet were left out
        return new ArraySegment<KvSnapshotEntry>(entries, 0, n);
    }

    /// <summary>Forgets which database the AOF is in, so the next logged command is preceded by SELECT (call when a
    /// rewrite starts, or the log is otherwise cut).</summary>
    public void ResetAofDatabase() => _aofDb = -1;

    // ---------------------------------------------------------------- execution

    /// <summary>Executes one data command against database 0 (or the database a previous SELECT through this overload chose).</summary>
    /// <inheritdoc cref="Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/>
    public void Execute(KvCommand command, long nowUnixMs, RespWriter reply, IAofSink? aof) =>
        Execute(_defaultSession, command, nowUnixMs, reply, aof);

    /// <summary>Executes one data command for a connection and writes its reply.</summary>
    /// <param name="session">The connection's state (its selected database; SELECT changes it).</param>
    /// <param name="command">The command; connection commands (PING, AUTH...) and unknown names get an error reply.</param>
    /// <param name="nowUnixMs">The current time in Unix milliseconds, used for expiry.</param>
    /// <param name="reply">Where the reply goes.</param>
    /// <param name="aof">Receives the command (rewritten) when it changed data; null: not logged.</param>
    public void Execute(KvSession session, KvCommand command, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(reply);
        SetAccessClock(nowUnixMs);
        if (session.ClientId != 0) TrackingSourceClientId = session.ClientId; // scripts run with a session of id 0: keep the caller
        KvCommandInfo? info = command.Info;
        if (info?.Handler is null && info?.Id == KvCommandId.Client && command.Count >= 2 && Is(command[1], "UNBLOCK"u8))
        {
            ClientUnblock(new Context(this, _dbs[0], session, command, nowUnixMs, reply, aof, "client"));
            return;
        }
        if (info?.Handler is null)
        {
            reply.WriteError(KvErrors.UnknownCommand(command));
            return;
        }
        if (!info.AcceptsArgumentCount(command.Count))
        {
            reply.WriteError(KvErrors.WrongArity(info.Name));
            return;
        }
        if ((uint)session.Db >= (uint)_dbs.Length) session.Db = 0;
        KvDatabase db = _dbs[session.Db];
        var ctx = new Context(this, db, session, command, nowUnixMs, reply, aof, info.Name);
        if (_depth > 0)
        {
            info.Handler(this, ctx); // a command run by another (EXEC, a script): its caller finishes the work below
            return;
        }
        if (_memory.MaxMemory > 0 && !_reloading && RefuseForMemory(info, ctx)) return;
        if (WritesDeniedError is not null && RefuseForDiskError(info, ctx)) return; // KvStore.Memory.cs // maxmemory (KvStore.Memory.cs)
        _depth++;
        try
        {
            info.Handler(this, ctx);
        }
        finally
        {
            _depth--;
        }
        if (_readyKeys.Count > 0) HandleReadyKeys(nowUnixMs, aof);
        if (db.MayNeedCompaction) db.MaybeCompact(); // a test of two fields inline; the call only when it may act (§221)
    }

    /// <summary>Executes <paramref name="commands"/> in order, writing their replies in order into <paramref name="reply"/>.</summary>
    public void ExecuteBatch(ReadOnlySpan<KvCommand> commands, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        foreach (KvCommand command in commands) Execute(_defaultSession, command, nowUnixMs, reply, aof);
    }

    /// <summary>Executes <paramref name="commands"/> of one connection in order, writing their replies in order into
    /// <paramref name="reply"/>, and stops after a command that blocked (BLPOP with nothing to pop).</summary>
    /// <returns>The number of commands executed; less than the count when the session is now <see cref="KvSession.Blocked"/>:
    /// the rest run after <see cref="TakeUnblocked()"/> returns the session.</returns>
    public int ExecuteBatch(KvSession session, ReadOnlySpan<KvCommand> commands, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        long clock = 0;
        return ExecuteBatch(session, commands, nowUnixMs, reply, aof, ref clock);
    }

    /// <summary>As <see cref="ExecuteBatch(KvSession, ReadOnlySpan{KvCommand}, long, RespWriter, IAofSink)"/>, with
    /// the clock of <see cref="CommandObserver"/> carried from one call to the next: a command's time starts at the
    /// reading that ended the previous one, so a run of commands reads the clock once per command, not twice (§217).</summary>
    /// <param name="session">The connection's state.</param>
    /// <param name="commands">The commands, run in order.</param>
    /// <param name="nowUnixMs">The time, Unix milliseconds.</param>
    /// <param name="reply">Where the replies go, in order.</param>
    /// <param name="aof">Where the writes are logged, or null.</param>
    /// <param name="clock">In: the <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> reading at which the first
    /// command's time starts, or 0 to read it here (the caller did something else since its last call: that is not
    /// counted); out: the reading at the end of the last command run (0 without an observer or a recorder). Only read and written
    /// while <see cref="CommandRecorder"/> or <see cref="CommandObserver"/> is set.</param>
    /// <returns>As the overload without <paramref name="clock"/>.</returns>
    public int ExecuteBatch(KvSession session, ReadOnlySpan<KvCommand> commands, long nowUnixMs, RespWriter reply, IAofSink? aof, ref long clock)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.UnwatchAtNextRequest)
        {
            session.UnwatchAtNextRequest = false;
            Unwatch(session);
        }
        for (int i = 0; i < commands.Length; i++)
        {
            KvCommandRecorder? recorder = CommandRecorder;
            Action<KvSession, KvCommand, TimeSpan, string?>? observer = recorder is null ? CommandObserver : null;
            if (recorder is not null || observer is not null)
            {
                long start = clock != 0 ? clock : System.Diagnostics.Stopwatch.GetTimestamp();
                long errors = reply.ErrorCount;
                Execute(session, commands[i], nowUnixMs, reply, aof);
                long end = System.Diagnostics.Stopwatch.GetTimestamp();
                string? error = reply.ErrorCount != errors ? reply.LastError : null;
                if (recorder is not null) recorder.Record(session, commands[i], start, end, error);
                else observer!(session, commands[i], System.Diagnostics.Stopwatch.GetElapsedTime(start, end), error);
                clock = end; // the recorder's own work is counted in the next command's time (~0.1 us; Redis's call() leaves it out)
            }
            else
            {
                Execute(session, commands[i], nowUnixMs, reply, aof);
            }
            if (session.Blocked is not null) return i + 1;
        }
        return commands.Length;
    }

    /// <summary>Executes <paramref name="commands"/> in order, writing their replies in order into <paramref name="reply"/>.</summary>
    public void ExecuteBatch(IEnumerable<KvCommand> commands, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        ArgumentNullException.ThrowIfNull(commands);
        foreach (KvCommand command in commands) Execute(_defaultSession, command, nowUnixMs, reply, aof);
    }

    /// <summary>Removes expired keys by sampling keys that have an expiry, like Redis's active expire cycle.</summary>
    /// <param name="nowUnixMs">The current time in Unix milliseconds.</param>
    /// <param name="budget">Most keys to sample in this call, over all databases; bounds the time spent. Zero or negative: nothing.</param>
    /// <returns>The number of keys removed.</returns>
    /// <remarks>Visits the databases round robin; samples 20 keys at a time and goes on in a database while more than
    /// 10% of a sample had expired.</remarks>
    public int ActiveExpireCycle(long nowUnixMs, int budget = 200)
    {
        int removed = 0, sampled = 0;
        for (int visited = 0; visited < _dbs.Length && sampled < budget; visited++)
        {
            KvDatabase db = _dbs[_expireCursor];
            _expireCursor = (_expireCursor + 1) % _dbs.Length;
            while (db.Volatile.Count > 0 && sampled < budget)
            {
                int loop = Math.Min(Math.Min(ActiveExpireKeysPerLoop, db.Volatile.Count), budget - sampled);
                int expired = 0;
                for (int i = 0; i < loop && db.Volatile.Count > 0; i++)
                {
                    KvEntry e = db.Volatile[_random.Next(db.Volatile.Count)];
                    sampled++;
                    if (IsExpired(e, nowUnixMs))
                    {
                        ExpireNow(db, e);
                        expired++;
                    }
                }
                removed += expired;
                if (expired * 100 <= loop * ActiveExpireAcceptableStalePercent) break;
            }
            db.MaybeCompact();
        }
        return removed;
    }

    // ---------------------------------------------------------------- keyspace primitives

    internal KvDatabase Database(int index) => _dbs[index];

    internal static bool IsExpired(KvEntry e, long now) => e.ExpireAt >= 0 && now > e.ExpireAt;

    /// <summary>Whether the key in <paramref name="row"/> (a row that holds a key) has not expired at <paramref name="now"/>.</summary>
    internal static bool IsLiveRow(KvDatabase db, int row, long now)
    {
        long expireAt = db.ExpireAtOf(row);
        return expireAt < 0 || now <= expireAt;
    }

    private void ExpireNow(KvDatabase db, KvEntry e)
    {
        db.Remove(e);
        ExpiredKeys++;
        Observer?.OnKeyChanged(db.Index, e.Key, KvEventClass.Expired, "expired");
        OnExpiredForPubSub(db.Index, e.Key); // KvStore.Transactions.cs
    }

    internal KvEntry? Lookup(KvDatabase db, ReadOnlySpan<byte> key, long now)
    {
        if (!db.Lookup.TryGetValue(key, out KvEntry? e)) return null;
        if (IsExpired(e, now))
        {
            ExpireNow(db, e);
            return null;
        }
        return e;
    }

    /// <summary>Finds a live key for a write (no hit/miss statistics) and records the access, as Redis's lookupKeyWrite
    /// (a write updates the key's LRU clock / LFU counter: a key only ever written is not the first evicted under
    /// allkeys-lru/lfu). A lookup that is no access in Redis (dictFind: MEMORY USAGE, DEL) uses
    /// <see cref="Lookup(KvDatabase, ReadOnlySpan{byte}, long)"/>; one with statistics and no access record
    /// (LOOKUP_NOTOUCH: OBJECT, TTL, EXISTS, TYPE, EXPIRETIME) <see cref="LookupNoTouch"/>.</summary>
    internal KvEntry? Lookup(in Context ctx, ReadOnlySpan<byte> key)
    {
        KvEntry? e = Lookup(ctx.Db, key, ctx.Now);
        if (e is not null) Touch(e);
        return e;
    }

    /// <summary>Redis's lookupKeyReadWithFlags(..., LOOKUP_NOTOUCH): counts a hit or a miss (the keymiss event only when
    /// <paramref name="notifyMiss"/>: OBJECT also passes LOOKUP_NONOTIFY) and records no access. Expires the key as
    /// <see cref="Lookup(in Context, ReadOnlySpan{byte})"/> does.</summary>
    internal KvEntry? LookupNoTouch(in Context ctx, ReadOnlySpan<byte> key, bool notifyMiss)
    {
        KvEntry? e = Lookup(ctx.Db, key, ctx.Now);
        if (e is null) CountMiss(ctx, key, notifyMiss);
        else KeyspaceHits++;
        return e;
    }

    /// <summary>A read's miss: keyspace_misses and, when <paramref name="notify"/>, the keymiss event ('m').</summary>
    internal void CountMiss(in Context ctx, ReadOnlySpan<byte> key, bool notify = true)
    {
        KeyspaceMisses++;
        if (notify) _pubSub?.NotifyKeyspaceEvent(KvNotifyFlags.KeyMiss, "keymiss", key, ctx.Db.Index); // 'm' (KvStore.Transactions.cs)
    }

    /// <summary>Records an access to the live key at <paramref name="row"/> by its row (no <see cref="KvEntry"/> per
    /// request, issue 14; the row's access word read and written once, §219): a by-row path's lookupKeyRead/Write.</summary>
    internal void TouchRow(KvDatabase db, int row) => db.SetLru(row, TouchedLru(db.LruAt(row)));

    /// <summary>The type of a live key, or null when there is none: as <c>Lookup(ctx, key)?.Type</c> (an expired key is
    /// removed the same way), without a handle per call (the blocking pops check their keys' types on every try).</summary>
    internal KvType? LiveType(in Context ctx, ReadOnlySpan<byte> key) => LiveType(ctx, key, touch: false);

    /// <summary>As <see cref="LiveType(in Context, ReadOnlySpan{byte})"/>; with <paramref name="touch"/>, a live key's
    /// access is recorded by row (<see cref="TouchRow"/>): Redis's lookupKeyWrite in the blocking pops' first try
    /// (blockingPopGenericCommand, blockingGenericZpopCommand, blmoveGenericCommand), also on a key of the wrong type.</summary>
    internal KvType? LiveType(in Context ctx, ReadOnlySpan<byte> key, bool touch)
    {
        KvDatabase db = ctx.Db;
        int row = db.RowOf(key);
        if (row < 0) return null;
        long expireAt = db.ExpireAtOf(row);
        if (expireAt >= 0 && ctx.Now > expireAt)
        {
            Lookup(db, key, ctx.Now); // expires it (notifications) as Lookup does
            return null;
        }
        if (touch) TouchRow(db, row);
        return db.ItemAt(row) is KvKeyedValue { Value: KvObject o } ? o.Type : KvType.String;
    }

    /// <summary>Finds a live key for a read: counts a hit or miss and records the access.</summary>
    internal KvEntry? LookupRead(in Context ctx, ReadOnlySpan<byte> key)
    {
        KvEntry? e = Lookup(ctx.Db, key, ctx.Now);
        if (e is null)
        {
            CountMiss(ctx, key);
        }
        else
        {
            KeyspaceHits++;
            Touch(e);
        }
        return e;
    }

    /// <summary>Records an access (OBJECT IDLETIME, OBJECT FREQ).</summary>
    internal void Touch(KvEntry e) => e.Lru = TouchedLru(e.Lru);

    // A key's access clock and LFU counter after an access, from the word before it (KvEntry.Lru, one read and one write
    // a touch, §219). Under an LFU policy, Redis's updateLFU: the counter decayed by the minutes since the last access,
    // then the logarithmic increment (the more hits, the less likely another one; lfu-log-factor; KvStore.Memory.cs).
    // Under any other policy the counter is not read, decayed or incremented (no random draw: Redis's lookupKey sets only
    // the LRU clock then), and only the clock moves; a counter kept from before a switch to an LFU policy decays from
    // that access on.
    private uint TouchedLru(uint lru)
    {
        uint now = AccessClock;
        if (!LfuPolicy) return (now & KvDatabase.ClockMask) | (lru & ~KvDatabase.ClockMask);
        int counter = LfuDecrAndReturn((byte)(lru >> 24), lru, now);
        return (now & KvDatabase.ClockMask) | ((uint)LfuLogIncr(counter) << 24);
    }

    /// <summary>Idle seconds of a key (OBJECT IDLETIME).</summary>
    internal long IdleSeconds(KvEntry e) => (AccessClock - e.AccessClock) & KvDatabase.ClockMask; // modulo 2^24 like Redis's LRU clock

    /// <summary>Finds a key that must hold a <typeparamref name="T"/>; writes WRONGTYPE and returns false when it holds another type.</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="key">The key.</param>
    /// <param name="read">True for a read (hit/miss statistics).</param>
    /// <param name="entry">The entry, or null when the key does not exist.</param>
    /// <param name="value">The value, or null when the key does not exist.</param>
    internal bool TryLookup<T>(in Context ctx, ReadOnlySpan<byte> key, bool read, out KvEntry? entry, out T? value) where T : KvObject
    {
        entry = read ? LookupRead(ctx, key) : Lookup(ctx, key);
        if (entry is null)
        {
            value = null;
            return true;
        }
        value = entry.Value as T;
        if (value is null)
        {
            entry = null;
            ctx.Reply.WriteError(KvErrors.WrongType);
            return false;
        }
        return true;
    }

    /// <summary>The live <typeparamref name="T"/> at <paramref name="key"/>, found by its row without a <see cref="KvEntry"/>
    /// handle (a lookup's handle was one ~56 B object per LPUSH, SADD, HSET, ZADD, ...); a read counts the hit, and a read or
    /// a write records the access by row (<see cref="TouchRow"/>) as <see cref="LookupRead"/> and
    /// <see cref="Lookup(in Context, ReadOnlySpan{byte})"/> do. False, with nothing counted,
    /// when the key is missing, expired or of another type: the caller then takes the general path
    /// (<see cref="TryLookup{T}"/>), which expires the key
    /// (notifications, expired count), counts the miss (keymiss event) or replies WRONGTYPE.</summary>
    internal bool TryFindLive<T>(in Context ctx, ReadOnlySpan<byte> key, bool read, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? value) where T : KvObject
    {
        KvDatabase db = ctx.Db;
        int row = db.RowOf(key);
        long expireAt;
        if (row >= 0 && ((expireAt = db.ExpireAtOf(row)) < 0 || ctx.Now <= expireAt) && db.ItemAt(row) is KvKeyedValue { Value: T found })
        {
            if (read) KeyspaceHits++;
            TouchRow(db, row); // a read's access and a write's (lookupKeyWrite) alike
            value = found;
            return true;
        }
        value = null;
        return false;
    }

    /// <summary><see cref="LiveType(in Context, ReadOnlySpan{byte})"/> and <see cref="TryFindLive{T}"/> of a write in one
    /// lookup, for the blocked pops' serve: the live list at <paramref name="key"/> with its access recorded (by row, as
    /// <see cref="TryFindLive{T}"/>); false, with nothing recorded, when the key is missing or holds another type; an
    /// expired key is removed first, as <see cref="LiveType(in Context, ReadOnlySpan{byte})"/> removes it.</summary>
    internal bool TryFindLiveList(in Context ctx, ReadOnlySpan<byte> key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KvList? list)
    {
        KvDatabase db = ctx.Db;
        int row = db.RowOf(key);
        list = null;
        if (row < 0) return false;
        long expireAt = db.ExpireAtOf(row);
        if (expireAt >= 0 && ctx.Now > expireAt)
        {
            Lookup(db, key, ctx.Now); // expires it (notifications) as LiveType does
            return false;
        }
        if (db.ItemAt(row) is not KvKeyedValue { Value: KvList found }) return false;
        TouchRow(db, row); // a write's access (lookupKeyWrite), as TryFindLive records it
        list = found;
        return true;
    }

    /// <summary><see cref="TryLookup{T}"/> for a caller that
    /// needs only the value: a live key of the right type is found by row (<see cref="TryFindLive{T}"/>, no handle);
    /// anything else takes the general path (expiry, miss count, WRONGTYPE unchanged).</summary>
    /// <returns>False when the key holds another type (WRONGTYPE written); true otherwise, <paramref name="value"/>
    /// null when the key does not exist.</returns>
    internal bool TryLookupValue<T>(in Context ctx, ReadOnlySpan<byte> key, bool read, out T? value) where T : KvObject =>
        TryFindLive(ctx, key, read, out value) || TryLookup(ctx, key, read, out _, out value);

    /// <summary>The row of the live key <paramref name="key"/>, found without a <see cref="KvEntry"/> handle; a read counts
    /// the hit, and a read or a write records the access by row (<see cref="TouchRow"/>), as
    /// <see cref="LookupRead"/> and <see cref="Lookup(in Context, ReadOnlySpan{byte})"/> do for a live key of any type. -1, with nothing counted, when the key is missing or expired: the caller then takes the general
    /// path (<see cref="Lookup(in Context, ReadOnlySpan{byte})"/> or <see cref="LookupRead"/>), which removes an expired
    /// key (notifications, expired count) and counts a read's miss (keymiss event).</summary>
    internal int LiveRow(in Context ctx, ReadOnlySpan<byte> key, bool read)
    {
        KvDatabase db = ctx.Db;
        int row = RowOfKey(ctx, key);
        long expireAt;
        if (row < 0 || ((expireAt = db.ExpireAtOf(row)) >= 0 && ctx.Now > expireAt)) return -1;
        if (read) KeyspaceHits++;
        TouchRow(db, row); // a read's access and a write's (lookupKeyWrite) alike
        return row;
    }

    /// <summary>The row of <paramref name="key"/> in the command's database (<see cref="KvDatabase.RowOf(ReadOnlySpan{byte})"/>),
    /// hashed once per command: when the key is the command's argument 1 and the batch's prefetch hashed it
    /// (<see cref="PrefetchKeys"/>), that hash is taken (§221).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static int RowOfKey(in Context ctx, ReadOnlySpan<byte> key) =>
        ctx.Command.TryGetKeyHash(key, out int hash) ? ctx.Db.RowOf(key, hash) : ctx.Db.RowOf(key);

    /// <summary><see cref="TryLookupString"/> for a caller that only reads the string within the command (no handle,
    /// no reference to the value kept): a live key by row (<see cref="LiveRow"/>), its bytes in place (a packed value in
    /// its page, a long one in its own array); a missing or expired key takes the general lookup (expiry, miss count,
    /// keymiss event), which then finds nothing. A key of another type: WRONGTYPE after the hit a read counts, as the
    /// general path.</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="key">The key.</param>
    /// <param name="read">True for a read (hit/miss statistics, access record).</param>
    /// <param name="exists">True when the key holds a string (<paramref name="value"/> is its bytes, valid until the
    /// key is next written).</param>
    /// <param name="value">The string's bytes when <paramref name="exists"/>; empty otherwise.</param>
    /// <returns>False when the key holds another type (WRONGTYPE written).</returns>
    internal bool TryReadString(in Context ctx, ReadOnlySpan<byte> key, bool read, out bool exists, out ReadOnlySpan<byte> value)
    {
        KvDatabase db = ctx.Db;
        int row = LiveRow(ctx, key, read);
        if (row < 0)
        {
            if (read) LookupRead(ctx, key);
            else Lookup(ctx, key);
            exists = false;
            value = default;
            return true;
        }
        object item = db.ItemAt(row);
        if (item is KvKeyedValue kv)
        {
            if (kv.Value is not byte[] s)
            {
                ctx.Reply.WriteError(KvErrors.WrongType);
                exists = false;
                value = default;
                return false;
            }
            value = s;
        }
        else
        {
            value = KvDatabase.PackedValue((byte[])item, db.PosAt(row));
        }
        exists = true;
        return true;
    }

    /// <summary>Finds a key that must hold a string; writes WRONGTYPE and returns false when it holds another type.</summary>
    internal bool TryLookupString(in Context ctx, ReadOnlySpan<byte> key, bool read, out KvEntry? entry)
    {
        entry = read ? LookupRead(ctx, key) : Lookup(ctx, key);
        if (entry is null || entry.IsString) return true;
        entry = null;
        ctx.Reply.WriteError(KvErrors.WrongType);
        return false;
    }

    /// <summary>Adds a new key (it must not exist as a live key) holding <paramref name="value"/>.</summary>
    internal KvEntry AddKey(in Context ctx, ReadOnlySpan<byte> key, object value, long expireAt = -1) => AddKey(ctx.Db, key, value, expireAt);

    internal KvEntry AddKey(KvDatabase db, ReadOnlySpan<byte> key, object value, long expireAt = -1)
    {
        if (db.Lookup.TryGetValue(key, out KvEntry? stale)) db.Remove(stale); // an expired entry nobody removed yet
        return OnKeyAdded(db, key, db.Add(key, value, expireAt));
    }

    /// <summary>Adds a new key (it must not exist as a live key) holding a new, empty list, as
    /// <c>AddKey(ctx, key, new KvList())</c> without a handle: the holder of the list this key held last, when it was
    /// emptied by a command a moment ago (<see cref="KvDatabase.TakeSpareList"/>), is reused.</summary>
    /// <returns>The key's list.</returns>
    internal KvList AddListKey(in Context ctx, ReadOnlySpan<byte> key)
    {
        KvDatabase db = ctx.Db;
        int stale = db.RowOf(key);
        if (stale >= 0) db.RemoveRow(stale); // an expired entry nobody removed yet (as AddKey)
        KvList list;
        int row;
        if (db.TakeSpareList(key) is { } kept)
        {
            list = (KvList)kept.Value;
            row = db.AddKeptRow(key, kept, -1);
        }
        else
        {
            list = new KvList();
            row = db.AddRow(key, list, -1);
        }
        // As OnKeyAdded: notification 'new'; the access clock and Redis's LFU_INIT_VAL (5) as the counter.
        _pubSub?.NotifyKeyspaceEvent(KvNotifyFlags.New, "new", key, db.Index); // 'n' (KvStore.Transactions.cs)
        db.SetLru(row, (AccessClock & KvDatabase.ClockMask) | (5u << 24));
        return list;
    }

    // A key was just added: notification 'new', access clock and LFU counter.
    private KvEntry OnKeyAdded(KvDatabase db, ReadOnlySpan<byte> key, KvEntry e)
    {
        _pubSub?.NotifyKeyspaceEvent(KvNotifyFlags.New, "new", key, db.Index); // 'n' (KvStore.Transactions.cs)
        e.AccessClock = AccessClock;
        e.Frequency = 5; // Redis's LFU_INIT_VAL
        return e;
    }

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/> whatever it held (SET semantics).</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="key">The key.</param>
    /// <param name="existing">The live entry for the key, or null when there is none.</param>
    /// <param name="value">The new value.</param>
    /// <param name="expireAt">The new expiry (-1: none), unless <paramref name="keepTtl"/>.</param>
    /// <param name="keepTtl">Keep the key's current expiry.</param>
    internal KvEntry SetKey(in Context ctx, ReadOnlySpan<byte> key, KvEntry? existing, object value, long expireAt, bool keepTtl)
    {
        if (existing is null) return AddKey(ctx, key, value, expireAt);
        ctx.Db.Replace(existing, value);
        if (!keepTtl) ctx.Db.SetExpire(existing, expireAt);
        return existing;
    }

    /// <summary>Removes a key.</summary>
    internal void DeleteKey(in Context ctx, KvEntry e) => ctx.Db.Remove(e);

    /// <summary>Removes the key when its collection has no elements left (Redis never keeps an empty collection);
    /// notifies <c>del</c> when it does.</summary>
    /// <returns>True when the key was removed.</returns>
    /// <summary><see cref="DeleteIfEmpty(in Context, KvEntry)"/> for a caller that found <paramref name="value"/> (the live
    /// value at <paramref name="key"/>) without a handle: the key is looked up again only when it must go.</summary>
    internal bool DeleteIfEmpty(in Context ctx, ReadOnlySpan<byte> key, KvObject value)
    {
        if (value.Length > 0 || value.Type == KvType.Stream) return false;
        KvDatabase db = ctx.Db;
        int row = db.RowOf(key);
        if (row >= 0 && db.ItemAt(row) is KvKeyedValue kv && ReferenceEquals(kv.Value, value))
        {
            // By row: no handle; an emptied list's holder is kept for the key's next list (KvDatabase.RemoveEmptiedRow).
            db.RemoveEmptiedRow(row);
            Changed(ctx, key, KvEventClass.Generic, "del");
            return true;
        }
        return db.Lookup.TryGetValue(key, out KvEntry? e) && DeleteIfEmpty(ctx, e);
    }

    internal bool DeleteIfEmpty(in Context ctx, KvEntry e)
    {
        if (e.Value is not KvObject o || o.Length > 0 || o.Type == KvType.Stream) return false; // Redis keeps empty streams
        ctx.Db.Remove(e);
        Changed(ctx, e.Key, KvEventClass.Generic, "del");
        return true;
    }

    /// <summary>Reports that a command changed <paramref name="key"/>: counts a change (dirty) and tells the
    /// <see cref="Observer"/> (WATCH, keyspace notifications, blocked clients). Every write calls it once per key it changed.</summary>
    /// <remarks>Every hook is tested inline before its call (§221): a write nobody waits on, watches, listens to or
    /// tracks (the SET and GET rows) pays a field test for each instead of a call that returns at once.</remarks>
    internal void Changed(in Context ctx, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName)
    {
        Dirty++;
        if (eventClass != KvEventClass.String) ctx.Db.Reaccount(key); // a collection changed in place (used memory)
        if (_blockedKeys.Count != 0) SignalReady(ctx.Db.Index, key);
        Observer?.OnKeyChanged(ctx.Db.Index, key, eventClass, eventName);
        OnChangedForTransactionsAndPubSub(ctx.Db.Index, key, eventClass, eventName); // WATCH, notifications
    }

    /// <summary>Reports that a command changed key <paramref name="key"/> of another database (MOVE, COPY DB).</summary>
    internal void Changed(int db, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName)
    {
        Dirty++;
        if (eventClass != KvEventClass.String) _dbs[db].Reaccount(key);
        if (_blockedKeys.Count != 0) SignalReady(db, key);
        Observer?.OnKeyChanged(db, key, eventClass, eventName);
        OnChangedForTransactionsAndPubSub(db, key, eventClass, eventName); // WATCH, notifications
    }

    /// <summary>Reports that a whole database changed (FLUSHDB, FLUSHALL, SWAPDB).</summary>
    internal void DatabaseChanged(int db)
    {
        Dirty++;
        foreach (BlockKey k in _blockedKeys.Keys) // SWAPDB can bring data to waiters
        {
            if (k.Db == db && _readySet.Add(k)) _readyKeys.Add(k);
        }
        Observer?.OnDatabaseChanged(db);
    }

    private readonly KvCommandBuilder _logBuilder = new(encoded: true); // its commands go to the AOF: laid out as their encoding

    /// <summary>The store's reused builder for a command it logs as an effect (started empty): build, then pass the
    /// command to <see cref="Context.Log(KvCommand)"/> at once (the AOF sinks encode or copy it).</summary>
    internal KvCommandBuilder LogBuilder() => _logBuilder.Start();

    // SELECT 0..15 as logged before a command of another database, built once (read only, like s_multi): a script logs
    // into its effect capture, a sink of its own, so every EVAL/EVALSHA that writes starts with a SELECT; building it
    // per call cost a command, its offsets and three byte arrays (~200 B) per script run.
    private static readonly KvCommand[] s_selectCommands =
        [.. Enumerable.Range(0, 16).Select(db => KvCommand.Create("SELECT"u8.ToArray(), Bytes(db)))];

    /// <summary>The <c>SELECT db</c> command to log (shared and read only for databases 0-15, built for others).</summary>
    internal static KvCommand SelectCommand(int db) =>
        (uint)db < (uint)s_selectCommands.Length ? s_selectCommands[db] : KvCommand.Create("SELECT"u8.ToArray(), Bytes(db));

    /// <summary>Logs <paramref name="command"/> to the AOF as executed in <paramref name="db"/>, preceded by SELECT when needed.</summary>
    internal void Log(IAofSink? aof, int db, KvCommand command)
    {
        if (aof is null) return;
        if (!ReferenceEquals(aof, _aofSinkSeen))
        {
            _aofSinkSeen = aof;
            _aofDb = -1;
        }
        if (db != _aofDb && db >= 0)
        {
            aof.Append(SelectCommand(db));
            _aofDb = db;
        }
        aof.Append(command);
    }

    /// <summary>What a command handler gets: the store, the database, the connection, the command and where to reply.</summary>
    internal readonly struct Context(KvStore store, KvDatabase db, KvSession session, KvCommand command, long now, RespWriter reply, IAofSink? aof, string name)
    {
        public readonly KvStore Store = store;
        public readonly KvDatabase Db = db;
        public readonly KvSession Session = session;
        public readonly KvCommand Command = command;
        public readonly long Now = now;
        public readonly RespWriter Reply = reply;
        public readonly IAofSink? Aof = aof;
        public readonly string Name = name;

        public ReadOnlySpan<byte> this[int index] => Command[index];

        public int Count => Command.Count;

        /// <summary>Logs a command (the effect of this one) to the AOF in this command's database.</summary>
        public void Log(KvCommand logged) => Store.Log(Aof, Db.Index, logged);

        /// <summary>Logs this command as it is.</summary>
        public void LogSelf() => Store.Log(Aof, Db.Index, Command);

        /// <summary>Logs a command built from <paramref name="arguments"/>, when there is an AOF (no allocation otherwise).</summary>
        public void Log(params ReadOnlySpan<byte[]> arguments)
        {
            if (Aof is not null) Store.Log(Aof, Db.Index, KvCommand.Create(arguments));
        }
    }

    private static bool TryGetInt64(in Context ctx, int index, out long value)
    {
        if (RespNumbers.TryParseInt64(ctx[index], out value)) return true;
        ctx.Reply.WriteError(KvErrors.NotInteger);
        return false;
    }

    internal static byte[] Bytes(string s) => Encoding.ASCII.GetBytes(s);

    internal static byte[] Bytes(long v) => Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));
}
