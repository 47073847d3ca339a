using StackExchange.Redis;

namespace EioSharp.Kv.EndToEnd;

/// <summary>The IDatabase hash and set APIs of StackExchange.Redis against EioSharp.Kv, and database isolation.</summary>
public sealed class HashSetClientTests : IDisposable
{
    private readonly KvServerProcess _server = KvServerProcess.Start();
    private readonly ConnectionMultiplexer _mux;

    public HashSetClientTests() => _mux = ConnectionMultiplexer.Connect($"127.0.0.1:{_server.Port},allowAdmin=true");

    public void Dispose()
    {
        _mux.Dispose();
        _server.Dispose();
    }

    [Fact]
    public async Task Hash_api()
    {
        IDatabase db = _mux.GetDatabase(0);
        await db.KeyDeleteAsync("h");
        await db.HashSetAsync("h", [new HashEntry("a", "1"), new HashEntry("b", "2")]);
        Assert.True(await db.HashSetAsync("h", "c", "3"));
        Assert.False(await db.HashSetAsync("h", "c", "4"));
        Assert.False(await db.HashSetAsync("h", "c", "5", When.NotExists));
        Assert.Equal("4", await db.HashGetAsync("h", "c"));
        Assert.True((await db.HashGetAsync("h", "zz")).IsNull);
        RedisValue[] values = await db.HashGetAsync("h", ["a", "zz", "b"]);
        Assert.Equal(["1", RedisValue.Null, "2"], values);
        HashEntry[] all = await db.HashGetAllAsync("h");
        Assert.Equal(["a=1", "b=2", "c=4"], all.Select(e => $"{e.Name}={e.Value}")); // listpack: insertion order
        Assert.Equal(["a", "b", "c"], (await db.HashKeysAsync("h")).Select(v => (string)v!));
        Assert.Equal(["1", "2", "4"], (await db.HashValuesAsync("h")).Select(v => (string)v!));
        Assert.Equal(3, await db.HashLengthAsync("h"));
        Assert.Equal(1, await db.HashStringLengthAsync("h", "a"));
        Assert.True(await db.HashExistsAsync("h", "a"));
        Assert.Equal(11, await db.HashIncrementAsync("h", "a", 10));
        Assert.Equal(-1, await db.HashDecrementAsync("h", "n", 1));
        Assert.Equal(2.5, await db.HashIncrementAsync("h", "f", 2.5));
        Assert.Equal("2.5", await db.HashGetAsync("h", "f"));
        Assert.True(await db.HashDeleteAsync("h", "b"));
        Assert.Equal(2, await db.HashDeleteAsync("h", ["c", "n", "zz"]));
        RedisValue field = await db.HashRandomFieldAsync("h");
        Assert.Contains((string)field!, new[] { "a", "f" });
        Assert.Equal(2, (await db.HashRandomFieldsAsync("h", 5)).Length);
        Assert.Equal(4, (await db.HashRandomFieldsWithValuesAsync("h", -4)).Length);
        await Assert.ThrowsAsync<RedisServerException>(() => db.HashIncrementAsync("h", "f", 1L)); // "hash value is not an integer"

        for (int i = 0; i < 600; i++) await db.HashSetAsync("big", "field" + i, "v" + i);
        var scanned = new HashSet<string>();
        await foreach (HashEntry e in db.HashScanAsync("big", "field1*", pageSize: 25)) scanned.Add(e.Name!);
        Assert.Equal(Enumerable.Range(0, 600).Select(i => "field" + i).Where(f => f.StartsWith("field1", StringComparison.Ordinal)).ToHashSet(), scanned);
        Assert.Equal("hashtable", (string?)await db.ExecuteAsync("OBJECT", "ENCODING", "big"));
        Assert.Equal("listpack", (string?)await db.ExecuteAsync("OBJECT", "ENCODING", "h"));

        await db.StringSetAsync("str", "x");
        RedisServerException wrong = await Assert.ThrowsAsync<RedisServerException>(() => db.HashGetAsync("str", "a"));
        Assert.StartsWith("WRONGTYPE", wrong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Set_api()
    {
        IDatabase db = _mux.GetDatabase(0);
        await db.KeyDeleteAsync(["a", "b", "d", "e", "n"]);
        Assert.Equal(3, await db.SetAddAsync("a", ["1", "2", "3"]));
        Assert.True(await db.SetAddAsync("a", "x"));
        Assert.False(await db.SetAddAsync("a", "x"));
        await db.SetAddAsync("b", ["2", "3", "4"]);
        Assert.Equal(4, await db.SetLengthAsync("a"));
        Assert.True(await db.SetContainsAsync("a", "x"));
        bool[] contains = await db.SetContainsAsync("a", ["1", "9"]);
        Assert.Equal(new[] { true, false }, contains);
        Assert.Equal(["2", "3"], (await db.SetCombineAsync(SetOperation.Intersect, "a", "b")).Select(v => (string)v!).Order());
        Assert.Equal(["1", "2", "3", "4", "x"], (await db.SetCombineAsync(SetOperation.Union, "a", "b")).Select(v => (string)v!).Order());
        Assert.Equal(["1", "x"], (await db.SetCombineAsync(SetOperation.Difference, "a", "b")).Select(v => (string)v!).Order());
        Assert.Equal(2, await db.SetCombineAndStoreAsync(SetOperation.Intersect, "d", "a", "b"));
        Assert.Equal("intset", (string?)await db.ExecuteAsync("OBJECT", "ENCODING", "d"));
        Assert.Equal(["2", "3"], (await db.SetMembersAsync("d")).Select(v => (string)v!)); // intset: ascending
        Assert.Equal(2, await db.SetIntersectionLengthAsync(["a", "b"]));
        Assert.Equal(1, await db.SetIntersectionLengthAsync(["a", "b"], limit: 1));
        Assert.True(await db.SetMoveAsync("a", "e", "x"));
        Assert.False(await db.SetMoveAsync("a", "e", "x"));
        Assert.True(await db.SetRemoveAsync("a", "1"));
        Assert.Equal(1, await db.SetRemoveAsync("a", ["2", "zz"]));
        RedisValue random = await db.SetRandomMemberAsync("b");
        Assert.Contains((string)random!, new[] { "2", "3", "4" });
        Assert.Equal(5, (await db.SetRandomMembersAsync("b", -5)).Length);
        Assert.Equal(3, (await db.SetRandomMembersAsync("b", 10)).Length);
        RedisValue popped = await db.SetPopAsync("b");
        Assert.False(popped.IsNull);
        Assert.Equal(2, (await db.SetPopAsync("b", 5)).Length);
        Assert.False(await db.KeyExistsAsync("b"));
        Assert.True((await db.SetPopAsync("b")).IsNull);

        for (int i = 0; i < 700; i++) await db.SetAddAsync("n", i);
        Assert.Equal("hashtable", (string?)await db.ExecuteAsync("OBJECT", "ENCODING", "n"));
        var scanned = new HashSet<string>();
        await foreach (RedisValue v in db.SetScanAsync("n", pageSize: 50)) scanned.Add(v!);
        Assert.Equal(700, scanned.Count);
    }

    [Fact]
    public async Task Database_3_is_isolated_from_database_0()
    {
        IDatabase db0 = _mux.GetDatabase(0), db3 = _mux.GetDatabase(3);
        await db0.KeyDeleteAsync(["iso:h", "iso:s"]);
        await db3.KeyDeleteAsync(["iso:h", "iso:s"]);
        await db3.HashSetAsync("iso:h", "f", "three");
        await db3.SetAddAsync("iso:s", ["x", "y"]);
        Assert.False(await db0.KeyExistsAsync("iso:h"));
        Assert.Equal(0, await db0.SetLengthAsync("iso:s"));
        await db0.HashSetAsync("iso:h", "f", "zero");
        Assert.Equal("three", await db3.HashGetAsync("iso:h", "f"));
        Assert.Equal("zero", await db0.HashGetAsync("iso:h", "f"));
        Assert.Equal(2, await db3.SetLengthAsync("iso:s"));
        Assert.Equal(2, await db3.SetCombineAndStoreAsync(SetOperation.Difference, "iso:d", "iso:s", "iso:none"));
        Assert.False(await db0.KeyExistsAsync("iso:d"));
        Assert.True(await db3.KeyExistsAsync("iso:d"));
    }
}
