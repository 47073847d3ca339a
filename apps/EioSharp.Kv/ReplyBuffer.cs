using System.Buffers;

namespace EioSharp.Kv;

/// <summary>A growable byte buffer (an <see cref="IBufferWriter{T}"/>) with an optional size limit, that gives back its
/// memory after a large use: the reply buffer of a request, the AOF buffer of a round.</summary>
/// <remarks>
/// <b>Limit</b>: when a write would take the buffer over <see cref="Limit"/> bytes, the buffer stops keeping what is
/// written (<see cref="Overflowed"/> becomes true and later writes go to a small scratch area that is dropped), so a
/// reply larger than memory (MGET of a 1 MB key repeated thousands of times) never allocates past the limit; the
/// owner then disconnects the client, as Redis does over <c>client-output-buffer-limit</c>.
/// <para><b>Shrinking</b>: <see cref="Shrink()"/> drops an array grown past <see cref="ShrinkAbove"/> bytes once its
/// content has been sent, so a connection that once sent a 500 MB reply does not keep 500 MB. The arrays are not
/// pooled above that size on purpose: a pool would keep them. A buffer that is filled to the same large size over and
/// over (the AOF buffer of a round of pipelined 1 KB SETs: about 1 MB) keeps up to <see cref="KeepCapacity"/> instead,
/// so that it is not reallocated (and its old array released to the large-object heap) every round.</para>
/// <para><b>Thread safety</b>: none; one owner at a time (the connection, or the store owner while the request is in
/// its hands).</para>
/// </remarks>
internal sealed class ReplyBuffer : IBufferWriter<byte>, IReservingBufferWriter
{
    /// <summary>An array larger than this (bytes) is released by <see cref="Shrink()"/>.</summary>
    public const int ShrinkAbove = 256 * 1024;

    private readonly int _initialCapacity;
    private readonly ArrayPool<byte>? _pool;
    private byte[] _buffer;
    private int _count;
    private byte[]? _scratch;

    /// <summary>Creates an empty buffer of <paramref name="initialCapacity"/> bytes, unlimited.</summary>
    public ReplyBuffer(int initialCapacity)
    {
        _initialCapacity = initialCapacity;
        _buffer = new byte[initialCapacity];
    }

    /// <summary>Creates an empty buffer whose array of <paramref name="initialCapacity"/> bytes comes from
    /// <paramref name="pool"/> (and goes back to it on <see cref="Release"/>); a connection's output buffers.</summary>
    /// <param name="initialCapacity">The array's size: the pool must hand out arrays of exactly this length (a pool
    /// of <see cref="ArrayPool{T}.Create(int, int)"/> does for a power of two).</param>
    /// <param name="pool">Where the array of the first size comes from; a grown array is never put into it.</param>
    public ReplyBuffer(int initialCapacity, ArrayPool<byte> pool)
    {
        _initialCapacity = initialCapacity;
        _pool = pool;
        _buffer = pool.Rent(initialCapacity);
    }

    /// <summary>Gives the array back to the pool the buffer was created with when it has the first size (whichever
    /// buffer it came from: <see cref="SwapContents"/> exchanges arrays of two buffers), else leaves it to the garbage
    /// collector; the buffer is empty and holds no array afterwards (a later write allocates one, not pooled).</summary>
    /// <remarks>Only when nobody else can touch the array any more: no write in flight from it, and no other owner
    /// (the store owner) holding the buffer.</remarks>
    public void Release()
    {
        var buffer = _buffer;
        _buffer = [];
        _count = 0;
        _scratch = null;
        Overflowed = false;
        if (_pool is not null && buffer.Length == _initialCapacity)
        {
            _pool.Return(buffer);
        }
    }

    /// <summary>The largest array (bytes) <see cref="Shrink()"/> keeps; <see cref="ShrinkAbove"/> unless set. At least
    /// <see cref="ShrinkAbove"/> for a buffer reused at a large size every round; <see cref="Shrink(int)"/> with a
    /// smaller bound releases it when the use has stopped.</summary>
    public int KeepCapacity { get; init; } = ShrinkAbove;

    /// <summary>Most bytes kept (the rest is dropped and <see cref="Overflowed"/> set); <see cref="long.MaxValue"/>: no limit
    /// other than the largest array.</summary>
    public long Limit { get; set; } = long.MaxValue;

    /// <summary>True once a write did not fit under <see cref="Limit"/> (until <see cref="ResetWrittenCount"/>).</summary>
    public bool Overflowed { get; private set; }

