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

    /// <summary>Reads <paramref name="path"/> from <paramref name="files"/> (path to text; a missing one throws
    /// FileNotFoundException with ENOENT as <see cref="Exception.HResult"/>, as the library's Load does).</summary>
    private static List<KvConfigLine> Read(Dictionary<string, string> files, string path) =>
        KvConfigFile.ReadAsync(path,
            p => files.TryGetValue(p, out string? text) ? Task.FromResult(text) : throw new FileNotFoundException("missing " + p) { HResult = 2 },
            d => Task.FromResult<IReadOnlyList<string>>([.. files.Keys.Where(k => Path.GetDirectoryName(k) == d).Select(k => Path.GetFileName(k))]))
            .GetAwaiter().GetResult();

    [Fact]
    public void Read_expands_includes_in_place_and_Apply_reports_the_bad_line()
    {
        var files = new Dictionary<string, string>
        {
            ["/c/a.conf"] = "timeout 5\n",
            ["/c/main.conf"] = "# comment\ntimeout 1\ninclude /c/*.conf.inc\ninclude /c/a.conf\r\nhz 20",
            ["/c/x.conf.inc"] = "maxmemory 1kb\n",
            ["/c/y.conf.incl"] = "maxmemory 2kb\n", // does not match the glob
            ["/c/bad.conf"] = "hz 10\nmaxclients many\n",
            ["/c/unknown.conf"] = "no-such-directive 1\n",
            ["/c/loop.conf"] = "include /c/loop.conf\n",
            ["/c/missing-include.conf"] = "hz 10\ninclude /c/nope.conf\n",
            ["/c/empty-glob.conf"] = "include /nodir/*.conf\nhz 30\n",
        };
        List<KvConfigLine> lines = Read(files, "/c/main.conf");
        Assert.Equal(["timeout", "maxmemory", "timeout", "hz"], lines.Select(l => l.Args[0]));
        Assert.Equal(["/c/main.conf:2", "/c/x.conf.inc:1", "/c/a.conf:1", "/c/main.conf:5"], lines.Select(l => l.File + ":" + l.LineNumber));
        KvServerConfig c = KvConfigDirectives.Apply(new KvServerConfig(), lines);
        Assert.Equal(5, c.Timeout); // the later line wins
        Assert.Equal(1024, c.MaxMemory);
        Assert.Equal(20, c.Hz);

        var e = Assert.Throws<KvConfigException>(() => KvConfigDirectives.Apply(new KvServerConfig(), Read(files, "/c/bad.conf")));
        Assert.Contains("at line 2", e.Message, StringComparison.Ordinal);
        Assert.Contains(">>> 'maxclients many'", e.Message, StringComparison.Ordinal);
        Assert.Contains("argument couldn't be parsed into an integer", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<KvConfigException>(() => KvConfigDirectives.Apply(new KvServerConfig(), Read(files, "/c/unknown.conf")));
        Assert.Contains("Bad directive or wrong number of arguments", e.Message, StringComparison.Ordinal);

        Assert.Throws<KvConfigException>(() => Read(files, "/c/loop.conf"));

        // Redis's texts (config.c loadServerConfig): the strerror of the file that cannot be opened, included or not.
        e = Assert.Throws<KvConfigException>(() => Read(files, "/c/none.conf"));
        Assert.Equal("Fatal error, can't open config file '/c/none.conf': No such file or directory", e.Message);
        e = Assert.Throws<KvConfigException>(() => Read(files, "/c/missing-include.conf"));
        Assert.Equal("Fatal error, can't open config file '/c/nope.conf': No such file or directory", e.Message);
        Assert.Equal(["hz"], Read(files, "/c/empty-glob.conf").Select(l => l.Args[0])); // a glob matching nothing adds nothing
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
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config", live.TrySet([("databases", "1")]));
        // port and bind are mutable (the server's ApplyingNames hook rebinds): the hook sees the names in order and may
        // refuse, naming its argument (not the first one), with nothing published.
        IReadOnlyList<string>? seen = null;
        live.ApplyingNames = (_, next, names) =>
        {
            seen = names;
            if (next.Port == 7) throw new KvConfigException("Unable to listen on this port. Check server logs.") { Argument = "port" };
        };
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.",
            live.TrySet([("maxmemory", "1mb"), ("PORT", "7")]));
        Assert.Equal(["maxmemory", "port"], seen);
        Assert.Equal(0, live.Current.MaxMemory);
        Assert.Null(live.TrySet([("bind", "127.0.0.1  -::1"), ("port", "6390")]));
        Assert.Equal(("127.0.0.1 -::1", 6390), (live.Current.Bind, live.Current.Port));
        Assert.Equal(["bind", "port"], seen);
        Assert.Equal("ERR CONFIG SET failed (possibly related to argument 'bind') - Too many bind addresses specified.",
            live.TrySet([("bind", string.Join(' ', Enumerable.Repeat("127.0.0.1", 17)))]));
        string rewritten = KvLiveConfig.RewriteText(["port 6379", "# kept", "bind 127.0.0.1"], live.Current);
        Assert.Contains("port 6390\n# kept\nbind 127.0.0.1 -::1\n", rewritten.Replace("\r", "", StringComparison.Ordinal), StringComparison.Ordinal);
        live.ApplyingNames = null;
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
        // As redis-server 7.0.15's configGetCommand (seen with raw RESP): each name once, case-insensitively; an alias is
        // a name of its own; a name without glob characters is answered as the client typed it.
        var live = new KvLiveConfig(new KvServerConfig { MaxMemory = 5 });
        var got = live.Get(["maxmemory*"u8.ToArray(), "MAXMEMORY"u8.ToArray()]);
        Assert.Equal(["maxmemory", "maxmemory-clients", "maxmemory-policy", "maxmemory-samples", "maxmemory-eviction-tenacity"], got.Select(p => p.Key));
        Assert.Equal("5", got[0].Value);
        got = live.Get(["MAXMEMORY"u8.ToArray(), "maxmemory*"u8.ToArray()]);
        Assert.Equal(["MAXMEMORY", "maxmemory-clients", "maxmemory-policy", "maxmemory-samples", "maxmemory-eviction-tenacity"], got.Select(p => p.Key));
        Assert.Equal(["hash-max-ziplist-entries"], live.Get(["hash-max-ziplist-entries"u8.ToArray()]).Select(p => p.Key));
        Assert.Equal(["HASH-MAX-ZIPLIST-ENTRIES"], live.Get(["HASH-MAX-ZIPLIST-ENTRIES"u8.ToArray(), "hash-max-ziplist-entries"u8.ToArray()]).Select(p => p.Key));
        Assert.Equal(["hash-max-listpack-entries", "hash-max-ziplist-entries", "hash-max-listpack-value", "hash-max-ziplist-value"],
            live.Get(["hash-max-*"u8.ToArray()]).Select(p => p.Key));
        Assert.Equal(["replica-priority", "slave-priority"], live.Get(["*-priority"u8.ToArray()]).Select(p => p.Key));
        Assert.Equal(["slaveof"], live.Get(["slaveof"u8.ToArray()]).Select(p => p.Key));
        Assert.Empty(live.Get(["nosuch"u8.ToArray()]));
    }

    [Fact]
    public void Accepted_directives_validate_as_redis_and_keep_their_values()
    {
        var live = new KvLiveConfig(new KvServerConfig());
        string Err(string name, string text) => $"ERR CONFIG SET failed (possibly related to argument '{name}') - {text}";
        Assert.Null(live.TrySet([("slave-priority", "5"), ("repl-backlog-size", "2mb"), ("tls-auth-clients", "OPTIONAL")]));
        Assert.Equal("5", live.Get(["replica-priority"u8.ToArray()])[0].Value);
        Assert.Equal("2097152", live.Get(["repl-backlog-size"u8.ToArray()])[0].Value);
        Assert.Equal("optional", live.Get(["tls-auth-clients"u8.ToArray()])[0].Value);
        Assert.Equal(Err("repl-backlog-size", "argument must be between 1 and 9223372036854775807 inclusive"), live.TrySet([("repl-backlog-size", "0")]));
        Assert.Equal(Err("repl-timeout", "argument must be between 1 and 2147483647 inclusive"), live.TrySet([("repl-timeout", "0")]));
        Assert.Equal(Err("slaveof", "can't set immutable config"), live.TrySet([("slaveof", "127.0.0.1 6379")]));
        Assert.Equal(Err("cluster-enabled", "can't set immutable config"), live.TrySet([("cluster-enabled", "yes")]));
        Assert.Equal(Err("tls-port", "tls-port must be 0: EioSharp.Kv does not support TLS"), live.TrySet([("tls-port", "6380")]));
        Assert.Equal(Err("tls-port", "argument must be between 0 and 65535 inclusive"), live.TrySet([("tls-port", "70000")]));
        Assert.Equal(Err("oom-score-adj-values", "wrong number of arguments"), live.TrySet([("oom-score-adj-values", "1 2")]));
        Assert.Equal(Err("oom-score-adj-values", "Invalid oom-score-adj-values, elements must be between -2000 and 2000."),
            live.TrySet([("oom-score-adj-values", "1 2 2001")]));
        Assert.Null(live.TrySet([("oom-score-adj-values", "-5 0 300")]));
        Assert.Equal("-5 0 300", live.Get(["oom-score-adj-values"u8.ToArray()])[0].Value);
        foreach (string bad in (string[])["{bogus}", "{unixsocket}", " ", "{title}{", "{TITLE}", ""])
        {
            Assert.Equal(Err("proc-title-template", "template format is invalid or contains unknown variables"), live.TrySet([("proc-title-template", bad)]));
        }
        foreach (string good in (string[])["}}", "}", "a}b", "{{", "{port}{tls-port}{config-file}", "{title} {listen-addr} {server-mode}"])
        {
            Assert.Null(live.TrySet([("proc-title-template", good)]));
        }
        Assert.Equal(Err("cluster-announce-hostname", "Hostnames may only contain alphanumeric characters, hyphens or dots"),
            live.TrySet([("cluster-announce-hostname", "a_b")]));
        Assert.Null(live.TrySet([("latency-tracking-info-percentiles", "99 50 50 1e1 0x10")]));
        Assert.Equal("99 50 50 10 16", live.Get(["latency-tracking-info-percentiles"u8.ToArray()])[0].Value);
        Assert.Equal(Err("latency-tracking-info-percentiles", "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"),
            live.TrySet([("latency-tracking-info-percentiles", "50 100.5")]));
        Assert.Equal(Err("latency-tracking-info-percentiles", "Invalid latency-tracking-info-percentiles parameters"),
            live.TrySet([("latency-tracking-info-percentiles", "x")]));
        Assert.Null(live.TrySet([("latency-tracking-info-percentiles", "")]));
        Assert.Empty(live.Current.LatencyTrackingInfoPercentiles);
    }

    [Fact]
    public void Start_only_directives_refuse_what_kv_cannot_do()
    {
        KvServerConfig Apply(string line) => KvConfigDirectives.Apply(new KvServerConfig(),
            [new KvConfigLine("kv.conf", 1, line, KvConfigFile.SplitArgs(line)!)]);
        Assert.Equal("", KvConfigDirectives.Find("replicaof")!.Get(Apply("replicaof no one")));
        Assert.Contains("Invalid master port", Assert.Throws<KvConfigException>(() => Apply("slaveof host 70000")).Message);
        Assert.Contains("does not replicate", Assert.Throws<KvConfigException>(() => Apply("replicaof 127.0.0.1 6379")).Message);
        Assert.Contains("runs standalone", Assert.Throws<KvConfigException>(() => Apply("cluster-enabled yes")).Message);
        Assert.Contains("does not support TLS", Assert.Throws<KvConfigException>(() => Apply("tls-port 6380")).Message);
        Assert.Contains("syslog-enabled yes is not supported", Assert.Throws<KvConfigException>(() => Apply("syslog-enabled yes")).Message);
        Assert.Contains("only 'no' is supported", Assert.Throws<KvConfigException>(() => Apply("enable-protected-configs yes")).Message);
        Assert.Contains("argument(s) must be one of the following: user, local0, local1, local2, local3, local4, local5, local6, local7",
            Assert.Throws<KvConfigException>(() => Apply("syslog-facility bogus")).Message);
        Assert.Contains("argument must be between 0 and 4294967295 inclusive", Assert.Throws<KvConfigException>(() => Apply("socket-mark-id -1")).Message);
        Assert.Equal("local3", KvConfigDirectives.Find("syslog-facility")!.Get(Apply("syslog-facility LOCAL3")));
        Assert.Equal(3, Apply("min-slaves-to-write 3").MinReplicasToWrite);
    }

    [Fact]
    public void Eviction_tenacity_gives_redis_time_limits()
    {
        // Redis's evictionTimeLimitUs: 50 us a step up to 10, then 15% more a step, no limit at 100.
        Assert.Equal(TimeSpan.Zero, new KvServerConfig { MaxMemoryEvictionTenacity = 0 }.EvictionTimeLimit);
        Assert.Equal(TimeSpan.FromMicroseconds(500), new KvServerConfig().EvictionTimeLimit);
        Assert.Equal(TimeSpan.FromMicroseconds(575), new KvServerConfig { MaxMemoryEvictionTenacity = 11 }.EvictionTimeLimit);
        Assert.Equal(TimeSpan.FromMicroseconds((long)(500 * Math.Pow(1.15, 89))), new KvServerConfig { MaxMemoryEvictionTenacity = 99 }.EvictionTimeLimit);
        Assert.Equal(TimeSpan.MaxValue, new KvServerConfig { MaxMemoryEvictionTenacity = 100 }.EvictionTimeLimit);
        Assert.False(new KvServerConfig { MinReplicasToWrite = 1, MinReplicasMaxLag = 0 }.RefusesWritesForReplicas);
        Assert.True(new KvServerConfig { MinReplicasToWrite = 1 }.RefusesWritesForReplicas);
        Assert.False(new KvServerConfig().RefusesWritesForReplicas);
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
            "# header\nmaxmemory 1gb\n\n# timeouts\ntimeout 0\n\nhash-max-listpack-entries 512\ninclude /etc/other.conf\nsave 900 1\n\n" +
            "# Generated by CONFIG REWRITE\nrequirepass \"p w\"\nslowlog-max-len 64\n",
            text);
        // A second rewrite of its own output changes nothing.
        Assert.Equal(text, KvLiveConfig.RewriteText(text.TrimEnd('\n').Split('\n'), config));
    }

    /// <summary>An in-memory file system standing for the server's file capability: records what is read and replaced.</summary>
    private sealed class MemoryFiles : IKvFiles
    {
        public Dictionary<string, string> Files { get; } = new(StringComparer.Ordinal);

        public List<string> Log { get; } = [];

        public string? FailReplace { get; set; }

        public string ReadAllText(string path)
        {
            Log.Add("read " + path);
            return Files.TryGetValue(path, out string? text) ? text
                : throw new FileNotFoundException("No such file or directory: '" + path + "'", path) { HResult = 2 };
        }

        public void ReplaceAllText(string path, string text)
        {
            Log.Add("replace " + path);
            if (FailReplace is { } error) throw new IOException(error) { HResult = 28 }; // ENOSPC
            Files[path] = text;
        }
    }

    /// <summary>Issue 13: CONFIG REWRITE, ACL SAVE and ACL LOAD (and the ACL file at start) use the file access the server
    /// hands the protocol layer (the library's capability in the server), never the disk directly; errors carry the
    /// system's text as Redis's replies do.</summary>
    [Fact]
    public void Config_rewrite_and_acl_files_go_through_the_servers_file_access()
    {
        var files = new MemoryFiles();
        files.Files["/conf/kv.conf"] = "# mine\r\nmaxmemory 1mb\n";
        files.Files["/conf/users.acl"] = "user default on nopass ~* &* +@all\nuser alice on >pw ~a* +get\n";
        var live = new KvLiveConfig(new KvServerConfig { MaxMemory = 1 << 20, AclFile = "/conf/users.acl" }, "/conf/kv.conf", files);
        Assert.Equal(["read /conf/users.acl"], files.Log);
        Assert.Equal(["alice", "default"], live.Acl.Users().Select(u => u.Name).Order(StringComparer.Ordinal));
        var state = new KvConnectionState(7, live, new KvServerStats());
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new RespWriter(buffer);
        string Run(params string[] args)
        {
            buffer.ResetWrittenCount();
            state.Process(KvCommand.Create(args), writer, 5000);
            return Resp.Text(buffer.WrittenSpan);
        }

        Assert.Equal("+OK\r\n", Run("CONFIG", "SET", "maxmemory", "2mb"));
        Assert.Equal("+OK\r\n", Run("CONFIG", "REWRITE"));
        Assert.Equal("# mine\nmaxmemory 2mb\n\n# Generated by CONFIG REWRITE\naclfile \"/conf/users.acl\"\n", files.Files["/conf/kv.conf"]);
        Assert.Equal(["read /conf/kv.conf", "replace /conf/kv.conf"], files.Log.Skip(1));

        Assert.Equal("+OK\r\n", Run("ACL", "SETUSER", "bob", "on", ">x", "+ping"));
        Assert.Equal("+OK\r\n", Run("ACL", "SAVE"));
        Assert.Contains("user bob on ", files.Files["/conf/users.acl"], StringComparison.Ordinal);
        files.Files["/conf/users.acl"] = "user default on nopass ~* &* +@all\n";
        Assert.Equal("+OK\r\n", Run("ACL", "LOAD"));
        Assert.Equal(["default"], live.Acl.Users().Select(u => u.Name));
        Assert.Equal("read /conf/users.acl", files.Log[^1]);

        // Failures: Redis's texts, with strerror.
        files.Files.Remove("/conf/users.acl");
        Assert.Equal("-ERR Error loading ACLs, opening file '/conf/users.acl': No such file or directory\r\n", Run("ACL", "LOAD"));
        files.FailReplace = "disk full";
        Assert.Equal("-ERR There was an error trying to save the ACLs. Please check the server logs for more information\r\n", Run("ACL", "SAVE"));
        Assert.Equal("-ERR Rewriting config file: No space left on device\r\n", Run("CONFIG", "REWRITE"));
        files.FailReplace = null;
        files.Files.Remove("/conf/kv.conf"); // removed meanwhile: written anew, as Redis
        Assert.Equal("+OK\r\n", Run("CONFIG", "REWRITE"));
        Assert.StartsWith("# Generated by CONFIG REWRITE\n", files.Files["/conf/kv.conf"], StringComparison.Ordinal);

        // No file access at all: an error, not the disk.
        var none = new KvLiveConfig(new KvServerConfig(), "/conf/kv.conf");
        Assert.Equal("ERR Rewriting config file: the server has no file access", none.Rewrite());
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
