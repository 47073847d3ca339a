using System.Globalization;
using EioSharp.Kv.EndToEnd.Differential;
using StackExchange.Redis;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Streams and consumer groups through StackExchange.Redis, and consumer-group state across restarts.</summary>
public sealed class StreamEndToEndTests
{
    [Fact]
    public void StackExchange_Redis_stream_api_round_trips()
    {
        using var server = KvServerProcess.Start("--domains", "1");
        using var mux = ConnectionMultiplexer.Connect($"127.0.0.1:{server.Port},allowAdmin=true");
        IDatabase db = mux.GetDatabase();
        RedisKey key = "orders";

        Assert.Equal("1-0", (string?)db.StreamAdd(key, "item", "apple", messageId: "1-0"));
        Assert.Equal("2-0", (string?)db.StreamAdd(key, [new NameValueEntry("item", "pear"), new NameValueEntry("qty", "2")], messageId: "2-0"));
        RedisValue generated = db.StreamAdd(key, "item", "plum");
        Assert.EndsWith("-0", (string?)generated, StringComparison.Ordinal);
        Assert.Equal(3, db.StreamLength(key));

        StreamEntry[] read = db.StreamRead(key, "1-0");
        Assert.Equal(["2-0", (string?)generated], read.Select(e => (string?)e.Id));
        Assert.Equal("2", (string?)read[0]["qty"]);
        StreamEntry[] range = db.StreamRange(key, "-", "+", count: 2, messageOrder: Order.Descending);
        Assert.Equal([(string?)generated, "2-0"], range.Select(e => (string?)e.Id));

        Assert.True(db.StreamCreateConsumerGroup(key, "workers", StreamPosition.Beginning));
        StreamEntry[] alice = db.StreamReadGroup(key, "workers", "alice", StreamPosition.NewMessages, count: 2);
        Assert.Equal(["1-0", "2-0"], alice.Select(e => (string?)e.Id));
        StreamEntry[] bob = db.StreamReadGroup(key, "workers", "bob", StreamPosition.NewMessages);
        Assert.Single(bob);
        Assert.Equal(1, db.StreamAcknowledge(key, "workers", "1-0"));

        StreamPendingInfo pending = db.StreamPending(key, "workers");
        Assert.Equal(2, pending.PendingMessageCount);
        Assert.Equal("2-0", (string?)pending.LowestPendingMessageId);
        Assert.Equal(["alice:1", "bob:1"], pending.Consumers.Select(c => $"{c.Name}:{c.PendingMessageCount}"));
        StreamPendingMessageInfo[] messages = db.StreamPendingMessages(key, "workers", 10, "alice");
        Assert.Equal("2-0", (string?)Assert.Single(messages).MessageId);
        Assert.Equal(1, messages[0].DeliveryCount);

        StreamEntry[] claimed = db.StreamClaim(key, "workers", "carol", 0, ["2-0"]);
        Assert.Equal("pear", (string?)Assert.Single(claimed)["item"]);
        StreamAutoClaimResult auto = db.StreamAutoClaim(key, "workers", "dave", 0, "0-0", 10);
        Assert.Equal(2, auto.ClaimedEntries.Length);
        Assert.Empty(auto.DeletedIds);
        Assert.Equal("0-0", (string?)auto.NextStartId);

        StreamInfo info = db.StreamInfo(key);
        Assert.Equal(3, info.Length);
        Assert.Equal(1, info.ConsumerGroupCount);
        Assert.Equal("1-0", (string?)info.FirstEntry.Id);
        Assert.Equal((string?)generated, (string?)info.LastGeneratedId);
        StreamGroupInfo group = Assert.Single(db.StreamGroupInfo(key));
        Assert.Equal("workers", group.Name);
        Assert.Equal(4, group.ConsumerCount);
        Assert.Equal(2, group.PendingMessageCount);
        Assert.Equal((string?)generated, (string?)group.LastDeliveredId);
        StreamConsumerInfo[] consumers = db.StreamConsumerInfo(key, "workers");
        Assert.Equal(["alice:0", "bob:0", "carol:0", "dave:2"], consumers.Select(c => $"{c.Name}:{c.PendingMessageCount}"));

        Assert.Equal(1, db.StreamDelete(key, ["2-0"]));
        Assert.Equal(1, db.StreamTrim(key, 1));
        Assert.Equal((string?)generated, (string?)Assert.Single(db.StreamRange(key)).Id);
    }

    private static readonly string[] s_groups = ["g0", "g1"];

