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

    private static long Stat(RespConnection c, string name)
    {
        string info = c.Call("INFO", "stats").Text!;
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
        Assert.Equal("OK", c.Call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu").Text);
        try
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
        }
        finally
        {
            c.Call("CONFIG", "SET", "maxmemory-policy", "noeviction");
        }
        return seen;
    }

    private static void AssertSame(List<string> expected, List<string> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        var differences = expected.Zip(actual).Where(p => p.First != p.Second)
            .Select(p => $"  redis-server: {p.First}\n  EioSharp.Kv:  {p.Second}").ToList();
        Assert.True(differences.Count == 0, $"{differences.Count} of {expected.Count} differ:\n" + string.Join('\n', differences));
    }

    [Fact]
    public void Keyspace_hits_and_misses_count_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        AssertSame(HitsAndMisses(redis.Port), HitsAndMisses(kv.Port));
    }

    [Fact]
    public void Reads_and_writes_record_key_access_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        AssertSame(AccessRecorded(redis.Port), AccessRecorded(kv.Port));
    }
}
