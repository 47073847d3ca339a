using System.Collections.Frozen;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Redis's <c>maxmemory-policy</c> values.</summary>
public enum KvEvictionPolicy
{
    /// <summary><c>noeviction</c>: over the limit, commands that may add memory get <c>-OOM</c>.</summary>
    NoEviction,
    /// <summary><c>allkeys-lru</c>: evict the least recently used keys (approximated by sampling).</summary>
    AllKeysLru,
    /// <summary><c>allkeys-lfu</c>: evict the least frequently used keys (approximated).</summary>
    AllKeysLfu,
    /// <summary><c>allkeys-random</c>: evict random keys.</summary>
    AllKeysRandom,
    /// <summary><c>volatile-lru</c>: evict the least recently used keys among those with an expiry.</summary>
    VolatileLru,
    /// <summary><c>volatile-lfu</c>: evict the least frequently used keys among those with an expiry.</summary>
    VolatileLfu,
    /// <summary><c>volatile-random</c>: evict random keys among those with an expiry.</summary>
    VolatileRandom,
    /// <summary><c>volatile-ttl</c>: evict the keys with the nearest expiry.</summary>
    VolatileTtl,
}

/// <summary>The memory limit and eviction settings the store applies (Redis's <c>maxmemory*</c> and <c>lfu-*</c> directives).</summary>
/// <param name="MaxMemory">Bytes of used memory (<see cref="KvStore.UsedMemory"/>) allowed; 0: no limit.</param>
/// <param name="Policy">What to do over the limit.</param>
/// <param name="Samples">Keys sampled per database per eviction round (<c>maxmemory-samples</c>).</param>
/// <param name="LfuLogFactor">How slowly the logarithmic access counter grows (<c>lfu-log-factor</c>).</param>
/// <param name="LfuDecayTime">Minutes for the counter to decay by one (<c>lfu-decay-time</c>; 0: never).</param>
public sealed record KvMemorySettings(long MaxMemory, KvEvictionPolicy Policy, int Samples = 5, int LfuLogFactor = 10, int LfuDecayTime = 1)
{
    /// <summary>No limit (the default).</summary>
    public static readonly KvMemorySettings None = new(0, KvEvictionPolicy.NoEviction);

    /// <summary>Parses a <c>maxmemory-policy</c> value (as validated by CONFIG SET).</summary>
    /// <exception cref="ArgumentException">Not one of the eight names.</exception>
    public static KvEvictionPolicy ParsePolicy(string name) => name.ToLowerInvariant() switch
    {
        "noeviction" => KvEvictionPolicy.NoEviction,
        "allkeys-lru" => KvEvictionPolicy.AllKeysLru,
        "allkeys-lfu" => KvEvictionPolicy.AllKeysLfu,
        "allkeys-random" => KvEvictionPolicy.AllKeysRandom,
        "volatile-lru" => KvEvictionPolicy.VolatileLru,
        "volatile-lfu" => KvEvictionPolicy.VolatileLfu,
        "volatile-random" => KvEvictionPolicy.VolatileRandom,
        "volatile-ttl" => KvEvictionPolicy.VolatileTtl,
        _ => throw new ArgumentException($"unknown maxmemory-policy '{name}'", nameof(name)),
    };

    /// <summary>The settings of a server configuration.</summary>
    public static KvMemorySettings From(KvServerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new KvMemorySettings(config.MaxMemory, ParsePolicy(config.MaxMemoryPolicy), Math.Max(1, config.MaxMemorySamples),
            config.LfuLogFactor, config.LfuDecayTime);
    }

    /// <summary>Whether the policy is one of the LFU ones (OBJECT FREQ answers; OBJECT IDLETIME refuses).</summary>
    public bool IsLfu => Policy is KvEvictionPolicy.AllKeysLfu or KvEvictionPolicy.VolatileLfu;
}

/// <summary>What <see cref="KvStore.PerformEvictions"/> achieved (Redis's EVICT_OK / EVICT_RUNNING / EVICT_FAIL).</summary>
public enum KvEvictResult
{
    /// <summary>Under the limit (or no limit).</summary>
    Ok,
    /// <summary>Still over the limit, but the time budget ran out while keys were being evicted: the cron goes on; commands are not refused.</summary>
    Running,
    /// <summary>Over the limit and nothing (more) can be evicted: commands flagged denyoom get <c>-OOM</c>.</summary>
    Fail,
}

