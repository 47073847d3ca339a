using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class ZSetTests
{
    private static string Bulk(string s) => $"${Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";

    [Fact]
    public void Scores_are_printed_like_redis_7_0_addReplyDouble()
    {
        var h = new StoreHarness();
        h.Run("ZADD", "z", "0.1", "a", "1.5", "b", "3", "c", "inf", "d", "-inf", "e", "3.3333333333333335", "f", "1e300", "g", "123456789012345678", "h");
        Assert.Equal("*16\r\n" + string.Concat(new[] { "e", "-inf", "a", "0.10000000000000001", "b", "1.5", "c", "3", "f", "3.3333333333333335", "h", "1.2345678901234568e+17", "g", "1.0000000000000001e+300", "d", "inf" }.Select(Bulk)),
            h.Run("ZRANGE", "z", "0", "-1", "WITHSCORES"));
        h.Protocol = 3;
        Assert.Equal(",1.5\r\n", h.Run("ZSCORE", "z", "b"));
        Assert.Equal("*2\r\n*2\r\n$1\r\ne\r\n,-inf\r\n*2\r\n$1\r\na\r\n,0.10000000000000001\r\n", h.Run("ZRANGE", "z", "0", "1", "WITHSCORES"));
    }

    [Fact]
    public void Options_and_errors_use_redis_texts()
    {
        var h = new StoreHarness();
        Assert.Equal("-ERR XX and NX options at the same time are not compatible\r\n", h.Run("ZADD", "z", "NX", "XX", "1", "a"));
        Assert.Equal("-ERR GT, LT, and/or NX options at the same time are not compatible\r\n", h.Run("ZADD", "z", "GT", "LT", "1", "a"));
        Assert.Equal("-ERR INCR option supports a single increment-element pair\r\n", h.Run("ZADD", "z", "INCR", "1", "a", "2", "b"));
        Assert.Equal("-ERR value is not a valid float\r\n", h.Run("ZADD", "z", "nan", "a"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("ZADD", "z", "1", "a", "2"));
        Assert.Equal(":1\r\n", h.Run("ZADD", "z", "inf", "a"));
        Assert.Equal("-ERR resulting score is not a number (NaN)\r\n", h.Run("ZINCRBY", "z", "-inf", "a"));
        Assert.Equal("-ERR min or max is not a float\r\n", h.Run("ZCOUNT", "z", "(x", "1"));
        Assert.Equal("-ERR min or max not valid string range item\r\n", h.Run("ZLEXCOUNT", "z", "a", "+"));
        Assert.Equal("-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n", h.Run("ZRANGE", "z", "0", "1", "LIMIT", "0", "1"));
        Assert.Equal("$-1\r\n", h.Run("ZADD", "z", "XX", "INCR", "1", "nope"));
        Assert.Equal(":0\r\n", h.Run("ZADD", "z", "GT", "CH", "5", "a")); // inf > 5: no change
        Assert.Equal(":1\r\n", h.Run("ZADD", "z", "LT", "CH", "5", "a"));
        Assert.Equal("*2\r\n$1\r\na\r\n$1\r\n5\r\n", h.Run("ZRANGEBYSCORE", "z", "(1", "+inf", "WITHSCORES"));
        h.Run("SET", "s", "x");
        Assert.Equal("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", h.Run("ZADD", "s", "1", "a"));
        Assert.Equal("-ERR at least 1 input key is needed for 'zunionstore' command\r\n", h.Run("ZUNIONSTORE", "d", "0", "z"));
    }

    [Fact]
    public void Small_sets_are_listpacks_and_convert_past_either_threshold()
    {
        var h = new StoreHarness();
        var args = new List<string> { "ZADD", "z" };
        for (int i = 0; i < 128; i++) args.AddRange([i.ToString(), "m" + i]);
        h.Run([.. args]);
        Assert.Equal("listpack", Value(h, "z").Encoding);
        h.Run("ZADD", "z", "1", "one-more");
        Assert.Equal("skiplist", Value(h, "z").Encoding);
        h.Run("ZADD", "y", "1", "a");
        Assert.Equal("listpack", Value(h, "y").Encoding);
        h.Run("ZADD", "y", "1", new string('x', 65));
        Assert.Equal("skiplist", Value(h, "y").Encoding);
        // A store destination that fits is compact again; the listpack turns -0 into 0, the skip list keeps it.
        h.Run("ZADD", "y", "-0", "neg");
        Assert.Equal(Bulk("-0"), h.Run("ZSCORE", "y", "neg"));
        h.Run("ZRANGESTORE", "small", "y", "0", "0");
        Assert.Equal("listpack", Value(h, "small").Encoding);
        Assert.Equal(Bulk("0"), h.Run("ZSCORE", "small", "neg"));
        h.Run("ZUNIONSTORE", "u", "1", "y", "WEIGHTS", "2");
        Assert.Equal("skiplist", Value(h, "u").Encoding);
    }

    private static KvZSet Value(StoreHarness h, string key) =>
        (KvZSet)h.Store.CreateSnapshot(h.Now).Single(e => Encoding.UTF8.GetString(e.Key) == key).Value;

    [Fact]
    public void Pops_log_their_effect_and_random_reads_log_nothing()
    {
        var h = new StoreHarness();
        h.Run("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d");
        h.Aof.Commands.Clear();
        Assert.Equal("*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", h.Run("ZPOPMIN", "z", "2"));
        Assert.Equal("*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nd\r\n$1\r\n4\r\n", h.Run("ZMPOP", "2", "nokey", "z", "MAX"));
        h.Run("ZRANDMEMBER", "z", "-5", "WITHSCORES");
        Assert.Equal(["ZPOPMIN z 2", "ZPOPMAX z 1"], h.Aof.Commands.Select(c => string.Join(' ', Resp.Args(c))));
        h.Run("ZPOPMAX", "z");
        Assert.Equal("*0\r\n", h.Run("ZRANGE", "z", "0", "-1"));
        Assert.Equal("$4\r\nnone\r\n", "$4\r\n" + h.Run("TYPE", "z")[1..]); // the empty set was removed
    }

    private static Dictionary<string, string> Dump(KvStore store, long now, bool encoding = true) =>
        store.CreateSnapshot(now).ToDictionary(
            e => e.Db + "/" + Encoding.UTF8.GetString(e.Key),
            e => e.Value is KvZSet z
                ? (encoding ? z.Encoding : "") + ":" + string.Join(",", z.Range(0, z.Length - 1, false).Select(x => Encoding.UTF8.GetString(x.Member) + "=" + KvZSet.FormatRoundTrip(x.Score))) + "@" + e.ExpireAtUnixMs
                : Encoding.UTF8.GetString((byte[])e.Value));

    [Fact]
    public void Aof_log_and_rewrite_replay_to_the_same_sorted_sets()
    {
        var h = new StoreHarness();
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        var rnd = new Random(7);
        KvStore? debug = Environment.GetEnvironmentVariable("ZDEBUG") is null ? null : new KvStore();
        string[] scores = ["1", "-0", "0.1", "inf", "-inf", "1e300", "2.5", "-3", "3.3333333333333335"];
        for (int i = 0; i < 3000; i++)
        {
            string key = "z" + rnd.Next(4), m = "m" + rnd.Next(200), s = scores[rnd.Next(scores.Length)];
            string[] cmd = rnd.Next(16) switch
            {
                0 or 1 or 2 => ["ZADD", key, s, m, scores[rnd.Next(scores.Length)], "n" + rnd.Next(150)],
                3 => ["ZADD", key, s, new string('L', 70) + m],
                4 => ["ZINCRBY", key, s, m],
                5 => ["ZADD", key, "INCR", s, m],
                6 => ["ZREM", key, m],
                7 => ["ZPOPMIN", key, rnd.Next(1, 4).ToString()],
                8 => ["ZMPOP", "2", key, "z9", "MAX", "COUNT", "2"],
                9 => ["ZREMRANGEBYSCORE", key, "(1", "inf"],
                10 => ["ZREMRANGEBYRANK", key, "0", "1"],
                11 => ["ZUNIONSTORE", "z" + rnd.Next(4), "2", key, "z" + rnd.Next(4), "WEIGHTS", "2", "0.5"],
                12 => ["ZRANGESTORE", "z" + rnd.Next(4), key, "0", rnd.Next(5).ToString()],
                13 => ["ZINTERSTORE", "z" + rnd.Next(4), "2", key, "z" + rnd.Next(4), "AGGREGATE", "MAX"],
                14 => ["SELECT", rnd.Next(2).ToString()],
                _ => ["GEOADD", key, "13.361389", "38.115556", m],
            };
            var tmp = new AofListSink();
            h.Store.Execute(KvCommand.Create(cmd), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), tmp);
            foreach (KvCommand c in tmp.Commands)
            {
                sink.Append(c);
                debug?.Execute(c, h.Now, new RespWriter(new ArrayBufferWriter<byte>()), null);
            }
            if (debug is not null && string.Join("|", Dump(h.Store, h.Now).OrderBy(x => x.Key)) != string.Join("|", Dump(debug, h.Now).OrderBy(x => x.Key)))
                Assert.Fail(i + ": " + string.Join(' ', cmd) + " logged " + string.Join(" / ", tmp.Commands.Select(c => string.Join(' ', Resp.Args(c)))));
        }
        var replayed = new KvStore();
        AofLoader.Load(log.WrittenSpan, replayed, h.Now);
        Dictionary<string, string> expected = Dump(h.Store, h.Now);
        Assert.Contains(expected.Values, v => v.StartsWith("skiplist", StringComparison.Ordinal));
        Assert.Equal(expected, Dump(replayed, h.Now));

        var rewrite = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, rewrite);
        var fromRewrite = new KvStore();
        AofLoader.Load(rewrite.WrittenSpan, fromRewrite, h.Now);
        // Like Redis after a rewrite, a skip list that shrank is rebuilt compact: compare contents only.
        Assert.Equal(Dump(h.Store, h.Now, encoding: false), Dump(fromRewrite, h.Now, encoding: false));
    }

    [Fact]
    public void Skip_list_rank_and_range_agree_with_a_sorted_reference_over_10000_random_operations()
    {
        var rnd = new Random(42);
        var list = new ZSkipList();
        var reference = new List<(double Score, byte[] Member)>();
        int Cmp((double Score, byte[] Member) a, (double Score, byte[] Member) b) => ZEntry.Compare(a.Score, a.Member, b.Score, b.Member);
        for (int op = 0; op < 10_000; op++)
        {
            int kind = rnd.Next(10);
            if (kind < 5 || reference.Count == 0)
            {
                var item = ((double)rnd.Next(-50, 50) / 2, Encoding.ASCII.GetBytes("m" + rnd.Next(3000)));
                if (reference.Any(r => r.Member.AsSpan().SequenceEqual(item.Item2))) continue;
                list.Insert(item.Item1, item.Item2);
                int at = reference.FindIndex(r => Cmp(r, item) > 0);
                reference.Insert(at < 0 ? reference.Count : at, item);
            }
            else if (kind < 7)
            {
                int i = rnd.Next(reference.Count);
                Assert.True(list.Delete(reference[i].Score, reference[i].Member));
                reference.RemoveAt(i);
            }
            else if (kind < 8)
            {
                int i = rnd.Next(reference.Count);
                var old = reference[i];
                double score = (double)rnd.Next(-50, 50) / 2;
                list.UpdateScore(old.Score, old.Member, score);
                reference.RemoveAt(i);
                var item = (score, old.Member);
                int at = reference.FindIndex(r => Cmp(r, item) > 0);
                reference.Insert(at < 0 ? reference.Count : at, item);
            }
            else
            {
                int i = rnd.Next(reference.Count);
                Assert.Equal(i, list.Rank(reference[i].Score, reference[i].Member));
                ZSkipList.Node n = list.At(i);
                Assert.Equal(reference[i].Score, n.Score);
                Assert.True(n.Member.AsSpan().SequenceEqual(reference[i].Member));
                double min = (double)rnd.Next(-50, 50) / 2;
                Assert.Equal(reference.Count(r => r.Score < min), list.CountWhile(min, static (m, x) => x.Score < m));
            }
            Assert.Equal(reference.Count, list.Length);
        }
        // Full walk both ways.
        var forward = new List<double>();
        for (ZSkipList.Node? n = list.First; n is not null; n = n.Next) forward.Add(n.Score);
        Assert.Equal(reference.Select(r => r.Score), forward);
        var backward = new List<double>();
        for (ZSkipList.Node? n = list.Last; n is not null; n = n.Backward) backward.Add(n.Score);
        backward.Reverse();
        Assert.Equal(forward, backward);
    }

    [Fact]
    public void Rank_range_and_lex_commands_on_both_encodings()
    {
        foreach (bool big in new[] { false, true })
        {
            var h = new StoreHarness();
            h.Run("ZADD", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e");
            if (big) h.Run("ZADD", "z", "0", new string('z', 80));
            Assert.Equal("*2\r\n$1\r\nb\r\n$1\r\nc\r\n", h.Run("ZRANGEBYLEX", "z", "(a", "[c"));
            Assert.Equal("*2\r\n$1\r\nd\r\n$1\r\nc\r\n", h.Run("ZREVRANGEBYLEX", "z", "[d", "-", "LIMIT", "0", "2"));
            Assert.Equal(":3\r\n", h.Run("ZLEXCOUNT", "z", "[b", "(e"));
            Assert.Equal(":3\r\n", h.Run("ZRANK", "z", "d"));
            Assert.Equal(big ? ":2\r\n" : ":1\r\n", h.Run("ZREVRANK", "z", "d"));
            Assert.Equal(":2\r\n", h.Run("ZREMRANGEBYLEX", "z", "[a", "(c"));
            Assert.Equal("*2\r\n$1\r\nc\r\n$1\r\nd\r\n", h.Run("ZRANGE", "z", "0", "1"));
        }
    }
}
