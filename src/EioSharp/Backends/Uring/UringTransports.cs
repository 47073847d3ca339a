using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Native;
using EioSharp.IO;
using EioSharp.Net;

namespace EioSharp.Backends.Uring;

// The io_uring backend's TCP transports (Linux). Sockets are created with System.Net.Sockets.Socket (listen, connect) or by
// IORING_OP_ACCEPT (bare fds); .NET's async methods are never called on them. Every operation is an SQE on the calling
// domain's ring (see UringPoller) and the fiber resumes when its completion arrives; there is no readiness step. A socket
// may be used from several domains (each submits to its own ring). Close (S29) is idempotent; operations hold a use and the
// fd is closed only when the last one ends.

/// <summary>Shared ownership of one socket fd used through io_uring (nothing to unregister: operations name the fd in their SQEs).</summary>
internal sealed class UringFd : NativeSocketFd
{
    public UringFd(Socket socket)
        : base(socket)
    {
    }

    public UringFd(int fd)
        : base(fd)
    {
    }

    /// <summary>One IORING_OP_RECV into <paramref name="buffer"/> (pinned until the completion) on the calling fiber, which holds a use; <paramref name="what"/> names it in errors.</summary>
    /// <exception cref="NetException">The socket failed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled and the kernel cancelled the receive (nothing was read).</exception>
    public async ValueTask<int> RecvAsync(FiberFrame frame, Memory<byte> buffer, string what)
    {
        var pin = buffer.Pin();
        var op = UringOp.Start(frame, Sys.IORING_OP_RECV, Fd, pin, UringIo.Addr(pin), (uint)buffer.Length, 0);
        int res = await op.Task;
        return res >= 0 ? res : throw EpollIo.Error(-res, what);
    }
}

/// <summary>A connected TCP socket on the io_uring backend.</summary>
internal sealed class UringStreamTransport(UringFd fd, EndPoint? remote) : StreamTransport
{
    private const int MSG_NOSIGNAL = 0x4000;
    private const int EPIPE = 32;
    private EndPoint? _local;
    private int _reading;
    private int _writing;
    private ReadSource? _readSource;
    private WriteSource? _writeSource;
    private UringMultishotRecv? _recv; // bound to the ring of the domain that reads (see Multishot)

    private UringFd SocketFd => fd;

    public override EndPoint? RemoteEndPoint { get; } = remote;

    public override EndPoint? LocalEndPoint => _local ??= fd.LocalEndPoint();

    public override bool IsClosed => fd.IsClosed;

    public override SocketOptionTarget Options => new NativeSocketOptions(fd, fd.Fd);

