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

    [Fact]
    public void Trim_cuts_the_rows_slack_and_keys_expiries_cursors_and_later_growth_stay_right()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 600; i++) h.Run("SET", $"k{i}", $"v{i}"); // the rows array doubled to 1,024
        h.Run("RPUSH", "list", "a", "b");
        h.Run("PEXPIRE", "k7", "100000");
        h.Run("PEXPIRE", "k599", "50");
        h.Run("DEL", "k3"); // a free row inside the used range stays free (reused by a later key)
        KvDatabase db = h.Store.Database(0);
        Assert.Equal(1024, db.RowCapacity);
        string cursor = CursorOf(h.Run("SCAN", "0", "COUNT", "100"));
        string rest = h.Run("SCAN", cursor, "COUNT", "10000");

        h.Store.TrimExcess();

        Assert.Equal(640, db.RowCapacity); // 601 rows handed out, rounded up to 64
        Assert.Equal(rest, h.Run("SCAN", cursor, "COUNT", "10000")); // a cursor from before goes on where it was
        Assert.Equal(Replies.Int(600), h.Run("DBSIZE"));
        Assert.Equal(Replies.Int(100000), h.Run("PTTL", "k7"));
        Assert.Equal(Replies.Bulk("a"), h.Run("LINDEX", "list", "0"));
        // Later keys: the free row first, then past the trimmed end (the array grows back to the bucket count).
        for (int i = 600; i < 1500; i++) h.Run("SET", $"k{i}", $"v{i}");
        Assert.True(db.RowCapacity >= 1501, $"capacity {db.RowCapacity}");
        for (int i = 0; i < 1500; i++) Assert.Equal(i == 3 ? "$-1\r\n" : Replies.Bulk($"v{i}"), h.Run("GET", $"k{i}"));
        h.Now += 51;
        Assert.Equal("$-1\r\n", h.Run("GET", "k599")); // its expiry kept its row through trim and growth
        Assert.Equal(Replies.Int(100000 - 51), h.Run("PTTL", "k7"));
        Assert.Equal(Replies.Int(1499), h.Run("DBSIZE"));
    }

    private static string CursorOf(string sscanReply)
    {
        string[] lines = sscanReply.Split("\r\n");
        return lines[2]; // *2, $n, cursor
    }
}
