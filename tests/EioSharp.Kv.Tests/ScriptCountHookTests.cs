using System.Buffers;
using System.Text;
using EioSharp.Kv.Scripting;

namespace EioSharp.Kv.Tests;

/// <summary>A script whose own code is straight-line runs without Lua's count hook (issue 12, h98): which scripts, and
/// that every way to loop still gets the hook (busy-reply-threshold processing, SCRIPT KILL).</summary>
public class ScriptCountHookTests
{
    private static bool MayLoop(string code)
    {
        using var sb = new LuaSandbox("@user_script");
        Assert.Null(sb.Compile(Encoding.UTF8.GetBytes(code)));
        bool mayLoop = sb.TopMayLoop();
        sb.State.Pop(1);
        return mayLoop;
    }

    [Theory]
    [InlineData("local n = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':v', n) return redis.call('GET', KEYS[1] .. ':v')")]
    [InlineData("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end")]
    [InlineData("local a = tonumber(ARGV[1]) or 0 if a > 3 then a = a * 2 elseif a < 0 then a = -a end return a")]
    [InlineData("do if KEYS[1] then goto done end return 1 end ::done:: return 2")] // a forward jump
    [InlineData("return redis.pcall('GET', 'x') and 1 or 2")]
    public void Straight_line_scripts_cannot_loop(string code) => Assert.False(MayLoop(code));

    [Theory]
    [InlineData("while true do end")]
    [InlineData("local i = 0 repeat i = i + 1 until i > 3 return i")]
    [InlineData("for i = 1, 3 do end")]
    [InlineData("for k, v in pairs(KEYS) do end")]
    [InlineData("::top:: if ARGV[1] then goto top end")]
    [InlineData("local function f() return 1 end return f()")]
    [InlineData("return (function() return 1 end)()")]
    public void Loops_backward_jumps_and_functions_may_loop(string code) => Assert.True(MayLoop(code));

    [Fact]
    public void Malformed_or_foreign_chunks_may_loop()
    {
        Assert.True(LuaBytecode.MayLoop([]));
        Assert.True(LuaBytecode.MayLoop("\x1bLuaQ\0\x01\x04\x08\x04\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"u8)); // Lua 5.1's header
        using var sb = new LuaSandbox("@user_script");
        Assert.Null(sb.Compile("return 1"u8));
        sb.State.GetGlobal("string");
        sb.State.GetField(-1, "dump");
        sb.State.PushCopy(-3);
        Assert.Equal(KeraLua.LuaStatus.OK, sb.State.PCall(1, 1, 0));
        byte[] dump = sb.State.ToBuffer(-1, false)!;
        Assert.False(LuaBytecode.MayLoop(dump));
        Assert.True(LuaBytecode.MayLoop(dump.AsSpan(0, dump.Length / 2))); // truncated
    }

    // Busy-reply-threshold 0: every count-hook call processes events (WhileBusy) and sees a requested kill.
    private static (StoreHarness H, Func<int> HookCalls) BusyHarness(bool kill)
    {
        var h = new StoreHarness();
        KvScriptMonitor monitor = h.Store.ScriptMonitor;
        monitor.BusyReplyThresholdMs = 0;
        int calls = 0;
        var reply = new RespWriter(new ArrayBufferWriter<byte>());
        monitor.WhileBusy = () =>
        {
            calls++;
            if (kill) monitor.AnswerWhileBusy(KvCommand.Create("SCRIPT", "KILL"), reply);
        };
        return (h, () => calls);
    }

    [Fact]
    public void A_straight_line_script_runs_without_the_hook_even_past_100000_instructions()
    {
        // ~150,000 VM instructions of straight-line code: with the count hook set the hook would run once.
        string script = "local x = 0 " + string.Concat(Enumerable.Repeat("x = x + 1 ", 150_000)) + "return x";
        Assert.False(MayLoop(script));
        var (h, hookCalls) = BusyHarness(kill: false);
        Assert.Equal(":150000\r\n", h.Run("EVAL", script, "0"));
        Assert.Equal(0, hookCalls());
        Assert.False(h.Store.Scripting.EvalHookSet);

        // The same work in a loop gets the hook.
        Assert.Equal(":150000\r\n", h.Run("EVAL", "local x = 0 for i = 1, 150000 do x = x + 1 end return x", "0"));
        Assert.True(hookCalls() > 0);
        Assert.False(h.Store.Scripting.EvalHookSet); // removed after the script
    }

