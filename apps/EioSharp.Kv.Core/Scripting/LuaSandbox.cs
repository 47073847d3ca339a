using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using KeraLua;
using static EioSharp.Kv.Scripting.LuaNative;

namespace EioSharp.Kv.Scripting;

/// <summary>One Lua 5.4 state (KeraLua) set up like Redis 7.0's script environment: Lua 5.1 names shimmed, os/io/
/// package/debug/loadfile/dofile/print removed, globals and libraries read-only, cjson/cmsgpack/struct/bit loaded, a
/// memory cap and an instruction-count hook.</summary>
/// <remarks><b>Errors</b>: no Lua error ever unwinds (longjmp) over a managed frame: on Linux that is undefined behaviour in
/// .NET (dotnet/runtime#1445). A C# function the scripts call (<see cref="PushFunction"/>, redis.call/pcall) reports an
/// error by <i>returning</i> (<see cref="RaiseError"/>, <see cref="RaiseWithWhere"/>, <see cref="ArgError"/>,
/// <see cref="TypeError"/>, <see cref="ReturnError"/>): the error value, with the position computed while the caller's
/// frame is there, is kept as pending and a return hook is armed on the thread; when the function's return is
/// processed (native code, the C# frame gone) the debug library's native hook calls the sandbox's Lua hook function,
/// which raises it with <c>error</c>, as if the C function had raised it (a pcall catches it; the message handler skips
/// the hook's frames). A callback calls no Lua API function that can raise: the checks are non-raising
/// (<see cref="CheckNumber"/>, <see cref="CheckInteger"/>, <see cref="CheckString"/>), table access raw; while it runs the
/// allocator never fails for it (a finalizer running inside it still can, inside the finalizer's own protected call), and
/// a callback that took the state past its memory limit ends with Lua's own "not enough memory" error; a managed exception becomes
/// a script error. The count hook is that same native hook: the Lua hook function asks C# (<see cref="HookCheck"/>) and
/// raises from Lua. <b>Thread safety</b>: none; the store owner only.</remarks>
internal sealed unsafe class LuaSandbox : IDisposable
{
    /// <summary>Most bytes a state may allocate: a script allocating without bound fails with "not enough memory".</summary>
    public const long DefaultMemoryLimit = 256L * 1024 * 1024;

    private const int HookInstructionCount = 100_000; // Redis's count hook period (script_lua.c LUA_MASKCOUNT)

    // One static allocator: KeraLua's finalizer may close a state after this object is gone, so the delegate must never
    // be collected; the accounting lives in native memory (ud: used, limit, then the small-block pool's state, see
    // AccountLongs) that is never freed.
    private static readonly LuaAlloc s_alloc = Allocate;
    private readonly long* _account;
    private readonly List<Delegate> _keepAlive = []; // delegates handed to native code must outlive the state
    private readonly int _realGlobals; // registry ref of the real globals table (scripts see a read-only proxy)
    private readonly int _errorHandler; // registry ref of __redis__err__handler
    private bool _disposed;
    private GCHandle _self; // weak, in the account's SelfSlot: Pend reaches HookCheck through it

    /// <summary>Creates a state whose chunks are named <paramref name="chunkName"/> (<c>@user_script</c> or <c>@user_function</c>).</summary>
    public LuaSandbox(string chunkName, long memoryLimit = DefaultMemoryLimit)
    {
        ChunkName = chunkName;
        _account = (long*)NativeMemory.AllocZeroed(AccountLongs, sizeof(long));
        MemoryLimit = memoryLimit;
        State = new Lua(s_alloc, (IntPtr)_account);
        // The same allocator, called through an unmanaged entry point: a delegate's reverse P/Invoke costs far more
        // per call, and Lua allocates on most operations (KeraLua only takes a delegate, so swap it in right after).
        lua_setallocf(State.Handle, &AllocateUnmanaged, (IntPtr)_account);
        _account[MainStateSlot] = State.Handle;
        _self = GCHandle.Alloc(this, GCHandleType.Weak);
        _account[SelfSlot] = (long)GCHandle.ToIntPtr(_self);
        Lua l = State;
        l.OpenLibs();
        l.GetGlobal("_G");
        _realGlobals = l.Ref(LuaRegistry.Index);
        // The hook's Lua side first (HookCode): the debug library's native hook (hookf) calls the Lua function
        // debug.sethook recorded for the thread; HookCode records it for the main thread with a count too large to
        // fire, the native hook's address is read, and the hook itself is installed per script (SetHook) and to raise
        // a pending error (Pend).
        if (l.LoadString(HookCode, "=kv") != LuaStatus.OK) throw new InvalidOperationException("Lua sandbox setup failed: " + l.ToString(-1, false));
        PushFunction(TakePending);
        PushFunction(HookCheckNow);
        if (l.PCall(2, 0, 0) != LuaStatus.OK) throw new InvalidOperationException("Lua sandbox setup failed: " + l.ToString(-1, false));
        IntPtr nativeHook = lua_gethook(l.Handle);
        if (nativeHook == IntPtr.Zero) throw new InvalidOperationException("Lua sandbox setup failed: no native hook");
        s_nativeHook = nativeHook;
        lua_sethook(l.Handle, IntPtr.Zero, 0, 0);
        RegisterCoroutineFunctions();
        RegisterSetMetatable();
        LuaLibraries.Register(this);
        RunSetup(SetupCode);
        l.GetGlobal("__redis__err__handler");
        _errorHandler = l.Ref(LuaRegistry.Index);
        PushBytes(l, "KEYS"u8);
        _keysName = l.Ref(LuaRegistry.Index);
        PushBytes(l, "ARGV"u8);
        _argvName = l.Ref(LuaRegistry.Index);
    }

    private readonly int _keysName, _argvName; // registry refs of the strings "KEYS" and "ARGV" (set on every EVAL)

    /// <summary>Pushes the real globals table (not the scripts' read-only proxy).</summary>
    public void PushRealGlobals() => PushRegistry(_realGlobals);

    /// <summary>Pushes the string <c>KEYS</c>, kept in the registry (not hashed and interned again per call).</summary>
    public void PushKeysName() => PushRegistry(_keysName);

    /// <summary>Pushes the string <c>ARGV</c>, kept in the registry.</summary>
    public void PushArgvName() => PushRegistry(_argvName);

    /// <summary>Pushes registry slot <paramref name="reference"/> (a <c>luaL_ref</c>): a raw read, without the GC
    /// transition of KeraLua's import (a script call makes five).</summary>
    public void PushRegistry(int reference) => lua_rawgeti(State.Handle, (int)LuaRegistry.Index, reference);

    /// <summary>The chunk name of compiled scripts (with its '@').</summary>
    public string ChunkName { get; }

    /// <summary>The Lua state.</summary>
    public Lua State { get; }

    /// <summary>Bytes the state holds now.</summary>
    public long MemoryUsed => _account[0];

    /// <summary>The allocation cap, in bytes.</summary>
    public long MemoryLimit
    {
        get => _account[1];
        set => _account[1] = value;
    }

    /// <summary>Keeps a delegate alive as long as the state and returns it.</summary>
    public T Keep<T>(T d) where T : Delegate
    {
        _keepAlive.Add(d);
        return d;
    }

    /// <summary>Sets global <paramref name="name"/> of the real globals table to the value on top of the stack (popped).</summary>
    public void SetRealGlobal(string name) => SetRealGlobal(Encoding.UTF8.GetBytes(name));

