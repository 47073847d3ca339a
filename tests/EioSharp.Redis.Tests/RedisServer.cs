using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Redis.Tests;

/// <summary>A real redis-server on 127.0.0.1 and a free port, in a temporary directory; restartable on the same port; stopped by pid.</summary>
public sealed class RedisServer : IDisposable
{
    private readonly string[] _extraArgs;
    private Process? _process;

    private RedisServer(int port, string[] extraArgs)
    {
        Port = port;
        _extraArgs = extraArgs;
        Dir = Path.Combine(Path.GetTempPath(), "eioredis-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Dir);
    }

    public int Port { get; }

    public string Dir { get; }

    public int Pid => _process?.Id ?? 0;

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    public static RedisServer Start(params string[] extraArgs) => StartOnFreePort(() => new RedisServer(FreePort(), extraArgs));

    private string[]? _sentinelConf;

    /// <summary>Starts a Redis Sentinel (redis-server --sentinel with a config file in its own directory).</summary>
    /// <param name="confLines">Config lines after port/bind/dir (e.g. <c>sentinel monitor m 127.0.0.1 6379 1</c>).</param>
    public static RedisServer StartSentinel(params string[] confLines) =>
        StartOnFreePort(() => new RedisServer(FreePort(), []) { _sentinelConf = confLines });

    /// <summary>Starts a server made by <paramref name="make"/> (a fresh free port each time), again on a new port if the
    /// process exited before it answered PING (ci67 saw "Connection refused" once in RedisClusterTests): the port is free
    /// when <see cref="FreePort"/> returns but another process (the CI runs the test projects side by side) can bind it, or
    /// its cluster bus port (the port + 10000), before redis-server does; and with <c>--cluster-enabled yes</c> redis-server
    /// refuses a port over 55535 (about a fifth of this machine's ephemeral range, 32768-60999) and exits. Up to ten
    /// attempts.</summary>
    private static RedisServer StartOnFreePort(Func<RedisServer> make)
    {
        for (int attempt = 1; ; attempt++)
        {
            var s = make();
            try
            {
                s.Run();
                return s;
            }
            catch (Exception e) when (attempt < 10 && e is SocketException or IOException && s._process is { HasExited: true })
            {
                s.Dispose();
            }
        }
    }

    private string WriteSentinelConf()
    {
        string file = Path.Combine(Dir, "sentinel.conf");
        File.WriteAllLines(file, [$"port {Port}", "bind 127.0.0.1", $"dir {Dir}", "protected-mode no", .. _sentinelConf!]);
        return file;
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Run()
    {
        var psi = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = _sentinelConf is not null
            ? [WriteSentinelConf(), "--sentinel"]
            : ["--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", Dir,
                "--save", "", "--appendonly", "no", "--protected-mode", "no", .. _extraArgs];
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi)!;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (Call("PING").StartsWith("+PONG", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (Exception e) when (e is SocketException or IOException && sw.Elapsed < TimeSpan.FromSeconds(15) && !_process.HasExited)
            {
            }

            Thread.Sleep(50);
        }
    }

    /// <summary>Sends one inline command on a fresh blocking socket and returns the raw first reply line(s) read within a short time.</summary>
    public string Call(params string[] args)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 5000 };
        s.Connect(EndPoint);
        var sb = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        s.Send(Encoding.UTF8.GetBytes(sb.ToString()));
        var buf = new byte[65536];
        int n = s.Receive(buf);
        if (n == 0)
        {
            throw new IOException("closed");
        }

        return Encoding.UTF8.GetString(buf, 0, n);
    }

    /// <summary>SIGKILL and wait (the crash case).</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (InvalidOperationException)
        {
        }

        _process?.Dispose();
        try
        {
            Directory.Delete(Dir, true);
        }
        catch (IOException)
        {
        }
    }
}
