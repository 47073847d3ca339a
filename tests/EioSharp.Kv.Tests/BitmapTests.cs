using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>Records keyspace events (event class and name per key).</summary>
internal sealed class RecordingObserver : IKvKeyspaceObserver
{
    public List<string> Events { get; } = [];

    public void OnKeyChanged(int db, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName) =>
        Events.Add($"{eventName}:{Encoding.Latin1.GetString(key)}");

    public void OnDatabaseChanged(int db) => Events.Add($"db:{db}");
}

/// <summary>SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO and LCS; expected replies taken from redis-server 7.0.15.</summary>
public class BitmapTests
{
    private static StoreHarness NewHarness(out RecordingObserver events, RespLimits? limits = null)
    {
        var h = new StoreHarness(new KvStore(limits, new Random(1)));
        events = new RecordingObserver();
        h.Store.Observer = events;
        return h;
    }

    [Fact]
    public void Setbit_getbit_bitcount_bitpos_give_redis_replies()
    {
        var h = NewHarness(out var events);
        Assert.Equal(":0\r\n", h.Run("SETBIT", "b", "7", "1"));
        Assert.Equal(":1\r\n", h.Run("SETBIT", "b", "7", "1")); // unchanged: no event, not logged
        Assert.Equal(":0\r\n", h.Run("SETBIT", "b", "100", "1"));
        Assert.Equal(":1\r\n", h.Run("GETBIT", "b", "100"));
        Assert.Equal(":0\r\n", h.Run("GETBIT", "b", "100000"));
        Assert.Equal("$13\r\n\u0001\0\0\0\0\0\0\0\0\0\0\0\b\r\n", h.Run("GET", "b"));
        Assert.Equal(":2\r\n", h.Run("BITCOUNT", "b"));
        Assert.Equal(":1\r\n", h.Run("BITCOUNT", "b", "0", "0"));
        Assert.Equal(":2\r\n", h.Run("BITCOUNT", "b", "5", "100", "BIT"));
        Assert.Equal(":7\r\n", h.Run("BITPOS", "b", "1"));
        Assert.Equal(":0\r\n", h.Run("BITPOS", "b", "0"));
        Assert.Equal(":100\r\n", h.Run("BITPOS", "b", "1", "1"));
        Assert.Equal(":0\r\n", h.Run("BITPOS", "b", "0", "0", "-1", "BIT"));
        Assert.Equal(["setbit:b", "setbit:b"], events.Events);
        Assert.Equal(["SELECT 0", "SETBIT b 7 1", "SETBIT b 100 1"], h.Logged);

        h.Run("SET", "f", "\\xff\\xf0\\x00"); // the literal text, as sent by redis-cli without escapes
        Assert.Equal(":0\r\n", h.Run("BITPOS", "f", "0"));
        Assert.Equal(":17\r\n", h.Run("BITPOS", "f", "1", "2"));
        Assert.Equal(":0\r\n", h.Run("BITPOS", "f", "0", "0", "0"));
        h.Run("BITFIELD", "ones", "SET", "u16", "0", "65535"); // FF FF
        Assert.Equal(":16\r\n", h.Run("BITPOS", "ones", "0", "1")); // no end given: the string is zero-padded
        Assert.Equal(":-1\r\n", h.Run("BITPOS", "ones", "0", "1", "1"));
        Assert.Equal(":-1\r\n", h.Run("BITPOS", "missing", "1"));
        Assert.Equal(":0\r\n", h.Run("BITPOS", "missing", "0"));
    }

