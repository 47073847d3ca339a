using System.Numerics;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    // Redis's texts (bitops.c, 7.0).
    private const string BitOffsetError = "ERR bit offset is not an integer or out of range";
    private const string BitValueError = "ERR bit is not an integer or out of range";
    private const string BitArgumentError = "ERR The bit argument must be 1 or 0.";
    private const string BitopNotError = "ERR BITOP NOT must be called with a single source key.";
    private const string BitfieldTypeError = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    private const string BitfieldOverflowError = "ERR Invalid OVERFLOW type specified";
    private const string BitfieldReadOnlyError = "ERR BITFIELD_RO only supports the GET subcommand";

    /// <summary>The Bitmap commands (and LCS, which also works on string values; its handler is in KvStore.Lcs.cs).</summary>
    internal static readonly KvCommandInfo[] BitmapCommands =
    [
        KvCommandTable.Data("setbit", 4, W, 1, 1, 1, static (s, in c) => s.SetBit(c)),
        KvCommandTable.Data("getbit", 3, R, 1, 1, 1, static (s, in c) => s.GetBit(c)),
        KvCommandTable.Data("bitcount", -2, R, 1, 1, 1, static (s, in c) => s.BitCount(c)),
        KvCommandTable.Data("bitpos", -3, R, 1, 1, 1, static (s, in c) => s.BitPos(c)),
        KvCommandTable.Data("bitop", -4, W, 2, -1, 1, static (s, in c) => s.BitOp(c)),
        KvCommandTable.Data("bitfield", -2, W, 1, 1, 1, static (s, in c) => s.BitField(c, readOnlyCommand: false)),
        KvCommandTable.Data("bitfield_ro", -2, R, 1, 1, 1, static (s, in c) => s.BitField(c, readOnlyCommand: true)),
        KvCommandTable.Data("lcs", -3, R, 1, 2, 1, static (s, in c) => s.Lcs(c)),
    ];

    /// <summary>Redis's <c>getBitOffsetFromArgument</c>: a non-negative bit offset whose byte is below
    /// proto-max-bulk-len; with <paramref name="hash"/>, <c>#n</c> means n * <paramref name="bits"/>.</summary>
    private bool TryGetBitOffset(in Context ctx, int index, bool hash, int bits, out ulong offset)
    {
        offset = 0;
        ReadOnlySpan<byte> text = ctx[index];
        bool useHash = hash && bits > 0 && text.Length > 0 && text[0] == (byte)'#';
        if (!RespNumbers.TryParseInt64(useHash ? text[1..] : text, out long value))
        {
            ctx.Reply.WriteError(BitOffsetError);
            return false;
        }
        if (useHash) value = unchecked(value * bits);
        if (value < 0 || (value >> 3) >= Limits.MaxBulkLength)
        {
            ctx.Reply.WriteError(BitOffsetError);
            return false;
        }
        offset = (ulong)value;
        return true;
    }

    /// <summary>Bytes a string needs so that bit <paramref name="maxBit"/> exists; false (and the proto-max-bulk-len
    /// error) when that is more than an array can hold.</summary>
    private static bool TryGetBitStringLength(in Context ctx, ulong maxBit, out int length)
    {
        ulong bytes = (maxBit >> 3) + 1;
        if (bytes > (ulong)Array.MaxLength)
        {
            length = 0;
            ctx.Reply.WriteError(KvErrors.StringTooLong);
            return false;
        }
        length = (int)bytes;
        return true;
    }

    private void SetBit(in Context ctx)
    {
        if (!TryGetBitOffset(ctx, 2, hash: false, 0, out ulong offset)) return;
        if (!RespNumbers.TryParseInt64(ctx[3], out long on) || (on & ~1L) != 0)
        {
            ctx.Reply.WriteError(BitValueError);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupString(ctx, key, read: false, out KvEntry? e)) return;
        if (!TryGetBitStringLength(ctx, offset, out int needed)) return;
        byte[] old = e is null ? [] : Str(e);
        int byteIndex = (int)(offset >> 3);
        int shift = 7 - (int)(offset & 7);
        int bitValue = byteIndex < old.Length ? (old[byteIndex] >> shift) & 1 : 0;
        // Redis writes (and propagates) only when the key is created, grows, or the bit changes.
        if (e is null || needed > old.Length || bitValue != on)
        {
            var value = new byte[Math.Max(old.Length, needed)];
            old.CopyTo(value, 0);
            value[byteIndex] = (byte)((value[byteIndex] & ~(1 << shift)) | ((int)on << shift));
            SetKey(ctx, key, e, value, -1, keepTtl: true);
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.String, "setbit");
        }
        ctx.Reply.WriteInteger(bitValue);
    }

    private void GetBit(in Context ctx)
    {
        if (!TryGetBitOffset(ctx, 2, hash: false, 0, out ulong offset)) return;
        if (!TryLookupString(ctx, ctx[1], read: true, out KvEntry? e)) return;
        int bitValue = 0;
        if (e is not null)
        {
            byte[] value = Str(e);
            ulong byteIndex = offset >> 3;
            if (byteIndex < (ulong)value.Length) bitValue = (value[(int)byteIndex] >> (7 - (int)(offset & 7))) & 1;
        }
        ctx.Reply.WriteInteger(bitValue);
    }

    /// <summary>Turns a start/end pair (negative from the end) into a clipped range over <paramref name="total"/> units.</summary>
    private static void ClipRange(long total, ref long start, ref long end)
    {
        if (start < 0) start = total + start;
        if (end < 0) end = total + end;
        if (start < 0) start = 0;
        if (end < 0) end = 0;
        if (end >= total) end = total - 1;
    }

    private void BitCount(in Context ctx)
    {
        // Redis's order: the key first (a missing key is 0 whatever the arguments), then the range.
        if (!TryLookupString(ctx, ctx[1], read: true, out KvEntry? e)) return;
        if (e is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        byte[] value = Str(e);
        long startBit, endBit;
        if (ctx.Count is 4 or 5)
        {
            if (!TryGetInt64(ctx, 2, out long start) || !TryGetInt64(ctx, 3, out long end)) return;
            if (start < 0 && end < 0 && start > end)
            {
                ctx.Reply.WriteInteger(0);
                return;
            }
            bool isBit = false;
            if (ctx.Count == 5)
            {
                if (Is(ctx[4], "BIT"u8)) isBit = true;
                else if (!Is(ctx[4], "BYTE"u8))
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
            }
            long total = isBit ? (long)value.Length << 3 : value.Length;
            ClipRange(total, ref start, ref end);
            if (start > end)
            {
                ctx.Reply.WriteInteger(0);
                return;
            }
            startBit = isBit ? start : start << 3;
            endBit = isBit ? end : (end << 3) + 7;
        }
        else if (ctx.Count == 2)
        {
            startBit = 0;
            endBit = ((long)value.Length << 3) - 1;
        }
        else
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        ctx.Reply.WriteInteger(startBit > endBit ? 0 : CountBits(value, startBit, endBit));
    }

    /// <summary>Set bits of <paramref name="value"/> from bit <paramref name="startBit"/> to <paramref name="endBit"/> inclusive.</summary>
    private static long CountBits(byte[] value, long startBit, long endBit)
    {
        int first = (int)(startBit >> 3), last = (int)(endBit >> 3);
        long count = 0;
        ReadOnlySpan<byte> span = value.AsSpan(first, last - first + 1);
        int i = 0;
        for (; i + 8 <= span.Length; i += 8) count += BitOperations.PopCount(BitConverter.ToUInt64(span.Slice(i, 8)));
        for (; i < span.Length; i++) count += BitOperations.PopCount(span[i]);
        // Remove the bits of the edge bytes outside the range (bit 0 is the most significant bit of byte 0).
        int headMask = ~((1 << (8 - (int)(startBit & 7))) - 1) & 0xFF;
        int tailMask = (1 << (7 - (int)(endBit & 7))) - 1;
        count -= BitOperations.PopCount((uint)(value[first] & headMask));
        count -= BitOperations.PopCount((uint)(value[last] & tailMask));
        return count;
    }

    private void BitPos(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long bit)) return;
        if (bit is not (0 or 1))
        {
            ctx.Reply.WriteError(BitArgumentError);
            return;
        }
        if (!TryLookupString(ctx, ctx[1], read: true, out KvEntry? e)) return;
        if (e is null)
        {
            // A missing key is an infinite run of zero bits.
            ctx.Reply.WriteInteger(bit == 1 ? -1 : 0);
            return;
        }
        byte[] value = Str(e);
        long start, end;
        bool isBit = false, endGiven = false;
        if (ctx.Count is 4 or 5 or 6)
        {
            long total = value.Length;
            if (!TryGetInt64(ctx, 3, out start)) return;
            if (ctx.Count == 6)
            {
                if (Is(ctx[5], "BIT"u8)) isBit = true;
                else if (!Is(ctx[5], "BYTE"u8))
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
            }
            if (ctx.Count >= 5)
            {
                if (!TryGetInt64(ctx, 4, out end)) return;
                endGiven = true;
            }
            else
            {
                end = isBit ? (total << 3) + 7 : total - 1;
            }
            if (isBit) total <<= 3;
            ClipRange(total, ref start, ref end);
        }
        else if (ctx.Count == 3)
        {
            start = 0;
            end = value.Length - 1;
        }
        else
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (start > end)
        {
            ctx.Reply.WriteInteger(-1); // an empty range holds neither a 0 nor a 1
            return;
        }
        long startBit = isBit ? start : start << 3;
        long endBit = isBit ? end : (end << 3) + 7;
        long found = FindBit(value, startBit, endBit, bit == 1);
        if (found >= 0) ctx.Reply.WriteInteger(found);
        else if (bit == 1 || endGiven) ctx.Reply.WriteInteger(-1);
        else ctx.Reply.WriteInteger(endBit + 1); // looking for a 0 past the string's end: it is zero-padded
    }

    /// <summary>The first bit equal to <paramref name="one"/> from <paramref name="startBit"/> to <paramref name="endBit"/>, or -1.</summary>
    private static long FindBit(byte[] value, long startBit, long endBit, bool one)
    {
        long pos = startBit;
        byte skip = one ? (byte)0 : (byte)0xFF; // a byte with no bit of the wanted value
        while (pos <= endBit)
        {
            int index = (int)(pos >> 3);
            if ((pos & 7) == 0 && pos + 7 <= endBit && value[index] == skip)
            {
                pos += 8;
                continue;
            }
            int b = (value[index] >> (7 - (int)(pos & 7))) & 1;
            if ((b == 1) == one) return pos;
            pos++;
        }
        return -1;
    }

    private void BitOp(in Context ctx)
    {
        ReadOnlySpan<byte> opName = ctx[1];
        int op;
        if (Is(opName, "AND"u8)) op = 0;
        else if (Is(opName, "OR"u8)) op = 1;
        else if (Is(opName, "XOR"u8)) op = 2;
        else if (Is(opName, "NOT"u8)) op = 3;
        else
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (op == 3 && ctx.Count != 4)
        {
            ctx.Reply.WriteError(BitopNotError);
            return;
        }
        int keyCount = ctx.Count - 3;
        var sources = new byte[keyCount][];
        int maxLength = 0;
        for (int j = 0; j < keyCount; j++)
        {
            if (!TryLookupString(ctx, ctx[j + 3], read: true, out KvEntry? e)) return;
            sources[j] = e is null ? [] : Str(e);
            maxLength = Math.Max(maxLength, sources[j].Length);
        }
        ReadOnlySpan<byte> target = ctx[2];
        if (maxLength > 0)
        {
            var result = new byte[maxLength];
            if (op == 3)
            {
                byte[] source = sources[0];
                for (int i = 0; i < maxLength; i++) result[i] = (byte)~source[i];
            }
            else
            {
                sources[0].CopyTo(result, 0); // bytes past a source's end count as zero
                for (int j = 1; j < keyCount; j++)
                {
                    byte[] source = sources[j];
                    switch (op)
                    {
                        case 0:
                            for (int i = 0; i < maxLength; i++) result[i] &= i < source.Length ? source[i] : (byte)0;
                            break;
                        case 1:
                            for (int i = 0; i < source.Length; i++) result[i] |= source[i];
                            break;
                        default:
                            for (int i = 0; i < source.Length; i++) result[i] ^= source[i];
                            break;
                    }
                }
            }
            SetKey(ctx, target, Lookup(ctx, target), result, -1, keepTtl: false);
            ctx.LogSelf();
            Changed(ctx, target, KvEventClass.String, "set");
        }
        else if (Lookup(ctx, target) is { } existing)
        {
            // Every source is empty or missing: the destination is deleted, like Redis does.
            DeleteKey(ctx, existing);
            ctx.LogSelf();
            Changed(ctx, target, KvEventClass.Generic, "del");
        }
        ctx.Reply.WriteInteger(maxLength);
    }

    private enum BitfieldOverflow
    {
        Wrap,
        Sat,
        Fail,
    }

    private enum BitfieldOpcode
    {
        Get,
        Set,
        IncrBy,
    }

    private readonly record struct BitfieldOp(BitfieldOpcode Opcode, ulong Offset, int Bits, bool Signed, long Value, BitfieldOverflow Overflow);

    /// <summary>Redis's <c>getBitfieldTypeFromArgument</c>: i1..i64 or u1..u63.</summary>
    private static bool TryGetBitfieldType(in Context ctx, int index, out bool signed, out int bits)
    {
        ReadOnlySpan<byte> text = ctx[index];
        signed = false;
        bits = 0;
        if (text.Length == 0 || (text[0] != (byte)'i' && text[0] != (byte)'u') ||
            !RespNumbers.TryParseInt64(text[1..], out long value) || value < 1 || value > (text[0] == (byte)'i' ? 64 : 63))
        {
            ctx.Reply.WriteError(BitfieldTypeError);
            return false;
        }
        signed = text[0] == (byte)'i';
        bits = (int)value;
        return true;
    }

    private void BitField(in Context ctx, bool readOnlyCommand)
    {
        var ops = new List<BitfieldOp>();
        BitfieldOverflow overflow = BitfieldOverflow.Wrap;
        bool readOnly = true;
        ulong highestWrite = 0;
        for (int j = 2; j < ctx.Count; j++)
        {
            int remaining = ctx.Count - j - 1;
            ReadOnlySpan<byte> sub = ctx[j];
            BitfieldOpcode opcode;
            if (Is(sub, "GET"u8) && remaining >= 2) opcode = BitfieldOpcode.Get;
            else if (Is(sub, "SET"u8) && remaining >= 3) opcode = BitfieldOpcode.Set;
            else if (Is(sub, "INCRBY"u8) && remaining >= 3) opcode = BitfieldOpcode.IncrBy;
            else if (Is(sub, "OVERFLOW"u8) && remaining >= 1)
            {
                ReadOnlySpan<byte> type = ctx[++j];
                if (Is(type, "WRAP"u8)) overflow = BitfieldOverflow.Wrap;
                else if (Is(type, "SAT"u8)) overflow = BitfieldOverflow.Sat;
                else if (Is(type, "FAIL"u8)) overflow = BitfieldOverflow.Fail;
                else
                {
                    ctx.Reply.WriteError(BitfieldOverflowError);
                    return;
                }
                continue;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
            if (!TryGetBitfieldType(ctx, j + 1, out bool signed, out int bits)) return;
            if (!TryGetBitOffset(ctx, j + 2, hash: true, bits, out ulong offset)) return;
            long value = 0;
            if (opcode != BitfieldOpcode.Get)
            {
                readOnly = false;
                highestWrite = Math.Max(highestWrite, offset + (ulong)bits - 1);
                if (!TryGetInt64(ctx, j + 3, out value)) return;
            }
            ops.Add(new BitfieldOp(opcode, offset, bits, signed, value, overflow));
            j += opcode == BitfieldOpcode.Get ? 2 : 3;
        }

        ReadOnlySpan<byte> key = ctx[1];
        KvEntry? e;
        byte[] data;
        if (readOnly)
        {
            if (!TryLookupString(ctx, key, read: true, out e)) return;
            data = e is null ? [] : Str(e);
        }
        else
        {
            if (readOnlyCommand)
            {
                ctx.Reply.WriteError(BitfieldReadOnlyError);
                return;
            }
            if (!TryLookupString(ctx, key, read: false, out e)) return;
            if (!TryGetBitStringLength(ctx, highestWrite, out int needed)) return;
            byte[] old = e is null ? [] : Str(e);
            data = new byte[Math.Max(old.Length, needed)]; // strings are never changed in place: work on a copy
            old.CopyTo(data, 0);
        }

        ctx.Reply.WriteArrayHeader(ops.Count);
        Span<byte> window = stackalloc byte[9];
        foreach (BitfieldOp op in ops)
        {
            if (op.Opcode == BitfieldOpcode.Get)
            {
                // Like Redis: read through a zero-padded copy of the (up to) 9 bytes the field spans.
                window.Clear();
                ulong first = op.Offset >> 3;
                for (int i = 0; i < 9 && first + (ulong)i < (ulong)data.Length; i++) window[i] = data[(int)first + i];
                ulong local = op.Offset - (first << 3);
                ctx.Reply.WriteInteger(op.Signed ? GetSignedBitfield(window, local, op.Bits) : (long)GetUnsignedBitfield(window, local, op.Bits));
                continue;
            }
            if (op.Signed)
            {
                long oldValue = GetSignedBitfield(data, op.Offset, op.Bits);
                long newValue, reply, wrapped;
                bool overflowed;
                if (op.Opcode == BitfieldOpcode.IncrBy)
                {
                    overflowed = CheckSignedBitfieldOverflow(oldValue, op.Value, op.Bits, op.Overflow, out wrapped) != 0;
                    newValue = overflowed ? wrapped : unchecked(oldValue + op.Value);
                    reply = newValue;
                }
                else
                {
                    newValue = op.Value;
                    overflowed = CheckSignedBitfieldOverflow(newValue, 0, op.Bits, op.Overflow, out wrapped) != 0;
                    if (overflowed) newValue = wrapped;
                    reply = oldValue;
                }
                if (overflowed && op.Overflow == BitfieldOverflow.Fail)
                {
                    ctx.Reply.WriteNull();
                }
                else
                {
                    ctx.Reply.WriteInteger(reply);
                    SetUnsignedBitfield(data, op.Offset, op.Bits, unchecked((ulong)newValue));
                }
            }
            else
            {
                ulong oldValue = GetUnsignedBitfield(data, op.Offset, op.Bits);
                ulong newValue, reply, wrapped;
                bool overflowed;
                if (op.Opcode == BitfieldOpcode.IncrBy)
                {
                    newValue = unchecked(oldValue + (ulong)op.Value);
                    overflowed = CheckUnsignedBitfieldOverflow(oldValue, op.Value, op.Bits, op.Overflow, out wrapped) != 0;
                    if (overflowed) newValue = wrapped;
                    reply = newValue;
                }
                else
                {
                    newValue = unchecked((ulong)op.Value);
                    overflowed = CheckUnsignedBitfieldOverflow(newValue, 0, op.Bits, op.Overflow, out wrapped) != 0;
                    if (overflowed) newValue = wrapped;
                    reply = oldValue;
                }
                if (overflowed && op.Overflow == BitfieldOverflow.Fail)
                {
                    ctx.Reply.WriteNull();
                }
                else
                {
                    ctx.Reply.WriteInteger(unchecked((long)reply));
                    SetUnsignedBitfield(data, op.Offset, op.Bits, newValue);
                }
            }
        }

        if (!readOnly)
        {
            // Like Redis, any SET/INCRBY counts as a change (even one that failed on overflow: the string may have grown).
            SetKey(ctx, key, e, data, -1, keepTtl: true);
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.String, "setbit");
        }
    }

    private static ulong GetUnsignedBitfield(ReadOnlySpan<byte> p, ulong offset, int bits)
    {
        ulong value = 0;
        for (int j = 0; j < bits; j++, offset++)
        {
            ulong bit = (ulong)(p[(int)(offset >> 3)] >> (7 - (int)(offset & 7))) & 1;
            value = (value << 1) | bit;
        }
        return value;
    }

    private static long GetSignedBitfield(ReadOnlySpan<byte> p, ulong offset, int bits)
    {
        long value = unchecked((long)GetUnsignedBitfield(p, offset, bits));
        if (bits < 64 && (value & (1L << (bits - 1))) != 0) value |= -1L << bits; // sign-extend
        return value;
    }

    private static void SetUnsignedBitfield(Span<byte> p, ulong offset, int bits, ulong value)
    {
        for (int j = 0; j < bits; j++, offset++)
        {
            int bitValue = (value & (1UL << (bits - 1 - j))) != 0 ? 1 : 0;
            int index = (int)(offset >> 3);
            int shift = 7 - (int)(offset & 7);
            p[index] = (byte)((p[index] & ~(1 << shift)) | (bitValue << shift));
        }
    }

    /// <summary>Redis's <c>checkUnsignedBitfieldOverflow</c>: 1 on overflow, -1 on underflow, 0 otherwise;
    /// <paramref name="limit"/> is the wrapped or saturated value (unchanged for FAIL).</summary>
    private static int CheckUnsignedBitfieldOverflow(ulong value, long increment, int bits, BitfieldOverflow type, out ulong limit)
    {
        limit = 0;
        ulong max = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        long maxIncrement = unchecked((long)(max - value));
        long minIncrement = unchecked(-(long)value);
        if (value > max || (increment > 0 && increment > maxIncrement))
        {
            if (type == BitfieldOverflow.Wrap) limit = WrapUnsigned(value, increment, bits);
            else if (type == BitfieldOverflow.Sat) limit = max;
            return 1;
        }
        if (increment < 0 && increment < minIncrement)
        {
            if (type == BitfieldOverflow.Wrap)
            {
                limit = WrapUnsigned(value, increment, bits);
                return 1;
            }
            if (type == BitfieldOverflow.Sat) limit = 0;
            return -1;
        }
        return 0;

        static ulong WrapUnsigned(ulong value, long increment, int bits)
        {
            ulong mask = bits == 64 ? 0 : ulong.MaxValue << bits;
            return unchecked(value + (ulong)increment) & ~mask;
        }
    }

    /// <summary>Redis's <c>checkSignedBitfieldOverflow</c>: 1 on overflow, -1 on underflow, 0 otherwise.</summary>
    private static int CheckSignedBitfieldOverflow(long value, long increment, int bits, BitfieldOverflow type, out long limit)
    {
        limit = 0;
        long max = bits == 64 ? long.MaxValue : (1L << (bits - 1)) - 1;
        long min = -max - 1;
        long maxIncrement = unchecked((long)((ulong)max - (ulong)value));
        long minIncrement = unchecked(min - value);
        if (value > max || (bits != 64 && increment > maxIncrement) || (value >= 0 && increment > 0 && increment > maxIncrement))
        {
            if (type == BitfieldOverflow.Wrap) limit = WrapSigned(value, increment, bits);
            else if (type == BitfieldOverflow.Sat) limit = max;
            return 1;
        }
        if (value < min || (bits != 64 && increment < minIncrement) || (value < 0 && increment < 0 && increment < minIncrement))
        {
            if (type == BitfieldOverflow.Wrap)
            {
                limit = WrapSigned(value, increment, bits);
                return 1;
            }
            if (type == BitfieldOverflow.Sat) limit = min;
            return -1;
        }
        return 0;

        static long WrapSigned(long value, long increment, int bits)
        {
            ulong c = unchecked((ulong)value + (ulong)increment);
            if (bits < 64)
            {
                ulong mask = ulong.MaxValue << bits;
                ulong msb = 1UL << (bits - 1);
                c = (c & msb) != 0 ? c | mask : c & ~mask;
            }
            return unchecked((long)c);
        }
    }
}
