using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace EioSharp.TestKit;

/// <summary>How to start a server as a child process.</summary>
/// <param name="Dll">The app's assembly, run with <c>dotnet</c> (see <see cref="BuiltApp.Dll"/>); a path not ending in
/// <c>.dll</c> is a native executable (a NativeAOT publication) and runs by itself.</param>
/// <param name="Arguments">The command-line arguments.</param>
/// <param name="ReadyLine">Matches the line (stdout or stderr) the server prints once it listens; group 1 is the port.</param>
public sealed record ServerStartInfo(string Dll, IReadOnlyList<string> Arguments, Regex ReadyLine)
{
    /// <summary>Variables to set (a <see langword="null"/> value removes the variable) on top of this process's environment.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>If set, the server runs under <c>prlimit --nofile=N:N</c> (RLIMIT_NOFILE, soft and hard).</summary>
    public int? FileDescriptorLimit { get; init; }

    /// <summary>How long to wait for <see cref="ReadyLine"/>.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>A server started as a child process on loopback, its output captured, signalled through a pidfd.</summary>
/// <remarks>The server is asked to listen on port 0 by its arguments and prints the port it got, so ports never collide
/// between tests running at the same time. <see cref="Dispose"/> kills it if it still runs. Every signal goes through
/// <see cref="ChildSignals"/> (a pidfd opened right after the start): once the server has exited and been reaped, a
/// signal reaches nobody, never a process that got its id since (session 25, h155).</remarks>
public sealed class ServerProcess : IDisposable
{
    private const int SigKill = 9;
    private const int SigTerm = 15;
    private readonly Process _process;
    private readonly List<string> _log = [];
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly Regex _readyLine;
    private readonly TaskCompletionSource<int> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ChildSignals _signals;
    private bool _disposed;

    private ServerProcess(ServerStartInfo info)
    {
        if (!File.Exists(info.Dll))
        {
            throw new FileNotFoundException($"The server is not built at {info.Dll}.", info.Dll);
        }

        _readyLine = info.ReadyLine;
        bool native = !info.Dll.EndsWith(".dll", StringComparison.Ordinal);
        string program = native ? info.Dll : "dotnet";
        var start = new ProcessStartInfo(info.FileDescriptorLimit is null ? program : "prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (info.FileDescriptorLimit is int limit)
        {
            // prlimit sets the limit and execs the command: the server keeps prlimit's process id.
            start.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"--nofile={limit}:{limit}"));
            start.ArgumentList.Add("--");
            start.ArgumentList.Add(program);
        }

        if (!native)
        {
            start.ArgumentList.Add(info.Dll);
        }

        foreach (string argument in info.Arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach ((string name, string? value) in info.Environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, _stdout);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, _stderr);
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException("The server exited before it was ready."));
        _process.Start();
        _signals = ChildSignals.Open(_process);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The port the server printed in its ready line.</summary>
    public int Port { get; private set; }

    /// <summary>The server's process id.</summary>
    public int Pid => _process.Id;

    /// <summary>Whether the server has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Standard output and standard error, interleaved as received, one line per line.</summary>
    public string Log => Join(_log);

    /// <summary>Standard output so far.</summary>
    public string StandardOutput => Join(_stdout);

    /// <summary>Standard error so far.</summary>
    public string StandardError => Join(_stderr);

    /// <summary>Starts the server and waits until it prints its ready line.</summary>
    /// <param name="info">What to start.</param>
    /// <returns>The running server, with <see cref="Port"/> set.</returns>
    /// <exception cref="InvalidOperationException">The server exited or printed no ready line in time; the message has its output.</exception>
    public static ServerProcess Start(ServerStartInfo info)
    {
        var server = new ServerProcess(info);
        try
        {
            if (!server._ready.Task.Wait(info.ReadyTimeout))
            {
                throw new TimeoutException($"The server printed no ready line within {info.ReadyTimeout}.");
            }

            server.Port = server._ready.Task.Result;
            return server;
        }
        catch (Exception e) when (e is AggregateException or TimeoutException)
        {
            // Process.WaitForExit(timeout) returns at the exit without waiting for the redirected output to be read (only
            // WaitForExit() and WaitForExitAsync wait for it): under load the server's last line, its reason to exit, was
            // then missing from the message, and a caller that retries on it ("Address already in use": the StatsD
            // end-to-end tests) failed instead (3 of 60 starts at load 23; the likely cause of ci48's lost failure).
            if (server._process.WaitForExit(5000))
            {
                server.WaitForOutputEnd(TimeSpan.FromSeconds(30));
            }

            string log = server.Log;
            server.Dispose();
            throw new InvalidOperationException($"{(e as AggregateException)?.InnerException?.Message ?? e.Message} Output:\n{log}", e);
        }
    }

    /// <summary>Starts a server that is expected to exit by itself; waits for the exit.</summary>
    /// <param name="info">What to start (its ready line is not awaited).</param>
    /// <param name="timeout">How long to wait for the exit.</param>
    /// <returns>The exit code and the interleaved output.</returns>
    /// <exception cref="TimeoutException">The server still ran after <paramref name="timeout"/> (it is then killed).</exception>
    public static (int ExitCode, string Output) RunToExit(ServerStartInfo info, TimeSpan timeout)
    {
        using var server = new ServerProcess(info);
        if (!server._process.WaitForExit(timeout))
        {
            throw new TimeoutException($"The server did not exit within {timeout}. Output:\n{server.Log}");
        }

        server._process.WaitForExit(); // drains the output
        return (server._process.ExitCode, server.Log);
    }

