using EioSharp.TestKit;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>BGSAVE and BGREWRITEAOF queued in MULTI: redis-server 7.0.15 never starts a background job in the middle of
/// EXEC (bgsaveCommand and bgrewriteaofCommand under <c>server.in_exec</c>): it answers "... scheduled" and its cron
/// starts the job after the transaction. Compared reply by reply with redis-server; then both servers must have done the
/// work (a dump.rdb written, one more AOF rewrite), as "scheduled" promises.</summary>
public sealed class BackgroundSaveInMultiDiffTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    [Fact]
    public void Bgsave_and_bgrewriteaof_in_multi_are_scheduled_and_then_run_as_in_redis()
    {
        using var redis = RedisServerProcess.Start("--appendonly", "yes");
        using var kv = KvServerProcess.Start("--appendonly", "yes");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        foreach (var c in new[] { r, k })
        {
            Assert.True(Poll.Until(() => ServerInfo.Field(c, "persistence", "aof_rewrite_in_progress") == "0"
                && ServerInfo.Field(c, "persistence", "loading") == "0", s_wait), "the start-up rewrite");
        }
        long[] rewritesBefore = [long.Parse(ServerInfo.Field(r, "persistence", "aof_rewrites")), long.Parse(ServerInfo.Field(k, "persistence", "aof_rewrites"))];

        string[][] script =
        [
            ["SET", "k", "v"],
            ["MULTI"], ["SET", "a", "1"], ["BGSAVE"], ["BGREWRITEAOF"], ["BGSAVE", "SCHEDULE"], ["INCR", "a"], ["EXEC"],
            ["MULTI"], ["BGSAVE", "NOSUCHARG"], ["EXEC"],
            ["GET", "a"],
        ];
        var diffs = new List<string>();
        foreach (string[] cmd in script)
        {
            string rr = r.Call(cmd).ToString(), kr = k.Call(cmd).ToString();
            if (rr != kr) diffs.Add($"{string.Join(' ', cmd)}: redis {rr} kv {kr}");
        }
        Assert.True(diffs.Count == 0, string.Join("\n", diffs));

        // "scheduled" means it runs: both servers write the dump and finish one more rewrite.
        var servers = new[] { (Conn: r, Dir: redis.Dir, Name: "redis-server"), (Conn: k, Dir: kv.DataDir, Name: "EioSharp.Kv") };
        for (int i = 0; i < servers.Length; i++)
        {
            var (c, dir, name) = servers[i];
            long before = rewritesBefore[i];
            Assert.True(Poll.Until(() => File.Exists(Path.Combine(dir, "dump.rdb"))
                && ServerInfo.Field(c, "persistence", "rdb_bgsave_in_progress") == "0"
                && long.Parse(ServerInfo.Field(c, "persistence", "aof_rewrites")) > before
                && ServerInfo.Field(c, "persistence", "aof_rewrite_in_progress") == "0", s_wait),
                $"{name}: the scheduled BGSAVE and BGREWRITEAOF did not run");
            Assert.Equal("ok", ServerInfo.Field(c, "persistence", "rdb_last_bgsave_status"));
        }
    }
}
