using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13, the configuration directives (h50): CONFIG GET * lists the names redis-server 7.0.15 lists with its
/// default values, CONFIG SET of every directive answers what redis-server answers (good values, wrong types, out of
/// range, immutable), aliases are listed and looked up as Redis 7.0.15 does, min-replicas-to-write refuses writes with
/// -NOREPLICAS, latency-tracking and its percentiles shape INFO latencystats, and CONFIG REWRITE writes the directives
/// as redis-server writes them.</summary>
public sealed class ConfigDirectivesDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    /// <summary>Defaults that legitimately differ between the two servers as the tests start them.</summary>
    private static readonly HashSet<string> DifferentDefaults = new(StringComparer.Ordinal)
    {
        "port", // each server listens on its own free port
        "dir", // each server runs in its own temporary directory
        "appendonly", // EioSharp.Kv's default is yes (the AOF is its durable copy; docs/kv.md); the harness starts redis-server with no
        "protected-mode", // the harness starts redis-server with protected-mode no; EioSharp.Kv keeps Redis's default yes (bound to 127.0.0.1)
    };

    /// <summary>CONFIG SET values EioSharp.Kv refuses with its own clear error where redis-server accepts them or fails for
    /// another reason (docs/kv.md): TLS is not supported (redis-server, without certificates, answers "Unable to update TLS
    /// configuration"). bind is left out here: both servers rebind their listeners on it (the probes would bind 0.0.0.0 or
    /// odd addresses on the shared servers); ListenDirectivesDiffTests compares bind and port at run time.</summary>
    private static bool RefusedByDesign(string name, string value) => name switch
    {
        "tls-port" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and <= 65535,
        "tls-cluster" or "tls-replication" => value == "yes",
        "bind" => true,
        _ => false,
    };

    /// <summary>Protected configs (enable-protected-configs no): CONFIG SET answers "can't set protected config" in
    /// both (checked in OperationsTests); left out of the generated sets, which would otherwise move the data directory.</summary>
    private static readonly HashSet<string> Protected = new(StringComparer.Ordinal) { "dir", "dbfilename" };

    private static Dictionary<string, string> ConfigMap(RespConnection c, params string[] patterns)
    {
        Resp reply = c.Call(["CONFIG", "GET", .. patterns]);
        Assert.False(reply.IsError, reply.ToString());
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < reply.Items!.Count; i += 2) map.Add(reply.Items[i].Text!, reply.Items[i + 1].Text!);
        return map;
    }

    [Fact]
    public void Config_get_star_names_and_defaults_match_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start();
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        Dictionary<string, string> expected = ConfigMap(r, "*"), actual = ConfigMap(k, "*");
        Assert.True(expected.Count == 192, $"redis-server 7.0.15 lists 192 directives, this one {expected.Count}");
        var missing = expected.Keys.Where(n => !actual.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        var extra = actual.Keys.Where(n => !expected.ContainsKey(n)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0, $"missing: {string.Join(", ", missing)}\nextra: {string.Join(", ", extra)}");
        var differing = expected.Where(p => actual.TryGetValue(p.Key, out string? v) && v != p.Value && !DifferentDefaults.Contains(p.Key))
            .Select(p => $"{p.Key}: redis-server '{p.Value}' EioSharp.Kv '{actual[p.Key]}'").ToList();
        Assert.True(differing.Count == 0, string.Join("\n", differing));
        Assert.Equal(expected.Count, actual.Count);
    }

    [Fact]
    public void Config_get_lists_aliases_and_echoes_exact_names_as_redis()
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        string[][] queries =
        [
            ["hash-max-*"], ["HASH-MAX-ZIPLIST-ENTRIES"], ["hash-max-ziplist-entries", "hash-max-listpack-entries"], ["*slave*"],
            ["*replica*"], ["maxmemory*", "MAXMEMORY"], ["MAXMEMORY", "maxmemory*"], ["Slaveof", "slaveof", "replicaof"], ["lua*", "busy*"],
            ["tls-*"], ["cluster-*"], ["repl-*"], ["lazyfree-*"], ["active*"], ["*_cpulist"], ["nosuch"], ["syslog-*", "oom-*", "latency-*"],
        ];
        foreach (string[] q in queries)
        {
            Resp a = r.Call(["CONFIG", "GET", .. q]), b = k.Call(["CONFIG", "GET", .. q]);
            Assert.True(Checks.UnorderedPairs(a, b) is null, $"CONFIG GET {string.Join(' ', q)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
        }
    }

    /// <summary>Values tried on every directive: the current one, wrong types, out of range (both ways), a fraction, an
    /// overflow, an empty string.</summary>
    private static readonly string[] Probes = ["abc-x", "-1", "0", "1", "100000", "99999999999999999", "99999999999999999999", "1.5", "yes", "2mb", ""];

    [Fact]
    public void Config_set_of_every_directive_answers_as_redis()
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        Dictionary<string, string> start = ConfigMap(r, "*");
        var differences = new List<string>();
        int compared = 0;
        foreach (var (name, current) in start.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (Protected.Contains(name) || DifferentDefaults.Contains(name)) continue;
            string kvCurrent = ConfigMap(k, name)[name];
            foreach (string value in Probes.Prepend(current))
            {
                if (RefusedByDesign(name, value)) continue;
                Resp a = r.Call("CONFIG", "SET", name, value), b = k.Call("CONFIG", "SET", name, value);
                compared++;
                if (a.ToString() != b.ToString()) differences.Add($"CONFIG SET {name} '{value}'\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
                if (!a.IsError)
                {
                    string ra = ConfigMap(r, name)[name], kb = ConfigMap(k, name)[name];
                    if (ra != kb) differences.Add($"CONFIG GET {name} after SET '{value}': redis-server '{ra}' EioSharp.Kv '{kb}'");
                }
                r.Call("CONFIG", "SET", name, current);
                k.Call("CONFIG", "SET", name, kvCurrent);
            }
        }
        Assert.True(differences.Count == 0, $"{differences.Count} of {compared} differ:\n" + string.Join("\n", differences));
        Assert.True(compared > 150 * Probes.Length, $"only {compared} CONFIG SET compared");
    }

    [Fact]
    public void Config_set_of_several_directives_with_aliases_answers_as_redis()
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        string[][] commands =
        [
            ["CONFIG", "SET", "slave-priority", "5", "replica-lazy-flush", "yes"], ["CONFIG", "GET", "replica-priority"], ["CONFIG", "GET", "slave-lazy-flush"],
            ["CONFIG", "SET", "replica-priority", "100", "slave-lazy-flush", "no"],
            ["CONFIG", "SET", "repl-backlog-size", "2mb", "repl-timeout", "0"], ["CONFIG", "GET", "repl-backlog-size"],
            ["CONFIG", "SET", "replicaof", "no one"], ["CONFIG", "SET", "slaveof", "127.0.0.1 1"], ["CONFIG", "SET", "cluster-enabled", "yes"],
            ["CONFIG", "SET", "tls-port", "70000"], ["CONFIG", "SET", "tls-port", "0"], ["CONFIG", "SET", "tls-auth-clients", "OPTIONAL"],
            ["CONFIG", "GET", "tls-auth-clients"], ["CONFIG", "SET", "tls-auth-clients", "yes"],
            ["CONFIG", "SET", "oom-score-adj-values", "0 200"], ["CONFIG", "SET", "oom-score-adj-values", "0 200 3000"],
            ["CONFIG", "SET", "oom-score-adj-values", "100 50 -300"], ["CONFIG", "GET", "oom-score-adj-values"],
            ["CONFIG", "SET", "oom-score-adj-values", "0 200 800"],
            ["CONFIG", "SET", "proc-title-template", "{bogus}"], ["CONFIG", "SET", "proc-title-template", "{unixsocket}"],
            ["CONFIG", "SET", "proc-title-template", " "], ["CONFIG", "SET", "proc-title-template", "{title}{"], ["CONFIG", "SET", "proc-title-template", "}}{{"],
            ["CONFIG", "SET", "proc-title-template", "{port} {tls-port} {config-file}"], ["CONFIG", "GET", "proc-title-template"],
            ["CONFIG", "SET", "proc-title-template", "{title} {listen-addr} {server-mode}"],
            ["CONFIG", "SET", "cluster-announce-hostname", "a b"], ["CONFIG", "SET", "cluster-announce-hostname", "a_b"],
            ["CONFIG", "SET", "cluster-announce-hostname", "node-1.example"], ["CONFIG", "SET", "cluster-announce-hostname", ""],
            ["CONFIG", "SET", "latency-tracking-info-percentiles", "99 50 50 1e1 0x10"], ["CONFIG", "GET", "latency-tracking-info-percentiles"],
            ["CONFIG", "SET", "latency-tracking-info-percentiles", "50 x"], ["CONFIG", "SET", "latency-tracking-info-percentiles", "50 100.5"],
            ["CONFIG", "SET", "latency-tracking-info-percentiles", ""], ["CONFIG", "GET", "latency-tracking-info-percentiles"],
            ["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9"],
            ["CONFIG", "SET", "maxmemory-eviction-tenacity", "101"], ["CONFIG", "SET", "maxmemory-eviction-tenacity", "100"],
            ["CONFIG", "SET", "maxmemory-eviction-tenacity", "10"], ["CONFIG", "SET", "syslog-facility", "local1"],
            ["CONFIG", "SET", "min-slaves-to-write", "0", "min-replicas-to-write", "0"],
            ["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"], ["SET", "k", "v"], ["FLUSHALL"], ["DBSIZE"], ["SET", "k", "v"], ["FLUSHDB"], ["DBSIZE"],
            ["CONFIG", "SET", "lazyfree-lazy-user-flush", "no"],
        ];
        foreach (string[] c in commands)
        {
            Resp a = r.Call(c), b = k.Call(c);
            Assert.True(a.ToString() == b.ToString(), $"{string.Join(' ', c)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
        }
    }

    [Fact]
    public void Min_replicas_to_write_refuses_writes_with_noreplicas_as_redis()
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        string[][] commands =
        [
            ["FLUSHALL"], ["SET", "a", "1"], ["CONFIG", "SET", "min-replicas-to-write", "1"],
            ["SET", "a", "2"], ["GET", "a"], ["INCR", "a"], ["DEL", "a"], ["PING"], ["PUBLISH", "ch", "x"],
            ["MULTI"], ["SET", "a", "3"], ["GET", "a"], ["EXEC"],
            ["MULTI"], ["GET", "a"], ["EXEC"],
            ["EVAL", "return redis.call('set','a','4')", "0"], ["EVAL", "return redis.pcall('incr','a')", "0"],
            ["EVAL", "return redis.call('get','a')", "0"], ["EVAL", "#!lua\nreturn 1", "0"], ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0"],
            ["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)"],
            ["CONFIG", "SET", "min-replicas-max-lag", "0"], ["SET", "a", "5"], ["CONFIG", "SET", "min-replicas-max-lag", "10"], ["SET", "a", "6"],
            ["CONFIG", "SET", "min-slaves-to-write", "0"], ["SET", "a", "7"], ["GET", "a"], ["CONFIG", "GET", "min-*"],
        ];
        foreach (string[] c in commands)
        {
            Resp a = r.Call(c), b = k.Call(c);
            string check = c[0] == "CONFIG" && c[1] == "GET" ? (Checks.UnorderedPairs(a, b) is null ? "same" : "differ") : a.ToString() == b.ToString() ? "same" : "differ";
            Assert.True(check == "same", $"{string.Join(' ', c)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
        }
    }

    /// <summary>The lines of an INFO latencystats reply with the numbers removed (they are measured times).</summary>
    private static List<string> LatencyShape(RespConnection c)
    {
        string text = c.Call("INFO", "latencystats").Text!;
        return [.. text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(l => string.Join(',', l.Split(',').Select(part => part.Contains('=') ? part[..(part.IndexOf('=') + 1)] : part)))
            .Order(StringComparer.Ordinal)]; // redis-server lists the commands in its hash order
    }

    [Fact]
    public void Latency_tracking_and_percentiles_shape_info_latencystats_as_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start();
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        void Both(params string[] args)
        {
            Resp a = r.Call(args), b = k.Call(args);
            Assert.True(a.ToString() == b.ToString(), $"{string.Join(' ', args)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
        }

        Both("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.99 0 100 12.5");
        Both("CONFIG", "RESETSTAT");
        Both("SET", "k", "v");
        Both("GET", "k");
        List<string> expected = LatencyShape(r), actual = LatencyShape(k);
        Assert.Contains("latency_percentiles_usec_set:p50=,p99.99=,p0=,p100=,p12.5=", expected);
        Assert.Equal(expected, actual);

        // Percentile values are upper bounds of what was measured: p0 <= p50 <= p100.
        string setLine = k.Call("INFO", "latencystats").Text!.Split("\r\n").Single(l => l.StartsWith("latency_percentiles_usec_set:", StringComparison.Ordinal));
        double[] v = [.. setLine.Split(':')[1].Split(',').Select(p => double.Parse(p.Split('=')[1], CultureInfo.InvariantCulture))];
        Assert.True(v[2] <= v[0] && v[0] <= v[3] && v[0] > 0, setLine);

        // No percentiles: the command names with nothing after them.
        Both("CONFIG", "SET", "latency-tracking-info-percentiles", "");
        Assert.Equal(LatencyShape(r), LatencyShape(k));

        // latency-tracking no: the section is empty, and commands run meanwhile are not recorded.
        Both("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9");
        Both("CONFIG", "SET", "latency-tracking", "no");
        Both("CONFIG", "RESETSTAT");
        Both("INCR", "n");
        Assert.Equal(["# Latencystats"], LatencyShape(r));
        Assert.Equal(["# Latencystats"], LatencyShape(k));
        Both("CONFIG", "SET", "latency-tracking", "yes");
        expected = LatencyShape(r);
        Assert.DoesNotContain(expected, l => l.StartsWith("latency_percentiles_usec_incr:", StringComparison.Ordinal));
        Assert.Equal(expected, LatencyShape(k));
    }

    [Fact]
    public void Config_rewrite_writes_the_directives_as_redis()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string Prepare(TempDir dir)
        {
            string conf = Path.Combine(dir.Path, "kv.conf");
            File.WriteAllText(conf, "# operator's comment\nslave-priority 50\nrepl-backlog-size 1048576\n\nmin-slaves-max-lag 5\n" +
                "replicaof no one\ntls-port 0\n");
            return conf;
        }

        string redisConf = Prepare(redisDir), kvConf = Prepare(kvDir);
        using var redis = RedisServerProcess.StartWithConfig(redisConf);
        using var kv = KvServerProcess.StartIn(kvDir.DataDir, kvConf);
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        string[][] sets =
        [
            ["CONFIG", "SET", "repl-backlog-size", "2mb", "cluster-announce-hostname", "node-1", "oom-score-adj-values", "1 2 3"],
            ["CONFIG", "SET", "latency-tracking-info-percentiles", "50 99", "replica-serve-stale-data", "no", "proc-title-template", "{title} x"],
            ["CONFIG", "SET", "masterauth", "p w", "active-defrag-ignore-bytes", "1000", "cluster-node-timeout", "5000", "tls-auth-clients", "optional"],
            ["CONFIG", "SET", "maxmemory-eviction-tenacity", "20", "latency-tracking", "no", "lazyfree-lazy-user-flush", "yes"],
            ["CONFIG", "REWRITE"],
        ];
        foreach (string[] c in sets)
        {
            Resp a = r.Call(c), b = k.Call(c);
            Assert.True(a.ToString() == b.ToString(), $"{string.Join(' ', c)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
        }
        var mine = new HashSet<string>(StringComparer.Ordinal)
        {
            "replica-priority", "repl-backlog-size", "min-replicas-max-lag", "replicaof", "tls-port", "cluster-announce-hostname", "oom-score-adj-values",
            "latency-tracking-info-percentiles", "replica-serve-stale-data", "proc-title-template", "masterauth", "active-defrag-ignore-bytes",
            "cluster-node-timeout", "tls-auth-clients", "maxmemory-eviction-tenacity", "latency-tracking", "lazyfree-lazy-user-flush",
        };
        // The operator's part: rewritten in place; the generated part: the same lines for these directives (in table order each).
        string[] Head(string conf) => File.ReadAllText(conf).Split("# Generated by CONFIG REWRITE")[0].Split('\n');
        Assert.Equal(Head(redisConf), Head(kvConf));
        List<string> Tail(string conf) =>
            [.. File.ReadAllText(conf).Split("# Generated by CONFIG REWRITE")[1].Split('\n').Where(l => mine.Contains(l.Split(' ')[0])).Order(StringComparer.Ordinal)];
        Assert.Equal(Tail(redisConf), Tail(kvConf));
        Assert.NotEmpty(Tail(kvConf));
    }

    [Fact]
    public void Oom_score_adj_writes_proc_oom_score_adj_as_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start();
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        static int Read(int pid) => int.Parse(File.ReadAllText($"/proc/{pid}/oom_score_adj").Trim(), CultureInfo.InvariantCulture);
        int redisBase = Read(redis.Pid), kvBase = Read(kv.Pid);
        Assert.Equal(redisBase, kvBase); // both children of this process
        (string, string)[][] steps =
        [
            [("oom-score-adj-values", "10 200 800"), ("oom-score-adj", "yes")], // relative to the value at start
            [("oom-score-adj-values", "25 200 800")],
            [("oom-score-adj", "absolute")],
            [("oom-score-adj-values", "1500 200 800")], // clamped to 1000
            [("oom-score-adj", "relative"), ("oom-score-adj-values", "5 200 800")],
            [("oom-score-adj", "no")], // back to the value at start
        ];
        foreach ((string Name, string Value)[] step in steps)
        {
            foreach (var (name, value) in step)
            {
                Resp a = r.Call("CONFIG", "SET", name, value), b = k.Call("CONFIG", "SET", name, value);
                Assert.True(a.ToString() == b.ToString(), $"CONFIG SET {name} {value}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
            }
            int expected = Read(redis.Pid); // redis-server writes it during CONFIG SET; EioSharp.Kv's cron within 1/hz
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (Read(kv.Pid) != expected && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Assert.True(Read(kv.Pid) == expected, $"after {string.Join(", ", step)}: redis-server {expected}, EioSharp.Kv {Read(kv.Pid)}");
        }
        Assert.Equal(redisBase, Read(kv.Pid));
    }
}
