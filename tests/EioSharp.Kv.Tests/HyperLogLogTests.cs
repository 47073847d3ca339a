using System.Buffers;
using System.Security.Cryptography;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>PFADD PFCOUNT PFMERGE; expected counts and stored bytes (or their SHA-256) taken from redis-server 7.0.15.</summary>
public class HyperLogLogTests
{
    private static string[] Elements(string prefix, int count) => [.. Enumerable.Range(0, count).Select(i => prefix + i)];

    private static byte[] Value(StoreHarness h, string key)
    {
        Assert.True(h.Store.TryGetValue(System.Text.Encoding.UTF8.GetBytes(key), h.Now, out byte[] value));
        return value;
    }

    private static string Sha(byte[] value) => Convert.ToHexString(SHA256.HashData(value)).ToLowerInvariant();

    [Fact]
    public void A_small_hll_is_sparse_and_stores_redis_bytes_with_the_cached_count()
    {
        var h = new StoreHarness();
        var events = new RecordingObserver();
        h.Store.Observer = events;
        Assert.Equal(":1\r\n", h.Run("PFADD", "h", "a", "b", "c"));
        Assert.Equal("48594C4C01000000000000000000008060F38050B1844BFB80425A", Convert.ToHexString(Value(h, "h")));
        Assert.Equal(":0\r\n", h.Run("PFADD", "h", "a", "b"));
        Assert.Equal(":3\r\n", h.Run("PFCOUNT", "h"));
        // PFCOUNT stored the count in the header (cache valid: top bit clear), as Redis does.
        Assert.Equal("48594C4C01000000030000000000000060F38050B1844BFB80425A", Convert.ToHexString(Value(h, "h")));
        Assert.Equal(":3\r\n", h.Run("PFCOUNT", "h")); // from the cache: nothing stored, nothing logged
        Assert.Equal(["SELECT 0", "PFADD h a b c", "PFCOUNT h"], h.Logged);
        Assert.Equal(["pfadd:h", "pfcount:h"], events.Events);
        Assert.Equal(":1\r\n", h.Run("PFADD", "empty")); // creates an empty HLL
        Assert.Equal(":0\r\n", h.Run("PFCOUNT", "empty"));
        Assert.Equal(":0\r\n", h.Run("PFCOUNT", "missing"));
    }

    [Fact]
    public void Counts_and_bytes_match_redis_through_promotion_and_merges()
    {
        var h = new StoreHarness();
        h.Run(["PFADD", "d", .. Elements("e", 5000)]);
        Assert.Equal(":4968\r\n", h.Run("PFCOUNT", "d"));
        byte[] dense = Value(h, "d");
        Assert.Equal(HyperLogLog.DenseSize, dense.Length);
        Assert.Equal("bd470063c39f632ff0572b22d3ae558cdc523a5ae6f47e7324ed636dcc84e2ec", Sha(dense));

        h.Run(["PFADD", "s", .. Elements("e", 300)]);
        Assert.Equal(713, Value(h, "s").Length);
        Assert.Equal("ab79ebe4610713608b23a3804528ae5599497cc1c3c75823949c82ce2c86a485", Sha(Value(h, "s")));
        Assert.Equal(":302\r\n", h.Run("PFCOUNT", "s"));
        Assert.Equal("5c5ae406a720663ee52d40494c2524c28b6a11e991e72ee5280d5c0ccea416c5", Sha(Value(h, "s")));

        h.Run("PFADD", "h", "a", "b", "c");
        Assert.Equal(":4972\r\n", h.Run("PFCOUNT", "s", "d", "h")); // the union, through a temporary
        Assert.Equal("+OK\r\n", h.Run("PFMERGE", "m", "s", "d")); // a dense source makes the target dense
        Assert.Equal(":4968\r\n", h.Run("PFCOUNT", "m"));
        Assert.Equal("bd470063c39f632ff0572b22d3ae558cdc523a5ae6f47e7324ed636dcc84e2ec", Sha(Value(h, "m")));
        Assert.Equal("+OK\r\n", h.Run("PFMERGE", "m2", "s", "h")); // sparse sources stay sparse
        Assert.Equal(":305\r\n", h.Run("PFCOUNT", "m2"));
        Assert.Equal(719, Value(h, "m2").Length);
        Assert.Equal("b8180e4971a987e325d41264011f7cc0f939c647248ce42da3cc9452b061b762", Sha(Value(h, "m2")));
    }

    [Fact]
    public void Sparse_turns_dense_past_hll_sparse_max_bytes_at_the_same_element_as_redis()
    {
        // redis-server 7.0.15: PFADD k x0, then x1, ... one at a time: the last sparse length is 2999 bytes and
        // x1691 promotes the key to dense.
        var h = new StoreHarness();
        h.Run("PFADD", "k");
        int last = 0, promotedAt = -1;
        for (int i = 0; i < 5000 && promotedAt < 0; i++)
        {
            h.Run("PFADD", "k", "x" + i);
            byte[] value = Value(h, "k");
            if (value[4] == HyperLogLog.Dense) promotedAt = i;
            else last = value.Length;
        }
        Assert.Equal(1691, promotedAt);
        Assert.Equal(2999, last);
    }

