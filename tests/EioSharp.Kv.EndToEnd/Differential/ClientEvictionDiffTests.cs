using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13, <c>maxmemory-clients</c> (Redis 7.0's client eviction) and CLIENT NO-EVICT, against redis-server
/// 7.0.15: CONFIG SET/GET of bytes, percentages and bad values (memtoull's and string2ll's rules, the percentage bound),
/// CONFIG REWRITE's line; and the same clients on both servers: a client holding a large partial query, or replies it
/// does not read, is evicted (evicted_clients in INFO stats, zeroed by CONFIG RESETSTAT) while a small client survives and
/// a NO-EVICT client with a large buffer is kept.</summary>
public sealed partial class ClientEvictionDiffTests
{
    [GeneratedRegex(@"^evicted_clients:(\d+)\r?$", RegexOptions.Multiline)]
    private static partial Regex EvictedClients();

    private static long Evicted(RespConnection c) =>
        long.Parse(EvictedClients().Match(c.Call("INFO", "stats").Text!).Groups[1].Value, CultureInfo.InvariantCulture);

    [Fact]
    public void Config_set_and_get_of_maxmemory_clients_match_redis_server()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        var diffs = new List<string>();
        void Same(params string[] args)
        {
            string rr = r.Call(args).ToString(), kr = k.Call(args).ToString();
            if (rr != kr) diffs.Add($"{string.Join(' ', args)}\n  redis-server: {rr}\n  EioSharp.Kv:  {kr}");
        }

        Same("CONFIG", "GET", "maxmemory-clients");
        string[] values =
        [
            "10%", "0", "1mb", "100%", "101%", "-1", "-1%", "abc", "1.5", "", "5k", "200%", "1gb", "0%", "+10%", "010%", "1K",
            "5b", "100%x", "10 %", "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
            "%", "-0%", "+5", " 5", "5 ", "0x10", "1.0k", "1kB", "12345678901234567890k", "-", "kb", "b", "1g", "2GB", "100%%", "7%",
        ];
        foreach (string v in values)
        {
            Same("CONFIG", "SET", "maxmemory-clients", v);
            Same("CONFIG", "GET", "maxmemory-clients");
        }
        Same("CONFIG", "SET", "maxmemory-clients", "1mb", "maxmemory-clients", "2mb"); // the same directive twice
        Same("CONFIG", "SET", "maxmemory-clients", "3mb", "maxmemory", "nope"); // rolled back with the other's error
        Same("CONFIG", "GET", "maxmemory-clients");
        Same("CONFIG", "GET", "maxmemory-c*");
        Assert.True(diffs.Count == 0, string.Join('\n', diffs));
    }

    [Fact]
    public void Config_rewrite_writes_maxmemory_clients_as_redis_does()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string Conf(TempDir dir)
        {
            string path = Path.Combine(dir.Path, "kv.conf");
            File.WriteAllText(path, "# operator's comment\nmaxmemory-clients 5%\n");
            return path;
        }
        string redisConf = Conf(redisDir), kvConf = Conf(kvDir);
        using var redis = RedisServerProcess.StartWithConfig(redisConf);
        using var kv = KvServerProcess.StartIn(kvDir.DataDir, kvConf);
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        static string Lines(string conf) =>
            string.Join('\n', File.ReadAllLines(conf).Where(l => l.StartsWith("maxmemory-clients", StringComparison.Ordinal) || l.StartsWith('#')));
        Assert.Equal("$\"5%\"", r.Call("CONFIG", "GET", "maxmemory-clients").Items![1].ToString());
        Assert.Equal(r.Call("CONFIG", "GET", "maxmemory-clients").ToString(), k.Call("CONFIG", "GET", "maxmemory-clients").ToString());
        foreach (string value in (string[])["3mb", "12345", "10%", "0", "2gb"])
        {
            Assert.Equal("+OK", r.Call("CONFIG", "SET", "maxmemory-clients", value).ToString());
            Assert.Equal("+OK", k.Call("CONFIG", "SET", "maxmemory-clients", value).ToString());
            Assert.Equal("+OK", r.Call("CONFIG", "REWRITE").ToString());
            Assert.Equal("+OK", k.Call("CONFIG", "REWRITE").ToString());
            Assert.Equal(Lines(redisConf), Lines(kvConf));
        }
        Assert.Contains("maxmemory-clients 2gb", File.ReadAllText(kvConf), StringComparison.Ordinal);
    }

    private static Socket Raw(int port, int receiveBuffer = 0)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 20_000 };
        if (receiveBuffer > 0) s.ReceiveBufferSize = receiveBuffer;
        s.Connect(IPAddress.Loopback, port);
        return s;
    }

    private static string Command(Socket s, string inline)
    {
        s.Send(Encoding.ASCII.GetBytes(inline + "\r\n"));
        var buf = new byte[256];
        int n = s.Receive(buf);
        return Encoding.ASCII.GetString(buf, 0, n).TrimEnd();
    }

    private static bool Listed(RespConnection admin, long id) =>
        admin.Call("CLIENT", "LIST").Text!.Split('\n').Any(l => l.StartsWith("id=" + id + " ", StringComparison.Ordinal));

    /// <summary>The scenario, on one server: maxmemory-clients set by <paramref name="limitSettings"/> (1 MB); a small client,
    /// a NO-EVICT client holding 500 KB of an incomplete 600 KB SET, then a big client that holds 1.5 MB of an incomplete
    /// 3 MB SET (<paramref name="unreadReplies"/> false) or sends GET of a 3 MB value without reading its replies (true).
    /// Returns what is seen, in words, once the big client is gone (or after <paramref name="waitSeconds"/>).</summary>
    private static List<string> Observe(int port, bool unreadReplies, string[] limitSettings, int waitSeconds = 15)
    {
        var seen = new List<string>();
        using var admin = new RespConnection(port);
        Assert.Equal("+OK", admin.Call("CLIENT", "NO-EVICT", "on").ToString()); // the observer itself is not a candidate
        if (unreadReplies)
        {
            // Written by a client that then leaves: its 3 MB query buffer would count (as NO-EVICT memory) until trimmed.
            using var setup = new RespConnection(port);
            Assert.Equal("+OK", setup.Call("SET", "big", new string('v', 3 << 20)).ToString());
        }
        Thread.Sleep(200);
        Assert.Equal("+OK", admin.Call(["CONFIG", "SET", .. limitSettings]).ToString());
        long evictedBefore = Evicted(admin);

        using var small = new RespConnection(port);
        long smallId = long.Parse(small.Call("CLIENT", "ID").Text!, CultureInfo.InvariantCulture);

        using Socket keep = Raw(port);
        long keepId = long.Parse(Command(keep, "CLIENT ID")[1..], CultureInfo.InvariantCulture);
        seen.Add("no-evict on: " + Command(keep, "CLIENT NO-EVICT on"));
        keep.Send(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$4\r\nkeep\r\n$600000\r\n" + new string('k', 500_000)));
        Thread.Sleep(500);
        seen.Add($"before the big client: small listed={Listed(admin, smallId)} no-evict listed={Listed(admin, keepId)} evicted={Evicted(admin) - evictedBefore}");

        using Socket big = Raw(port, unreadReplies ? 4096 : 0);
        long bigId = long.Parse(Command(big, "CLIENT ID")[1..], CultureInfo.InvariantCulture);
        bool bigGone = false;
        try
        {
            if (unreadReplies)
            {
                byte[] get = RespConnection.Encode(["GET", "big"]);
                for (int i = 0; i < 3; i++) big.Send(get);
            }
            else
            {
                big.Send(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$3000000\r\n"));
                byte[] chunk = Encoding.ASCII.GetBytes(new string('b', 100_000));
                for (int i = 0; i < 15; i++) big.Send(chunk);
            }
        }
        catch (SocketException)
        {
            bigGone = true; // reset by the server while sending
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(waitSeconds);
        while (!bigGone && DateTime.UtcNow < deadline)
        {
            bigGone = !Listed(admin, bigId);
            if (!bigGone) Thread.Sleep(100);
        }
        seen.Add($"big client evicted={bigGone}");
        seen.Add("small: " + small.Call("PING"));
        seen.Add($"no-evict listed={Listed(admin, keepId)}");
        keep.Send(Encoding.ASCII.GetBytes(new string('k', 100_000) + "\r\n"));
        var reply = new byte[16];
        int n = keep.Receive(reply);
        seen.Add("no-evict completes its SET: " + Encoding.ASCII.GetString(reply, 0, n).TrimEnd());
        seen.Add($"evicted_clients +{Evicted(admin) - evictedBefore}");
        Assert.Equal("+OK", admin.Call("CONFIG", "SET", "maxmemory-clients", "0").ToString());
        return seen;
    }

    [Fact]
    public void A_client_with_a_large_partial_query_is_evicted_as_redis_evicts_it()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = Observe(redis.Port, unreadReplies: false, ["maxmemory-clients", "1mb"]);
        Assert.Equal(
            [
                "no-evict on: +OK", "before the big client: small listed=True no-evict listed=True evicted=0", "big client evicted=True",
                "small: +PONG", "no-evict listed=True", "no-evict completes its SET: +OK", "evicted_clients +1",
            ], expected); // what redis-server 7.0.15 does
        Assert.Equal(expected, Observe(kv.Port, unreadReplies: false, ["maxmemory-clients", "1mb"]));

        // CONFIG RESETSTAT zeroes evicted_clients on both.
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        Assert.Equal(1, Evicted(k));
        r.Call("CONFIG", "RESETSTAT");
        k.Call("CONFIG", "RESETSTAT");
        Assert.Equal(0, Evicted(r));
        Assert.Equal(0, Evicted(k));
    }

    [Fact]
    public void A_client_not_reading_its_replies_is_evicted_under_a_percentage_of_maxmemory()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        // 1% of 100 MB: 1 MB of client memory.
        string[] limit = ["maxmemory", "100mb", "maxmemory-clients", "1%"];
        List<string> expected = Observe(redis.Port, unreadReplies: true, limit);
        Assert.Contains("big client evicted=True", expected);
        Assert.Contains("evicted_clients +1", expected);
        Assert.Equal(expected, Observe(kv.Port, unreadReplies: true, limit));
    }

    /// <summary>A subscriber that does not read its messages (Redis's pubsub class is evictable too): 40 messages of 100 KB
    /// make it go over 1 MB (under client-output-buffer-limit pubsub's 32 MB hard limit), and it is evicted.</summary>
    private static List<string> ObserveSubscriber(int port)
    {
        var seen = new List<string>();
        using var admin = new RespConnection(port);
        Assert.Equal("+OK", admin.Call("CLIENT", "NO-EVICT", "on").ToString());
        Assert.Equal("+OK", admin.Call("CONFIG", "SET", "maxmemory-clients", "1mb").ToString());
        long evictedBefore = Evicted(admin);
        using Socket sub = Raw(port, 4096);
        long subId = long.Parse(Command(sub, "CLIENT ID")[1..], CultureInfo.InvariantCulture);
        seen.Add("subscribe: " + Command(sub, "SUBSCRIBE ch").Replace("\r\n", " ", StringComparison.Ordinal));
        seen.Add("first publish: " + admin.Call("PUBLISH", "ch", "hello"));
        string message = new('m', 100_000);
        for (int i = 0; i < 40 && Listed(admin, subId); i++) admin.Call("PUBLISH", "ch", message);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (Listed(admin, subId) && DateTime.UtcNow < deadline) Thread.Sleep(100);
        seen.Add($"subscriber evicted={!Listed(admin, subId)}");
        seen.Add("publish after: " + admin.Call("PUBLISH", "ch", "x"));
        seen.Add($"evicted_clients +{Evicted(admin) - evictedBefore}");
        Assert.Equal("+OK", admin.Call("CONFIG", "SET", "maxmemory-clients", "0").ToString());
        return seen;
    }

    [Fact]
    public void A_subscriber_not_reading_its_messages_is_evicted_as_redis_evicts_it()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = ObserveSubscriber(redis.Port);
        Assert.Equal(["subscribe: *3 $9 subscribe $2 ch :1", "first publish: :1", "subscriber evicted=True", "publish after: :0", "evicted_clients +1"], expected);
        Assert.Equal(expected, ObserveSubscriber(kv.Port));
    }

    [Fact]
    public void Without_maxmemory_clients_no_client_is_evicted()
    {
        using var kv = KvServerProcess.Start("--appendonly", "no");
        // maxmemory-clients 10% while maxmemory is 0: no limit (Redis's getClientEvictionLimit).
        List<string> seen = Observe(kv.Port, unreadReplies: false, ["maxmemory-clients", "10%"], waitSeconds: 3);
        Assert.Contains("big client evicted=False", seen);
        Assert.Contains("evicted_clients +0", seen);
    }
}
