using System.Buffers.Binary;
using System.Globalization;

namespace EioSharp.Kv;

/// <summary>Redis's HyperLogLog string format and algorithms (a port of Redis 7.0's hyperloglog.c), so that PFADD,
/// PFCOUNT and PFMERGE give the same counts and store the same bytes as redis-server.</summary>
/// <remarks>
/// A value is a string: a 16-byte header (<c>HYLL</c>, the encoding byte, 3 unused bytes, the cached cardinality as
/// a little-endian 64-bit integer whose top bit set means "stale"), then 16384 registers of 6 bits, either dense
/// (12288 bytes, registers packed from the least significant bit) or sparse (run-length opcodes ZERO 00xxxxxx,
/// XZERO 01xxxxxx yyyyyyyy, VAL 1vvvvvxx). A sparse value is promoted to dense when a register exceeds 32 or the
/// string would grow beyond <see cref="SparseMaxBytes"/> (Redis's <c>hll-sparse-max-bytes</c>, 3000).
/// Elements are hashed with MurmurHash64A, seed 0xadc83b19; the estimator is Ertl's improved one (hllTau/hllSigma).
/// <para>Strings are never changed in place by the store: the functions here work on a <see cref="Buffer"/>, a
/// private growable copy, which the caller turns into a new array.</para>
/// </remarks>
internal static class HyperLogLog
{
    public const int HeaderSize = 16;
    public const int P = 14;
    public const int Q = 64 - P;
    public const int Registers = 1 << P;
    public const int PMask = Registers - 1;
    public const int Bits = 6;
    public const int RegisterMax = (1 << Bits) - 1;
    public const int DenseSize = HeaderSize + ((Registers * Bits) + 7) / 8;
    public const byte Dense = 0;
    public const byte Sparse = 1;
    public const int SparseMaxBytes = 3000; // Redis's hll-sparse-max-bytes default
    private const int SparseValMaxValue = 32;
    private const int SparseValMaxLen = 4;
    private const int SparseZeroMaxLen = 64;
    private const int SparseXZeroMaxLen = 16384;
    private const double AlphaInf = 0.721347520444481703680; // 0.5/ln(2)

    /// <summary>A growable byte buffer holding one HLL string while it is changed.</summary>
    public sealed class Buffer
    {
        public Buffer(ReadOnlySpan<byte> initial, int extra = 0)
        {
            Data = new byte[initial.Length + Math.Max(extra, 8)];
            initial.CopyTo(Data);
            Length = initial.Length;
        }

        public byte[] Data { get; private set; }

        public int Length { get; set; }

        public byte Encoding => Data[4];

        public void EnsureCapacity(int length)
        {
            if (Data.Length >= length) return;
            var bigger = new byte[Math.Max(length, Data.Length * 2)];
            Data.AsSpan(0, Length).CopyTo(bigger);
            Data = bigger;
        }

        public byte[] ToArray() => Data.AsSpan(0, Length).ToArray();

        public void Replace(byte[] data)
        {
            Data = data;
            Length = data.Length;
        }
    }

    /// <summary>Redis's <c>isHLLObjectOrReply</c> shape test: header, magic, known encoding, exact dense size.</summary>
    public static bool IsValid(ReadOnlySpan<byte> value)
    {
        if (value.Length < HeaderSize) return false;
        if (value[0] != (byte)'H' || value[1] != (byte)'Y' || value[2] != (byte)'L' || value[3] != (byte)'L') return false;
        if (value[4] > Sparse) return false;
        if (value[4] == Dense && value.Length != DenseSize) return false;
        return true;
    }

    /// <summary>Redis's <c>createHLLObject</c>: an empty sparse HLL (one XZERO of 16384 registers), cached count 0.</summary>
    public static byte[] CreateEmpty()
    {
        var s = new byte[HeaderSize + 2];
        "HYLL"u8.CopyTo(s);
        s[4] = Sparse;
        SetXZero(s.AsSpan(HeaderSize), Registers);
        return s;
    }

