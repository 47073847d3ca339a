using System.Buffers.Binary;
using KeraLua;

namespace EioSharp.Kv.Scripting;

internal static partial class LuaLibraries
{
    // struct.c (Roberto Ierusalimschy), as Redis ships it: '>' '<' '!n' 'x' 'b' 'B' 'h' 'H' 'l' 'L' 'T' 'i[n]' 'I[n]'
    // 'c[n]' 's' 'f' 'd' ' '. Native defaults of x86-64: little endian, alignment 1, long and size_t of 8 bytes.
    private const int StructMaxIntSize = 32;
    private const int StructDefaultAlign = 8;

    private struct StructHeader
    {
        public bool BigEndian;
        public int Align;
    }

    /// <summary>C's (long long) of a double on x86-64: out of range and NaN give long.MinValue.</summary>
    internal static long CInt64(double d) =>
        double.IsNaN(d) || d >= 9.2233720368547758E18 || d < -9.2233720368547758E18 ? long.MinValue : (long)d;

    private static int ReadNumber(string fmt, ref int i, int dflt)
    {
        if (i >= fmt.Length || !char.IsAsciiDigit(fmt[i])) return dflt;
        int a = 0;
        while (i < fmt.Length && char.IsAsciiDigit(fmt[i]) && a < 100_000_000) a = a * 10 + (fmt[i++] - '0');
        return a;
    }

    /// <summary>Reads one option; returns its size (0 for options without one); a bad option sets
    /// <paramref name="error"/> (luaL_error's text, without the position).</summary>
    private static int StructOption(string fmt, ref int i, ref StructHeader h, out char opt, out string? error)
    {
        error = null;
        opt = fmt[i++];
        switch (opt)
        {
            case 'b': case 'B': case 'x': return 1;
            case 'h': case 'H': return 2;
            case 'l': case 'L': case 'T': return 8;
            case 'f': return 4;
            case 'd': return 8;
            case 'c': return ReadNumber(fmt, ref i, 1);
            case 'i':
            case 'I':
            {
                int sz = ReadNumber(fmt, ref i, 4);
                if (sz > StructMaxIntSize) error = $"integral size {sz} is larger than limit of {StructMaxIntSize}";
                return sz;
            }
            case 's': case ' ': return 0;
            case '<': h.BigEndian = false; return 0;
            case '>': h.BigEndian = true; return 0;
            case '!':
            {
                int a = ReadNumber(fmt, ref i, StructDefaultAlign);
                if (a == 0 || (a & (a - 1)) != 0) error = $"alignment {a} is not a power of 2";
                h.Align = a;
                return 0;
            }
            default:
                error = $"invalid format option '{opt}'";
                return 0;
        }
    }

    private static int StructGetToAlign(int len, in StructHeader h, char opt, int size)
    {
        if (size == 0 || opt == 'c') return 0;
        if (size > h.Align) size = h.Align;
        return (size - (len & (size - 1))) & (size - 1);
    }

    /// <summary>luaL_error: the message gets the position of the calling script (returned: raised as the function returns).</summary>
    private static int LuaError(Lua l, string message) => LuaSandbox.RaiseWithWhere(l, message);

    private static void PutInteger(List<byte> output, ulong value, bool bigEndian, int size)
    {
        Span<byte> b = stackalloc byte[StructMaxIntSize];
        for (int i = 0; i < size; i++)
        {
            byte v = i < 8 ? (byte)(value >> (8 * i)) : (byte)((long)value < 0 ? 0xFF : 0);
            b[bigEndian ? size - 1 - i : i] = v;
        }
        output.AddRange(b[..size]);
    }

