using System.Runtime.CompilerServices;
using EioSharp.Backends.Epoll;

namespace EioSharp.Backends.Uring;

/// <summary>
/// The multishot receive of one connected socket on one domain's ring: one IORING_OP_RECV with IORING_RECV_MULTISHOT and
/// IOSQE_BUFFER_SELECT whose completions each carry a filled buffer of the ring's <see cref="UringBufferRing"/>. The
/// buffers are queued here; a read copies from them into the caller's memory (the transport API reads into the caller's
/// buffer, so one copy stays: the gain is one SQE for many receives, not zero copies) and gives each buffer back to the
/// ring once it is consumed.
/// </summary>
/// <remarks>
/// <para>Armed by a read that finds the queue empty, it stays armed while the socket is read, and is re-armed by the next
/// read once the kernel ends it (EOF, an error, a cancellation, -ENOBUFS when the buffer ring is empty). It holds a use on
/// the fd while armed (the kernel's request holds the socket's file). Disarmed (IORING_OP_ASYNC_CANCEL) when: the waiting
/// reader was cancelled (data received meanwhile stays queued for the next read); <see cref="MaxQueued"/> buffers are
/// queued with no reader waiting (a connection that is not read must not take the ring's buffers); the socket is closed;
/// another domain reads the socket (<see cref="HandOverAsync"/>); the ring is torn down.</para>
/// <para>Fallback to one IORING_OP_RECV into the caller's buffer (the read returns -1 from <see cref="ReadAsync"/>): when the
/// ring has no buffer ring or refused multishot recv (EINVAL, kernel before 6.0), for one read after -ENOBUFS, and once the
/// socket is closed while a read is still in progress.</para>
/// <para>Cancellation (S13/S14): the caller's buffer is never given to the kernel (the kernel fills the ring's buffers), so
/// nothing writes into it after a cancelled read returned; data is taken from the queue by the reader itself after it
/// resumed, so a cancelled read takes none and none is lost. Used on its ring's domain thread only, except
/// <see cref="SocketClosed"/> and the start of a hand-over, which post to that domain.</para>
/// </remarks>
internal sealed class UringMultishotRecv(UringPoller ring, UringBufferRing? buffers, UringFd fd) : IUringMultishot
{
    /// <summary>Buffers queued with no reader waiting after which the request is cancelled.</summary>
    internal const int MaxQueued = 8;

    private readonly Queue<(ushort Bid, int Length)> _queue = new();
    private int _headOffset; // bytes of the queue's first buffer already read
    private byte[]? _leftover; // data moved out of the ring's buffers (ring torn down, hand-over): read first
    private int _leftoverOffset;
    private Waiter? _waiter;
    private Waiter? _handOver; // another domain's reader waiting for the request to end (any thread completes it)
    private ulong _tag;
    private bool _armed;
    private bool _cancelling;
    private bool _everReceived;
    private bool _eof;
    private bool _oneShotNext;
    private bool _closed;
    private bool _ringClosing;
    private bool _dead;
    private int _error;

    public UringPoller Ring => ring;

    /// <summary>Tests: how many times the request was armed (one SQE each).</summary>
    internal int Arms { get; private set; }

    /// <summary>Tests: whether the request is armed now (domain thread).</summary>
    internal bool IsArmed => _armed;

    /// <summary>Tests: buffers queued and not yet read (domain thread).</summary>
    internal int Queued => _queue.Count;

    /// <summary>
    /// Copies what is queued (or the end of stream, or the error the request ended with) into <paramref name="buffer"/>
    /// without waiting: true with the byte count (0 at EOF), false when nothing is there yet.
    /// </summary>
    /// <exception cref="Net.NetException">The request ended with an error (reported once).</exception>
    public unsafe bool TryTake(Memory<byte> buffer, out int n)
    {
        n = 0;
        var dest = buffer.Span;
        if (_leftover is { } left)
        {
            n = Math.Min(dest.Length, left.Length - _leftoverOffset);
            left.AsSpan(_leftoverOffset, n).CopyTo(dest);
            _leftoverOffset += n;
            if (_leftoverOffset == left.Length)
            {
                _leftover = null;
                _leftoverOffset = 0;
            }

            if (n == dest.Length || _leftover is not null)
            {
                return true;
            }
        }

        while (n < dest.Length && _queue.TryPeek(out var head))
        {
            int take = Math.Min(dest.Length - n, head.Length - _headOffset);
            new ReadOnlySpan<byte>(buffers!.Buffer(head.Bid) + _headOffset, take).CopyTo(dest[n..]);
            n += take;
            _headOffset += take;
            if (_headOffset == head.Length)
            {
                _queue.Dequeue();
                _headOffset = 0;
                buffers!.Return(head.Bid);
            }
        }

        if (n > 0 || dest.IsEmpty)
        {
            return true;
        }

        if (_error != 0)
        {
            int errno = _error;
            _error = 0;
            throw EpollIo.Error(errno, "read");
        }

        return _eof;
    }