    public override bool NoDelay
    {
        get => fd.GetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY) != 0;
        set => fd.SetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, value ? 1 : 0);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        try
        {
            var frame = fd.Begin("read");
            if (Interlocked.Exchange(ref _reading, 1) != 0)
            {
                fd.EndUse();
                throw new InvalidOperationException("Another fiber is already reading from this socket.");
            }

            try
            {
                var ring = UringOp.CurrentRing();
                if (_recv is { } bound && !ReferenceEquals(bound.Ring, ring))
                {
                    return ReadForeignAsync(frame, bound, ring, buffer);
                }

                if (Multishot(ring) is { } multishot)
                {
                    if (multishot.TryTake(buffer, out int n))
                    {
                        Volatile.Write(ref _reading, 0);
                        fd.EndUse();
                        return new ValueTask<int>(n);
                    }

                    return ReadMultishotAsync(frame, multishot, buffer);
                }

                var source = _readSource ??= new ReadSource(this);
                return source.Start(frame, buffer);
            }
            catch
            {
                Volatile.Write(ref _reading, 0);
                fd.EndUse();
                throw;
            }
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<int>(ex);
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        try
        {
            var frame = fd.Begin("write");
            if (Interlocked.Exchange(ref _writing, 1) != 0)
            {
                fd.EndUse();
                throw new InvalidOperationException("Another fiber is already writing to this socket.");
            }

            try
            {
                if (Volatile.Read(ref _behind) is not null || Volatile.Read(ref _behindError) is not null)
                {
                    // A write-behind send is still in flight (this write goes after it) or failed (reported here).
                    return WriteAfterBehindAsync(frame, data);
                }

                return StartWrite(frame, data);
            }
            catch
            {
                Volatile.Write(ref _writing, 0);
                fd.EndUse();
                throw;
            }
        }
        catch (Exception ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    // The write proper, once no write-behind send is in flight; the caller holds _writing and a use, which this passes on
    // (to the write-behind send, or to the WriteSource, or back when the write is done) or, when it throws, leaves to the
    // caller.
    private ValueTask StartWrite(FiberFrame frame, ReadOnlyMemory<byte> data)
    {
        int sent = 0;
        var options = UringOp.CurrentRing().Options;
        if (options.UringDirectSend)
        {
            // Opt-in (EioBackendOptions.UringDirectSend): one non-blocking send(2) first, as the epoll backend does: a reply nearly
            // always fits in the socket's buffer, and then the write is done here, with no SQE, no suspension and
            // no completion to reap. What does not fit (EAGAIN, or a partial send) goes through the ring as before.
            nint n = EpollIo.Send(fd.Fd, data.Span, out int errno, EpollIo.MSG_DONTWAIT);
            if (n == data.Length)
            {
                Volatile.Write(ref _writing, 0);
                fd.EndUse();
                return ValueTask.CompletedTask;
            }

            if (n < 0 && errno != EpollIo.EAGAIN)
            {
                throw EpollIo.Error(errno, "write");
            }

            sent = (int)Math.Max(0, n);
        }

        if (options.UringWriteBehind && data.Length - sent <= WriteBehindMaxBytes)
        {
            // Write-behind: the bytes are copied into a buffer of the ring and sent by an SQE no fiber waits for;
            // the send takes over this write's use of the fd (held until its completion) and the write is done.
            var behind = _behindSend ??= new BehindSend(this);
            behind.Start(UringOp.CurrentRing(), data.Span[sent..]);
            Volatile.Write(ref _writing, 0);
            return ValueTask.CompletedTask;
        }

        var source = _writeSource ??= new WriteSource(this);
        return source.Start(frame, data, sent);
    }

    // A write while a write-behind send is in flight: waits for its completion first (bytes stay in order), then writes.
    // The caller holds _writing and a use.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteAfterBehindAsync(FiberFrame frame, ReadOnlyMemory<byte> data)
    {
        bool handedOver = false;
        try
        {
            await WaitBehindAsync(frame);
            var write = StartWrite(frame, data);
            handedOver = true; // from here the write (or the send behind it) releases _writing and the use
            await write;
        }
        finally
        {
            if (!handedOver)
            {
                Volatile.Write(ref _writing, 0);
                fd.EndUse();
            }
        }
    }

    // Waits until no write-behind send is in flight, then throws the error of one that failed, if any (kept: every later
    // write fails the same way, as the connection's sending side is broken).
    private async ValueTask WaitBehindAsync(FiberFrame frame)
    {
        while (Volatile.Read(ref _behind) is { } b && b.TryAddWaiter(frame) is { } waiter)
        {
            await waiter.VoidTask;
        }

        Volatile.Read(ref _behindError)?.Throw();
    }

    /// <inheritdoc/>
    public override long UnsentBytes => Volatile.Read(ref _unsent);

    /// <inheritdoc/>
    public override ValueTask FlushAsync()
    {
        if (Volatile.Read(ref _behind) is null && Volatile.Read(ref _behindError) is null)
        {
            return ValueTask.CompletedTask;
        }

        return FlushSlowAsync();
    }

    private async ValueTask FlushSlowAsync()
    {
        var frame = fd.Begin("flush");
        try
        {
            await WaitBehindAsync(frame);
        }
        finally
        {
            fd.EndUse();
        }
    }

    /// <summary>The largest write sent behind the writer (bytes); a larger write waits for its sends as before (a copy of
    /// it would cost more than the suspension it saves, and the socket's bound on unsent bytes stays one such buffer).</summary>
    internal const int WriteBehindMaxBytes = 64 * 1024;

    private BehindSend? _behind; // the write-behind send in flight, null when none (set by the writer, cleared by its completion)
    private BehindSend? _behindSend; // this socket's write-behind state, reused by each such send (one at a time)
    private ExceptionDispatchInfo? _behindError; // a write-behind send failed: reported by every later write and flush
    private long _unsent; // bytes of the write-behind send not yet taken by the kernel (UnsentBytes)

    /// <summary>
    /// A write sent behind its writer: the bytes were copied into a pinned buffer of the ring (<see
    /// cref="UringPoller.RentSendBuffer"/>) and queued as IORING_OP_SEND, which the ring submits with the round's other
    /// SQEs (the connection's next receive among them: one io_uring_enter for both) while the writer goes on; no fiber
    /// waits for the completion, which the ring dispatches here (a multishot-style registration, one completion). A short
    /// send is continued from the completion; an error is kept for the socket's next write, flush or shutdown. The
    /// send holds a use of the fd until its last completion, so a Close meanwhile closes the fd only once every byte was
    /// taken by the kernel (or the send failed); the buffer goes back to the ring's pool only then. The ring's teardown
    /// (its domain has ended) cancels a send still waiting for room in the socket.
    /// <para>Session 22 (h141): on a kernel with IORING_FEAT_CQE_SKIP the first send of each write is a skipped send
    /// (<see cref="UringPoller.QueueSkippedSend"/>): it sends every byte in the entry that submits it and posts no
    /// completion, so it no longer ends the domain's wait (a lone client's request then costs one io_uring_enter: the
    /// reply's send and the next receive submitted, and the wait, in one call). The ring confirms it after that entry
    /// (<see cref="SkipSucceeded"/>), which ends it as a completion did: buffer back to the pool, fd use released, later
    /// writes free to go. When it cannot send everything at once (the socket is full: a short count or -EAGAIN) it
    /// fails and posts its completion, and the rest goes as an ordinary send that waits for room; an error is kept for
    /// the socket's next write, flush or shutdown, as before.</para>
    /// </summary>
    private sealed unsafe class BehindSend(UringStreamTransport owner) : IUringMultishot, IUringSkippedSend
    {
        private readonly object _lock = new();
        private UringPoller? _ring;
        private ulong _tag;
        private byte[]? _buffer;
        private int _length;
        private int _sent;
        private bool _cancelling;
        private bool _skipping; // the send in flight is a skipped send (no completion unless it fails)
        private int _skipGeneration;
        private List<Waiter>? _waiters;

        /// <summary>Copies <paramref name="data"/> and queues its send on <paramref name="ring"/> (its domain's thread); the
        /// caller's use of the fd passes to this send.</summary>
        public void Start(UringPoller ring, ReadOnlySpan<byte> data)
        {
            var buffer = ring.RentSendBuffer(data.Length);
            data.CopyTo(buffer);
            _ring = ring;
            _length = data.Length;
            _sent = 0;
            _cancelling = false;
            _buffer = buffer;
            Volatile.Write(ref owner._unsent, data.Length);
            Volatile.Write(ref owner._behind, this);
            Submit(skip: ring.CqeSkipWorks);
        }

        private void Submit(bool skip = false)
        {
            _tag = _ring!.TrackMultishot(this);
            var sqe = _ring.NextSqe(Sys.IORING_OP_SEND, owner.SocketFd.Fd, _tag);
            sqe->Addr = (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer!)) + (ulong)_sent;
            sqe->Len = (uint)(_length - _sent);
            if (skip)
            {
                // All now or a completion: never parked (MSG_DONTWAIT), a short send fails (MSG_WAITALL).
                sqe->Flags = Sys.IOSQE_CQE_SKIP_SUCCESS;
                sqe->OpFlags = MSG_NOSIGNAL | Sys.MSG_DONTWAIT | Sys.MSG_WAITALL;
                _skipping = true;
                _ring.QueueSkippedSend(this, ++_skipGeneration);
            }
            else
            {
                sqe->OpFlags = MSG_NOSIGNAL;
            }
        }

        /// <inheritdoc/>
        public bool SkipSucceeded(int generation)
        {
            if (!_skipping || generation != _skipGeneration || _ring is not { } ring)
            {
                return false; // it failed and posted its completion (handled there), or it has ended
            }

            _skipping = false;
            ring.UntrackMultishot(_tag);
            _sent = _length;
            End(returnBuffer: true);
            return true;
        }

        /// <summary>A waiter the calling fiber can await until this send has ended (cancellable: the send goes on), or
        /// null when it has ended already (any thread).</summary>
        public Waiter? TryAddWaiter(FiberFrame frame)
        {
            if (_skipping && _ring is { Domain.IsCurrent: true } own)
            {
                // A skipped send queued on this domain's ring ends only after the entry that submits it, and the next
                // entry may be a sleep (the pre-pass backs off) that nothing else ends: submit it now instead, which
                // ends it here unless the socket was full (then it goes on as an ordinary send, whose completion comes).
                own.PollNow();
            }

            var waiter = new Waiter(Domain.Current!) { TraceReason = Tracing.TraceReason.IoWrite };
            UringPoller? ring;
            lock (_lock)
            {
                if (!ReferenceEquals(Volatile.Read(ref owner._behind), this))
                {
                    return null;
                }

                ring = _ring;
                (_waiters ??= []).Add(waiter);
            }

            waiter.Attach(frame.Cancel);
            if (ring is not null && ring.Domain is not { IsCurrent: true })
            {
                // From another domain: a skipped send is confirmed only when its ring's entry returns, which may be a long
                // sleep; a post wakes it (a send still waiting for room ends with its completion anyway).
                ring.Post(static _ => { }, null);
            }

            return waiter;
        }

        public void OnCompletion(int res, uint flags)
        {
            if (_skipping)
            {
                // A skipped send failed (only then does it post): a short count (the socket filled up) or -EAGAIN (it
                // was full) means the rest waits for room as an ordinary send; EINVAL, a kernel that refuses the flags
                // together, turns skipped sends off on this ring and resends; any other error is the socket's (below).
                _skipping = false;
                if (res == -EpollIo.EAGAIN || res == -Sys.EINVAL)
                {
                    if (res == -Sys.EINVAL)
                    {
                        _ring!.CqeSkipRefused();
                    }

                    res = 0;
                }

                if (res >= 0 && _sent + res < _length && !_cancelling)
                {
                    _sent += res;
                    Volatile.Write(ref owner._unsent, _length - _sent);
                    Submit();
                    if (owner.SocketFd.IsClosed)
                    {
                        StartCloseTimer(_ring!); // closed while it was a skipped send (no grace timer then): parked now
                    }

                    return;
                }
            }

            if (res > 0)
            {
                _sent += res;
                Volatile.Write(ref owner._unsent, _length - _sent);
                if (_sent < _length && !_cancelling)
                {
                    Submit(); // a short send (the socket's buffer filled up): the rest, in order, before any later write
                    return;
                }
            }

            if (_sent < _length)
            {
                int errno = res < 0 ? -res : EPIPE;
                var error = errno == Sys.ECANCELED
                    ? new NetException("write: the send was cancelled as its domain ended, with bytes not sent.", SocketError.OperationAborted, null)
                    : EpollIo.Error(errno, "write");
                Volatile.Write(ref owner._behindError, ExceptionDispatchInfo.Capture(error));
            }

            End(returnBuffer: true);
        }

        private void End(bool returnBuffer)
        {
            var buffer = _buffer!;
            var ring = _ring!;
            _buffer = null;
            _ring = null;
            List<Waiter>? waiters;
            lock (_lock)
            {
                waiters = _waiters;
                _waiters = null;
                Volatile.Write(ref owner._unsent, 0);
                Volatile.Write(ref owner._behind, null);
            }

            if (returnBuffer)
            {
                ring.ReturnSendBuffer(buffer);
            }

            owner.SocketFd.EndUse();
            if (waiters is not null)
            {
                foreach (var w in waiters)
                {
                    w.TryComplete(true); // a waiter whose fiber was cancelled has lost the race: dropped
                }
            }
        }

        /// <summary>The socket was closed (any thread): once <see cref="CloseGrace"/> has passed with this send still in
        /// flight, it is cancelled (what the kernel took already is delivered; the rest is dropped, as a writer's pending
        /// bytes are on the other backends when its socket is closed), and its fd use and buffer are released.</summary>
        public void SocketClosed()
        {
            var ring = _ring;
            if (ring is null)
            {
                return;
            }

            if (ring.Domain is { IsCurrent: true })
            {
                StartCloseTimer(ring);
            }
            else
            {
                ring.Post(static s => { var b = (BehindSend)s!; if (b._ring is { } r) b.StartCloseTimer(r); }, this);
            }
        }

        // Domain thread: an IORING_OP_TIMEOUT whose expiry cancels this send if it is still the one in flight.
        private void StartCloseTimer(UringPoller ring)
        {
            if (_buffer is null || _cancelling || _skipping)
            {
                return; // a skipped send never waits for room: it ends with the entry that submits it (or goes on as an
                        // ordinary send, which starts the timer then)
            }

            new CloseTimer(this, ring, ++_closeTimers).Start(CloseGrace);
        }

        private int _closeTimers; // generation: a timer from an earlier send of this socket does nothing

        private void CloseGraceExpired(UringPoller ring, int generation)
        {
            if (generation == _closeTimers && ReferenceEquals(_ring, ring) && _buffer is not null && !_cancelling)
            {
                _cancelling = true;
                ring.CancelOp(_tag);
            }
        }

        /// <summary>The grace timer of a closed socket's send: one relative IORING_OP_TIMEOUT (its timespec pinned until the
        /// kernel has read it at submission); cancelled with the ring.</summary>
        private sealed class CloseTimer(BehindSend send, UringPoller ring, int generation) : IUringMultishot
        {
            private readonly long[] _timespec = GC.AllocateArray<long>(2, pinned: true);
            private ulong _tag;

            public void Start(TimeSpan after)
            {
                long ns = Math.Max(1, (long)(after.TotalMilliseconds * 1_000_000));
                _timespec[0] = ns / 1_000_000_000;
                _timespec[1] = ns % 1_000_000_000;
                _tag = ring.TrackMultishot(this);
                var sqe = ring.NextSqe(Sys.IORING_OP_TIMEOUT, -1, _tag);
                sqe->Addr = (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_timespec));
                sqe->Len = 1;
            }

            public void OnCompletion(int res, uint flags)
            {
                if (res == -Sys.ETIME)
                {
                    send.CloseGraceExpired(ring, generation);
                }
            }

            public void RingClosing() => ring.CancelOp(_tag);

            public void Abandoned()
            {
            }
        }

        public void RingClosing()
        {
            if (!_cancelling && _buffer is not null)
            {
                _cancelling = true;
                _ring!.CancelOp(_tag);
            }
        }

        public void Abandoned()
        {
            _skipping = false;
            if (_buffer is not null)
            {
                // The ring was closed before the send's last completion: its buffer is not reused (the kernel may still
                // hold it as it tears the request down); the GC takes it once nothing refers to it.
                Volatile.Write(ref owner._behindError, ExceptionDispatchInfo.Capture(new NetException("write: the send was abandoned as its domain ended.", SocketError.OperationAborted, null)));
                End(returnBuffer: false);
            }
        }
    }


    // This socket's multishot recv on the calling domain's ring (created by the first read), or null when reads are one
    // IORING_OP_RECV each (multishot recv off, or the kernel refused it or the buffer ring).
    private UringMultishotRecv? Multishot(UringPoller ring)
    {
        if (_recv is { } existing)
        {
            return existing;
        }

        if (UringPoller.MultishotRecvDisabled || !ring.MultishotRecvWorks || ring.RecvBuffers() is not { } buffers)
        {
            return null;
        }

        return _recv = new UringMultishotRecv(ring, buffers, fd);
    }

    // A read that waits for the multishot request (or falls back to one IORING_OP_RECV); the caller holds _reading and a use.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadMultishotAsync(FiberFrame frame, UringMultishotRecv multishot, Memory<byte> buffer)
    {
        try
        {
            int n = await multishot.ReadAsync(frame, buffer);
            return n >= 0 ? n : await fd.RecvAsync(frame, buffer, "read");
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
            fd.EndUse();
        }
    }

    // A read on another domain than the one whose ring has this socket's multishot recv: that request is ended there and
    // its unread data moved out (one round of that domain; not cancellable, so that no data is lost), then this domain
    // reads, the moved data first.
    private async ValueTask<int> ReadForeignAsync(FiberFrame frame, UringMultishotRecv bound, UringPoller ring, Memory<byte> buffer)
    {
        try
        {
            // Also when that domain has finished: the hand-over then runs at its ring's teardown or here at once (reading
            // IsDead here raced with the teardown, which may still be abandoning the request on that thread).
            await bound.HandOverAsync(ring.Domain!);

            var next = new UringMultishotRecv(ring, UringPoller.MultishotRecvDisabled || !ring.MultishotRecvWorks ? null : ring.RecvBuffers(), fd);
            next.SetLeftover(bound.TakeLeftover());
            _recv = next;
            int n = await next.ReadAsync(frame, buffer);
            return n >= 0 ? n : await fd.RecvAsync(frame, buffer, "read");
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
            fd.EndUse();
        }
    }

    // The read in progress, as the ValueTask the caller awaits: one object per transport (one reader at a time, checked by
    // _reading) that forwards to the pooled UringOp, so that a read that waits allocates nothing (before: the boxes of two
    // async methods, RecvAsync's and ReadAsync's, plus their continuations). The version token makes a second await of a
    // finished read fail.
    private sealed class ReadSource(UringStreamTransport owner) : IValueTaskSource<int>
    {
        private UringOp? _op;
        private short _opVersion;
        private short _version;
        private int _length; // the read's buffer length
        private bool _lastShort; // the last read returned data but less than its buffer (the socket was drained)

        public ValueTask<int> Start(FiberFrame frame, Memory<byte> buffer)
        {
            var pin = buffer.Pin();
            ushort ioPrio = 0;
            if (_lastShort && UringOp.CurrentRing() is { DeferTaskRun: true } ring && ring.Options.UringRecvPollFirst)
            {
                // EioBackendOptions.UringRecvPollFirst: the last read drained the socket, so a receive tried now would most
                // likely find nothing and arm the wait anyway; arm it at once (no failed tcp_recvmsg first).
                ioPrio = Sys.IORING_RECVSEND_POLL_FIRST;
                ring.RecvPollFirsts++;
            }

            _length = buffer.Length;
            _op = UringOp.Start(frame, Sys.IORING_OP_RECV, owner.SocketFd.Fd, pin, UringIo.Addr(pin), (uint)buffer.Length, 0, ioPrio: ioPrio);
            _opVersion = _op.Version;
            return new ValueTask<int>(this, _version);
        }

        private UringOp Op(short token) =>
            token == _version && _op is { } op ? op : throw new InvalidOperationException("This read was already awaited (a ValueTask may be awaited once).");

        public ValueTaskSourceStatus GetStatus(short token) => Op(token).GetStatus(_opVersion);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            Op(token).OnCompleted(continuation, state, _opVersion, flags);

        public int GetResult(short token)
        {
            var op = Op(token);
            _op = null;
            _version++;
            int res;
            try
            {
                res = op.GetResult(_opVersion);
            }
            finally
            {
                Volatile.Write(ref owner._reading, 0);
                owner.SocketFd.EndUse();
            }

            _lastShort = res > 0 && res < _length;
            return res >= 0 ? res : throw EpollIo.Error(-res, "read");
        }
    }

    // The write in progress (one writer at a time, checked by _writing): sends until every byte is written, each send a
    // pooled UringOp whose completion resumes this source (on the fiber: the op records it), which starts the next part or
    // resumes the caller. No allocation per write (before: WriteAsync's async box and its continuation).
    private sealed class WriteSource(UringStreamTransport owner) : IValueTaskSource
    {
        private static readonly Action<object?> s_sendDone = static o => ((WriteSource)o!).OnSendDone();

        private FiberFrame? _frame;
        private ReadOnlyMemory<byte> _data;
        private int _sent;
        private UringOp? _op;
        private short _opVersion;
        private short _version;
        private bool _done;
        private ExceptionDispatchInfo? _error;
        private Action<object?>? _continuation;
        private object? _continuationState;

        public ValueTask Start(FiberFrame frame, ReadOnlyMemory<byte> data, int sent)
        {
            _frame = frame;
            _data = data;
            _sent = sent;
            _done = false;
            _error = null;
            StartSend();
            return new ValueTask(this, _version);
        }

        private void StartSend()
        {
            var chunk = _data[_sent..];
            var pin = chunk.Pin();
            _op = UringOp.Start(_frame!, Sys.IORING_OP_SEND, owner.SocketFd.Fd, pin, UringIo.Addr(pin), (uint)chunk.Length, MSG_NOSIGNAL);
            _opVersion = _op.Version;
        }

        private void CheckToken(short token)
        {
            if (token != _version)
            {
                throw new InvalidOperationException("This write was already awaited (a ValueTask may be awaited once).");
            }
        }

        public ValueTaskSourceStatus GetStatus(short token)
        {
            CheckToken(token);
            if (!_done)
            {
                // Still sending; a first send that already completed is finished by OnCompleted's path (never inline here).
                return ValueTaskSourceStatus.Pending;
            }

            return _error is null ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Faulted;
        }

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            CheckToken(token);
            _continuation = continuation;
            _continuationState = state;
            if (_done)
            {
                Domain.Current!.Enqueue(continuation, state, FiberFrame.Current);
                return;
            }

            _op!.OnCompleted(s_sendDone, this, _opVersion, flags);
        }

        // The current send's completion, run by the domain with the writing fiber installed.
        private void OnSendDone()
        {
            var op = _op!;
            _op = null;
            try
            {
                int res = op.GetResult(_opVersion);
                if (res < 0)
                {
                    throw EpollIo.Error(-res, "write");
                }

                _sent += res;
                if (_sent < _data.Length)
                {
                    StartSend(); // a partial send: the rest, as the same write
                    _op!.OnCompleted(s_sendDone, this, _opVersion, ValueTaskSourceOnCompletedFlags.None);
                    return;
                }
            }
            catch (Exception ex)
            {
                _error = ExceptionDispatchInfo.Capture(ex);
            }

            _done = true;
            var c = _continuation!;
            var s = _continuationState;
            _continuation = null;
            _continuationState = null;
            c(s);
        }

        public void GetResult(short token)
        {
            CheckToken(token);
            if (!_done)
            {
                throw new InvalidOperationException("The write has not completed.");
            }

            _version++;
            var error = _error;
            _error = null;
            _data = default;
            _frame = null;
            Volatile.Write(ref owner._writing, 0);
            owner.SocketFd.EndUse();
            error?.Throw();
        }
    }

    public override ValueTask ShutdownAsync(ShutdownCommand command)
    {
        if (command != ShutdownCommand.Receive && Volatile.Read(ref _behind) is not null)
        {
            return ShutdownAfterBehindAsync(command); // shutting the sending side with bytes unsent would cut them off
        }

        return fd.Shutdown(command);
    }

    private async ValueTask ShutdownAfterBehindAsync(ShutdownCommand command)
    {
        var frame = fd.Begin("shutdown");
        try
        {
            while (Volatile.Read(ref _behind) is { } b && b.TryAddWaiter(frame) is { } waiter)
            {
                await waiter.VoidTask;
            }
        }
        finally
        {
            fd.EndUse();
        }

        await fd.Shutdown(command);
    }

    public override bool Close()
    {
        if (!fd.Close())
        {
            return false;
        }

        Volatile.Read(ref _recv)?.SocketClosed(); // the armed request holds the socket open: cancel it
        Volatile.Read(ref _behind)?.SocketClosed(); // a send parked for room: bounded by CloseGrace, then cancelled
        return true;
    }

    /// <summary>How long a write-behind send still in flight when its socket is closed may go on delivering its bytes
    /// (a slow reader gets them all, as the kernel delivers what it has buffered after a close); after that it is
    /// cancelled, so a peer that never reads cannot keep the closed socket's descriptor and buffer: 5 s (tests shorten it).</summary>
    internal static TimeSpan CloseGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Tests: this socket's multishot recv, if a read created one.</summary>
    internal UringMultishotRecv? MultishotRecv => _recv;
}

