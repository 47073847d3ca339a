using System.Buffers;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class RespWriterTests
{
    private static string Write(int protocol, Action<RespWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(new RespWriter(buffer, protocol));
        return Resp.Text(buffer.WrittenSpan);
    }

    [Fact]
    public void Resp2_forms()
    {
        Assert.Equal("+OK\r\n", Write(2, w => w.WriteOk()));
        Assert.Equal("+a b\r\n", Write(2, w => w.WriteSimpleString("a\r\nb"[..1] + " b")));
        Assert.Equal("-ERR x  y\r\n", Write(2, w => w.WriteError("ERR x\r\ny")));
        Assert.Equal(":-9223372036854775808\r\n", Write(2, w => w.WriteInteger(long.MinValue)));
        Assert.Equal("$3\r\nabc\r\n", Write(2, w => w.WriteBulkString("abc"u8)));
        Assert.Equal("$0\r\n\r\n", Write(2, w => w.WriteBulkString(""u8)));
        Assert.Equal("$-1\r\n", Write(2, w => w.WriteNullBulkString()));
        Assert.Equal("*-1\r\n", Write(2, w => w.WriteNullArray()));
        Assert.Equal("*2\r\n", Write(2, w => w.WriteArrayHeader(2)));
        Assert.Equal("*4\r\n", Write(2, w => w.WriteMapHeader(2)));
        Assert.Equal("$3\r\n1.5\r\n", Write(2, w => w.WriteDouble(1.5)));
        Assert.Equal("$3\r\ninf\r\n", Write(2, w => w.WriteDouble(double.PositiveInfinity)));
        Assert.Equal(":1\r\n", Write(2, w => w.WriteBoolean(true)));
        Assert.Equal("$2\r\nhi\r\n", Write(2, w => w.WriteVerbatimString("hi")));
    }

    [Fact]
    public void Resp3_forms()
    {
        Assert.Equal("_\r\n", Write(3, w => w.WriteNullBulkString()));
        Assert.Equal("_\r\n", Write(3, w => w.WriteNullArray()));
        Assert.Equal("_\r\n", Write(3, w => w.WriteNull()));
        Assert.Equal("%2\r\n", Write(3, w => w.WriteMapHeader(2)));
        Assert.Equal("~1\r\n", Write(3, w => w.WriteSetHeader(1)));
        Assert.Equal(",1.5\r\n", Write(3, w => w.WriteDouble(1.5)));
        Assert.Equal(",-inf\r\n", Write(3, w => w.WriteDouble(double.NegativeInfinity)));
        Assert.Equal("#t\r\n", Write(3, w => w.WriteBoolean(true)));
        Assert.Equal("#f\r\n", Write(3, w => w.WriteBoolean(false)));
        Assert.Equal("=6\r\ntxt:hi\r\n", Write(3, w => w.WriteVerbatimString("hi")));
    }

    [Fact]
    public void Protocol_must_be_2_or_3()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RespWriter(new ArrayBufferWriter<byte>(), 4));
    }

    [Fact]
    public void Large_bulk_strings()
    {
        byte[] big = new byte[100_000];
        var buffer = new ArrayBufferWriter<byte>();
        new RespWriter(buffer).WriteBulkString(big);
        Assert.Equal(100_000 + 11, buffer.WrittenCount);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(1024)]
    [InlineData(256 * 1024)] // the last length written in one span of the output (§219)
    [InlineData(256 * 1024 + 1)] // the first written in pieces
    public void A_bulk_string_is_its_length_line_its_bytes_and_crlf_whichever_way_it_is_written(int length)
    {
        byte[] value = new byte[length];
        for (int i = 0; i < length; i++) value[i] = (byte)('a' + i % 26);
        var buffer = new ArrayBufferWriter<byte>(16); // grows as the writer asks
        var writer = new RespWriter(buffer);
        writer.WriteBulkString(value);
        byte[] expected = [.. System.Text.Encoding.ASCII.GetBytes($"${length}\r\n"), .. value, (byte)'\r', (byte)'\n'];
        Assert.Equal(expected, buffer.WrittenSpan.ToArray());
        Assert.Equal(0, writer.ItemsWritten); // as before §219: a bulk string is not counted
    }
}

public class GlobPatternTests
{
    [Theory]
    [InlineData("*", "", false)] // Redis quirk: stringmatchlen never matches an empty string; KEYS/SCAN special-case "*"
    [InlineData("*", "anything", true)]
    [InlineData("a*b", "ab", true)]
    [InlineData("a*b", "axxb", true)]
    [InlineData("a*b", "axxbc", false)]
    [InlineData("a?c", "abc", true)]
    [InlineData("a?c", "ac", false)]
    [InlineData("[abc]", "b", true)]
    [InlineData("[abc]", "d", false)]
    [InlineData("[^abc]", "d", true)]
    [InlineData("[^abc]", "a", false)]
    [InlineData("[a-c]x", "bx", true)]
    [InlineData("[c-a]x", "bx", true)]
    [InlineData("[a-c]x", "dx", false)]
    [InlineData("\\*", "*", true)]
    [InlineData("\\*", "a", false)]
    [InlineData("[\\]]", "]", true)]
    [InlineData("a\\", "a\\", true)]
    [InlineData("[abc", "b", true)]
    [InlineData("h*o*", "hello", true)]
    [InlineData("*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    public void Matches_like_redis(string pattern, string text, bool expected)
    {
        Assert.Equal(expected, GlobPattern.IsMatch(Resp.Bytes(pattern), Resp.Bytes(text)));
    }

    [Fact]
    public void Ignore_case()
    {
        Assert.True(GlobPattern.IsMatch("APPEND*"u8, "appendonly"u8, ignoreCase: true));
        Assert.False(GlobPattern.IsMatch("APPEND*"u8, "appendonly"u8));
    }
}
