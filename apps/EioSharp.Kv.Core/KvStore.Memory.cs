using System.Collections.Frozen;
using System.Diagnostics;

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
/// per-client estimate).
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

    /// <summary>Bytes counted in <see cref="UsedMemory"/> beside the keyspace (the server's estimate of client buffers).</summary>
    public long ExternalMemoryBytes { get; set; }

    /// <summary>Used memory as maxmemory compares it (INFO used_memory): <see cref="UsedBytes"/> + <see cref="ExternalMemoryBytes"/>.</summary>
    public long UsedMemory => UsedBytes + ExternalMemoryBytes;

    /// <summary>Keys evicted since creation (INFO evicted_keys).</summary>
    public long EvictedKeys { get; private set; }

    /// <summary>Whether the last eviction attempt left memory over the limit with nothing left to evict.</summary>
    public bool OutOfMemory { get; private set; }

    /// <summary>Whether memory was over the limit when the running top-level command started (Redis's script_oom): a
    /// script may then not run a denyoom command before it wrote something.</summary>
    internal bool ScriptOom { get; private set; }

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
    internal int LfuDecrAndReturn(KvEntry e)
    {
        int counter = e.Frequency;
        int decay = _memory.LfuDecayTime;
        if (decay <= 0) return counter;
        long periods = IdleSeconds(e) / 60 / decay;
        return periods > counter ? 0 : counter - (int)periods;
    }

    /// <summary>Redis's LFULogIncr: increments the logarithmic counter with probability 1/((counter-5)*lfu-log-factor+1).</summary>
    private int LfuLogIncr(int counter)
    {
        if (counter >= 255) return 255;
        double baseval = Math.Max(0, counter - LfuInitValue);
        return _random.NextDouble() < 1.0 / (baseval * _memory.LfuLogFactor + 1) ? counter + 1 : counter;
    }
}
