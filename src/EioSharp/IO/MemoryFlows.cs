using System.Buffers;
using System.Text;

namespace EioSharp.IO;

/// <summary>A source that reads from bytes in memory, one chunk at a time.</summary>
/// <remarks>
/// Eio: <c>Flow.cstruct_source</c> (a list of buffers). Each read returns bytes from one chunk only, so a source built from
/// several chunks reproduces how data arrives in pieces from a network (useful for testing parsers at every split).
/// <para><b>Thread safety</b>: not thread-safe; use from one fiber at a time.</para>
/// </remarks>
public sealed class BufferSource : IFlowSource
{
    private readonly ReadOnlyMemory<byte>[] _chunks;
    private int _chunk;
    private int _offset;

    /// <summary>Creates a source that returns <paramref name="data"/> and then end of input.</summary>
    /// <param name="data">The bytes (not copied: do not change them while the source is in use).</param>
    public BufferSource(ReadOnlyMemory<byte> data)
        : this([data])
    {
    }

    /// <summary>Creates a source that returns each chunk in turn (never more than one chunk per read) and then end of input.</summary>
    /// <param name="chunks">The chunks (not copied); empty chunks are skipped.</param>
    /// <exception cref="ArgumentNullException"><paramref name="chunks"/> is null.</exception>
    public BufferSource(IEnumerable<ReadOnlyMemory<byte>> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        _chunks = chunks.Where(c => !c.IsEmpty).ToArray();
    }

    /// <summary>The number of bytes not read yet.</summary>
    public long Remaining
    {
        get
        {
            long n = 0;
            for (int i = _chunk; i < _chunks.Length; i++)
            {
                n += _chunks[i].Length;
            }

            return n - _offset;
        }
    }

    /// <inheritdoc/>
    /// <remarks>Completes synchronously; never suspends and does not check cancellation.</remarks>
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => new(Read(buffer.Span));

    /// <summary>Reads synchronously (the source is in memory).</summary>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The number of bytes read; 0 at end of input (or when <paramref name="buffer"/> is empty).</returns>
    public int Read(Span<byte> buffer)
    {
        if (_chunk >= _chunks.Length || buffer.IsEmpty)
        {
            return 0;
        }

        var rest = _chunks[_chunk].Span[_offset..];
        int n = Math.Min(rest.Length, buffer.Length);
        rest[..n].CopyTo(buffer);
        _offset += n;
        if (_offset == _chunks[_chunk].Length)
        {
            _chunk++;
            _offset = 0;
        }

        return n;
    }

    internal async ValueTask<long> CopyRemainingToAsync(IFlowSink sink)
    {
        long total = 0;
        while (_chunk < _chunks.Length)
        {
            var rest = _chunks[_chunk][_offset..];
            _chunk++;
            _offset = 0;
            await sink.WriteAsync(rest);
            total += rest.Length;
        }

        return total;
    }
}

/// <summary>A source that reads a string's UTF-8 encoding.</summary>
/// <remarks>Eio: <c>Flow.string_source</c>. <b>Thread safety</b>: not thread-safe; use from one fiber at a time.</remarks>
public sealed class StringSource : IFlowSource
{
    private readonly BufferSource _inner;

    /// <summary>Creates a source that returns the UTF-8 bytes of <paramref name="text"/> and then end of input.</summary>
    /// <param name="text">The text.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    public StringSource(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _inner = new BufferSource(Encoding.UTF8.GetBytes(text));
    }

    /// <inheritdoc/>
    /// <remarks>Completes synchronously; never suspends and does not check cancellation.</remarks>
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => _inner.ReadAsync(buffer);
}

/// <summary>A sink that appends everything written to a growable buffer in memory.</summary>
/// <remarks>
/// Eio: <c>Flow.buffer_sink</c>. Writes complete synchronously.
/// <para><b>Thread safety</b>: not thread-safe; use from one fiber at a time.</para>
/// </remarks>
public sealed class BufferSink : IFlowSink
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    /// <summary>The bytes written so far (valid until the next write or <see cref="Clear"/>).</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.WrittenMemory;

    /// <summary>The number of bytes written so far.</summary>
    public int WrittenCount => _buffer.WrittenCount;

    /// <summary>The number of <see cref="WriteAsync(ReadOnlyMemory{byte})"/> calls so far (for tests that check coalescing).</summary>
    public int WriteCalls { get; private set; }

    /// <inheritdoc/>
    /// <remarks>Completes synchronously; does not check cancellation.</remarks>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        WriteCalls++;
        _buffer.Write(data.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Forgets the bytes written so far.</summary>
    public void Clear() => _buffer.Clear();

    /// <summary>Returns a copy of the bytes written so far.</summary>
    /// <returns>A new array.</returns>
    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>Decodes the bytes written so far as UTF-8.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => Encoding.UTF8.GetString(_buffer.WrittenSpan);
}

/// <summary>A flow that is always at end of input and discards writes.</summary>
internal sealed class NullFlow : IFlowDuplex
{
    internal static readonly NullFlow Instance = new();

    public ValueTask<int> ReadAsync(Memory<byte> buffer) => new(0);

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => ValueTask.CompletedTask;

    public ValueTask ShutdownAsync(ShutdownCommand command) => ValueTask.CompletedTask;

    public void Close()
    {
    }
}
