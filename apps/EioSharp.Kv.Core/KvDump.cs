using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EioSharp.Kv;

/// <summary>The DUMP/RESTORE payload format of EioSharp.Kv: redis-server 7.0's.</summary>
/// <remarks>
/// <para>A payload is <c>type value version crc</c>, as redis's createDumpPayload:</para>
/// <list type="bullet">
/// <item><c>type</c> and <c>value</c>: the RDB object as <see cref="RdbWriter.WriteObject"/> writes it (the encodings of
/// an RDB file of this server: strings with redis's integer encodings and, with <c>rdbcompression</c>, LZF, so DUMP of a
/// string answers the same bytes as redis-server; lists, sets and hashes in the plain encodings, sorted sets as
/// ZSET_2, streams as STREAM_LISTPACKS_2 with their consumer groups and PELs), all of which redis-server 7.0 restores.</item>
/// <item><c>version</c>: two bytes, little endian, the RDB version, <see cref="RdbVersion"/> (10).</item>
/// <item><c>crc</c>: eight bytes, little endian, the CRC-64 of everything before it (CRC-64/Jones, reflected,
/// <c>0xad93d23594c935a9</c>, as redis's crc64).</item>
/// </list>
/// <para><b>RESTORE</b> accepts a payload of RDB version up to 10 whose type redis-server 7.0 restores (0-5, 9-19: every
/// encoding redis 2.x-7.0 writes: ziplists, zipmaps, intsets, listpacks, quicklists), read by <see cref="RdbLoader"/>
/// into a private store; it also accepts the payloads of EioSharp.Kv before session 11 (version <see cref="LegacyVersion"/>
/// "EI": the <see cref="KvType"/> byte and, for a non-string, the AOF commands that rebuild the value for the empty key),
/// which may be in users' scripts and AOF files.</para>
/// <para><b>Errors</b>: <see cref="TryRestore"/> never throws on any input: a truncated or corrupt value, an unknown or
/// module type, an empty collection, duplicated set members or hash/zset fields, a command the store refuses, give
/// false (RESTORE's <c>-ERR Bad data format</c>); every length is checked against the bytes present before anything is
/// allocated for it.</para>
/// </remarks>
internal static class KvDump
{
    /// <summary>The payload version of the format EioSharp.Kv wrote for non-strings before session 11 ("EI"), still restored.</summary>
    public const ushort LegacyVersion = 0x4549; // "EI"

    private const int FooterBytes = 2 + 8;
    private const int MinBytesPerArgument = 6; // "$0\r\n\r\n": bounds the argument count the parser may accept

    private static readonly ulong[] s_crcTable = BuildCrcTable();

    /// <summary>The RDB version of payloads (redis-server 7.0's RDB_VERSION; RESTORE accepts up to it).</summary>
    public const ushort RdbVersion = Rdb.Version;