    private static int StructPack(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!LuaSandbox.CheckString(l, 1, out string fmt, out int error)) return error;
        var h = new StructHeader { Align = 1 };
        int arg = 2;
        var output = new List<byte>();
        int i = 0;
        while (i < fmt.Length)
        {
            int size = StructOption(fmt, ref i, ref h, out char opt, out string? optionError);
            if (optionError is not null) return LuaError(l, optionError);
            int toAlign = StructGetToAlign(output.Count, h, opt, size);
            for (int k = 0; k < toAlign; k++) output.Add(0);
            switch (opt)
            {
                case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I':
                {
                    ulong v;
                    if (l.IsInteger(arg))
                    {
                        v = (ulong)l.ToInteger(arg);
                    }
                    else
                    {
                        // struct.c casts the double: (long)n when negative, (unsigned long)n otherwise; x86-64 gives
                        // 0x8000000000000000 for what does not fit (C# saturates instead).
                        if (!LuaSandbox.CheckNumber(l, arg, out double n, out error)) return error;
                        v = n < 0 ? (ulong)CInt64(n) : n < 1.8446744073709552E19 ? (ulong)n : 0x8000000000000000UL;
                    }
                    arg++;
                    PutInteger(output, v, h.BigEndian, size);
                    break;
                }
                case 'x':
                    output.Add(0);
                    break;
                case 'f':
                {
                    Span<byte> b = stackalloc byte[4];
                    if (!LuaSandbox.CheckNumber(l, arg++, out double fd, out error)) return error;
                    float f = (float)fd;
                    if (h.BigEndian) BinaryPrimitives.WriteSingleBigEndian(b, f);
                    else BinaryPrimitives.WriteSingleLittleEndian(b, f);
                    output.AddRange(b);
                    break;
                }
                case 'd':
                {
                    Span<byte> b = stackalloc byte[8];
                    if (!LuaSandbox.CheckNumber(l, arg++, out double d, out error)) return error;
                    if (h.BigEndian) BinaryPrimitives.WriteDoubleBigEndian(b, d);
                    else BinaryPrimitives.WriteDoubleLittleEndian(b, d);
                    output.AddRange(b);
                    break;
                }
                case 'c':
                case 's':
                {
                    if (!LuaSandbox.CheckBytes(l, arg, out byte[] str, out error)) return error;
                    int len = str.Length;
                    if (size == 0) size = len;
                    if (len < size) return LuaSandbox.ArgError(l, arg, "string too short");
                    output.AddRange(str.AsSpan(0, size));
                    if (opt == 's')
                    {
                        output.Add(0);
                        size++;
                    }
                    arg++;
                    break;
                }
            }
        }
        l.PushBuffer([.. output]);
        return 1;
    }

    private static int StructUnpack(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!LuaSandbox.CheckString(l, 1, out string fmt, out int error)) return error;
        if (!LuaSandbox.CheckBytes(l, 2, out byte[] data, out error)) return error;
        if (!LuaSandbox.OptInteger(l, 3, 1, out long init, out error)) return error;
        if (init < 1) return LuaSandbox.ArgError(l, 3, "offset must be 1 or greater");
        int pos = (int)Math.Min(init - 1, int.MaxValue);
        var h = new StructHeader { Align = 1 };
        int n = 0;
        int i = 0;
        while (i < fmt.Length)
        {
            int size = StructOption(fmt, ref i, ref h, out char opt, out string? optionError);
            if (optionError is not null) return LuaError(l, optionError);
            pos += StructGetToAlign(pos, h, opt, size);
            if ((long)pos + size > data.Length) return LuaSandbox.ArgError(l, 2, "data string too short");
            if (!l.CheckStack(2)) return LuaError(l, "stack overflow (too many results)"); // luaL_checkstack's text
            n++;
            switch (opt)
            {
                case 'b': case 'B': case 'h': case 'H': case 'l': case 'L': case 'T': case 'i': case 'I':
                {
                    ulong v = 0;
                    for (int k = 0; k < size && k < 8; k++)
                    {
                        byte b = data[pos + (h.BigEndian ? size - 1 - k : k)];
                        v |= (ulong)b << (8 * k);
                    }
                    if (char.IsLower(opt) && size < 8 && size > 0)
                    {
                        int shift = 64 - 8 * size;
                        l.PushInteger((long)(v << shift) >> shift);
                    }
                    else if (!char.IsLower(opt) && v > long.MaxValue)
                    {
                        l.PushNumber(v);
                    }
                    else
                    {
                        l.PushInteger((long)v);
                    }
                    break;
                }
                case 'x':
                    n--;
                    break;
                case 'f':
                {
                    var span = data.AsSpan(pos, 4);
                    l.PushNumber(h.BigEndian ? BinaryPrimitives.ReadSingleBigEndian(span) : BinaryPrimitives.ReadSingleLittleEndian(span));
                    break;
                }
                case 'd':
                {
                    var span = data.AsSpan(pos, 8);
                    l.PushNumber(h.BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(span) : BinaryPrimitives.ReadDoubleLittleEndian(span));
                    break;
                }
                case 'c':
                {
                    if (size == 0)
                    {
                        if (n == 1 || !l.IsNumber(-1)) return LuaError(l, "format 'c0' needs a previous size");
                        size = (int)l.ToInteger(-1);
                        l.Pop(1);
                        n--;
                        if ((long)pos + size > data.Length) return LuaSandbox.ArgError(l, 2, "data string too short");
                    }
                    l.PushBuffer(data.AsSpan(pos, size).ToArray());
                    break;
                }
                case 's':
                {
                    int e = Array.IndexOf(data, (byte)0, pos);
                    if (e < 0) return LuaSandbox.ArgError(l, 2, "unfinished string in data");
                    size = e - pos + 1;
                    l.PushBuffer(data.AsSpan(pos, size - 1).ToArray());
                    break;
                }
                default:
                    n--;
                    break;
            }
            pos += size;
        }
        l.PushInteger(pos + 1);
        return n + 1;
    }

    private static int StructSize(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!LuaSandbox.CheckString(l, 1, out string fmt, out int error)) return error;
        var h = new StructHeader { Align = 1 };
        long pos = 0;
        int i = 0;
        while (i < fmt.Length)
        {
            int size = StructOption(fmt, ref i, ref h, out char opt, out string? optionError);
            if (optionError is not null) return LuaError(l, optionError);
            pos += StructGetToAlign((int)pos, h, opt, size);
            if (opt == 's' || (opt == 'c' && size == 0)) return LuaSandbox.ArgError(l, 1, "options 'c0' - 's' have undefined sizes");
            pos += size;
        }
        l.PushInteger(pos);
        return 1;
    }
}
