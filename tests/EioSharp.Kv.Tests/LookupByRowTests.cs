using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>The data-type commands find a live key by row, without a <see cref="KvEntry"/> handle (issue 14); a missing,
/// expired or other-type key still takes the general lookup. Each test drives one family through a live key (the by-row
/// path), a missing key, an expired key and a key of another type, and checks what the general path did before: the
/// replies, hit/miss/expired counters, the access record of a read (LFU counter), the change events (WATCH, keyspace
/// notifications, blocked clients all hang off them), removal of an emptied collection and the logged effects.</summary>
public sealed class LookupByRowTests
{
    private const string WrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

    private static (StoreHarness H, EventRecorder Events) NewHarness()
    {
        // Under an LFU policy (no limit): there an access moves the LFU counter, which shows each one (§219: under any
        // other policy an access moves only the access clock, as in Redis; AccessClockTests checks that side).
        var h = new StoreHarness();
        h.Store.MemorySettings = new KvMemorySettings(0, KvEvictionPolicy.AllKeysLfu);
        var events = new EventRecorder();
        h.Store.Observer = events;
        return (h, events);
    }

    // The LFU counter of a key (5 when created; the first recorded access makes it 6, with probability 1).
    private static byte Freq(StoreHarness h, string key) => h.Store.Database(0).Map[Encoding.UTF8.GetBytes(key)].Frequency;

    // Puts a key's LFU counter back to 5, so that the next recorded access shows for sure (6).
    private static void ResetFreq(StoreHarness h, string key) => h.Store.Database(0).Map[Encoding.UTF8.GetBytes(key)].Frequency = 5;

    private static void AssertCounters(StoreHarness h, long hits, long misses, long expired)
    {
        Assert.Equal(hits, h.Store.KeyspaceHits);
        Assert.Equal(misses, h.Store.KeyspaceMisses);
        Assert.Equal(expired, h.Store.ExpiredKeys);
    }

    [Fact]
    public void List_lookups_by_row_match_the_lookup_path()
    {
        var (h, events) = NewHarness();
        Assert.Equal(":3\r\n", h.Run("RPUSH", "l", "a", "b", "c")); // missing: created
        Assert.Equal(5, Freq(h, "l"));
        Assert.Equal(":4\r\n", h.Run("LPUSH", "l", "z")); // live: by row; a write records the access (lookupKeyWrite)
        Assert.Equal(6, Freq(h, "l"));
        ResetFreq(h, "l");
        Assert.Equal("*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", h.Run("LRANGE", "l", "0", "-1"));
        Assert.Equal(6, Freq(h, "l")); // a read records the access
        AssertCounters(h, hits: 1, misses: 0, expired: 0);
        Assert.Equal(":0\r\n", h.Run("LLEN", "missing"));
        AssertCounters(h, hits: 1, misses: 1, expired: 0);
        h.Run("SET", "s", "v");
        Assert.Equal(WrongType, h.Run("LPUSH", "s", "x"));
        Assert.Equal(WrongType, h.Run("LLEN", "s")); // the general path: a hit, then WRONGTYPE
        AssertCounters(h, hits: 2, misses: 1, expired: 0);
        Assert.Equal("$1\r\nz\r\n", h.Run("LPOP", "l"));
        Assert.Equal("*2\r\n$1\r\nc\r\n$1\r\nb\r\n", h.Run("RPOP", "l", "2"));
        Assert.Equal("$1\r\na\r\n", h.Run("LPOP", "l")); // emptied: removed
        Assert.Equal(":0\r\n", h.Run("EXISTS", "l"));
        Assert.Equal("$-1\r\n", h.Run("LPOP", "l"));

        h.Run("RPUSH", "t", "x", "y");
        h.Run("PEXPIRE", "t", "100");
        h.Now += 101;
        Assert.Equal(":1\r\n", h.Run("LPUSH", "t", "w")); // expired: removed as expired, a new list
        AssertCounters(h, hits: 2, misses: 2, expired: 1); // EXISTS l counted a miss
        Assert.Equal(":-1\r\n", h.Run("TTL", "t"));

        h.Run("RPUSH", "m", "1", "2", "3");
        Assert.Equal("$1\r\n1\r\n", h.Run("LMOVE", "m", "n", "LEFT", "RIGHT"));
        Assert.Equal("*2\r\n$1\r\nm\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n", h.Run("LMPOP", "2", "missing", "m", "LEFT", "COUNT", "5"));
        Assert.Equal(":1\r\n", h.Run("LREM", "n", "0", "1"));
        Assert.Equal(":2\r\n", h.Run("DBSIZE")); // s and t are left
        AssertCounters(h, hits: 3, misses: 2, expired: 1);
        Assert.Equal([
            "rpush:l", "lpush:l", "set:s", "lpop:l", "rpop:l", "lpop:l", "del:l",
            "rpush:t", "expire:t", "expired:t", "lpush:t",
            "rpush:m", "rpush:n", "lpop:m", "lpop:m", "del:m", "lrem:n", "del:n",
        ], events.Events);
        Assert.Contains("RPOP l 2", h.Logged);
        Assert.Contains("LPOP m 2", h.Logged);
        Assert.Equal(2, h.Logged.Count(c => c == "LPOP l"));
    }

