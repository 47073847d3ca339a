using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The connection's resumable parser: same commands as <see cref="RespParser"/> however the bytes are split,
/// work linear in the bytes (each argument taken once), large arguments in arrays of their own, and Redis's
/// unauthenticated limits.</summary>
public class RespRequestReaderTests
{
    /// <summary>Feeds <paramref name="input"/> in pieces of <paramref name="piece"/> bytes through a buffer that keeps
    /// only unconsumed bytes, as KvConnection does; large-argument bytes go to <see cref="RespRequestReader.DirectTarget"/>
    /// when nothing else is buffered. Returns the commands, and the most bytes the buffer ever held.</summary>
    private static (List<KvCommand> Commands, int MaxBuffered) Feed(RespRequestReader reader, byte[] input, int piece)
    {
        var commands = new List<KvCommand>();
        var buffer = new List<byte>();
        int maxBuffered = 0;
        int pos = 0;
        while (pos < input.Length)
        {
            Memory<byte> direct = reader.DirectTarget;
            if (buffer.Count == 0 && !direct.IsEmpty)
            {
                int d = Math.Min(Math.Min(piece, direct.Length), input.Length - pos);
                input.AsSpan(pos, d).CopyTo(direct.Span);
                reader.AdvanceDirect(d);
                pos += d;
                continue;
            }

            int n = Math.Min(piece, input.Length - pos);
            buffer.AddRange(input.AsSpan(pos, n).ToArray());
            pos += n;
            maxBuffered = Math.Max(maxBuffered, buffer.Count);
            while (true)
            {
                bool complete = reader.TryRead(buffer.ToArray(), out int consumed, out KvCommand? c);
                buffer.RemoveRange(0, consumed);
                if (!complete) break;
                commands.Add(c!);
            }
        }

        return (commands, maxBuffered);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(1000)]
    public void Pieces_of_any_size_give_the_commands_the_stateless_parser_gives(int piece)
    {
        byte[] input =
        [
            .. Resp.Encode("SET", "k", "hello"), .. "\r\n*0\r\nPING\r\n"u8, .. Resp.Encode("MSET", "a", "1", "b", ""),
            .. "ECHO \"x y\"\r\n"u8, .. Resp.Encode("GET", "k"),
        ];
        var expected = new List<string>();
        ReadOnlySpan<byte> rest = input;
        while (RespParser.Default.TryParseCommand(rest, out int consumed, out KvCommand? c))
        {
            expected.Add(string.Join("|", Resp.Args(c)));
            rest = rest[consumed..];
        }

        var (commands, _) = Feed(new RespRequestReader(RespParser.Default), input, piece);
        Assert.Equal(expected, commands.Select(c => string.Join("|", Resp.Args(c))));
        Assert.Equal(5, expected.Count);
    }

    [Fact]
    public void A_trickled_command_keeps_only_the_argument_in_flight_in_the_buffer()
    {
        var args = new List<string> { "RPUSH", "l" };
        args.AddRange(Enumerable.Range(0, 20_000).Select(i => "v" + i));
        byte[] input = Resp.Encode([.. args]);
        var reader = new RespRequestReader(RespParser.Default);
        var (commands, maxBuffered) = Feed(reader, input, 13);
        KvCommand c = Assert.Single(commands);
        Assert.Equal(args.Count, c.Count);
        Assert.Equal("v19999", c.GetString(c.Count - 1));
        Assert.True(maxBuffered < 64, $"the caller's buffer held {maxBuffered} bytes"); // each argument is taken as soon as it is whole
        Assert.False(reader.InCommand);
    }

    [Fact]
    public void A_large_argument_is_received_into_its_own_array_and_shared_with_the_store()
    {
        string big = new('z', RespRequestReader.LargeArgumentThreshold * 3 + 5);
        byte[] input = [.. Resp.Encode("SET", "k", big), .. Resp.Encode("PING")];
        var reader = new RespRequestReader(RespParser.Default);
        var (commands, maxBuffered) = Feed(reader, input, 4096);
        Assert.Equal(2, commands.Count);
        KvCommand set = commands[0];
        Assert.Equal(big, set.GetString(2));
        Assert.Same(set.ToSharedArray(2), set.ToSharedArray(2)); // its own array: handed over, not copied
        Assert.NotSame(set.ToSharedArray(1), set.ToSharedArray(1)); // a small argument is copied
        Assert.True(maxBuffered <= 4096, $"{maxBuffered}");
        Assert.Equal("PING", commands[1].GetString(0));
    }

    [Fact]
    public void A_large_argument_must_end_with_crlf()
    {
        byte[] input = Encoding.ASCII.GetBytes($"*1\r\n${RespRequestReader.LargeArgumentThreshold}\r\n" + new string('a', RespRequestReader.LargeArgumentThreshold) + "XY");
        var ex = Assert.Throws<RespProtocolException>(() => Feed(new RespRequestReader(RespParser.Default), input, 1000));
        Assert.Equal("Protocol error: expected '\\r\\n' after bulk string", ex.Message);
    }

