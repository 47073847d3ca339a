namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13 (branch h53): the multi-part AOF's directives (appenddirname, aof-use-rdb-preamble,
/// aof-timestamp-enabled, aof-load-truncated, no-appendfsync-on-rewrite, aof-rewrite-incremental-fsync,
/// aof-disable-auto-gc) in CONFIG GET, CONFIG SET and CONFIG REWRITE, compared byte for byte with redis-server 7.0.15.
/// What each one does is tested in <see cref="MultiPartAofTests"/>.</summary>
public sealed class AofDirectivesDiffTests
{
    private static readonly string[] s_names =
    [
        "appenddirname", "aof-use-rdb-preamble", "aof-timestamp-enabled", "aof-load-truncated", "no-appendfsync-on-rewrite",
        "aof-rewrite-incremental-fsync", "aof-disable-auto-gc",
    ];

    [Fact]
    public void Config_get_and_set_of_the_aof_directives_match_redis_server()
    {
        using var redis = RedisServerProcess.Start("--appendonly", "yes");
        using var kv = KvServerProcess.Start("--appendonly", "yes");
        var commands = new List<string[]>();
        foreach (string name in s_names)
        {
            commands.Add(["CONFIG", "GET", name]);
            commands.Add(["CONFIG", "SET", name, "maybe"]);
            commands.Add(["CONFIG", "SET", name, ""]);
            commands.Add(["CONFIG", "SET", name, "1"]);
            if (name != "appenddirname")
            {
                commands.Add(["CONFIG", "SET", name, "YES"]);
                commands.Add(["CONFIG", "GET", name]);
                commands.Add(["CONFIG", "SET", name, "no"]);
                commands.Add(["CONFIG", "GET", name]);
                commands.Add(["CONFIG", "SET", name, "yes", name, "no"]); // duplicate in one call
            }
        }

        commands.Add(["CONFIG", "SET", "appenddirname", "other"]); // immutable
        commands.Add(["CONFIG", "SET", "appenddirname", "appendonlydir"]);
        commands.Add(["CONFIG", "SET", "aof-use-rdb-preamble", "yes", "appenddirname", "x"]); // atomic: nothing changes
        commands.Add(["CONFIG", "GET", "aof-use-rdb-preamble"]);
        commands.Add(["CONFIG", "SET", "aof-timestamp-enabled", "yes", "aof-load-truncated", "bad"]);
        commands.Add(["CONFIG", "GET", "aof-timestamp-enabled"]);
        commands.Add(["CONFIG", "SET", "aof-disable-auto-gc", "yes", "no-appendfsync-on-rewrite", "yes"]);
        commands.Add(["CONFIG", "GET", "aof-disable-auto-gc", "no-appendfsync-on-rewrite"]);
        commands.Add(["CONFIG", "GET", "aof-*"]);
        commands.Add(["CONFIG", "GET", "AOF-*"]);
        commands.Add(["CONFIG", "GET", "*append*"]);
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        var differences = new List<string>();
        foreach (string[] command in commands)
        {
            Resp expected = r.Call(command), actual = k.Call(command);
            if (command is ["CONFIG", "GET", _, ..] && (command.Length > 3 || command[2].Contains('*', StringComparison.Ordinal)))
            {
                (expected, actual) = (expected.Sorted(), actual.Sorted()); // a hash order in Redis
            }

            if (expected.ToString() != actual.ToString()) differences.Add($"{string.Join(' ', command)}: redis {expected} kv {actual}");
        }

        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    /// <summary>CONFIG REWRITE writes the AOF directives as redis does: non-default values only, in redis's syntax; a value
    /// set back to its default is dropped from the file.</summary>
    [Fact]
    public void Config_rewrite_writes_the_aof_directives_as_redis_server()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string Conf(TempDir dir)
        {
            string conf = Path.Combine(dir.Path, "kv.conf");
            File.WriteAllText(conf, "# aof settings\nappendonly yes\naof-load-truncated no\nappenddirname aofparts\naof-use-rdb-preamble no\n");
            return conf;
        }

        string redisConf = Conf(redisDir), kvConf = Conf(kvDir);
        using var redis = RedisServerProcess.StartWithConfig(redisConf);
        using var kv = KvServerProcess.StartIn(kvDir.DataDir, kvConf);
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        foreach (string[] command in new[]
        {
            new[] { "CONFIG", "GET", "appenddirname" },
            ["CONFIG", "SET", "aof-use-rdb-preamble", "yes"], // back to the default: the line goes
            ["CONFIG", "SET", "aof-timestamp-enabled", "yes", "no-appendfsync-on-rewrite", "yes", "aof-rewrite-incremental-fsync", "no", "aof-disable-auto-gc", "yes"],
            ["CONFIG", "REWRITE"],
        })
        {
            Assert.Equal(r.Call(command).ToString(), k.Call(command).ToString());
        }

        // Lines already in the file are rewritten in place; new ones are appended in redis's hash order: compared as sets.
        string[] Lines(string conf) =>
            [.. File.ReadAllLines(conf).Where(l => s_names.Any(n => l.StartsWith(n + " ", StringComparison.Ordinal)) || l.StartsWith("# aof", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal)];
        Assert.Equal(Lines(redisConf), Lines(kvConf));
        Assert.Contains("aof-disable-auto-gc yes", Lines(kvConf));
        Assert.True(Directory.Exists(Path.Combine(kvDir.DataDir, "aofparts")), "appenddirname from the file is used");
    }
}