/// <summary>maxmemory: the used-memory account, eviction (Redis's evict.c) and the <c>-OOM</c> refusal.</summary>
/// <remarks>
/// <b>Used memory</b> (<see cref="UsedMemory"/>, INFO used_memory, docs/kv.md "Memory limits") is our own account, not the
/// .NET heap: per key 48 bytes of table overhead plus the key bytes; a string value's bytes; a collection's
/// <see cref="KvObject.EstimateBytes"/> (kept up to date as commands change it, re-estimated in full when its element
/// count moves by more than an eighth, scaled in between); plus <see cref="ExternalMemoryBytes"/> (the server adds a
/// clients' buffers, as each connection last reported its CLIENT LIST tot-mem).
/// <para><b>Eviction</b>: before every command a client sends (not the ones a transaction or script runs), when a limit is
/// set and used memory is over it, keys are evicted by the policy until it is under: LRU, LFU and TTL fill Redis's pool of
/// 16 best candidates from <see cref="KvMemorySettings.Samples"/> random keys per database; random picks a random key of
/// the next database in turn. Each evicted key is counted (<see cref="EvictedKeys"/>), notified (<c>evicted</c>, class
/// 'e'), invalidates WATCH, and is logged to the AOF as <c>DEL</c>. After 16 keys, a call stops once 500 us have passed
/// (Redis's default eviction tenacity) and reports <see cref="KvEvictResult.Running"/>; the cron goes on.</para>
/// </remarks>
public sealed partial class KvStore
{
    /// <summary>Redis's shared.oomerr.</summary>
    public const string OomError = "OOM command not allowed when used memory > 'maxmemory'.";

    private const int EvictionPoolSize = 16; // Redis's EVPOOL_SIZE
    private const int LfuInitValue = 5; // Redis's LFU_INIT_VAL

    // Commands Redis 7.0.15 flags denyoom (COMMAND, subcommands as container|sub): refused over the limit.
    private static readonly FrozenSet<string> s_denyOom = new[]
    {
        "append", "bitfield", "bitop", "blmove", "brpoplpush", "copy", "decr", "decrby", "geoadd", "georadius",
        "georadiusbymember", "geosearchstore", "getset", "hincrby", "hincrbyfloat", "hmset", "hset", "hsetnx", "incr",
        "incrby", "incrbyfloat", "linsert", "lmove", "lpush", "lpushx", "lset", "mset", "msetnx", "pfadd", "pfdebug",
        "pfmerge", "psetex", "restore", "restore-asking", "rpoplpush", "rpush", "rpushx", "sadd", "sdiffstore", "set",
        "setbit", "setex", "setnx", "setrange", "sinterstore", "sort", "sunionstore", "xadd", "xsetid", "zadd",
        "zdiffstore", "zincrby", "zinterstore", "zrangestore", "zunionstore",
    }.ToFrozenSet(StringComparer.Ordinal);

    private readonly EvictionCandidate[] _evictionPool = new EvictionCandidate[EvictionPoolSize];
    private int _evictionNextDb; // allkeys-random / volatile-random: Redis's static next_db
    private KvMemorySettings _memory = KvMemorySettings.None;

    private struct EvictionCandidate
    {
        public byte[]? Key;
        public int Db;
        public long Idle; // larger: a better candidate
    }

