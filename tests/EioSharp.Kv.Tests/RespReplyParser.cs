using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>Decodes RESP2/RESP3 replies into strings, longs, lists, dictionaries (test helper).</summary>
internal static class RespReplyParser
{
    public static object? Parse(string reply)
    {
        int pos = 0;
        object? value = Read(reply, ref pos);
        if (pos != reply.Length) throw new FormatException($"trailing data at {pos}: {reply[pos..]}");
        return value;
    }

    public static List<object?> ParseAll(string replies)
    {
        var list = new List<object?>();
        int pos = 0;
        while (pos < replies.Length) list.Add(Read(replies, ref pos));
        return list;
    }

    /// <summary>
    /// Decodes a run of replies straight from the bytes, in time linear in their length (the string overload re-encodes
    /// the rest of the text for every bulk string, quadratic on multi-KB replies). Stricter than the string overload:
    /// every line and every bulk body must end in CRLF, lengths are byte counts, integers are canonical, RESP3 booleans
    /// are t/f, nulls are empty, map keys are strings. Throws <see cref="FormatException"/> on any malformed reply.
    /// </summary>
    public static List<object?> ParseAll(ReadOnlySpan<byte> replies)
    {
        var list = new List<object?>();
        int pos = 0;
        while (pos < replies.Length) list.Add(Read(replies, ref pos, 0));
        return list;
    }

    private static ReadOnlySpan<byte> Line(ReadOnlySpan<byte> s, ref int pos)
    {
        int end = s[pos..].IndexOf("\r\n"u8);
        if (end < 0) throw new FormatException($"unterminated line at {pos}");
        ReadOnlySpan<byte> line = s.Slice(pos, end);
        pos += end + 2;
        return line;
    }

    private static long Integer(ReadOnlySpan<byte> line)
    {
        if (!System.Buffers.Text.Utf8Parser.TryParse(line, out long value, out int consumed) || consumed != line.Length || line.Length == 0)
            throw new FormatException($"bad integer '{Encoding.UTF8.GetString(line)}'");
        return value;
    }

    private static object? Read(ReadOnlySpan<byte> s, ref int pos, int depth)
    {
        if (depth > 64) throw new FormatException("nested too deep");
        byte type = s[pos++];
        ReadOnlySpan<byte> line = Line(s, ref pos);
        switch ((char)type)
        {
            case '+': return Encoding.UTF8.GetString(line);
            case '-': return new RespError(Encoding.UTF8.GetString(line));
            case ':': return Integer(line);
            case ',': return Encoding.UTF8.GetString(line);
            case '#':
                if (line.SequenceEqual("t"u8)) return true;
                if (line.SequenceEqual("f"u8)) return false;
                throw new FormatException($"bad boolean '{Encoding.UTF8.GetString(line)}'");
            case '_':
                if (line.Length != 0) throw new FormatException("null with payload");
                return null;
            case '$':
            case '=':
            {
                long n = Integer(line);
                if (n == -1) return null;
                if (n < 0 || n > s.Length - pos - 2 || s[pos + (int)n] != '\r' || s[pos + (int)n + 1] != '\n')
                    throw new FormatException($"bulk of {n} bytes at {pos} is not followed by CRLF");
                string body = Encoding.UTF8.GetString(s.Slice(pos, (int)n));
                pos += (int)n + 2;
                return body;
            }
            case '*':
            case '~':
            {
                long n = Integer(line);
                if (n == -1) return null;
                if (n < 0) throw new FormatException($"bad aggregate length {n}");
                var list = new List<object?>();
                for (long i = 0; i < n; i++) list.Add(Read(s, ref pos, depth + 1));
                return list;
            }
            case '%':
            {
                long n = Integer(line);
                if (n < 0) throw new FormatException($"bad map length {n}");
                var map = new Dictionary<string, object?>();
                for (long i = 0; i < n; i++)
                {
                    if (Read(s, ref pos, depth + 1) is not string key) throw new FormatException("map key is not a string");
                    map[key] = Read(s, ref pos, depth + 1);
                }
                return map;
            }
            default: throw new FormatException($"unknown type {(char)type}");
        }
    }

    private static string Line(string s, ref int pos)
    {
        int end = s.IndexOf("\r\n", pos, StringComparison.Ordinal);
        string line = s[pos..end];
        pos = end + 2;
        return line;
    }

    private static object? Read(string s, ref int pos)
    {
        char type = s[pos++];
        string line = Line(s, ref pos);
        switch (type)
        {
            case '+': return line;
            case '-': return new RespError(line);
            case ':': return long.Parse(line);
            case ',': return line;
            case '#': return line == "t";
            case '_': return null;
            case '$':
            case '=':
            {
                int n = int.Parse(line);
                if (n < 0) return null;
                // Lengths are in bytes; tests use ASCII payloads except where stated.
                // An ASCII body is its n characters (linear); otherwise re-encode the rest (quadratic, rare).
                string body = pos + n <= s.Length && Encoding.UTF8.GetByteCount(s.AsSpan(pos, n)) == n
                    ? s.Substring(pos, n)
                    : Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s[pos..])[..n]);
                pos += body.Length + 2;
                return body;
            }
            case '*':
            case '~':
            {
                int n = int.Parse(line);
                if (n < 0) return null;
                var list = new List<object?>();
                for (int i = 0; i < n; i++) list.Add(Read(s, ref pos));
                return list;
            }
            case '%':
            {
                int n = int.Parse(line);
                var map = new Dictionary<string, object?>();
                for (int i = 0; i < n; i++)
                {
                    string key = (string)Read(s, ref pos)!;
                    map[key] = Read(s, ref pos);
                }
                return map;
            }
            default: throw new FormatException($"unknown type {type}");
        }
    }
}

internal sealed record RespError(string Message);
