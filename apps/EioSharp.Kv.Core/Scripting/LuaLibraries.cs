using System.Globalization;
using KeraLua;

namespace EioSharp.Kv.Scripting;

/// <summary>The libraries Redis scripts rely on, in C#: <c>bit</c> (LuaBitOp), <c>struct</c>, <c>cjson</c>,
/// <c>cmsgpack</c>; and the two functions that make globals read-only.</summary>
internal static partial class LuaLibraries
{
    /// <summary>__newindex of read-only tables: "Attempt to modify a readonly table".</summary>
    public static readonly LuaFunction ReadonlyError = static s => LuaSandbox.RaiseWithWhere(Lua.FromIntPtr(s), "Attempt to modify a readonly table");

    /// <summary><c>rawset</c> of the sandbox: Lua's, except on the read-only tables (the globals, the libraries, the
    /// string metatable; registry <c>kv_protected</c>), where it fails as Redis 7.0's does ("Attempt to modify a readonly
    /// table", no position prefix). Without it a script could store a function into <c>_G</c> or a library that every
    /// later script would see (and run without the count hook: <see cref="LuaBytecode"/>).</summary>
    public static readonly LuaFunction RawSet = static s =>
    {
        Lua l = Lua.FromIntPtr(s);
        if (l.Type(1) != LuaType.Table) return LuaSandbox.TypeError(l, 1, "table");
        if (l.Type(2) == LuaType.None) return LuaSandbox.ArgError(l, 2, "value expected");
        if (l.Type(3) == LuaType.None) return LuaSandbox.ArgError(l, 3, "value expected");
        l.SetTop(3);
        l.GetField((int)LuaRegistry.Index, "kv_protected"); // the registry has no metatable
        l.PushCopy(1);
        bool isProtected = l.RawGet(-2) != LuaType.Nil;
        l.Pop(2);
        if (isProtected) return LuaSandbox.ReturnError(l, "Attempt to modify a readonly table");
        // What lua_rawset would raise (luaH_newkey), returned instead.
        if (l.Type(2) == LuaType.Nil) return LuaSandbox.ReturnError(l, "table index is nil");
        if (IsNaNKey(l, 2)) return LuaSandbox.ReturnError(l, "table index is NaN");
        l.RawSet(1);
        return 1;
    };

    /// <summary>Whether the value at <paramref name="index"/> is a float NaN (a table key Lua refuses).</summary>
    internal static bool IsNaNKey(Lua l, int index) => l.Type(index) == LuaType.Number && !l.IsInteger(index) && double.IsNaN(l.ToNumber(index));

    /// <summary>__index of the globals: reading a global that does not exist is an error, as in Redis.</summary>
    public static readonly LuaFunction NonexistentGlobal = static s =>
    {
        Lua l = Lua.FromIntPtr(s);
        string name = l.IsStringOrNumber(2) ? l.ToString(2, false) ?? "" : "?";
        return LuaSandbox.RaiseWithWhere(l, $"Script attempted to access nonexistent global variable '{name}'");
    };

