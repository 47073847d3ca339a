using System.Net.Sockets;

namespace EioSharp.Kv.EndToEnd;

/// <summary>The server under a low RLIMIT_NOFILE: maxclients fitted to it, and accept backing off on EMFILE instead of stopping.</summary>
public class FileDescriptorTests
{
    private const int Limit = 200;

    [Fact]
    public void Out_of_file_descriptors_accept_backs_off_logs_and_serves_again_once_clients_leave()
    {
        using var server = KvServerProcess.StartLimited(Limit);

        // As Redis: maxclients (10000) needs 10032 descriptors; the hard limit is 200, so it is lowered to 200 - 32.
        Assert.Contains("maxclients has been reduced to 168 to compensate for low ulimit", server.Log, StringComparison.Ordinal);

        // The runtime holds some 70 descriptors, so accept runs out (EMFILE) before maxclients is reached.
        using var clients = FdExhaustion.Exhaust(
            server.Port,
            (socket, _) => socket.Send(RespCommand.Encode("PING")),
            (socket, _) => LineReading.ReadLine(socket) == "+PONG",
            exhausted: () => server.Log.Contains("lack of resources", StringComparison.Ordinal),
            maxClients: Limit,
            answerTimeout: TimeSpan.FromSeconds(2));
        Assert.True(clients.Stuck is not null, $"all {clients.Served.Count} clients were served under a limit of {Limit} descriptors");
        Assert.True(clients.Served.Count is > 50 and < Limit, $"{clients.Served.Count} clients served");
        Assert.True(server.WaitForLog("lack of resources (TooManyOpenSockets", TimeSpan.FromSeconds(10)), server.Log);
        Assert.False(server.HasExited, server.Log);

        // Clients leave: the waiting client is accepted (its PING answered) and new clients are served.
        clients.CloseServed(10);
        clients.Stuck.ReceiveTimeout = 20_000;
        Assert.Equal("+PONG", LineReading.ReadLine(clients.Stuck));
        using (var fresh = new RespClient(server.Port))
        {
            Assert.Equal("+PONG", fresh.Call("PING"));
        }

        // Still reported once per interval, not once per failed accept.
        Assert.True(server.Log.Split("lack of resources").Length - 1 <= 3, server.Log);
        clients.Dispose();
        Assert.Equal(0, server.Terminate());
    }
}
