using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Several clients blocked at once (BLPOP, BRPOP, BLMOVE, BZPOPMIN, BLMPOP, XREAD BLOCK, XREADGROUP BLOCK) and
/// woken by another client's writes: plain pushes, LMOVE chains, MULTI/EXEC blocks, EVAL scripts, timeouts and CLIENT
/// UNBLOCK; seeded, the same steps on redis-server and EioSharp.Kv. After every step, which clients were served and
/// their replies are compared, then the final state (keys, stream groups and their pending entries).</summary>
/// <remarks>Determinism: a blocking command is sent only once the server counts the previous ones as blocked (so both
/// servers hold the same waiting order); a timeout is either "0"/long (never reached during the run) or short, and short
/// ones expire only during explicit waits between writes.</remarks>
public sealed class BlockingDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    private const int Blockers = 5;
    private static readonly string[] Lists = ["bl0", "bl1", "bl2"];
    private static readonly string[] ZSets = ["bz0", "bz1"];
    private static readonly string[] Streams = ["bs0", "bs1"];

    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    /// <summary>One server's side: the writer, the admin (INFO) and the blocking clients with what they wait for.</summary>
    private sealed class Side : IDisposable
    {
        public Side(int port)
        {
            Writer = new RespConnection(port);
            Admin = new RespConnection(port);
            for (int i = 0; i < Blockers; i++)
            {
                Clients[i] = new RespConnection(port);
                Ids[i] = Clients[i].Call("CLIENT", "ID").Text!;
            }
        }

        public RespConnection Writer { get; }

        public RespConnection Admin { get; }

        public RespConnection[] Clients { get; } = new RespConnection[Blockers];

        public string[] Ids { get; } = new string[Blockers];

        public int BlockedCount()
        {
            string info = Admin.Call("INFO", "clients").Text!;
            string line = info.Split("blocked_clients:")[1];
            return int.Parse(line[..line.IndexOf('\r')], CultureInfo.InvariantCulture);
        }

        public void Dispose()
        {
            Writer.Dispose();
            Admin.Dispose();
            foreach (var c in Clients) c.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Blocked_clients_woken_by_other_clients_match_redis(int seed)
    {
        using var r = new Side(servers.Redis.Port);
        using var k = new Side(servers.Kv.Port);
        var sides = new[] { r, k };
        foreach (var s in sides)
        {
            s.Writer.Call("FLUSHALL");
            foreach (string stream in Streams) s.Writer.Call("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM");
        }

        var rnd = new Random(seed);
        var blocked = new bool[Blockers];
        var history = new Queue<string>();
        long streamSeq = 1;
        string label = $"blocking: seed {seed} (replay: KV_DIFF_SEEDS={seed})";

        void Fail(string why) => Assert.Fail($"{label}: {why}\n  last steps:\n    " + string.Join("\n    ", history));

        void Note(string step)
        {
            history.Enqueue(step);
            if (history.Count > 20) history.Dequeue();
        }

        string L() => Lists[rnd.Next(Lists.Length)];
        bool shortTimeout = false;
        string Timeout(bool seconds)
        {
            int roll = rnd.Next(10);
            shortTimeout |= roll >= 8;
            return roll switch
            {
                < 6 => "0",
                < 8 => seconds ? "300" : "300000",
                _ => seconds ? "0.1" : "100",
            };
        }

        string[] BlockingCommand(int client)
        {
            string end = rnd.Next(2) == 0 ? "LEFT" : "RIGHT";
            return rnd.Next(8) switch
            {
                0 => ["BLPOP", L(), L(), Timeout(true)],
                1 => ["BRPOP", L(), Timeout(true)],
                2 => ["BLMOVE", L(), L(), end, rnd.Next(2) == 0 ? "LEFT" : "RIGHT", Timeout(true)],
                3 => ["BZPOPMIN", ZSets[rnd.Next(2)], ZSets[rnd.Next(2)], Timeout(true)],
                4 => ["BLMPOP", Timeout(true), "2", L(), L(), end, "COUNT", (1 + rnd.Next(3)).ToString(CultureInfo.InvariantCulture)],
                5 => ["XREAD", "COUNT", "2", "BLOCK", Timeout(false), "STREAMS", Streams[rnd.Next(2)], "$"],
                6 => ["XREADGROUP", "GROUP", "g", "c" + client, "COUNT", "2", "BLOCK", Timeout(false), "STREAMS", Streams[rnd.Next(2)], ">"],
                _ => ["BZPOPMAX", ZSets[rnd.Next(2)], Timeout(true)],
            };
        }

        string[] Write()
        {
            string v = "v" + rnd.Next(100);
            return rnd.Next(9) switch
            {
                0 or 1 => [rnd.Next(2) == 0 ? "LPUSH" : "RPUSH", L(), v, "w" + rnd.Next(100)],
                2 => ["LMOVE", L(), L(), "LEFT", "RIGHT"],
                3 => ["ZADD", ZSets[rnd.Next(2)], rnd.Next(10).ToString(CultureInfo.InvariantCulture), "m" + rnd.Next(6)],
                4 => ["XADD", Streams[rnd.Next(2)], $"{streamSeq++}-1", "f", v],
                5 => ["EVAL", "redis.call('rpush', KEYS[1], ARGV[1]) redis.call('lmove', KEYS[1], KEYS[2], 'LEFT', 'LEFT') redis.call('zadd', KEYS[3], ARGV[2], ARGV[1]) return 1",
                    "3", L(), L(), ZSets[rnd.Next(2)], v, rnd.Next(10).ToString(CultureInfo.InvariantCulture)],
                6 => ["DEL", L()],
                7 => ["RENAME", L(), L()],
                _ => ["LPUSH", L(), v],
            };
        }

        // Which blocked clients the last step served: as many as the server's blocked count dropped, each with its reply.
        List<string> Served(Side s, bool[] waiting)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (true)
            {
                int stillBlocked = s.BlockedCount();
                int expected = waiting.Count(b => b) - stillBlocked;
                var ready = Enumerable.Range(0, Blockers).Where(i => waiting[i] && s.Clients[i].HasData()).ToList();
                if (ready.Count == expected)
                {
                    return [.. ready.Select(i => $"client {i}: {s.Clients[i].Read()}")];
                }
                if (DateTime.UtcNow > deadline) Fail($"served clients did not settle ({ready.Count} with a reply, {expected} expected)");
                Thread.Sleep(2);
            }
        }

        void CompareServed(string step)
        {
            var before = (bool[])blocked.Clone();
            List<string> rs = Served(r, before), ks = Served(k, before);
            if (!rs.SequenceEqual(ks))
            {
                Fail($"after {step}: served clients differ\n  redis-server: {string.Join(" | ", rs)}\n  EioSharp.Kv:  {string.Join(" | ", ks)}");
            }
            foreach (string line in rs) blocked[int.Parse(line.AsSpan(7, line.IndexOf(':') - 7), CultureInfo.InvariantCulture)] = false;
        }

        for (int step = 0; step < 300; step++)
        {
            int roll = rnd.Next(10);
            var free = Enumerable.Range(0, Blockers).Where(i => !blocked[i]).ToList();
            if (roll < 4 && free.Count > 0)
            {
                int client = free[rnd.Next(free.Count)];
                shortTimeout = false;
                string[] command = BlockingCommand(client);
                Note($"client {client}: {string.Join(' ', command)}");
                int expectedBlocked = blocked.Count(b => b) + 1;
                foreach (var s in sides) s.Clients[client].Send(RespConnection.Encode(command));
                blocked[client] = true;
                // Served at once (data was there) or blocked: wait until the server has decided, on both.
                foreach (var s in sides)
                {
                    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                    while (s.BlockedCount() != expectedBlocked && !s.Clients[client].HasData())
                    {
                        if (DateTime.UtcNow > deadline) Fail($"client {client} neither blocked nor answered");
                        Thread.Sleep(1);
                    }
                }
                CompareServed(string.Join(' ', command));
                if (shortTimeout)
                {
                    // Let the short timeout expire now, on both servers, before any other step can race with it.
                    Note("wait 200 ms (the short timeout expires)");
                    Thread.Sleep(200);
                    if (blocked[client])
                    {
                        // On a loaded machine a 100 ms timeout may take longer than 200 ms to fire: wait (bounded) until
                        // both servers have answered the client, so that CompareServed sees the same moment on both.
                        foreach (var s in sides)
                        {
                            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                            while (!s.Clients[client].HasData())
                            {
                                if (DateTime.UtcNow > deadline) Fail($"client {client}'s short timeout never fired");
                                Thread.Sleep(2);
                            }
                        }
                    }

                    CompareServed("the short timeout");
                }
                continue;
            }

            if (roll == 4)
            {
                Note("wait 200 ms (short timeouts expire)");
                Thread.Sleep(200);
                CompareServed("a wait");
                continue;
            }

            string[][] writes = roll switch
            {
                5 => [["MULTI"], Write(), Write(), Write(), ["EXEC"]],
                6 when blocked.Any(b => b) => [["CLIENT", "UNBLOCK", "?" + Array.FindIndex(blocked, b => b), rnd.Next(2) == 0 ? "TIMEOUT" : "ERROR"]],
                _ => [Write()],
            };
            Note("writer: " + string.Join(" ; ", writes.Select(w => string.Join(' ', w))));
            List<Resp>? rReplies = null;
            foreach (var s in sides)
            {
                string[][] actual = [.. writes.Select(w => w.Length > 2 && w[2].StartsWith('?') ? [w[0], w[1], s.Ids[int.Parse(w[2][1..], CultureInfo.InvariantCulture)], w[3]] : w)];
                List<Resp> replies = s.Writer.Pipeline(actual);
                if (rReplies is null)
                {
                    rReplies = replies;
                }
                else if (string.Join(" ", rReplies) != string.Join(" ", replies))
                {
                    Fail($"writer replies differ\n  redis-server: {string.Join(" ", rReplies)}\n  EioSharp.Kv:  {string.Join(" ", replies)}");
                }
            }
            CompareServed("the writer's step");
        }

        // End: unblock whoever still waits, then compare the data and the consumer groups.
        for (int i = 0; i < Blockers; i++)
        {
            if (!blocked[i]) continue;
            foreach (var s in sides) Assert.Equal(":1", s.Writer.Call("CLIENT", "UNBLOCK", s.Ids[i]).ToString());
            Note($"unblock client {i}");
            CompareServed($"CLIENT UNBLOCK of client {i}");
        }
        foreach (string stream in Streams)
        {
            foreach (string[] c in new[] { new[] { "XPENDING", stream, "g" }, ["XPENDING", stream, "g", "-", "+", "100"], ["XINFO", "GROUPS", stream] })
            {
                string expected = r.Writer.Call(c).ToString(), actual = k.Writer.Call(c).ToString();
                if (c.Length == 6)
                {
                    // Extended XPENDING: the idle times differ with the clocks; compare id, consumer and delivery count.
                    static string Strip(Resp x) => string.Join(";", (x.Items ?? []).Select(e => $"{e.Items![0]},{e.Items[1]},{e.Items[3]}"));
                    expected = Strip(r.Writer.Call(c));
                    actual = Strip(k.Writer.Call(c));
                }
                if (expected != actual) Fail($"{string.Join(' ', c)} differs\n  redis-server: {expected}\n  EioSharp.Kv:  {actual}");
            }
        }
        DiffRunner.CompareState(r.Writer, k.Writer, label, compareEncoding: false);
    }
}
