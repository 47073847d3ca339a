using System.Buffers;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The configuration file syntax (sdssplitargs, include), the directive table's validation, CONFIG SET's
/// atomicity, CONFIG GET's patterns and CONFIG REWRITE's algorithm.</summary>
public class KvConfigTests
{
    [Theory]
    [InlineData("port 6379", new[] { "port", "6379" })]
    [InlineData("  save   3600 1\t300 100  ", new[] { "save", "3600", "1", "300", "100" })]
    [InlineData("requirepass \"a b\\n\\x41\\\"\"", new[] { "requirepass", "a b\nA\"" })]
    [InlineData("requirepass 'it\\'s \\n'", new[] { "requirepass", "it's \\n" })]
    [InlineData("save \"\"", new[] { "save", "" })]
    [InlineData("", new string[0])]
    public void SplitArgs_follows_sdssplitargs(string line, string[] expected) =>
        Assert.Equal(expected, KvConfigFile.SplitArgs(line));

    [Theory]
    [InlineData("requirepass \"abc")]
    [InlineData("requirepass \"abc\"x")]
    [InlineData("requirepass 'abc")]
    public void SplitArgs_refuses_unbalanced_quotes(string line) => Assert.Null(KvConfigFile.SplitArgs(line));

    [Fact]
    public void Quote_round_trips_through_SplitArgs()
    {
        foreach (string value in new[] { "plain", "", "a b", "q\"uote", "back\\slash", "new\nline", "tab\t" })
        {
            Assert.Equal(["x", value], KvConfigFile.SplitArgs("x " + KvConfigFile.Quote(value)));
        }
    }

