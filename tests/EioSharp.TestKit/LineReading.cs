using System.Net.Sockets;
using System.Text;

namespace EioSharp.TestKit;

/// <summary>Blocking line reads on a raw socket, for simple request/reply round trips.</summary>
public static class LineReading
{
    /// <summary>Reads bytes up to <c>\n</c> (one at a time, so nothing after the line is consumed).</summary>
    /// <param name="socket">The connected socket; its ReceiveTimeout bounds each read.</param>
    /// <returns>The line without <c>\r\n</c> or <c>\n</c>, or <see langword="null"/> if the peer closed first.</returns>
    /// <exception cref="SocketException">The read timed out or failed.</exception>
    public static string? ReadLine(Socket socket)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (socket.Receive(one) == 0)
            {
                return null;
            }

            if (one[0] == (byte)'\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            line.Append((char)one[0]);
        }
    }
}