    [Fact]
    public void Hash_lookups_by_row_match_the_lookup_path()
    {
        var (h, events) = NewHarness();
        Assert.Equal(":1\r\n", h.Run("HSET", "h", "a", "1"));
        Assert.Equal(":1\r\n", h.Run("HSET", "h", "b", "2")); // live: by row
        Assert.Equal(6, Freq(h, "h")); // the write recorded the access
        ResetFreq(h, "h");
        Assert.Equal("$1\r\n2\r\n", h.Run("HGET", "h", "b"));
        Assert.Equal(6, Freq(h, "h"));
        Assert.Equal("$-1\r\n", h.Run("HGET", "h", "zz")); // a live key, a missing field: still a keyspace hit
        Assert.Equal("$-1\r\n", h.Run("HGET", "missing", "a"));
        AssertCounters(h, hits: 2, misses: 1, expired: 0);
        h.Run("SET", "s", "v");
        Assert.Equal(WrongType, h.Run("HSET", "s", "a", "1"));
        Assert.Equal(WrongType, h.Run("HGET", "s", "a"));
        AssertCounters(h, hits: 3, misses: 1, expired: 0);
        Assert.Equal(":2\r\n", h.Run("HINCRBY", "h", "b", "0"));
        Assert.Equal(":1\r\n", h.Run("HDEL", "h", "a", "zz"));
        Assert.Equal(":1\r\n", h.Run("HDEL", "h", "b")); // emptied: removed
        Assert.Equal(":0\r\n", h.Run("EXISTS", "h"));
        Assert.Equal(":0\r\n", h.Run("HDEL", "h", "b"));

        h.Run("HSET", "t", "f", "v");
        h.Run("PEXPIRE", "t", "100");
        h.Now += 101;
        Assert.Equal(":0\r\n", h.Run("HLEN", "t")); // expired: removed, a miss
        AssertCounters(h, hits: 3, misses: 3, expired: 1); // and EXISTS h's
        Assert.Equal(":1\r\n", h.Run("HSET", "t", "f", "v"));
        Assert.Equal(":-1\r\n", h.Run("PTTL", "t"));
        Assert.Equal([
            "hset:h", "hset:h", "set:s", "hincrby:h", "hdel:h", "hdel:h", "del:h",
            "hset:t", "expire:t", "expired:t", "hset:t",
        ], events.Events);
    }

