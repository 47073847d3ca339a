using System.Diagnostics;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Blocking commands: a blocked client is a parked request woken by other clients' writes, first blocked
/// first served, with timeouts, CLIENT UNBLOCK, and a client that disconnects while blocked losing nothing.</summary>
public sealed class BlockingTests : IClassFixture<BlockingTests.Server>
{
    private readonly int _port;

    public BlockingTests(Server server) => _port = server.Kv.Port;

    public sealed class Server : IDisposable
    {
        public KvServerProcess Kv { get; } = KvServerProcess.Start("--domains", "2", "--appendfsync", "always");

        public void Dispose() => Kv.Dispose();
    }

    private RespConnection Connect(int db = 0)
    {
        var c = new RespConnection(_port);
        if (db != 0) Assert.Equal("OK", c.Call("SELECT", db.ToString(System.Globalization.CultureInfo.InvariantCulture)).Text);
        return c;
    }

    private static string K(string name) => name + ":" + Guid.NewGuid().ToString("N")[..8];

    private static void WaitBlocked(RespConnection admin, int atLeast)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            string info = admin.Call("INFO", "clients").Text!;
            int n = int.Parse(info.Split("blocked_clients:")[1].Split('\r')[0], System.Globalization.CultureInfo.InvariantCulture);
            if (n >= atLeast) return;
            Thread.Sleep(20);
        }
        Assert.Fail($"fewer than {atLeast} clients blocked after 10 s");
    }

    /// <summary>Waits until the client <paramref name="id"/> itself is blocked (CLIENT LIST flag b): a count of blocked
    /// clients can still include one whose end (or disconnection) the store has not yet counted.</summary>
    private static void WaitClientBlocked(RespConnection admin, long id)
    {
        var sw = Stopwatch.StartNew();
        string idText = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        while (sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            string line = admin.Call("CLIENT", "LIST", "ID", idText).Text!;
            if (line.Contains(" flags=b ", StringComparison.Ordinal)) return;
            Thread.Sleep(20);
        }

        Assert.Fail($"client {id} not blocked after 10 s");
    }

    [Fact]
    public void Blpop_is_served_by_another_clients_push_first_blocked_first_served()
    {
        string list = K("list");
        using var admin = Connect(4);
        using var a = Connect(4);
        using var b = Connect(4);
        using var c = Connect(4);
        int before = 0;
        a.Send(RespConnection.Encode(["BLPOP", list, "0"]));
        WaitBlocked(admin, before + 1);
        b.Send(RespConnection.Encode(["BRPOP", "other" + list, list, "0"]));
        WaitBlocked(admin, before + 2);
        c.Send(RespConnection.Encode(["BLPOP", list, "0"]));
        WaitBlocked(admin, before + 3);
        Assert.Equal(":2", admin.Call("RPUSH", list, "x", "y").ToString());
        Assert.Equal($"*[$\"{list}\", $\"x\"]", a.Read().ToString()); // first blocked: LPOP
        Assert.Equal($"*[$\"{list}\", $\"y\"]", b.Read().ToString()); // second: RPOP of what is left
        Assert.Equal(":0", admin.Call("LLEN", list).ToString());
        Assert.Equal(":1", admin.Call("LPUSH", list, "z").ToString());
        Assert.Equal($"*[$\"{list}\", $\"z\"]", c.Read().ToString());
    }

    [Fact]
    public void Timeout_answers_nil_in_resp2_and_resp3()
    {
        using var a = Connect();
        var sw = Stopwatch.StartNew();
        Assert.Equal("*nil", a.Call("BLPOP", K("none"), "0.3").ToString());
        Assert.InRange(sw.ElapsedMilliseconds, 250, 5000);
        Assert.Equal("*nil", a.Call("BRPOPLPUSH", K("none"), K("dst"), "0.1").ToString());
        a.Call("HELLO", "3");
        Assert.Equal("_nil", a.Call("BLMOVE", K("none"), K("dst"), "LEFT", "RIGHT", "0.1").ToString());
        Assert.Equal("-ERR timeout is negative", a.Call("BLPOP", "x", "-1").ToString());
        Assert.Equal("-ERR timeout is not a float or out of range", a.Call("BLPOP", "x", "soon").ToString());
    }

    [Fact]
    public void Pipelined_commands_around_a_blocking_one_keep_their_order()
    {
        string list = K("list"), key = K("key");
        using var a = Connect();
        using var admin = Connect();
        a.Send([.. RespConnection.Encode(["SET", key, "1"]), .. RespConnection.Encode(["BLPOP", list, "0"]), .. RespConnection.Encode(["GET", key])]);
        Assert.Equal("+OK", a.Read().ToString()); // the reply before the blocking command is sent at once
        WaitBlocked(admin, 1);
        admin.Call("SET", key, "2");
        admin.Call("RPUSH", list, "v");
        Assert.Equal($"*[$\"{list}\", $\"v\"]", a.Read().ToString());
        Assert.Equal("$\"2\"", a.Read().ToString()); // ran after BLPOP, so it sees the later SET
    }

    [Fact]
    public void Input_sent_while_blocked_and_after_the_wake_is_served_in_order_across_repeated_blocks()
    {
        // The socket of a blocked connection is watched by a read that outlives the wait: input sent while blocked, and
        // the next command sent after the wake (taken by that read), must each be answered once and in order.
        string list = K("list"), key = K("key");
        using var a = Connect();
        using var admin = Connect();
        for (int i = 0; i < 5; i++)
        {
            string n = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            a.Send(RespConnection.Encode(["BLPOP", list, "0"]));
            WaitBlocked(admin, 1);
            a.Send(RespConnection.Encode(["SET", key, n])); // arrives while blocked: runs after BLPOP's reply
            Thread.Sleep(20);
            Assert.Equal(":1", admin.Call("RPUSH", list, "v" + n).ToString());
            Assert.Equal($"*[$\"{list}\", $\"v{n}\"]", a.Read().ToString());
            Assert.Equal("+OK", a.Read().ToString());
            Assert.Equal($"$\"{n}\"", a.Call("GET", key).ToString()); // sent after the wake
        }

        a.Send(RespConnection.Encode(["BLPOP", list, "0"]));
        WaitBlocked(admin, 1);
        a.Dispose(); // a disconnect after earlier blocks is still seen while blocked
        var sw = Stopwatch.StartNew();
        while (admin.Call("INFO", "clients").Text!.Contains("blocked_clients:1", StringComparison.Ordinal) && sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(20);
        }
        admin.Call("RPUSH", list, "kept");
        Assert.Equal("*[$\"kept\"]", admin.Call("LRANGE", list, "0", "-1").ToString());
    }

    [Fact]
    public void A_client_that_disconnects_while_blocked_loses_nothing()
    {
        string list = K("list");
        using var admin = Connect();
        var gone = Connect();
        gone.Send(RespConnection.Encode(["BLPOP", list, "0"]));
        WaitBlocked(admin, 1);
        gone.Dispose();
        var sw = Stopwatch.StartNew();
        while (admin.Call("INFO", "clients").Text!.Contains("blocked_clients:1", StringComparison.Ordinal) && sw.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(20);
        }
        admin.Call("RPUSH", list, "kept");
        Assert.Equal("*[$\"kept\"]", admin.Call("LRANGE", list, "0", "-1").ToString());
    }

    [Fact]
    public void Client_unblock_with_timeout_or_error()
    {
        using var admin = Connect();
        using var a = Connect();
        long id = long.Parse(a.Call("CLIENT", "ID").Text!, System.Globalization.CultureInfo.InvariantCulture);
        a.Send(RespConnection.Encode(["BLPOP", K("none"), "0"]));
        WaitClientBlocked(admin, id);
        Assert.Equal(":1", admin.Call("CLIENT", "UNBLOCK", id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToString());
        Assert.Equal("*nil", a.Read().ToString());
        a.Send(RespConnection.Encode(["BLPOP", K("none"), "0"]));
        WaitClientBlocked(admin, id);
        Assert.Equal(":1", admin.Call("CLIENT", "UNBLOCK", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "ERROR").ToString());
        Assert.Equal("-UNBLOCKED client unblocked via CLIENT UNBLOCK", a.Read().ToString());
        Assert.Equal(":0", admin.Call("CLIENT", "UNBLOCK", "999999").ToString());
        Assert.Equal("-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR", admin.Call("CLIENT", "UNBLOCK", "1", "LATER").ToString());
    }

    [Fact]
    public void Blmove_chain_wakes_the_next_waiter_and_wrong_types_fail_at_once()
    {
        string src = K("src"), dst = K("dst"), str = K("str");
        using var admin = Connect();
        using var mover = Connect();
        using var popper = Connect();
        mover.Send(RespConnection.Encode(["BLMOVE", src, dst, "LEFT", "RIGHT", "0"]));
        WaitBlocked(admin, 1);
        popper.Send(RespConnection.Encode(["BLPOP", dst, "0"]));
        WaitBlocked(admin, 2);
        admin.Call("LPUSH", src, "item");
        Assert.Equal("$\"item\"", mover.Read().ToString());
        Assert.Equal($"*[$\"{dst}\", $\"item\"]", popper.Read().ToString());
        admin.Call("SET", str, "v");
        Assert.Equal("-WRONGTYPE Operation against a key holding the wrong kind of value", admin.Call("BLPOP", str, "0").ToString());
    }

    [Fact]
    public void Blmpop_serves_the_first_nonempty_key()
    {
        string l1 = K("l1"), l2 = K("l2");
        using var admin = Connect();
        using var a = Connect();
        a.Send(RespConnection.Encode(["BLMPOP", "0", "2", l1, l2, "RIGHT", "COUNT", "2"]));
        WaitBlocked(admin, 1);
        admin.Call("RPUSH", l2, "a", "b", "c");
        Assert.Equal($"*[$\"{l2}\", *[$\"c\", $\"b\"]]", a.Read().ToString());
        Assert.Equal("-ERR numkeys should be greater than 0", admin.Call("BLMPOP", "0", "0", l1, "LEFT").ToString());
    }

    [Fact]
    public void Xread_and_xreadgroup_block_until_an_entry_arrives()
    {
        string stream = K("stream");
        using var admin = Connect();
        using var reader = Connect();
        using var member = Connect();
        Assert.Equal("+OK", admin.Call("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM").ToString());
        reader.Send(RespConnection.Encode(["XREAD", "BLOCK", "0", "STREAMS", stream, "$"]));
        WaitBlocked(admin, 1);
        member.Send(RespConnection.Encode(["XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", stream, ">"]));
        WaitBlocked(admin, 2);
        Assert.Equal("$\"5-1\"", admin.Call("XADD", stream, "5-1", "f", "v").ToString());
        string entry = $"*[*[$\"{stream}\", *[*[$\"5-1\", *[$\"f\", $\"v\"]]]]]";
        Assert.Equal(entry, reader.Read().ToString());
        Assert.Equal(entry, member.Read().ToString());
        Assert.Equal(":1", admin.Call("XACK", stream, "g", "5-1").ToString()); // it was delivered to alice: pending until acked
        Assert.Equal("*nil", reader.Call("XREAD", "BLOCK", "100", "STREAMS", stream, "$").ToString());
    }
}
