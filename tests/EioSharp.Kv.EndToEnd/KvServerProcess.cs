using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace EioSharp.Kv.EndToEnd;

/// <summary>A temporary directory, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "eiokv-e2e-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string DataDir => System.IO.Path.Combine(Path, "data");

    public string AofPath => System.IO.Path.Combine(DataDir, "appendonly.aof");

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The real EioSharp.Kv server, started as a child process on 127.0.0.1 and a free port.</summary>
public sealed partial class KvServerProcess : IDisposable
{
    private static readonly Lazy<string> s_serverDll = new(LocateServerDll);
    private readonly Process _process;
    private readonly List<string> _log = [];
    private readonly TempDir? _ownedDir;
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private KvServerProcess(string dataDir, TempDir? ownedDir, IEnumerable<string> extraArgs)
    {
        DataDir = dataDir;
        _ownedDir = ownedDir;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(ServerDll);
        foreach (string a in new[] { "--port", "0", "--bind", "127.0.0.1", "--dir", dataDir }.Concat(extraArgs))
        {
            psi.ArgumentList.Add(a);
        }

        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException("The server exited before it was ready."));
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Path of EioSharp.Kv.dll: apps/EioSharp.Kv/bin/&lt;this configuration&gt;/net10.0 under the repository root.</summary>
    public static string ServerDll => s_serverDll.Value;

    public string DataDir { get; }

    public string AofPath => Path.Combine(DataDir, "appendonly.aof");

    public int Port { get; private set; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log);
            }
        }
    }

    /// <summary>Starts a server in a fresh temporary directory (deleted on dispose) and waits until it listens.</summary>
    public static KvServerProcess Start(params string[] extraArgs)
    {
        var dir = new TempDir();
        return StartAndWait(new KvServerProcess(dir.DataDir, dir, extraArgs));
    }

    /// <summary>Starts a server on <paramref name="dataDir"/> (kept on dispose) and waits until it listens.</summary>
    public static KvServerProcess StartIn(string dataDir, params string[] extraArgs) =>
        StartAndWait(new KvServerProcess(dataDir, null, extraArgs));

    /// <summary>Starts a server that is expected to fail; waits for its exit and returns the exit code and the output.</summary>
    public static (int ExitCode, string Output) RunExpectingExit(string dataDir, TimeSpan timeout, params string[] extraArgs)
    {
        using var server = new KvServerProcess(dataDir, null, extraArgs);
        if (!server._process.WaitForExit(timeout))
        {
            throw new TimeoutException($"The server did not exit within {timeout}. Output:\n{server.Log}");
        }

        server._process.WaitForExit(); // drains the output
        return (server._process.ExitCode, server.Log);
    }

    private static KvServerProcess StartAndWait(KvServerProcess server)
    {
        try
        {
            if (!server._ready.Task.Wait(TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException($"The server printed no ready line within 30 s. Output:\n{server.Log}");
            }

            server.Port = server._ready.Task.Result;
            return server;
        }
        catch (AggregateException e)
        {
            server._process.WaitForExit(5000);
            string log = server.Log;
            server.Dispose();
            throw new InvalidOperationException($"{e.InnerException?.Message} Output:\n{log}", e);
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Add(line);
        }

        var m = ReadyLine().Match(line);
        if (m.Success)
        {
            _ready.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>True once the log has a line containing <paramref name="text"/> (polls until <paramref name="timeout"/>).</summary>
    public bool WaitForLog(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            if (Log.Contains(text, StringComparison.Ordinal))
            {
                return true;
            }

            Thread.Sleep(50);
        }

        return Log.Contains(text, StringComparison.Ordinal);
    }

    /// <summary>Waits for the server to exit by itself; returns the exit code, or null if it still runs after <paramref name="timeout"/>.</summary>
    public int? WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return null;
        }

        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the crash case.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _ = SysKill(_process.Id, 9);
            _process.WaitForExit(10_000);
        }
    }

    /// <summary>SIGTERM and wait for exit; returns the exit code.</summary>
    public int Terminate(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            _ = SysKill(_process.Id, 15);
        }

        if (!_process.WaitForExit(timeout ?? TimeSpan.FromSeconds(20)))
        {
            throw new TimeoutException($"The server did not exit after SIGTERM. Output:\n{Log}");
        }

        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>Resident set size of the server process in KiB (/proc/&lt;pid&gt;/status VmRSS).</summary>
    public long VmRssKb()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("no VmRSS");
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
        }

        _process.Dispose();
        _ownedDir?.Dispose();
    }

    private static string LocateServerDll()
    {
        string configuration = typeof(KvServerProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "Configuration")?.Value ?? "Debug";
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "EioSharp.slnx")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            throw new InvalidOperationException($"No EioSharp.slnx above {AppContext.BaseDirectory}.");
        }

        string dll = Path.Combine(dir.FullName, "apps", "EioSharp.Kv", "bin", configuration, "net10.0", "EioSharp.Kv.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build apps/EioSharp.Kv ({configuration}) first.", dll);
    }

    [GeneratedRegex(@"EioSharp\.Kv ready: listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ReadyLine();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);
}

/// <summary>Runs external tools (redis-cli, redis-benchmark, redis-check-aof).</summary>
public static class Tools
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
    }

    public static Result Run(string exe, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} {string.Join(' ', args)} did not finish.");
        }

        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>redis-cli with typed output (<c>--no-raw</c>): <c>"v"</c>, <c>(integer) 1</c>, <c>(nil)</c>, <c>(error) ERR ...</c>.</summary>
    public static string Cli(int port, params string[] args) => Cli(port, [], args);

    public static string Cli(int port, string[] options, params string[] args)
    {
        var r = Run("redis-cli", ["-h", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--no-raw", .. options, .. args]);
        return r.Stdout.TrimEnd('\n').Replace("\r", "", StringComparison.Ordinal);
    }

    /// <summary>redis-check-aof on a file: exit code and output.</summary>
    public static Result CheckAof(string path) => Run("redis-check-aof", [path]);

    public static byte[] Resp(params string[] args)
    {
        var sb = new StringBuilder();
        sb.Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
