using System.Buffers;
using System.Text.RegularExpressions;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public partial class StreamTests
{
    private static string Bulk(string s) => $"${s.Length}\r\n{s}\r\n";

    [Fact]
    public void Xadd_explicit_and_generated_ids_and_their_errors()
    {
        var h = new StoreHarness();
        Assert.Equal(Bulk("5-1"), h.Run("XADD", "s", "5-1", "f", "v"));
        Assert.Equal(Bulk("5-2"), h.Run("XADD", "s", "5-*", "f", "v"));
        Assert.Equal(Bulk("6-0"), h.Run("XADD", "s", "6", "f", "v"));
        Assert.Equal("-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n", h.Run("XADD", "s", "6-0", "f", "v"));
        Assert.Equal("-ERR The ID specified in XADD must be greater than 0-0\r\n", h.Run("XADD", "s2", "0-0", "f", "v"));
        Assert.Equal("-ERR Invalid stream ID specified as stream command argument\r\n", h.Run("XADD", "s", "x", "f", "v"));
        Assert.Equal("-ERR wrong number of arguments for 'xadd' command\r\n", h.Run("XADD", "s", "*", "f"));
        Assert.Equal("$-1\r\n", h.Run("XADD", "nokey", "NOMKSTREAM", "*", "f", "v"));
        Assert.Equal(Bulk($"{h.Now}-0"), h.Run("XADD", "s", "*", "f", "v"));
        Assert.Equal(Bulk($"{h.Now}-1"), h.Run("XADD", "s", "*", "f", "v"));
        Assert.Equal(":5\r\n", h.Run("XLEN", "s"));
        Assert.Equal("*1\r\n*2\r\n$3\r\n5-2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", h.Run("XRANGE", "s", "(5-1", "(6-0", "COUNT", "5"));
        Assert.Equal("*-1\r\n", h.Run("XRANGE", "s", "-", "+", "COUNT", "0"));
        Assert.Equal("-ERR invalid start ID for the interval\r\n", h.Run("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"));
        h.Run("SET", "str", "x");
        Assert.StartsWith("-WRONGTYPE", h.Run("XADD", "str", "*", "f", "v"));
    }

    [Fact]
    public void Stream_lookups_by_row_count_hits_and_misses_expire_and_reply_wrongtype_like_the_general_lookup()
    {
        var h = new StoreHarness();
        h.Run("XADD", "s", "1-0", "f", "v");
        h.Run("XGROUP", "CREATE", "s", "g", "0");
        long hits = h.Store.KeyspaceHits, misses = h.Store.KeyspaceMisses;
        Assert.Equal(":1\r\n", h.Run("XLEN", "s")); // a read: one hit
        Assert.StartsWith("*1\r\n", h.Run("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), StringComparison.Ordinal);
        Assert.Equal(":1\r\n", h.Run("XACK", "s", "g", "1-0"));
        Assert.Equal(hits + 4, h.Store.KeyspaceHits); // XLEN, XREADGROUP (parse and serve), XACK
        Assert.Equal(misses, h.Store.KeyspaceMisses);
        Assert.Equal(":0\r\n", h.Run("XLEN", "missing"));
        Assert.Equal(misses + 1, h.Store.KeyspaceMisses);

        // An expired stream is gone for every command (expired on access, as by the general lookup).
        h.Run("PEXPIRE", "s", "10");
        h.Now += 11;
        Assert.Equal(":0\r\n", h.Run("XLEN", "s"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "s"));
        Assert.Equal(Bulk("2-0"), h.Run("XADD", "s", "2-0", "f", "v")); // a new stream, not the expired one
        Assert.Equal(":1\r\n", h.Run("XLEN", "s"));

        h.Run("SET", "str", "x");
        foreach (string[] command in new[] { new[] { "XLEN", "str" }, ["XACK", "str", "g", "1-0"], ["XADD", "str", "*", "f", "v"],
                     ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"], ["XRANGE", "str", "-", "+"] })
        {
            Assert.StartsWith("-WRONGTYPE", h.Run(command), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Nodes_hold_100_entries_and_approximate_trimming_removes_whole_nodes()
    {
        var h = new StoreHarness();
        for (int i = 1; i <= 250; i++) h.Run("XADD", "s", $"{i}-0", "f", "v");
        string info = h.Run("XINFO", "STREAM", "s");
        Assert.Contains(Bulk("radix-tree-keys") + ":3\r\n", info, StringComparison.Ordinal);
        Assert.Equal(":0\r\n", h.Run("XTRIM", "s", "MAXLEN", "~", "200")); // would cut into the first node
        Assert.Equal(":100\r\n", h.Run("XTRIM", "s", "MAXLEN", "~", "150"));
        Assert.Equal(":10\r\n", h.Run("XTRIM", "s", "MAXLEN", "=", "140"));
        Assert.Equal(":140\r\n", h.Run("XLEN", "s"));
        // The approximate trim is logged as the exact trim it turned out to be.
        Assert.Contains("XTRIM s MAXLEN = 150", h.Logged);
        Assert.Contains("XTRIM s MAXLEN = 140", h.Logged);
    }

    [Fact]
    public void Reads_and_group_reads_log_their_effects_as_redis_propagates_them()
    {
        var h = new StoreHarness();
        h.Run("XADD", "s", "1-0", "a", "1");
        h.Run("XADD", "s", "MAXLEN", "~", "10", "LIMIT", "5", "*", "b", "2");
        h.Run("XGROUP", "CREATE", "s", "g", "0");
        h.Run("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">");
        h.Run("XREADGROUP", "GROUP", "g", "bob", "NOACK", "STREAMS", "s", ">");
        h.Run("XREAD", "STREAMS", "s", "0");
        long t = h.Now;
        Assert.Equal(
        [
            "SELECT 0",
            "XADD s 1-0 a 1",
            $"XADD s MAXLEN = 2 {t}-0 b 2",
            "XGROUP CREATE s g 0",
            "XGROUP CREATECONSUMER s g alice",
            $"XCLAIM s g alice 0 1-0 TIME {t} RETRYCOUNT 1 FORCE JUSTID LASTID 1-0",
            "XGROUP SETID s g 1-0 ENTRIESREAD 1",
            "XGROUP CREATECONSUMER s g bob",
            $"XGROUP SETID s g {t}-0 ENTRIESREAD 2",
        ], h.Logged);
    }

    [Fact]
    public void Read_replies_have_resp2_and_resp3_shapes()
    {
        var h = new StoreHarness();
        h.Run("XADD", "s", "1-0", "a", "1");
        Assert.Equal("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n", h.Run("XREAD", "STREAMS", "s", "0"));
        Assert.Equal("*-1\r\n", h.Run("XREAD", "STREAMS", "s", "$"));
        h.Protocol = 3;
        Assert.Equal("%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n", h.Run("XREAD", "STREAMS", "s", "0"));
        Assert.Equal("_\r\n", h.Run("XREAD", "COUNT", "5", "STREAMS", "s", "1-0"));
        h.Run("XGROUP", "CREATE", "s", "g", "$");
        Assert.StartsWith("*1\r\n%6\r\n$4\r\nname\r\n$1\r\ng\r\n", h.Run("XINFO", "GROUPS", "s"), StringComparison.Ordinal);
    }

    [Fact]
    public void Group_counters_follow_redis_7_0()
    {
        var h = new StoreHarness();
        for (int i = 1; i <= 4; i++) h.Run("XADD", "s", $"{i}-0", "f", "v");
        h.Run("XGROUP", "CREATE", "s", "g", "0");
        h.Run("XGROUP", "CREATE", "s", "g2", "$");
        h.Run("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">");
        h.Run("XDEL", "s", "3-0");
        h.Run("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">");
        string groups = h.Run("XINFO", "GROUPS", "s");
        // g read 1, 2, then 4 past the tombstone 3: 7.0 counts it as the third read; lag 4 - 3.
        Assert.Contains(Bulk("entries-read") + ":3\r\n" + Bulk("lag") + ":1\r\n", groups, StringComparison.Ordinal);
        // g2 (created at $ without ENTRIESREAD): unknown counter, but at the last ID its lag is known to be 0.
        Assert.Contains(Bulk("last-delivered-id") + Bulk("4-0") + Bulk("entries-read") + "$-1\r\n" + Bulk("lag") + ":0\r\n", groups, StringComparison.Ordinal);
        Assert.Equal("*4\r\n:3\r\n$3\r\n1-0\r\n$3\r\n4-0\r\n*1\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n", h.Run("XPENDING", "s", "g"));
        h.Now += 5000;
        Assert.Equal("*1\r\n*4\r\n$3\r\n4-0\r\n$1\r\nc\r\n:5000\r\n:1\r\n", h.Run("XPENDING", "s", "g", "IDLE", "1000", "(2-0", "+", "10", "c"));
        // XAUTOCLAIM: 7.0's third element lists pending IDs whose entries were deleted.
        h.Run("XDEL", "s", "2-0");
        Assert.Equal("*3\r\n$3\r\n4-0\r\n*1\r\n$3\r\n1-0\r\n*1\r\n$3\r\n2-0\r\n", h.Run("XAUTOCLAIM", "s", "g", "d", "0", "0", "COUNT", "2", "JUSTID"));
    }

    // ---------------------------------------------------------------- AOF round trips

    private static readonly string[][] s_workload =
    [
        ["XADD", "s", "1-0", "a", "1"], ["XADD", "s", "2-0", "a", "2", "b", "3"], ["XADD", "s", "3-*", "a", "3"],
        ["XADD", "s", "*", "a", "4"], ["XADD", "s", "MAXLEN", "~", "100", "*", "a", "5"],
        ["XGROUP", "CREATE", "s", "g1", "0"], ["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "5"],
        ["XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"], ["XGROUP", "CREATECONSUMER", "e", "g", "idle-one"],
        ["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", "s", ">"],
        ["XREADGROUP", "GROUP", "g1", "bob", "STREAMS", "s", ">"],
        ["XREADGROUP", "GROUP", "g1", "alice", "STREAMS", "s", "0"],
        ["XADD", "s", "*", "a", "6"],
        ["XREADGROUP", "GROUP", "g2", "carol", "NOACK", "STREAMS", "s", ">"],
        ["XACK", "s", "g1", "1-0"],
        ["XCLAIM", "s", "g1", "dave", "0", "2-0", "RETRYCOUNT", "7"],
        ["XCLAIM", "s", "g1", "erin", "0", "3-0", "IDLE", "500", "JUSTID"],
        ["XAUTOCLAIM", "s", "g1", "frank", "0", "0", "COUNT", "1"],
        ["XGROUP", "CREATE", "s", "g3", "0"], ["XGROUP", "SETID", "s", "g3", "2-0", "ENTRIESREAD", "2"],
        ["XGROUP", "CREATECONSUMER", "s", "g3", "zed"], ["XGROUP", "DELCONSUMER", "s", "g1", "nobody"],
        ["XDEL", "s", "1-0"], ["XSETID", "s", "99999999999999-0", "ENTRIESADDED", "50", "MAXDELETEDID", "1-0"],
        ["XADD", "t", "1-1", "x", "y"], ["XTRIM", "t", "MAXLEN", "0"], ["XGROUP", "CREATE", "t", "tg", "0"],
        ["XADD", "u", "5-0", "x", "y"], ["XGROUP", "CREATE", "u", "gone", "0"], ["XGROUP", "DESTROY", "u", "gone"],
        ["SELECT", "2"], ["XADD", "s", "7-0", "k", "v"], ["XGROUP", "CREATE", "s", "g", "0"],
        ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
    ];

    private static (StoreHarness Harness, byte[] Log) RunWorkload()
    {
        var h = new StoreHarness();
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        var session = new KvSession();
        foreach (string[] c in s_workload)
        {
            h.Store.Execute(session, KvCommand.Create(c), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), sink);
            h.Now += 1000;
        }
        return (h, log.WrittenSpan.ToArray());
    }

    [GeneratedRegex(@"(\$(?:4\r\nidle|9\r\nseen-time)\r\n):\d+")]
    private static partial Regex ClockFields();

    // Everything a client can see of the streams (consumers' idle and seen times masked: replay sees them anew).
    private static string State(KvStore store, long now)
    {
        var h = new StoreHarness(store) { Now = now };
        var sb = new System.Text.StringBuilder();
        foreach (string db in new[] { "0", "2" })
        {
            h.Run("SELECT", db);
            foreach (string key in new[] { "s", "e", "t", "u" })
            {
                sb.Append(h.Run("TYPE", key)).Append(h.Run("XRANGE", key, "-", "+")).Append(h.Run("XINFO", "STREAM", key, "FULL", "COUNT", "0"));
                sb.Append(h.Run("XINFO", "GROUPS", key));
                foreach (string g in new[] { "g", "g1", "g2", "g3", "tg", "gone" })
                {
                    sb.Append(h.Run("XPENDING", key, g, "-", "+", "100")).Append(h.Run("XPENDING", key, g)).Append(h.Run("XINFO", "CONSUMERS", key, g));
                }
            }
        }
        return ClockFields().Replace(sb.ToString(), "$1:masked");
    }

    [Fact]
    public void Aof_replay_restores_entries_and_consumer_group_state()
    {
        var (h, log) = RunWorkload();
        var fresh = new KvStore();
        AofLoadResult result = AofLoader.Load(log, fresh, h.Now);
        Assert.False(result.IsTruncated);
        string expected = State(h.Store, h.Now);
        Assert.Contains("alice", expected, StringComparison.Ordinal);
        Assert.Contains("idle-one", expected, StringComparison.Ordinal);
        Assert.Equal(expected, State(fresh, h.Now));
    }

    [Fact]
    public void Aof_rewrite_restores_entries_and_consumer_group_state()
    {
        var (h, _) = RunWorkload();
        var output = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, output);
        var fresh = new KvStore();
        AofLoader.Load(output.WrittenSpan, fresh, h.Now);
        Assert.Equal(State(h.Store, h.Now), State(fresh, h.Now));

        // The rewrite emits what Redis's rewriteStreamObject emits.
        string text = System.Text.Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Contains("XSETID\r\n$1\r\ns\r\n$16\r\n99999999999999-0\r\n$12\r\nENTRIESADDED\r\n$2\r\n50\r\n$12\r\nMAXDELETEDID\r\n$3\r\n1-0", text, StringComparison.Ordinal);
        Assert.Contains("XADD\r\n$1\r\nt\r\n$6\r\nMAXLEN\r\n$1\r\n0\r\n$3\r\n0-1\r\n", text, StringComparison.Ordinal);
        Assert.Contains("CREATECONSUMER\r\n$1\r\ne\r\n$1\r\ng\r\n$8\r\nidle-one", text, StringComparison.Ordinal);
        Assert.Contains("XCLAIM\r\n$1\r\ns\r\n$2\r\ng1\r\n$5\r\nfrank\r\n$1\r\n0\r\n$3\r\n2-0\r\n$4\r\nTIME\r\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Clone_is_independent_of_the_original()
    {
        var (h, _) = RunWorkload();
        KvSnapshotEntry[] snapshot = h.Store.CreateSnapshot(h.Now);
        string before = State(h.Store, h.Now);
        h.Run("XACK", "s", "g1", "2-0", "3-0");
        h.Run("XADD", "s", "*", "late", "1");
        h.Run("XGROUP", "DESTROY", "s", "g3");
        var output = new ArrayBufferWriter<byte>();
        AofRewriter.Write(snapshot, output);
        var fresh = new KvStore();
        AofLoader.Load(output.WrittenSpan, fresh, h.Now);
        Assert.Equal(before, State(fresh, h.Now));
        Assert.NotEqual(before, State(h.Store, h.Now));
    }

    [Fact]
    public void Groups_and_consumers_are_found_by_name_after_destroy_delconsumer_and_copy()
    {
        var h = new StoreHarness();
        h.Run("XADD", "s", "1-0", "f", "v");
        h.Run("XADD", "s", "2-0", "f", "w");
        Assert.Equal("+OK\r\n", h.Run("XGROUP", "CREATE", "s", "g", "0"));
        Assert.Equal("-BUSYGROUP Consumer Group name already exists\r\n", h.Run("XGROUP", "CREATE", "s", "g", "0"));
        Assert.Equal("+OK\r\n", h.Run("XGROUP", "CREATE", "s", "g2", "$"));
        string one = "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
        Assert.Equal(one, h.Run("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"));
        Assert.Equal(":1\r\n", h.Run("XGROUP", "DELCONSUMER", "s", "g", "alice"));
        Assert.Equal(":0\r\n", h.Run("XGROUP", "DELCONSUMER", "s", "g", "alice"));
        Assert.Equal(":1\r\n", h.Run("XGROUP", "CREATECONSUMER", "s", "g", "alice"));
        Assert.Equal(":0\r\n", h.Run("XGROUP", "CREATECONSUMER", "s", "g", "alice"));
        Assert.Equal("*1\r\n*2\r\n$1\r\ns\r\n*0\r\n", h.Run("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"));
        Assert.Equal(":1\r\n", h.Run("XGROUP", "DESTROY", "s", "g"));
        Assert.Equal(":0\r\n", h.Run("XGROUP", "DESTROY", "s", "g"));
        Assert.StartsWith("-NOGROUP", h.Run("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"));
        Assert.Equal(":0\r\n", h.Run("XACK", "s", "g", "1-0"));
        Assert.Equal("+OK\r\n", h.Run("XGROUP", "CREATE", "s", "g", "0"));
        Assert.Equal(one, h.Run("XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">"));
        // A copy has its own groups and consumers, found by name.
        Assert.Equal(":1\r\n", h.Run("COPY", "s", "t"));
        Assert.Equal("*1\r\n*2\r\n$1\r\nt\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
            h.Run("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "t", "0"));
        Assert.Equal(":1\r\n", h.Run("XACK", "t", "g", "1-0"));
        Assert.Equal(":1\r\n", h.Run("XACK", "s", "g", "1-0")); // the original's PEL still holds it
        Assert.Equal(":1\r\n", h.Run("XGROUP", "DESTROY", "t", "g2"));
        Assert.Equal(":1\r\n", h.Run("XGROUP", "CREATECONSUMER", "s", "g2", "x")); // the original's g2 is still there
        // The field names are shared between entries (XADD), the values are each entry's own.
        Assert.Equal(Bulk("3-0"), h.Run("XADD", "s", "3-0", "f", "x", "g", "y"));
        Assert.Equal("*3\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$1\r\nw\r\n"
            + "*2\r\n$3\r\n3-0\r\n*4\r\n$1\r\nf\r\n$1\r\nx\r\n$1\r\ng\r\n$1\r\ny\r\n", h.Run("XRANGE", "s", "-", "+"));
    }
}
