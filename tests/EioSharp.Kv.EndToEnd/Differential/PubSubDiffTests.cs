using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Publishers and subscribers (RESP2 and RESP3) and keyspace notifications, differential against redis-server:
/// every reply and every message a subscriber receives are compared.</summary>
public sealed class PubSubDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    /// <summary>A subscriber on each server.</summary>
    private sealed class Pair(RespConnection redis, RespConnection kv, bool resp3) : IDisposable
    {
        public RespConnection Redis { get; } = redis;
        public RespConnection Kv { get; } = kv;
        public bool Resp3 { get; } = resp3;

        /// <summary>Reads both streams up to a PING marker and compares them item by item.</summary>
        public void Sync(string label, bool unorderedConfirmations = false)
        {
            List<string> r = ReadToMarker(Redis), k = ReadToMarker(Kv);
            // One message matching several patterns of a client: Redis 7 walks its pattern dict (hashtable order), so
            // the pmessages of one publish are compared as a set.
            r = SortPatternRuns(r);
            k = SortPatternRuns(k);
            if (unorderedConfirmations)
            {
                // (P|S)UNSUBSCRIBE without arguments walks Redis's hashtable: the order of the channels is not defined,
                // the counts (one less each time) are. Compare the names as a set and everything else in order.
                r = Unordered(r);
                k = Unordered(k);
            }
            Assert.True(r.SequenceEqual(k), $"{label}: the subscriber's streams differ\n  redis-server: {string.Join(" | ", r)}\n  EioSharp.Kv:  {string.Join(" | ", k)}");
        }

        private static List<string> SortPatternRuns(List<string> items)
        {
            static string? Message(string item)
            {
                string[] parts = item.Split(", ");
                return parts.Length == 4 && parts[0].EndsWith("\"pmessage\"", StringComparison.Ordinal) ? parts[2] + ", " + parts[3] : null;
            }

            var result = new List<string>(items.Count);
            int i = 0;
            while (i < items.Count)
            {
                string? m = Message(items[i]);
                int j = i + 1;
                while (m is not null && j < items.Count && Message(items[j]) == m) j++;
                result.AddRange(items.Skip(i).Take(j - i).Order(StringComparer.Ordinal));
                i = j;
            }
            return result;
        }

        private static List<string> Unordered(List<string> items)
        {
            var names = new List<string>();
            var result = new List<string>();
            foreach (string item in items)
            {
                string[] parts = item.Split(", ");
                if (parts.Length == 3 && parts[0].Contains("unsubscribe", StringComparison.Ordinal))
                {
                    names.Add(parts[1]);
                    result.Add(parts[0] + ", ?, " + parts[2]);
                }
                else
                {
                    result.Add(item);
                }
            }
            names.Sort(StringComparer.Ordinal);
            result.AddRange(names);
            return result;
        }

        private List<string> ReadToMarker(RespConnection c)
        {
            c.Send(RespConnection.Encode(["PING", "marker"]));
            var items = new List<string>();
            while (true)
            {
                Resp item = c.Read();
                string text = item.ToString();
                if (text is "$\"marker\"" or "*[$\"pong\", $\"marker\"]") return items;
                items.Add(text);
            }
        }

        public void Dispose()
        {
            Redis.Dispose();
            Kv.Dispose();
        }
    }

    private Pair Subscriber(bool resp3)
    {
        var pair = new Pair(new RespConnection(servers.Redis.Port), new RespConnection(servers.Kv.Port), resp3);
        if (resp3)
        {
            pair.Redis.Call("HELLO", "3");
            pair.Kv.Call("HELLO", "3");
        }
        return pair;
    }

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Publishers_and_subscribers_match_redis(int seed)
    {
        using var rPub = new RespConnection(servers.Redis.Port);
        using var kPub = new RespConnection(servers.Kv.Port);
        using Pair s1 = Subscriber(resp3: false), s2 = Subscriber(resp3: true);
        Pair[] subscribers = [s1, s2];
        var c = new DiffContext(new Random(seed));
        string Channel() => c.Pick("ch0", "ch1", "ch2", "news.a", "news.b", "other");
        string Pattern() => c.Pick("ch*", "news.*", "*", "ch[01]", "n?ws.a");
        for (int i = 0; i < 3000; i++)
        {
            string label = $"pubsub: seed {seed} (replay: KV_DIFF_SEEDS={seed}), step {i + 1}";
            int roll = c.Int(0, 20);
            if (roll < 10)
            {
                string[] command = roll switch
                {
                    < 6 => ["PUBLISH", Channel(), "m" + i.ToString(CultureInfo.InvariantCulture)],
                    6 => ["SPUBLISH", Channel(), "s" + i.ToString(CultureInfo.InvariantCulture)],
                    7 => ["PUBSUB", "NUMSUB", Channel(), Channel()],
                    8 => ["PUBSUB", "NUMPAT"],
                    _ => ["PUBSUB", c.Pick("SHARDNUMSUB", "NUMSUB"), Channel()],
                };
                Resp r = rPub.Call(command), k = kPub.Call(command);
                Assert.True(r.ToString() == k.ToString(), $"{label}: {string.Join(' ', command)}\n  redis-server: {r}\n  EioSharp.Kv:  {k}");
            }
            else if (roll < 18)
            {
                Pair s = subscribers[c.Int(0, 2)];
                string[] command = c.Int(0, 8) switch
                {
                    0 or 1 => ["SUBSCRIBE", Channel(), Channel()],
                    2 => ["UNSUBSCRIBE", Channel()],
                    3 => ["UNSUBSCRIBE"],
                    4 => ["PSUBSCRIBE", Pattern()],
                    5 => ["PUNSUBSCRIBE", c.Chance(0.5) ? Pattern() : "ch*"],
                    6 => ["SSUBSCRIBE", Channel()],
                    _ => c.Chance(0.5) ? ["SUNSUBSCRIBE"] : ["GET", "x"], // GET: subscribed-mode error on RESP2
                };
                s.Redis.Send(RespConnection.Encode(command));
                s.Kv.Send(RespConnection.Encode(command));
                s.Sync(label + ": " + string.Join(' ', command), unorderedConfirmations: command.Length == 1);
            }
            else
            {
                foreach (Pair s in subscribers) s.Sync(label);
            }
        }
        foreach (Pair s in subscribers) s.Sync($"pubsub: seed {seed}: end");
    }

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Keyspace_notifications_match_redis(int seed)
    {
        using var rw = new RespConnection(servers.Redis.Port);
        using var kw = new RespConnection(servers.Kv.Port);
        using Pair sub = Subscriber(resp3: false);
        rw.Call("FLUSHALL");
        kw.Call("FLUSHALL");
        Assert.Equal("+OK", rw.Call("CONFIG", "SET", "notify-keyspace-events", "KEA").ToString());
        Assert.Equal("+OK", kw.Call("CONFIG", "SET", "notify-keyspace-events", "KEA").ToString());
        try
        {
            sub.Redis.Send(RespConnection.Encode(["PSUBSCRIBE", "__key*__:*"]));
            sub.Kv.Send(RespConnection.Encode(["PSUBSCRIBE", "__key*__:*"]));
            sub.Sync("psubscribe");
            var c = new DiffContext(new Random(seed));
            for (int i = 0; i < 2000; i++)
            {
                string key = c.Key();
                string[] command = c.Int(0, 16) switch
                {
                    0 => ["SET", key, c.Value()],
                    1 => ["SET", key, c.Value(), "EX", "100000"],
                    2 => ["INCR", key],
                    3 => ["APPEND", key, c.Value()],
                    4 => ["DEL", key, c.Key()],
                    5 => ["EXPIRE", key, c.TtlArg()],
                    6 => ["PERSIST", key],
                    7 => ["RENAME", key, c.Key()],
                    8 => ["MOVE", key, c.Int(0, 2).ToString(CultureInfo.InvariantCulture)],
                    9 => ["SELECT", c.Int(0, 2).ToString(CultureInfo.InvariantCulture)],
                    10 => ["MSET", key, c.Value(), c.Key(), c.Value()],
                    11 => ["GETDEL", key],
                    12 => ["SETRANGE", key, c.Int(0, 5).ToString(CultureInfo.InvariantCulture), c.Value()],
                    13 => ["INCRBYFLOAT", key, "1.5"],
                    14 => ["GETEX", key, "EX", "50000"],
                    _ => ["GET", key],
                };
                Resp r = rw.Call(command), k = kw.Call(command);
                string label = $"notifications: seed {seed} (replay: KV_DIFF_SEEDS={seed}), command #{i + 1}: {string.Join(' ', command)}";
                Assert.True(r.ToString() == k.ToString(), $"{label}\n  redis-server: {r}\n  EioSharp.Kv:  {k}");
                if (i % 20 == 19 || c.Chance(0.05)) sub.Sync(label);
            }
            sub.Sync($"notifications: seed {seed}: end");
        }
        finally
        {
            rw.Call("CONFIG", "SET", "notify-keyspace-events", "");
            kw.Call("CONFIG", "SET", "notify-keyspace-events", "");
        }
    }
}