    /// <summary>Bytes kept.</summary>
    public int WrittenCount => _count;

    /// <summary>Size of the current array.</summary>
    public int Capacity => _buffer.Length;

    /// <summary>The bytes kept.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _count);

    /// <summary>The bytes kept.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _count);

    /// <summary>Forgets the content and the overflow (keeps the array; see <see cref="Shrink()"/>).</summary>
    public void ResetWrittenCount()
    {
        _count = 0;
        Overflowed = false;
    }

    /// <summary>Drops the first <paramref name="count"/> bytes kept; the rest moves to the front (the overflow flag stays).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or more than <see cref="WrittenCount"/>.</exception>
    public void RemovePrefix(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _count);
        _buffer.AsSpan(count, _count - count).CopyTo(_buffer);
        _count -= count;
    }

    /// <summary>Exchanges the content (array and bytes kept) with <paramref name="other"/>, without copying: a batch's
    /// replies, written by the store into the request's buffer, become the connection's output when that was empty.
    /// Limits stay with each buffer; neither may be <see cref="Overflowed"/>.</summary>
    /// <exception cref="InvalidOperationException">One of the buffers overflowed.</exception>
    public void SwapContents(ReplyBuffer other)
    {
        if (Overflowed || other.Overflowed)
        {
            throw new InvalidOperationException("An overflowed reply buffer cannot be swapped.");
        }

        (_buffer, other._buffer) = (other._buffer, _buffer);
        (_count, other._count) = (other._count, _count);
    }

    /// <summary>If empty and its array grew past <see cref="KeepCapacity"/>, goes back to a small array.</summary>
    public void Shrink() => Shrink(KeepCapacity);

    /// <summary>If empty and its array grew past <paramref name="keepCapacity"/> bytes, goes back to a small array.</summary>
    public void Shrink(int keepCapacity)
    {
        _scratch = null;
        if (_count == 0 && _buffer.Length > keepCapacity && _buffer.Length > _initialCapacity)
        {
            if (_buffer.Length >= 1 << 20)
            {
                MemoryReturn.Note(_buffer.Length);
            }

            _buffer = _pool?.Rent(_initialCapacity) ?? new byte[_initialCapacity];
        }
    }

    /// <inheritdoc/>
    public void Reserve(int bytes)
    {
        long needed = (long)_count + bytes;
        if (Overflowed || needed <= _buffer.Length || needed > Limit || needed > Array.MaxLength)
        {
            return;
        }

        // Exactly what is needed when that is more than a doubling (one large value); else the usual doubling.
        long size = Math.Max(needed, Math.Min(Math.Min((long)_buffer.Length * 2, Array.MaxLength), Limit));
        var bigger = new byte[size];
        _buffer.AsSpan(0, _count).CopyTo(bigger);
        _buffer = bigger;
    }

    /// <inheritdoc/>
    public void Advance(int count)
    {
        if (Overflowed)
        {
            return;
        }

        if (count < 0 || count > _buffer.Length - _count)
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _count += count;
    }

    /// <inheritdoc/>
    public Memory<byte> GetMemory(int sizeHint = 0) => Fit(sizeHint) ? _buffer.AsMemory(_count) : Scratch(sizeHint);

    /// <inheritdoc/>
    public Span<byte> GetSpan(int sizeHint = 0) => Fit(sizeHint) ? _buffer.AsSpan(_count) : Scratch(sizeHint);

    // True when sizeHint bytes fit (growing if needed); false once over the limit.
    private bool Fit(int sizeHint)
    {
        if (Overflowed)
        {
            return false;
        }

        long needed = (long)_count + Math.Max(sizeHint, 1);
        if (needed > Limit || needed > Array.MaxLength)
        {
            Overflowed = true;
            return false;
        }

        if (needed > _buffer.Length)
        {
            long size = Math.Max(needed, Math.Min((long)_buffer.Length * 2, Array.MaxLength));
            if (size > Limit)
            {
                size = Math.Max(needed, Limit);
            }

            var bigger = new byte[size];
            _buffer.AsSpan(0, _count).CopyTo(bigger);
            _buffer = bigger;
        }

        return true;
    }

    private byte[] Scratch(int sizeHint)
    {
        int size = Math.Max(sizeHint, 4096);
        if (_scratch is null || _scratch.Length < size)
        {
            _scratch = new byte[size];
        }

        return _scratch;
    }
}