    [Fact]
    public void Errors_use_redis_texts_and_leave_the_key_alone()
    {
        var h = NewHarness(out _);
        h.Run("SET", "s", "foobar");
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", h.Run("SETBIT", "s", "4294967296", "1"));
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", h.Run("SETBIT", "s", "-1", "1"));
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", h.Run("GETBIT", "s", "x"));
        Assert.Equal("-ERR bit is not an integer or out of range\r\n", h.Run("SETBIT", "s", "1", "2"));
        Assert.Equal("-ERR The bit argument must be 1 or 0.\r\n", h.Run("BITPOS", "s", "2"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("BITPOS", "s", "x"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("BITCOUNT", "s", "1"));
        Assert.Equal(":0\r\n", h.Run("BITCOUNT", "missing", "x", "y")); // a missing key is looked up first
        Assert.Equal(":0\r\n", h.Run("BITCOUNT", "s", "-1", "-2", "FOO"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("BITCOUNT", "s", "0", "-1", "FOO"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("BITOP", "NAND", "d", "s"));
        Assert.Equal("-ERR BITOP NOT must be called with a single source key.\r\n", h.Run("BITOP", "NOT", "d", "s", "s"));
        Assert.Equal("-ERR wrong number of arguments for 'setbit' command\r\n", h.Run("SETBIT", "s", "1"));
        Assert.Equal("$6\r\nfoobar\r\n", h.Run("GET", "s"));
        Assert.Equal(["SELECT 0", "SET s foobar"], h.Logged);
    }

    [Fact]
    public void Offsets_are_limited_by_proto_max_bulk_len_before_anything_is_allocated()
    {
        var h = NewHarness(out _, new RespLimits { MaxBulkLength = 1024 });
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", h.Run("SETBIT", "k", "8192", "1"));
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", h.Run("BITFIELD", "k", "SET", "u8", "#1024", "1"));
        Assert.Equal(":0\r\n", h.Run("SETBIT", "k", "8191", "1"));
        Assert.Equal(":1024\r\n", h.Run("STRLEN", "k"));

        // The default: 512 MB, so bit 2^32 is refused, and the limit is checked before the key is even looked up.
        var d = NewHarness(out _);
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", d.Run("SETBIT", "k", "4294967296", "1"));
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", d.Run("BITFIELD", "k", "SET", "i64", "#67108864", "1"));
        Assert.Equal(":0\r\n", d.Run("DBSIZE"));
    }

    [Fact]
    public void Bitfield_runs_every_operation_with_its_overflow_rule()
    {
        var h = NewHarness(out var events);
        Assert.Equal("*7\r\n:0\r\n:156\r\n:56\r\n:-44\r\n$-1\r\n:-44\r\n$-1\r\n",
            h.Run("BITFIELD", "bf", "SET", "i8", "0", "-100", "GET", "u8", "0", "INCRBY", "i8", "0", "-100", "OVERFLOW", "SAT",
                "INCRBY", "i8", "0", "-100", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-100", "GET", "i8", "#0", "SET", "u4", "#3", "20"));
        Assert.True(h.Store.TryGetValue("bf"u8, h.Now, out byte[] value));
        Assert.Equal(new byte[] { 0xd4, 0x00 }, value); // the FAIL SET still grew the string, like Redis
        Assert.Equal("*2\r\n:212\r\n:-3170534137668829184\r\n", h.Run("BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i64", "0"));
        Assert.Equal("*2\r\n:6052837899185946623\r\n:1\r\n",
            h.Run("BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "i64", "0", "9223372036854775807", "INCRBY", "u3", "0", "-9"));
        Assert.Equal("-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n", h.Run("BITFIELD", "bf", "GET", "u64", "0"));
        Assert.Equal("-ERR bit offset is not an integer or out of range\r\n", h.Run("BITFIELD", "bf", "GET", "i8", "-1"));
        Assert.Equal("-ERR Invalid OVERFLOW type specified\r\n", h.Run("BITFIELD", "bf", "OVERFLOW", "BAD"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("BITFIELD", "bf", "INCRBY", "u63", "0", "x"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("BITFIELD", "bf", "GET", "u8"));
        Assert.Equal("-ERR BITFIELD_RO only supports the GET subcommand\r\n", h.Run("BITFIELD_RO", "bf", "GET", "u8", "0", "SET", "u8", "0", "1"));
        Assert.Equal("*0\r\n", h.Run("BITFIELD", "bf"));
        Assert.Equal("*1\r\n:0\r\n", h.Run("BITFIELD", "missing", "GET", "u8", "100"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "missing"));

        h.Protocol = 3;
        Assert.Equal("*1\r\n_\r\n", h.Run("BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "u2", "0", "4"));
        // Only the two writing calls are logged and notified (the FAIL-only one too: it counts as a change in Redis).
        Assert.Equal(["setbit:bf", "setbit:bf", "setbit:bf"], events.Events);
        Assert.Equal(4, h.Logged.Count);
    }

    [Fact]
    public void Bitop_stores_the_result_and_deletes_the_target_when_it_is_empty()
    {
        var h = NewHarness(out var events);
        h.Run("SET", "a", "abc");
        h.Run("SET", "b", "A");
        h.Run("SET", "t", "old", "EX", "100");
        Assert.Equal(":3\r\n", h.Run("BITOP", "AND", "t", "a", "b"));
        Assert.Equal("$3\r\nA\0\0\r\n", h.Run("GET", "t"));
        Assert.Equal(":-1\r\n", h.Run("TTL", "t")); // the target is replaced, TTL and all
        Assert.Equal(":3\r\n", h.Run("BITOP", "OR", "t", "a", "b"));
        Assert.Equal("$3\r\nabc\r\n", h.Run("GET", "t"));
        Assert.Equal(":3\r\n", h.Run("BITOP", "XOR", "t", "a", "b", "missing"));
        Assert.Equal("$3\r\n bc\r\n", h.Run("GET", "t"));
        Assert.Equal(":1\r\n", h.Run("BITOP", "NOT", "t", "b"));
        Assert.Equal(":0\r\n", h.Run("BITOP", "OR", "t", "missing", "missing2"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "t"));
        Assert.Equal(":0\r\n", h.Run("BITOP", "OR", "t", "missing")); // nothing to delete: no change
        Assert.Equal(["set:a", "set:b", "set:t", "expire:t", "set:t", "set:t", "set:t", "set:t", "del:t"], events.Events);
        Assert.Equal(["BITOP AND t a b", "BITOP OR t a b", "BITOP XOR t a b missing", "BITOP NOT t b", "BITOP OR t missing missing2"],
            h.Logged.Where(c => c.StartsWith("BITOP", StringComparison.Ordinal)));
    }

    [Fact]
    public void Lcs_gives_the_string_the_length_and_the_ranges()
    {
        var h = NewHarness(out _);
        h.Run("MSET", "key1", "ohmytext", "key2", "mynewtext");
        Assert.Equal("$6\r\nmytext\r\n", h.Run("LCS", "key1", "key2"));
        Assert.Equal(":6\r\n", h.Run("LCS", "key1", "key2", "LEN"));
        Assert.Equal("*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n",
            h.Run("LCS", "key1", "key2", "IDX"));
        Assert.Equal("*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n",
            h.Run("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"));
        h.Protocol = 3;
        Assert.StartsWith("%2\r\n$7\r\nmatches\r\n", h.Run("LCS", "key1", "key2", "IDX"));
        Assert.Equal("$0\r\n\r\n", h.Run("LCS", "key1", "missing"));
        Assert.Equal("-ERR If you want both the length and indexes, please just use IDX.\r\n", h.Run("LCS", "key1", "key2", "IDX", "LEN"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("LCS", "key1", "key2", "MINMATCHLEN"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("LCS", "key1", "key2", "MINMATCHLEN", "x"));
    }

    [Fact]
    public void Lcs_refuses_a_table_larger_than_proto_max_bulk_len()
    {
        // (20+1) * (20+1) cells of 4 bytes = 1764 bytes > 1000.
        var h = NewHarness(out _, new RespLimits { MaxBulkLength = 1000 });
        h.Run("SET", "a", new string('a', 20));
        h.Run("SET", "b", new string('a', 20));
        Assert.Equal("-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n", h.Run("LCS", "a", "b"));
        h.Run("SET", "b", new string('a', 10)); // 21 * 11 * 4 = 924
        Assert.Equal(":10\r\n", h.Run("LCS", "a", "b", "LEN"));
    }

    [Fact]
    public void Aof_replay_and_rewrite_give_the_same_strings()
    {
        var h = NewHarness(out _);
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        string[][] commands =
        [
            ["SETBIT", "a", "10", "1"], ["SETBIT", "a", "10", "1"], ["SETBIT", "a", "77", "1"], ["SETBIT", "a", "10", "0"],
            ["SET", "b", "hello"], ["BITOP", "XOR", "c", "a", "b"], ["BITOP", "NOT", "d", "c"], ["BITOP", "AND", "d", "none"],
            ["BITFIELD", "e", "SET", "i5", "#3", "-7", "INCRBY", "u12", "40", "4000", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"],
            ["BITFIELD", "e", "GET", "u8", "0"], ["BITFIELD_RO", "e", "GET", "u8", "0"], ["SELECT", "2"], ["SETBIT", "a", "3", "1"],
            ["BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "1000"], ["LCS", "a", "f"],
        ];
        foreach (string[] c in commands) h.Store.Execute(KvCommand.Create(c), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), sink);

        var replayed = new KvStore();
        AofLoader.Load(log.WrittenSpan, replayed, h.Now);
        Assert.Equal(Contents(h.Store, h.Now), Contents(replayed, h.Now));

        var rewritten = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, rewritten);
        var fromRewrite = new KvStore();
        AofLoader.Load(rewritten.WrittenSpan, fromRewrite, h.Now);
        Assert.Equal(Contents(h.Store, h.Now), Contents(fromRewrite, h.Now));
        Assert.Equal(6, Contents(h.Store, h.Now).Count); // a b c e in database 0 (the empty AND deleted d), a f in database 2
    }

    internal static SortedDictionary<string, string> Contents(KvStore store, long now) =>
        new(store.CreateSnapshot(now).ToDictionary(
            e => $"{e.Db}:{Encoding.Latin1.GetString(e.Key)}",
            e => Convert.ToHexString((byte[])e.Value) + "@" + e.ExpireAtUnixMs), StringComparer.Ordinal);
}
