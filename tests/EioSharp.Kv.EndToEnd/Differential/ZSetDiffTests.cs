using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Sorted sets, differential against redis-server (see <see cref="DiffRunner"/>), including OBJECT ENCODING.</summary>
/// <remarks>Scores mix small integers, halves, negatives, -0, the infinities and very large and small values, so that
/// Redis's <c>%.17g</c> formatting and the listpack's -0 are exercised. Lex commands run on their own keys (lex0..lex2)
/// whose members all have score 0, as Redis's lex semantics require. Non-deterministic replies: ZRANDMEMBER with a
/// count smaller than the set (random picks; compared by shape and membership) and ZSCAN of a skip list (hashtable
/// order in Redis; compared as sets of pairs when both finish in one call).</remarks>
public sealed class ZSetDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Sorted_sets_match_redis(int seed) =>
        DiffRunner.Run(servers, "zset", seed, 12_000, Next, compareEncoding: KvHasObjectCommand(servers));

    /// <summary>OBJECT (another branch of issue 11) may not be merged yet: encodings are compared as soon as it is.</summary>
    internal static bool KvHasObjectCommand(DiffServers servers)
    {
        using var k = new RespConnection(servers.Kv.Port);
        return !(k.Call("OBJECT", "ENCODING", "no-such-key").Text ?? "").StartsWith("ERR unknown command", StringComparison.Ordinal);
    }

    private static readonly string[] Scores =
    [
        "0", "1", "2", "3", "-1", "-2", "10", "0.5", "1.5", "-2.5", "inf", "-inf", "+inf", "-0", "1e300", "-1e300", "1e-300",
        "0.1", "3.3333333333333335", "123456789012345678", "1e17", "2.5e-5", "4.9406564584124654e-324", "7", "100", "1e15",
    ];

    private static string Score(DiffContext c) => c.Chance(0.03) ? c.Pick("x", "nan", "", "1e400", " 1", "1e-400", "0x10", "1.5.2") : c.Pick(Scores);

    private static string Member(DiffContext c) => c.Chance(0.03) ? new string('L', c.Int(60, 70)) : c.Member();

    private static string RangeEnd(DiffContext c) => c.Int(0, 12) switch
    {
        0 => "-inf",
        1 => "+inf",
        2 => "(" + c.Pick(Scores),
        3 => c.Pick("x", "(", "nan", "(x"),
        _ => c.Pick(Scores),
    };

    private static string LexEnd(DiffContext c) => c.Int(0, 10) switch
    {
        0 => "-",
        1 => "+",
        2 => c.Pick("x", "", "a"),
        3 or 4 or 5 => "(" + c.Member(),
        _ => "[" + c.Member(),
    };

    private static string LexKey(DiffContext c) => "lex" + c.Int(0, 3);

    private static string[] Limit(DiffContext c) => c.Chance(0.3) ? ["LIMIT", c.IntArg(-2, 5), c.IntArg(-2, 6)] : [];

    private static string[] Keys(DiffContext c, int n)
    {
        var keys = new string[n];
        for (int i = 0; i < n; i++) keys[i] = c.Chance(0.1) ? LexKey(c) : c.Key();
        return keys;
    }

    private static DiffCommand Next(DiffContext c)
    {
        string key = c.Key();
        switch (c.Int(0, 46))
        {
            case 0 or 1:
                {
                    var generic = c.Generic();
                    return generic[0] == "COPY" ? new[] { "DEL", key } : generic; // COPY: another branch adds it
                }
            case 2 or 3 or 4 or 5:
                {
                    var args = new List<string> { "ZADD", key };
                    if (c.Chance(0.3)) args.Add(c.Pick("NX", "XX", "GT", "LT", "CH", "INCR"));
                    if (c.Chance(0.15)) args.Add(c.Pick("NX", "XX", "GT", "LT", "CH", "INCR"));
                    int n = c.Int(1, 4);
                    for (int i = 0; i < n; i++)
                    {
                        args.Add(Score(c));
                        args.Add(Member(c));
                    }
                    if (c.Chance(0.02)) args.RemoveAt(args.Count - 1);
                    return args.ToArray();
                }
            case 6:
                {
                    if (!c.Chance(0.1)) return new[] { "ZADD", key, "INCR", Score(c), Member(c) };
                    // Past zset-max-listpack-entries: conversion to a skip list.
                    var args = new List<string> { "ZADD", key };
                    for (int i = 0; i < 135; i++)
                    {
                        args.Add(c.Pick(Scores));
                        args.Add("b" + i.ToString(CultureInfo.InvariantCulture));
                    }
                    return args.ToArray();
                }
            case 7: return new[] { "ZINCRBY", key, Score(c), Member(c) };
            case 8: return new[] { "ZREM", key, c.Member(), c.Member() };
            case 9: return new[] { "ZCARD", key };
            case 10: return new[] { "ZCOUNT", key, RangeEnd(c), RangeEnd(c) };
            case 11: return new[] { "ZLEXCOUNT", LexKey(c), LexEnd(c), LexEnd(c) };
            case 12: return new[] { "ZSCORE", key, c.Member() };
            case 13: return new[] { "ZMSCORE", key, c.Member(), c.Member(), c.Member() };
            case 14: return new[] { c.Pick("ZRANK", "ZREVRANK"), key, c.Member() };
            case 15 or 16:
                {
                    var args = new List<string> { "ZRANGE", key, c.IntArg(-6, 6), c.IntArg(-6, 6) };
                    if (c.Chance(0.2)) args.Add("REV");
                    if (c.Chance(0.5)) args.Add("WITHSCORES");
                    if (c.Chance(0.05)) args.AddRange(Limit(c));
                    return args.ToArray();
                }
            case 17:
                {
                    var args = new List<string> { "ZRANGE", key, RangeEnd(c), RangeEnd(c), "BYSCORE" };
                    if (c.Chance(0.3)) args.Add("REV");
                    if (c.Chance(0.5)) args.Add("WITHSCORES");
                    args.AddRange(Limit(c));
                    return args.ToArray();
                }
            case 18:
                {
                    var args = new List<string> { "ZRANGE", LexKey(c), LexEnd(c), LexEnd(c), "BYLEX" };
                    if (c.Chance(0.3)) args.Add("REV");
                    if (c.Chance(0.05)) args.Add("WITHSCORES");
                    args.AddRange(Limit(c));
                    return args.ToArray();
                }
            case 19:
                {
                    var args = new List<string> { "ZRANGESTORE", c.Key(), key };
                    switch (c.Int(0, 3))
                    {
                        case 0: args.AddRange([c.IntArg(-5, 5), c.IntArg(-5, 5)]); break;
                        case 1: args.AddRange([RangeEnd(c), RangeEnd(c), "BYSCORE"]); args.AddRange(Limit(c)); break;
                        default: args[2] = LexKey(c); args.AddRange([LexEnd(c), LexEnd(c), "BYLEX"]); args.AddRange(Limit(c)); break;
                    }
                    if (c.Chance(0.2)) args.Add("REV");
                    if (c.Chance(0.05)) args.Add("WITHSCORES");
                    return args.ToArray();
                }
            case 20: return new[] { "ZREVRANGE", key, c.IntArg(-6, 6), c.IntArg(-6, 6), c.Pick("WITHSCORES", "WITHSCORES", "REV", "BYSCORE") }.Take(c.Int(4, 6)).ToArray();
            case 21 or 22:
                {
                    string cmd = c.Pick("ZRANGEBYSCORE", "ZREVRANGEBYSCORE");
                    var args = new List<string> { cmd, key, RangeEnd(c), RangeEnd(c) };
                    if (c.Chance(0.5)) args.Add("WITHSCORES");
                    args.AddRange(Limit(c));
                    if (c.Chance(0.03)) args.Add("REV");
                    return args.ToArray();
                }
            case 23:
                {
                    var args = new List<string> { c.Pick("ZRANGEBYLEX", "ZREVRANGEBYLEX"), LexKey(c), LexEnd(c), LexEnd(c) };
                    args.AddRange(Limit(c));
                    if (c.Chance(0.05)) args.Add("WITHSCORES");
                    return args.ToArray();
                }
            case 24: return new[] { "ZREMRANGEBYRANK", key, c.IntArg(-5, 5), c.IntArg(-5, 5) };
            case 25: return new[] { "ZREMRANGEBYSCORE", key, RangeEnd(c), RangeEnd(c) };
            case 26: return new[] { "ZREMRANGEBYLEX", LexKey(c), LexEnd(c), LexEnd(c) };
            case 27: return c.Chance(0.5) ? new[] { c.Pick("ZPOPMIN", "ZPOPMAX"), key } : new[] { c.Pick("ZPOPMIN", "ZPOPMAX"), key, c.IntArg(-1, 4) };
            case 28:
                {
                    var args = new List<string> { "ZMPOP", c.IntArg(0, 3) };
                    args.AddRange(Keys(c, 3));
                    args.Add(c.Pick("MIN", "MAX", "MIN", "MAX", "FOO"));
                    if (c.Chance(0.5)) args.AddRange(["COUNT", c.IntArg(-1, 4)]);
                    if (c.Chance(0.03)) args.Add("COUNT");
                    int n = int.TryParse(args[1], out int v) && v is >= 0 and <= 3 ? v : 3;
                    if (n < 3 && c.Chance(0.9)) args.RemoveRange(2 + n, 3 - n);
                    return args.ToArray();
                }
            case 29:
                {
                    if (c.Chance(0.3)) return new DiffCommand(["ZRANDMEMBER", key], RandMemberCheck);
                    string count = c.IntArg(-6, 6);
                    string[] args = c.Chance(0.5) ? ["ZRANDMEMBER", key, count, c.Chance(0.95) ? "WITHSCORES" : "FOO"] : ["ZRANDMEMBER", key, count];
                    return new DiffCommand(args, RandMemberCheck);
                }
            case 30 or 31 or 32 or 33 or 34 or 35:
                {
                    string cmd = c.Pick("ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZINTERCARD");
                    bool store = cmd.EndsWith("STORE", StringComparison.Ordinal);
                    var args = new List<string> { cmd };
                    if (store) args.Add(c.Key());
                    int n = c.Int(1, 4);
                    args.Add(c.Chance(0.05) ? c.IntArg(-1, 5) : n.ToString(CultureInfo.InvariantCulture));
                    args.AddRange(Keys(c, n));
                    if (c.Chance(0.4))
                    {
                        args.Add("WEIGHTS");
                        for (int i = 0; i < n; i++) args.Add(c.Chance(0.05) ? "x" : c.Pick("1", "2", "-1", "0", "0.5", "inf", "-inf", "3"));
                    }
                    if (c.Chance(0.4)) args.AddRange(["AGGREGATE", c.Pick("SUM", "MIN", "MAX", "max", "FOO")]);
                    if (c.Chance(0.5)) args.Add("WITHSCORES");
                    if (cmd == "ZINTERCARD" && c.Chance(0.5)) args.AddRange(["LIMIT", c.IntArg(-1, 3)]);
                    if (c.Chance(0.02)) args.Add("AGGREGATE");
                    return args.ToArray();
                }
            case 36:
                {
                    string cursor = c.Chance(0.1) ? c.Pick("x", "-1", "5") : "0";
                    var args = new List<string> { "ZSCAN", key, cursor };
                    if (c.Chance(0.3)) args.AddRange(["MATCH", c.Pick("m1*", "*", "b*", "?")]);
                    if (c.Chance(0.3)) args.AddRange(["COUNT", c.IntArg(-1, 200)]);
                    if (c.Chance(0.03)) args.Add("COUNT");
                    return new DiffCommand(args.ToArray(), cursor == "0" ? ScanCheck : ScanShapeCheck);
                }
            case 37: return new[] { "ZADD", LexKey(c), "0", c.Member(), "0", c.Member() };
            case 38: return new[] { "ZREM", LexKey(c), c.Member() };
            case 39: return new[] { c.Pick("ZADD", "ZCARD", "ZRANGE", "ZINCRBY", "ZPOPMIN", "ZMPOP", "ZUNIONSTORE", "ZRANGESTORE", "ZSCORE") , key };
            case 40: return new[] { "ZCARD", key };
            case 41: return new[] { "ZRANGE", key, "0", "-1", "WITHSCORES" };
            case 42: return new[] { "SELECT", c.Int(0, 3).ToString(CultureInfo.InvariantCulture) };
            case 43: return new[] { "ZADD", key, c.Pick("GT", "LT", "NX", "XX"), c.Pick("CH", "GT", "LT", "NX", "XX", "INCR"), Score(c), c.Member() };
            case 44: return new[] { "ZRANGEBYSCORE", key, "-inf", "+inf", "WITHSCORES" };
            default: return new[] { "ZREVRANGE", key, "0", "-1", "WITHSCORES" };
        }
    }

    /// <summary>ZRANDMEMBER: the same reply when Redis's is deterministic (the whole set for a count &gt;= size, errors, nil);
    /// otherwise the same length.</summary>
    private static string? RandMemberCheck(Resp r, Resp k)
    {
        if (r.ToString() == k.ToString()) return null;
        return Checks.SameShape(r, k);
    }

    /// <summary>ZSCAN from a cursor Redis never returned: only the errors and the reply's shape are comparable.</summary>
    private static string? ScanShapeCheck(Resp r, Resp k) =>
        r.IsError || k.IsError ? (r.ToString() == k.ToString() ? null : "different errors") : r.Items?.Count == k.Items?.Count ? null : "different shapes";

    /// <summary>ZSCAN: identical for a listpack (whole set, cursor 0); for a skip list the same shape, and the same pairs
    /// when both servers finished in one call.</summary>
    private static string? ScanCheck(Resp r, Resp k)
    {
        if (r.ToString() == k.ToString()) return null;
        if (r.IsError || k.IsError || r.Items is null || k.Items is null || r.Items.Count != 2 || k.Items.Count != 2) return "differ";
        if (r.Items[0].Text == "0" && k.Items[0].Text == "0") return Checks.UnorderedPairs(r.Items[1], k.Items[1]);
        return (r.Items[1].Items!.Count % 2 == 0 && k.Items[1].Items!.Count % 2 == 0) ? null : "odd element count";
    }
}