    public static bool IsCacheValid(ReadOnlySpan<byte> value) => (value[15] & 0x80) == 0;

    public static void InvalidateCache(Span<byte> value) => value[15] |= 0x80;

    public static ulong GetCachedCount(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadUInt64LittleEndian(value[8..16]);

    public static void SetCachedCount(Span<byte> value, ulong count) => BinaryPrimitives.WriteUInt64LittleEndian(value[8..16], count);

    // ------------------------------------------------------------ hashing

    /// <summary>MurmurHash2, 64-bit version, as Redis uses it (little-endian reads).</summary>
    public static ulong MurmurHash64A(ReadOnlySpan<byte> key, uint seed)
    {
        const ulong m = 0xc6a4a7935bd1e995;
        const int r = 47;
        ulong h = seed ^ unchecked((ulong)key.Length * m);
        int blocks = key.Length - (key.Length & 7);
        for (int i = 0; i < blocks; i += 8)
        {
            ulong k = BinaryPrimitives.ReadUInt64LittleEndian(key.Slice(i, 8));
            unchecked
            {
                k *= m;
                k ^= k >> r;
                k *= m;
                h ^= k;
                h *= m;
            }
        }
        ReadOnlySpan<byte> tail = key[blocks..];
        switch (key.Length & 7)
        {
            case 7: h ^= (ulong)tail[6] << 48; goto case 6;
            case 6: h ^= (ulong)tail[5] << 40; goto case 5;
            case 5: h ^= (ulong)tail[4] << 32; goto case 4;
            case 4: h ^= (ulong)tail[3] << 24; goto case 3;
            case 3: h ^= (ulong)tail[2] << 16; goto case 2;
            case 2: h ^= (ulong)tail[1] << 8; goto case 1;
            case 1:
                h ^= tail[0];
                h = unchecked(h * m);
                break;
        }
        unchecked
        {
            h ^= h >> r;
            h *= m;
            h ^= h >> r;
        }
        return h;
    }

    /// <summary>Redis's <c>hllPatLen</c>: the register an element maps to and the length of its 000..1 pattern.</summary>
    public static int PatternLength(ReadOnlySpan<byte> element, out int index)
    {
        ulong hash = MurmurHash64A(element, 0xadc83b19);
        index = (int)(hash & PMask);
        hash >>= P;
        hash |= 1UL << Q; // the loop ends, and count <= Q+1
        int count = 1;
        ulong bit = 1;
        while ((hash & bit) == 0)
        {
            count++;
            bit <<= 1;
        }
        return count;
    }

    // ------------------------------------------------------------ dense

    public static int GetDenseRegister(ReadOnlySpan<byte> registers, int index)
    {
        int b = index * Bits / 8;
        int fb = (index * Bits) & 7;
        int b0 = registers[b];
        int b1 = b + 1 < registers.Length ? registers[b + 1] : 0; // Redis reads the sds terminator here
        return ((b0 >> fb) | (b1 << (8 - fb))) & RegisterMax;
    }

    public static void SetDenseRegister(Span<byte> registers, int index, int value)
    {
        int b = index * Bits / 8;
        int fb = (index * Bits) & 7;
        int fb8 = 8 - fb;
        registers[b] = (byte)((registers[b] & ~(RegisterMax << fb)) | (value << fb));
        if (b + 1 < registers.Length)
            registers[b + 1] = (byte)((registers[b + 1] & ~(RegisterMax >> fb8)) | (value >> fb8));
    }

    /// <summary>Redis's <c>hllDenseSet</c>: raises register <paramref name="index"/> to <paramref name="count"/>; 1 when it changed.</summary>
    public static int DenseSet(Span<byte> registers, int index, int count)
    {
        if (count <= GetDenseRegister(registers, index)) return 0;
        SetDenseRegister(registers, index, count);
        return 1;
    }

    // ------------------------------------------------------------ sparse

    private static bool IsZero(byte op) => (op & 0xc0) == 0;

    private static bool IsXZero(byte op) => (op & 0xc0) == 0x40;

    private static bool IsVal(byte op) => (op & 0x80) != 0;

    private static int ZeroLen(byte op) => (op & 0x3f) + 1;

    private static int XZeroLen(byte op, byte next) => (((op & 0x3f) << 8) | next) + 1;

    private static int ValValue(byte op) => ((op >> 2) & 0x1f) + 1;

    private static int ValLen(byte op) => (op & 0x3) + 1;

    private static byte Val(int value, int length) => (byte)((((value - 1) << 2) | (length - 1)) | 0x80);

    private static void SetXZero(Span<byte> p, int length)
    {
        int l = length - 1;
        p[0] = (byte)((l >> 8) | 0x40);
        p[1] = (byte)(l & 0xff);
    }

    /// <summary>Redis's <c>hllSparseToDense</c>: converts <paramref name="hll"/> to dense (header and cached count
    /// kept); false when the sparse data is corrupt (then <paramref name="hll"/> is unchanged).</summary>
    public static bool SparseToDense(Buffer hll)
    {
        if (hll.Encoding == Dense) return true;
        var dense = new byte[DenseSize];
        hll.Data.AsSpan(0, HeaderSize).CopyTo(dense);
        dense[4] = Dense;
        Span<byte> registers = dense.AsSpan(HeaderSize);
        ReadOnlySpan<byte> p = hll.Data.AsSpan(HeaderSize, hll.Length - HeaderSize);
        int idx = 0, i = 0;
        while (i < p.Length)
        {
            byte op = p[i];
            if (IsZero(op))
            {
                idx += ZeroLen(op);
                i++;
            }
            else if (IsXZero(op))
            {
                idx += XZeroLen(op, i + 1 < p.Length ? p[i + 1] : (byte)0);
                i += 2;
            }
            else
            {
                int runLength = ValLen(op), value = ValValue(op);
                if (runLength + idx > Registers) break; // overflow
                while (runLength-- > 0) SetDenseRegister(registers, idx++, value);
                i++;
            }
        }
        if (idx != Registers) return false;
        hll.Replace(dense);
        return true;
    }

    /// <summary>Redis's <c>hllSparseSet</c>: raises register <paramref name="index"/> of a sparse HLL to
    /// <paramref name="count"/>, promoting to dense when needed; 1 when it changed, 0 when not, -1 when corrupt.</summary>
    public static int SparseSet(Buffer hll, int index, int count)
    {
        if (count > SparseValMaxValue) return Promote(hll, index, count);
        hll.EnsureCapacity(hll.Length + 4); // up to 3 more bytes, and the terminator
        byte[] data = hll.Data;
        int sparse = HeaderSize;
        int end = hll.Length;
        int p = sparse, first = 0, prev = -1, span = 0;
        while (p < end)
        {
            int opLength = 1;
            byte op = data[p];
            if (IsZero(op)) span = ZeroLen(op);
            else if (IsVal(op)) span = ValLen(op);
            else
            {
                span = XZeroLen(op, data[p + 1]);
                opLength = 2;
            }
            if (index <= first + span - 1) break;
            prev = p;
            p += opLength;
            first += span;
        }
        if (span == 0 || p >= end) return -1; // invalid format

        int next = IsXZero(data[p]) ? p + 2 : p + 1;
        if (next >= end) next = -1;
        bool isZero = false, isXZero = false, isVal = false;
        int runLength;
        byte current = data[p];
        if (IsZero(current))
        {
            isZero = true;
            runLength = ZeroLen(current);
        }
        else if (IsXZero(current))
        {
            isXZero = true;
            runLength = XZeroLen(current, data[p + 1]);
        }
        else
        {
            isVal = true;
            runLength = ValLen(current);
        }

        bool updated = false;
        if (isVal)
        {
            int oldCount = ValValue(current);
            if (oldCount >= count) return 0; // case A
            if (runLength == 1)
            {
                data[p] = Val(count, 1); // case B
                updated = true;
            }
        }
        if (!updated && isZero && runLength == 1)
        {
            data[p] = Val(count, 1); // case C
            updated = true;
        }
        if (!updated)
        {
            // Case D: split the opcode into up to three (XZERO-VAL-XZERO at worst, 5 bytes).
            Span<byte> seq = stackalloc byte[5];
            int n = 0;
            int last = first + span - 1;
            if (isZero || isXZero)
            {
                if (index != first)
                {
                    int length = index - first;
                    if (length > SparseZeroMaxLen)
                    {
                        SetXZero(seq[n..], length);
                        n += 2;
                    }
                    else
                    {
                        seq[n++] = (byte)(length - 1);
                    }
                }
                seq[n++] = Val(count, 1);
                if (index != last)
                {
                    int length = last - index;
                    if (length > SparseZeroMaxLen)
                    {
                        SetXZero(seq[n..], length);
                        n += 2;
                    }
                    else
                    {
                        seq[n++] = (byte)(length - 1);
                    }
                }
            }
            else
            {
                int currentValue = ValValue(current);
                if (index != first) seq[n++] = Val(currentValue, index - first);
                seq[n++] = Val(count, 1);
                if (index != last) seq[n++] = Val(currentValue, last - index);
            }

            int oldLength = isXZero ? 2 : 1;
            int delta = n - oldLength;
            if (delta > 0 && hll.Length + delta > SparseMaxBytes) return Promote(hll, index, count);
            if (delta != 0 && next >= 0) data.AsSpan(next, end - next).CopyTo(data.AsSpan(next + delta));
            hll.Length += delta;
            data[hll.Length] = 0; // like sdsIncrLen: the byte after the string is a zero terminator
            seq[..n].CopyTo(data.AsSpan(p));
            end += delta;
        }

        // Step 4: merge adjacent VAL opcodes with the same value, scanning up to 5 opcodes from prev.
        p = prev >= 0 ? prev : sparse;
        int scan = 5;
        while (p < end && scan-- > 0)
        {
            byte op = data[p];
            if (IsXZero(op))
            {
                p += 2;
                continue;
            }
            if (IsZero(op))
            {
                p++;
                continue;
            }
            if (p + 1 < end && IsVal(data[p + 1]))
            {
                int v1 = ValValue(op), v2 = ValValue(data[p + 1]);
                if (v1 == v2)
                {
                    int length = ValLen(op) + ValLen(data[p + 1]);
                    if (length <= SparseValMaxLen)
                    {
                        data[p + 1] = Val(v1, length);
                        data.AsSpan(p + 1, end - (p + 1)).CopyTo(data.AsSpan(p));
                        hll.Length--;
                        end--;
                        data[end] = 0; // the terminator sdsIncrLen writes
                        continue; // try to merge the merged opcode with the next one
                    }
                }
            }
            p++;
        }
        InvalidateCache(data);
        return 1;
    }

    private static int Promote(Buffer hll, int index, int count)
    {
        if (!SparseToDense(hll)) return -1;
        int changed = DenseSet(hll.Data.AsSpan(HeaderSize), index, count);
        System.Diagnostics.Debug.Assert(changed == 1, "promotion happens only when a register must change");
        return changed;
    }

    /// <summary>Redis's <c>hllAdd</c>: 1 when a register changed, 0 when not, -1 when the HLL is corrupt.</summary>
    public static int Add(Buffer hll, ReadOnlySpan<byte> element)
    {
        int count = PatternLength(element, out int index);
        return hll.Encoding switch
        {
            Dense => DenseSet(hll.Data.AsSpan(HeaderSize, DenseSize - HeaderSize), index, count),
            Sparse => SparseSet(hll, index, count),
            _ => -1,
        };
    }

    /// <summary>Redis's <c>hllMerge</c>: raises <paramref name="max"/>[i] to register i of <paramref name="hll"/>
    /// (a valid-shaped HLL string); false when sparse data is corrupt.</summary>
    public static bool Merge(Span<byte> max, ReadOnlySpan<byte> hll)
    {
        if (hll[4] == Dense)
        {
            ReadOnlySpan<byte> registers = hll[HeaderSize..];
            for (int i = 0; i < Registers; i++)
            {
                int value = GetDenseRegister(registers, i);
                if (value > max[i]) max[i] = (byte)value;
            }
            return true;
        }
        ReadOnlySpan<byte> p = hll[HeaderSize..];
        int idx = 0, j = 0;
        while (j < p.Length)
        {
            byte op = p[j];
            if (IsZero(op))
            {
                idx += ZeroLen(op);
                j++;
            }
            else if (IsXZero(op))
            {
                idx += XZeroLen(op, j + 1 < p.Length ? p[j + 1] : (byte)0);
                j += 2;
            }
            else
            {
                int runLength = ValLen(op), value = ValValue(op);
                if (runLength + idx > Registers) break; // overflow
                while (runLength-- > 0)
                {
                    if (value > max[idx]) max[idx] = (byte)value;
                    idx++;
                }
                j++;
            }
        }
        return idx == Registers;
    }

    /// <summary>PFDEBUG DECODE's text for a sparse HLL: <c>z:len</c>, <c>Z:len</c>, <c>v:value,len</c> separated by spaces.</summary>
    public static string DecodeSparse(ReadOnlySpan<byte> hll)
    {
        var text = new System.Text.StringBuilder();
        ReadOnlySpan<byte> p = hll[HeaderSize..];
        int i = 0;
        while (i < p.Length)
        {
            byte op = p[i];
            if (text.Length > 0) text.Append(' ');
            if (IsZero(op))
            {
                text.Append(CultureInfo.InvariantCulture, $"z:{ZeroLen(op)}");
                i++;
            }
            else if (IsXZero(op))
            {
                text.Append(CultureInfo.InvariantCulture, $"Z:{XZeroLen(op, i + 1 < p.Length ? p[i + 1] : (byte)0)}");
                i += 2;
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $"v:{ValValue(op)},{ValLen(op)}");
                i++;
            }
        }
        return text.ToString();
    }

