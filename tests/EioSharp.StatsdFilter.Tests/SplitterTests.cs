using static EioSharp.StatsdFilter.Tests.TestUtil;

namespace EioSharp.StatsdFilter.Tests;

public class SplitterTests
{
    [Theory]
    [InlineData("a:1|c", new[] { "a:1|c" })]
    [InlineData("a:1|c\n", new[] { "a:1|c" })]
    [InlineData("a:1|c\nb:2|g", new[] { "a:1|c", "b:2|g" })]
    [InlineData("a:1|c\r\nb:2|g\r\n", new[] { "a:1|c", "b:2|g" })]
    [InlineData("\n\na:1|c\n\n\nb:2|g\n\n", new[] { "a:1|c", "b:2|g" })]
    [InlineData("\r\n\r\na:1|c\r\n", new[] { "a:1|c" })]
    [InlineData("", new string[0])]
    [InlineData("\n", new string[0])]
    [InlineData("\r", new string[0])]
    [InlineData("a\rb\n", new[] { "a\rb" })]
    [InlineData(" a \n", new[] { " a " })]
    public void Datagram_splits_into_nonempty_lines(string payload, string[] expected)
    {
        Assert.Equal(expected, SplitDatagram(payload));
    }

    [Fact]
    public void Fuzz_regression_only_one_carriage_return_is_stripped()
    {
        // Found by FuzzTests: "\r\r\n" leaves a line "\r"; it is not empty, so the parser rejects it.
        Assert.Equal(["a:1|c\r", "\r"], SplitDatagram("a:1|c\r\r\n\r\r\n"));
        Assert.False(StatsdLine.TryParse(B("a:1|c\r"), out _, out StatsdParseError error));
        Assert.Equal(StatsdParseError.UnknownType, error);
        Assert.False(StatsdLine.TryParse(B("\r"), out _, out error));
        Assert.Equal(StatsdParseError.MissingValue, error);
    }

    [Fact]
    public void Datagram_lines_are_slices_of_the_payload()
    {
        byte[] payload = B("ab\ncd");
        int total = 0;
        foreach (ReadOnlySpan<byte> line in StatsdLineSplitter.SplitDatagram(payload))
        {
            Assert.True(line.Overlaps(payload));
            total += line.Length;
        }

        Assert.Equal(4, total);
    }

    private const string Stream = "a:1|c\nbb:2|g\r\n\n\r\nccc:3|ms|#t:1\nlast:4|h";

    [Fact]
    public void Tcp_complete_input_in_one_read()
    {
        var framer = new StatsdTcpLineFramer();
        Assert.Equal(["a:1|c", "bb:2|g", "ccc:3|ms|#t:1", "last:4|h"], Frame(framer, B(Stream), [int.MaxValue]));
    }

    [Fact]
    public void Tcp_split_at_every_byte_boundary()
    {
        byte[] stream = B(Stream);
        string[] expected = ["a:1|c", "bb:2|g", "ccc:3|ms|#t:1", "last:4|h"];
        for (int split = 0; split <= stream.Length; split++)
        {
            var framer = new StatsdTcpLineFramer();
            var lines = Frame(framer, stream, [split == 0 ? stream.Length : split, stream.Length]);
            Assert.Equal(expected, lines);
        }

        for (int size = 1; size <= stream.Length; size++)
        {
            var framer = new StatsdTcpLineFramer();
            Assert.Equal(expected, Frame(framer, stream, [size]));
        }
    }

    [Fact]
    public void Tcp_without_end_of_stream_keeps_the_partial_line()
    {
        var framer = new StatsdTcpLineFramer();
        Assert.Equal(["a:1|c"], Frame(framer, B("a:1|c\nb:2"), [3], endOfStream: false));
        Assert.Equal(3, framer.BufferedBytes);
        Assert.Equal(["b:2|c"], Frame(framer, B("|c\n"), [1], endOfStream: false));
        Assert.Equal(0, framer.BufferedBytes);
    }

    [Fact]
    public void Tcp_overlong_line_is_dropped_and_counted_at_every_split()
    {
        const int max = 16;
        string longLine = new('x', max + 1);
        string exact = new('y', max);
        byte[] stream = B($"a:1|c\n{longLine}\n{exact}\n{new string('z', 100)}\nb:2|c\n{longLine}");
        string[] expected = ["a:1|c", exact, "b:2|c"];
        for (int size = 1; size <= stream.Length; size++)
        {
            var framer = new StatsdTcpLineFramer(maxLineLength: max, receiveSize: 7);
            Assert.Equal(expected, Frame(framer, stream, [size]));
            Assert.Equal(3, framer.TruncatedLines);
        }
    }

    [Fact]
    public void Tcp_buffer_stays_bounded_without_newlines()
    {
        var framer = new StatsdTcpLineFramer(maxLineLength: 64, receiveSize: 64);
        byte[] junk = new byte[100_000];
        junk.AsSpan().Fill((byte)'q');
        Assert.Empty(Frame(framer, junk, [64], endOfStream: false));
        Assert.True(framer.BufferedBytes <= 64);
        Assert.Equal(1, framer.TruncatedLines);
        Assert.Equal(["ok:1|c"], Frame(framer, B("\nok:1|c\n"), [64]));
        Assert.Equal(1, framer.TruncatedLines);
    }

    [Fact]
    public void Tcp_limit_is_8192_bytes_by_default()
    {
        var framer = new StatsdTcpLineFramer();
        Assert.Equal(8192, framer.MaxLineLength);
        string fits = "n:" + new string('1', 8192 - 4) + "|c";
        string tooLong = "n:" + new string('1', 8192 - 3) + "|c";
        Assert.Equal([fits], Frame(framer, B(fits + "\n" + tooLong + "\n"), [1000]));
        Assert.Equal(1, framer.TruncatedLines);
    }

    [Fact]
    public void Tcp_final_line_over_limit_is_counted()
    {
        var framer = new StatsdTcpLineFramer(maxLineLength: 8, receiveSize: 100);
        Memory<byte> buffer = framer.GetReadBuffer();
        B("123456789").CopyTo(buffer.Span);
        framer.Advance(9);
        Assert.False(framer.TryReadLine(out _));
        Assert.False(framer.TryReadFinalLine(out _));
        Assert.Equal(1, framer.TruncatedLines);
    }

    [Fact]
    public void Tcp_get_read_buffer_requires_draining()
    {
        var framer = new StatsdTcpLineFramer(maxLineLength: 4, receiveSize: 4);
        Memory<byte> buffer = framer.GetReadBuffer();
        B("a\nb\nc\nd\n").CopyTo(buffer.Span);
        framer.Advance(8);
        Assert.Throws<InvalidOperationException>(() => framer.GetReadBuffer());
        Assert.Throws<ArgumentOutOfRangeException>(() => framer.Advance(1));
    }
}
