namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>What other clients get while a script runs past busy-reply-threshold, with EioSharp.Kv's DEFAULT flags (the
/// store on the connections' domain: the script's hook lets them answer meanwhile), compared reply by reply with
/// redis-server 7.0: -BUSY for data and connection commands alike (PING, ECHO, CLIENT, INFO...), the commands Redis
/// allows while busy (AUTH, HELLO, MULTI, DISCARD, WATCH, UNWATCH, QUIT, RESET), EXEC aborted, a transaction poisoned,
/// unknown commands and arity errors first, SCRIPT KILL.</summary>
public sealed class BusyScriptDiffTests
{
    private const string Spin = "local n = 0 while true do n = n + 1 end";

    /// <summary>Probes run while the script is busy: each is a pipeline sent on a fresh connection (except where the
    /// connection needs a state set up first), and every reply is compared. HELLO's own reply names the server and its
    /// version, so it is sent and its reply skipped (null marks a reply not compared).</summary>
    private static readonly (string[][] Commands, bool[]? Skip)[] Probes =
    [
        ([["PING"]], null), ([["PING", "x"]], null), ([["ECHO", "x"]], null), ([["GET", "k"]], null), ([["SET", "k", "2"]], null),
        ([["AUTH", "x"]], null), ([["AUTH", "u", "p"]], null), ([["SELECT", "1"]], null), ([["CLIENT", "ID"]], null),
        ([["CLIENT", "SETNAME", "x"]], null), ([["INFO", "server"]], null), ([["CONFIG", "GET", "port"]], null),
        ([["COMMAND", "COUNT"]], null), ([["DBSIZE"]], null), ([["SUBSCRIBE", "c"]], null), ([["PUBLISH", "c", "m"]], null),
        ([["SCRIPT", "FLUSH"]], null), ([["SCRIPT", "EXISTS", "a"]], null), ([["FUNCTION", "KILL"]], null), ([["FUNCTION", "STATS"]], null),
        ([["NOSUCH"]], null), ([["GET"]], null), ([["EXEC"]], null), ([["DISCARD"]], null), ([["WATCH", "k"]], null), ([["UNWATCH"]], null),
        ([["RESET"]], null), ([["MULTI"], ["GET", "k"], ["EXEC"]], null), ([["MULTI"], ["EXEC"]], null), ([["MULTI"], ["PING"], ["EXEC"]], null),
        ([["MULTI"], ["DISCARD"]], null), ([["MULTI"], ["WATCH", "k"], ["SCRIPT", "KILL"], ["DISCARD"]], null),
        ([["WATCH", "k"], ["MULTI"], ["SET", "k", "3"], ["EXEC"], ["UNWATCH"]], null),
        ([["HELLO", "3"], ["PING"], ["GET", "k"]], [true, false, false]), ([["HELLO", "2"], ["ECHO", "y"]], [true, false]),
        ([["QUIT"]], null),
    ];

    private static List<string> RunAgainst(int port)
    {
        var seen = new List<string>();
        using var runner = new RespConnection(port, 30_000);
        using var subscriber = new RespConnection(port);
        Assert.Equal("+OK", runner.Call("SET", "k", "1").ToString());
        Assert.Equal(":1", runner.Call("EVAL", "return 1", "0").ToString()); // the Lua state exists before the busy script
        seen.Add("subscribe: " + subscriber.Call("SUBSCRIBE", "c"));
        runner.Send(RespConnection.Encode(["EVAL", Spin, "0"]));
        Thread.Sleep(700); // past the 200 ms threshold on both servers

        foreach (var (commands, skip) in Probes)
        {
            using var c = new RespConnection(port);
            List<Resp> replies = c.Pipeline(commands);
            for (int i = 0; i < replies.Count; i++)
            {
                string label = string.Join(' ', commands[i]);
                seen.Add(skip is not null && skip[i] ? label + " => (not compared)" : label + " => " + replies[i]);
            }
        }

        // A RESP2 subscriber: the subscribed-context check comes before the busy one; PING is not allowed while busy.
        seen.Add("subscribed GET => " + subscriber.Call("GET", "k"));
        seen.Add("subscribed PING => " + subscriber.Call("PING"));

        using (var killer = new RespConnection(port))
        {
            seen.Add("SCRIPT KILL => " + killer.Call("SCRIPT", "KILL"));
        }

        seen.Add("runner => " + runner.Read());
        // Nothing that got -BUSY or was aborted ran: k is still 1. WATCH/UNWATCH/DISCARD/RESET answered at once.
        seen.Add("GET k after => " + runner.Call("GET", "k"));
        seen.Add("SCRIPT KILL after => " + runner.Call("SCRIPT", "KILL"));
        seen.Add("PING after => " + runner.Call("PING"));
        return seen;
    }

    [Fact]
    public void A_busy_script_with_the_default_flags_answers_other_clients_like_redis()
    {
        using var redis = RedisServerProcess.Start("--busy-reply-threshold", "200");
        using var kv = KvServerProcess.Start("--busy-reply-threshold", "200", "--appendonly", "no");
        List<string> expected = RunAgainst(redis.Port);
        List<string> actual = RunAgainst(kv.Port);
        Assert.Contains("PING => -BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", actual);
        for (int i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            Assert.True(i < expected.Count && i < actual.Count && expected[i] == actual[i],
                $"reply {i} differs\n  redis-server: {(i < expected.Count ? expected[i] : "(none)")}\n  EioSharp.Kv:  {(i < actual.Count ? actual[i] : "(none)")}");
        }
    }
    /// <summary>A busy script whose library calls keep failing inside pcall: 988b787 aborted (a Lua error longjmp'd over
    /// the C# callback's frames), h154's first version froze (each failure re-armed the hook and restarted its count).
    /// Other clients get -BUSY, SCRIPT KILL stops it, the server answers afterwards: as redis-server.</summary>
    [Theory]
    [InlineData("while true do pcall(redis.call, 'nosuch') end")]
    [InlineData("local i = 0 while true do i = i + 1 if i % 1000 == 0 then pcall(bit.band, 'x') end end")]
    public void A_busy_script_whose_calls_keep_failing_is_killed_like_redis(string script)
    {
        static List<string> Run(int port, string script)
        {
            var seen = new List<string>();
            using var runner = new RespConnection(port, 30_000);
            runner.Send(RespConnection.Encode(["EVAL", script, "0"]));
            Thread.Sleep(700); // past the 200 ms threshold on both servers
            using (var other = new RespConnection(port, 30_000))
            {
                seen.Add("PING => " + other.Call("PING"));
                seen.Add("SCRIPT KILL => " + other.Call("SCRIPT", "KILL"));
            }
            seen.Add("runner => " + System.Text.RegularExpressions.Regex.Replace(runner.Read().ToString(), "script: [0-9a-f]{40}", "script: SHA"));
            seen.Add("PING after => " + runner.Call("PING"));
            return seen;
        }

        using var redis = RedisServerProcess.Start("--busy-reply-threshold", "200");
        using var kv = KvServerProcess.Start("--busy-reply-threshold", "200", "--appendonly", "no");
        Assert.Equal(Run(redis.Port, script), Run(kv.Port, script));
    }
}