    /// <summary>Sets global <paramref name="name"/> (UTF-8) of the real globals table to the value on top of the stack
    /// (popped); no managed allocation (KEYS and ARGV are set twice per script call).</summary>
    public void SetRealGlobal(ReadOnlySpan<byte> name)
    {
        Lua l = State;
        l.RawGetInteger(LuaRegistry.Index, _realGlobals);
        l.Insert(-2);
        PushBytes(l, name);
        l.Insert(-2);
        l.RawSet(-3);
        l.Pop(1);
    }

    /// <summary>Most arguments for which <see cref="SetArgumentsGlobal"/> refills the previous call's table (its values
    /// are pushed on the stack first); a larger KEYS or ARGV gets a new table.</summary>
    internal const int ReusedArgumentsMax = 32;

    /// <summary>Calls of <see cref="SetArgumentsGlobal"/> that refilled the previous call's table (tests).</summary>
    internal long ReusedArgumentTables { get; private set; }

    /// <summary>Sets global <c>KEYS</c> (<paramref name="argv"/> false) or <c>ARGV</c> of the real globals table, which is
    /// on top of the stack (left there), to a table of arguments <paramref name="first"/> .. <paramref name="first"/> +
    /// <paramref name="count"/> - 1 of <paramref name="command"/> (Redis's luaCreateArray + luaSetGlobalArray).</summary>
    /// <remarks>What the script gets is what a new table would be. The table the global holds (the previous call's) is
    /// refilled instead of replaced when it is, apart from its values, what a new one is: a table without a metatable
    /// whose only keys are 1 .. <paramref name="count"/> (<see cref="HasOnlyKeysUpTo"/>). A script that added a key,
    /// removed one, set a metatable or replaced the table gets a new one next time. The old table can be reused only
    /// because no EVAL script can keep a reference to it past its own run: the globals, the libraries and the string
    /// metatable are read-only (rawset included), and an EVAL chunk has no upvalue but its environment (FCALL passes its
    /// tables as arguments and does not come here). A Lua finalizer (<c>__gc</c>) of an earlier script may still run
    /// and change the table during any allocation, so the values are pushed first (they allocate), the table is checked
    /// after the last allocation, and each value is then stored by <c>lua_rawseti</c> into a key that holds a value
    /// already: no allocation, no metamethod, no error, so without the GC transition.</remarks>
    public void SetArgumentsGlobal(bool argv, KvCommand command, int first, int count)
    {
        Lua l = State;
        IntPtr s = l.Handle;
        PushRegistry(argv ? _argvName : _keysName); // G name
        if (count <= ReusedArgumentsMax)
        {
            lua_pushvalue(s, -1);
            int table = lua_gettop(s);
            if (lua_rawget(s, -3) == LuaTypeTable) // G name old
            {
                if (count > 0 && !l.CheckStack(count + 4)) throw new InvalidOperationException("Lua stack exhausted");
                for (int i = 0; i < count; i++)
                {
                    ReadOnlySpan<byte> value = command[first + i];
                    fixed (byte* p = value) lua_pushlstring(s, p, (UIntPtr)value.Length); // may run a GC step
                }
                if (HasOnlyKeysUpTo(s, table, count))
                {
                    for (int i = count; i >= 1; i--) lua_rawseti(s, table, i); // pops the value; the key holds one already
                    lua_settop(s, table - 2); // G
                    ReusedArgumentTables++;
                    return;
                }
            }
            lua_settop(s, table - 1); // G name
        }
        l.CreateTable(count, 0);
        for (int i = 0; i < count; i++)
        {
            PushBytes(l, command[first + i]); // copied by Lua
            l.RawSetInteger(-2, i + 1);
        }
        l.RawSet(-3); // G
    }

    /// <summary>Whether the value at <paramref name="table"/> is a table without a metatable whose keys (with non-nil
    /// values) are exactly 1 .. <paramref name="count"/>; leaves the stack as it was. Reads only (lua_next over keys it
    /// returned itself cannot fail).</summary>
    private static bool HasOnlyKeysUpTo(IntPtr s, int table, int count)
    {
        if (lua_getmetatable(s, table) != 0)
        {
            lua_settop(s, -2);
            return false;
        }
        int n = 0;
        lua_pushnil(s);
        while (lua_next(s, table) != 0) // key, value
        {
            if (lua_isinteger(s, -2) == 0 || (ulong)(lua_tointegerx(s, -2, null) - 1) >= (ulong)count)
            {
                lua_settop(s, -3);
                return false;
            }
            n++; // keys are distinct: n == count means every one of 1..count
            lua_settop(s, -2);
        }
        return n == count;
    }

    private const int LuaTypeTable = 5; // LUA_TTABLE

    /// <summary>Whether global <paramref name="name"/> of the real globals table is set (not nil); for tests.</summary>
    internal bool HasRealGlobal(ReadOnlySpan<byte> name)
    {
        Lua l = State;
        l.RawGetInteger(LuaRegistry.Index, _realGlobals);
        PushBytes(l, name);
        l.RawGet(-2);
        bool set = !l.IsNil(-1);
        l.Pop(2);
        return set;
    }

    /// <summary>Pushes a C# function for the scripts: guarded (<see cref="Enter"/>/<see cref="Exit"/>, managed exceptions
    /// turned into script errors). It reports an error by returning what <see cref="RaiseError"/> and the other error
    /// helpers return, and calls no Lua API function that can raise.</summary>
    public void PushFunction(LuaFunction f)
    {
        LuaFunction guarded = s => Invoke(f, s);
        State.PushCFunction(Keep(guarded));
    }

    private int Invoke(LuaFunction f, IntPtr state)
    {
        long* account = Enter(state);
        int results;
        try
        {
            results = f(state);
        }
        catch (Exception e)
        {
            results = Fault(state, e, Log);
        }
        return Exit(state, account, results);
    }

    /// <summary>Where a managed exception caught in a callback is logged (null: standard error).</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Sets field <paramref name="name"/> of the table on top of the stack to a C# function (see
    /// <see cref="PushFunction"/>).</summary>
    public void SetFunction(string name, LuaFunction f)
    {
        PushFunction(f);
        State.SetField(-2, name);
    }

    // ------------------------------------------------------------------ callbacks: no error raised over a managed frame

    // The debug library's native hook function (ldblib.c hookf), the same in every state of the library.
    private static IntPtr s_nativeHook;

    private const int MaskReturn = 2; // LUA_MASKRET
    private const int MaskLine = 4, MaskCount = 8; // LUA_MASKLINE, LUA_MASKCOUNT

    // coroutine.create and coroutine.wrap as lcorolib's, and each new coroutine gets the sandbox's Lua hook function
    // (it inherits the native hook from the thread that creates it, not the Lua function the hook calls). They replace
    // the originals in the real coroutine table (package.loaded's, so error messages name them as before).
    private void RegisterCoroutineFunctions()
    {
        Lua l = State;
        l.GetGlobal("coroutine");
        l.GetField(-1, "wrap");
        l.SetField((int)LuaRegistry.Index, "kv_cowrap");
        SetFunction("create", CoroutineCreate);
        SetFunction("wrap", CoroutineWrap);
        l.Pop(1);
    }

    private const int LuaTypeFunction = 6; // LUA_TFUNCTION
    private const int LuaTypeNil = 0; // LUA_TNIL

    // setmetatable as Lua 5.1's (Redis's): a table's __gc does nothing. Lua 5.4 runs a table's finalizer, with hooks off,
    // so `setmetatable({}, {__gc = function() while true do end end}) collectgarbage()` could never be stopped (the
    // server froze: no -BUSY, no SCRIPT KILL); redis-server returns. The metatable is set with its __gc field hidden
    // (Lua marks an object for finalization only when its metatable has __gc at setmetatable time) and then put back,
    // so the metatable keeps its identity and fields. Replaces the original in the real globals table (error messages
    // name it as before); the argument errors are 5.1's texts.
    private void RegisterSetMetatable()
    {
        Lua l = State;
        l.PushGlobalTable();
        SetFunction("setmetatable", SetMetatable);
        l.Pop(1);
    }

