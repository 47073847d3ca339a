using System.Buffers;
using System.Threading.Tasks.Sources;
using System.Runtime.CompilerServices;
using System.Text;

namespace EioSharp.IO;

/// <summary>Thrown when an operation of a <see cref="BufferedReader"/> would grow its buffer past its maximum size (S25).</summary>
/// <remarks>Eio: <c>Buf_read.Buffer_limit_exceeded</c>. The reader throws it before allocating past the limit.</remarks>
public sealed class BufferLimitExceededException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What needed more room.</param>
    public BufferLimitExceededException(string message)
        : base(message)
    {
    }
}

/// <summary>A buffered reader over a source, with a size limit, for parsing lines and binary protocols.</summary>
/// <remarks>
/// Eio: <c>Eio.Buf_read</c>. The reader keeps one contiguous buffer of unconsumed bytes; <see cref="Buffered"/> exposes it
/// without copying, so protocol parsers (RESP, StatsD) can work on it directly with <see cref="Buffered"/>,
/// <see cref="Consume(int)"/> and <see cref="FillAsync"/> (false at end of input), in the style of
/// <c>System.IO.Pipelines</c>.
/// <para><b>Limits</b> (S25): the buffer never grows past <see cref="MaxSize"/> bytes. Any operation that would need more
/// throws <see cref="BufferLimitExceededException"/> before allocating; for line reads this means a line and its terminator
/// must fit in <see cref="MaxSize"/>. Skipping (<see cref="SkipAsync(long)"/>, <see cref="SkipWhileAsync(Func{byte, bool})"/>)
/// streams through without growing.</para>
/// <para><b>End of input</b>: an operation that needs bytes the source no longer has throws <see cref="EndOfStreamException"/>.</para>
/// <para><b>Scheduling</b>: an operation whose bytes are already buffered completes synchronously, without allocating,
/// without suspending and without a cancellation check (as in Eio, where it performs no effect). Otherwise it reads from the
/// source, which may suspend and is cancellable.</para>
/// <para><b>Errors</b>: format errors (<see cref="ExpectAsync(byte)"/>, <see cref="EndOfInputAsync"/>) are
/// <see cref="FormatException"/>. <see cref="ParseAsync{T}(IFlowSource, Func{BufferedReader, ValueTask{T}}, int, int)"/>
/// turns those, end of input and limit errors into one <see cref="ParseResult{T}"/>.</para>
/// <para><b>Thread safety</b>: not thread-safe; use from one fiber at a time. Spans and memory returned by the reader stay
/// valid only until the next call on it.</para>
/// </remarks>
public sealed partial class BufferedReader
{
    /// <summary>The default initial buffer size in bytes (4 KiB), clamped to the maximum size.</summary>
    public const int DefaultInitialSize = 4096;

    private readonly IFlowSource _source;
    private readonly ArrayPool<byte>? _pool; // where the buffer of the first size comes from and goes back to (Release)
    private readonly int _pooledSize; // the size asked of _pool
    private readonly int _rentedLength; // the length of the array _pool gave: only an array of that length goes back
    private bool _released;
    private FillSource? _fill;
    private byte[] _buf;
    private int _start;
    private int _end;

    // Absolute index in _buf up to which the bytes from _start are known to contain no '\n' (so line scans never rescan).
    private int _scanEnd;
    private long _consumedBase;
    private bool _eof;

