using EioSharp.TestKit;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>BGREWRITEAOF with appendonly no: redis-server 7.0.15 still rewrites: it writes a new base file into the AOF
/// directory and a manifest naming only it (no incremental file: nothing is appended), and counts it in INFO
/// (aof_rewrites, aof_last_bgrewrite_status). Compared with redis-server: the replies, the directory's file names and the
/// manifest text, twice in a row (the second base replaces the first); then a server started with appendonly yes on each
/// directory loads the keys from it.</summary>
public sealed class BgRewriteAofWhileOffDiffTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    [Fact]
    public void Bgrewriteaof_with_appendonly_no_writes_a_base_and_a_manifest_as_redis()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        Directory.CreateDirectory(redisDir.DataDir);
        Directory.CreateDirectory(kvDir.DataDir);
        var snapshots = new List<string>[2];
        using (var redis = RedisServerProcess.Start("--dir", redisDir.DataDir))
        using (var kv = KvServerProcess.StartIn(kvDir.DataDir, "--appendonly", "no"))
        using (var r = new RespConnection(redis.Port))
        using (var k = new RespConnection(kv.Port))
        {
            var servers = new[] { (Conn: r, Dir: redisDir.DataDir), (Conn: k, Dir: kvDir.DataDir) };
            for (int i = 0; i < 2; i++)
            {
                snapshots[i] = [];
            }

            for (int round = 1; round <= 2; round++)
            {
                for (int i = 0; i < servers.Length; i++)
                {
                    var (c, dir) = servers[i];
                    Assert.Equal("OK", c.Call("SET", "k" + round, "v" + round).Text);
                    Assert.Equal("Background append only file rewriting started", c.Call("BGREWRITEAOF").Text);
                    Assert.True(Poll.Until(() => ServerInfo.Field(c, "persistence", "aof_rewrites") == round.ToString()
                        && ServerInfo.Field(c, "persistence", "aof_rewrite_in_progress") == "0", s_wait), $"rewrite {round} on server {i}");
                    Assert.Equal("ok", ServerInfo.Field(c, "persistence", "aof_last_bgrewrite_status"));
                    Assert.Equal("0", ServerInfo.Field(c, "persistence", "aof_enabled"));
                    string aofDir = Path.Combine(dir, "appendonlydir");
                    var names = Directory.GetFiles(aofDir).Select(Path.GetFileName).Order(StringComparer.Ordinal);
                    snapshots[i].Add(string.Join(",", names) + " | " + File.ReadAllText(Path.Combine(aofDir, "appendonly.aof.manifest")));
                }
            }
        }

        Assert.Equal(snapshots[0], snapshots[1]);
        Assert.Contains("appendonly.aof.2.base.rdb", snapshots[1][1]);

        // Each directory holds the keyspace: a server started with appendonly yes on it loads both keys.
        using (var kv = KvServerProcess.StartIn(kvDir.DataDir, "--appendonly", "yes"))
        using (var k = new RespConnection(kv.Port))
        {
            Assert.Equal("v1", k.Call("GET", "k1").Text);
            Assert.Equal("v2", k.Call("GET", "k2").Text);
        }

        using (var redis = RedisServerProcess.Start("--dir", kvDir.DataDir, "--appendonly", "yes"))
        using (var r = new RespConnection(redis.Port))
        {
            Assert.Equal("v2", r.Call("GET", "k2").Text);
        }
    }
}
