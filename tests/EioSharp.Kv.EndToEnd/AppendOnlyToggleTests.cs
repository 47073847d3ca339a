using System.Text;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13: CONFIG SET appendonly at run time, as Redis's startAppendOnly/stopAppendOnly: turning it on rewrites
/// the whole keyspace into the file (writes made meanwhile are appended and kept), then appends; turning it off closes the
/// file, and later writes are not in it. A restart with appendonly yes then has exactly the writes made while it was on.</summary>
public sealed class AppendOnlyToggleTests
{
    private static string Persistence(RespConnection c) => c.Call("INFO", "persistence").Text!;

    [Fact]
    public void Appendonly_turned_on_writes_the_keyspace_and_off_stops_appending()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no"))
        using (var c = new RespConnection(server.Port))
        {
            for (int i = 0; i < 200; i++) Assert.Equal("+OK", c.Call("SET", "k" + i, "v" + i).ToString());
            Assert.Equal(":3", c.Call("RPUSH", "list", "a", "b", "c").ToString());
            Assert.Equal("+OK", c.Call("SELECT", "3").ToString());
            Assert.Equal(":1", c.Call("SADD", "set3", "m").ToString());
            Assert.Equal("+OK", c.Call("SELECT", "0").ToString());
            Assert.False(AofFiles.Exists(dir.DataDir));

            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            Assert.Equal("*[$\"appendonly\", $\"yes\"]", c.Call("CONFIG", "GET", "appendonly").ToString());
            Assert.Contains("aof_enabled:1", Persistence(c), StringComparison.Ordinal);
            Assert.Equal("+OK", c.Call("SET", "during", "1").ToString());
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(Persistence(c) is var p && p.Contains("aof_rewrites:1", StringComparison.Ordinal) && p.Contains("aof_rewrite_in_progress:0", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "the rewrite after CONFIG SET appendonly yes did not finish: " + Persistence(c));
                Thread.Sleep(50);
            }

            Assert.Equal("+OK", c.Call("SET", "after-rewrite", "1").ToString());
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "no").ToString());
            Assert.Equal("+OK", c.Call("SET", "after-off", "1").ToString());
            Assert.Equal(":1", c.Call("DEL", "k0").ToString()); // not in the file either: k0 comes back after the restart
            Assert.Contains("aof_enabled:0", Persistence(c), StringComparison.Ordinal);
            string text = dir.AofText;
            Assert.Contains("after-rewrite", text, StringComparison.Ordinal);
            Assert.DoesNotContain("after-off", text, StringComparison.Ordinal);
            Assert.Equal(0, server.Terminate());
        }

        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        using (var c = new RespConnection(server.Port))
        {
            for (int i = 0; i < 200; i++) Assert.Equal("$\"v" + i + "\"", c.Call("GET", "k" + i).ToString());
            Assert.Equal("*[$\"a\", $\"b\", $\"c\"]", c.Call("LRANGE", "list", "0", "-1").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "during").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "after-rewrite").ToString());
            Assert.Equal("$nil", c.Call("GET", "after-off").ToString());
            Assert.Equal(":203", c.Call("DBSIZE").ToString());
            Assert.Equal("+OK", c.Call("SELECT", "3").ToString());
            Assert.Equal("*[$\"m\"]", c.Call("SMEMBERS", "set3").ToString());
            Assert.Equal(0, server.Terminate());
        }
    }

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static void WaitFor(RespConnection c, string what, Func<string, bool> done)
    {
        var deadline = DateTime.UtcNow + s_wait;
        while (!done(Persistence(c)))
        {
            Assert.True(DateTime.UtcNow < deadline, what + ": " + Persistence(c));
            Thread.Sleep(20);
        }
    }

    private static void WaitRewriteRunning(RespConnection c) =>
        WaitFor(c, "the first rewrite after CONFIG SET appendonly yes did not start", p => p.Contains("aof_rewrite_in_progress:1", StringComparison.Ordinal));

    private static void WaitRewriteDone(RespConnection c, int rewrites) =>
        WaitFor(c, "the rewrite did not finish", p => p.Contains("aof_rewrites:" + rewrites, StringComparison.Ordinal) && p.Contains("aof_rewrite_in_progress:0", StringComparison.Ordinal));

    // Redis 7's temporary files: temp-appendonly.aof.incr in the AOF directory, temp-rewriteaof-bg-<pid>.aof in dir.
    private static string[] TempFiles(TempDir dir) =>
        [.. Directory.GetFiles(dir.DataDir).Concat(Directory.Exists(AofFiles.Dir(dir.DataDir)) ? Directory.GetFiles(AofFiles.Dir(dir.DataDir)) : [])
            .Select(Path.GetFileName).Select(n => n!).Where(n => n.StartsWith("temp-", StringComparison.Ordinal))];

    /// <summary>Writes, with appendonly yes and appendfsync always: k0..k99, counter = 5 (INCR), s = "abab" (APPEND); then
    /// CONFIG SET appendonly no and more writes (late, counter 6).</summary>
    private static void WriteThenTurnOff(RespConnection c)
    {
        for (int i = 0; i < 100; i++) Assert.Equal("+OK", c.Call("SET", "k" + i, "v" + i).ToString());
        for (int i = 1; i <= 5; i++) Assert.Equal(":" + i, c.Call("INCR", "counter").ToString());
        Assert.Equal(":2", c.Call("APPEND", "s", "ab").ToString());
        Assert.Equal(":4", c.Call("APPEND", "s", "ab").ToString());
        Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "no").ToString());
        Assert.Equal("+OK", c.Call("SET", "late", "1").ToString());
        Assert.Equal(":6", c.Call("INCR", "counter").ToString());
    }

    private static void AssertWritesBeforeTurnOff(RespConnection c)
    {
        for (int i = 0; i < 100; i++) Assert.Equal("$\"v" + i + "\"", c.Call("GET", "k" + i).ToString());
        Assert.Equal("$\"abab\"", c.Call("GET", "s").ToString());
    }

    [Fact]
    public void Sigkill_during_the_first_rewrite_after_appendonly_yes_keeps_the_older_aof()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(20), "--appendonly", "yes", "--appendfsync", "always"))
        using (var c = new RespConnection(server.Port))
        {
            WriteThenTurnOff(c);
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            WaitRewriteRunning(c);
            Assert.Equal("+OK", c.Call("SET", "during", "1").ToString());
            Assert.Equal(":7", c.Call("INCR", "counter").ToString());
            Assert.Contains("aof_rewrite_in_progress:1", Persistence(c), StringComparison.Ordinal); // still held: the kill is during it
            server.Kill();
        }

        // As Redis with its old manifest: the AOF at the path is the one from before CONFIG SET appendonly no.
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        using (var c = new RespConnection(server.Port))
        {
            AssertWritesBeforeTurnOff(c);
            Assert.Equal("$\"5\"", c.Call("GET", "counter").ToString());
            Assert.Equal("$nil", c.Call("GET", "late").ToString());
            Assert.Equal("$nil", c.Call("GET", "during").ToString());
            Assert.Equal(":102", c.Call("DBSIZE").ToString());
            Assert.Empty(TempFiles(dir)); // the temporary live file of the killed process is removed at start
            Assert.Equal(0, server.Terminate());
        }
    }

    [Fact]
    public void After_the_first_rewrite_no_temporary_file_is_left_and_a_restart_has_every_key()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(1), "--appendonly", "yes", "--appendfsync", "always"))
        using (var c = new RespConnection(server.Port))
        {
            WriteThenTurnOff(c);
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            WaitRewriteRunning(c);
            Assert.Equal("+OK", c.Call("SET", "during", "1").ToString());
            Assert.Equal(":7", c.Call("INCR", "counter").ToString());
            Assert.Contains(Path.Combine(AofFiles.Dir(dir.DataDir), "temp-appendonly.aof.incr"), Directory.GetFiles(AofFiles.Dir(dir.DataDir))); // the live file during the wait
            WaitRewriteDone(c, 1);
            Assert.Equal("+OK", c.Call("SET", "after", "1").ToString());
            var deadline = DateTime.UtcNow + s_wait;
            while (TempFiles(dir).Length > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "temporary files left after the rewrite: " + string.Join(", ", TempFiles(dir)));
                Thread.Sleep(20);
            }

            server.Kill();
        }

        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        using (var c = new RespConnection(server.Port))
        {
            AssertWritesBeforeTurnOff(c);
            Assert.Equal("$\"7\"", c.Call("GET", "counter").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "late").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "during").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "after").ToString());
            Assert.Equal(":105", c.Call("DBSIZE").ToString());
            Assert.Equal(0, server.Terminate());
        }
    }

    [Fact]
    public void Appendonly_no_during_the_first_rewrite_leaves_the_older_aof_as_it_was()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(20), "--appendonly", "yes", "--appendfsync", "always"))
        using (var c = new RespConnection(server.Port))
        {
            WriteThenTurnOff(c);
            byte[] before = AofFiles.Bytes(dir.DataDir);
            string manifestBefore = File.ReadAllText(AofFiles.Manifest(dir.DataDir));
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            WaitRewriteRunning(c);
            Assert.Equal("+OK", c.Call("SET", "during", "1").ToString());
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "no").ToString());
            Assert.Equal("+OK", c.Call("SET", "after-off", "1").ToString()); // a round after the close
            // The held rewrite (20 s) is cancelled, as Redis kills the rewrite child: both temporary files go well before.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (TempFiles(dir).Length > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "temporary files left after CONFIG SET appendonly no: " + string.Join(", ", TempFiles(dir)));
                Thread.Sleep(20);
            }

            Assert.Equal(before, AofFiles.Bytes(dir.DataDir));
            Assert.Equal(manifestBefore, File.ReadAllText(AofFiles.Manifest(dir.DataDir)));
            Assert.Equal("$\"6\"", c.Call("GET", "counter").ToString()); // memory is untouched
            Assert.Equal(0, server.Terminate());
        }
    }

    [Fact]
    public void Store_owner_restart_during_the_first_rewrite_keeps_the_in_memory_keyspace()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(2), "--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"))
        using (var c = new RespConnection(server.Port))
        {
            WriteThenTurnOff(c);
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            WaitRewriteRunning(c);
            Assert.Equal("+OK", c.Call("SET", "during", "1").ToString());
            Assert.Equal("+OK", c.Call("DEBUG", "CRASH-STORE").ToString());
            Assert.True(server.WaitForLog("Store owner restarted (run 2)", s_wait), server.Log);
            // Not replayed from the stale file at the AOF path: what memory had is still there.
            var deadline = DateTime.UtcNow + s_wait;
            Resp late;
            while ((late = c.Call("GET", "late")).ToString().StartsWith("-LOADING", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "still loading: " + server.Log);
                Thread.Sleep(20);
            }

            Assert.Equal("$\"1\"", late.ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "during").ToString());
            Assert.Equal("$\"6\"", c.Call("GET", "counter").ToString());
            // The restarted run starts the first rewrite over; once it has landed, the file has everything.
            WaitRewriteDone(c, 1);
            server.Kill();
        }

        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "yes"))
        using (var c = new RespConnection(server.Port))
        {
            AssertWritesBeforeTurnOff(c);
            Assert.Equal("$\"6\"", c.Call("GET", "counter").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "late").ToString());
            Assert.Equal("$\"1\"", c.Call("GET", "during").ToString());
            Assert.Equal(":104", c.Call("DBSIZE").ToString());
            Assert.Equal(0, server.Terminate());
        }
    }

    /// <summary>SHUTDOWN while the first rewrite after CONFIG SET appendonly yes runs (Redis's AOF_WAIT_REWRITE): refused
    /// without FORCE, since the file on disk does not have the dataset yet ("Writing initial AOF, can't exit." in the log),
    /// the server keeps serving; SHUTDOWN FORCE exits 0. Checked on redis-server 7.0.15 (its rewrite slowed by
    /// rdb-key-save-delay) and on EioSharp.Kv (held by EIOSHARP_KV_TEST_REWRITE_DELAY_MS).</summary>
    [Fact]
    public void Shutdown_during_the_first_rewrite_after_appendonly_yes_is_refused_without_force_as_redis_does()
    {
        string[] Refused(RespConnection c)
        {
            for (int i = 0; i < 100; i++) Assert.Equal("+OK", c.Call("SET", "k" + i, "v" + i).ToString());
            Assert.Equal("+OK", c.Call("CONFIG", "SET", "appendonly", "yes").ToString());
            string atOnce = c.Call("SHUTDOWN").ToString(); // refused from the CONFIG SET reply on, before the rewrite starts
            WaitRewriteRunning(c);
            string plain = c.Call("SHUTDOWN").ToString();
            string noSave = c.Call("SHUTDOWN", "NOSAVE").ToString();
            string pong = c.Call("PING").ToString();
            string abort = c.Call("SHUTDOWN", "ABORT").ToString();
            c.Send(Tools.Resp("SHUTDOWN", "FORCE"));
            Assert.ThrowsAny<Exception>(() => c.Read()); // no reply: the connection closes with the server
            return [atOnce, plain, noSave, pong, abort];
        }

        string[] expected;
        using (var redis = RedisServerProcess.Start("--rdb-key-save-delay", "100000")) // 0.1 s a key: 10 s for 100
        using (var c = new RespConnection(redis.Port))
        {
            expected = Refused(c);
            Assert.Throws<System.Net.Sockets.SocketException>(() => new RespConnection(redis.Port).Dispose()); // it exited
        }
        Assert.Equal(["-ERR Errors trying to SHUTDOWN. Check logs.", "-ERR Errors trying to SHUTDOWN. Check logs.", "-ERR Errors trying to SHUTDOWN. Check logs.", "+PONG",
            "-ERR No shutdown in progress."], expected);

        using var dir = new TempDir();
        using var server = KvServerProcess.StartWithRewriteDelay(dir.DataDir, TimeSpan.FromSeconds(30), "--appendonly", "no");
        using (var c = new RespConnection(server.Port))
        {
            Assert.Equal(expected, Refused(c));
        }
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Contains("Writing initial AOF, can't exit.", server.Log, StringComparison.Ordinal);
        Assert.Contains("Writing initial AOF. Exit anyway.", server.Log, StringComparison.Ordinal);
    }
}