    private static int SetMetatable(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        int t = lua_type(state, 2);
        if (lua_type(state, 1) != LuaTypeTable) return TypeError(l, 1, "table");
        if (t != LuaTypeNil && t != LuaTypeTable) return ArgError(l, 2, "nil or table expected");
        if (lua_getmetatable(state, 1) != 0)
        {
            PushBytes(l, "__metatable"u8);
            bool isProtected = lua_rawget(state, -2) != LuaTypeNil;
            lua_settop(state, -3);
            if (isProtected) return RaiseWithWhere(l, "cannot change a protected metatable");
        }
        lua_settop(state, 2);
        bool hidGc = false;
        if (t == LuaTypeTable)
        {
            PushBytes(l, "__gc"u8);
            if (lua_rawget(state, 2) != LuaTypeNil)
            {
                hidGc = true; // stack: t, mt, gc
                PushBytes(l, "__gc"u8);
                lua_pushnil(state);
                lua_rawset(state, 2);
            }
            else
            {
                lua_settop(state, 2);
            }
        }
        lua_pushvalue(state, 2);
        lua_setmetatable(state, 1);
        if (hidGc)
        {
            PushBytes(l, "__gc"u8);
            lua_pushvalue(state, 3);
            lua_rawset(state, 2);
        }
        lua_settop(state, 1);
        return 1;
    }

    private static int CoroutineCreate(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (lua_type(state, 1) != LuaTypeFunction) return TypeError(l, 1, "function");
        IntPtr thread = lua_newthread(state);
        lua_pushvalue(state, 1);
        lua_xmove(state, thread, 1);
        RecordThreadHook(l);
        return 1;
    }

    private static int CoroutineWrap(IntPtr state)
    {
        Lua l = Lua.FromIntPtr(state);
        if (lua_type(state, 1) != LuaTypeFunction) return TypeError(l, 1, "function");
        lua_settop(state, 1);
        l.GetField((int)LuaRegistry.Index, "kv_cowrap");
        lua_pushvalue(state, 1);
        if (l.PCall(1, 1, 0) != LuaStatus.OK) return ReturnError(l, l.ToString(-1, false) ?? "?"); // lcorolib's wrap: a C function, no Lua code
        l.GetUpValue(-1, 1); // its coroutine
        RecordThreadHook(l);
        lua_settop(state, -2);
        return 1;
    }

    // hooks[thread on top] = kv_hook (the debug library's table, weak keys); leaves the stack as it was.
    private static void RecordThreadHook(Lua l)
    {
        IntPtr s = l.Handle;
        int thread = lua_gettop(s);
        l.GetField((int)LuaRegistry.Index, "_HOOKKEY");
        lua_pushvalue(s, thread);
        l.GetField((int)LuaRegistry.Index, "kv_hook");
        lua_rawset(s, -3);
        lua_settop(s, thread);
    }

    /// <summary>Callbacks whose frames a Lua error unwound since the process started (a callback still entered when its
    /// script's protected call returned): 0 unless the no-longjmp rule is broken (tests).</summary>
    internal static long UnwoundCallbacks => Interlocked.Read(ref s_unwoundCallbacks);

    private static long s_unwoundCallbacks;

    /// <summary>Marks a C# callback as running on <paramref name="state"/>: the allocator does not fail for it (it records
    /// that the limit was crossed). Pair with <see cref="Exit"/>; returns the account block.</summary>
    /// <remarks>The collector keeps running: stopping it for the callback (<c>LUA_GCSTOP</c>/<c>LUA_GCRESTART</c>) was
    /// tried and cost 7.6x on EVALSHA (the restart zeroes the GC debt, so every callback was followed by a GC step).
    /// A finalizer may therefore run inside a callback (at an allocation's GC step): its errors stay inside its own
    /// protected call, and its allocations over the limit fail there (<see cref="OverLimit"/>).</remarks>
    internal static long* Enter(IntPtr state)
    {
        long* account;
        lua_getallocf(state, (IntPtr*)&account);
        account[SequenceSlot]++;
        account[DepthSlot]++;
        return account;
    }

    /// <summary>Ends a callback begun by <see cref="Enter"/>: when the callback took the state past its memory limit and
    /// a full collection does not bring it back, its results are dropped and Lua's "not enough memory" is made its error
    /// (raised as if the allocation had failed: <c>error</c> of that string is Lua's memory error). Returns the number of
    /// results.</summary>
    internal static int Exit(IntPtr state, long* account, int results)
    {
        if (account[DepthSlot] == 1 && account[OverSlot] != 0)
        {
            // (A callback that returns an error already has it raised: no collection for it.)
            if (account[UsedSlot] > account[LimitSlot] && account[PendingSlot] == 0)
            {
                account[DepthSlot] = 0; // finalizers may fail to allocate: inside their own protected calls
                lua_gc_collect(state, GcCollect);
                account[DepthSlot] = 1;
                if (account[PendingSlot] != 0)
                {
                    // A finalizer's error (hooks do not run in finalizers): dropped, as Lua drops it.
                    account[PendingSlot] = 0;
                    lua_sethook(state, (IntPtr)account[PrevHookSlot], (int)account[PrevMaskSlot], (int)account[PrevCountSlot]);
                }
                if (account[UsedSlot] > account[LimitSlot]) results = Pend(Lua.FromIntPtr(state), "not enough memory"u8, callError: false);
            }
            account[OverSlot] = 0;
        }
        account[DepthSlot]--;
        return results;
    }

    /// <summary>Begins a section of the host's own Lua API calls outside any protected call (pushing KEYS and ARGV,
    /// <c>luaL_ref</c> of a compiled script, converting the result): no allocation fails in it, since a memory error there
    /// would reach Lua's panic handler (which aborts the process). A script started over the cap fails at its first
    /// allocation, inside its protected call. Dispose it before the protected call.</summary>
    internal HostScope Host() => new(_account);

    /// <summary>See <see cref="Host"/>; disposing twice is harmless.</summary>
    internal ref struct HostScope
    {
        private long* _account;

        public HostScope(long* account)
        {
            _account = account;
            account[DepthSlot]++;
        }

        public void Dispose()
        {
            if (_account == null) return;
            if (--_account[DepthSlot] == 0) _account[OverSlot] = 0;
            _account = null;
        }
    }

    /// <summary>After a protected call of a script returned: a callback still entered means a Lua error unwound its frames
    /// (counted in <see cref="UnwoundCallbacks"/>); an error still pending (raised by a function called where hooks do
    /// not run: a finalizer) is dropped. The state is put right.</summary>
    internal void CheckNoCallbackUnwound()
    {
        if (_account[PendingSlot] != 0)
        {
            _account[PendingSlot] = 0;
            lua_sethook(State.Handle, IntPtr.Zero, 0, 0);
            _hookSet = false;
        }
        if (_account[DepthSlot] == 0) return;
        Interlocked.Increment(ref s_unwoundCallbacks);
        _account[DepthSlot] = 0;
        _account[OverSlot] = 0;
    }

    /// <summary>A managed exception caught in a callback: logged, and returned as a script error.</summary>
    internal static int Fault(IntPtr state, Exception e, Action<string>? log)
    {
        string line = "script callback failed: " + e;
        try
        {
            if (log is not null) log(line);
            else Console.Error.WriteLine(line);
        }
        catch (Exception)
        {
            // the log itself failed: the script error is still returned
        }
        return RaiseError(Lua.FromIntPtr(state), "Internal error in a script library call: " + e.GetType().Name + ": " + e.Message);
    }

