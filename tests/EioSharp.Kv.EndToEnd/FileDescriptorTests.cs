using System.Text.RegularExpressions;
using System.Net.Sockets;

namespace EioSharp.Kv.EndToEnd;

/// <summary>The server under a low RLIMIT_NOFILE: maxclients fitted to it, and connections capped short of the limit (the runtime keeps the descriptors it needs).</summary>
public class FileDescriptorTests
{
    private const int Limit = 200;

    [Fact]
    public void Out_of_file_descriptors_connections_stop_short_of_the_limit_and_serve_again_once_clients_leave()
    {
        using var server = KvServerProcess.StartLimited(Limit);

        // As Redis: maxclients (10000) needs 10032 descriptors; the hard limit is 200, so it is lowered to 200 - 32.
        Assert.Contains("maxclients has been reduced to 168 to compensate for low ulimit", server.Log, StringComparison.Ordinal);

        // Connections stop at the limit less the descriptors open and the runtime's reserve (a thread the runtime cannot
        // start for want of a descriptor ends the process); the accept loop itself never runs out (no EMFILE).
        Match announced = Regex.Match(server.Log, @"at most (\d+) connection\(s\) at once");
        Assert.True(announced.Success, server.Log);
        int capacity = int.Parse(announced.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(capacity, 1, Limit - 64 - 10);
        int answered = 0;
        using var clients = FdExhaustion.Exhaust(
            server.Port,
            (socket, _) => socket.Send(RespCommand.Encode("PING")),
            (socket, _) =>
            {
                bool ok = LineReading.ReadLine(socket) == "+PONG";
                answered += ok ? 1 : 0;
                return ok;
            },
            exhausted: () => answered >= capacity,
            maxClients: Limit,
            answerTimeout: TimeSpan.FromSeconds(2));
        Assert.True(clients.Stuck is not null, $"all {clients.Served.Count} clients were served under a limit of {Limit} descriptors");
        Assert.Equal(capacity, clients.Served.Count);
        Assert.DoesNotContain("lack of resources", server.Log, StringComparison.Ordinal);
        Assert.False(server.HasExited, server.Log);

        // Clients leave: the waiting client is accepted (its PING answered) and new clients are served.
        clients.CloseServed(10);
        clients.Stuck.ReceiveTimeout = 20_000;
        Assert.Equal("+PONG", LineReading.ReadLine(clients.Stuck));
        using (var fresh = new RespClient(server.Port))
        {
            Assert.Equal("+PONG", fresh.Call("PING"));
        }

        clients.Dispose();
        Assert.Equal(0, server.Terminate());
    }
}