/// <summary>
/// A listening socket (TCP, Unix stream) on the io_uring backend. Accepted on one domain only, it uses one multishot
/// IORING_OP_ACCEPT per domain (<see cref="UringMultishotAccept"/>: one SQE for many connections); shared by accept loops
/// on several domains, or on a kernel that refuses multishot accept, each accept is one IORING_OP_ACCEPT.
/// </summary>
/// <remarks>
/// Why not multishot on several domains: the kernel's wake-ups of a listener are exclusive and wake the first armed waiter
/// in its queue; a multishot request stays in that queue, so the first domain's request would take every connection (and
/// drain the backlog into a domain that may be busy) while the others sleep. One-shot accepts leave the queue when they
/// complete and re-enter at its tail, which spreads connections over the loops (S21). The switch happens when
/// <c>ListeningSocket.RunServerAsync</c> announces several loops, or when a second domain accepts.
/// </remarks>
internal sealed class UringListenerTransport(Socket socket) : ListenerTransport
{
    private const int SOCK_CLOEXEC = 0x80000;
    private const int AddrSize = 128;
    private readonly UringFd _fd = new(socket);
    private readonly List<UringMultishotAccept> _multishots = [];
    private bool _shared;

    /// <inheritdoc/>
    public override void ExpectAcceptLoops(int loops)
    {
        if (loops > 1)
        {
            MarkShared();
        }
    }