    [Fact]
    public void Set_lookups_by_row_match_the_lookup_path()
    {
        var (h, events) = NewHarness();
        Assert.Equal(":2\r\n", h.Run("SADD", "s", "a", "b"));
        Assert.Equal(":1\r\n", h.Run("SADD", "s", "c", "a")); // live: by row
        Assert.Equal(6, Freq(h, "s")); // the write recorded the access
        ResetFreq(h, "s");
        Assert.Equal(":1\r\n", h.Run("SISMEMBER", "s", "c"));
        Assert.Equal(6, Freq(h, "s"));
        Assert.Equal(":0\r\n", h.Run("SISMEMBER", "missing", "c"));
        Assert.Equal(":3\r\n", h.Run("SCARD", "s"));
        AssertCounters(h, hits: 2, misses: 1, expired: 0);
        h.Run("SET", "str", "v");
        Assert.Equal(WrongType, h.Run("SADD", "str", "a"));
        Assert.Equal(WrongType, h.Run("SPOP", "str"));
        Assert.Equal(WrongType, h.Run("SMEMBERS", "str"));
        AssertCounters(h, hits: 3, misses: 1, expired: 0);
        Assert.Equal(":1\r\n", h.Run("SREM", "s", "a", "zz"));
        string popped = h.Run("SPOP", "s");
        Assert.True(popped is "$1\r\nb\r\n" or "$1\r\nc\r\n", popped);
        string member = popped.Substring(4, 1);
        Assert.Contains("SREM s " + member, h.Logged); // the effect, not the random command
        Assert.Equal(":1\r\n", h.Run("SREM", "s", member == "b" ? "c" : "b")); // emptied: removed
        Assert.Equal(":0\r\n", h.Run("EXISTS", "s"));
        Assert.Equal("$-1\r\n", h.Run("SPOP", "s"));

        h.Run("SADD", "t", "x");
        h.Run("PEXPIRE", "t", "100");
        h.Now += 101;
        Assert.Equal(":0\r\n", h.Run("SISMEMBER", "t", "x")); // expired: removed, a miss
        AssertCounters(h, hits: 3, misses: 3, expired: 1); // and EXISTS s's
        h.Run("SADD", "u", "only");
        Assert.Equal("$4\r\nonly\r\n", h.Run("SPOP", "u")); // emptied by SPOP: removed
        Assert.Equal(":0\r\n", h.Run("EXISTS", "u"));
        Assert.Equal([
            "sadd:s", "sadd:s", "set:str", "srem:s", "spop:s", "srem:s", "del:s",
            "sadd:t", "expire:t", "expired:t", "sadd:u", "spop:u", "del:u",
        ], events.Events);
    }

    [Fact]
    public void Sorted_set_lookups_by_row_match_the_lookup_path()
    {
        var (h, events) = NewHarness();
        Assert.Equal(":2\r\n", h.Run("ZADD", "z", "1", "a", "2", "b"));
        Assert.Equal(":1\r\n", h.Run("ZADD", "z", "3", "c", "5", "a")); // live: by row
        Assert.Equal(6, Freq(h, "z")); // the write recorded the access
        ResetFreq(h, "z");
        Assert.Equal("$1\r\n5\r\n", h.Run("ZSCORE", "z", "a"));
        Assert.Equal(6, Freq(h, "z"));
        Assert.Equal("*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n", h.Run("ZRANGE", "z", "0", "-1"));
        Assert.Equal("$-1\r\n", h.Run("ZSCORE", "missing", "a"));
        AssertCounters(h, hits: 2, misses: 1, expired: 0);
        h.Run("SET", "s", "v");
        Assert.Equal(WrongType, h.Run("ZADD", "s", "1", "a"));
        Assert.Equal(WrongType, h.Run("ZPOPMIN", "s"));
        Assert.Equal(WrongType, h.Run("ZCARD", "s"));
        AssertCounters(h, hits: 3, misses: 1, expired: 0);
        Assert.Equal("*2\r\n$1\r\nb\r\n$1\r\n2\r\n", h.Run("ZPOPMIN", "z"));
        Assert.Equal(":1\r\n", h.Run("ZREM", "z", "c", "zz"));
        Assert.Equal("*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n5\r\n", h.Run("ZMPOP", "1", "z", "MAX")); // emptied: removed
        Assert.Equal(":0\r\n", h.Run("EXISTS", "z"));
        h.Run("ZADD", "r", "1", "a", "2", "b");
        Assert.Equal(":2\r\n", h.Run("ZREMRANGEBYSCORE", "r", "-inf", "+inf")); // emptied: removed
        Assert.Equal(":0\r\n", h.Run("EXISTS", "r"));

        h.Run("ZADD", "t", "1", "x");
        h.Run("PEXPIRE", "t", "100");
        h.Now += 101;
        Assert.Equal(":0\r\n", h.Run("ZCARD", "t")); // expired: removed, a miss
        AssertCounters(h, hits: 3, misses: 4, expired: 1); // and EXISTS z's and r's
        Assert.Equal([
            "zadd:z", "zadd:z", "set:s", "zpopmin:z", "zrem:z", "zpopmax:z", "del:z",
            "zadd:r", "zremrangebyscore:r", "del:r", "zadd:t", "expire:t", "expired:t",
        ], events.Events);
        Assert.Contains("ZPOPMIN z 1", h.Logged);
        Assert.Contains("ZPOPMAX z 1", h.Logged);
    }

