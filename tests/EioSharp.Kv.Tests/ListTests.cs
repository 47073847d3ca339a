using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The list type: commands, reply shapes (RESP2 and RESP3), AOF logging and rewrite.</summary>
public class ListTests
{
    /// <summary>Every key of every database as text: db, key, expiry and the commands that rebuild the value.</summary>
    internal static List<string> State(KvStore store, long now) =>
        [.. store.CreateSnapshot(now).Select(e =>
        {
            string value;
            if (e.Value is byte[] s) value = "string:" + Encoding.Latin1.GetString(s);
            else
            {
                var w = new ArrayBufferWriter<byte>();
                ((KvObject)e.Value).WriteRewrite(e.Key, w);
                value = ((KvObject)e.Value).Type + ":" + Encoding.Latin1.GetString(w.WrittenSpan);
            }
            return $"{e.Db}|{Encoding.Latin1.GetString(e.Key)}|{e.ExpireAtUnixMs}|{value}";
        }).Order(StringComparer.Ordinal)];

    [Fact]
    public void Push_pop_len_range_index()
    {
        var h = new StoreHarness();
        Assert.Equal(":3\r\n", h.Run("RPUSH", "l", "a", "b", "c"));
        Assert.Equal(":5\r\n", h.Run("LPUSH", "l", "y", "x"));
        Assert.Equal("*5\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", h.Run("LRANGE", "l", "0", "-1"));
        Assert.Equal("*2\r\n$1\r\nb\r\n$1\r\nc\r\n", h.Run("LRANGE", "l", "-2", "100"));
        Assert.Equal("*0\r\n", h.Run("LRANGE", "l", "4", "2"));
        Assert.Equal("*0\r\n", h.Run("LRANGE", "nokey", "0", "-1"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("LRANGE", "l", "x", "1"));
        Assert.Equal(":5\r\n", h.Run("LLEN", "l"));
        Assert.Equal("$1\r\nc\r\n", h.Run("LINDEX", "l", "-1"));
        Assert.Equal("$-1\r\n", h.Run("LINDEX", "l", "5"));
        Assert.Equal("$-1\r\n", h.Run("LINDEX", "nokey", "x")); // the key is looked up before the index is parsed
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("LINDEX", "l", "x"));
        Assert.Equal("$1\r\nx\r\n", h.Run("LPOP", "l"));
        Assert.Equal("$1\r\nc\r\n", h.Run("RPOP", "l"));
        Assert.Equal("*2\r\n$1\r\nb\r\n$1\r\na\r\n", h.Run("RPOP", "l", "2"));
        Assert.Equal("*0\r\n", h.Run("LPOP", "l", "0"));
        Assert.Equal("-ERR value is out of range, must be positive\r\n", h.Run("LPOP", "l", "-1"));
        Assert.Equal("-ERR value is out of range, must be positive\r\n", h.Run("LPOP", "l", "x"));
        Assert.Equal("-ERR wrong number of arguments for 'lpop' command\r\n", h.Run("LPOP", "l", "1", "2"));
        Assert.Equal("*1\r\n$1\r\ny\r\n", h.Run("LPOP", "l", "10"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "l")); // emptied: removed
        Assert.Equal("$-1\r\n", h.Run("LPOP", "l"));
        Assert.Equal("*-1\r\n", h.Run("LPOP", "l", "1"));
        Assert.Equal(":0\r\n", h.Run("LPUSHX", "l", "a"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "l"));
        h.Run("SET", "s", "v");
        Assert.StartsWith("-WRONGTYPE", h.Run("LPUSH", "s", "a"));
        Assert.StartsWith("-WRONGTYPE", h.Run("RPUSHX", "s", "a"));
        Assert.StartsWith("-WRONGTYPE", h.Run("LRANGE", "s", "0", "1"));
        h.Run("RPUSH", "q", "1");
        Assert.Equal("$9\r\nquicklist\r\n", h.Run("OBJECT", "ENCODING", "q"));
    }

