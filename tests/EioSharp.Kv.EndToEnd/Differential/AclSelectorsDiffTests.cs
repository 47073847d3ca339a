namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13, ACL beyond the basics, compared reply by reply with redis-server 7.0.15: selectors (<c>(...)</c> in
/// ACL SETUSER, split over several arguments or not, shown by ACL LIST and GETUSER, used by DRYRUN and by commands, removed
/// by clearselectors and reset), permissions checked again at EXEC, clients subscribed to channels a changed user no
/// longer allows closed, and the <c>user</c> directive of the configuration file.</summary>
public sealed class AclSelectorsDiffTests
{
    private static List<string> RunAgainst(int port)
    {
        var seen = new List<string>();
        using var a = new RespConnection(port);
        using var u = new RespConnection(port);
        void Note(string who, RespConnection c, params string[] command) => seen.Add(who + " " + string.Join(' ', command) + " => " + c.Call(command));

        Note("a", a, "ACL", "SETUSER", "s1", "on", "nopass", "(~k* +get)", "(", "+set", "~s*", ")");
        Note("a", a, "ACL", "SETUSER", "s2", "(~a", "+get");
        Note("a", a, "ACL", "SETUSER", "s3", "(~a +get", "x)");
        Note("a", a, "ACL", "SETUSER", "s4", "(foo)");
        Note("a", a, "ACL", "SETUSER", "s5", "()");
        Note("a", a, "ACL", "SETUSER", "s6", "(+get ~x) ");
        Note("a", a, "ACL", "SETUSER", "s7", "on", "nopass", "~r*", "+@read", "(+set ~w* &news)", "(+publish &ch*)");
        Note("a", a, "ACL", "LIST");
        Note("a", a, "ACL", "GETUSER", "s1");
        Note("a", a, "ACL", "GETUSER", "s7");
        foreach (string[] dry in new[]
        {
            new[] { "get", "k1" }, ["get", "s1"], ["set", "s1", "v"], ["set", "k1", "v"], ["incr", "k1"], ["set", "x", "1"],
        })
        {
            Note("a", a, ["ACL", "DRYRUN", "s1", .. dry]);
        }
        foreach (string[] dry in new[] { new[] { "get", "r1" }, ["set", "w1", "v"], ["set", "r1", "v"], ["publish", "ch1", "m"], ["publish", "news", "m"], ["publish", "x", "m"] })
        {
            Note("a", a, ["ACL", "DRYRUN", "s7", .. dry]);
        }
        Note("u", u, "AUTH", "s1", "x");
        Note("u", u, "SET", "s1", "v");
        Note("u", u, "GET", "k1");
        Note("u", u, "SET", "k1", "v");
        Note("u", u, "GET", "s1");
        Note("a", a, "ACL", "SETUSER", "s1", "clearselectors");
        Note("a", a, "ACL", "GETUSER", "s1");
        Note("u", u, "GET", "k1");
        Note("a", a, "ACL", "SETUSER", "s7", "reset");
        Note("a", a, "ACL", "LIST");

        // Rules checked again at EXEC.
        Note("a", a, "ACL", "SETUSER", "e", "on", "nopass", "~*", "&*", "+@all");
        Note("u", u, "AUTH", "e", "x");
        Note("u", u, "MULTI");
        Note("u", u, "SET", "ea", "1");
        Note("u", u, "GET", "ea");
        Note("u", u, "PUBLISH", "chan", "m");
        Note("a", a, "ACL", "SETUSER", "e", "-set", "resetchannels");
        Note("u", u, "EXEC");
        Note("a", a, "GET", "ea");
        Note("a", a, "ACL", "SETUSER", "e", "~x*");
        Note("u", u, "MULTI");
        Note("u", u, "GET", "ea");
        Note("a", a, "ACL", "SETUSER", "e", "resetkeys", "~y*");
        Note("u", u, "EXEC");
        return seen;
    }

    private static void AssertSame(List<string> expected, List<string> actual)
    {
        for (int i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            Assert.True(i < expected.Count && i < actual.Count && expected[i] == actual[i],
                $"reply {i} differs\n  redis-server: {(i < expected.Count ? expected[i] : "(none)")}\n  EioSharp.Kv:  {(i < actual.Count ? actual[i] : "(none)")}");
        }
    }

    [Fact]
    public void Selectors_and_exec_recheck_answer_like_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        AssertSame(RunAgainst(redis.Port), RunAgainst(kv.Port));
    }

    private static List<string> Subscribers(int port)
    {
        var seen = new List<string>();
        using var a = new RespConnection(port);
        using var s1 = new RespConnection(port);
        using var s2 = new RespConnection(port);
        using var p1 = new RespConnection(port);
        seen.Add(a.Call("ACL", "SETUSER", "p", "on", "nopass", "~*", "&ch*", "&other*", "+@all").ToString());
        foreach (RespConnection c in new[] { s1, s2, p1 }) seen.Add(c.Call("AUTH", "p", "x").ToString());
        seen.Add(s1.Call("SUBSCRIBE", "ch1").ToString());
        seen.Add(s2.Call("SUBSCRIBE", "other1").ToString());
        seen.Add(p1.Call("PSUBSCRIBE", "ch*").ToString());
        seen.Add(a.Call("ACL", "SETUSER", "p", "resetchannels", "&other*").ToString());
        // Redis closes them in its next event-loop turn; wait until the two that lost every channel are gone (or 5 s).
        int ClientsOfP() => a.Call("CLIENT", "LIST").Text!.Split('\n').Count(l => l.Contains(" user=p ", StringComparison.Ordinal));
        Poll.Until(() => ClientsOfP() <= 1, TimeSpan.FromSeconds(5));
        seen.Add("clients of p: " + ClientsOfP());
        seen.Add("s2 still served: " + a.Call("PUBLISH", "other1", "m"));
        seen.Add(s2.Read().ToString());
        seen.Add(a.Call("ACL", "SETUSER", "p", "&ch1").ToString()); // more channels: nobody is closed
        Thread.Sleep(200); // time for a wrong close to show
        seen.Add("clients of p: " + ClientsOfP());
        return seen;
    }

    [Fact]
    public void Subscribers_losing_their_channels_are_closed_as_in_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        List<string> expected = Subscribers(redis.Port);
        Assert.Contains("clients of p: 1", expected);
        AssertSame(expected, Subscribers(kv.Port));
    }

    private static List<string> ConfiguredUsers(int port)
    {
        using var c = new RespConnection(port);
        return
        [
            c.Call("ACL", "LIST").ToString(), c.Call("AUTH", "alice", "pw").ToString(), c.Call("SET", "b1", "1").ToString(),
            c.Call("GET", "a1").ToString(), c.Call("SET", "a1", "1").ToString(), c.Call("ACL", "WHOAMI").ToString(),
        ];
    }

    [Fact]
    public void User_directive_of_the_config_file_defines_users_as_in_redis()
    {
        using var dir = new TempDir();
        string conf = Path.Combine(dir.Path, "kv.conf");
        File.WriteAllText(conf, "user alice on >pw ~a* +get (~b* +set)\nuser default on nopass ~* &* +@all\n");
        using var redis = RedisServerProcess.Start("--user", "alice", "on", ">pw", "~a*", "+get", "(~b*", "+set)", "--user", "default", "on", "nopass", "~*", "&*", "+@all");
        using var kv = KvServerProcess.Start("--appendonly", "no", conf);
        AssertSame(ConfiguredUsers(redis.Port), ConfiguredUsers(kv.Port));

        string bad = Path.Combine(dir.Path, "bad.conf");
        File.WriteAllText(bad, "port 0\nuser bob on +nosuchcommand\n");
        var (code, output) = KvServerProcess.RunExpectingExit(dir.DataDir, TimeSpan.FromSeconds(30), bad);
        Assert.Equal(1, code);
        Assert.Contains("Error loading ACL rule '+nosuchcommand' for the user named 'bob': Unknown command or category name in ACL", output, StringComparison.Ordinal);
    }
}
