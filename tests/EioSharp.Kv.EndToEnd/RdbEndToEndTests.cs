using System.Globalization;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

public sealed partial class KvServerProcess
{
    /// <summary>Starts a server on <paramref name="dataDir"/> whose every BGSAVE waits <paramref name="delay"/> before
    /// writing (EIOSHARP_KV_TEST_BGSAVE_DELAY_MS) and waits until it listens.</summary>
    public static KvServerProcess StartWithBgSaveDelay(string dataDir, TimeSpan delay, params string[] extraArgs) =>
        new(dataDir, null, ServerProcess.Start(Info(dataDir, extraArgs) with
        {
            Environment = new Dictionary<string, string?> { ["EIOSHARP_KV_TEST_BGSAVE_DELAY_MS"] = ((int)delay.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) },
        }));
}

/// <summary>RDB files: SAVE/BGSAVE output read by redis-check-rdb and redis-server 7.0, redis-server's dump.rdb loaded at
/// start, BGSAVE's snapshot, the save points, SHUTDOWN SAVE/NOSAVE, corrupt files, LASTSAVE and INFO persistence.</summary>
public sealed class RdbEndToEndTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    /// <summary>A seeded random dataset over every type, four databases, values under and over the listpack thresholds
    /// (long lists, big hashes, sets of integers and of strings, long strings that redis compresses with LZF), integer
    /// strings, TTLs, streams with deleted entries, consumer groups, consumers and pending entries.</summary>
    internal static List<string[]> Dataset(int seed)
    {
        var r = new Random(seed);
        var commands = new List<string[]>();
        string V() => r.Next(6) switch
        {
            0 => r.Next(-200000, 200000).ToString(CultureInfo.InvariantCulture),
            1 => new string((char)('a' + r.Next(3)), r.Next(30, 3000)),
            2 => "",
            3 => "12345678901",
            _ => "v" + r.Next(1000),
        };
        for (int db = 0; db < 4; db++)
        {
            commands.Add(["SELECT", db.ToString(CultureInfo.InvariantCulture)]);
            for (int i = 0; i < 30; i++)
            {
                string key = $"k{db}:{i}";
                bool large = r.Next(4) == 0;
                int n = large ? r.Next(130, 1200) : r.Next(1, 20);
                switch (r.Next(6))
                {
                    case 0:
                        commands.Add(["SET", key, V()]);
                        break;
                    case 1:
                        for (int j = 0; j < n; j++) commands.Add(["RPUSH", key, V()]);
                        break;
                    case 2:
                        bool ints = r.Next(2) == 0;
                        for (int j = 0; j < n; j++) commands.Add(["SADD", key, ints ? r.Next(-100000, 100000).ToString(CultureInfo.InvariantCulture) : V() + j]);
                        break;
                    case 3:
                        for (int j = 0; j < n; j++)
                        {
                            string score = r.Next(10) switch
                            {
                                0 => "inf",
                                1 => "-inf",
                                _ => (r.NextDouble() * 2000 - 1000).ToString("R", CultureInfo.InvariantCulture),
                            };
                            commands.Add(["ZADD", key, score, "m" + j + V()]);
                        }
                        break;
                    case 4:
                        for (int j = 0; j < n; j++) commands.Add(["HSET", key, "f" + j, V()]);
                        break;
                    default:
                        int entries = large ? r.Next(150, 300) : r.Next(2, 12);
                        for (int j = 1; j <= entries; j++)
                        {
                            string id = $"{1000 + j / 3}-{j % 3}";
                            commands.Add(r.Next(3) == 0 ? ["XADD", key, id, "a", V(), "b", V()] : ["XADD", key, id, "f" + r.Next(3), V()]);
                        }
                        if (r.Next(2) == 0) commands.Add(["XDEL", key, "1000-1"]);
                        if (r.Next(3) > 0)
                        {
                            commands.Add(["XGROUP", "CREATE", key, "g1", "0"]);
                            commands.Add(["XREADGROUP", "GROUP", "g1", "alice", "COUNT", r.Next(1, 6).ToString(CultureInfo.InvariantCulture), "STREAMS", key, ">"]);
                            commands.Add(["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", key, ">"]);
                            commands.Add(["XGROUP", "CREATECONSUMER", key, "g1", "carol"]);
                            commands.Add(["XGROUP", "CREATE", key, "g2", "$"]);
                        }
                        break;
                }
                if (r.Next(4) == 0) commands.Add(["PEXPIRE", key, (100_000 + r.Next(1_000_000)).ToString(CultureInfo.InvariantCulture)]);
            }
        }
        commands.Add(["SELECT", "0"]);
        return commands;
    }

    internal static void Apply(RespConnection c, List<string[]> commands)
    {
        foreach (string[][] chunk in commands.Chunk(500))
        {
            foreach (Resp reply in c.Pipeline(chunk))
            {
                Assert.False(reply.IsError, reply.ToString());
            }
        }
    }

    /// <summary>The per-type comparison of the differential tests, and the streams' pending entries (consumer, delivery count).</summary>
    internal static void Compare(RespConnection redis, RespConnection kv, string label)
    {
        DiffRunner.CompareState(redis, kv, label, compareEncoding: false);
        for (int db = 0; db < 4; db++)
        {
            string d = db.ToString(CultureInfo.InvariantCulture);
            redis.Call("SELECT", d);
            kv.Call("SELECT", d);
            foreach (string? key in redis.Call("KEYS", "*").Strings)
            {
                if (redis.Call("TYPE", key!).Text != "stream") continue;
                foreach (Resp g in redis.Call("XINFO", "GROUPS", key!).Items!)
                {
                    string group = g.Items![1].Text!;
                    Assert.Equal(redis.Call("XPENDING", key!, group).ToString(), kv.Call("XPENDING", key!, group).ToString());
                    string Pending(RespConnection c) => string.Join(";", c.Call("XPENDING", key!, group, "-", "+", "1000").Items!
                        .Select(p => $"{p.Items![0].Text} {p.Items[1].Text} {p.Items[3].Text}"));
                    Assert.Equal(Pending(redis), Pending(kv));
                }
            }
        }
        redis.Call("SELECT", "0");
        kv.Call("SELECT", "0");
    }

    private static string Info(RespConnection c, string field) => ServerInfo.Field(c, "persistence", field);

    private static void WaitFor(Func<bool> condition, string what) =>
        Assert.True(Poll.Until(condition, s_wait), "timed out waiting for " + what);

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public void Kv_SAVE_is_accepted_by_redis_check_rdb_and_redis_server_loads_the_same_data(int seed)
    {
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var k = new RespConnection(kv.Port);
        Apply(k, Dataset(seed));
        Assert.Equal("+OK", k.Call("SAVE").ToString());
        string file = Path.Combine(kv.DataDir, "dump.rdb");
        using var dir = new TempDir();
        using var redis = CheckAndLoadInRedis(file, dir);
        using var r = new RespConnection(redis.Port);
        Assert.NotEqual("0", r.Call("DBSIZE").ToString().TrimStart(':'));
        Compare(r, k, $"redis-server loading EioSharp.Kv's dump.rdb (seed {seed})");
    }

    /// <summary>A keyspace of incompressible 1 KB values (redis-benchmark's kind) with compressible ones among them: Kv's
    /// BGSAVE writer samples LZF (most incompressible values written raw without trying, h176), redis-check-rdb accepts the file
    /// and redis-server 7.0 loads the same data.</summary>
    [Fact]
    public void Kv_BGSAVE_with_values_written_raw_by_sampling_is_loaded_by_redis_server()
    {
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var k = new RespConnection(kv.Port);
        var r0 = new Random(176);
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        var commands = new List<string[]>();
        for (int i = 0; i < 1500; i++)
        {
            string value = i % 40 == 0
                ? string.Concat(Enumerable.Repeat($"text {i} compresses, ", 60))[..1024]
                : new string(Enumerable.Range(0, 1024).Select(_ => Alphabet[r0.Next(64)]).ToArray());
            commands.Add(["SET", "key:" + i, value]);
        }
        Apply(k, commands);
        Assert.Equal("Background saving started", k.Call("BGSAVE").Text);
        WaitFor(() => Info(k, "rdb_bgsave_in_progress") == "0", "the BGSAVE to finish");
        Assert.Equal("ok", Info(k, "rdb_last_bgsave_status"));
        // The lease's counts reach the store's totals when the writer's fiber ends it, just after the status is set.
        WaitFor(() => System.Text.RegularExpressions.Regex.IsMatch(k.Call("MEMORY", "MALLOC-STATS").Text ?? "",
            @"written raw by sampling \(the tries before them incompressible\): [1-9]"), "values written raw by sampling");
        string file = Path.Combine(kv.DataDir, "dump.rdb");
        using var dir = new TempDir();
        using var redis = CheckAndLoadInRedis(file, dir);
        using var r = new RespConnection(redis.Port);
        Assert.Equal(":1500", r.Call("DBSIZE").ToString());
        Compare(r, k, "redis-server loading EioSharp.Kv's dump.rdb with sampled LZF");
    }

    /// <summary>redis-check-rdb accepts <paramref name="file"/> (an RDB file Kv wrote), and a redis-server 7.0 started on a
    /// copy of it in <paramref name="dir"/> (the caller disposes both).</summary>
    private static RedisServerProcess CheckAndLoadInRedis(string file, TempDir dir)
    {
        var check = Tools.Run("redis-check-rdb", [file], timeout: s_wait);
        Assert.True(check.ExitCode == 0 && check.Output.Contains("RDB looks OK", StringComparison.Ordinal), check.Output);
        File.Copy(file, Path.Combine(dir.Path, "dump.rdb"));
        return RedisServerProcess.Start("--dir", dir.Path, "--dbfilename", "dump.rdb");
    }

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public void Redis_server_SAVE_loads_in_Kv_at_start_with_the_same_data(int seed)
    {
        using var rdir = new TempDir();
        using var redis = RedisServerProcess.Start("--dir", rdir.Path);
        using var r = new RespConnection(redis.Port);
        Apply(r, Dataset(seed));
        r.Call("SET", "lzf", new string('z', 5000)); // compressed by redis (rdbcompression yes)
        r.Call("RPUSH", "bigelem", new string('p', 20000), "x"); // an element over list-max-listpack-size
        Assert.Equal("OK", r.Call("SAVE").Text);

        using var kdir = new TempDir();
        Directory.CreateDirectory(kdir.DataDir);
        File.Copy(Path.Combine(rdir.Path, "dump.rdb"), Path.Combine(kdir.DataDir, "dump.rdb"));
        using var kv = KvServerProcess.StartIn(kdir.DataDir, "--appendonly", "no");
        using var k = new RespConnection(kv.Port);
        Compare(r, k, $"EioSharp.Kv loading redis-server's dump.rdb (seed {seed})");
        Assert.Equal(r.Call("DBSIZE").ToString(), k.Call("DBSIZE").ToString());
        Assert.NotEqual("0", Info(k, "rdb_last_load_keys_loaded"));
    }

    [Fact]
    public void BGSAVE_writes_the_state_at_the_time_of_the_command_as_redis_fork_does()
    {
        // The same pipeline on both servers: BGSAVE, then writes. redis-server's child has the memory of the fork: the
        // writes after BGSAVE are not in its file. EioSharp.Kv's snapshot is taken when BGSAVE runs: the same.
        using var kdir = new TempDir();
        Directory.CreateDirectory(kdir.DataDir);
        using var kv = KvServerProcess.StartWithBgSaveDelay(kdir.DataDir, TimeSpan.FromSeconds(1.5), "--appendonly", "no");
        using var rdir = new TempDir();
        using var redis = RedisServerProcess.Start("--dir", rdir.Path);
        foreach ((RespConnection c, string dataDir, bool isKv) in new[] { (new RespConnection(kv.Port), kdir.DataDir, true), (new RespConnection(redis.Port), rdir.Path, false) })
        {
            using (c)
            {
                var preload = Enumerable.Range(0, 2000).Select(i => new[] { "SET", "pre" + i, "v" + i }).ToList();
                Apply(c, preload);
                List<Resp> replies = c.Pipeline([["BGSAVE"], ["SET", "after", "1"], ["DEL", "pre0"], ["SET", "pre1", "changed"]]);
                Assert.Equal("+Background saving started", replies[0].ToString());

                // Other clients keep writing while the file is written.
                using (var writer = new RespConnection(isKv ? kv.Port : redis.Port))
                {
                    for (int i = 0; i < 200; i++) writer.Call("SET", "w" + i, "x");
                }
                if (isKv)
                {
                    Assert.Equal("1", Info(c, "rdb_bgsave_in_progress"));
                    Assert.Equal("-ERR Background save already in progress", c.Call("BGSAVE").ToString());
                    Assert.Equal("-ERR Background save already in progress", c.Call("SAVE").ToString());
                }
                WaitFor(() => Info(c, "rdb_bgsave_in_progress") == "0", "the BGSAVE to finish");
                Assert.Equal("ok", Info(c, "rdb_last_bgsave_status"));

                // What the file holds: load it in a fresh redis-server.
                using var copy = new TempDir();
                File.Copy(Path.Combine(dataDir, "dump.rdb"), Path.Combine(copy.Path, "dump.rdb"));
                using var loaded = RedisServerProcess.Start("--dir", copy.Path);
                using var l = new RespConnection(loaded.Port);
                string who = isKv ? "EioSharp.Kv" : "redis-server";
                Assert.True(l.Call("DBSIZE").Text == "2000", $"{who}: {l.Call("DBSIZE")} keys in the file");
                Assert.True(l.Call("EXISTS", "after").Text == "0", $"{who}: a key written after BGSAVE is in the file");
                Assert.Equal("v0", l.Call("GET", "pre0").Text);
                Assert.Equal("v1", l.Call("GET", "pre1").Text);
                Assert.Equal("0", l.Call("EXISTS", "w0").Text);
            }
        }
    }

    /// <summary>BGSAVE's file follows <c>rdbcompression</c> and carries <c>aof-base 0</c>, as SAVE's and redis-server's do:
    /// a BGSAVE once passed its settings by position, so <c>rdbcompression</c> set the aof-base field and <c>rdbchecksum</c>
    /// switched compression.</summary>
    [Theory]
    [InlineData("no")]
    [InlineData("yes")]
    public void BGSAVE_follows_rdbcompression_and_writes_aof_base_0(string compression)
    {
        using var kv = KvServerProcess.Start("--appendonly", "no", "--rdbcompression", compression, "--rdbchecksum", "no");
        using var c = new RespConnection(kv.Port);
        string value = new('z', 5000);
        Assert.Equal("+OK", c.Call("SET", "k", value).ToString());
        Assert.Equal("+Background saving started", c.Call("BGSAVE").ToString());
        WaitFor(() => Info(c, "rdb_saves") == "1", "the BGSAVE");
        Assert.Equal("ok", Info(c, "rdb_last_bgsave_status"));
        byte[] file = File.ReadAllBytes(Path.Combine(kv.DataDir, "dump.rdb"));
        bool rawRun = file.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(value)) >= 0;
        Assert.True(rawRun == (compression == "no"), $"rdbcompression {compression}: the 5000-byte run is {(rawRun ? "" : "not ")}in the file");
        Assert.True(file.AsSpan().IndexOf((byte[])[.. "aof-base"u8, 0xC0, 0x00]) >= 0, "aof-base 0 (an 8-bit integer 0) in the file");
    }

    [Fact]
    public void BGSAVE_while_an_AOF_rewrite_runs_is_refused_or_scheduled()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.DataDir);
        using var kv = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(2));
        using var c = new RespConnection(kv.Port);
        c.Call("SET", "k", "v");
        Assert.Equal("+Background append only file rewriting started", c.Call("BGREWRITEAOF").ToString());
        WaitFor(() => c.Call("INFO", "persistence").Text!.Contains("aof_rewrite_in_progress:1", StringComparison.Ordinal), "the rewrite to start");
        Assert.Equal("-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
            c.Call("BGSAVE").ToString());
        Assert.Equal("+Background saving scheduled", c.Call("BGSAVE", "SCHEDULE").ToString());
        Assert.Equal("-ERR syntax error", c.Call("BGSAVE", "NOW").ToString());
        WaitFor(() => Info(c, "rdb_saves") == "1", "the scheduled BGSAVE");
        Assert.True(File.Exists(Path.Combine(dir.DataDir, "dump.rdb")));
    }

    [Fact]
    public void LASTSAVE_and_INFO_persistence_follow_SAVE_and_BGSAVE()
    {
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var c = new RespConnection(kv.Port);
        long start = long.Parse(c.Call("LASTSAVE").Text!, CultureInfo.InvariantCulture);
        Assert.Equal("0", Info(c, "rdb_changes_since_last_save"));
        Assert.Equal("-1", Info(c, "rdb_last_bgsave_time_sec"));
        Assert.Equal("-1", Info(c, "rdb_current_bgsave_time_sec"));
        Assert.Equal("0", Info(c, "rdb_saves"));
        c.Call("SET", "a", "1");
        c.Call("SET", "b", "1");
        c.Call("INCR", "a");
        WaitFor(() => Info(c, "rdb_changes_since_last_save") == "3", "3 changes counted");
        Thread.Sleep(1100);
        Assert.Equal("+OK", c.Call("SAVE").ToString());
        long afterSave = long.Parse(c.Call("LASTSAVE").Text!, CultureInfo.InvariantCulture);
        Assert.True(afterSave > start, $"LASTSAVE {afterSave} after SAVE, {start} before");
        Assert.Equal(afterSave.ToString(CultureInfo.InvariantCulture), Info(c, "rdb_last_save_time"));
        WaitFor(() => Info(c, "rdb_changes_since_last_save") == "0", "the counter reset by SAVE");
        Assert.Equal("1", Info(c, "rdb_saves"));
        c.Call("SET", "c", "1");
        Thread.Sleep(1100);
        Assert.Equal("+Background saving started", c.Call("BGSAVE").ToString());
        WaitFor(() => Info(c, "rdb_saves") == "2", "the BGSAVE");
        Assert.Equal("ok", Info(c, "rdb_last_bgsave_status"));
        Assert.Equal("0", Info(c, "rdb_last_bgsave_time_sec"));
        Assert.True(long.Parse(c.Call("LASTSAVE").Text!, CultureInfo.InvariantCulture) > afterSave);
        WaitFor(() => Info(c, "rdb_changes_since_last_save") == "0", "the counter reset by BGSAVE");
        Assert.Equal("dump.rdb", c.Call("CONFIG", "GET", "dbfilename").Items![1].Text);
    }

    [Fact]
    public void Save_points_start_a_BGSAVE_and_a_failed_one_is_reported()
    {
        using var kv = KvServerProcess.Start("--appendonly", "no", "--save", "1 2");
        using var c = new RespConnection(kv.Port);
        Assert.Equal("1 2", c.Call("CONFIG", "GET", "save").Items![1].Text);
        c.Call("SET", "a", "1");
        Thread.Sleep(2500);
        Assert.Equal("0", Info(c, "rdb_saves")); // one change: under the save point
        c.Call("SET", "b", "1");
        WaitFor(() => Info(c, "rdb_saves") == "1", "the save point's BGSAVE");
        Assert.True(File.Exists(Path.Combine(kv.DataDir, "dump.rdb")));
        Assert.Equal("+OK", c.Call("CONFIG", "SET", "save", "").ToString());
        c.Call("SET", "c", "1");
        c.Call("SET", "d", "1");
        Thread.Sleep(2500);
        Assert.Equal("1", Info(c, "rdb_saves"));
    }

    [Fact]
    public void SHUTDOWN_SAVE_and_NOSAVE_and_SIGTERM_with_save_points()
    {
        using (var dir = new TempDir())
        {
            using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no"))
            {
                using var c = new RespConnection(kv.Port);
                c.Call("SET", "k", "saved");
                c.Call("RPUSH", "l", "a", "b");
                try
                {
                    c.Call("SHUTDOWN", "SAVE");
                }
                catch (Exception e) when (e is IOException or EndOfStreamException or System.Net.Sockets.SocketException)
                {
                }
                Assert.Equal(0, kv.WaitForExit(s_wait));
            }
            Assert.True(File.Exists(Path.Combine(dir.DataDir, "dump.rdb")), "SHUTDOWN SAVE wrote no dump.rdb");
            using var again = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no");
            using var c2 = new RespConnection(again.Port);
            Assert.Equal("saved", c2.Call("GET", "k").Text);
            Assert.Equal("2", c2.Call("LLEN", "l").Text);
            Assert.Equal("2", Info(c2, "rdb_last_load_keys_loaded"));
        }

        using (var dir = new TempDir())
        {
            using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no", "--save", "3600 1"))
            {
                using var c = new RespConnection(kv.Port);
                c.Call("SET", "k", "v");
                try
                {
                    c.Call("SHUTDOWN", "NOSAVE");
                }
                catch (Exception e) when (e is IOException or EndOfStreamException or System.Net.Sockets.SocketException)
                {
                }
                Assert.Equal(0, kv.WaitForExit(s_wait));
            }
            Assert.False(File.Exists(Path.Combine(dir.DataDir, "dump.rdb")), "SHUTDOWN NOSAVE wrote a dump.rdb");
        }

        using (var dir = new TempDir())
        {
            using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no", "--save", "3600 1"))
            {
                using var c = new RespConnection(kv.Port);
                c.Call("SET", "k", "v");
                Assert.Equal(0, kv.Terminate());
            }
            Assert.True(File.Exists(Path.Combine(dir.DataDir, "dump.rdb")), "SIGTERM with save points wrote no dump.rdb");
        }
    }

    [Fact]
    public void A_corrupt_or_truncated_dump_refuses_to_start_with_a_clear_error_as_redis_server_does()
    {
        using var source = KvServerProcess.Start("--appendonly", "no");
        using (var c = new RespConnection(source.Port))
        {
            Apply(c, Dataset(31));
            Assert.Equal("+OK", c.Call("SAVE").ToString());
        }
        byte[] good = File.ReadAllBytes(Path.Combine(source.DataDir, "dump.rdb"));
        byte[] flipped = (byte[])good.Clone();
        flipped[good.Length / 2] ^= 0x10;
        foreach ((string name, byte[] bytes, string expected) in new[]
        {
            ("truncated", good[..(good.Length / 2)], "Bad RDB file"),
            ("flipped byte", flipped, "checksum"),
            ("not an rdb", "hello world, not a dump"u8.ToArray(), "Wrong signature"),
        })
        {
            using var dir = new TempDir();
            Directory.CreateDirectory(dir.DataDir);
            File.WriteAllBytes(Path.Combine(dir.DataDir, "dump.rdb"), bytes);
            (int exit, string output) = KvServerProcess.RunExpectingExit(dir.DataDir, s_wait, "--appendonly", "no");
            Assert.True(exit == 1, $"{name}: exit {exit}\n{output}");
            Assert.Contains("FATAL", output, StringComparison.Ordinal);
            Assert.Contains(expected, output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // no stack trace
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir.DataDir, "dump.rdb"))); // left as it was

            // redis-server refuses the same file too (exit 1).
            var redis = Tools.Run("redis-server", ["--port", RedisServerProcess.FreePort().ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                "--dir", dir.DataDir, "--save", "", "--appendonly", "no"], timeout: s_wait);
            Assert.True(redis.ExitCode == 1, $"{name}: redis-server exit {redis.ExitCode}\n{redis.Output}");
        }
    }

    [Fact]
    public void With_appendonly_yes_and_no_AOF_the_dump_is_loaded_and_kept_in_the_new_AOF()
    {
        using var rdir = new TempDir();
        using (var redis = RedisServerProcess.Start("--dir", rdir.Path))
        {
            using var r = new RespConnection(redis.Port);
            r.Call("SET", "from-redis", "yes");
            r.Call("HSET", "h", "f", "v");
            Assert.Equal("OK", r.Call("SAVE").Text);
        }
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.DataDir);
        File.Copy(Path.Combine(rdir.Path, "dump.rdb"), Path.Combine(dir.DataDir, "dump.rdb"));
        using (var kv = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespConnection(kv.Port);
            Assert.Equal("yes", c.Call("GET", "from-redis").Text);
            c.Call("SET", "after", "1");
            Assert.Equal(0, kv.Terminate());
        }
        File.Delete(Path.Combine(dir.DataDir, "dump.rdb"));
        using (var kv = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespConnection(kv.Port);
            Assert.Equal("yes", c.Call("GET", "from-redis").Text);
            Assert.Equal("v", c.Call("HGET", "h", "f").Text);
            Assert.Equal("1", c.Call("GET", "after").Text);
        }
    }

    [Fact]
    public void Commands_get_LOADING_while_the_dump_loads()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.DataDir);
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no"))
        {
            using var c = new RespConnection(kv.Port);
            c.Call("SET", "k", "v");
            Assert.Equal("+OK", c.Call("SAVE").ToString());
        }
        using var slow = KvServerProcess.StartLoading(dir.DataDir, TimeSpan.FromSeconds(2), "--appendonly", "no");
        using var p = new RespConnection(slow.Port);
        Assert.Equal("-LOADING Redis is loading the dataset in memory", p.Call("GET", "k").ToString());
        Assert.Contains("loading:1", p.Call("INFO", "persistence").Text!, StringComparison.Ordinal);
        WaitFor(() => !p.Call("GET", "k").IsError, "the load to finish");
        Assert.Equal("v", p.Call("GET", "k").Text);
    }
}
