using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string ZErrNaN = "ERR resulting score is not a number (NaN)";
    private const string ZErrXxNx = "ERR XX and NX options at the same time are not compatible";
    private const string ZErrGtLtNx = "ERR GT, LT, and/or NX options at the same time are not compatible";
    private const string ZErrIncrPair = "ERR INCR option supports a single increment-element pair";
    private const string ZErrLimitRank = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    private const string ZErrWithScoresLex = "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
    private const string ZErrWeight = "ERR weight value is not a float";
    private const string ZErrNumKeys = "ERR numkeys should be greater than 0";
    private const string ZErrCount = "ERR count should be greater than 0";
    private const string ZErrLimitNegative = "ERR LIMIT can't be negative";
    private const string ZErrOutOfRange = "ERR value is out of range";

    /// <summary>The ZSet commands.</summary>
    internal static readonly KvCommandInfo[] ZSetCommands =
    [
        KvCommandTable.Data("zadd", -4, W, 1, 1, 1, static (s, in c) => s.ZAdd(c, incrCommand: false)),
        KvCommandTable.Data("zincrby", 4, W, 1, 1, 1, static (s, in c) => s.ZAdd(c, incrCommand: true)),
        KvCommandTable.Data("zrem", -3, W, 1, 1, 1, static (s, in c) => s.ZRem(c)),
        KvCommandTable.Data("zcard", 2, R, 1, 1, 1, static (s, in c) => s.ZCard(c)),
        KvCommandTable.Data("zcount", 4, R, 1, 1, 1, static (s, in c) => s.ZCount(c, lex: false)),
        KvCommandTable.Data("zlexcount", 4, R, 1, 1, 1, static (s, in c) => s.ZCount(c, lex: true)),
        KvCommandTable.Data("zscore", 3, R, 1, 1, 1, static (s, in c) => s.ZScore(c)),
        KvCommandTable.Data("zmscore", -3, R, 1, 1, 1, static (s, in c) => s.ZMScore(c)),
        KvCommandTable.Data("zrank", 3, R, 1, 1, 1, static (s, in c) => s.ZRank(c, reverse: false)),
        KvCommandTable.Data("zrevrank", 3, R, 1, 1, 1, static (s, in c) => s.ZRank(c, reverse: true)),
        KvCommandTable.Data("zrange", -4, R, 1, 1, 1, static (s, in c) => s.ZRange(c, 1, null, ZRangeType.Auto, ZDirection.Auto)),
        KvCommandTable.Data("zrangestore", -5, W, 1, 2, 1, static (s, in c) => s.ZRange(c, 2, c[1].ToArray(), ZRangeType.Auto, ZDirection.Auto)),
        KvCommandTable.Data("zrevrange", -4, R, 1, 1, 1, static (s, in c) => s.ZRange(c, 1, null, ZRangeType.Rank, ZDirection.Reverse)),
        KvCommandTable.Data("zrangebyscore", -4, R, 1, 1, 1, static (s, in c) => s.ZRange(c, 1, null, ZRangeType.Score, ZDirection.Forward)),
        KvCommandTable.Data("zrevrangebyscore", -4, R, 1, 1, 1, static (s, in c) => s.ZRange(c, 1, null, ZRangeType.Score, ZDirection.Reverse)),
        KvCommandTable.Data("zrangebylex", -4, R, 1, 1, 1, static (s, in c) => s.ZRange(c, 1, null, ZRangeType.Lex, ZDirection.Forward)),
        KvCommandTable.Data("zrevrangebylex", -4, R, 1, 1, 1, static (s, in c) => s.ZRange(c, 1, null, ZRangeType.Lex, ZDirection.Reverse)),
        KvCommandTable.Data("zremrangebyrank", 4, W, 1, 1, 1, static (s, in c) => s.ZRemRange(c, ZRangeType.Rank)),
        KvCommandTable.Data("zremrangebyscore", 4, W, 1, 1, 1, static (s, in c) => s.ZRemRange(c, ZRangeType.Score)),
        KvCommandTable.Data("zremrangebylex", 4, W, 1, 1, 1, static (s, in c) => s.ZRemRange(c, ZRangeType.Lex)),
        KvCommandTable.Data("zpopmin", -2, W, 1, 1, 1, static (s, in c) => s.ZPopMinMax(c, max: false)),
        KvCommandTable.Data("zpopmax", -2, W, 1, 1, 1, static (s, in c) => s.ZPopMinMax(c, max: true)),
        KvCommandTable.Data("zmpop", -4, W, 2, -2, 1, static (s, in c) => s.ZMPop(c)),
        KvCommandTable.Data("zrandmember", -2, R, 1, 1, 1, static (s, in c) => s.ZRandMember(c)),
        KvCommandTable.Data("zunion", -3, R, 2, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.Union, store: false)),
        KvCommandTable.Data("zinter", -3, R, 2, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.Inter, store: false)),
        KvCommandTable.Data("zdiff", -3, R, 2, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.Diff, store: false)),
        KvCommandTable.Data("zunionstore", -4, W, 1, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.Union, store: true)),
        KvCommandTable.Data("zinterstore", -4, W, 1, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.Inter, store: true)),
        KvCommandTable.Data("zdiffstore", -4, W, 1, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.Diff, store: true)),
        KvCommandTable.Data("zintercard", -3, R, 2, -2, 1, static (s, in c) => s.ZSetOperation(c, ZSetOp.InterCard, store: false)),
        KvCommandTable.Data("zscan", -3, R, 1, 1, 1, static (s, in c) => s.ZScan(c)),
    ];

    private enum ZRangeType { Auto, Rank, Score, Lex }

    private enum ZDirection { Auto, Forward, Reverse }

    private enum ZSetOp { Union, Inter, Diff, InterCard }

    // ---------------------------------------------------------------- numbers and replies

    /// <summary>Redis's <c>%.17g</c> of a score (addReplyDouble in 7.0): "1", "1.5", "0.10000000000000001", "inf".</summary>
    internal static string FormatScore(double value)
    {
        if (double.IsPositiveInfinity(value)) return "inf";
        if (double.IsNegativeInfinity(value)) return "-inf";
        if (double.IsNaN(value)) return "nan";
        return value.ToString("G17", CultureInfo.InvariantCulture).Replace('E', 'e');
    }

    /// <summary>A score as Redis's listpack stores it (d2string): an integral value in the long range as an integer
    /// ("-0" becomes "0"), anything else <c>%.17g</c>. ZSCAN of a listpack prints this form.</summary>
    internal static string FormatListpackScore(double value)
    {
        if (value == Math.Floor(value) && value >= -9223372036854775808.0 && value < 9223372036854775808.0)
            return ((long)value).ToString(CultureInfo.InvariantCulture);
        return FormatScore(value);
    }

    /// <summary>Writes a score as Redis 7.0 does: a bulk string in RESP2, a double (<c>,</c>) in RESP3, both <c>%.17g</c>.</summary>
    internal static void WriteScore(RespWriter reply, double value)
    {
        string text = FormatScore(value);
        if (!reply.IsResp3)
        {
            reply.WriteBulkString(text);
            return;
        }
        Span<byte> line = stackalloc byte[text.Length + 3];
        line[0] = (byte)',';
        Encoding.ASCII.GetBytes(text, line[1..]);
        line[^2] = (byte)'\r';
        line[^1] = (byte)'\n';
        reply.WriteRaw(line);
    }

    private static bool IsCSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    /// <summary>C's <c>strtod</c> over the whole of <paramref name="s"/> (no leading spaces): decimal, hex, inf/infinity,
    /// nan. <paramref name="erange"/> is set on overflow, and on underflow to zero.</summary>
    private static bool TryStrtodWhole(ReadOnlySpan<byte> s, out double value, out bool erange)
    {
        value = 0;
        erange = false;
        int i = 0;
        bool negative = false;
        if (i < s.Length && (s[i] == '+' || s[i] == '-'))
        {
            negative = s[i] == '-';
            i++;
        }
        ReadOnlySpan<byte> body = s[i..];
        if (Ascii.EqualsIgnoreCase(body, "inf"u8) || Ascii.EqualsIgnoreCase(body, "infinity"u8))
        {
            value = negative ? double.NegativeInfinity : double.PositiveInfinity;
            return true;
        }
        if (body.Length >= 3 && Ascii.EqualsIgnoreCase(body[..3], "nan"u8))
        {
            if (body.Length == 3 || (body[3] == '(' && body[^1] == ')'))
            {
                value = double.NaN;
                return true;
            }
            return false;
        }
        if (body.Length > 2 && body[0] == '0' && (body[1] | 0x20) == 'x') return TryHexFloat(body[2..], negative, out value, out erange);
        int j = 0, digits = 0;
        bool nonZero = false;
        while (j < body.Length && body[j] is >= (byte)'0' and <= (byte)'9') { nonZero |= body[j] != '0'; j++; digits++; }
        if (j < body.Length && body[j] == '.')
        {
            j++;
            while (j < body.Length && body[j] is >= (byte)'0' and <= (byte)'9') { nonZero |= body[j] != '0'; j++; digits++; }
        }
        if (digits == 0) return false;
        if (j < body.Length && (body[j] | 0x20) == 'e')
        {
            int k = j + 1;
            if (k < body.Length && (body[k] == '+' || body[k] == '-')) k++;
            int expDigits = 0;
            while (k < body.Length && body[k] is >= (byte)'0' and <= (byte)'9') { k++; expDigits++; }
            if (expDigits == 0) return false; // strtod would stop before the 'e': trailing characters
            j = k;
        }
        if (j != body.Length) return false;
        if (!double.TryParse(body, NumberStyles.Float, CultureInfo.InvariantCulture, out value)) return false;
        if (double.IsInfinity(value)) erange = true;
        else if (value == 0 && nonZero) erange = true;
        if (negative) value = -value;
        return true;
    }

    private static bool TryHexFloat(ReadOnlySpan<byte> s, bool negative, out double value, out bool erange)
    {
        value = 0;
        erange = false;
        double mantissa = 0;
        int exponent = 0, j = 0, digits = 0;
        bool fraction = false;
        for (; j < s.Length; j++)
        {
            byte b = s[j];
            int d = b switch { >= (byte)'0' and <= (byte)'9' => b - '0', >= (byte)'a' and <= (byte)'f' => b - 'a' + 10, >= (byte)'A' and <= (byte)'F' => b - 'A' + 10, _ => -1 };
            if (d < 0)
            {
                if (b == '.' && !fraction) { fraction = true; continue; }
                break;
            }
            mantissa = mantissa * 16 + d;
            if (fraction) exponent -= 4;
            digits++;
        }
        if (digits == 0) return false;
        if (j < s.Length && (s[j] | 0x20) == 'p')
        {
            int k = j + 1;
            bool eneg = false;
            if (k < s.Length && (s[k] == '+' || s[k] == '-')) { eneg = s[k] == '-'; k++; }
            int e = 0, ed = 0;
            while (k < s.Length && s[k] is >= (byte)'0' and <= (byte)'9') { e = Math.Min(100000, e * 10 + (s[k] - '0')); k++; ed++; }
            if (ed == 0) return false;
            exponent += eneg ? -e : e;
            j = k;
        }
        if (j != s.Length) return false;
        value = Math.ScaleB(mantissa, exponent);
        if (double.IsInfinity(value) || (value == 0 && mantissa != 0)) erange = true;
        if (negative) value = -value;
        return true;
    }

    /// <summary>Redis's <c>string2d</c> (ZADD scores, weights, ...): the whole text, no leading space, no overflow or
    /// underflow to zero, not NaN.</summary>
    internal static bool TryParseScore(ReadOnlySpan<byte> text, out double value)
    {
        if (text.Length == 0 || IsCSpace(text[0])) { value = 0; return false; }
        return TryStrtodWhole(text, out value, out bool erange) && !erange && !double.IsNaN(value);
    }

    /// <summary>One end of a score range as Redis's zslParseRange reads it (<c>strtod</c>: leading spaces allowed, the
    /// empty string is 0, overflow gives an infinity, NaN rejected).</summary>
    private static bool TryParseRangeEnd(ReadOnlySpan<byte> text, out double value, out bool exclusive)
    {
        exclusive = false;
        value = 0;
        if (text.Length > 0 && text[0] == '(')
        {
            exclusive = true;
            text = text[1..];
        }
        if (text.Length == 0) return true; // strtod parsed nothing and stopped at the terminating NUL
        int i = 0;
        while (i < text.Length && IsCSpace(text[i])) i++;
        return TryStrtodWhole(text[i..], out value, out _) && !double.IsNaN(value);
    }

    internal static bool TryParseScoreRange(ReadOnlySpan<byte> min, ReadOnlySpan<byte> max, out ZScoreRange range)
    {
        range = default;
        if (!TryParseRangeEnd(min, out double lo, out bool loEx) || !TryParseRangeEnd(max, out double hi, out bool hiEx)) return false;
        range = new ZScoreRange(lo, loEx, hi, hiEx);
        return true;
    }

    private static bool TryParseLexItem(ReadOnlySpan<byte> text, out byte[] value, out bool exclusive, out bool negInf, out bool posInf)
    {
        value = [];
        exclusive = negInf = posInf = false;
        if (text.Length == 0) return false;
        switch (text[0])
        {
            case (byte)'+':
                exclusive = posInf = true;
                return text.Length == 1;
            case (byte)'-':
                exclusive = negInf = true;
                return text.Length == 1;
            case (byte)'(':
                exclusive = true;
                value = text[1..].ToArray();
                return true;
            case (byte)'[':
                value = text[1..].ToArray();
                return true;
            default:
                return false;
        }
    }

    internal static bool TryParseLexRange(ReadOnlySpan<byte> min, ReadOnlySpan<byte> max, out ZLexRange range)
    {
        range = default;
        if (!TryParseLexItem(min, out byte[] lo, out bool loEx, out bool loNeg, out bool loPos) ||
            !TryParseLexItem(max, out byte[] hi, out bool hiEx, out bool hiNeg, out bool hiPos)) return false;
        range = new ZLexRange(lo, loEx, loNeg, loPos, hi, hiEx, hiNeg, hiPos);
        return true;
    }

    /// <summary>Redis's getRangeLongFromObjectOrReply: an integer in [min, max], else the given (or default) error.</summary>
    private static bool TryGetRangeInt64(in Context ctx, int index, long min, long max, string? message, out long value)
    {
        if (!RespNumbers.TryParseInt64(ctx[index], out value))
        {
            ctx.Reply.WriteError(message ?? KvErrors.NotInteger);
            return false;
        }
        if (value < min || value > max)
        {
            ctx.Reply.WriteError(message ?? $"ERR value is out of range, value must between {min} and {max}");
            return false;
        }
        return true;
    }

    /// <summary>Writes members (and scores) as ZRANGE does: RESP2 a flat array, RESP3 with scores an array of pairs.</summary>
    internal static void WriteZEntries(RespWriter reply, List<ZEntry> entries, bool withScores)
    {
        reply.WriteArrayHeader(withScores && !reply.IsResp3 ? entries.Count * 2 : entries.Count);
        foreach (ZEntry e in entries)
        {
            if (withScores && reply.IsResp3) reply.WriteArrayHeader(2);
            reply.WriteBulkString(e.Member);
            if (withScores) WriteScore(reply, e.Score);
        }
    }

    // ---------------------------------------------------------------- reusable primitives

    /// <summary>Removes up to <paramref name="count"/> entries with the lowest (or, with <paramref name="max"/>, highest)
    /// scores from the sorted set <paramref name="zset"/>, the live value at <paramref name="key"/>: notifies zpopmin/zpopmax (and del when the key is left
    /// empty, which removes it) and logs <c>ZPOPMIN|ZPOPMAX key n</c> to the AOF. For ZPOPMIN/ZMPOP and the blocking pops.</summary>
    /// <returns>The removed entries, in pop order.</returns>
    internal List<ZEntry> ZPopEntries(in Context ctx, ReadOnlySpan<byte> key, KvZSet zset, bool max, long count)
    {
        long n = Math.Min(count, zset.Length);
        List<ZEntry> popped = max ? zset.RemoveRange(zset.Length - n, zset.Length - 1) : zset.RemoveRange(0, n - 1);
        if (max) popped.Reverse();
        if (popped.Count == 0) return popped;
        if (ctx.Aof is not null) ctx.Log(LogBuilder().Add(max ? "ZPOPMAX"u8 : "ZPOPMIN"u8).Add(key).Add(popped.Count).Build());
        Changed(ctx, key, KvEventClass.ZSet, max ? "zpopmax" : "zpopmin");
        DeleteIfEmpty(ctx, key, zset);
        return popped;
    }

    /// <summary>Stores <paramref name="result"/> under <paramref name="dest"/> (replacing any value and expiry) and
    /// notifies <paramref name="eventName"/>, or, when it is empty, deletes <paramref name="dest"/> (notifying del).</summary>
    internal void ZStoreResult(in Context ctx, ReadOnlySpan<byte> dest, KvZSet result, string eventName)
    {
        KvEntry? existing = Lookup(ctx, dest);
        if (result.Length == 0)
        {
            if (existing is not null)
            {
                DeleteKey(ctx, existing);
                Changed(ctx, dest, KvEventClass.Generic, "del");
            }
            return;
        }
        SetKey(ctx, dest, existing, result, -1, keepTtl: false);
        Changed(ctx, dest, KvEventClass.ZSet, eventName);
    }

    // ---------------------------------------------------------------- ZADD ZINCRBY

    private void ZAdd(in Context ctx, bool incrCommand)
    {
        bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = incrCommand;
        int scoreIndex = 2;
        if (!incrCommand)
        {
            for (; scoreIndex < ctx.Count; scoreIndex++)
            {
                ReadOnlySpan<byte> opt = ctx[scoreIndex];
                if (Is(opt, "NX"u8)) nx = true;
                else if (Is(opt, "XX"u8)) xx = true;
                else if (Is(opt, "CH"u8)) ch = true;
                else if (Is(opt, "INCR"u8)) incr = true;
                else if (Is(opt, "GT"u8)) gt = true;
                else if (Is(opt, "LT"u8)) lt = true;
                else break;
            }
        }
        int elements = ctx.Count - scoreIndex;
        if (elements % 2 != 0 || elements == 0)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        elements /= 2;
        if (nx && xx)
        {
            ctx.Reply.WriteError(ZErrXxNx);
            return;
        }
        if ((gt && nx) || (lt && nx) || (gt && lt))
        {
            ctx.Reply.WriteError(ZErrGtLtNx);
            return;
        }
        if (incr && elements > 1)
        {
            ctx.Reply.WriteError(ZErrIncrPair);
            return;
        }
        Span<double> scores = elements <= 32 ? stackalloc double[32] : new double[elements]; // no array per ZADD of a few pairs
        for (int j = 0; j < elements; j++)
        {
            if (!TryParseScore(ctx[scoreIndex + j * 2], out scores[j]))
            {
                ctx.Reply.WriteError(KvErrors.NotFloat);
                return;
            }
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvZSet? zset)) return;
        long added = 0, updated = 0, processed = 0;
        double last = 0;
        if (zset is null)
        {
            if (xx)
            {
                if (incr) ctx.Reply.WriteNullBulkString();
                else ctx.Reply.WriteInteger(0);
                return;
            }
            zset = KvZSet.Create(Encodings, ctx[scoreIndex + 1].Length);
            AddKey(ctx, key, zset);
        }
        for (int j = 0; j < elements; j++)
        {
            ReadOnlySpan<byte> member = ctx[scoreIndex + 1 + j * 2];
            double score = scores[j];
            if (zset.TryGetScore(member, out double current))
            {
                if (nx) continue;
                if (incr)
                {
                    score += current;
                    if (double.IsNaN(score))
                    {
                        ctx.Reply.WriteError(ZErrNaN);
                        return; // INCR takes a single pair: nothing changed
                    }
                }
                if ((lt && score >= current) || (gt && score <= current)) continue;
                processed++;
                last = score;
                if (score != current)
                {
                    zset.Set(member.ToArray(), score, Encodings);
                    updated++;
                }
            }
            else if (!xx)
            {
                zset.Set(member.ToArray(), score, Encodings);
                added++;
                processed++;
                last = score;
            }
        }
        if (added + updated > 0)
        {
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.ZSet, incr ? "zincr" : "zadd");
        }
        if (incr)
        {
            if (processed > 0) WriteScore(ctx.Reply, last);
            else ctx.Reply.WriteNullBulkString();
        }
        else
        {
            ctx.Reply.WriteInteger(ch ? added + updated : added);
        }
    }

    // ---------------------------------------------------------------- simple reads and ZREM

    private void ZRem(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvZSet? zset)) return;
        if (zset is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        long deleted = 0;
        for (int i = 2; i < ctx.Count; i++)
        {
            if (zset.Remove(ctx[i])) deleted++;
            if (zset.Length == 0) break;
        }
        if (deleted > 0)
        {
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.ZSet, "zrem");
            DeleteIfEmpty(ctx, key, zset);
        }
        ctx.Reply.WriteInteger(deleted);
    }

    private void ZCard(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        ctx.Reply.WriteInteger(zset?.Length ?? 0);
    }

    private void ZCount(in Context ctx, bool lex)
    {
        ZScoreRange range = default;
        ZLexRange lexRange = default;
        if (lex ? !TryParseLexRange(ctx[2], ctx[3], out lexRange) : !TryParseScoreRange(ctx[2], ctx[3], out range))
        {
            ctx.Reply.WriteError(lex ? KvErrors.MinOrMaxNotValidString : KvErrors.MinOrMaxNotFloat);
            return;
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        if (zset is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        long lo = lex ? zset.CountBelow(lexRange) : zset.CountBelow(range);
        long hi = lex ? zset.CountUpToMax(lexRange) : zset.CountUpToMax(range);
        ctx.Reply.WriteInteger(Math.Max(0, hi - lo));
    }

    private void ZScore(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        if (zset is not null && zset.TryGetScore(ctx[2], out double score)) WriteScore(ctx.Reply, score);
        else ctx.Reply.WriteNullBulkString();
    }

    private void ZMScore(in Context ctx)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        ctx.Reply.WriteArrayHeader(ctx.Count - 2);
        for (int i = 2; i < ctx.Count; i++)
        {
            if (zset is not null && zset.TryGetScore(ctx[i], out double score)) WriteScore(ctx.Reply, score);
            else ctx.Reply.WriteNullBulkString();
        }
    }

    private void ZRank(in Context ctx, bool reverse)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        long rank = zset?.Rank(ctx[2]) ?? -1;
        if (rank < 0) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteInteger(reverse ? zset!.Length - 1 - rank : rank);
    }

    // ---------------------------------------------------------------- ranges

    /// <summary>The entries of a rank range (Redis's index rules, negative from the end), in reply order.</summary>
    internal static List<ZEntry> ZRangeByRank(KvZSet zset, long start, long end, bool reverse)
    {
        long length = zset.Length;
        if (start < 0) start = length + start;
        if (end < 0) end = length + end;
        if (start < 0) start = 0;
        if (start > end || start >= length) return [];
        if (end >= length) end = length - 1;
        return reverse ? [.. zset.Range(length - 1 - end, length - 1 - start, reverse: true)] : [.. zset.Range(start, end, reverse: false)];
    }

    /// <summary>The entries with [lo, hi) ascending ranks, after skipping <paramref name="offset"/> and taking at most
    /// <paramref name="limit"/> (negative: all), in reply order (like Redis, a negative offset gives nothing).</summary>
    private static List<ZEntry> ZRangeSlice(KvZSet zset, long lo, long hi, long offset, long limit, bool reverse)
    {
        if (offset < 0 || hi <= lo || limit == 0) return [];
        long n = hi - lo - offset;
        if (n <= 0) return [];
        if (limit > 0) n = Math.Min(n, limit);
        return reverse ? [.. zset.Range(hi - offset - n, hi - offset - 1, reverse: true)] : [.. zset.Range(lo + offset, lo + offset + n - 1, reverse: false)];
    }

    internal static List<ZEntry> ZRangeByScore(KvZSet zset, in ZScoreRange range, long offset, long limit, bool reverse) =>
        ZRangeSlice(zset, zset.CountBelow(range), zset.CountUpToMax(range), offset, limit, reverse);

    internal static List<ZEntry> ZRangeByLex(KvZSet zset, in ZLexRange range, long offset, long limit, bool reverse) =>
        ZRangeSlice(zset, zset.CountBelow(range), zset.CountUpToMax(range), offset, limit, reverse);

    private void ZRange(in Context ctx, int keyIndex, byte[]? dest, ZRangeType type, ZDirection direction)
    {
        bool store = dest is not null;
        bool withScores = false;
        long offset = 0, limit = -1;
        bool hasLimit = false;
        for (int j = keyIndex + 3; j < ctx.Count; j++)
        {
            int left = ctx.Count - j - 1;
            ReadOnlySpan<byte> opt = ctx[j];
            if (!store && Is(opt, "WITHSCORES"u8))
            {
                withScores = true;
            }
            else if (Is(opt, "LIMIT"u8) && left >= 2)
            {
                if (!TryGetInt64(ctx, j + 1, out offset) || !TryGetInt64(ctx, j + 2, out limit)) return;
                hasLimit = true;
                j += 2;
            }
            else if (direction == ZDirection.Auto && Is(opt, "REV"u8))
            {
                direction = ZDirection.Reverse;
            }
            else if (type == ZRangeType.Auto && Is(opt, "BYLEX"u8))
            {
                type = ZRangeType.Lex;
            }
            else if (type == ZRangeType.Auto && Is(opt, "BYSCORE"u8))
            {
                type = ZRangeType.Score;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (direction == ZDirection.Auto) direction = ZDirection.Forward;
        if (type == ZRangeType.Auto) type = ZRangeType.Rank;
        bool reverse = direction == ZDirection.Reverse;
        if (hasLimit && limit != -1 && type == ZRangeType.Rank)
        {
            ctx.Reply.WriteError(ZErrLimitRank);
            return;
        }
        if (withScores && type == ZRangeType.Lex)
        {
            ctx.Reply.WriteError(ZErrWithScoresLex);
            return;
        }
        int minIndex = keyIndex + 1, maxIndex = keyIndex + 2;
        if (reverse && type != ZRangeType.Rank) (minIndex, maxIndex) = (maxIndex, minIndex);
        long start = 0, end = 0;
        ZScoreRange scoreRange = default;
        ZLexRange lexRange = default;
        switch (type)
        {
            case ZRangeType.Rank:
                if (!TryGetInt64(ctx, minIndex, out start) || !TryGetInt64(ctx, maxIndex, out end)) return;
                break;
            case ZRangeType.Score:
                if (!TryParseScoreRange(ctx[minIndex], ctx[maxIndex], out scoreRange))
                {
                    ctx.Reply.WriteError(KvErrors.MinOrMaxNotFloat);
                    return;
                }
                break;
            default:
                if (!TryParseLexRange(ctx[minIndex], ctx[maxIndex], out lexRange))
                {
                    ctx.Reply.WriteError(KvErrors.MinOrMaxNotValidString);
                    return;
                }
                break;
        }
        if (!TryLookupValue(ctx, ctx[keyIndex], read: true, out KvZSet? zset)) return;
        List<ZEntry> result = zset is null ? []
            : type switch
            {
                ZRangeType.Rank => ZRangeByRank(zset, start, end, reverse),
                ZRangeType.Score => ZRangeByScore(zset, scoreRange, offset, limit, reverse),
                _ => ZRangeByLex(zset, lexRange, offset, limit, reverse),
            };
        if (!store)
        {
            WriteZEntries(ctx.Reply, result, withScores);
            return;
        }
        // Redis 7.0's zsetTypeCreate(size hint): a rank range knows its length and is a skip list from the start when
        // that exceeds the listpack limit (so -0 survives); score and lex ranges start compact and convert on the way.
        KvZSet stored = type == ZRangeType.Rank && result.Count > Encodings.ZSetMaxListpackEntries ? KvZSet.CreateSkipList() : KvZSet.Create(Encodings, 0);
        foreach (ZEntry e in result) stored.Set(e.Member, e.Score, Encodings);
        bool existed = Lookup(ctx.Db, dest, ctx.Now) is not null; // no access: ZStoreResult's lookup is the one (setKey)
        ZStoreResult(ctx, dest, stored, "zrangestore");
        if (result.Count > 0 || existed) ctx.LogSelf();
        ctx.Reply.WriteInteger(result.Count);
    }

    private void ZRemRange(in Context ctx, ZRangeType type)
    {
        long start = 0, end = 0;
        ZScoreRange scoreRange = default;
        ZLexRange lexRange = default;
        if (type == ZRangeType.Rank)
        {
            if (!TryGetInt64(ctx, 2, out start) || !TryGetInt64(ctx, 3, out end)) return;
        }
        else if (type == ZRangeType.Score)
        {
            if (!TryParseScoreRange(ctx[2], ctx[3], out scoreRange))
            {
                ctx.Reply.WriteError(KvErrors.MinOrMaxNotFloat);
                return;
            }
        }
        else if (!TryParseLexRange(ctx[2], ctx[3], out lexRange))
        {
            ctx.Reply.WriteError(KvErrors.MinOrMaxNotValidString);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupValue(ctx, key, read: false, out KvZSet? zset)) return;
        if (zset is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        long lo, hi; // ascending ranks [lo, hi)
        if (type == ZRangeType.Rank)
        {
            long length = zset.Length;
            if (start < 0) start = length + start;
            if (end < 0) end = length + end;
            if (start < 0) start = 0;
            if (start > end || start >= length)
            {
                ctx.Reply.WriteInteger(0);
                return;
            }
            if (end >= length) end = length - 1;
            lo = start;
            hi = end + 1;
        }
        else if (type == ZRangeType.Score)
        {
            lo = zset.CountBelow(scoreRange);
            hi = zset.CountUpToMax(scoreRange);
        }
        else
        {
            lo = zset.CountBelow(lexRange);
            hi = zset.CountUpToMax(lexRange);
        }
        long deleted = Math.Max(0, hi - lo);
        if (deleted > 0)
        {
            zset.RemoveRange(lo, hi - 1);
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.ZSet, type switch { ZRangeType.Rank => "zremrangebyrank", ZRangeType.Score => "zremrangebyscore", _ => "zremrangebylex" });
            DeleteIfEmpty(ctx, key, zset);
        }
        ctx.Reply.WriteInteger(deleted);
    }

    // ---------------------------------------------------------------- pops and random members

    private void ZPopMinMax(in Context ctx, bool max)
    {
        if (ctx.Count > 3)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        long count = -1;
        if (ctx.Count == 3 && !TryGetRangeInt64(ctx, 2, 0, long.MaxValue, KvErrors.NotPositive, out count))
            return;
        bool nested = ctx.Reply.IsResp3 && count != -1;
        if (!TryLookupValue(ctx, ctx[1], read: false, out KvZSet? zset)) return;
        if (zset is null || count == 0)
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        List<ZEntry> popped = ZPopEntries(ctx, ctx[1], zset, max, count == -1 ? 1 : count);
        ctx.Reply.WriteArrayHeader(nested ? popped.Count : popped.Count * 2);
        foreach (ZEntry e in popped)
        {
            if (nested) ctx.Reply.WriteArrayHeader(2);
            ctx.Reply.WriteBulkString(e.Member);
            WriteScore(ctx.Reply, e.Score);
        }
    }

    private void ZMPop(in Context ctx)
    {
        if (!TryGetRangeInt64(ctx, 1, 1, long.MaxValue, ZErrNumKeys, out long numKeys)) return;
        long whereIndex = 1 + numKeys + 1;
        if (whereIndex >= ctx.Count)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        bool max;
        if (Is(ctx[(int)whereIndex], "MIN"u8)) max = false;
        else if (Is(ctx[(int)whereIndex], "MAX"u8)) max = true;
        else
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        long count = -1;
        for (int j = (int)whereIndex + 1; j < ctx.Count; j++)
        {
            if (count == -1 && Is(ctx[j], "COUNT"u8) && j + 1 < ctx.Count)
            {
                j++;
                if (!TryGetRangeInt64(ctx, j, 1, long.MaxValue, ZErrCount, out count)) return;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (count == -1) count = 1;
        for (int i = 2; i < 2 + numKeys; i++)
        {
            if (!TryLookupValue(ctx, ctx[i], read: false, out KvZSet? zset)) return;
            if (zset is null) continue;
            List<ZEntry> popped = ZPopEntries(ctx, ctx[i], zset, max, count);
            ctx.Reply.WriteArrayHeader(2);
            ctx.Reply.WriteBulkString(ctx[i]);
            ctx.Reply.WriteArrayHeader(popped.Count);
            foreach (ZEntry e in popped)
            {
                ctx.Reply.WriteArrayHeader(2);
                ctx.Reply.WriteBulkString(e.Member);
                WriteScore(ctx.Reply, e.Score);
            }
            return;
        }
        ctx.Reply.WriteNullArray();
    }

    private void ZRandMember(in Context ctx)
    {
        if (ctx.Count >= 3)
        {
            if (!TryGetRangeInt64(ctx, 2, -long.MaxValue, long.MaxValue, null, out long l)) return;
            bool withScores = false;
            if (ctx.Count > 4 || (ctx.Count == 4 && !Is(ctx[3], "WITHSCORES"u8)))
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
            if (ctx.Count == 4)
            {
                withScores = true;
                if (l < -long.MaxValue / 2 || l > long.MaxValue / 2)
                {
                    ctx.Reply.WriteError(ZErrOutOfRange);
                    return;
                }
            }
            ZRandMemberWithCount(ctx, l, withScores);
            return;
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        if (zset is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        ctx.Reply.WriteBulkString(zset.At(_random.NextInt64(zset.Length)).Member);
    }

    private void ZRandMemberWithCount(in Context ctx, long count, bool withScores)
    {
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        if (zset is null || count == 0)
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        long size = zset.Length;
        var picks = new List<ZEntry>();
        if (count < 0)
        {
            count = -count;
            // Picks with repetition; the reply is as long as asked (Redis streams it; it is bounded by the proto limits).
            for (long i = 0; i < count; i++) picks.Add(zset.At(_random.NextInt64(size)));
        }
        else if (count >= size)
        {
            picks = ZRangeByRank(zset, 0, -1, reverse: true); // the whole set, highest score first, as Redis 7.0 replies
        }
        else
        {
            // Distinct picks in random order (a partial Fisher-Yates over the ranks).
            var ranks = new long[size];
            for (long i = 0; i < size; i++) ranks[i] = i;
            for (long i = 0; i < count; i++)
            {
                long j = i + _random.NextInt64(size - i);
                (ranks[i], ranks[j]) = (ranks[j], ranks[i]);
                picks.Add(zset.At(ranks[i]));
            }
        }
        WriteZEntries(ctx.Reply, picks, withScores);
    }

    // ---------------------------------------------------------------- ZUNION ZINTER ZDIFF and their STORE forms

    private sealed class ZSource(KvObject? value, double weight)
    {
        private HashSet<byte[]>? _members; // a plain set's members, for lookups

        public readonly KvObject? Value = value;
        public readonly double Weight = weight;

        public long Length => Value?.Length ?? 0;

        public IEnumerable<ZEntry> Entries()
        {
            if (Value is KvZSet z)
            {
                foreach (ZEntry e in z.Range(0, z.Length - 1, reverse: false)) yield return e;
            }
            else if (Value is IKvElements set)
            {
                foreach (byte[] m in set.Elements) yield return new ZEntry(m, 1.0);
            }
        }

        public bool TryFind(ReadOnlySpan<byte> member, out double score)
        {
            score = 1.0;
            if (Value is KvZSet z) return z.TryGetScore(member, out score);
            if (Value is null) return false;
            _members ??= new HashSet<byte[]>(((IKvElements)Value).Elements, ByteArrayComparer.Instance);
            return _members.GetAlternateLookup<ReadOnlySpan<byte>>().Contains(member);
        }
    }

    private static double Aggregate(double target, double value, int aggregate) => aggregate switch
    {
        0 => double.IsNaN(target + value) ? 0.0 : target + value,
        1 => value < target ? value : target,
        _ => value > target ? value : target,
    };

    private void ZSetOperation(in Context ctx, ZSetOp op, bool store)
    {
        int numKeysIndex = store ? 2 : 1;
        if (!TryGetInt64(ctx, numKeysIndex, out long setCount)) return;
        if (setCount < 1)
        {
            ctx.Reply.WriteError($"ERR at least 1 input key is needed for '{ctx.Name}' command");
            return;
        }
        if (setCount > ctx.Count - (numKeysIndex + 1))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        var sources = new ZSource[setCount];
        var values = new KvObject?[setCount];
        int j = numKeysIndex + 1;
        for (int i = 0; i < setCount; i++, j++)
        {
            KvEntry? e = LookupRead(ctx, ctx[j]);
            if (e is not null)
            {
                if (e.Type is not (KvType.ZSet or KvType.Set))
                {
                    ctx.Reply.WriteError(KvErrors.WrongType);
                    return;
                }
                values[i] = (KvObject)e.Value;
            }
        }
        var weights = new double[setCount];
        Array.Fill(weights, 1.0);
        int aggregate = 0; // 0 sum, 1 min, 2 max
        bool withScores = false;
        long limit = 0;
        bool cardinalityOnly = op == ZSetOp.InterCard;
        while (j < ctx.Count)
        {
            int remaining = ctx.Count - j;
            ReadOnlySpan<byte> opt = ctx[j];
            if (op is not ZSetOp.Diff && !cardinalityOnly && remaining >= setCount + 1 && Is(opt, "WEIGHTS"u8))
            {
                j++;
                for (int i = 0; i < setCount; i++, j++)
                {
                    if (!TryParseScore(ctx[j], out weights[i]))
                    {
                        ctx.Reply.WriteError(ZErrWeight);
                        return;
                    }
                }
            }
            else if (op is not ZSetOp.Diff && !cardinalityOnly && remaining >= 2 && Is(opt, "AGGREGATE"u8))
            {
                ReadOnlySpan<byte> a = ctx[j + 1];
                if (Is(a, "SUM"u8)) aggregate = 0;
                else if (Is(a, "MIN"u8)) aggregate = 1;
                else if (Is(a, "MAX"u8)) aggregate = 2;
                else
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
                j += 2;
            }
            else if (!store && !cardinalityOnly && Is(opt, "WITHSCORES"u8))
            {
                j++;
                withScores = true;
            }
            else if (cardinalityOnly && remaining >= 2 && Is(opt, "LIMIT"u8))
            {
                if (!TryGetRangeInt64(ctx, j + 1, 0, long.MaxValue, ZErrLimitNegative, out limit)) return;
                j += 2;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        for (int i = 0; i < setCount; i++) sources[i] = new ZSource(values[i], weights[i]);
        if (op != ZSetOp.Diff) sources = [.. sources.OrderBy(s => s.Length)]; // stable, like glibc's merge-sort qsort

        KvZSet result = KvZSet.CreateSkipList();
        long cardinality = 0;
        if (op is ZSetOp.Inter or ZSetOp.InterCard)
        {
            if (sources[0].Length > 0)
            {
                foreach (ZEntry e in sources[0].Entries())
                {
                    double score = sources[0].Weight * e.Score;
                    if (double.IsNaN(score)) score = 0;
                    int k;
                    for (k = 1; k < sources.Length; k++)
                    {
                        double value;
                        if (ReferenceEquals(sources[k].Value, sources[0].Value)) value = e.Score * sources[k].Weight;
                        else if (sources[k].TryFind(e.Member, out value)) value *= sources[k].Weight;
                        else break;
                        score = Aggregate(score, value, aggregate);
                    }
                    if (k != sources.Length) continue;
                    if (cardinalityOnly)
                    {
                        cardinality++;
                        if (limit > 0 && cardinality >= limit) break;
                    }
                    else
                    {
                        result.Set(e.Member, score, Encodings);
                    }
                }
            }
        }
        else if (op == ZSetOp.Union)
        {
            var acc = new Dictionary<byte[], double>(ByteArrayComparer.Instance);
            var order = new List<byte[]>();
            foreach (ZSource s in sources)
            {
                foreach (ZEntry e in s.Entries())
                {
                    double score = s.Weight * e.Score;
                    if (double.IsNaN(score)) score = 0;
                    if (acc.TryGetValue(e.Member, out double existing)) acc[e.Member] = Aggregate(existing, score, aggregate);
                    else
                    {
                        acc.Add(e.Member, score);
                        order.Add(e.Member);
                    }
                }
            }
            foreach (byte[] m in order) result.Set(m, acc[m], Encodings);
        }
        else
        {
            foreach (ZEntry e in sources[0].Entries())
            {
                bool found = false;
                for (int k = 1; k < sources.Length && !found; k++)
                    found = sources[k].TryFind(e.Member, out _);
                if (!found) result.Set(e.Member, e.Score, Encodings);
            }
        }

        if (cardinalityOnly)
        {
            ctx.Reply.WriteInteger(cardinality);
            return;
        }
        if (!store)
        {
            WriteZEntries(ctx.Reply, ZRangeByRank(result, 0, -1, reverse: false), withScores);
            return;
        }
        ReadOnlySpan<byte> dest = ctx[1];
        result.ShrinkIfFits(Encodings);
        bool existed = Lookup(ctx.Db, dest, ctx.Now) is not null; // no access: ZStoreResult's lookup is the one (setKey)
        ZStoreResult(ctx, dest, result, op switch { ZSetOp.Union => "zunionstore", ZSetOp.Inter => "zinterstore", _ => "zdiffstore" });
        if (result.Length > 0 || existed) ctx.LogSelf();
        ctx.Reply.WriteInteger(result.Length);
    }

    // ---------------------------------------------------------------- ZSCAN

    private void ZScan(in Context ctx)
    {
        if (!TryParseScanCursor(ctx[2], out ulong cursor))
        {
            ctx.Reply.WriteError(KvErrors.InvalidCursor);
            return;
        }
        if (!TryLookupValue(ctx, ctx[1], read: true, out KvZSet? zset)) return;
        if (zset is null)
        {
            ctx.Reply.WriteArrayHeader(2);
            ctx.Reply.WriteBulkString("0"u8);
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        long count = 10;
        byte[]? pattern = null;
        for (int i = 3; i < ctx.Count;)
        {
            int left = ctx.Count - i;
            if (Is(ctx[i], "COUNT"u8) && left >= 2)
            {
                if (!TryGetInt64(ctx, i + 1, out count)) return;
                if (count < 1)
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
                i += 2;
            }
            else if (Is(ctx[i], "MATCH"u8) && left >= 2)
            {
                pattern = ctx.Command.ToArray(i + 1);
                if (GlobPattern.MatchesAll(pattern)) pattern = null;
                i += 2;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        // A compact set is returned whole (cursor 0) like Redis's listpack; a skip list is walked in rank order, the
        // cursor being the next rank (elements removed meanwhile may shift later ones back: SCAN's guarantee is weaker here).
        long start = zset.IsCompact ? 0 : (long)Math.Min(cursor, (ulong)long.MaxValue);
        long end = zset.IsCompact ? zset.Length : Math.Min(zset.Length, start + count);
        var items = new List<ZEntry>();
        if (start < end)
        {
            foreach (ZEntry e in zset.Range(start, end - 1, reverse: false))
                if (pattern is null || GlobPattern.IsMatch(pattern, e.Member)) items.Add(e);
        }
        long next = end >= zset.Length ? 0 : end;
        ctx.Reply.WriteArrayHeader(2);
        ctx.Reply.WriteBulkString(next.ToString(CultureInfo.InvariantCulture));
        ctx.Reply.WriteArrayHeader(items.Count * 2);
        foreach (ZEntry e in items)
        {
            ctx.Reply.WriteBulkString(e.Member);
            ctx.Reply.WriteBulkString(zset.IsCompact ? FormatListpackScore(e.Score) : FormatScore(e.Score));
        }
    }
}
