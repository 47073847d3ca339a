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
        WriteArrayHeader(output, command.Count);
        for (int i = 0; i < command.Count; i++) WriteBulkString(output, command[i]);
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