    // ------------------------------------------------------------ count

    /// <summary>Redis's <c>hllCount</c> for an HLL string; false when sparse data is corrupt.</summary>
    public static bool TryCount(ReadOnlySpan<byte> hll, out ulong count)
    {
        Span<int> histogram = stackalloc int[64];
        histogram.Clear();
        count = 0;
        if (hll[4] == Dense)
        {
            ReadOnlySpan<byte> registers = hll[HeaderSize..];
            for (int i = 0; i < Registers; i++) histogram[GetDenseRegister(registers, i)]++;
        }
        else
        {
            ReadOnlySpan<byte> p = hll[HeaderSize..];
            int idx = 0, j = 0;
            while (j < p.Length)
            {
                byte op = p[j];
                if (IsZero(op))
                {
                    int runLength = ZeroLen(op);
                    idx += runLength;
                    histogram[0] += runLength;
                    j++;
                }
                else if (IsXZero(op))
                {
                    int runLength = XZeroLen(op, j + 1 < p.Length ? p[j + 1] : (byte)0);
                    idx += runLength;
                    histogram[0] += runLength;
                    j += 2;
                }
                else
                {
                    int runLength = ValLen(op);
                    idx += runLength;
                    histogram[ValValue(op)] += runLength;
                    j++;
                }
            }
            if (idx != Registers) return false;
        }
        count = Estimate(histogram);
        return true;
    }

