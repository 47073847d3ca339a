using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string HashIncrementNotFinite = "ERR value is NaN or Infinity";
    private const string RandomCountOutOfRange = "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
    private const string ValueOutOfRange = "ERR value is out of range";
    private const long MaxRandomReplies = int.MaxValue; // a larger negative count would only exhaust memory (redis-server dies)

    /// <summary>The Hash commands.</summary>
    internal static readonly KvCommandInfo[] HashCommands =
    [
        KvCommandTable.Data("hset", -4, W, 1, 1, 1, static (s, in c) => s.HSet(c, multi: false)),
        KvCommandTable.Data("hmset", -4, W, 1, 1, 1, static (s, in c) => s.HSet(c, multi: true)),
        KvCommandTable.Data("hsetnx", 4, W, 1, 1, 1, static (s, in c) => s.HSetNx(c)),
        KvCommandTable.Data("hget", 3, R, 1, 1, 1, static (s, in c) => s.HGet(c)),
        KvCommandTable.Data("hmget", -3, R, 1, 1, 1, static (s, in c) => s.HMGet(c)),
        KvCommandTable.Data("hdel", -3, W, 1, 1, 1, static (s, in c) => s.HDel(c)),
        KvCommandTable.Data("hexists", 3, R, 1, 1, 1, static (s, in c) => s.HExists(c)),
        KvCommandTable.Data("hlen", 2, R, 1, 1, 1, static (s, in c) => s.HLen(c)),
        KvCommandTable.Data("hstrlen", 3, R, 1, 1, 1, static (s, in c) => s.HStrLen(c)),
        KvCommandTable.Data("hkeys", 2, R, 1, 1, 1, static (s, in c) => s.HGetAll(c, keys: true, values: false)),
        KvCommandTable.Data("hvals", 2, R, 1, 1, 1, static (s, in c) => s.HGetAll(c, keys: false, values: true)),
        KvCommandTable.Data("hgetall", 2, R, 1, 1, 1, static (s, in c) => s.HGetAll(c, keys: true, values: true)),
        KvCommandTable.Data("hincrby", 4, W, 1, 1, 1, static (s, in c) => s.HIncrBy(c)),
        KvCommandTable.Data("hincrbyfloat", 4, W, 1, 1, 1, static (s, in c) => s.HIncrByFloat(c)),
        KvCommandTable.Data("hrandfield", -2, R, 1, 1, 1, static (s, in c) => s.HRandField(c)),
        KvCommandTable.Data("hscan", -3, R, 1, 1, 1, static (s, in c) => s.HScan(c)),
    ];

    /// <summary>The hash at <paramref name="key"/>, created (and added to the keyspace) when missing; false after WRONGTYPE.</summary>
    private bool TryGetOrCreateHash(in Context ctx, ReadOnlySpan<byte> key, out KvHash hash)
    {
        hash = null!;
        if (!TryLookupValue(ctx, key, read: false, out KvHash? found)) return false;
        if (found is null)
        {
            found = new KvHash();
            AddKey(ctx, key, found);
        }
        hash = found;
        return true;
    }

    private void HSet(in Context ctx, bool multi)
    {
        if (ctx.Count % 2 == 1)
        {
            ctx.Reply.WriteError(KvErrors.WrongArity(ctx.Name));
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryGetOrCreateHash(ctx, key, out KvHash hash)) return;
        for (int j = 2; j < ctx.Count; j++) hash.ConvertForLength(ctx[j].Length, Encodings);
        long created = 0;
        for (int j = 2; j < ctx.Count; j += 2)
            if (hash.Set(ctx[j], ctx[j + 1], Encodings)) created++; // spans: copied once, into the hash
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.Hash, "hset");
        if (multi) ctx.Reply.WriteOk();
        else ctx.Reply.WriteInteger(created);
    }

    private void HSetNx(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvHash? hash)) return;
        if (hash is not null && hash.Contains(ctx[2]))
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        if (hash is null)
        {
            hash = new KvHash();
            AddKey(ctx, key, hash);
        }
        hash.ConvertForLength(ctx[2].Length, Encodings);
        hash.ConvertForLength(ctx[3].Length, Encodings);
        hash.Set(ctx.Command.ToArray(2), ctx.Command.ToArray(3), Encodings);
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.Hash, "hset");
        ctx.Reply.WriteInteger(1);
    }

    private void HGet(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        byte[]? value = hash?.Get(ctx[2]);
        if (value is null) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(value);
    }

    private void HMGet(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        ctx.Reply.WriteArrayHeader(ctx.Count - 2);
        for (int j = 2; j < ctx.Count; j++)
        {
            byte[]? value = hash?.Get(ctx[j]);
            if (value is null) ctx.Reply.WriteNullBulkString();
            else ctx.Reply.WriteBulkString(value);
        }
    }

    private void HDel(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: false, out KvHash? hash)) return;
        long deleted = 0;
        if (hash is not null)
        {
            for (int j = 2; j < ctx.Count; j++)
            {
                if (!hash.Remove(ctx[j])) continue;
                deleted++;
                if (hash.Count == 0) break; // Redis stops once the hash is empty
            }
        }
        if (deleted > 0)
        {
            ctx.LogSelf();
            Changed(ctx, ctx[1], KvEventClass.Hash, "hdel");
            DeleteIfEmpty(ctx, ctx[1], hash!);
        }
        ctx.Reply.WriteInteger(deleted);
    }

    private void HExists(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        ctx.Reply.WriteInteger(hash is not null && hash.Contains(ctx[2]) ? 1 : 0);
    }

    private void HLen(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        ctx.Reply.WriteInteger(hash?.Count ?? 0);
    }

    private void HStrLen(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        ctx.Reply.WriteInteger(hash?.Get(ctx[2])?.Length ?? 0);
    }

    private void HGetAll(in Context ctx, bool keys, bool values)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        int count = hash?.Count ?? 0;
        if (keys && values) ctx.Reply.WriteMapHeader(count);
        else ctx.Reply.WriteArrayHeader(count);
        if (hash is null) return;
        foreach (KeyValuePair<byte[], byte[]> pair in hash.Entries())
        {
            if (keys) ctx.Reply.WriteBulkString(pair.Key);
            if (values) ctx.Reply.WriteBulkString(pair.Value);
        }
    }

    private void HIncrBy(in Context ctx)
    {
        if (!TryGetInt64(ctx, 3, out long increment)) return;
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryGetOrCreateHash(ctx, key, out KvHash hash)) return;
        long current = 0;
        byte[]? old = hash.Get(ctx[2]);
        if (old is not null && !RespNumbers.TryParseInt64(old, out current))
        {
            ctx.Reply.WriteError(KvErrors.HashValueNotInteger);
            return;
        }
        if ((increment < 0 && current < 0 && increment < long.MinValue - current) ||
            (increment > 0 && current > 0 && increment > long.MaxValue - current))
        {
            ctx.Reply.WriteError(KvErrors.Overflow);
            return;
        }
        long result = current + increment;
        hash.Set(ctx.Command.ToArray(2), Bytes(result), Encodings);
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.Hash, "hincrby");
        ctx.Reply.WriteInteger(result);
    }

    private void HIncrByFloat(in Context ctx)
    {
        if (!LongDouble.TryParse(ctx[3], out LongDouble increment))
        {
            ctx.Reply.WriteError(KvErrors.NotFloat);
            return;
        }
        if (increment.IsInfinity)
        {
            ctx.Reply.WriteError(HashIncrementNotFinite);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryGetOrCreateHash(ctx, key, out KvHash hash)) return;
        LongDouble current = default;
        byte[]? old = hash.Get(ctx[2]);
        if (old is not null && !LongDouble.TryParse(old, out current))
        {
            ctx.Reply.WriteError(KvErrors.HashValueNotFloat);
            return;
        }
        LongDouble result = current + increment;
        if (result.IsInfinity || result.IsNaN)
        {
            ctx.Reply.WriteError(KvErrors.NaNOrInfinity);
            return;
        }
        byte[] value = Encoding.ASCII.GetBytes(result.ToHumanString());
        byte[] field = ctx.Command.ToArray(2);
        hash.Set(field, value, Encodings);
        // Logged as HSET of the result, like Redis: replay must not depend on float arithmetic.
        ctx.Log("HSET"u8.ToArray(), key.ToArray(), field, value);
        Changed(ctx, key, KvEventClass.Hash, "hincrbyfloat");
        ctx.Reply.WriteBulkString(value);
    }

    /// <summary>Parses the count of HRANDFIELD/SRANDMEMBER like Redis's getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX).</summary>
    private static bool TryGetRandomCount(in Context ctx, int index, out long count)
    {
        if (!TryGetInt64(ctx, index, out count)) return false;
        if (count == long.MinValue)
        {
            ctx.Reply.WriteError(RandomCountOutOfRange);
            return false;
        }
        return true;
    }

    private void HRandField(in Context ctx)
    {
        if (ctx.Count == 2)
        {
            if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? single)) return;
            if (single is null) ctx.Reply.WriteNullBulkString();
            else ctx.Reply.WriteBulkString(single.Random(_random).Key);
            return;
        }
        if (!TryGetRandomCount(ctx, 2, out long count)) return;
        bool withValues = false;
        if (ctx.Count > 4 || (ctx.Count == 4 && !Is(ctx[3], "WITHVALUES"u8)))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (ctx.Count == 4)
        {
            withValues = true;
            if (count < -long.MaxValue / 2 || count > long.MaxValue / 2)
            {
                ctx.Reply.WriteError(ValueOutOfRange);
                return;
            }
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        if (hash is null || count == 0)
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        if (count < 0)
        {
            // Repetitions allowed: each pick is independent.
            if (-count > MaxRandomReplies)
            {
                ctx.Reply.WriteError(ValueOutOfRange);
                return;
            }
            int n = (int)-count;
            WriteRandomPairsHeader(ctx, n, withValues);
            for (int i = 0; i < n; i++) WriteRandomPair(ctx, hash.Random(_random), withValues);
            return;
        }
        List<KeyValuePair<byte[], byte[]>> picked = count >= hash.Count
            ? [.. hash.Entries()]
            : PickDistinct(hash.Count, (int)count, () => hash.Random(_random), () => [.. hash.Entries()], p => p.Key);
        WriteRandomPairsHeader(ctx, picked.Count, withValues);
        foreach (KeyValuePair<byte[], byte[]> pair in picked) WriteRandomPair(ctx, pair, withValues);
    }

    private static void WriteRandomPairsHeader(in Context ctx, int pairs, bool withValues) =>
        ctx.Reply.WriteArrayHeader(withValues && !ctx.Reply.IsResp3 ? pairs * 2 : pairs);

    private static void WriteRandomPair(in Context ctx, KeyValuePair<byte[], byte[]> pair, bool withValues)
    {
        if (withValues && ctx.Reply.IsResp3) ctx.Reply.WriteArrayHeader(2);
        ctx.Reply.WriteBulkString(pair.Key);
        if (withValues) ctx.Reply.WriteBulkString(pair.Value);
    }

    /// <summary><paramref name="count"/> distinct random elements of a collection of <paramref name="size"/>
    /// (count &lt; size), like Redis: when count is close to size, remove random elements from a copy of all of them;
    /// otherwise pick random elements until enough distinct ones were found (no copy).</summary>
    private List<T> PickDistinct<T>(int size, int count, Func<T> random, Func<List<T>> all, Func<T, byte[]> identity)
    {
        if ((long)count * 3 > size)
        {
            List<T> items = all();
            while (items.Count > count)
            {
                int i = _random.Next(items.Count);
                items[i] = items[^1];
                items.RemoveAt(items.Count - 1);
            }
            return items;
        }
        var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
        var picked = new List<T>(count);
        while (picked.Count < count)
        {
            T item = random();
            if (seen.Add(identity(item))) picked.Add(item);
        }
        return picked;
    }

    /// <summary>Parses HSCAN/SSCAN options after the cursor (COUNT n, MATCH pattern), like Redis's scanGenericCommand.</summary>
    private static bool TryParseCollectionScanOptions(in Context ctx, out long count, out byte[]? pattern)
    {
        count = 10;
        pattern = null;
        for (int j = 3; j < ctx.Count; j += 2)
        {
            bool hasValue = j + 1 < ctx.Count;
            if (hasValue && Is(ctx[j], "COUNT"u8))
            {
                if (!TryGetInt64(ctx, j + 1, out count)) return false;
                if (count < 1)
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return false;
                }
            }
            else if (hasValue && Is(ctx[j], "MATCH"u8))
            {
                pattern = ctx.Command.ToArray(j + 1);
                if (GlobPattern.MatchesAll(pattern)) pattern = null;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return false;
            }
        }
        return true;
    }

    private static void WriteScanReply(in Context ctx, ulong cursor, int items)
    {
        ctx.Reply.WriteArrayHeader(2);
        ctx.Reply.WriteBulkString(cursor.ToString(CultureInfo.InvariantCulture));
        ctx.Reply.WriteArrayHeader(items);
    }

    private void HScan(in Context ctx)
    {
        // Redis's order: the cursor, then the key (a missing key is an empty scan whatever the options), then the options.
        if (!TryParseScanCursor(ctx[2], out ulong cursor))
        {
            ctx.Reply.WriteError(KvErrors.InvalidCursor);
            return;
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvHash? hash)) return;
        if (hash is null)
        {
            WriteScanReply(ctx, 0, 0);
            return;
        }
        if (!TryParseCollectionScanOptions(ctx, out long count, out byte[]? pattern)) return;
        var found = new List<KeyValuePair<byte[], byte[]>>();
        ulong next = hash.Scan(cursor, count, found);
        if (pattern is not null) found.RemoveAll(p => !GlobPattern.IsMatch(pattern, p.Key));
        WriteScanReply(ctx, next, found.Count * 2);
        foreach (KeyValuePair<byte[], byte[]> pair in found)
        {
            ctx.Reply.WriteBulkString(pair.Key);
            ctx.Reply.WriteBulkString(pair.Value);
        }
    }
}
