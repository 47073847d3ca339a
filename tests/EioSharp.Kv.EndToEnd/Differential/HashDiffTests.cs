using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Hashes, differential against redis-server (see <see cref="DiffRunner"/>): every hash command and option,
/// error paths (bad numbers, syntax, arity, WRONGTYPE through <see cref="DiffContext.Generic"/>), several databases,
/// RESP2 and RESP3 (HELLO switches the protocol of both connections), and OBJECT ENCODING of every key at the end.</summary>
/// <remarks>
/// <para>Keys of the shared pool (<c>k0..k7</c>) get long values and many fields, so they may be hashtables, whose
/// order is Redis's own: replies that list them are compared as multisets. Keys <c>lp0..lp2</c> only ever get short
/// fields and values and fewer than 512 fields, so they stay listpacks, whose order (insertion order) must match
/// exactly: HGETALL, HKEYS, HVALS and HSCAN on them are compared byte for byte.</para>
/// <para>Random commands: HRANDFIELD is read-only, so its reply is compared by shape (type, length, error text) and no
/// resynchronisation is needed.</para>
/// </remarks>
public sealed class HashDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(21, 22)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Hashes_match_redis(int seed) =>
        DiffRunner.Run(servers, "hashes", seed, 12_000, Next, compareEncoding: true);

    private static string Field(DiffContext c) => c.Chance(0.03) ? new string('f', c.Int(60, 70)) : c.Member();

    private static string ListpackKey(DiffContext c) => "lp" + c.Int(0, 3);

    private static string ShortValue(DiffContext c) => c.Random.Next(4) == 0 ? c.Int(-50, 50).ToString(CultureInfo.InvariantCulture) : "v" + c.Int(0, 20);

    private static string[] Pairs(DiffContext c, int max, bool shortOnly)
    {
        int n = c.Int(1, max + 1);
        var r = new string[2 * n];
        for (int i = 0; i < n; i++)
        {
            r[2 * i] = shortOnly ? c.Member() : Field(c);
            r[2 * i + 1] = shortOnly ? ShortValue(c) : c.Value();
        }
        return r;
    }

    // Not "0x10": strtold reads hexadecimal floats, LongDouble.TryParse does not (a documented difference).
    private static string Float(DiffContext c) =>
        c.Pick("1.5", "-2", "0.1", "x", "1e3", "0.25", "-0.1", "3.0e2", "1e-3", "5", "inf", "-inf", "nan", "1e", ".5", "7.", "+3", "");

    /// <summary>Reply check for HSCAN/SSCAN on a key that may be a hashtable: the cursor and the order are Redis's own.
    /// With COUNT 1000 both servers return a small hashtable in one call (cursor 0), so the cursor must match and the
    /// elements are compared as a set; otherwise only the shape (errors compared by text).</summary>
    internal static ReplyCheck ScanCheck(bool full, bool pairs) => (r, k) =>
    {
        if (r.IsError || k.IsError) return r.ToString() == k.ToString() ? null : "different errors";
        if (r.Items is not { Count: 2 } || k.Items is not { Count: 2 }) return "not a scan reply";
        if (!full) return k.Items[1].Items is null ? "no element array" : null;
        if (r.Items[0].Text != k.Items[0].Text) return "different cursors";
        return pairs ? Checks.UnorderedPairs(r.Items[1], k.Items[1]) : Checks.Unordered(r.Items[1], k.Items[1]);
    };

    private static DiffCommand Next(DiffContext c)
    {
        string key = c.Key();
        string lp = ListpackKey(c);
        return c.Int(0, 40) switch
        {
            0 or 1 => c.Generic(),
            2 or 3 => (string[])["HSET", key, .. Pairs(c, 3, shortOnly: false)],
            4 => (string[])["HMSET", key, .. Pairs(c, 2, shortOnly: false)],
            5 => (string[])["HSETNX", key, Field(c), c.Value()],
            6 => (string[])["HGET", key, Field(c)],
            7 => (string[])["HMGET", key, Field(c), Field(c), Field(c)],
            8 => (string[])["HDEL", key, Field(c), .. c.Chance(0.5) ? new[] { Field(c), Field(c) } : []],
            9 => (string[])["HEXISTS", key, Field(c)],
            10 => (string[])["HLEN", key],
            11 => (string[])["HSTRLEN", key, Field(c)],
            12 => new DiffCommand(["HKEYS", key], Checks.Unordered),
            13 => new DiffCommand(["HVALS", key], Checks.Unordered),
            14 => new DiffCommand(["HGETALL", key], Checks.UnorderedPairs),
            15 => (string[])["HINCRBY", key, Field(c), c.IntArg(-100, 100)],
            16 => (string[])["HINCRBYFLOAT", key, Field(c), Float(c)],
            // HRANDFIELD picks at random (read-only: nothing to resynchronise): same reply type, length and error.
            17 => new DiffCommand(["HRANDFIELD", key], Checks.SameShape),
            18 => new DiffCommand(["HRANDFIELD", key, c.Pick("-5", "-1", "0", "1", "2", "3", "5", "30", "x", "-9223372036854775808")], Checks.SameShape),
            19 => new DiffCommand(["HRANDFIELD", key, c.Pick("-4", "0", "1", "3", "40", "-4611686018427387904"), c.Pick("WITHVALUES", "withvalues", "WITHVALUE")], Checks.SameShape),
            20 => new DiffCommand(["HRANDFIELD", key, "1", "WITHVALUES", "x"], Checks.SameShape),
            21 => new DiffCommand(["HSCAN", key, "0", "COUNT", "1000", .. c.Chance(0.4) ? new[] { "MATCH", c.Pick("m1*", "*", "1?", "[a-m]*", "m\\1") } : []],
                ScanCheck(full: true, pairs: true)),
            22 => new DiffCommand(["HSCAN", key, c.Pick("0", "x", "-1", "18446744073709551616"), .. ScanOptions(c)], ScanCheck(full: false, pairs: true)),
            // Keys that stay listpacks: insertion order, compared exactly.
            23 or 24 => (string[])["HSET", lp, .. Pairs(c, 3, shortOnly: true)],
            25 => (string[])["HDEL", lp, c.Member(), c.Member()],
            26 => (string[])[c.Pick("HGETALL", "HKEYS", "HVALS"), lp],
            27 => (string[])["HSCAN", lp, c.Pick("0", "7"), .. ScanOptions(c)],
            28 => (string[])["HINCRBY", lp, c.Member(), c.IntArg(-100, 100)],
            29 => (string[])["HINCRBYFLOAT", lp, c.Member(), Float(c)],
            30 => (string[])["HRANDFIELD", lp, c.Pick("60", "100")], // count >= size (at most 60 fields): the whole hash, in order
            31 => (string[])["HRANDFIELD", lp, "60", "WITHVALUES"],
            32 => c.Pick("HSET", "HMSET", "HGET", "HDEL", "HSETNX", "HINCRBY", "HSCAN", "HRANDFIELD", "HSTRLEN") switch
            {
                // wrong arity (HSET/HMSET: an odd field/value list)
                "HSET" => (string[])["HSET", key, "f", "v", "g"],
                "HMSET" => (string[])["HMSET", key, "f"],
                "HGET" => (string[])["HGET", key],
                "HDEL" => (string[])["HDEL", key],
                "HSETNX" => (string[])["HSETNX", key, "f"],
                "HINCRBY" => (string[])["HINCRBY", key, "f"],
                "HSCAN" => (string[])["HSCAN", key],
                "HRANDFIELD" => (string[])["HRANDFIELD"],
                _ => (string[])["HSTRLEN", key, "a", "b"],
            },
            33 => ManyFields(c, key), // past hash-max-listpack-entries
            34 => (string[])["OBJECT", "ENCODING", c.Chance(0.5) ? key : lp],
            35 => HashDiffTests.SwitchProtocol(c, key),
            36 => (string[])["HSET", key, Field(c), new string('x', c.Int(60, 70))], // around hash-max-listpack-value
            37 => (string[])["COPY", lp, key, "REPLACE"],
            38 => (string[])["HINCRBYFLOAT", key, Field(c), c.Pick("1e300", "-1e300", "1.7976931348623157e308", "4.9e-324", "123456789.123456789")],
            _ => c.Chance(0.05) ? (string[])["FLUSHDB"] : (string[])["HLEN", lp],
        };
    }

    /// <summary>Switches both connections to RESP2 or RESP3 (HELLO) after a TYPE, so that the following replies are
    /// compared in that protocol. HELLO goes in <c>After</c> (its own pipeline, reply not compared: the server fields
    /// differ by design) because EioSharp.Kv applies a HELLO to the data commands pipelined before it in the same read
    /// (KvConnection submits the pending batch with the protocol after HELLO), which Redis does not.</summary>
    internal static DiffCommand SwitchProtocol(DiffContext c, string key) =>
        new(["TYPE", key], After: [["HELLO", c.Pick("2", "3")]]);

    internal static string[] ScanOptions(DiffContext c)
    {
        var args = new List<string>();
        int n = c.Int(0, 3);
        for (int i = 0; i < n; i++)
        {
            switch (c.Int(0, 6))
            {
                case 0: args.AddRange(["COUNT", c.Pick("1", "2", "10", "0", "-1", "x")]); break;
                case 1: args.AddRange(["MATCH", c.Pick("m1*", "*", "1?", "[a-m]*", "*2")]); break;
                case 2: args.Add(c.Pick("COUNT", "MATCH", "NOVALUES", "TYPE")); break;
                case 3: args.AddRange(["TYPE", "hash"]); break;
                default: args.AddRange(["count", "5"]); break;
            }
        }
        return [.. args];
    }

    private static string[] ManyFields(DiffContext c, string key)
    {
        int n = c.Int(120, 260); // a few of these reach 512 fields
        var args = new List<string> { "HSET", key };
        int start = c.Int(0, 400);
        for (int i = 0; i < n; i++) args.AddRange(["bulk" + (start + i).ToString(CultureInfo.InvariantCulture), "v"]);
        return [.. args];
    }
}
