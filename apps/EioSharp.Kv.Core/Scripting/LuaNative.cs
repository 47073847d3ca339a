using System.Runtime.InteropServices;

namespace EioSharp.Kv.Scripting;

/// <summary>The Lua C API functions the scripting host calls directly rather than through KeraLua's <c>Lua</c> object:
/// one declaration each, shared by <see cref="LuaSandbox"/> and <see cref="ScriptHost"/> (used with <c>using static</c>).</summary>
/// <remarks>
/// Most are declared with <see cref="SuppressGCTransitionAttribute"/>, which KeraLua's own imports lack: each of them reads
/// or writes the stack or a table slot only, with no allocation (so no GC step, which could run a finalizer that calls
/// into managed code), no metamethod and no error (so no <c>longjmp</c> through managed frames), and returns at once. The
/// comment on each says why it qualifies, and under what condition its callers must keep: a call outside it would run
/// native code that may re-enter the runtime without the transition. Those that allocate or install callbacks keep the
/// transition. <b>Thread safety</b>: as the state's; the store owner only.
/// </remarks>
internal static unsafe class LuaNative
{
    private const string Library = "lua54";

    // ---------------------------------------------------------------- without the GC transition

    /// <summary>The index of the top slot (the number of values on the stack): a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_gettop(IntPtr luaState);

    /// <summary>Sets the top; this host only removes slots with it and never marks a slot to-be-closed, so no
    /// <c>__close</c> runs.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern void lua_settop(IntPtr luaState, int index);

    /// <summary>The type of a slot (<c>LUA_T*</c>): a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_type(IntPtr luaState, int index);

    /// <summary>Copies a slot to the top (the caller leaves room on the stack).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern void lua_pushvalue(IntPtr luaState, int index);

    /// <summary>Pushes nil (the caller leaves room on the stack).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern void lua_pushnil(IntPtr luaState);

    /// <summary>Pushes an integer: writes a stack slot only (the caller leaves room on the stack).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern void lua_pushinteger(IntPtr luaState, long n);

    /// <summary>Whether a slot holds an integer: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_isinteger(IntPtr luaState, int index);

    /// <summary>A slot's integer value; <paramref name="isNumber"/> may be null: a read (no string conversion happens
    /// for a slot <see cref="lua_isinteger"/> accepted).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern long lua_tointegerx(IntPtr luaState, int index, int* isNumber);

    /// <summary>A slot's number value, a numeric string converted (no allocation); <paramref name="isNumber"/> may be
    /// null: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern double lua_tonumberx(IntPtr luaState, int index, int* isNumber);

    /// <summary>The bytes of the string in a slot. Call it only on strings: on a number it converts the slot in place,
    /// which allocates.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern byte* lua_tolstring(IntPtr luaState, int index, UIntPtr* length);

    /// <summary>A full userdata's or light userdata's address: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern IntPtr lua_touserdata(IntPtr luaState, int index);

    /// <summary>A raw read of a table slot by integer key (the registry's <c>luaL_ref</c> slots, KEYS and ARGV): no
    /// metamethod, no allocation (the caller leaves room on the stack).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_rawgeti(IntPtr luaState, int index, long n);

    /// <summary>A raw read of a table slot by the key on the top: no metamethod, no allocation.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_rawget(IntPtr luaState, int index);

    /// <summary>A raw store by integer key. Only into a key that holds a value already: <c>luaH_setint</c> then finds
    /// its slot (no <c>luaH_newkey</c>, so no allocation).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern void lua_rawseti(IntPtr luaState, int index, long n);

    /// <summary>Pops a table (or nil) and makes it the metatable of the value at <paramref name="index"/>; raises no
    /// error (it may free dead objects through the allocator while the collector sweeps: no SuppressGCTransition).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern int lua_setmetatable(IntPtr luaState, int index);

    /// <summary>Pushes a slot's metatable, if it has one: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_getmetatable(IntPtr luaState, int index);