    [Theory]
    [InlineData("loadstring('for i = 1, 3000000 do end')() return 'done'")]
    [InlineData("load('for i = 1, 3000000 do end')() return 'done'")]
    [InlineData("local f = load('for i = 1, 3000000 do end') local co = coroutine.create(f) coroutine.resume(co)\nreturn 'done'")] // the kill raises again on the next line
    [InlineData("for i = 1, 3000000 do end return 'done'")]
    [InlineData("local function f() for i = 1, 3000000 do end end f() return 'done'")]
    // The hook raises from Lua, never from a managed frame (h154): also where Lua cannot yield (a C function calling back
    // into the script), inside the script's pcall, and in the script's coroutines.
    [InlineData("table.sort({3, 2, 1}, function(a, b) while true do end end) return 'done'")]
    [InlineData("for i = 1, 100 do pcall(function() while true do end end) end return 'done'")]
    [InlineData("local ok = pcall(function() while true do end end)\nreturn 'done'")]
    [InlineData("string.gsub('abc', '%w', function() while true do end end) return 'done'")]
    [InlineData("return tostring(setmetatable({}, {__tostring = function() while true do end end}))")]
    [InlineData("local co = coroutine.create(function() while true do end end) coroutine.resume(co)\nreturn 'done'")]
    [InlineData("local f = coroutine.wrap(function() while true do end end) pcall(f)\nreturn 'done'")]
    [InlineData("local f = coroutine.wrap(function() local co = coroutine.wrap(function() while true do end end) co() end) pcall(f)\nreturn 'done'")]
    // A loop whose C# functions keep failing: each pending error re-arms the hook (restarting its count), so the kill is
    // also checked where the error is made (the server froze on the first one before that, and aborted before h154).
    [InlineData("while true do pcall(redis.call, 'nosuch') end")]
    [InlineData("local i = 0 while true do i = i + 1 if i % 1000 == 0 then pcall(bit.band, 'x') end end")]
    [InlineData("while true do pcall(cjson.decode, '{') pcall(struct.pack, 'y', 1) end")]
    public void Every_way_to_loop_can_be_killed(string script)
    {
        long unwound = LuaSandbox.UnwoundCallbacks;
        var (h, _) = BusyHarness(kill: true);
        string reply = h.Run("EVAL", script, "0");
        Assert.StartsWith("-ERR Script killed by user with SCRIPT KILL", reply);
        Assert.False(h.Store.Scripting.EvalHookSet);
        // The state is usable afterwards, with no hook left.
        Assert.Equal(":1\r\n", h.Run("EVAL", "return 1", "0"));
        Assert.False(h.Store.Scripting.EvalHookSet);
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    [Fact]
    public void A_FUNCTION_LOAD_body_that_never_returns_is_stopped_and_the_functions_state_keeps_working()
    {
        long unwound = LuaSandbox.UnwoundCallbacks;
        var h = new StoreHarness();
        // FUNCTION LOAD's own limit (500 ms, as Redis's), whatever busy-reply-threshold says; no time is asserted.
        Assert.Equal("-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n",
            h.Run("FUNCTION", "LOAD", "#!lua name=spin\nlocal co = coroutine.wrap(function() while true do end end) pcall(co) while true do end"));
        Assert.Equal("$2\r\nok\r\n", h.Run("FUNCTION", "LOAD", "#!lua name=ok\nredis.register_function('f', function() return 'x' end)"));
        Assert.Equal("$1\r\nx\r\n", h.Run("FCALL", "f", "0"));
        Assert.Equal(unwound, LuaSandbox.UnwoundCallbacks);
    }

    [Fact]
    public void No_script_can_leave_a_function_for_the_next_one()
    {
        var h = new StoreHarness();
        // As redis-server 7.0.15 (checked with redis-cli): rawset on the globals and libraries, and writes to the string
        // metatable, fail like any write to a read-only table.
        Assert.StartsWith("-ERR Attempt to modify a readonly table script: ", h.Run("EVAL", "rawset(_G, 'f', function() return 1 end) return 'ok'", "0"));
        Assert.StartsWith("-ERR user_script:1: Script attempted to access nonexistent global variable 'f'", h.Run("EVAL", "return type(f)", "0"));
        Assert.StartsWith("-ERR Attempt to modify a readonly table script: ", h.Run("EVAL", "rawset(redis, 'zz', 1) return type(redis.zz)", "0"));
        Assert.StartsWith("-ERR Attempt to modify a readonly table script: ", h.Run("EVAL", "rawset(string, 'zz', 1) return 1", "0"));
        Assert.StartsWith("-ERR user_script:1: Attempt to modify a readonly table script: ",
            h.Run("EVAL", "getmetatable('').__index = function() return 7 end return 'ok'", "0"));
        Assert.StartsWith("-ERR user_script:1: Attempt to modify a readonly table script: ",
            h.Run("EVAL", "getmetatable('').__index.len = function() return 7 end return 'ok'", "0"));
        Assert.Equal(":1\r\n", h.Run("EVAL", "return ('x'):len()", "0"));
        Assert.Equal("$5\r\ntable\r\n", h.Run("EVAL", "return type(getmetatable(''))", "0"));
        // rawset on a script's own table still works.
        Assert.Equal(":3\r\n", h.Run("EVAL", "local t = {} rawset(t, 'a', 3) return t.a", "0"));
    }
}
