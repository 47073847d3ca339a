using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using System.Text.RegularExpressions;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13, branch h55: the process directives (logfile, pidfile, tcp-backlog, unixsocket, unixsocketperm,
/// supervised, shutdown-on-sigint, shutdown-on-sigterm, shutdown-timeout) on redis-server 7.0.15 and EioSharp.Kv started
/// the same way: CONFIG GET/SET/REWRITE replies and files byte for byte, and what each directive does to the process.</summary>
[SupportedOSPlatform("linux")]
public sealed partial class ProcessDirectivesDiffTests
{
    private static readonly string[] Names =
        ["logfile", "pidfile", "tcp-backlog", "unixsocket", "unixsocketperm", "supervised", "shutdown-on-sigint", "shutdown-on-sigterm", "shutdown-timeout"];

    [Fact]
    public void Config_get_and_set_of_the_process_directives_match_redis_server()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start();
        var commands = new List<string[]>();
        foreach (string name in Names) commands.Add(["CONFIG", "GET", name]);
        commands.AddRange(
        [
            ["CONFIG", "GET", "shutdown-*"],
            ["CONFIG", "GET", "unixsocket*"],
            // Immutable: Redis's error whatever the value.
            ["CONFIG", "SET", "logfile", "/tmp/x.log"],
            ["CONFIG", "SET", "pidfile", ""],
            ["CONFIG", "SET", "tcp-backlog", "100"],
            ["CONFIG", "SET", "tcp-backlog", "abc"],
            ["CONFIG", "SET", "unixsocket", "/tmp/x.sock"],
            ["CONFIG", "SET", "unixsocketperm", "700"],
            ["CONFIG", "SET", "unixsocketperm", "999"],
            ["CONFIG", "SET", "supervised", "systemd"],
            ["CONFIG", "SET", "supervised", "bogus"],
            // The shutdown flags: a set of names, SAVE with NOSAVE refused, shown in Redis's order.
            ["CONFIG", "SET", "shutdown-on-sigint", "nosave"],
            ["CONFIG", "GET", "shutdown-on-sigint"],
            ["CONFIG", "SET", "shutdown-on-sigint", "force now NOSAVE"],
            ["CONFIG", "GET", "shutdown-on-sigint"],
            ["CONFIG", "SET", "shutdown-on-sigint", "now now"],
            ["CONFIG", "GET", "shutdown-on-sigint"],
            ["CONFIG", "SET", "shutdown-on-sigint", "default save"],
            ["CONFIG", "GET", "shutdown-on-sigint"],
            ["CONFIG", "SET", "shutdown-on-sigint", "save nosave"],
            ["CONFIG", "SET", "shutdown-on-sigint", "foo"],
            ["CONFIG", "SET", "shutdown-on-sigint", ""],
            ["CONFIG", "GET", "shutdown-on-sigint"],
            ["CONFIG", "SET", "shutdown-on-sigterm", "now force"],
            ["CONFIG", "GET", "shutdown-on-sigterm"],
            ["CONFIG", "SET", "shutdown-on-sigterm", "default"],
            ["CONFIG", "GET", "shutdown-on-sigterm"],
            ["CONFIG", "SET", "shutdown-on-sigterm", "nosave", "shutdown-on-sigint", "bad"], // atomic: neither changes
            ["CONFIG", "GET", "shutdown-on-sigterm"],
            ["CONFIG", "SET", "shutdown-timeout", "-1"],
            ["CONFIG", "SET", "shutdown-timeout", "abc"],
            ["CONFIG", "SET", "shutdown-timeout", "2147483648"],
            ["CONFIG", "SET", "shutdown-timeout", "0"],
            ["CONFIG", "GET", "shutdown-timeout"],
        ]);
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        var differences = new List<string>();
        foreach (string[] command in commands)
        {
            Resp expected = r.Call(command), actual = k.Call(command);
            if (command is ["CONFIG", "GET", _, ..]) (expected, actual) = (Pairs(expected), Pairs(actual));
            if (expected.ToString() != actual.ToString()) differences.Add($"{string.Join(' ', command)}: redis {expected} kv {actual}");
        }

        Assert.Empty(differences);
    }

    /// <summary>A CONFIG GET reply with its name/value pairs sorted by name (Redis's order is a hash order).</summary>
    private static Resp Pairs(Resp reply) => reply.Items is not { } items ? reply : reply with
    {
        Items = [.. items.Chunk(2).OrderBy(p => p[0].Text, StringComparer.Ordinal).SelectMany(p => p)],
    };

    [Fact]
    public void Start_time_errors_of_the_process_directives_match_redis_server()
    {
        // A log file that cannot be opened is fatal (exit 1) with Redis's text; so is an out-of-range or non-octal line.
        using var dir = new TempDir();
        foreach (string[] args in new[]
                 {
                     new[] { "--logfile", "/nonexistent-h55/dir/kv.log" },
                 })
        {
            Tools.Result redis = Tools.Run("redis-server", ["--port", RedisServerProcess.FreePort().ToString(CultureInfo.InvariantCulture), "--save", "", .. args]);
            var (code, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), args);
            Assert.Equal(1, redis.ExitCode);
            Assert.Equal(1, code);
            Assert.Contains("Can't open the log file: No such file or directory", redis.Output, StringComparison.Ordinal);
            Assert.Contains("Can't open the log file: No such file or directory", output, StringComparison.Ordinal);
        }

        // A Unix socket that cannot be opened: fatal, Redis's text.
        string[] unix = ["--unixsocket", "/nonexistent-h55/dir/kv.sock"];
        Tools.Result redisUnix = Tools.Run("redis-server", ["--port", RedisServerProcess.FreePort().ToString(CultureInfo.InvariantCulture), "--save", "", .. unix]);
        var (unixCode, unixOutput) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), unix);
        Assert.Equal(1, redisUnix.ExitCode);
        Assert.Equal(1, unixCode);
        Assert.Contains("Failed opening Unix socket: bind: No such file or directory", redisUnix.Output, StringComparison.Ordinal);
        Assert.Contains("Failed opening Unix socket: bind: No such file or directory", unixOutput, StringComparison.Ordinal);

        foreach (string line in new[] { "unixsocketperm 999", "unixsocketperm 1777", "tcp-backlog -1", "supervised bogus", "shutdown-on-sigterm \"save nosave\"", "shutdown-timeout x" })
        {
            string conf = Path.Combine(dir.Path, "bad.conf");
            File.WriteAllText(conf, "save \"\"\n" + line + "\n");
            Tools.Result redis = Tools.Run("redis-server", [conf, "--port", RedisServerProcess.FreePort().ToString(CultureInfo.InvariantCulture)]);
            var (code, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), conf);
            Assert.Equal(1, redis.ExitCode);
            Assert.Equal(1, code);
            string redisError = redis.Output.TrimEnd().Split('\n')[^1];
            Assert.True(output.TrimEnd().EndsWith(redisError, StringComparison.Ordinal), $"{line}: redis '{redisError}', kv:\n{output}");
        }
    }

    [Fact]
    public void Config_rewrite_writes_the_process_directives_as_redis_server()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string Prepare(TempDir d)
        {
            string conf = Path.Combine(d.Path, "kv.conf");
            File.WriteAllText(conf, $"# process\npidfile {d.Path}/server.pid\ntcp-backlog 100\nunixsocket {d.Path}/s.sock\nunixsocketperm 0700\n" +
                "supervised no\nshutdown-on-sigint nosave\nshutdown-timeout 3\n");
            return conf;
        }

        string redisConf = Prepare(redisDir), kvConf = Prepare(kvDir);
        using var redis = RedisServerProcess.StartWithConfig(redisConf);
        using var kv = KvServerProcess.StartIn(kvDir.DataDir, kvConf);
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        foreach (string[] command in new[]
                 {
                     new[] { "CONFIG", "GET", "unixsocketperm" }, ["CONFIG", "GET", "tcp-backlog"],
                     ["CONFIG", "SET", "shutdown-on-sigint", "force now", "shutdown-timeout", "7", "shutdown-on-sigterm", "save"],
                     ["CONFIG", "REWRITE"],
                 })
        {
            Assert.Equal(r.Call(command).ToString(), k.Call(command).ToString());
        }

        string Text(string conf, TempDir d) => File.ReadAllText(conf).Replace(d.Path, "<dir>", StringComparison.Ordinal);
        string redisText = Text(redisConf, redisDir), kvText = Text(kvConf, kvDir);
        Assert.Equal(redisText.Split("# Generated by CONFIG REWRITE")[0], kvText.Split("# Generated by CONFIG REWRITE")[0]);
        Assert.Contains("\nshutdown-on-sigterm save\n", redisText, StringComparison.Ordinal);
        Assert.Contains("\nshutdown-on-sigterm save\n", kvText, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^\S+\s+\d+\s+(\d+)\s", RegexOptions.Multiline)]
    private static partial Regex SendQueue();

    /// <summary>The backlog of the socket listening on <paramref name="port"/>: <c>ss -ltn</c>'s Send-Q column.</summary>
    private static int Backlog(int port)
    {
        Tools.Result ss = Tools.Run("ss", ["-ltnH", $"sport = :{port}"]);
        Match m = SendQueue().Match(ss.Stdout);
        Assert.True(m.Success, ss.Output);
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Tcp_backlog_is_the_listen_backlog_as_in_redis_server()
    {
        using var redis = RedisServerProcess.Start("--tcp-backlog", "77");
        using var kv = KvServerProcess.Start("--tcp-backlog", "77");
        Assert.Equal(77, Backlog(redis.Port));
        Assert.Equal(77, Backlog(kv.Port));
        using var kvDefault = KvServerProcess.Start();
        int somaxconn = int.Parse(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim(), CultureInfo.InvariantCulture);
        Assert.Equal(Math.Min(511, somaxconn), Backlog(kvDefault.Port));

        // Above net.core.somaxconn the kernel caps the backlog: Redis's warning, and the cap, in both.
        string over = (somaxconn + 1).ToString(CultureInfo.InvariantCulture);
        using var kvOver = KvServerProcess.Start("--tcp-backlog", over);
        Assert.Equal(somaxconn, Backlog(kvOver.Port));
        string warning = $"WARNING: The TCP backlog setting of {over} cannot be enforced because /proc/sys/net/core/somaxconn is set to the lower value of {somaxconn}.";
        Assert.Contains(warning, kvOver.Log, StringComparison.Ordinal);
        Tools.Result redisOver = Tools.Run("timeout", ["3", "redis-server", "--port", RedisServerProcess.FreePort().ToString(CultureInfo.InvariantCulture), "--save", "", "--tcp-backlog", over]);
        Assert.Contains(warning, redisOver.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Pidfile_is_written_at_start_and_removed_at_shutdown_and_sigterm()
    {
        using var dir = new TempDir();
        string pidFile = Path.Combine(dir.Path, "kv.pid");
        using (var kv = KvServerProcess.Start("--pidfile", pidFile))
        {
            Assert.Equal($"{kv.Pid}\n", File.ReadAllText(pidFile));
            Assert.Equal("OK", Tools.Cli(kv.Port, "CONFIG", "SET", "save", "").Trim());
            Tools.Cli(kv.Port, "SHUTDOWN");
            int? kvExit = kv.WaitForExit(TimeSpan.FromSeconds(20));
            Assert.True(kvExit == 0, $"EioSharp.Kv exit code {kvExit?.ToString(CultureInfo.InvariantCulture) ?? "none (still running after 20 s)"}. Its log:\n{kv.Log}");
            Assert.False(File.Exists(pidFile), "SHUTDOWN left the pid file");
        }

        using (var kv = KvServerProcess.Start("--pidfile", pidFile))
        {
            Assert.Equal($"{kv.Pid}\n", File.ReadAllText(pidFile));
            Assert.Equal(0, kv.Terminate());
            Assert.False(File.Exists(pidFile), "SIGTERM left the pid file");
        }

        // As redis-server, killed (no clean shutdown): the file stays.
        using (var kv = KvServerProcess.Start("--pidfile", pidFile))
        {
            kv.Kill();
            Assert.True(File.Exists(pidFile));
        }

        using var redisDir = new TempDir();
        string redisPid = Path.Combine(redisDir.Path, "r.pid");
        using var redis = RedisServerProcess.Start("--pidfile", redisPid);
        Assert.Equal($"{redis.Pid}\n", File.ReadAllText(redisPid));
    }

    [Fact]
    public void Logfile_receives_the_log_lines_appended_and_nothing_goes_to_standard_output()
    {
        using var dir = new TempDir();
        string logFile = Path.Combine(dir.Path, "kv.log");
        File.WriteAllText(logFile, "earlier line\n");
        for (int run = 1; run <= 2; run++)
        {
            int port = RedisServerProcess.FreePort();
            var psi = KvStartInfo(["--port", port.ToString(CultureInfo.InvariantCulture), "--dir", dir.DataDir, "--logfile", logFile]);
            using var process = Process.Start(psi)!;
            using var signals = ChildSignals.Open(process);
            var stdout = new StringBuilder();
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                Assert.True(Poll.Until(() => File.ReadAllText(logFile).Split("EioSharp.Kv ready").Length == run + 1, TimeSpan.FromSeconds(30)),
                    File.ReadAllText(logFile) + stdout);
                Assert.Equal("PONG", Tools.Cli(port, "PING").Trim());
                using (var c = new RespConnection(port))
                {
                    Assert.Equal($"*[$\"logfile\", $\"{logFile}\"]", c.Call("CONFIG", "GET", "logfile").ToString());
                }

                Tools.Cli(port, "SHUTDOWN");
                Assert.True(process.WaitForExit(20_000));
                process.WaitForExit();
                Assert.Equal(0, process.ExitCode);
            }
            finally
            {
                signals.TrySend(9); // SIGKILL if it still runs
            }

            string text = File.ReadAllText(logFile);
            Assert.StartsWith("earlier line\n", text, StringComparison.Ordinal); // appended, as Redis's fopen(logfile, "a")
            Assert.Matches(new Regex($@"^{process.Id}:M \d\d \w{{3}} \d{{4}} \d\d:\d\d:\d\d\.\d{{3}} \* User requested shutdown\.\.\.$", RegexOptions.Multiline), text);
            Assert.Contains("EioSharp.Kv stopped", text, StringComparison.Ordinal);
            Assert.Equal("", stdout.ToString()); // as redis-server with a logfile: nothing on standard output
        }
    }

    private static ProcessStartInfo KvStartInfo(IEnumerable<string> args)
    {
        string server = KvServerProcess.ServerDll;
        var psi = server.EndsWith(".dll", StringComparison.Ordinal)
            ? new ProcessStartInfo("dotnet") { ArgumentList = { server } }
            : new ProcessStartInfo(server);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        foreach (string a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    [GeneratedRegex(@" (addr=\S+ laddr=\S+) .* (flags=\S+) ")]
    private static partial Regex UnixClientFields();

    [Fact]
    public void Unixsocket_serves_redis_cli_with_its_permissions_and_client_list_fields_as_redis_server()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string redisSock = Path.Combine(redisDir.Path, "s.sock"), kvSock = Path.Combine(kvDir.Path, "s.sock");
        var redis = RedisServerProcess.Start("--unixsocket", redisSock, "--unixsocketperm", "700");
        // Bound to every address, protected mode on and no password: a Unix socket client is local, as in Redis.
        using var kv = KvServerProcess.StartBound("0.0.0.0", "--unixsocket", kvSock, "--unixsocketperm", "700", "--protected-mode", "yes");
        try
        {
            Assert.Equal(File.GetUnixFileMode(redisSock), File.GetUnixFileMode(kvSock));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(kvSock));
            foreach (var (sock, dirPath) in new[] { (redisSock, redisDir.Path), (kvSock, kvDir.Path) })
            {
                Assert.Equal("PONG", Tools.Run("redis-cli", ["-s", sock, "PING"]).Stdout.Trim());
            }

            string Fields(string sock, string dirPath)
            {
                string line = Tools.Run("redis-cli", ["-s", sock, "CLIENT", "LIST"]).Stdout.Trim();
                Match m = UnixClientFields().Match(line);
                Assert.True(m.Success, line);
                return (m.Groups[1].Value + " " + m.Groups[2].Value).Replace(dirPath, "<dir>", StringComparison.Ordinal);
            }

            Assert.Equal("addr=<dir>/s.sock:0 laddr=<dir>/s.sock:0 flags=U", Fields(redisSock, redisDir.Path));
            Assert.Equal(Fields(redisSock, redisDir.Path), Fields(kvSock, kvDir.Path));
            string Get(string sock, string dirPath) => string.Join('\n', // name/value pairs sorted by name (Redis's order is a hash order)
                Tools.Run("redis-cli", ["-s", sock, "CONFIG", "GET", "unixsocket*"]).Stdout.Replace(dirPath, "<dir>", StringComparison.Ordinal)
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries).Chunk(2).Select(p => string.Join(' ', p)).Order(StringComparer.Ordinal));
            Assert.Equal(Get(redisSock, redisDir.Path), Get(kvSock, kvDir.Path));

            // SHUTDOWN removes the socket file, as Redis.
            Tools.Run("redis-cli", ["-s", redisSock, "SHUTDOWN", "NOSAVE"]);
            Tools.Run("redis-cli", ["-s", kvSock, "SHUTDOWN", "NOSAVE"]);
            Assert.NotNull(redis.WaitForExit(TimeSpan.FromSeconds(20)));
            int? kvExit = kv.WaitForExit(TimeSpan.FromSeconds(20));
            Assert.True(kvExit == 0, $"EioSharp.Kv exit code {kvExit?.ToString(CultureInfo.InvariantCulture) ?? "none (still running after 20 s)"}. Its log:\n{kv.Log}");
            Assert.False(File.Exists(redisSock));
            Assert.False(File.Exists(kvSock));
        }
        finally
        {
            redis.Dispose();
        }
    }

    /// <summary>A test-side NOTIFY_SOCKET: a Unix datagram socket bound to a path, collecting what the server sends.</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

        public NotifySocket(string path)
        {
            Path = path;
            _socket.Bind(new UnixDomainSocketEndPoint(path));
            _socket.ReceiveTimeout = 20_000;
        }

        public string Path { get; }

        /// <summary>The next datagram's text (throws after 20 s without one).</summary>
        public string Receive()
        {
            var buffer = new byte[4096];
            int n = _socket.Receive(buffer);
            return Encoding.ASCII.GetString(buffer, 0, n);
        }

        /// <summary>Whether a datagram is waiting.</summary>
        public bool HasData => _socket.Available > 0;

        public void Dispose() => _socket.Dispose();
    }

    [Fact]
    public void Supervised_systemd_notifies_loading_ready_and_stopping_as_redis_server()
    {
        using var dir = new TempDir();
        var seen = new Dictionary<string, List<string>>();
        foreach (string server in new[] { "redis", "kv" })
        {
            using var notify = new NotifySocket(Path.Combine(dir.Path, server + ".notify"));
            var env = new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path };
            var messages = new List<string>();
            if (server == "redis")
            {
                using var redis = RedisServerProcess.StartWithEnvironment(env, "--supervised", "systemd");
                messages.Add(notify.Receive());
                messages.Add(notify.Receive());
                messages.Add(notify.Receive());
                Tools.Cli(redis.Port, "SHUTDOWN", "NOSAVE");
                messages.Add(notify.Receive());
            }
            else
            {
                using var kv = KvServerProcess.StartWithEnvironment(env, "--supervised", "systemd");
                messages.Add(notify.Receive());
                messages.Add(notify.Receive());
                messages.Add(notify.Receive());
                Assert.True(kv.WaitForLog("Supervised by systemd", TimeSpan.FromSeconds(5)), kv.Log);
                Tools.Cli(kv.Port, "SHUTDOWN", "NOSAVE");
                messages.Add(notify.Receive());
            }

            seen[server] = messages;
        }

        Assert.Equal(["STATUS=Redis is loading...\n", "STATUS=Ready to accept connections\n", "READY=1\n", "STOPPING=1\n"], seen["redis"]);
        Assert.Equal(seen["redis"], seen["kv"]);

        // Not supervised (the default, or auto without NOTIFY_SOCKET): nothing is sent.
        using var quiet = new NotifySocket(Path.Combine(dir.Path, "quiet.notify"));
        using (var kv = KvServerProcess.StartWithEnvironment(new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = quiet.Path }))
        {
            Assert.Equal("PONG", Tools.Cli(kv.Port, "PING").Trim());
            Tools.Cli(kv.Port, "SHUTDOWN", "NOSAVE");
            int? kvExit = kv.WaitForExit(TimeSpan.FromSeconds(20));
            Assert.True(kvExit == 0, $"EioSharp.Kv exit code {kvExit?.ToString(CultureInfo.InvariantCulture) ?? "none (still running after 20 s)"}. Its log:\n{kv.Log}");
        }

        Assert.False(quiet.HasData, "supervised no sent a notification");
    }

    /// <summary>The state letter of /proc/PID/stat (R, S, T for stopped...).</summary>
    private static char ProcessState(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    [Fact]
    public void Supervised_upstart_stops_itself_at_start_until_continued_as_redis_server()
    {
        using var dir = new TempDir();
        foreach (string server in new[] { "redis", "kv" })
        {
            int port = RedisServerProcess.FreePort();
            string[] args = ["--port", port.ToString(CultureInfo.InvariantCulture), "--supervised", "upstart", "--save", ""];
            ProcessStartInfo psi = server == "redis"
                ? new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false }
                : KvStartInfo(["--dir", dir.DataDir]);
            foreach (string a in args) psi.ArgumentList.Add(a);
            psi.Environment["UPSTART_JOB"] = "kv-test";
            using var process = Process.Start(psi)!;
            using var signals = ChildSignals.Open(process); // SIGCONT reaches this child or nobody (never a reused PID)
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                Assert.True(Poll.Until(() => ProcessState(process.Id) == 'T', TimeSpan.FromSeconds(30)), $"{server} did not stop itself");
                signals.Send(18); // SIGCONT
                Assert.True(Poll.Until(() =>
                {
                    try
                    {
                        return Tools.Cli(port, "PING").Trim() == "PONG";
                    }
                    catch (Exception e) when (e is IOException or InvalidOperationException)
                    {
                        return false;
                    }
                }, TimeSpan.FromSeconds(30)), $"{server} does not answer after SIGCONT");
                Tools.Cli(port, "SHUTDOWN", "NOSAVE");
                Assert.True(process.WaitForExit(20_000));
            }
            finally
            {
                signals.TrySend(9); // SIGKILL if it still runs
            }
        }
    }

    [Fact]
    public void Shutdown_on_sigterm_and_sigint_apply_their_flags_as_redis_server()
    {
        // (signal, extra arguments, whether dump.rdb must exist after the signal)
        var cases = new (int Signal, string[] Args, bool Saved)[]
        {
            (15, ["--save", "3600 1"], true), // default: save points set, so the final save runs
            (15, ["--save", "3600 1", "--shutdown-on-sigterm", "nosave"], false),
            (2, ["--save", "3600 1", "--shutdown-on-sigint", "nosave now"], false),
            (2, ["--save", "", "--shutdown-on-sigint", "save"], true), // no save points, but the flag saves
            (15, ["--save", ""], false),
        };
        var failures = new List<string>();
        foreach (var (signal, args, saved) in cases)
        {
            using var redis = RedisServerProcess.Start(args);
            // redis-server's pidfd, opened while it runs (it just answered PING): the signal reaches it or nobody.
            using var redisSignals = ChildSignals.Open(redis.Pid, () => redis.HasExited);
            using var kv = KvServerProcess.Start(["--appendonly", "no", .. args]);
            Assert.Equal("OK", Tools.Cli(redis.Port, "SET", "k", "v").Trim());
            Assert.Equal("OK", Tools.Cli(kv.Port, "SET", "k", "v").Trim());
            redisSignals.Send(signal);
            kv.Process.Signal(signal);
            Assert.NotNull(redis.WaitForExit(TimeSpan.FromSeconds(20)));
            int? kvExit = kv.WaitForExit(TimeSpan.FromSeconds(20));
            Assert.True(kvExit == 0, $"signal {signal} {string.Join(' ', args)}: EioSharp.Kv exit code {kvExit?.ToString(CultureInfo.InvariantCulture) ?? "none (still running after 20 s)"}. Its log:\n{kv.Log}");
            bool redisSaved = File.Exists(Path.Combine(redis.Dir, "dump.rdb")), kvSaved = File.Exists(Path.Combine(kv.DataDir, "dump.rdb"));
            if (redisSaved != saved || kvSaved != saved)
            {
                failures.Add($"signal {signal} {string.Join(' ', args)}: expected saved={saved}, redis {redisSaved}, kv {kvSaved}");
            }
        }

        Assert.Empty(failures);
    }
}
