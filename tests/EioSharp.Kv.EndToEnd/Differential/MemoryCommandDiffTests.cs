namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>MEMORY subcommands compared with redis-server 7.0: HELP, DOCTOR on a small instance, PURGE and the arity and
/// unknown-subcommand errors byte for byte; STATS field by field in shape (names, order, nested db.N maps, integer or
/// double values) in RESP2 and RESP3, since the numbers are each server's own; MALLOC-STATS as a text reply.</summary>
public sealed class MemoryCommandDiffTests
{
    /// <summary>A reply's shape: aggregates element by element, map keys (the bulk strings at even positions) by text,
    /// other scalars by their type only.</summary>
    private static string Shape(Resp r)
    {
        if (r.Items is null) return r.Kind.ToString();
        var parts = new List<string>();
        for (int i = 0; i < r.Items.Count; i++)
        {
            Resp item = r.Items[i];
            parts.Add(i % 2 == 0 && item.Kind == '$' && item.Items is null ? item.Text! : Shape(item));
        }
        return r.Kind + "[" + string.Join(",", parts) + "]";
    }

    private static List<string> RunAgainst(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        c.Call("FLUSHALL");
        c.Call("SET", "a", "1");
        c.Call("SELECT", "2");
        c.Call("SET", "b", "1", "EX", "100");
        foreach (string[] command in new[]
                 {
                     new[] { "MEMORY", "HELP" }, ["MEMORY", "DOCTOR"], ["MEMORY", "PURGE"], ["MEMORY", "STATS", "x"],
                     ["MEMORY", "DOCTOR", "x"], ["MEMORY", "PURGE", "x"], ["MEMORY", "MALLOC-STATS", "x"], ["MEMORY", "FOO"],
                     ["MEMORY", "HELP", "x"], ["MEMORY"],
                 })
        {
            seen.Add(string.Join(' ', command) + " => " + c.Call(command));
        }
        foreach (string protocol in new[] { "2", "3" })
        {
            c.Call("HELLO", protocol);
            seen.Add($"RESP{protocol} MEMORY STATS => " + Shape(c.Call("MEMORY", "STATS")));
            Resp malloc = c.Call("MEMORY", "MALLOC-STATS");
            seen.Add($"RESP{protocol} MEMORY MALLOC-STATS => {malloc.Kind}");
            Resp doctor = c.Call("MEMORY", "DOCTOR");
            seen.Add($"RESP{protocol} MEMORY DOCTOR => {doctor}");
        }
        return seen;
    }

    [Fact]
    public void Memory_subcommands_answer_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = RunAgainst(redis.Port);
        List<string> actual = RunAgainst(kv.Port);
        for (int i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            Assert.True(i < expected.Count && i < actual.Count && expected[i] == actual[i],
                $"reply {i} differs\n  redis-server: {(i < expected.Count ? expected[i] : "(none)")}\n  EioSharp.Kv:  {(i < actual.Count ? actual[i] : "(none)")}");
        }
    }
}
