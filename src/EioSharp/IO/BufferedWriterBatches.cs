using System.Text;

namespace EioSharp.IO;

// Eio's Buf_write control and low-level operations: pause/unpause, schedule_bigstring (zero-copy), await_batch/shift and
// the serialize helpers.
public sealed partial class BufferedWriter
{
    /// <summary>Stops handing buffered output to the sink (or to <see cref="AwaitBatchAsync"/>) until <see cref="Unpause"/>,
    /// so that more writes are collected into one batch.</summary>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write.pause</c>. Ignored after <see cref="Close"/>. A batch already being written completes.
    /// <see cref="FlushAsync"/> and <see cref="Close"/> unpause. While paused, <see cref="WriteAsync(ReadOnlyMemory{byte})"/>
    /// and <see cref="WaitForCapacityAsync"/> still wait for room, so a fiber that needs room must unpause first.</remarks>
    public void Pause()
    {
        ThrowIfAborted();
        if (!_closed)
        {
            _paused = true;
        }
    }

    /// <summary>Resumes handing output to the sink after <see cref="Pause"/>; output written meanwhile goes in the next batch.</summary>
    /// <remarks>Eio: <c>Buf_write.unpause</c>. Does nothing if not paused. Never suspends: the flusher runs once the calling
    /// fiber suspends (S26).</remarks>
    public void Unpause()
    {
        if (!_paused)
        {
            return;
        }

        _paused = false;
        if (HasUnsent)
        {
            WakeFlusher();
        }
    }

    /// <summary>Queues <paramref name="data"/> for writing without copying it: it goes to the sink after what was written
    /// before and before what is written after.</summary>
    /// <param name="data">The bytes; the caller must not change them until <see cref="FlushAsync"/> has returned (or, for a
    /// low-level writer, until <see cref="Shift(int)"/> has passed them).</param>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <exception cref="InvalidOperationException">The writer is closed.</exception>
    /// <remarks>Eio: <c>Buf_write.schedule_bigstring</c> / <c>schedule_cstruct</c>. For large payloads (a value read from
    /// disk, a bulk reply): the sink receives the caller's memory itself, in a write of its own. Never suspends.</remarks>
    public void ScheduleBuffer(ReadOnlyMemory<byte> data)
    {
        ThrowIfAborted();
        ThrowIfClosed();
        if (data.IsEmpty)
        {
            return;
        }

        SealTail();
        (_queued ??= new()).Add(data);
        _written += data.Length;
        WakeFlusher();
    }

    /// <summary>Waits until output is available and returns it, for the owner of a low-level writer to write.</summary>
    /// <returns>The pending output, in order (buffer slices and scheduled caller buffers); valid until the next call on the
    /// writer. Nothing is consumed: after writing, report the number of bytes written with <see cref="Shift(int)"/> (the
    /// same bytes are returned again otherwise).</returns>
    /// <exception cref="InvalidOperationException">The writer has a sink and a flusher fiber (use <see cref="BufferedWriter(int, int)"/>).</exception>
    /// <exception cref="EndOfStreamException">The writer is closed and everything was shifted out.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <remarks>Eio: <c>Buf_write.await_batch</c>. Waits while the writer is paused. Only one fiber may wait at a time.</remarks>
    public async ValueTask<IReadOnlyList<ReadOnlyMemory<byte>>> AwaitBatchAsync()
    {
        RequireLowLevel();
        while (true)
        {
            ThrowIfAborted();
            if (!_paused && HasUnsent)
            {
                SealTail();
                return _queued!.ToArray();
            }

            if (_closed && !HasUnsent)
            {
                throw new EndOfStreamException("The buffered writer is closed and has no more output.");
            }

            var frame = FiberFrame.Require();
            frame.Cancel.ThrowIfCancelled();
            var w = new Waiter(_domain);
            _flusherIdle = w;
            w.Attach(frame.Cancel);
            try
            {
                await w.VoidTask;
            }
            finally
            {
                if (ReferenceEquals(_flusherIdle, w))
                {
                    _flusherIdle = null;
                }
            }
        }
    }

    /// <summary>Removes the first <paramref name="count"/> bytes of the pending output, after its owner has written them;
    /// wakes <see cref="FlushAsync"/> callers whose bytes are now all out.</summary>
    /// <param name="count">Bytes written; between 0 and the total of the last <see cref="AwaitBatchAsync"/> result.</param>
    /// <exception cref="InvalidOperationException">The writer has a sink and a flusher fiber.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or more than the bytes returned by <see cref="AwaitBatchAsync"/>.</exception>
    /// <remarks>Eio: <c>Buf_write.shift</c>.</remarks>
    public void Shift(int count)
    {
        RequireLowLevel();
        long available = 0;
        if (_queued is not null)
        {
            foreach (var segment in _queued)
            {
                available += segment.Length;
            }
        }

        if (count < 0 || count > available)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Only {available} bytes were handed out by AwaitBatchAsync.");
        }