    /// <summary>The memory limit and eviction policy in force (the server sets it from its live configuration).</summary>
    public KvMemorySettings MemorySettings
    {
        get => _memory;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Policy != _memory.Policy) Array.Clear(_evictionPool); // the candidates' scores mean something else now
            _memory = value;
            LfuPolicy = value.IsLfu;
        }
    }

    /// <summary>After 16 keys, a <see cref="PerformEvictions"/> call stops when this much time has passed (500 us: Redis's
    /// evictionTimeLimitUs at the default maxmemory-eviction-tenacity 10); the rest is left to the next command or the cron.</summary>
    public TimeSpan EvictionTimeLimit { get; set; } = TimeSpan.FromMicroseconds(500);

    /// <summary>Bytes counted in <see cref="UsedMemory"/> beside the keyspace (the clients' buffers, as the server counts them).</summary>
    public long ExternalMemoryBytes { get; set; }

    /// <summary>Connected clients whose buffers <see cref="ExternalMemoryBytes"/> counts (MEMORY DOCTOR's big client buffers).</summary>
    public long ExternalMemoryClients { get; set; }

    /// <summary>Used memory as maxmemory compares it (INFO used_memory): <see cref="UsedBytes"/> + <see cref="ExternalMemoryBytes"/>.</summary>
    public long UsedMemory => UsedBytes + ExternalMemoryBytes;

    /// <summary>Keys evicted since creation (INFO evicted_keys).</summary>
    public long EvictedKeys { get; private set; }

    /// <summary>Whether the last eviction attempt left memory over the limit with nothing left to evict.</summary>
    public bool OutOfMemory { get; private set; }

    /// <summary>Whether memory was over the limit when the running top-level command started (Redis's script_oom): a
    /// script may then not run a denyoom command before it wrote something.</summary>
    internal bool ScriptOom { get; private set; }

    /// <summary>The error write commands get while the AOF cannot be written (<c>MISCONF ...</c>, without '-'), or null; the
    /// server sets it before each round. Scripts refuse writes with it, and a script whose flags allow writes is refused
    /// before it runs (Redis's scriptVerifyWriteCommandAllow and processCommand).</summary>
    public string? WritesDeniedError { get; set; }

    /// <summary>Whether a command named <paramref name="name"/> (lower case; <c>container|sub</c> for subcommands) is denyoom in Redis 7.0.</summary>
    public static bool IsDenyOomName(string name) => s_denyOom.Contains(name);

    /// <summary>Whether <paramref name="command"/> is refused when over the limit (Redis's is_denyoom_command): denyoom
    /// commands, XGROUP CREATE|CREATECONSUMER, FUNCTION LOAD|RESTORE, EXEC with a queued denyoom command, and scripts
    /// whose flags (shebang, function flags) allow neither OOM nor no writes.</summary>
    internal bool IsDenyOom(KvCommandInfo info, KvCommand command, KvSession session)
    {
        string name = info.Name;
        if (s_denyOom.Contains(name)) return true;
        switch (name)
        {
            case "xgroup":
                return command.Count >= 2 && (Is(command[1], "CREATE"u8) || Is(command[1], "CREATECONSUMER"u8));
            case "function":
                return command.Count >= 2 && (Is(command[1], "LOAD"u8) || Is(command[1], "RESTORE"u8));
            case "exec":
                if (!session.PendingExecs.TryPeek(out KvTransaction? tx) || tx.Aborted) return false;
                foreach (KvCommand queued in tx.Commands)
                {
                    if (queued.Info is { } q && IsDenyOom(q, queued, session)) return true;
                }
                return false;
            case "eval" or "evalsha" or "eval_ro" or "evalsha_ro" or "fcall" or "fcall_ro":
                return Scripting.DeniesOom(command, name);
            default:
                return false;
        }
    }

    /// <summary>Redis's processCommand memory step, before a command a client sent: evicts when over the limit, and
    /// returns true (after writing <c>-OOM</c>, or <c>-EXECABORT</c> for EXEC) when the command must be refused.</summary>
    private bool RefuseForDiskError(KvCommandInfo info, in Context ctx)
    {
        if (WritesDeniedError is not { } error || info.Name is not ("eval" or "evalsha" or "fcall")) return false;
        if (!Scripting.IsWriteScript(ctx.Command, info.Name)) return false;
        ctx.Reply.WriteError(error);
        return true;
    }

    private bool RefuseForMemory(KvCommandInfo info, in Context ctx)
    {
        ScriptOom = false;
        if (_memory.MaxMemory <= 0) return false;
        bool oom = PerformEvictions(ctx.Now, ctx.Aof) == KvEvictResult.Fail;
        ScriptOom = oom;
        if (!oom || !IsDenyOom(info, ctx.Command, ctx.Session)) return false;
        if (info.Name == "exec")
        {
            // Redis's rejectCommand on EXEC: execCommandAbort (the transaction is discarded and the keys unwatched).
            ctx.Session.PendingExecs.TryDequeue(out _);
            Unwatch(ctx.Session);
            ctx.Reply.WriteError("EXECABORT Transaction discarded because of: " + OomError);
        }
        else
        {
            ctx.Reply.WriteError(OomError);
        }
        return true;
    }

    /// <summary>Evicts keys by the policy until used memory is under the limit (Redis's performEvictions).</summary>
    /// <param name="nowUnixMs">The current time (expired keys met are removed as expired, not evicted).</param>
    /// <param name="aof">Receives <c>DEL</c> for each evicted key; null: not logged.</param>
    public KvEvictResult PerformEvictions(long nowUnixMs, IAofSink? aof)
    {
        long limit = _memory.MaxMemory;
        if (limit <= 0 || UsedMemory <= limit)
        {
            OutOfMemory = false;
            return KvEvictResult.Ok;
        }
        if (_memory.Policy == KvEvictionPolicy.NoEviction)
        {
            OutOfMemory = true;
            return KvEvictResult.Fail;
        }
        long start = Stopwatch.GetTimestamp();
        int evicted = 0;
        while (UsedMemory > limit)
        {
            if (!TryPickVictim(out int dbIndex, out byte[]? key))
            {
                OutOfMemory = true;
                return KvEvictResult.Fail;
            }
            Evict(_dbs[dbIndex], key, aof);
            evicted++;
            if ((evicted & 15) == 0 && Stopwatch.GetElapsedTime(start) > EvictionTimeLimit)
            {
                OutOfMemory = false;
                return UsedMemory > limit ? KvEvictResult.Running : KvEvictResult.Ok;
            }
        }
        OutOfMemory = false;
        return KvEvictResult.Ok;
    }

    /// <summary>Whether used memory is over the limit with a policy that can evict (the cron then calls <see cref="PerformEvictions"/>).</summary>
    public bool EvictionPending => _memory.MaxMemory > 0 && _memory.Policy != KvEvictionPolicy.NoEviction && UsedMemory > _memory.MaxMemory;

    private void Evict(KvDatabase db, byte[] key, IAofSink? aof)
    {
        if (!db.Lookup.TryGetValue(key, out KvEntry? e)) return;
        db.Remove(e);
        EvictedKeys++;
        SignalReady(db.Index, key);
        Observer?.OnKeyChanged(db.Index, key, KvEventClass.Evicted, "evicted");
        OnChangedForTransactionsAndPubSub(db.Index, key, KvEventClass.Evicted, "evicted"); // WATCH, notification 'e'
        if (aof is not null) Log(aof, db.Index, KvCommand.Create("DEL"u8.ToArray(), key));
    }

    private bool IsVolatilePolicy => _memory.Policy is KvEvictionPolicy.VolatileLru or KvEvictionPolicy.VolatileLfu
        or KvEvictionPolicy.VolatileRandom or KvEvictionPolicy.VolatileTtl;

    private int CandidateCount(KvDatabase db) => IsVolatilePolicy ? db.Volatile.Count : db.Count;

    /// <summary>A random key of <paramref name="db"/> among the policy's candidates, or null.</summary>
    private KvEntry? SampleKey(KvDatabase db)
    {
        if (IsVolatilePolicy) return db.Volatile.Count == 0 ? null : db.Volatile[_random.Next(db.Volatile.Count)];
        int row = db.RandomRow(_random);
        return row < 0 ? null : db.Slots[row];
    }

    private bool TryPickVictim(out int dbIndex, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? key)
    {
        if (_memory.Policy is KvEvictionPolicy.AllKeysRandom or KvEvictionPolicy.VolatileRandom)
        {
            for (int i = 0; i < _dbs.Length; i++)
            {
                int j = ++_evictionNextDb % _dbs.Length;
                _evictionNextDb = j;
                if (CandidateCount(_dbs[j]) == 0) continue;
                if (SampleKey(_dbs[j]) is { } e)
                {
                    dbIndex = j;
                    key = e.Key;
                    return true;
                }
            }
            dbIndex = 0;
            key = null;
            return false;
        }
        while (true)
        {
            long total = 0;
            for (int i = 0; i < _dbs.Length; i++)
            {
                int n = CandidateCount(_dbs[i]);
                if (n == 0) continue;
                total += n;
                PopulatePool(i);
            }
            if (total == 0) break;
            bool any = false;
            for (int k = EvictionPoolSize - 1; k >= 0; k--)
            {
                ref EvictionCandidate c = ref _evictionPool[k];
                if (c.Key is null) continue;
                any = true;
                byte[] candidate = c.Key;
                int db = c.Db;
                c.Key = null;
                if (_dbs[db].Lookup.TryGetValue(candidate, out KvEntry? e) && (!IsVolatilePolicy || e.ExpireAt >= 0))
                {
                    dbIndex = db;
                    key = candidate;
                    return true;
                }
                // A ghost (deleted since it was sampled): try the next best.
            }
            if (!any) break; // nothing sampled at all (should not happen with keys present)
        }
        dbIndex = 0;
        key = null;
        return false;
    }

    /// <summary>Redis's evictionPoolPopulate: samples keys of database <paramref name="dbIndex"/> and keeps the best
    /// candidates in the pool, sorted by ascending idle score.</summary>
    private void PopulatePool(int dbIndex)
    {
        KvDatabase db = _dbs[dbIndex];
        EvictionCandidate[] pool = _evictionPool;
        int samples = Math.Min(_memory.Samples, CandidateCount(db));
        for (int s = 0; s < samples; s++)
        {
            KvEntry? e = SampleKey(db);
            if (e is null) continue;
            long idle = _memory.Policy switch
            {
                KvEvictionPolicy.AllKeysLru or KvEvictionPolicy.VolatileLru => IdleSeconds(e),
                KvEvictionPolicy.AllKeysLfu or KvEvictionPolicy.VolatileLfu => 255 - LfuDecrAndReturn(e),
                _ => e.ExpireAt < 0 ? 0 : long.MaxValue - e.ExpireAt, // volatile-ttl: the sooner, the better
            };
            int k = 0;
            while (k < EvictionPoolSize && pool[k].Key is not null && pool[k].Idle < idle) k++;
            if (k == 0 && pool[EvictionPoolSize - 1].Key is not null) continue; // worse than every candidate of a full pool
            if (k < EvictionPoolSize && pool[k].Key is null)
            {
                // an empty slot: insert here
            }
            else if (pool[EvictionPoolSize - 1].Key is null)
            {
                Array.Copy(pool, k, pool, k + 1, EvictionPoolSize - k - 1); // room on the right: shift right
            }
            else
            {
                k--; // full: drop the worst (leftmost), shift left
                Array.Copy(pool, 1, pool, 0, k);
            }
            // A key sampled twice may be pooled twice (as in Redis): the second copy resolves as a ghost.
            pool[k] = new EvictionCandidate { Key = e.Key, Db = dbIndex, Idle = idle };
        }
    }

    /// <summary>Redis's LFUDecrAndReturn: the LFU counter decayed by the minutes since the last access (lfu-decay-time).</summary>
    internal int LfuDecrAndReturn(KvEntry e) => LfuDecrAndReturn(e.Frequency, e.AccessClock, AccessClock);

    // counter: the key's LFU counter; accessClock: its access clock (bits above the 24th ignored); now: the clock now.
    private int LfuDecrAndReturn(int counter, uint accessClock, uint now)
    {
        int decay = _memory.LfuDecayTime;
        if (decay <= 0) return counter;
        long periods = ((now - accessClock) & KvDatabase.ClockMask) / 60 / decay; // IdleSeconds at now
        return periods > counter ? 0 : counter - (int)periods;
    }

    /// <summary>Redis's LFULogIncr: increments the logarithmic counter with probability 1/((counter-5)*lfu-log-factor+1).</summary>
    private int LfuLogIncr(int counter)
    {
        if (counter >= 255) return 255;
        double baseval = Math.Max(0, counter - LfuInitValue);
        return _random.NextDouble() < 1.0 / (baseval * _memory.LfuLogFactor + 1) ? counter + 1 : counter;
    }

    // ---------------------------------------------------------------- MEMORY STATS / DOCTOR / MALLOC-STATS / PURGE

    private const int PerVolatileKeyBytes = 32; // the expiry side table's slot and list entry (KvDatabase), MEMORY STATS only

    /// <summary>The highest <see cref="UsedMemory"/> seen by <see cref="ObserveMemoryPeak"/> (MEMORY STATS peak.allocated).</summary>
    public long PeakMemory { get; private set; }

    /// <summary>Records the current used memory in <see cref="PeakMemory"/> (the owner calls it every round and cron tick).</summary>
    public long ObserveMemoryPeak()
    {
        long used = UsedMemory;
        if (used > PeakMemory) PeakMemory = used;
        return PeakMemory;
    }

    private long LuaCacheBytes => _scripting?.ScriptCacheBytes ?? 0;

    private long FunctionCacheBytes
    {
        get
        {
            if (_scripting is null) return 0;
            long n = 0;
            foreach (Scripting.ScriptHost.FunctionLibrary library in _scripting.Libraries) n += library.Code.Length + 64;
            return n;
        }
    }

    /// <summary>The numbers of MEMORY STATS and MEMORY DOCTOR (Redis's redisMemOverhead), from our account and the runtime's.</summary>
    private sealed record MemoryOverhead(long Peak, long Total, long Startup, long ClientsNormal, long Lua, long Functions,
        (int Db, long Main, long Expires)[] Dbs, long OverheadTotal, long Keys, long BytesPerKey, long Dataset, float DatasetPercentage,
        float PeakPercentage, long AllocatorAllocated, long AllocatorActive, long AllocatorResident, long ProcessRss);

    private MemoryOverhead GetMemoryOverhead()
    {
        long total = UsedMemory;
        long peak = Math.Max(ObserveMemoryPeak(), total);
        long lua = LuaCacheBytes, functions = FunctionCacheBytes;
        var dbs = new List<(int, long, long)>();
        long overhead = ExternalMemoryBytes + lua + functions;
        long keys = 0;
        foreach (KvDatabase db in _dbs)
        {
            if (db.Count == 0) continue;
            long main = (long)db.Count * EntryOverheadBytes, expires = (long)db.Volatile.Count * PerVolatileKeyBytes;
            dbs.Add((db.Index, main, expires));
            overhead += main + expires;
            keys += db.Count;
        }
        total += lua + functions; // the script caches are not in UsedBytes: count them here as Redis does
        long dataset = Math.Max(0, total - overhead);
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        long allocated = GC.GetTotalMemory(false), active = Math.Max(gc.TotalCommittedBytes, allocated), rss = Environment.WorkingSet;
        return new MemoryOverhead(peak, total, 0, ExternalMemoryBytes, lua, functions, [.. dbs], overhead, keys,
            keys == 0 ? 0 : total / keys, dataset, total == 0 ? 0 : dataset * 100f / total, peak == 0 ? 0 : total * 100f / peak,
            allocated, active, Math.Max(rss, active), rss);
    }

    /// <summary>MEMORY STATS: Redis 7.0's fields in its order (a map; db.N a nested map for each database with keys).
    /// Our meanings: total.allocated is <see cref="UsedMemory"/> plus the script caches, startup.allocated 0 (the runtime
    /// is not in the account), allocator.* the .NET GC heap (allocated: live objects; active: committed; resident: the
    /// process RSS), so the fragmentation ratios show the runtime's overhead over the dataset.</summary>
    private void MemoryStats(in Context ctx)
    {
        MemoryOverhead m = GetMemoryOverhead();
        RespWriter w = ctx.Reply;
        w.WriteMapHeader(27 + m.Dbs.Length);
        void Int(string name, long v)
        {
            w.WriteBulkString(Encoding.ASCII.GetBytes(name));
            w.WriteInteger(v);
        }
        void Dbl(string name, float v)
        {
            w.WriteBulkString(Encoding.ASCII.GetBytes(name));
            w.WriteDouble(v);
        }
        Int("peak.allocated", m.Peak);
        Int("total.allocated", m.Total);
        Int("startup.allocated", m.Startup);
        Int("replication.backlog", 0);
        Int("clients.slaves", 0);
        Int("clients.normal", m.ClientsNormal);
        Int("cluster.links", 0);
        Int("aof.buffer", 0);
        Int("lua.caches", m.Lua);
        Int("functions.caches", m.Functions);
        foreach ((int db, long main, long expires) in m.Dbs)
        {
            w.WriteBulkString(Encoding.ASCII.GetBytes("db." + db.ToString(CultureInfo.InvariantCulture)));
            w.WriteMapHeader(3);
            Int("overhead.hashtable.main", main);
            Int("overhead.hashtable.expires", expires);
            Int("overhead.hashtable.slot-to-keys", 0);
        }
        Int("overhead.total", m.OverheadTotal);
        Int("keys.count", m.Keys);
        Int("keys.bytes-per-key", m.BytesPerKey);
        Int("dataset.bytes", m.Dataset);
        Dbl("dataset.percentage", m.DatasetPercentage);
        Dbl("peak.percentage", m.PeakPercentage);
        Int("allocator.allocated", m.AllocatorAllocated);
        Int("allocator.active", m.AllocatorActive);
        Int("allocator.resident", m.AllocatorResident);
        Dbl("allocator-fragmentation.ratio", Ratio(m.AllocatorActive, m.AllocatorAllocated));
        Int("allocator-fragmentation.bytes", m.AllocatorActive - m.AllocatorAllocated);
        Dbl("allocator-rss.ratio", Ratio(m.AllocatorResident, m.AllocatorActive));
        Int("allocator-rss.bytes", m.AllocatorResident - m.AllocatorActive);
        Dbl("rss-overhead.ratio", Ratio(m.ProcessRss, m.AllocatorResident));
        Int("rss-overhead.bytes", m.ProcessRss - m.AllocatorResident);
        Dbl("fragmentation", Ratio(m.ProcessRss, m.Total));
        Int("fragmentation.bytes", m.ProcessRss - m.Total);
    }

    private static float Ratio(long a, long b) => b == 0 ? 0 : (float)a / b;

    /// <summary>MEMORY DOCTOR: Redis 7.0's getMemoryDoctorReport, its conditions and texts, on the numbers of MEMORY STATS
    /// (so with a dataset of 5 MB or more, the .NET runtime's RSS usually reports "High total RSS").</summary>
    private string MemoryDoctorReport()
    {
        MemoryOverhead m = GetMemoryOverhead();
        bool empty = false, bigPeak = false, highFrag = false, highAllocFrag = false, highAllocRss = false, highProcRss = false,
            bigClientBuf = false, manyScripts = false;
        int reports = 0;
        if (m.Total < 5 * 1024 * 1024)
        {
            empty = true;
            reports++;
        }
        else
        {
            if ((float)m.Peak / m.Total > 1.5f) { bigPeak = true; reports++; }
            if (Ratio(m.ProcessRss, m.Total) > 1.4f && m.ProcessRss - m.Total > 10 << 20) { highFrag = true; reports++; }
            if (Ratio(m.AllocatorActive, m.AllocatorAllocated) > 1.1f && m.AllocatorActive - m.AllocatorAllocated > 10 << 20) { highAllocFrag = true; reports++; }
            if (Ratio(m.AllocatorResident, m.AllocatorActive) > 1.1f && m.AllocatorResident - m.AllocatorActive > 10 << 20) { highAllocRss = true; reports++; }
            if (Ratio(m.ProcessRss, m.AllocatorResident) > 1.1f && m.ProcessRss - m.AllocatorResident > 10 << 20) { highProcRss = true; reports++; }
            long clients = ExternalMemoryClients;
            if (clients > 0 && m.ClientsNormal / clients > 1024 * 200) { bigClientBuf = true; reports++; }
            if ((_scripting?.ScriptCount ?? 0) > 1000) { manyScripts = true; reports++; }
        }
        if (reports == 0) return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
        if (empty)
        {
            return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. " +
                "Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n";
        }
        var sb = new StringBuilder("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
        if (bigPeak) sb.Append(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
        if (highFrag) sb.Append(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"dotnet-gc\".\n\n");
        if (highAllocFrag) sb.Append(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
        if (highAllocRss) sb.Append(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
        if (highProcRss) sb.Append(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
        if (bigClientBuf) sb.Append(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
        if (manyScripts) sb.Append(" * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n");
        sb.Append("I'm here to keep you safe, Sam. I want to help you.\n");
        return sb.ToString();
    }

    /// <summary>MEMORY MALLOC-STATS: Redis prints its allocator's statistics; ours are the .NET GC's (GCMemoryInfo), and the
    /// arrays of the store's copy-on-write and the snapshots' incompressibility proofs (<paramref name="epochs"/>).</summary>
    private static string MallocStatsReport(KvSnapshotEpochs epochs)
    {
        KvCopyOnWriteArrays copyOnWrite = epochs.CopyOnWrite;
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        var sb = new StringBuilder("___ Begin .NET GC statistics ___\n");
        sb.Append(CultureInfo.InvariantCulture, $"Server GC: {System.Runtime.GCSettings.IsServerGC}, concurrent: {gc.Concurrent}, latency mode: {System.Runtime.GCSettings.LatencyMode}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Allocated (live estimate): {GC.GetTotalMemory(false)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Allocated since start: {GC.GetTotalAllocatedBytes()}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Heap size at last GC: {gc.HeapSizeBytes}, fragmented: {gc.FragmentedBytes}, committed: {gc.TotalCommittedBytes}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Promoted at last GC: {gc.PromotedBytes}, pinned objects: {gc.PinnedObjectsCount}, pause: {gc.PauseTimePercentage}%\n");
        for (int g = 0; g < gc.GenerationInfo.Length; g++)
        {
            GCGenerationInfo info = gc.GenerationInfo[g];
            sb.Append(CultureInfo.InvariantCulture, $"Generation {g}: size before {info.SizeBeforeBytes}, after {info.SizeAfterBytes}, fragmentation after {info.FragmentationAfterBytes}, collections {(g <= GC.MaxGeneration ? GC.CollectionCount(g) : 0)}\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"Process RSS: {Environment.WorkingSet}\n");
        sb.Append(CultureInfo.InvariantCulture, $"C heap trims (malloc_trim): {KvNativeHeap.Trims}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Copy-on-write string arrays: allocated {copyOnWrite.Allocated}, recycled {copyOnWrite.Recycled}, waiting for a snapshot {copyOnWrite.Waiting}, free {copyOnWrite.FreeBytes} bytes\n");
        sb.Append(CultureInfo.InvariantCulture, $"Snapshot entry arrays reused: {epochs.EntriesReused}, spares kept: {(epochs.HoldsSpares ? 1 : 0)}, retained: {(epochs.RetainsSpares ? 1 : 0)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Snapshot strings proven incompressible: recorded {Interlocked.Read(ref epochs.IncompressibleRecorded)}, written raw without LZF {Interlocked.Read(ref epochs.IncompressibleSkipped)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"Snapshot strings written raw by sampling (the tries before them incompressible): {Interlocked.Read(ref epochs.LzfSampledOut)}\n");
        sb.Append("--- End .NET GC statistics ---\n");
        return sb.ToString();
    }

    /// <summary>MEMORY PURGE: Redis asks jemalloc to purge dirty pages; we ask for a blocking, compacting collection that
    /// returns free memory to the system, then for the C heap's free pages (<see cref="KvNativeHeap.Trim"/>) (pauses the process for about the heap's size; +OK).
    /// What the store keeps for its next snapshot is dropped first (<see cref="DropSnapshotSpares"/>: the free copy-on-write
    /// arrays, the spare rows and entries arrays, retained or not).</summary>
    private static void MemoryPurge(in Context ctx)
    {
        ctx.Store.DropSnapshotSpares();
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        KvNativeHeap.Trim(); // and the C heap's free pages (the runtime's own malloc arenas)
        ctx.Reply.WriteOk();
    }
}