    private void MarkShared()
    {
        UringMultishotAccept[] others;
        lock (_multishots)
        {
            if (_shared)
            {
                return;
            }

            _shared = true;
            others = [.. _multishots];
        }

        foreach (var m in others)
        {
            m.Shared();
        }
    }

    /// <summary>This ring's multishot accept of this listener, or null when accepts here are one SQE each.</summary>
    private UringMultishotAccept? Multishot(UringPoller ring)
    {
        if (!ring.MultishotAcceptWorks || UringPoller.MultishotAcceptDisabled)
        {
            return null;
        }

        bool another = false;
        lock (_multishots)
        {
            if (_shared)
            {
                return null;
            }

            foreach (var m in _multishots)
            {
                if (ReferenceEquals(m.Ring, ring))
                {
                    return m;
                }

                another |= !m.IsDead;
            }

            if (!another)
            {
                _multishots.RemoveAll(m => m.IsDead);
                var created = new UringMultishotAccept(ring, this, _fd);
                _multishots.Add(created);
                return created;
            }
        }

        MarkShared(); // a second domain accepts: every domain goes back to one SQE per accept
        return null;
    }

    /// <summary>Tests: this listener's multishot accept on the calling domain's ring, if it has one.</summary>
    internal UringMultishotAccept? MultishotOfCurrentDomain()
    {
        var ring = UringOp.CurrentRing();
        lock (_multishots)
        {
            return _multishots.Find(m => ReferenceEquals(m.Ring, ring));
        }
    }