    [Fact]
    public void Set_of_a_new_key_an_expired_key_and_a_live_key_match_the_general_path()
    {
        // SET's plain path has three cases (session 36): a live key by row, a key with no row (a new key: one probe, then
        // the insert), a key whose row expired (the general path: removed as expired, then added). Each must leave what
        // the general path (SET ... NX / XX through SetString) leaves: the value, no TTL, the LFU counter of a new key
        // (5) and no keyspace hit or miss (a write's lookup counts neither), the AOF record, the events.
        var (h, events) = NewHarness();
        Assert.Equal("+OK\r\n", h.Run("SET", "new", "v1")); // no row
        Assert.Equal(5, Freq(h, "new"));
        Assert.Equal("SET new v1", h.Logged[^1]);
        Assert.Equal("+OK\r\n", h.Run("SET", "long", new string('x', 600))); // no row, a long value (its own array)
        Assert.Equal(5, Freq(h, "long"));
        Assert.Equal("+OK\r\n", h.Run("SET", "gen", "v1", "NX")); // the general path, for comparison
        Assert.Equal(5, Freq(h, "gen"));
        h.Run("SET", "exp", "old", "PX", "100");
        h.Now += 101;
        Assert.Equal("+OK\r\n", h.Run("SET", "exp", "v2")); // a row, expired: removed as expired, then a new key
        Assert.Equal(5, Freq(h, "exp"));
        Assert.Equal("+OK\r\n", h.Run("SET", "new", "v3")); // a live row: in place, the access recorded
        Assert.Equal(6, Freq(h, "new"));
        AssertCounters(h, hits: 0, misses: 0, expired: 1);
        Assert.Equal("$2\r\nv3\r\n", h.Run("GET", "new"));
        Assert.Equal("$600\r\n" + new string('x', 600) + "\r\n", h.Run("GET", "long"));
        Assert.Equal("$2\r\nv2\r\n", h.Run("GET", "exp"));
        Assert.Equal(":-1\r\n", h.Run("PTTL", "exp"));
        Assert.Equal(":4\r\n", h.Run("DBSIZE"));
        Assert.Equal(["set:new", "set:long", "set:gen", "set:exp", "expire:exp", "expired:exp", "set:exp", "set:new"], events.Events);
    }

