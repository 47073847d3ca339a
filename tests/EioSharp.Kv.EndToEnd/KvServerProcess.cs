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

    /// <summary>See <see cref="AofFiles.CheckPath"/>: the manifest once the server wrote one, else the pre-7 single file.</summary>
    public string AofPath => AofFiles.CheckPath(DataDir);

    /// <summary>See <see cref="AofFiles.Text"/>.</summary>
    public string AofText => AofFiles.Text(DataDir);

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

/// <summary>The append-only file of a data directory as the server writes it: redis 7's multi-part layout
/// (<c>appendonlydir/</c> with <c>appendonly.aof.manifest</c>, a base and incremental files). The one place where tests
/// find, read or break it.</summary>
public static class AofFiles
{
    public const string DirName = "appendonlydir";

    public const string FileName = "appendonly.aof";

    public static string Dir(string dataDir) => Path.Combine(dataDir, DirName);

    public static string Manifest(string dataDir) => Path.Combine(Dir(dataDir), FileName + ".manifest");

    /// <summary>A pre-7 single AOF in the data directory (what tests craft by hand; the server moves it into the directory).</summary>
    public static string Legacy(string dataDir) => Path.Combine(dataDir, FileName);

    /// <summary>Whether there is any AOF: a manifest, or a single pre-7 file.</summary>
    public static bool Exists(string dataDir) => File.Exists(Manifest(dataDir)) || File.Exists(Legacy(dataDir));

    /// <summary>The manifest's lines as (file name, type letter), in file order.</summary>
    public static List<(string Name, char Type)> Listed(string dataDir)
    {
        var list = new List<(string, char)>();
        foreach (string line in File.ReadAllLines(Manifest(dataDir)))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 6 && f[0] == "file")
            {
                list.Add((f[1], f[5][0]));
            }
        }

        return list;
    }

    /// <summary>The paths of the base and incremental files, in load order.</summary>
    public static string[] Parts(string dataDir) =>
        Listed(dataDir).Where(l => l.Type == 'b').Concat(Listed(dataDir).Where(l => l.Type == 'i'))
            .Select(l => Path.Combine(Dir(dataDir), l.Name)).ToArray();

    /// <summary>The file being appended to (the last incremental file).</summary>
    public static string LastPart(string dataDir) => Parts(dataDir)[^1];

    /// <summary>The last incremental file with any bytes in it: the file a killed server was appending to, or, when a
    /// rewrite had just opened a new incremental file and nothing reached it yet (0 bytes), the one before it, whose
    /// reserved zeros the next start cuts too (§210). The last part when every incremental file is empty.</summary>
    public static string LastWrittenPart(string dataDir) =>
        Listed(dataDir).Where(l => l.Type == 'i').Select(l => Path.Combine(Dir(dataDir), l.Name))
            .LastOrDefault(p => new FileInfo(p).Length > 0) ?? LastPart(dataDir);

    /// <summary>The base file.</summary>
    public static string BasePart(string dataDir) => Path.Combine(Dir(dataDir), Listed(dataDir).Single(l => l.Type == 'b').Name);

    /// <summary>The manifest when the server has written one (redis-check-aof checks every file it names), else the pre-7 file.</summary>
    public static string CheckPath(string dataDir) => File.Exists(Manifest(dataDir)) ? Manifest(dataDir) : Legacy(dataDir);

    /// <summary>The length of <paramref name="path"/> without the zero bytes at its end: a live server's incremental file
    /// is appended through a mapped tail and ends in the zeros reserved ahead (session 28); this is its logical length.</summary>
    public static long CommandBytes(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return bytes.AsSpan().LastIndexOfAnyExcept((byte)0) + 1;
    }

    /// <summary>The base and incremental files concatenated, as Latin-1 text (an RDB base shows its strings raw).</summary>
    public static string Text(string dataDir) => System.Text.Encoding.Latin1.GetString(Bytes(dataDir));

    /// <summary>The base and incremental files concatenated (the pre-7 file when there is no manifest).</summary>
    public static byte[] Bytes(string dataDir) => File.Exists(Manifest(dataDir))
        ? Parts(dataDir).SelectMany(File.ReadAllBytes).ToArray()
        : File.ReadAllBytes(Legacy(dataDir));
}

