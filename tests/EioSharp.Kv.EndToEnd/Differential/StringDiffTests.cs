namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Strings and the keyspace commands, differential against redis-server (see <see cref="DiffRunner"/>).</summary>
public sealed class StringDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Strings_and_databases_match_redis(int seed) =>
        DiffRunner.Run(servers, "strings", seed, 10_000, Next);

    private static DiffCommand Next(DiffContext c)
    {
        string key = c.Key();
        return c.Int(0, 26) switch
        {
            0 => c.Generic(),
            1 => new[] { "SET", key, c.Value() },
            2 => c.Pick("EX", "PX", "GET") is var unit ? new[] { "SET", key, c.Value(), c.Pick("NX", "XX", "GET", "KEEPTTL"), unit, c.TtlArg(milliseconds: unit == "PX") } : null!,
            3 => new[] { "GET", key },
            4 => new[] { "APPEND", key, c.Value() },
            5 => new[] { "INCR", key },
            6 => new[] { "INCRBY", key, c.IntArg(-100, 100) },
            7 => new[] { "DECRBY", key, c.IntArg(-100, 100) },
            8 => new[] { "STRLEN", key },
            9 => new[] { "GETRANGE", key, c.IntArg(-10, 10), c.IntArg(-10, 10) },
            10 => new[] { "SETRANGE", key, c.IntArg(0, 20), c.Value() },
            11 => new[] { "MSET", key, c.Value(), c.Key(), c.Value() },
            12 => new[] { "MGET", key, c.Key(), c.Key() },
            13 => new[] { "GETDEL", key },
            14 => new[] { "GETSET", key, c.Value() },
            15 => c.Pick("PERSIST", "EX", "PX", "FOO") is var option ? new[] { "GETEX", key, option, c.TtlArg(milliseconds: option == "PX") } : null!,
            16 => new[] { "GETEX", key },
            17 => new[] { "SELECT", c.IntArg(0, 17) },
            18 => new[] { "MOVE", key, c.IntArg(0, 16) },
            19 => new[] { "SWAPDB", c.IntArg(0, 3), c.IntArg(0, 3) },
            20 => new[] { "DBSIZE" },
            21 => new[] { "RENAMENX", key, c.Key() },
            22 => new[] { "EXPIRE", key, c.TtlArg(), c.Pick("NX", "XX", "GT", "LT") },
            23 => new[] { "SETNX", key, c.Value() },
            24 => new[] { "INCRBYFLOAT", key, c.Pick("1.5", "-2", "0.1", "x", "1e3") },
            _ => c.Chance(0.1) ? new[] { "FLUSHDB" } : new[] { "TTL", key },
        };
    }
}
