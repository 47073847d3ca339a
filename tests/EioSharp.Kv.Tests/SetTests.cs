using System.Buffers;
using EioSharp.Kv;
using static EioSharp.Kv.Tests.Replies;

namespace EioSharp.Kv.Tests;

public class SetTests
{
    private static string Enc(StoreHarness h, string key) => HashTests.Value(h, key).Encoding;

    [Fact]
    public void Sadd_srem_members_and_cardinality()
    {
        var h = new StoreHarness();
        Assert.Equal(Int(3), h.Run("SADD", "s", "3", "1", "2"));
        Assert.Equal(Int(1), h.Run("SADD", "s", "1", "10"));
        Assert.Equal(Array("1", "2", "3", "10"), h.Run("SMEMBERS", "s")); // intset: ascending
        Assert.Equal("intset", Enc(h, "s"));
        Assert.Equal(Int(4), h.Run("SCARD", "s"));
        Assert.Equal(Int(0), h.Run("SCARD", "nokey"));
        Assert.Equal(Int(1), h.Run("SISMEMBER", "s", "10"));
        Assert.Equal(Int(0), h.Run("SISMEMBER", "s", "x"));
        Assert.Equal("*3\r\n:1\r\n:0\r\n:1\r\n", h.Run("SMISMEMBER", "s", "1", "9", "2"));
        Assert.Equal("*1\r\n:0\r\n", h.Run("SMISMEMBER", "nokey", "1"));
        Assert.Equal(Int(2), h.Run("SREM", "s", "1", "x", "2", "1"));
        Assert.Equal(Int(0), h.Run("SREM", "nokey", "1"));
        Assert.Equal(Int(2), h.Run("SREM", "s", "3", "10"));
        Assert.Equal(Int(0), h.Run("EXISTS", "s"));
        Assert.Equal("*0\r\n", h.Run("SMEMBERS", "s"));
        h.Run("SET", "str", "x");
        foreach (string[] c in new[] { new[] { "SADD", "str", "a" }, ["SREM", "str", "a"], ["SMEMBERS", "str"], ["SCARD", "str"],
                     ["SISMEMBER", "str", "a"], ["SMISMEMBER", "str", "a"], ["SPOP", "str"], ["SPOP", "str", "2"], ["SRANDMEMBER", "str"],
                     ["SRANDMEMBER", "str", "2"], ["SINTER", "nokey", "str"], ["SUNION", "str"], ["SDIFF", "nokey", "str"],
                     ["SINTERSTORE", "d", "nokey", "str"], ["SINTERCARD", "2", "nokey", "str"], ["SSCAN", "str", "0"], ["SMOVE", "str", "d", "a"] })
        {
            Assert.Equal(WrongType, h.Run(c));
        }
    }