/// <summary>The real EioSharp.Kv server, started as a child process on 127.0.0.1 and a free port (a <see cref="ServerProcess"/> of the shared test kit).</summary>
public sealed partial class KvServerProcess : IDisposable
{
    private readonly ServerProcess _server;
    private readonly TempDir? _ownedDir;

    private KvServerProcess(string dataDir, TempDir? ownedDir, ServerProcess server)
    {
        DataDir = dataDir;
        _ownedDir = ownedDir;
        _server = server;
    }

    /// <summary>Path of EioSharp.Kv.dll: apps/EioSharp.Kv/bin/&lt;this configuration&gt;/net10.0 under the repository root,
    /// or the native executable named by <c>EIOSHARP_KV_BINARY</c> (a NativeAOT publication, scripts/publish-kv-aot.sh)
    /// when that variable is set.</summary>
    public static string ServerDll => Environment.GetEnvironmentVariable("EIOSHARP_KV_BINARY") is { Length: > 0 } binary
        ? Path.GetFullPath(binary)
        : BuiltApp.Dll("EioSharp.Kv");

    public string DataDir { get; }

    /// <summary>See <see cref="AofFiles.CheckPath"/>.</summary>
    public string AofPath => AofFiles.CheckPath(DataDir);

    /// <summary>See <see cref="AofFiles.Text"/>.</summary>
    public string AofText => AofFiles.Text(DataDir);

    public int Port => _server.Port;

    public int Pid => _server.Pid;

    public bool HasExited => _server.HasExited;

    public string Log => _server.Log;

    public ServerProcess Process => _server;

    /// <summary>Starts a server in a fresh temporary directory (deleted on dispose) and waits until it listens.</summary>
    public static KvServerProcess Start(params string[] extraArgs) => StartLimited(null, extraArgs);

