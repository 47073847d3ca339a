using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public class GeoTests
{
    private static string Bulk(string s) => $"${Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";

    private static StoreHarness Sicily()
    {
        var h = new StoreHarness();
        h.Run("GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania");
        return h;
    }

    [Fact]
    public void Scores_hashes_positions_and_distances_equal_redis_server()
    {
        // Expected values printed by redis-server 7.0.15 for the same commands.
        var h = Sicily();
        Assert.Equal(Bulk("3479099956230698"), h.Run("ZSCORE", "Sicily", "Palermo"));
        Assert.Equal(Bulk("166274.1516"), h.Run("GEODIST", "Sicily", "Palermo", "Catania"));
        Assert.Equal(Bulk("166.2742"), h.Run("GEODIST", "Sicily", "Palermo", "Catania", "KM"));
        Assert.Equal("*2\r\n" + Bulk("sqc8b49rny0") + "$-1\r\n", h.Run("GEOHASH", "Sicily", "Palermo", "nope"));
        Assert.Equal("*2\r\n*2\r\n" + Bulk("13.36138933897018433") + Bulk("38.11555639549629859") + "*-1\r\n", h.Run("GEOPOS", "Sicily", "Palermo", "nope"));
        Assert.Equal("*2\r\n*4\r\n" + Bulk("Palermo") + Bulk("0.0000") + ":3479099956230698\r\n*2\r\n" + Bulk("13.36138933897018433") + Bulk("38.11555639549629859")
            + "*4\r\n" + Bulk("Catania") + Bulk("166.2742") + ":3479447370796909\r\n*2\r\n" + Bulk("15.08726745843887329") + Bulk("37.50266842333162032"),
            h.Run("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "200", "km", "WITHDIST", "WITHCOORD", "WITHHASH", "ASC"));
    }

    [Fact]
    public void Errors_use_redis_texts()
    {
        var h = Sicily();
        Assert.Equal("-ERR invalid longitude,latitude pair 200.000000,10.000000\r\n", h.Run("GEOADD", "Sicily", "200", "10", "x"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("GEOADD", "Sicily", "NX", "XX", "1", "1", "x"));
        Assert.Equal("-ERR unsupported unit provided. please use M, KM, FT, MI\r\n", h.Run("GEODIST", "Sicily", "Palermo", "Catania", "yd"));
        Assert.Equal("-ERR could not decode requested zset member\r\n", h.Run("GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"));
        Assert.Equal("-ERR the ANY argument requires COUNT argument\r\n", h.Run("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "ANY"));
        Assert.Equal("-ERR exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH\r\n", h.Run("GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "ASC", "DESC"));
        Assert.Equal("-ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options\r\n",
            h.Run("GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHDIST"));
    }

    [Fact]
    public void Geoadd_is_logged_as_zadd_and_store_results_replay()
    {
        var h = Sicily();
        Assert.Equal(":2\r\n", h.Run("GEOSEARCHSTORE", "near", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "STOREDIST"));
        Assert.Equal("*4\r\n" + Bulk("Catania") + Bulk("56.441257870158204") + Bulk("Palermo") + Bulk("190.44242984775784"), h.Run("ZRANGE", "near", "0", "-1", "WITHSCORES"));
        Assert.Equal("zadd Sicily 3479099956230698 Palermo 3479447370796909 Catania", string.Join(' ', Resp.Args(h.Aof.Commands[1])));
        var replayed = new KvStore();
        foreach (KvCommand c in h.Aof.Commands) replayed.Execute(c, h.Now, new RespWriter(new ArrayBufferWriter<byte>()), null);
        var r = new StoreHarness(replayed);
        Assert.Equal(h.Run("ZRANGE", "near", "0", "-1", "WITHSCORES"), r.Run("ZRANGE", "near", "0", "-1", "WITHSCORES"));
        Assert.Equal(h.Run("ZRANGE", "Sicily", "0", "-1", "WITHSCORES"), r.Run("ZRANGE", "Sicily", "0", "-1", "WITHSCORES"));
    }
}
