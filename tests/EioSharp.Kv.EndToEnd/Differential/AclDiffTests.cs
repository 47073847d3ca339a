using System.Globalization;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>ACL (users, rules, checks, log) differential against redis-server 7.0: the same ACL SETUSER sequences to
/// both, then ACL LIST / GETUSER, and commands run as those users (top level, in MULTI, from Lua scripts).</summary>
/// <remarks>One difference is normalized, because redis-server itself does not make it deterministic: after the +@all /
/// -@all and category rules, ACL LIST and GETUSER name single commands in the order of Redis's command dict, whose hash
/// seed is random per process (two redis-server runs print <c>+get +mget</c> and <c>+mget +get</c>); those tokens are
/// compared as a multiset, everything before them byte for byte. ACL LOG's age-seconds and client-info (ids, ports) and
/// ACL CAT &lt;category&gt; (dict order too) are compared as such.</remarks>
public sealed class AclDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    private static readonly string[] Users = ["alice", "bob", "carol", "dave", "eve"];

    /// <summary>A connection to each server.</summary>
    private sealed class Pair : IDisposable
    {
        public Pair(DiffServers s)
        {
            Redis = new RespConnection(s.Redis.Port);
            Kv = new RespConnection(s.Kv.Port);
        }

        public RespConnection Redis { get; }

        public RespConnection Kv { get; }

        public (Resp R, Resp K) Call(params string[] args) => (Redis.Call(args), Kv.Call(args));

        /// <summary>Sends to both and asserts the replies are equal (after <paramref name="normalize"/>).</summary>
        public Resp Same(string[] args, Func<Resp, string>? normalize = null)
        {
            (Resp r, Resp k) = Call(args);
            normalize ??= x => x.ToString();
            Assert.True(normalize(r) == normalize(k), $"{string.Join(' ', args)}\n  redis-server: {r}\n  EioSharp.Kv:  {k}");
            return r;
        }

        public void Dispose()
        {
            Redis.Dispose();
            Kv.Dispose();
        }
    }

    /// <summary>ACL rules with the single-command tail sorted (see the remarks).</summary>
    internal static string NormalizeRules(string rules)
    {
        string[] tokens = rules.Split(' ');
        int lastOrdered = -1;
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!(tokens[i].StartsWith("+", StringComparison.Ordinal) || tokens[i].StartsWith("-", StringComparison.Ordinal)) || tokens[i].StartsWith("+@", StringComparison.Ordinal) || tokens[i].StartsWith("-@", StringComparison.Ordinal))
                lastOrdered = i;
        }
        return string.Join(' ', tokens.Take(lastOrdered + 1).Concat(tokens.Skip(lastOrdered + 1).Order(StringComparer.Ordinal)));
    }

    private static string NormalizeList(Resp r) => r.Items is null ? r.ToString() : string.Join("\n", r.Items.Select(i => i.Text is null ? i.ToString() : NormalizeRules(i.Text)));

    private static string NormalizeGetUser(Resp r)
    {
        if (r.Items is null) return r.ToString();
        var parts = new List<string>();
        for (int i = 0; i + 1 < r.Items.Count; i += 2)
        {
            Resp v = r.Items[i + 1];
            parts.Add(r.Items[i].Text + "=" + (r.Items[i].Text == "commands" ? NormalizeRules(v.Text!) : v.ToString()));
        }
        return string.Join(" | ", parts);
    }

    private static void Reset(Pair p)
    {
        p.Call(["ACL", "DELUSER", .. Users]);
        p.Call("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all");
        p.Call("ACL", "LOG", "RESET");
    }

    private static readonly string[] RulePool =
    [
        "on", "off", ">pw1", ">pw2", "<pw1", "#5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
        "!5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", "#bad", "nopass", "resetpass", "~k*", "~*",
        "%R~r*", "%W~w*", "%RW~x*", "%X~y", "allkeys", "resetkeys", "&ch*", "&*", "allchannels", "resetchannels", "+get",
        "-get", "+set", "+@string", "-@string", "+@write", "-@write", "+@read", "-@dangerous", "+@hash", "-@hash", "+@list",
        "+@sortedset", "-@keyspace", "+@admin", "+@fast", "-@slow", "+@pubsub", "+@scripting", "+@transaction",
        "+client|id", "-client|kill", "+config|get", "-config", "+select|0", "+select|1", "+debug|object", "allcommands",
        "nocommands", "+@all", "-@all", "reset", "+nosuchcmd", "+@nosuchcat", "+client|id|x", "+get|", "bogus",
        "skip-sanitize-payload", "sanitize-payload", "+acl", "+acl|whoami", "-@blocking", "+@geo", "-@hyperloglog",
    ];

    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2, 3)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void Random_setuser_sequences_list_like_redis(int seed)
    {
        using var p = new Pair(servers);
        Reset(p);
        var random = new Random(seed);
        for (int step = 0; step < 300; step++)
        {
            string user = Users[random.Next(Users.Length)];
            int n = random.Next(1, 6);
            var args = new List<string> { "ACL", "SETUSER", user };
            for (int i = 0; i < n; i++) args.Add(RulePool[random.Next(RulePool.Length)]);
            p.Same([.. args]);
            p.Same(["ACL", "GETUSER", user], NormalizeGetUser);
            if (step % 10 == 0) p.Same(["ACL", "LIST"], NormalizeList);
            if (step % 25 == 0) p.Same(["ACL", "DELUSER", user, Users[random.Next(Users.Length)]]);
        }
        p.Same(["ACL", "LIST"], NormalizeList);
        p.Same(["ACL", "USERS"]);
        Reset(p);
    }

    [Fact]
    public void Acl_subcommands_and_errors_match_redis()
    {
        using var p = new Pair(servers);
        Reset(p);
        foreach (string[] c in new[]
                 {
                     new[] { "ACL", "CAT" }, ["ACL", "CAT", "nosuch"], ["ACL", "HELP"], ["ACL", "WHOAMI"], ["ACL", "USERS"],
                     ["ACL", "GETUSER", "nosuch"], ["ACL", "DELUSER", "default"], ["ACL", "DELUSER", "nosuch"], ["ACL", "SETUSER", "a b"],
                     ["ACL", "GENPASS", "0"], ["ACL", "GENPASS", "5000"], ["ACL", "GENPASS", "x"], ["ACL", "LOG", "x"], ["ACL", "LOG", "-1"],
                     ["ACL", "LOAD"], ["ACL", "SAVE"], ["ACL", "NOSUCH"], ["ACL", "WHOAMI", "x"], ["ACL", "SETUSER"], ["ACL"],
                     ["ACL", "DRYRUN", "nosuch", "get", "x"], ["ACL", "DRYRUN", "default", "nosuchcmd"], ["ACL", "DRYRUN", "default", "get"],
                     ["ACL", "DRYRUN", "default", "get", "x"], ["AUTH", "nosuch", "pw"],
                     ["AUTH", "pw"], ["AUTH", "a", "b", "c"], ["HELLO", "2", "AUTH", "nosuch", "pw"],
                 })
        {
            p.Same(c);
        }
        (Resp r, Resp k) = p.Call("ACL", "GENPASS");
        Assert.Equal(r.Text!.Length, k.Text!.Length);
        (r, k) = p.Call("ACL", "GENPASS", "5");
        Assert.Equal(r.Text!.Length, k.Text!.Length);
        foreach (string category in new[] { "string", "hash", "dangerous", "pubsub", "scripting", "connection", "keyspace" })
        {
            p.Same(["ACL", "CAT", category], x => x.Sorted().ToString());
        }
    }

    /// <summary>Commands run as restricted users: -NOPERM for commands, keys (read/write patterns) and channels, in MULTI
    /// and from scripts; DRYRUN; the ACL log's entries.</summary>
    [Theory]
    [MemberData(nameof(SeedData))]
    public void Restricted_users_are_checked_like_redis(int seed)
    {
        using var admin = new Pair(servers);
        Reset(admin);
        admin.Same(["ACL", "SETUSER", "alice", "on", ">pa", "~k*", "%R~r*", "%W~w*", "&ch*", "+@string", "+@keyspace", "-del", "+multi", "+exec", "+discard", "+eval", "+evalsha", "+publish", "+subscribe", "+psubscribe", "+ping", "+client|id", "+select|0"]);
        admin.Same(["ACL", "SETUSER", "bob", "on", "nopass", "allkeys", "allchannels", "+@all", "-@dangerous", "-set", "+config|get"]);
        admin.Same(["ACL", "SETUSER", "carol", "on", ">pc", "resetkeys", "+@read", "+hset"]);
        var random = new Random(seed);
        foreach (string user in new[] { "alice", "bob", "carol" })
        {
            using var p = new Pair(servers);
            p.Same(["AUTH", user, user == "alice" ? "pa" : user == "carol" ? "pc" : "whatever"]);
            p.Same(["ACL", "WHOAMI"]);
            for (int i = 0; i < 300; i++)
            {
                p.Same(Next(random));
            }
            p.Same(["DISCARD"]);
        }
        admin.Same(["AUTH", "alice", "wrong"]);
        admin.Same(["HELLO", "3", "AUTH", "bob", "x"], x => x.IsError ? x.ToString() : "hello");
        admin.Same(["HELLO", "2"], x => x.IsError ? x.ToString() : "hello");
        admin.Same(["ACL", "LOG", "1"]); // bob: -NOPERM (acl|log is @dangerous)
        admin.Same(["AUTH", "default", "any"]); // nopass: any password
        (Resp r, Resp k) = admin.Call("ACL", "LOG", "100");
        Assert.Equal(r.Items!.Count, k.Items!.Count);
        for (int i = 0; i < r.Items.Count; i++)
        {
            // count, reason, context, object, username: equal; age-seconds and client-info (ports, ids) differ.
            Assert.Equal(string.Join(",", r.Items[i].Items!.Take(10)), string.Join(",", k.Items[i].Items!.Take(10)));
        }
        Reset(admin);
    }

    private static string[] Next(Random random)
    {
        string Key() => random.Next(4) switch { 0 => "k", 1 => "r", 2 => "w", _ => "z" } + random.Next(3).ToString(CultureInfo.InvariantCulture);
        string Ch() => (random.Next(2) == 0 ? "ch" : "xy") + random.Next(3).ToString(CultureInfo.InvariantCulture);
        return random.Next(24) switch
        {
            0 => ["GET", Key()],
            1 => ["SET", Key(), "v"],
            2 => ["APPEND", Key(), "v"],
            3 => ["DEL", Key()],
            4 => ["MGET", Key(), Key(), Key()],
            5 => ["MSET", Key(), "1", Key(), "2"],
            6 => ["COPY", Key(), Key()],
            7 => ["RENAME", Key(), Key()],
            8 => ["EXISTS", Key(), Key()],
            9 => ["HSET", Key(), "f", "v"],
            10 => ["HGET", Key(), "f"],
            11 => ["PUBLISH", Ch(), "m"],
            12 => ["MULTI"],
            13 => ["EXEC"],
            14 => ["EVAL", "return redis.call('get', KEYS[1])", "1", Key()],
            15 => ["EVAL", "return redis.pcall('set', KEYS[1], 'x')", "1", Key()],
            16 => ["EVAL", "return redis.call('del', KEYS[1])", "1", Key()],
            17 => random.Next(2) == 0 ? ["CLIENT", "ID", "x"] : ["CLIENT", "GETNAME"], // wrong arity of a subcommand: before the ACL
            18 => ["SELECT", random.Next(2).ToString(CultureInfo.InvariantCulture)],
            19 => ["CONFIG", random.Next(2) == 0 ? "GET" : "RESETSTAT", "maxmemory"],
            20 => ["ACL", "DRYRUN", random.Next(2) == 0 ? "alice" : "carol", "SET", Key(), "v"],
            21 => ["ACL", "DRYRUN", "alice", "PUBLISH", Ch(), "m"],
            22 => ["LCS", Key(), Key()],
            _ => ["STRLEN", Key()],
        };
    }

    [Fact]
    public void Requirepass_is_the_default_users_password_as_in_redis()
    {
        using var p = new Pair(servers);
        Reset(p);
        p.Same(["CONFIG", "SET", "requirepass", "s3cret"]);
        p.Same(["ACL", "LIST"], NormalizeList);
        using (var q = new Pair(servers))
        {
            q.Same(["GET", "x"]);
            q.Same(["ACL", "WHOAMI"]);
            q.Same(["AUTH", "wrong"]);
            q.Same(["AUTH", "s3cret"]);
            q.Same(["ACL", "WHOAMI"]);
        }
        p.Same(["CONFIG", "SET", "requirepass", ""]);
        p.Same(["ACL", "LIST"], NormalizeList);
        p.Same(["ACL", "SETUSER", "alice", "on", ">pa", "+@all", "~*"]);
        using (var q = new Pair(servers))
        {
            q.Same(["AUTH", "alice", "pa"]);
            q.Same(["ACL", "WHOAMI"]);
            p.Same(["ACL", "DELUSER", "alice"]);
            // Redis closes the connections of a deleted user.
            q.Redis.Send(RespConnection.Encode(["PING"]));
            q.Kv.Send(RespConnection.Encode(["PING"]));
            Assert.ThrowsAny<IOException>(() => q.Redis.Read());
            Assert.ThrowsAny<IOException>(() => q.Kv.Read());
        }
        Reset(p);
    }

    /// <summary>acl-pubsub-default: CONFIG GET/SET (case-insensitive values, the enum error) and its effect on users
    /// created afterwards, their selectors and <c>reset</c>; existing users keep their channels.</summary>
    [Fact]
    public void Acl_pubsub_default_applies_to_new_users_as_in_redis()
    {
        using var p = new Pair(servers);
        Reset(p);
        try
        {
            p.Same(["CONFIG", "GET", "acl-pubsub-default"]);
            p.Same(["CONFIG", "SET", "acl-pubsub-default", "nosuch"]);
            p.Same(["CONFIG", "SET", "acl-pubsub-default", ""]);
            p.Same(["CONFIG", "SET", "acl-pubsub-default"]);
            p.Same(["CONFIG", "GET", "acl-pubsub-default"]);
            p.Same(["ACL", "SETUSER", "alice"]);
            p.Same(["CONFIG", "SET", "acl-pubsub-default", "ALLChannels"]);
            p.Same(["CONFIG", "GET", "acl-pubsub-default"]);
            p.Same(["ACL", "SETUSER", "bob"]);
            p.Same(["ACL", "SETUSER", "carol", "on", "nopass", "(+get ~x)", "+set"]);
            p.Same(["ACL", "SETUSER", "dave", "&chan", "resetchannels", "&news.*"]);
            p.Same(["ACL", "SETUSER", "eve", "&chan"]);
            p.Same(["ACL", "LIST"], NormalizeList);
            p.Same(["ACL", "SETUSER", "alice", "reset"]);
            p.Same(["ACL", "GETUSER", "alice"], NormalizeGetUser);
            p.Same(["ACL", "GETUSER", "carol"], NormalizeGetUser);
            p.Same(["CONFIG", "SET", "acl-pubsub-default", "resetchannels"]);
            p.Same(["ACL", "SETUSER", "bob", "reset"]);
            p.Same(["ACL", "SETUSER", "carol", "(+ping)"]);
            p.Same(["ACL", "LIST"], NormalizeList);
            p.Same(["ACL", "GETUSER", "bob"], NormalizeGetUser);
        }
        finally
        {
            p.Call("CONFIG", "SET", "acl-pubsub-default", "resetchannels");
            Reset(p);
        }
    }
}
