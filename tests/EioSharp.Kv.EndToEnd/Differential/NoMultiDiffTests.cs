namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Commands Redis 7.0.15 flags no-multi (COMMAND INFO: sync, psync, shutdown, save) are refused inside MULTI at
/// queue time with "ERR Command not allowed inside a transaction", before the ACL and maxmemory checks and after the
/// arity check, and the transaction is aborted (EXECABORT); SHUTDOWN in MULTI does not stop the server. Differential
/// against redis-server (SAVE left out: this branch has no SAVE; h42's adds it with the same table flag).</summary>
public sealed class NoMultiDiffTests
{
    private static List<string> Observe(int port)
    {
        var seen = new List<string>();
        using var c = new RespConnection(port);
        void Run(params string[] command) => seen.Add(string.Join(" ", command) + " -> " + c.Call(command));

        Run("MULTI");
        Run("SYNC");
        Run("PSYNC", "?", "-1");
        Run("SHUTDOWN");
        Run("SHUTDOWN", "NOSAVE", "NOW");
        Run("SYNC", "extra"); // arity first
        Run("PING");
        Run("EXEC");
        Run("PING"); // SHUTDOWN was not run

        // Before the ACL check: a user without PSYNC gets the transaction error, not NOPERM.
        Run("ACL", "SETUSER", "nomulti", "on", ">pw", "+multi", "+exec", "+ping", "+discard");
        using (var u = new RespConnection(port))
        {
            void RunU(params string[] command) => seen.Add("user: " + string.Join(" ", command) + " -> " + u.Call(command));
            RunU("AUTH", "nomulti", "pw");
            RunU("MULTI");
            RunU("PSYNC", "?", "-1");
            RunU("DISCARD");
            RunU("MULTI");
            RunU("SET", "k", "v"); // no permission: NOPERM while queuing
            RunU("EXEC");
        }

        // Before the maxmemory check (which refuses every queued command over the limit).
        Run("SET", "filler", "x");
        Run("CONFIG", "SET", "maxmemory", "1");
        Run("MULTI");
        Run("SYNC");
        Run("PING");
        Run("EXEC");
        Run("CONFIG", "SET", "maxmemory", "0");
        Run("MULTI");
        Run("SHUTDOWN", "NOSAVE");
        Run("DISCARD");
        Run("PING");
        return seen;
    }

    [Fact]
    public void No_multi_commands_are_refused_while_queuing_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = Observe(redis.Port);
        Assert.Contains("SYNC -> -ERR Command not allowed inside a transaction", expected);
        Assert.Contains("EXEC -> -EXECABORT Transaction discarded because of previous errors.", expected);
        Assert.Equal(expected, Observe(kv.Port));
    }
}
