using System.Diagnostics;
using StackExchange.Redis;
using Xunit;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Lua scripting through a real client (StackExchange.Redis) and the server-side limits: -BUSY and SCRIPT
/// KILL / FUNCTION KILL while a script runs past busy-reply-threshold, a script that allocates without bound, and
/// FUNCTION libraries surviving a restart.</summary>
public sealed class ScriptingEndToEndTests
{
    private static ConnectionMultiplexer Connect(KvServerProcess server) =>
        ConnectionMultiplexer.Connect($"127.0.0.1:{server.Port},allowAdmin=true");

    [Fact]
    public void StackExchangeRedis_ScriptEvaluate_LuaScript_and_locks_work()
    {
        using var server = KvServerProcess.Start();
        using var mux = Connect(server);
        IDatabase db = mux.GetDatabase();

        RedisResult set = db.ScriptEvaluate("return redis.call('set', KEYS[1], ARGV[1])", ["greeting"], ["hello"]);
        Assert.Equal("OK", set.ToString());
        Assert.Equal("hello", db.StringGet("greeting").ToString());
        RedisResult array = db.ScriptEvaluate("return {1, 'two', {3}}");
        var items = (RedisResult[])array!;
        Assert.Equal(3, items.Length);
        Assert.Equal(1, (int)items[0]);
        Assert.Equal("two", items[1].ToString());

        LuaScript prepared = LuaScript.Prepare("return redis.call('incrby', @key, @by)");
        IServer admin = mux.GetServer(mux.GetEndPoints()[0]);
        LoadedLuaScript loaded = prepared.Load(admin); // SCRIPT LOAD; Evaluate then uses EVALSHA
        Assert.Equal(5, (long)loaded.Evaluate(db, new { key = (RedisKey)"counter", by = 5 }));
        Assert.Equal(7, (long)prepared.Evaluate(db, new { key = (RedisKey)"counter", by = 2 }));
        Assert.True(admin.ScriptExists(prepared.ExecutableScript));

        var error = Assert.Throws<RedisServerException>(() => db.ScriptEvaluate("return redis.call('incr', KEYS[1])", ["greeting"]));
        Assert.StartsWith("ERR value is not an integer or out of range script: ", error.Message, StringComparison.Ordinal);

        // LockRelease is not a script in StackExchange.Redis 3.4 (it uses WATCH/MULTI, another branch's work); the
        // compare-and-delete script clients use instead:
        Assert.True(db.LockTake("lock", "me", TimeSpan.FromSeconds(30)));
        const string release = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
        Assert.Equal(0, (int)db.ScriptEvaluate(release, ["lock"], ["someone else"]));
        Assert.Equal(1, (int)db.ScriptEvaluate(release, ["lock"], ["me"]));
        Assert.False(db.KeyExists("lock"));
    }

    [Theory]
    [InlineData("main")] // the default: the script's hook lets this domain's connections answer
    [InlineData("own")]
    public void A_script_past_the_busy_threshold_makes_others_get_BUSY_and_SCRIPT_KILL_stops_it(string storeDomain)
    {
        using var server = KvServerProcess.Start("--busy-reply-threshold", "200", "--store-domain", storeDomain);
        using var runner = new RespClient(server.Port, timeoutMs: 20_000);
        using var other = new RespClient(server.Port);
        // Warm up (the first script creates the Lua state): a command sent before the script has started waits behind it,
        // as in Redis; only past the threshold do others get -BUSY.
        Assert.Equal(":1", runner.Call("EVAL", "return 1", "0"));
        runner.SendCommand("EVAL", "local n = 0 while true do n = n + 1 end", "0");
        Thread.Sleep(1000);
        Assert.Equal("-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", other.Call("GET", "x"));
        Assert.Equal("-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", other.Call("FUNCTION", "KILL"));
        Assert.Equal("+OK", other.Call("SCRIPT", "KILL"));
        string killed = runner.ReadReply();
        Assert.StartsWith("-ERR Script killed by user with SCRIPT KILL... script: ", killed, StringComparison.Ordinal);
        Assert.EndsWith(", on @user_script:1.", killed, StringComparison.Ordinal);
        // The server keeps serving, and the next script runs normally.
        Assert.Equal("+OK", other.Call("SET", "x", "1"));
        Assert.Equal(":2", runner.Call("EVAL", "return redis.call('incr', 'x')", "0"));
        Assert.Equal("-NOTBUSY No scripts in execution right now.", other.Call("SCRIPT", "KILL"));
    }