    [Theory]
    [InlineData("*11\r\n", "Protocol error: unauthenticated multibulk length")]
    [InlineData("*2\r\n$4\r\nAUTH\r\n$16385\r\n", "Protocol error: unauthenticated bulk length")]
    [InlineData("*1\r\n$300000000\r\n", "Protocol error: unauthenticated bulk length")]
    [InlineData("*2000000\r\n", "Protocol error: invalid multibulk length")] // the ordinary limit is checked first, as Redis does
    public void Before_auth_redis_limits_apply(string input, string error)
    {
        var reader = new RespRequestReader(RespParser.Default) { Unauthenticated = true };
        var ex = Assert.Throws<RespProtocolException>(() => reader.TryRead(Encoding.ASCII.GetBytes(input), out _, out _));
        Assert.Equal(error, ex.Message);
    }

    [Fact]
    public void At_the_unauthenticated_limits_and_after_auth_commands_parse()
    {
        var reader = new RespRequestReader(RespParser.Default) { Unauthenticated = true };
        Assert.True(reader.TryRead(Resp.Encode(["DEL", .. Enumerable.Range(0, 9).Select(i => "k" + i)]), out _, out KvCommand? c));
        Assert.Equal(10, c.Count);
        Assert.True(reader.TryRead(Resp.Encode("ECHO", new string('e', 16384)), out _, out c));
        reader.Unauthenticated = false;
        Assert.True(reader.TryRead(Resp.Encode(["DEL", .. Enumerable.Range(0, 20).Select(i => "k" + i)]), out _, out c));
        Assert.Equal(21, c.Count);
    }

    /// <summary>What CLIENT LIST shows of a command being received, as Redis counts it: the $n header of a small argument
    /// whose data is incomplete is consumed for Redis (<see cref="RespRequestReader.PendingHeaderLength"/> is subtracted
    /// from qbuf), an incomplete header is not; complete arguments are argv-mem (<see cref="RespRequestReader.ArgumentBytes"/>),
    /// a large argument's received data is qbuf (<see cref="RespRequestReader.PartialArgumentBytes"/>).</summary>
    [Fact]
    public void Partial_command_counts_match_redis_qbuf_and_argv_mem()
    {
        var reader = new RespRequestReader(RespParser.Default);
        byte[] partial = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhel"u8.ToArray();
        Assert.False(reader.TryRead(partial, out int consumed, out _));
        Assert.Equal(partial.Length - 7, consumed); // "$5\r\nhel" stays in the caller's buffer
        Assert.Equal(4, reader.PendingHeaderLength);
        Assert.Equal(4, reader.ArgumentBytes);
        Assert.Equal(3, partial.Length - consumed - reader.PendingHeaderLength); // Redis's qbuf=3

        Assert.True(reader.TryRead("$5\r\nhello\r\n"u8, out _, out KvCommand? set));
        Assert.Equal("hello", set!.GetString(2));
        Assert.Equal(0, reader.ArgumentBytes);

        Assert.False(reader.TryRead("*2\r\n$3\r\nGET\r\n$1"u8, out consumed, out _));
        Assert.Equal(0, reader.PendingHeaderLength); // the header line itself is incomplete: Redis keeps it in qbuf too
        Assert.Equal(3, reader.ArgumentBytes);
        Assert.True(reader.TryRead("$1\r\nk\r\n"u8, out _, out _));

        byte[] large = Encoding.ASCII.GetBytes("*4\r\n$5\r\nRPUSH\r\n$1\r\nb\r\n$40000\r\n" + new string('x', 1000));
        Assert.False(reader.TryRead(large, out consumed, out _));
        Assert.Equal(large.Length, consumed); // taken into the argument's own array
        Assert.Equal(1000, reader.PartialArgumentBytes);
        Assert.Equal(6, reader.ArgumentBytes);
        Assert.Equal(0, reader.PendingHeaderLength);
        reader.AdvanceDirect(39_000); // the rest straight into DirectTarget
        Assert.Equal(40_000, reader.PartialArgumentBytes); // Redis's qbuf until its \r\n is in
        Assert.False(reader.TryRead("\r\n$1\r\n"u8, out consumed, out _));
        Assert.Equal(0, reader.PartialArgumentBytes);
        Assert.Equal(40_006, reader.ArgumentBytes); // the large argument is whole: argv-mem until the command completes
        Assert.True(reader.TryRead("$1\r\nz\r\n"u8, out _, out KvCommand? big));
        Assert.Equal(40_000, big![2].Length);
        Assert.Equal(0, reader.ArgumentBytes);
    }
}
