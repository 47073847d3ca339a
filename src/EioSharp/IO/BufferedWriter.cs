using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Text;

namespace EioSharp.IO;

/// <summary>A buffered writer over a sink that coalesces small writes into one sink write per scheduling round.</summary>
/// <remarks>
/// Eio: <c>Eio.Buf_write</c>. Writes (<see cref="Write(ReadOnlySpan{byte})"/>, <see cref="WriteString(string)"/>,
/// <see cref="GetSpan(int)"/>/<see cref="Advance(int)"/>) only copy into a buffer and never suspend.
/// <para><b>Scheduling</b> (S26): a flusher fiber (a daemon of the switch given to the constructor) is woken when data is
/// first written; because the run queue is FIFO it runs only after the writing fiber suspends, so every write made before
/// that suspension goes to the sink in one <see cref="IFlowSink.WriteAsync(ReadOnlyMemory{byte})"/> call. While the flusher
/// writes one batch, new writes go to a second buffer.</para>
/// <para><b>Back-pressure</b>: synchronous writes always succeed and may grow the buffer past <see cref="MaxBufferedSize"/>;
/// <see cref="WriteAsync(ReadOnlyMemory{byte})"/> and <see cref="WaitForCapacityAsync"/> wait for the flusher while more than
/// <see cref="MaxBufferedSize"/> bytes are pending.</para>
/// <para><b>Errors</b>: if the sink fails, the flusher fails its switch (S2) and <see cref="FlushAsync"/> rethrows the failure.
/// After <see cref="Abort"/> writes and <see cref="FlushAsync"/> throw <see cref="ObjectDisposedException"/>.</para>
/// <para><b>Thread safety</b>: not thread-safe; use it from fibers of the domain that created it. Do not suspend between
/// <see cref="GetSpan(int)"/> and <see cref="Advance(int)"/>.</para>
/// </remarks>
public sealed partial class BufferedWriter : IFlowSink, IBufferWriter<byte>
{
    /// <summary>The default for <see cref="MaxBufferedSize"/>, in bytes (64 KiB: a few socket send buffers' worth).</summary>
    public const int DefaultMaxBufferedSize = 64 * 1024;

    // Null for a low-level writer (no flusher fiber: the owner drives it with AwaitBatchAsync/Shift, Eio's create).
    private readonly IFlowSink? _sink;
    private readonly Domain _domain;
    private readonly int _initialSize;

    // _active receives writes; _spare is the other buffer, free while the flusher is not writing it. Bytes
    // [0, _activeSealed) of _active were moved to _queued (as a slice) and are never written again; the unsealed tail
    // [_activeSealed, _activeCount) is the part that still grows.
    private byte[] _active;
    private int _activeCount;
    private int _activeSealed;
    private byte[]? _spare;

    // Output queued ahead of the unsealed tail, in order: sealed slices of the buffers and caller buffers scheduled
    // without copying (ScheduleBuffer). Null when empty.
    private List<ReadOnlyMemory<byte>>? _queued;
    private bool _paused;

    // Totals in bytes: _written counts bytes handed to the writer, _flushed bytes the sink accepted; _written - _flushed is pending.
    private long _written;
    private long _flushed;

    // Set while the flusher is idle and waiting for data; the first write completes it (once) and clears it.
    private Waiter? _flusherIdle;
    private List<(long Target, Waiter Waiter)>? _flushWaiters;
    private bool _flusherStopped;
    private bool _aborted;
    private Exception? _error;