    /// <summary>Makes <paramref name="text"/> the error of the running C# function (level 0): kept in registry
    /// <c>kv_pending</c> (and <c>kv_call_error</c> when <paramref name="callError"/>), with a return hook armed on the
    /// thread; the stack is cleared. The hook raises it when the function's return is processed (see the class remarks).
    /// Returns 0 (the function's result count).</summary>
    private static int Pend(Lua l, ReadOnlySpan<byte> text, bool callError)
    {
        IntPtr s = l.Handle;
        long* account;
        lua_getallocf(s, (IntPtr*)&account);
        // Every lua_sethook (this one's and TakePending's) restarts the count hook's countdown, so a loop that keeps
        // failing in C# functions more often than every 100,000 instructions would never reach its count hook (the
        // server froze on `while true do pcall(redis.call, 'nosuch') end`): under a count or line hook, ask here what
        // the hook would ask, and raise its error (a timeout past busy-reply-threshold answers -BUSY to others; a kill
        // stops the script) instead of this one.
        if ((lua_gethookmask(s) & (MaskCount | MaskLine)) != 0 && account[SelfSlot] != 0
            && GCHandle.FromIntPtr((IntPtr)account[SelfSlot]).Target is LuaSandbox self && self.HookCheck?.Invoke() is { } stop)
        {
            text = Encoding.UTF8.GetBytes(ErrorText(stop));
            callError = true;
        }
        lua_settop(s, 0);
        PushBytes(s, text);
        if (callError)
        {
            lua_pushvalue(s, -1);
            l.SetField((int)LuaRegistry.Index, "kv_call_error"); // the registry has no metatable: raw stores
        }
        l.SetField((int)LuaRegistry.Index, "kv_pending");
        // The thread's hook function (coroutines made by the script have theirs already, see CoroutineCreate).
        l.GetField((int)LuaRegistry.Index, "_HOOKKEY");
        lua_pushthread(s);
        if (lua_rawget(s, -2) == 0)
        {
            lua_settop(s, -2);
            lua_pushthread(s);
            l.GetField((int)LuaRegistry.Index, "kv_hook");
            lua_rawset(s, -3);
        }
        lua_settop(s, 0);
        // The function to raise for (TakePending checks it is the one returning).
        IntPtr function = FunctionAt(s, 0);
        // The thread's hook as it is without the return mask (only Pend sets that: a stale arming is not kept).
        int mask = lua_gethookmask(s) & ~MaskReturn;
        account[PrevHookSlot] = mask == 0 ? 0 : (long)lua_gethook(s);
        account[PrevMaskSlot] = mask;
        account[PrevCountSlot] = lua_gethookcount(s);
        account[PendingSlot] = 1;
        account[PendingSequenceSlot] = account[SequenceSlot];
        account[PendingDepthSlot] = account[DepthSlot];
        account[PendingFunctionSlot] = (long)function;
        lua_sethook(s, s_nativeHook, (int)account[PrevMaskSlot] | MaskReturn, (int)account[PrevCountSlot]);
        return 0;
    }

    // The identity (lua_topointer) of the function at stack level <level>, or zero; the stack is left as it was.
    private static IntPtr FunctionAt(IntPtr s, int level)
    {
        byte* ar = stackalloc byte[DebugRecordBytes];
        if (lua_getstack(s, level, ar) == 0) return IntPtr.Zero;
        byte* f = stackalloc byte[] { (byte)'f', 0 };
        lua_getinfo(s, f, ar);
        IntPtr function = lua_topointer(s, -1);
        lua_settop(s, -2);
        return function;
    }

    // HookCode's take, on a return event: the thread's hook as it was before Pend, and the pending error (nothing when
    // it is not for the function returning now: one called where hooks do not run, such as a finalizer, left it).
    private static int TakePending(IntPtr state)
    {
        long* account;
        lua_getallocf(state, (IntPtr*)&account);
        if (account[PendingSlot] == 0)
        {
            lua_sethook(state, lua_gethook(state), lua_gethookmask(state) & ~MaskReturn, lua_gethookcount(state));
            return 0;
        }
        account[PendingSlot] = 0;
        lua_sethook(state, (IntPtr)account[PrevHookSlot], (int)account[PrevMaskSlot], (int)account[PrevCountSlot]);
        Lua l = Lua.FromIntPtr(state);
        // Level 0: this function; 1: the Lua hook function; 2: the function returning. No other callback since Pend
        // (this one's Enter counted once), and not raised inside another callback (a finalizer run by its allocation).
        bool current = account[PendingSequenceSlot] + 1 == account[SequenceSlot] && account[PendingDepthSlot] == 1
            && FunctionAt(state, 2) == (IntPtr)account[PendingFunctionSlot];
        l.GetField((int)LuaRegistry.Index, "kv_pending");
        lua_pushnil(state);
        l.SetField((int)LuaRegistry.Index, "kv_pending");
        return current ? 1 : 0;
    }

    /// <summary>Replaces the table on top of the stack with a read-only proxy of it.</summary>
    public void Protect()
    {
        Lua l = State;
        l.GetField(LuaRegistry.Index, "kv_protect");
        l.Insert(-2);
        l.Call(1, 1);
    }

    /// <summary>Pushes the message handler (<c>__redis__err__handler</c>).</summary>
    public void PushErrorHandler() => PushRegistry(_errorHandler);

    /// <summary>Compiles <paramref name="code"/> as a chunk (text only) whose environment is the read-only globals;
    /// leaves the function on the stack, or returns the error message (nothing left on the stack).</summary>
    public string? Compile(ReadOnlySpan<byte> code)
    {
        Lua l = State;
        LuaStatus st = l.LoadBuffer(code.ToArray(), ChunkName, "t");
        if (st != LuaStatus.OK)
        {
            string msg = l.ToString(-1) ?? "unknown error";
            l.Pop(1);
            // Lua 5.4 writes "near <eof>"; Lua 5.1 (Redis) "near '<eof>'".
            return msg.Replace("near <eof>", "near '<eof>'", StringComparison.Ordinal);
        }
        // The chunk's first upvalue is _ENV: give it the read-only proxy.
        l.GetGlobal("_G");
        l.SetUpValue(-2, 1);
        return null;
    }

    /// <summary>What the count hook asks every 100,000 instructions (and the line hook on every line after a kill): the
    /// error text to stop the script with (as <see cref="RaiseError"/> takes it), or null to go on. Runs inside the
    /// hook, on the store owner.</summary>
    public Func<string?>? HookCheck { get; set; }

    /// <summary>Installs (<paramref name="on"/>) the count hook, every 100,000 instructions, or removes any hook.</summary>
    /// <remarks>While a count hook is set, Lua 5.4's VM calls <c>luaG_traceexec</c> before every instruction (5.1, which
    /// Redis runs, only decremented a counter): ~12 native instructions each, whatever the count. A script that cannot
    /// run long in Lua runs without it (<see cref="SetHookOnDemand"/>). The hook is the debug library's native one,
    /// which calls the sandbox's Lua hook function; that asks <see cref="HookCheck"/> (a wrapped C# function) and raises
    /// from Lua, so no error is raised from a managed hook.</remarks>
    public void SetHook(bool on)
    {
        _onDemand = false;
        if (!on)
        {
            lua_sethook(State.Handle, IntPtr.Zero, 0, 0);
            _hookSet = false;
        }
        else
        {
            lua_sethook(State.Handle, s_nativeHook, (int)LuaHookMask.Count, HookInstructionCount);
            _hookSet = true;
        }
    }