    [Fact]
    public void Pfdebug_shows_and_converts_the_representation()
    {
        var h = new StoreHarness();
        h.Run("PFADD", "h", "a", "b", "c");
        Assert.Equal("$44\r\nZ:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603\r\n", h.Run("PFDEBUG", "DECODE", "h"));
        Assert.Equal("+sparse\r\n", h.Run("PFDEBUG", "ENCODING", "h"));
        Assert.Equal("-ERR The specified key does not exist\r\n", h.Run("PFDEBUG", "GETREG", "missing"));
        Assert.Equal("-ERR Unknown PFDEBUG subcommand 'foo'\r\n", h.Run("PFDEBUG", "foo", "h"));
        Assert.StartsWith("*16384\r\n:0\r\n", h.Run("PFDEBUG", "GETREG", "h"));
        Assert.Equal("+dense\r\n", h.Run("PFDEBUG", "ENCODING", "h"));
        Assert.Equal(":0\r\n", h.Run("PFDEBUG", "TODENSE", "h"));
        Assert.Equal("-ERR HLL encoding is not sparse\r\n", h.Run("PFDEBUG", "DECODE", "h"));
        Assert.Equal(":3\r\n", h.Run("PFCOUNT", "h"));
        Assert.Equal(["SELECT 0", "PFADD h a b c", "PFDEBUG GETREG h", "PFCOUNT h"], h.Logged);
    }

    [Fact]
    public void Strings_that_are_not_hlls_and_corrupt_hlls_get_redis_errors()
    {
        var h = new StoreHarness();
        h.Run("SET", "s", "hello");
        Assert.Equal("-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n", h.Run("PFADD", "s", "a"));
        Assert.Equal("-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n", h.Run("PFCOUNT", "s"));
        Assert.Equal("-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n", h.Run("PFMERGE", "t", "s"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "t"));

        h.Run(["PFADD", "d", .. Elements("e", 2000)]);
        h.Run("SETRANGE", "d", "4", "\u0001"); // a dense body read as sparse
        Assert.Equal("-INVALIDOBJ Corrupted HLL object detected\r\n", h.Run("PFCOUNT", "d"));
        Assert.Equal("-INVALIDOBJ Corrupted HLL object detected\r\n", h.Run("PFMERGE", "t", "d"));
        Assert.Equal("-INVALIDOBJ Corrupted HLL object detected\r\n", h.Run("PFCOUNT", "d", "t"));
        h.Run("PFADD", "small", "a");
        h.Run("SETRANGE", "small", "4", "\u0000"); // sparse claiming to be dense: wrong length
        Assert.Equal("-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n", h.Run("PFCOUNT", "small"));
        Assert.Equal("-ERR wrong number of arguments for 'pfadd' command\r\n", h.Run("PFADD"));
    }

    [Fact]
    public void Pattern_lengths_and_registers_stay_in_range()
    {
        var seen = new HashSet<ulong>();
        for (int n = 0; n < 10_000; n++)
        {
            byte[] element = System.Text.Encoding.ASCII.GetBytes("m" + n);
            int length = HyperLogLog.PatternLength(element, out int index);
            Assert.InRange(length, 1, HyperLogLog.Q + 1);
            Assert.InRange(index, 0, HyperLogLog.Registers - 1);
            seen.Add(HyperLogLog.MurmurHash64A(element, 0xadc83b19));
        }
        Assert.Equal(10_000, seen.Count);
    }

    [Fact]
    public void Aof_replay_and_rewrite_give_the_same_hll_bytes()
    {
        var h = new StoreHarness();
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        string[][] commands =
        [
            ["PFADD", "a", "x", "y", "z"], ["PFCOUNT", "a"], ["PFADD", "b", .. Elements("e", 1500)], ["PFCOUNT", "b"],
            ["PFADD", "b", "more"], ["PFMERGE", "c", "a", "b"], ["PFMERGE", "d", "a"], ["PFCOUNT", "a", "b", "c"],
            ["SELECT", "1"], ["PFADD", "a", "q"], ["PFCOUNT", "a"], ["PFADD", "a", "q"],
        ];
        foreach (string[] c in commands) h.Store.Execute(KvCommand.Create(c), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), sink);

        var replayed = new KvStore();
        AofLoader.Load(log.WrittenSpan, replayed, h.Now);
        Assert.Equal(BitmapTests.Contents(h.Store, h.Now), BitmapTests.Contents(replayed, h.Now));

        var rewritten = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, rewritten);
        var fromRewrite = new KvStore();
        AofLoader.Load(rewritten.WrittenSpan, fromRewrite, h.Now);
        Assert.Equal(BitmapTests.Contents(h.Store, h.Now), BitmapTests.Contents(fromRewrite, h.Now));
        Assert.Equal(5, BitmapTests.Contents(h.Store, h.Now).Count);
    }
}
