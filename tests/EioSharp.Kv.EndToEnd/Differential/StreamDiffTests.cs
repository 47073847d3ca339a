using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Streams and consumer groups, differential against redis-server (see <see cref="DiffRunner"/>).</summary>
/// <remarks>
/// Entry IDs are explicit (a counter that only grows, so most XADDs succeed, plus old IDs for the error paths and
/// <c>ms-*</c>); the rare <c>XADD key *</c> takes the server clock, so its reply is compared by shape and the key is
/// deleted on both servers afterwards. Idle times (XPENDING, XINFO CONSUMERS) and delivery/seen timestamps (XINFO
/// STREAM FULL) depend on each server's clock and are masked; min-idle arguments are 0 or an hour, and XCLAIM IDLE/TIME
/// set delivery times hours in the past, so which entries qualify is the same on both servers.
/// </remarks>
public sealed class StreamDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Streams_and_consumer_groups_match_redis(int seed)
    {
        var gen = new StreamCommands();
        try
        {
            DiffRunner.Run(servers, "streams", seed, 12_000, gen.Next);
        }
        catch (Exception e) when (servers.Kv.Log.Contains("xception", StringComparison.Ordinal))
        {
            throw new InvalidOperationException(e.Message + "\nKV server log:\n" + servers.Kv.Log, e);
        }
    }

    /// <summary>The same commands over RESP3 (maps, nulls): the connection switches with HELLO 3 first, whose reply
    /// (server details) is not compared.</summary>
    [Theory]
    [MemberData(nameof(SeedData))]
    public void Streams_match_redis_over_resp3(int seed)
    {
        var gen = new StreamCommands();
        bool hello = false;
        DiffRunner.Run(servers, "streams-resp3", seed + 100, 4_000, c =>
        {
            if (hello) return gen.Next(c);
            hello = true;
            return new DiffCommand(["HELLO", "3"], static (_, _) => null);
        });
    }

    private sealed class StreamCommands
    {
        private long _next = 1;

        private static string S(long v) => v.ToString(CultureInfo.InvariantCulture);

        private string NewId(DiffContext c)
        {
            _next += c.Int(1, 4);
            return c.Int(0, 10) switch
            {
                0 => S(_next) + "-*",
                1 => S(_next),
                _ => S(_next) + "-" + S(c.Int(0, 3)),
            };
        }

        private string OldId(DiffContext c) => c.Int(0, 12) switch
        {
            0 => S(c.Int(0, (int)_next + 2)),
            1 => c.Pick("0-0", "0", "18446744073709551615-18446744073709551615"),
            2 => c.Pick("x", "1-x", "-1", "(1", "+", "-"),
            _ => S(Math.Max(1, _next - c.Int(0, 60))) + "-" + S(c.Int(0, 3)),
        };

        private string RangeBound(DiffContext c, bool start) => c.Int(0, 8) switch
        {
            0 => start ? "-" : "+",
            1 => "(" + OldId(c),
            2 => c.Pick("-", "+"),
            _ => OldId(c),
        };

        private static string Group(DiffContext c) => "g" + c.Int(0, 3);

        private static string Consumer(DiffContext c) => "c" + c.Int(0, 4);

        private static string Field(DiffContext c) => c.Int(0, 6) switch
        {
            0 => c.Member(),
            1 => "n" + c.Int(0, 300),
            _ => "f" + c.Int(0, 2),
        };

        private static string Idle(DiffContext c) => c.Pick("0", "0", "3600000", "x", "-5");

        private string[] XAdd(DiffContext c, string key)
        {
            var args = new List<string> { "XADD", key };
            if (c.Chance(0.05)) args.Add("NOMKSTREAM");
            if (c.Chance(0.3))
            {
                bool maxlen = c.Chance(0.6);
                args.Add(maxlen ? "MAXLEN" : "MINID");
                string mode = c.Pick("~", "~", "=", "");
                if (mode.Length > 0) args.Add(mode);
                args.Add(maxlen ? c.IntArg(0, 250) : S(Math.Max(0, _next - c.Int(0, 400))));
                if (c.Chance(0.15)) args.AddRange(["LIMIT", c.IntArg(0, 150)]);
            }
            args.Add(c.Chance(0.05) ? OldId(c) : NewId(c));
            int fields = c.Chance(0.05) ? 0 : c.Int(1, 4);
            for (int i = 0; i < fields; i++) args.AddRange([Field(c), c.Value()]);
            if (c.Chance(0.02)) args.Add("dangling");
            return [.. args];
        }

        private string[] XTrim(DiffContext c, string key)
        {
            var args = new List<string> { "XTRIM", key };
            if (c.Chance(0.05)) return ["XTRIM", key, c.Pick("FOO", "LIMIT"), "1"];
            bool maxlen = c.Chance(0.6);
            args.Add(maxlen ? "MAXLEN" : "MINID");
            string mode = c.Pick("~", "=", "");
            if (mode.Length > 0) args.Add(mode);
            args.Add(maxlen ? c.IntArg(0, 300) : S(Math.Max(0, _next - c.Int(0, 500))));
            if (c.Chance(0.2)) args.AddRange(["LIMIT", c.IntArg(0, 200)]);
            return [.. args];
        }

        private string[] XRead(DiffContext c, bool group)
        {
            var args = new List<string> { group ? "XREADGROUP" : "XREAD" };
            if (group) args.AddRange(["GROUP", Group(c), Consumer(c)]);
            if (c.Chance(0.4)) args.AddRange(["COUNT", c.IntArg(0, 20)]);
            if (group && c.Chance(0.2)) args.Add("NOACK");
            if (c.Chance(0.03)) args.AddRange(["BLOCK", c.Pick("x", "-1")]); // only BLOCK values that fail: no blocking here
            if (c.Chance(0.03)) args.Add(group ? "FOO" : c.Pick("NOACK", "GROUP"));
            args.Add("STREAMS");
            int n = c.Int(1, 3);
            var keys = new List<string>();
            for (int i = 0; i < n; i++) keys.Add(c.Key());
            args.AddRange(keys);
            for (int i = 0; i < n; i++)
            {
                args.Add(group
                    ? c.Int(0, 5) switch { 0 => "0", 1 => OldId(c), 2 => c.Pick("$", ">", "0-0"), _ => ">" }
                    : c.Int(0, 4) switch { 0 => "$", 1 => "0", 2 => c.Pick(">", "+", "-"), _ => OldId(c) });
            }
            if (c.Chance(0.02)) args.Add("extra");
            return [.. args];
        }

        private string[] XGroup(DiffContext c, string key) => c.Int(0, 12) switch
        {
            0 or 1 or 2 => c.Chance(0.5)
                ? ["XGROUP", "CREATE", key, Group(c), c.Pick("0", "$", OldId(c)), "MKSTREAM"]
                : c.Chance(0.3)
                    ? ["XGROUP", "CREATE", key, Group(c), c.Pick("0", "$", OldId(c)), "ENTRIESREAD", c.IntArg(-2, 50)]
                    : ["XGROUP", "CREATE", key, Group(c), c.Pick("0", "$", OldId(c))],
            3 or 4 => c.Chance(0.3)
                ? ["XGROUP", "SETID", key, Group(c), c.Pick("0", "$", "-", OldId(c)), "ENTRIESREAD", c.IntArg(-1, 50)]
                : ["XGROUP", "SETID", key, Group(c), c.Pick("0", "$", OldId(c))],
            5 => ["XGROUP", "DESTROY", key, Group(c)],
            6 or 7 => ["XGROUP", "CREATECONSUMER", key, Group(c), Consumer(c)],
            8 => ["XGROUP", "DELCONSUMER", key, Group(c), Consumer(c)],
            9 => ["XGROUP", c.Pick("HELP", "FOO", "CREATE")],
            10 => ["XGROUP", "CREATE", key, Group(c), "0", c.Pick("MKSTREAM", "BAD"), "x"],
            _ => ["XGROUP", c.Pick("DESTROY", "CREATECONSUMER", "SETID"), key],
        };

        private string[] XClaim(DiffContext c, string key)
        {
            var args = new List<string> { "XCLAIM", key, Group(c), Consumer(c), Idle(c) };
            int n = c.Int(1, 4);
            for (int i = 0; i < n; i++) args.Add(OldId(c));
            if (c.Chance(0.3)) args.AddRange(["IDLE", c.Pick("7200000", "0", "x")]);
            if (c.Chance(0.2)) args.AddRange(["TIME", c.Pick("1000", "x", "-5")]);
            if (c.Chance(0.3)) args.AddRange(["RETRYCOUNT", c.IntArg(0, 9)]);
            if (c.Chance(0.3)) args.Add("FORCE");
            if (c.Chance(0.4)) args.Add("JUSTID");
            if (c.Chance(0.15)) args.AddRange(["LASTID", OldId(c)]);
            if (c.Chance(0.03)) args.Add("BOGUS");
            return [.. args];
        }

        public DiffCommand Next(DiffContext c)
        {
            string key = c.Key();
            switch (c.Int(0, 40))
            {
                case 0:
                    string[] g = c.Generic();
                    return g[0] == "COPY" ? new[] { "TYPE", key } : g; // COPY is another engineer's (not on this branch)
                case 1:
                    // The clock picks the ID: compare the shape, then drop the key on both servers.
                    return new DiffCommand(["XADD", key, "*", "f", "v"], Checks.SameShape, [["DEL", key]]);
                case 2 or 3 or 4 or 5 or 6 or 7 or 8 or 9 or 10 or 11: return XAdd(c, key);
                case 12: return new[] { "XLEN", key };
                case 13 or 14:
                {
                    string[] a = c.Chance(0.5) ? ["XRANGE", key, RangeBound(c, true), RangeBound(c, false)] : ["XREVRANGE", key, RangeBound(c, false), RangeBound(c, true)];
                    return c.Chance(0.5) ? [.. a, c.Pick("COUNT", "COUNT", "FOO"), c.IntArg(-1, 15)] : a;
                }
                case 15 or 16: return new[] { "XDEL", key, OldId(c), OldId(c) };
                case 17 or 18: return XTrim(c, key);
                case 19 or 20: return XRead(c, group: false);
                case 21 or 22 or 23 or 24: return XRead(c, group: true);
                case 25 or 26 or 27: return XGroup(c, key);
                case 28 or 29: return new[] { "XACK", key, Group(c), OldId(c), OldId(c) };
                case 30:
                    return new DiffCommand(c.Int(0, 3) switch
                    {
                        0 => ["XPENDING", key, Group(c)],
                        1 => ["XPENDING", key, Group(c), RangeBound(c, true), RangeBound(c, false), c.IntArg(-1, 10)],
                        _ => ["XPENDING", key, Group(c), "IDLE", Idle(c), "-", "+", c.IntArg(0, 10), Consumer(c)],
                    }, MaskPendingIdle);
                case 31 or 32: return XClaim(c, key);
                case 33 or 34:
                {
                    var a = new List<string> { "XAUTOCLAIM", key, Group(c), Consumer(c), Idle(c), RangeBound(c, true) };
                    if (c.Chance(0.5)) a.AddRange(["COUNT", c.IntArg(0, 8)]);
                    if (c.Chance(0.4)) a.Add("JUSTID");
                    if (c.Chance(0.03)) a.Add("BOGUS");
                    return a.ToArray();
                }
                case 35:
                    return new DiffCommand(c.Int(0, 5) switch
                    {
                        0 => ["XINFO", "STREAM", key],
                        1 => ["XINFO", "STREAM", key, "FULL"],
                        2 => ["XINFO", "STREAM", key, "FULL", "COUNT", c.IntArg(-1, 5)],
                        3 => ["XINFO", "CONSUMERS", key, Group(c)],
                        _ => ["XINFO", c.Pick("GROUPS", "HELP", "FOO", "STREAM"), key],
                    }, MaskTimes);
                case 36:
                    return c.Int(0, 4) switch
                    {
                        0 => new[] { "XSETID", key, OldId(c) },
                        1 => new[] { "XSETID", key, NewId(c).Replace("-*", "", StringComparison.Ordinal), "ENTRIESADDED", c.IntArg(0, 400) },
                        2 => new[] { "XSETID", key, NewId(c).Replace("-*", "", StringComparison.Ordinal), "MAXDELETEDID", OldId(c) },
                        _ => new[] { "XSETID", key, OldId(c), c.Pick("ENTRIESADDED", "FOO") },
                    };
                case 37: return new[] { "XGROUP", "CREATE", key, Group(c), "0", "MKSTREAM" };
                case 38: return new[] { c.Pick("XADD", "XRANGE", "XDEL", "XACK", "XCLAIM", "XAUTOCLAIM", "XSETID", "XTRIM", "XREADGROUP", "XLEN", "XINFO", "XPENDING"), key };
                default: return new[] { "TYPE", key };
            }
        }

        // XPENDING's extended rows are [id, consumer, idle ms, deliveries]: the idle time follows each server's clock.
        private static string? MaskPendingIdle(Resp r, Resp k)
        {
            static string Mask(Resp x) => x.Items is null || x.Items.Count == 4 && x.Items[0].Kind == ':'
                ? x.ToString()
                : "[" + string.Join(", ", x.Items.Select(row => row.Items is { Count: 4 } cells
                    ? "[" + cells[0] + ", " + cells[1] + ", idle, " + cells[3] + "]"
                    : row.ToString())) + "]";
            return Mask(r) == Mask(k) ? null : "differ (idle times masked)";
        }

        // XINFO: "idle" and "seen-time" values and unix-ms timestamps (delivery times) follow each server's clock.
        private static string? MaskTimes(Resp r, Resp k) => Mask(r) == Mask(k) ? null : "differ (times masked)";

        private static string Mask(Resp x)
        {
            if (x.Items is null) return x.Kind == ':' && long.TryParse(x.Text, out long v) && v > 1_000_000_000_000 ? ":time" : x.ToString();
            var parts = new List<string>();
            for (int i = 0; i < x.Items.Count; i++)
            {
                parts.Add(Mask(x.Items[i]));
                if (x.Items[i].Text is "idle" or "seen-time" && i + 1 < x.Items.Count)
                {
                    parts.Add("masked");
                    i++;
                }
            }
            return x.Kind + "[" + string.Join(", ", parts) + "]";
        }
    }
}
