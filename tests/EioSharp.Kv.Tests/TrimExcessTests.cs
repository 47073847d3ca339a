using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary><see cref="KvStore.TrimExcess"/> (the idle trim before the server's compacting collection, docs/kv.md
/// "Memory"): releases growth slack and changes nothing a client can see, including a SCAN cursor taken before it.</summary>
public class TrimExcessTests
{
    private static readonly string[][] Reads =
    [
        ["HGETALL", "hsmall"], ["HGETALL", "hbig"], ["OBJECT", "ENCODING", "hsmall"], ["OBJECT", "ENCODING", "hbig"],
        ["SMEMBERS", "iset"], ["SMEMBERS", "sbig"], ["OBJECT", "ENCODING", "iset"], ["OBJECT", "ENCODING", "sbig"],
        ["ZRANGE", "zsmall", "0", "-1", "WITHSCORES"], ["ZRANGE", "zbig", "0", "-1", "WITHSCORES"],
        ["OBJECT", "ENCODING", "zsmall"], ["OBJECT", "ENCODING", "zbig"],
        ["LRANGE", "lsmall", "0", "-1"], ["LRANGE", "lbig", "0", "-1"], ["DBSIZE"],
    ];

    [Fact]
    public void Trim_releases_slack_and_keeps_contents_encodings_and_cursors()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 300; i++)
        {
            if (i < 37)
            {
                h.Run("HSET", "hsmall", $"f{i}", $"v{i}");
                h.Run("SADD", "iset", (i * 7).ToString(System.Globalization.CultureInfo.InvariantCulture));
                h.Run("ZADD", "zsmall", (i % 5).ToString(System.Globalization.CultureInfo.InvariantCulture), $"m{i}");
                h.Run("RPUSH", "lsmall", $"e{i}");
            }
            h.Run("HSET", "hbig", $"f{i}", $"v{i}");
            h.Run("SADD", "sbig", $"m{i}");
            h.Run("ZADD", "zbig", "1.5", $"m{i}");
            h.Run("RPUSH", "lbig", $"e{i}");
        }
        h.Run("SREM", "sbig", "m3", "m4"); // holes in the slot array stay where they are
        string cursor = CursorOf(h.Run("SSCAN", "sbig", "0", "COUNT", "50"));
        string[] before = Reads.Select(r => h.Run(r)).ToArray();

        long released = h.Store.TrimExcess();

        Assert.True(released > 0, $"released {released}");
        Assert.Equal(before, Reads.Select(r => h.Run(r)).ToArray());
        Assert.Equal(0, h.Store.TrimExcess()); // nothing left to release
        // A cursor from before the trim goes on where it was: the rest of the scan is the same as without the trim.
        var h2 = new StoreHarness();
        foreach (string m in Enumerable.Range(0, 300).Select(i => $"m{i}")) h2.Run("SADD", "sbig", m);
        h2.Run("SREM", "sbig", "m3", "m4");
        Assert.Equal(h2.Run("SSCAN", "sbig", cursor, "COUNT", "1000"), h.Run("SSCAN", "sbig", cursor, "COUNT", "1000"));
        // Writes after a trim grow the arrays again.
        h.Run("HSET", "hsmall", "new", "x");
        h.Run("SADD", "iset", "100000");
        h.Run("SADD", "sbig", "new");
        h.Run("ZADD", "zsmall", "9", "new");
        h.Run("LPUSH", "lsmall", "new");
        Assert.Equal(Replies.Bulk("x"), h.Run("HGET", "hsmall", "new"));
        Assert.Equal(Replies.Int(1), h.Run("SISMEMBER", "iset", "100000"));
        Assert.Equal(Replies.Int(1), h.Run("SISMEMBER", "sbig", "new"));
        Assert.Equal(Replies.Int(37), h.Run("ZRANK", "zsmall", "new"));
        Assert.Equal(Replies.Bulk("new"), h.Run("LINDEX", "lsmall", "0"));
        Assert.Equal(Replies.Int(299), h.Run("SCARD", "sbig"));
    }

    private static string CursorOf(string sscanReply)
    {
        string[] lines = sscanReply.Split("\r\n");
        return lines[2]; // *2, $n, cursor
    }
}
