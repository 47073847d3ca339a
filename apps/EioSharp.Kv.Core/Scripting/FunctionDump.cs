using System.Buffers.Binary;

namespace EioSharp.Kv.Scripting;

/// <summary>FUNCTION DUMP / RESTORE payloads in Redis's format: per library <c>RDB_OPCODE_FUNCTION2</c> (245) and the
/// code as an RDB string, then the RDB version (2 bytes, little endian) and a CRC64 (Jones, little endian) of all that.
/// Written uncompressed (valid RDB that Redis restores); LZF-compressed strings from Redis are read.</summary>
internal static class FunctionDump
{
    private const byte OpcodeFunction2 = 245;
    private const ushort RdbVersion = 10; // Redis 7.0's; 7.0 refuses payloads of a newer version
    private const ushort MaxRdbVersion = 11; // Redis 7.2's: accepted on restore
    private const ulong Crc64Polynomial = 0x95AC9329AC4BC9B5; // Jones polynomial 0xad93d23594c935a9, reflected

    public static byte[] Create(IReadOnlyList<ScriptHost.FunctionLibrary> libraries)
    {
        var o = new List<byte>();
        foreach (ScriptHost.FunctionLibrary library in libraries)
        {
            o.Add(OpcodeFunction2);
            WriteLength(o, library.Code.Length);
            o.AddRange(library.Code);
        }
        o.Add((byte)RdbVersion);
        o.Add(RdbVersion >> 8);
        ulong crc = Crc64(0, [.. o]);
        for (int i = 0; i < 8; i++) o.Add((byte)(crc >> (8 * i)));
        return [.. o];
    }

    /// <summary>The libraries' codes, or null when the payload is not valid.</summary>
    public static List<byte[]>? Parse(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 10) return null;
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(payload[^10..]);
        if (version > MaxRdbVersion) return null;
        ulong crc = BinaryPrimitives.ReadUInt64LittleEndian(payload[^8..]);
        if (Crc64(0, payload[..^8]) != crc) return null;
        ReadOnlySpan<byte> body = payload[..^10];
        var codes = new List<byte[]>();
        int pos = 0;
        while (pos < body.Length)
        {
            if (body[pos++] != OpcodeFunction2) return null;
            byte[]? code = ReadString(body, ref pos);
            if (code is null) return null;
            codes.Add(code);
        }
        return codes;
    }

    private static void WriteLength(List<byte> o, int len)
    {
        if (len < 64)
        {
            o.Add((byte)len);
        }
        else if (len < 16384)
        {
            o.Add((byte)(0x40 | (len >> 8)));
            o.Add((byte)len);
        }
        else
        {
            o.Add(0x80);
            o.Add((byte)(len >> 24));
            o.Add((byte)(len >> 16));
            o.Add((byte)(len >> 8));
            o.Add((byte)len);
        }
    }

    private static bool TryReadLength(ReadOnlySpan<byte> b, ref int pos, out long len, out bool encoded)
    {
        len = 0;
        encoded = false;
        if (pos >= b.Length) return false;
        byte first = b[pos++];
        switch (first >> 6)
        {
            case 0:
                len = first & 0x3F;
                return true;
            case 1:
                if (pos >= b.Length) return false;
                len = ((first & 0x3F) << 8) | b[pos++];
                return true;
            case 2:
                if (first == 0x80)
                {
                    if (pos + 4 > b.Length) return false;
                    len = BinaryPrimitives.ReadUInt32BigEndian(b[pos..]);
                    pos += 4;
                    return true;
                }
                if (first == 0x81)
                {
                    if (pos + 8 > b.Length) return false;
                    len = (long)BinaryPrimitives.ReadUInt64BigEndian(b[pos..]);
                    pos += 8;
                    return len >= 0;
                }
                return false;
            default:
                encoded = true;
                len = first & 0x3F;
                return true;
        }
    }

    private static byte[]? ReadString(ReadOnlySpan<byte> b, ref int pos)
    {
        if (!TryReadLength(b, ref pos, out long len, out bool encoded)) return null;
        if (!encoded)
        {
            if (len > b.Length - pos) return null;
            byte[] s = b.Slice(pos, (int)len).ToArray();
            pos += (int)len;
            return s;
        }
        switch (len)
        {
            case 0 when pos + 1 <= b.Length:
                return KvStore.Bytes((sbyte)b[pos++]);
            case 1 when pos + 2 <= b.Length:
            {
                long v = BinaryPrimitives.ReadInt16LittleEndian(b[pos..]);
                pos += 2;
                return KvStore.Bytes(v);
            }
            case 2 when pos + 4 <= b.Length:
            {
                long v = BinaryPrimitives.ReadInt32LittleEndian(b[pos..]);
                pos += 4;
                return KvStore.Bytes(v);
            }
            case 3:
            {
                if (!TryReadLength(b, ref pos, out long clen, out _) || !TryReadLength(b, ref pos, out long ulen, out _)) return null;
                if (clen > b.Length - pos || ulen > int.MaxValue) return null;
                byte[]? s = LzfDecompress(b.Slice(pos, (int)clen), (int)ulen);
                pos += (int)clen;
                return s;
            }
            default:
                return null;
        }
    }

    private static byte[]? LzfDecompress(ReadOnlySpan<byte> input, int length)
    {
        var output = new byte[length];
        int ip = 0, op = 0;
        while (ip < input.Length)
        {
            int ctrl = input[ip++];
            if (ctrl < 32)
            {
                int run = ctrl + 1;
                if (op + run > output.Length || ip + run > input.Length) return null;
                input.Slice(ip, run).CopyTo(output.AsSpan(op));
                ip += run;
                op += run;
                continue;
            }
            int len = ctrl >> 5;
            if (len == 7)
            {
                if (ip >= input.Length) return null;
                len += input[ip++];
            }
            if (ip >= input.Length) return null;
            int reference = op - ((ctrl & 0x1F) << 8) - 1 - input[ip++];
            len += 2;
            if (reference < 0 || op + len > output.Length) return null;
            for (int i = 0; i < len; i++) output[op++] = output[reference++];
        }
        return op == length ? output : null;
    }

    /// <summary>Redis's CRC64 (Jones polynomial, reflected, no final xor): crc64(0, "123456789") = 0xe9c6d914c4b8d9ca.</summary>
    public static ulong Crc64(ulong crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ Crc64Polynomial : crc >> 1;
        }
        return crc;
    }
}