    [Fact]
    public void Del_expire_persist_and_mset_by_row_match_the_lookup_path()
    {
        var (h, events) = NewHarness();
        h.Run("SET", "a", "1");
        h.Run("RPUSH", "l", "x");
        h.Run("SET", "gone", "v", "PX", "100");
        h.Now += 101;
        // DEL: live keys by row, a missing one, an expired one (removed as expired, not counted), a duplicate.
        Assert.Equal(":2\r\n", h.Run("DEL", "a", "missing", "gone", "l", "a"));
        AssertCounters(h, hits: 0, misses: 0, expired: 1);
        Assert.Equal("DEL a l", h.Logged[^1]); // only the keys deleted
        Assert.Equal(":0\r\n", h.Run("DBSIZE"));
        h.Run("MSET", "a", "1", "b", "2");
        Assert.Equal(":2\r\n", h.Run("UNLINK", "a", "b"));
        Assert.Equal("UNLINK a b", h.Logged[^1]); // all deleted: the command as it came
        Assert.Equal(":0\r\n", h.Run("DEL", "a"));

        // EXPIRE family and PERSIST on a live key by row.
        h.Run("SET", "k", "v");
        Assert.Equal(":1\r\n", h.Run("EXPIRE", "k", "10"));
        Assert.Equal($"PEXPIREAT k {h.Now + 10_000}", h.Logged[^1]);
        Assert.Equal(":0\r\n", h.Run("EXPIRE", "k", "20", "NX"));
        Assert.Equal(":1\r\n", h.Run("PEXPIRE", "k", "20000", "GT"));
        Assert.Equal(":20000\r\n", h.Run("PTTL", "k"));
        Assert.Equal(":0\r\n", h.Run("PEXPIRE", "k", "5000", "GT"));
        Assert.Equal(":1\r\n", h.Run("PERSIST", "k"));
        Assert.Equal(":0\r\n", h.Run("PERSIST", "k"));
        Assert.Equal(":-1\r\n", h.Run("TTL", "k"));
        Assert.Equal(":0\r\n", h.Run("EXPIRE", "missing", "10"));
        Assert.Equal(":1\r\n", h.Run("PEXPIREAT", "k", (h.Now - 1).ToString())); // in the past: deleted, logged as DEL
        Assert.Equal("DEL k", h.Logged[^1]);
        Assert.Equal(":0\r\n", h.Run("EXISTS", "k"));
        h.Run("SET", "e", "v", "PX", "100");
        h.Run("SET", "p", "v", "PX", "100");
        h.Now += 101;
        Assert.Equal(":0\r\n", h.Run("EXPIRE", "e", "10")); // expired: removed as expired
        Assert.Equal(":0\r\n", h.Run("PERSIST", "p"));
        AssertCounters(h, hits: 2, misses: 1, expired: 3); // PTTL and TTL hits, EXISTS k's miss

        // MSET and MSETNX: a live key by row (TTL dropped), a new one, an expired one, a key of another type.
        h.Run("SET", "x", "old", "PX", "5000");
        h.Run("SET", "y", "old", "PX", "100");
        h.Run("RPUSH", "list", "1");
        h.Now += 101;
        Assert.Equal("+OK\r\n", h.Run("MSET", "x", "1", "new", "2", "y", "3", "list", "4", "x", "5"));
        Assert.Equal(4, h.Store.ExpiredKeys);
        Assert.Equal("$1\r\n5\r\n", h.Run("GET", "x"));
        Assert.Equal(":-1\r\n", h.Run("TTL", "x"));
        Assert.Equal("$1\r\n4\r\n", h.Run("GET", "list"));
        Assert.Equal(":0\r\n", h.Run("MSETNX", "fresh", "1", "x", "2"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "fresh"));
        h.Run("SET", "z", "v", "PX", "100");
        h.Now += 101;
        Assert.Equal(":1\r\n", h.Run("MSETNX", "fresh", "1", "z", "2")); // z expired: removed, then set
        Assert.Equal(5, h.Store.ExpiredKeys);
        Assert.Equal("$1\r\n2\r\n", h.Run("GET", "z"));
        Assert.Equal([
            "set:a", "rpush:l", "set:gone", "expire:gone", "del:a", "expired:gone", "del:l", "set:a", "set:b", "del:a", "del:b",
            "set:k", "expire:k", "expire:k", "persist:k", "del:k", "set:e", "expire:e", "set:p", "expire:p", "expired:e", "expired:p",
            "set:x", "expire:x", "set:y", "expire:y", "rpush:list", "expired:y", "set:x", "set:new", "set:y", "set:list", "set:x",
            "set:z", "expire:z", "expired:z", "set:fresh", "set:z",
        ], events.Events);
    }