    /// <summary>For a script whose own code is straight-line (<see cref="LuaBytecode.MayLoop"/> false): no hook now; the
    /// count hook is installed only if the script compiles code at run time (<c>load</c>, <c>loadstring</c>: the
    /// sandbox's shims arm it before compiling), since only such code, or a function of the script itself, can loop.
    /// <see cref="ClearHook"/> ends it.</summary>
    public void SetHookOnDemand() => _onDemand = true;

    /// <summary>Removes the hook after a script (one native call only when a hook was installed).</summary>
    public void ClearHook()
    {
        _onDemand = false;
        if (_hookSet) SetHook(false);
    }

    /// <summary>Whether a hook is installed now (tests: a straight-line script runs without one).</summary>
    internal bool HookSet => _hookSet;

    private bool _hookSet; // a hook (count or line) is installed on the state
    private bool _onDemand; // the running straight-line script gets the count hook from ArmHookNow

    /// <summary>The sandbox's <c>arm_hook</c> (called by the load/loadstring shims): installs the pending on-demand hook.</summary>
    internal LuaFunction ArmHookFunction => ArmHookNow;

    private int ArmHookNow(IntPtr state)
    {
        if (_onDemand)
        {
            _onDemand = false;
            // The main state (where the script runs), and the calling thread when it is another (new coroutines
            // inherit the hook of the thread that creates them; the sandbox's coroutine.create records its Lua side).
            lua_sethook(State.Handle, s_nativeHook, (int)LuaHookMask.Count, HookInstructionCount);
            if (state != State.Handle) lua_sethook(state, s_nativeHook, (int)LuaHookMask.Count, HookInstructionCount);
            _hookSet = true;
        }
        return 0;
    }

    // The C# side of the count/line hook (HookCode's check): nothing, or the error to stop the script with (as
    // RaiseError words it, registered as a redis.call-style error); the Lua hook function raises it.
    private int HookCheckNow(IntPtr state)
    {
        string? error = HookCheck?.Invoke();
        if (error is null) return 0;
        Lua l = Lua.FromIntPtr(state);
        PushBytes(l, Encoding.UTF8.GetBytes(ErrorText(error)));
        lua_pushvalue(state, -1);
        l.SetField((int)LuaRegistry.Index, "kv_call_error");
        return 1;
    }

    /// <summary>Whether the function on top of the stack may run long in Lua by itself (a loop, a backward jump, a
    /// nested function: <see cref="LuaBytecode.MayLoop"/> of its <c>string.dump</c>); true when it cannot be dumped.</summary>
    public bool TopMayLoop()
    {
        Lua l = State;
        l.RawGetInteger(LuaRegistry.Index, _realGlobals);
        l.GetField(-1, "string"); // the read-only proxy; its __index is the real library
        l.GetField(-1, "dump");
        l.Remove(-2);
        l.Remove(-2);
        l.PushCopy(-2);
        l.PushBoolean(true); // strip: no debug information
        if (l.PCall(2, 1, 0) != LuaStatus.OK)
        {
            l.Pop(1);
            return true;
        }
        byte[]? dump = l.ToBuffer(-1, false);
        l.Pop(1);
        return dump is null || LuaBytecode.MayLoop(dump);
    }

    /// <summary>Makes the hook run on every new line (after a kill, as Redis does: a pcall in the script cannot swallow
    /// it for long); <see cref="HookCheck"/> then stops the script again.</summary>
    public void SetLineHook()
    {
        lua_sethook(State.Handle, s_nativeHook, (int)LuaHookMask.Line, 0);
        _hookSet = true;
    }

    /// <summary>A Redis error from a C# function, as Redis 7.0's redis.call raises it: the Lua error value is the error
    /// text ("-CODE msg" keeps CODE, "msg" gets ERR) as a string, which a pcall in the script receives; the message handler
    /// recognises it (registry <c>kv_call_error</c>) and does not prefix it with ERR again. Raised when the function
    /// returns (<see cref="Pend"/>): <c>return RaiseError(...)</c>.</summary>
    public static int RaiseError(Lua l, string message) => Pend(l, Encoding.UTF8.GetBytes(ErrorText(message)), callError: true);

    /// <summary>A plain Lua error value <paramref name="text"/> (no position, no ERR: the message handler adds ERR), as
    /// <c>lua_error</c> of a string raised it; raised when the function returns: <c>return ReturnError(...)</c>.</summary>
    public static int ReturnError(Lua l, string text) => Pend(l, Encoding.UTF8.GetBytes(text), callError: false);

    /// <summary><c>luaL_argerror</c> without raising: "bad argument #n to 'name' (extra)" with the position of the
    /// calling script, the name the one the script called the function by.</summary>
    public static int ArgError(Lua l, int arg, string extra) => ReturnError(l, Where(l) + ArgErrorText(l, arg, extra));

    /// <summary><c>luaL_typeerror</c> without raising: "bad argument #n to 'name' (T expected, got U)".</summary>
    public static int TypeError(Lua l, int arg, string expected) => ArgError(l, arg, expected + " expected, got " + TypeNameForError(l, arg));

    /// <summary><c>luaL_checknumber</c> without raising: false when argument <paramref name="arg"/> is not a number (or
    /// a string that converts to one), with the type error pushed: <c>return error</c>.</summary>
    public static bool CheckNumber(Lua l, int arg, out double value, out int error)
    {
        int isNumber;
        value = lua_tonumberx(l.Handle, arg, &isNumber);
        error = isNumber != 0 ? 0 : TypeError(l, arg, "number");
        return isNumber != 0;
    }

    /// <summary><c>luaL_checkinteger</c> without raising (a float without an integer value: "number has no integer
    /// representation").</summary>
    public static bool CheckInteger(Lua l, int arg, out long value, out int error)
    {
        int isNumber;
        value = lua_tointegerx(l.Handle, arg, &isNumber);
        if (isNumber != 0)
        {
            error = 0;
            return true;
        }
        error = l.IsNumber(arg) ? ArgError(l, arg, "number has no integer representation") : TypeError(l, arg, "number");
        return false;
    }

    /// <summary><c>luaL_optinteger</c> without raising.</summary>
    public static bool OptInteger(Lua l, int arg, long defaultValue, out long value, out int error)
    {
        if (lua_type(l.Handle, arg) <= 0) // LUA_TNONE, LUA_TNIL
        {
            value = defaultValue;
            error = 0;
            return true;
        }
        return CheckInteger(l, arg, out value, out error);
    }

    /// <summary><c>luaL_checkstring</c> without raising: a number argument is converted in place, as Lua does.</summary>
    public static bool CheckString(Lua l, int arg, out string value, out int error)
    {
        if (!l.IsStringOrNumber(arg))
        {
            value = "";
            error = TypeError(l, arg, "string");
            return false;
        }
        value = l.ToString(arg, false) ?? "";
        error = 0;
        return true;
    }

    /// <summary>As <see cref="CheckString"/>, the bytes (copied).</summary>
    public static bool CheckBytes(Lua l, int arg, out byte[] value, out int error)
    {
        if (!l.IsStringOrNumber(arg))
        {
            value = [];
            error = TypeError(l, arg, "string");
            return false;
        }
        value = l.ToBuffer(arg, false) ?? [];
        error = 0;
        return true;
    }

    /// <summary><c>luaL_where(L, 1)</c>: the position of the code that called the function, "" when that is not Lua code
    /// with a line.</summary>
    private static string Where(Lua l)
    {
        l.Where(1); // pushes a string; allocates only (the allocator does not fail inside a callback)
        string where = l.ToString(-1, false) ?? "";
        lua_settop(l.Handle, -2);
        return where;
    }

