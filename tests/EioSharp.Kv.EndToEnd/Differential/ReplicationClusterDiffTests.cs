using System.Diagnostics;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>The commands of a standalone master without replicas and with cluster support disabled (issue 13):
/// CLUSTER, READONLY, READWRITE, ASKING, MODULE, REPLICAOF/SLAVEOF, REPLCONF, FAILOVER, WAIT, PFSELFTEST, LOLWUT,
/// RESTORE-ASKING and MIGRATE's argument errors, compared byte for byte with redis-server 7.0.15 in RESP2 and RESP3.
/// Left out on purpose: REPLICAOF host port, SYNC and PSYNC (redis-server starts replicating; EioSharp.Kv answers that
/// it does not replicate: checked apart), REPLCONF ACK/GETACK (no reply at all: checked apart), LOLWUT's art (random
/// in both: its shape and deterministic first rows are compared) and its last line's version (ours is INFO's
/// redis_version).</summary>
public sealed class ReplicationClusterDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    private static readonly string[][] Commands =
    [
        ["CLUSTER", "INFO"], ["CLUSTER", "HELP"], ["CLUSTER", "NODES"], ["CLUSTER", "SLOTS"], ["CLUSTER", "SHARDS"],
        ["CLUSTER", "KEYSLOT", "foo"], ["CLUSTER", "KEYSLOT"], ["CLUSTER", "nosuch"], ["CLUSTER"], ["CLUSTER", "RESET", "HARD"],
        ["CLUSTER", "COUNTKEYSINSLOT", "1"], ["CLUSTER", "MYID"], ["CLUSTER", "ADDSLOTS"],
        ["READONLY"], ["READWRITE"], ["ASKING"], ["READONLY", "x"], ["ASKING", "x"],
        ["MODULE", "LIST"], ["MODULE", "HELP"], ["MODULE", "LOAD", "/nonexistent/module.so"], ["MODULE", "LOADEX", "/nonexistent/module.so"],
        ["MODULE", "UNLOAD", "nosuch"], ["MODULE", "nosuch"], ["MODULE", "LOAD"], ["MODULE"], ["MODULE", "LIST", "x"],
        ["PFSELFTEST"], ["PFSELFTEST", "x"],
        ["WAIT", "0", "0"], ["WAIT", "x", "0"], ["WAIT", "0", "x"], ["WAIT", "0", "-1"], ["WAIT", "-1", "10"], ["WAIT", "1", "50"],
        ["WAIT", "0", "0", "0"], ["WAIT", "0"], ["WAIT", "1", "1.5"],
        ["REPLICAOF", "NO", "ONE"], ["SLAVEOF", "no", "one"], ["REPLICAOF", "no", "x"], ["REPLICAOF", "foo", "bar"],
        ["REPLICAOF", "foo", "70000"], ["REPLICAOF", "foo", "-1"], ["REPLICAOF"], ["SLAVEOF", "a", "b", "c"],
        ["REPLCONF"], ["REPLCONF", "x"], ["REPLCONF", "x", "y"], ["REPLCONF", "capa", "eof"], ["REPLCONF", "listening-port", "x"],
        ["REPLCONF", "listening-port", "1", "capa", "psync2"], ["REPLCONF", "rdb-only", "2"], ["REPLCONF", "rdb-only", "x"],
        ["REPLCONF", "rdb-only", "1"], ["REPLCONF", "ip-address", new string('a', 300)], ["REPLCONF", "ip-address", "10.0.0.1"],
        ["REPLCONF", "listening-port", "1", "nosuch", "2"],
        ["FAILOVER"], ["FAILOVER", "ABORT"], ["FAILOVER", "TO", "h", "1"], ["FAILOVER", "TO", "h", "x"], ["FAILOVER", "TIMEOUT", "0"],
        ["FAILOVER", "TIMEOUT", "x"], ["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "10"], ["FAILOVER", "FORCE"], ["FAILOVER", "FORCE", "FORCE"],
        ["FAILOVER", "x"], ["FAILOVER", "ABORT", "x"], ["FAILOVER", "TO", "h"],
        ["RESTORE-ASKING", "nokey", "0", "garbage"], ["RESTORE-ASKING", "k"],
        ["MIGRATE"], ["MIGRATE", "127.0.0.1", "1", "nokey", "0", "100"], ["MIGRATE", "127.0.0.1", "1", "k", "0", "100", "KEYS", "a"],
        ["MIGRATE", "127.0.0.1", "1", "", "0", "100", "KEYS", "nokey1", "nokey2"], ["MIGRATE", "127.0.0.1", "1", "k", "0", "x"],
        ["MIGRATE", "127.0.0.1", "1", "k", "x", "1"], ["MIGRATE", "127.0.0.1", "1", "k", "0", "100", "bogus"],
        ["MIGRATE", "127.0.0.1", "1", "k", "0", "100", "AUTH"], ["MIGRATE", "127.0.0.1", "1", "k", "0", "100", "AUTH2", "a"],
        ["MIGRATE", "127.0.0.1", "1", "k", "0", "100", "COPY", "REPLACE", "AUTH", "pw", "AUTH2", "u", "pw", "KEYS"],
        ["LOLWUT", "VERSION", "x"], ["LOLWUT", "VERSION", "5", "x"], ["LOLWUT", "VERSION", "6", "1", "x"], ["LOLWUT", "VERSION", "5", "1", "1", "x"],
        ["SET", "k", "v"], ["MIGRATE", "127.0.0.1", "PORT", "k", "0", "5000"], ["RESTORE-ASKING", "k", "0", "garbage"],
        ["MULTI"], ["WAIT", "1", "0"], ["WAIT", "0", "x"], ["READONLY"], ["EXEC"],
        ["EVAL", "return redis.call('wait', 1, 0)", "0"], ["EVAL", "return redis.pcall('cluster', 'info')", "0"],
        ["EVAL", "return redis.pcall('pfselftest')", "0"], ["EVAL", "return redis.pcall('replicaof', 'no', 'one')", "0"],
        ["EVAL", "return redis.pcall('readonly')", "0"], ["EVAL", "return redis.pcall('cluster', 'nosuch')", "0"],
        ["EVAL", "return redis.pcall('sync')", "0"], ["EVAL", "return redis.pcall('failover')", "0"],
    ];

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Replies_match_redis_byte_for_byte(int protocol)
    {
        // Nobody listens there: the refusal comes at once, so MIGRATE's timeout (5 s) is never what answers, even on a
        // loaded machine (with 100 ms both servers sometimes answered the connect timeout instead).
        int refused = RedisServerProcess.FreePort();
        List<string> Run(int port)
        {
            using var c = new RespConnection(port);
            c.Call("HELLO", protocol.ToString(System.Globalization.CultureInfo.InvariantCulture));
            c.Call("FLUSHALL");
            var seen = new List<string>();
            foreach (string[] command in Commands)
            {
                string[] args = [.. command.Select(a => a == "PORT" ? refused.ToString(System.Globalization.CultureInfo.InvariantCulture) : a)];
                seen.Add(string.Join(' ', command.Select(a => a.Length > 40 ? a[..10] + "..." : a)) + " => " + c.Call(args));
            }
            return seen;
        }

        List<string> expected = Run(servers.Redis.Port), actual = Run(servers.Kv.Port);
        var differences = expected.Zip(actual).Where(p => p.First != p.Second).Select(p => "redis-server: " + p.First + "\n  EioSharp.Kv:  " + p.Second).ToList();
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    [Fact]
    public void Wait_blocks_until_its_timeout_or_client_unblock_as_redis()
    {
        List<string> Run(int port)
        {
            var seen = new List<string>();
            using var waiter = new RespConnection(port);
            using var other = new RespConnection(port);
            string id = waiter.Call("CLIENT", "ID").Text!;

            var sw = Stopwatch.StartNew();
            seen.Add("WAIT 1 300 => " + waiter.Call("WAIT", "1", "300"));
            seen.Add("waited >= 250 ms: " + (sw.ElapsedMilliseconds >= 250));

            waiter.Send(RespConnection.Encode(["WAIT", "5", "0"])); // forever
            Thread.Sleep(200);
            seen.Add("still blocked: " + !waiter.HasData());
            seen.Add("blocked_clients: " + Info(other, "blocked_clients"));
            seen.Add("CLIENT UNBLOCK => " + other.Call("CLIENT", "UNBLOCK", id));
            seen.Add("WAIT reply => " + waiter.Read());

            waiter.Send(RespConnection.Encode(["WAIT", "5", "0"]));
            Thread.Sleep(200);
            seen.Add("CLIENT UNBLOCK ERROR => " + other.Call("CLIENT", "UNBLOCK", id, "ERROR"));
            seen.Add("WAIT reply => " + waiter.Read());
            seen.Add("CLIENT UNBLOCK not blocked => " + other.Call("CLIENT", "UNBLOCK", id));
            seen.Add("blocked_clients after: " + Info(other, "blocked_clients"));
            seen.Add("pipelined after WAIT => " + string.Join(", ", waiter.Pipeline([["WAIT", "1", "100"], ["PING"]])));
            return seen;
        }

        List<string> expected = Run(servers.Redis.Port), actual = Run(servers.Kv.Port);
        Assert.Equal(expected, actual);
        Assert.Contains("still blocked: True", actual);
    }

    [Fact]
    public void A_client_that_disconnects_while_in_wait_is_no_longer_blocked()
    {
        using var other = new RespConnection(servers.Kv.Port);
        using (var waiter = new RespConnection(servers.Kv.Port))
        {
            waiter.Send(RespConnection.Encode(["WAIT", "1", "0"]));
            Thread.Sleep(200);
            Assert.Equal("1", Info(other, "blocked_clients"));
        }
        var sw = Stopwatch.StartNew();
        while (Info(other, "blocked_clients") != "0" && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(50);
        Assert.Equal("0", Info(other, "blocked_clients"));
        Assert.Equal("+PONG", other.Call("PING").ToString());
    }

    [Fact]
    public void Replication_commands_say_that_EioSharp_Kv_does_not_replicate()
    {
        using var k = new RespConnection(servers.Kv.Port);
        const string error = "-ERR EioSharp.Kv does not replicate: it is always a master without replicas (only REPLICAOF NO ONE is accepted)";
        Assert.Equal(error, k.Call("REPLICAOF", "127.0.0.1", "6379").ToString());
        Assert.Equal(error, k.Call("SLAVEOF", "127.0.0.1", "6379").ToString());
        Assert.Equal(error, k.Call("SYNC").ToString());
        Assert.Equal(error, k.Call("PSYNC", "?", "-1").ToString());
        Assert.Contains("role:master", k.Call("INFO", "replication").Text, StringComparison.Ordinal);
        // REPLCONF ACK / GETACK from a client that is not a replica link: no reply at all (as Redis); the next command's comes.
        using var r = new RespConnection(servers.Redis.Port);
        foreach (RespConnection c in new[] { r, k })
        {
            c.Send([.. RespConnection.Encode(["REPLCONF", "ACK", "1"]), .. RespConnection.Encode(["REPLCONF", "GETACK", "*"]), .. RespConnection.Encode(["PING"])]);
            Assert.Equal("+PONG", c.Read().ToString());
        }
    }

    [Fact]
    public void Lolwut_has_redis_shape_and_names_the_server_version()
    {
        using var r = new RespConnection(servers.Redis.Port);
        using var k = new RespConnection(servers.Kv.Port);
        string version = Info(k, "redis_version");
        string redisVersion = Info(r, "redis_version");
        foreach (string[] c in new[] { new[] { "LOLWUT" }, ["LOLWUT", "VERSION", "7"], ["LOLWUT", "VERSION", "-1"], ["LOLWUT", "VERSION", "59"] })
        {
            Assert.Equal("Redis ver. " + redisVersion + "\n", r.Call(c).Text);
            Assert.Equal("Redis ver. " + version + "\n", k.Call(c).Text);
        }
        foreach (string[] c in new[]
                 {
                     new[] { "LOLWUT", "VERSION", "5" }, ["LOLWUT", "VERSION", "5", "30", "4", "3"], ["LOLWUT", "VERSION", "5", "0", "0", "0"],
                     ["LOLWUT", "VERSION", "4.9"], ["LOLWUT", "VERSION", "6"], ["LOLWUT", "VERSION", "6", "33", "7"], ["LOLWUT", "VERSION", "6", "-5", "5000"],
                 })
        {
            Resp a = r.Call(c), b = k.Call(c);
            if (a.IsError)
            {
                Assert.Equal(a.ToString(), b.ToString());
                continue;
            }
            string[] linesA = a.Text!.Split('\n'), linesB = b.Text!.Split('\n');
            string label = string.Join(' ', c);
            Assert.True(linesA.Length == linesB.Length, label + ": line count " + linesA.Length + " vs " + linesB.Length);
            // Version 5: Braille characters, one per 2x4 pixels; version 6: one coloured cell (escape, space, reset) per pixel.
            static int Cells(string line) => line.Contains('\u001b', StringComparison.Ordinal) ? line.Split(" \u001b[0m").Length - 1 : line.Length;
            for (int i = 0; i < linesA.Length - 2; i++) Assert.True(Cells(linesA[i]) == Cells(linesB[i]), label + ": cells of line " + i);
            Assert.Equal(linesA[^2].Replace(redisVersion, "V", StringComparison.Ordinal), linesB[^2].Replace(version, "V", StringComparison.Ordinal));
            Assert.EndsWith("Redis ver. " + version, linesB[^2], StringComparison.Ordinal);
            if (c[2] == "5" && c.Length == 3)
            {
                // Schotter's first two rows of squares are not rotated: the first 8 text rows are the same as Redis's.
                Assert.Equal(linesA.Take(8), linesB.Take(8));
            }
        }
    }

    [Fact]
    public void Module_load_when_enabled_answers_redis_error_for_a_module_that_does_not_load()
    {
        using var redis = RedisServerProcess.Start("--enable-module-command", "yes");
        using var kv = KvServerProcess.Start("--enable-module-command", "yes", "--appendonly", "no");
        DirectoryInfo dir = Directory.CreateTempSubdirectory("h41-module");
        string notAModule = Path.Combine(dir.FullName, "not-a-module.so");
        File.WriteAllText(notAModule, "not a shared object");
        foreach (string[] c in new[]
                 {
                     new[] { "MODULE", "LOAD", "/nonexistent/module.so" }, ["MODULE", "LOAD", notAModule, "arg"],
                     ["MODULE", "LOADEX", "/nonexistent/module.so", "CONFIG", "a", "b", "ARGS", "x"], ["MODULE", "UNLOAD", "nosuch"],
                     ["MODULE", "LIST"], ["CONFIG", "GET", "enable-module-command"],
                 })
        {
            using var r = new RespConnection(redis.Port);
            using var k = new RespConnection(kv.Port);
            Assert.Equal(r.Call(c).ToString(), k.Call(c).ToString());
        }
        dir.Delete(recursive: true);
    }

    private static string Info(RespConnection c, string field) => ServerInfo.TryField(c, "everything", field) ?? "(missing)";
}
