using System.Text;
using EioSharp.Kv.Scripting;

namespace EioSharp.Kv.Tests;

/// <summary>The no-longjmp rule of the scripting callbacks (h154): a callback that crosses the memory limit ends with Lua's
/// memory error and the state keeps working; a managed exception becomes a script error; and the error paths, run while
/// another thread forces collections, neither crash nor leave a callback's frames unwound.</summary>
public class ScriptCallbackSafetyTests
{
    [Theory]
    [InlineData("return #cjson.encode({s, s, s})")]
    [InlineData("return #cjson.encode(cjson.decode(cjson.encode({s, s, s})))")]
    [InlineData("return #struct.pack('c0c0c0', s, s, s)")]
    [InlineData("return #cmsgpack.pack(s, s, s)")]
    [InlineData("return #redis.call('get', 'big')")]
    [InlineData("return #redis.pcall('get', 'big')")]
    [InlineData("local ok, e = pcall(redis.call, 'get', 'big') return e")] // a memory error a script can catch, as Lua's own
    public void A_callback_over_the_memory_limit_fails_with_not_enough_memory_and_the_sandbox_keeps_working(string tail)
    {
        long unwound = LuaSandbox.UnwoundCallbacks;
        var h = new StoreHarness();
        h.Run("SET", "big", new string('v', 6 << 20)); // 6 MiB: over the limit below as one Lua string
        Assert.Equal(":1\r\n", h.Run("EVAL", "return 1", "0"));
        ScriptHost scripting = h.Store.Scripting;
        scripting.EvalMemoryLimit = scripting.EvalMemoryUsed + (4 << 20);
        // s fits (1.5 MiB); three of it, or the big value, do not.
        string script = "local s = string.rep('a', 1500000) " + tail;
        string reply = h.Run("EVAL", script, "0");
        if (tail.StartsWith("local ok", StringComparison.Ordinal)) Assert.Equal("$17\r\nnot enough memory\r\n", reply);
        else Assert.Contains("not enough memory", reply, StringComparison.Ordinal);
        Assert.Equal(":3\r\n", h.Run("EVAL", "return 1 + 2", "0"));
        Assert.Equal(":4500000\r\n", h.Run("EVAL", "local s = string.rep('a', 1500000) return #s * 3", "0"));
        scripting.EvalMemoryLimit = LuaSandbox.DefaultMemoryLimit;
        Assert.Equal(":6291456\r\n", h.Run("EVAL", "return #redis.call('get', 'big')", "0"));
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    [Fact]
    public void Arguments_over_the_memory_cap_fail_the_script_not_the_server()
    {
        // KEYS and ARGV are pushed by the host outside the script's protected call: a memory error there would reach
        // Lua's panic handler and abort the process. The push is allowed past the cap; the script then fails at its
        // first allocation (or runs, if it makes none).
        long unwound = LuaSandbox.UnwoundCallbacks;
        var h = new StoreHarness();
        Assert.Equal(":1\r\n", h.Run("EVAL", "return 1", "0"));
        ScriptHost scripting = h.Store.Scripting;
        scripting.EvalMemoryLimit = scripting.EvalMemoryUsed + (1 << 20);
        string big = new('x', 3 << 20);
        string reply = h.Run("EVAL", "return #ARGV[1]", "0", big);
        Assert.True(reply == ":3145728\r\n" || reply.Contains("not enough memory", StringComparison.Ordinal), reply);
        Assert.Contains("not enough memory", h.Run("EVAL", "return #(ARGV[1] .. 'y')", "0", big), StringComparison.Ordinal);
        Assert.Equal(":3\r\n", h.Run("EVAL", "return 1 + 2", "0"));
        scripting.EvalMemoryLimit = LuaSandbox.DefaultMemoryLimit;
        Assert.Equal(":3145729\r\n", h.Run("EVAL", "return #(ARGV[1] .. 'y')", "0", big));
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    [Fact]
    public void A_managed_exception_in_a_callback_is_a_script_error_and_is_logged()
    {
        long unwound = LuaSandbox.UnwoundCallbacks;
        var h = new StoreHarness();
        var logged = new List<string>();
        h.Store.Scripting.Log = line =>
        {
            logged.Add(line);
            if (line.StartsWith("script log:", StringComparison.Ordinal)) throw new InvalidOperationException("log down");
        };
        string reply = h.Run("EVAL", "redis.log(redis.LOG_WARNING, 'x') return 1", "0");
        Assert.StartsWith("-ERR Internal error in a script library call: InvalidOperationException: log down script: ", reply);
        Assert.Contains(logged, l => l.StartsWith("script callback failed: System.InvalidOperationException: log down", StringComparison.Ordinal));
        Assert.Equal("$4\r\nERR \r\n", h.Run("EVAL", "local ok, e = pcall(redis.log, 3, 'y') return string.sub(e, 1, 4)", "0"));
        Assert.Equal(":1\r\n", h.Run("EVAL", "return 1", "0"));
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    [Theory]
    [InlineData("local t = setmetatable({}, {__gc = function() bit.tobit('x') end}) t = nil collectgarbage() return bit.tobit(5)", ":5\r\n")]
    [InlineData("local t = setmetatable({}, {__gc = function() redis.call('nosuch') end}) t = nil collectgarbage() return redis.call('ping').ok", "$4\r\nPONG\r\n")]
    [InlineData("local t = setmetatable({}, {__gc = function() bit.tobit('x') end}) t = nil collectgarbage()\nreturn 7", ":7\r\n")]
    public void An_error_in_a_finalizer_stays_there_as_in_Lua(string script, string expected)
    {
        // Hooks do not run inside a finalizer, so its pending error is never raised; the next return drops it (it is not
        // for the function returning) and the script goes on, as Lua ignores a finalizer's error.
        long unwound = LuaSandbox.UnwoundCallbacks;
        var h = new StoreHarness();
        Assert.Equal(expected, h.Run("EVAL", script, "0"));
        Assert.StartsWith("-ERR user_script:1: bad argument #1 to 'tobit'", h.Run("EVAL", "return bit.tobit('z')", "0"));
        Assert.Equal(":1\r\n", h.Run("EVAL", "return 1", "0"));
        Assert.False(h.Store.Scripting.EvalHookSet);
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    [Fact]
    public void The_error_paths_run_while_another_thread_forces_collections()
    {
        long unwound = LuaSandbox.UnwoundCallbacks;
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                Thread.Yield();
            }
        }) { IsBackground = true };
        collector.Start();
        try
        {
            var failures = new StringBuilder();
            for (int round = 0; round < 5; round++)
            {
                var h = new StoreHarness();
                foreach ((string command, string expected) in ScriptErrorTextTests.Cases)
                {
                    string actual = ScriptErrorTextTests.Run(h, command);
                    if (actual != expected) failures.Append(round).Append(": ").Append(command).Append(" -> ").Append(actual).Append('\n');
                }
            }
            Assert.Equal("", failures.ToString());
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    /// <summary>A table's <c>__gc</c> does nothing, as in Lua 5.1 (Redis): Lua 5.4 would run the finalizer with hooks off,
    /// where a loop could never be stopped (the server froze before this). The metatable keeps its identity and its
    /// <c>__gc</c> field; setmetatable's argument errors are 5.1's texts (compared with redis-server 7.0.15 by hand).</summary>
    [Theory]
    [InlineData("setmetatable({}, {__gc = function() while true do end end}) collectgarbage() collectgarbage() return 1", ":1\r\n")]
    [InlineData("local n = 0 setmetatable({}, {__gc = function() n = n + 1 end}) collectgarbage() collectgarbage() return n", ":0\r\n")]
    [InlineData("local mt = {__gc = function() end} local t = setmetatable({}, mt) return {getmetatable(t) == mt and 1 or 0, type(mt.__gc)}", "*2\r\n:1\r\n$8\r\nfunction\r\n")]
    [InlineData("local t = setmetatable({}, {__index = function(t, k) return k .. '!' end}) return t.x", "$2\r\nx!\r\n")]
    [InlineData("return setmetatable({}, 1)", "-ERR user_script:1: bad argument #2 to 'setmetatable' (nil or table expected) script: edfb36201dfdaf2c684477466ddae43ab9ff3c77, on @user_script:1.\r\n")]
    [InlineData("return setmetatable(1, {})", "-ERR user_script:1: bad argument #1 to 'setmetatable' (table expected, got number) script: cde81fee4cf25bd0b7dc3685af446d862fd43845, on @user_script:1.\r\n")]
    [InlineData("local t = setmetatable({}, {__metatable = 1}) return setmetatable(t, {})", "-ERR user_script:1: cannot change a protected metatable script: d533e8892b806a0a111e949c42a0264d92c37fc1, on @user_script:1.\r\n")]
    public void A_tables_gc_metamethod_does_nothing_as_in_Lua_5_1(string script, string expected)
    {
        long unwound = LuaSandbox.UnwoundCallbacks;
        var h = new StoreHarness();
        Assert.Equal(expected, h.Run("EVAL", script, "0"));
        Assert.Equal(":1\r\n", h.Run("EVAL", "return 1", "0"));
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }
}
