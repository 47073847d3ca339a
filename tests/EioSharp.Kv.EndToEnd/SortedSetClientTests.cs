using StackExchange.Redis;

namespace EioSharp.Kv.EndToEnd;

/// <summary>The sorted set and geo APIs of StackExchange.Redis against EioSharp.Kv.</summary>
public sealed class SortedSetClientTests
{
    [Fact]
    public void Sorted_set_api_works_end_to_end()
    {
        using KvServerProcess server = KvServerProcess.Start();
        using ConnectionMultiplexer mux = ConnectionMultiplexer.Connect($"127.0.0.1:{server.Port},allowAdmin=true");
        IDatabase db = mux.GetDatabase(3);
        Assert.True(db.SortedSetAdd("z", "a", 1));
        Assert.Equal(3, db.SortedSetAdd("z", [new SortedSetEntry("b", 2.5), new SortedSetEntry("c", -1), new SortedSetEntry("d", double.PositiveInfinity)]));
        Assert.Equal(["c", "a", "b", "d"], db.SortedSetRangeByRank("z").Select(v => (string)v!));
        Assert.Equal(["d", "b"], db.SortedSetRangeByRank("z", 0, 1, Order.Descending).Select(v => (string)v!));
        SortedSetEntry[] withScores = db.SortedSetRangeByRankWithScores("z");
        Assert.Equal([-1, 1, 2.5, double.PositiveInfinity], withScores.Select(e => e.Score));
        Assert.Equal(["a", "b"], db.SortedSetRangeByScore("z", 0, 3).Select(v => (string)v!));
        Assert.Equal(["b"], db.SortedSetRangeByScore("z", 1, 3, Exclude.Start).Select(v => (string)v!));
        Assert.Equal(4.5, db.SortedSetIncrement("z", "b", 2));
        Assert.Equal(2, db.SortedSetRank("z", "b"));
        Assert.Equal(1, db.SortedSetRank("z", "b", Order.Descending));
        Assert.Equal(4, db.SortedSetLength("z"));
        Assert.Equal(4.5, db.SortedSetScore("z", "b"));

        db.SortedSetAdd("lex", [new SortedSetEntry("apple", 0), new SortedSetEntry("banana", 0), new SortedSetEntry("cherry", 0)]);
        Assert.Equal(["banana", "cherry"], db.SortedSetRangeByValue("lex", "b", "d").Select(v => (string)v!));
        Assert.Equal(["apple"], db.SortedSetRangeByValue("lex", default, "banana", Exclude.Stop).Select(v => (string)v!));

        db.SortedSetAdd("other", [new SortedSetEntry("a", 10), new SortedSetEntry("x", 1)]);
        Assert.Equal(["c", "x", "b", "a", "d"], db.SortedSetCombine(SetOperation.Union, ["z", "other"]).Select(v => (string)v!));
        Assert.Equal(["a"], db.SortedSetCombine(SetOperation.Intersect, ["z", "other"]).Select(v => (string)v!));
        Assert.Equal(1, db.SortedSetCombineAndStore(SetOperation.Intersect, "dest", "z", "other", Aggregate.Max));
        Assert.Equal(10, db.SortedSetScore("dest", "a"));

        SortedSetEntry? min = db.SortedSetPop("z");
        Assert.Equal("c", (string)min!.Value.Element!);
        Assert.Equal(["d", "b"], db.SortedSetPop("z", 2, Order.Descending).Select(e => (string)e.Element!));

        for (int i = 0; i < 300; i++) db.SortedSetAdd("big", "m" + i, i);
        var scanned = db.SortedSetScan("big", pageSize: 50).ToList();
        Assert.Equal(300, scanned.Select(e => (string)e.Element!).Distinct().Count());
    }

    [Fact]
    public void Geo_api_works_end_to_end()
    {
        using KvServerProcess server = KvServerProcess.Start();
        using ConnectionMultiplexer mux = ConnectionMultiplexer.Connect($"127.0.0.1:{server.Port},allowAdmin=true");
        IDatabase db = mux.GetDatabase();
        Assert.True(db.GeoAdd("Sicily", 13.361389, 38.115556, "Palermo"));
        Assert.Equal(1, db.GeoAdd("Sicily", [new GeoEntry(15.087269, 37.502669, "Catania")]));
        Assert.Equal(166.2742, db.GeoDistance("Sicily", "Palermo", "Catania", GeoUnit.Kilometers));
        Assert.Equal("sqc8b49rny0", db.GeoHash("Sicily", "Palermo"));
        GeoPosition? p = db.GeoPosition("Sicily", "Palermo");
        Assert.Equal(13.36138933897018433, p!.Value.Longitude, 12);
        Assert.Equal(38.11555639549629859, p.Value.Latitude, 12);
        Assert.Null(db.GeoPosition("Sicily", "nope"));

        GeoRadiusResult[] found = db.GeoSearch("Sicily", "Palermo", new GeoSearchCircle(200, GeoUnit.Kilometers), order: Order.Ascending, options: GeoRadiusOptions.WithDistance);
        Assert.Equal(["Palermo", "Catania"], found.Select(r => (string)r.Member!));
        Assert.Equal(166.2742, found[1].Distance);
        GeoRadiusResult[] box = db.GeoSearch("Sicily", 15, 37, new GeoSearchBox(400, 400, GeoUnit.Kilometers), order: Order.Descending);
        Assert.Equal(["Palermo", "Catania"], box.Select(r => (string)r.Member!));
        GeoRadiusResult[] radius = db.GeoRadius("Sicily", "Catania", 100, GeoUnit.Kilometers);
        Assert.Equal(["Catania"], radius.Select(r => (string)r.Member!));
        Assert.Equal(2, db.GeoSearchAndStore("Sicily", "near", 15, 37, new GeoSearchCircle(300, GeoUnit.Kilometers), storeDistances: true));
        Assert.Equal(56.4413, Math.Round(db.SortedSetScore("near", "Catania")!.Value, 4));
    }
}
