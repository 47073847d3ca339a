using System.Globalization;
using System.Text;
using EioSharp.Kv.EndToEnd.Differential;
using Xunit.Abstractions;
using static EioSharp.Kv.EndToEnd.Tools;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Redis 7's multi-part AOF (issue 13/14, branch h53): the directory, manifest and file names as redis-server
/// 7.0.15 writes them, rewrite and history files, the upgrade of a single pre-7 appendonly.aof, aof-load-truncated,
/// aof-timestamp-enabled, aof-use-rdb-preamble, aof-disable-auto-gc, no-appendfsync-on-rewrite,
/// aof-rewrite-incremental-fsync, and both directions of interoperation with redis-server.</summary>
public sealed class MultiPartAofTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    private static string Info(RespConnection c, string field) => ServerInfo.Field(c, "persistence", field);

    private static void WaitFor(Func<bool> condition, string what) =>
        Assert.True(Poll.Until(condition, s_wait), "timed out waiting for " + what);

    /// <summary>BGREWRITEAOF, then waits until the rewrite has landed (the manifest names base <paramref name="baseSeq"/>).</summary>
    private static void Rewrite(RespConnection c, string dataDir, int baseSeq)
    {
        Assert.StartsWith("Background append only file rewriting", c.Call("BGREWRITEAOF").Text, StringComparison.Ordinal);
        WaitFor(() => Info(c, "aof_rewrite_in_progress") == "0" && Info(c, "aof_rewrite_scheduled") == "0"
            && AofFiles.Listed(dataDir).Any(l => l.Type == 'b' && l.Name.StartsWith($"appendonly.aof.{baseSeq}.base.", StringComparison.Ordinal)), "the rewrite to land");
    }

    private static string Manifest(string dataDir) => File.ReadAllText(AofFiles.Manifest(dataDir));

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }
    }

    [Theory]
    [InlineData("yes", "rdb")]
    [InlineData("no", "aof")]
    public void A_rewrite_opens_a_new_incr_file_then_lands_a_new_base_and_removes_the_history(string preamble, string format)
    {
        using var kv = KvServerProcess.Start("--appendonly", "yes", "--aof-use-rdb-preamble", preamble);
        using var c = new RespConnection(kv.Port);
        // On an empty start: base 1 (written from the empty keyspace) and incr 1, as redis-server 7.0 does.
        Assert.Equal($"file appendonly.aof.1.base.{format} seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n", Manifest(kv.DataDir));
        for (int i = 0; i < 50; i++) Assert.Equal("+OK", c.Call("SET", "k" + i, "v" + i).ToString());
        Assert.Equal(":3", c.Call("RPUSH", "list", "a", "b", "c").ToString());
        Rewrite(c, kv.DataDir, 2);
        Assert.Equal("+OK", c.Call("SET", "after", "1").ToString());
        // The history (base 1, incr 1) is gone from the manifest and the directory.
        Assert.Equal($"file appendonly.aof.2.base.{format} seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n", Manifest(kv.DataDir));
        WaitFor(() => Directory.GetFiles(AofFiles.Dir(kv.DataDir)).Length == 3, "the history files to be removed");
        string baseFile = AofFiles.BasePart(kv.DataDir);
        byte[] head = File.ReadAllBytes(baseFile)[..5];
        Assert.Equal(preamble == "yes" ? "REDIS" : "*2\r\n$", Encoding.ASCII.GetString(head));
        Assert.Contains("after", File.ReadAllText(AofFiles.LastPart(kv.DataDir)), StringComparison.Ordinal);
        Assert.DoesNotContain("k1", File.ReadAllText(AofFiles.LastPart(kv.DataDir)), StringComparison.Ordinal); // the keys before are in the base only
        Assert.Equal("1", Info(c, "aof_rewrites"));
        long onDisk = new FileInfo(baseFile).Length + AofFiles.CommandBytes(AofFiles.LastPart(kv.DataDir)); // without the mapped tail's zeros
        Assert.Equal(onDisk.ToString(CultureInfo.InvariantCulture), WaitValue(c, "aof_current_size", onDisk));
        Assert.Equal(0, kv.Terminate());
        var check = CheckAof(AofFiles.Manifest(kv.DataDir));
        Assert.True(check.ExitCode == 0, check.Output);

        using var again = KvServerProcess.StartIn(kv.DataDir, "--appendonly", "yes");
        using var c2 = new RespConnection(again.Port);
        Assert.Equal(":52", c2.Call("DBSIZE").ToString());
        Assert.Equal("$\"v49\"", c2.Call("GET", "k49").ToString());
        Assert.Equal("*[$\"a\", $\"b\", $\"c\"]", c2.Call("LRANGE", "list", "0", "-1").ToString());
        Assert.Contains("Opening AOF incr file appendonly.aof.2.incr.aof on server start", again.Log, StringComparison.Ordinal);
    }

    private static string WaitValue(RespConnection c, string field, long expected)
    {
        string text = expected.ToString(CultureInfo.InvariantCulture);
        var deadline = DateTime.UtcNow + s_wait;
        while (Info(c, field) != text && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(50); // INFO's sizes are refreshed by the cron (every 100 ms)
        }

        return Info(c, field);
    }

    /// <summary>The same steps on redis-server 7.0.15 and Kv give the same manifests: the history kept under
    /// aof-disable-auto-gc yes (newest first, as redis lists it), then removed when it is set back to no.</summary>
    [Fact]
    public void Aof_disable_auto_gc_keeps_history_files_until_it_is_set_back_to_no_as_redis_server()
    {
        using var kv = KvServerProcess.Start("--appendonly", "yes", "--aof-disable-auto-gc", "yes");
        using var redis = RedisServerProcess.Start("--appendonly", "yes", "--aof-disable-auto-gc", "yes");
        using var c = new RespConnection(kv.Port);
        using var r = new RespConnection(redis.Port);
        string RedisManifest() => File.ReadAllText(Path.Combine(redis.Directory, "appendonlydir", "appendonly.aof.manifest"));
        foreach (var (key, seq) in new[] { ("a", 2), ("b", 3) })
        {
            Assert.Equal("+OK", c.Call("SET", key, "1").ToString());
            Assert.Equal("+OK", r.Call("SET", key, "1").ToString());
            Rewrite(c, kv.DataDir, seq);
            Assert.StartsWith("Background append only file rewriting", r.Call("BGREWRITEAOF").Text, StringComparison.Ordinal);
            WaitFor(() => Info(r, "aof_rewrite_in_progress") == "0" && RedisManifest().Contains($".{seq}.base.", StringComparison.Ordinal), "redis-server's rewrite");
        }

        Assert.Equal("file appendonly.aof.3.base.rdb seq 3 type b\n" +
                     "file appendonly.aof.2.incr.aof seq 2 type h\n" +
                     "file appendonly.aof.2.base.rdb seq 2 type h\n" +
                     "file appendonly.aof.1.incr.aof seq 1 type h\n" +
                     "file appendonly.aof.1.base.rdb seq 1 type h\n" +
                     "file appendonly.aof.3.incr.aof seq 3 type i\n", Manifest(kv.DataDir));
        Assert.Equal(RedisManifest(), Manifest(kv.DataDir));
        Assert.Equal(7, Directory.GetFiles(AofFiles.Dir(kv.DataDir)).Length);
        Assert.Equal("+OK", c.Call("CONFIG", "SET", "aof-disable-auto-gc", "no").ToString());
        Assert.Equal("+OK", r.Call("CONFIG", "SET", "aof-disable-auto-gc", "no").ToString());
        WaitFor(() => Directory.GetFiles(AofFiles.Dir(kv.DataDir)).Length == 3, "the history files to be removed");
        Assert.Equal("file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n", Manifest(kv.DataDir));
        WaitFor(() => RedisManifest() == Manifest(kv.DataDir), "redis-server's manifest without history");
        Assert.Equal(0, kv.Terminate());
        var check = CheckAof(AofFiles.Manifest(kv.DataDir));
        Assert.True(check.ExitCode == 0, check.Output);
    }

    [Fact]
    public void Aof_timestamp_enabled_writes_TS_annotations_that_load_and_pass_redis_check_aof()
    {
        using var kv = KvServerProcess.Start("--appendonly", "yes", "--aof-timestamp-enabled", "yes", "--aof-use-rdb-preamble", "no", "--appendfsync", "always");
        using var c = new RespConnection(kv.Port);
        long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.Equal("+OK", c.Call("SET", "a", "1").ToString());
        Assert.Equal("+OK", c.Call("SET", "b", "2").ToString()); // the same second, most likely: at most one more annotation
        string incr = File.ReadAllText(AofFiles.LastPart(kv.DataDir));
        Assert.StartsWith("#TS:", incr, StringComparison.Ordinal);
        long ts = long.Parse(incr[4..incr.IndexOf('\r', StringComparison.Ordinal)], CultureInfo.InvariantCulture);
        Assert.InRange(ts, before, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Rewrite(c, kv.DataDir, 2);
        Assert.StartsWith("#TS:", File.ReadAllText(AofFiles.BasePart(kv.DataDir)), StringComparison.Ordinal); // an AOF base starts with one
        Thread.Sleep(1100);
        Assert.Equal("+OK", c.Call("SET", "c", "3").ToString());
        Assert.StartsWith("#TS:", File.ReadAllText(AofFiles.LastPart(kv.DataDir)), StringComparison.Ordinal);
        Assert.Equal("+OK", c.Call("CONFIG", "SET", "aof-timestamp-enabled", "no").ToString());
        Thread.Sleep(1100);
        Assert.Equal("+OK", c.Call("SET", "d", "4").ToString());
        Assert.Equal(1, CountOf(File.ReadAllText(AofFiles.LastPart(kv.DataDir)), "#TS:")); // none for d
        Assert.Equal(0, kv.Terminate());
        var check = CheckAof(AofFiles.Manifest(kv.DataDir));
        Assert.True(check.ExitCode == 0, check.Output);

        using var again = KvServerProcess.StartIn(kv.DataDir, "--appendonly", "yes");
        using var c2 = new RespConnection(again.Port);
        Assert.Equal(":4", c2.Call("DBSIZE").ToString());
        Assert.Equal("$\"3\"", c2.Call("GET", "c").ToString());
    }

    private static int CountOf(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Starts a server in <paramref name="dir"/> with the AOF on (appendfsync always), sets a=1 and b=2, stops it
    /// cleanly; returns the last incremental file and its length (every byte a whole command).</summary>
    private static (string Last, long Valid) WriteTwoKeysAndStop(TempDir dir)
    {
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes", "--appendfsync", "always"))
        {
            Assert.Equal("OK", Cli(kv.Port, "SET", "a", "1"));
            Assert.Equal("OK", Cli(kv.Port, "SET", "b", "2"));
            Assert.Equal(0, kv.Terminate());
        }

        string last = AofFiles.LastPart(dir.DataDir);
        return (last, new FileInfo(last).Length);
    }

    [Fact]
    public void Aof_load_truncated_no_refuses_a_torn_last_incr_file_and_yes_cuts_it()
    {
        using var dir = new TempDir();
        var (last, valid) = WriteTwoKeysAndStop(dir);
        const string Torn = "*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal";
        File.AppendAllText(last, Torn);
        var (exit, log) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), "--appendonly", "yes", "--aof-load-truncated", "no");
        Assert.NotEqual(0, exit);
        Assert.Contains("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof", log, StringComparison.Ordinal);
        Assert.Contains("aof-load-truncated", log, StringComparison.Ordinal);
        Assert.Equal(valid + Torn.Length, new FileInfo(last).Length); // left as it was

        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        {
            Assert.Contains("!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!", kv.Log, StringComparison.Ordinal);
            Assert.Contains($"!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {valid} !!!", kv.Log, StringComparison.Ordinal);
            Assert.Contains("AOF appendonly.aof.1.incr.aof loaded anyway because aof-load-truncated is enabled", kv.Log, StringComparison.Ordinal);
            Assert.Equal(valid, new FileInfo(last).Length);
            Assert.Equal("\"2\"", Cli(kv.Port, "GET", "b"));
            Assert.Equal("(integer) 0", Cli(kv.Port, "EXISTS", "c"));
        }
    }

    /// <summary>Session 28: the incremental file is appended through a mapped tail (stores into a fallocate'd mapping;
    /// the file is longer than its records until it is closed). A cleanly shut down server's files, a rewrite's switch to
    /// a new incremental file included, are byte for byte what the pwrite path writes (EIOSHARP_KV_AOF_TAIL_CHUNK_KB=0).</summary>
    [Fact]
    public void A_cleanly_closed_mapped_aof_is_byte_for_byte_the_pwrite_one()
    {
        var files = new List<Dictionary<string, byte[]>>();
        foreach (string chunkKb in new[] { "0", "64" })
        {
            using var dir = new TempDir();
            var env = new Dictionary<string, string?> { ["EIOSHARP_KV_AOF_TAIL_CHUNK_KB"] = chunkKb };
            string[] args = ["--appendonly", "yes", "--appendfsync", "everysec", "--aof-use-rdb-preamble", "no"];
            using (var kv = KvServerProcess.StartIn(dir.DataDir, env, args))
            {
                using var c = new RespClient(kv.Port);
                for (int i = 0; i < 300; i++)
                {
                    Assert.Equal("+OK", c.Call("SET", $"k{i}", new string((char)('a' + (i % 26)), 1 + (i * 37 % 900))));
                }

                Assert.StartsWith("+", c.Call("BGREWRITEAOF"), StringComparison.Ordinal);
                WaitFor(() => c.Call("INFO", "persistence").Contains("aof_rewrite_in_progress:0", StringComparison.Ordinal)
                    && Manifest(kv.DataDir).Contains(".2.incr.", StringComparison.Ordinal), "the rewrite");
                for (int i = 0; i < 300; i++)
                {
                    Assert.Equal(":" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), c.Call("RPUSH", "list", new string('x', 1 + (i * 13 % 2000))));
                }

                Assert.Equal(0, kv.Terminate());
            }

            files.Add(Directory.GetFiles(AofFiles.Dir(dir.DataDir)).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes));
        }

        Assert.Equal(files[0].Keys.Order(), files[1].Keys.Order());
        foreach (var (name, bytes) in files[0])
        {
            output.WriteLine($"{name}: {bytes.Length} bytes");
            Assert.True(bytes.AsSpan().SequenceEqual(files[1][name]), $"{name}: {bytes.Length} bytes by pwrite, {files[1][name].Length} mapped");
        }
    }

    /// <summary>A killed server's last incremental file ends in the zeros reserved ahead of its mapped tail (here written
    /// by hand, a whole chunk of them): the next start cuts them off before appending, whatever aof-load-truncated says
    /// (it is no torn command), with Redis's short-read lines; a zero tail on an earlier incremental file (a kill between
    /// a rewrite's new manifest and the old file's truncation) is read up to them and cut as well (§210: redis-check-aof
    /// accepts the directory after the start).</summary>
    [Fact]
    public void A_zero_tail_left_by_a_killed_server_is_cut_at_the_next_start()
    {
        using var dir = new TempDir();
        var (last, valid) = WriteTwoKeysAndStop(dir);
        File.AppendAllBytes(last, new byte[1 << 20]);
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes", "--aof-load-truncated", "no"))
        {
            Assert.Contains("!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!", kv.Log, StringComparison.Ordinal);
            Assert.Contains($"ends with {1 << 20} zero bytes after its last command at offset {valid}", kv.Log, StringComparison.Ordinal);
            Assert.Contains($"!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {valid} !!!", kv.Log, StringComparison.Ordinal);
            Assert.Equal(valid, new FileInfo(last).Length);
            Assert.Equal("\"2\"", Cli(kv.Port, "GET", "b"));
            Assert.Equal("OK", Cli(kv.Port, "SET", "c", "3"));
            Assert.Equal(0, kv.Terminate());
        }

        // Killed while a rewrite writes its base: the manifest lists two incremental files; the second ends in its mapped
        // tail's zeros (the kill), the first is given a zero tail by hand (as a kill right after the switch would leave).
        using (var kv = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(60), "--appendonly", "yes"))
        {
            using var c = new RespClient(kv.Port);
            Assert.StartsWith("+", c.Call("BGREWRITEAOF"), StringComparison.Ordinal);
            WaitFor(() => Manifest(kv.DataDir).Contains(".2.incr.", StringComparison.Ordinal), "the switch to the next incr file");
            Assert.Equal("+OK", c.Call("SET", "d", "4"));
            kv.Kill();
        }

        var incr = AofFiles.Listed(dir.DataDir).Where(l => l.Type == 'i').Select(l => Path.Combine(AofFiles.Dir(dir.DataDir), l.Name)).ToArray();
        output.WriteLine(Manifest(dir.DataDir));
        Assert.Equal(2, incr.Length);
        long firstValid = AofFiles.CommandBytes(incr[0]);
        File.AppendAllBytes(incr[0], new byte[4096]);
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes", "--aof-load-truncated", "no"))
        {
            Assert.Equal("\"4\"", Cli(kv.Port, "GET", "d"));
            Assert.Equal("\"3\"", Cli(kv.Port, "GET", "c"));
            Assert.Contains("zero bytes after its last command", kv.Log, StringComparison.Ordinal);
            Assert.Equal(firstValid, new FileInfo(incr[0]).Length); // the earlier file's zeros are cut too (§210)
            var check = CheckAof(AofFiles.Manifest(dir.DataDir)); // so redis-check-aof accepts the directory at once
            Assert.True(check.ExitCode == 0, check.Output);
        }
    }

    [Fact]
    public void A_MULTI_without_EXEC_at_the_end_of_the_last_incr_file_is_reverted_with_redis_log_line()
    {
        using var dir = new TempDir();
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes", "--appendfsync", "always"))
        {
            Assert.Equal("OK", Cli(kv.Port, "SET", "a", "1"));
            Assert.Equal(0, kv.Terminate());
        }

        string last = AofFiles.LastPart(dir.DataDir);
        long valid = new FileInfo(last).Length;
        File.AppendAllBytes(last, [.. Resp("MULTI"), .. Resp("SET", "b", "2"), .. Resp("SET", "c", "3")]);
        using var again = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes");
        Assert.Contains("Revert incomplete MULTI/EXEC transaction in AOF file appendonly.aof.1.incr.aof", again.Log, StringComparison.Ordinal);
        Assert.Equal(valid, new FileInfo(last).Length);
        Assert.Equal("(integer) 1", Cli(again.Port, "DBSIZE"));
    }

    [Fact]
    public void A_truncated_file_that_is_not_the_last_refuses_to_start()
    {
        using var dir = new TempDir();
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--aof-disable-auto-gc", "yes"))
        using (var c = new RespConnection(kv.Port))
        {
            Assert.Equal("+OK", c.Call("SET", "a", "1").ToString());
            Rewrite(c, kv.DataDir, 2);
            Assert.Equal("+OK", c.Call("SET", "b", "2").ToString());
            Assert.Equal(0, kv.Terminate());
        }

        File.AppendAllText(AofFiles.BasePart(dir.DataDir), "*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal");
        var (exit, log) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), "--appendonly", "yes");
        Assert.NotEqual(0, exit);
        Assert.Contains("the truncated file is not the last file", log, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_named_in_the_manifest_but_missing_refuses_to_start()
    {
        using var dir = new TempDir();
        using (var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        {
            Assert.Equal("OK", Cli(kv.Port, "SET", "a", "1"));
            Assert.Equal(0, kv.Terminate());
        }

        File.Delete(AofFiles.BasePart(dir.DataDir));
        var (exit, log) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), "--appendonly", "yes");
        Assert.NotEqual(0, exit);
        Assert.Contains("appendonly.aof.1.base.rdb", log, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", log, StringComparison.Ordinal);

        File.WriteAllText(AofFiles.Manifest(dir.DataDir), "file appendonly.aof.1.incr.aof seq 1 type x\n");
        (exit, log) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), "--appendonly", "yes");
        Assert.NotEqual(0, exit);
        Assert.Contains("Unknown AOF file type", log, StringComparison.Ordinal);
    }

    /// <summary>A data directory of an earlier EioSharp.Kv (one appendonly.aof in dir, as the README's ./data has) keeps its
    /// data: it is moved into appendonlydir as the base, exactly as redis-server 7.0.15 upgrades the same file.</summary>
    [Fact]
    public void A_single_pre_7_appendonly_aof_is_upgraded_as_redis_server_7_does()
    {
        byte[] old = [.. Resp("SELECT", "0"), .. Resp("SET", "a", "1"), .. Resp("RPUSH", "l", "x", "y"), .. Resp("SELECT", "2"),
            .. Resp("SADD", "s", "m"), .. Resp("SET", "t", "v", "PXAT", "99999999999999")];
        using var kdir = new TempDir();
        Directory.CreateDirectory(kdir.DataDir);
        File.WriteAllBytes(AofFiles.Legacy(kdir.DataDir), old);
        using var rdir = new TempDir();
        File.WriteAllBytes(Path.Combine(rdir.Path, "appendonly.aof"), old);

        using var kv = KvServerProcess.StartIn(kdir.DataDir, "--appendonly", "yes");
        using var redis = RedisServerProcess.Start("--dir", rdir.Path, "--appendonly", "yes");
        Assert.Contains("Successfully migrated an old-style AOF file (appendonly.aof) into the AOF directory (appendonlydir).", kv.Log, StringComparison.Ordinal);
        Assert.False(File.Exists(AofFiles.Legacy(kdir.DataDir)));
        Assert.False(File.Exists(Path.Combine(rdir.Path, "appendonly.aof")));
        Assert.Equal(File.ReadAllText(Path.Combine(rdir.Path, "appendonlydir", "appendonly.aof.manifest")), Manifest(kdir.DataDir));
        Assert.Equal("file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n", Manifest(kdir.DataDir));
        Assert.Equal(old, File.ReadAllBytes(Path.Combine(AofFiles.Dir(kdir.DataDir), "appendonly.aof")));
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        DiffRunner.CompareState(r, k, "after the upgrade", compareEncoding: false);
        for (int db = 0; db < 3; db++)
        {
            string d = db.ToString(CultureInfo.InvariantCulture);
            Assert.Equal(r.Call("SELECT", d).ToString(), k.Call("SELECT", d).ToString());
            Assert.Equal(r.Call("DBSIZE").ToString(), k.Call("DBSIZE").ToString());
        }

        // A restart and a rewrite after the upgrade keep the data; the upgraded base becomes history and goes.
        k.Call("SELECT", "0");
        Assert.Equal("+OK", k.Call("SET", "b", "2").ToString());
        Rewrite(k, kdir.DataDir, 2);
        Assert.Equal("file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n", Manifest(kdir.DataDir));
        Assert.Equal(0, kv.Terminate());
        using var again = KvServerProcess.StartIn(kdir.DataDir, "--appendonly", "yes");
        using var k2 = new RespConnection(again.Port);
        Assert.Equal(":3", k2.Call("DBSIZE").ToString());
        Assert.Equal("$\"2\"", k2.Call("GET", "b").ToString());
        Assert.Equal("+OK", k2.Call("SELECT", "2").ToString());
        Assert.Equal("$\"v\"", k2.Call("GET", "t").ToString());
    }

    /// <summary>redis-server 7.0.15 writes an appendonlydir (every type, a rewrite, more writes after it); EioSharp.Kv
    /// started on a copy has the same data.</summary>
    [Theory]
    [InlineData("yes", 31)]
    [InlineData("no", 32)]
    public void Redis_server_appendonlydir_loads_in_Kv_with_the_same_data(string preamble, int seed)
    {
        using var redis = RedisServerProcess.Start("--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", preamble);
        using var r = new RespConnection(redis.Port);
        string rdir = Path.Combine(redis.Directory, "appendonlydir");
        RdbEndToEndTests.Apply(r, RdbEndToEndTests.Dataset(seed));
        Assert.StartsWith("Background append only file rewriting", r.Call("BGREWRITEAOF").Text, StringComparison.Ordinal);
        WaitFor(() => Info(r, "aof_rewrite_in_progress") == "0" && File.ReadAllText(Path.Combine(rdir, "appendonly.aof.manifest")).Contains(".2.base.", StringComparison.Ordinal),
            "redis-server's rewrite");
        RdbEndToEndTests.Apply(r, MoreWrites());
        output.WriteLine(File.ReadAllText(Path.Combine(rdir, "appendonly.aof.manifest")));

        using var kdir = new TempDir();
        CopyDirectory(rdir, AofFiles.Dir(kdir.DataDir));
        using var kv = KvServerProcess.StartIn(kdir.DataDir, "--appendonly", "yes");
        using var k = new RespConnection(kv.Port);
        RdbEndToEndTests.Compare(r, k, $"Kv loading redis-server's appendonlydir (aof-use-rdb-preamble {preamble})");
        for (int db = 0; db < 4; db++)
        {
            string d = db.ToString(CultureInfo.InvariantCulture);
            r.Call("SELECT", d);
            k.Call("SELECT", d);
            Assert.Equal(r.Call("DBSIZE").ToString(), k.Call("DBSIZE").ToString());
        }
    }

    /// <summary>EioSharp.Kv writes an appendonlydir (every type, a rewrite, more writes after it); redis-server 7.0.15
    /// started on a copy has the same data, and redis-check-aof accepts it.</summary>
    [Theory]
    [InlineData("yes", 41)]
    [InlineData("no", 42)]
    public void Kv_appendonlydir_loads_in_redis_server_with_the_same_data(string preamble, int seed)
    {
        // The directory is checked and copied while the server runs: without the zero tail that appendfsync always
        // prepares by default since §210 (a live or killed server's incremental file then ends in zeros, which
        // redis-check-aof and redis-server refuse until `redis-check-aof --fix`, as under everysec's mapped tail).
        using var kv = KvServerProcess.StartWithEnvironment(new Dictionary<string, string?> { ["EIOSHARP_KV_ALWAYS_ZERO_TAIL"] = "0" },
            "--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", preamble);
        using var k = new RespConnection(kv.Port);
        RdbEndToEndTests.Apply(k, RdbEndToEndTests.Dataset(seed));
        Rewrite(k, kv.DataDir, 2);
        RdbEndToEndTests.Apply(k, MoreWrites());
        var check = CheckAof(AofFiles.Manifest(kv.DataDir));
        Assert.True(check.ExitCode == 0, check.Output);

        using var rdir = new TempDir();
        CopyDirectory(AofFiles.Dir(kv.DataDir), Path.Combine(rdir.Path, "appendonlydir"));
        using var redis = RedisServerProcess.Start("--dir", rdir.Path, "--appendonly", "yes");
        using var r = new RespConnection(redis.Port);
        RdbEndToEndTests.Compare(r, k, $"redis-server loading Kv's appendonlydir (aof-use-rdb-preamble {preamble})");
        for (int db = 0; db < 4; db++)
        {
            string d = db.ToString(CultureInfo.InvariantCulture);
            r.Call("SELECT", d);
            k.Call("SELECT", d);
            Assert.Equal(r.Call("DBSIZE").ToString(), k.Call("DBSIZE").ToString());
        }
    }

    /// <summary>Writes after the rewrite, into the new incr file: new keys, overwrites, deletes, counters, expiries, another database.</summary>
    private static List<string[]> MoreWrites() =>
    [
        ["SELECT", "0"], ["SET", "after:1", "x"], ["INCR", "after:counter"], ["INCR", "after:counter"], ["DEL", "k0:0", "k0:1"],
        ["RPUSH", "after:list", "a", "b"], ["HSET", "after:hash", "f", "v"], ["ZADD", "after:z", "1.5", "m"], ["SADD", "after:set", "1", "2"],
        ["SET", "after:ttl", "v", "EX", "100000"], ["XADD", "after:stream", "5-1", "f", "v"],
        ["SELECT", "3"], ["SET", "after:db3", "y"], ["SELECT", "0"],
    ];

    [Fact]
    public void No_appendfsync_on_rewrite_skips_fsyncs_while_a_rewrite_writes()
    {
        foreach (string setting in new[] { "no", "yes" })
        {
            using var dir = new TempDir();
            using var kv = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(3), "--appendonly", "yes", "--appendfsync", "always",
                "--no-appendfsync-on-rewrite", setting);
            using var c = new RespConnection(kv.Port);
            Assert.Equal("+OK", c.Call("SET", "a", "1").ToString());
            Assert.StartsWith("Background append only file rewriting", c.Call("BGREWRITEAOF").Text, StringComparison.Ordinal);
            WaitFor(() => Info(c, "aof_rewrite_in_progress") == "1", "the rewrite to start");
            Thread.Sleep(300); // the switch to the new incr file has happened (its fsync of the old file too)
            long before = long.Parse(WaitSettled(c), CultureInfo.InvariantCulture);
            for (int i = 0; i < 20; i++) Assert.Equal("+OK", c.Call("SET", "during" + i, "v").ToString());
            Thread.Sleep(250);
            long after = long.Parse(Info(c, "aof_fsyncs"), CultureInfo.InvariantCulture);
            Assert.Equal("1", Info(c, "aof_rewrite_in_progress")); // still writing: the 3 s hold
            output.WriteLine($"no-appendfsync-on-rewrite {setting}: {after - before} fsyncs for 20 writes during the rewrite");
            if (setting == "yes")
            {
                Assert.Equal(before, after);
            }
            else
            {
                Assert.True(after - before >= 20, $"{after - before} fsyncs for 20 writes under appendfsync always");
            }

            WaitFor(() => Info(c, "aof_rewrite_in_progress") == "0", "the rewrite to finish");
            Assert.Equal(0, kv.Terminate());
            using var again = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes");
            Assert.Equal("\"v\"", Cli(again.Port, "GET", "during19"));
        }
    }

    private static string WaitSettled(RespConnection c)
    {
        string last = Info(c, "aof_fsyncs");
        for (int i = 0; i < 20; i++)
        {
            Thread.Sleep(150);
            string now = Info(c, "aof_fsyncs");
            if (now == last) return now;
            last = now;
        }

        return last;
    }

    /// <summary>aof-rewrite-incremental-fsync: a base written through the page cache is fdatasynced every 4 MB
    /// (EIOSHARP_KV_AOF_BASE_DIRECT=0 here); one written past it (the default where the filesystem allows) only at the
    /// end, as its writes leave no dirty page to bound (§216), and the log line then counts none.</summary>
    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    public void Aof_rewrite_incremental_fsync_fsyncs_every_4_mb_of_the_rewrite(string direct)
    {
        foreach (string setting in new[] { "yes", "no" })
        {
            using var kv = KvServerProcess.StartWithEnvironment(new Dictionary<string, string?> { ["EIOSHARP_KV_AOF_BASE_DIRECT"] = direct },
                "--appendonly", "yes", "--aof-rewrite-incremental-fsync", setting, "--aof-use-rdb-preamble", "no");
            using var c = new RespConnection(kv.Port);
            string value = new('v', 100_000);
            foreach (var chunk in Enumerable.Range(0, 120).Chunk(20))
            {
                foreach (Resp reply in c.Pipeline(chunk.Select(i => new[] { "SET", "big" + i, value }).ToArray()))
                {
                    Assert.Equal("+OK", reply.ToString());
                }
            }

            Rewrite(c, kv.DataDir, 2);
            long baseSize = new FileInfo(AofFiles.BasePart(kv.DataDir)).Length;
            Assert.True(baseSize > 2 * AppendOnlyFileConstants.IncrementalFsyncBytes, $"base {baseSize} bytes");
            const string Pattern = @"\((?:base [^,]+, \d+ bytes)(?:, (\d+) incremental fsyncs)?\)";
            WaitFor(() => System.Text.RegularExpressions.Regex.IsMatch(kv.Log, Pattern), "the rewrite's log line");
            var m = System.Text.RegularExpressions.Regex.Match(kv.Log, Pattern);
            if (setting == "yes" && direct == "0")
            {
                Assert.Equal(baseSize / AppendOnlyFileConstants.IncrementalFsyncBytes, long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
            }
            else if (setting == "yes")
            {
                // Past the page cache where the filesystem allows it (tmpfs may refuse O_DIRECT: then every 4 MB as above).
                long fsyncs = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                Assert.True(fsyncs == 0 || fsyncs == baseSize / AppendOnlyFileConstants.IncrementalFsyncBytes, kv.Log);
            }
            else
            {
                Assert.False(m.Groups[1].Success, kv.Log);
            }
        }
    }

    private static class AppendOnlyFileConstants
    {
        public const long IncrementalFsyncBytes = 4L * 1024 * 1024; // redis's REDIS_AUTOSYNC_BYTES
    }
}
