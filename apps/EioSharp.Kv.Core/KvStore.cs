using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>One key/value pair captured by <see cref="KvStore.CreateSnapshot"/>.</summary>
/// <param name="Key">The key (shared with the store; never modified).</param>
/// <param name="Value">The value (shared with the store; values are never modified in place).</param>
/// <param name="ExpireAtUnixMs">Absolute expiry in Unix milliseconds, or -1 for none.</param>
public readonly record struct KvSnapshotEntry(byte[] Key, byte[] Value, long ExpireAtUnixMs);

/// <summary>The keyspace of the key-value server and the executor of its data commands.</summary>
/// <remarks>
/// Keys and values are binary-safe byte strings. Expiry times are absolute Unix milliseconds; a key
/// whose expiry time is in the past is removed when it is next accessed (lazy expiry) or sampled by
/// <see cref="ActiveExpireCycle"/> (active expiry), like Redis.
/// <para><b>AOF</b>: <see cref="Execute"/> hands every command that changed data to an
/// <see cref="IAofSink"/>, rewritten so that replaying it later gives the same state: relative
/// expiries become absolute (<c>SET k v PXAT ms</c>, <c>PEXPIREAT k ms</c>), INCRBYFLOAT becomes
/// <c>SET k result KEEPTTL</c>, GETDEL becomes <c>DEL</c>, GETSET becomes <c>SET</c>, SET's GET/NX/XX
/// options are dropped, DEL/UNLINK list only the keys that existed, an expiry in the past becomes
/// <c>DEL</c>. Failed and no-op commands are not logged. Keys removed by expiry are not logged: the
/// absolute expiry in the log removes them again on replay.</para>
/// <para><b>Values</b> are never mutated in place (APPEND and SETRANGE build new arrays), so a
/// <see cref="CreateSnapshot"/> can be serialized on another thread while the store keeps running.</para>
/// <para><b>Thread safety</b>: none. One owner (fiber or thread) calls every member.</para>
/// </remarks>
public sealed partial class KvStore
{
    private const int ActiveExpireKeysPerLoop = 20; // Redis ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP
    private const int ActiveExpireAcceptableStalePercent = 10; // Redis ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE
    private const int CompactMinSlots = 64; // below this, a sparse slot table costs nothing worth compacting
    private const int EntryOverheadBytes = 96; // rough per-key cost of the entry, arrays and dictionary slot, for INFO
    private const int ScanCursorIndexBits = 40; // SCAN cursor = epoch << 40 | slot index

    private readonly Dictionary<byte[], Entry> _map;
    private readonly Dictionary<byte[], Entry>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly List<Entry> _volatile = []; // entries with an expiry, for active expiry sampling
    private readonly Stack<int> _freeSlots = new();
    private readonly Random _random;
    private Entry?[] _slots = new Entry?[16]; // dense-ish table of entries: RANDOMKEY and SCAN cursors index it
    private int _slotCount;
    private long _epoch; // bumped when the slot table is compacted; SCAN cursors from older epochs restart
    private long _dataBytes;

    private sealed class Entry(byte[] key, byte[] value)
    {
        public readonly byte[] Key = key;
        public byte[] Value = value;
        public long ExpireAt = -1;
        public int Slot = -1;
        public int VolatileIndex = -1;
    }

