using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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

        /// <summary>The trigram bitset of <see cref="LzfCannotFit"/> (grown to the largest size used, cleared per call).</summary>
        public ulong[] Seen = [];

        /// <summary>Calls that <see cref="LzfCannotFit"/> answered without running the compressor (tests, benchmarks).</summary>
        public long QuickGiveUps;
    }

    private const int LzfHashLog = 16, LzfMaxLiteral = 1 << 5, LzfMaxOffset = 1 << 13, LzfMaxReference = (1 << 8) + (1 << 3);

    /// <summary>lzf_compress as redis-server 7.0 builds it (liblzf 3.6: HLOG 16, VERY_FAST, not ULTRA_FAST, offsets in the
    /// hash table): the same back-references, literal runs and give-up points, so that a string compresses to the bytes
    /// redis writes in its RDB files and DUMP payloads. Redis leaves its hash table uninitialized (INIT_HTAB 0): a slot
    /// never set in the current call holds an offset from an earlier call, used only if the bytes there match, so redis's
    /// output for one string may in rare cases depend on what it compressed before; this table starts empty (what a
    /// fresh table gives), and every output, redis's or ours, decompresses to the same string.</summary>
    /// <remarks>The AOF rewrite's RDB preamble and BGSAVE run this over every string value of more than 20 bytes
    /// (rdbcompression yes), also over values that do not compress (random bytes: the whole value is hashed, then given
    /// up): it was half of a rewrite's CPU on the 1 KB SET row (issue 14). So the loops index through references without
    /// bounds checks (every index is within the input, the table or the scratch buffer by the algorithm's own limits,
    /// argued at each access); <see cref="LzfCompressReference"/> is the bounds-checked form it is tested against.</remarks>
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
        if (inLen < 3) return LzfCompressReference(input, output, state); // no hashed position: literals only
        int[] tableArray = state.Table;
        if (state.Base > int.MaxValue - inLen - 2)
        {
            Array.Clear(tableArray);
            state.Base = 0;
        }
        int tableBase = state.Base;
        state.Base = tableBase + inLen + 1;
        if (inLen >= LzfQuickGiveUpMinLength && LzfCannotFit(input, outEnd, state))
        {
            state.QuickGiveUps++;
            return 0; // what the loops below would return, without them (the table's entries of this call are never read)
        }
        if (state.Scratch.Length < outEnd + 4) state.Scratch = new byte[Math.Max(outEnd + 4, 2 * state.Scratch.Length)];
        // Bounds: `input` is read at indexes < inLen (the hash reads ip + 2 with ip < inLen - 2; a match compares at most
        // maxlen <= inLen - ip - 2 bytes past ip, and the reference is before ip); the table at a slot masked to 16 bits
        // (its length is 1 << 16); the scratch buffer (outEnd + 4 bytes) at op < outEnd for a literal, at most op + 3 <
        // outEnd + 3 for a back-reference (checked before it is written, as lzf does), and at op - lit - 1 >= 0 for a
        // run's header (the byte reserved when the run started).
        ref byte inp = ref MemoryMarshal.GetReference(input);
        ref byte buf = ref MemoryMarshal.GetArrayDataReference(state.Scratch);
        ref int table = ref MemoryMarshal.GetArrayDataReference(tableArray);
        int ip = 0, op = 1, inEnd = inLen, lit = 0; // op = 1: the first literal run's header
        int hashEnd = inEnd - 2;
        uint hval = (uint)((inp << 8) | Unsafe.Add(ref inp, 1));
        while (ip < hashEnd)
        {
            hval = (hval << 8) | Unsafe.Add(ref inp, ip + 2);
            ref int entry = ref Unsafe.Add(ref table, (int)(((hval >> (3 * 8 - LzfHashLog)) - hval * 5) & ((1 << LzfHashLog) - 1)));
            int reference = entry - tableBase;
            entry = tableBase + ip;
            int off;
            if (reference > 0 && reference < ip && (off = ip - reference - 1) < LzfMaxOffset
                && Unsafe.Add(ref inp, reference + 2) == Unsafe.Add(ref inp, ip + 2)
                && Unsafe.Add(ref inp, reference) == Unsafe.Add(ref inp, ip)
                && Unsafe.Add(ref inp, reference + 1) == Unsafe.Add(ref inp, ip + 1))
            {
                int len = 2;
                int maxlen = inEnd - ip - len;
                maxlen = maxlen > LzfMaxReference ? LzfMaxReference : maxlen;
                if (op + 3 + 1 >= outEnd && op - (lit == 0 ? 1 : 0) + 3 + 1 >= outEnd) return 0;
                Unsafe.Add(ref buf, op - lit - 1) = (byte)(lit - 1); // stop run
                op -= lit == 0 ? 1 : 0; // undo run if length is zero
                bool mismatch = false;
                if (maxlen > 16)
                {
                    for (int k = 0; k < 16; k++)
                    {
                        len++;
                        if (Unsafe.Add(ref inp, reference + len) != Unsafe.Add(ref inp, ip + len))
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
                    while (len < maxlen && Unsafe.Add(ref inp, reference + len) == Unsafe.Add(ref inp, ip + len));
                }
                len -= 2; // octets - 2
                ip++;
                if (len < 7)
                {
                    Unsafe.Add(ref buf, op++) = (byte)((off >> 8) + (len << 5));
                }
                else
                {
                    Unsafe.Add(ref buf, op++) = (byte)((off >> 8) + (7 << 5));
                    Unsafe.Add(ref buf, op++) = (byte)(len - 7);
                }
                Unsafe.Add(ref buf, op++) = (byte)off;
                lit = 0;
                op++; // start run
                ip += len + 1;
                if (ip >= hashEnd) break;
                // VERY_FAST: hash the two positions before the new one.
                ip -= 2;
                hval = (uint)((Unsafe.Add(ref inp, ip) << 8) | Unsafe.Add(ref inp, ip + 1));
                hval = (hval << 8) | Unsafe.Add(ref inp, ip + 2);
                Unsafe.Add(ref table, (int)(((hval >> (3 * 8 - LzfHashLog)) - hval * 5) & ((1 << LzfHashLog) - 1))) = tableBase + ip;
                ip++;
                hval = (hval << 8) | Unsafe.Add(ref inp, ip + 2);
                Unsafe.Add(ref table, (int)(((hval >> (3 * 8 - LzfHashLog)) - hval * 5) & ((1 << LzfHashLog) - 1))) = tableBase + ip;
                ip++;
            }
            else
            {
                if (op >= outEnd) return 0;
                lit++;
                Unsafe.Add(ref buf, op++) = Unsafe.Add(ref inp, ip++);
                if (lit == LzfMaxLiteral)
                {
                    Unsafe.Add(ref buf, op - lit - 1) = (byte)(lit - 1); // stop run
                    lit = 0;
                    op++; // start run
                }
            }
        }
        if (op + 3 > outEnd) return 0; // at most 3 bytes can be missing here
        while (ip < inEnd)
        {
            lit++;
            Unsafe.Add(ref buf, op++) = Unsafe.Add(ref inp, ip++);
            if (lit == LzfMaxLiteral)
            {
                Unsafe.Add(ref buf, op - lit - 1) = (byte)(lit - 1);
                lit = 0;
                op++;
            }
        }
        Unsafe.Add(ref buf, op - lit - 1) = (byte)(lit - 1); // end run
        op -= lit == 0 ? 1 : 0;
        state.Scratch.AsSpan(0, op).CopyTo(output);
        return op;
    }

    private const int LzfQuickGiveUpMinLength = 64, LzfSeenMinLog = 12, LzfSeenMaxLog = 20;

    /// <summary>True when <see cref="LzfCompress"/> is certain to return 0 (its output cannot fit in
    /// <paramref name="outEnd"/> bytes), decided from a bound instead of by running it: the exact give-up for values that
    /// do not compress (issue 14: random values, such as redis-benchmark's, made LZF half of an AOF rewrite's CPU, hashed
    /// byte by byte and then given up).</summary>
    /// <remarks>
    /// <para>The bound. lzf's output is literal runs (at most 32 bytes each, one header byte per run) and
    /// back-references (2 or 3 bytes each, covering len &gt;= 3 input bytes that equal the bytes off + 1 &lt;= 8192
    /// positions earlier). In a back-reference of len bytes, the len - 2 positions whose trigram (the 3 bytes from
    /// there) lies inside it each repeat a trigram seen at most 8192 positions before. So with R = the number of
    /// positions whose trigram occurred earlier, the k back-references cover M bytes with M - 2k &lt;= R and M &lt;= 3R,
    /// and the output has at least (n - M) + ceil((n - M) / 32) + 2k &gt;= n - R + ceil(max(0, n - 3R) / 32) bytes. lzf
    /// never returns an output longer than out_len (it checks before each write), so when that bound exceeds
    /// <paramref name="outEnd"/> it returns 0: this method returns true only then.</para>
    /// <para>R is over-counted, never under-counted (which keeps the bound a lower bound): a position counts when its
    /// trigram's hash bit (64 bits per input byte, 4 Ki to 1 Mi bits) was already set by any earlier position, whatever
    /// the distance or a hash collision. R is the number of positions less the bits set in the end
    /// (<see cref="LzfRepeatedTrigrams"/>): its first 256 positions are tested and set one by one, and the scan stops
    /// there, answering false, once the count is past the largest R that still proves the give-up (a value that
    /// compresses from its start: then the compressor runs as before); the rest are only set, eight a step, hashed in
    /// vectors, and counted by the bitset's population. Each position's hash is its 3 bytes times a constant; the
    /// bitset stays in the first-level cache for values of a few KB. On redis-benchmark's 1 KB value this takes ~1.07 µs
    /// against 1.5 µs for the one-by-one test-and-set it replaced (issue 14, session 21), against ~1.6 µs for lzf
    /// compressing a 1 KB text.</para>
    /// </remarks>
    private static bool LzfCannotFit(ReadOnlySpan<byte> input, int outEnd, LzfState state)
    {
        if (!BitConverter.IsLittleEndian) return false; // the 4-byte load below takes the trigram as its low 3 bytes
        long n = input.Length;
        // The largest R for which n - R + ceil(max(0, n - 3R) / 32) > outEnd (non-increasing in R); none: no proof.
        static long Bound(long n, long r) => n - r + (Math.Max(0, n - 3 * r) + 31) / 32;
        if (Bound(n, 0) <= outEnd) return false;
        long lo = 0, hi = n; // Bound(lo) > outEnd; find the last such R
        while (lo < hi)
        {
            long mid = (lo + hi + 1) / 2;
            if (Bound(n, mid) > outEnd) lo = mid;
            else hi = mid - 1;
        }
        int maxRepeats = (int)lo;
        return LzfRepeatedTrigrams(input, maxRepeats, state) <= maxRepeats;
    }

    /// <summary>How <see cref="LzfRepeatedTrigrams"/> hashes the positions after its first
    /// <see cref="LzfTestedPositions"/>: the widest the machine has (tests run each).</summary>
    internal enum LzfScan
    {
        /// <summary>The best of the others.</summary>
        Auto,

        /// <summary>One position at a time.</summary>
        Scalar,

        /// <summary>Eight positions a step in two 128-bit vectors (any accelerated platform).</summary>
        Vector128,

        /// <summary>Eight positions a step in one 256-bit vector, the bit masks too (x86 AVX2).</summary>
        Avx2,
    }

    // The positions counted one by one (test and set) before the rest are only set: their early stop catches values that
    // compress from their start (text, repeated bytes) after at most this many positions, as the count before issue 14's
    // second change did everywhere.
    internal const int LzfTestedPositions = 256;

    /// <summary>The R of <see cref="LzfCannotFit"/>'s bound, over-counted: the positions of <paramref name="input"/>
    /// whose trigram's hash bit was already set by an earlier position, that is the number of trigram positions less
    /// the number of distinct hashes among them (bits set in the end): the same count whatever order the positions are
    /// marked in. The first <see cref="LzfTestedPositions"/> are tested and set one by one, stopping as soon as the
    /// count is past <paramref name="stopAbove"/> (a value that compresses from its start); the rest are only set, eight
    /// a step, hashed in vectors, and the count is taken at the end from the bitset's population (issue 14).</summary>
    /// <param name="input">The value (at least 4 bytes).</param>
    /// <param name="stopAbove">The count past which the scan may stop.</param>
    /// <param name="state">Holds the bitset (all zero between calls), reused between calls.</param>
    /// <param name="scan">How the positions after the tested ones are hashed (tests compare them).</param>
    /// <returns>The count, or a count above <paramref name="stopAbove"/> (not more than the whole count) when it stopped early.</returns>
    internal static int LzfRepeatedTrigrams(ReadOnlySpan<byte> input, int stopAbove, LzfState state, LzfScan scan = LzfScan.Auto)
    {
        int n = input.Length;
        int log = Math.Clamp(64 - BitOperations.LeadingZeroCount((ulong)(64L * n - 1)), LzfSeenMinLog, LzfSeenMaxLog);
        int words = 1 << (log - 6); // a power of two, at least 64
        if (state.Seen.Length < words) state.Seen = new ulong[words]; // zero; every call leaves its words zero again
        ref ulong seen = ref MemoryMarshal.GetArrayDataReference(state.Seen);
        ref byte inp = ref MemoryMarshal.GetReference(input);
        int shift = 32 - log, repeats = 0, last = n - 3; // trigram positions 0 .. last
        int p = 0;
        if (scan == LzfScan.Auto) scan = Avx2.IsSupported ? LzfScan.Avx2 : Vector128.IsHardwareAccelerated ? LzfScan.Vector128 : LzfScan.Scalar;
        bool avx2 = scan == LzfScan.Avx2 && Avx2.IsSupported;
        // Bounds: `seen` is indexed by a hash's high bits, h >> 6 < 2^log / 64 = words <= Seen.Length; `input` is read by
        // 4-byte loads at p < last (p + 3 < n) and 16-byte loads at p <= n - 16.
        Span<uint> index = stackalloc uint[8];
        Span<ulong> mask = stackalloc ulong[8];
        ref uint ix = ref MemoryMarshal.GetReference(index);
        ref ulong mk = ref MemoryMarshal.GetReference(mask);
        int tested = Math.Min(last, LzfTestedPositions);
        if (avx2)
        {
            // Eight positions a step (Hash8), each tested and set; a compare with the count to stop above every 64.
            for (int vectorEnd = n - 16; p + 8 <= tested && p <= vectorEnd;)
            {
                Hash8(ref inp, p, shift, ref ix, ref mk);
                repeats += TestAndSet(ref seen, ix, mk) + TestAndSet(ref seen, Unsafe.Add(ref ix, 1), Unsafe.Add(ref mk, 1))
                    + TestAndSet(ref seen, Unsafe.Add(ref ix, 2), Unsafe.Add(ref mk, 2)) + TestAndSet(ref seen, Unsafe.Add(ref ix, 3), Unsafe.Add(ref mk, 3))
                    + TestAndSet(ref seen, Unsafe.Add(ref ix, 4), Unsafe.Add(ref mk, 4)) + TestAndSet(ref seen, Unsafe.Add(ref ix, 5), Unsafe.Add(ref mk, 5))
                    + TestAndSet(ref seen, Unsafe.Add(ref ix, 6), Unsafe.Add(ref mk, 6)) + TestAndSet(ref seen, Unsafe.Add(ref ix, 7), Unsafe.Add(ref mk, 7));
                p += 8;
                if ((p & 63) == 0 && repeats > stopAbove) break;
            }
        }
        while (p < tested && repeats <= stopAbove)
        {
            // Blocks of up to 64 positions, then one compare with the count to stop above. The trigram is the 4-byte
            // load's low 3 bytes (little-endian).
            int blockEnd = Math.Min(tested, p + 64);
            for (; p < blockEnd; p++) repeats += Mark(ref seen, Hash(ref inp, p, shift));
        }
        if (repeats > stopAbove)
        {
            state.Seen.AsSpan(0, words).Clear();
            return repeats;
        }
        if (avx2)
        {
            // The rest only set: one OR into the bitset a position.
            for (int vectorEnd = n - 16; p <= vectorEnd; p += 8)
            {
                Hash8(ref inp, p, shift, ref ix, ref mk);
                Unsafe.Add(ref seen, (nint)ix) |= mk;
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 1)) |= Unsafe.Add(ref mk, 1);
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 2)) |= Unsafe.Add(ref mk, 2);
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 3)) |= Unsafe.Add(ref mk, 3);
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 4)) |= Unsafe.Add(ref mk, 4);
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 5)) |= Unsafe.Add(ref mk, 5);
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 6)) |= Unsafe.Add(ref mk, 6);
                Unsafe.Add(ref seen, (nint)Unsafe.Add(ref ix, 7)) |= Unsafe.Add(ref mk, 7);
            }
        }
        else if (scan == LzfScan.Vector128 && Vector128.IsHardwareAccelerated)
        {
            // Eight hashes a step in two 128-bit vectors of four (portable: pshufb/pmulld on x86, tbl/mul on Arm); the
            // trigram widened to a 32-bit lane by a byte shuffle (index 0xFF gives 0).
            ref uint hash = ref ix;
            Vector128<uint> multiplier = Vector128.Create(2654435761u);
            for (int vectorEnd = n - 16; p <= vectorEnd; p += 8)
            {
                Vector128<byte> bytes = Vector128.LoadUnsafe(ref inp, (nuint)p);
                Vector128<uint> low = Vector128.Shuffle(bytes,
                    Vector128.Create((byte)0, 1, 2, 0xFF, 1, 2, 3, 0xFF, 2, 3, 4, 0xFF, 3, 4, 5, 0xFF)).AsUInt32();
                Vector128<uint> high = Vector128.Shuffle(bytes,
                    Vector128.Create((byte)4, 5, 6, 0xFF, 5, 6, 7, 0xFF, 6, 7, 8, 0xFF, 7, 8, 9, 0xFF)).AsUInt32();
                Vector128.ShiftRightLogical(low * multiplier, shift).StoreUnsafe(ref hash);
                Vector128.ShiftRightLogical(high * multiplier, shift).StoreUnsafe(ref hash, (nuint)4);
                for (int k = 0; k < 8; k++) Set(ref seen, Unsafe.Add(ref hash, k));
            }
        }
        for (; p < last; p++) Set(ref seen, Hash(ref inp, p, shift));
        // The last position (its 3 bytes end the input).
        uint lastTrigram = (uint)(Unsafe.Add(ref inp, last) | (Unsafe.Add(ref inp, last + 1) << 8) | (Unsafe.Add(ref inp, last + 2) << 16));
        Set(ref seen, (lastTrigram * 2654435761u) >> shift);
        // Distinct hashes = bits set (four sums: no chain through one register); the words are cleared for the next call.
        int b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        for (nint w = 0; w < words; w += 4)
        {
            b0 += BitOperations.PopCount(Unsafe.Add(ref seen, w));
            b1 += BitOperations.PopCount(Unsafe.Add(ref seen, w + 1));
            b2 += BitOperations.PopCount(Unsafe.Add(ref seen, w + 2));
            b3 += BitOperations.PopCount(Unsafe.Add(ref seen, w + 3));
        }
        state.Seen.AsSpan(0, words).Clear();
        return last + 1 - (b0 + b1 + b2 + b3);
    }

    // Eight positions from the 16 bytes at p (p + 16 <= n; positions p .. p + 7 read bytes up to p + 9), in both 128-bit
    // lanes of one AVX2 vector: each trigram widened to a 32-bit lane by a byte shuffle (index 0x80 gives 0), hashed as
    // Hash does (multiply, shift), then each hash's word index (h >> 6) into ix[0..8) and its bit as a 64-bit mask
    // (1 << (h & 63)) into mk[0..8).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Hash8(ref byte inp, int p, int shift, ref uint ix, ref ulong mk)
    {
        Vector128<byte> bytes = Vector128.LoadUnsafe(ref inp, (nuint)p);
        Vector256<uint> t = Avx2.Shuffle(Vector256.Create(bytes, bytes), Vector256.Create((byte)0, 1, 2, 0x80, 1, 2, 3, 0x80, 2, 3, 4, 0x80,
            3, 4, 5, 0x80, 4, 5, 6, 0x80, 5, 6, 7, 0x80, 6, 7, 8, 0x80, 7, 8, 9, 0x80)).AsUInt32();
        Vector256<uint> h = Avx2.ShiftRightLogical(Avx2.MultiplyLow(t, Vector256.Create(2654435761u)), Vector128.CreateScalar((uint)shift));
        Avx2.ShiftRightLogical(h, 6).StoreUnsafe(ref ix);
        Vector256<uint> bit = Avx2.And(h, Vector256.Create(63u));
        Avx2.ShiftLeftLogicalVariable(Vector256<ulong>.One, Avx2.ConvertToVector256Int64(bit.GetLower()).AsUInt64()).StoreUnsafe(ref mk);
        Avx2.ShiftLeftLogicalVariable(Vector256<ulong>.One, Avx2.ConvertToVector256Int64(bit.GetUpper()).AsUInt64()).StoreUnsafe(ref mk, (nuint)4);
    }

    // Sets the bit of mask in word index; 1 when it was already set.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TestAndSet(ref ulong seen, uint index, ulong mask)
    {
        ref ulong word = ref Unsafe.Add(ref seen, (nint)index);
        ulong w = word;
        word = w | mask;
        return (w & mask) != 0 ? 1 : 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ref byte inp, int p, int shift) =>
        ((Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref inp, p)) & 0xFFFFFF) * 2654435761u) >> shift; // < 2^log

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Set(ref ulong seen, uint h) => Unsafe.Add(ref seen, (nint)(h >> 6)) |= 1UL << (int)h;

    // Sets the hash's bit; 1 when it was already set. A shift of a ulong takes the count's low 6 bits: h & 63.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Mark(ref ulong seen, uint h)
    {
        ref ulong word = ref Unsafe.Add(ref seen, (nint)(h >> 6));
        ulong w = word;
        word = w | (1UL << (int)h);
        return (int)((w >> (int)h) & 1);
    }

    /// <summary>The same compressor as <see cref="LzfCompress"/>, written with bounds-checked spans (the reference the
    /// fast form is tested against: the same output and the same give-up for every input).</summary>
    internal static int LzfCompressReference(ReadOnlySpan<byte> input, Span<byte> output, LzfState state)
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
