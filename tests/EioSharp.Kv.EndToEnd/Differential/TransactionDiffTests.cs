using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>MULTI/EXEC/DISCARD/WATCH/UNWATCH from one client interleaved with writes from a second client, command by
/// command on both servers (so the interleaving is the same), differential against redis-server.</summary>
public sealed class TransactionDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Transactions_racing_a_second_client_match_redis(int seed) =>
        TwoClientRunner.Run(servers, "transactions", seed, 10_000, Next);

    private static string Db(DiffContext c) => c.Int(0, 3).ToString(CultureInfo.InvariantCulture);

    private static string[] Next(DiffContext c, bool first)
    {
        string key = c.Key();
        int roll = c.Int(0, first ? 34 : 22);
        return roll switch
        {
            0 => ["SET", key, c.Value()],
            1 => ["INCR", key],
            2 => ["APPEND", key, c.Value()],
            3 => ["DEL", key, c.Key()],
            4 => ["GET", key],
            5 => ["EXPIRE", key, c.TtlArg()],
            6 => ["RENAME", key, c.Key()],
            7 => ["MOVE", key, Db(c)],
            8 => ["SELECT", Db(c)],
            9 => ["MSET", key, c.Value(), c.Key(), c.Value()],
            10 => ["PERSIST", key],
            11 => ["EXISTS", key],
            12 => ["INCRBY", key, c.IntArg(-5, 5)],
            13 => ["SETNX", key, c.Value()],
            14 => ["GETDEL", key],
            15 => ["TTL", key],
            16 => c.Chance(0.2) ? ["FLUSHDB"] : ["GET", key],
            17 => c.Chance(0.2) ? ["SWAPDB", Db(c), Db(c)] : ["STRLEN", key],
            18 => c.Chance(0.1) ? ["FLUSHALL"] : ["SET", key, c.Value(), "XX"],
            19 => ["WATCH", key],
            20 => ["MULTI"],
            21 => ["EXEC"],
            // Only the first client: more transaction control, and commands that fail while queuing or at run time.
            22 or 23 => ["MULTI"],
            24 or 25 => ["EXEC"],
            26 => ["DISCARD"],
            27 => ["WATCH", key, c.Key()],
            28 => ["UNWATCH"],
            29 => c.Pick("GET", "SET", "INCR") is var n && n == "GET" ? ["GET"] : [n], // wrong arity
            30 => ["NOSUCHCMD", key], // unknown command
            31 => ["SET", key, c.Value(), c.Pick("NX", "XX", "BAD")], // runtime syntax error sometimes
            32 => ["PING"],
            _ => ["ECHO", c.Value()],
        };
    }
}

/// <summary>Two clients per server (A and B), one command at a time so both servers see the same interleaving; every
/// reply compared, then the final state.</summary>
public static class TwoClientRunner
{
    public static void Run(DiffServers servers, string family, int seed, int count, Func<DiffContext, bool, string[]> next)
    {
        using var rA = new RespConnection(servers.Redis.Port);
        using var rB = new RespConnection(servers.Redis.Port);
        using var kA = new RespConnection(servers.Kv.Port);
        using var kB = new RespConnection(servers.Kv.Port);
        rA.Call("FLUSHALL");
        kA.Call("FLUSHALL");
        var ctx = new DiffContext(new Random(seed));
        var history = new Queue<string>();
        for (int i = 0; i < count; i++)
        {
            bool first = ctx.Chance(0.6);
            string[] command = next(ctx, first);
            Resp expected = (first ? rA : rB).Call(command);
            Resp actual = (first ? kA : kB).Call(command);
            history.Enqueue((first ? "A: " : "B: ") + string.Join(' ', command));
            if (history.Count > 16) history.Dequeue();
            if (expected.ToString() != actual.ToString())
            {
                Assert.Fail($"{family}: seed {seed} (replay: KV_DIFF_SEEDS={seed}), command #{i + 1} by {(first ? "A" : "B")}: {string.Join(' ', command)}\n" +
                    $"  redis-server: {expected}\n  EioSharp.Kv:  {actual}\n  last commands:\n    " + string.Join("\n    ", history));
            }
        }
        foreach (RespConnection c in new[] { rA, rB, kA, kB })
        {
            c.Call("DISCARD"); // leave MULTI if open (an error otherwise)
        }
        DiffRunner.CompareState(rA, kA, $"{family}: seed {seed} (replay: KV_DIFF_SEEDS={seed})", compareEncoding: false);
    }
}