    /// <summary>Creates an empty store.</summary>
    /// <param name="limits">Limits; <see cref="RespLimits.MaxBulkLength"/> caps values built by APPEND and SETRANGE. Null: defaults.</param>
    /// <param name="random">Random source for RANDOMKEY and active expiry sampling; null: a new unseeded one.</param>
    public KvStore(RespLimits? limits = null, Random? random = null)
    {
        Limits = limits ?? RespLimits.Default;
        _random = random ?? new Random();
        _map = new Dictionary<byte[], Entry>(ByteArrayComparer.Instance);
        _lookup = _map.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>The limits in force.</summary>
    public RespLimits Limits { get; }

    /// <summary>Number of keys, including expired keys not yet removed (like Redis's DBSIZE).</summary>
    public int Count => _map.Count;

    /// <summary>Number of keys with an expiry.</summary>
    public int ExpiringCount => _volatile.Count;

    /// <summary>Approximate memory held by keys and values, in bytes.</summary>
    public long UsedBytes => _dataBytes + (long)_map.Count * EntryOverheadBytes;

    /// <summary>Keys removed because they expired (lazily or actively) since creation.</summary>
    public long ExpiredKeys { get; private set; }

    /// <summary>Successful key lookups by read commands.</summary>
    public long KeyspaceHits { get; private set; }

    /// <summary>Failed key lookups by read commands.</summary>
    public long KeyspaceMisses { get; private set; }

    /// <summary>Whether the command named <paramref name="name"/> modifies data (routing and durability).</summary>
    public static bool IsWriteCommand(ReadOnlySpan<byte> name) => KvCommandTable.IsWrite(name);

    // ---------------------------------------------------------------- direct access (tests, loaders)

    /// <summary>Reads a key's value without touching statistics; expired keys are removed and reported missing.</summary>
    public bool TryGetValue(ReadOnlySpan<byte> key, long nowUnixMs, out byte[] value)
    {
        Entry? e = Lookup(key, nowUnixMs);
        value = e?.Value ?? [];
        return e is not null;
    }

    /// <summary>A key's absolute expiry in Unix ms; -1 when it has none, -2 when it does not exist.</summary>
    public long GetExpireAt(ReadOnlySpan<byte> key, long nowUnixMs)
    {
        Entry? e = Lookup(key, nowUnixMs);
        return e is null ? -2 : e.ExpireAt;
    }

    /// <summary>Sets a key directly (no AOF); <paramref name="expireAtUnixMs"/> -1 for no expiry.</summary>
    public void SetValue(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expireAtUnixMs = -1)
    {
        Entry? e = _lookup.TryGetValue(key, out var found) ? found : null;
        Store(key, e, value.ToArray(), expireAtUnixMs, keepTtl: false);
    }

    /// <summary>Removes every key.</summary>
    public void Clear()
    {
        _map.Clear();
        _volatile.Clear();
        _freeSlots.Clear();
        _slots = new Entry?[16];
        _slotCount = 0;
        _epoch++;
        _dataBytes = 0;
    }

    /// <summary>Captures every live key, value and expiry (references, no copies) for an AOF rewrite.</summary>
    /// <remarks>Cost: one pass over the keyspace. The snapshot stays valid while the store changes because values are never mutated in place.</remarks>
    public KvSnapshotEntry[] CreateSnapshot(long nowUnixMs)
    {
        var list = new List<KvSnapshotEntry>(_map.Count);
        for (int i = 0; i < _slotCount; i++)
        {
            Entry? e = _slots[i];
            if (e is null || IsExpired(e, nowUnixMs)) continue;
            list.Add(new KvSnapshotEntry(e.Key, e.Value, e.ExpireAt));
        }
        return [.. list];
    }

    // ---------------------------------------------------------------- execution

    /// <summary>Executes one data command and writes its reply.</summary>
    /// <param name="command">The command; connection commands (PING, AUTH...) and unknown names get an error reply.</param>
    /// <param name="nowUnixMs">The current time in Unix milliseconds, used for expiry.</param>
    /// <param name="reply">Where the reply goes.</param>
    /// <param name="aof">Receives the command (rewritten) when it changed data; null: not logged.</param>
    public void Execute(KvCommand command, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(reply);
        KvCommandInfo? info = command.Info;
        if (info is null || info.Route != KvRoute.Store)
        {
            reply.WriteError(KvErrors.UnknownCommand(command));
            return;
        }
        if (!info.AcceptsArgumentCount(command.Count))
        {
            reply.WriteError(KvErrors.WrongArity(info.Name));
            return;
        }
        var ctx = new Context(command, nowUnixMs, reply, aof, info.Name);
        switch (info.Id)
        {
            case KvCommandId.DbSize: reply.WriteInteger(_map.Count); break;
            case KvCommandId.FlushAll:
            case KvCommandId.FlushDb: Flush(ctx); break;
            case KvCommandId.Get: Get(ctx); break;
            case KvCommandId.Set: Set(ctx); break;
            case KvCommandId.SetNx: SetNx(ctx); break;
            case KvCommandId.SetEx: SetEx(ctx, seconds: true); break;
            case KvCommandId.PSetEx: SetEx(ctx, seconds: false); break;
            case KvCommandId.GetSet: GetSet(ctx); break;
            case KvCommandId.GetDel: GetDel(ctx); break;
            case KvCommandId.MGet: MGet(ctx); break;
            case KvCommandId.MSet: MSet(ctx, nx: false); break;
            case KvCommandId.MSetNx: MSet(ctx, nx: true); break;
            case KvCommandId.Del:
            case KvCommandId.Unlink: Del(ctx); break;
            case KvCommandId.Exists: Exists(ctx); break;
            case KvCommandId.Type: reply.WriteSimpleString(Lookup(command[1], nowUnixMs) is null ? "none" : "string"); break;
            case KvCommandId.Incr: IncrBy(ctx, 1, fromArgument: false); break;
            case KvCommandId.Decr: IncrBy(ctx, -1, fromArgument: false); break;
            case KvCommandId.IncrBy: IncrBy(ctx, 1, fromArgument: true); break;
            case KvCommandId.DecrBy: IncrBy(ctx, -1, fromArgument: true); break;
            case KvCommandId.IncrByFloat: IncrByFloat(ctx); break;
            case KvCommandId.Append: Append(ctx); break;
            case KvCommandId.StrLen: StrLen(ctx); break;
            case KvCommandId.GetRange:
            case KvCommandId.SubStr: GetRange(ctx); break;
            case KvCommandId.SetRange: SetRange(ctx); break;
            case KvCommandId.Expire: Expire(ctx, 1000, relative: true); break;
            case KvCommandId.PExpire: Expire(ctx, 1, relative: true); break;
            case KvCommandId.ExpireAt: Expire(ctx, 1000, relative: false); break;
            case KvCommandId.PExpireAt: Expire(ctx, 1, relative: false); break;
            case KvCommandId.ExpireTime: ExpireTime(ctx, milliseconds: false); break;
            case KvCommandId.PExpireTime: ExpireTime(ctx, milliseconds: true); break;
            case KvCommandId.Ttl: Ttl(ctx, milliseconds: false); break;
            case KvCommandId.PTtl: Ttl(ctx, milliseconds: true); break;
            case KvCommandId.Persist: Persist(ctx); break;
            case KvCommandId.Keys: Keys(ctx); break;
            case KvCommandId.Scan: Scan(ctx); break;
            case KvCommandId.RandomKey: RandomKey(ctx); break;
            case KvCommandId.Rename: Rename(ctx, nx: false); break;
            case KvCommandId.RenameNx: Rename(ctx, nx: true); break;
            default: reply.WriteError(KvErrors.UnknownCommand(command)); break;
        }
        MaybeCompact();
    }

    /// <summary>Executes <paramref name="commands"/> in order, writing their replies in order into <paramref name="reply"/>.</summary>
    public void ExecuteBatch(ReadOnlySpan<KvCommand> commands, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        foreach (KvCommand command in commands) Execute(command, nowUnixMs, reply, aof);
    }

    /// <summary>Executes <paramref name="commands"/> in order, writing their replies in order into <paramref name="reply"/>.</summary>
    public void ExecuteBatch(IEnumerable<KvCommand> commands, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        ArgumentNullException.ThrowIfNull(commands);
        foreach (KvCommand command in commands) Execute(command, nowUnixMs, reply, aof);
    }

    /// <summary>Removes expired keys by sampling keys that have an expiry, like Redis's active expire cycle.</summary>
    /// <param name="nowUnixMs">The current time in Unix milliseconds.</param>
    /// <param name="budget">Most keys to sample in this call; bounds the time spent. Zero or negative: nothing.</param>
    /// <returns>The number of keys removed.</returns>
    /// <remarks>Samples 20 keys at a time and goes on while more than 10% of a sample had expired.</remarks>
    public int ActiveExpireCycle(long nowUnixMs, int budget = 200)
    {
        int removed = 0, sampled = 0;
        while (_volatile.Count > 0 && sampled < budget)
        {
            int loop = Math.Min(Math.Min(ActiveExpireKeysPerLoop, _volatile.Count), budget - sampled);
            int expired = 0;
            for (int i = 0; i < loop && _volatile.Count > 0; i++)
            {
                Entry e = _volatile[_random.Next(_volatile.Count)];
                sampled++;
                if (IsExpired(e, nowUnixMs))
                {
                    Remove(e);
                    ExpiredKeys++;
                    expired++;
                }
            }
            removed += expired;
            if (expired * 100 <= loop * ActiveExpireAcceptableStalePercent) break;
        }
        MaybeCompact();
        return removed;
    }

    // ---------------------------------------------------------------- keyspace primitives

    private static bool IsExpired(Entry e, long now) => e.ExpireAt >= 0 && now > e.ExpireAt;

    private Entry? Lookup(ReadOnlySpan<byte> key, long now)
    {
        if (!_lookup.TryGetValue(key, out Entry? e)) return null;
        if (IsExpired(e, now))
        {
            Remove(e);
            ExpiredKeys++;
            return null;
        }
        return e;
    }

    private Entry? LookupRead(ReadOnlySpan<byte> key, long now)
    {
        Entry? e = Lookup(key, now);
        if (e is null) KeyspaceMisses++;
        else KeyspaceHits++;
        return e;
    }

    // Sets key to value. existing must be the live entry for key, or null when there is none.
    private Entry Store(ReadOnlySpan<byte> key, Entry? existing, byte[] value, long expireAt, bool keepTtl)
    {
        if (existing is not null)
        {
            _dataBytes += value.Length - existing.Value.Length;
            existing.Value = value;
            if (!keepTtl) SetExpire(existing, expireAt);
            return existing;
        }
        if (_lookup.TryGetValue(key, out Entry? stale)) Remove(stale); // an expired entry nobody removed yet
        var e = new Entry(key.ToArray(), value);
        _map.Add(e.Key, e);
        _dataBytes += e.Key.Length + value.Length;
        int slot;
        if (_freeSlots.Count > 0)
        {
            slot = _freeSlots.Pop();
        }
        else
        {
            if (_slotCount == _slots.Length) Array.Resize(ref _slots, _slots.Length * 2);
            slot = _slotCount++;
        }
        _slots[slot] = e;
        e.Slot = slot;
        SetExpire(e, expireAt);
        return e;
    }

    private void SetExpire(Entry e, long expireAt)
    {
        if (expireAt < 0)
        {
            if (e.VolatileIndex >= 0)
            {
                int last = _volatile.Count - 1;
                Entry moved = _volatile[last];
                _volatile[e.VolatileIndex] = moved;
                moved.VolatileIndex = e.VolatileIndex;
                _volatile.RemoveAt(last);
                e.VolatileIndex = -1;
            }
            e.ExpireAt = -1;
            return;
        }
        if (e.VolatileIndex < 0)
        {
            e.VolatileIndex = _volatile.Count;
            _volatile.Add(e);
        }
        e.ExpireAt = expireAt;
    }

    private void Remove(Entry e)
    {
        _map.Remove(e.Key);
        SetExpire(e, -1);
        _slots[e.Slot] = null;
        _freeSlots.Push(e.Slot);
        e.Slot = -1;
        _dataBytes -= e.Key.Length + e.Value.Length;
    }

    // Keeps the slot table at least a quarter full so RANDOMKEY finds a key in a few tries.
    // Compaction keeps the order of entries and bumps the epoch so that SCAN cursors restart.
    private void MaybeCompact()
    {
        if (_slotCount <= CompactMinSlots || (long)_map.Count * 4 >= _slotCount) return;
        int write = 0;
        for (int read = 0; read < _slotCount; read++)
        {
            Entry? e = _slots[read];
            if (e is null) continue;
            e.Slot = write;
            _slots[write++] = e;
        }
        Array.Clear(_slots, write, _slotCount - write);
        _slotCount = write;
        _freeSlots.Clear();
        int size = Math.Max(16, (int)Math.Min(Array.MaxLength, 2L * write));
        if (size < _slots.Length) Array.Resize(ref _slots, size);
        _epoch = (_epoch + 1) & ((1L << (63 - ScanCursorIndexBits)) - 1);
    }

    private readonly record struct Context(KvCommand Command, long Now, RespWriter Reply, IAofSink? Aof, string Name)
    {
        public ReadOnlySpan<byte> this[int index] => Command[index];

        public int Count => Command.Count;

        public void Log(KvCommand logged) => Aof?.Append(logged);

        public void LogSelf() => Aof?.Append(Command);
    }

    private static bool TryGetInt64(in Context ctx, int index, out long value)
    {
        if (RespNumbers.TryParseInt64(ctx[index], out value)) return true;
        ctx.Reply.WriteError(KvErrors.NotInteger);
        return false;
    }

    private static byte[] Bytes(string s) => Encoding.ASCII.GetBytes(s);

    private static byte[] Bytes(long v) => Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));

    private static KvCommand SetCommand(ReadOnlySpan<byte> key, byte[] value, long expireAt, bool keepTtl)
    {
        if (expireAt >= 0) return KvCommand.Create("SET"u8.ToArray(), key.ToArray(), value, "PXAT"u8.ToArray(), Bytes(expireAt));
        if (keepTtl) return KvCommand.Create("SET"u8.ToArray(), key.ToArray(), value, "KEEPTTL"u8.ToArray());
        return KvCommand.Create("SET"u8.ToArray(), key.ToArray(), value);
    }
}
