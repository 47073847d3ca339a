namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>maxmemory with noeviction, compared reply by reply with redis-server 7.0: over the limit (maxmemory 1, so both
/// servers are over it whatever they count), denyoom commands get -OOM and the rest is served; MULTI queues nothing and
/// EXEC aborts; an EXEC whose transaction was queued before the limit was hit aborts with the OOM reason; scripts follow
/// their flags (compatibility mode refuses the first denyoom call, a shebang without allow-oom refuses the script, a write
/// first lets later denyoom calls through, pcall returns the error); functions likewise; FUNCTION LOAD is refused.</summary>
public sealed class MaxMemoryDiffTests
{
    private const string Library = "#!lua name=oomlib\n" +
        "redis.register_function('w', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n" +
        "redis.register_function{function_name='wo', callback=function(keys, args) return redis.call('set', keys[1], args[1]) end, flags={'allow-oom'}}\n" +
        "redis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}\n";

    private static readonly string[][] OverLimit =
    [
        ["SET", "b", "2"], ["GET", "a"], ["INCR", "a"], ["LPOP", "l"], ["LPUSH", "l", "z"], ["DEL", "nosuch"], ["EXPIRE", "a", "100"],
        ["MSET", "x", "1", "y", "2"], ["APPEND", "a", "z"], ["SETNX", "q", "1"], ["XADD", "s", "*", "f", "v"],
        ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"], ["HSET", "h", "f", "v"], ["SADD", "st", "m"], ["ZADD", "z", "1", "m"],
        ["PFADD", "hll", "a"], ["SORT", "l"], ["GETSET", "a", "2"], ["COPY", "a", "a2"], ["GETDEL", "nosuch"], ["SET"], ["NOSUCHCMD"],
        ["EVAL", "return redis.call('set','x','1')", "0"],
        ["EVAL", "#!lua\nreturn redis.call('set','x','1')", "0"],
        ["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set','x','1')", "0"],
        ["EVAL", "return redis.call('get','a')", "0"],
        ["EVAL", "redis.call('del','zz'); return redis.call('set','x','2')", "0"],
        ["EVAL", "return redis.pcall('set','x','1')", "0"],
        ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0"],
        ["EVALSHA", "0000000000000000000000000000000000000000", "0"],
        ["FCALL", "w", "1", "k", "v"], ["FCALL", "wo", "1", "k", "v"], ["FCALL", "ro", "1", "a"], ["FCALL_RO", "ro", "1", "a"],
        ["FUNCTION", "LOAD", "REPLACE", Library],
        ["MULTI"], ["GET", "a"], ["SET", "a", "1"], ["PING"], ["MULTI"], ["EXEC"],
        ["MULTI"], ["DISCARD"],
        ["WATCH", "a"], ["UNWATCH"], ["PING"], ["DBSIZE"], ["GET", "x"], ["GET", "k"],
    ];

    private static List<string> RunAgainst(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        using var other = new RespConnection(port);
        using var tx = new RespConnection(port);
        void Note(string who, RespConnection conn, params string[] command) => seen.Add(who + " " + string.Join(' ', command) + " => " + conn.Call(command));

        Note("c", c, "FLUSHALL");
        Note("c", c, "FUNCTION", "FLUSH");
        Note("c", c, "SET", "a", "1");
        Note("c", c, "RPUSH", "l", "x", "y");
        Note("c", c, "FUNCTION", "LOAD", Library);
        Note("tx", tx, "MULTI");
        Note("tx", tx, "SET", "t", "1");
        Note("other", other, "CONFIG", "SET", "maxmemory", "1");
        foreach (string[] command in OverLimit) Note("c", c, command);
        Note("tx", tx, "EXEC"); // queued before the limit was hit: aborted with the OOM reason
        Note("tx", tx, "GET", "t");
        Note("other", other, "CONFIG", "SET", "maxmemory", "0");
        Note("c", c, "SET", "b", "2");
        Note("c", c, "MULTI");
        Note("c", c, "SET", "m", "1");
        Note("c", c, "EXEC");
        return seen;
    }

    [Fact]
    public void Noeviction_over_the_limit_answers_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = RunAgainst(redis.Port);
        List<string> actual = RunAgainst(kv.Port);
        Assert.Contains("c SET b 2 => -OOM command not allowed when used memory > 'maxmemory'.", actual);
        for (int i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            Assert.True(i < expected.Count && i < actual.Count && expected[i] == actual[i],
                $"reply {i} differs\n  redis-server: {(i < expected.Count ? expected[i] : "(none)")}\n  EioSharp.Kv:  {(i < actual.Count ? actual[i] : "(none)")}");
        }
    }
}