    /// <summary>The next key and value of a table (raw, no metamethod, no allocation); the key on the top must be one
    /// of the table's or nil.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_next(IntPtr luaState, int index);

    /// <summary>Pushes a light userdata: writes a stack slot only (the caller leaves room on the stack).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern void lua_pushlightuserdata(IntPtr luaState, IntPtr p);

    /// <summary>The state's allocator and its user data (the sandbox's account block): a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern IntPtr lua_getallocf(IntPtr luaState, IntPtr* ud);

    /// <summary>The installed hook function: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern IntPtr lua_gethook(IntPtr luaState);

    /// <summary>Whether two slots hold the same value without metamethods: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_rawequal(IntPtr luaState, int index1, int index2);

    /// <summary><c>lua_gc</c> for <see cref="GcIsRunning"/> only: reads a flag of the collector (no collection, no
    /// allocation, no error); -1 while a finalizer runs or the state is closing. Called from the allocator.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl, EntryPoint = "lua_gc")]
    [SuppressGCTransition]
    internal static extern int lua_gc_flag(IntPtr luaState, int what);

    internal const int GcCollect = 2, GcIsRunning = 9; // LUA_GCCOLLECT, LUA_GCISRUNNING

    /// <summary>The hook mask of a thread: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_gethookmask(IntPtr luaState);

    /// <summary>The hook count of a thread: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_gethookcount(IntPtr luaState);

    /// <summary>A slot's value as a pointer (functions, tables, threads): a read, for identity only.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern IntPtr lua_topointer(IntPtr luaState, int index);

    // ---------------------------------------------------------------- with the GC transition

    /// <summary>Pushes a copy of <paramref name="length"/> bytes as a string: allocates through the state's allocator
    /// (managed code) and may run a GC step or raise a memory error.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern IntPtr lua_pushlstring(IntPtr luaState, byte* s, UIntPtr length);

    /// <summary>Pushes a C closure with <paramref name="upvalues"/> values from the top as its upvalues: allocates.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern void lua_pushcclosure(IntPtr luaState, delegate* unmanaged[Cdecl]<IntPtr, int> function, int upvalues);

    /// <summary>Installs (or, with a null hook, removes) the debug hook.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern void lua_sethook(IntPtr luaState, IntPtr hook, int mask, int count);

    /// <summary>Replaces the state's allocator.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern void lua_setallocf(IntPtr luaState, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, UIntPtr, UIntPtr, IntPtr> allocator, IntPtr ud);

    /// <summary>A full collection (<see cref="GcCollect"/>): may run finalizers (Lua code, each in its own protected
    /// call: an error in one is not raised here).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl, EntryPoint = "lua_gc")]
    internal static extern int lua_gc_collect(IntPtr luaState, int what);

    /// <summary>Pushes a new thread and returns it: allocates.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern IntPtr lua_newthread(IntPtr luaState);

    /// <summary>Moves <paramref name="n"/> values from one thread's stack to another's (same state).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern void lua_xmove(IntPtr from, IntPtr to, int n);

    /// <summary>Pushes the thread itself; returns 1 on the main thread.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern int lua_pushthread(IntPtr luaState);

    /// <summary>A raw store of the value on top at the key below it into the table at <paramref name="index"/>: may
    /// allocate (the callers store only non-nil, non-NaN keys).</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern void lua_rawset(IntPtr luaState, int index);

    /// <summary>Fills the private part of <paramref name="ar"/> (a lua_Debug) for stack level <paramref name="level"/>;
    /// 0 when there is no such level: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern int lua_getstack(IntPtr luaState, int level, byte* ar);

    /// <summary>Fills <paramref name="ar"/>'s fields named by <paramref name="what"/> (ASCII, NUL-terminated); "f" pushes
    /// the function.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    internal static extern int lua_getinfo(IntPtr luaState, byte* what, byte* ar);
}
