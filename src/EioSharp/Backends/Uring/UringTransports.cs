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
                int sent = 0;
                if (DirectSend)
                {
                    // Opt-in (see DirectSend): one non-blocking send(2) first, as the epoll backend does: a reply nearly
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

                var source = _writeSource ??= new WriteSource(this);
                return source.Start(frame, data, sent);
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

    /// <summary>Whether a write tries one non-blocking send(2) before it goes through the ring (off by default; on with
    /// <c>EIOSHARP_URING_DIRECT_SEND=1</c>, read once). Measured in session 13 (docs/BENCHMARKS.md, loaded machine): it cut
    /// the KV's -P 16 rows' CPU per request (SET 4.9 vs 7.6 µs, GET 2.7 vs 3.9 µs, medians of 3) as the writer no longer
    /// suspends for a send completion (one scheduler round and one io_uring_enter less per reply), but raised the
    /// unpipelined rows' (SET 32 vs 16 µs): each send(2) on loopback wakes the waiting client at once, which then preempts
    /// the server (involuntary context switches went from ~5 to 60-130 per 1,000 requests, epoll's figure), where the
    /// ring's one io_uring_enter for all the round's sends wakes the clients together. Hence off until a write path keeps
    /// both (e.g. sends queued without the writer waiting for their completion).</summary>
    internal static bool DirectSend { get; set; } = Environment.GetEnvironmentVariable("EIOSHARP_URING_DIRECT_SEND") == "1";

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

        public ValueTask<int> Start(FiberFrame frame, Memory<byte> buffer)
        {
            var pin = buffer.Pin();
            _op = UringOp.Start(frame, Sys.IORING_OP_RECV, owner.SocketFd.Fd, pin, UringIo.Addr(pin), (uint)buffer.Length, 0);
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
                Domain.Current!.Enqueue(continuation, state, FiberFrame.CurrentFiber);
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

    public override ValueTask ShutdownAsync(ShutdownCommand command) => fd.Shutdown(command);

    public override bool Close()
    {
        if (!fd.Close())
        {
            return false;
        }

        Volatile.Read(ref _recv)?.SocketClosed(); // the armed request holds the socket open: cancel it
        return true;
    }

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