    /// <summary>Creates a reader over <paramref name="source"/>.</summary>
    /// <param name="source">Where bytes come from.</param>
    /// <param name="maxSize">The most bytes the reader will ever buffer; at least 1.</param>
    /// <param name="initialSize">The first buffer's size in bytes (at least 1; clamped to <paramref name="maxSize"/>); the buffer doubles as needed.</param>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> or <paramref name="initialSize"/> is less than 1.</exception>
    /// <remarks>Eio: <c>Buf_read.of_flow ?initial_size ~max_size</c>.</remarks>
    public BufferedReader(IFlowSource source, int maxSize, int initialSize = DefaultInitialSize)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialSize, 1);
        _source = source;
        MaxSize = maxSize;
        _buf = GC.AllocateUninitializedArray<byte>(Math.Min(initialSize, maxSize));
    }

    /// <summary>Creates a reader over <paramref name="source"/> whose buffer of the first size is rented from
    /// <paramref name="pool"/> and given back by <see cref="Release"/>: a server with many short connections then does
    /// not allocate a receive buffer per connection.</summary>
    /// <param name="source">Where bytes come from.</param>
    /// <param name="maxSize">The most bytes the reader will ever buffer; at least 1.</param>
    /// <param name="initialSize">The first buffer's size in bytes (at least 1; clamped to <paramref name="maxSize"/>),
    /// rented from <paramref name="pool"/>, which may hand out a larger array (then <see cref="Capacity"/> is its length).</param>
    /// <param name="pool">The pool of first buffers. A buffer grown past the first size is allocated as usual and never
    /// put into the pool; <see cref="TrimExcess"/> back to the first size rents from the pool again.</param>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> or <paramref name="pool"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> or <paramref name="initialSize"/> is less than 1.</exception>
    /// <remarks>Not in Eio (whose <c>Buf_read.of_flow</c> allocates its buffer; OCaml's GC makes a pool less useful).
    /// <para><b>Ownership</b>: the reader owns the rented array until <see cref="Release"/>; the caller must not keep a
    /// span or memory taken from the reader past that call (the array goes to the next renter).</para></remarks>
    public BufferedReader(IFlowSource source, int maxSize, int initialSize, ArrayPool<byte> pool)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialSize, 1);
        _source = source;
        MaxSize = maxSize;
        _pool = pool;
        _pooledSize = Math.Min(initialSize, maxSize);
        _buf = pool.Rent(_pooledSize);
        _rentedLength = _buf.Length;
    }

    /// <summary>Gives the buffer back to the pool the reader was created with (when it is still an array of the first
    /// size: one grown past it is left to the garbage collector) and ends the reader: it holds no bytes afterwards, and
    /// every later read throws <see cref="ObjectDisposedException"/>. Does nothing the second time, or for a reader
    /// created without a pool but end it.</summary>
    /// <remarks>Call it once nothing reads the reader's buffer any more: no span, memory or parsed view over it is kept,
    /// and no read into it is pending (the fiber that reads has finished). Not in Eio.</remarks>
    public void Release()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _eof = true;
        var buf = _buf;
        _consumedBase += _start;
        _buf = [];
        _start = _end = _scanEnd = 0;
        if (_pool is not null && buf.Length == _rentedLength)
        {
            _pool.Return(buf);
        }
    }

    /// <summary>The most bytes the reader buffers, as given to the constructor.</summary>
    public int MaxSize { get; }

    /// <summary>The bytes buffered and not consumed yet (zero-copy; valid until the next call on the reader).</summary>
    /// <remarks>Eio: <c>Buf_read.peek</c>.</remarks>
    public ReadOnlySpan<byte> Buffered => new(_buf, _start, _end - _start);

    /// <summary>The same bytes as <see cref="Buffered"/>, as memory (valid until the next call on the reader).</summary>
    public ReadOnlyMemory<byte> BufferedMemory => new(_buf, _start, _end - _start);

    /// <summary>The number of bytes buffered and not consumed yet.</summary>
    /// <remarks>Eio: <c>Buf_read.buffered_bytes</c>.</remarks>
    public int BufferedCount => _end - _start;

    /// <summary>The number of bytes consumed since the reader was created.</summary>
    /// <remarks>Eio: <c>Buf_read.consumed_bytes</c>.</remarks>
    public long BytesConsumed => _consumedBase + _start;

    /// <summary>True once the source has reported end of input (more bytes may still be buffered).</summary>
    public bool SourceEnded => _eof;

    /// <summary>The current buffer's size in bytes (never more than <see cref="MaxSize"/>): what the reader holds in
    /// memory (for memory accounting, e.g. a server's per-client input buffer).</summary>
    public int Capacity => _buf.Length;

    /// <summary>Discards the first <paramref name="count"/> buffered bytes.</summary>
    /// <param name="count">Bytes to consume; between 0 and <see cref="BufferedCount"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or more than <see cref="BufferedCount"/>.</exception>
    /// <remarks>Eio: <c>Buf_read.consume</c>.</remarks>
    public void Consume(int count)
    {
        if ((uint)count > (uint)(_end - _start))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Only {_end - _start} bytes are buffered.");
        }

        _start += count;
    }

    /// <summary>Reads more bytes from the source into the buffer, growing it if it is full.</summary>
    /// <returns>True if at least one byte was added; false at end of input.</returns>
    /// <exception cref="BufferLimitExceededException">The buffer is full and already holds <see cref="MaxSize"/> bytes.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <exception cref="IOException">The source failed.</exception>
    /// <remarks>Eio: the refill step of <c>Buf_read.ensure</c>. Use it when a parser needs more bytes than <see cref="Buffered"/> holds.</remarks>
    public ValueTask<bool> FillAsync()
    {
        if (_eof)
        {
            ObjectDisposedException.ThrowIf(_released, this);
            return new ValueTask<bool>(false);
        }

        Reserve(_end - _start + 1);
        var pending = _source.ReadAsync(_buf.AsMemory(_end));
        return pending.IsCompletedSuccessfully ? new ValueTask<bool>(Commit(pending.Result)) : AwaitFillAsync(pending);
    }

    // A read that waits: awaited through one reused source per reader (a reader has one fill at a time), not an async
    // method, whose box, continuation delegate and context continuation were allocated per read that waited.
    private ValueTask<bool> AwaitFillAsync(ValueTask<int> pending) => (_fill ??= new FillSource(this)).Start(pending);

    /// <summary>The pending fill as the caller's <see cref="ValueTask{TResult}"/>: relays the source's pending read and
    /// commits its count when the caller takes the result (a second await fails: see <see cref="ValueTaskRelay{TPending, TResult}"/>).</summary>
    private sealed class FillSource(BufferedReader reader) : ValueTaskRelay<int, bool>
    {
        public ValueTask<bool> Start(ValueTask<int> pending) => StartRelay(pending);

        protected override bool Complete(int result) => reader.Commit(result);
    }

    private bool Commit(int n)
    {
        if (n == 0)
        {
            _eof = true;
            return false;
        }

        if (n < 0 || n > _buf.Length - _end)
        {
            throw new InvalidOperationException($"The source returned {n} bytes for a buffer of {_buf.Length - _end}.");
        }

        _end += n;
        return true;
    }

    /// <summary>Moves bytes into <paramref name="destination"/>: the buffered ones first (consumed), else reads the source
    /// straight into it, without passing through the reader's buffer (for a large payload whose size is known: it is
    /// received once, into its final place, and the buffer does not grow to its size).</summary>
    /// <param name="destination">Where the bytes go; must not be empty.</param>
    /// <returns>The number of bytes moved (at least 1, at most <c>destination.Length</c>); 0 at end of input.</returns>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is empty.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading (nothing was moved).</exception>
    /// <exception cref="IOException">The source failed.</exception>
    /// <remarks>Completes synchronously when bytes are buffered. Not in Eio (whose <c>Buf_read</c> always copies through
    /// its buffer); the counterpart of <c>Flow.single_read</c> on the reader's source once the buffer is drained.</remarks>
    public ValueTask<int> ReadIntoAsync(Memory<byte> destination)
    {
        if (destination.IsEmpty)
        {
            throw new ArgumentException("The destination is empty.", nameof(destination));
        }

        int buffered = _end - _start;
        if (buffered > 0)
        {
            int n = Math.Min(buffered, destination.Length);
            _buf.AsSpan(_start, n).CopyTo(destination.Span);
            _start += n;
            return new ValueTask<int>(n);
        }

        if (_eof)
        {
            ObjectDisposedException.ThrowIf(_released, this);
            return new ValueTask<int>(0);
        }

        _consumedBase += _start; // the buffer is empty: start over at its front, counting the bytes read past it
        _start = _end = _scanEnd = 0;
        var pending = _source.ReadAsync(destination);
        return pending.IsCompletedSuccessfully ? new ValueTask<int>(Direct(pending.Result)) : AwaitDirectAsync(pending);
    }

    private async ValueTask<int> AwaitDirectAsync(ValueTask<int> pending) => Direct(await pending);

    private int Direct(int n)
    {
        if (n == 0)
        {
            _eof = true;
        }

        _consumedBase += n;
        return n;
    }

    /// <summary>Gives back a buffer grown past <paramref name="capacity"/> bytes when the bytes buffered fit in that
    /// many (after a long line, so that an idle reader does not keep its largest buffer).</summary>
    /// <param name="capacity">The size to go back to (at least 1, clamped to <see cref="MaxSize"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is less than 1.</exception>
    /// <remarks>Invalidates spans and memory returned before. Not in Eio.</remarks>
    public void TrimExcess(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        capacity = Math.Min(capacity, MaxSize);
        int count = _end - _start;
        if (_buf.Length <= capacity || count > capacity)
        {
            return;
        }

        // Back to the first size: from the pool again (the grown array is left to the garbage collector).
        var smaller = _pool is not null && capacity == _pooledSize ? _pool.Rent(capacity) : GC.AllocateUninitializedArray<byte>(capacity);
        Buffer.BlockCopy(_buf, _start, smaller, 0, count);
        Shift(_start);
        _buf = smaller;
    }

    /// <summary>Makes room so that <paramref name="need"/> bytes (counting those buffered) fit, compacting or growing the buffer.</summary>
    private void Reserve(int need)
    {
        if (need > MaxSize)
        {
            throw new BufferLimitExceededException(
                $"Reading needs {need} bytes buffered, more than the limit of {MaxSize} bytes (at offset {BytesConsumed}).");
        }

        int count = _end - _start;
        if (count == 0 && _start > 0)
        {
            Shift(_start); // everything was consumed: start over at the front (no copy), so reads get the whole buffer
        }

        if (need > _buf.Length)
        {
            int size = (int)Math.Min(MaxSize, Math.Max(need, 2L * _buf.Length));
            var bigger = GC.AllocateUninitializedArray<byte>(size);
            Buffer.BlockCopy(_buf, _start, bigger, 0, count);
            Shift(_start);
            _buf = bigger;
        }
        else if (_start > 0 && (_buf.Length - _end < need - count || _end == _buf.Length || _start >= _buf.Length / 2))
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, count);
            Shift(_start);
        }
    }

    private void Shift(int by)
    {
        _consumedBase += by;
        _start -= by;
        _end -= by;
        _scanEnd = Math.Max(0, _scanEnd - by);
    }

    /// <summary>Waits until at least <paramref name="count"/> bytes are buffered (then see <see cref="Buffered"/>).</summary>
    /// <param name="count">Bytes needed; 0 returns at once.</param>
    /// <returns>An awaitable; completed synchronously when the bytes are already buffered.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="BufferLimitExceededException"><paramref name="count"/> is more than <see cref="MaxSize"/> (thrown before reading).</exception>
    /// <exception cref="EndOfStreamException">The input ended first.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.ensure</c>.</remarks>
    public ValueTask EnsureAsync(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return _end - _start >= count ? ValueTask.CompletedTask : EnsureSlowAsync(count);
    }

    private async ValueTask EnsureSlowAsync(int count)
    {
        Reserve(count);
        while (_end - _start < count)
        {
            if (!await FillAsync())
            {
                throw EndOfInput(count);
            }
        }
    }

    private EndOfStreamException EndOfInput(int needed) =>
        new($"End of input at offset {BytesConsumed + (_end - _start)}: {needed} bytes were needed and {_end - _start} are buffered.");

    /// <summary>Returns the next byte without consuming it.</summary>
    /// <returns>The byte (0..255), or -1 at end of input.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.peek_char</c>.</remarks>
    public ValueTask<int> PeekByteAsync()
    {
        return _start < _end ? new ValueTask<int>(_buf[_start]) : SlowAsync();

        async ValueTask<int> SlowAsync() => await FillAsync() ? _buf[_start] : -1;
    }

    /// <summary>Reads and consumes one byte.</summary>
    /// <returns>The byte (Eio's <c>char</c> is a byte).</returns>
    /// <exception cref="EndOfStreamException">The input has ended.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.any_char</c>. Completes synchronously, without allocating, when a byte is buffered: the fast
    /// path is inlined into the caller and builds the <see cref="ValueTask{TResult}"/> field by field (the refill is a
    /// separate method, which allocates only when the source really suspends). Each call still costs an await in the
    /// caller's state machine, which by itself (an always-complete awaitable, no reading) takes about 1.2x the CPU per byte
    /// of a whole PipeReader + <c>SequenceReader</c> loop: a loop over many bytes should use <see cref="TryAnyChar"/> and
    /// <see cref="FillAsync"/>, which await once per buffer (docs/BENCHMARKS.md, I/O; docs/rationale.md, issue 16).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<byte> AnyCharAsync()
    {
        int s = _start;
        if (s < _end)
        {
            _start = s + 1;
            return new ValueTask<byte>(_buf[s]);
        }

        // Both branches build the ValueTask field by field (the slow one from a Task, once per refill): merging a ValueTask
        // returned by a call with one built inline made the JIT copy it through memory (a store-forwarding stall per byte).
        return new ValueTask<byte>(AnyCharSlowTask());
    }

    // Completed tasks for the 256 byte values, made on first use: a refill that completes synchronously allocates nothing.
    private static readonly Task<byte>?[] s_byteTasks = new Task<byte>?[256];

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Task<byte> AnyCharSlowTask()
    {
        var pending = AnyCharSlowAsync();
        if (!pending.IsCompletedSuccessfully)
        {
            return pending.AsTask();
        }

        byte b = pending.Result;
        return s_byteTasks[b] ??= Task.FromResult(b);
    }

    /// <summary>Takes the next byte if one is buffered, without waiting.</summary>
    /// <param name="value">The byte, when the result is true.</param>
    /// <returns>True if a byte was consumed. False if none is buffered: call <see cref="FillAsync"/> (false there means the
    /// input has ended) and retry.</returns>
    /// <remarks>Eio: <c>Buf_read.any_char</c>, synchronous part (as <see cref="TryReadLine"/> is for <c>line</c>): a byte
    /// loop written as <c>while (r.TryAnyChar(out b)) ...; if (!await r.FillAsync()) break;</c> runs no async machinery per
    /// byte.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAnyChar(out byte value)
    {
        int s = _start;
        if (s < _end)
        {
            value = _buf[s];
            _start = s + 1;
            return true;
        }

        value = 0;
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private async ValueTask<byte> AnyCharSlowAsync()
    {
        if (!await FillAsync())
        {
            throw EndOfInput(1);
        }

        return _buf[_start++];
    }

    /// <summary>Consumes the next byte if it is <paramref name="expected"/>; fails otherwise.</summary>
    /// <param name="expected">The byte that must come next.</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="FormatException">The next byte is different (nothing is consumed).</exception>
    /// <exception cref="EndOfStreamException">The input has ended.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.char</c>.</remarks>
    public ValueTask ExpectAsync(byte expected)
    {
        if (_start < _end)
        {
            CheckByte(expected);
            return ValueTask.CompletedTask;
        }

        return SlowAsync();

        async ValueTask SlowAsync()
        {
            await EnsureAsync(1);
            CheckByte(expected);
        }
    }

    private void CheckByte(byte expected)
    {
        byte got = _buf[_start];
        if (got != expected)
        {
            throw new FormatException($"Expected {OCamlQuote.Char(expected)} but got {OCamlQuote.Char(got)}");
        }

        _start++;
    }

    /// <summary>Consumes <paramref name="literal"/> (its UTF-8 bytes) if the input continues with it; fails otherwise.</summary>
    /// <param name="literal">The text that must come next.</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="literal"/> is null.</exception>
    /// <exception cref="FormatException">The input differs (nothing is consumed).</exception>
    /// <exception cref="EndOfStreamException">The input ended before a difference was seen.</exception>
    /// <exception cref="BufferLimitExceededException">The literal is longer than <see cref="MaxSize"/>.</exception>
    /// <remarks>Eio: <c>Buf_read.string</c>.</remarks>
    public async ValueTask ExpectAsync(string literal)
    {
        ArgumentNullException.ThrowIfNull(literal);
        var bytes = Encoding.UTF8.GetBytes(literal);
        int i = 0;
        while (i < bytes.Length)
        {
            if (i < _end - _start)
            {
                if (_buf[_start + i] != bytes[i])
                {
                    int len = Math.Min(bytes.Length, _end - _start);
                    throw new FormatException(
                        $"Expected {OCamlQuote.String(bytes)} but got {OCamlQuote.String(_buf.AsSpan(_start, len))}");
                }

                i++;
            }
            else
            {
                await EnsureAsync(i + 1);
            }
        }

        _start += bytes.Length;
    }

    /// <summary>Reads and consumes exactly <paramref name="count"/> bytes.</summary>
    /// <param name="count">The number of bytes; at most <see cref="MaxSize"/>.</param>
    /// <returns>A new array with the bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="BufferLimitExceededException"><paramref name="count"/> is more than <see cref="MaxSize"/> (thrown before reading).</exception>
    /// <exception cref="EndOfStreamException">The input ended first (nothing is consumed).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.take</c>. For zero-copy access use <see cref="EnsureAsync(int)"/>, <see cref="Buffered"/> and <see cref="Consume(int)"/>.</remarks>
    public ValueTask<byte[]> TakeAsync(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return _end - _start >= count ? new ValueTask<byte[]>(TakeBuffered(count)) : SlowAsync();

        async ValueTask<byte[]> SlowAsync()
        {
            await EnsureSlowAsync(count);
            return TakeBuffered(count);
        }
    }

    /// <summary>Reads and consumes exactly <paramref name="count"/> bytes and decodes them as UTF-8.</summary>
    /// <param name="count">The number of bytes (not characters); at most <see cref="MaxSize"/>.</param>
    /// <returns>The text.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="BufferLimitExceededException"><paramref name="count"/> is more than <see cref="MaxSize"/>.</exception>
    /// <exception cref="EndOfStreamException">The input ended first.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.take</c> (which returns a string).</remarks>
    public async ValueTask<string> TakeStringAsync(int count)
    {
        await EnsureAsync(count);
        var s = Encoding.UTF8.GetString(_buf, _start, count);
        _start += count;
        return s;
    }

    private byte[] TakeBuffered(int count)
    {
        var result = _buf.AsSpan(_start, count).ToArray();
        _start += count;
        return result;
    }

    /// <summary>Reads and consumes everything up to end of input.</summary>
    /// <returns>A new array with the bytes (empty if the input had already ended).</returns>
    /// <exception cref="BufferLimitExceededException">The rest of the input does not fit in <see cref="MaxSize"/> bytes.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.take_all</c>.</remarks>
    public async ValueTask<byte[]> TakeAllAsync()
    {
        while (await FillAsync())
        {
        }

        return TakeBuffered(_end - _start);
    }

    /// <summary>Reads and consumes everything up to end of input, decoded as UTF-8.</summary>
    /// <returns>The text.</returns>
    /// <exception cref="BufferLimitExceededException">The rest of the input does not fit in <see cref="MaxSize"/> bytes.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.take_all</c>.</remarks>
    public async ValueTask<string> TakeAllStringAsync() => Encoding.UTF8.GetString(await TakeAllAsync());

    /// <summary>Reads and consumes bytes while <paramref name="predicate"/> holds (stops before the first byte that fails it, or at end of input).</summary>
    /// <param name="predicate">Tests one byte.</param>
    /// <returns>A new array with the bytes taken (possibly empty).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    /// <exception cref="BufferLimitExceededException">The matching run plus the byte after it does not fit in <see cref="MaxSize"/>.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.take_while</c>.</remarks>
    public ValueTask<byte[]> TakeWhileAsync(Func<byte, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        int n = CountWhile(predicate, 0);
        return _start + n < _end ? new ValueTask<byte[]>(TakeBuffered(n)) : SlowAsync(n);

        async ValueTask<byte[]> SlowAsync(int n)
        {
            while (_start + n == _end && await FillAsync())
            {
                n = CountWhile(predicate, n);
            }

            return TakeBuffered(n);
        }
    }

    private int CountWhile(Func<byte, bool> predicate, int from)
    {
        int i = _start + from;
        while (i < _end && predicate(_buf[i]))
        {
            i++;
        }

        return i - _start;
    }

    /// <summary>Consumes bytes while <paramref name="predicate"/> holds, without growing the buffer.</summary>
    /// <param name="predicate">Tests one byte.</param>
    /// <returns>An awaitable; completes at the first byte that fails the predicate or at end of input.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.skip_while</c>.</remarks>
    public ValueTask SkipWhileAsync(Func<byte, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        _start += CountWhile(predicate, 0);
        return _start < _end ? ValueTask.CompletedTask : SlowAsync();

        async ValueTask SlowAsync()
        {
            while (_start == _end && await FillAsync())
            {
                _start += CountWhile(predicate, 0);
            }
        }
    }

    /// <summary>Consumes <paramref name="count"/> bytes, streaming through the input without growing the buffer.</summary>
    /// <param name="count">The number of bytes (may exceed <see cref="MaxSize"/>).</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    /// <exception cref="EndOfStreamException">The input ended first (what was there is consumed).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.skip</c>.</remarks>
    public ValueTask SkipAsync(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_end - _start >= count)
        {
            _start += (int)count;
            return ValueTask.CompletedTask;
        }

        return SlowAsync(count);

        async ValueTask SlowAsync(long left)
        {
            while (true)
            {
                int n = (int)Math.Min(left, _end - _start);
                _start += n;
                left -= n;
                if (left == 0)
                {
                    return;
                }

                if (!await FillAsync())
                {
                    throw new EndOfStreamException($"End of input at offset {BytesConsumed} with {left} bytes left to skip.");
                }
            }
        }
    }

    /// <summary>Takes the next line from the buffered bytes if a whole line is buffered, without allocating.</summary>
    /// <param name="line">The line without its terminator (LF or CRLF); valid until the next call on the reader.</param>
    /// <returns>True if a line was consumed. False if no complete line is buffered: call <see cref="FillAsync"/> and retry
    /// (at end of input, the unterminated rest is returned as the last line).</returns>
    /// <remarks>Eio: <c>Buf_read.line</c>, synchronous part. With <see cref="FillAsync"/> this gives the zero-allocation form
    /// used by line protocols: <see cref="FillAsync"/> throws <see cref="BufferLimitExceededException"/> once a line cannot fit.</remarks>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        if (TryLine(out int offset, out int length))
        {
            line = new ReadOnlySpan<byte>(_buf, offset, length);
            return true;
        }

        line = default;
        return false;
    }

    private bool TryLine(out int offset, out int length)
    {
        // Fields copied to locals so the JIT keeps them in registers across the search.
        var buf = _buf;
        int start = _start;
        int end = _end;
        int from = _scanEnd > start ? _scanEnd : start;
        offset = start;
        int i = buf.AsSpan(from, end - from).IndexOf((byte)'\n');
        if (i >= 0)
        {
            int nl = from + i;
            length = nl > start && buf[nl - 1] == (byte)'\r' ? nl - 1 - start : nl - start;
            _start = nl + 1;
            return true;
        }

        _scanEnd = end;
        if (_eof && end > start)
        {
            length = end - start;
            _start = end;
            return true;
        }

        length = 0;
        return false;
    }

    /// <summary>Reads and consumes one line, decoded as UTF-8.</summary>
    /// <returns>The line without its terminator (LF or CRLF). At end of input, the unterminated rest is the last line.</returns>
    /// <exception cref="EndOfStreamException">The input has ended (nothing left).</exception>
    /// <exception cref="BufferLimitExceededException">The line and its terminator do not fit in <see cref="MaxSize"/> bytes (thrown before allocating past it).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.line</c>.</remarks>
    public ValueTask<string> ReadLineAsync()
    {
        return TryLine(out int offset, out int length)
            ? new ValueTask<string>(Encoding.UTF8.GetString(_buf, offset, length))
            : SlowAsync();

        async ValueTask<string> SlowAsync()
        {
            var (o, n) = await ReadLineSlowAsync();
            return Encoding.UTF8.GetString(_buf, o, n);
        }
    }

    /// <summary>Reads and consumes one line, returning its bytes without copying.</summary>
    /// <returns>The line's bytes without the terminator, inside the reader's buffer: valid until the next call on the reader.</returns>
    /// <exception cref="EndOfStreamException">The input has ended (nothing left).</exception>
    /// <exception cref="BufferLimitExceededException">The line and its terminator do not fit in <see cref="MaxSize"/> bytes.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.line</c>, returning a view like <c>Buf_read.peek</c>.</remarks>
    public ValueTask<ReadOnlyMemory<byte>> ReadLineMemoryAsync()
    {
        return TryLine(out int offset, out int length)
            ? new ValueTask<ReadOnlyMemory<byte>>(new ReadOnlyMemory<byte>(_buf, offset, length))
            : SlowAsync();

        async ValueTask<ReadOnlyMemory<byte>> SlowAsync()
        {
            var (o, n) = await ReadLineSlowAsync();
            return new ReadOnlyMemory<byte>(_buf, o, n);
        }
    }

    private async ValueTask<(int Offset, int Length)> ReadLineSlowAsync()
    {
        while (true)
        {
            if (!await FillAsync())
            {
                if (TryLine(out int o, out int n))
                {
                    return (o, n);
                }

                throw new EndOfStreamException($"End of input at offset {BytesConsumed} while reading a line.");
            }

            if (TryLine(out int offset, out int length))
            {
                return (offset, length);
            }
        }
    }

    /// <summary>Reads lines until end of input.</summary>
    /// <returns>Each line, without its terminator.</returns>
    /// <exception cref="BufferLimitExceededException">A line does not fit in <see cref="MaxSize"/> bytes.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.lines</c>.</remarks>
    public async IAsyncEnumerable<string> ReadLinesAsync()
    {
        while (!await AtEndOfInputAsync())
        {
            yield return await ReadLineAsync();
        }
    }

    /// <summary>Tells whether the input has ended and nothing is buffered (reads from the source if the buffer is empty).</summary>
    /// <returns>True at end of input.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.at_end_of_input</c>.</remarks>
    public ValueTask<bool> AtEndOfInputAsync()
    {
        if (_start < _end)
        {
            return new ValueTask<bool>(false);
        }

        if (_eof)
        {
            return new ValueTask<bool>(true);
        }

        return SlowAsync();

        async ValueTask<bool> SlowAsync() => !await FillAsync();
    }

    /// <summary>Succeeds only at end of input.</summary>
    /// <returns>An awaitable.</returns>
    /// <exception cref="FormatException">More input follows.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while reading.</exception>
    /// <remarks>Eio: <c>Buf_read.end_of_input</c>.</remarks>
    public async ValueTask EndOfInputAsync()
    {
        if (!await AtEndOfInputAsync())
        {
            throw new FormatException($"Unexpected data after parsing (at offset {BytesConsumed})");
        }
    }

    /// <summary>Runs <paramref name="parser"/> over <paramref name="source"/>, requires end of input after it, and reports any parse failure as a result.</summary>
    /// <typeparam name="T">The parsed value's type.</typeparam>
    /// <param name="source">The input.</param>
    /// <param name="parser">Reads a value from the reader.</param>
    /// <param name="maxSize">The reader's buffer limit in bytes (at least 1).</param>
    /// <param name="initialSize">The reader's first buffer size in bytes.</param>
    /// <returns>The value, or a failure with a message: the <see cref="FormatException"/>'s message,
    /// <c>Unexpected end-of-file at offset N</c>, or <c>Buffer size limit exceeded when reading at offset N</c>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> or <paramref name="initialSize"/> is less than 1.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled (cancellation is never turned into a result).</exception>
    /// <exception cref="IOException">The source failed (other than by ending).</exception>
    /// <remarks>Eio: <c>Buf_read.parse</c> (S25).</remarks>
    public static async ValueTask<ParseResult<T>> ParseAsync<T>(
        IFlowSource source, Func<BufferedReader, ValueTask<T>> parser, int maxSize, int initialSize = DefaultInitialSize)
    {
        ArgumentNullException.ThrowIfNull(parser);
        var r = new BufferedReader(source, maxSize, initialSize);
        try
        {
            var value = await parser(r);
            await r.EndOfInputAsync();
            return ParseResult<T>.Success(value);
        }
        catch (FormatException ex)
        {
            return ParseResult<T>.Failure(ex.Message);
        }
        catch (BufferLimitExceededException)
        {
            return ParseResult<T>.Failure($"Buffer size limit exceeded when reading at offset {r.BytesConsumed}");
        }
        catch (EndOfStreamException)
        {
            return ParseResult<T>.Failure($"Unexpected end-of-file at offset {r.BytesConsumed}");
        }
    }

    /// <summary>Runs <paramref name="parser"/> over the UTF-8 bytes of <paramref name="input"/>, as <see cref="ParseAsync{T}(IFlowSource, Func{BufferedReader, ValueTask{T}}, int, int)"/> does.</summary>
    /// <typeparam name="T">The parsed value's type.</typeparam>
    /// <param name="input">The input text.</param>
    /// <param name="parser">Reads a value from the reader.</param>
    /// <param name="maxSize">The reader's buffer limit in bytes; by default unlimited.</param>
    /// <returns>The value or a failure with a message.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is less than 1.</exception>
    /// <remarks>Eio: <c>Buf_read.parse_string</c>.</remarks>
    public static ValueTask<ParseResult<T>> ParseAsync<T>(string input, Func<BufferedReader, ValueTask<T>> parser, int maxSize = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(input);
        var bytes = Encoding.UTF8.GetBytes(input);
        return ParseAsync(new BufferSource(bytes), parser, maxSize, Math.Max(1, Math.Min(bytes.Length, maxSize)));
    }
}

