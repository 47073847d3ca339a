using System.Text;

namespace EioSharp.TestKit;

/// <summary>RESP encoding for test clients.</summary>
public static class RespCommand
{
    /// <summary>Encodes a command as a RESP array of bulk strings (UTF-8).</summary>
    /// <param name="args">The command name and its arguments.</param>
    /// <returns>The bytes to send.</returns>
    public static byte[] Encode(params string[] args)
    {
        var sb = new StringBuilder();
        sb.Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
