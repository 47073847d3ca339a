using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace EioSharp.IO;

// Eio's Buf_read items beyond the core: binary integers (Buf_read.BE / LE, uint8), take_while1 / skip_while1, seq,
// of_string and as_flow.
public sealed partial class BufferedReader
{
    /// <summary>Reads one byte as an unsigned integer.</summary>
    /// <returns>The value (0..255).</returns>
    /// <exception cref="EndOfStreamException">The input has ended.</exception>
    /// <remarks>Eio: <c>Buf_read.uint8</c>.</remarks>
    public ValueTask<byte> ReadUInt8Async() => AnyCharAsync();

    /// <summary>Reads a 2-byte big-endian <see cref="ushort"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 2 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint16</c>. Synchronous when buffered.</remarks>
    public ValueTask<ushort> ReadUInt16BigEndianAsync() =>
        _end - _start >= 2 ? new ValueTask<ushort>(TakeUInt16BigEndian()) : ReadUInt16BigEndianSlowAsync();

    private ushort TakeUInt16BigEndian()
    {
        var v = BinaryPrimitives.ReadUInt16BigEndian(_buf.AsSpan(_start, 2));
        _start += 2;
        return v;
    }

    private async ValueTask<ushort> ReadUInt16BigEndianSlowAsync()
    {
        await EnsureAsync(2);
        return TakeUInt16BigEndian();
    }

    /// <summary>Reads a 4-byte big-endian <see cref="uint"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 4 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint32</c>. Synchronous when buffered.</remarks>
    public ValueTask<uint> ReadUInt32BigEndianAsync() =>
        _end - _start >= 4 ? new ValueTask<uint>(TakeUInt32BigEndian()) : ReadUInt32BigEndianSlowAsync();

    private uint TakeUInt32BigEndian()
    {
        var v = BinaryPrimitives.ReadUInt32BigEndian(_buf.AsSpan(_start, 4));
        _start += 4;
        return v;
    }

    private async ValueTask<uint> ReadUInt32BigEndianSlowAsync()
    {
        await EnsureAsync(4);
        return TakeUInt32BigEndian();
    }

    /// <summary>Reads a 8-byte big-endian <see cref="ulong"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 8 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint64</c>. Synchronous when buffered.</remarks>
    public ValueTask<ulong> ReadUInt64BigEndianAsync() =>
        _end - _start >= 8 ? new ValueTask<ulong>(TakeUInt64BigEndian()) : ReadUInt64BigEndianSlowAsync();

    private ulong TakeUInt64BigEndian()
    {
        var v = BinaryPrimitives.ReadUInt64BigEndian(_buf.AsSpan(_start, 8));
        _start += 8;
        return v;
    }

    private async ValueTask<ulong> ReadUInt64BigEndianSlowAsync()
    {
        await EnsureAsync(8);
        return TakeUInt64BigEndian();
    }

    /// <summary>Reads a 2-byte big-endian <see cref="short"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 2 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint16</c> (signed). Synchronous when buffered.</remarks>
    public ValueTask<short> ReadInt16BigEndianAsync() =>
        _end - _start >= 2 ? new ValueTask<short>(TakeInt16BigEndian()) : ReadInt16BigEndianSlowAsync();

    private short TakeInt16BigEndian()
    {
        var v = BinaryPrimitives.ReadInt16BigEndian(_buf.AsSpan(_start, 2));
        _start += 2;
        return v;
    }

    private async ValueTask<short> ReadInt16BigEndianSlowAsync()
    {
        await EnsureAsync(2);
        return TakeInt16BigEndian();
    }

    /// <summary>Reads a 4-byte big-endian <see cref="int"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 4 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint32</c> (signed). Synchronous when buffered.</remarks>
    public ValueTask<int> ReadInt32BigEndianAsync() =>
        _end - _start >= 4 ? new ValueTask<int>(TakeInt32BigEndian()) : ReadInt32BigEndianSlowAsync();

    private int TakeInt32BigEndian()
    {
        var v = BinaryPrimitives.ReadInt32BigEndian(_buf.AsSpan(_start, 4));
        _start += 4;
        return v;
    }

    private async ValueTask<int> ReadInt32BigEndianSlowAsync()
    {
        await EnsureAsync(4);
        return TakeInt32BigEndian();
    }

    /// <summary>Reads a 8-byte big-endian <see cref="long"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 8 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint64</c> (signed). Synchronous when buffered.</remarks>
    public ValueTask<long> ReadInt64BigEndianAsync() =>
        _end - _start >= 8 ? new ValueTask<long>(TakeInt64BigEndian()) : ReadInt64BigEndianSlowAsync();

