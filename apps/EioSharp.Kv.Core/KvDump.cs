using System.Buffers;
using System.Buffers.Binary;

namespace EioSharp.Kv;

/// <summary>The DUMP/RESTORE payload format of EioSharp.Kv.</summary>
/// <remarks>
/// A payload is <c>type body version crc</c>:
/// <list type="bullet">
/// <item><c>type</c>: one byte, the <see cref="KvType"/> value.</item>
/// <item><c>body</c>: for a string, its bytes; for any other type, the AOF commands that rebuild it
/// (<see cref="KvObject.WriteRewrite"/>) written for the empty key, which stands for the key being restored.</item>
/// <item><c>version</c>: two bytes, little endian, <see cref="Version"/>. It is not an RDB version, so a payload from
/// redis-server is refused with Redis's error (and ours by redis-server) instead of being misread.</item>
/// <item><c>crc</c>: eight bytes, little endian, the CRC-64 of everything before it, with the same polynomial as
/// Redis's payload footer (CRC-64/Jones, reflected, <c>0xad93d23594c935a9</c>).</item>
/// </list>
/// <para><b>Strings</b> are written as redis-server 7.0 writes them (its DUMP payload: type 0, the RDB string with the
/// integer encodings and, with <c>rdbcompression</c>, LZF; RDB version 10; the CRC-64), so DUMP answers the same bytes as
/// redis-server and a string payload from redis-server (RDB version up to 10) restores here; payloads of the other types
/// keep the format above (version "EI").</para>
/// <para><b>Errors</b>: <see cref="TryRestore"/> never throws on any input: a wrong version or checksum, a body that
/// does not parse (the RESP parser checks every announced size against the bytes actually present before it allocates),
/// a command that is not a creation command of the declared type, or one that fails, gives false. The body is
/// executed into a private one-database store, so a payload can build nothing that the commands themselves refuse.</para>
/// </remarks>
internal static class KvDump
{
    /// <summary>The payload version this server writes and accepts.</summary>
    public const ushort Version = 0x4549; // "EI"

    private const int FooterBytes = 2 + 8;
    private const int MinBytesPerArgument = 6; // "$0\r\n\r\n": bounds the argument count the parser may accept

    private static readonly ulong[] s_crcTable = BuildCrcTable();

    /// <summary>The RDB version of string payloads (redis-server 7.0's RDB_VERSION; RESTORE accepts up to it).</summary>
    public const ushort RdbVersion = Rdb.Version;

    /// <summary>Serializes a value (a string <c>byte[]</c> or a <see cref="KvObject"/>) as a payload.</summary>
    /// <param name="value">The value.</param>
    /// <param name="compress">Redis's <c>rdbcompression</c>, for a string.</param>
    public static byte[] Serialize(object value, bool compress = true)
    {
        var output = new ArrayBufferWriter<byte>();
        ushort payloadVersion = Version;
        if (value is byte[] s)
        {
            output.Write([Rdb.TypeString]);
            var writer = new RdbWriter(span => output.Write(span), compress, checksum: false);
            writer.WriteString(s);
            writer.Flush();
            payloadVersion = RdbVersion;
        }
        else
        {
            var o = (KvObject)value;
            output.Write([(byte)o.Type]);
            o.WriteRewrite([], output);
        }
        Span<byte> version = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(version, payloadVersion);
        output.Write(version);
        Span<byte> crc = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(crc, Crc64(output.WrittenSpan));
        output.Write(crc);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Whether the payload's footer has our version and a matching checksum.</summary>
    public static bool Verify(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 1 + FooterBytes) return false;
        ReadOnlySpan<byte> footer = payload[^FooterBytes..];
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(footer);
        if (version != Version && !(version <= RdbVersion && payload[0] == Rdb.TypeString)) return false;
        return BinaryPrimitives.ReadUInt64LittleEndian(footer[2..]) == Crc64(payload[..^8]);
    }

    /// <summary>Rebuilds the value of a verified payload (<see cref="Verify"/>); false when the body is not valid.</summary>
    /// <param name="payload">The payload.</param>
    /// <param name="limits">Limits for the commands of the body (also bounds a string).</param>
    /// <param name="encodings">Compact-encoding thresholds of the store the value goes to.</param>
    /// <param name="value">The value: a <c>byte[]</c> or a <see cref="KvObject"/> of the declared type.</param>
    public static bool TryRestore(ReadOnlySpan<byte> payload, RespLimits limits, KvEncodingLimits encodings, out object? value)
    {
        value = null;
        if (payload.Length < 1 + FooterBytes) return false;
        byte type = payload[0];
        ReadOnlySpan<byte> body = payload[1..^FooterBytes];
        if (type == Rdb.TypeString && BinaryPrimitives.ReadUInt16LittleEndian(payload[^FooterBytes..]) != Version)
        {
            byte[]? rdbString = ReadRdbString(payload[1..], limits.MaxBulkLength);
            value = rdbString;
            return rdbString is not null;
        }
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
    public static ulong Crc64(ReadOnlySpan<byte> data, ulong crc = 0)
    {
        foreach (byte b in data) crc = s_crcTable[(byte)(crc ^ b)] ^ (crc >> 8);
        return crc;
    }

    private static ulong[] BuildCrcTable()
    {
        const ulong ReflectedPolynomial = 0x95ac9329ac4bc9b5; // 0xad93d23594c935a9 with its bits reversed
        var table = new ulong[256];
        for (uint i = 0; i < 256; i++)
        {
            ulong crc = i;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ ReflectedPolynomial : crc >> 1;
            table[i] = crc;
        }
        return table;
    }
}
