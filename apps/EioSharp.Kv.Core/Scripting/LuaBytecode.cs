namespace EioSharp.Kv.Scripting;

/// <summary>Reads a Lua 5.4 binary chunk (<c>string.dump</c> / <c>lua_dump</c>, ldump.c) far enough to tell whether the
/// chunk's own code is straight-line: no loop, no backward jump, no nested function. Such a chunk executes each of its
/// instructions at most once, so it cannot run long in Lua by itself (what it calls can: see
/// <see cref="ScriptHost"/>'s use of it).</summary>
/// <remarks>Anything the reader does not recognise (another Lua version or format, a truncated chunk) answers "may
/// loop": the caller then keeps the count hook, as for any script.</remarks>
internal static class LuaBytecode
{
    // lopcodes.h (Lua 5.4.0-5.4.7): the opcode is the low 7 bits of an instruction.
    private const int OpJmp = 56, OpForLoop = 73, OpTForLoop = 77, OpClosure = 79;
    private const int OffsetSj = (1 << 24) - 1; // OFFSET_sJ: sJ is the 25 bits above the opcode, excess-K

    /// <summary>Whether the main function of <paramref name="dump"/> may execute an instruction more than once or
    /// define a function: a numeric or generic <c>for</c>, a backward jump (<c>while</c>, <c>repeat</c>, a <c>goto</c>
    /// back), a closure; or the chunk is not a Lua 5.4 dump this reader knows.</summary>
    public static bool MayLoop(ReadOnlySpan<byte> dump)
    {
        try
        {
            return MayLoopCore(dump);
        }
        catch (IndexOutOfRangeException)
        {
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return true;
        }
    }

    private static bool MayLoopCore(ReadOnlySpan<byte> d)
    {
        // Header: "\x1bLua", version 0x54, format 0, LUAC_DATA (6), sizes of Instruction/lua_Integer/lua_Number,
        // LUAC_INT (8), LUAC_NUM (8); then the number of upvalues of the main closure.
        if (d.Length < 32 || !d[..4].SequenceEqual("\x1bLua"u8) || d[4] != 0x54 || d[5] != 0) return true;
        if (d[12] != 4 || d[13] != 8 || d[14] != 8) return true;
        int pos = 4 + 2 + 6 + 3 + 8 + 8 + 1;
        SkipString(d, ref pos); // source
        ReadSize(d, ref pos); // linedefined
        ReadSize(d, ref pos); // lastlinedefined
        pos += 3; // numparams, is_vararg, maxstacksize
        long codeLength = ReadSize(d, ref pos);
        if (codeLength <= 0 || codeLength > (d.Length - pos) / 4) return true;
        for (int i = 0; i < codeLength; i++)
        {
            uint instruction = (uint)(d[pos] | d[pos + 1] << 8 | d[pos + 2] << 16 | d[pos + 3] << 24); // little-endian (x86-64, arm64)
            pos += 4;
            int op = (int)(instruction & 0x7F);
            if (op is OpForLoop or OpTForLoop or OpClosure) return true;
            if (op == OpJmp && (int)(instruction >> 7) - OffsetSj < 0) return true;
        }
        // Constants (to reach the nested functions' count): a tag byte each, then the value.
        long constants = ReadSize(d, ref pos);
        for (long i = 0; i < constants; i++)
        {
            byte tag = d[pos++];
            switch (tag)
            {
                case 0 or 1 or 17: break; // nil, false, true
                case 3 or 19: pos += 8; break; // integer, float
                case 4 or 20: SkipString(d, ref pos); break; // short, long string
                default: return true;
            }
        }
        long upvalues = ReadSize(d, ref pos);
        pos += checked((int)upvalues * 3);
        long protos = ReadSize(d, ref pos);
        return protos != 0;
    }

    // ldump.c dumpSize: 7 bits per byte, most significant first, the last byte marked with 0x80.
    private static long ReadSize(ReadOnlySpan<byte> d, ref int pos)
    {
        long x = 0;
        while (true)
        {
            byte b = d[pos++];
            if (x > (long.MaxValue >> 7)) throw new ArgumentOutOfRangeException(nameof(d));
            x = (x << 7) | (long)(b & 0x7F);
            if ((b & 0x80) != 0) return x;
        }
    }

    private static void SkipString(ReadOnlySpan<byte> d, ref int pos)
    {
        long size = ReadSize(d, ref pos); // length + 1; 0: NULL
        if (size > 0) pos = checked(pos + (int)(size - 1));
        if (pos > d.Length) throw new ArgumentOutOfRangeException(nameof(d));
    }
}