    [Fact]
    public void Read_expands_includes_in_place_and_Apply_reports_the_bad_line()
    {
        string dir = Path.Combine(Path.GetTempPath(), "kvconf-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "a.conf"), "timeout 5\n");
            File.WriteAllText(Path.Combine(dir, "main.conf"), $"# comment\ntimeout 1\ninclude {Path.Combine(dir, "*.conf.inc")}\ninclude {Path.Combine(dir, "a.conf")}\nhz 20\n");
            File.WriteAllText(Path.Combine(dir, "x.conf.inc"), "maxmemory 1kb\n");
            List<KvConfigLine> lines = KvConfigFile.Read(Path.Combine(dir, "main.conf"));
            Assert.Equal(["timeout", "maxmemory", "timeout", "hz"], lines.Select(l => l.Args[0]));
            KvServerConfig c = KvConfigDirectives.Apply(new KvServerConfig(), lines);
            Assert.Equal(5, c.Timeout); // the later line wins
            Assert.Equal(1024, c.MaxMemory);
            Assert.Equal(20, c.Hz);

            File.WriteAllText(Path.Combine(dir, "bad.conf"), "hz 10\nmaxclients many\n");
            var e = Assert.Throws<KvConfigException>(() => KvConfigDirectives.Apply(new KvServerConfig(), KvConfigFile.Read(Path.Combine(dir, "bad.conf"))));
            Assert.Contains("at line 2", e.Message, StringComparison.Ordinal);
            Assert.Contains(">>> 'maxclients many'", e.Message, StringComparison.Ordinal);
            Assert.Contains("argument couldn't be parsed into an integer", e.Message, StringComparison.Ordinal);

            File.WriteAllText(Path.Combine(dir, "unknown.conf"), "no-such-directive 1\n");
            e = Assert.Throws<KvConfigException>(() => KvConfigDirectives.Apply(new KvServerConfig(), KvConfigFile.Read(Path.Combine(dir, "unknown.conf"))));
            Assert.Contains("Bad directive or wrong number of arguments", e.Message, StringComparison.Ordinal);

            File.WriteAllText(Path.Combine(dir, "loop.conf"), $"include {Path.Combine(dir, "loop.conf")}\n");
            Assert.Throws<KvConfigException>(() => KvConfigFile.Read(Path.Combine(dir, "loop.conf")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Save_and_client_output_buffer_limit_lines_accumulate_in_a_file()
    {
        KvServerConfig c = KvConfigDirectives.Apply(new KvServerConfig(),
        [
            new("f", 1, "save 3600 1", ["save", "3600", "1"]),
            new("f", 2, "save 300 100", ["save", "300", "100"]),
            new("f", 3, "client-output-buffer-limit normal 1mb 2mb 3", ["client-output-buffer-limit", "normal", "1mb", "2mb", "3"]),
            new("f", 4, "client-output-buffer-limit pubsub 4mb 1mb 5", ["client-output-buffer-limit", "pubsub", "4mb", "1mb", "5"]),
        ]);
        Assert.Equal("3600 1 300 100", c.Save);
        Assert.Equal("normal 1048576 2097152 3 slave 268435456 67108864 60 pubsub 4194304 1048576 5",
            KvConfigDirectives.Find("client-output-buffer-limit")!.Get(c));
    }

    [Fact]
    public void Config_set_is_atomic_and_reports_redis_errors()
    {
        var live = new KvLiveConfig(new KvServerConfig());
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer",
            live.TrySet([("maxmemory", "10mb"), ("timeout", "x")]));
        Assert.Equal(0, live.Current.MaxMemory);
        Assert.Equal("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'", live.TrySet([("port", "1"), ("nosuch", "1")]));
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config", live.TrySet([("port", "1")]));
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config", live.TrySet([("dir", "/")]));
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter", live.TrySet([("hz", "1"), ("HZ", "2")]));
        Assert.Null(live.TrySet([("maxmemory", "10mb"), ("maxmemory-policy", "ALLKEYS-LRU"), ("hz", "1000")]));
        Assert.Equal(10L << 20, live.Current.MaxMemory);
        Assert.Equal("allkeys-lru", live.Current.MaxMemoryPolicy);
        Assert.Equal(500, live.Current.Hz); // clamped as Redis does

        live.Applying = (_, next) =>
        {
            if (next.Timeout == 13) throw new KvConfigException("refused");
        };
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'timeout') - refused", live.TrySet([("timeout", "13")]));
        Assert.Equal(0, live.Current.Timeout);
    }

    [Fact]
    public void Config_get_matches_globs_and_aliases_once_each()
    {
        var live = new KvLiveConfig(new KvServerConfig { MaxMemory = 5 });
        var got = live.Get(["maxmemory*"u8.ToArray(), "MAXMEMORY"u8.ToArray()]);
        Assert.Equal(["maxmemory", "maxmemory-policy", "maxmemory-samples"], got.Select(p => p.Key));
        Assert.Equal("5", got[0].Value);
        Assert.Equal(["hash-max-ziplist-entries"], live.Get(["hash-max-ziplist-entries"u8.ToArray()]).Select(p => p.Key));
        Assert.Empty(live.Get(["nosuch"u8.ToArray()]));
    }

    [Fact]
    public void Rewrite_follows_redis_algorithm()
    {
        string[] old =
        [
            "# header", "maxmemory 100mb", "", "", "", "# timeouts", "timeout 1", "timeout 2", "hash-max-ziplist-entries 10",
            "include /etc/other.conf", "save 3600 1 300 100",
        ];
        var config = new KvServerConfig { MaxMemory = 1L << 30, Timeout = 0, Save = "900 1", RequirePass = "p w", SlowlogMaxLen = 64 };
        string text = KvLiveConfig.RewriteText(old, config);
        Assert.Equal(
            "# header\nmaxmemory 1gb\n\n# timeouts\ntimeout 0\n\nhash-max-listpack-entries 512\ninclude /etc/other.conf\nsave 900 1\n" +
            "# Generated by CONFIG REWRITE\nrequirepass \"p w\"\nslowlog-max-len 64\n",
            text);
        // A second rewrite of its own output changes nothing.
        Assert.Equal(text, KvLiveConfig.RewriteText(text.TrimEnd('\n').Split('\n'), config));
    }

    [Fact]
    public void Connection_config_commands_and_client_reply_flags()
    {
        var live = new KvLiveConfig(new KvServerConfig());
        var stats = new KvServerStats { StartTimeUnixMs = 1000 };
        var state = new KvConnectionState(7, live, stats) { CommandStats = new KvCommandStats() };
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new RespWriter(buffer);
        string Run(params string[] args)
        {
            buffer.ResetWrittenCount();
            state.Process(KvCommand.Create(args), writer, 5000);
            return Resp.Text(buffer.WrittenSpan);
        }

        Assert.Equal("+OK\r\n", Run("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "3"));
        Assert.Equal("*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n", Run("CONFIG", "GET", "timeout"));
        Assert.Equal("-ERR The server is running without a config file\r\n", Run("CONFIG", "REWRITE"));
        Run("ECHO", "a");
        Run("AUTH", "secret"); // an error reply, and a secret the slow log hides
        Run("ECHO", "b");
        Assert.Equal(":3\r\n", Run("SLOWLOG", "LEN")); // slowlog-max-len 3: the oldest went
        Assert.Contains("(redacted)", Run("SLOWLOG", "GET"), StringComparison.Ordinal);
        Assert.Contains("errorstat_ERR:count=2" /* CONFIG REWRITE and AUTH */, state.BuildInfo(new HashSet<string> { "errorstats" }, 5000), StringComparison.Ordinal);

        Assert.Equal("", Run("CLIENT", "REPLY", "OFF"));
        Assert.True(state.ReplyControlActive);
        Run("ECHO", "dropped");
        Assert.True(state.DiscardReply);
        Assert.Equal("+OK\r\n", Run("CLIENT", "REPLY", "ON"));
        Assert.False(state.DiscardReply);
        Assert.Equal("", Run("CLIENT", "REPLY", "SKIP"));
        Run("ECHO", "skipped");
        Assert.True(state.DiscardReply);
        Run("ECHO", "sent");
        Assert.False(state.DiscardReply);
        Assert.False(state.ReplyControlActive);
        Assert.Equal("-ERR syntax error\r\n", Run("CLIENT", "REPLY", "MAYBE"));
    }
}
