namespace EioSharp.Kv;

public sealed partial class KvStore
{
    // Redis's texts (t_string.c, 7.0).
    private const string LcsTypeError = "ERR The specified keys must contain string values";
    private const string LcsLenAndIdxError = "ERR If you want both the length and indexes, please just use IDX.";
    private const string LcsMemoryError = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";

    private readonly record struct LcsRange(int AStart, int AEnd, int BStart, int BEnd);

    /// <summary>LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: Redis's quadratic dynamic programming table,
    /// refused (like Redis) when the table would need more than proto-max-bulk-len bytes.</summary>
    private void Lcs(in Context ctx)
    {
        KvEntry? ea = LookupRead(ctx, ctx[1]);
        KvEntry? eb = LookupRead(ctx, ctx[2]);
        if ((ea is not null && ea.Value is not byte[]) || (eb is not null && eb.Value is not byte[]))
        {
            ctx.Reply.WriteError(LcsTypeError);
            return;
        }
        byte[] a = ea is null ? [] : Str(ea);
        byte[] b = eb is null ? [] : Str(eb);
        bool getLen = false, getIdx = false, withMatchLen = false;
        long minMatchLen = 0;
        for (int j = 3; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            bool moreArgs = ctx.Count - 1 - j > 0;
            if (Is(opt, "IDX"u8)) getIdx = true;
            else if (Is(opt, "LEN"u8)) getLen = true;
            else if (Is(opt, "WITHMATCHLEN"u8)) withMatchLen = true;
            else if (Is(opt, "MINMATCHLEN"u8) && moreArgs)
            {
                if (!TryGetInt64(ctx, j + 1, out minMatchLen)) return;
                if (minMatchLen < 0) minMatchLen = 0;
                j++;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (getIdx && getLen)
        {
            ctx.Reply.WriteError(LcsLenAndIdxError);
            return;
        }

        int alen = a.Length, blen = b.Length;
        long cells = (long)(alen + 1) * (blen + 1);
        // The bound is checked before allocating: Redis refuses a table larger than proto-max-bulk-len bytes.
        if (cells * sizeof(uint) > Limits.MaxBulkLength || cells > Array.MaxLength)
        {
            ctx.Reply.WriteError(LcsMemoryError);
            return;
        }
        var lcs = new uint[cells];
        int width = blen + 1;
        for (int i = 1; i <= alen; i++)
        {
            int row = i * width, previous = (i - 1) * width;
            byte ai = a[i - 1];
            for (int j = 1; j <= blen; j++)
            {
                if (ai == b[j - 1]) lcs[row + j] = lcs[previous + j - 1] + 1;
                else lcs[row + j] = Math.Max(lcs[previous + j], lcs[row + j - 1]);
            }
        }
        int length = (int)lcs[(alen * width) + blen];
        if (getLen && !getIdx)
        {
            ctx.Reply.WriteInteger(length);
            return;
        }

        // Walk back from the end, building the string backwards and the ranges in Redis's order.
        var result = new byte[length];
        var ranges = new List<LcsRange>();
        int idx = length;
        int aStart = alen, aEnd = 0, bStart = 0, bEnd = 0; // aStart == alen: no range open
        int x = alen, y = blen;
        while (x > 0 && y > 0)
        {
            bool emit = false;
            if (a[x - 1] == b[y - 1])
            {
                result[idx - 1] = a[x - 1];
                if (aStart == alen)
                {
                    aStart = aEnd = x - 1;
                    bStart = bEnd = y - 1;
                }
                else if (aStart == x && bStart == y)
                {
                    aStart--;
                    bStart--;
                }
                else
                {
                    emit = true;
                }
                if (aStart == 0 || bStart == 0) emit = true;
                idx--;
                x--;
                y--;
            }
            else
            {
                uint up = lcs[((x - 1) * width) + y], left = lcs[(x * width) + y - 1];
                if (up > left) x--;
                else y--;
                if (aStart != alen) emit = true;
            }
            if (emit)
            {
                long matchLen = aEnd - aStart + 1;
                if (getIdx && (minMatchLen == 0 || matchLen >= minMatchLen)) ranges.Add(new LcsRange(aStart, aEnd, bStart, bEnd));
                aStart = alen;
            }
        }

        if (!getIdx)
        {
            ctx.Reply.WriteBulkString(result);
            return;
        }
        ctx.Reply.WriteMapHeader(2);
        ctx.Reply.WriteBulkString("matches"u8);
        ctx.Reply.WriteArrayHeader(ranges.Count);
        foreach (LcsRange r in ranges)
        {
            ctx.Reply.WriteArrayHeader(withMatchLen ? 3 : 2);
            ctx.Reply.WriteArrayHeader(2);
            ctx.Reply.WriteInteger(r.AStart);
            ctx.Reply.WriteInteger(r.AEnd);
            ctx.Reply.WriteArrayHeader(2);
            ctx.Reply.WriteInteger(r.BStart);
            ctx.Reply.WriteInteger(r.BEnd);
            if (withMatchLen) ctx.Reply.WriteInteger(r.AEnd - r.AStart + 1);
        }
        ctx.Reply.WriteBulkString("len"u8);
        ctx.Reply.WriteInteger(length);
    }
}