    /// <summary>Polls the output for <paramref name="text"/>.</summary>
    /// <param name="text">What to look for (ordinal).</param>
    /// <param name="timeout">How long to poll.</param>
    /// <returns>Whether the output contains it.</returns>
    public bool WaitForLog(string text, TimeSpan timeout) => Poll.Until(() => Log.Contains(text, StringComparison.Ordinal), timeout);

    /// <summary>Waits for the server to exit by itself.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The exit code, or <see langword="null"/> if it still runs.</returns>
    public int? WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return null;
        }

        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM to the server (if it still runs) and waits for it to exit.</summary>
    /// <param name="timeout">How long to wait; default 30 seconds.</param>
    /// <returns>The exit code.</returns>
    /// <exception cref="TimeoutException">The server still ran after <paramref name="timeout"/>.</exception>
    public int Terminate(TimeSpan? timeout = null)
    {
        _ = _signals.TrySend(SigTerm);

        TimeSpan wait = timeout ?? TimeSpan.FromSeconds(30);
        if (!_process.WaitForExit(wait))
        {
            throw new TimeoutException($"The server did not exit within {wait} of SIGTERM. Output:\n{Log}");
        }

        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM and waits for the exit without blocking a thread.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The exit code.</returns>
    /// <exception cref="TimeoutException">The server still ran after <paramref name="timeout"/>.</exception>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        _ = _signals.TrySend(SigTerm);

        return await WaitForExitAsync(timeout);
    }

    /// <summary>Waits for the exit without blocking a thread.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The exit code.</returns>
    /// <exception cref="TimeoutException">The server still ran after <paramref name="timeout"/>.</exception>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The server did not exit within {timeout}.\nOutput:\n{Log}");
        }

        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>After the exit, waits up to <paramref name="timeout"/> for standard output and error to be read to their end
    /// (WaitForExitAsync waits for both; a descendant that inherited them could hold them open).</summary>
    private void WaitForOutputEnd(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            _process.WaitForExitAsync(cts.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            // The output is still open: the message has what was read.
        }
    }

    /// <summary>SIGKILL to the server if it still runs (the crash case), and wait for it to go.</summary>
    public void Kill()
    {
        if (_signals.TrySend(SigKill))
        {
            _process.WaitForExit(10_000);
        }
    }

    /// <summary>Sends <paramref name="signal"/> (a Linux signal number, e.g. 10 for SIGUSR1) to the server.</summary>
    /// <param name="signal">The signal number.</param>
    /// <exception cref="InvalidOperationException">The server has exited and been reaped (the signal reached nobody), or
    /// the system call failed.</exception>
    public void Signal(int signal) => _signals.Send(signal);

    /// <summary>The number of file descriptors the server has open (<c>/proc/PID/fd</c>).</summary>
    /// <returns>The count.</returns>
    public int OpenFileDescriptors() => Directory.GetFileSystemEntries($"/proc/{_process.Id}/fd").Length;

    /// <summary>Resident set size of the server process in KiB (/proc/&lt;pid&gt;/status VmRSS).</summary>
    /// <returns>The size.</returns>
    public long VmRssKb()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("no VmRSS");
    }

    /// <summary>Kills the server if it still runs.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            // SIGKILL through the pidfd (no server the kit starts has children of its own: prlimit execs the server);
            // without pidfds, Process.Kill of the whole tree after its own exit check, as before.
            if (_signals.UsesPidfd ? _signals.TrySend(SigKill) : !_process.HasExited)
            {
                if (!_signals.UsesPidfd)
                {
                    _process.Kill(entireProcessTree: true);
                }

                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }

        _signals.Dispose();
        _process.Dispose();
    }

    private static string Join(List<string> lines)
    {
        lock (lines)
        {
            return string.Join('\n', lines);
        }
    }

    private void OnLine(string? line, List<string> stream)
    {
        if (line is null)
        {
            return;
        }

        lock (stream)
        {
            stream.Add(line);
        }

        lock (_log)
        {
            _log.Add(line);
        }

        Match m = _readyLine.Match(line);
        if (m.Success)
        {
            _ready.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
    }
}

/// <summary>Where the repository's built apps are.</summary>
public static class BuiltApp
{
    private static readonly Lazy<string> Root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "EioSharp.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"No EioSharp.slnx above {AppContext.BaseDirectory}.");
    });

    /// <summary>The repository root (the folder of <c>EioSharp.slnx</c>).</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>The build configuration of the kit, and so of the apps the tests start.</summary>
    public static string Configuration => typeof(BuiltApp).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "Configuration")?.Value ?? "Debug";

    /// <summary>The assembly of the app <c>apps/NAME</c> in the kit's configuration.</summary>
    /// <param name="name">The project name, e.g. <c>EioSharp.Kv</c>.</param>
    /// <returns>The full path (which may not exist if the app is not built).</returns>
    public static string Dll(string name) => Path.Combine(RepositoryRoot, "apps", name, "bin", Configuration, "net10.0", name + ".dll");
}
