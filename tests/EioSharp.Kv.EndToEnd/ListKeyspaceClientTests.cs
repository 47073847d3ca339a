using StackExchange.Redis;

namespace EioSharp.Kv.EndToEnd;

/// <summary>StackExchange.Redis against EioSharp.Kv: the IDatabase list, key and sort APIs.</summary>
public sealed class ListKeyspaceClientTests : IDisposable
{
    private readonly KvServerProcess _server = KvServerProcess.Start();
    private readonly ConnectionMultiplexer _mux;

    public ListKeyspaceClientTests() =>
        _mux = ConnectionMultiplexer.Connect($"127.0.0.1:{_server.Port},allowAdmin=true");

    public void Dispose()
    {
        _mux.Dispose();
        _server.Dispose();
    }

    [Fact]
    public void List_apis()
    {
        IDatabase db = _mux.GetDatabase();
        Assert.Equal(3, db.ListRightPush("l", ["a", "b", "c"]));
        Assert.Equal(4, db.ListLeftPush("l", "z"));
        Assert.Equal(["z", "a", "b", "c"], db.ListRange("l").Select(v => (string)v!));
        Assert.Equal(["a", "b"], db.ListRange("l", 1, 2).Select(v => (string)v!));
        Assert.Equal(4, db.ListLength("l"));
        Assert.Equal("b", (string?)db.ListGetByIndex("l", 2));
        db.ListSetByIndex("l", 0, "y");
        Assert.Equal(5, db.ListInsertBefore("l", "b", "B"));
        Assert.Equal(6, db.ListInsertAfter("l", "c", "C"));
        Assert.Equal(1, db.ListRemove("l", "B"));
        Assert.Equal(2, db.ListPosition("l", "b"));
        Assert.Equal([0L], db.ListPositions("l", "y", 5));
        Assert.Equal("y", (string?)db.ListLeftPop("l"));
        Assert.Equal("C", (string?)db.ListRightPop("l"));
        Assert.Equal(["a", "b"], db.ListLeftPop("l", 2).Select(v => (string)v!));
        Assert.Equal("c", (string?)db.ListMove("l", "m", ListSide.Left, ListSide.Right));
        Assert.False(db.KeyExists("l"));
        db.ListRightPush("m", ["d", "e", "f"]);
        Assert.Equal("f", (string?)db.ListRightPopLeftPush("m", "m"));
        db.ListTrim("m", 0, 2);
        Assert.Equal(["f", "c", "d"], db.ListRange("m").Select(v => (string)v!));
        ListPopResult popped = db.ListLeftPop(["none", "m"], 2);
        Assert.Equal("m", (string?)popped.Key);
        Assert.Equal(["f", "c"], popped.Values.Select(v => (string)v!));
        Assert.True(db.ListLeftPop(["none"], 1).IsNull);
        Assert.Equal(0, db.ListLeftPush("none", ["x"], When.Exists));
        Assert.Equal("quicklist", db.KeyEncoding("m"));
        Assert.Equal(RedisType.List, db.KeyType("m"));
        db.StringSet("s", "x");
        Assert.Throws<RedisServerException>(() => db.ListLeftPush("s", "a"));
    }

