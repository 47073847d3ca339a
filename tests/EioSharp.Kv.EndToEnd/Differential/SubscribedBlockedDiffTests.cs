namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>A RESP3 client that is subscribed (channels and keyspace notifications) and blocked at once: messages reach it
/// while its BLPOP waits, and its blocked reply goes through the same ordered output as the pushes (no interleaving, no
/// reordering, nothing held back). Everything the client receives is compared, item by item, with redis-server.</summary>
public sealed class SubscribedBlockedDiffTests
{
    private static void WaitBlocked(RespConnection admin, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!admin.Call("INFO", "clients").Text!.Contains($"blocked_clients:{count}\r\n", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no {count} blocked client(s) after 10 s");
            Thread.Sleep(10);
        }
    }

    private static List<string> ReadUntilPong(RespConnection c, List<string> seen)
    {
        while (true)
        {
            string item = c.Read().ToString();
            seen.Add(item);
            if (item == "+PONG") return seen;
        }
    }

    private static List<string> Run(int port)
    {
        var seen = new List<string>();
        using var sub = new RespConnection(port, 10_000);
        using var pub = new RespConnection(port);
        Assert.Equal("+OK", pub.Call("CONFIG", "SET", "notify-keyspace-events", "KEA").ToString());
        _ = sub.Call("HELLO", "3"); // names the server: not compared
        seen.Add(sub.Call("SUBSCRIBE", "ch").ToString());
        seen.Add(sub.Call("PSUBSCRIBE", "__keyspace@0__:q*").ToString());

        // Blocked with a message pending delivery: every message published while it waits arrives at once.
        sub.Send(RespConnection.Encode(["PING"]).Concat(RespConnection.Encode(["BLPOP", "q", "0"])).Concat(RespConnection.Encode(["PING"])).ToArray());
        seen.Add(sub.Read().ToString()); // the PING before BLPOP
        WaitBlocked(pub, 1);
        for (int i = 1; i <= 3; i++)
        {
            Assert.Equal(":1", pub.Call("PUBLISH", "ch", "m" + i).ToString());
        }
        for (int i = 1; i <= 3; i++)
        {
            seen.Add(sub.Read().ToString()); // read while BLPOP still waits: nothing may hold them back
        }

        // The push that wakes it, messages around it: the keyspace notification of LPUSH, the BLPOP reply, the
        // notifications of the pop, the message published after, the pipelined PING.
        pub.Pipeline([["LPUSH", "q", "a", "b"], ["PUBLISH", "ch", "after"]]);
        ReadUntilPong(sub, seen);

        // A timeout while subscribed, with a message during the wait.
        sub.Send(RespConnection.Encode(["BLPOP", "q2", "0.3"]).Concat(RespConnection.Encode(["PING"])).ToArray());
        WaitBlocked(pub, 1);
        Assert.Equal(":1", pub.Call("PUBLISH", "ch", "during").ToString());
        ReadUntilPong(sub, seen);

        // Served from a transaction and from a script: the reply still comes in order with the pushes.
        sub.Send(RespConnection.Encode(["BRPOP", "q3", "0"]).Concat(RespConnection.Encode(["PING"])).ToArray());
        WaitBlocked(pub, 1);
        pub.Pipeline([["MULTI"], ["PUBLISH", "ch", "in-multi"], ["RPUSH", "q3", "x"], ["PUBLISH", "ch", "after-push"], ["EXEC"]]);
        ReadUntilPong(sub, seen);
        sub.Send(RespConnection.Encode(["BLPOP", "q4", "0"]).Concat(RespConnection.Encode(["PING"])).ToArray());
        WaitBlocked(pub, 1);
        pub.Call("EVAL", "redis.call('publish', 'ch', 's1') redis.call('rpush', 'q4', 'y') redis.call('publish', 'ch', 's2') return 1", "0");
        ReadUntilPong(sub, seen);
        return seen;
    }

    [Fact]
    public void A_RESP3_client_subscribed_and_blocked_gets_its_pushes_and_its_blocked_reply_in_redis_order()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = Run(redis.Port);
        List<string> actual = Run(kv.Port);
        Assert.True(expected.SequenceEqual(actual),
            $"the subscriber's streams differ\n  redis-server: {string.Join(" | ", expected)}\n  EioSharp.Kv:  {string.Join(" | ", actual)}");
        Assert.Contains(">[$\"message\", $\"ch\", $\"m3\"]", actual);
    }
}
