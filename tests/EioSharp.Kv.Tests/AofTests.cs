using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class AofTests
{
    private static Dictionary<string, (string Value, long ExpireAt)> Contents(KvStore store, long now) =>
        store.CreateSnapshot(now).ToDictionary(e => Encoding.Latin1.GetString(e.Key), e => (Encoding.Latin1.GetString((byte[])e.Value), e.ExpireAtUnixMs));

    private static (StoreHarness Harness, byte[] Log) RunWorkload()
    {
        var h = new StoreHarness();
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        string[][] commands =
        [
            ["SET", "a", "1"], ["SET", "b", "2", "EX", "100"], ["SET", "c", "3", "PX", "5000", "GET"],
            ["SETEX", "d", "10", "4"], ["PSETEX", "e", "500", "5"], ["SET", "f", "x", "NX"], ["SET", "f", "y", "NX"],
            ["INCR", "n"], ["INCRBY", "n", "41"], ["DECR", "n"], ["INCRBYFLOAT", "fl", "1.5"], ["INCRBYFLOAT", "fl", "0.25"],
            ["APPEND", "a", "23"], ["SETRANGE", "a", "1", "ZZ"], ["GETSET", "g", "old"], ["GETSET", "g", "new"],
            ["GETDEL", "f"], ["MSET", "m1", "v1", "m2", "v2"], ["MSETNX", "m3", "v3"], ["DEL", "m1", "zz"],
            ["EXPIRE", "m2", "60"], ["PEXPIRE", "m3", "60000"], ["EXPIREAT", "g", "9999999999"], ["PERSIST", "m3"],
            ["RENAME", "m2", "m4"], ["SET", "t", "x", "EX", "5"], ["SET", "t", "y", "KEEPTTL"], ["EXPIRE", "n", "-5"],
            ["SETNX", "s", "1"], ["GET", "a"], ["UNLINK", "nothing"],
        ];
        foreach (string[] c in commands)
        {
            h.Store.Execute(KvCommand.Create(c), h.Now, new RespWriter(new ArrayBufferWriter<byte>()), sink);
            h.Now += 7;
        }
        return (h, log.WrittenSpan.ToArray());
    }

    [Fact]
    public void Round_trip_replays_to_the_same_contents()
    {
        var (h, log) = RunWorkload();
        var fresh = new KvStore();
        AofLoadResult result = AofLoader.Load(log, fresh, h.Now);
        Assert.False(result.IsTruncated);
        Assert.Equal(log.Length, result.ValidLength);
        Assert.Equal(Contents(h.Store, h.Now), Contents(fresh, h.Now));
        Assert.Equal(0, Contents(fresh, h.Now)["t"].ExpireAt > 0 ? 0 : 1);

        var fromStream = new KvStore();
        AofLoadResult streamed = AofLoader.Load(new MemoryStream(log), fromStream, h.Now);
        Assert.Equal(result, streamed);
        Assert.Equal(Contents(h.Store, h.Now), Contents(fromStream, h.Now));
    }

    [Fact]
    public void Replay_later_keeps_absolute_expiries()
    {
        var (h, log) = RunWorkload();
        // Replaying an hour later: every relative expiry was logged as absolute, so the keys are gone.
        var later = new KvStore();
        AofLoader.Load(log, later, h.Now + 3_600_000);
        var contents = Contents(later, h.Now + 3_600_000);
        Assert.DoesNotContain("b", contents.Keys);
        Assert.DoesNotContain("d", contents.Keys);
        Assert.Contains("a", contents.Keys);
        Assert.Contains("g", contents.Keys); // EXPIREAT far in the future
    }

    [Fact]
    public void Relative_expiries_and_special_commands_are_rewritten()
    {
        var h = new StoreHarness();
        long now = h.Now;
        h.Run("SET", "a", "1", "EX", "10");
        h.Run("SET", "b", "1", "PX", "10", "NX", "GET");
        h.Run("SET", "c", "1", "EXAT", "2000000000");
        h.Run("SET", "plain", "1");
        h.Run("SET", "plain", "2", "XX", "KEEPTTL");
        h.Run("SETEX", "d", "5", "v");
        h.Run("PSETEX", "e", "5", "v");
        h.Run("EXPIRE", "plain", "3");
        h.Run("PEXPIRE", "plain", "3");
        h.Run("EXPIREAT", "plain", "2000000000");
        h.Run("EXPIRE", "plain", "100", "LT");
        h.Run("EXPIRE", "plain", "1", "NX"); // no-op: not logged
        h.Run("INCRBYFLOAT", "f", "1.5");
        h.Run("GETDEL", "f");
        h.Run("GETSET", "g", "v");
        h.Run("DEL", "a", "nope", "b");
        h.Run("DEL", "nope");
        h.Run("SET", "x", "1", "XX"); // not set: not logged
        h.Run("GET", "g");
        h.Run("EXPIRE", "g", "-1");
        h.Run("INCR", "n");
        h.Run("INCRBY", "n", "x"); // error: not logged
        h.Run("SETRANGE", "n", "0", "");
        h.Run("FLUSHALL");
        Assert.Equal(
        [
            "SELECT 0",
            $"SET a 1 PXAT {now + 10_000}",
            $"SET b 1 PXAT {now + 10}",
            "SET c 1 PXAT 2000000000000",
            "SET plain 1",
            "SET plain 2 KEEPTTL",
            $"SET d v PXAT {now + 5000}",
            $"SET e v PXAT {now + 5}",
            $"PEXPIREAT plain {now + 3000}",
            $"PEXPIREAT plain {now + 3}",
            "PEXPIREAT plain 2000000000000",
            $"PEXPIREAT plain {now + 100_000}",
            "SET f 1.5 KEEPTTL",
            "DEL f",
            "SET g v",
            "DEL a b",
            "DEL g",
            "INCR n",
            "FLUSHALL",
        ], h.Logged);
    }

    [Fact]
    public void Encoded_format_is_redis_aof()
    {
        var buffer = new ArrayBufferWriter<byte>();
        AofWriter.WriteCommand(buffer, KvCommand.Create("SET", "key", "va\r\nl"));
        Assert.Equal("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n", Resp.Text(buffer.WrittenSpan));
    }

    /// <summary>A buffer that hands out exactly the span asked for and counts the requests (WriteCommand's one-span
    /// encoding must size the command exactly: a short span throws, and the request count shows which path ran).</summary>
    private sealed class ExactWriter : IBufferWriter<byte>
    {
        private byte[] _data = new byte[64];
        private int _written, _asked = -1;
        public int Requests { get; private set; }
        public ReadOnlySpan<byte> Written => _data.AsSpan(0, _written);
        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Requests++;
            if (_written + sizeHint > _data.Length) Array.Resize(ref _data, Math.Max(_data.Length * 2, _written + sizeHint));
            _asked = sizeHint;
            return _data.AsSpan(_written, sizeHint);
        }
        public Memory<byte> GetMemory(int sizeHint = 0) => throw new NotSupportedException();
        public void Advance(int count)
        {
            Assert.InRange(count, 0, _asked);
            _written += count;
            _asked = -1;
        }
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(9, 3)]
    [InlineData(10, 9)]
    [InlineData(99, 10)]
    [InlineData(100, 11)]
    [InlineData(9999, 1)]
    [InlineData(16 * 1024 - 40, 1)]
    public void Commands_up_to_16_KiB_are_encoded_in_one_span_byte_for_byte_as_redis_aof(int valueLength, int extraArguments)
    {
        string[] args = ["XCLAIM", new string('v', valueLength), .. Enumerable.Range(0, extraArguments).Select(i => new string((char)('a' + i % 26), i))];
        var writer = new ExactWriter();
        AofWriter.WriteCommand(writer, KvCommand.Create(args));
        Assert.Equal(Resp.Text(Resp.Encode(args)), Resp.Text(writer.Written));
        Assert.Equal(1, writer.Requests);
    }

    [Fact]
    public void A_command_over_16_KiB_is_encoded_piece_by_piece_with_the_same_bytes()
    {
        string[] args = ["SET", "k", new string('x', 20_000), "PX", "12345"];
        var writer = new ExactWriter();
        AofWriter.WriteCommand(writer, KvCommand.Create(args));
        Assert.Equal(Resp.Text(Resp.Encode(args)), Resp.Text(writer.Written));
        Assert.True(writer.Requests > 1);
    }

    [Fact]
    public void Torn_tail_is_reported_with_the_offset_to_truncate_to()
    {
        var (h, log) = RunWorkload();
        byte[] extra = Resp.Encode("SET", "torn", "value");
        for (int cut = 1; cut < extra.Length; cut++)
        {
            byte[] file = [.. log, .. extra.AsSpan(0, cut)];
            var store = new KvStore();
            AofLoadResult r = AofLoader.Load(file, store, h.Now);
            Assert.True(r.IsTruncated);
            Assert.Equal(log.Length, r.ValidLength);
            Assert.Equal(file.Length, r.TotalLength);
            Assert.False(store.TryGetValue("torn"u8, h.Now, out _));

            AofLoadResult s = AofLoader.Load(new MemoryStream(file), new KvStore(), h.Now);
            Assert.Equal(r, s);
        }
    }

    [Fact]
    public void Corruption_in_the_middle_throws_with_the_offset()
    {
        byte[] first = Resp.Encode("SET", "a", "1");
        byte[] second = Resp.Encode("SET", "b", "2");
        byte[] bad = [.. first, .. second, .. Resp.Encode("SET", "c", "3")];
        bad[first.Length + 5] = (byte)'X'; // second command's "$3" header becomes "$X"... at byte offset first.Length+5
        var ex = Assert.Throws<AofCorruptException>(() => AofLoader.Load(bad, new KvStore(), 0));
        Assert.Equal(first.Length, ex.Offset);
        Assert.Contains($"offset {first.Length}", ex.Message);
        var ex2 = Assert.Throws<AofCorruptException>(() => AofLoader.Load(new MemoryStream(bad), new KvStore(), 0));
        Assert.Equal(first.Length, ex2.Offset);

        byte[] inline = [.. first, .. "SET x y\r\n"u8];
        Assert.Equal(first.Length, Assert.Throws<AofCorruptException>(() => AofLoader.Load(inline, new KvStore(), 0)).Offset);

        byte[] unknown = [.. first, .. Resp.Encode("GET", "a"), .. second];
        Assert.Equal(first.Length, Assert.Throws<AofCorruptException>(() => AofLoader.Load(unknown, new KvStore(), 0)).Offset);
    }

    [Fact]
    public void Stream_loader_handles_values_larger_than_its_chunk()
    {
        string big = new('x', 200_000);
        byte[] file = [.. Resp.Encode("SET", "big", big), .. Resp.Encode("SET", "small", "1")];
        var store = new KvStore();
        AofLoadResult r = AofLoader.Load(new MemoryStream(file), store, 0);
        Assert.Equal(2, r.CommandCount);
        Assert.True(store.TryGetValue("big"u8, 0, out byte[] v));
        Assert.Equal(200_000, v.Length);
    }

    [Fact]
    public void Rewrite_is_compact_and_replays_to_the_same_contents()
    {
        var (h, log) = RunWorkload();
        for (int i = 0; i < 200; i++) h.Run("SET", "bulk" + i, "v" + i);
        var output = new ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, output);
        var fresh = new KvStore();
        AofLoadResult r = AofLoader.Load(output.WrittenSpan, fresh, h.Now);
        Assert.False(r.IsTruncated);
        Assert.Equal(Contents(h.Store, h.Now), Contents(fresh, h.Now));
        Assert.True(r.CommandCount < h.Store.Count / 10 + 20, $"{r.CommandCount} commands");
        Assert.True(output.WrittenCount < log.Length + 200 * 40);
    }
}

