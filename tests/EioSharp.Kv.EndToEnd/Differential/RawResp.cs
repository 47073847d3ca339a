using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>One request with binary arguments on a fresh connection, its reply kept as the bytes that came (for DUMP
/// payloads and other binary bulks the text clients would re-encode).</summary>
internal static class RawResp
{
    /// <summary>Sends <paramref name="args"/> as a RESP array of bulk strings to 127.0.0.1:<paramref name="port"/> and
    /// reads one reply.</summary>
    /// <param name="port">The server's port.</param>
    /// <param name="line">The reply's first line with its CRLF (the whole reply unless it is a bulk string).</param>
    /// <param name="args">The arguments.</param>
    /// <returns>A bulk reply's payload (without its CRLF); null for a null bulk or a reply of another type.</returns>
    /// <exception cref="EndOfStreamException">The server closed the connection before the reply ended.</exception>
    public static byte[]? Call(int port, out byte[] line, params byte[][] args)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000 };
        socket.Connect(System.Net.IPAddress.Loopback, port);
        var request = new MemoryStream();
        request.Write(Encoding.ASCII.GetBytes($"*{args.Length}\r\n"));
        foreach (byte[] a in args)
        {
            request.Write(Encoding.ASCII.GetBytes($"${a.Length}\r\n"));
            request.Write(a);
            request.Write("\r\n"u8);
        }
        socket.Send(request.ToArray());
        using var stream = new BufferedStream(new NetworkStream(socket, ownsSocket: false));
        var first = new List<byte>();
        while (first.Count < 2 || first[^2] != '\r' || first[^1] != '\n')
        {
            int b = stream.ReadByte();
            if (b < 0) throw new EndOfStreamException();
            first.Add((byte)b);
        }
        line = [.. first];
        if (line[0] != '$') return null;
        int n = int.Parse(Encoding.ASCII.GetString(line).AsSpan(1).Trim(), CultureInfo.InvariantCulture);
        if (n < 0) return null;
        byte[] body = new byte[n + 2];
        stream.ReadExactly(body);
        return body[..n];
    }
}
