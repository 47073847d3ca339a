using System.Buffers;
using System.Globalization;

namespace EioSharp.Kv;

/// <summary>Encodes commands in Redis's AOF format: each a RESP array of bulk strings.</summary>
/// <remarks>The output is what <c>redis-check-aof</c> accepts: <c>*N\r\n</c> then N times <c>$len\r\nbytes\r\n</c>.</remarks>
public static class AofWriter
{
    /// <summary>Appends <paramref name="command"/> to <paramref name="output"/>.</summary>
    public static void WriteCommand(IBufferWriter<byte> output, KvCommand command)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(command);
        if (command.TryGetEncoded(out ReadOnlySpan<byte> encoded))
        {
            // Parsed in place from a multibulk request: its bytes as received are this encoding (one copy, no headers
            // formatted again: a plain SET's log entry was ~600 instructions of sizing and formatting).
            output.Write(encoded);
            return;
        }
        int count = command.Count;
        // The usual command (a few short arguments) is sized first and written into one span: one GetSpan and one
        // Advance on the buffer for the whole command, where each header and each argument took a pair of interface
        // calls and a culture-aware number format (an XCLAIM a delivered stream entry logs has 15 arguments).
        long size = 3 + DigitCount(count);
        for (int i = 0; i < count && size <= SingleSpanMax; i++)
        {
            int length = command[i].Length;
            size += 5 + DigitCount(length) + length;
        }
        if (size > SingleSpanMax)
        {
            WriteArrayHeader(output, count);
            for (int i = 0; i < count; i++) WriteBulkString(output, command[i]);
            return;
        }
        Span<byte> span = output.GetSpan((int)size);
        int pos = WriteNumberLine(span, 0, (byte)'*', count);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> value = command[i];
            pos = WriteNumberLine(span, pos, (byte)'$', value.Length);
            value.CopyTo(span[pos..]);
            pos += value.Length;
            span[pos++] = (byte)'\r';
            span[pos++] = (byte)'\n';
        }
        System.Diagnostics.Debug.Assert(pos == size);
        output.Advance(pos);
    }

    // Commands up to this size are encoded into one span (WriteCommand); bigger ones piece by piece, so that a large
    // value is not asked of the buffer twice over in one contiguous block.
    private const int SingleSpanMax = 16 * 1024;

    private static int DigitCount(int value)
    {
        int digits = 1;
        for (uint v = (uint)value; v >= 10; v /= 10) digits++;
        return digits;
    }

    // Writes <prefix><value>\r\n (value >= 0) at span[pos..]; returns the position after it.
    private static int WriteNumberLine(Span<byte> span, int pos, byte prefix, int value)
    {
        span[pos] = prefix;
        int end = pos + 1 + DigitCount(value);
        int at = end;
        uint v = (uint)value;
        do
        {
            span[--at] = (byte)('0' + v % 10);
            v /= 10;
        }
        while (v != 0);
        span[end] = (byte)'\r';
        span[end + 1] = (byte)'\n';
        return end + 2;
    }

    /// <summary>Appends an array header <c>*count\r\n</c>.</summary>
    public static void WriteArrayHeader(IBufferWriter<byte> output, int count) => WriteNumberLine(output, (byte)'*', count);

    /// <summary>Appends a bulk string.</summary>
    public static void WriteBulkString(IBufferWriter<byte> output, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(output);
        WriteNumberLine(output, (byte)'$', value.Length);
        Span<byte> span = output.GetSpan(value.Length + 2);
        value.CopyTo(span);
        span[value.Length] = (byte)'\r';
        span[value.Length + 1] = (byte)'\n';
        output.Advance(value.Length + 2);
    }

    /// <summary>Appends an integer as a bulk string (how numbers appear in the AOF).</summary>
    public static void WriteBulkString(IBufferWriter<byte> output, long value)
    {
        Span<byte> digits = stackalloc byte[20];
        value.TryFormat(digits, out int n, default, CultureInfo.InvariantCulture);
        WriteBulkString(output, digits[..n]);
    }

    private static void WriteNumberLine(IBufferWriter<byte> output, byte prefix, long value)
    {
        ArgumentNullException.ThrowIfNull(output);
        Span<byte> span = output.GetSpan(24);
        span[0] = prefix;
        value.TryFormat(span[1..], out int n, default, CultureInfo.InvariantCulture);
        span[n + 1] = (byte)'\r';
        span[n + 2] = (byte)'\n';
        output.Advance(n + 3);
    }
}