    /// <summary>Registers the libraries as globals of <paramref name="sb"/> (before its setup makes them read-only).</summary>
    public static void Register(LuaSandbox sb)
    {
        Lua l = sb.State;
        sb.PushFunction(ReadonlyError);
        l.SetGlobal("__kv_readonly_error");
        sb.PushFunction(NonexistentGlobal);
        l.SetGlobal("__kv_nonexistent_global");
        sb.PushFunction(RawSet);
        l.SetGlobal("__kv_rawset");
        sb.PushFunction(sb.ArmHookFunction);
        l.SetGlobal("__kv_arm_hook");

        l.NewTable();
        sb.SetFunction("tobit", s => BitUnary(s, static x => x));
        sb.SetFunction("bnot", s => BitUnary(s, static x => ~x));
        sb.SetFunction("bswap", s => BitUnary(s, static x => (int)System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)x)));
        sb.SetFunction("band", s => BitFold(s, static (a, b) => a & b));
        sb.SetFunction("bor", s => BitFold(s, static (a, b) => a | b));
        sb.SetFunction("bxor", s => BitFold(s, static (a, b) => a ^ b));
        sb.SetFunction("lshift", s => BitShift(s, static (x, n) => x << n));
        sb.SetFunction("rshift", s => BitShift(s, static (x, n) => (int)((uint)x >> n)));
        sb.SetFunction("arshift", s => BitShift(s, static (x, n) => x >> n));
        sb.SetFunction("rol", s => BitShift(s, static (x, n) => (int)uint.RotateLeft((uint)x, n)));
        sb.SetFunction("ror", s => BitShift(s, static (x, n) => (int)uint.RotateRight((uint)x, n)));
        sb.SetFunction("tohex", BitToHex);
        l.SetGlobal("bit");

        l.NewTable();
        sb.SetFunction("pack", StructPack);
        sb.SetFunction("unpack", StructUnpack);
        sb.SetFunction("size", StructSize);
        l.SetGlobal("struct");

        l.NewTable();
        sb.SetFunction("encode", CJsonEncode);
        sb.SetFunction("decode", CJsonDecode);
        l.PushLightUserData(IntPtr.Zero);
        l.SetField(-2, "null");
        l.PushString("cjson");
        l.SetField(-2, "_NAME");
        l.PushString("2.1.0");
        l.SetField(-2, "_VERSION");
        foreach (string option in new[] { "encode_sparse_array", "encode_max_depth", "decode_max_depth", "encode_number_precision", "encode_keep_buffer", "encode_invalid_numbers", "decode_invalid_numbers" })
        {
            sb.SetFunction(option, static s => 0); // accepted, no effect
        }
        l.SetGlobal("cjson");

        l.NewTable();
        sb.SetFunction("pack", MsgPackPack);
        sb.SetFunction("unpack", s => MsgPackUnpack(s, one: false));
        sb.SetFunction("unpack_one", s => MsgPackUnpack(s, one: true));
        sb.SetFunction("unpack_limit", s => MsgPackUnpack(s, one: false));
        l.PushString("lua-cmsgpack");
        l.SetField(-2, "_NAME");
        l.PushString("lua-cmsgpack 0.4.0");
        l.SetField(-2, "_VERSION");
        l.SetGlobal("cmsgpack");
    }

    // ------------------------------------------------------------------ bit (LuaBitOp semantics: 32-bit, signed results)

    /// <summary>Argument <paramref name="index"/> as LuaBitOp's 32-bit value; false with the type error pushed
    /// (<c>return error</c>).</summary>
    private static bool ToBit(Lua l, int index, out int value, out int error)
    {
        error = 0;
        if (l.IsInteger(index))
        {
            value = unchecked((int)l.ToInteger(index));
            return true;
        }
        value = 0;
        if (!LuaSandbox.CheckNumber(l, index, out double d, out error)) return false;
        // LuaBitOp: x + 2^52 + 2^51 keeps the low 32 bits of x rounded to nearest even.
        double r = Math.Round(d, MidpointRounding.ToEven);
        value = double.IsNaN(r) || double.IsInfinity(r) ? int.MinValue : unchecked((int)(long)Math.IEEERemainder(r, 4294967296.0));
        return true;
    }

    private static int BitUnary(IntPtr s, Func<int, int> f)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!ToBit(l, 1, out int x, out int error)) return error;
        l.PushInteger(f(x));
        return 1;
    }

    private static int BitFold(IntPtr s, Func<int, int, int> f)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!ToBit(l, 1, out int acc, out int error)) return error;
        for (int i = 2; i <= l.GetTop(); i++)
        {
            if (!ToBit(l, i, out int v, out error)) return error;
            acc = f(acc, v);
        }
        l.PushInteger(acc);
        return 1;
    }

    private static int BitShift(IntPtr s, Func<int, int, int> f)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!ToBit(l, 1, out int x, out int error) || !ToBit(l, 2, out int n, out error)) return error;
        l.PushInteger(f(x, n & 31));
        return 1;
    }

    private static int BitToHex(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!ToBit(l, 1, out int xs, out int error)) return error;
        uint x = (uint)xs;
        int n = 8;
        if (!l.IsNoneOrNil(2) && !ToBit(l, 2, out n, out error)) return error;
        bool upper = n < 0;
        if (upper) n = -n;
        if (n > 8) n = 8;
        string hex = x.ToString(upper ? "X8" : "x8", CultureInfo.InvariantCulture);
        l.PushString(hex[(8 - n)..]);
        return 1;
    }
}
