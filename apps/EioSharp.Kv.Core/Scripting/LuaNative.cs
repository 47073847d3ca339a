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

    /// <summary>Pushes a slot's metatable, if it has one: a read.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_getmetatable(IntPtr luaState, int index);

    /// <summary>The next key and value of a table (raw, no metamethod, no allocation); the key on the top must be one
    /// of the table's or nil.</summary>
    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    [SuppressGCTransition]
    internal static extern int lua_next(IntPtr luaState, int index);

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
}