/// <summary>Quotes bytes the way OCaml's <c>%C</c> and <c>%S</c> do, for messages and transcripts that match Eio's.</summary>
internal static class OCamlQuote
{
    internal static string Char(byte b) => "'" + Escape(b, '\'') + "'";

    internal static string String(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder("\"");
        foreach (byte b in bytes)
        {
            sb.Append(Escape(b, '"'));
        }

        return sb.Append('"').ToString();
    }

    private static string Escape(byte b, char quote) => b switch
    {
        (byte)'\n' => "\\n",
        (byte)'\r' => "\\r",
        (byte)'\t' => "\\t",
        (byte)'\\' => "\\\\",
        _ when b == quote => "\\" + quote,
        >= 0x20 and < 0x7f => ((char)b).ToString(),
        _ => "\\" + b.ToString("D3", System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>The outcome of <see cref="BufferedReader.ParseAsync{T}(IFlowSource, Func{BufferedReader, ValueTask{T}}, int, int)"/>: a value or an error message.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>Eio: <c>('a, [> `Msg of string]) result</c>.</remarks>
public readonly struct ParseResult<T>
{
    private readonly T _value;

    private ParseResult(T value, string? error)
    {
        _value = value;
        Error = error;
    }

    /// <summary>True if the parse succeeded.</summary>
    public bool IsSuccess => Error is null;

    /// <summary>The error message, or null on success.</summary>
    public string? Error { get; }

    /// <summary>The parsed value.</summary>
    /// <exception cref="InvalidOperationException">The parse failed (the message is the parse error).</exception>
    public T Value => Error is null ? _value : throw new InvalidOperationException(Error);

    /// <summary>Creates a successful result.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The result.</returns>
    public static ParseResult<T> Success(T value) => new(value, null);

    /// <summary>Creates a failed result.</summary>
    /// <param name="error">The message.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
    public static ParseResult<T> Failure(string error) => new(default!, error ?? throw new ArgumentNullException(nameof(error)));

    /// <summary>Gets the value if the parse succeeded.</summary>
    /// <param name="value">The value, when this returns true.</param>
    /// <returns>True on success.</returns>
    public bool TryGetValue(out T value)
    {
        value = _value;
        return Error is null;
    }

    /// <summary>Describes the result: <c>Ok value</c> or <c>Error message</c>.</summary>
    /// <returns>The description.</returns>
    public override string ToString() => Error is null ? $"Ok {_value}" : $"Error {Error}";
}
