using System.Buffers.Binary;
using System.Globalization;

namespace EioSharp.IO;

// Eio's Buf_write items beyond the core: binary integers (Buf_write.BE / LE, uint8) and formatted writes (printf).
public sealed partial class BufferedWriter
{
    private bool _closed;

    /// <summary>True after <see cref="Close"/>.</summary>
    /// <remarks>Eio: <c>Buf_write.is_closed</c>.</remarks>
    public bool IsClosed => _closed;

    /// <summary>Closes the writer for writing: later writes throw <see cref="InvalidOperationException"/>, while what was
    /// written before still reaches the sink (<see cref="FlushAsync"/> waits for it). Idempotent.</summary>
    /// <remarks>Eio: <c>Buf_write.close</c>. Never suspends; unlike <see cref="Abort"/> nothing is discarded. Ends a
    /// <see cref="Pause"/> (later pauses are ignored) and wakes a fiber in <see cref="AwaitBatchAsync"/>, which then takes what
    /// is left or gets <see cref="EndOfStreamException"/>.</remarks>
    public void Close()
    {
        _closed = true;
        _paused = false;
        if (_flusherIdle is { } idle)
        {
            _flusherIdle = null;
            idle.TryComplete(true);
        }
    }

    private void ThrowIfClosed()
    {
        if (_closed)
        {
            throw new InvalidOperationException("The buffered writer is closed.");
        }
    }

    /// <summary>Writes one byte.</summary>
    /// <param name="value">The byte.</param>
    /// <remarks>Eio: <c>Buf_write.uint8</c>.</remarks>
    public void WriteUInt8(byte value) => WriteByte(value);

    /// <summary>Writes <paramref name="value"/> as 2 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.uint16</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteUInt16BigEndian(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(GetSpan(2), value);
        Advance(2);
    }

    /// <summary>Writes <paramref name="value"/> as 4 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.uint32</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteUInt32BigEndian(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(GetSpan(4), value);
        Advance(4);
    }

    /// <summary>Writes <paramref name="value"/> as 8 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.uint64</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteUInt64BigEndian(ulong value)
    {
        BinaryPrimitives.WriteUInt64BigEndian(GetSpan(8), value);
        Advance(8);
    }

    /// <summary>Writes <paramref name="value"/> as 2 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.uint16</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteInt16BigEndian(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(GetSpan(2), value);
        Advance(2);
    }

    /// <summary>Writes <paramref name="value"/> as 4 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.uint32</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteInt32BigEndian(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(GetSpan(4), value);
        Advance(4);
    }

    /// <summary>Writes <paramref name="value"/> as 8 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.uint64</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteInt64BigEndian(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(GetSpan(8), value);
        Advance(8);
    }

    /// <summary>Writes <paramref name="value"/> as 4 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.float</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteSingleBigEndian(float value)
    {
        BinaryPrimitives.WriteSingleBigEndian(GetSpan(4), value);
        Advance(4);
    }

    /// <summary>Writes <paramref name="value"/> as 8 big-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.BE.double</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteDoubleBigEndian(double value)
    {
        BinaryPrimitives.WriteDoubleBigEndian(GetSpan(8), value);
        Advance(8);
    }

    /// <summary>Writes <paramref name="value"/> as 2 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.uint16</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteUInt16LittleEndian(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(GetSpan(2), value);
        Advance(2);
    }

    /// <summary>Writes <paramref name="value"/> as 4 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.uint32</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteUInt32LittleEndian(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(GetSpan(4), value);
        Advance(4);
    }

    /// <summary>Writes <paramref name="value"/> as 8 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.uint64</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteUInt64LittleEndian(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(GetSpan(8), value);
        Advance(8);
    }

    /// <summary>Writes <paramref name="value"/> as 2 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.uint16</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteInt16LittleEndian(short value)
    {
        BinaryPrimitives.WriteInt16LittleEndian(GetSpan(2), value);
        Advance(2);
    }

    /// <summary>Writes <paramref name="value"/> as 4 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.uint32</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteInt32LittleEndian(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(GetSpan(4), value);
        Advance(4);
    }

    /// <summary>Writes <paramref name="value"/> as 8 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.uint64</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteInt64LittleEndian(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(GetSpan(8), value);
        Advance(8);
    }

    /// <summary>Writes <paramref name="value"/> as 4 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.float</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteSingleLittleEndian(float value)
    {
        BinaryPrimitives.WriteSingleLittleEndian(GetSpan(4), value);
        Advance(4);
    }

    /// <summary>Writes <paramref name="value"/> as 8 little-endian bytes.</summary>
    /// <param name="value">The value.</param>
    /// <remarks>Eio: <c>Buf_write.LE.double</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteDoubleLittleEndian(double value)
    {
        BinaryPrimitives.WriteDoubleLittleEndian(GetSpan(8), value);
        Advance(8);
    }

    /// <summary>Writes the low 48 bits of <paramref name="value"/> as 6 big-endian bytes.</summary>
    /// <param name="value">The value (0 .. 2^48-1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value does not fit in 48 bits.</exception>
    /// <remarks>Eio: <c>Buf_write.BE.uint48</c>.</remarks>
    public void WriteUInt48BigEndian(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(value, (1L << 48) - 1);
        var s = GetSpan(6);
        for (int i = 0; i < 6; i++)
        {
            s[5 - i] = (byte)(value >> (8 * i));
        }

        Advance(6);
    }

    /// <summary>Writes the low 48 bits of <paramref name="value"/> as 6 little-endian bytes.</summary>
    /// <param name="value">The value (0 .. 2^48-1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The value does not fit in 48 bits.</exception>
    /// <remarks>Eio: <c>Buf_write.LE.uint48</c>.</remarks>
    public void WriteUInt48LittleEndian(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(value, (1L << 48) - 1);
        var s = GetSpan(6);
        for (int i = 0; i < 6; i++)
        {
            s[i] = (byte)(value >> (8 * i));
        }

        Advance(6);
    }

    /// <summary>Writes the text of a composite format string (UTF-8, invariant culture).</summary>
    /// <param name="format">A .NET composite format string (<c>"{0} items"</c>).</param>
    /// <param name="args">The arguments.</param>
    /// <exception cref="FormatException">The format string is invalid.</exception>
    /// <remarks>Eio: <c>Buf_write.printf</c>. Copies into the buffer; never suspends.</remarks>
    public void WriteFormat(string format, params object?[] args) =>
        WriteString(string.Format(CultureInfo.InvariantCulture, format, args));
}