    [Theory]
    [InlineData("main")] // the default: the script's hook lets this domain's connections answer
    [InlineData("own")]
    public void A_busy_function_is_killed_with_FUNCTION_KILL_and_a_script_that_wrote_is_unkillable(string storeDomain)
    {
        using var server = KvServerProcess.Start("--busy-reply-threshold", "200", "--store-domain", storeDomain, "--appendonly", "no");
        using var runner = new RespClient(server.Port, timeoutMs: 20_000);
        using var other = new RespClient(server.Port);
        Assert.Equal("$busy", runner.Call("FUNCTION", "LOAD", "#!lua name=busy\nredis.register_function('spin', function() while true do end end)"));
        runner.SendCommand("FCALL", "spin", "0");
        Thread.Sleep(1000);
        Assert.Equal("-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.", other.Call("GET", "x"));
        Assert.Equal("-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.", other.Call("SCRIPT", "KILL"));
        Assert.Equal("+OK", other.Call("FUNCTION", "KILL"));
        Assert.Equal("-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.", runner.ReadReply());

        // A script that wrote cannot be killed (its writes would be half applied): SCRIPT KILL refuses.
        Assert.Equal(":1", runner.Call("EVAL", "return 1", "0"));
        runner.SendCommand("EVAL", "redis.call('set', 'w', '1') while true do end", "0");
        Thread.Sleep(1000);
        Assert.Equal("-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            other.Call("SCRIPT", "KILL"));
        server.Kill();
    }

    [Fact]
    public void A_script_that_allocates_without_bound_fails_and_the_server_stays_up()
    {
        using var server = KvServerProcess.Start();
        using var client = new RespClient(server.Port, timeoutMs: 60_000);
        var watch = Stopwatch.StartNew();
        string reply = client.Call("EVAL", "local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('x', 4096) .. i end", "0");
        Assert.StartsWith("-ERR Error running script ", reply, StringComparison.Ordinal);
        Assert.Contains("not enough memory", reply, StringComparison.Ordinal);
        reply = client.Call("EVAL", "return string.rep('x', 2^28)", "0");
        Assert.Contains("not enough memory", reply, StringComparison.Ordinal);
        Assert.Equal(":3", client.Call("EVAL", "return 1 + 2", "0"));
        Assert.Equal("+PONG", client.Call("PING"));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(50));
    }

    [Fact]
    public void Function_libraries_and_script_effects_survive_a_restart()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always"))
        using (var client = new RespClient(server.Port))
        {
            Assert.Equal("$lib", client.Call("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('twice', function(keys, args) return redis.call('set', keys[1], args[1] .. args[1]) end)"));
            Assert.Equal("+OK", client.Call("FCALL", "twice", "1", "k", "ab"));
            Assert.Equal(":2", client.Call("EVAL", "redis.call('set', 'a', '1') redis.call('set', 'b', '2') return 2", "0"));
            server.Kill();
        }
        string aof = dir.AofText;
        Assert.Contains("MULTI", aof, StringComparison.Ordinal);
        Assert.DoesNotContain("EVAL", aof, StringComparison.Ordinal);
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        using (var client = new RespClient(server.Port))
        {
            Assert.Equal("$abab", client.Call("GET", "k"));
            Assert.Equal("$2", client.Call("GET", "b"));
            Assert.Equal("+OK", client.Call("FCALL", "twice", "1", "k2", "x"));
            Assert.Equal("$xx", client.Call("GET", "k2"));
        }
    }
}
