using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class RespParserTests
{
    private static readonly RespParser Parser = RespParser.Default;

    private static KvCommand ParseOne(string input, out int consumed)
    {
        Assert.True(Parser.TryParseCommand(Encoding.UTF8.GetBytes(input), out consumed, out KvCommand? cmd));
        return cmd!;
    }

    private static string Error(string input, RespParser? parser = null)
    {
        var ex = Assert.Throws<RespProtocolException>(() => (parser ?? Parser).TryParseCommand(Encoding.Latin1.GetBytes(input), out _, out _));
        return ex.Message;
    }

    [Fact]
    public void Multibulk_complete()
    {
        KvCommand c = ParseOne("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", out int consumed);
        Assert.Equal(["SET", "k", "hello"], Resp.Args(c));
        Assert.Equal(31, consumed);
        Assert.Equal("set", c.Info!.Name);
    }

    [Fact]
    public void Multibulk_binary_and_empty_arguments()
    {
        byte[] input = [.. "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\n"u8, 0, 13, 10, 255, .. "\r\n"u8];
        Assert.True(Parser.TryParseCommand(input, out int consumed, out KvCommand? c));
        Assert.Equal(input.Length, consumed);
        Assert.Equal(0, c!.GetMemory(1).Length);
        Assert.Equal(new byte[] { 0, 13, 10, 255 }, c.ToArray(2));
    }

    [Fact]
    public void Pipelined_commands_are_parsed_one_at_a_time()
    {
        byte[] input = [.. Resp.Encode("PING"), .. Resp.Encode("GET", "a"), .. "ECHO x\r\n"u8];
        var names = new List<string>();
        ReadOnlySpan<byte> rest = input;
        while (Parser.TryParseCommand(rest, out int consumed, out KvCommand? c))
        {
            names.Add(c.ToString());
            rest = rest[consumed..];
        }
        Assert.Equal(["PING", "GET a", "ECHO x"], names);
        Assert.Equal(0, rest.Length);
    }

    [Theory]
    [InlineData("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n")]
    [InlineData("*1\r\n$4\r\nPING\r\n")]
    [InlineData("*2\r\n$0\r\n\r\n$2\r\nab\r\n")]
    [InlineData("SET k \"a b\\x41\"\r\n")]
    [InlineData("PING\n")]
    [InlineData("\r\n\r\n*0\r\n*-1\r\nPING\r\n")]
    public void Split_at_every_byte_boundary(string text)
    {
        byte[] full = Encoding.UTF8.GetBytes(text);
        Assert.True(Parser.TryParseCommand(full, out int fullConsumed, out KvCommand? expected));
        Assert.Equal(full.Length, fullConsumed);
        for (int cut = 0; cut < full.Length; cut++)
        {
            // A prefix never yields a command and never throws; skipped bytes are consumed.
            Assert.False(Parser.TryParseCommand(full.AsSpan(0, cut), out int consumed, out _));
            Assert.True(consumed <= cut);
            // Feeding the rest after dropping the consumed part yields the same command.
            Assert.True(Parser.TryParseCommand(full.AsSpan(consumed), out int rest, out KvCommand? c));
            Assert.Equal(full.Length, consumed + rest);
            Assert.Equal(Resp.Args(expected!), Resp.Args(c!));

            // Same through a two-segment ReadOnlySequence split at the cut.
            ReadOnlySequence<byte> seq = TwoSegments(full, cut);
            Assert.True(Parser.TryParseCommand(seq, out long seqConsumed, out KvCommand? s));
            Assert.Equal(full.Length, seqConsumed);
            Assert.Equal(Resp.Args(expected!), Resp.Args(s!));
        }
    }

    private static ReadOnlySequence<byte> TwoSegments(byte[] data, int cut)
    {
        var first = new Segment(data.AsMemory(0, cut), 0);
        Segment last = first.Append(data.AsMemory(cut));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long index)
        {
            Memory = memory;
            RunningIndex = index;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var s = new Segment(memory, RunningIndex + Memory.Length);
            Next = s;
            return s;
        }
    }

    [Fact]
    public void Empty_lines_and_empty_arrays_are_skipped_and_consumed()
    {
        Assert.False(Parser.TryParseCommand("\r\n\n*0\r\n*-1\r\n"u8, out int consumed, out _));
        Assert.Equal(12, consumed);
        Assert.False(Parser.TryParseCommand("   \r\n*1\r\n$4\r\nPI"u8, out consumed, out _));
        Assert.Equal(5, consumed);
    }

    [Theory]
    [InlineData("PING\r\n", new[] { "PING" })]
    [InlineData("PING\n", new[] { "PING" })]
    [InlineData("  set   k  v  \r\n", new[] { "set", "k", "v" })]
    [InlineData("SET k \"hello world\"\r\n", new[] { "SET", "k", "hello world" })]
    [InlineData("SET k \"a\\nb\\r\\t\\\"q\\\\\"\r\n", new[] { "SET", "k", "a\nb\r\t\"q\\" })]
    [InlineData("SET k \"\\x41\\x7a\\xZZ\"\r\n", new[] { "SET", "k", "AzxZZ" })]
    [InlineData("SET k 'it\\'s \"x\"'\r\n", new[] { "SET", "k", "it's \"x\"" })]
    [InlineData("SET k 'a\\nb'\r\n", new[] { "SET", "k", "a\\nb" })]
    [InlineData("SET k \"\"\r\n", new[] { "SET", "k", "" })]
    [InlineData("a\"b c\" d\r\n", new[] { "ab c", "d" })]
    public void Inline_commands_and_quoting(string input, string[] expected)
    {
        KvCommand c = ParseOne(input, out int consumed);
        Assert.Equal(expected, Resp.Args(c));
        Assert.Equal(Encoding.UTF8.GetByteCount(input), consumed);
    }

    [Theory]
    [InlineData("SET k \"abc\r\n")]
    [InlineData("SET k 'abc\r\n")]
    [InlineData("SET k \"abc\"def\r\n")]
    [InlineData("SET k 'abc'def\r\n")]
    public void Inline_unbalanced_quotes(string input)
    {
        Assert.Equal("Protocol error: unbalanced quotes in request", Error(input));
    }

    [Theory]
    [InlineData("*abc\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*+1\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*01\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*1 \r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*1048577\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*99999999999999999999999\r\n", "Protocol error: invalid multibulk length")]
    [InlineData("*1\rX", "Protocol error: invalid multibulk length")]
    [InlineData("*1\r\nx", "Protocol error: expected '$', got 'x'")]
    [InlineData("*2\r\n$1\r\na\r\n:1\r\n", "Protocol error: expected '$', got ':'")]
    [InlineData("*1\r\n$-1\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$abc\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$536870913\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$999999999999\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$01\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$+1\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$1\rX", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$1 \r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$1234567890123456789\r\n", "Protocol error: invalid bulk length")]
    [InlineData("*1\r\n$3\r\nabcXY", "Protocol error: expected '\\r\\n' after bulk string")]
    [InlineData("*1\r\n$3\r\nabc\rX", "Protocol error: expected '\\r\\n' after bulk string")]
    public void Malformed_multibulk(string input, string message)
    {
        Assert.Equal(message, Error(input));
    }

    [Fact]
    public void Huge_bulk_header_fails_at_once_without_payload()
    {
        // Only the header has arrived: the limit is checked before waiting for (or allocating) the payload.
        Assert.Equal("Protocol error: invalid bulk length", Error("*1\r\n$999999999999\r\n"));
        Assert.Equal("Protocol error: invalid bulk length", Error("*2\r\n$536870913\r\n"));
        long allocated = AllocationMeter.Measure(
            () => Assert.Throws<RespProtocolException>(() => Parser.TryParseCommand("*1\r\n$536870912000\r\n"u8, out _, out _)));
        Assert.True(allocated < 64 * 1024, $"{allocated} B");
    }

    [Fact]
    public void Huge_multibulk_count_fails_at_once()
    {
        Assert.Equal("Protocol error: invalid multibulk length", Error("*2000000\r\n"));
        var small = new RespParser(new RespLimits { MaxMultibulkCount = 3 });
        Assert.Equal("Protocol error: invalid multibulk length", Error("*4\r\n", small));
        Assert.True(small.TryParseCommand(Resp.Encode("a", "b", "c"), out _, out _));
    }

    [Fact]
    public void Configured_bulk_limit()
    {
        var small = new RespParser(new RespLimits { MaxBulkLength = 4 });
        Assert.True(small.TryParseCommand(Resp.Encode("abcd"), out _, out _));
        Assert.Equal("Protocol error: invalid bulk length", Error("*1\r\n$5\r\n", small));
    }

    [Fact]
    public void Too_big_inline_request()
    {
        var small = new RespParser(new RespLimits { MaxInlineLength = 16 });
        Assert.Equal("Protocol error: too big inline request", Error(new string('a', 17), small));
        Assert.Equal("Protocol error: too big inline request", Error(new string('a', 17) + "\r\n", small));
        Assert.False(small.TryParseCommand(Encoding.ASCII.GetBytes(new string('a', 16)), out _, out _));
        Assert.True(small.TryParseCommand(Encoding.ASCII.GetBytes(new string('a', 16) + "\r\n"), out _, out _));
        Assert.Equal("Protocol error: too big inline request", Error(new string('a', 64 * 1024 + 1)));
    }

    [Fact]
    public void Too_big_count_strings()
    {
        var small = new RespParser(new RespLimits { MaxInlineLength = 16 });
        Assert.Equal("Protocol error: too big mbulk count string", Error("*" + new string('1', 20), small));
        Assert.Equal("Protocol error: too big bulk count string", Error("*1\r\n$" + new string('1', 20), small));
    }

    [Fact]
    public void Multibulk_only_mode_rejects_inline()
    {
        var aof = new RespParser(RespLimits.Default) { MultibulkOnly = true };
        Assert.Equal("Protocol error: expected '*', got 'P'", Error("PING\r\n", aof));
    }

    [Fact]
    public void Unknown_and_case_insensitive_lookup()
    {
        Assert.Equal("get", ParseOne("gEt a\r\n", out _).Info!.Name);
        Assert.Null(ParseOne("nosuch a\r\n", out _).Info);
        Assert.Equal(KvRoute.Unknown, KvCommandTable.Route(ParseOne("nosuch\r\n", out _)));
        Assert.Equal(KvRoute.Store, KvCommandTable.Route(ParseOne("get a\r\n", out _)));
        Assert.Equal(KvRoute.Connection, KvCommandTable.Route(ParseOne("ping\r\n", out _)));
        Assert.True(KvCommandTable.IsWrite("set"u8));
        Assert.False(KvCommandTable.IsWrite("GET"u8));
        Assert.False(KvCommandTable.IsWrite("nope"u8));
    }
}
