using System.Buffers.Binary;
using KeraLua;

namespace EioSharp.Kv.Scripting;

internal static partial class LuaLibraries
{
    // lua-cmsgpack 0.4.0 (antirez) as Redis ships it: integral numbers as the smallest integer encoding, other numbers as
    // float 32 when exact else float 64, strings as fixstr/str8/str16/str32, tables with keys 1..n as arrays, others as
    // maps; deeper than 16 levels encodes nil.
    private const int MsgPackMaxNesting = 16;

    private static int MsgPackPack(IntPtr s)
    {
        Lua l = Lua.FromIntPtr(s);
        int argc = l.GetTop();
        if (argc == 0) return LuaError(l, "MessagePack pack needs input.");
        var output = new List<byte>();
        for (int i = 1; i <= argc; i++)
        {
            l.PushCopy(i);
            MsgPackEncode(l, output, 0);
            l.Pop(1);
        }
        l.PushBuffer([.. output]);
        return 1;
    }

    private static void MsgPackEncode(Lua l, List<byte> o, int level)
    {
        switch (l.Type(-1))
        {
            case LuaType.String:
            {
                byte[] b = l.ToBuffer(-1, false) ?? [];
                int len = b.Length;
                if (len < 32) o.Add((byte)(0xa0 | len));
                else if (len <= 0xff) o.AddRange([0xd9, (byte)len]);
                else if (len <= 0xffff) o.AddRange([0xda, (byte)(len >> 8), (byte)len]);
                else o.AddRange([0xdb, (byte)(len >> 24), (byte)(len >> 16), (byte)(len >> 8), (byte)len]);
                o.AddRange(b);
                return;
            }
            case LuaType.Boolean:
                o.Add(l.ToBoolean(-1) ? (byte)0xc3 : (byte)0xc2);
                return;
            case LuaType.Number:
            {
                if (l.IsInteger(-1))
                {
                    MsgPackInt(o, l.ToInteger(-1));
                    return;
                }
                double d = l.ToNumber(-1);
                if (d == Math.Floor(d) && d >= long.MinValue && d < 9.2233720368547758E18)
                {
                    MsgPackInt(o, (long)d);
                }
                else if ((double)(float)d == d || double.IsNaN(d))
                {
                    o.Add(0xca);
                    Span<byte> b = stackalloc byte[4];
                    BinaryPrimitives.WriteSingleBigEndian(b, (float)d);
                    o.AddRange(b);
                }
                else
                {
                    o.Add(0xcb);
                    Span<byte> b = stackalloc byte[8];
                    BinaryPrimitives.WriteDoubleBigEndian(b, d);
                    o.AddRange(b);
                }
                return;
            }
            case LuaType.Table when level < MsgPackMaxNesting && l.CheckStack(4):
                break;
            default:
                o.Add(0xc0);
                return;
        }
        // An array when its keys are exactly 1..n.
        long count = 0, max = 0;
        bool array = true;
        l.PushNil();
        while (l.Next(-2))
        {
            l.Pop(1);
            count++;
            if (l.Type(-1) == LuaType.Number)
            {
                double k = l.ToNumber(-1);
                if (k == Math.Floor(k) && k > 0)
                {
                    if (k > max) max = (long)k;
                    continue;
                }
            }
            array = false;
            l.Pop(1);
            break;
        }
        if (array && max == count)
        {
            MsgPackHeader(o, (int)max, 0x90, 0xdc, 0xdd, 15);
            for (long i = 1; i <= max; i++)
            {
                l.RawGetInteger(-1, i);
                MsgPackEncode(l, o, level + 1);
                l.Pop(1);
            }
            return;
        }
        int pairs = 0;
        l.PushNil();
        while (l.Next(-2))
        {
            pairs++;
            l.Pop(1);
        }
        MsgPackHeader(o, pairs, 0x80, 0xde, 0xdf, 15);
        l.PushNil();
        while (l.Next(-2))
        {
            l.PushCopy(-2);
            MsgPackEncode(l, o, level + 1);
            l.Pop(1);
            MsgPackEncode(l, o, level + 1);
            l.Pop(1);
        }
    }

