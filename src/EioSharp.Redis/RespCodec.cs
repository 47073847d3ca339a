using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace EioSharp.Redis;

/// <summary>The client side of RESP: commands out (arrays of bulk strings), replies in (RESP2 and RESP3).</summary>
/// <remarks>The parser works on a span and answers "need more bytes" with <see langword="false"/>; it throws only on malformed
/// input (Garnet's habit). Limits are named constants.</remarks>
internal static class RespCodec
{
    /// <summary>The largest bulk string accepted, in bytes (Redis's proto-max-bulk-len default, 512 MiB).</summary>
    public const int MaxBulkLength = 512 * 1024 * 1024;

    /// <summary>The largest aggregate accepted, in elements (guards allocation before the elements arrive).</summary>
    public const int MaxAggregateLength = 64 * 1024 * 1024;

    /// <summary>Nesting deeper than this is treated as malformed input.</summary>
    public const int MaxDepth = 64;

    /// <summary>Converts a command argument to its bulk-string bytes.</summary>
    public static byte[] ToBytes(object? arg) => arg switch
    {
        null => throw new ArgumentNullException(nameof(arg), "A command argument is null."),
        byte[] b => b,
        string s => Encoding.UTF8.GetBytes(s),
        ReadOnlyMemory<byte> m => m.ToArray(),
        Memory<byte> m => m.ToArray(),
        int i => Encoding.ASCII.GetBytes(i.ToString(CultureInfo.InvariantCulture)),
        long l => Encoding.ASCII.GetBytes(l.ToString(CultureInfo.InvariantCulture)),
        uint u => Encoding.ASCII.GetBytes(u.ToString(CultureInfo.InvariantCulture)),
        ulong u => Encoding.ASCII.GetBytes(u.ToString(CultureInfo.InvariantCulture)),
        double d => Encoding.ASCII.GetBytes(d.ToString("R", CultureInfo.InvariantCulture)),
        TimeSpan t => Encoding.ASCII.GetBytes(((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)),
        _ => throw new ArgumentException($"Unsupported argument type {arg.GetType()} (use string, byte[], ReadOnlyMemory<byte>, an integer, double or TimeSpan).", nameof(arg)),
    };

    /// <summary>Writes <paramref name="args"/> as one RESP array of bulk strings.</summary>
    public static void WriteCommand(IBufferWriter<byte> output, IReadOnlyList<byte[]> args)
    {
        WriteHeader(output, (byte)'*', args.Count);
        foreach (byte[] a in args)
        {
            WriteHeader(output, (byte)'$', a.Length);
            output.Write(a);
            output.Write("\r\n"u8);
        }
    }

    private static void WriteHeader(IBufferWriter<byte> output, byte prefix, long n)
    {
        var span = output.GetSpan(24);
        span[0] = prefix;
        Utf8Formatter.TryFormat(n, span[1..], out int written);
        span[1 + written] = (byte)'\r';
        span[2 + written] = (byte)'\n';
        output.Advance(written + 3);
    }

    /// <summary>Parses one reply from the start of <paramref name="input"/>.</summary>
    /// <param name="input">Buffered bytes.</param>
    /// <param name="reply">The reply, when complete.</param>
    /// <param name="consumed">The bytes it took.</param>
    /// <returns>False when more bytes are needed.</returns>
    /// <exception cref="RedisConnectionException">The input is not RESP.</exception>
    public static bool TryParse(ReadOnlySpan<byte> input, out RedisReply reply, out int consumed)
    {
        int pos = 0;
        while (true)
        {
            if (!TryParseAt(input, ref pos, 0, out reply, out bool attribute))
            {
                consumed = 0;
                return false;
            }

            if (!attribute)
            {
                consumed = pos;
                return true;
            }
        }
    }

    private static bool TryParseAt(ReadOnlySpan<byte> input, ref int pos, int depth, out RedisReply reply, out bool attribute)
    {
        reply = RedisReply.Null;
        attribute = false;
        if (depth > MaxDepth)
        {
            throw Malformed("nesting too deep");
        }

        if (pos >= input.Length)
        {
            return false;
        }

        byte type = input[pos];
        int lineEnd = input[(pos + 1)..].IndexOf("\r\n"u8);
        if (lineEnd < 0)
        {
            if (input.Length - pos > 64 * 1024 && type is not ((byte)'+' or (byte)'-'))
            {
                throw Malformed("header line too long");
            }

            return false;
        }

        var line = input.Slice(pos + 1, lineEnd);
        int after = pos + 1 + lineEnd + 2;
        switch (type)
        {
            case (byte)'+':
                reply = RedisReply.Simple(line.ToArray());
                pos = after;
                return true;
            case (byte)'-':
                reply = RedisReply.ErrorReply(line.ToArray());
                pos = after;
                return true;
            case (byte)':':
                reply = RedisReply.Number(ParseLong(line));
                pos = after;
                return true;
            case (byte)'_':
                reply = RedisReply.Null;
                pos = after;
                return true;
            case (byte)'#':
                reply = RedisReply.Boolean(line.Length == 1 && line[0] == (byte)'t');
                pos = after;
                return true;
            case (byte)',':
                reply = RedisReply.DoubleReply(ParseDouble(line));
                pos = after;
                return true;
            case (byte)'(':
                reply = RedisReply.Big(line.ToArray());
                pos = after;
                return true;
            case (byte)'$' or (byte)'!' or (byte)'=':
            {
                long len = ParseLong(line);
                if (len < 0)
                {
                    reply = RedisReply.Null;
                    pos = after;
                    return true;
                }

                if (len > MaxBulkLength)
                {
                    throw Malformed($"bulk length {len} over the limit");
                }

                if (input.Length - after < len + 2)
                {
                    return false;
                }

                var payload = input.Slice(after, (int)len);
                if (input[after + (int)len] != (byte)'\r' || input[after + (int)len + 1] != (byte)'\n')
                {
                    throw Malformed("bulk string not followed by CRLF");
                }

                reply = type switch
                {
                    (byte)'$' => RedisReply.Bulk(payload.ToArray()),
                    (byte)'!' => RedisReply.ErrorReply(payload.ToArray()),
                    _ => RedisReply.Verbatim(payload.Length >= 4 && payload[3] == (byte)':' ? payload[4..].ToArray() : payload.ToArray()),
                };
                pos = after + (int)len + 2;
                return true;
            }

            case (byte)'*' or (byte)'%' or (byte)'~' or (byte)'>' or (byte)'|':
            {
                long n = ParseLong(line);
                if (n < 0)
                {
                    reply = RedisReply.Null;
                    pos = after;
                    return true;
                }

                long count = type is (byte)'%' or (byte)'|' ? n * 2 : n;
                if (count > MaxAggregateLength)
                {
                    throw Malformed($"aggregate length {n} over the limit");
                }

                var elements = new RedisReply[count];
                int p = after;
                for (int i = 0; i < count; i++)
                {
                    if (!TryParseAt(input, ref p, depth + 1, out elements[i], out bool nestedAttribute))
                    {
                        return false;
                    }

                    if (nestedAttribute)
                    {
                        i--; // an attribute precedes the element it describes: parse the element next
                    }
                }

                pos = p;
                if (type == (byte)'|')
                {
                    attribute = true;
                    return true;
                }

                reply = RedisReply.Aggregate(type switch
                {
                    (byte)'*' => RedisReplyKind.Array,
                    (byte)'%' => RedisReplyKind.Map,
                    (byte)'~' => RedisReplyKind.Set,
                    _ => RedisReplyKind.Push,
                }, elements);
                return true;
            }

            default:
                throw Malformed($"unknown type byte 0x{type:x2}");
        }
    }

    private static long ParseLong(ReadOnlySpan<byte> line) =>
        Utf8Parser.TryParse(line, out long value, out int used) && used == line.Length ? value : throw Malformed("bad integer");

    private static double ParseDouble(ReadOnlySpan<byte> line)
    {
        string text = Encoding.ASCII.GetString(line);
        return text switch
        {
            "inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            "nan" => double.NaN,
            _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Malformed("bad double"),
        };
    }

    private static RedisConnectionException Malformed(string what) => new($"Protocol error in the server's reply: {what}.");
}