    /// <summary>Redis's <c>hllCount</c> for raw registers (one byte each, PFCOUNT of several keys).</summary>
    public static ulong CountRaw(ReadOnlySpan<byte> registers)
    {
        Span<int> histogram = stackalloc int[64];
        histogram.Clear();
        foreach (byte r in registers) histogram[r & 63]++;
        return Estimate(histogram);
    }

    /// <summary>Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog sketches",
    /// arXiv:1702.01284), exactly as Redis computes it.</summary>
    private static ulong Estimate(ReadOnlySpan<int> histogram)
    {
        double m = Registers;
        double z = m * Tau((m - histogram[Q + 1]) / m);
        for (int j = Q; j >= 1; --j)
        {
            z += histogram[j];
            z *= 0.5;
        }
        z += m * Sigma(histogram[0] / m);
        double e = Math.Round(AlphaInf * m * m / z, MidpointRounding.AwayFromZero); // llroundl
        return (ulong)(long)e;
    }

    private static double Sigma(double x)
    {
        if (x == 1.0) return double.PositiveInfinity;
        double zPrime;
        double y = 1;
        double z = x;
        do
        {
            x *= x;
            zPrime = z;
            z += x * y;
            y += y;
        }
        while (zPrime != z);
        return z;
    }

    private static double Tau(double x)
    {
        if (x == 0.0 || x == 1.0) return 0.0;
        double zPrime;
        double y = 1.0;
        double z = 1 - x;
        do
        {
            x = Math.Sqrt(x);
            zPrime = z;
            y *= 0.5;
            z -= Math.Pow(1 - x, 2) * y;
        }
        while (zPrime != z);
        return z / 3;
    }

