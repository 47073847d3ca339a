using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace EioSharp.StatsdFilter.EndToEnd;

/// <summary>Where the built proxy and the npm peers are (recorded at build time by the project file).</summary>
internal static class Paths
{
    public static string FilterDll => Metadata("StatsdFilterDll");

    public static string RepositoryRoot => Metadata("RepositoryRoot");

    public static string NodeModules => Path.Combine(RepositoryRoot, "tests", "npm", "node_modules");

    public static string NodeScript(string name) => Path.Combine(RepositoryRoot, "tests", "EioSharp.StatsdFilter.EndToEnd", "node", name);

    private static string Metadata(string key) =>
        typeof(Paths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;
}

/// <summary>The proxy as a child process (<c>dotnet EioSharp.StatsdFilter.dll ...</c>), stopped by process id: a <see cref="ServerProcess"/> of the shared test kit.</summary>
internal sealed partial class FilterProcess : IDisposable
{
    private readonly ServerProcess _server;

    private FilterProcess(ServerProcess server) => _server = server;

    public int UdpPort => _server.Port;

    public ServerProcess Process => _server;

    public string StandardOutput => _server.StandardOutput;

    public string StandardError => _server.StandardError;

    public bool HasExited => _server.HasExited;

    public static Task<FilterProcess> StartAsync(params string[] args) => StartAsync(null, args);

    /// <summary>Starts the proxy with <paramref name="environment"/> added to this process's environment (the seed's variables removed first).</summary>
    public static Task<FilterProcess> StartAsync(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        StartAsync(environment, null, args);

    /// <summary>Starts the proxy, optionally under an RLIMIT_NOFILE of <paramref name="fileDescriptorLimit"/>.</summary>
    public static Task<FilterProcess> StartAsync(IReadOnlyDictionary<string, string>? environment, int? fileDescriptorLimit, params string[] args)
    {
        ServerStartInfo info = StartInfo(environment, fileDescriptorLimit, args);
        return Task.Run(() =>
        {
            // With --listen-port 0 the kernel picks a free UDP port and the proxy listens on TCP on the same number, which
            // another process may hold (tests run in parallel): then start again, on another port.
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    return new FilterProcess(ServerProcess.Start(info));
                }
                catch (InvalidOperationException e) when (attempt < 5 && e.Message.Contains("Address already in use", StringComparison.Ordinal))
                {
                }
            }
        });
    }

    /// <summary>How to start the proxy (<see cref="StartAsync(IReadOnlyDictionary{string, string}?, int?, string[])"/>, without its retries).</summary>
    public static ServerStartInfo StartInfo(IReadOnlyDictionary<string, string>? environment, int? fileDescriptorLimit, params string[] args)
    {
        var variables = new Dictionary<string, string?>();
        foreach (string variable in new[] { "num_threads", "listen_port", "target_host", "target_port", "blocklist", "blocklist_syntax" })
        {
            variables[variable] = null;
        }

        foreach ((string variable, string value) in environment ?? new Dictionary<string, string>())
        {
            variables[variable] = value;
        }

        return new ServerStartInfo(Paths.FilterDll, args, ListeningLine())
        {
            Environment = variables,
            FileDescriptorLimit = fileDescriptorLimit,
        };
    }

    /// <summary>Sends SIGTERM and waits for the process to exit.</summary>
    /// <returns>The exit code.</returns>
    public Task<int> TerminateAsync(TimeSpan timeout) => _server.TerminateAsync(timeout);

    /// <summary>Waits for the process to exit on its own.</summary>
    /// <returns>The exit code.</returns>
    public Task<int> WaitForExitAsync(TimeSpan timeout) => _server.WaitForExitAsync(timeout);

    /// <summary>Parses the shutdown summary line into counter name → value.</summary>
    public Dictionary<string, long> Summary()
    {
        Match m = SummaryLine().Match(StandardOutput);
        Assert.True(m.Success, $"no summary line in:\n{StandardOutput}");
        return m.Groups[1].Value.Split(' ').Select(p => p.Split('='))
            .ToDictionary(p => p[0], p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Dispose() => _server.Dispose();

    [GeneratedRegex(@"listening on udp [^ ]*:(\d+)")]
    private static partial Regex ListeningLine();

    [GeneratedRegex(@"^statsd-filter: (received=.*)$", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}

/// <summary>A UDP socket standing in for the upstream StatsD server: records every datagram.</summary>
internal sealed class UdpCapture : IDisposable
{
    private readonly Socket _socket;
    private readonly ConcurrentQueue<string> _datagrams = new();
    private readonly ConcurrentQueue<(long Timestamp, string Line)> _arrivals = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public UdpCapture(int port = 0)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 4 << 20 };
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
        _loop = Task.Run(ReceiveLoopAsync);
    }

    public int Port { get; }

    public IReadOnlyList<string> Datagrams => [.. _datagrams];

    public List<string> Lines => [.. _datagrams.SelectMany(d => d.Split('\n'))];

    /// <summary>When (<see cref="Stopwatch.GetTimestamp"/>) the first copy of <paramref name="line"/> arrived, if it did.</summary>
    public long? ArrivalOf(string line)
    {
        foreach ((long timestamp, string arrived) in _arrivals)
        {
            if (arrived == line)
            {
                return timestamp;
            }
        }

        return null;
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                string datagram = Encoding.UTF8.GetString(buffer, 0, n);
                long now = Stopwatch.GetTimestamp();
                _datagrams.Enqueue(datagram);
                foreach (string line in datagram.Split('\n'))
                {
                    _arrivals.Enqueue((now, line));
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopped.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        _loop.Wait(5000);
        _stop.Dispose();
    }
}

/// <summary>Runs the hot-shots client script.</summary>
internal static class HotShots
{
    /// <summary>Sends the script's fixed set of messages to the proxy and returns the exact lines sent.</summary>
    public static async Task<List<string>> SendAsync(int port, string protocol, int maxBufferSize, string run)
    {
        Assert.True(Directory.Exists(Path.Combine(Paths.NodeModules, "hot-shots")),
            $"hot-shots is not installed in {Paths.NodeModules} (run scripts/setup.sh or npm install in tests/npm)");
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { Paths.NodeScript("hot-shots-send.js"), "127.0.0.1", port.ToString(System.Globalization.CultureInfo.InvariantCulture), protocol, maxBufferSize.ToString(System.Globalization.CultureInfo.InvariantCulture), run })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["NODE_PATH"] = Paths.NodeModules;
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the hot-shots script did not finish in 60 s");
        }

        Assert.True(process.ExitCode == 0, $"hot-shots script failed ({process.ExitCode}): {await stderr}");
        return JsonSerializer.Deserialize<List<string>>(await stdout)!;
    }
}
