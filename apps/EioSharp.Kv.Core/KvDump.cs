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

    /// <summary>Serializes a value (a string <c>byte[]</c> or a <see cref="KvObject"/>) as a payload.</summary>
    public static byte[] Serialize(object value)
    {
        var output = new ArrayBufferWriter<byte>();
        if (value is byte[] s)
        {
            output.Write([(byte)KvType.String]);
            output.Write(s);
        }
        else
        {
            var o = (KvObject)value;
            output.Write([(byte)o.Type]);
            o.WriteRewrite([], output);
        }
        Span<byte> version = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(version, Version);
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
        if (BinaryPrimitives.ReadUInt16LittleEndian(footer) != Version) return false;
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
