using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xunit.Abstractions;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>MIGRATE queued in MULTI (run by EXEC) and called from scripts (EVAL, EVAL_RO, FCALL), compared with
/// redis-server 7.0.15 (issue 13): each server migrates to a target of its own kind (the DUMP payloads differ), and
/// the replies, the keys left on the source and the keys found on the target must be the same. MIGRATE to the server
/// itself inside MULTI answers the same IOERR after the timeout on both (no deadlock), and the AOF of EioSharp.Kv logs
/// the DEL of the moved keys inside the transaction's MULTI block.</summary>
public sealed class MigrateMultiScriptDiffTests : IClassFixture<MigrateMultiScriptDiffTests.Servers>
{
    private readonly Servers _servers;

    private readonly ITestOutputHelper _output;

    public MigrateMultiScriptDiffTests(Servers servers, ITestOutputHelper output)
    {
        _servers = servers;
        _output = output;
    }

    public sealed class Servers : IDisposable
    {
        public RedisServerProcess Redis { get; } = RedisServerProcess.Start();

        public RedisServerProcess RedisTarget { get; } = RedisServerProcess.Start();

        public KvServerProcess Kv { get; } = KvServerProcess.Start("--domains", "1", "--appendfsync", "always");

        public KvServerProcess KvTarget { get; } = KvServerProcess.Start("--domains", "1", "--appendonly", "no");

        public void Dispose()
        {
            Redis.Dispose();
            RedisTarget.Dispose();
            Kv.Dispose();
            KvTarget.Dispose();
        }
    }

    private const string FunctionLibrary = "#!lua name=miglib\n" +
        "redis.register_function('mig', function(keys, args) return redis.call('migrate', args[1], args[2], keys[1], 0, 5000) end)\n" +
        "redis.register_function{function_name='migro', callback=function(keys, args) return redis.call('migrate', args[1], args[2], keys[1], 0, 5000) end, flags={'no-writes'}}";

    private static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    /// <summary>The scenario, against one source and its target; every reply noted as "who: command => reply".</summary>
    private static List<string> Run(int sourcePort, int targetPort)
    {
        var seen = new List<string>();
        using var s = new RespConnection(sourcePort);
        using var t = new RespConnection(targetPort);
        string tp = P(targetPort);
        string closed = P(RedisServerProcess.FreePort());
        void Note(string who, RespConnection c, params string[] command) =>
            seen.Add(who + ": " + string.Join(' ', command.Select(a => a == tp ? "<target>" : a == closed ? "<closed>" : a)).Replace("\n", "\\n") +
                " => " + c.Call(command));

        Note("s", s, "FLUSHALL");
        Note("t", t, "FLUSHALL");
        Note("s", s, "SET", "k", "v");
        Note("s", s, "RPUSH", "list", "a", "b", "c");
        Note("s", s, "SET", "ttl", "x", "PX", "100000");

        // Moved inside MULTI: the GET after it sees the key gone.
        Note("s", s, "MULTI");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "k", "0", "5000");
        Note("s", s, "GET", "k");
        Note("s", s, "EXEC");
        Note("t", t, "GET", "k");

