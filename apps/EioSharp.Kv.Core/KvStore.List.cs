namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string LposRankZero = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
    private const string LposCountNegative = "ERR COUNT can't be negative";
    private const string LposMaxlenNegative = "ERR MAXLEN can't be negative";
    private const string NumkeysNotPositive = "ERR numkeys should be greater than 0";

    /// <summary>The List commands.</summary>
    internal static readonly KvCommandInfo[] ListCommands =
    [
        KvCommandTable.Data("lpush", -3, W, 1, 1, 1, static (s, in c) => s.Push(c, left: true, onlyExisting: false)),
        KvCommandTable.Data("rpush", -3, W, 1, 1, 1, static (s, in c) => s.Push(c, left: false, onlyExisting: false)),
        KvCommandTable.Data("lpushx", -3, W, 1, 1, 1, static (s, in c) => s.Push(c, left: true, onlyExisting: true)),
        KvCommandTable.Data("rpushx", -3, W, 1, 1, 1, static (s, in c) => s.Push(c, left: false, onlyExisting: true)),
        KvCommandTable.Data("lpop", -2, W, 1, 1, 1, static (s, in c) => s.Pop(c, left: true)),
        KvCommandTable.Data("rpop", -2, W, 1, 1, 1, static (s, in c) => s.Pop(c, left: false)),
        KvCommandTable.Data("llen", 2, R, 1, 1, 1, static (s, in c) => s.LLen(c)),
        KvCommandTable.Data("lrange", 4, R, 1, 1, 1, static (s, in c) => s.LRange(c)),
        KvCommandTable.Data("lindex", 3, R, 1, 1, 1, static (s, in c) => s.LIndex(c)),
        KvCommandTable.Data("lset", 4, W, 1, 1, 1, static (s, in c) => s.LSet(c)),
        KvCommandTable.Data("linsert", 5, W, 1, 1, 1, static (s, in c) => s.LInsert(c)),
        KvCommandTable.Data("lrem", 4, W, 1, 1, 1, static (s, in c) => s.LRem(c)),
        KvCommandTable.Data("ltrim", 4, W, 1, 1, 1, static (s, in c) => s.LTrim(c)),
        KvCommandTable.Data("lpos", -3, R, 1, 1, 1, static (s, in c) => s.LPos(c)),
        KvCommandTable.Data("lmove", 5, W, 1, 2, 1, static (s, in c) => s.LMove(c)),
        KvCommandTable.Data("rpoplpush", 3, W, 1, 2, 1, static (s, in c) => s.RPopLPush(c)),
        KvCommandTable.Data("lmpop", -4, W, 0, 0, 0, static (s, in c) => s.LMPop(c)),
    ];

    // ---------------------------------------------------------------- reusable parts (the blocking variants use them)

    /// <summary>Pushes arguments <paramref name="firstArg"/>.. of the command onto the list at <paramref name="key"/>
    /// (created when missing), in argument order, and reports <c>lpush</c>/<c>rpush</c>.</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="key">The key.</param>
    /// <param name="list">The key's live list, or null to create the list.</param>
    /// <param name="left">Push at the head (each element becomes the new head, as LPUSH does).</param>
    /// <param name="firstArg">Index of the first element argument.</param>
    /// <returns>The list's new length.</returns>
    internal long PushList(in Context ctx, ReadOnlySpan<byte> key, KvList? list, bool left, int firstArg)
    {
        list ??= AddListKey(ctx, key); // no handle; the holder of the list this key had a moment ago, when kept
        for (int i = firstArg; i < ctx.Count; i++) list.Push(ctx[i], left); // the small form copies the bytes: no array per element
        Changed(ctx, key, KvEventClass.List, left ? "lpush" : "rpush");
        return list.Count;
    }

    /// <summary>Pops up to <paramref name="count"/> elements from the list at <paramref name="key"/>, writes them as the
    /// reply, reports <c>lpop</c>/<c>rpop</c> (and <c>del</c> when the list is emptied) and logs
    /// <c>LPOP/RPOP key [n]</c>.</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="key">The key.</param>
    /// <param name="left">Pop from the head.</param>
    /// <param name="count">Elements to pop; less than 1: one element, replied as a bulk string (not an array).</param>
    /// <param name="withKey">Reply <c>[key, [elements]]</c> as LMPOP and BLMPOP do (needs <paramref name="count"/> of at least 1).</param>
    /// <returns>False when the key holds no list or an empty one (nothing replied, nothing changed); WRONGTYPE is
    /// the caller's to check.</returns>
    /// <param name="found">The key's live list when the caller looked it up already, else null (looked up here: by row
    /// when live, else the general lookup, which expires the key).</param>
    internal bool TryPopList(in Context ctx, ReadOnlySpan<byte> key, bool left, long count, bool withKey, KvList? found = null)
    {
        KvList? list = found ?? (TryFindLive(ctx, key, read: false, out KvList? live) ? live : Lookup(ctx, key)?.Value as KvList);
        if (list is null || list.Count == 0) return false;
        int n = count < 1 ? 1 : (int)Math.Min(count, list.Count);
        if (withKey)
        {
            ctx.Reply.WriteArrayHeader(2);
            ctx.Reply.WriteBulkString(key);
        }
        if (count < 1 && !withKey)
        {
            list.PopTo(left, ctx.Reply);
        }
        else
        {
            ctx.Reply.WriteArrayHeader(n);
            for (int i = 0; i < n; i++) list.PopTo(left, ctx.Reply);
        }
        if (ctx.Aof is not null)
        {
            // Built in the store's reused builder (no name array, argument arrays and command object per pop).
            KvCommandBuilder logged = LogBuilder().Add(left ? "LPOP"u8 : "RPOP"u8).Add(key);
            if (count >= 1 || withKey) logged.Add(n);
            ctx.Log(logged.Build());
        }
        Changed(ctx, key, KvEventClass.List, left ? "lpop" : "rpop");
        DeleteIfEmpty(ctx, key, list);
        return true;
    }

    /// <summary>Moves one element from the list at <paramref name="source"/> to the list at <paramref name="destination"/>
    /// (created when missing), as LMOVE does; reports the push on the destination, then the pop on the source. Does
    /// not reply or log.</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="source">The source key.</param>
    /// <param name="destination">The destination key (may be the source: a rotation).</param>
    /// <param name="fromLeft">Pop from the source's head.</param>
    /// <param name="toLeft">Push at the destination's head.</param>
    /// <param name="value">The moved element, or null when the source is missing or empty.</param>
    /// <returns>False when a key holds another type (WRONGTYPE written, nothing changed).</returns>
    internal bool TryMoveListElement(in Context ctx, ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, bool fromLeft, bool toLeft, out byte[]? value)
    {
        value = null;
        if (!TryLookupValue(ctx, source, read: false, out KvList? src)) return false;
        if (src is null || src.Count == 0) return true;
        if (!TryLookupValue(ctx, destination, read: false, out KvList? dst)) return false;
        value = src.Pop(fromLeft);
        dst ??= AddListKey(ctx, destination); // (the source, not emptied yet, is another key: dst was missing)
        dst.Push(value, toLeft);
        Changed(ctx, destination, KvEventClass.List, toLeft ? "lpush" : "rpush");
        Changed(ctx, source, KvEventClass.List, fromLeft ? "lpop" : "rpop");
        DeleteIfEmpty(ctx, source, src);
        return true;
    }

    // ---------------------------------------------------------------- commands

    private void Push(in Context ctx, bool left, bool onlyExisting)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvList? list)) return;
        if (onlyExisting && list is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        long length = PushList(ctx, key, list, left, 2);
        ctx.LogSelf();
        ctx.Reply.WriteInteger(length);
    }

    private void Pop(in Context ctx, bool left)
    {
        if (ctx.Count > 3)
        {
            ctx.Reply.WriteError(KvErrors.WrongArity(ctx.Name));
            return;
        }
        bool hasCount = ctx.Count == 3;
        long count = 0;
        if (hasCount && (!RespNumbers.TryParseInt64(ctx[2], out count) || count < 0))
        {
            ctx.Reply.WriteError(KvErrors.NotPositive);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvList? list)) return;
        if (list is null)
        {
            if (hasCount) ctx.Reply.WriteNullArray();
            else ctx.Reply.WriteNullBulkString();
            return;
        }
        if (hasCount && count == 0)
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        TryPopList(ctx, key, left, hasCount ? count : 0, withKey: false, list); // the list found above: no second lookup
    }

    private void LLen(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvList? list)) return;
        ctx.Reply.WriteInteger(list?.Count ?? 0);
    }

    /// <summary>Redis's index rules for LRANGE/LTRIM: negative from the end, clamped; false when the range is empty.</summary>
    private static bool ClampRange(long start, long end, long length, out int from, out int to)
    {
        from = to = 0;
        if (start < 0) start = length + start;
        if (end < 0) end = length + end;
        if (start < 0) start = 0;
        if (start > end || start >= length) return false;
        if (end >= length) end = length - 1;
        from = (int)start;
        to = (int)end;
        return true;
    }

    private void LRange(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long start) || !TryGetInt64(ctx, 3, out long end)) return;
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvList? list)) return;
        if (list is null || !ClampRange(start, end, list.Count, out int from, out int to))
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        ctx.Reply.WriteArrayHeader(to - from + 1);
        for (int i = from; i <= to; i++) ctx.Reply.WriteBulkString(list[i]);
    }

    private void LIndex(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvList? list)) return;
        if (list is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        if (!TryGetInt64(ctx, 2, out long index)) return;
        if (index < 0) index += list.Count;
        if (index < 0 || index >= list.Count) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(list[(int)index]);
    }

    private void LSet(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvList? list)) return;
        if (list is null)
        {
            ctx.Reply.WriteError(KvErrors.NoSuchKey);
            return;
        }
        if (!TryGetInt64(ctx, 2, out long index)) return;
        if (index < 0) index += list.Count;
        if (index < 0 || index >= list.Count)
        {
            ctx.Reply.WriteError(KvErrors.IndexOutOfRange);
            return;
        }
        list[(int)index] = ctx.Command.ToArray(3);
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.List, "lset");
        ctx.Reply.WriteOk();
    }

    private void LInsert(in Context ctx)
    {
        bool after;
        if (Is(ctx[2], "AFTER"u8)) after = true;
        else if (Is(ctx[2], "BEFORE"u8)) after = false;
        else
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvList? list)) return;
        if (list is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        ReadOnlySpan<byte> pivot = ctx[3];
        int at = -1;
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i].AsSpan().SequenceEqual(pivot))
            {
                at = i;
                break;
            }
        }
        if (at < 0)
        {
            ctx.Reply.WriteInteger(-1);
            return;
        }
        list.Insert(after ? at + 1 : at, ctx.Command.ToArray(4));
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.List, "linsert");
        ctx.Reply.WriteInteger(list.Count);
    }

    private void LRem(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long count)) return;
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvList? list)) return;
        if (list is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        byte[] element = ctx.Command.ToArray(3);
        long limit = count == 0 ? long.MaxValue : count == long.MinValue ? long.MaxValue : Math.Abs(count);
        long taken = 0;
        int removed = list.RemoveWhere(v =>
        {
            if (taken >= limit || !v.AsSpan().SequenceEqual(element)) return false;
            taken++;
            return true;
        }, fromTail: count < 0);
        if (removed > 0)
        {
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.List, "lrem");
            DeleteIfEmpty(ctx, key, list);
        }
        ctx.Reply.WriteInteger(removed);
    }

    private void LTrim(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long start) || !TryGetInt64(ctx, 3, out long end)) return;
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvList? list)) return;
        if (list is null)
        {
            ctx.Reply.WriteOk();
            return;
        }
        int before = list.Count;
        if (ClampRange(start, end, list.Count, out int from, out int to)) list.Keep(from, to - from + 1);
        else list.Keep(0, 0);
        if (list.Count != before) ctx.LogSelf();
        Changed(ctx, key, KvEventClass.List, "ltrim");
        DeleteIfEmpty(ctx, key, list);
        ctx.Reply.WriteOk();
    }

    private void LPos(in Context ctx)
    {
        long rank = 1, count = -1, maxlen = 0;
        for (int j = 3; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            bool more = j + 1 < ctx.Count;
            if (Is(opt, "RANK"u8) && more)
            {
                if (!TryGetInt64(ctx, ++j, out rank)) return;
                if (rank == 0)
                {
                    ctx.Reply.WriteError(LposRankZero);
                    return;
                }
            }
            else if (Is(opt, "COUNT"u8) && more)
            {
                if (!RespNumbers.TryParseInt64(ctx[++j], out count) || count < 0)
                {
                    ctx.Reply.WriteError(LposCountNegative);
                    return;
                }
            }
            else if (Is(opt, "MAXLEN"u8) && more)
            {
                if (!RespNumbers.TryParseInt64(ctx[++j], out maxlen) || maxlen < 0)
                {
                    ctx.Reply.WriteError(LposMaxlenNegative);
                    return;
                }
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        bool hasCount = count >= 0;
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvList? list)) return;
        if (list is null)
        {
            if (hasCount) ctx.Reply.WriteArrayHeader(0);
            else ctx.Reply.WriteNullBulkString();
            return;
        }
        bool fromTail = rank < 0;
        if (fromTail) rank = unchecked(-rank); // LONG_MIN stays negative, as in Redis: every match qualifies
        ReadOnlySpan<byte> element = ctx[2];
        int length = list.Count;
        List<long>? found = hasCount ? [] : null;
        long matches = 0;
        for (long index = 0; index < length && (maxlen == 0 || index < maxlen); index++)
        {
            int at = fromTail ? length - 1 - (int)index : (int)index;
            if (!list[at].AsSpan().SequenceEqual(element)) continue;
            matches++;
            if (matches < rank) continue;
            if (found is null)
            {
                ctx.Reply.WriteInteger(at);
                return;
            }
            found.Add(at);
            if (count != 0 && unchecked(matches - rank + 1) >= count) break;
        }
        if (found is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        ctx.Reply.WriteArrayHeader(found.Count);
        foreach (long at in found) ctx.Reply.WriteInteger(at);
    }

    private static bool TryParseSide(ReadOnlySpan<byte> arg, out bool left)
    {
        left = Is(arg, "LEFT"u8);
        return left || Is(arg, "RIGHT"u8);
    }

    private void LMove(in Context ctx)
    {
        if (!TryParseSide(ctx[3], out bool fromLeft) || !TryParseSide(ctx[4], out bool toLeft))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        MoveAndReply(ctx, fromLeft, toLeft);
    }

    private void RPopLPush(in Context ctx) => MoveAndReply(ctx, fromLeft: false, toLeft: true);

    private void MoveAndReply(in Context ctx, bool fromLeft, bool toLeft)
    {
        if (!TryMoveListElement(ctx, ctx[1], ctx[2], fromLeft, toLeft, out byte[]? value)) return;
        if (value is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        ctx.LogSelf();
        ctx.Reply.WriteBulkString(value);
    }

    /// <summary>Parses <c>numkeys key... LEFT|RIGHT [COUNT n]</c> starting at argument <paramref name="numkeysIndex"/>,
    /// as LMPOP and BLMPOP take it; writes the error and returns false when it is not valid.</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="numkeysIndex">Index of the numkeys argument.</param>
    /// <param name="numkeys">Number of keys (the keys follow numkeys).</param>
    /// <param name="left">Pop from the head.</param>
    /// <param name="count">Elements to pop (1 when COUNT is absent).</param>
    internal static bool TryParseMPop(in Context ctx, int numkeysIndex, out int numkeys, out bool left, out long count)
    {
        numkeys = 0;
        left = false;
        count = -1;
        if (!RespNumbers.TryParseInt64(ctx[numkeysIndex], out long n) || n < 1)
        {
            ctx.Reply.WriteError(NumkeysNotPositive);
            return false;
        }
        if (n >= ctx.Count - numkeysIndex - 1)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return false;
        }
        numkeys = (int)n;
        int whereIndex = numkeysIndex + numkeys + 1;
        if (!TryParseSide(ctx[whereIndex], out left))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return false;
        }
        for (int j = whereIndex + 1; j < ctx.Count; j++)
        {
            if (count == -1 && Is(ctx[j], "COUNT"u8) && j + 1 < ctx.Count)
            {
                if (!RespNumbers.TryParseInt64(ctx[++j], out count) || count < 1)
                {
                    ctx.Reply.WriteError(KvErrors.CountNotPositive);
                    return false;
                }
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return false;
            }
        }
        if (count == -1) count = 1;
        return true;
    }

    private void LMPop(in Context ctx)
    {
        if (!TryParseMPop(ctx, 1, out int numkeys, out bool left, out long count)) return;
        for (int i = 2; i < 2 + numkeys; i++)
        {
            if (!TryLookupValue(ctx, ctx[i], read: false, out KvList? list)) return;
            if (list is null) continue;
            if (TryPopList(ctx, ctx[i], left, count, withKey: true, list)) return;
        }
        ctx.Reply.WriteNullArray();
    }
}
