namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Lists, differential against redis-server (see <see cref="DiffRunner"/>): every list command and option,
/// error paths (bad numbers, syntax, arity, WRONGTYPE through <see cref="DiffContext.Generic"/>), several databases,
/// and OBJECT ENCODING of every key at the end. Every list command is deterministic, so every reply is compared as is.</summary>
public sealed class ListDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(11, 12)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Lists_match_redis(int seed) =>
        DiffRunner.Run(servers, "lists", seed, 12_000, Next, compareEncoding: true);

    private static string Side(DiffContext c) => c.Chance(0.03) ? "MIDDLE" : c.Pick("LEFT", "RIGHT", "left");

    private static string Elem(DiffContext c) => c.Random.Next(5) == 0 ? c.Value() : "e" + c.Random.Next(6);

    private static string[] Elems(DiffContext c, int max)
    {
        int n = c.Int(1, max + 1);
        var r = new string[n];
        for (int i = 0; i < n; i++) r[i] = Elem(c);
        return r;
    }

    private static DiffCommand Next(DiffContext c)
    {
        string key = c.Key();
        return c.Int(0, 34) switch
        {
            0 or 1 => c.Generic(),
            2 or 3 => (string[])["LPUSH", key, .. Elems(c, 4)],
            4 or 5 => (string[])["RPUSH", key, .. Elems(c, 4)],
            6 => (string[])["LPUSHX", key, .. Elems(c, 2)],
            7 => (string[])["RPUSHX", key, .. Elems(c, 2)],
            8 => (string[])["LPOP", key],
            9 => (string[])["RPOP", key],
            10 => (string[])["LPOP", key, c.IntArg(-1, 5)],
            11 => (string[])["RPOP", key, c.IntArg(-1, 5)],
            12 => (string[])["LLEN", key],
            13 => (string[])["LRANGE", key, c.IntArg(-8, 8), c.IntArg(-8, 8)],
            14 => (string[])["LINDEX", key, c.IntArg(-8, 8)],
            15 => (string[])["LSET", key, c.IntArg(-8, 8), Elem(c)],
            16 => (string[])["LINSERT", key, c.Pick("BEFORE", "AFTER", "after", "X"), Elem(c), Elem(c)],
            17 => (string[])["LREM", key, c.IntArg(-3, 3), Elem(c)],
            18 => (string[])["LTRIM", key, c.IntArg(-8, 8), c.IntArg(-8, 8)],
            19 => LPos(c, key),
            20 => (string[])["LMOVE", key, c.Key(), Side(c), Side(c)],
            21 => (string[])["RPOPLPUSH", key, c.Chance(0.2) ? key : c.Key()],
            22 => LMPop(c),
            23 => c.Pick("LPOP", "RPOP", "LLEN", "LRANGE", "LPUSH", "LMPOP", "LPOS", "LINSERT") switch
            {
                // wrong arity
                "LPOP" => (string[])["LPOP", key, "1", "2"],
                "RPOP" => (string[])["RPOP"],
                "LLEN" => (string[])["LLEN", key, key],
                "LRANGE" => (string[])["LRANGE", key, "0"],
                "LPUSH" => (string[])["LPUSH", key],
                "LMPOP" => (string[])["LMPOP", "1", key],
                "LPOS" => (string[])["LPOS", key],
                _ => (string[])["LINSERT", key, "BEFORE", "a"],
            },
            24 => (string[])["LRANGE", key, "0", "-1"],
            25 => (string[])["OBJECT", "ENCODING", key],
            26 => (string[])["SORT", key, .. SortOptions(c)],
            27 => (string[])["LMOVE", key, key, Side(c), Side(c)],
            28 => (string[])["TYPE", key],
            29 => (string[])["SELECT", c.IntArg(0, 2)],
            30 => (string[])["COPY", key, c.Key(), .. c.Chance(0.5) ? new[] { "REPLACE" } : [], .. c.Chance(0.3) ? new[] { "DB", c.IntArg(0, 2) } : []],
            31 => (string[])["RPUSH", key, .. Elems(c, 20)],
            32 => (string[])["LINSERT", key, "BEFORE", "e" + c.Int(0, 6), "x"],
            _ => c.Chance(0.05) ? (string[])["FLUSHDB"] : (string[])["LRANGE", key, "0", "-1"],
        };
    }

    private static string[] LPos(DiffContext c, string key)
    {
        var args = new List<string> { "LPOS", key, Elem(c) };
        int n = c.Int(0, 4);
        for (int i = 0; i < n; i++)
        {
            switch (c.Int(0, 5))
            {
                case 0: args.AddRange(["RANK", c.Pick("1", "2", "-1", "-2", "0", "x", "-9223372036854775808", "3")]); break;
                case 1: args.AddRange(["COUNT", c.Pick("0", "1", "2", "-1", "x")]); break;
                case 2: args.AddRange(["MAXLEN", c.Pick("0", "1", "3", "-1")]); break;
                case 3: args.Add(c.Pick("RANK", "COUNT", "FOO")); break;
                default: args.AddRange(["COUNT", "0"]); break;
            }
        }
        return [.. args];
    }

    private static string[] LMPop(DiffContext c)
    {
        int n = c.Int(1, 4);
        var args = new List<string> { "LMPOP", c.Chance(0.1) ? c.Pick("0", "-1", "x", "5") : n.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        for (int i = 0; i < n; i++) args.Add(c.Key());
        args.Add(Side(c));
        if (c.Chance(0.5)) args.AddRange(["COUNT", c.IntArg(0, 4)]);
        if (c.Chance(0.05)) args.Add("COUNT");
        return [.. args];
    }

    /// <summary>SORT options on a list (deterministic: a list has its own order).</summary>
    /// <remarks>ALPHA is not combined with a BY pattern that has a <c>*</c>: elements whose BY keys are missing (or
    /// equal) compare equal, and Redis leaves their order to its sort algorithm (pqsort with LIMIT, libc's qsort
    /// without), which we do not copy; numeric sorting breaks such ties by the elements, so it is compared.</remarks>
    internal static string[] SortOptions(DiffContext c)
    {
        var args = new List<string>();
        int n = c.Int(0, 4);
        for (int i = 0; i < n; i++)
        {
            switch (c.Int(0, 8))
            {
                case 0: args.Add(c.Pick("ASC", "DESC")); break;
                case 1: args.Add("ALPHA"); break;
                case 2: args.AddRange(["LIMIT", c.IntArg(-1, 4), c.IntArg(-2, 4)]); break;
                case 3: args.AddRange(["BY", c.Pick("nosort", "k*", "w_*", "k*->f", "*")]); break;
                case 4: args.AddRange(["GET", c.Pick("#", "k*", "w_*", "k*->f", "nostar")]); break;
                case 5: args.AddRange(["STORE", c.Key()]); break;
                case 6: args.Add(c.Pick("FOO", "LIMIT")); break;
                default: args.Add("ALPHA"); break;
            }
        }
        int by = args.IndexOf("BY");
        if (by >= 0 && args[by + 1].Contains('*', StringComparison.Ordinal))
        {
            for (int i = 0; i < args.Count; i++)
                if (args[i] == "ALPHA" && (i == 0 || args[i - 1] is not ("BY" or "GET" or "STORE"))) args[i] = "ASC";
        }
        return [.. args];
    }
}
