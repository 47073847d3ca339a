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
                string body = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s[pos..])[..n]);
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