    private long TakeInt64BigEndian()
    {
        var v = BinaryPrimitives.ReadInt64BigEndian(_buf.AsSpan(_start, 8));
        _start += 8;
        return v;
    }

    private async ValueTask<long> ReadInt64BigEndianSlowAsync()
    {
        await EnsureAsync(8);
        return TakeInt64BigEndian();
    }

    /// <summary>Reads a 4-byte big-endian <see cref="float"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 4 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.float</c>. Synchronous when buffered.</remarks>
    public ValueTask<float> ReadSingleBigEndianAsync() =>
        _end - _start >= 4 ? new ValueTask<float>(TakeSingleBigEndian()) : ReadSingleBigEndianSlowAsync();

    private float TakeSingleBigEndian()
    {
        var v = BinaryPrimitives.ReadSingleBigEndian(_buf.AsSpan(_start, 4));
        _start += 4;
        return v;
    }

    private async ValueTask<float> ReadSingleBigEndianSlowAsync()
    {
        await EnsureAsync(4);
        return TakeSingleBigEndian();
    }

    /// <summary>Reads a 8-byte big-endian <see cref="double"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 8 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.double</c>. Synchronous when buffered.</remarks>
    public ValueTask<double> ReadDoubleBigEndianAsync() =>
        _end - _start >= 8 ? new ValueTask<double>(TakeDoubleBigEndian()) : ReadDoubleBigEndianSlowAsync();

    private double TakeDoubleBigEndian()
    {
        var v = BinaryPrimitives.ReadDoubleBigEndian(_buf.AsSpan(_start, 8));
        _start += 8;
        return v;
    }

    private async ValueTask<double> ReadDoubleBigEndianSlowAsync()
    {
        await EnsureAsync(8);
        return TakeDoubleBigEndian();
    }

    /// <summary>Reads a 2-byte little-endian <see cref="ushort"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 2 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint16</c>. Synchronous when buffered.</remarks>
    public ValueTask<ushort> ReadUInt16LittleEndianAsync() =>
        _end - _start >= 2 ? new ValueTask<ushort>(TakeUInt16LittleEndian()) : ReadUInt16LittleEndianSlowAsync();

    private ushort TakeUInt16LittleEndian()
    {
        var v = BinaryPrimitives.ReadUInt16LittleEndian(_buf.AsSpan(_start, 2));
        _start += 2;
        return v;
    }

    private async ValueTask<ushort> ReadUInt16LittleEndianSlowAsync()
    {
        await EnsureAsync(2);
        return TakeUInt16LittleEndian();
    }

    /// <summary>Reads a 4-byte little-endian <see cref="uint"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 4 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint32</c>. Synchronous when buffered.</remarks>
    public ValueTask<uint> ReadUInt32LittleEndianAsync() =>
        _end - _start >= 4 ? new ValueTask<uint>(TakeUInt32LittleEndian()) : ReadUInt32LittleEndianSlowAsync();