    /// <summary>
    /// A read: the queued data, or waits for the request's next completion (arming it if needed); -1 when this read must
    /// be one IORING_OP_RECV into the caller's buffer (see the remarks).
    /// </summary>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting; nothing was taken.</exception>
    /// <exception cref="ObjectDisposedException">The socket was closed before the request could be armed.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<int> ReadAsync(FiberFrame frame, Memory<byte> buffer)
    {
        while (true)
        {
            if (TryTake(buffer, out int n))
            {
                return n;
            }

            if (_oneShotNext || _closed || _dead || buffers is null || !ring.MultishotRecvWorks || UringPoller.MultishotRecvDisabled)
            {
                _oneShotNext = false;
                return -1;
            }

            if (!_armed)
            {
                Arm(frame);
            }

            var waiter = Waiter.Rent(ring.Domain!, Tracing.TraceReason.IoRead);
            waiter.TraceArg = fd.Fd;
            _waiter = waiter;
            waiter.Attach(frame.Cancel);
            try
            {
                await waiter.VoidTask;
            }
            catch (CancelledException)
            {
                _waiter = null;
                Disarm();
                throw;
            }

            _waiter = null;
        }
    }

    private unsafe void Arm(FiberFrame frame)
    {
        frame.Cancel.ThrowIfCancelled();
        fd.Use("read");
        _armed = true;
        _cancelling = false;
        Arms++;
        _tag = ring.TrackMultishot(this);
        var sqe = ring.NextSqe(Sys.IORING_OP_RECV, fd.Fd, _tag);
        sqe->IoPrio = Sys.IORING_RECV_MULTISHOT;
        sqe->Flags = Sys.IOSQE_BUFFER_SELECT;
        sqe->BufIndex = UringBufferRing.GroupId;
    }

    private void Disarm()
    {
        if (_armed && !_cancelling && !_dead)
        {
            _cancelling = true;
            ring.CancelOp(_tag);
        }
    }

    /// <inheritdoc/>
    public void OnCompletion(int res, uint flags)
    {
        if ((flags & Sys.IORING_CQE_F_BUFFER) != 0)
        {
            ushort bid = (ushort)(flags >> Sys.IORING_CQE_BUFFER_SHIFT);
            buffers!.Taken();
            if (res > 0 && !_dead)
            {
                _everReceived = true;
                _queue.Enqueue((bid, res));
                if (_waiter is null && _queue.Count >= MaxQueued)
                {
                    Disarm();
                }
            }
            else
            {
                buffers.Return(bid);
            }
        }

        if ((flags & Sys.IORING_CQE_F_MORE) == 0)
        {
            _armed = false;
            _cancelling = false;
            if (res == 0)
            {
                _eof = true;
            }
            else if (res < 0)
            {
                switch (-res)
                {
                    case Sys.ENOBUFS:
                        _oneShotNext = true; // the ring is empty: this read takes what is there with one recv of its own
                        break;
                    case Sys.EINVAL when !_everReceived:
                        ring.MultishotRecvWorks = false; // a kernel without multishot recv: one SQE per read on this ring
                        break;
                    case Sys.ECANCELED or EpollIo.EINTR:
                        break;
                    default:
                        _error = -res;
                        break;
                }
            }

            fd.EndUse();
            if (_ringClosing)
            {
                Volatile.Write(ref _dead, true); // the buffers stay readable: the ring's memory outlives it while some are out
            }

            if (_handOver is { } h)
            {
                _handOver = null;
                MoveQueueToLeftover();
                h.TryComplete(true);
            }
            else if (_closed && _waiter is null)
            {
                ReturnQueued();
            }
        }

        var w = _waiter;
        if (w is not null && (res >= 0 || (flags & Sys.IORING_CQE_F_MORE) == 0))
        {
            _waiter = null;
            w.TryComplete(true);
        }
    }

    private void ReturnQueued()
    {
        while (_queue.TryDequeue(out var b))
        {
            buffers!.Return(b.Bid);
        }

        _headOffset = 0;
    }