    [Fact]
    public void Writes_by_row_record_the_access_and_notouch_reads_do_not()
    {
        // Redis's lookupKeyWrite records an access (LRU clock / LFU counter) for every write on a live key; TTL, PTTL,
        // EXISTS, TYPE, (P)EXPIRETIME and OBJECT look up with LOOKUP_NOTOUCH: counted, not recorded.
        var (h, _) = NewHarness();
        var wrong = new List<string>(); // every command checked, all failures reported at once
        void Written(string key, params string[] command)
        {
            ResetFreq(h, key);
            h.Run(command);
            if (Freq(h, key) != 6) wrong.Add(string.Join(' ', command) + " recorded no access");
        }
        void NotTouched(string key, params string[] command)
        {
            ResetFreq(h, key);
            h.Run(command);
            if (Freq(h, key) != 5) wrong.Add(string.Join(' ', command) + " recorded an access");
        }
        h.Run("SET", "k", "v");
        h.Run("SET", "n", "1");
        h.Run("SET", "big", new string('x', 600));
        Written("k", "SET", "k", "w"); // SET's fast path by row
        Written("big", "SET", "big", new string('y', 600)); // a long value by row
        Written("k", "SET", "k", "w", "NX"); // the general path, nothing written
        Written("k", "MSET", "k", "u", "m", "1"); // MSET by row
        Written("k", "MSETNX", "zz", "1", "k", "2"); // MSETNX finds k
        Written("n", "INCR", "n"); // INCR by row
        Written("k", "APPEND", "k", "x");
        Written("k", "EXPIRE", "k", "100");
        Written("k", "EXPIRE", "k", "100", "NX"); // refused by its flag, still looked up
        Written("k", "PERSIST", "k");
        Written("k", "PERSIST", "k"); // no TTL to remove, still looked up
        Written("k", "SETNX", "k", "z");
        h.Run("PEXPIRE", "k", "100000");
        NotTouched("k", "TTL", "k");
        NotTouched("k", "PTTL", "k");
        NotTouched("k", "EXISTS", "k");
        NotTouched("k", "TYPE", "k");
        NotTouched("k", "EXPIRETIME", "k");
        NotTouched("k", "PEXPIRETIME", "k");
        NotTouched("k", "OBJECT", "ENCODING", "k");
        NotTouched("k", "MEMORY", "USAGE", "k");
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
        long hits = h.Store.KeyspaceHits, misses = h.Store.KeyspaceMisses;
        foreach (string command in new[] { "TTL", "PTTL", "EXISTS", "TYPE", "EXPIRETIME", "PEXPIRETIME" })
        {
            h.Run(command, "k");
            h.Run(command, "missing");
        }
        h.Run("OBJECT", "FREQ", "k"); // after the lookup: a hit, as Redis (refused without an LFU policy, counted alike)
        h.Run("OBJECT", "ENCODING", "missing");
        h.Run("MEMORY", "USAGE", "k"); // dictFind: not counted
        AssertCounters(h, hits: hits + 7, misses: misses + 7, expired: 0);
    }

