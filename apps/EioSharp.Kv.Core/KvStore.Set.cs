namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string SpopCountNotPositive = "ERR value is out of range, must be positive";
    private const string NumKeysNotPositive = "ERR numkeys should be greater than 0";
    private const string NumKeysTooMany = "ERR Number of keys can't be greater than number of args";
    private const string LimitNegative = "ERR LIMIT can't be negative";
    private const int SpopMoveStrategyMultiplier = 5; // Redis's SPOP_MOVE_STRATEGY_MUL

    /// <summary>The Set commands.</summary>
    internal static readonly KvCommandInfo[] SetCommands =
    [
        KvCommandTable.Data("sadd", -3, W, 1, 1, 1, static (s, in c) => s.SAdd(c)),
        KvCommandTable.Data("srem", -3, W, 1, 1, 1, static (s, in c) => s.SRem(c)),
        KvCommandTable.Data("smembers", 2, R, 1, 1, 1, static (s, in c) => s.SMembers(c)),
        KvCommandTable.Data("sismember", 3, R, 1, 1, 1, static (s, in c) => s.SIsMember(c)),
        KvCommandTable.Data("smismember", -3, R, 1, 1, 1, static (s, in c) => s.SMIsMember(c)),
        KvCommandTable.Data("scard", 2, R, 1, 1, 1, static (s, in c) => s.SCard(c)),
        KvCommandTable.Data("spop", -2, W, 1, 1, 1, static (s, in c) => s.SPop(c)),
        KvCommandTable.Data("srandmember", -2, R, 1, 1, 1, static (s, in c) => s.SRandMember(c)),
        KvCommandTable.Data("smove", 4, W, 1, 2, 1, static (s, in c) => s.SMove(c)),
        KvCommandTable.Data("sinter", -2, R, 1, -1, 1, static (s, in c) => s.SetOperation(c, SetOp.Inter, store: false)),
        KvCommandTable.Data("sintercard", -3, R, 2, 2, 1, static (s, in c) => s.SInterCard(c)),
        KvCommandTable.Data("sinterstore", -3, W, 1, -1, 1, static (s, in c) => s.SetOperation(c, SetOp.Inter, store: true)),
        KvCommandTable.Data("sunion", -2, R, 1, -1, 1, static (s, in c) => s.SetOperation(c, SetOp.Union, store: false)),
        KvCommandTable.Data("sunionstore", -3, W, 1, -1, 1, static (s, in c) => s.SetOperation(c, SetOp.Union, store: true)),
        KvCommandTable.Data("sdiff", -2, R, 1, -1, 1, static (s, in c) => s.SetOperation(c, SetOp.Diff, store: false)),
        KvCommandTable.Data("sdiffstore", -3, W, 1, -1, 1, static (s, in c) => s.SetOperation(c, SetOp.Diff, store: true)),
        KvCommandTable.Data("sscan", -3, R, 1, 1, 1, static (s, in c) => s.SScan(c)),
    ];

    private enum SetOp { Inter, Union, Diff }

    private void SAdd(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvSet? set)) return;
        if (set is null)
        {
            set = KvSet.CreateFor(ctx[2]);
            AddKey(ctx, key, set);
        }
        long added = 0;
        for (int j = 2; j < ctx.Count; j++)
            if (set.Add(ctx[j], Encodings)) added++;
        if (added > 0)
        {
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.Set, "sadd");
        }
        ctx.Reply.WriteInteger(added);
    }

    private void SRem(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: false, out KvSet? set)) return;
        long removed = 0;
        if (set is not null)
        {
            for (int j = 2; j < ctx.Count; j++)
            {
                if (!set.Remove(ctx[j])) continue;
                removed++;
                if (set.Count == 0) break; // Redis stops once the set is empty
            }
        }
        if (removed > 0)
        {
            ctx.LogSelf();
            Changed(ctx, ctx[1], KvEventClass.Set, "srem");
            DeleteIfEmpty(ctx, ctx[1], set!);
        }
        ctx.Reply.WriteInteger(removed);
    }

    private void SMembers(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? set)) return;
        WriteSet(ctx, set);
    }

    private static void WriteSet(in Context ctx, KvSet? set)
    {
        ctx.Reply.WriteSetHeader(set?.Count ?? 0);
        if (set is null) return;
        foreach (byte[] member in set.Members()) ctx.Reply.WriteBulkString(member);
    }

    private void SIsMember(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? set)) return;
        ctx.Reply.WriteInteger(set is not null && set.Contains(ctx[2]) ? 1 : 0);
    }

    private void SMIsMember(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? set)) return;
        ctx.Reply.WriteArrayHeader(ctx.Count - 2);
        for (int j = 2; j < ctx.Count; j++) ctx.Reply.WriteInteger(set is not null && set.Contains(ctx[j]) ? 1 : 0);
    }

    private void SCard(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? set)) return;
        ctx.Reply.WriteInteger(set?.Count ?? 0);
    }

    private void SPop(in Context ctx)
    {
        if (ctx.Count > 3)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (ctx.Count == 2)
        {
            if (!TryLookupValue(ctx, key, read: false, out KvSet? single)) return;
            if (single is null)
            {
                ctx.Reply.WriteNullBulkString();
                return;
            }
            byte[] member = single.Random(_random);
            single.Remove(member);
            if (ctx.Aof is not null) ctx.Log(LogBuilder().Add("SREM"u8).Add(key).Add(member).Build()); // the effect, not the random command
            Changed(ctx, key, KvEventClass.Set, "spop");
            DeleteIfEmpty(ctx, key, single);
            ctx.Reply.WriteBulkString(member);
            return;
        }
        if (!RespNumbers.TryParseInt64(ctx[2], out long count) || count < 0)
        {
            ctx.Reply.WriteError(SpopCountNotPositive);
            return;
        }
        if (!TryLookup(ctx, key, read: false, out KvEntry? e, out KvSet? set)) return;
        if (set is null || count == 0)
        {
            ctx.Reply.WriteSetHeader(0);
            return;
        }
        int size = set.Count;
        if (count >= size)
        {
            // The whole set, replied like SUNION of the key (a new intset-first set, so integers come ascending), and
            // logged as DEL, like Redis 7.
            WriteSet(ctx, Combine([set], SetOp.Union));
            DeleteKey(ctx, e!);
            ctx.Log("DEL"u8.ToArray(), e!.Key);
            Changed(ctx, key, KvEventClass.Set, "spop");
            Changed(ctx, key, KvEventClass.Generic, "del");
            return;
        }
        var popped = new List<byte[]>((int)count + 2) { "SREM"u8.ToArray(), e!.Key };
        long remaining = size - count;
        if (remaining * SpopMoveStrategyMultiplier > count)
        {
            for (long i = 0; i < count; i++)
            {
                byte[] member = set.Random(_random);
                set.Remove(member);
                popped.Add(member);
            }
        }
        else
        {
            // Most of the set goes: pick the members that stay into a new set (whose encoding Redis's setTypeCreate
            // and setTypeAdd choose, so a hashtable of integers may become an intset) and pop the rest.
            var kept = new List<byte[]>((int)remaining);
            for (long i = 0; i < remaining; i++)
            {
                byte[] member = set.Random(_random);
                set.Remove(member);
                kept.Add(member);
            }
            popped.AddRange(set.Members());
            KvSet newSet = KvSet.CreateFor(kept[0]);
            foreach (byte[] member in kept) newSet.Add(member, Encodings);
            ctx.Db.Replace(e, newSet);
        }
        ctx.Reply.WriteSetHeader(popped.Count - 2);
        for (int i = 2; i < popped.Count; i++) ctx.Reply.WriteBulkString(popped[i]);
        ctx.Log([.. popped]);
        Changed(ctx, key, KvEventClass.Set, "spop");
    }

    private void SRandMember(in Context ctx)
    {
        if (ctx.Count > 3)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (ctx.Count == 2)
        {
            if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? single)) return;
            if (single is null) ctx.Reply.WriteNullBulkString();
            else ctx.Reply.WriteBulkString(single.Random(_random));
            return;
        }
        if (!TryGetRandomCount(ctx, 2, out long count)) return;
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? set)) return;
        if (set is null || count == 0)
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
            ctx.Reply.WriteArrayHeader(n);
            for (int i = 0; i < n; i++) ctx.Reply.WriteBulkString(set.Random(_random));
            return;
        }
        List<byte[]> picked = count >= set.Count
            ? [.. set.Members()]
            : PickDistinct(set.Count, (int)count, () => set.Random(_random), () => [.. set.Members()], m => m);
        ctx.Reply.WriteArrayHeader(picked.Count);
        foreach (byte[] member in picked) ctx.Reply.WriteBulkString(member);
    }

    private void SMove(in Context ctx)
    {
        ReadOnlySpan<byte> source = ctx[1], destination = ctx[2], member = ctx[3];
        KvEntry? src = Lookup(ctx, source);
        KvEntry? dst = Lookup(ctx, destination);
        if (src is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        if (src.Value is not KvSet srcSet || (dst is not null && dst.Value is not KvSet))
        {
            ctx.Reply.WriteError(KvErrors.WrongType);
            return;
        }
        if (src == dst)
        {
            ctx.Reply.WriteInteger(srcSet.Contains(member) ? 1 : 0);
            return;
        }
        if (!srcSet.Remove(member))
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        ctx.LogSelf();
        Changed(ctx, source, KvEventClass.Set, "srem");
        DeleteIfEmpty(ctx, src);
        KvSet dstSet;
        if (dst is null)
        {
            dstSet = KvSet.CreateFor(member);
            AddKey(ctx, destination, dstSet);
        }
        else
        {
            dstSet = (KvSet)dst.Value;
        }
        if (dstSet.Add(member, Encodings)) Changed(ctx, destination, KvEventClass.Set, "sadd");
        ctx.Reply.WriteInteger(1);
    }

    /// <summary>Looks up the source sets (every key is type-checked, like Redis); a missing key is null.</summary>
    private bool TryLookupSets(in Context ctx, int first, int count, out KvSet?[] sets)
    {
        sets = new KvSet?[count];
        for (int i = 0; i < count; i++)
        {
            KvEntry? e = LookupRead(ctx, ctx[first + i]);
            if (e is null) continue;
            if (e.Value is not KvSet set)
            {
                ctx.Reply.WriteError(KvErrors.WrongType);
                return false;
            }
            sets[i] = set;
        }
        return true;
    }

    /// <summary>The intersection in the order of the smallest set's members (Redis's order); stops at <paramref name="limit"/> (0: none).</summary>
    private static List<byte[]> Intersect(KvSet?[] sets, long limit)
    {
        var result = new List<byte[]>();
        if (sets.Any(s => s is null)) return result;
        KvSet[] bySize = [.. sets.Select(s => s!).OrderBy(s => s.Count)];
        foreach (byte[] member in bySize[0].Members())
        {
            bool inAll = true;
            for (int j = 1; j < bySize.Length && inAll; j++)
                if (!ReferenceEquals(bySize[j], bySize[0])) inAll = bySize[j].Contains(member);
            if (!inAll) continue;
            result.Add(member);
            if (limit > 0 && result.Count >= limit) break;
        }
        return result;
    }

    private KvSet Combine(KvSet?[] sets, SetOp op)
    {
        // Redis builds every result into a new intset-first set (createIntsetObject + setTypeAdd).
        KvSet result = KvSet.CreateIntset();
        switch (op)
        {
            case SetOp.Inter:
                foreach (byte[] member in Intersect(sets, 0)) result.Add(member, Encodings);
                break;
            case SetOp.Union:
                foreach (KvSet? set in sets)
                    if (set is not null) foreach (byte[] member in set.Members()) result.Add(member, Encodings);
                break;
            default:
                if (sets[0] is not KvSet first) break;
                foreach (byte[] member in first.Members())
                {
                    bool elsewhere = false;
                    for (int j = 1; j < sets.Length && !elsewhere; j++) elsewhere = sets[j] is { } other && other.Contains(member);
                    if (!elsewhere) result.Add(member, Encodings);
                }
                break;
        }
        return result;
    }

    private void SetOperation(in Context ctx, SetOp op, bool store)
    {
        int first = store ? 2 : 1;
        if (!TryLookupSets(ctx, first, ctx.Count - first, out KvSet?[] sets)) return;
        if (!store)
        {
            if (op == SetOp.Inter)
            {
                List<byte[]> members = Intersect(sets, 0);
                ctx.Reply.WriteSetHeader(members.Count);
                foreach (byte[] member in members) ctx.Reply.WriteBulkString(member);
            }
            else
            {
                WriteSet(ctx, Combine(sets, op));
            }
            return;
        }
        KvSet result = Combine(sets, op);
        ReadOnlySpan<byte> destination = ctx[1];
        KvEntry? existing = Lookup(ctx, destination);
        if (result.Count == 0)
        {
            if (existing is not null)
            {
                DeleteKey(ctx, existing);
                ctx.LogSelf();
                Changed(ctx, destination, KvEventClass.Generic, "del");
            }
            ctx.Reply.WriteInteger(0);
            return;
        }
        SetKey(ctx, destination, existing, result, -1, keepTtl: false);
        ctx.LogSelf();
        Changed(ctx, destination, KvEventClass.Set, op switch { SetOp.Inter => "sinterstore", SetOp.Union => "sunionstore", _ => "sdiffstore" });
        ctx.Reply.WriteInteger(result.Count);
    }

    private void SInterCard(in Context ctx)
    {
        if (!RespNumbers.TryParseInt64(ctx[1], out long numKeys) || numKeys < 1)
        {
            ctx.Reply.WriteError(NumKeysNotPositive);
            return;
        }
        if (numKeys > ctx.Count - 2)
        {
            ctx.Reply.WriteError(NumKeysTooMany);
            return;
        }
        long limit = 0;
        for (int j = 2 + (int)numKeys; j < ctx.Count; j++)
        {
            if (Is(ctx[j], "LIMIT"u8) && j + 1 < ctx.Count)
            {
                j++;
                if (!RespNumbers.TryParseInt64(ctx[j], out limit) || limit < 0)
                {
                    ctx.Reply.WriteError(LimitNegative);
                    return;
                }
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (!TryLookupSets(ctx, 2, (int)numKeys, out KvSet?[] sets)) return;
        ctx.Reply.WriteInteger(Intersect(sets, limit).Count);
    }

    private void SScan(in Context ctx)
    {
        // Redis's order: the cursor, then the key (a missing key is an empty scan whatever the options), then the options.
        if (!TryParseScanCursor(ctx[2], out ulong cursor))
        {
            ctx.Reply.WriteError(KvErrors.InvalidCursor);
            return;
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvSet? set)) return;
        if (set is null)
        {
            WriteScanReply(ctx, 0, 0);
            return;
        }
        if (!TryParseCollectionScanOptions(ctx, out long count, out byte[]? pattern)) return;
        var found = new List<byte[]>();
        ulong next = set.Scan(cursor, count, found);
        if (pattern is not null) found.RemoveAll(m => !GlobPattern.IsMatch(pattern, m));
        WriteScanReply(ctx, next, found.Count);
        foreach (byte[] member in found) ctx.Reply.WriteBulkString(member);
    }
}
