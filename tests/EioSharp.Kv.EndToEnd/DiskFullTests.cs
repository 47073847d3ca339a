using Xunit.Abstractions;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13, defect 4: the disk fills up under <c>appendfsync everysec</c>. Before: the write failure crashed the
/// store owner until its supervisor gave up (exit 3), and nothing recovered when space returned. Now, as Redis: writes
/// are refused with <c>-MISCONF Errors writing to the AOF file: No space left on device</c>, reads are served, INFO says
/// <c>aof_last_write_status:err</c>, and writes resume by themselves once the disk has room, with every acknowledged write
/// in the file. Runs on a small tmpfs the test mounts, so only as root.</summary>
public class DiskFullTests(ITestOutputHelper output)
{
    private const string Misconf = "-MISCONF Errors writing to the AOF file: No space left on device";

    /// <summary>A failed background fsync (everysec) stops the acknowledging of writes until an fsync succeeds (before:
    /// it was only logged). The failure is injected with <c>DEBUG FAIL-FSYNC</c>: the next two fsyncs fail with EIO.</summary>
    [Fact]
    public void A_failed_background_fsync_refuses_writes_until_an_fsync_succeeds()
    {
        using var server = KvServerProcess.Start("--appendfsync", "everysec", "--enable-debug-command", "yes");
        using var c = new RespClient(server.Port);
        Assert.Equal("+OK", c.Call("DEBUG", "FAIL-FSYNC", "2"));
        Assert.Equal("+OK", c.Call("SET", "before", "1")); // makes the file dirty: the next background fsync fails
        string reply = "";
        Assert.True(Poll.Until(() => (reply = c.Call("SET", "k", "v")) != "+OK", TimeSpan.FromSeconds(10)), reply);
        Assert.Equal("-MISCONF Errors writing to the AOF file: Input/output error", reply);
        Assert.Contains("aof_last_write_status:err\r\n", c.Call("INFO", "persistence"));
        Assert.Equal("$1", c.Call("GET", "before")); // reads are served
        Assert.True(server.WaitForLog("background fsync of the AOF failed", TimeSpan.FromSeconds(5)), server.Log);

        // The third fsync succeeds (about a second apart): writes are accepted again.
        Assert.True(Poll.Until(() => (reply = c.Call("SET", "k", "v")) == "+OK", TimeSpan.FromSeconds(10)), reply);
        Assert.Contains("aof_last_write_status:ok\r\n", c.Call("INFO", "persistence"));
        Assert.Equal(0, server.Terminate());
    }

    [Fact]
    public void A_full_disk_refuses_writes_serves_reads_and_recovers_by_itself()
    {
        using var tmpfs = SmallTmpfs.TryMount(output);
        if (tmpfs is null)
        {
            return;
        }

        string mount = tmpfs.Path;
        string data = Path.Combine(mount, "data");
        Directory.CreateDirectory(data);
        string filler = Path.Combine(mount, "filler");
        File.WriteAllBytes(filler, new byte[5 << 20]); // takes most of the space; deleted later to "free the disk"
        string value = new('v', 256 * 1024);
        var acked = new List<string>();
        using (var server = KvServerProcess.StartIn(data, "--appendfsync", "everysec"))
        {
            using var c = new RespClient(server.Port);
            string refused = SetUntilRefused(c, value, acked);

            output.WriteLine($"{acked.Count} writes acknowledged before: {refused}");
            Assert.Equal(Misconf, refused);
            Assert.True(acked.Count >= 2, $"{acked.Count} writes fit");
            Assert.Equal(Misconf, c.Call("DEL", "k0"));
            Assert.Equal(Misconf, c.Call("PING")); // as Redis 7.0 (PING is refused like a write)

            // Reads go on.
            Assert.Equal($":{value.Length}", c.Call("STRLEN", "k0"));
            Assert.Equal("$nil", c.Call("GET", "missing"));
            Assert.Contains("aof_last_write_status:err\r\n", c.Call("INFO", "persistence"));
            Assert.True(server.WaitForLog("Error writing to the AOF file: No space left on device", TimeSpan.FromSeconds(5)), server.Log);

            // The disk gets room again: writes resume without anyone touching the server.
            File.Delete(filler);
            string after = "";
            Assert.True(Poll.Until(() => (after = c.Call("SET", "after", "1")) == "+OK", TimeSpan.FromSeconds(10)), after);
            acked.Add("after");
            Assert.Contains("aof_last_write_status:ok\r\n", c.Call("INFO", "persistence"));
            Assert.Equal("+PONG", c.Call("PING"));
            Assert.True(server.WaitForLog("AOF write error looks solved", TimeSpan.FromSeconds(5)), server.Log);
            Assert.False(server.HasExited);
            Assert.Equal(0, server.Terminate());
        }

        // Every acknowledged write is in the file, which redis-check-aof accepts.
        using (var server = CheckAofAndRestartWithEvery(data, acked))
        {
            using var c = new RespClient(server.Port);
            Assert.Equal("+OK", c.Call("SET", "later", "x"));
        }
    }

