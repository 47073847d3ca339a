using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>Session 28 (h166): the incremental file is appended through a mapped tail, so a killed server leaves zero bytes
/// after its last command. The loader cuts them (whatever aof-load-truncated says: no command is torn), keeps a torn
/// command before them a torn tail, and opens the file for appending at its last command.</summary>
public class AofZeroTailTests
{
    private static byte[] Commands(params string[][] commands)
    {
        var text = new StringBuilder();
        foreach (string[] c in commands)
        {
            text.Append('*').Append(c.Length).Append("\r\n");
            foreach (string a in c)
            {
                text.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
            }
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>Loads a directory whose single incremental file is <paramref name="incr"/>; returns the keys loaded, the
    /// file's size after the load and the log.</summary>
    private static (long Keys, long SizeAfter, string Log, long AofLength) Load(byte[] incr, bool loadTruncated)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"kv-zero-tail-{Guid.NewGuid():N}");
        string aofDir = Path.Combine(dir, "appendonlydir");
        Directory.CreateDirectory(aofDir);
        try
        {
            File.WriteAllText(Path.Combine(aofDir, "appendonly.aof.manifest"), "file appendonly.aof.1.incr.aof seq 1 type i\n");
            string incrPath = Path.Combine(aofDir, "appendonly.aof.1.incr.aof");
            File.WriteAllBytes(incrPath, incr);
            var log = new StringBuilder();
            long keys = 0, aofLength = 0;
            EioMain.Run(async env =>
            {
                var config = new KvServerConfig { Directory = dir, AppendOnly = true, AofLoadTruncated = loadTruncated };
                var store = new KvStore(config.Limits, databases: config.Databases, encodings: config.Encodings);
                await Switch.RunAsync(async sw =>
                {
                    using var aof = await AppendOnlyFile.OpenAndLoadAsync(AofPaths.From(env.Fs, config), sw, FsyncPolicy.EverySecond,
                        () => config, store, env.Clock.Now.ToUnixTimeMilliseconds(), config.Limits, line => log.AppendLine(line));
                    keys = store.Count;
                    aofLength = aof.Length;
                });
            });
            return (keys, new FileInfo(incrPath).Length, log.ToString(), aofLength);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 200 * 1024)] // zeros over more than one of the backward scan's 64 KiB blocks
    [InlineData(true, AppendOnlyFile.DefaultTailChunkBytes)] // a whole reserved chunk, as a SIGKILL right after it leaves
    public void A_zero_tail_is_cut_whatever_aof_load_truncated_says(bool loadTruncated, int zeros)
    {
        byte[] valid = Commands(["SET", "a", "1"], ["SET", "b", "with\0zero\0bytes\0"], ["RPUSH", "l", "x"]);
        var (keys, size, log, length) = Load([.. valid, .. new byte[zeros]], loadTruncated);
        Assert.Equal(3, keys);
        Assert.Equal(valid.Length, size);
        Assert.Equal(valid.Length, length);
        Assert.Contains($"ends with {zeros} zero bytes after its last command at offset {valid.Length}", log);
        Assert.Contains($"!!! Truncating the AOF appendonly.aof.1.incr.aof at offset {valid.Length} !!!", log);
        Assert.DoesNotContain("torn write", log);
    }

    [Fact]
    public void A_torn_command_before_the_zeros_is_a_torn_tail()
    {
        byte[] valid = Commands(["SET", "a", "1"]);
        byte[] torn = Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal");
        var (keys, size, log, _) = Load([.. valid, .. torn, .. new byte[5000]], loadTruncated: true);
        Assert.Equal(1, keys);
        Assert.Equal(valid.Length, size);
        Assert.Contains($"truncating it from {valid.Length + torn.Length + 5000} to {valid.Length} bytes", log);

        var refused = Assert.Throws<AofCorruptException>(() => Load([.. valid, .. torn, .. new byte[5000]], loadTruncated: false));
        Assert.Contains("aof-load-truncated", refused.Message);
    }

    [Fact]
    public void A_file_without_zeros_is_untouched_and_a_file_of_zeros_is_empty()
    {
        byte[] valid = Commands(["SET", "a", "1"]);
        var (keys, size, log, _) = Load(valid, loadTruncated: false);
        Assert.Equal(1, keys);
        Assert.Equal(valid.Length, size);
        Assert.DoesNotContain("zero bytes", log);

        (keys, size, _, _) = Load(new byte[70 * 1024], loadTruncated: false);
        Assert.Equal(0, keys);
        Assert.Equal(0, size);
    }

    /// <summary>Session 33 (h191): under everysec the incremental file's tail is reserved 8 MiB at a time
    /// (<see cref="AppendOnlyFile.DefaultTailChunkBytes"/>; it was the library's 1 MiB): the open file is that long after
    /// its first append, and a clean close cuts it to its commands.</summary>
    [Fact]
    public void The_tail_is_reserved_8_MiB_at_a_time_and_cut_at_close()
    {
        Assert.Equal(8 << 20, AppendOnlyFile.DefaultTailChunkBytes);
        Assert.Equal(AppendOnlyFile.DefaultTailChunkBytes, AppendOnlyFile.TailChunkBytes); // (no EIOSHARP_KV_AOF_TAIL_CHUNK_KB here)
        string dir = Path.Combine(Path.GetTempPath(), $"kv-zero-tail-{Guid.NewGuid():N}");
        string aofDir = Path.Combine(dir, "appendonlydir");
        Directory.CreateDirectory(aofDir);
        try
        {
            byte[] valid = Commands(["SET", "a", "1"]);
            byte[] more = Commands(["SET", "b", "2"]);
            File.WriteAllText(Path.Combine(aofDir, "appendonly.aof.manifest"), "file appendonly.aof.1.incr.aof seq 1 type i\n");
            string incrPath = Path.Combine(aofDir, "appendonly.aof.1.incr.aof");
            File.WriteAllBytes(incrPath, valid);
            long sizeOpen = 0;
            EioMain.Run(async env =>
            {
                var config = new KvServerConfig { Directory = dir, AppendOnly = true };
                var store = new KvStore(config.Limits, databases: config.Databases, encodings: config.Encodings);
                await Switch.RunAsync(async sw =>
                {
                    using var aof = await AppendOnlyFile.OpenAndLoadAsync(AofPaths.From(env.Fs, config), sw, FsyncPolicy.EverySecond,
                        () => config, store, env.Clock.Now.ToUnixTimeMilliseconds(), config.Limits, _ => { });
                    aof.Append(more);
                    sizeOpen = new FileInfo(incrPath).Length;
                });
            });
            Assert.Equal(AppendOnlyFile.DefaultTailChunkBytes, sizeOpen); // reserved from the page holding the end (offset 0)
            Assert.Equal([.. valid, .. more], File.ReadAllBytes(incrPath));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