    [Fact]
    public void Resp3_nil_shapes_of_pop()
    {
        var h = new StoreHarness { Protocol = 3 };
        Assert.Equal("_\r\n", h.Run("LPOP", "none"));
        Assert.Equal("_\r\n", h.Run("RPOP", "none", "2"));
        Assert.Equal("_\r\n", h.Run("LMPOP", "1", "none", "LEFT"));
        Assert.Equal("_\r\n", h.Run("LMOVE", "none", "x", "LEFT", "RIGHT"));
    }

    [Fact]
    public void Lset_linsert_lrem_ltrim()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "l", "a", "b", "a", "c", "a");
        Assert.Equal("-ERR no such key\r\n", h.Run("LSET", "nokey", "0", "x"));
        Assert.Equal("-ERR index out of range\r\n", h.Run("LSET", "l", "5", "x"));
        Assert.Equal("+OK\r\n", h.Run("LSET", "l", "-1", "z"));
        Assert.Equal(":6\r\n", h.Run("LINSERT", "l", "BEFORE", "b", "B"));
        Assert.Equal(":7\r\n", h.Run("LINSERT", "l", "after", "c", "C"));
        Assert.Equal(":-1\r\n", h.Run("LINSERT", "l", "AFTER", "nothere", "C"));
        Assert.Equal(":0\r\n", h.Run("LINSERT", "nokey", "AFTER", "a", "C"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LINSERT", "l", "MIDDLE", "a", "C"));
        Assert.Equal("a B b a c C z", string.Join(' ', Range(h, "l")));
        Assert.Equal(":1\r\n", h.Run("LREM", "l", "-1", "a"));
        Assert.Equal("a B b c C z", string.Join(' ', Range(h, "l")));
        h.Run("RPUSH", "l", "a", "a");
        Assert.Equal(":2\r\n", h.Run("LREM", "l", "2", "a"));
        Assert.Equal("B b c C z a", string.Join(' ', Range(h, "l")));
        Assert.Equal(":1\r\n", h.Run("LREM", "l", "0", "a"));
        Assert.Equal("+OK\r\n", h.Run("LTRIM", "l", "1", "-2"));
        Assert.Equal("b c C", string.Join(' ', Range(h, "l")));
        Assert.Equal("+OK\r\n", h.Run("LTRIM", "l", "5", "1"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "l"));
        Assert.Equal("+OK\r\n", h.Run("LTRIM", "nokey", "0", "1"));
    }

    [Fact]
    public void Lpos_rank_count_maxlen()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c");
        Assert.Equal(":2\r\n", h.Run("LPOS", "l", "c"));
        Assert.Equal(":6\r\n", h.Run("LPOS", "l", "c", "RANK", "2"));
        Assert.Equal(":7\r\n", h.Run("LPOS", "l", "c", "RANK", "-1"));
        Assert.Equal("*2\r\n:7\r\n:6\r\n", h.Run("LPOS", "l", "c", "RANK", "-1", "COUNT", "2"));
        Assert.Equal("*3\r\n:2\r\n:6\r\n:7\r\n", h.Run("LPOS", "l", "c", "COUNT", "0"));
        Assert.Equal("*1\r\n:2\r\n", h.Run("LPOS", "l", "c", "COUNT", "0", "MAXLEN", "3"));
        Assert.Equal("$-1\r\n", h.Run("LPOS", "l", "c", "MAXLEN", "2"));
        Assert.Equal("*0\r\n", h.Run("LPOS", "nokey", "c", "COUNT", "1"));
        Assert.Equal("$-1\r\n", h.Run("LPOS", "nokey", "c"));
        Assert.Equal(":7\r\n", h.Run("LPOS", "l", "c", "RANK", "-9223372036854775808")); // as Redis: LONG_MIN negates to itself
        Assert.StartsWith("-ERR RANK can't be zero", h.Run("LPOS", "l", "c", "RANK", "0"));
        Assert.Equal("-ERR COUNT can't be negative\r\n", h.Run("LPOS", "l", "c", "COUNT", "-1"));
        Assert.Equal("-ERR MAXLEN can't be negative\r\n", h.Run("LPOS", "l", "c", "MAXLEN", "-1"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LPOS", "l", "c", "RANK"));
    }

    [Fact]
    public void Lmove_rpoplpush_lmpop()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "a", "1", "2", "3");
        Assert.Equal("$1\r\n3\r\n", h.Run("RPOPLPUSH", "a", "b"));
        Assert.Equal("$1\r\n1\r\n", h.Run("LMOVE", "a", "b", "LEFT", "RIGHT"));
        Assert.Equal("3 1", string.Join(' ', Range(h, "b")));
        Assert.Equal("$1\r\n2\r\n", h.Run("LMOVE", "a", "a", "LEFT", "RIGHT")); // rotation of a one-element list keeps the key
        Assert.Equal(":1\r\n", h.Run("EXISTS", "a"));
        Assert.Equal("$1\r\n2\r\n", h.Run("LMOVE", "a", "b", "RIGHT", "LEFT"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "a"));
        Assert.Equal("$-1\r\n", h.Run("LMOVE", "a", "b", "RIGHT", "LEFT"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LMOVE", "a", "b", "UP", "LEFT"));
        h.Run("SET", "s", "x");
        Assert.StartsWith("-WRONGTYPE", h.Run("LMOVE", "b", "s", "LEFT", "LEFT"));
        Assert.Equal("2 3 1", string.Join(' ', Range(h, "b"))); // unchanged
        Assert.Equal("*2\r\n$1\r\nb\r\n*2\r\n$1\r\n1\r\n$1\r\n3\r\n", h.Run("LMPOP", "2", "none", "b", "RIGHT", "COUNT", "2"));
        Assert.Equal("*2\r\n$1\r\nb\r\n*1\r\n$1\r\n2\r\n", h.Run("LMPOP", "1", "b", "LEFT"));
        Assert.Equal("*-1\r\n", h.Run("LMPOP", "1", "b", "LEFT"));
        Assert.StartsWith("-WRONGTYPE", h.Run("LMPOP", "2", "s", "b", "LEFT"));
        Assert.Equal("-ERR numkeys should be greater than 0\r\n", h.Run("LMPOP", "0", "b", "LEFT"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LMPOP", "9223372036854775807", "b", "LEFT"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LMPOP", "2", "b", "LEFT"));
        Assert.Equal("-ERR count should be greater than 0\r\n", h.Run("LMPOP", "1", "b", "LEFT", "COUNT", "0"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LMPOP", "1", "b", "LEFT", "COUNT", "1", "COUNT", "1"));
    }

    [Fact]
    public void Aof_logs_effects_and_replays_to_the_same_state()
    {
        var h = new StoreHarness();
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        string[][] commands =
        [
            ["RPUSH", "a", "1", "2", "3", "4", "5"], ["LPUSH", "a", "0"], ["LPUSHX", "none", "x"], ["RPUSHX", "a", "6"],
            ["LPOP", "a"], ["RPOP", "a", "2"], ["LSET", "a", "0", "one"], ["LINSERT", "a", "BEFORE", "3", "2.5"],
            ["LREM", "a", "0", "nothing"], ["LREM", "a", "1", "2.5"], ["LTRIM", "a", "0", "-1"], ["LTRIM", "a", "0", "1"],
            ["RPUSH", "b", "x", "y", "z"], ["LMOVE", "b", "c", "LEFT", "RIGHT"], ["RPOPLPUSH", "b", "c"],
            ["LMPOP", "2", "none", "c", "RIGHT", "COUNT", "5"], ["SELECT", "2"], ["RPUSH", "d", "1"], ["EXPIRE", "d", "100"],
            ["COPY", "d", "e", "DB", "3"], ["SORT", "d", "STORE", "f"], ["LMPOP", "1", "d", "LEFT"],
        ];
        var session = new KvSession();
        foreach (string[] c in commands)
        {
            h.Store.Execute(session, KvCommand.Create(c), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), sink);
            h.Now += 3;
        }
        string logText = Encoding.UTF8.GetString(log.WrittenSpan);
        Assert.Contains("$4\r\nRPOP\r\n$1\r\nc\r\n$1\r\n2\r\n", logText); // LMPOP logged as LPOP/RPOP with the count popped
        Assert.Contains("$4\r\nLPOP\r\n$1\r\nd\r\n$1\r\n1\r\n", logText);
        Assert.DoesNotContain("LMPOP", logText);
        Assert.DoesNotContain("LPUSHX", logText); // no change, not logged
        Assert.Equal(1, logText.Split("LTRIM").Length - 1); // the LTRIM that removed nothing is not logged
        var fresh = new KvStore();
        AofLoader.Load(log.WrittenSpan, fresh, h.Now);
        Assert.Equal(State(h.Store, h.Now), State(fresh, h.Now));
        Assert.NotEmpty(State(fresh, h.Now));
    }

    [Fact]
    public void Rewrite_writes_rpush_in_chunks_of_64_and_replays_equal()
    {
        var h = new StoreHarness();
        var args = new List<string> { "RPUSH", "big" };
        for (int i = 0; i < 150; i++) args.Add("e" + i);
        h.Run([.. args]);
        h.Run("LPUSH", "small", "a", "b");
        h.Run("PEXPIRE", "small", "100000");
        var output = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, output);
        string text = Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Contains("*66\r\n$5\r\nRPUSH\r\n$3\r\nbig\r\n", text);
        Assert.Contains("*24\r\n$5\r\nRPUSH\r\n$3\r\nbig\r\n", text); // 150 = 64 + 64 + 22
        var fresh = new KvStore();
        AofLoader.Load(output.WrittenSpan, fresh, h.Now);
        Assert.Equal(State(h.Store, h.Now), State(fresh, h.Now));
    }

    // 1-byte values: the packed form while at most 128 elements, then the ring; 100-byte values: the ring from the start.
    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    public void Ring_buffer_matches_a_reference_deque_under_random_operations(int valueLength)
    {
        var rnd = new Random(5);
        var list = new KvList();
        var model = new List<byte[]>();
        for (int step = 0; step < 20_000; step++)
        {
            int op = rnd.Next(7);
            var v = new byte[valueLength];
            v[0] = (byte)rnd.Next(256);
            switch (op)
            {
                case 0: list.PushLeft(v); model.Insert(0, v); break;
                case 1: list.PushRight(v); model.Add(v); break;
                case 2 when model.Count > 0: Assert.Equal(model[0], list.Pop(left: true)); model.RemoveAt(0); break;
                case 3 when model.Count > 0: Assert.Equal(model[^1], list.Pop(left: false)); model.RemoveAt(model.Count - 1); break;
                case 4:
                    int at = rnd.Next(model.Count + 1);
                    list.Insert(at, v);
                    model.Insert(at, v);
                    break;
                case 5 when model.Count > 0:
                    int s = rnd.Next(model.Count), n = rnd.Next(model.Count - s + 1);
                    if (rnd.Next(10) == 0) { list.Keep(s, n); model = model.GetRange(s, n); }
                    break;
                case 6:
                    byte target = (byte)rnd.Next(256);
                    bool fromTail = rnd.Next(2) == 0;
                    int limit = rnd.Next(3);
                    int taken = 0;
                    list.RemoveWhere(x => x[0] == target && taken++ < limit, fromTail);
                    var idx = Enumerable.Range(0, model.Count).Where(i => model[i][0] == target);
                    var remove = (fromTail ? idx.Reverse() : idx).Take(limit).ToHashSet();
                    model = [.. model.Where((_, i) => !remove.Contains(i))];
                    break;
            }
            Assert.Equal(model.Count, list.Count);
            if (step % 97 == 0) Assert.Equal(model, list.Elements.ToList());
        }
        var clone = (KvList)list.Clone();
        list.PushLeft([1]);
        Assert.Equal(model, clone.Elements.ToList());
    }

    private static List<string> Range(StoreHarness h, string key)
    {
        string reply = h.Run("LRANGE", key, "0", "-1");
        string[] lines = reply.Split("\r\n");
        var r = new List<string>();
        for (int i = 2; i < lines.Length; i += 2) r.Add(lines[i]);
        return r;
    }
}
