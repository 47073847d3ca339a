using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class RespParserFuzzTests
{
    private static readonly string[] Words = ["SET", "GET", "k", "", "hello world", "\"q\"", "'s'", "\\x41", "*", "$", "\r\n", "-1", "0", "99999999999"];

    [Fact]
    public void Random_and_mutated_frames_only_throw_protocol_errors()
    {
        var random = new Random(12345);
        var parser = new RespParser(new RespLimits { MaxBulkLength = 1 << 20, MaxInlineLength = 4096, MaxMultibulkCount = 1000 });
        int parsed = 0, errors = 0, incomplete = 0;
        for (int iteration = 0; iteration < 120_000; iteration++)
        {
            byte[] frame = Generate(random);
            try
            {
                ReadOnlySpan<byte> rest = frame;
                int guard = 0;
                while (parser.TryParseCommand(rest, out int consumed, out KvCommand? c))
                {
                    Assert.True(consumed > 0 && consumed <= rest.Length);
                    Assert.True(c.Count >= 1);
                    _ = c.Info;
                    rest = rest[consumed..];
                    parsed++;
                    Assert.True(++guard < 10_000);
                }
                incomplete++;
            }
            catch (RespProtocolException)
            {
                errors++;
            }
        }
        Assert.True(parsed > 1000 && errors > 1000 && incomplete > 1000, $"{parsed} {errors} {incomplete}");
    }

    private static byte[] Generate(Random random)
    {
        byte[] frame;
        switch (random.Next(4))
        {
            case 0:
            {
                frame = new byte[random.Next(0, 64)];
                random.NextBytes(frame);
                break;
            }
            case 1:
            {
                var sb = new StringBuilder();
                int n = random.Next(0, 5);
                for (int i = 0; i < n; i++)
                {
                    if (i > 0) sb.Append(' ');
                    sb.Append(Words[random.Next(Words.Length)]);
                }
                sb.Append(random.Next(2) == 0 ? "\r\n" : "\n");
                frame = Encoding.UTF8.GetBytes(sb.ToString());
                break;
            }
            default:
            {
                int n = random.Next(1, 5);
                var args = new string[n];
                for (int i = 0; i < n; i++) args[i] = Words[random.Next(Words.Length)];
                frame = Resp.Encode(args);
                if (random.Next(3) == 0) frame = [.. frame, .. Resp.Encode("PING")];
                break;
            }
        }
        // Mutate: flip, insert, delete or truncate a few bytes.
        int mutations = random.Next(0, 4);
        for (int m = 0; m < mutations && frame.Length > 0; m++)
        {
            int at = random.Next(frame.Length);
            switch (random.Next(4))
            {
                case 0: frame[at] = (byte)random.Next(256); break;
                case 1: frame = [.. frame.AsSpan(0, at), (byte)"*$\r\n-0123456789\"'\\"[random.Next(18)], .. frame.AsSpan(at)]; break;
                case 2: frame = [.. frame.AsSpan(0, at), .. frame.AsSpan(at + 1)]; break;
                default: frame = frame[..at]; break;
            }
        }
        return frame;
    }
}

public class CommandFuzzTests
{
    private static readonly string[] Names =
    [
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "MGET", "MSET", "MSETNX", "DEL", "UNLINK", "EXISTS", "TYPE",
        "INCR", "DECR", "INCRBY", "DECRBY", "INCRBYFLOAT", "APPEND", "STRLEN", "GETRANGE", "SUBSTR", "SETRANGE", "EXPIRE",
        "PEXPIRE", "EXPIREAT", "PEXPIREAT", "EXPIRETIME", "PEXPIRETIME", "TTL", "PTTL", "PERSIST", "KEYS", "SCAN", "RANDOMKEY",
        "RENAME", "RENAMENX", "DBSIZE", "FLUSHDB", "PING", "ECHO", "HELLO", "AUTH", "SELECT", "CLIENT", "COMMAND", "CONFIG", "INFO", "NOPE",
    ];

    private static readonly string[] Args =
    [
        "k", "k2", "*", "k*", "[a-", "0", "1", "-1", "10", "-9223372036854775808", "9223372036854775807", "99999999999999999999",
        "1.5", "inf", "-inf", "nan", "1e308", "", "EX", "PX", "EXAT", "PXAT", "NX", "XX", "GT", "LT", "GET", "KEEPTTL", "MATCH",
        "COUNT", "TYPE", "string", "3", "2", "AUTH", "SETNAME", "ID", "GETNAME", "DOCS", "save", "all", "x y", "\r\n",
    ];

    [Fact]
    public void Random_commands_never_throw_and_replies_are_well_formed()
    {
        var random = new Random(777);
        var store = new KvStore(new RespLimits { MaxBulkLength = 1 << 16 }, new Random(3));
        var stats = new KvServerStats();
        var conn = new KvConnectionState(1, new KvServerConfig(), stats);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new RespWriter(buffer);
        var aof = new System.Buffers.ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(aof);
        long now = 1_700_000_000_000;
        for (int i = 0; i < 100_000; i++)
        {
            int n = random.Next(0, 6);
            var args = new string[n + 1];
            args[0] = Names[random.Next(Names.Length)];
            for (int j = 1; j <= n; j++) args[j] = Args[random.Next(Args.Length)];
            KvCommand command = KvCommand.Create(args);
            buffer.ResetWrittenCount();
            if (conn.Process(command, writer, now) == KvDispatch.Store) store.Execute(command, now, writer, sink);
            Assert.True(buffer.WrittenCount > 0, command.ToString());
            RespReplyParser.ParseAll(buffer.WrittenSpan);
            now += random.Next(0, 50);
            if (i % 100 == 0) store.ActiveExpireCycle(now, 50);
        }
        // The log of everything replays into the same contents.
        var replayed = new KvStore();
        AofLoader.Load(aof.WrittenSpan, replayed, now);
        Assert.Equal(
            store.CreateSnapshot(now).Select(e => (Resp.Text(e.Key), Resp.Text((byte[])e.Value), e.ExpireAtUnixMs)).Order(),
            replayed.CreateSnapshot(now).Select(e => (Resp.Text(e.Key), Resp.Text((byte[])e.Value), e.ExpireAtUnixMs)).Order());
    }
}