    private static void MsgPackHeader(List<byte> o, int n, byte fix, byte b16, byte b32, int fixMax)
    {
        if (n <= fixMax) o.Add((byte)(fix | n));
        else if (n <= 0xffff) o.AddRange([b16, (byte)(n >> 8), (byte)n]);
        else o.AddRange([b32, (byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n]);
    }

    private static void MsgPackInt(List<byte> o, long n)
    {
        Span<byte> b = stackalloc byte[9];
        if (n >= 0)
        {
            if (n <= 127) { o.Add((byte)n); return; }
            if (n <= 0xff) { o.AddRange([0xcc, (byte)n]); return; }
            if (n <= 0xffff) { b[0] = 0xcd; BinaryPrimitives.WriteUInt16BigEndian(b[1..], (ushort)n); o.AddRange(b[..3]); return; }
            if (n <= 0xffffffffL) { b[0] = 0xce; BinaryPrimitives.WriteUInt32BigEndian(b[1..], (uint)n); o.AddRange(b[..5]); return; }
            b[0] = 0xcf;
            BinaryPrimitives.WriteUInt64BigEndian(b[1..], (ulong)n);
            o.AddRange(b);
            return;
        }
        if (n >= -32) { o.Add((byte)(sbyte)n); return; }
        if (n >= sbyte.MinValue) { o.AddRange([0xd0, (byte)(sbyte)n]); return; }
        if (n >= short.MinValue) { b[0] = 0xd1; BinaryPrimitives.WriteInt16BigEndian(b[1..], (short)n); o.AddRange(b[..3]); return; }
        if (n >= int.MinValue) { b[0] = 0xd2; BinaryPrimitives.WriteInt32BigEndian(b[1..], (int)n); o.AddRange(b[..5]); return; }
        b[0] = 0xd3;
        BinaryPrimitives.WriteInt64BigEndian(b[1..], n);
        o.AddRange(b);
    }

    private static int MsgPackUnpack(IntPtr s, bool one)
    {
        Lua l = Lua.FromIntPtr(s);
        if (!LuaSandbox.CheckBytes(l, 1, out byte[] data, out int error)) return error;
        long offset = 0;
        if (one && !LuaSandbox.OptInteger(l, 2, 0, out offset, out error)) return error;
        int pos = (int)Math.Max(0, offset);
        int top = l.GetTop();
        int n = 0;
        if (one) l.PushNil(); // replaced by the next offset
        while (pos < data.Length)
        {
            if (!l.CheckStack(2)) return LuaError(l, "too many values to unpack");
            string? e = MsgPackDecode(l, data, ref pos, 0);
            if (e == NaNKey) return LuaSandbox.ReturnError(l, e); // what lua_rawset raised, without a position
            if (e is not null) return LuaError(l, e);
            n++;
            if (one) break;
        }
        if (one)
        {
            l.PushInteger(pos < data.Length ? pos : -1);
            l.Replace(top + 1);
            return n + 1;
        }
        return n;
    }

    private const string NaNKey = "table index is NaN";

    private static string? MsgPackDecode(Lua l, byte[] d, ref int pos, int depth)
    {
        const string missing = "Missing bytes in input.";
        const string bad = "Bad data format in input.";
        if (pos >= d.Length) return missing;
        if (depth > 1000 || !l.CheckStack(4)) return bad;
        byte c = d[pos++];
        int need(int k) => k;
        if (c <= 0x7f) { l.PushInteger(c); return null; }
        if (c >= 0xe0) { l.PushInteger((sbyte)c); return null; }
        if ((c & 0xe0) == 0xa0) return Str(l, d, ref pos, c & 0x1f);
        if ((c & 0xf0) == 0x90) return Arr(l, d, ref pos, c & 0x0f, depth);
        if ((c & 0xf0) == 0x80) return Map(l, d, ref pos, c & 0x0f, depth);
        int size = c switch
        {
            0xcc or 0xd0 or 0xd9 or 0xc4 => 1,
            0xcd or 0xd1 or 0xda or 0xc5 or 0xdc or 0xde => 2,
            0xce or 0xd2 or 0xdb or 0xc6 or 0xdd or 0xdf or 0xca => 4,
            0xcf or 0xd3 or 0xcb => 8,
            _ => 0,
        };
        if (pos + need(size) > d.Length) return missing;
        ReadOnlySpan<byte> v = d.AsSpan(pos, size);
        pos += size;
        switch (c)
        {
            case 0xc0: l.PushNil(); return null;
            case 0xc2: l.PushBoolean(false); return null;
            case 0xc3: l.PushBoolean(true); return null;
            case 0xca: l.PushNumber(BinaryPrimitives.ReadSingleBigEndian(v)); return null;
            case 0xcb: l.PushNumber(BinaryPrimitives.ReadDoubleBigEndian(v)); return null;
            case 0xcc: l.PushInteger(v[0]); return null;
            case 0xcd: l.PushInteger(BinaryPrimitives.ReadUInt16BigEndian(v)); return null;
            case 0xce: l.PushInteger(BinaryPrimitives.ReadUInt32BigEndian(v)); return null;
            case 0xcf:
            {
                ulong u = BinaryPrimitives.ReadUInt64BigEndian(v);
                if (u > long.MaxValue) l.PushNumber(u);
                else l.PushInteger((long)u);
                return null;
            }
            case 0xd0: l.PushInteger((sbyte)v[0]); return null;
            case 0xd1: l.PushInteger(BinaryPrimitives.ReadInt16BigEndian(v)); return null;
            case 0xd2: l.PushInteger(BinaryPrimitives.ReadInt32BigEndian(v)); return null;
            case 0xd3: l.PushInteger(BinaryPrimitives.ReadInt64BigEndian(v)); return null;
            case 0xd9: case 0xc4: return Str(l, d, ref pos, v[0]);
            case 0xda: case 0xc5: return Str(l, d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(v));
            case 0xdb: case 0xc6: return Str(l, d, ref pos, checked((int)BinaryPrimitives.ReadUInt32BigEndian(v)));
            case 0xdc: return Arr(l, d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(v), depth);
            case 0xdd: return Arr(l, d, ref pos, (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(v), int.MaxValue), depth);
            case 0xde: return Map(l, d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(v), depth);
            case 0xdf: return Map(l, d, ref pos, (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(v), int.MaxValue), depth);
            default: return bad;
        }
    }

    private static string? Str(Lua l, byte[] d, ref int pos, int len)
    {
        if ((long)pos + len > d.Length) return "Missing bytes in input.";
        l.PushBuffer(d.AsSpan(pos, len).ToArray());
        pos += len;
        return null;
    }

    private static string? Arr(Lua l, byte[] d, ref int pos, int n, int depth)
    {
        if (n > d.Length - pos) return "Missing bytes in input."; // each element takes at least one byte
        l.CreateTable(n, 0);
        for (int i = 1; i <= n; i++)
        {
            string? e = MsgPackDecode(l, d, ref pos, depth + 1);
            if (e is not null) return e;
            l.RawSetInteger(-2, i);
        }
        return null;
    }

    private static string? Map(Lua l, byte[] d, ref int pos, int n, int depth)
    {
        if (n > d.Length - pos) return "Missing bytes in input.";
        l.CreateTable(0, n);
        for (int i = 0; i < n; i++)
        {
            string? e = MsgPackDecode(l, d, ref pos, depth + 1) ?? MsgPackDecode(l, d, ref pos, depth + 1);
            if (e is not null) return e;
            if (l.IsNil(-2))
            {
                l.Pop(2); // a nil key cannot be stored
                continue;
            }
            if (IsNaNKey(l, -2)) return NaNKey; // lua_rawset would raise
            l.RawSet(-3);
        }
        return null;
    }
}
