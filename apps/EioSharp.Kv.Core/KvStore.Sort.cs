using System.Globalization;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string SortScoreNotDouble = "ERR One or more scores can't be converted into double";
    private const int SortStoreItemsPerCommand = 64; // the AOF effect of SORT ... STORE: RPUSH in chunks, like a rewrite

    private struct SortItem
    {
        public byte[] Element;
        public double Score;
        public byte[]? CompareBy; // ALPHA with BY: the looked-up value (null when missing)
        public int Position; // in the input: ties that Redis's stable sort keeps in input order
    }

    /// <summary>SORT and SORT_RO: Redis's sortCommandGeneric (lists, sets and sorted sets, through <see cref="IKvElements"/>).</summary>
    private void Sort(in Context ctx, bool readOnly)
    {
        bool desc = false, alpha = false, dontSort = false;
        long limitStart = 0, limitCount = -1;
        byte[]? sortBy = null, storeKey = null;
        List<byte[]>? gets = null;
        for (int j = 2; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            int left = ctx.Count - j - 1;
            if (Is(opt, "ASC"u8)) desc = false;
            else if (Is(opt, "DESC"u8)) desc = true;
            else if (Is(opt, "ALPHA"u8)) alpha = true;
            else if (Is(opt, "LIMIT"u8) && left >= 2)
            {
                if (!TryGetInt64(ctx, j + 1, out limitStart) || !TryGetInt64(ctx, j + 2, out limitCount)) return;
                j += 2;
            }
            else if (!readOnly && Is(opt, "STORE"u8) && left >= 1)
            {
                storeKey = ctx.Command.ToArray(++j);
            }
            else if (Is(opt, "BY"u8) && left >= 1)
            {
                sortBy = ctx.Command.ToArray(++j);
                dontSort = !sortBy.AsSpan().Contains((byte)'*');
            }
            else if (Is(opt, "GET"u8) && left >= 1)
            {
                (gets ??= []).Add(ctx.Command.ToArray(++j));
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }

        KvEntry? e = LookupRead(ctx, ctx[1]);
        KvType type = e?.Type ?? KvType.List;
        if (e is not null && (type is not (KvType.List or KvType.Set or KvType.ZSet) || e.Value is not IKvElements))
        {
            ctx.Reply.WriteError(KvErrors.WrongType);
            return;
        }
        var source = (IKvElements?)e?.Value;

        // A set has no order of its own: when the result is stored, sort it so that it is deterministic.
        if (dontSort && type == KvType.Set && storeKey is not null)
        {
            dontSort = false;
            alpha = true;
            sortBy = null;
        }

        long length = e is null ? 0 : ((KvObject)e.Value).Length;
        long start = Math.Min(Math.Max(limitStart, 0), length);
        long count = Math.Min(Math.Max(limitCount, -1), length);
        long end = count < 0 ? length - 1 : start + count - 1;
        if (start >= length)
        {
            start = length - 1;
            end = length - 2;
        }
        if (end >= length) end = length - 1;

        var items = new List<SortItem>((int)Math.Max(0, length));
        if (source is not null)
        {
            if (dontSort && type is KvType.List or KvType.ZSet)
            {
                // Natural order (reversed by DESC), only the LIMIT range.
                if (end >= start)
                {
                    var all = source.Elements;
                    IEnumerable<byte[]> ordered = desc ? all.Reverse() : all;
                    foreach (byte[] element in ordered.Skip((int)start).Take((int)(end - start + 1)))
                        items.Add(new SortItem { Element = element, Position = items.Count });
                    end -= start;
                    start = 0;
                }
            }
            else
            {
                foreach (byte[] element in source.Elements) items.Add(new SortItem { Element = element, Position = items.Count });
            }
        }

        bool conversionError = false;
        if (!dontSort)
        {
            SortItem[] vector = [.. items];
            for (int i = 0; i < vector.Length; i++)
            {
                byte[]? by = sortBy is null ? vector[i].Element : LookupByPattern(ctx, sortBy, vector[i].Element);
                if (by is null) continue;
                if (alpha)
                {
                    if (sortBy is not null) vector[i].CompareBy = by;
                }
                else if (!TryParseStrtod(by, out vector[i].Score))
                {
                    conversionError = true;
                }
            }
            bool byPattern = sortBy is not null;
            Array.Sort(vector, (a, b) =>
            {
                int cmp;
                if (!alpha)
                {
                    cmp = a.Score.CompareTo(b.Score);
                    if (a.Score == b.Score) cmp = a.Element.AsSpan().SequenceCompareTo(b.Element);
                }
                else if (byPattern)
                {
                    if (a.CompareBy is null || b.CompareBy is null) cmp = a.CompareBy == b.CompareBy ? 0 : a.CompareBy is null ? -1 : 1;
                    else cmp = a.CompareBy.AsSpan().SequenceCompareTo(b.CompareBy);
                }
                else
                {
                    cmp = a.Element.AsSpan().SequenceCompareTo(b.Element);
                }
                if (desc) cmp = -cmp;
                return cmp != 0 ? Math.Sign(cmp) : a.Position.CompareTo(b.Position);
            });
            items = [.. vector];
        }

        int getCount = gets?.Count ?? 0;
        long rows = Math.Max(0, end - start + 1);
        long outputLength = getCount > 0 ? getCount * rows : rows;
        if (conversionError)
        {
            ctx.Reply.WriteError(SortScoreNotDouble);
            return;
        }
        if (storeKey is null)
        {
            ctx.Reply.WriteArrayHeader((int)outputLength);
            for (long j = start; j <= end; j++)
            {
                byte[] element = items[(int)j].Element;
                if (gets is null)
                {
                    ctx.Reply.WriteBulkString(element);
                    continue;
                }
                foreach (byte[] pattern in gets)
                {
                    byte[]? value = LookupByPattern(ctx, pattern, element);
                    if (value is null) ctx.Reply.WriteNullBulkString();
                    else ctx.Reply.WriteBulkString(value);
                }
            }
            return;
        }

        var stored = new KvList();
        for (long j = start; j <= end; j++)
        {
            byte[] element = items[(int)j].Element;
            if (gets is null)
            {
                stored.PushRight(element);
                continue;
            }
            foreach (byte[] pattern in gets) stored.PushRight(LookupByPattern(ctx, pattern, element) ?? []);
        }
        KvEntry? target = Lookup(ctx, storeKey);
        if (stored.Count > 0)
        {
            SetKey(ctx, storeKey, target, stored, -1, keepTtl: false);
            if (ctx.Aof is not null)
            {
                // The effect, not the command: the order of a set's elements with ties is not reproducible.
                ctx.Log("DEL"u8.ToArray(), storeKey);
                for (int i = 0; i < stored.Count; i += SortStoreItemsPerCommand)
                {
                    int n = Math.Min(SortStoreItemsPerCommand, stored.Count - i);
                    var args = new byte[2 + n][];
                    args[0] = "RPUSH"u8.ToArray();
                    args[1] = storeKey;
                    for (int k = 0; k < n; k++) args[2 + k] = stored[i + k];
                    ctx.Log(args);
                }
            }
            Changed(ctx, storeKey, KvEventClass.List, "sortstore");
        }
        else if (target is not null)
        {
            DeleteKey(ctx, target);
            ctx.Log("DEL"u8.ToArray(), storeKey);
            Changed(ctx, storeKey, KvEventClass.Generic, "del");
        }
        ctx.Reply.WriteInteger(outputLength);
    }

    /// <summary>Redis's lookupKeyByPattern: <c>#</c> is the element itself; the first <c>*</c> is replaced by the
    /// element; <c>-&gt;field</c> after it reads a hash field; otherwise the key must hold a string.</summary>
    private byte[]? LookupByPattern(in Context ctx, byte[] pattern, byte[] element)
    {
        if (pattern is [(byte)'#']) return element;
        int star = Array.IndexOf(pattern, (byte)'*');
        if (star < 0) return null;
        ReadOnlySpan<byte> p = pattern;
        int arrow = p[(star + 1)..].IndexOf("->"u8);
        ReadOnlySpan<byte> field = default;
        bool hasField = false;
        if (arrow >= 0 && star + 1 + arrow + 2 < p.Length)
        {
            arrow += star + 1;
            field = p[(arrow + 2)..];
            hasField = true;
        }
        ReadOnlySpan<byte> postfix = hasField ? p[(star + 1)..arrow] : p[(star + 1)..];
        var key = new byte[star + element.Length + postfix.Length];
        p[..star].CopyTo(key);
        element.CopyTo(key, star);
        postfix.CopyTo(key.AsSpan(star + element.Length));
        KvEntry? e = LookupRead(ctx, key);
        if (e is null) return null;
        if (hasField) return e.Type == KvType.Hash && e.Value is IKvHashFields hash ? hash.GetField(field) : null;
        return e.Value as byte[];
    }

    /// <summary>Parses like C's <c>strtod</c> as SORT uses it: leading white space allowed, the whole rest must be a
    /// number, an empty string is 0, overflow and underflow (ERANGE) and NaN are errors.</summary>
    private static bool TryParseStrtod(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        int i = 0;
        while (i < text.Length && text[i] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r') i++;
        text = text[i..];
        if (text.IsEmpty) return true; // strtod parses nothing and the end pointer is at the end
        ReadOnlySpan<byte> unsigned = text[0] is (byte)'+' or (byte)'-' ? text[1..] : text;
        if (System.Text.Ascii.EqualsIgnoreCase(unsigned, "inf"u8) || System.Text.Ascii.EqualsIgnoreCase(unsigned, "infinity"u8))
        {
            value = text[0] == (byte)'-' ? double.NegativeInfinity : double.PositiveInfinity;
            return true;
        }
        if (unsigned.IsEmpty || !(char.IsAsciiDigit((char)unsigned[0]) || unsigned[0] == (byte)'.')) return false;
        if (!double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value))
            return false;
        if (double.IsInfinity(value) || double.IsNaN(value)) return false; // ERANGE
        if (value == 0 || double.IsSubnormal(value))
        {
            // Underflow is ERANGE too: a zero result from non-zero digits.
            foreach (byte b in unsigned)
            {
                if (b is (byte)'e' or (byte)'E') break;
                if (b is >= (byte)'1' and <= (byte)'9') return false;
            }
        }
        return true;
    }
}
