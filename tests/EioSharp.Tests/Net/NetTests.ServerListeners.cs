using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.Net;

namespace EioSharp.Tests.Net;

/// <summary>ServerListeners: a running server moved to new listening sockets (as CONFIG SET port), on every backend
/// (<see cref="NetEpollTests"/> and <see cref="NetUringTests"/> run these too).</summary>
public partial class NetTests
{
    /// <summary>The inode of the socket listening on 127.0.0.1:<paramref name="port"/> (from /proc/net/tcp), or null.</summary>
    private static string? ListeningInode(int port)
    {
        string hexPort = port.ToString("X4", CultureInfo.InvariantCulture);
        foreach (string line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f[1] == "0100007F:" + hexPort && f[3] == "0A")
            {
                return f[9];
            }
        }

        return null;
    }

    /// <summary>Whether this process holds a descriptor on the socket with <paramref name="inode"/>.</summary>
    private static bool ProcessHoldsSocket(string inode)
    {
        foreach (string fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == $"socket:[{inode}]")
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // closed meanwhile
            }
        }

        return false;
    }

    private static bool Refused(int port)
    {
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            c.Connect(new IPEndPoint(IPAddress.Loopback, port));
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
    }

    private static async Task<string> AskAsync(StreamSocket c, string message)
    {
        await c.WriteAsync(Encoding.ASCII.GetBytes(message));
        var buf = new byte[256];
        int n = await c.ReadAsync(buf);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    /// <summary>A connection handler: "move" replaces the server's sockets by one on a new port (answers "moved PORT"
    /// once the old ones are closed), "fail PORT" tries to move to PORT and a new port together (answers the error), any
    /// other message is echoed.</summary>
    private static Func<StreamSocket, EndPoint, Task> MovableEcho(Stdenv env, ServerListeners listeners) => async (conn, _) =>
    {
        var buf = new byte[256];
        int n;
        while ((n = await conn.ReadAsync(buf)) > 0)
        {
            string msg = Encoding.ASCII.GetString(buf, 0, n);
            string reply;
            if (msg == "move")
            {
                ListeningSocket? opened = null;
                var closed = listeners.Replace([sw => opened = env.Net.Listen(sw, new IPEndPoint(IPAddress.Loopback, 0))]);
                await closed.AwaitAsync();
                reply = "moved " + ((IPEndPoint)opened!.ListeningEndPoint).Port.ToString(CultureInfo.InvariantCulture);
            }
            else if (msg.StartsWith("fail ", StringComparison.Ordinal))
            {
                int busy = int.Parse(msg.AsSpan(5), CultureInfo.InvariantCulture);
                ListeningSocket? first = null;
                try
                {
                    listeners.Replace([
                        sw => first = env.Net.Listen(sw, new IPEndPoint(IPAddress.Loopback, 0)),
                        sw => env.Net.Listen(sw, new IPEndPoint(IPAddress.Loopback, busy))]);
                    reply = "replaced?!";
                }
                catch (NetException e)
                {
                    reply = $"{e.SocketError} {((IPEndPoint)first!.ListeningEndPoint).Port} {first.IsClosed}";
                }
            }
            else
            {
                reply = msg;
            }

            await conn.WriteAsync(Encoding.ASCII.GetBytes(reply));
        }
    };

    [Fact]
    public void ServerListeners_ReplaceMovesTheServerToTheNewPortAndKeepsItsConnections()
    {
        var outcome = RunEio(async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var first = env.Net.Listen(sw, Loopback0);
                int oldPort = ((IPEndPoint)first.ListeningEndPoint).Port;
                string inode = ListeningInode(oldPort) ?? throw new InvalidOperationException("no LISTEN line for the first socket");
                var listeners = new ServerListeners([first]);
                var (stop, stopper) = Promise.Create<bool>();
                Fiber.Fork(sw, () => ListeningSocket.RunServerAsync(listeners, MovableEcho(env, listeners), ex => throw ex,
                    domainManager: env.DomainManager, additionalDomains: 2, stop: stop));

                var kept = await env.Net.ConnectAsync(sw, first.ListeningEndPoint);
                log.Add(await AskAsync(kept, "before"));
                string moved = await AskAsync(kept, "move");
                int newPort = int.Parse(moved.AsSpan(6), CultureInfo.InvariantCulture);
                log.Add(newPort != oldPort ? "new port" : "same port?!");

                // Answered only once the old socket is closed: its port refuses at once, its descriptor is gone.
                log.Add(first.IsClosed ? "old closed" : "old open?!");
                log.Add(await Task.Run(() => Refused(oldPort)) ? "old refused" : "old accepted?!");
                log.Add(ProcessHoldsSocket(inode) ? "old fd held?!" : "old fd released");
                log.Add(ListeningInode(oldPort) is null ? "old not listening" : "old listening?!");
                log.Add(listeners.Current.Count == 1 && ((IPEndPoint)listeners.Current[0].ListeningEndPoint).Port == newPort ? "current new" : "current?!");

                // The connection accepted from the old socket keeps working; the new port serves (on every domain).
                log.Add(await AskAsync(kept, "still here"));
                for (int i = 0; i < 6; i++)
                {
                    string m = $"new {i}";
                    if (await RoundTripAsync(env, new IPEndPoint(IPAddress.Loopback, newPort), m) != m)
                    {
                        log.Add($"new port failed {i}");
                    }
                }

                // A replacement that cannot bind (its second port is taken by the server itself) leaves the set as it
                // was, and closes the socket it had opened first.
                string failed = await AskAsync(kept, $"fail {newPort}");
                string[] f = failed.Split(' ');
                log.Add(f.Length == 3 ? f[0] + " " + f[2] : failed);
                if (f.Length != 3)
                {
                    stopper.Resolve(true);
                    kept.Close();
                    return;
                }

                // Closed by us: refused, or (the port was free and the machine's other tests may bind it at once: ci40 saw
                // a connect succeed) listened on by a socket this process does not hold.
                int halfOpened = int.Parse(f[1], CultureInfo.InvariantCulture);
                bool closedByUs = await Task.Run(() => Refused(halfOpened) || ListeningInode(halfOpened) is { } other && !ProcessHoldsSocket(other));
                log.Add(closedByUs ? "half-opened refused" : "half-opened accepts?!");
                log.Add(await RoundTripAsync(env, new IPEndPoint(IPAddress.Loopback, newPort), "after failure"));
                log.Add(await AskAsync(kept, "end"));
                kept.Close();
                stopper.Resolve(true);
            });
            return log;
        });
        Assert.Equal(
            ["before", "new port", "old closed", "old refused", "old fd released", "old not listening", "current new", "still here",
             "AddressAlreadyInUse True", "half-opened refused", "after failure", "end"],
            outcome);
    }

    [Fact]
    public void ServerListeners_RetireStopsOneSocketAndAddServesAnother()
    {
        var outcome = RunEio(async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var a = env.Net.Listen(sw, Loopback0);
                var b = env.Net.Listen(sw, Loopback0);
                var listeners = new ServerListeners([a]);
                var (stop, stopper) = Promise.Create<bool>();
                Fiber.Fork(sw, () => ListeningSocket.RunServerAsync(listeners, EchoAsync, ex => throw ex,
                    domainManager: env.DomainManager, additionalDomains: 1, stop: stop));
                log.Add(await RoundTripAsync(env, a.ListeningEndPoint, "a"));
                listeners.Add(b);
                log.Add(await RoundTripAsync(env, b.ListeningEndPoint, "b"));
                await listeners.Retire(a).AwaitAsync();
                log.Add(a.IsClosed && !b.IsClosed ? "a closed" : "a?!");
                log.Add(await Task.Run(() => Refused(((IPEndPoint)a.ListeningEndPoint).Port)) ? "a refused" : "a accepts?!");
                log.Add(await RoundTripAsync(env, b.ListeningEndPoint, "b again"));
                Assert.Throws<ArgumentException>(() => listeners.Retire(a));
                Assert.Throws<ArgumentException>(() => listeners.Add(b));
                Assert.Throws<InvalidOperationException>(() => new ServerListeners([]).Replace([])); // no server runs on that set
                stopper.Resolve(true);
            });
            return log;
        });
        Assert.Equal(["a", "b", "a closed", "a refused", "b again"], outcome);
    }
}
