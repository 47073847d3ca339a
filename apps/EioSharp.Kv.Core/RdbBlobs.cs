using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Decoders of the packed encodings inside RDB strings: listpack, ziplist, intset, zipmap, LZF, and the stream
/// listpack layout (t_stream.c). Every read is bounds-checked: a bad blob throws <see cref="RdbFormatException"/>.</summary>
internal static class RdbBlobs
{
    /// <summary>A listpack element: an integer or a string.</summary>
    internal readonly record struct LpValue(byte[]? Str, long Int)
    {
        public byte[] Bytes => Str ?? Encoding.ASCII.GetBytes(Int.ToString(CultureInfo.InvariantCulture));

        public long AsInt64() =>
            Str is null ? Int : RespNumbers.TryParseInt64(Str, out long v) ? v : throw Bad("stream listpack: an integer was expected");
    }

    private static RdbFormatException Bad(string what) => new("Bad RDB file: " + what);

    /// <summary>The elements of a listpack, as strings (integers in decimal).</summary>
    public static List<byte[]> Listpack(byte[] lp)
    {
        var values = ListpackValues(lp);
        var list = new List<byte[]>(values.Count);
        foreach (LpValue v in values) list.Add(v.Bytes);
        return list;
    }

    /// <summary>The elements of a listpack (listpack.c's layout: total bytes, count, entries with back-lengths, 0xFF).</summary>
    public static List<LpValue> ListpackValues(byte[] lp)
    {
        if (lp.Length < 7) throw Bad("listpack shorter than its header");
        if (BinaryPrimitives.ReadUInt32LittleEndian(lp) != (uint)lp.Length) throw Bad("listpack header size does not match");
        int declared = BinaryPrimitives.ReadUInt16LittleEndian(lp.AsSpan(4));
        var list = new List<LpValue>(Math.Min(declared, 4096));
        int p = 6;
        while (true)
        {
            if (p >= lp.Length) throw Bad("listpack without terminator");
            byte b = lp[p];
            if (b == 0xFF)
            {
                if (p != lp.Length - 1) throw Bad("listpack terminator before its end");
                break;
            }
            int headerLen, dataLen;
            LpValue value;
            if ((b & 0x80) == 0)
            {
                headerLen = 1;
                dataLen = 0;
                value = new LpValue(null, b & 0x7F);
            }
            else if ((b & 0xC0) == 0x80)
            {
                headerLen = 1;
                dataLen = b & 0x3F;
                value = new LpValue(Slice(lp, p + 1, dataLen), 0);
            }
            else if ((b & 0xE0) == 0xC0)
            {
                Need(lp, p, 2);
                int u = ((b & 0x1F) << 8) | lp[p + 1];
                headerLen = 2;
                dataLen = 0;
                value = new LpValue(null, u >= 1 << 12 ? u - (1 << 13) : u);
            }
            else if ((b & 0xF0) == 0xE0)
            {
                Need(lp, p, 2);
                headerLen = 2;
                dataLen = ((b & 0x0F) << 8) | lp[p + 1];
                value = new LpValue(Slice(lp, p + 2, dataLen), 0);
            }
            else
            {
                switch (b)
                {
                    case 0xF0:
                        Need(lp, p, 5);
                        uint len = BinaryPrimitives.ReadUInt32LittleEndian(lp.AsSpan(p + 1));
                        if (len > (uint)lp.Length) throw Bad("listpack string longer than the listpack");
                        headerLen = 5;
                        dataLen = (int)len;
                        value = new LpValue(Slice(lp, p + 5, dataLen), 0);
                        break;
                    case 0xF1:
                        Need(lp, p, 3);
                        headerLen = 3;
                        dataLen = 0;
                        value = new LpValue(null, BinaryPrimitives.ReadInt16LittleEndian(lp.AsSpan(p + 1)));
                        break;
                    case 0xF2:
                        Need(lp, p, 4);
                        headerLen = 4;
                        dataLen = 0;
                        int v24 = lp[p + 1] | (lp[p + 2] << 8) | (lp[p + 3] << 16);
                        value = new LpValue(null, (v24 << 8) >> 8);
                        break;
                    case 0xF3:
                        Need(lp, p, 5);
                        headerLen = 5;
                        dataLen = 0;
                        value = new LpValue(null, BinaryPrimitives.ReadInt32LittleEndian(lp.AsSpan(p + 1)));
                        break;
                    case 0xF4:
                        Need(lp, p, 9);
                        headerLen = 9;
                        dataLen = 0;
                        value = new LpValue(null, BinaryPrimitives.ReadInt64LittleEndian(lp.AsSpan(p + 1)));
                        break;
                    default:
                        throw Bad($"listpack entry with unknown encoding 0x{b:x2}");
                }
            }
            long entry = (long)headerLen + dataLen;
            int backlen = entry <= 127 ? 1 : entry < 16383 ? 2 : entry < 2097151 ? 3 : entry < 268435455 ? 4 : 5;
            long next = p + entry + backlen;
            if (next > lp.Length - 1) throw Bad("listpack entry past the end");
            p = (int)next;
            list.Add(value);
        }
        if (declared != 65535 && declared != list.Count) throw Bad("listpack element count does not match");
        return list;
    }