        int left = count;
        int removed = 0;
        while (left > 0)
        {
            var head = _queued![removed];
            if (head.Length <= left)
            {
                left -= head.Length;
                removed++;
            }
            else
            {
                _queued[removed] = head[left..];
                left = 0;
            }
        }

        _queued!.RemoveRange(0, removed);
        _flushed += count;
        if (_queued.Count == 0 && _activeCount == _activeSealed)
        {
            // Everything taken out of the buffer has been written: reuse it from the start.
            _activeCount = 0;
            _activeSealed = 0;
        }

        WakeFlushWaiters();
    }

    /// <summary>Drives a low-level writer: calls <paramref name="writev"/> with each batch of output until the writer is
    /// closed and empty.</summary>
    /// <param name="writev">Writes some prefix of the buffers and returns the number of bytes written, or a negative number
    /// when the destination is closed.</param>
    /// <returns>True when the writer was closed and all its output written; false when <paramref name="writev"/> reported
    /// the destination closed (the writer is then closed and its remaining output dropped).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="writev"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The writer has a sink and a flusher fiber.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting for output.</exception>
    /// <remarks>Eio: <c>Buf_write.serialize</c> (<c>Ok ()</c> / <c>Error `Closed</c>). After a partial write the fiber yields
    /// before continuing, as Eio's does.</remarks>
    public async Task<bool> SerializeAsync(Func<IReadOnlyList<ReadOnlyMemory<byte>>, ValueTask<int>> writev)
    {
        ArgumentNullException.ThrowIfNull(writev);
        RequireLowLevel();
        while (true)
        {
            IReadOnlyList<ReadOnlyMemory<byte>> batch;
            try
            {
                batch = await AwaitBatchAsync();
            }
            catch (EndOfStreamException)
            {
                return true;
            }

            int n = await writev(batch);
            if (n < 0)
            {
                Close();
                Drain();
                return false;
            }

            Shift(n);
            long total = 0;
            foreach (var b in batch)
            {
                total += b.Length;
            }

            if (n < total)
            {
                await Fiber.YieldAsync();
            }
        }
    }

    /// <summary>Closes a low-level writer and returns its output not yet shifted out, which then counts as written.</summary>
    /// <returns>The bytes, in order.</returns>
    /// <exception cref="InvalidOperationException">The writer has a sink and a flusher fiber.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write.serialize_to_cstruct</c> on a writer from <c>create</c>. Never suspends.</remarks>
    public byte[] SerializeToArray()
    {
        RequireLowLevel();
        ThrowIfAborted();
        Close();
        SealTail();
        if (_queued is null)
        {
            return [];
        }

        long total = 0;
        foreach (var segment in _queued)
        {
            total += segment.Length;
        }

        var result = new byte[total];
        int at = 0;
        foreach (var segment in _queued)
        {
            segment.Span.CopyTo(result.AsSpan(at));
            at += segment.Length;
        }

        Drain();
        return result;
    }

    /// <summary>As <see cref="SerializeToArray"/>, decoded as UTF-8 (invalid sequences become U+FFFD).</summary>
    /// <returns>The text.</returns>
    /// <exception cref="InvalidOperationException">The writer has a sink and a flusher fiber.</exception>
    /// <exception cref="ObjectDisposedException">The writer was aborted.</exception>
    /// <remarks>Eio: <c>Buf_write.serialize_to_string</c> (OCaml strings are bytes; use <see cref="SerializeToArray"/> for binary output).</remarks>
    public string SerializeToString() => Encoding.UTF8.GetString(SerializeToArray());

    /// <summary>Moves the unsealed tail of the active buffer to the queue, so that output queued next comes after it.</summary>
    private void SealTail()
    {
        if (_activeCount > _activeSealed)
        {
            (_queued ??= new()).Add(_active.AsMemory(_activeSealed, _activeCount - _activeSealed));
            _activeSealed = _activeCount;
        }
    }

    /// <summary>Drops all queued output as if written (the writer is closed).</summary>
    private void Drain()
    {
        SealTail();
        long dropped = 0;
        if (_queued is not null)
        {
            foreach (var segment in _queued)
            {
                dropped += segment.Length;
            }

            _queued = null;
        }

        _flushed += dropped;
        _activeCount = 0;
        _activeSealed = 0;
        WakeFlushWaiters();
    }

    private void RequireLowLevel()
    {
        if (_sink is not null)
        {
            throw new InvalidOperationException(
                "This BufferedWriter has a sink and a flusher fiber; AwaitBatchAsync, Shift and SerializeAsync are for a writer created with new BufferedWriter(initialSize).");
        }
    }
}