    [Fact]
    public void String_reads_type_and_expiretime_by_row_match_the_lookup_path()
    {
        var (h, events) = NewHarness();
        string big = new('x', 600); // longer than a packed value: its own array
        h.Run("SET", "k", "hello");
        h.Run("SET", "big", big);
        h.Run("RPUSH", "l", "a");
        h.Run("SET", "e", "v", "PX", "100");
        h.Run("SET", "f", "v", "PX", "100");
        h.Run("SET", "g", "v", "PX", "100");
        h.Run("SET", "t", "v", "PX", "100");
        h.Run("SET", "u", "v", "PX", "5000");

        Assert.Equal("$5\r\nhello\r\n", h.Run("GET", "k")); // live packed: a hit, the access recorded
        Assert.Equal(6, Freq(h, "k"));
        Assert.Equal($"$600\r\n{big}\r\n", h.Run("GET", "big")); // live long string
        Assert.Equal(6, Freq(h, "big"));
        Assert.Equal("$-1\r\n", h.Run("GET", "missing"));
        Assert.Equal(WrongType, h.Run("GET", "l")); // a hit, then WRONGTYPE
        AssertCounters(h, hits: 3, misses: 1, expired: 0);
        Assert.Equal(6, Freq(h, "l")); // the WRONGTYPE read recorded the access too
        Assert.Equal("*5\r\n$5\r\nhello\r\n$600\r\n" + big + "\r\n$-1\r\n$-1\r\n$5\r\nhello\r\n",
            h.Run("MGET", "k", "big", "l", "missing", "k")); // another type: nil, still a hit
        AssertCounters(h, hits: 7, misses: 2, expired: 0);
        Assert.Equal(":5\r\n", h.Run("STRLEN", "k"));
        Assert.Equal(":600\r\n", h.Run("STRLEN", "big"));
        Assert.Equal(":0\r\n", h.Run("STRLEN", "missing"));
        Assert.Equal(WrongType, h.Run("STRLEN", "l"));
        Assert.Equal("$3\r\nell\r\n", h.Run("GETRANGE", "k", "1", "3"));
        Assert.Equal("$2\r\nxx\r\n", h.Run("GETRANGE", "big", "-2", "-1"));
        Assert.Equal("$0\r\n\r\n", h.Run("GETRANGE", "missing", "0", "-1"));
        Assert.Equal(WrongType, h.Run("GETRANGE", "l", "0", "1"));
        AssertCounters(h, hits: 13, misses: 4, expired: 0);
        // TYPE and EXPIRETIME count a hit or a miss and record no access (Redis's LOOKUP_NOTOUCH).
        Assert.Equal("+string\r\n", h.Run("TYPE", "k"));
        Assert.Equal("+list\r\n", h.Run("TYPE", "l"));
        Assert.Equal("+none\r\n", h.Run("TYPE", "missing"));
        Assert.Equal(":-1\r\n", h.Run("EXPIRETIME", "k"));
        Assert.Equal($":{(h.Now + 5000 + 500) / 1000}\r\n", h.Run("EXPIRETIME", "u"));
        Assert.Equal($":{h.Now + 5000}\r\n", h.Run("PEXPIRETIME", "u"));
        Assert.Equal(":-2\r\n", h.Run("PEXPIRETIME", "missing"));
        AssertCounters(h, hits: 18, misses: 6, expired: 0);
        Assert.Equal(5, Freq(h, "u"));

        // Expired keys: removed as expired (count, event); a read also counts the miss.
        h.Now += 101;
        Assert.Equal("$-1\r\n", h.Run("GET", "e"));
        AssertCounters(h, hits: 18, misses: 7, expired: 1);
        Assert.Equal("*2\r\n$-1\r\n$5\r\nhello\r\n", h.Run("MGET", "f", "k"));
        AssertCounters(h, hits: 19, misses: 8, expired: 2);
        Assert.Equal(":0\r\n", h.Run("STRLEN", "g"));
        AssertCounters(h, hits: 19, misses: 9, expired: 3);
        Assert.Equal("+none\r\n", h.Run("TYPE", "t"));
        AssertCounters(h, hits: 19, misses: 10, expired: 4);
        h.Run("SET", "w", "v", "PX", "100");
        h.Now += 101;
        Assert.Equal(":-2\r\n", h.Run("EXPIRETIME", "w"));
        AssertCounters(h, hits: 19, misses: 11, expired: 5);
        Assert.Equal(":4\r\n", h.Run("DBSIZE")); // k, big, l, u
        Assert.Equal(["expired:e", "expired:f", "expired:g", "expired:t", "set:w", "expire:w", "expired:w"],
            events.Events.Skip(events.Events.IndexOf("expired:e")).ToArray());
    }
}
