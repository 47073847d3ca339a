using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Reads one field of a server's INFO reply (redis-server or EioSharp.Kv): shared by the end-to-end tests.</summary>
public static class ServerInfo
{
    /// <summary>The value of <paramref name="field"/> in <c>INFO <paramref name="section"/></c>, or null if the reply has no
    /// such line.</summary>
    public static string? TryField(RespConnection c, string section, string field)
    {
        foreach (string line in c.Call("INFO", section).Text!.Split("\r\n"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal)) return line[(field.Length + 1)..];
        }

        return null;
    }

    /// <summary>The value of <paramref name="field"/> in <c>INFO <paramref name="section"/></c>.</summary>
    /// <exception cref="InvalidOperationException">The reply has no such line (the message quotes the reply).</exception>
    public static string Field(RespConnection c, string section, string field) =>
        TryField(c, section, field) ?? throw new InvalidOperationException($"no {field} in INFO {section}:\n{c.Call("INFO", section).Text}");
}
