using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>The generic key commands across value types (strings and lists so far), differential against redis-server
/// (see <see cref="DiffRunner"/>): COPY, MOVE, SWAPDB, RENAME(NX), TOUCH, OBJECT, SORT, EXPIRE with NX XX GT LT,
/// EXPIRETIME, TYPE, SCAN TYPE, KEYS, RANDOMKEY, MEMORY USAGE, DUMP.</summary>
/// <remarks>Replies Redis does not make deterministic or that are ours by design are compared by shape: RANDOMKEY
/// (a random key), KEYS and a full SCAN (hashtable order: compared as sets), MEMORY USAGE (an estimate), DUMP (our
/// payload format), OBJECT IDLETIME (seconds may tick between the two servers). Relative expiries are compared within
/// a second (EXPIRETIME) since each server adds its own clock.</remarks>
public sealed class KeyspaceDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(21, 22)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Keyspace_commands_match_redis(int seed) =>
        DiffRunner.Run(servers, "keyspace", seed, 10_000, Next, compareEncoding: true);

    /// <summary>A full SCAN in one call: the same cursor (0) and the same keys in any order.</summary>
    private static string? FullScan(Resp r, Resp k)
    {
        if (r.Items is null || k.Items is null || r.Items.Count != 2 || k.Items.Count != 2) return r.ToString() == k.ToString() ? null : "not a scan reply";
        if (r.Items[0].Text != k.Items[0].Text) return "different cursors";
        return Checks.Unordered(r.Items[1], k.Items[1]);
    }

    private static string? WithinOne(Resp r, Resp k)
    {
        if (r.Kind != ':' || k.Kind != ':') return r.ToString() == k.ToString() ? null : "different replies";
        long a = long.Parse(r.Text!, CultureInfo.InvariantCulture), b = long.Parse(k.Text!, CultureInfo.InvariantCulture);
        return (a < 0 || b < 0 ? a == b : Math.Abs(a - b) <= 1) ? null : "differ by more than one";
    }

    private static string StringValue(DiffContext c) => c.Int(0, 6) switch
    {
        0 => c.Pick("0", "9999", "10000", "-1", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "012", "-0", "1.5"),
        1 => new string('y', c.Int(40, 50)),
        _ => c.Value(),
    };

    private static DiffCommand Next(DiffContext c)
    {
        string key = c.Key();
        string db = c.IntArg(0, 3);
        return c.Int(0, 40) switch
        {
            0 or 1 => c.Generic(),
            2 or 3 => (string[])["SET", key, StringValue(c)],
            4 or 5 => (string[])["RPUSH", key, c.Value(), c.Value()],
            6 => (string[])["APPEND", key, c.Value()],
            7 => (string[])["SETRANGE", key, c.IntArg(0, 5), c.Value()],
            8 => (string[])["INCRBYFLOAT", key, c.Pick("1", "1.5", "-2", "0.1")], // its result is embstr, never int
            9 => (string[])["INCR", key],
            10 => (string[])["COPY", key, c.Key(), .. c.Chance(0.5) ? new[] { "REPLACE" } : [], .. c.Chance(0.4) ? new[] { "DB", db } : [], .. c.Chance(0.03) ? new[] { "FOO" } : []],
            11 => (string[])["MOVE", key, db],
            12 => (string[])["SWAPDB", c.IntArg(0, 3), c.IntArg(0, 3)],
            13 => (string[])["RENAME", key, c.Key()],
            14 => (string[])["RENAMENX", key, c.Key()],
            15 => (string[])["TOUCH", key, c.Key(), c.Key()],
            16 => (string[])["OBJECT", "ENCODING", key],
            17 => (string[])["OBJECT", c.Pick("REFCOUNT", "FREQ", "encoding", "FOO", "HELP"), key],
            18 => (string[])["OBJECT", c.Pick("ENCODING", "HELP", "REFCOUNT")],
            19 => new DiffCommand(["OBJECT", "IDLETIME", key], Checks.SameShape),
            20 => (string[])["EXPIRE", key, c.TtlArg(), .. c.Chance(0.7) ? new[] { c.Pick("NX", "XX", "GT", "LT", "nx", "FOO") } : [], .. c.Chance(0.2) ? new[] { c.Pick("NX", "XX", "GT", "LT") } : []],
            21 => (string[])["EXPIREAT", key, c.Pick("4000000000", "4100000000", "1", "x"), .. c.Chance(0.6) ? new[] { c.Pick("NX", "XX", "GT", "LT") } : []],
            22 => (string[])["PEXPIREAT", key, c.Pick("4000000000000", "4100000000000"), .. c.Chance(0.6) ? new[] { c.Pick("NX", "XX", "GT", "LT") } : []],
            23 => new DiffCommand(["EXPIRETIME", key], WithinOne),
            24 => new DiffCommand(["PEXPIRETIME", key], (r, k) => r.Text == "-1" || r.Text == "-2" || k.Text == "-1" || k.Text == "-2" ? (r.ToString() == k.ToString() ? null : "differ") : null),
            25 => (string[])["TYPE", key],
            26 => new DiffCommand(["SCAN", "0", "TYPE", c.Pick("string", "list", "LIST", "hash", "foo"), "COUNT", "1000"], FullScan),
            27 => new DiffCommand(["SCAN", "0", "MATCH", c.Pick("k1*", "k[0-3]", "*"), "COUNT", "1000", .. c.Chance(0.5) ? new[] { "TYPE", "string" } : []], FullScan),
            28 => new DiffCommand(["KEYS", c.Pick("*", "k?", "k[1-4]", "x*")], Checks.Unordered),
            29 => new DiffCommand(["RANDOMKEY"], Checks.SameShape),
            30 => new DiffCommand(["MEMORY", "USAGE", key, .. c.Chance(0.3) ? new[] { "SAMPLES", c.IntArg(0, 5) } : []], Checks.SameShape),
            31 => new DiffCommand(["DUMP", key], Checks.SameShape),
            32 => (string[])["SORT", key, .. ListDiffTests.SortOptions(c)],
            33 => (string[])["SORT_RO", key, .. ListDiffTests.SortOptions(c)],
            34 => (string[])["PERSIST", key],
            35 => (string[])["SELECT", c.IntArg(0, 3)],
            36 => (string[])["RESTORE", key, "0", "garbage", .. c.Chance(0.5) ? new[] { "REPLACE" } : []],
            37 => new DiffCommand(["TTL", key], WithinOne), // each server rounds its own clock
            38 => (string[])["LPUSH", key, StringValue(c)],
            _ => c.Chance(0.1) ? (string[])["FLUSHDB"] : (string[])["DBSIZE"],
        };
    }
}