    private static void Need(byte[] blob, int p, int n)
    {
        if ((long)p + n > blob.Length) throw Bad("entry past the end of a packed value");
    }

    private static byte[] Slice(byte[] blob, int from, int length)
    {
        if (length < 0 || (long)from + length > blob.Length) throw Bad("string past the end of a packed value");
        return blob.AsSpan(from, length).ToArray();
    }

    /// <summary>The elements of a ziplist (ziplist.c: zlbytes, zltail, zllen, entries with prevlen and encoding, 0xFF).</summary>
    public static List<byte[]> Ziplist(byte[] zl)
    {
        if (zl.Length < 11) throw Bad("ziplist shorter than its header");
        if (BinaryPrimitives.ReadUInt32LittleEndian(zl) != (uint)zl.Length) throw Bad("ziplist header size does not match");
        int declared = BinaryPrimitives.ReadUInt16LittleEndian(zl.AsSpan(8));
        var list = new List<byte[]>(Math.Min(declared, 4096));
        int p = 10;
        while (true)
        {
            if (p >= zl.Length) throw Bad("ziplist without terminator");
            if (zl[p] == 0xFF)
            {
                if (p != zl.Length - 1) throw Bad("ziplist terminator before its end");
                break;
            }
            p += zl[p] < 254 ? 1 : 5; // prevlen
            Need(zl, p, 1);
            byte b = zl[p];
            switch (b >> 6)
            {
                case 0:
                    list.Add(Slice(zl, p + 1, b & 0x3F));
                    p += 1 + (b & 0x3F);
                    continue;
                case 1:
                    Need(zl, p, 2);
                    int l14 = ((b & 0x3F) << 8) | zl[p + 1];
                    list.Add(Slice(zl, p + 2, l14));
                    p += 2 + l14;
                    continue;
                case 2:
                    Need(zl, p, 5);
                    uint l32 = BinaryPrimitives.ReadUInt32BigEndian(zl.AsSpan(p + 1));
                    if (l32 > (uint)zl.Length) throw Bad("ziplist string longer than the ziplist");
                    list.Add(Slice(zl, p + 5, (int)l32));
                    p += 5 + (int)l32;
                    continue;
            }
            long v;
            int size;
            switch (b)
            {
                case 0xC0:
                    Need(zl, p, 3);
                    v = BinaryPrimitives.ReadInt16LittleEndian(zl.AsSpan(p + 1));
                    size = 3;
                    break;
                case 0xD0:
                    Need(zl, p, 5);
                    v = BinaryPrimitives.ReadInt32LittleEndian(zl.AsSpan(p + 1));
                    size = 5;
                    break;
                case 0xE0:
                    Need(zl, p, 9);
                    v = BinaryPrimitives.ReadInt64LittleEndian(zl.AsSpan(p + 1));
                    size = 9;
                    break;
                case 0xF0:
                    Need(zl, p, 4);
                    v = ((zl[p + 1] | (zl[p + 2] << 8) | (zl[p + 3] << 16)) << 8) >> 8;
                    size = 4;
                    break;
                case 0xFE:
                    Need(zl, p, 2);
                    v = (sbyte)zl[p + 1];
                    size = 2;
                    break;
                default:
                    if (b is >= 0xF1 and <= 0xFD)
                    {
                        v = (b & 0x0F) - 1;
                        size = 1;
                        break;
                    }
                    throw Bad($"ziplist entry with unknown encoding 0x{b:x2}");
            }
            list.Add(Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture)));
            p += size;
        }
        if (declared != 65535 && declared != list.Count) throw Bad("ziplist element count does not match");
        return list;
    }

    /// <summary>The members of an intset (intset.c: encoding 2, 4 or 8, length, sorted little-endian integers).</summary>
    public static List<byte[]> Intset(byte[] set)
    {
        if (set.Length < 8) throw Bad("intset shorter than its header");
        uint width = BinaryPrimitives.ReadUInt32LittleEndian(set);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(set.AsSpan(4));
        if (width is not (2 or 4 or 8) || 8 + (long)width * count != set.Length) throw Bad("intset encoding or length does not match its size");
        if (count == 0) throw Bad("empty intset");
        var list = new List<byte[]>((int)count);
        long previous = 0;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> at = set.AsSpan(8 + i * (int)width);
            long v = width switch
            {
                2 => BinaryPrimitives.ReadInt16LittleEndian(at),
                4 => BinaryPrimitives.ReadInt32LittleEndian(at),
                _ => BinaryPrimitives.ReadInt64LittleEndian(at),
            };
            if (i > 0 && v <= previous) throw Bad("intset members out of order or duplicated"); // intsetValidateIntegrity's deep check
            previous = v;
            list.Add(Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture)));
        }
        return list;
    }

    /// <summary>The pairs of a zipmap (redis 2.x hashes: zmlen, then len field len free value [free bytes], 0xFF).</summary>
    public static List<(byte[], byte[])> Zipmap(byte[] zm)
    {
        var list = new List<(byte[], byte[])>();
        int p = 1;
        while (true)
        {
            Need(zm, p, 1);
            if (zm[p] == 0xFF) break;
            byte[] field = ZipmapString(zm, ref p, free: false);
            byte[] value = ZipmapString(zm, ref p, free: true);
            list.Add((field, value));
        }
        return list;
    }

    private static byte[] ZipmapString(byte[] zm, ref int p, bool free)
    {
        Need(zm, p, 1);
        int len;
        if (zm[p] < 254)
        {
            len = zm[p];
            p++;
        }
        else if (zm[p] == 254)
        {
            Need(zm, p, 5);
            uint l = BinaryPrimitives.ReadUInt32LittleEndian(zm.AsSpan(p + 1));
            if (l > (uint)zm.Length) throw Bad("zipmap string longer than the zipmap");
            len = (int)l;
            p += 5;
        }
        else
        {
            throw Bad("zipmap ends inside an entry");
        }
        int skip = 0;
        if (free)
        {
            Need(zm, p, 1);
            skip = zm[p];
            p++;
        }
        byte[] s = Slice(zm, p, len);
        p += len + skip;
        return s;
    }

    /// <summary>The state <see cref="LzfCompress"/> keeps between calls: lzf's hash table (positions stamped per call)
    /// and a scratch output buffer.</summary>
    internal sealed class LzfState
    {
        public readonly int[] Table = new int[1 << LzfHashLog];
        public int Base;
        public byte[] Scratch = new byte[256];
    }

    private const int LzfHashLog = 16, LzfMaxLiteral = 1 << 5, LzfMaxOffset = 1 << 13, LzfMaxReference = (1 << 8) + (1 << 3);

    /// <summary>lzf_compress as redis-server 7.0 builds it (liblzf 3.6: HLOG 16, VERY_FAST, not ULTRA_FAST, offsets in the
    /// hash table): the same back-references, literal runs and give-up points, so that a string compresses to the bytes
    /// redis writes in its RDB files and DUMP payloads. Redis leaves its hash table uninitialized (INIT_HTAB 0): a slot
    /// never set in the current call holds an offset from an earlier call, used only if the bytes there match, so redis's
    /// output for one string may in rare cases depend on what it compressed before; this table starts empty (what a
    /// fresh table gives), and every output, redis's or ours, decompresses to the same string.</summary>
    /// <param name="input">The bytes to compress.</param>
    /// <param name="output">Receives the compressed bytes; its length is lzf's <c>out_len</c> (redis passes the input's
    /// length less 4: compression must save at least 4 bytes).</param>
    /// <param name="state">The hash table and scratch buffer, reused between calls (not shared between threads).</param>
    /// <returns>The compressed length, or 0 when the output did not fit in <paramref name="output"/>.</returns>
    public static int LzfCompress(ReadOnlySpan<byte> input, Span<byte> output, LzfState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        int inLen = input.Length, outEnd = output.Length;
        if (inLen == 0 || outEnd == 0) return 0;
        // The table is not cleared per call (65536 entries for a 21-byte string would cost more than compressing it):
        // this call's positions are stored as tableBase + position, so an entry from an earlier call reads as <= 0.
        int[] table = state.Table;
        if (state.Base > int.MaxValue - inLen - 2)
        {
            Array.Clear(table);
            state.Base = 0;
        }
        int tableBase = state.Base;
        state.Base = tableBase + inLen + 1;
        // lzf writes a run's header byte before it knows the run; op may pass out_end by 2 before a check catches it.
        if (state.Scratch.Length < outEnd + 4) state.Scratch = new byte[Math.Max(outEnd + 4, 2 * state.Scratch.Length)];
        Span<byte> buf = state.Scratch;
        int ip = 0, op = 0, inEnd = inLen;
        int lit = 0;
        op++; // start run
        uint hval = (uint)((input[0] << 8) | input[1]);
        while (ip < inEnd - 2)
        {
            hval = (hval << 8) | input[ip + 2];
            int slot = (int)(((hval >> (3 * 8 - LzfHashLog)) - hval * 5) & ((1 << LzfHashLog) - 1));
            int reference = table[slot] - tableBase;
            table[slot] = tableBase + ip;
            int off;
            if (reference > 0 && reference < ip && (off = ip - reference - 1) < LzfMaxOffset
                && input[reference + 2] == input[ip + 2] && input[reference] == input[ip] && input[reference + 1] == input[ip + 1])
            {
                int len = 2;
                int maxlen = inEnd - ip - len;
                maxlen = maxlen > LzfMaxReference ? LzfMaxReference : maxlen;
                if (op + 3 + 1 >= outEnd && op - (lit == 0 ? 1 : 0) + 3 + 1 >= outEnd) return 0;
                buf[op - lit - 1] = (byte)(lit - 1); // stop run
                op -= lit == 0 ? 1 : 0; // undo run if length is zero
                bool mismatch = false;
                if (maxlen > 16)
                {
                    for (int k = 0; k < 16; k++)
                    {
                        len++;
                        if (input[reference + len] != input[ip + len])
                        {
                            mismatch = true;
                            break;
                        }
                    }
                }
                if (!mismatch)
                {
                    do
                    {
                        len++;
                    }
                    while (len < maxlen && input[reference + len] == input[ip + len]);
                }
                len -= 2; // octets - 2
                ip++;
                if (len < 7)
                {
                    buf[op++] = (byte)((off >> 8) + (len << 5));
                }
                else
                {
                    buf[op++] = (byte)((off >> 8) + (7 << 5));
                    buf[op++] = (byte)(len - 7);
                }
                buf[op++] = (byte)off;
                lit = 0;
                op++; // start run
                ip += len + 1;
                if (ip >= inEnd - 2) break;
                // VERY_FAST: hash the two positions before the new one.
                ip -= 2;
                hval = (uint)((input[ip] << 8) | input[ip + 1]);
                hval = (hval << 8) | input[ip + 2];
                table[(int)(((hval >> (3 * 8 - LzfHashLog)) - hval * 5) & ((1 << LzfHashLog) - 1))] = tableBase + ip;
                ip++;
                hval = (hval << 8) | input[ip + 2];
                table[(int)(((hval >> (3 * 8 - LzfHashLog)) - hval * 5) & ((1 << LzfHashLog) - 1))] = tableBase + ip;
                ip++;
            }
            else
            {
                if (op >= outEnd) return 0;
                lit++;
                buf[op++] = input[ip++];
                if (lit == LzfMaxLiteral)
                {
                    buf[op - lit - 1] = (byte)(lit - 1); // stop run
                    lit = 0;
                    op++; // start run
                }
            }
        }
        if (op + 3 > outEnd) return 0; // at most 3 bytes can be missing here
        while (ip < inEnd)
        {
            lit++;
            buf[op++] = input[ip++];
            if (lit == LzfMaxLiteral)
            {
                buf[op - lit - 1] = (byte)(lit - 1);
                lit = 0;
                op++;
            }
        }
        buf[op - lit - 1] = (byte)(lit - 1); // end run
        op -= lit == 0 ? 1 : 0;
        buf[..op].CopyTo(output);
        return op;
    }

    /// <summary>lzf_decompress: null when the input is not valid LZF data of exactly <paramref name="length"/> bytes.</summary>
    public static byte[]? LzfDecompress(ReadOnlySpan<byte> input, int length)
    {
        byte[] output = new byte[length];
        int ip = 0, op = 0;
        while (ip < input.Length)
        {
            int ctrl = input[ip++];
            if (ctrl < 32)
            {
                int run = ctrl + 1;
                if (op + run > length || ip + run > input.Length) return null;
                input.Slice(ip, run).CopyTo(output.AsSpan(op));
                ip += run;
                op += run;
            }
            else
            {
                int len = ctrl >> 5;
                int back = (ctrl & 0x1F) << 8;
                if (len == 7)
                {
                    if (ip >= input.Length) return null;
                    len += input[ip++];
                }
                if (ip >= input.Length) return null;
                back += input[ip++];
                int reference = op - back - 1;
                len += 2;
                if (reference < 0 || op + len > length) return null;
                for (int i = 0; i < len; i++) output[op++] = output[reference++];
            }
        }
        return op == length ? output : null;
    }

    /// <summary>Reads the entries of one stream node listpack (t_stream.c: the master entry, then each entry with its
    /// flags, ID deltas, fields or values and lp-count) and adds the live ones to <paramref name="output"/>.</summary>
    public static void StreamListpack(List<LpValue> lp, StreamId master, List<(StreamId Id, byte[][] Pairs)> output)
    {
        int i = 0;
        LpValue Next() => i < lp.Count ? lp[i++] : throw Bad("stream listpack ends inside an entry");
        long count = Next().AsInt64();
        long deleted = Next().AsInt64();
        long masterFieldCount = Next().AsInt64();
        if (count < 0 || deleted < 0 || masterFieldCount < 0 || masterFieldCount > lp.Count) throw Bad("stream listpack master entry is invalid");
        var masterFields = new byte[masterFieldCount][];
        for (int f = 0; f < masterFieldCount; f++) masterFields[f] = Next().Bytes;
        if (Next().AsInt64() != 0) throw Bad("stream listpack master entry is not terminated by 0");
        long seen = 0;
        StreamId previous = StreamId.Zero;
        while (i < lp.Count)
        {
            int start = i;
            long flags = Next().AsInt64();
            var id = new StreamId(unchecked(master.Ms + (ulong)Next().AsInt64()), unchecked(master.Seq + (ulong)Next().AsInt64()));
            bool same = (flags & Rdb.StreamItemFlagSameFields) != 0;
            long fields = same ? masterFieldCount : Next().AsInt64();
            if (fields < 0 || fields > lp.Count) throw Bad("stream entry field count is invalid");
            var pairs = new byte[fields * 2][];
            for (int f = 0; f < fields; f++)
            {
                pairs[2 * f] = same ? masterFields[f] : Next().Bytes;
                pairs[2 * f + 1] = Next().Bytes;
            }
            long lpCount = Next().AsInt64();
            if (lpCount != i - start - 1) throw Bad("stream entry lp-count does not match");
            if (seen > 0 && id <= previous) throw Bad("stream entries out of order");
            previous = id;
            seen++;
            if ((flags & Rdb.StreamItemFlagDeleted) == 0) output.Add((id, pairs));
        }
        if (seen != count + deleted) throw Bad("stream listpack entry count does not match its master entry");
    }
}
