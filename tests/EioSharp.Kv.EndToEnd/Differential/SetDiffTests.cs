using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Sets, differential against redis-server (see <see cref="DiffRunner"/>): every set command and option,
/// error paths (bad numbers, syntax, arity, WRONGTYPE through <see cref="DiffContext.Generic"/>), several databases,
/// RESP2 and RESP3 (HELLO), and OBJECT ENCODING of every key at the end.</summary>
/// <remarks>
/// <para>Keys of the shared pool (<c>k0..k7</c>) get words and integers, so they may be hashtables, whose order is
/// Redis's own: replies that list their members are compared as multisets. Keys <c>is0..is2</c> only ever get a few
/// integers, so they stay intsets, whose order (ascending) must match exactly: SMEMBERS, SSCAN, SINTER, SUNION, SDIFF
/// and SRANDMEMBER with a count of at least the size are compared byte for byte on them.</para>
/// <para>Random commands: SRANDMEMBER is read-only and compared by shape (type, length, error text). SPOP's effect is
/// random, so after each SPOP both servers get <c>DEL key</c> and <c>SADD key ...</c> of the same members (its
/// <c>After</c> commands) to be in step again; its reply is compared by shape.</para>
/// </remarks>
public sealed class SetDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(31, 32)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Sets_match_redis(int seed) =>
        DiffRunner.Run(servers, "sets", seed, 12_000, Next, compareEncoding: true);

    private static string IntsetKey(DiffContext c) => "is" + c.Int(0, 3);

    private static string Int(DiffContext c) => c.Int(-20, 40).ToString(CultureInfo.InvariantCulture);

    private static string[] Members(DiffContext c, int max)
    {
        int n = c.Int(1, max + 1);
        var r = new string[n];
        for (int i = 0; i < n; i++) r[i] = c.Chance(0.05) ? c.Pick("01", "-0", "+1", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "") : c.Member();
        return r;
    }

    private static string[] Ints(DiffContext c, int max)
    {
        int n = c.Int(1, max + 1);
        var r = new string[n];
        for (int i = 0; i < n; i++) r[i] = Int(c);
        return r;
    }

    private static string[] Keys(DiffContext c, Func<DiffContext, string> key, int max)
    {
        int n = c.Int(1, max + 1);
        var r = new string[n];
        for (int i = 0; i < n; i++) r[i] = key(c);
        return r;
    }

    private static DiffCommand Pop(DiffContext c, string key, string[] args) =>
        new(args, Checks.SameShape, [["DEL", key], ["SADD", key, .. c.Chance(0.5) ? Ints(c, 4) : Members(c, 4)]]);

    private static DiffCommand Next(DiffContext c)
    {
        string key = c.Key();
        string iset = IntsetKey(c);
        return c.Int(0, 42) switch
        {
            0 or 1 => c.Generic(),
            2 or 3 or 4 => (string[])["SADD", key, .. Members(c, 4)],
            5 => (string[])["SREM", key, .. Members(c, 3)],
            6 => new DiffCommand(["SMEMBERS", key], Checks.Unordered),
            7 => (string[])["SISMEMBER", key, c.Member()],
            8 => (string[])["SMISMEMBER", key, .. Members(c, 3)],
            9 => (string[])["SCARD", key],
            // SPOP's effect is random: resynchronise the key afterwards (see the remarks).
            10 => Pop(c, key, ["SPOP", key]),
            11 => Pop(c, key, ["SPOP", key, c.Pick("0", "1", "2", "3", "10", "-1", "x")]),
            12 => Pop(c, key, ["SPOP", key, "1", "2"]),
            // SRANDMEMBER picks at random (read-only): same reply type, length and error.
            13 => new DiffCommand(["SRANDMEMBER", key], Checks.SameShape),
            14 => new DiffCommand(["SRANDMEMBER", key, c.Pick("-5", "-1", "0", "1", "2", "3", "30", "x", "-9223372036854775808")], Checks.SameShape),
            15 => new DiffCommand(["SRANDMEMBER", key, "1", "2"], Checks.SameShape),
            16 => (string[])["SMOVE", key, c.Chance(0.2) ? key : c.Key(), c.Member()],
            17 => new DiffCommand(["SINTER", .. Keys(c, DiffContextKey, 3)], Checks.Unordered),
            18 => new DiffCommand(["SUNION", .. Keys(c, DiffContextKey, 3)], Checks.Unordered),
            19 => new DiffCommand(["SDIFF", .. Keys(c, DiffContextKey, 3)], Checks.Unordered),
            20 => (string[])["SINTERSTORE", c.Key(), .. Keys(c, DiffContextKey, 3)],
            21 => (string[])["SUNIONSTORE", c.Key(), .. Keys(c, DiffContextKey, 3)],
            22 => (string[])["SDIFFSTORE", c.Key(), .. Keys(c, DiffContextKey, 3)],
            23 => SInterCard(c),
            24 => new DiffCommand(["SSCAN", key, "0", "COUNT", "1000", .. c.Chance(0.4) ? new[] { "MATCH", c.Pick("m1*", "*", "1?", "[a-m]*", "-*") } : []],
                HashDiffTests.ScanCheck(full: true, pairs: false)),
            25 => new DiffCommand(["SSCAN", key, c.Pick("0", "x", "-1", "18446744073709551616"), .. HashDiffTests.ScanOptions(c)], HashDiffTests.ScanCheck(full: false, pairs: false)),
            // Keys that stay intsets: ascending order, compared exactly.
            26 or 27 => (string[])["SADD", iset, .. Ints(c, 4)],
            28 => (string[])["SREM", iset, .. Ints(c, 3)],
            29 => (string[])["SMEMBERS", iset],
            30 => (string[])["SSCAN", iset, c.Pick("0", "9"), .. HashDiffTests.ScanOptions(c)],
            31 => (string[])[c.Pick("SINTER", "SUNION", "SDIFF"), .. Keys(c, IntsetKey, 3)],
            32 => (string[])["SRANDMEMBER", iset, "100"], // count >= size: the whole set, in order
            33 => (string[])[c.Pick("SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"), key, .. Keys(c, IntsetKey, 3)],
            34 => c.Pick("SADD", "SREM", "SISMEMBER", "SMOVE", "SINTERCARD", "SCARD", "SSCAN", "SPOP", "SINTERSTORE") switch
            {
                // wrong arity
                "SADD" => (string[])["SADD", key],
                "SREM" => (string[])["SREM", key],
                "SISMEMBER" => (string[])["SISMEMBER", key],
                "SMOVE" => (string[])["SMOVE", key, key],
                "SINTERCARD" => (string[])["SINTERCARD", "1"],
                "SCARD" => (string[])["SCARD"],
                "SSCAN" => (string[])["SSCAN", key],
                "SPOP" => (string[])["SPOP"],
                _ => (string[])["SINTERSTORE", key],
            },
            35 => ManyInts(c, c.Chance(0.5) ? key : "big"), // around set-max-intset-entries
            36 => (string[])["OBJECT", "ENCODING", c.Chance(0.5) ? key : iset],
            37 => HashDiffTests.SwitchProtocol(c, key),
            38 => (string[])["SMOVE", iset, c.Chance(0.5) ? IntsetKey(c) : key, Int(c)],
            39 => (string[])["SINTERCARD", "2", iset, IntsetKey(c), "LIMIT", c.Pick("0", "1", "2")],
            40 => (string[])["COPY", iset, key, "REPLACE"],
            _ => c.Chance(0.05) ? (string[])["FLUSHDB"] : (string[])["SCARD", iset],
        };
    }

    private static string DiffContextKey(DiffContext c) => c.Chance(0.15) ? IntsetKey(c) : c.Key();

    private static string[] SInterCard(DiffContext c)
    {
        int n = c.Int(1, 4);
        var args = new List<string> { "SINTERCARD", c.Chance(0.1) ? c.Pick("0", "-1", "x", "9") : n.ToString(CultureInfo.InvariantCulture) };
        for (int i = 0; i < n; i++) args.Add(DiffContextKey(c));
        if (c.Chance(0.4)) args.AddRange(["LIMIT", c.Pick("0", "1", "2", "-1", "x")]);
        if (c.Chance(0.05)) args.Add(c.Pick("LIMIT", "FOO"));
        return [.. args];
    }

    private static string[] ManyInts(DiffContext c, string key)
    {
        int n = c.Int(100, 300);
        int start = c.Int(0, 400);
        var args = new List<string> { "SADD", key };
        for (int i = 0; i < n; i++) args.Add((start + i).ToString(CultureInfo.InvariantCulture));
        return [.. args];
    }
}
