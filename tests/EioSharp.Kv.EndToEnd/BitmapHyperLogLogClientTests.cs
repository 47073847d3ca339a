using StackExchange.Redis;

namespace EioSharp.Kv.EndToEnd;

/// <summary>The bit, LCS and HyperLogLog commands through StackExchange.Redis, the client .NET users use.</summary>
public sealed class BitmapHyperLogLogClientTests : IDisposable
{
    private readonly KvServerProcess _server = KvServerProcess.Start();
    private readonly ConnectionMultiplexer _redis;

    public BitmapHyperLogLogClientTests() => _redis = ConnectionMultiplexer.Connect($"127.0.0.1:{_server.Port},allowAdmin=true");

    public void Dispose()
    {
        _redis.Dispose();
        _server.Dispose();
    }

    [Fact]
    public void Bit_commands_through_the_client()
    {
        IDatabase db = _redis.GetDatabase(3);
        Assert.False(db.StringSetBit("bits", 7, true));
        Assert.True(db.StringSetBit("bits", 7, true));
        Assert.False(db.StringSetBit("bits", 17, true));
        Assert.True(db.StringGetBit("bits", 17));
        Assert.False(db.StringGetBit("bits", 18));
        Assert.Equal(2, db.StringBitCount("bits"));
        Assert.Equal(1, db.StringBitCount("bits", 0, 0));
        Assert.Equal(1, db.StringBitCount("bits", 8, 23, StringIndexType.Bit));
        Assert.Equal(7, db.StringBitPosition("bits", true));
        Assert.Equal(17, db.StringBitPosition("bits", true, 1));
        Assert.Equal(0, db.StringBitPosition("bits", false));
        Assert.Equal(18, db.StringBitPosition("bits", false, 17, 23, StringIndexType.Bit));

        db.StringSet("a", "abc");
        db.StringSet("b", "A");
        Assert.Equal(3, db.StringBitOperation(Bitwise.And, "and", "a", "b"));
        Assert.Equal("A\0\0", (string?)db.StringGet("and"));
        Assert.Equal(3, db.StringBitOperation(Bitwise.Or, "or", ["a", "b"]));
        Assert.Equal("abc", (string?)db.StringGet("or"));
        Assert.Equal(1, db.StringBitOperation(Bitwise.Not, "not", "b"));
        Assert.Equal(new byte[] { 0xBE }, (byte[]?)db.StringGet("not"));
        Assert.Equal(0, db.StringBitOperation(Bitwise.Xor, "or", "missing1", "missing2"));
        Assert.False(db.KeyExists("or")); // an empty result deletes the target

        RedisResult field = db.Execute("BITFIELD", "bf", "SET", "i8", "0", "-100", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-100", "GET", "i8", "0");
        Assert.Equal([0L, null, -100L], ((RedisResult[])field!).Select(r => r.IsNull ? (long?)null : (long)r).ToArray());
        Assert.True(db.KeyExists("bits"));
        Assert.False(_redis.GetDatabase(0).KeyExists("bits")); // written to database 3 only
    }

    [Fact]
    public void Lcs_through_the_client()
    {
        IDatabase db = _redis.GetDatabase();
        db.StringSet("key1", "ohmytext");
        db.StringSet("key2", "mynewtext");
        Assert.Equal("mytext", db.StringLongestCommonSubsequence("key1", "key2"));
        Assert.Equal(6, db.StringLongestCommonSubsequenceLength("key1", "key2"));
        LCSMatchResult result = db.StringLongestCommonSubsequenceWithMatches("key1", "key2", 2);
        Assert.Equal(6, result.LongestMatchLength);
        Assert.Equal(2, result.Matches.Length);
        Assert.Equal(4, result.Matches[0].First.Start);
        Assert.Equal(7, result.Matches[0].First.End);
        Assert.Equal(5, result.Matches[0].Second.Start);
        Assert.Equal(4, result.Matches[0].Length);
        Assert.Equal(2, result.Matches[1].First.Start);
        Assert.Equal(0, result.Matches[1].Second.Start);
    }

    [Fact]
    public void HyperLogLog_through_the_client()
    {
        IDatabase db = _redis.GetDatabase(3);
        Assert.True(db.HyperLogLogAdd("h1", "a"));
        Assert.True(db.HyperLogLogAdd("h1", ["b", "c", "d"]));
        Assert.False(db.HyperLogLogAdd("h1", ["a", "b"]));
        Assert.Equal(4, db.HyperLogLogLength("h1"));
        RedisValue[] many = [.. Enumerable.Range(0, 5000).Select(i => (RedisValue)("e" + i))];
        Assert.True(db.HyperLogLogAdd("h2", many));
        Assert.Equal(4968, db.HyperLogLogLength("h2")); // redis-server 7.0.15 says the same for e0..e4999
        Assert.Equal(4973, db.HyperLogLogLength(["h1", "h2"]));
        db.HyperLogLogMerge("h3", "h1", "h2");
        Assert.Equal(4973, db.HyperLogLogLength("h3"));
        db.HyperLogLogMerge("h4", ["h1"]);
        Assert.Equal(4, db.HyperLogLogLength("h4"));
        db.StringSet("plain", "text");
        var error = Assert.Throws<RedisServerException>(() => db.HyperLogLogLength("plain"));
        Assert.Equal("WRONGTYPE Key is not a valid HyperLogLog string value.", error.Message);
    }
}
