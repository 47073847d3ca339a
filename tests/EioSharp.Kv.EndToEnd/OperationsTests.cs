using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13, operations: the configuration file, CONFIG GET/SET/REWRITE against redis-server's replies, settings that
/// take effect at run time, and the operator commands (SHUTDOWN, MONITOR, CLIENT, SLOWLOG...), on real server processes.</summary>
public sealed class OperationsTests
{
    private static Resp Call(int port, params string[] args)
    {
        using var c = new RespConnection(port, 10_000);
        return c.Call(args);
    }

    [Fact]
    public void Config_file_with_include_and_quoting_sets_directives_and_flags_override_it()
    {
        using var dir = new TempDir();
        string extra = Path.Combine(dir.Path, "extra.conf");
        File.WriteAllText(extra, "timeout 7\n");
        string conf = Path.Combine(dir.Path, "kv.conf");
        File.WriteAllText(conf, $"# a comment\nrequirepass \"s3cret pass\\x21\"\nmaxmemory 100mb\nmaxmemory-policy allkeys-lru\n" +
                                $"hash-max-ziplist-entries 100\nsave 3600 1 300 100\ninclude {extra}\n");
        using var server = KvServerProcess.StartIn(dir.DataDir, conf, "--maxmemory", "2mb");
        using var c = new RespConnection(server.Port);
        Assert.StartsWith("NOAUTH", c.Call("GET", "k").Text);
        Assert.Equal("OK", c.Call("AUTH", "s3cret pass!").Text);
        Assert.Equal("*[$\"maxmemory\", $\"2097152\"]", c.Call("CONFIG", "GET", "maxmemory").ToString()); // the flag wins
        Assert.Equal("*[$\"maxmemory-policy\", $\"allkeys-lru\"]", c.Call("CONFIG", "GET", "maxmemory-policy").ToString());
        Assert.Equal("*[$\"timeout\", $\"7\"]", c.Call("CONFIG", "GET", "timeout").ToString()); // from the included file
        Assert.Equal("*[$\"hash-max-listpack-entries\", $\"100\"]", c.Call("CONFIG", "GET", "hash-max-listpack-entries").ToString()); // alias
        Assert.Equal("*[$\"save\", $\"3600 1 300 100\"]", c.Call("CONFIG", "GET", "save").ToString());
        // The password came from the file: it is not on the command line (ps).
        string cmdline = File.ReadAllText($"/proc/{server.Pid}/cmdline");
        Assert.DoesNotContain("s3cret", cmdline, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_config_file_line_is_fatal_with_redis_message()
    {
        using var dir = new TempDir();
        string conf = Path.Combine(dir.Path, "kv.conf");
        File.WriteAllText(conf, "port 0\nmaxmemory lots\n");
        var (code, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), conf);
        Assert.Equal(1, code);
        Assert.Contains("FATAL CONFIG FILE ERROR", output, StringComparison.Ordinal);
        Assert.Contains("at line 2", output, StringComparison.Ordinal);
        Assert.Contains("argument must be a memory value", output, StringComparison.Ordinal);
    }

    /// <summary>Runs redis-server with <paramref name="args"/> until it exits; its exit code and output.</summary>
    private static (int ExitCode, string Output) RunRedisToExit(params string[] args)
    {
        var psi = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill();
            throw new TimeoutException("redis-server did not exit");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The configuration file is read through the library (env.Fs) before the server's run: a missing file, or a
    /// missing included file, is fatal with Redis's text (config.c: "Fatal error, can't open config file '...': strerror"),
    /// exit 1, as redis-server 7.0.15 says it; a relative include (and a relative config path) is relative to the working
    /// directory, as in Redis.</summary>
    [Fact]
    public void A_missing_config_file_or_include_is_fatal_with_redis_text_and_relative_includes_work()
    {
        using var dir = new TempDir();
        string missing = Path.Combine(dir.Path, "missing.conf");
        string withMissingInclude = Path.Combine(dir.Path, "inc.conf");
        File.WriteAllText(withMissingInclude, $"timeout 3\ninclude {Path.Combine(dir.Path, "nope.conf")}\n");
        foreach (string conf in new[] { missing, withMissingInclude })
        {
            string what = conf == missing ? missing : Path.Combine(dir.Path, "nope.conf");
            string text = $"Fatal error, can't open config file '{what}': No such file or directory";
            var (redisCode, redisOutput) = RunRedisToExit(conf, "--port", "0");
            Assert.Equal(1, redisCode);
            Assert.Contains(text, redisOutput, StringComparison.Ordinal);
            var (code, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), conf);
            Assert.Equal(1, code);
            Assert.Contains(text, output, StringComparison.Ordinal);
        }

        // Relative to the working directory (the test's, which the server inherits): the file and what it includes.
        File.WriteAllText(Path.Combine(dir.Path, "extra.conf"), "timeout 11\nhz 15\n");
        string main = Path.Combine(dir.Path, "main.conf");
        File.WriteAllText(main, $"include {Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(dir.Path, "extra.conf"))}\nmaxmemory 3mb\n");
        using var server = KvServerProcess.StartIn(dir.DataDir, Path.GetRelativePath(Environment.CurrentDirectory, main), "--hz", "12");
        using var c = new RespConnection(server.Port);
        Assert.Equal("*[$\"timeout\", $\"11\"]", c.Call("CONFIG", "GET", "timeout").ToString());
        Assert.Equal("*[$\"maxmemory\", $\"3145728\"]", c.Call("CONFIG", "GET", "maxmemory").ToString());
        Assert.Equal("*[$\"hz\", $\"12\"]", c.Call("CONFIG", "GET", "hz").ToString()); // the flag wins
    }

    [Fact]
    public void Config_set_and_get_replies_match_redis_server()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start();
        string[][] commands =
        [
            ["CONFIG", "SET", "nosuch", "1"],
            ["CONFIG", "SET", "daemonize", "no"],
            ["CONFIG", "SET", "dir", "/tmp"],
            ["CONFIG", "SET", "maxmemory", "abc"],
            ["CONFIG", "SET", "maxmemory", "-1"],
            ["CONFIG", "SET", "maxmemory", "2MB"],
            ["CONFIG", "GET", "maxmemory"],
            ["CONFIG", "SET", "maxclients", "abc"],
            ["CONFIG", "SET", "maxclients", "0"],
            ["CONFIG", "SET", "appendfsync", "bad"],
            ["CONFIG", "SET", "maxmemory-policy", "bad"],
            ["CONFIG", "SET", "maxmemory-policy", "ALLKEYS-LFU"],
            ["CONFIG", "GET", "maxmemory-policy"],
            ["CONFIG", "SET", "timeout", "-1"],
            ["CONFIG", "SET", "timeout", " 5"],
            ["CONFIG", "SET", "hz", "0"],
            ["CONFIG", "GET", "hz"],
            ["CONFIG", "SET", "hz", "1000"],
            ["CONFIG", "GET", "hz"],
            ["CONFIG", "SET", "hz", "-5"],
            ["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"],
            ["CONFIG", "SET", "maxmemory", "10mb", "timeout", "x"], // atomic: maxmemory keeps its value
            ["CONFIG", "GET", "maxmemory"],
            ["CONFIG", "SET", "maxmemory", "10mb", "nosuch", "x"],
            ["CONFIG", "SET", "slowlog-log-slower-than", "-5"],
            ["CONFIG", "SET", "slowlog-max-len", "-1"],
            ["CONFIG", "SET", "latency-monitor-threshold", "-1"],
            ["CONFIG", "SET", "latency-monitor-threshold", "100"],
            ["CONFIG", "GET", "latency-monitor-threshold"],
            ["CONFIG", "SET", "notify-keyspace-events", "Q"],
            ["CONFIG", "SET", "notify-keyspace-events", "KEA"],
            ["CONFIG", "GET", "notify-keyspace-events"],
            ["CONFIG", "SET", "notify-keyspace-events", ""],
            ["CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"],
            ["CONFIG", "SET", "client-output-buffer-limit", "bogus 1 2 3"],
            ["CONFIG", "SET", "client-output-buffer-limit", "normal x 0 0"],
            ["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 2mb 3"],
            ["CONFIG", "GET", "client-output-buffer-limit"],
            ["CONFIG", "SET", "proto-max-bulk-len", "10"],
            ["CONFIG", "SET", "proto-max-bulk-len", "2mb"],
            ["CONFIG", "GET", "proto-max-bulk-len"],
            ["CONFIG", "SET", "hash-max-listpack-entries", "-1"],
            ["CONFIG", "SET", "hash-max-ziplist-entries", "64"],
            ["CONFIG", "GET", "hash-max-listpack-entries"],
            ["CONFIG", "SET", "hash-max-listpack-entries", "1", "hash-max-ziplist-entries", "2"],
            ["CONFIG", "SET", "zset-max-listpack-value", "-1"],
            ["CONFIG", "SET", "set-max-intset-entries", "-1"],
            ["CONFIG", "SET", "list-max-listpack-size", "-6"],
            ["CONFIG", "SET", "maxmemory-samples", "0"],
            ["CONFIG", "SET", "tcp-keepalive", "-1"],
            ["CONFIG", "SET", "tcp-keepalive", "60"],
            ["CONFIG", "GET", "tcp-keepalive"],
            ["CONFIG", "SET", "appendonly", "maybe"],
            ["CONFIG", "SET", "save", "x 1"],
            ["CONFIG", "SET", "save", "100 1 50"],
            ["CONFIG", "SET", "save", "3600 1 300 100"],
            ["CONFIG", "GET", "save"],
            ["CONFIG", "SET", "enable-debug-command", "yes"],
            ["CONFIG", "GET", "nosuch*"],
            ["CONFIG", "GET", "maxmemory", "timeout"],
            ["CONFIG", "GET"],
            ["CONFIG", "SET", "maxmemory"],
            ["CONFIG", "RESETSTAT"],
            ["COMMAND", "GETKEYS", "GET", "k"],
            ["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
            ["COMMAND", "GETKEYS", "DEL", "a", "b", "c"],
            ["COMMAND", "GETKEYS", "EVAL", "return 1", "2", "x", "y", "arg"],
            ["COMMAND", "GETKEYS", "ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"],
            ["COMMAND", "GETKEYS", "XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
            ["COMMAND", "GETKEYS", "LMPOP", "2", "l1", "l2", "LEFT"],
            ["COMMAND", "GETKEYS", "PING"],
            ["COMMAND", "GETKEYS", "NOSUCH", "x"],
            ["COMMAND", "GETKEYS", "GET"],
            ["COMMAND", "GETKEYS"],
            ["CONFIG", "REWRITE"], // both run without a config file
        ];
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        var differences = new List<string>();
        foreach (string[] command in commands)
        {
            Resp expected = r.Call(command), actual = k.Call(command);
            if (command is ["CONFIG", "GET", _, _, ..]) (expected, actual) = (expected.Sorted(), actual.Sorted()); // Redis's order is a hash order
            if (expected.ToString() != actual.ToString()) differences.Add($"{string.Join(' ', command)}: redis {expected} kv {actual}");
        }
        Assert.Empty(differences);
    }

    [Fact]
    public void Config_get_star_lists_every_directive_with_its_value()
    {
        using var kv = KvServerProcess.Start("--maxmemory", "3mb");
        Resp all = Call(kv.Port, "CONFIG", "GET", "*");
        var map = new Dictionary<string, string?>();
        for (int i = 0; i < all.Items!.Count; i += 2) map[all.Items[i].Text!] = all.Items[i + 1].Text;
        foreach (string name in new[] { "maxmemory", "maxmemory-policy", "appendfsync", "appendonly", "requirepass", "maxclients", "timeout",
                     "tcp-keepalive", "notify-keyspace-events", "slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold",
                     "client-output-buffer-limit", "proto-max-bulk-len", "hash-max-listpack-entries", "zset-max-listpack-value", "hz", "save" })
        {
            Assert.True(map.ContainsKey(name), name);
        }
        Assert.Equal("3145728", map["maxmemory"]);
        Assert.Equal("noeviction", map["maxmemory-policy"]);
    }

    [Fact]
    public void Config_rewrite_keeps_comments_rewrites_in_place_and_round_trips()
    {
        using var dir = new TempDir();
        string conf = Path.Combine(dir.Path, "kv.conf");
        File.WriteAllText(conf, "# top comment\nmaxmemory 100mb\n\n\n# about timeouts\ntimeout 10\ntimeout 20\nhz 10\n");
        using (var server = KvServerProcess.StartIn(dir.DataDir, conf))
        {
            using var c = new RespConnection(server.Port);
            Assert.Equal("OK", c.Call("CONFIG", "SET", "maxmemory", "1gb", "slowlog-max-len", "64", "hz", "10").Text);
            Assert.Equal("OK", c.Call("CONFIG", "REWRITE").Text);
            Assert.Equal(0, server.Terminate());
        }
        string text = File.ReadAllText(conf);
        string[] lines = text.Split('\n');
        Assert.Equal("# top comment", lines[0]);
        Assert.Equal("maxmemory 1gb", lines[1]); // in place, Redis's byte units
        Assert.Equal("", lines[2]); // the blank lines collapsed into one
        Assert.Equal("# about timeouts", lines[3]);
        Assert.Equal("timeout 20", lines[4]); // the first timeout line takes the value in force, the second is removed
        Assert.Equal("hz 10", lines[6]); // still in the file: rewritten even though it is the default
        Assert.Contains("# Generated by CONFIG REWRITE\n", text, StringComparison.Ordinal);
        Assert.Contains("\nslowlog-max-len 64\n", text, StringComparison.Ordinal);
        using var again = KvServerProcess.StartIn(dir.DataDir, conf);
        Assert.Equal("*[$\"maxmemory\", $\"1073741824\"]", Call(again.Port, "CONFIG", "GET", "maxmemory").ToString());
        Assert.Equal("*[$\"slowlog-max-len\", $\"64\"]", Call(again.Port, "CONFIG", "GET", "slowlog-max-len").ToString());
    }

    [Fact]
    public void Live_settings_take_effect_timeout_requirepass_maxclients_appendfsync()
    {
        using var kv = KvServerProcess.Start();
        using var admin = new RespConnection(kv.Port);

        // appendfsync: under always, every write is fsynced before its reply.
        Assert.Equal("OK", admin.Call("CONFIG", "SET", "appendfsync", "always").Text);
        long Fsyncs() => long.Parse(admin.Call("INFO", "persistence").Text!.Split("aof_fsyncs:")[1].Split('\r')[0], System.Globalization.CultureInfo.InvariantCulture);
        long before = Fsyncs();
        for (int i = 0; i < 5; i++) admin.Call("SET", "k" + i, "v");
        Thread.Sleep(400); // INFO's aof_fsyncs is refreshed by the 10 Hz cron
        Assert.True(Fsyncs() >= before + 5, $"fsyncs {before} -> {Fsyncs()}");
        Assert.Contains("aof_fsync_policy:always\r\n", admin.Call("INFO", "persistence").Text, StringComparison.Ordinal);

        // timeout: an idle client is closed; the admin keeps talking so stays open.
        Assert.Equal("OK", admin.Call("CONFIG", "SET", "timeout", "1").Text);
        using var idle = new RespConnection(kv.Port);
        Assert.Equal("PONG", idle.Call("PING").Text);
        var sw = Stopwatch.StartNew();
        bool closed = false;
        while (sw.Elapsed < TimeSpan.FromSeconds(10) && !closed)
        {
            Thread.Sleep(200);
            admin.Call("PING");
            closed = !admin.Call("CLIENT", "LIST").Text!.Contains("cmd=ping", StringComparison.Ordinal) || ClientCount(admin) == 1;
        }
        Assert.True(closed, "the idle client was not closed");
        Assert.ThrowsAny<Exception>(() => idle.Call("PING"));
        Assert.Equal("OK", admin.Call("CONFIG", "SET", "timeout", "0").Text);

        // maxclients: over it a new client is refused with Redis's error.
        Assert.Equal("OK", admin.Call("CONFIG", "SET", "maxclients", "1").Text);
        using (var extra = new RespConnection(kv.Port))
        {
            Assert.Equal("ERR max number of clients reached", extra.Read().Text);
        }
        Assert.Equal("OK", admin.Call("CONFIG", "SET", "maxclients", "100").Text);

        // requirepass: new connections must authenticate; the existing one stays authenticated.
        Assert.Equal("OK", admin.Call("CONFIG", "SET", "requirepass", "pw").Text);
        using var fresh = new RespConnection(kv.Port);
        Assert.StartsWith("NOAUTH", fresh.Call("GET", "k0").Text);
        Assert.Equal("OK", fresh.Call("AUTH", "pw").Text);
        Assert.Equal("v", fresh.Call("GET", "k0").Text);
        Assert.Equal("v", admin.Call("GET", "k0").Text);
    }

    private static int ClientCount(RespConnection c) => c.Call("CLIENT", "LIST").Text!.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

    [Fact]
    public void Shutdown_fsyncs_and_exits_zero()
    {
        using var dir = new TempDir();
        var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "no");
        try
        {
            using (var c = new RespConnection(server.Port))
            {
                Assert.Equal("OK", c.Call("SET", "durable", "yes").Text);
                Assert.StartsWith("ERR syntax error", c.Call("SHUTDOWN", "NOSAVE", "SAVE").Text);
                Assert.Equal("ERR No shutdown in progress.", c.Call("SHUTDOWN", "ABORT").Text);
                c.Send(Tools.Resp("SHUTDOWN", "NOSAVE", "NOW"));
                Assert.ThrowsAny<Exception>(() => c.Read()); // no reply: the connection closes with the server
            }
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
        }
        finally
        {
            server.Dispose();
        }
        Assert.Contains("durable", AofFiles.Text(dir.DataDir), StringComparison.Ordinal);
    }

    [Fact]
    public void Monitor_sees_other_clients_commands_in_redis_format()
    {
        using var kv = KvServerProcess.Start();
        using var monitor = new RespConnection(kv.Port);
        Assert.Equal("OK", monitor.Call("MONITOR").Text);
        using var other = new RespConnection(kv.Port);
        other.Call("SELECT", "2");
        other.Call("SET", "key with space", "v\n\"q\"");
        other.Call("CONFIG", "GET", "maxmemory"); // admin command: not shown
        other.Call("GET", "x");
        string select = monitor.Read().Text!, set = monitor.Read().Text!, get = monitor.Read().Text!;
        Assert.Matches(@"^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] ""SELECT"" ""2""$", select);
        Assert.Matches(@"^\d+\.\d{6} \[2 127\.0\.0\.1:\d+\] ""SET"" ""key with space"" ""v\\n\\""q\\""""$", set);
        Assert.Matches(@"^\d+\.\d{6} \[2 127\.0\.0\.1:\d+\] ""GET"" ""x""$", get);
    }

    [Fact]
    public void Client_list_kill_reply_and_pause()
    {
        using var kv = KvServerProcess.Start();
        using var a = new RespConnection(kv.Port);
        using var b = new RespConnection(kv.Port);
        Assert.Equal("OK", b.Call("CLIENT", "SETNAME", "victim").Text);
        long bId = long.Parse(b.Call("CLIENT", "ID").Text!, System.Globalization.CultureInfo.InvariantCulture);
        string list = a.Call("CLIENT", "LIST").Text!;
        Assert.Matches(@"id=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=-?\d+ name=victim age=\d+ idle=\d+ flags=N db=0 .* cmd=client\|id user=default", list);
        Assert.Contains("cmd=client|info", a.Call("CLIENT", "INFO").Text, StringComparison.Ordinal);

        // CLIENT REPLY OFF / SKIP / ON: replies really are not sent.
        a.Send(Tools.Resp("CLIENT", "REPLY", "OFF"));
        a.Send(Tools.Resp("SET", "r1", "1"));
        a.Send(Tools.Resp("CLIENT", "REPLY", "SKIP"));
        a.Send(Tools.Resp("CLIENT", "REPLY", "ON"));
        Assert.Equal("OK", a.Read().Text); // the first reply after OFF is ON's
        a.Send(Tools.Resp("CLIENT", "REPLY", "SKIP"));
        a.Send(Tools.Resp("GET", "r1"));
        a.Send(Tools.Resp("ECHO", "after"));
        Assert.Equal("after", a.Read().Text);

        Assert.Equal("ERR client-id should be greater than 0", a.Call("CLIENT", "KILL", "ID", "x").Text);
        Assert.Equal(":0", a.Call("CLIENT", "KILL", "ID", "999999").ToString());
        Assert.Equal(":1", a.Call("CLIENT", "KILL", "ID", bId.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToString());
        Assert.ThrowsAny<Exception>(() => b.Call("PING"));
        Assert.Equal(":0", a.Call("CLIENT", "KILL", "USER", "default").ToString()); // SKIPME yes by default: only a is left

        // CLIENT PAUSE WRITE: reads go on, a write waits until the pause ends.
        using var w = new RespConnection(kv.Port);
        Assert.Equal("OK", a.Call("CLIENT", "PAUSE", "600", "WRITE").Text);
        Assert.Equal("1", w.Call("GET", "r1").Text);
        var sw = Stopwatch.StartNew();
        Assert.Equal("OK", w.Call("SET", "r2", "2").Text);
        Assert.True(sw.ElapsedMilliseconds >= 300, $"the write waited {sw.ElapsedMilliseconds} ms");
        Assert.Equal("ERR timeout is negative", a.Call("CLIENT", "PAUSE", "-1").Text);
        Assert.Equal("OK", a.Call("CLIENT", "UNPAUSE").Text);
    }

    [Fact]
    public void Slowlog_latency_info_sections_time_role_lastsave_bgrewriteaof()
    {
        using var kv = KvServerProcess.Start();
        using var c = new RespConnection(kv.Port);
        Assert.Equal("OK", c.Call("CONFIG", "SET", "slowlog-log-slower-than", "0").Text);
        c.Call("SET", "slow", new string('x', 200));
        Resp log = c.Call("SLOWLOG", "GET", "1");
        Assert.Single(log.Items!);
        Resp entry = log.Items![0];
        Assert.Equal(6, entry.Items!.Count);
        Assert.Equal("SET", entry.Items[3].Items![0].Text);
        Assert.Equal(new string('x', 128) + "... (72 more bytes)", entry.Items[3].Items![2].Text);
        Assert.True(long.Parse(c.Call("SLOWLOG", "LEN").ToString()[1..], System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Equal("OK", c.Call("SLOWLOG", "RESET").Text);

        Assert.Equal("OK", c.Call("CONFIG", "SET", "latency-monitor-threshold", "1").Text);
        c.Call("EVAL", "local i = 0 while i < 3000000 do i = i + 1 end return i", "0"); // well over 1 ms
        Resp latest = c.Call("LATENCY", "LATEST");
        Assert.Equal("command", latest.Items![0].Items![0].Text);
        Assert.True(long.Parse(latest.Items[0].Items![3].ToString()[1..], System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.NotEmpty(c.Call("LATENCY", "HISTORY", "command").Items!);
        Assert.Equal(":1", c.Call("LATENCY", "RESET").ToString());

        string info = c.Call("INFO", "everything").Text!;
        foreach (string field in new[] { "# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Replication", "role:master",
                     "connected_slaves:0", "# CPU", "used_cpu_user:", "# Commandstats", "cmdstat_set:calls=", "# Errorstats", "# Latencystats",
                     "latency_percentiles_usec_set:p50=", "# Keyspace", "db0:keys=1", "aof_last_bgrewrite_status:ok", "aof_last_write_status:ok",
                     "used_memory:", "maxmemory_policy:noeviction" })
        {
            Assert.Contains(field, info, StringComparison.Ordinal);
        }
        c.Call("NOSUCHCMD");
        Assert.Contains("errorstat_ERR:count=", c.Call("INFO", "errorstats").Text, StringComparison.Ordinal);
        Assert.Equal("OK", c.Call("CONFIG", "RESETSTAT").Text);
        Assert.DoesNotContain("cmdstat_set", c.Call("INFO", "commandstats").Text, StringComparison.Ordinal);

        Resp time = c.Call("TIME");
        long seconds = long.Parse(time.Items![0].Text!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(seconds, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 5, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 5);
        Assert.Equal("*[$\"master\", :0, *[]]", c.Call("ROLE").ToString());
        long lastSave = long.Parse(c.Call("LASTSAVE").ToString()[1..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("Background append only file rewriting started", c.Call("BGREWRITEAOF").Text);
        var sw = Stopwatch.StartNew();
        while (!c.Call("INFO", "persistence").Text!.Contains("aof_rewrites:1", StringComparison.Ordinal) && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(50);
        Assert.Contains("aof_rewrites:1", c.Call("INFO", "persistence").Text, StringComparison.Ordinal);
        Assert.True(long.Parse(c.Call("LASTSAVE").ToString()[1..], System.Globalization.CultureInfo.InvariantCulture) >= lastSave);
    }

    [Fact]
    public void Loading_answers_while_the_aof_is_replayed_then_serves()
    {
        using var dir = new TempDir();
        using (var first = KvServerProcess.StartIn(dir.DataDir))
        {
            Assert.Equal("OK", Call(first.Port, "SET", "k", "v").Text);
            Assert.Equal(0, first.Terminate());
        }
        using var server = KvServerProcess.StartLoading(dir.DataDir, TimeSpan.FromSeconds(3));
        using var c = new RespConnection(server.Port); // accepted during the replay
        Assert.Equal("LOADING Redis is loading the dataset in memory", c.Call("GET", "k").Text);
        Assert.Equal("LOADING Redis is loading the dataset in memory", c.Call("PING").Text);
        Assert.Contains("loading:1", c.Call("INFO", "persistence").Text, StringComparison.Ordinal); // INFO is allowed
        Assert.True(server.WaitForLog("EioSharp.Kv ready", TimeSpan.FromSeconds(30)));
        Assert.Equal("v", c.Call("GET", "k").Text);
        Assert.Contains("loading:0", c.Call("INFO", "persistence").Text, StringComparison.Ordinal);
    }
}
