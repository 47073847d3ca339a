using System.Text;

namespace EioSharp.Kv.EndToEnd;

/// <summary>One server (with a small proto-max-bulk-len) that every abuse case hits; after each case the server must
/// still serve a client connected before it and a new one.</summary>
public sealed class AbusedServer : IDisposable
{
    public const int MaxBulk = 1024 * 1024;

    public KvServerProcess Server { get; } = KvServerProcess.Start("--proto-max-bulk-len", "1mb");

    public void Dispose() => Server.Dispose();
}

public sealed class ProtocolRobustnessTests(AbusedServer shared) : IClassFixture<AbusedServer>
{
    private readonly KvServerProcess _server = shared.Server;

    public static TheoryData<string, string, string> Malformed => new()
    {
        { "huge bulk length", "*1\r\n$999999999999\r\n", "invalid bulk length" },
        { "huge multibulk count", "*99999999999\r\n", "invalid multibulk length" },
        { "multibulk count over the limit", "*2000000\r\n", "invalid multibulk length" },
        { "negative bulk length", "*1\r\n$-3\r\n", "invalid bulk length" },
        { "null bulk in a request", "*1\r\n$-1\r\n", "invalid bulk length" },
        { "bulk longer than announced", "*2\r\n$3\r\nGET\r\n$1\r\nabc\r\n", "expected '\\r\\n' after bulk string" },
        { "bulk shorter than announced", "*1\r\n$5\r\nPING\r\n\r\n", "expected '\\r\\n' after bulk string" },
        { "not a number", "*abc\r\n", "invalid multibulk length" },
        { "count with a plus sign", "*+1\r\n$4\r\nPING\r\n", "invalid multibulk length" },
        { "integer instead of bulk", "*1\r\n:5\r\n", "expected '$', got ':'" },
        { "binary garbage after a header", "*2\r\n$3\r\nGET\r\n\xff\xfe\x00\x01\x80garbage\r\n", "expected '$'" },
        { "binary garbage as a count", "*\xff\xfe\xfd\x00\x01\r\n", "invalid multibulk length" },
        { "overlong count line", "*" + new string('9', 100), "invalid multibulk length" },
        { "unbalanced quotes inline", "SET a \"unbalanced\r\n", "unbalanced quotes" },
        { "inline line over 64 KiB", new string('x', 70_000), "too big inline request" },
        { "bulk just over proto-max-bulk-len", $"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${AbusedServer.MaxBulk + 1}\r\n", "invalid bulk length" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_input_gets_a_protocol_error_and_closes_only_that_connection(string name, string input, string error)
    {
        using var before = new RespClient(_server.Port);
        Assert.Equal("+PONG", before.Call("PING"));
        using (var bad = new RespClient(_server.Port, timeoutMs: 5000))
        {
            Assert.Equal("+PONG", bad.Call("PING")); // a good command first: its reply must come before the error
            bad.Send(Encoding.Latin1.GetBytes(input));
            string got = bad.ReadToEnd(out bool closed);
            Assert.True(closed, $"{name}: the server kept the connection open; got '{got}'");
            Assert.StartsWith("-ERR Protocol error: ", got);
            Assert.Contains(error, got);
            Assert.EndsWith("\r\n", got);
        }

        Assert.Equal("+PONG", before.Call("PING"));
        using var after = new RespClient(_server.Port);
        Assert.Equal("+PONG", after.Call("PING"));
        Assert.False(_server.HasExited);
    }

    [Fact]
    public void Replies_before_the_error_are_sent_in_order()
    {
        using var c = new RespClient(_server.Port, timeoutMs: 5000);
        c.Send("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$-7\r\n*1\r\n$4\r\nPING\r\n");
        Assert.Equal("+PONG\r\n$2\r\nhi\r\n-ERR Protocol error: invalid bulk length\r\n", c.ReadToEnd(out bool closed));
        Assert.True(closed);
    }

    [Fact]
    public void Clients_that_disconnect_mid_command_do_not_disturb_others()
    {
        using var before = new RespClient(_server.Port);
        Assert.Equal("+PONG", before.Call("PING"));
        string[] partials =
        [
            "*3\r\n$3\r\nSET\r\n$9\r\nmid:key:1\r\n$10\r\nabc",
            "*3\r\n$3\r\nSET\r\n$9\r\nmid:key:2",
            "*3\r\n",
            "*",
            "SET mid:key:3 inline-without-newline",
            $"*3\r\n$3\r\nSET\r\n$9\r\nmid:key:4\r\n${AbusedServer.MaxBulk}\r\n" + new string('z', 100_000),
        ];
        foreach (string partial in partials)
        {
            var c = new RespClient(_server.Port);
            c.Send(partial);
            Thread.Sleep(20);
            c.Dispose(); // close with the command unfinished
        }

        var abort = new RespClient(_server.Port);
        abort.Send("*2\r\n$3\r\nGET\r\n$5\r\nab");
        abort.Dispose();

        Assert.Equal("+PONG", before.Call("PING"));
        using var after = new RespClient(_server.Port);
        Assert.Equal("+PONG", after.Call("PING"));
        Assert.Equal(":0", after.Call("EXISTS", "mid:key:1", "mid:key:2", "mid:key:3", "mid:key:4"));
    }

    [Fact]
    public void Connection_churn_leaves_no_clients_behind()
    {
        for (int i = 0; i < 150; i++)
        {
            var c = new RespClient(_server.Port);
            switch (i % 3)
            {
                case 0:
                    c.Send(string.Concat(Enumerable.Repeat($"SET churn:{i} v\r\n", 50)));
                    break;
                case 1:
                    c.Send("*3\r\n$3\r\nSET\r\n$1\r\n");
                    break;
                default:
                    c.Send(string.Concat(Enumerable.Repeat("GET churn:0\r\n", 1000))); // and never read the replies
                    break;
            }

            c.Dispose();
        }

        // Generous bounds: with the whole suite running on a loaded machine, closing 150 connections (two thirds of them with
        // unread replies) can take the server seconds; a leak still fails (the count never reaches 1).
        using var probe = new RespClient(_server.Port, timeoutMs: 30_000);
        string clients = "";
        for (int i = 0; i < 600 && !clients.Contains("connected_clients:1\r\n", StringComparison.Ordinal); i++)
        {
            Thread.Sleep(50);
            clients = probe.Call("INFO", "clients");
        }

        Assert.Contains("connected_clients:1\r\n", clients); // only the probe: maxclients accounting does not leak
        Assert.Equal("+PONG", probe.Call("PING"));
    }

    [Fact]
    public void Announcing_bulks_over_the_limit_allocates_nothing()
    {
        using var warm = new RespClient(_server.Port);
        for (int i = 0; i < 200; i++)
        {
            warm.Call("SET", "warm", new string('w', 1000));
        }

        long rssBefore = _server.VmRssKb();
        for (int round = 0; round < 50; round++)
        {
            using var c = new RespClient(_server.Port, timeoutMs: 5000);
            // Just over the configured limit, then far over it: refused from the header alone.
            long announced = round % 2 == 0 ? AbusedServer.MaxBulk + 1 : 2_000_000_000L;
            c.Send($"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${announced}\r\n" + new string('a', 1000));
            string got = c.ReadToEnd(out bool closed);
            Assert.True(closed);
            Assert.StartsWith("-ERR Protocol error: invalid bulk length", got);
        }

        long rssAfter = _server.VmRssKb();
        Assert.True(rssAfter - rssBefore < 32 * 1024, $"VmRSS grew from {rssBefore} KiB to {rssAfter} KiB");
        using var after = new RespClient(_server.Port);
        Assert.Equal("+PONG", after.Call("PING"));
        Assert.Equal(":0", after.Call("EXISTS", "big"));
    }

    [Fact]
    public void A_bulk_at_the_limit_is_accepted()
    {
        using var c = new RespClient(_server.Port);
        string value = new('v', AbusedServer.MaxBulk);
        Assert.Equal("+OK", c.Call("SET", "limit:exact", value));
        Assert.Equal(":" + AbusedServer.MaxBulk, c.Call("STRLEN", "limit:exact"));
        Assert.Equal("-ERR string exceeds maximum allowed size (proto-max-bulk-len)", c.Call("APPEND", "limit:exact", "x"));
        Assert.Equal(":1", c.Call("DEL", "limit:exact"));
    }
}
