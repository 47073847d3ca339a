using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using KeraLua;
using static EioSharp.Kv.Scripting.LuaNative;

namespace EioSharp.Kv.Scripting;

/// <summary>One Lua 5.4 state (KeraLua) set up like Redis 7.0's script environment: Lua 5.1 names shimmed, os/io/
/// package/debug/loadfile/dofile/print removed, globals and libraries read-only, cjson/cmsgpack/struct/bit loaded, a
/// memory cap and an instruction-count hook.</summary>
/// <remarks><b>Errors</b>: C# callbacks raise Lua errors with <c>lua_error</c>, which unwinds (longjmp) through their
/// frames: they must not rely on <c>finally</c> blocks or hold locks. <b>Thread safety</b>: none; the store owner only.</remarks>
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
    private LuaHookFunction? _hook; // the last hook set, and its function pointer
    private IntPtr _hookPointer;

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
        Lua l = State;
        l.OpenLibs();
        l.GetGlobal("_G");
        _realGlobals = l.Ref(LuaRegistry.Index);
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

    /// <summary>Pushes a registered C# function.</summary>
    public void PushFunction(LuaFunction f) => State.PushCFunction(Keep(f));

    /// <summary>Sets field <paramref name="name"/> of the table on top of the stack to a C# function.</summary>
    public void SetFunction(string name, LuaFunction f)
    {
        PushFunction(f);
        State.SetField(-2, name);
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

    /// <summary>Installs a count hook; <paramref name="hook"/> runs every 100,000 instructions (null: removes any
    /// hook). The caller keeps the delegate alive.</summary>
    /// <remarks>While a count hook is set, Lua 5.4's VM calls <c>luaG_traceexec</c> before every instruction (5.1, which
    /// Redis runs, only decremented a counter): ~12 native instructions each, whatever the count. A script that cannot
    /// run long in Lua runs without it (<see cref="SetHookOnDemand"/>).</remarks>
    public void SetHook(LuaHookFunction? hook)
    {
        // lua_sethook directly, with the delegate's function pointer looked up once (KeraLua's SetHook looks it up on
        // every call, and this runs twice per script call).
        _onDemandHook = null;
        if (hook is null)
        {
            lua_sethook(State.Handle, IntPtr.Zero, 0, 0);
            _hookSet = false;
        }
        else
        {
            lua_sethook(State.Handle, HookPointer(hook), (int)LuaHookMask.Count, HookInstructionCount);
            _hookSet = true;
        }
    }

    /// <summary>For a script whose own code is straight-line (<see cref="LuaBytecode.MayLoop"/> false): no hook now;
    /// <paramref name="hook"/> is installed as the count hook only if the script compiles code at run time
    /// (<c>load</c>, <c>loadstring</c>: the sandbox's shims arm it before compiling), since only such code, or a
    /// function of the script itself, can loop. <see cref="ClearHook"/> ends it.</summary>
    public void SetHookOnDemand(LuaHookFunction hook)
    {
        _onDemandHook = hook;
        HookPointer(hook);
    }

    /// <summary>Removes the hook after a script (one native call only when a hook was installed).</summary>
    public void ClearHook()
    {
        _onDemandHook = null;
        if (_hookSet) SetHook(null);
    }

    /// <summary>Whether a hook is installed now (tests: a straight-line script runs without one).</summary>
    internal bool HookSet => _hookSet;

    private bool _hookSet; // a hook (count or line) is installed on the state
    private LuaHookFunction? _onDemandHook; // the running straight-line script's hook, installed by ArmHookNow
    private LuaFunction? _armHook;

    /// <summary>The sandbox's <c>arm_hook</c> (called by the load/loadstring shims): installs the pending on-demand hook.</summary>
    internal LuaFunction ArmHookFunction => _armHook ??= Keep<LuaFunction>(ArmHookNow);

    private int ArmHookNow(IntPtr state)
    {
        if (_onDemandHook is { } hook)
        {
            _onDemandHook = null;
            // The main state (where the script runs), and the calling thread when it is another (new coroutines
            // inherit the hook of the thread that creates them).
            lua_sethook(State.Handle, HookPointer(hook), (int)LuaHookMask.Count, HookInstructionCount);
            if (state != State.Handle) lua_sethook(state, HookPointer(hook), (int)LuaHookMask.Count, HookInstructionCount);
            _hookSet = true;
        }
        return 0;
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

    private IntPtr HookPointer(LuaHookFunction hook)
    {
        if (!ReferenceEquals(hook, _hook))
        {
            _hookPointer = Marshal.GetFunctionPointerForDelegate(hook);
            _hook = hook; // the caller keeps the delegate alive (as with KeraLua's SetHook)
        }
        return _hookPointer;
    }

    /// <summary>Makes every new line raise (after a kill, as Redis does: a pcall in the script cannot swallow it for
    /// long). The caller keeps the delegate alive.</summary>
    public void SetLineHook(LuaHookFunction hook)
    {
        State.SetHook(hook, LuaHookMask.Line, 0);
        _hookSet = true;
    }

    /// <summary>Raises a Redis error from a C# function, as Redis 7.0's redis.call does: the Lua error value is the
    /// error text ("-CODE msg" keeps CODE, "msg" gets ERR) as a string, which a pcall in the script receives; the message
    /// handler recognises it (registry <c>kv_call_error</c>) and does not prefix it with ERR again.</summary>
    public static int RaiseError(Lua l, string message)
    {
        PushBytes(l, Encoding.UTF8.GetBytes(ErrorText(message)));
        l.PushCopy(-1);
        l.SetField((int)LuaRegistry.Index, "kv_call_error");
        return l.Error();
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
    public static void PushBytes(Lua l, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            lua_pushlstring(l.Handle, p, (UIntPtr)bytes.Length);
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

    /// <summary>Raises a plain string error prefixed with the position of the calling Lua code (luaL_error).</summary>
    public static int RaiseWithWhere(Lua l, string message)
    {
        l.Where(1);
        l.PushString(message);
        l.Concat(2);
        return l.Error();
    }

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
    private const int AccountLongs = 4 + SmallClasses;
    private const int UsedSlot = 0, LimitSlot = 1, PooledSlot = 2, ClosingSlot = 3, HeadsSlot = 4;

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
        if (delta > 0 && account[UsedSlot] + delta > account[LimitSlot]) return null; // Lua raises "not enough memory"; shrinking never fails
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
        if (delta > 0 && account[UsedSlot] + delta > account[LimitSlot]) return IntPtr.Zero; // Lua raises "not enough memory"; shrinking never fails
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
        State.Dispose();
        DrainPool(_account);
    }

    /// <summary>A sandbox never disposed (the store does not dispose its script host): KeraLua's own finalizer closes the
    /// state, before or after this one runs; either way the pool ends empty and stops caching.</summary>
    ~LuaSandbox() => DrainPool(_account);

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
        G.__redis__err__handler = function(err)
          local i = dbg.getinfo(2, 'nSl')
          if i and i.what == 'C' then i = dbg.getinfo(3, 'nSl') end
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
