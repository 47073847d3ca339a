using System.Buffers;
using EioSharp.Kv;
using static EioSharp.Kv.Tests.Replies;

namespace EioSharp.Kv.Tests;

public class HashTests
{
    [Fact]
    public void Hset_hget_and_field_commands_reply_like_redis()
    {
        var h = new StoreHarness();
        Assert.Equal(Int(2), h.Run("HSET", "h", "a", "1", "b", "2"));
        Assert.Equal(Int(1), h.Run("HSET", "h", "a", "10", "c", "3"));
        Assert.Equal(Err("ERR wrong number of arguments for 'hset' command"), h.Run("HSET", "h", "a", "1", "b"));
        Assert.Equal(Err("ERR wrong number of arguments for 'hmset' command"), h.Run("HMSET", "h", "a"));
        Assert.Equal(Ok, h.Run("HMSET", "h", "d", "4"));
        Assert.Equal(Bulk("10"), h.Run("HGET", "h", "a"));
        Assert.Equal(Nil, h.Run("HGET", "h", "zz"));
        Assert.Equal(Nil, h.Run("HGET", "nokey", "a"));
        Assert.Equal("*3\r\n$2\r\n10\r\n$-1\r\n$1\r\n3\r\n", h.Run("HMGET", "h", "a", "x", "c"));
        Assert.Equal("*1\r\n$-1\r\n", h.Run("HMGET", "nokey", "a"));
        Assert.Equal(Int(0), h.Run("HSETNX", "h", "a", "x"));
        Assert.Equal(Int(1), h.Run("HSETNX", "h", "e", "5"));
        Assert.Equal(Int(1), h.Run("HEXISTS", "h", "e"));
        Assert.Equal(Int(0), h.Run("HEXISTS", "h", "zz"));
        Assert.Equal(Int(5), h.Run("HLEN", "h"));
        Assert.Equal(Int(0), h.Run("HLEN", "nokey"));
        Assert.Equal(Int(2), h.Run("HSTRLEN", "h", "a"));
        Assert.Equal(Int(0), h.Run("HSTRLEN", "h", "zz"));
        // Listpack: insertion order, an updated field keeps its place.
        Assert.Equal(Array("a", "b", "c", "d", "e"), h.Run("HKEYS", "h"));
        Assert.Equal(Array("10", "2", "3", "4", "5"), h.Run("HVALS", "h"));
        Assert.Equal(Array("a", "10", "b", "2", "c", "3", "d", "4", "e", "5"), h.Run("HGETALL", "h"));
        Assert.Equal(Int(2), h.Run("HDEL", "h", "a", "zz", "c", "a"));
        Assert.Equal(Array("b", "d", "e"), h.Run("HKEYS", "h"));
        Assert.Equal(Int(3), h.Run("HDEL", "h", "b", "d", "e"));
        Assert.Equal(Int(0), h.Run("EXISTS", "h"));
        Assert.Equal("*0\r\n", h.Run("HGETALL", "h"));
        h.Run("SET", "s", "x");
        foreach (string[] c in new[] { new[] { "HSET", "s", "a", "1" }, ["HGET", "s", "a"], ["HMGET", "s", "a"], ["HDEL", "s", "a"],
                     ["HLEN", "s"], ["HKEYS", "s"], ["HGETALL", "s"], ["HSETNX", "s", "a", "1"], ["HINCRBY", "s", "a", "1"],
                     ["HINCRBYFLOAT", "s", "a", "1"], ["HRANDFIELD", "s"], ["HSCAN", "s", "0"], ["HEXISTS", "s", "a"], ["HSTRLEN", "s", "a"] })
        {
            Assert.Equal(WrongType, h.Run(c));
        }
    }

    [Fact]
    public void Resp3_shapes()
    {
        var h = new StoreHarness { Protocol = 3 };
        h.Run("HSET", "h", "a", "1", "b", "2");
        Assert.Equal("%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", h.Run("HGETALL", "h"));
        Assert.Equal("%0\r\n", h.Run("HGETALL", "nokey"));
        Assert.Equal("*1\r\n_\r\n", h.Run("HMGET", "nokey", "a"));
        Assert.Equal("_\r\n", h.Run("HRANDFIELD", "nokey"));
        Assert.Equal("*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n", h.Run("HRANDFIELD", "h", "5", "WITHVALUES"));
        string neg = h.Run("HRANDFIELD", "h", "-3", "withvalues");
        Assert.StartsWith("*3\r\n*2\r\n", neg, StringComparison.Ordinal);
        Assert.Equal("*0\r\n", h.Run("HRANDFIELD", "nokey", "1", "WITHVALUES"));
        Assert.Equal("*0\r\n", h.Run("HRANDFIELD", "h", "0", "WITHVALUES"));
        h.Protocol = 2;
        Assert.Equal(Array("a", "1", "b", "2"), h.Run("HRANDFIELD", "h", "5", "WITHVALUES"));
        Assert.StartsWith("*6\r\n", h.Run("HRANDFIELD", "h", "-3", "WITHVALUES"), StringComparison.Ordinal);
    }

