using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using EioSharp.TestKit;

namespace EioSharp.Jobs.Tests;

/// <summary>The job server as a child process: its command line and its behaviour when out of file descriptors.</summary>
public partial class ProcessTests
{
    private const int Limit = 200;

    private static ServerStartInfo Info(params string[] args) =>
        new(BuiltApp.Dll("EioSharp.Jobs"), ["--port", "0", "--bind", "127.0.0.1", "--workers", "1", .. args], ReadyLine());

    [Fact]
    public void Help_prints_the_usage_with_the_seed_protocol_and_exits_0()
    {
        (int exitCode, string output) = ServerProcess.RunToExit(Info("--help"), TimeSpan.FromSeconds(60));
        Assert.Equal(0, exitCode);
        Assert.Contains("--max-connections <n>", output, StringComparison.Ordinal);
        Assert.Contains("Result: <fib n>", output, StringComparison.Ordinal);
        Assert.DoesNotContain("ready: listening", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_flag_is_named_and_exits_2()
    {
        (int exitCode, string output) = ServerProcess.RunToExit(Info("--workers", "lots"), TimeSpan.FromSeconds(60));
        Assert.Equal(2, exitCode);
        Assert.Contains("--workers", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Out_of_file_descriptors_connections_stop_short_of_the_limit_log_and_serve_again_once_clients_leave()
    {
        using ServerProcess server = ServerProcess.Start(Info() with { FileDescriptorLimit = Limit });

        // The seed's plain protocol: "<n>\n" -> "Result: <fib n>".
        using var clients = FdExhaustion.Exhaust(
            server.Port,
            (socket, _) => socket.Send("10\n"u8),
            (socket, _) => LineReading.ReadLine(socket) == "Result: 55",
            exhausted: () => server.Log.Contains("connection limit reached", StringComparison.Ordinal),
            maxClients: Limit,
            answerTimeout: TimeSpan.FromSeconds(2));
        Assert.True(clients.Stuck is not null, $"all {clients.Served.Count} clients were served under a limit of {Limit} descriptors");

        // Connections stop at the limit less the runtime's reserve (a thread the runtime cannot start for want of a
        // descriptor ends the process); the accept loop itself never runs out (no EMFILE).
        Match announced = Regex.Match(server.Log, @"at most (\d+) connection\(s\) instead of");
        Assert.True(announced.Success, server.Log);
        int capacity = int.Parse(announced.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(capacity, 1, Limit - 64 - 10);
        Assert.Equal(capacity, clients.Served.Count);
        Assert.Contains($"connection limit reached ({capacity} open)", server.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("lack of resources", server.Log, StringComparison.Ordinal);
        Assert.False(server.HasExited, server.Log);

        clients.CloseServed(10);
        clients.Stuck.ReceiveTimeout = 20_000;
        Assert.Equal("Result: 55", LineReading.ReadLine(clients.Stuck));
        using (var fresh = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000 })
        {
            fresh.Connect(System.Net.IPAddress.Loopback, server.Port);
            fresh.Send(Encoding.ASCII.GetBytes("PING\n"));
            Assert.Equal("PONG", LineReading.ReadLine(fresh));
        }

        clients.Dispose();
        Assert.Equal(0, server.Terminate());
    }

    [GeneratedRegex(@"EioSharp\.Jobs ready: listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ReadyLine();
}
