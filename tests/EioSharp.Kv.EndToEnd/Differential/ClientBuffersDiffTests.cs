using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13: CLIENT LIST buffer fields and client-output-buffer-limit normal, checked on redis-server 7.0.15 and
/// EioSharp.Kv with the same clients: an incomplete command shows its parsed arguments in argv-mem and the rest in qbuf;
/// CLIENT LIST counts its own arguments; a MULTI's queued commands are its multi-mem; a subscriber that does not read shows its output (obl/oll/omem, events=rw); a
/// client that does not read its replies is closed over the hard limit, or over the soft limit for more than its seconds,
/// and kept without limits. (Byte counts of buffers differ between the servers: compared where they are defined.)</summary>
public sealed partial class ClientBuffersDiffTests
{
    [GeneratedRegex(@"(\S+)=(\S*)")]
    private static partial Regex Field();

    private static Dictionary<string, string> Line(RespConnection c, long id)
    {
        string list = c.Call("CLIENT", "LIST").Text!;
        string? line = list.Split('\n').FirstOrDefault(l => l.StartsWith("id=" + id + " ", StringComparison.Ordinal));
        return line is null ? [] : Field().Matches(line).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
    }

    private static Socket Raw(int port, int receiveBuffer = 0)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (receiveBuffer > 0) s.ReceiveBufferSize = receiveBuffer;
        s.Connect(IPAddress.Loopback, port);
        return s;
    }

    private static long IdOf(Socket s)
    {
        s.Send("CLIENT ID\r\n"u8.ToArray());
        var buf = new byte[64];
        int n = s.Receive(buf);
        return long.Parse(Encoding.ASCII.GetString(buf, 1, n - 3), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static List<string> Observe(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        using Socket partial = Raw(port);
        long partialId = IdOf(partial);
        partial.Send("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhel"u8.ToArray());
        Thread.Sleep(200);
        Dictionary<string, string> p = Line(c, partialId);
        seen.Add($"partial argv-mem={p["argv-mem"]} qbuf={p["qbuf"]} obl={p["obl"]} oll={p["oll"]} omem={p["omem"]} events={p["events"]}");
        partial.Send("lo\r\n"u8.ToArray());
        Thread.Sleep(200);
        p = Line(c, partialId);
        seen.Add($"after argv-mem={p["argv-mem"]} qbuf={p["qbuf"]} cmd={p["cmd"]}");
        partial.Send("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5"u8.ToArray()); // the $n header itself incomplete: it is in qbuf
        Thread.Sleep(200);
        p = Line(c, partialId);
        seen.Add($"header argv-mem={p["argv-mem"]} qbuf={p["qbuf"]}");
        partial.Send("\r\nhello\r\n"u8.ToArray());
        Thread.Sleep(200);
        // A large argument (>= 32 KiB) being received: its data so far is query buffer, not argv-mem.
        partial.Send(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$40000\r\n" + new string('x', 20_000)));
        Thread.Sleep(300);
        p = Line(c, partialId);
        seen.Add($"large argv-mem={p["argv-mem"]} qbuf={p["qbuf"]}");
        partial.Send(Encoding.ASCII.GetBytes(new string('x', 20_000) + "\r\n"));
        Thread.Sleep(200);
        p = Line(c, partialId);
        seen.Add($"large done argv-mem={p["argv-mem"]} qbuf={p["qbuf"]} cmd={p["cmd"]}");
        // A 50 KB inline command grows the query buffer; it is given back (Redis: clientsCron after 2 s idle).
        partial.Send(Encoding.ASCII.GetBytes("SET d " + new string('y', 50_000) + "\r\n"));
        Thread.Sleep(3000);
        p = Line(c, partialId);
        seen.Add($"inline 50 KB then idle: qbuf+qbuf-free<=32768={long.Parse(p["qbuf"]) + long.Parse(p["qbuf-free"]) <= 32768} cmd={p["cmd"]}");

        string self = c.Call("CLIENT", "INFO").Text!;
        var own = Field().Matches(self).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        seen.Add($"self argv-mem={own["argv-mem"]} obl={own["obl"]} tot-mem>0={long.Parse(own["tot-mem"]) > 0}");

        using Socket sub = Raw(port, 4096);
        long subId = IdOf(sub);
        sub.Send("SUBSCRIBE ch\r\n"u8.ToArray());
        Thread.Sleep(200);
        sub.Receive(new byte[4096]);
        string big = new('x', 100_000);
        for (int i = 0; i < 60; i++) c.Call("PUBLISH", "ch", big);
        Thread.Sleep(300);
        p = Line(c, subId);
        long output = long.Parse(p["obl"]) + long.Parse(p["omem"]);
        seen.Add($"subscriber output>100000={output > 100_000} events={p["events"]} flags={p["flags"]}");

        // multi-mem: the queued commands' arguments plus a pointer each (WATCHed keys are not in it in 7.0).
        using var multi = new RespConnection(port);
        long multiId = long.Parse(multi.Call("CLIENT", "ID").Text!, System.Globalization.CultureInfo.InvariantCulture);
        multi.Call("WATCH", "w1", "w2");
        multi.Call("MULTI");
        seen.Add($"multi queued=0 multi-mem={Line(c, multiId)["multi-mem"]}");
        multi.Call("SET", "a", "b");
        seen.Add($"multi queued=1 multi-mem={Line(c, multiId)["multi-mem"]}");
        multi.Call("SET", "abc", "defgh");
        multi.Call("GET", new string('k', 1000));
        seen.Add($"multi queued=3 multi-mem={Line(c, multiId)["multi-mem"]}");
        multi.Call("EXEC");
        seen.Add($"after exec multi-mem={Line(c, multiId)["multi-mem"]}");
        return seen;
    }

    [Fact]
    public void Client_list_buffer_fields_mean_what_they_mean_in_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = Observe(redis.Port);
        List<string> actual = Observe(kv.Port);
        Assert.Equal("partial argv-mem=4 qbuf=3 obl=0 oll=0 omem=0 events=r", expected[0]); // what Redis shows
        Assert.Equal("large argv-mem=4 qbuf=20000", expected[3]);
        Assert.Equal("multi queued=1 multi-mem=29", expected[^3]); // SET a b: 3 + 1 + 1 bytes + 3 pointers
        Assert.Equal(expected, actual);
    }

    /// <summary>Sends GET of a 4 MB value every 100 ms without reading; returns whether the client was closed (gone from
    /// CLIENT LIST) within <paramref name="within"/>.</summary>
    private static bool ClosedWhileNotReading(int port, string limit, TimeSpan within)
    {
        using var c = new RespConnection(port);
        Assert.Equal("+OK", c.Call("CONFIG", "SET", "client-output-buffer-limit", limit).ToString());
        Assert.Equal("+OK", c.Call("SET", "big", new string('v', 4 << 20)).ToString());
        using Socket slow = Raw(port, 4096);
        long id = IdOf(slow);
        byte[] get = RespConnection.Encode(["GET", "big"]);
        var deadline = DateTime.UtcNow + within;
        try
        {
            while (DateTime.UtcNow < deadline)
            {
                if (Line(c, id).Count == 0) return true;
                slow.Send(get);
                Thread.Sleep(100);
            }
        }
        catch (SocketException)
        {
            return true; // reset by the server
        }
        return Line(c, id).Count == 0;
    }

    [Fact]
    public void Normal_output_limits_close_a_client_that_does_not_read_as_redis_does()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        foreach (int port in new[] { redis.Port, kv.Port })
        {
            string who = port == redis.Port ? "redis-server" : "EioSharp.Kv";
            Assert.True(ClosedWhileNotReading(port, "normal 1mb 0 0", TimeSpan.FromSeconds(10)), who + ": hard limit");
            Assert.True(ClosedWhileNotReading(port, "normal 0 1mb 1", TimeSpan.FromSeconds(15)), who + ": soft limit for 1 s");
            Assert.False(ClosedWhileNotReading(port, "normal 0 0 0", TimeSpan.FromSeconds(3)), who + ": no limit");
        }
        using var k = new RespConnection(kv.Port);
        Assert.Contains("client_output_buffer_limit_disconnections:2", k.Call("INFO", "stats").Text!, StringComparison.Ordinal);
    }

    private static (long Rbs, long Rbp) ReplyBuffer(RespConnection c)
    {
        var f = Field().Matches(c.Call("CLIENT", "INFO").Text!).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        return (long.Parse(f["rbs"], System.Globalization.CultureInfo.InvariantCulture), long.Parse(f["rbp"], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>rbs/rbp, Redis 7.0's reply buffer (c->buf) and its peak: an idle client's buffer is shrunk to 1 KiB with its
    /// peak reset; a reply that fills it makes its peak the buffer size and doubles it (clientsCronResizeOutputBuffer); 5 s
    /// later (reply-buffer-peak-reset-time) the peak is reset and the buffer shrinks back to 1 KiB.</summary>
    private static List<string> ObserveReplyBuffer(int port)
    {
        var seen = new List<string>();
        using (var setup = new RespConnection(port))
        {
            Assert.Equal("OK", setup.Call("SET", "mid", new string('m', 10_000)).Text);
        }

        using var c = new RespConnection(port);
        Thread.Sleep(1000);
        seen.Add($"idle {ReplyBuffer(c)}");
        Assert.Equal(10_000, c.Call("GET", "mid").Text!.Length);
        Thread.Sleep(300);
        seen.Add($"after a 10 KB reply {ReplyBuffer(c)}");
        Thread.Sleep(5500);
        seen.Add($"5.5 s later {ReplyBuffer(c)}");
        return seen;
    }

    [Fact]
    public void Reply_buffer_fields_rbs_and_rbp_follow_redis_resizing()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = ObserveReplyBuffer(redis.Port);
        Assert.Equal(["idle (1024, 0)", "after a 10 KB reply (2048, 1024)", "5.5 s later (1024, 0)"], expected); // what Redis shows
        Assert.Equal(expected, ObserveReplyBuffer(kv.Port));
    }

    /// <summary>Reads what a subscriber is pushed: waits (up to 10 s, for a loaded machine) for the first bytes, then reads
    /// until nothing more comes for <paramref name="quietMs"/>. Every caller expects bytes.</summary>
    private static int Drain(Socket s, int quietMs)
    {
        var buf = new byte[1 << 16];
        int total = 0;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (!s.Poll(total == 0 ? 20_000 : quietMs * 1000, SelectMode.SelectRead))
            {
                if (total > 0) break;
                continue;
            }

            int n = s.Receive(buf);
            if (n == 0) break;
            total += n;
        }

        return total;
    }

    /// <summary>rbs/rbp of a subscriber (seen from another client's CLIENT LIST): Redis adds pushed messages to the reply
    /// buffer like replies (addReplyPubsubMessage), so a 10 KB message grows it as a 10 KB reply does, and the SUBSCRIBE
    /// reply is the peak until the 5 s reset.</summary>
    private static List<string> ObserveSubscriberReplyBuffer(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        using Socket sub = Raw(port);
        long id = IdOf(sub);
        // After the first cron tick (it resets the new client's peak, within 100 ms): the SUBSCRIBE reply is then the
        // peak until the next reset 5 s later, on both servers (before it, the reply's peak would be reset or not by timing).
        Thread.Sleep(300);
        sub.Send(RespConnection.Encode(["SUBSCRIBE", "ch"]));
        seen.Add($"subscribe reply bytes {Drain(sub, 200)}");
        string Fields()
        {
            var f = Line(c, id);
            return $"({f["rbs"]}, {f["rbp"]})";
        }

        Thread.Sleep(1000);
        seen.Add($"subscribed {Fields()}");
        c.Call("PUBLISH", "ch", new string('m', 10_000));
        seen.Add($"message bytes {Drain(sub, 300)}");
        seen.Add($"after a 10 KB message {Fields()}");
        Thread.Sleep(5500);
        seen.Add($"5.5 s later {Fields()}");
        c.Call("PUBLISH", "ch", new string('m', 300));
        seen.Add($"message bytes {Drain(sub, 300)}");
        seen.Add($"after a 300-byte message {Fields()}");
        return seen;
    }

    [Fact]
    public void Reply_buffer_fields_of_a_subscriber_count_pushed_messages_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = ObserveSubscriberReplyBuffer(redis.Port);
        Assert.Equal("subscribed (1024, 31)", expected[1]); // what Redis shows
        Assert.Equal("after a 10 KB message (2048, 1024)", expected[3]);
        Assert.Equal(expected, ObserveSubscriberReplyBuffer(kv.Port));
    }
}