    // luaL_argerror's text, for the running C function (level 0). The lua_Debug is read directly (name and namewhat,
    // its second and third fields): KeraLua's LuaDebug does not give namewhat with this Lua build.
    private static string ArgErrorText(Lua l, int arg, string extra)
    {
        IntPtr s = l.Handle;
        byte* ar = stackalloc byte[DebugRecordBytes];
        new Span<byte>(ar, DebugRecordBytes).Clear();
        if (lua_getstack(s, 0, ar) == 0) return $"bad argument #{arg} ({extra})";
        byte* n = stackalloc byte[] { (byte)'n', 0 };
        lua_getinfo(s, n, ar);
        string? name = Marshal.PtrToStringUTF8(*(IntPtr*)(ar + IntPtr.Size));
        string? nameWhat = Marshal.PtrToStringUTF8(*(IntPtr*)(ar + 2 * IntPtr.Size));
        if (nameWhat == "method")
        {
            arg--;
            if (arg == 0) return $"calling '{name}' on bad self ({extra})";
        }
        name ??= GlobalFunctionName(l, ar) ?? "?";
        return $"bad argument #{arg} to '{name}' ({extra})";
    }

    private const int DebugRecordBytes = 512; // more than sizeof(lua_Debug) (~200 bytes on 64-bit)

    // lauxlib's pushglobalfuncname: "lib.name" of the function at ar among the loaded modules (two levels deep), "_G."
    // dropped; null when not found.
    private static string? GlobalFunctionName(Lua l, byte* ar)
    {
        int top = l.GetTop();
        if (!l.CheckStack(8)) return null;
        byte* f = stackalloc byte[] { (byte)'f', 0 };
        lua_getinfo(l.Handle, f, ar); // pushes the function: top + 1
        l.GetField((int)LuaRegistry.Index, "_LOADED");
        string? name = FindField(l, top + 1, 2);
        lua_settop(l.Handle, top);
        if (name is not null && name.StartsWith("_G.", StringComparison.Ordinal)) name = name[3..];
        return name;
    }

    // lauxlib's findfield over the table on top (raw traversal, string keys only); leaves the stack as it was.
    private static string? FindField(Lua l, int function, int level)
    {
        if (level == 0 || l.Type(-1) != LuaType.Table) return null;
        l.PushNil();
        while (l.Next(-2))
        {
            if (l.Type(-2) == LuaType.String)
            {
                if (lua_rawequal(l.Handle, function, -1) != 0)
                {
                    string key = l.ToString(-2, false) ?? "";
                    l.Pop(2);
                    return key;
                }
                string? inner = FindField(l, function, level - 1);
                if (inner is not null)
                {
                    string key = l.ToString(-2, false) ?? "";
                    l.Pop(2);
                    return key + "." + inner;
                }
            }
            l.Pop(1);
        }
        return null;
    }

    // luaL_typeerror's "got" part: the __name metafield (raw), "light userdata", or the type's name ("no value").
    private static string TypeNameForError(Lua l, int arg)
    {
        IntPtr s = l.Handle;
        if (lua_getmetatable(s, arg) != 0)
        {
            PushBytes(l, "__name"u8);
            bool named = lua_rawget(s, -2) == 4; // LUA_TSTRING
            string? name = named ? l.ToString(-1, false) : null;
            lua_settop(s, -3);
            if (name is not null) return name;
        }
        if (l.Type(arg) == LuaType.LightUserData) return "light userdata";
        return l.TypeName(l.Type(arg));
    }

    /// <summary>The <c>err</c> text Redis's luaPushErrorBuff makes of <paramref name="message"/>.</summary>
    public static string ErrorText(string message)
    {
        string text;
        if (message.StartsWith('-'))
        {
            int space = message.IndexOf(' ', StringComparison.Ordinal);
            text = space < 0 ? "ERR " + message[1..] : message[1..space] + " " + message[(space + 1)..];
        }
        else
        {
            text = "ERR " + message;
        }
        return text.TrimEnd('\r', '\n');
    }

    /// <summary>Pushes <c>{err = ...}</c> as Redis's luaPushErrorBuff does: "-CODE msg" keeps CODE, "msg" gets ERR.</summary>
    public static void PushErrorTable(Lua l, string message)
    {
        string text = ErrorText(message);
        l.CreateTable(0, 1); // sized for its one field
        l.PushString("err");
        PushBytes(l, Encoding.UTF8.GetBytes(text));
        l.RawSet(-3);
    }

    /// <summary>Pushes a binary-safe string (copied by Lua; no managed copy).</summary>
    public static void PushBytes(Lua l, ReadOnlySpan<byte> bytes) => PushBytes(l.Handle, bytes);