    [Fact]
    public void Hincrby_errors_and_overflow()
    {
        var h = new StoreHarness();
        Assert.Equal(Int(5), h.Run("HINCRBY", "h", "n", "5"));
        Assert.Equal(Int(-3), h.Run("HINCRBY", "h", "n", "-8"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("HINCRBY", "h", "n", "x"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("HINCRBY", "nokey", "n", "1.5"));
        h.Run("HSET", "h", "s", "abc", "f", "1.5");
        Assert.Equal(Err("ERR hash value is not an integer"), h.Run("HINCRBY", "h", "s", "1"));
        Assert.Equal(Err("ERR hash value is not an integer"), h.Run("HINCRBY", "h", "f", "1"));
        Assert.Equal(Int(long.MinValue), h.Run("HINCRBY", "h2", "a", "-9223372036854775808"));
        Assert.Equal(Err("ERR increment or decrement would overflow"), h.Run("HINCRBY", "h2", "a", "-1"));
        h.Run("HSET", "h3", "a", "9223372036854775807");
        Assert.Equal(Err("ERR increment or decrement would overflow"), h.Run("HINCRBY", "h3", "a", "1"));
    }

    [Theory]
    // Each line: increments applied in turn to one field, and what redis-server 7.0 (x87 long double, %.17Lf) printed.
    [InlineData("1e3|0.1|0.2", "1000|1000.09999999999999998|1000.29999999999999999")]
    [InlineData("1.5|0.25|-2", "1.5|1.75|-0.25")]
    [InlineData("0.1|0.2", "0.1|0.30000000000000000")]
    [InlineData("-0", "0")]
    [InlineData("3.0e2|.5|5.", "300|300.5|305.5")]
    [InlineData("5e70", "49999999999999999998867530932990474412769117149953577178426491979956224")]
    [InlineData("10.5|-10.5", "10.5|0")]
    [InlineData("1e-18", "0")]
    [InlineData("-1e-18", "0")]
    public void Hincrbyfloat_prints_like_redis_long_double(string increments, string expected)
    {
        var h = new StoreHarness();
        string[] want = expected.Split('|');
        string[] incs = increments.Split('|');
        for (int i = 0; i < incs.Length; i++)
        {
            string w = want[i] == "0.30000000000000000" ? "0.3" : want[i];
            Assert.Equal(Bulk(w), h.Run("HINCRBYFLOAT", "h", "f", incs[i]));
        }
    }

    [Fact]
    public void Hincrbyfloat_errors_and_aof_as_hset()
    {
        var h = new StoreHarness();
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("HINCRBYFLOAT", "h", "f", "x"));
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("HINCRBYFLOAT", "h", "f", "nan"));
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("HINCRBYFLOAT", "h", "f", " 1"));
        Assert.Equal(Err("ERR value is not a valid float"), h.Run("HINCRBYFLOAT", "h", "f", "1e99999"));
        Assert.Equal(Err("ERR value is NaN or Infinity"), h.Run("HINCRBYFLOAT", "h", "f", "inf"));
        Assert.Equal(Int(0), h.Run("EXISTS", "h"));
        h.Run("HSET", "h", "s", "abc", "i", "inf");
        Assert.Equal(Err("ERR hash value is not a float"), h.Run("HINCRBYFLOAT", "h", "s", "1"));
        Assert.Equal(Err("ERR increment would produce NaN or Infinity"), h.Run("HINCRBYFLOAT", "h", "i", "1"));
        h.Aof.Commands.Clear();
        Assert.Equal(Bulk("2.5"), h.Run("HINCRBYFLOAT", "h", "f", "2.5"));
        Assert.Equal(["HSET h f 2.5"], h.Logged);
    }

    [Fact]
    public void Listpack_converts_to_hashtable_at_the_thresholds()
    {
        var h = new StoreHarness();
        // redis-server 7.0's compiled defaults: 512 entries, 64 bytes.
        for (int i = 0; i < 512; i++) h.Run("HSET", "h", "f" + i, "v");
        Assert.Equal("listpack", ((KvHash)Value(h, "h")).Encoding);
        h.Run("HSET", "h", "f512", "v");
        Assert.Equal("hashtable", ((KvHash)Value(h, "h")).Encoding);
        h.Run("HDEL", "h", "f512", "f0");
        Assert.Equal("hashtable", ((KvHash)Value(h, "h")).Encoding); // never converted back

        h.Run("HSET", "v", "a", new string('x', 64));
        Assert.Equal("listpack", ((KvHash)Value(h, "v")).Encoding);
        h.Run("HSET", "v", "b", new string('x', 65));
        Assert.Equal("hashtable", ((KvHash)Value(h, "v")).Encoding);
        h.Run("HSETNX", "w", new string('k', 65), "1");
        Assert.Equal("hashtable", ((KvHash)Value(h, "w")).Encoding);
        h.Run("HSET", "x", "a", "1");
        h.Run("HINCRBYFLOAT", "x", "a", "5e70"); // a 71-byte result converts, as Redis's hashTypeSet does
        Assert.Equal("hashtable", ((KvHash)Value(h, "x")).Encoding);
        // A failing HSET on a listpack with a long argument converts it anyway in Redis; here every HSET succeeds.
        var small = new StoreHarness(new KvStore(random: new Random(1), encodings: new KvEncodingLimits { HashMaxListpackEntries = 2, HashMaxListpackValue = 3 }));
        small.Run("HSET", "h", "a", "123", "b", "2");
        Assert.Equal("listpack", ((KvHash)Value(small, "h")).Encoding);
        small.Run("HSET", "h", "c", "3");
        Assert.Equal("hashtable", ((KvHash)Value(small, "h")).Encoding);
    }

    [Fact]
    public void Hrandfield_counts_and_errors()
    {
        var h = new StoreHarness();
        h.Run("HSET", "h", "a", "1", "b", "2", "c", "3");
        Assert.Equal(Array("a", "b", "c"), h.Run("HRANDFIELD", "h", "3"));
        Assert.Equal(Array("a", "b", "c"), h.Run("HRANDFIELD", "h", "10"));
        Assert.StartsWith("*2\r\n", h.Run("HRANDFIELD", "h", "2"), StringComparison.Ordinal);
        Assert.StartsWith("*7\r\n", h.Run("HRANDFIELD", "h", "-7"), StringComparison.Ordinal);
        Assert.Equal("*0\r\n", h.Run("HRANDFIELD", "h", "0"));
        Assert.Equal("*0\r\n", h.Run("HRANDFIELD", "nokey", "5"));
        Assert.Equal(Nil, h.Run("HRANDFIELD", "nokey"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("HRANDFIELD", "h", "x"));
        Assert.Equal(Err("ERR syntax error"), h.Run("HRANDFIELD", "h", "1", "WITHVALUE"));
        Assert.Equal(Err("ERR syntax error"), h.Run("HRANDFIELD", "h", "1", "WITHVALUES", "x"));
        Assert.Equal(Err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            h.Run("HRANDFIELD", "h", "-9223372036854775808"));
        Assert.Equal(Err("ERR value is out of range"), h.Run("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"));
        for (int i = 0; i < 50; i++)
        {
            // Distinct fields for a positive count, whatever the strategy.
            string r = h.Run("HRANDFIELD", "h", "2");
            Assert.NotEqual(r.Split("\r\n")[2], r.Split("\r\n")[4]);
        }
        h.Aof.Commands.Clear();
        h.Run("HRANDFIELD", "h", "-2", "WITHVALUES");
        Assert.Empty(h.Logged);
    }

    [Fact]
    public void Hscan_listpack_returns_everything_and_hashtable_scan_returns_every_stable_field()
    {
        var h = new StoreHarness();
        h.Run("HSET", "h", "a", "1", "b", "2", "ab", "3");
        Assert.Equal("*2\r\n$1\r\n0\r\n" + Array("a", "1", "b", "2", "ab", "3"), h.Run("HSCAN", "h", "7", "COUNT", "1"));
        Assert.Equal("*2\r\n$1\r\n0\r\n" + Array("a", "1", "ab", "3"), h.Run("HSCAN", "h", "0", "MATCH", "a*"));
        Assert.Equal(Err("ERR syntax error"), h.Run("HSCAN", "h", "0", "COUNT", "0"));
        Assert.Equal(Err("ERR syntax error"), h.Run("HSCAN", "h", "0", "NOVALUES"));
        Assert.Equal(Err("ERR syntax error"), h.Run("HSCAN", "h", "0", "TYPE", "string"));
        Assert.Equal(Err("ERR value is not an integer or out of range"), h.Run("HSCAN", "h", "0", "COUNT", "x"));
        Assert.Equal(Err("ERR invalid cursor"), h.Run("HSCAN", "h", "x"));
        Assert.Equal(Err("ERR invalid cursor"), h.Run("HSCAN", "h", "18446744073709551616"));
        Assert.Equal("*2\r\n$1\r\n0\r\n*0\r\n", h.Run("HSCAN", "nokey", "0", "FOO"));

        for (int i = 0; i < 1000; i++) h.Run("HSET", "big", "f" + i, "v");
        var seen = new HashSet<string>();
        string cursor = "0";
        int calls = 0, removed = 0;
        do
        {
            var reply = new ScanReply(h.Run("HSCAN", "big", cursor, "COUNT", "20"));
            cursor = reply.Cursor;
            for (int i = 0; i < reply.Items.Count; i += 2) seen.Add(reply.Items[i]);
            // Churn during the scan: delete fields (forcing compactions) and add new ones.
            for (int j = 0; j < 30 && removed < 900; j++) h.Run("HDEL", "big", "f" + (999 - removed++));
            h.Run("HSET", "big", "new" + calls, "v");
            calls++;
        }
        while (cursor != "0" && calls < 10_000);
        Assert.Equal("0", cursor);
        for (int i = 0; i < 100; i++) Assert.Contains("f" + i, seen); // present throughout: returned
    }

    [Fact]
    public void Aof_replay_and_rewrite_give_the_same_hashes()
    {
        var h = new StoreHarness();
        List<string[]> commands =
        [
            ["HSET", "h", "a", "1", "b", "2"], ["HMSET", "h", "c", "3"], ["HSETNX", "h", "d", "4"], ["HSETNX", "h", "d", "5"],
            ["HDEL", "h", "a"], ["HINCRBY", "h", "n", "7"], ["HINCRBYFLOAT", "h", "f", "1000"], ["HINCRBYFLOAT", "h", "f", "0.1"],
            ["HRANDFIELD", "h", "-5"], ["HSET", "long", "x", new string('y', 100)], ["SELECT", "2"], ["HSET", "h", "z", "1"],
            ["HDEL", "h", "z"], ["HSET", "e", "t", "1"], ["EXPIRE", "e", "100"],
        ];
        for (int i = 0; i < 300; i++) commands.Add(["HSET", "big", "f" + i, "v" + i]);
        for (int i = 0; i < 100; i++) commands.Add(["HDEL", "big", "f" + (i * 3)]);
        byte[] log = RunLogged(h, commands);
        AssertReplaysEqual(h, log);
        Assert.Contains("$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$22\r\n1000.09999999999999998\r\n", System.Text.Encoding.UTF8.GetString(log), StringComparison.Ordinal);
    }

    [Fact]
    public void Rewrite_uses_hset_in_chunks_of_64()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 130; i++) h.Run("HSET", "h", "f" + i, "v");
        var output = new ArrayBufferWriter<byte>();
        Value(h, "h").WriteRewrite("h"u8, output);
        string text = System.Text.Encoding.ASCII.GetString(output.WrittenSpan);
        Assert.Equal(3, text.Split("$4\r\nHSET\r\n").Length - 1);
        Assert.StartsWith("*130\r\n", text, StringComparison.Ordinal);
        Assert.Contains("*6\r\n$4\r\nHSET", text, StringComparison.Ordinal); // 130 = 64 + 64 + 2
    }

    [Fact]
    public void Events_and_clone()
    {
        var events = new EventRecorder();
        var h = new StoreHarness();
        h.Store.Observer = events;
        h.Run("HSET", "h", "a", "1");
        h.Run("HINCRBY", "h", "n", "1");
        h.Run("HINCRBYFLOAT", "h", "n", "1");
        h.Run("HDEL", "h", "zz");
        h.Run("HDEL", "h", "a", "n");
        Assert.Equal(["hset:h", "hincrby:h", "hincrbyfloat:h", "hdel:h", "del:h"], events.Events);

        h.Run("HSET", "c", "a", "1");
        var hash = (KvHash)Value(h, "c");
        var copy = (KvHash)hash.Clone();
        h.Run("HSET", "c", "a", "2", "b", "3");
        Assert.Equal("1", System.Text.Encoding.ASCII.GetString(copy.GetField("a"u8)!));
        Assert.Null(copy.GetField("b"u8));
        Assert.True(hash.EstimateBytes() > 0);
    }

    // The live value (snapshots hold clones).
    internal static KvObject Value(StoreHarness h, string key) =>
        (KvObject)h.Store.Database(0).Map[System.Text.Encoding.UTF8.GetBytes(key)].Value;
}

/// <summary>Parses a raw SCAN reply: cursor and the flat list of items.</summary>
internal sealed class ScanReply
{
    public ScanReply(string raw)
    {
        string[] lines = raw.Split("\r\n");
        Cursor = lines[2];
        int n = int.Parse(lines[3][1..], System.Globalization.CultureInfo.InvariantCulture);
        for (int i = 0; i < n; i++) Items.Add(lines[5 + 2 * i]);
    }

    public string Cursor { get; }

    public List<string> Items { get; } = [];
}
