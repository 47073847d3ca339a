namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13 operations compared with redis-server 7.0.15: CONFIG RESETSTAT zeroes every statistic Redis's
/// resetServerStats zeroes (expired_keys, evicted_keys, keyspace hits and misses, errors), not only the connection's.</summary>
public sealed class OperationsDiffTests
{
    private static readonly string[] StatFields = ["expired_keys", "evicted_keys", "keyspace_hits", "keyspace_misses", "total_error_replies"];

    private static Dictionary<string, string> Stats(RespConnection c)
    {
        var fields = new Dictionary<string, string>();
        foreach (string line in c.Call("INFO", "stats").Text!.Split("\r\n"))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0) fields[line[..colon]] = line[(colon + 1)..];
        }
        return fields;
    }

    private static List<string> RunAgainst(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        void Note(params string[] command) => seen.Add(string.Join(' ', command) + " => " + c.Call(command));
        void NoteStats(string when)
        {
            Dictionary<string, string> s = Stats(c);
            foreach (string f in StatFields) seen.Add(when + " " + f + ":" + s.GetValueOrDefault(f, "(missing)"));
        }

        Note("SET", "a", "1");
        Note("GET", "a");
        Note("GET", "nosuch");
        Note("SET", "e", "1", "PX", "1");
        Thread.Sleep(20);
        Note("GET", "e"); // expired on access: expired_keys 1, a miss
        Note("INCR", "a", "b"); // an error
        Note("SET", "b", "2");
        Note("CONFIG", "SET", "maxmemory-policy", "allkeys-random");
        Note("CONFIG", "SET", "maxmemory", "1"); // both servers are over it: the next write evicts every key
        Note("SET", "c", "3");
        Note("CONFIG", "SET", "maxmemory", "0");
        NoteStats("before");
        Note("CONFIG", "RESETSTAT");
        NoteStats("after");
        Note("GET", "nosuch");
        NoteStats("later");
        return seen;
    }

    [Fact]
    public void Config_resetstat_zeroes_what_redis_zeroes()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = RunAgainst(redis.Port);
        List<string> actual = RunAgainst(kv.Port);
        Assert.Contains("before evicted_keys:2", actual);
        Assert.Contains("before expired_keys:1", actual);
        for (int i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            Assert.True(i < expected.Count && i < actual.Count && expected[i] == actual[i],
                $"line {i} differs\n  redis-server: {(i < expected.Count ? expected[i] : "(none)")}\n  EioSharp.Kv:  {(i < actual.Count ? actual[i] : "(none)")}");
        }
    }

    private static List<string> AppendOnlyReplies(int port)
    {
        using var c = new RespConnection(port);
        var seen = new List<string>();
        foreach (string[] command in new[]
        {
            new[] { "CONFIG", "SET", "appendonly", "maybe" }, ["CONFIG", "SET", "appendonly", "yes"], ["CONFIG", "GET", "appendonly"],
            ["SET", "a", "1"], ["CONFIG", "SET", "appendonly", "yes"], ["CONFIG", "SET", "appendonly", "no"], ["CONFIG", "GET", "appendonly"],
            ["GET", "a"],
        })
        {
            seen.Add(string.Join(' ', command) + " => " + c.Call(command));
        }

        string persistence = c.Call("INFO", "persistence").Text!;
        seen.Add(persistence.Split("\r\n").First(l => l.StartsWith("aof_enabled:", StringComparison.Ordinal)));
        return seen;
    }

    [Fact]
    public void Config_set_appendonly_answers_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        Assert.Equal(AppendOnlyReplies(redis.Port), AppendOnlyReplies(kv.Port));
    }
}