    private static void PushBytes(IntPtr state, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            lua_pushlstring(state, p, (UIntPtr)bytes.Length);
        }
    }

    /// <summary>The bytes of the string at <paramref name="index"/> (which must be a string: a number would be converted
    /// in place), valid while the string stays on the stack; no managed copy.</summary>
    public static ReadOnlySpan<byte> StringSpan(Lua l, int index)
    {
        UIntPtr len;
        byte* p = lua_tolstring(l.Handle, index, &len);
        return p == null ? default : new ReadOnlySpan<byte>(p, checked((int)len));
    }

    /// <summary>A plain string error prefixed with the position of the calling Lua code (luaL_error), raised as the
    /// function returns.</summary>
    public static int RaiseWithWhere(Lua l, string message) => ReturnError(l, Where(l) + message);

    /// <summary>Formats a Lua number as Lua 5.1 did (<c>%.14g</c>), integers as integers: what Redis sends for a number argument.</summary>
    public static string NumberToString(Lua l, int index)
    {
        if (l.IsInteger(index)) return l.ToInteger(index).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return FormatG14(l.ToNumber(index));
    }

    /// <summary>C's <c>%.14g</c>.</summary>
    public static string FormatG14(double d)
    {
        if (double.IsNaN(d)) return d < 0 || BitConverter.DoubleToInt64Bits(d) < 0 ? "-nan" : "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return BitConverter.DoubleToInt64Bits(d) < 0 ? "-0" : "0";
        string e = d.ToString("E13", System.Globalization.CultureInfo.InvariantCulture); // d.ddddddddddddde+xxx
        int exp = int.Parse(e.AsSpan(e.IndexOf('E') + 1), System.Globalization.CultureInfo.InvariantCulture);
        if (exp < -4 || exp >= 14)
        {
            string mant = e[..e.IndexOf('E')];
            if (mant.Contains('.', StringComparison.Ordinal)) mant = mant.TrimEnd('0').TrimEnd('.');
            return mant + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", System.Globalization.CultureInfo.InvariantCulture);
        }
        string f = d.ToString("F" + Math.Max(0, 13 - exp), System.Globalization.CultureInfo.InvariantCulture);
        if (f.Contains('.', StringComparison.Ordinal)) f = f.TrimEnd('0').TrimEnd('.');
        return f;
    }

    /// <summary>Runs <paramref name="code"/> with the full (unsandboxed) environment, during setup.</summary>
    private void RunSetup(string code)
    {
        Lua l = State;
        if (l.LoadString(code, "=setup") != LuaStatus.OK || l.PCall(0, 0, 0) != LuaStatus.OK)
        {
            string msg = l.ToString(-1) ?? "?";
            throw new InvalidOperationException("Lua sandbox setup failed: " + msg);
        }
    }

    // ------------------------------------------------------------------ allocator
    //
    // Lua allocates and frees small blocks on nearly every operation (strings, tables, closures, call frames): a script
    // call of three redis.call's makes a few dozen. libc's malloc/free cost more than the rest of the allocator, so small
    // blocks go through a size-class pool of this state: SmallClasses free lists of blocks of 24, 40, 56, ... 264 bytes
    // (glibc's own chunk sizes, so a block costs what malloc of its size would), each block an ordinary malloc'd block of
    // its class's full size. Freeing pushes the block on its class's list, allocating pops one; only when the list is
    // empty is malloc called, and only when the pool holds PoolCapBytes already is free. The memory accounting (used and
    // limit) stays that of Lua's requested sizes: a block in the pool is free memory to the script, and the pool is
    // bounded (at most PoolCapBytes per state on top of what the scripts hold). Pool state lives in the native account
    // block (ud): [0] used, [1] limit, [2] bytes in the pool, [3] 1 once the state is closing (no pooling, frees go to
    // libc), [4..4+SmallClasses) the free lists' heads (a free block's first 8 bytes link to the next).
    //
    // Every small block of a pooled state is made by TakeSmall (never by libc's realloc to a small size): a block's real
    // size is always at least its class's, whichever class Lua's osize puts it in later. Lua's contract: osize is the
    // size last requested for the block; a shrink (nsize <= osize) must not fail (it keeps the larger block if needed).

    private const int SmallClasses = 16;
    private const int SmallMax = 24 + 16 * (SmallClasses - 1); // 264
    private const long PoolCapBytes = 256 * 1024;
    // The callbacks' state (Enter, Exit, Pend): [4] callbacks running, [5] 1 when one went past the limit, [7]
    // callbacks entered (a sequence number), [8] 1 while an error is pending, [9] the sequence number of its callback,
    // [10] its function (lua_topointer), [11..13] the thread's hook, mask and count before it, [14] the main state,
    // [15] the callback depth when it was made; the pool's heads from [16].
    private const int AccountLongs = 16 + SmallClasses;
    private const int UsedSlot = 0, LimitSlot = 1, PooledSlot = 2, ClosingSlot = 3, DepthSlot = 4, OverSlot = 5;
    private const int SelfSlot = 6; // a weak GCHandle of the sandbox (Pend asks its HookCheck)
    private const int SequenceSlot = 7, PendingSlot = 8, PendingSequenceSlot = 9, PendingFunctionSlot = 10;
    private const int PrevHookSlot = 11, PrevMaskSlot = 12, PrevCountSlot = 13, MainStateSlot = 14, PendingDepthSlot = 15, HeadsSlot = 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SmallClass(nuint size) => size <= 24 ? 0 : (int)((size - 24 + 15) >> 4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint ClassSize(int k) => (nuint)(24 + 16 * k);

    /// <summary>Bytes of free blocks the small-block pool holds (not counted in <see cref="MemoryUsed"/>).</summary>
    public long PooledBytes => _account[PooledSlot];

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static IntPtr AllocateUnmanaged(IntPtr ud, IntPtr ptr, UIntPtr osize, UIntPtr nsize)
    {
        // The hot path of every Lua allocation: libc's realloc/free called without a GC transition (NativeMemory's
        // P/Invokes pay one each way on top of this callback's own). Same heap as NativeMemory (and KeraLua's first
        // allocations through the delegate), so blocks move freely between the two.
        if (s_realloc == null) return AllocateNative(ud, ptr, osize, nsize);
        return (IntPtr)Reallocate((long*)ud, (void*)ptr, (nuint)osize, (nuint)nsize);
    }

    private static IntPtr Allocate(IntPtr ud, IntPtr ptr, UIntPtr osize, UIntPtr nsize)
    {
        // KeraLua's first allocations (lua_newstate) come through this delegate: the same pool discipline as later.
        if (s_realloc == null) return AllocateNative(ud, ptr, osize, nsize);
        return (IntPtr)Reallocate((long*)ud, (void*)ptr, (nuint)osize, (nuint)nsize);
    }

    private static void* Reallocate(long* account, void* ptr, nuint osize, nuint nsize)
    {
        nuint oldSize = ptr == null ? 0 : osize; // with no block, osize is a type tag
        if (nsize == 0)
        {
            if (ptr != null)
            {
                Release(account, ptr, oldSize);
                account[UsedSlot] -= (long)oldSize;
            }
            return null;
        }
        long delta = (long)nsize - (long)oldSize;
        if (delta > 0 && account[UsedSlot] + delta > account[LimitSlot] && OverLimit(account)) return null; // Lua raises "not enough memory"; shrinking never fails
        void* result;
        if (nsize <= SmallMax)
        {
            int k = SmallClass(nsize);
            if (ptr != null && oldSize <= SmallMax && SmallClass(oldSize) == k)
            {
                result = ptr; // the block's class already holds nsize
            }
            else
            {
                result = TakeSmall(account, k);
                if (result == null)
                {
                    if (ptr == null || nsize > oldSize) return null;
                    result = ptr; // a shrink must not fail: keep the larger block (its size is >= nsize's class)
                }
                else if (ptr != null)
                {
                    Buffer.MemoryCopy(ptr, result, (long)nsize, (long)Math.Min(oldSize, nsize));
                    Release(account, ptr, oldSize);
                }
            }
        }
        else
        {
            // A large block: libc's realloc (a small block is a plain malloc'd block too, so it may grow in place).
            result = s_realloc(ptr, nsize);
            if (result == null) return null;
        }
        account[UsedSlot] += delta;
        return result;
    }

    // An allocation past the limit: refused (Lua raises its memory error from native code), except while a C# callback
    // runs, where the error would unwind the callback's frames: then granted and recorded (Exit reports it). A finalizer
    // running inside a callback (lua_gc answers -1 while one runs) is refused: its error stays in its protected call.
    private static bool OverLimit(long* account)
    {
        if (account[DepthSlot] == 0) return true;
        if (lua_gc_flag((IntPtr)account[MainStateSlot], GcIsRunning) < 0) return true;
        account[OverSlot] = 1;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void* TakeSmall(long* account, int k)
    {
        void** head = (void**)(account + HeadsSlot + k);
        void* block = *head;
        if (block != null)
        {
            *head = *(void**)block;
            account[PooledSlot] -= (long)ClassSize(k);
            return block;
        }
        return s_realloc(null, ClassSize(k));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Release(long* account, void* block, nuint size)
    {
        if (size <= SmallMax && account[ClosingSlot] == 0)
        {
            int k = SmallClass(size);
            long classSize = (long)ClassSize(k);
            if (account[PooledSlot] + classSize <= PoolCapBytes)
            {
                void** head = (void**)(account + HeadsSlot + k);
                *(void**)block = *head;
                *head = block;
                account[PooledSlot] += classSize;
                return;
            }
        }
        s_free(block);
    }

    /// <summary>Stops pooling (the state is closing or closed) and frees the blocks the pool holds.</summary>
    private static void DrainPool(long* account)
    {
        account[ClosingSlot] = 1;
        if (s_free == null) return;
        for (int k = 0; k < SmallClasses; k++)
        {
            void** head = (void**)(account + HeadsSlot + k);
            while (*head != null)
            {
                void* block = *head;
                *head = *(void**)block;
                s_free(block);
            }
        }
        account[PooledSlot] = 0;
    }

    // libc's realloc and free (the C library NativeMemory uses on Unix), or null where it is not found (then NativeMemory,
    // without the pool). Neither calls back into managed code nor blocks for long: safe without the GC transition.
    private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<void*, nuint, void*> s_realloc;
    private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<void*, void> s_free;

    static LuaSandbox()
    {
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out IntPtr libc)) return;
        if (NativeLibrary.TryGetExport(libc, "realloc", out IntPtr realloc) && NativeLibrary.TryGetExport(libc, "free", out IntPtr free))
        {
            s_free = (delegate* unmanaged[Cdecl, SuppressGCTransition]<void*, void>)free;
            s_realloc = (delegate* unmanaged[Cdecl, SuppressGCTransition]<void*, nuint, void*>)realloc;
        }
    }

    // Without libc's entry points: NativeMemory, no pool.
    private static IntPtr AllocateNative(IntPtr ud, IntPtr ptr, UIntPtr osize, UIntPtr nsize)
    {
        long* account = (long*)ud;
        long oldSize = ptr == IntPtr.Zero ? 0 : (long)(ulong)osize; // with no block, osize is a type tag
        if (nsize == 0)
        {
            if (ptr != IntPtr.Zero)
            {
                NativeMemory.Free((void*)ptr);
                account[UsedSlot] -= oldSize;
            }
            return IntPtr.Zero;
        }
        long delta = (long)(ulong)nsize - oldSize;
        if (delta > 0 && account[UsedSlot] + delta > account[LimitSlot] && OverLimit(account)) return IntPtr.Zero; // Lua raises "not enough memory"; shrinking never fails
        void* result = NativeMemory.Realloc((void*)ptr, nsize);
        if (result == null) return IntPtr.Zero;
        account[UsedSlot] += delta;
        return (IntPtr)result;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        GC.SuppressFinalize(this);
        _account[ClosingSlot] = 1; // lua_close's frees go straight to libc
        _account[SelfSlot] = 0;
        if (_self.IsAllocated) _self.Free();
        State.Dispose();
        DrainPool(_account);
    }

    /// <summary>A sandbox never disposed (the store does not dispose its script host): KeraLua's own finalizer closes the
    /// state, before or after this one runs; either way the pool ends empty and stops caching.</summary>
    ~LuaSandbox()
    {
        _account[SelfSlot] = 0;
        if (_self.IsAllocated) _self.Free();
        DrainPool(_account);
    }

    // Runs first, with TakePending and HookCheckNow as its arguments: the hook's Lua side, called by the debug library's
    // native hook. A return event: the pending error of the C# function returning (Pend), raised from here; a count or
    // line event: C# decides whether to stop the script (HookCheck). Chunk "=kv": the message handler skips these
    // frames.
    private const string HookCode = """
        local take, check = ...
        local error = error
        local function kv_hook(event)
          if event == 'return' then
            local e = take()
            if e ~= nil then error(e, 0) end
            return
          end
          local e = check()
          if e ~= nil then error(e, 0) end
        end
        local registry = debug.getregistry()
        registry.kv_hook = kv_hook
        registry.kv_pending = false
        debug.sethook(kv_hook, '', 0x7fffffff)
        """;

    // Runs once per state with the full libraries, then removes what Redis removes. The globals table G stays the real
    // one (the registry's LUA_RIDX_GLOBALS); scripts get a proxy P as _ENV: P reads through to G, any write to P raises
    // "Attempt to modify a readonly table", and reading a global G lacks raises "Script attempted to access nonexistent
    // global variable" (both C# functions, so the message carries the script's position). Libraries are proxied alike.
    private const string SetupCode = """
        local G = _G
        local dbg = debug
        local readonly_error, nonexistent_global = __kv_readonly_error, __kv_nonexistent_global
        local kv_rawset, arm_hook = __kv_rawset, __kv_arm_hook
        G.__kv_readonly_error, G.__kv_nonexistent_global, G.__kv_rawset, G.__kv_arm_hook = nil, nil, nil, nil

        -- Lua 5.1 names Redis scripts use.
        G.unpack = table.unpack
        local load54 = load
        -- Code compiled at run time may loop: the running script gets its count hook first (a straight-line script
        -- runs without it, see LuaBytecode).
        G.loadstring = function(s, chunkname)
          if type(s) ~= 'string' then error("bad argument #1 to 'loadstring' (string expected)", 2) end
          arm_hook()
          return load54(s, chunkname, 't', G._G)
        end
        G.load = function(chunk, chunkname, mode, env)
          arm_hook()
          return load54(chunk, chunkname, 't', env or G._G)
        end
        G.gcinfo = function() return math.floor(collectgarbage('count')) end
        math.mod = math.fmod
        math.pow = function(x, y) return x ^ y end
        math.log10 = function(x) return math.log(x, 10) end
        math.ldexp = function(m, e) return m * 2.0 ^ e end
        math.frexp = function(x)
          if x == 0 or x ~= x or x == math.huge or x == -math.huge then return x, 0 end
          local e = math.floor(math.log(math.abs(x), 2)) + 1
          local m = x / 2.0 ^ e
          if math.abs(m) >= 1 then m = m / 2; e = e + 1 elseif math.abs(m) < 0.5 then m = m * 2; e = e - 1 end
          return m, e
        end
        math.cosh = function(x) return (math.exp(x) + math.exp(-x)) / 2 end
        math.sinh = function(x) return (math.exp(x) - math.exp(-x)) / 2 end
        math.tanh = function(x) local a, b = math.exp(x), math.exp(-x) return (a - b) / (a + b) end
        math.atan2 = function(y, x) return math.atan(y, x) end
        table.getn = function(t) return #t end
        table.setn = function() error("'setn' is obsolete", 2) end
        table.maxn = function(t)
          local m = 0
          for k in pairs(t) do if type(k) == 'number' and k > m then m = k end end
          return m
        end
        table.foreach = function(t, f)
          for k, v in pairs(t) do local r = f(k, v) if r ~= nil then return r end end
        end
        table.foreachi = function(t, f)
          for i = 1, #t do local r = f(i, t[i]) if r ~= nil then return r end end
        end
        string.gfind = string.gmatch

        -- What Redis removes.
        for _, name in ipairs({'os', 'io', 'package', 'require', 'dofile', 'loadfile', 'print', 'warn', 'debug', 'utf8', 'module', 'setfenv', 'getfenv', 'newproxy'}) do
          G[name] = nil
        end

        local registry = dbg.getregistry()
        -- An error raised by the sandbox's hook function (chunk "=kv": a C# function's error as its return is processed,
        -- or a kill) is placed where the hook fired: the frames of error and the hook function are skipped.
        G.__redis__err__handler = function(err)
          local level = 2
          local h = dbg.getinfo(3, 'S')
          if h and h.source == '=kv' then level = 4 end
          local i = dbg.getinfo(level, 'nSl')
          if i and i.what == 'C' then i = dbg.getinfo(level + 1, 'nSl') end
          if type(err) ~= 'table' then
            if err == registry.kv_call_error then
              err = {err = err}
            else
              -- Lua 5.4 names the variable after the message, 5.1 (Redis) before it.
              local text = tostring(err):gsub("attempt to (.-) a (%a+) value %((%a+) '([^']*)'%)", "attempt to %1 %3 '%4' (a %2 value)")
              err = {err = 'ERR ' .. text}
            end
          end
          if i then
            err['source'] = i.source
            err['line'] = i.currentline
          end
          return err
        end

        -- The read-only tables (proxies): rawset refuses them too (kv_rawset), as Redis 7.0's readonly tables.
        local protected = setmetatable({}, {__mode = 'k'})
        registry.kv_protected = protected
        local function protect(t)
          local proxy = setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = false,
            __pairs = function() return next, t, nil end, __len = function() return #t end})
          protected[proxy] = true
          return proxy
        end
        for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'cjson', 'cmsgpack', 'struct', 'bit'}) do
          if G[name] then G[name] = protect(G[name]) end
        end
        -- Strings' methods stay those of the real string library; getmetatable('') gives a read-only view whose
        -- __index is the read-only string library (Redis 7.0: "Attempt to modify a readonly table").
        local string_meta = getmetatable('')
        string_meta.__metatable = protect({__index = G.string})
        local P = setmetatable({}, {__index = G, __newindex = readonly_error, __metatable = false,
          __pairs = function() return next, G, nil end})
        protected[P] = true
        setmetatable(G, {__index = nonexistent_global, __metatable = false})
        G._G = P
        G.rawset = kv_rawset
        dbg.getregistry().kv_protect = protect
        """;
}