    /// <summary>Creates a writer whose flusher fiber is a daemon of <paramref name="sw"/>.</summary>
    /// <param name="sink">Where the bytes go.</param>
    /// <param name="sw">Owns the flusher fiber; when the switch finishes the flusher stops (then <see cref="FlushAsync"/> writes directly).</param>
    /// <param name="maxBufferedSize">Pending bytes above which <see cref="WriteAsync(ReadOnlyMemory{byte})"/> waits; at least 1.</param>
    /// <param name="initialSize">The first buffer's size in bytes (at least 1); buffers double as needed.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxBufferedSize"/> or <paramref name="initialSize"/> is less than 1.</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber, or <paramref name="sw"/> belongs to another domain.</exception>
    /// <remarks>Eio: <c>Buf_write.create ~sw</c> with a fiber copying it to the flow.</remarks>
    public BufferedWriter(IFlowSink sink, Switch sw, int maxBufferedSize = DefaultMaxBufferedSize, int initialSize = 4096)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBufferedSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialSize, 1);
        _sink = sink;
        _domain = FiberFrame.Require().Fiber.Domain;
        _initialSize = initialSize;
        MaxBufferedSize = maxBufferedSize;
        _active = new byte[initialSize];
        Fiber.ForkDaemon(sw, FlusherAsync, "BufferedWriter flusher");
    }

    /// <summary>Creates a low-level writer with no sink and no flusher fiber: its owner takes the output with
    /// <see cref="AwaitBatchAsync"/> and reports what it wrote with <see cref="Shift(int)"/> (or uses
    /// <see cref="SerializeAsync"/>, <see cref="SerializeToArray"/>, <see cref="SerializeToString"/>).</summary>
    /// <param name="initialSize">The first buffer's size in bytes (at least 1); buffers grow as needed.</param>
    /// <param name="maxBufferedSize">Pending bytes above which <see cref="WriteAsync(ReadOnlyMemory{byte})"/> waits; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is less than 1.</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber.</exception>
    /// <remarks>Eio: <c>Buf_write.create</c>. <see cref="FlushAsync"/> waits until <see cref="Shift(int)"/> has reported every
    /// byte written so far.</remarks>
    public BufferedWriter(int initialSize = 4096, int maxBufferedSize = DefaultMaxBufferedSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBufferedSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialSize, 1);
        _sink = null;
        _domain = FiberFrame.Require().Fiber.Domain;
        _initialSize = initialSize;
        MaxBufferedSize = maxBufferedSize;
        _active = new byte[initialSize];
    }

    /// <summary>Gets whether this writer was created without a sink (<see cref="BufferedWriter(int, int)"/>), so that its
    /// owner drives it with <see cref="AwaitBatchAsync"/> and <see cref="Shift(int)"/>.</summary>
    public bool IsLowLevel => _sink is null;

    /// <summary>Gets whether <see cref="Pause"/> is in effect.</summary>
    public bool IsPaused => _paused;

    // Whether output is waiting to be taken (queued slices or an unsealed tail).
    private bool HasUnsent => _activeCount > _activeSealed || _queued is { Count: > 0 };

    /// <summary>Pending bytes above which <see cref="WriteAsync(ReadOnlyMemory{byte})"/> and <see cref="WaitForCapacityAsync"/> wait.</summary>
    public int MaxBufferedSize { get; }

    /// <summary>Bytes written to the writer and not yet accepted by the sink.</summary>
    public long PendingCount => _written - _flushed;

    /// <summary>Bytes written to the writer since it was created.</summary>
    public long BytesWritten => _written;

    /// <summary>True after <see cref="Abort"/>.</summary>
    public bool IsAborted => _aborted;

    /// <summary>Creates a writer over <paramref name="sink"/>, runs <paramref name="body"/> with it, and flushes before returning.</summary>
    /// <param name="sink">Where the bytes go.</param>
    /// <param name="body">Writes to the writer.</param>
    /// <param name="maxBufferedSize">See <see cref="MaxBufferedSize"/>.</param>
    /// <returns>A task that completes when the body has finished and everything it wrote has been written to the sink.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="Exception">Whatever the body or the sink throws (the rest is not flushed).</exception>
    /// <exception cref="ObjectDisposedException">The body called <see cref="Abort"/>.</exception>
    /// <remarks>Eio: <c>Buf_write.with_flow</c> (S26). Runs in its own switch, which owns the flusher fiber.</remarks>
    public static Task WithFlowAsync(IFlowSink sink, Func<BufferedWriter, Task> body, int maxBufferedSize = DefaultMaxBufferedSize)
    {
        ArgumentNullException.ThrowIfNull(body);
        return WithFlowAsync<bool>(sink, async w => { await body(w); return true; }, maxBufferedSize);
    }

    /// <summary>Like <see cref="WithFlowAsync(IFlowSink, Func{BufferedWriter, Task}, int)"/>, returning the body's result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="sink">Where the bytes go.</param>
    /// <param name="body">Writes to the writer.</param>
    /// <param name="maxBufferedSize">See <see cref="MaxBufferedSize"/>.</param>
    /// <returns>The body's result, after everything was flushed.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="Exception">Whatever the body or the sink throws.</exception>
    /// <remarks>Eio: <c>Buf_write.with_flow</c>.</remarks>
    public static Task<T> WithFlowAsync<T>(IFlowSink sink, Func<BufferedWriter, Task<T>> body, int maxBufferedSize = DefaultMaxBufferedSize)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(body);
        return Switch.RunAsync(async sw =>
        {
            var w = new BufferedWriter(sink, sw, maxBufferedSize);
            var result = await body(w);
            await w.FlushAsync();
            return result;
        }, "BufferedWriter.WithFlow");
    }

    /// <summary>Copies <paramref name="data"/> into the buffer.</summary>
    /// <param name="data">The bytes.</param>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write.bytes</c>/<c>cstruct</c>. Never suspends.</remarks>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            ThrowIfAborted();
            ThrowIfClosed();
            return;
        }

        data.CopyTo(GetSpan(data.Length));
        Advance(data.Length);
    }

    /// <summary>Copies one byte into the buffer.</summary>
    /// <param name="value">The byte.</param>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write.char</c>/<c>uint8</c>.</remarks>
    public void WriteByte(byte value)
    {
        GetSpan(1)[0] = value;
        Advance(1);
    }

    /// <summary>Encodes <paramref name="text"/> as UTF-8 into the buffer.</summary>
    /// <param name="text">The text.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write.string</c>.</remarks>
    public void WriteString(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var span = GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        Advance(Encoding.UTF8.GetBytes(text, span));
    }

    /// <summary>Returns a buffer of at least <paramref name="sizeHint"/> bytes (at least 1) to write into; call <see cref="Advance(int)"/> after.</summary>
    /// <param name="sizeHint">The minimum size in bytes; 0 means "some".</param>
    /// <returns>The free part of the buffer.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sizeHint"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write</c>'s direct-write functions. Part of <see cref="IBufferWriter{T}"/>, so encoders (RESP) write in place.</remarks>
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _active.AsSpan(_activeCount);
    }

    /// <summary>Returns a buffer of at least <paramref name="sizeHint"/> bytes (at least 1) to write into; call <see cref="Advance(int)"/> after.</summary>
    /// <param name="sizeHint">The minimum size in bytes; 0 means "some".</param>
    /// <returns>The free part of the buffer.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sizeHint"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _active.AsMemory(_activeCount);
    }

    /// <summary>Commits <paramref name="count"/> bytes written into the buffer returned by <see cref="GetSpan(int)"/> or <see cref="GetMemory(int)"/>.</summary>
    /// <param name="count">Bytes written; between 0 and the size of that buffer.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or larger than the buffer.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    public void Advance(int count)
    {
        ThrowIfAborted();
        if ((uint)count > (uint)(_active.Length - _activeCount))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "Advanced past the end of the buffer.");
        }

        if (count == 0)
        {
            return;
        }

        _activeCount += count;
        _written += count;
        WakeFlusher();
    }

    /// <summary>Wakes the idle flusher (or a fiber in <see cref="AwaitBatchAsync"/>) unless paused.</summary>
    private void WakeFlusher()
    {
        if (!_paused && _flusherIdle is { } idle)
        {
            // Queued at the back of the run queue: it runs after this fiber suspends (S26).
            _flusherIdle = null;
            idle.TryComplete(true);
        }
    }

    /// <summary>Buffers <paramref name="data"/>, then waits while more than <see cref="MaxBufferedSize"/> bytes are pending.</summary>
    /// <param name="data">The bytes.</param>
    /// <returns>An awaitable; completed synchronously when there is room.</returns>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting (the data stays buffered).</exception>
    /// <exception cref="IOException">The sink failed.</exception>
    /// <remarks>As an <see cref="IFlowSink"/>, the "device" is the buffer: the bytes reach the sink later, or at <see cref="FlushAsync"/>.</remarks>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        Write(data.Span);
        return WaitForCapacityAsync();
    }

    /// <summary>Waits while more than <see cref="MaxBufferedSize"/> bytes are pending (back-pressure for a fiber that writes synchronously).</summary>
    /// <returns>An awaitable; completed synchronously when there is room.</returns>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <exception cref="IOException">The sink failed.</exception>
    public ValueTask WaitForCapacityAsync()
    {
        ThrowIfFailed();
        return _written - _flushed <= MaxBufferedSize ? ValueTask.CompletedTask : WaitFlushedAsync(_written - MaxBufferedSize);
    }

    /// <summary>Waits until every byte written so far has been written to the sink.</summary>
    /// <returns>An awaitable; completed synchronously when nothing is pending.</returns>
    /// <exception cref="ObjectDisposedException">The writer was aborted (S26), or its switch finished while a flush was pending.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting (the data stays buffered).</exception>
    /// <exception cref="IOException">The sink failed (the same exception every time).</exception>
    /// <remarks>Eio: <c>Buf_write.flush</c>.</remarks>
    public ValueTask FlushAsync()
    {
        ThrowIfFailed();
        Unpause();
        return _written == _flushed ? ValueTask.CompletedTask : WaitFlushedAsync(_written);
    }

    /// <summary>Discards everything not yet written and stops the writer: later writes and flushes throw.</summary>
    /// <remarks>Eio: <c>Buf_write.abort</c>. Pending flushes fail with <see cref="ObjectDisposedException"/>. Calling it again does nothing.</remarks>
    public void Abort()
    {
        if (_aborted)
        {
            return;
        }

        _aborted = true;
        _activeCount = 0;
        _activeSealed = 0;
        _queued = null;
        FailFlushWaiters(Aborted());
        if (_flusherIdle is { } idle)
        {
            _flusherIdle = null;
            idle.TryComplete(true);
        }
    }

    private ObjectDisposedException Aborted() => new(nameof(BufferedWriter), "The buffered writer was aborted.");

    private void ThrowIfAborted()
    {
        if (_aborted)
        {
            throw Aborted();
        }
    }

    private void ThrowIfFailed()
    {
        ThrowIfAborted();
        if (_error is not null)
        {
            ExceptionDispatchInfo.Throw(_error);
        }
    }

    private void Reserve(int sizeHint)
    {
        ThrowIfAborted();
        ThrowIfClosed();
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        int need = Math.Max(sizeHint, 1);
        if (_active.Length - _activeCount >= need)
        {
            return;
        }

        // Only the unsealed tail moves; sealed slices keep pointing into the old array, which is never written again.
        int tail = _activeCount - _activeSealed;
        long size = Math.Max((long)tail + need, 2L * _active.Length);
        var bigger = new byte[(int)Math.Min(size, Array.MaxLength)];
        _active.AsSpan(_activeSealed, tail).CopyTo(bigger);
        _active = bigger;
        _activeCount = tail;
        _activeSealed = 0;
    }

    private ValueTask WaitFlushedAsync(long target)
    {
        if (_flusherStopped && _sink is not null)
        {
            return FlushDirectlyAsync();
        }

        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        var w = new Waiter(_domain);
        (_flushWaiters ??= new()).Add((target, w));
        w.Attach(frame.Cancel);
        return w.VoidTask;
    }

    /// <summary>Used when the flusher fiber has stopped (its switch finished): the flushing fiber writes the batch itself.</summary>
    private async ValueTask FlushDirectlyAsync()
    {
        while (HasUnsent)
        {
            await WriteBatchAsync();
        }
    }

    private async Task FlusherAsync()
    {
        try
        {
            while (!_aborted)
            {
                if (_paused || !HasUnsent)
                {
                    var idle = new Waiter(_domain);
                    _flusherIdle = idle;
                    idle.Attach(Fiber.CancelContext);
                    await idle.VoidTask;
                    continue;
                }

                await WriteBatchAsync();
            }
        }
        finally
        {
            _flusherIdle = null;
            _flusherStopped = true;
            if (!_aborted && _error is null)
            {
                FailFlushWaiters(new ObjectDisposedException(
                    nameof(BufferedWriter), "The buffered writer's switch finished before the data was flushed."));
            }
        }
    }

    /// <summary>Swaps buffers and writes the batch that was pending (queued slices, then the active buffer's tail, one sink
    /// write each); wakes flush waiters whose bytes are all written.</summary>
    private async ValueTask WriteBatchAsync()
    {
        var batch = _active;
        int start = _activeSealed;
        int count = _activeCount - start;
        var queued = _queued;
        _queued = null;
        _active = _spare ?? new byte[_initialSize];
        _spare = null;
        _activeCount = 0;
        _activeSealed = 0;
        try
        {
            if (queued is not null)
            {
                foreach (var segment in queued)
                {
                    await _sink!.WriteAsync(segment);
                    _flushed += segment.Length;
                    WakeFlushWaiters();
                }
            }

            if (count > 0)
            {
                await _sink!.WriteAsync(batch.AsMemory(start, count));
            }
        }
        catch (Exception ex) when (ex is not CancelledException)
        {
            _error = ex;
            FailFlushWaiters(ex);
            throw;
        }

        _flushed += count;
        if (batch.Length <= Math.Max(_initialSize, MaxBufferedSize))
        {
            _spare = batch;
        }

        WakeFlushWaiters();
    }

    /// <summary>Completes the flush waiters whose target has been reached.</summary>
    private void WakeFlushWaiters()
    {
        if (_flushWaiters is { Count: > 0 } waiters)
        {
            int kept = 0;
            for (int i = 0; i < waiters.Count; i++)
            {
                var (target, w) = waiters[i];
                if (target <= _flushed)
                {
                    w.TryComplete(true);
                }
                else
                {
                    waiters[kept++] = waiters[i];
                }
            }

            waiters.RemoveRange(kept, waiters.Count - kept);
        }
    }

    private void FailFlushWaiters(Exception error)
    {
        if (_flushWaiters is { } waiters)
        {
            _flushWaiters = null;
            foreach (var (_, w) in waiters)
            {
                w.TryFail(error);
            }
        }
    }
}