    // ------------------------------------------------------------ self test

    /// <summary>PFSELFTEST: checks this implementation as Redis's does its own. (1) Dense register packing: random
    /// 6-bit values written to every register read back unchanged (twice, so that every register also overwrites a
    /// non-zero neighbour). (2) 10,000,000 distinct elements added to a dense and to a sparse HLL at once: at each
    /// power of ten both estimate the same cardinality, the sparse one is still sparse while it is small (below half of
    /// hll-sparse-max-bytes), the estimate is within 6 standard errors (1.04/sqrt(16384)) of the truth, and by the end
    /// the sparse one was promoted to dense.</summary>
    /// <param name="random">Source of the register values and of the elements' seed.</param>
    /// <returns>null when every check passes, otherwise what failed (the reply is <c>-TESTFAILED</c> and this text).</returns>
    public static string? SelfTest(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var registers = new byte[DenseSize - HeaderSize];
        var expected = new int[Registers];
        for (int round = 0; round < 2; round++)
        {
            for (int i = 0; i < Registers; i++)
            {
                expected[i] = random.Next(RegisterMax + 1);
                SetDenseRegister(registers, i, expected[i]);
            }
            for (int i = 0; i < Registers; i++)
            {
                if (GetDenseRegister(registers, i) != expected[i]) return "Register error at " + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        var dense = new Buffer(CreateEmpty());
        if (!SparseToDense(dense) || dense.Encoding != Dense) return "sparse to dense conversion failed";
        var sparse = new Buffer(CreateEmpty(), extra: 64);
        double relativeError = 1.04 / Math.Sqrt(Registers);
        ulong seed = (ulong)random.NextInt64();
        Span<byte> element = stackalloc byte[8];
        long checkpoint = 1;
        for (long j = 1; j <= 10_000_000; j++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(element, (ulong)j ^ seed);
            if (Add(dense, element) < 0) return "dense add failed";
            if (Add(sparse, element) < 0) return "sparse representation corrupt";
            if (j != checkpoint) continue;
            if (j < SparseMaxBytes / 2 && sparse.Encoding != Sparse) return "sparse encoding not used";
            if (!TryCount(dense.Data.AsSpan(0, dense.Length), out ulong denseCount) || !TryCount(sparse.Data.AsSpan(0, sparse.Length), out ulong sparseCount))
            {
                return "count failed";
            }
            if (denseCount != sparseCount) return "dense/sparse disagree";
            long error = Math.Abs(checkpoint - (long)denseCount);
            long maxError = (long)Math.Ceiling(relativeError * 6 * checkpoint);
            if (error > maxError)
            {
                return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Too big error. card:{checkpoint} abserr:{error}");
            }
            checkpoint *= 10;
        }
        return sparse.Encoding == Dense ? null : "sparse encoding never promoted to dense";
    }
}