    [Fact]
    public void Key_apis()
    {
        IDatabase db = _mux.GetDatabase();
        IDatabase db3 = _mux.GetDatabase(3);
        db.KeyDelete(["a", "b", "c", "l", "l2"]);
        db3.KeyDelete("a");
        db.StringSet("a", "12345");
        Assert.Equal("int", db.KeyEncoding("a"));
        db.StringAppend("a", "x");
        Assert.Equal("raw", db.KeyEncoding("a"));
        Assert.True(db.KeyCopy("a", "b"));
        Assert.False(db.KeyCopy("a", "b"));
        Assert.True(db.KeyCopy("a", "b", replace: true));
        Assert.True(db.KeyCopy("a", "a", destinationDatabase: 3));
        Assert.Equal("12345x", (string?)db3.StringGet("a"));
        Assert.True(db.KeyMove("b", 4));
        Assert.False(db.KeyExists("b"));
        db.KeyRename("a", "c");
        Assert.Equal(RedisType.String, db.KeyType("c"));
        Assert.Equal(RedisType.None, db.KeyType("a"));
        Assert.True(db.KeyTouch("c"));
        Assert.Equal(1, db.KeyTouch(["c", "none"]));
        // OBJECT IDLETIME counts whole seconds of an LRU clock (as Redis's does): a TOUCH at x.999 s read at
        // (x+1).001 s is 1 s idle (CI saw it), so the bound is "under two ticks", not zero.
        Assert.InRange(db.KeyIdleTime("c")!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(2));

        Assert.True(db.KeyExpire("c", TimeSpan.FromSeconds(100), ExpireWhen.HasNoExpiry));
        Assert.False(db.KeyExpire("c", TimeSpan.FromSeconds(100), ExpireWhen.HasNoExpiry));
        Assert.True(db.KeyExpire("c", TimeSpan.FromSeconds(200), ExpireWhen.GreaterThanCurrentExpiry));
        Assert.False(db.KeyExpire("c", TimeSpan.FromSeconds(300), ExpireWhen.LessThanCurrentExpiry));
        Assert.True(db.KeyExpire("c", TimeSpan.FromSeconds(50), ExpireWhen.HasExpiry));
        DateTime? when = db.KeyExpireTime("c");
        Assert.NotNull(when);
        Assert.InRange((when!.Value - DateTime.UtcNow).TotalSeconds, 40, 60);

        db.ListRightPush("l", ["1", "2", "3"]);
        byte[]? payload = db.KeyDump("l");
        Assert.NotNull(payload);
        db.KeyRestore("l2", payload!, TimeSpan.FromSeconds(30));
        Assert.Equal(["1", "2", "3"], db.ListRange("l2").Select(v => (string)v!));
        Assert.InRange(db.KeyTimeToLive("l2")!.Value.TotalSeconds, 20, 30);
        Assert.Throws<RedisServerException>(() => db.KeyRestore("l2", payload!)); // BUSYKEY
        payload![^1] ^= 1;
        RedisServerException e = Assert.Throws<RedisServerException>(() => db.KeyRestore("l3", payload));
        Assert.Contains("DUMP payload version or checksum are wrong", e.Message, StringComparison.Ordinal);
        byte[]? dumped = db.KeyDump("c");
        db.KeyRestore("c2", dumped!);
        Assert.Equal("12345x", (string?)db.StringGet("c2"));
    }

    [Fact]
    public void Sort_apis()
    {
        IDatabase db = _mux.GetDatabase(2);
        db.KeyDelete(["n", "w", "dst"]);
        db.ListRightPush("n", ["3", "10", "1"]);
        Assert.Equal(["1", "3", "10"], db.Sort("n").Select(v => (string)v!));
        Assert.Equal(["10", "3"], db.Sort("n", 0, 2, Order.Descending).Select(v => (string)v!));
        Assert.Equal(["1", "10", "3"], db.Sort("n", sortType: SortType.Alphabetic).Select(v => (string)v!));
        db.ListRightPush("w", ["b", "a", "c"]);
        db.StringSet([new("weight_a", "3"), new("weight_b", "1"), new("weight_c", "2"), new("obj_a", "A")]);
        Assert.Equal(["b", "c", "a"], db.Sort("w", by: "weight_*").Select(v => (string)v!));
        Assert.Equal(["b", "", "c", "", "a", "A"], db.Sort("w", by: "weight_*", get: ["#", "obj_*"]).Select(v => (string?)v ?? ""));
        Assert.Equal(3, db.SortAndStore("dst", "w", sortType: SortType.Alphabetic, order: Order.Descending));
        Assert.Equal(["c", "b", "a"], db.ListRange("dst").Select(v => (string)v!));
        Assert.Throws<RedisServerException>(() => db.Sort("w"));
    }
}