    // Reads and acknowledges through two groups, remembering what should be pending per group: read minus acked.
    private static Dictionary<string, SortedSet<string>> Traffic(RespConnection c, int round, Dictionary<string, SortedSet<string>> pending)
    {
        string value = new('v', 300);
        for (int i = 0; i < 40; i++)
        {
            string id = $"{round * 1000 + i + 1}-0";
            Assert.Equal(id, c.Call("XADD", "jobs", id, "n", i.ToString(CultureInfo.InvariantCulture), "pad", value).Text);
        }
        foreach (string g in s_groups)
        {
            if (!pending.ContainsKey(g))
            {
                Assert.Equal("OK", c.Call("XGROUP", "CREATE", "jobs", g, "0").Text);
                pending[g] = new SortedSet<string>(Comparer<string>.Create(CompareIds));
            }
            for (int k = 0; k < 3; k++)
            {
                Resp reply = c.Call("XREADGROUP", "GROUP", g, "worker" + k, "COUNT", "10", "STREAMS", "jobs", ">");
                foreach (Resp entry in reply.Items![0].Items![1].Items!) pending[g].Add(entry.Items![0].Text!);
            }
            // Acknowledge every other pending entry.
            foreach (string id in pending[g].Where((_, n) => n % 2 == 0).ToList())
            {
                Assert.Equal(1L, long.Parse(c.Call("XACK", "jobs", g, id).Text!, CultureInfo.InvariantCulture));
                pending[g].Remove(id);
            }
        }
        return pending;
    }

    private static int CompareIds(string a, string b)
    {
        static (ulong, ulong) P(string s) => (ulong.Parse(s.Split('-')[0], CultureInfo.InvariantCulture), ulong.Parse(s.Split('-')[1], CultureInfo.InvariantCulture));
        return P(a).CompareTo(P(b));
    }

    private static string GroupsInfo(RespConnection c) => c.Call("XINFO", "GROUPS", "jobs").ToString();

    private static void AssertPendingMatches(RespConnection c, Dictionary<string, SortedSet<string>> pending, string groupsBefore, string why)
    {
        foreach (string g in s_groups)
        {
            Resp rows = c.Call("XPENDING", "jobs", g, "-", "+", "1000");
            Assert.True(pending[g].SequenceEqual(rows.Items!.Select(r => r.Items![0].Text!)), $"{why}: pending of {g}: {rows}");
            Assert.Equal(pending[g].Count.ToString(CultureInfo.InvariantCulture), c.Call("XPENDING", "jobs", g).Items![0].Text);
        }
        Assert.Equal(groupsBefore, GroupsInfo(c));
    }

    [Fact]
    public void Consumer_group_state_survives_restart_and_aof_rewrite()
    {
        using var dir = new TempDir();
        var pending = new Dictionary<string, SortedSet<string>>();
        string groups;
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--domains", "1"))
        {
            using var c = new RespConnection(server.Port);
            Traffic(c, 0, pending);
            Traffic(c, 1, pending);
            groups = GroupsInfo(c);
            Assert.Contains("worker2", c.Call("XINFO", "CONSUMERS", "jobs", "g1").ToString(), StringComparison.Ordinal);
            Assert.Equal(0, server.Terminate());
        }
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--domains", "1"))
        {
            using var c = new RespConnection(server.Port);
            AssertPendingMatches(c, pending, groups, "after restart");
            Assert.Equal(":80", c.Call("XLEN", "jobs").ToString());
            Assert.Equal(0, server.Terminate());
        }

        // Now with a rewrite: a small auto-rewrite threshold makes the server rewrite its AOF during the traffic.
        string[] rewriting = ["--appendfsync", "always", "--domains", "1", "--auto-aof-rewrite-min-size", "16kb", "--auto-aof-rewrite-percentage", "10"];
        using (var server = KvServerProcess.StartIn(dir.DataDir, rewriting))
        {
            using var c = new RespConnection(server.Port);
            for (int round = 2; round < 8; round++) Traffic(c, round, pending);
            Assert.True(server.WaitForLog("Background AOF rewrite finished", TimeSpan.FromSeconds(20)), server.Log);
            Traffic(c, 8, pending); // after the rewrite too
            groups = GroupsInfo(c);
            Assert.Equal(0, server.Terminate());
        }
        var check = Tools.CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, check.Output);
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--domains", "1"))
        {
            using var c = new RespConnection(server.Port);
            AssertPendingMatches(c, pending, groups, "after rewrite and restart");
            Assert.Contains("worker1", c.Call("XINFO", "CONSUMERS", "jobs", "g0").ToString(), StringComparison.Ordinal);
        }
    }
}
