namespace EioSharp.Kv;

/// <summary>One key as MIGRATE sends it: its name, its DUMP payload, and its time to live.</summary>
/// <param name="Key">The key's name.</param>
/// <param name="Payload">The key's DUMP payload (<c>RESTORE</c>'s argument).</param>
/// <param name="TtlMs">The time to live in milliseconds RESTORE gets (0: none; at least 1 for a key with an expiry).</param>
/// <param name="ExpireAtUnixMs">The key's absolute expiry in Unix milliseconds when it was read (-1: none).</param>
public sealed record KvMigrateItem(byte[] Key, byte[] Payload, long TtlMs, long ExpireAtUnixMs);

public sealed partial class KvStore
{
    /// <summary>MIGRATE's first step, on the store owner: the keys of <paramref name="keys"/> that exist in the
    /// session's database, each with its DUMP payload and time to live (as Redis's migrateCommand: a key that
    /// expires in less than a millisecond gets 1 ms). Missing and expired keys are left out.</summary>
    /// <param name="session">The migrating connection (its selected database).</param>
    /// <param name="keys">The keys named by MIGRATE.</param>
    /// <param name="nowUnixMs">The current time in Unix milliseconds.</param>
    /// <returns>The keys to send, in the given order (empty: MIGRATE answers NOKEY).</returns>
    public IReadOnlyList<KvMigrateItem> MigrateSnapshot(KvSession session, IReadOnlyList<byte[]> keys, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(keys);
        KvDatabase db = _dbs[(uint)session.Db < (uint)_dbs.Length ? session.Db : 0];
        var items = new List<KvMigrateItem>(keys.Count);
        foreach (byte[] key in keys)
        {
            KvEntry? e = Lookup(db, key, nowUnixMs);
            if (e is null) continue;
            long ttl = 0;
            if (e.ExpireAt >= 0) ttl = Math.Max(1, e.ExpireAt - nowUnixMs);
            items.Add(new KvMigrateItem(key, KvDump.Serialize(e.Value, RdbCompression), ttl, e.ExpireAt));
        }
        return items;
    }

    /// <summary>MIGRATE's last step, on the store owner: deletes the keys the target acknowledged, as one <c>DEL</c>
    /// (logged to the AOF, keyspace events, WATCH and tracking as DEL), but only those whose value and expiry are
    /// still what was sent: a key changed by another client while the transfer was in flight keeps its new value here
    /// (the target has the value that was sent).</summary>
    /// <param name="session">The migrating connection (its selected database).</param>
    /// <param name="moved">The keys the target acknowledged.</param>
    /// <param name="nowUnixMs">The current time in Unix milliseconds.</param>
    /// <param name="aof">The round's AOF sink (null: none).</param>
    /// <returns>How many keys were deleted.</returns>
    public int MigrateDelete(KvSession session, IReadOnlyList<KvMigrateItem> moved, long nowUnixMs, IAofSink? aof)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(moved);
        KvDatabase db = _dbs[(uint)session.Db < (uint)_dbs.Length ? session.Db : 0];
        var args = new List<byte[]>(moved.Count + 1) { "DEL"u8.ToArray() };
        foreach (KvMigrateItem item in moved)
        {
            KvEntry? e = Lookup(db, item.Key, nowUnixMs);
            if (e is null || e.ExpireAt != item.ExpireAtUnixMs) continue;
            // rdbcompression may have changed in between (it compresses the strings inside every type's payload): a
            // value is unchanged if either form matches.
            if (!KvDump.Serialize(e.Value, RdbCompression).AsSpan().SequenceEqual(item.Payload)
                && !KvDump.Serialize(e.Value, !RdbCompression).AsSpan().SequenceEqual(item.Payload)) continue;
            args.Add(item.Key);
        }
        if (args.Count == 1) return 0;
        var scratch = new System.Buffers.ArrayBufferWriter<byte>(16);
        Execute(session, KvCommand.Create([.. args]), nowUnixMs, new RespWriter(scratch), aof);
        return args.Count - 1;
    }
}