    /// <summary>Starts a server in a fresh temporary directory under an optional RLIMIT_NOFILE and waits until it listens.</summary>
    public static KvServerProcess StartLimited(int? fileDescriptorLimit, params string[] extraArgs)
    {
        var dir = new TempDir();
        try
        {
            return new KvServerProcess(dir.DataDir, dir, ServerProcess.Start(Info(dir.DataDir, extraArgs) with { FileDescriptorLimit = fileDescriptorLimit }));
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Starts a server in a fresh temporary directory listening on <paramref name="bind"/> (e.g. 0.0.0.0, for
    /// protected mode; clients still connect through 127.0.0.1 or another local address).</summary>
    public static KvServerProcess StartBound(string bind, params string[] extraArgs)
    {
        var dir = new TempDir();
        try
        {
            return new KvServerProcess(dir.DataDir, dir, ServerProcess.Start(Info(dir.DataDir, extraArgs, bind)));
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Starts a server in a fresh temporary directory with these environment variables added (NOTIFY_SOCKET...)
    /// and waits until it listens.</summary>
    public static KvServerProcess StartWithEnvironment(IReadOnlyDictionary<string, string?> environment, params string[] extraArgs)
    {
        var dir = new TempDir();
        try
        {
            return new KvServerProcess(dir.DataDir, dir, ServerProcess.Start(Info(dir.DataDir, extraArgs) with { Environment = environment }));
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Starts a server on <paramref name="dataDir"/> (kept on dispose) and waits until it listens.</summary>
    public static KvServerProcess StartIn(string dataDir, params string[] extraArgs) =>
        new(dataDir, null, ServerProcess.Start(Info(dataDir, extraArgs)));

    /// <summary>Starts a server on <paramref name="dataDir"/> (kept on dispose) with these environment variables added and
    /// waits until it listens.</summary>
    public static KvServerProcess StartIn(string dataDir, IReadOnlyDictionary<string, string?> environment, params string[] extraArgs) =>
        new(dataDir, null, ServerProcess.Start(Info(dataDir, extraArgs) with { Environment = environment }));

    /// <summary>Starts a server on <paramref name="dataDir"/> whose AOF replay is delayed by <paramref name="loadDelay"/>
    /// (EIOSHARP_KV_TEST_LOAD_DELAY_MS) and returns as soon as it listens, while it is still loading.</summary>
    public static KvServerProcess StartLoading(string dataDir, TimeSpan loadDelay, params string[] extraArgs) =>
        new(dataDir, null, ServerProcess.Start(Info(dataDir, extraArgs) with
        {
            ReadyLine = LoadingLine(),
            Environment = new Dictionary<string, string?> { ["EIOSHARP_KV_TEST_LOAD_DELAY_MS"] = ((int)loadDelay.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) },
        }));

    /// <summary>Starts a server on <paramref name="dataDir"/> whose every AOF rewrite waits <paramref name="rewriteDelay"/>
    /// before writing (EIOSHARP_KV_TEST_REWRITE_DELAY_MS: a test kills it during the rewrite) and waits until it listens.</summary>
    public static KvServerProcess StartWithRewriteDelay(string dataDir, TimeSpan rewriteDelay, params string[] extraArgs) =>
        new(dataDir, null, ServerProcess.Start(Info(dataDir, extraArgs) with
        {
            Environment = new Dictionary<string, string?> { ["EIOSHARP_KV_TEST_REWRITE_DELAY_MS"] = ((int)rewriteDelay.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) },
        }));

    /// <summary>Starts a server that is expected to fail; waits for its exit and returns the exit code and the output.</summary>
    public static (int ExitCode, string Output) RunExpectingExit(string dataDir, TimeSpan timeout, params string[] extraArgs) =>
        ServerProcess.RunToExit(Info(dataDir, extraArgs), timeout);

    /// <summary>The backend every server of this run is started on (<c>--backend</c>), from <c>EIOSHARP_KV_BACKEND</c>
    /// (scripts/test.sh runs a subset once per backend this way); null: the server's default (auto).</summary>
    public static string? RequestedBackend => Environment.GetEnvironmentVariable("EIOSHARP_KV_BACKEND") is { Length: > 0 } b ? b : null;

    private static ServerStartInfo Info(string dataDir, IEnumerable<string> extraArgs, string bind = "127.0.0.1")
    {
        string[] args = [.. extraArgs];
        string[] backend = RequestedBackend is { } b && !args.Contains("--backend") ? ["--backend", b] : [];
        return new(ServerDll, ["--port", "0", "--bind", bind, "--dir", dataDir, .. backend, .. args], ReadyLine())
        {
            ReadyTimeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>True once the log has a line containing <paramref name="text"/> (polls until <paramref name="timeout"/>).</summary>
    public bool WaitForLog(string text, TimeSpan timeout) => _server.WaitForLog(text, timeout);

    /// <summary>Waits for the server to exit by itself; returns the exit code, or null if it still runs after <paramref name="timeout"/>.</summary>
    public int? WaitForExit(TimeSpan timeout) => _server.WaitForExit(timeout);

    /// <summary>SIGKILL: the crash case.</summary>
    public void Kill() => _server.Kill();

    /// <summary>SIGTERM and wait for exit; returns the exit code.</summary>
    public int Terminate(TimeSpan? timeout = null) => _server.Terminate(timeout ?? TimeSpan.FromSeconds(20));

    /// <summary>Resident set size of the server process in KiB (/proc/&lt;pid&gt;/status VmRSS).</summary>
    public long VmRssKb() => _server.VmRssKb();

    /// <summary>Peak resident set size of the server process so far in KiB (/proc/&lt;pid&gt;/status VmHWM).</summary>
    public long VmHwmKb()
    {
        foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("no VmHWM in /proc status");
    }

    public void Dispose()
    {
        _server.Dispose();
        _ownedDir?.Dispose();
    }

    [GeneratedRegex(@"EioSharp\.Kv ready: listening on (?:127\.0\.0\.1|0\.0\.0\.0):(\d+)")]
    private static partial Regex ReadyLine();

    [GeneratedRegex(@"\(listening on 127\.0\.0\.1:(\d+); commands get -LOADING")]
    private static partial Regex LoadingLine();
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

    public static byte[] Resp(params string[] args) => EioSharp.TestKit.RespCommand.Encode(args);
}