public class AofRedisCheckTests
{
    private const string Tool = "/usr/bin/redis-check-aof";

    private static (int ExitCode, string Output) Check(byte[] file)
    {
        string path = Path.Combine(Path.GetTempPath(), $"kv-aof-{Guid.NewGuid():N}.aof");
        File.WriteAllBytes(path, file);
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo(Tool, [path]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = System.Diagnostics.Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Redis_check_aof_accepts_our_log_and_agrees_on_the_torn_offset()
    {
        if (!File.Exists(Tool)) return; // installed by .ci/run; absent on bare machines
        var h = new StoreHarness();
        var log = new System.Buffers.ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        foreach (string[] c in new[] { new[] { "SET", "a", "1", "EX", "10" }, ["INCRBYFLOAT", "f", "2.5"], ["MSET", "x", "\r\n", "y", ""], ["GETDEL", "a"] })
            h.Store.Execute(KvCommand.Create(c), h.Now, new RespWriter(new System.Buffers.ArrayBufferWriter<byte>()), sink);
        var rewrite = new System.Buffers.ArrayBufferWriter<byte>();
        AofRewriter.Write(h.Store, h.Now, rewrite);
        byte[] file = [.. rewrite.WrittenSpan, .. log.WrittenSpan];
        var (code, output) = Check(file);
        Assert.True(code == 0, output);
        Assert.Contains("is valid", output);

        byte[] torn = [.. file, .. Resp.Encode("SET", "t", "v").AsSpan(0, 20)];
        AofLoadResult r = AofLoader.Load(torn, new KvStore(), h.Now);
        (code, output) = Check(torn);
        Assert.NotEqual(0, code);
        Assert.Contains($"ok_up_to={r.ValidLength},", output);
    }
}