    public override SocketOptionTarget Options => new NativeSocketOptions(_fd, _fd.Fd);

    public override EndPoint ListeningEndPoint { get; } = socket.LocalEndPoint!;

    public override bool IsClosed => _fd.IsClosed;

    public override void StopListening() => _fd.StopListening();

    public override async ValueTask<(StreamTransport Connection, EndPoint Peer)> AcceptAsync()
    {
        var frame = _fd.Begin("accept");
        try
        {
            if (Multishot(UringOp.CurrentRing()) is { } multishot && await multishot.AcceptAsync(frame) is { } got)
            {
                return got;
            }

            while (true)
            {
                nint native = UringIo.AllocSockaddr(AddrSize);
                var op = UringOp.Start(frame, Sys.IORING_OP_ACCEPT, _fd.Fd, default, (ulong)native, 0, SOCK_CLOEXEC, (ulong)(native + AddrSize));
                EndPoint? peer;
                int res;
                try
                {
                    res = await op.Task;
                    peer = res >= 0 ? UringIo.ParseSockaddr(native, AddrSize) : null;
                }
                finally
                {
                    // The completion has arrived (the fiber resumes only then), so the kernel is done with the address buffer.
                    UringIo.Free(native);
                }

                if (res >= 0)
                {
                    var conn = new UringFd(res);
                    if (NativeNetwork.IsTcp(ListeningEndPoint))
                    {
                        conn.SetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, 1);
                    }

                    return (new UringStreamTransport(conn, peer), peer ?? EpollIo.Unnamed);
                }

                // A connection reset while queued is the peer's problem, not the listener's: take the next one.
                if (-res is not (EpollIo.ECONNABORTED or EpollIo.EINTR))
                {
                    throw EpollIo.Error(-res, "accept");
                }
            }
        }
        finally
        {
            _fd.EndUse();
        }
    }

    public override bool Close()
    {
        if (!_fd.Close())
        {
            return false;
        }

        UringMultishotAccept[] armed;
        lock (_multishots)
        {
            armed = [.. _multishots];
        }

        foreach (var m in armed)
        {
            m.ListenerClosed();
        }

        return true;
    }
}

/// <summary>Socket helpers of the io_uring backend.</summary>
internal static unsafe class UringIo
{
    public static ulong Addr(MemoryHandle pin) => (ulong)pin.Pointer;

    /// <summary>Allocates a sockaddr buffer of <paramref name="size"/> bytes followed by its socklen_t (set to the size).</summary>
    public static nint AllocSockaddr(int size)
    {
        nint p = (nint)NativeMemory.AllocZeroed((nuint)size + 8);
        *(int*)(p + size) = size;
        return p;
    }

    public static EndPoint? ParseSockaddr(nint p, int size) => EpollIo.Parse(new ReadOnlySpan<byte>((void*)p, Math.Min(size, *(int*)(p + size))));

    public static void Free(nint p) => NativeMemory.Free((void*)p);

    public static Span<byte> Span(nint p, int size) => new((void*)p, size);
}
