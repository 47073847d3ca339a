using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>What a command counts and records about the keys it looks up, against redis-server 7.0: the
/// keyspace_hits/keyspace_misses deltas of INFO stats for each command on an existing key and on a missing one (Redis's
/// lookupKeyRead counts; lookupKeyReadWithFlags(LOOKUP_NOTOUCH) counts too: EXISTS, TYPE, TTL, EXPIRETIME, OBJECT;
/// lookupKeyWrite does not), and under allkeys-lfu whether each key's access was recorded (OBJECT FREQ: a key starts at
/// 5, LFU_INIT_VAL, and its first access takes it to 6 for sure; later increments are random, so the counter is
/// compared clamped at 6). Every write looks its key up with lookupKeyWrite, which records the access (SET over a live
/// key, APPEND, HSET, LPUSH, EXPIRE, PERSIST, ...); TTL, PTTL, EXISTS, TYPE, EXPIRETIME and OBJECT record none.</summary>
public sealed class KeyAccessDiffTests
{
    private static readonly string[][] Setup =
    [
        ["SET", "s", "hello"], ["HSET", "h", "f", "v"], ["RPUSH", "l", "a", "b"], ["SADD", "st", "a", "b"], ["ZADD", "z", "1", "a"],
        ["XADD", "x", "1-1", "f", "v"], ["PFADD", "hl", "a"], ["SETBIT", "bm", "3", "1"],
    ];

    private static readonly string[][] Cases =
    [
        ["GET", "s"], ["STRLEN", "s"], ["GETRANGE", "s", "0", "1"], ["EXISTS", "s"], ["EXISTS", "s", "h", "nokey"], ["TYPE", "s"],
        ["TTL", "s"], ["PTTL", "s"], ["EXPIRETIME", "s"], ["PEXPIRETIME", "s"], ["OBJECT", "ENCODING", "s"],
        ["OBJECT", "FREQ", "s"], ["OBJECT", "REFCOUNT", "s"], ["MEMORY", "USAGE", "s"], ["DUMP", "s"], ["TOUCH", "s"],
        ["MGET", "s", "nokey"], ["GETBIT", "bm", "3"], ["BITCOUNT", "bm"],
        ["HGET", "h", "f"], ["HGETALL", "h"], ["HLEN", "h"], ["LLEN", "l"], ["LRANGE", "l", "0", "-1"], ["SMEMBERS", "st"],
        ["SISMEMBER", "st", "a"], ["ZSCORE", "z", "a"], ["ZRANGE", "z", "0", "-1"], ["XLEN", "x"], ["XRANGE", "x", "-", "+"],
        ["PFCOUNT", "hl"], ["SORT", "l", "ALPHA"],
        ["APPEND", "s", "x"], ["INCR", "cnt"], ["GETDEL", "s"], ["DEL", "s"], ["EXPIRE", "s", "100"], ["EXPIRE", "s", "100", "XX"],
        ["PERSIST", "s"], ["SET", "s", "v2"], ["SET", "s", "v2", "NX"], ["SET", "s", "v2", "EX", "100"], ["SETRANGE", "s", "1", "x"],
        ["SETNX", "s", "z"], ["MSET", "s", "z"], ["MSETNX", "s", "z", "n", "1"], ["HSET", "h", "f", "w"], ["HDEL", "h", "f"],
        ["HINCRBY", "h", "n", "1"], ["LPUSH", "l", "c"], ["LPUSHX", "l", "z"], ["LSET", "l", "0", "q"], ["LREM", "l", "0", "a"],
        ["LTRIM", "l", "0", "0"], ["LMOVE", "l", "l2", "LEFT", "LEFT"], ["SADD", "st", "c"], ["SREM", "st", "a"],
        ["SMOVE", "st", "st2", "a"], ["ZADD", "z", "2", "a"], ["ZINCRBY", "z", "1", "a"], ["ZREM", "z", "a"],
        ["XADD", "x", "*", "f", "v"], ["XDEL", "x", "1-1"], ["XTRIM", "x", "MAXLEN", "0"], ["PFADD", "hl", "b"],
        ["SETBIT", "bm", "4", "1"], ["EXPIREAT", "s", "99999999999"], ["PEXPIRE", "s", "100000"],
        ["INCR", "s"], ["SET", "cnt", "1"], ["RENAME", "s", "s9"],
    ];

