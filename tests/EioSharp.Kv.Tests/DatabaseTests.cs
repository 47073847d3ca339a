using System.Buffers;
using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>The 16 databases: SELECT, MOVE, SWAPDB, FLUSHDB/FLUSHALL, DBSIZE, and SELECT records in the AOF.</summary>
public sealed class DatabaseTests
{
    [Fact]
    public void Select_isolates_databases_and_checks_the_index()
    {
        var h = new StoreHarness();
        Assert.Equal("+OK\r\n", h.Run("SET", "k", "zero"));
        Assert.Equal("+OK\r\n", h.Run("SELECT", "3"));
        Assert.Equal("$-1\r\n", h.Run("GET", "k"));
        Assert.Equal("+OK\r\n", h.Run("SET", "k", "three"));
        Assert.Equal(":1\r\n", h.Run("DBSIZE"));
        Assert.Equal("-ERR DB index is out of range\r\n", h.Run("SELECT", "16"));
        Assert.Equal("-ERR DB index is out of range\r\n", h.Run("SELECT", "-1"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("SELECT", "x"));
        Assert.Equal("$5\r\nthree\r\n", h.Run("GET", "k")); // a failed SELECT keeps the database
        Assert.Equal("+OK\r\n", h.Run("SELECT", "0"));
        Assert.Equal("$4\r\nzero\r\n", h.Run("GET", "k"));
        Assert.Equal(1, h.Store.CountIn(3));
        Assert.Equal(2, h.Store.Count);
    }

    [Fact]
    public void Databases_option_sets_the_count()
    {
        var h = new StoreHarness(new KvStore(databases: 2));
        Assert.Equal("+OK\r\n", h.Run("SELECT", "1"));
        Assert.Equal("-ERR DB index is out of range\r\n", h.Run("SELECT", "2"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new KvStore(databases: 0));
    }

    [Fact]
    public void Move_and_swapdb()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "1", "EX", "100");
        Assert.Equal(":1\r\n", h.Run("MOVE", "a", "5"));
        Assert.Equal(":0\r\n", h.Run("MOVE", "a", "5")); // gone from the source
        Assert.Equal("-ERR source and destination objects are the same\r\n", h.Run("MOVE", "a", "0"));
        Assert.Equal("-ERR DB index is out of range\r\n", h.Run("MOVE", "a", "99"));
        h.Run("SELECT", "5");
        Assert.Equal(":100\r\n", h.Run("TTL", "a")); // the expiry moved with it
        h.Run("SET", "b", "x");
        Assert.Equal(":1\r\n", h.Run("MOVE", "b", "0"));
        h.Run("SELECT", "0");
        h.Run("SET", "a", "in0");
        h.Run("SELECT", "5");
        Assert.Equal(":0\r\n", h.Run("MOVE", "a", "0")); // exists in the target: not moved
        Assert.Equal("+OK\r\n", h.Run("SWAPDB", "0", "5"));
        Assert.Equal("$3\r\nin0\r\n", h.Run("GET", "a")); // database 5 now holds what 0 held
        Assert.Equal("-ERR invalid first DB index\r\n", h.Run("SWAPDB", "x", "1"));
        Assert.Equal("-ERR invalid second DB index\r\n", h.Run("SWAPDB", "1", "x"));
        Assert.Equal("-ERR DB index is out of range\r\n", h.Run("SWAPDB", "1", "16"));
    }

    [Fact]
    public void Flushdb_empties_one_database_flushall_every_one()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "1");
        h.Run("SELECT", "1");
        h.Run("SET", "a", "1");
        Assert.Equal("+OK\r\n", h.Run("FLUSHDB", "ASYNC"));
        Assert.Equal(":0\r\n", h.Run("DBSIZE"));
        Assert.Equal(1, h.Store.CountIn(0));
        Assert.Equal("-ERR syntax error\r\n", h.Run("FLUSHDB", "LATER"));
        h.Run("SET", "b", "1");
        Assert.Equal("+OK\r\n", h.Run("FLUSHALL", "SYNC"));
        Assert.Equal(0, h.Store.Count);
    }

    [Fact]
    public void Aof_records_select_and_replays_every_database()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "0");
        h.Run("SELECT", "2");
        h.Run("GET", "a"); // reads are not logged and need no SELECT
        h.Run("SET", "a", "2");
        h.Run("SET", "b", "2");
        h.Run("SELECT", "7");
        h.Run("MOVE", "nothing", "1"); // a no-op is not logged
        h.Run("SELECT", "0");
        h.Run("DEL", "a");
        Assert.Equal(["SELECT 0", "SET a 0", "SELECT 2", "SET a 2", "SET b 2", "SELECT 0", "DEL a"], h.Logged);

        var output = new ArrayBufferWriter<byte>();
        foreach (KvCommand c in h.Aof.Commands) AofWriter.WriteCommand(output, c);
        var replayed = new KvStore();
        AofLoader.Load(output.WrittenSpan, replayed, h.Now);
        Assert.Equal(0, replayed.CountIn(0));
        Assert.Equal(2, replayed.CountIn(2));

        // The rewrite of a multi-database keyspace replays to the same contents.
        var rewrite = new ArrayBufferWriter<byte>();
        AofRewriter.Write(replayed, h.Now, rewrite);
        string text = Encoding.UTF8.GetString(rewrite.WrittenSpan);
        Assert.StartsWith("*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n", text);
        var again = new KvStore();
        AofLoader.Load(rewrite.WrittenSpan, again, h.Now);
        Assert.Equal(2, again.CountIn(2));
        Assert.Equal(0, again.CountIn(0));
    }

    [Fact]
    public void Aof_select_of_a_missing_database_is_corruption()
    {
        var data = Resp.Encode("SELECT", "40");
        var e = Assert.Throws<AofCorruptException>(() => AofLoader.Load(data, new KvStore(), 0));
        Assert.Contains("SELECT", e.Message);
    }

    [Fact]
    public void Typed_lookups_answer_wrongtype()
    {
        var h = new StoreHarness();
        h.Run("SET", "s", "v");
        Assert.Equal("$1\r\nv\r\n", h.Run("GET", "s"));
        Assert.Equal("+string\r\n", h.Run("TYPE", "s"));
        Assert.Equal("+none\r\n", h.Run("TYPE", "nope"));
    }
}