    /// <summary>Serializes a value (a string <c>byte[]</c> or a <see cref="KvObject"/>) as redis's DUMP does.</summary>
    /// <param name="value">The value.</param>
    /// <param name="compress">Redis's <c>rdbcompression</c>: LZF for strings over 20 bytes (values of collections included).</param>
    public static byte[] Serialize(object value, bool compress = true)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new RdbWriter(span => output.Write(span), compress, checksum: false);
        writer.WriteObject(value);
        writer.Flush();
        Span<byte> version = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(version, RdbVersion);
        output.Write(version);
        Span<byte> crc = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(crc, Crc64(output.WrittenSpan));
        output.Write(crc);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>verifyDumpPayload: at least the footer, an RDB version up to 10 (or the legacy "EI"), a matching checksum.</summary>
    public static bool Verify(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < FooterBytes) return false;
        ReadOnlySpan<byte> footer = payload[^FooterBytes..];
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(footer);
        if (version != LegacyVersion && version > RdbVersion) return false;
        return BinaryPrimitives.ReadUInt64LittleEndian(footer[2..]) == Crc64(payload[..^8]);
    }

    /// <summary>Rebuilds the value of a verified payload (<see cref="Verify"/>); false when the value is not valid.</summary>
    /// <param name="payload">The payload.</param>
    /// <param name="limits">Limits for the commands of a legacy body (also bounds a string).</param>
    /// <param name="encodings">Compact-encoding thresholds of the store the value goes to.</param>
    /// <param name="value">The value: a <c>byte[]</c> or a <see cref="KvObject"/>.</param>
    /// <param name="nowUnixMs">The current time, for the commands that build a stream's PEL.</param>
    public static bool TryRestore(ReadOnlySpan<byte> payload, RespLimits limits, KvEncodingLimits encodings, out object? value, long nowUnixMs = 0)
    {
        value = null;
        if (payload.Length < 1 + FooterBytes) return false;
        byte type = payload[0];
        if (BinaryPrimitives.ReadUInt16LittleEndian(payload[^FooterBytes..]) != LegacyVersion)
        {
            if (type == Rdb.TypeString)
            {
                byte[]? rdbString = ReadRdbString(payload[1..], limits.MaxBulkLength);
                value = rdbString;
                return rdbString is not null;
            }
            var store = new KvStore(limits, new Random(0), databases: 1, encodings);
            return RdbLoader.TryLoadObject(payload, store, nowUnixMs, out value) && value is KvObject;
        }
        ReadOnlySpan<byte> body = payload[1..^FooterBytes];
        if (type == (byte)KvType.String)
        {
            if (body.Length > limits.MaxBulkLength) return false;
            value = body.ToArray();
            return true;
        }
        if (type > (byte)KvType.Stream || body.IsEmpty) return false;
        var parser = new RespParser(limits with
        {
            MaxMultibulkCount = (int)Math.Min(limits.MaxMultibulkCount, body.Length / MinBytesPerArgument + 1),
            MaxBulkLength = Math.Min(limits.MaxBulkLength, body.Length),
        }) { MultibulkOnly = true };
        var scratch = new KvStore(limits, new Random(0), databases: 1, encodings);
        var reply = new ArrayBufferWriter<byte>();
        var session = new KvSession();
        int offset = 0;
        try
        {
            while (offset < body.Length)
            {
                if (!parser.TryParseCommand(body[offset..], out int used, out KvCommand? command)) return false; // truncated
                offset += used;
                if (!IsCreationCommand((KvType)type, command)) return false;
                reply.ResetWrittenCount();
                scratch.Execute(session, command, 0, new RespWriter(reply), aof: null);
                if (reply.WrittenCount == 0 || reply.WrittenSpan[0] == (byte)'-') return false;
            }
        }
        catch (RespProtocolException)
        {
            return false;
        }
        KvDatabase db = scratch.Database(0);
        if (db.Count != 1 || !db.Lookup.TryGetValue([], out KvEntry? e) || e.Value is not KvObject o || o.Type != (KvType)type) return false;
        value = o;
        return true;
    }

    /// <summary>rdbGenericLoadStringObject as Redis's RESTORE runs it: over the payload after its type byte, footer
    /// included (Redis reads from a buffer of the whole payload and does not check that the value ends where the footer
    /// starts); a length-prefixed, integer-encoded or LZF string; null when the bytes run out or the LZF data does not
    /// decompress to its stated length (or it is longer than <paramref name="maxLength"/>).</summary>
    public static byte[]? ReadRdbString(ReadOnlySpan<byte> body, long maxLength)
    {
        int p = 0;
        if (!TryReadLength(body, ref p, out ulong len, out bool encoded)) return null;
        byte[]? result;
        if (encoded)
        {
            long v;
            switch (len)
            {
                case 0 when body.Length - p >= 1:
                    v = (sbyte)body[p];
                    p += 1;
                    break;
                case 1 when body.Length - p >= 2:
                    v = BinaryPrimitives.ReadInt16LittleEndian(body[p..]);
                    p += 2;
                    break;
                case 2 when body.Length - p >= 4:
                    v = BinaryPrimitives.ReadInt32LittleEndian(body[p..]);
                    p += 4;
                    break;
                case 3:
                    if (!TryReadLength(body, ref p, out ulong compressed, out bool e1) || e1
                        || !TryReadLength(body, ref p, out ulong plain, out bool e2) || e2) return null;
                    if (compressed > (ulong)(body.Length - p) || plain > (ulong)maxLength || plain > (ulong)Array.MaxLength) return null;
                    if (plain == 0) return []; // lzf_decompress returns 0, the expected length
                    result = RdbBlobs.LzfDecompress(body.Slice(p, (int)compressed), (int)plain);
                    return result;
                default:
                    return null;
            }
            return System.Text.Encoding.ASCII.GetBytes(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (len > (ulong)(body.Length - p) || len > (ulong)maxLength) return null;
        return body.Slice(p, (int)len).ToArray();
    }

    // rdbLoadLen: 6, 14, 32 or 64 bits; 0b11xxxxxx is an encoded value (its type in the low bits).
    private static bool TryReadLength(ReadOnlySpan<byte> b, ref int p, out ulong length, out bool encoded)
    {
        length = 0;
        encoded = false;
        if (p >= b.Length) return false;
        byte first = b[p];
        switch (first >> 6)
        {
            case 0:
                length = (ulong)(first & 0x3F);
                p += 1;
                return true;
            case 1:
                if (b.Length - p < 2) return false;
                length = (ulong)(((first & 0x3F) << 8) | b[p + 1]);
                p += 2;
                return true;
            case 3:
                encoded = true;
                length = (ulong)(first & 0x3F);
                p += 1;
                return true;
        }
        if (first == 0x80 && b.Length - p >= 5)
        {
            length = BinaryPrimitives.ReadUInt32BigEndian(b[(p + 1)..]);
            p += 5;
            return true;
        }
        if (first == 0x81 && b.Length - p >= 9)
        {
            length = BinaryPrimitives.ReadUInt64BigEndian(b[(p + 1)..]);
            p += 9;
            return true;
        }
        return false;
    }

    // Only commands that add elements to the key of the declared type may appear in a payload.
    private static bool IsCreationCommand(KvType type, KvCommand command)
    {
        if (command.Count < 3 || (command[1].Length != 0 && type != KvType.Stream)) return false;
        ReadOnlySpan<byte> name = command[0];
        static bool Is(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => System.Text.Ascii.EqualsIgnoreCase(a, b);
        return type switch
        {
            KvType.List => Is(name, "RPUSH"u8),
            KvType.Set => Is(name, "SADD"u8),
            KvType.ZSet => Is(name, "ZADD"u8),
            KvType.Hash => Is(name, "HSET"u8) || Is(name, "HMSET"u8),
            KvType.Stream => Is(name, "XADD"u8) || Is(name, "XSETID"u8) || Is(name, "XGROUP"u8) || Is(name, "XCLAIM"u8),
            _ => false,
        };
    }

    /// <summary>CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9, initial value 0, no final xor), as Redis's crc64.</summary>
    /// <remarks>On x86 with PCLMULQDQ, a span of at least <see cref="FoldMinBytes"/> bytes is folded 64 bytes a step by
    /// carry-less multiplication (<see cref="Crc64Folded"/>, ~8x the table's speed: the AOF rewrite's RDB preamble checksums
    /// every byte of every value), and where the CPU has VPCLMULQDQ with AVX-512 a span of at least
    /// <see cref="WideFoldMinBytes"/> 256 bytes a step (<see cref="Crc64FoldedWide"/>, ~4x the 128-bit fold's speed, §223);
    /// the rest, and every span elsewhere, goes through <see cref="Crc64Sliced"/>. All give the
    /// same value for every input (tested against each other and <see cref="Crc64Bytewise"/>). The AOF rewrite's RDB
    /// preamble, BGSAVE/SAVE, RDB and AOF loading and DUMP/RESTORE checksum every byte they write or read with it.</remarks>
    public static ulong Crc64(ReadOnlySpan<byte> data, ulong crc = 0)
    {
        if (data.Length >= WideFoldMinBytes && WideFold)
        {
            int folded = data.Length & ~15;
            crc = Crc64FoldedWide(data[..folded], crc);
            data = data[folded..];
        }
        else if (data.Length >= FoldMinBytes && Pclmulqdq.IsSupported)
        {
            int folded = data.Length & ~15;
            crc = Crc64Folded(data[..folded], crc);
            data = data[folded..];
        }

        return Crc64Sliced(data, crc);
    }

    /// <summary>Spans shorter than this are left to the table (the folding's set-up and its 16-byte tail through the table
    /// cost about as much as 64 bytes of table lookups).</summary>
    internal const int FoldMinBytes = 128;

    /// <summary>The same CRC as <see cref="Crc64"/> by slicing-by-8 tables (redis's crcspeed does the same): eight table
    /// lookups per 8-byte word instead of one per byte, about five times faster than <see cref="Crc64Bytewise"/>.</summary>
    internal static ulong Crc64Sliced(ReadOnlySpan<byte> data, ulong crc = 0)
    {
        ref ulong t = ref MemoryMarshal.GetArrayDataReference(s_crcTable); // 8 tables of 256, s_crcTable[k * 256 + b]
        while (data.Length >= 8)
        {
            crc ^= BinaryPrimitives.ReadUInt64LittleEndian(data);
            crc = Unsafe.Add(ref t, 7 * 256 + (int)(crc & 0xFF)) ^
                  Unsafe.Add(ref t, 6 * 256 + (int)((crc >> 8) & 0xFF)) ^
                  Unsafe.Add(ref t, 5 * 256 + (int)((crc >> 16) & 0xFF)) ^
                  Unsafe.Add(ref t, 4 * 256 + (int)((crc >> 24) & 0xFF)) ^
                  Unsafe.Add(ref t, 3 * 256 + (int)((crc >> 32) & 0xFF)) ^
                  Unsafe.Add(ref t, 2 * 256 + (int)((crc >> 40) & 0xFF)) ^
                  Unsafe.Add(ref t, 1 * 256 + (int)((crc >> 48) & 0xFF)) ^
                  Unsafe.Add(ref t, (int)(crc >> 56));
            data = data[8..];
        }

        foreach (byte b in data) crc = Unsafe.Add(ref t, (int)((crc ^ b) & 0xFF)) ^ (crc >> 8);
        return crc;
    }

    // The CRC as polynomial arithmetic (init 0, no final xor: crc(M) = M(x) * x^64 mod P). A 16-byte block loaded little
    // endian is a 128-bit value whose bit k is the coefficient of x^(127-k) (the first byte's bit 0 the highest), its low
    // lane H (bytes 0-7) and high lane L (bytes 8-15): S = H*x^64 + L. Moving S d bits further (S * x^d mod P, kept
    // within 128 bits) is H * (x^(d+64) mod P) + L * (x^d mod P); a carry-less product of two such reflected 64-bit
    // values is their product times x (bit i of each is x^(63-i), bit i+j of the product x^(126-i-j), read as x^(127-k)),
    // so the constants are x^(d+63) and x^(d-1) mod P. Four accumulators take every fourth block (d = 512); at the end
    // they fold into one (d = 384, 256, 128), further blocks fold in by d = 128, and the CRC of the last 128-bit value,
    // which is congruent to the whole prefix mod P at the same position, is the table's CRC of its 16 bytes. An initial
    // crc is xor-ed into the first 8 bytes (the table's first step does exactly that).
    private static readonly Vector128<ulong> s_fold512 = FoldConstants(512);
    private static readonly Vector128<ulong> s_fold384 = FoldConstants(384);
    private static readonly Vector128<ulong> s_fold256 = FoldConstants(256);
    private static readonly Vector128<ulong> s_fold128 = FoldConstants(128);

    /// <summary>The CRC of <paramref name="data"/> (a multiple of 16 bytes, at least 64) by PCLMULQDQ folding (callers check
    /// <see cref="Pclmulqdq.IsSupported"/>).</summary>
    internal static ulong Crc64Folded(ReadOnlySpan<byte> data, ulong crc)
    {
        System.Diagnostics.Debug.Assert(data.Length >= 64 && data.Length % 16 == 0);
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length;
        Vector128<ulong> s0 = Vector128.LoadUnsafe(ref p).AsUInt64() ^ Vector128.CreateScalar(crc);
        Vector128<ulong> s1 = Vector128.LoadUnsafe(ref p, 16).AsUInt64();
        Vector128<ulong> s2 = Vector128.LoadUnsafe(ref p, 32).AsUInt64();
        Vector128<ulong> s3 = Vector128.LoadUnsafe(ref p, 48).AsUInt64();
        nuint i = 64;
        Vector128<ulong> k = s_fold512;
        for (; i + 64 <= n; i += 64)
        {
            s0 = Fold(s0, k) ^ Vector128.LoadUnsafe(ref p, i).AsUInt64();
            s1 = Fold(s1, k) ^ Vector128.LoadUnsafe(ref p, i + 16).AsUInt64();
            s2 = Fold(s2, k) ^ Vector128.LoadUnsafe(ref p, i + 32).AsUInt64();
            s3 = Fold(s3, k) ^ Vector128.LoadUnsafe(ref p, i + 48).AsUInt64();
        }

        Vector128<ulong> s = Fold(s0, s_fold384) ^ Fold(s1, s_fold256) ^ Fold(s2, s_fold128) ^ s3;
        for (; i < n; i += 16) s = Fold(s, s_fold128) ^ Vector128.LoadUnsafe(ref p, i).AsUInt64();
        Span<byte> last = stackalloc byte[16];
        s.AsByte().StoreUnsafe(ref MemoryMarshal.GetReference(last));
        return Crc64Sliced(last);
    }

    /// <summary>Whether <see cref="Crc64"/> folds long spans 256 bytes a step with 512-bit carry-less multiplies
    /// (<see cref="Crc64FoldedWide"/>): where the CPU has VPCLMULQDQ with AVX-512 (Zen 4, Ice Lake and later), unless
    /// EIOSHARP_KV_CRC_WIDE=0 (A/B measurements).</summary>
    internal static readonly bool WideFold = Pclmulqdq.V512.IsSupported && Environment.GetEnvironmentVariable("EIOSHARP_KV_CRC_WIDE") != "0";

    /// <summary>Spans at least this long go through <see cref="Crc64FoldedWide"/> when <see cref="WideFold"/>: its four
    /// 64-byte accumulators take the first 256 bytes.</summary>
    internal const int WideFoldMinBytes = 256;

    private static readonly Vector512<ulong> s_wide2048 = Wide(FoldConstants(2048));
    private static readonly Vector512<ulong> s_wide1536 = Wide(FoldConstants(1536));
    private static readonly Vector512<ulong> s_wide1024 = Wide(FoldConstants(1024));
    private static readonly Vector512<ulong> s_wide512 = Wide(FoldConstants(512));

    private static Vector512<ulong> Wide(Vector128<ulong> k) => Vector512.Create(Vector256.Create(k, k), Vector256.Create(k, k));

    /// <summary>The CRC of <paramref name="data"/> (a multiple of 16 bytes, at least <see cref="WideFoldMinBytes"/>) by
    /// VPCLMULQDQ folding on 512-bit vectors (callers check <see cref="Pclmulqdq.V512"/>'s support): <see cref="Crc64Folded"/>'s
    /// algorithm with each of its 16-byte accumulators one lane of a 64-byte vector, four vectors a 256-byte step
    /// (§223: the AOF rewrite's base checksums ~100 MB per rewrite of 100k 1 KB keys).</summary>
    /// <remarks>Vector <c>k</c>'s lane <c>j</c> holds the blocks at 64k + 16j of each 256-byte step: the step moves them
    /// 2048 bits; at the end the four vectors fold into one (by 1536, 1024 and 512 bits), further 64-byte pieces fold in by
    /// 512, and its four lanes are <see cref="Crc64Folded"/>'s four accumulators.</remarks>
    internal static ulong Crc64FoldedWide(ReadOnlySpan<byte> data, ulong crc)
    {
        System.Diagnostics.Debug.Assert(data.Length >= WideFoldMinBytes && data.Length % 16 == 0);
        ref byte p = ref MemoryMarshal.GetReference(data);
        nuint n = (nuint)data.Length;
        Vector512<ulong> a0 = Vector512.LoadUnsafe(ref p).AsUInt64() ^ Vector512.CreateScalar(crc);
        Vector512<ulong> a1 = Vector512.LoadUnsafe(ref p, 64).AsUInt64();
        Vector512<ulong> a2 = Vector512.LoadUnsafe(ref p, 128).AsUInt64();
        Vector512<ulong> a3 = Vector512.LoadUnsafe(ref p, 192).AsUInt64();
        nuint i = 256;
        Vector512<ulong> k = s_wide2048;
        for (; i + 256 <= n; i += 256)
        {
            a0 = FoldWide(a0, k) ^ Vector512.LoadUnsafe(ref p, i).AsUInt64();
            a1 = FoldWide(a1, k) ^ Vector512.LoadUnsafe(ref p, i + 64).AsUInt64();
            a2 = FoldWide(a2, k) ^ Vector512.LoadUnsafe(ref p, i + 128).AsUInt64();
            a3 = FoldWide(a3, k) ^ Vector512.LoadUnsafe(ref p, i + 192).AsUInt64();
        }

        Vector512<ulong> x = FoldWide(a0, s_wide1536) ^ FoldWide(a1, s_wide1024) ^ FoldWide(a2, s_wide512) ^ a3;
        for (; i + 64 <= n; i += 64) x = FoldWide(x, s_wide512) ^ Vector512.LoadUnsafe(ref p, i).AsUInt64();
        Vector128<ulong> s = Fold(x.GetLower().GetLower(), s_fold384) ^ Fold(x.GetLower().GetUpper(), s_fold256) ^
                             Fold(x.GetUpper().GetLower(), s_fold128) ^ x.GetUpper().GetUpper();
        for (; i < n; i += 16) s = Fold(s, s_fold128) ^ Vector128.LoadUnsafe(ref p, i).AsUInt64();
        Span<byte> last = stackalloc byte[16];
        s.AsByte().StoreUnsafe(ref MemoryMarshal.GetReference(last));
        return Crc64Sliced(last);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> FoldWide(Vector512<ulong> s, Vector512<ulong> k) =>
        Pclmulqdq.V512.CarrylessMultiply(s, k, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(s, k, 0x11);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Fold(Vector128<ulong> s, Vector128<ulong> k) =>
        Pclmulqdq.CarrylessMultiply(s, k, 0x00) ^ Pclmulqdq.CarrylessMultiply(s, k, 0x11);

    // (x^(d+63) mod P, x^(d-1) mod P), each bit-reversed (bit i the coefficient of x^(63-i)).
    private static Vector128<ulong> FoldConstants(int d) => Vector128.Create(XPowerModReflected(d + 63), XPowerModReflected(d - 1));

    /// <summary>x^n mod P (P = x^64 + 0xad93d23594c935a9) with its bits reversed.</summary>
    internal static ulong XPowerModReflected(int n)
    {
        const ulong Polynomial = 0xad93d23594c935a9;
        ulong r = 1;
        for (int i = 0; i < n; i++) r = (r << 1) ^ ((r >> 63) != 0 ? Polynomial : 0);
        ulong reversed = 0;
        for (int b = 0; b < 64; b++) reversed |= ((r >> b) & 1) << (63 - b);
        return reversed;
    }

    /// <summary>The same CRC as <see cref="Crc64"/>, one table lookup per byte (the reference the sliced form is tested against).</summary>
    internal static ulong Crc64Bytewise(ReadOnlySpan<byte> data, ulong crc = 0)
    {
        foreach (byte b in data) crc = s_crcTable[(byte)(crc ^ b)] ^ (crc >> 8);
        return crc;
    }

    private static ulong[] BuildCrcTable()
    {
        const ulong ReflectedPolynomial = 0x95ac9329ac4bc9b5; // 0xad93d23594c935a9 with its bits reversed
        var table = new ulong[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            ulong crc = i;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ ReflectedPolynomial : crc >> 1;
            table[i] = crc;
        }

        // table[k * 256 + b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
        for (int k = 1; k < 8; k++)
        {
            for (int i = 0; i < 256; i++)
            {
                ulong previous = table[(k - 1) * 256 + i];
                table[k * 256 + i] = (previous >> 8) ^ table[(int)(previous & 0xFF)];
            }
        }

        return table;
    }
}