    private uint TakeUInt32LittleEndian()
    {
        var v = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start, 4));
        _start += 4;
        return v;
    }

    private async ValueTask<uint> ReadUInt32LittleEndianSlowAsync()
    {
        await EnsureAsync(4);
        return TakeUInt32LittleEndian();
    }

    /// <summary>Reads a 8-byte little-endian <see cref="ulong"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 8 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint64</c>. Synchronous when buffered.</remarks>
    public ValueTask<ulong> ReadUInt64LittleEndianAsync() =>
        _end - _start >= 8 ? new ValueTask<ulong>(TakeUInt64LittleEndian()) : ReadUInt64LittleEndianSlowAsync();

    private ulong TakeUInt64LittleEndian()
    {
        var v = BinaryPrimitives.ReadUInt64LittleEndian(_buf.AsSpan(_start, 8));
        _start += 8;
        return v;
    }

    private async ValueTask<ulong> ReadUInt64LittleEndianSlowAsync()
    {
        await EnsureAsync(8);
        return TakeUInt64LittleEndian();
    }

    /// <summary>Reads a 2-byte little-endian <see cref="short"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 2 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint16</c> (signed). Synchronous when buffered.</remarks>
    public ValueTask<short> ReadInt16LittleEndianAsync() =>
        _end - _start >= 2 ? new ValueTask<short>(TakeInt16LittleEndian()) : ReadInt16LittleEndianSlowAsync();

    private short TakeInt16LittleEndian()
    {
        var v = BinaryPrimitives.ReadInt16LittleEndian(_buf.AsSpan(_start, 2));
        _start += 2;
        return v;
    }

    private async ValueTask<short> ReadInt16LittleEndianSlowAsync()
    {
        await EnsureAsync(2);
        return TakeInt16LittleEndian();
    }

    /// <summary>Reads a 4-byte little-endian <see cref="int"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 4 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint32</c> (signed). Synchronous when buffered.</remarks>
    public ValueTask<int> ReadInt32LittleEndianAsync() =>
        _end - _start >= 4 ? new ValueTask<int>(TakeInt32LittleEndian()) : ReadInt32LittleEndianSlowAsync();

    private int TakeInt32LittleEndian()
    {
        var v = BinaryPrimitives.ReadInt32LittleEndian(_buf.AsSpan(_start, 4));
        _start += 4;
        return v;
    }

    private async ValueTask<int> ReadInt32LittleEndianSlowAsync()
    {
        await EnsureAsync(4);
        return TakeInt32LittleEndian();
    }

    /// <summary>Reads a 8-byte little-endian <see cref="long"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 8 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint64</c> (signed). Synchronous when buffered.</remarks>
    public ValueTask<long> ReadInt64LittleEndianAsync() =>
        _end - _start >= 8 ? new ValueTask<long>(TakeInt64LittleEndian()) : ReadInt64LittleEndianSlowAsync();

    private long TakeInt64LittleEndian()
    {
        var v = BinaryPrimitives.ReadInt64LittleEndian(_buf.AsSpan(_start, 8));
        _start += 8;
        return v;
    }

    private async ValueTask<long> ReadInt64LittleEndianSlowAsync()
    {
        await EnsureAsync(8);
        return TakeInt64LittleEndian();
    }

    /// <summary>Reads a 4-byte little-endian <see cref="float"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 4 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.float</c>. Synchronous when buffered.</remarks>
    public ValueTask<float> ReadSingleLittleEndianAsync() =>
        _end - _start >= 4 ? new ValueTask<float>(TakeSingleLittleEndian()) : ReadSingleLittleEndianSlowAsync();

    private float TakeSingleLittleEndian()
    {
        var v = BinaryPrimitives.ReadSingleLittleEndian(_buf.AsSpan(_start, 4));
        _start += 4;
        return v;
    }

    private async ValueTask<float> ReadSingleLittleEndianSlowAsync()
    {
        await EnsureAsync(4);
        return TakeSingleLittleEndian();
    }

    /// <summary>Reads a 8-byte little-endian <see cref="double"/>.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="EndOfStreamException">Fewer than 8 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.double</c>. Synchronous when buffered.</remarks>
    public ValueTask<double> ReadDoubleLittleEndianAsync() =>
        _end - _start >= 8 ? new ValueTask<double>(TakeDoubleLittleEndian()) : ReadDoubleLittleEndianSlowAsync();

    private double TakeDoubleLittleEndian()
    {
        var v = BinaryPrimitives.ReadDoubleLittleEndian(_buf.AsSpan(_start, 8));
        _start += 8;
        return v;
    }

    private async ValueTask<double> ReadDoubleLittleEndianSlowAsync()
    {
        await EnsureAsync(8);
        return TakeDoubleLittleEndian();
    }

    /// <summary>Reads a 6-byte big-endian unsigned integer.</summary>
    /// <returns>The value (0 .. 2^48-1).</returns>
    /// <exception cref="EndOfStreamException">Fewer than 6 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.BE.uint48</c>.</remarks>
    public async ValueTask<long> ReadUInt48BigEndianAsync()
    {
        await EnsureAsync(6);
        var s = _buf.AsSpan(_start, 6);
        long v = 0;
        for (int i = 0; i < 6; i++)
        {
            v |= (long)s[5 - i] << (8 * i);
        }

        _start += 6;
        return v;
    }

    /// <summary>Reads a 6-byte little-endian unsigned integer.</summary>
    /// <returns>The value (0 .. 2^48-1).</returns>
    /// <exception cref="EndOfStreamException">Fewer than 6 bytes remain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.LE.uint48</c>.</remarks>
    public async ValueTask<long> ReadUInt48LittleEndianAsync()
    {
        await EnsureAsync(6);
        var s = _buf.AsSpan(_start, 6);
        long v = 0;
        for (int i = 0; i < 6; i++)
        {
            v |= (long)s[i] << (8 * i);
        }

        _start += 6;
        return v;
    }

    /// <summary>As <see cref="TakeWhileAsync"/>, but at least one byte must match.</summary>
    /// <param name="predicate">Tests one byte.</param>
    /// <returns>The bytes taken (at least one).</returns>
    /// <exception cref="FormatException">The next byte does not match, or the input has ended (nothing is consumed).</exception>
    /// <exception cref="BufferLimitExceededException">The run does not fit in <see cref="MaxSize"/>.</exception>
    /// <remarks>Eio: <c>Buf_read.take_while1</c>.</remarks>
    public async ValueTask<byte[]> TakeWhile1Async(Func<byte, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        int next = await PeekByteAsync();
        if (next < 0 || !predicate((byte)next))
        {
            throw new FormatException($"take_while1 at offset {BytesConsumed}: " + (next < 0 ? "end of input" : $"byte 0x{next:x2} does not match"));
        }

        return await TakeWhileAsync(predicate);
    }

    /// <summary>As <see cref="SkipWhileAsync"/>, but at least one byte must match.</summary>
    /// <param name="predicate">Tests one byte.</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="FormatException">The next byte does not match, or the input has ended.</exception>
    /// <remarks>Eio: <c>Buf_read.skip_while1</c>.</remarks>
    public async ValueTask SkipWhile1Async(Func<byte, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        int next = await PeekByteAsync();
        if (next < 0 || !predicate((byte)next))
        {
            throw new FormatException($"skip_while1 at offset {BytesConsumed}: " + (next < 0 ? "end of input" : $"byte 0x{next:x2} does not match"));
        }

        await SkipWhileAsync(predicate);
    }

    /// <summary>Runs <paramref name="parser"/> repeatedly, yielding each item, until <paramref name="stop"/> says to
    /// (by default: at end of input).</summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="parser">Parses one item from this reader.</param>
    /// <param name="stop">Checked before each item; default <see cref="AtEndOfInputAsync"/>.</param>
    /// <param name="cancellationToken">Ends the enumeration (for <c>await foreach ... WithCancellation</c>).</param>
    /// <returns>The items, parsed lazily as the caller enumerates.</returns>
    /// <remarks>Eio: <c>Buf_read.seq ?stop</c>. The parser's failures propagate from the enumeration.</remarks>
    public async IAsyncEnumerable<T> ReadSequenceAsync<T>(Func<BufferedReader, ValueTask<T>> parser, Func<BufferedReader, ValueTask<bool>>? stop = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parser);
        while (!cancellationToken.IsCancellationRequested && !await (stop is null ? AtEndOfInputAsync() : stop(this)))
        {
            yield return await parser(this);
        }
    }

    /// <summary>Creates a reader whose whole input is <paramref name="text"/> (UTF-8), already buffered.</summary>
    /// <param name="text">The input.</param>
    /// <returns>The reader; its <see cref="MaxSize"/> is the input's length (at least 1).</returns>
    /// <remarks>Eio: <c>Buf_read.of_string</c>. Parsing never suspends.</remarks>
    public static BufferedReader OfString(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return OfBytes(bytes);
    }

    /// <summary>Creates a reader whose whole input is <paramref name="data"/>.</summary>
    /// <param name="data">The input (copied).</param>
    /// <returns>The reader.</returns>
    /// <remarks>Eio: <c>Buf_read.of_buffer</c>.</remarks>
    public static BufferedReader OfBytes(ReadOnlySpan<byte> data)
    {
        var reader = new BufferedReader(new BufferSource(ReadOnlyMemory<byte>.Empty), Math.Max(1, data.Length), Math.Max(1, data.Length));
        data.CopyTo(reader._buf);
        reader._end = data.Length;
        reader._eof = true;
        return reader;
    }

    /// <summary>A flow that returns the bytes buffered here first and then reads on from the underlying source; reading
    /// from it consumes from this reader.</summary>
    /// <returns>The flow.</returns>
    /// <remarks>Eio: <c>Buf_read.as_flow</c>. For handing the rest of a stream (after a parsed header) to code that takes a flow.</remarks>
    public IFlowSource AsFlow() => new ReaderFlow(this);

    private sealed class ReaderFlow(BufferedReader reader) : IFlowSource
    {
        public async ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            if (buffer.Length == 0)
            {
                return 0;
            }

            if (reader.BufferedCount == 0 && !await reader.FillAsync())
            {
                return 0;
            }

            int n = Math.Min(buffer.Length, reader.BufferedCount);
            reader.Buffered[..n].CopyTo(buffer.Span);
            reader.Consume(n);
            return n;
        }
    }
}