    /// <summary>The disk fills up under <c>appendfsync always</c>, with the AOF's tail prepared ahead with written zeros
    /// (the default since session 38, §210: the zeros' fills fail at some point, the appends go on into what was filled
    /// and then past the end) and with it off (<c>EIOSHARP_KV_ALWAYS_ZERO_TAIL=0</c>): nothing is acknowledged that is
    /// not in the file (the failed round's requests are answered with an error, the store owner's run restarts and
    /// reloads the file, writes are refused until a probe write succeeds), and once the disk has room writes resume by
    /// themselves; after a clean shutdown the file has no zeros, redis-check-aof accepts it and a restart has every
    /// acknowledged key. Runs on a small tmpfs the test mounts, so only as root.</summary>
    [Theory]
    [InlineData(null)]
    [InlineData("0")]
    public void A_full_disk_under_appendfsync_always_acknowledges_only_what_was_written_and_recovers(string? zeroTail)
    {
        using var tmpfs = SmallTmpfs.TryMount(output);
        if (tmpfs is null)
        {
            return;
        }

        string mount = tmpfs.Path;
        string data = Path.Combine(mount, "data");
        Directory.CreateDirectory(data);
        string filler = Path.Combine(mount, "filler");
        File.WriteAllBytes(filler, new byte[5 << 20]);
        string value = new('v', 256 * 1024);
        var acked = new List<string>();
        var environment = new Dictionary<string, string?> { ["EIOSHARP_KV_ALWAYS_ZERO_TAIL"] = zeroTail };
        using (var server = KvServerProcess.StartIn(data, environment, "--appendfsync", "always"))
        {
            var c = new RespClient(server.Port);
            string refused = SetUntilRefused(c, value, acked);

            output.WriteLine($"zero tail {zeroTail ?? "(default)"}: {acked.Count} writes acknowledged before: {refused}");
            Assert.NotEqual("", refused);
            Assert.True(acked.Count >= 2, $"{acked.Count} writes fit");
            Assert.True(server.WaitForLog("Error writing to the AOF file: No space left on device", TimeSpan.FromSeconds(10)), server.Log);

            // The disk gets room again: writes resume without anyone touching the server.
            File.Delete(filler);
            string after = "";
            Assert.True(Poll.Until(() =>
            {
                try
                {
                    return (after = c.Call("SET", "after", "1")) == "+OK";
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or EndOfStreamException or InvalidDataException)
                {
                    c.Dispose();
                    c = new RespClient(server.Port);
                    return false;
                }
            }, TimeSpan.FromSeconds(20)), after);
            acked.Add("after");
            Assert.Equal("+OK", c.Call("SET", "after2", "2"));
            acked.Add("after2");
            Assert.False(server.HasExited);
            c.Dispose();
            Assert.Equal(0, server.Terminate());
        }

        using var restarted = CheckAofAndRestartWithEvery(data, acked);
    }

    /// <summary>SETs <c>k0</c>, <c>k1</c>, ... to <paramref name="value"/> (at most 64) until one is refused; adds each
    /// acknowledged key to <paramref name="acked"/> and returns the refusal ("" when all 64 were acknowledged).</summary>
    private static string SetUntilRefused(RespClient c, string value, List<string> acked)
    {
        for (int i = 0; i < 64; i++)
        {
            string reply = c.Call("SET", $"k{i}", value);
            if (reply != "+OK")
            {
                return reply;
            }

            acked.Add($"k{i}");
        }

        return "";
    }

    /// <summary>redis-check-aof accepts the AOF in <paramref name="data"/>, and a server started on it has every key in
    /// <paramref name="acked"/>; returns that server (the caller disposes it).</summary>
    private static KvServerProcess CheckAofAndRestartWithEvery(string data, List<string> acked)
    {
        var check = Tools.CheckAof(AofFiles.CheckPath(data));
        Assert.True(check.ExitCode == 0, check.Output);
        var server = KvServerProcess.StartIn(data);
        try
        {
            using var c = new RespClient(server.Port);
            foreach (string key in acked)
            {
                Assert.Equal(":1", c.Call("EXISTS", key));
            }

            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>An 8 MiB tmpfs mounted under a temporary directory, so that the server's disk can be filled safely;
    /// disposing unmounts it (lazily, in case a killed server's files are still open) and removes the directory.</summary>
    private sealed class SmallTmpfs : IDisposable
    {
        private readonly TempDir _dir;

        private SmallTmpfs(TempDir dir, string path)
        {
            _dir = dir;
            Path = path;
        }

        /// <summary>The mount point.</summary>
        public string Path { get; }

        /// <summary>Mounts it; null, with the reason written to <paramref name="output"/> as SKIPPED, when the process is
        /// not root or <c>mount</c> fails.</summary>
        public static SmallTmpfs? TryMount(ITestOutputHelper output)
        {
            if (!Environment.IsPrivilegedProcess)
            {
                output.WriteLine("SKIPPED: mounting a small tmpfs needs root; this test runs as root in CI.");
                return null;
            }

            var dir = new TempDir();
            string mount = System.IO.Path.Combine(dir.Path, "tmpfs");
            Directory.CreateDirectory(mount);
            var mounted = Tools.Run("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]);
            if (mounted.ExitCode != 0)
            {
                output.WriteLine($"SKIPPED: mount -t tmpfs failed ({mounted.Output.Trim()}); no way to fill a disk safely here.");
                dir.Dispose();
                return null;
            }

            return new SmallTmpfs(dir, mount);
        }

        /// <summary>Unmounts the tmpfs and removes the temporary directory.</summary>
        public void Dispose()
        {
            Tools.Run("umount", ["-l", Path]);
            _dir.Dispose();
        }
    }
}
