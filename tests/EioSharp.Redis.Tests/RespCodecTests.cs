using System.Text;

namespace EioSharp.Redis.Tests;

public class RespCodecTests
{
    private const string Sample =
        "*9\r\n+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*-1\r\n_\r\n,3.5\r\n%2\r\n+a\r\n#t\r\n+b\r\n#f\r\n" +
        ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n" +
        "|1\r\n+ttl\r\n:3\r\n=8\r\ntxt:abcd\r\n~2\r\n(12345678901234567890\r\n!4\r\nOOPS\r\n";

    private static List<RedisReply> ParseAll(byte[] bytes)
    {
        var list = new List<RedisReply>();
        int pos = 0;
        while (pos < bytes.Length && RespCodec.TryParse(bytes.AsSpan(pos), out var r, out int used))
        {
            list.Add(r);
            pos += used;
        }

        Assert.Equal(bytes.Length, pos);
        return list;
    }

    [Fact]
    public void CompleteInputParsesEveryResp2AndResp3Type()
    {
        var replies = ParseAll(Encoding.UTF8.GetBytes(Sample));
        Assert.Equal(4, replies.Count);
        Assert.Equal("array[\"OK\", (error) ERR bad, (integer) -42, \"he\r\nl\", (nil), (nil), (nil), (double) 3.5, map[\"a\", (boolean) true, \"b\", (boolean) false]]",
            replies[0].ToString());
        Assert.Equal(RedisReplyKind.Push, replies[1].Kind);
        Assert.Equal("push[\"message\", \"ch\", \"hi\"]", replies[1].ToString());
        Assert.Equal(RedisReplyKind.VerbatimString, replies[2].Kind); // the attribute before it is dropped
        Assert.Equal("abcd", replies[2].Text);
        Assert.Equal("set[\"12345678901234567890\", (error) OOPS]", replies[3].ToString());
    }

    [Fact]
    public void InputSplitAtEveryByteBoundaryNeedsMoreBytesThenParsesTheSame()
    {
        byte[] all = Encoding.UTF8.GetBytes(Sample);
        string expected = string.Join("|", ParseAll(all));
        for (int split = 0; split < all.Length; split++)
        {
            var got = new List<RedisReply>();
            int pos = 0;
            // Only the first `split` bytes are available at first.
            while (RespCodec.TryParse(all.AsSpan(pos, split - Math.Min(split, pos) > 0 ? split - pos : 0), out var r, out int used))
            {
                got.Add(r);
                pos += used;
            }

            while (pos < all.Length)
            {
                Assert.True(RespCodec.TryParse(all.AsSpan(pos), out var r, out int used));
                got.Add(r);
                pos += used;
            }

            Assert.Equal(expected, string.Join("|", got));
        }
    }

    [Theory]
    [InlineData("?\r\n")]
    [InlineData(":12x\r\n")]
    [InlineData("$3\r\nabcd\r\n")]
    [InlineData("$999999999999\r\n")]
    public void MalformedInputThrows(string input) =>
        Assert.Throws<RedisConnectionException>(() => RespCodec.TryParse(Encoding.UTF8.GetBytes(input), out _, out _));

    [Fact]
    public void CommandsAreArraysOfBulkStrings()
    {
        var buf = new System.Buffers.ArrayBufferWriter<byte>();
        RespCodec.WriteCommand(buf, new object[] { "SET", "k", 12L, new byte[] { 0, 1 }, 1.5 }.Select(RespCodec.ToBytes).ToArray());
        Assert.Equal("*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$2\r\n\0\u0001\r\n$3\r\n1.5\r\n", Encoding.UTF8.GetString(buf.WrittenSpan));
    }

    [Fact]
    public void BlockingCommandsAreRecognised()
    {
        static bool Blocking(params string[] a) => RedisConnection.IsBlocking(a[0], a.Select(Encoding.UTF8.GetBytes).ToArray());
        Assert.True(Blocking("blpop", "q", "0"));
        Assert.True(Blocking("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"));
        Assert.False(Blocking("XREADGROUP", "GROUP", "g", "c", "STREAMS", "BLOCK", ">"));
        Assert.False(Blocking("GET", "BLOCK"));
    }
}