    [Fact]
    public void Encodings_follow_redis_7_0()
    {
        var h = new StoreHarness();
        h.Run("SADD", "a", "01");
        Assert.Equal("hashtable", Enc(h, "a")); // not canonical
        h.Run("SADD", "b", "-0");
        Assert.Equal("hashtable", Enc(h, "b"));
        h.Run("SADD", "c", "9223372036854775807", "-9223372036854775808");
        Assert.Equal("intset", Enc(h, "c"));
        Assert.Equal(Array("-9223372036854775808", "9223372036854775807"), h.Run("SMEMBERS", "c"));
        h.Run("SADD", "d", "x", "1");
        h.Run("SREM", "d", "x");
        Assert.Equal("hashtable", Enc(h, "d")); // never converted back
        for (int i = 0; i < 512; i++) h.Run("SADD", "big", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("intset", Enc(h, "big"));
        h.Run("SADD", "big", "512");
        Assert.Equal("hashtable", Enc(h, "big"));
        h.Run("SADD", "e", "1", "2");
        h.Run("SADD", "e", "a");
        Assert.Equal("hashtable", Enc(h, "e"));
        // Store commands build a new intset-first set.
        h.Run("SADD", "x", "a", "5", "3");
        h.Run("SADD", "y", "a");
        Assert.Equal(Int(2), h.Run("SDIFFSTORE", "z", "x", "y"));
        Assert.Equal("intset", Enc(h, "z"));
        Assert.Equal(Array("3", "5"), h.Run("SMEMBERS", "z"));
        // SMOVE creates the destination from the member.
        Assert.Equal(Int(1), h.Run("SMOVE", "x", "m1", "5"));
        Assert.Equal("intset", Enc(h, "m1"));
        Assert.Equal(Int(1), h.Run("SMOVE", "x", "m2", "a"));
        Assert.Equal("hashtable", Enc(h, "m2"));
    }

    [Fact]
    public void Resp3_shapes()
    {
        var h = new StoreHarness { Protocol = 3 };
        h.Run("SADD", "s", "1", "2");
        Assert.Equal(Set3("1", "2"), h.Run("SMEMBERS", "s"));
        Assert.Equal("~0\r\n", h.Run("SMEMBERS", "nokey"));
        Assert.Equal(Set3("1", "2"), h.Run("SINTER", "s"));
        Assert.Equal("~0\r\n", h.Run("SINTER", "nokey", "s"));
        Assert.Equal(Set3("1", "2"), h.Run("SUNION", "s", "nokey"));
        Assert.Equal(Set3("1", "2"), h.Run("SDIFF", "s"));
        Assert.Equal("~0\r\n", h.Run("SPOP", "s", "0"));
        Assert.Equal("~0\r\n", h.Run("SPOP", "nokey", "1"));
        Assert.Equal("*0\r\n", h.Run("SRANDMEMBER", "nokey", "2"));
        Assert.Equal("*2\r\n$1\r\n1\r\n$1\r\n2\r\n", h.Run("SRANDMEMBER", "s", "10"));
        Assert.Equal("_\r\n", h.Run("SPOP", "nokey"));
        Assert.Equal("_\r\n", h.Run("SRANDMEMBER", "nokey"));
        Assert.Equal(Set3("1", "2"), h.Run("SPOP", "s", "10"));
        Assert.Equal(Int(0), h.Run("EXISTS", "s"));
    }

    [Fact]
    public void Spop_and_srandmember_counts_errors_and_aof()
    {
        var h = new StoreHarness();
        h.Run("SADD", "s", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j");
        Assert.Equal(Err("ERR value is out of range, must be positive"), h.Run("SPOP", "s", "-1"));
        Assert.Equal(Err("ERR value is out of range, must be positive"), h.Run("SPOP", "s", "x"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SPOP", "s", "1", "2"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SRANDMEMBER", "s", "1", "2"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("SRANDMEMBER", "s", "x"));
        Assert.Equal(Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            h.Run("SRANDMEMBER", "s", "-9223372036854775808"));
        Assert.StartsWith("*5\r\n", h.Run("SRANDMEMBER", "s", "-5"), StringComparison.Ordinal);
        Assert.Equal("*0\r\n", h.Run("SRANDMEMBER", "s", "0"));
        for (int n = 1; n < 10; n++)
        {
            string[] lines = h.Run("SRANDMEMBER", "s", n.ToString(System.Globalization.CultureInfo.InvariantCulture)).Split("\r\n");
            string[] members = [.. lines.Where((_, i) => i >= 2 && i % 2 == 0 && i < 2 + 2 * n)];
            Assert.Equal(n, members.Distinct().Count()); // distinct for a positive count
        }
        h.Aof.Commands.Clear();
        h.Run("SRANDMEMBER", "s", "3");
        Assert.Empty(h.Logged);

        string popped = h.Run("SPOP", "s");
        Assert.Equal(["SREM s " + popped.Split("\r\n")[1]], h.Logged);
        h.Aof.Commands.Clear();
        h.Run("SPOP", "s", "2"); // few: random removals
        h.Run("SPOP", "s", "6"); // most: the rest is rebuilt
        Assert.Equal(2, h.Logged.Count);
        Assert.All(h.Logged, l => Assert.StartsWith("SREM s ", l, StringComparison.Ordinal));
        Assert.Equal(Int(1), h.Run("SCARD", "s"));
        h.Aof.Commands.Clear();
        h.Run("SPOP", "s", "5"); // everything: DEL, like Redis 7
        Assert.Equal(["DEL s"], h.Logged);
        Assert.Equal(Int(0), h.Run("EXISTS", "s"));

        // Popping most of a hashtable of integers rebuilds it as Redis's setTypeCreate would: an intset.
        h.Run("SADD", "t", "x", "1", "2", "3", "4", "5", "6", "7", "8", "9");
        h.Run("SREM", "t", "x");
        Assert.Equal("hashtable", Enc(h, "t"));
        h.Run("SPOP", "t", "8");
        Assert.Equal("intset", Enc(h, "t"));
    }

    [Fact]
    public void Set_algebra_and_store_commands()
    {
        var h = new StoreHarness();
        h.Run("SADD", "a", "1", "2", "3", "x");
        h.Run("SADD", "b", "2", "3", "4");
        h.Run("SADD", "c", "3", "y");
        Assert.Equal(Array("3"), h.Run("SINTER", "a", "b", "c"));
        Assert.Equal(Array("2", "3"), h.Run("SINTER", "b", "a"));
        Assert.Equal("*0\r\n", h.Run("SINTER", "a", "nokey"));
        Assert.Equal(Array("1", "x"), Sorted(h.Run("SDIFF", "a", "b")));
        Assert.Equal(Array("1", "2", "3", "4", "x", "y"), Sorted(h.Run("SUNION", "a", "b", "c", "nokey")));
        Assert.Equal(Int(1), h.Run("SINTERCARD", "3", "a", "b", "c"));
        Assert.Equal(Int(2), h.Run("SINTERCARD", "2", "a", "b"));
        Assert.Equal(Int(1), h.Run("SINTERCARD", "2", "a", "b", "LIMIT", "1"));
        Assert.Equal(Int(2), h.Run("SINTERCARD", "2", "a", "b", "LIMIT", "0"));
        Assert.Equal(Int(2), h.Run("SINTERCARD", "2", "a", "b", "limit", "1", "LIMIT", "5"));
        Assert.Equal(Err("ERR numkeys should be greater than 0"), h.Run("SINTERCARD", "0", "a"));
        Assert.Equal(Err("ERR numkeys should be greater than 0"), h.Run("SINTERCARD", "x", "a"));
        Assert.Equal(Err("ERR Number of keys can't be greater than number of args"), h.Run("SINTERCARD", "2", "a"));
        Assert.Equal(Err("ERR LIMIT can't be negative"), h.Run("SINTERCARD", "1", "a", "LIMIT", "-1"));
        Assert.Equal(Err("ERR LIMIT can't be negative"), h.Run("SINTERCARD", "1", "a", "LIMIT", "x"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SINTERCARD", "1", "a", "LIMIT"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SINTERCARD", "1", "a", "FOO", "1"));

        h.Run("SET", "d", "string");
        h.Run("EXPIRE", "d", "100");
        Assert.Equal(Int(2), h.Run("SINTERSTORE", "d", "a", "b"));
        Assert.Equal(Int(-1), h.Run("TTL", "d")); // overwritten whatever the type, expiry gone
        Assert.Equal(Array("2", "3"), h.Run("SMEMBERS", "d"));
        Assert.Equal(Int(5), h.Run("SUNIONSTORE", "a", "a", "b")); // the destination may be a source
        Assert.Equal(Int(0), h.Run("SDIFFSTORE", "d", "nokey", "a"));
        Assert.Equal(Int(0), h.Run("EXISTS", "d")); // an empty result deletes the destination
        h.Run("SET", "str", "x");
        h.Run("SADD", "keep", "1");
        Assert.Equal(WrongType, h.Run("SUNIONSTORE", "keep", "a", "str"));
        Assert.Equal(Array("1"), h.Run("SMEMBERS", "keep")); // an error leaves the destination unchanged
        h.Aof.Commands.Clear();
        Assert.Equal(Int(0), h.Run("SINTERSTORE", "none", "nokey"));
        Assert.Empty(h.Logged); // nothing changed, nothing logged
    }

    [Fact]
    public void Smove_cases_and_events()
    {
        var events = new EventRecorder();
        var h = new StoreHarness();
        h.Store.Observer = events;
        h.Run("SADD", "s", "a", "b");
        h.Run("SET", "str", "x");
        Assert.Equal(Int(0), h.Run("SMOVE", "nokey", "str", "a")); // a missing source wins over a wrong destination
        Assert.Equal(WrongType, h.Run("SMOVE", "s", "str", "a"));
        Assert.Equal(Int(1), h.Run("SMOVE", "s", "s", "a"));
        Assert.Equal(Int(0), h.Run("SMOVE", "s", "s", "zz"));
        Assert.Equal(Int(0), h.Run("SMOVE", "s", "d", "zz"));
        h.Run("SADD", "d", "b");
        events.Events.Clear();
        Assert.Equal(Int(1), h.Run("SMOVE", "s", "d", "b"));
        Assert.Equal(["srem:s"], events.Events); // already in the destination: no sadd
        Assert.Equal(Int(1), h.Run("SMOVE", "s", "d", "a"));
        Assert.Equal(["srem:s", "srem:s", "del:s", "sadd:d"], events.Events);
        events.Events.Clear();
        h.Run("SPOP", "d", "1");
        h.Run("SINTERSTORE", "i", "d");
        h.Run("SUNIONSTORE", "u", "d");
        h.Run("SDIFFSTORE", "f", "d");
        h.Run("SDIFFSTORE", "f", "nokey");
        Assert.Equal(["spop:d", "sinterstore:i", "sunionstore:u", "sdiffstore:f", "del:f"], events.Events);
    }

    [Fact]
    public void Sscan_intset_returns_everything_and_hashtable_scan_returns_every_stable_member()
    {
        var h = new StoreHarness();
        h.Run("SADD", "s", "3", "1", "12");
        Assert.Equal("*2\r\n$1\r\n0\r\n" + Array("1", "3", "12"), h.Run("SSCAN", "s", "5", "COUNT", "1"));
        Assert.Equal("*2\r\n$1\r\n0\r\n" + Array("1", "12"), h.Run("SSCAN", "s", "0", "MATCH", "1*"));
        Assert.Equal(Err("ERR syntax error"), h.Run("SSCAN", "s", "0", "COUNT", "0"));
        Assert.Equal(Err("ERR invalid cursor"), h.Run("SSCAN", "nokey", "x"));
        Assert.Equal("*2\r\n$1\r\n0\r\n*0\r\n", h.Run("SSCAN", "nokey", "0", "FOO"));
        for (int i = 0; i < 1000; i++) h.Run("SADD", "big", "m" + i);
        var seen = new HashSet<string>();
        string cursor = "0";
        int calls = 0, removed = 0;
        do
        {
            var reply = new ScanReply(h.Run("SSCAN", "big", cursor, "COUNT", "15"));
            cursor = reply.Cursor;
            seen.UnionWith(reply.Items);
            for (int j = 0; j < 40 && removed < 900; j++) h.Run("SREM", "big", "m" + (999 - removed++));
            h.Run("SADD", "big", "new" + calls);
            calls++;
        }
        while (cursor != "0" && calls < 10_000);
        Assert.Equal("0", cursor);
        for (int i = 0; i < 100; i++) Assert.Contains("m" + i, seen);
    }

    [Fact]
    public void Aof_replay_and_rewrite_give_the_same_sets()
    {
        var h = new StoreHarness();
        List<string[]> commands =
        [
            ["SADD", "a", "1", "2", "3"], ["SADD", "b", "x", "2"], ["SREM", "a", "1"], ["SMOVE", "b", "a", "x"],
            ["SINTERSTORE", "i", "a", "b"], ["SUNIONSTORE", "u", "a", "b"], ["SDIFFSTORE", "d", "a", "b"],
            ["SELECT", "3"], ["SADD", "c", "q", "r", "s", "t"], ["SPOP", "c"], ["SPOP", "c", "2"], ["SRANDMEMBER", "c", "-3"],
            ["SADD", "e", "1"], ["SPOP", "e", "5"], ["SELECT", "0"],
        ];
        for (int i = 0; i < 600; i++) commands.Add(["SADD", "big", i.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        for (int i = 0; i < 200; i++) commands.Add(["SREM", "big", (i * 2).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        for (int i = 0; i < 40; i++) commands.Add(["SADD", "p", "m" + i]);
        commands.Add(["SPOP", "p", "3"]);
        commands.Add(["SPOP", "p", "30"]);
        byte[] log = RunLogged(h, commands);
        // Encodings: "big" (a hashtable of integers once past 512) is an intset again after a rewrite, as in Redis.
        AssertReplaysEqual(h, log, compareEncodings: false);
        var output = new ArrayBufferWriter<byte>();
        HashTests.Value(h, "big").WriteRewrite("big"u8, output);
        Assert.Equal(7, System.Text.Encoding.ASCII.GetString(output.WrittenSpan).Split("$4\r\nSADD\r\n").Length - 1); // 400 = 6 * 64 + 16
    }

    [Fact]
    public void Elements_for_sort_and_clone()
    {
        var h = new StoreHarness();
        h.Run("SADD", "s", "5", "1");
        var set = (KvSet)HashTests.Value(h, "s");
        Assert.Equal(["1", "5"], ((IKvElements)set).Elements.Select(m => System.Text.Encoding.ASCII.GetString(m)));
        var copy = (KvSet)set.Clone();
        h.Run("SADD", "s", "x");
        Assert.Equal("intset", copy.Encoding);
        Assert.Equal(2, copy.Count);
        Assert.True(set.EstimateBytes() > copy.EstimateBytes());
    }

    private static string Sorted(string raw)
    {
        var reply = raw.Split("\r\n");
        int n = int.Parse(reply[0][1..], System.Globalization.CultureInfo.InvariantCulture);
        string[] items = [.. Enumerable.Range(0, n).Select(i => reply[2 + 2 * i]).Order(StringComparer.Ordinal)];
        return Array(items);
    }
}
