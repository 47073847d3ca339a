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

/// <summary>Polls for a condition instead of sleeping a fixed time (the machine may be loaded).</summary>
internal static class Poll
{
    public static async Task<bool> UntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                return condition();
            }

            await Task.Delay(20);
        }

        return true;
    }
}

/// <summary>The proxy as a child process (<c>dotnet EioSharp.StatsdFilter.dll ...</c>), stopped by process id.</summary>
internal sealed partial class FilterProcess : IDisposable
{
    private const int SigTerm = 15;
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private FilterProcess(Process process) => _process = process;

    public int UdpPort { get; private set; }

    public string StandardOutput
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static Task<FilterProcess> StartAsync(params string[] args) => StartAsync(null, args);

    /// <summary>Starts the proxy with <paramref name="environment"/> added to a clean copy of this process's environment (the seed's variables removed first).</summary>
    public static async Task<FilterProcess> StartAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        Assert.True(File.Exists(Paths.FilterDll), $"the proxy is not built at {Paths.FilterDll}");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Paths.FilterDll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (string variable in new[] { "num_threads", "listen_port", "target_host", "target_port", "blocklist", "blocklist_syntax" })
        {
            start.Environment.Remove(variable);
        }

        foreach ((string variable, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[variable] = value;
        }

        var process = new Process { StartInfo = start };
        var filter = new FilterProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            lock (filter._stdout)
            {
                filter._stdout.Append(e.Data).Append('\n');
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (filter._stderr)
            {
                filter._stderr.Append(e.Data).Append('\n');
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            bool started = await Poll.UntilAsync(
                () => ListeningLine().IsMatch(filter.StandardOutput) || process.HasExited, TimeSpan.FromSeconds(60));
            Match m = ListeningLine().Match(filter.StandardOutput);
            Assert.True(started && m.Success, $"the proxy did not start.\nstdout:\n{filter.StandardOutput}\nstderr:\n{filter.StandardError}");
            filter.UdpPort = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            return filter;
        }
        catch
        {
            filter.Dispose();
            throw;
        }
    }

    /// <summary>Sends SIGTERM and waits for the process to exit.</summary>
    /// <returns>The exit code.</returns>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        Assert.Equal(0, Kill(_process.Id, SigTerm));
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the proxy did not exit within {timeout} of SIGTERM.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}");
        }

        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the process to exit on its own.</summary>
    /// <returns>The exit code.</returns>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the proxy did not exit within {timeout}.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}");
        }

        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    /// <summary>Parses the shutdown summary line into counter name → value.</summary>
    public Dictionary<string, long> Summary()
    {
        Match m = SummaryLine().Match(StandardOutput);
        Assert.True(m.Success, $"no summary line in:\n{StandardOutput}");
        return m.Groups[1].Value.Split(' ').Select(p => p.Split('='))
            .ToDictionary(p => p[0], p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }

        _process.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

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
