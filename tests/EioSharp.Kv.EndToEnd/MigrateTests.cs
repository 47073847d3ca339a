using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>MIGRATE between two EioSharp.Kv servers (issue 13): every type with its expiry moves (the source deletes
/// it, and its AOF says so), COPY keeps it, REPLACE overwrites, an existing key is Redis's BUSYKEY error, KEYS moves
/// several, AUTH and AUTH2 log in to the target, NOKEY when nothing exists, IOERR for a refused port and for a target
/// that never answers, and the transfer does not stop other clients (outside MULTI and scripts).</summary>
public sealed class MigrateTests : IClassFixture<MigrateTests.Servers>
{
    private readonly Servers _servers;

    public MigrateTests(Servers servers) => _servers = servers;

    public sealed class Servers : IDisposable
    {
        public KvServerProcess Source { get; } = KvServerProcess.Start("--domains", "1", "--appendfsync", "always");

        public KvServerProcess Target { get; } = KvServerProcess.Start("--domains", "1", "--appendonly", "no");

        public KvServerProcess Protected { get; } = KvServerProcess.Start("--domains", "1", "--appendonly", "no", "--requirepass", "s3cret");

        public void Dispose()
        {
            Source.Dispose();
            Target.Dispose();
            Protected.Dispose();
        }
    }

    private static string K(string name) => name + ":" + Guid.NewGuid().ToString("N")[..8];

    private string TargetPort => _servers.Target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Every_type_moves_with_its_value_and_expiry_and_leaves_the_source()
    {
        using var s = new RespConnection(_servers.Source.Port);
        using var t = new RespConnection(_servers.Target.Port);
        string str = K("str"), list = K("list"), hash = K("hash"), set = K("set"), zset = K("zset"), stream = K("stream"), hll = K("hll"), big = K("big");
        s.Call("SET", str, "hello", "PX", "100000");
        s.Call("RPUSH", list, "a", "b", "c");
        s.Call("HSET", hash, "f1", "v1", "f2", "v2");
        s.Call("SADD", set, "x", "y", "z");
        s.Call("ZADD", zset, "1.5", "m1", "-2", "m2");
        s.Call("XADD", stream, "1-1", "f", "v");
        s.Call("PFADD", hll, "a", "b", "c", "d");
        s.Call("SET", big, new string('x', 300_000));
        string[] keys = [str, list, hash, set, zset, stream, hll, big];
        var dumps = keys.ToDictionary(k => k, k => s.Call("DUMP", k).Text);

        Assert.Equal("+OK", s.Call("MIGRATE", "127.0.0.1", TargetPort, str, "0", "5000").ToString());
        Assert.Equal("+OK", s.Call(["MIGRATE", "127.0.0.1", TargetPort, "", "0", "5000", "KEYS", .. keys.Skip(1)]).ToString());

        foreach (string k in keys)
        {
            Assert.Equal(":0", s.Call("EXISTS", k).ToString());
            Assert.Equal(dumps[k], t.Call("DUMP", k).Text);
        }
        long ttl = long.Parse(t.Call("PTTL", str).Text!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(ttl, 1, 100_000);
        Assert.Equal(":-1", t.Call("PTTL", list).ToString());
        Assert.Equal("*[$\"a\", $\"b\", $\"c\"]", t.Call("LRANGE", list, "0", "-1").ToString());
        Assert.Equal(":4", t.Call("PFCOUNT", hll).ToString());

        // The source's deletion is durable: its AOF logs it (as a DEL), so a restart does not bring the keys back.
        string aof = _servers.Source.AofText;
        Assert.Contains("DEL", aof, StringComparison.Ordinal);
    }

    [Fact]
    public void Copy_keeps_the_key_replace_overwrites_and_an_existing_key_is_busykey()
    {
        using var s = new RespConnection(_servers.Source.Port);
        using var t = new RespConnection(_servers.Target.Port);
        string key = K("k");
        s.Call("SET", key, "new");
        t.Call("SET", key, "old");
        Assert.Equal("-ERR Target instance replied with error: BUSYKEY Target key name already exists.",
            s.Call("MIGRATE", "127.0.0.1", TargetPort, key, "0", "5000").ToString());
        Assert.Equal("$\"new\"", s.Call("GET", key).ToString());
        Assert.Equal("$\"old\"", t.Call("GET", key).ToString());

        Assert.Equal("+OK", s.Call("MIGRATE", "127.0.0.1", TargetPort, key, "0", "5000", "COPY", "REPLACE").ToString());
        Assert.Equal("$\"new\"", s.Call("GET", key).ToString());
        Assert.Equal("$\"new\"", t.Call("GET", key).ToString());

        // Another database of the target.
        Assert.Equal("+OK", s.Call("MIGRATE", "127.0.0.1", TargetPort, key, "3", "5000", "COPY").ToString());
        t.Call("SELECT", "3");
        Assert.Equal("$\"new\"", t.Call("GET", key).ToString());

        // KEYS with one key already on the target: the others move, the error names the first failure (as Redis).
        string a = K("a"), b = K("b");
        s.Call("SET", a, "1");
        s.Call("SET", b, "2");
        t.Call("SELECT", "0");
        t.Call("SET", a, "there");
        Assert.Equal("-ERR Target instance replied with error: BUSYKEY Target key name already exists.",
            s.Call("MIGRATE", "127.0.0.1", TargetPort, "", "0", "5000", "KEYS", a, b).ToString());
        Assert.Equal("$\"1\"", s.Call("GET", a).ToString());
        Assert.Equal(":0", s.Call("EXISTS", b).ToString());
        Assert.Equal("$\"2\"", t.Call("GET", b).ToString());
    }

    [Fact]
    public void Nokey_when_no_key_exists()
    {
        using var s = new RespConnection(_servers.Source.Port);
        Assert.Equal("+NOKEY", s.Call("MIGRATE", "127.0.0.1", TargetPort, K("missing"), "0", "1000").ToString());
        Assert.Equal("+NOKEY", s.Call("MIGRATE", "127.0.0.1", "1", "", "0", "1000", "KEYS", K("x"), K("y")).ToString());
    }

    [Fact]
    public void Auth_and_auth2_log_in_to_the_target()
    {
        using var s = new RespConnection(_servers.Source.Port);
        string port = _servers.Protected.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string key = K("secret");
        s.Call("SET", key, "v");
        Assert.Equal("-ERR Target instance replied with error: NOAUTH Authentication required.",
            s.Call("MIGRATE", "127.0.0.1", port, key, "0", "5000").ToString());
        Assert.StartsWith("-ERR Target instance replied with error: WRONGPASS",
            s.Call("MIGRATE", "127.0.0.1", port, key, "0", "5000", "AUTH", "wrong").ToString(), StringComparison.Ordinal);
        Assert.Equal("$\"v\"", s.Call("GET", key).ToString());
        Assert.Equal("+OK", s.Call("MIGRATE", "127.0.0.1", port, key, "0", "5000", "COPY", "AUTH", "s3cret").ToString());
        Assert.Equal("+OK", s.Call("MIGRATE", "127.0.0.1", port, key, "0", "5000", "REPLACE", "AUTH2", "default", "s3cret").ToString());
        Assert.Equal(":0", s.Call("EXISTS", key).ToString());
        using var p = new RespConnection(_servers.Protected.Port);
        p.Call("AUTH", "s3cret");
        Assert.Equal("$\"v\"", p.Call("GET", key).ToString());
    }

    [Fact]
    public void A_refused_port_and_a_silent_target_are_ioerr_and_other_clients_go_on_meanwhile()
    {
        using var s = new RespConnection(_servers.Source.Port);
        using var other = new RespConnection(_servers.Source.Port);
        string key = K("stay");
        s.Call("SET", key, "v");
        int nobody = RedisServerProcess.FreePort();
        Assert.Equal("-IOERR error or timeout writing to target instance",
            s.Call("MIGRATE", "127.0.0.1", nobody.ToString(System.Globalization.CultureInfo.InvariantCulture), key, "0", "500").ToString());

        // A target that accepts and never answers: the MIGRATE times out reading; meanwhile other clients are served.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        string silentPort = ((IPEndPoint)silent.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var sw = Stopwatch.StartNew();
        s.Send(RespConnection.Encode(["MIGRATE", "127.0.0.1", silentPort, key, "0", "1500"]));
        Thread.Sleep(300);
        Assert.False(s.HasData());
        var ping = Stopwatch.StartNew();
        Assert.Equal("+PONG", other.Call("PING").ToString());
        Assert.Equal("$\"v\"", other.Call("GET", key).ToString());
        Assert.True(ping.Elapsed < TimeSpan.FromSeconds(1), "another client waited " + ping.Elapsed);
        Assert.Equal("-IOERR error or timeout reading to target instance", s.Read().ToString());
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(1400), "answered after " + sw.Elapsed);
        Assert.Equal("$\"v\"", s.Call("GET", key).ToString());
    }

    [Fact]
    public void A_key_changed_during_the_transfer_keeps_its_new_value_on_the_source()
    {
        // A target that answers only when told to: the key is changed here between the snapshot and the reply.
        using var s = new RespConnection(_servers.Source.Port);
        using var other = new RespConnection(_servers.Source.Port);
        string key = K("racy");
        s.Call("SET", key, "before");
        using var slow = new TcpListener(IPAddress.Loopback, 0);
        slow.Start();
        string port = ((IPEndPoint)slow.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        s.Send(RespConnection.Encode(["MIGRATE", "127.0.0.1", port, key, "0", "10000"]));
        using TcpClient accepted = slow.AcceptTcpClient();
        Assert.Equal("+OK", other.Call("SET", key, "after").ToString());
        accepted.GetStream().Write("+OK\r\n+OK\r\n"u8); // SELECT, RESTORE
        Assert.Equal("+OK", s.Read().ToString());
        Assert.Equal("$\"after\"", other.Call("GET", key).ToString());

        // Unchanged, the same transfer deletes it.
        s.Send(RespConnection.Encode(["MIGRATE", "127.0.0.1", port, key, "0", "10000"]));
        using TcpClient second = slow.AcceptTcpClient();
        second.GetStream().Write("+OK\r\n+OK\r\n"u8);
        Assert.Equal("+OK", s.Read().ToString());
        Assert.Equal(":0", other.Call("EXISTS", key).ToString());
    }

    [Fact]
    public void Migrate_queued_in_multi_runs_in_exec_and_wait_inside_multi_answers_at_once()
    {
        using var s = new RespConnection(_servers.Source.Port);
        using var t = new RespConnection(_servers.Target.Port);
        string key = K("m");
        s.Call("SET", key, "v");
        Assert.Equal("+OK", s.Call("MULTI").ToString());
        Assert.Equal("+QUEUED", s.Call("MIGRATE", "127.0.0.1", TargetPort, key, "0", "1000").ToString());
        Assert.Equal("+QUEUED", s.Call("BLPOP", K("nolist"), "0").ToString());
        Assert.Equal("+QUEUED", s.Call("WAIT", "1", "0").ToString());
        Assert.Equal("*[+OK, *nil, :0]", s.Call("EXEC").ToString());
        Assert.Equal(":0", s.Call("EXISTS", key).ToString());
        Assert.Equal("$\"v\"", t.Call("GET", key).ToString());
    }
}