    // Copies the unread bytes out of the ring's buffers (which go back to the ring) into _leftover, read first from now on.
    internal unsafe void MoveQueueToLeftover()
    {
        int total = (_leftover?.Length ?? 0) - _leftoverOffset;
        foreach (var b in _queue)
        {
            total += b.Length;
        }

        total -= _headOffset;
        if (total == 0)
        {
            return;
        }

        var data = new byte[total];
        int n = 0;
        if (_leftover is { } left)
        {
            left.AsSpan(_leftoverOffset).CopyTo(data);
            n = left.Length - _leftoverOffset;
        }

        while (_queue.TryDequeue(out var b))
        {
            var part = new ReadOnlySpan<byte>(buffers!.Buffer(b.Bid) + _headOffset, b.Length - _headOffset);
            part.CopyTo(data.AsSpan(n));
            n += part.Length;
            _headOffset = 0;
            buffers.Return(b.Bid);
        }

        _leftover = data;
        _leftoverOffset = 0;
    }

    /// <summary>The socket was closed (any thread): the request is cancelled (it holds the socket open). On the ring's own
    /// domain with no reader waiting, the cancellation is submitted and its completion awaited at once, so that the socket is
    /// really closed when <c>Close</c> returns, as on the other backends; from another thread it is posted to the domain.</summary>
    public void SocketClosed()
    {
        if (ring.Domain is { IsCurrent: true })
        {
            OnSocketClosed();
            if (_armed && _waiter is null)
            {
                ring.SubmitAndReapUntil(static s => !((UringMultishotRecv)s!)._armed, this, TimeSpan.FromSeconds(1));
            }
        }
        else
        {
            ring.Post(static s => ((UringMultishotRecv)s!).OnSocketClosed(), this); // never dropped, even if that domain is ending
        }
    }

    private void OnSocketClosed()
    {
        _closed = true;
        Disarm();
        if (!_armed && _waiter is null)
        {
            ReturnQueued();
        }
    }

    /// <summary>
    /// Another domain's reader takes the socket over (on that domain, with the read in progress): this domain's request is
    /// cancelled and, once it has ended, the unread data is copied out of this ring's buffers; the new reader reads it first
    /// (<see cref="TakeLeftover"/>). Not cancellable: the request's end is awaited (one round of this domain). Posted to the
    /// ring itself (<see cref="UringPoller.Post"/>), not to its domain's run queue: a domain that has just finished (the
    /// previous reader's) drops what is posted to its run queue, and the hand-over waited forever; the ring runs the
    /// hand-over at its teardown, or at once on this thread once it is torn down.
    /// </summary>
    public async ValueTask HandOverAsync(Domain current)
    {
        var done = new Waiter(current);
        ring.Post(static s => OnHandOver((((UringMultishotRecv, Waiter))s!).Item1, (((UringMultishotRecv, Waiter))s!).Item2), (this, done));
        await done.VoidTask;
    }

    private static void OnHandOver(UringMultishotRecv m, Waiter done)
    {
        m._closed = true; // no re-arm here any more
        if (m._armed && !m._dead)
        {
            m._handOver = done;
            m.Disarm();
            return;
        }

        m.MoveQueueToLeftover();
        done.TryComplete(true);
    }

    /// <summary>The data moved out by a hand-over or a ring's teardown (null when none), for the socket's next reader.</summary>
    public byte[]? TakeLeftover()
    {
        if (_leftover is null)
        {
            return null;
        }

        var left = _leftoverOffset == 0 ? _leftover : _leftover[_leftoverOffset..];
        _leftover = null;
        _leftoverOffset = 0;
        return left;
    }

    /// <summary>Starts with <paramref name="data"/> unread (a previous domain's leftover).</summary>
    public void SetLeftover(byte[]? data)
    {
        _leftover = data;
        _leftoverOffset = 0;
    }

    /// <summary>Whether nothing is armed, queued or pending here (a reader on another domain may then simply start afresh).</summary>
    public bool IsIdle => !_armed && _queue.Count == 0 && _leftover is null && !_eof && _error == 0 && _handOver is null;

    /// <inheritdoc/>
    public void RingClosing()
    {
        _ringClosing = true;
        if (_armed && !_cancelling)
        {
            _cancelling = true;
            ring.CancelOp(_tag);
        }
    }

    /// <inheritdoc/>
    public void Abandoned()
    {
        Volatile.Write(ref _dead, true);
        if (_armed)
        {
            _armed = false;
            fd.EndUse();
        }
    }
}
