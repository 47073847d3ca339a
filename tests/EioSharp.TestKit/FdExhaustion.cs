using System.Net;
using System.Net.Sockets;

namespace EioSharp.TestKit;

/// <summary>Drives a server into running out of file descriptors, then checks that it serves again once clients leave.</summary>
/// <remarks>
/// Start the server with <see cref="ServerStartInfo.FileDescriptorLimit"/> low enough. <see cref="Exhaust"/> connects
/// clients one at a time, each proving it is served with a round trip, until one is not (the kernel completed the
/// connection, but the server's accept failed: it waits in the backlog) or the bound is reached.
/// </remarks>
public sealed class FdExhaustion : IDisposable
{
    private FdExhaustion(List<Socket> served, Socket? stuck)
    {
        Served = served;
        Stuck = stuck;
    }

    /// <summary>The clients whose round trip succeeded, in connection order.</summary>
    public List<Socket> Served { get; }

    /// <summary>The first client whose round trip got no answer, if any; its request is still pending.</summary>
    public Socket? Stuck { get; }

    /// <summary>Connects clients to <c>127.0.0.1:port</c> until one is not served.</summary>
    /// <param name="port">The server's TCP port.</param>
    /// <param name="send">Sends a request on a new client (the index counts clients from 0).</param>
    /// <param name="answered">Waits for the answer to the request of client <c>index</c>; returns false (or throws a <see cref="SocketException"/>) if none came in time.</param>
    /// <param name="exhausted">Whether the server reported running out (its log has the accept-failure report): a client
    /// without an answer counts as not served only then; otherwise it is just slow (a loaded machine) and waited for again.</param>
    /// <param name="maxClients">The most clients to open.</param>
    /// <param name="answerTimeout">How long a client waits for its answer before the server's log is checked.</param>
    /// <returns>The clients; dispose it to close them.</returns>
    public static FdExhaustion Exhaust(
        int port, Action<Socket, int> send, Func<Socket, int, bool> answered, Func<bool> exhausted, int maxClients, TimeSpan answerTimeout)
    {
        var served = new List<Socket>();
        for (int i = 0; i < maxClients; i++)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
            {
                NoDelay = true,
                ReceiveTimeout = (int)answerTimeout.TotalMilliseconds,
                SendTimeout = (int)answerTimeout.TotalMilliseconds,
            };
            client.Connect(new IPEndPoint(IPAddress.Loopback, port));
            send(client, i);
            bool ok = false;
            for (int attempt = 0; attempt < 10 && !ok; attempt++)
            {
                try
                {
                    ok = answered(client, i);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
                {
                    ok = false;
                }

                if (!ok && exhausted())
                {
                    break;
                }
            }

            if (!ok)
            {
                return new FdExhaustion(served, client);
            }

            served.Add(client);
        }

        return new FdExhaustion(served, null);
    }

    /// <summary>Closes the first <paramref name="count"/> served clients (fewer if fewer were served).</summary>
    /// <param name="count">How many to close.</param>
    public void CloseServed(int count)
    {
        foreach (Socket s in Served.Take(count).ToList())
        {
            s.Dispose();
            Served.Remove(s);
        }
    }

    /// <summary>Closes every client.</summary>
    public void Dispose()
    {
        foreach (Socket s in Served)
        {
            s.Dispose();
        }

        Stuck?.Dispose();
    }
}