    // Counted exactly (lfu-log-factor 0: every access increments, lfu-decay-time 0: no decay): the blocking pops' own
    // lookups (a second access to a sorted set or a BLMOVE source; a key of the wrong type), MOVE's and COPY's lookup of
    // the destination, and the *STORE destinations (setKey: one lookupKeyWrite, then dbOverwrite keeps the old counter).
    // "dst" was read twice (7) so that a kept counter (8), a fresh one (5) and a second access (9) differ.
    private static readonly string[][] CounterSetup =
    [
        ["SET", "s", "v"], ["SET", "dst", "old"], ["GET", "dst"], ["GET", "dst"], ["RPUSH", "l", "3", "1", "2"], ["RPUSH", "l2", "9"],
        ["ZADD", "z", "1", "x", "2", "y"], ["SADD", "st", "1", "2"], ["GEOADD", "g", "13.36", "38.11", "p"],
        ["SELECT", "1"], ["SET", "s", "other"], ["SET", "dst", "x"], ["SELECT", "0"],
    ];

    private static readonly string[] CounterKeys = ["s", "dst", "l", "l2", "z", "st", "g", "1:s", "1:dst"];

    private static readonly string[][] CounterCases =
    [
        ["BLPOP", "l", "0"], ["BRPOP", "nokey", "l", "0"], ["BLPOP", "l", "s", "0"], ["BLPOP", "s", "l", "0"], ["BLPOP", "nokey", "s", "0"],
        ["BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"], ["BLMOVE", "l", "l", "LEFT", "RIGHT", "0"], ["BRPOPLPUSH", "l", "l2", "0"],
        ["BLMOVE", "s", "l2", "LEFT", "RIGHT", "0"], ["BRPOPLPUSH", "l", "s", "0"], ["BLMPOP", "0", "2", "nokey", "l", "LEFT"],
        ["BLMPOP", "0", "2", "s", "l", "LEFT"], ["BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "5"],
        ["BZPOPMIN", "z", "0"], ["BZPOPMAX", "nokey", "z", "0"], ["BZPOPMIN", "z", "s", "0"], ["BZPOPMIN", "s", "z", "0"],
        ["BZMPOP", "0", "1", "z", "MIN"], ["BZMPOP", "0", "2", "nokey", "z", "MAX", "COUNT", "1"], ["BZMPOP", "0", "2", "s", "z", "MIN"],
        ["BZMPOP", "0", "2", "z", "s", "MIN"], ["BZMPOP", "0", "1", "z", "BAD"], ["BZMPOP", "0", "1", "z", "MIN", "COUNT", "5"],
        ["MOVE", "s", "1"], ["MOVE", "dst", "1"], ["MOVE", "l", "1"], ["MOVE", "nokey", "1"],
        ["COPY", "s", "dst"], ["COPY", "s", "dst", "REPLACE"], ["COPY", "s", "dst", "DB", "1"], ["COPY", "s", "s", "DB", "1"],
        ["COPY", "l", "l2"], ["RENAME", "s", "dst"], ["RENAMENX", "s", "dst"],
        ["SINTERSTORE", "dst", "st", "st"], ["SUNIONSTORE", "dst", "st"], ["SDIFFSTORE", "dst", "st", "nokey"], ["SINTERSTORE", "st", "st"],
        ["ZUNIONSTORE", "dst", "1", "z"], ["ZINTERSTORE", "dst", "2", "z", "z"], ["ZDIFFSTORE", "dst", "1", "z"],
        ["ZRANGESTORE", "dst", "z", "0", "-1"], ["ZRANGESTORE", "z", "z", "0", "0"], ["ZINTERSTORE", "z", "1", "z"],
        ["ZUNIONSTORE", "dst", "1", "nokey"], ["ZUNIONSTORE", "dst", "2", "z", "dst"], ["SORT", "l", "STORE", "dst"],
        ["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "13.36", "38.11", "BYRADIUS", "10", "km"],
        ["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "13.36", "38.11", "BYRADIUS", "10", "km", "STOREDIST"],
        ["GEORADIUS", "g", "13.36", "38.11", "10", "km", "STORE", "dst"], ["GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"],
    ];

    private static List<string> AccessCounted(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        c.Call("FLUSHALL");
        WithLfu(c, exactCounter: true, () =>
        {
            foreach (string[] command in CounterCases)
            {
                foreach (string[] u in CounterSetup) c.Call(u);
                Resp reply = c.Call(command);
                string answer = reply.Kind == '-' ? "error " + reply.Text : reply.Kind.ToString();
                IEnumerable<string> freqs = CounterKeys.Select(k =>
                {
                    string[] at = k.Split(':');
                    c.Call("SELECT", at.Length == 2 ? at[0] : "0");
                    return k + "=" + (c.Call("OBJECT", "FREQ", at[^1]) is { Kind: ':' } f ? f.Text : "none");
                });
                seen.Add($"{string.Join(' ', command)} ({answer}): {string.Join(' ', freqs.ToList())}");
                c.Call("SELECT", "0");
                c.Call("FLUSHALL");
            }
        });
        return seen;
    }

    // Served after blocking: Redis's handleClientsBlockedOnKeys looks the ready key up (an access) before serving; a
    // list is then popped from without another lookup, a sorted set by ZPOPMIN/ZMPOP's own lookup (a second access).
    private static readonly (string[] Block, string[] Push)[] WakeCases =
    [
        (["BLPOP", "l", "0"], ["RPUSH", "l", "a", "b"]), (["BLMPOP", "0", "1", "l", "LEFT"], ["RPUSH", "l", "a", "b"]),
        (["BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"], ["RPUSH", "l", "a", "b"]), (["BRPOPLPUSH", "l", "l", "0"], ["RPUSH", "l", "a", "b"]),
        (["BZPOPMIN", "z", "0"], ["ZADD", "z", "1", "a", "2", "b"]), (["BZMPOP", "0", "2", "nokey", "z", "MAX"], ["ZADD", "z", "1", "a", "2", "b"]),
    ];

    private static List<string> AccessCountedAfterBlocking(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        using var blocked = new RespConnection(port);
        c.Call("FLUSHALL");
        WithLfu(c, exactCounter: true, () =>
        {
            foreach ((string[] block, string[] push) in WakeCases)
            {
                blocked.Send(RespConnection.Encode(block));
                for (int i = 0; i < 2000 && Stat(c, "blocked_clients", "clients") != 1; i++) Thread.Sleep(5);
                c.Call(push);
                Resp reply = blocked.Read();
                IEnumerable<string> freqs = new[] { "l", "l2", "z" }.Select(k => k + "=" +
                    (c.Call("OBJECT", "FREQ", k) is { Kind: ':' } f ? f.Text : "none"));
                seen.Add($"{string.Join(' ', block)} / {string.Join(' ', push)} ({reply.Kind}): {string.Join(' ', freqs.ToList())}");
                c.Call("FLUSHALL");
            }
        });
        return seen;
    }

    private static long Stat(RespConnection c, string name, string section = "stats")
    {
        string info = c.Call("INFO", section).Text!;
        string line = info.Split("\r\n").First(l => l.StartsWith(name + ":", StringComparison.Ordinal));
        return long.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
    }

    private static List<string> HitsAndMisses(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        c.Call("FLUSHALL");
        HashSet<string> keys = [.. Setup.Select(u => u[1])];
        foreach (string[] command in Cases)
        {
            foreach (bool miss in new[] { false, true })
            {
                foreach (string[] u in Setup) c.Call(u);
                string[] args = miss ? [.. command.Select(a => keys.Contains(a) ? "nokey_" + a : a)] : command;
                long h0 = Stat(c, "keyspace_hits"), m0 = Stat(c, "keyspace_misses");
                c.Call(args);
                long h1 = Stat(c, "keyspace_hits"), m1 = Stat(c, "keyspace_misses");
                seen.Add($"{string.Join(' ', args)}: hits +{h1 - h0}, misses +{m1 - m0}");
                c.Call("FLUSHALL");
            }
        }
        return seen;
    }

    private static List<string> AccessRecorded(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        c.Call("FLUSHALL");
        WithLfu(c, exactCounter: false, () =>
        {
            foreach (string[] command in Cases)
            {
                foreach (string[] u in Setup) c.Call(u);
                c.Call(command);
                // 5 (LFU_INIT_VAL): no access since the key was created; 6: one or more (the second is random).
                IEnumerable<string> freqs = Setup.Select(u => c.Call("OBJECT", "FREQ", u[1]) is { Kind: ':' } f
                    ? u[1] + "=" + Math.Min(6, long.Parse(f.Text!, CultureInfo.InvariantCulture)) : u[1] + "=none");
                seen.Add($"{string.Join(' ', command)}: {string.Join(' ', freqs)}");
                c.Call("FLUSHALL");
            }
        });
        return seen;
    }

    // Runs body with maxmemory-policy allkeys-lfu (so OBJECT FREQ answers); with exactCounter, lfu-log-factor 0 and
    // lfu-decay-time 0 make the counter count every access. The defaults are restored afterwards, on both servers.
    private static void WithLfu(RespConnection c, bool exactCounter, Action body)
    {
        Assert.Equal("OK", c.Call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu").Text);
        if (exactCounter)
        {
            Assert.Equal("OK", c.Call("CONFIG", "SET", "lfu-log-factor", "0").Text);
            Assert.Equal("OK", c.Call("CONFIG", "SET", "lfu-decay-time", "0").Text);
        }

        try
        {
            body();
        }
        finally
        {
            if (exactCounter)
            {
                c.Call("CONFIG", "SET", "lfu-log-factor", "10");
                c.Call("CONFIG", "SET", "lfu-decay-time", "1");
            }

            c.Call("CONFIG", "SET", "maxmemory-policy", "noeviction");
        }
    }

    // The same run against redis-server and EioSharp.Kv (no AOF), each started here and stopped by its process id.
    private static void AssertSameAsRedis(Func<int, List<string>> run)
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        AssertSame(run(redis.Port), run(kv.Port));
    }

    private static void AssertSame(List<string> expected, List<string> actual)
    {
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Count, actual.Count);
        var differences = expected.Zip(actual).Where(p => p.First != p.Second)
            .Select(p => $"  redis-server: {p.First}\n  EioSharp.Kv:  {p.Second}").ToList();
        Assert.True(differences.Count == 0, $"{differences.Count} of {expected.Count} differ:\n" + string.Join('\n', differences));
    }

    [Fact]
    public void Keyspace_hits_and_misses_count_like_redis()
        => AssertSameAsRedis(HitsAndMisses);

    [Fact]
    public void Blocking_pops_move_copy_and_store_destinations_count_accesses_like_redis()
        => AssertSameAsRedis(AccessCounted);

    [Fact]
    public void Blocking_pops_served_after_blocking_count_accesses_like_redis()
        => AssertSameAsRedis(AccessCountedAfterBlocking);

    [Fact]
    public void Reads_and_writes_record_key_access_like_redis()
        => AssertSameAsRedis(AccessRecorded);
}