        // COPY keeps it; a second MIGRATE without REPLACE is the target's BUSYKEY; REPLACE overwrites it.
        Note("s", s, "MULTI");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "list", "0", "5000", "COPY");
        Note("s", s, "EXISTS", "list");
        Note("s", s, "RPUSH", "list", "d");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "list", "0", "5000");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "list", "0", "5000", "REPLACE");
        Note("s", s, "EXISTS", "list");
        Note("s", s, "EXEC");
        Note("t", t, "LRANGE", "list", "0", "-1");

        // NOKEY, the KEYS form (a missing key among them), another database, a key with a time to live.
        Note("s", s, "MSET", "a", "1", "b", "2");
        Note("s", s, "MULTI");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "nosuch", "0", "5000");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "", "0", "5000", "KEYS", "a", "nosuch", "b");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "ttl", "2", "5000");
        Note("s", s, "EXISTS", "a", "b", "ttl");
        Note("s", s, "EXEC");
        Note("t", t, "MGET", "a", "b");
        Note("t", t, "SELECT", "2");
        Note("t", t, "GET", "ttl");
        seen.Add("t: PTTL ttl in range => " + (long.Parse(t.Call("PTTL", "ttl").Text!, CultureInfo.InvariantCulture) is > 90_000 and <= 100_000));
        Note("t", t, "SELECT", "0");

        // A closed port (IOERR), bad options: errors inside EXEC, the other commands still run.
        Note("s", s, "SET", "stay", "here");
        Note("s", s, "MULTI");
        Note("s", s, "MIGRATE", "127.0.0.1", closed, "stay", "0", "300");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "stay", "0", "5000", "BOGUS");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "stay", "0", "5000", "KEYS", "stay");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "stay", "x", "5000");
        Note("s", s, "MIGRATE", "127.0.0.1", tp, "stay", "0", "5000", "AUTH");
        Note("s", s, "GET", "stay");
        Note("s", s, "EXEC");

        // Scripts: OK, NOKEY, the IOERR raised by redis.call (with the script's sha) and returned by redis.pcall.
        const string Call = "return redis.call('migrate', ARGV[1], ARGV[2], KEYS[1], 0, ARGV[3])";
        const string PCall = "local r = redis.pcall('migrate', ARGV[1], ARGV[2], KEYS[1], 0, ARGV[3]) if type(r) == 'table' and r.err then return 'E:' .. r.err end return r";
        Note("s", s, "SET", "e1", "v1");
        Note("s", s, "EVAL", Call, "1", "e1", "127.0.0.1", tp, "5000");
        Note("s", s, "EXISTS", "e1");
        Note("t", t, "GET", "e1");
        Note("s", s, "EVAL", Call, "1", "e1", "127.0.0.1", tp, "5000");
        Note("s", s, "EVAL", Call, "1", "stay", "127.0.0.1", closed, "300");
        Note("s", s, "EVAL", PCall, "1", "stay", "127.0.0.1", closed, "300");
        Note("s", s, "EVAL_RO", Call, "1", "stay", "127.0.0.1", tp, "5000");
        Note("s", s, "GET", "stay");
        Note("s", s, "SET", "f1", "v1");
        Note("s", s, "FUNCTION", "LOAD", "REPLACE", FunctionLibrary);
        Note("s", s, "FCALL", "mig", "1", "f1", "127.0.0.1", tp);
        Note("s", s, "FCALL_RO", "mig", "1", "f1", "127.0.0.1", tp);
        Note("s", s, "FCALL_RO", "migro", "1", "f1", "127.0.0.1", tp);
        Note("s", s, "FCALL", "migro", "1", "f1", "127.0.0.1", tp);
        Note("s", s, "EXISTS", "f1");
        Note("t", t, "GET", "f1");
        Note("s", s, "FUNCTION", "DELETE", "miglib");
        return seen;
    }

    [Fact]
    public void Migrate_in_multi_and_scripts_answers_as_redis()
    {
        List<string> redis = Run(_servers.Redis.Port, _servers.RedisTarget.Port);
        List<string> kv = Run(_servers.Kv.Port, _servers.KvTarget.Port);
        foreach (string line in kv) _output.WriteLine(line);
        Assert.Equal(string.Join('\n', redis), string.Join('\n', kv));
        // A few of the expected replies, so that the comparison cannot pass with both servers refusing everything.
        Assert.Contains("s: EXEC => *[+OK, $nil]", kv);
        Assert.Contains("t: GET k => $\"v\"", kv);
        Assert.Contains("t: GET e1 => $\"v1\"", kv);
        Assert.Contains("t: GET f1 => $\"v1\"", kv);
    }

    [Fact]
    public void The_aof_logs_the_del_of_moved_keys_inside_the_multi_block()
    {
        using var s = new RespConnection(_servers.Kv.Port);
        string key = "aof:" + Guid.NewGuid().ToString("N")[..8], copied = key + ":copy";
        s.Call("SET", key, "v");
        s.Call("SET", copied, "v");
        s.Call("MULTI");
        s.Call("MIGRATE", "127.0.0.1", P(_servers.KvTarget.Port), copied, "0", "5000", "COPY");
        s.Call("MIGRATE", "127.0.0.1", P(_servers.KvTarget.Port), key, "0", "5000");
        Assert.Equal("*[+OK, +OK]", s.Call("EXEC").ToString());
        string aof = File.ReadAllText(AofFiles.LastPart(_servers.Kv.DataDir), Encoding.Latin1);
        string del = "*2\r\n$3\r\nDEL\r\n$" + key.Length.ToString(CultureInfo.InvariantCulture) + "\r\n" + key + "\r\n";
        int at = aof.LastIndexOf(del, StringComparison.Ordinal);
        Assert.True(at > 0, "no DEL of the migrated key in the AOF");
        Assert.EndsWith("*1\r\n$5\r\nMULTI\r\n", aof[..at], StringComparison.Ordinal);
        Assert.StartsWith("*1\r\n$4\r\nEXEC\r\n", aof[(at + del.Length)..], StringComparison.Ordinal);
        // From a script: the DEL is logged as well (Redis propagates MIGRATE as DEL).
        string scripted = key + ":eval";
        s.Call("SET", scripted, "v");
        Assert.Equal("+OK", s.Call("EVAL", "return redis.call('migrate', '127.0.0.1', ARGV[1], KEYS[1], 0, 5000)", "1", scripted, P(_servers.KvTarget.Port)).ToString());
        aof = File.ReadAllText(AofFiles.LastPart(_servers.Kv.DataDir), Encoding.Latin1);
        Assert.Contains("$3\r\nDEL\r\n$" + scripted.Length.ToString(CultureInfo.InvariantCulture) + "\r\n" + scripted + "\r\n", aof, StringComparison.Ordinal);
        Assert.DoesNotContain("$" + copied.Length.ToString(CultureInfo.InvariantCulture) + "\r\n" + copied + "\r\n*", aof[(aof.IndexOf(copied, StringComparison.Ordinal) + copied.Length)..], StringComparison.Ordinal);
    }

    /// <summary>MIGRATE to the server itself inside MULTI: the server blocks for the timeout and answers the read
    /// IOERR (its own RESTORE is only read afterwards), on both servers; the key stays and the server goes on.</summary>
    [Fact]
    public void Migrate_to_itself_in_multi_times_out_with_the_same_ioerr_on_both()
    {
        string RunOn(int port)
        {
            using var c = new RespConnection(port);
            string key = "self:" + Guid.NewGuid().ToString("N")[..8];
            c.Call("SET", key, "v");
            c.Call("MULTI");
            c.Call("MIGRATE", "127.0.0.1", P(port), key, "0", "700");
            c.Call("GET", key);
            var sw = Stopwatch.StartNew();
            string reply = c.Call("EXEC").ToString();
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(650), "answered after " + sw.Elapsed);
            using var other = new RespConnection(port);
            Assert.Equal("+PONG", other.Call("PING").ToString());
            Assert.Equal("$\"v\"", c.Call("GET", key).ToString());

            // The same from a script: the error carries the script's sha.
            sw.Restart();
            reply += " | " + c.Call("EVAL", "return redis.call('migrate', '127.0.0.1', ARGV[1], KEYS[1], 0, 700)", "1", key, P(port));
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(650), "answered after " + sw.Elapsed);
            Assert.Equal("$\"v\"", other.Call("GET", key).ToString());
            return reply;
        }
        string redis = RunOn(_servers.Redis.Port);
        string kv = RunOn(_servers.Kv.Port);
        Assert.StartsWith("*[-IOERR error or timeout reading to target instance, $\"v\"] | -IOERR error or timeout reading to target instance script: ", redis, StringComparison.Ordinal);
        Assert.Equal(redis, kv);
    }
}
