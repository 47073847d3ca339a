using System.Net;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Native;
using EioSharp.Net;

namespace EioSharp.Backends.Uring;

/// <summary>
/// The multishot accept of one listening socket on one domain's ring: one IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT
/// whose completions each carry an accepted fd. The fds are queued here and taken by the domain's accepting fibers.
/// </summary>
/// <remarks>
/// <para>Armed by the first accept that finds the queue empty, it stays armed while the domain keeps accepting, and is
/// re-armed by the next accept once the kernel ends it (a completion without IORING_CQE_F_MORE: an error, a cancellation,
/// or the kernel's own limit). It holds a use on the listener's fd while armed: the kernel's request holds the socket's
/// file, so the fd must not be closed (nor its number reused) under it.</para>
/// <para>When it is disarmed (IORING_OP_ASYNC_CANCEL): the last waiting fiber was cancelled (a connection accepted
/// meanwhile stays queued for this domain's next accept); <see cref="MaxUnclaimed"/> connections are queued with no fiber
/// waiting (an accept loop that has stopped must not keep taking connections); the listener was closed and nobody waits
/// (the queued connections are then closed, as the kernel's backlog is when a listener closes); the listener turned out to
/// be shared by several domains (see <see cref="UringListenerTransport"/>); the ring is torn down (its domain ended).</para>
/// <para>Cancellation of a waiting fiber (S13/S14): the fiber waits on a <see cref="Waiter"/> that only says "look at the
/// queue again"; a connection is dequeued by the fiber itself after it resumed, so a cancelled fiber never holds one and
/// no accepted fd is lost: it stays in the queue. Used on its ring's domain thread only, except <see cref="ListenerClosed"/>
/// and <see cref="Shared"/>, which post to that domain.</para>
/// </remarks>
internal sealed class UringMultishotAccept(UringPoller ring, UringListenerTransport listener, UringFd fd) : IUringMultishot
{
    private const int SOCK_CLOEXEC = 0x80000;

    /// <summary>Connections accepted with no fiber waiting after which the request is cancelled.</summary>
    internal const int MaxUnclaimed = 16;

    private readonly Queue<int> _ready = new();
    private readonly List<Waiter> _waiters = [];
    private ulong _tag;
    private bool _armed;
    private bool _cancelling;
    private bool _everAccepted;
    private bool _closed;
    private bool _shared;
    private bool _dead;
    private int _error;

    public UringPoller Ring => ring;

    /// <summary>True once the ring was torn down (no further use).</summary>
    public bool IsDead => Volatile.Read(ref _dead);

    /// <summary>Tests: how many times the request was armed (one SQE each).</summary>
    internal int Arms { get; private set; }

    /// <summary>Tests: whether the request is armed now (domain thread).</summary>
    internal bool IsArmed => _armed;

    /// <summary>Tests: connections accepted and not yet taken (domain thread).</summary>
    internal int Unclaimed => _ready.Count;

    /// <summary>
    /// Takes the next connection accepted by this domain's multishot request, arming it if needed; null when multishot
    /// accept cannot serve (the kernel refused it, or the listener is shared by several domains): the caller then accepts
    /// with one SQE.
    /// </summary>
    /// <exception cref="NetException">The kernel ended the request with an error (EMFILE...): reported once, to one accept.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting; no connection was taken.</exception>
    public async ValueTask<(StreamTransport Connection, EndPoint Peer)?> AcceptAsync(FiberFrame frame)
    {
        while (true)
        {
            if (_ready.TryDequeue(out int accepted))
            {
                return Wrap(accepted);
            }

            if (_error != 0)
            {
                int errno = _error;
                _error = 0;
                throw EpollIo.Error(errno, "accept");
            }

            if (_shared || !ring.MultishotAcceptWorks || UringPoller.MultishotAcceptDisabled)
            {
                return null;
            }

            if (!_armed)
            {
                Arm(frame);
            }

            var waiter = new Waiter(ring.Domain!) { TraceReason = Tracing.TraceReason.IoRead, TraceArg = fd.Fd };
            _waiters.Add(waiter);
            waiter.Attach(frame.Cancel);
            try
            {
                await waiter.VoidTask;
            }
            catch (CancelledException)
            {
                _waiters.Remove(waiter);
                if (_waiters.Count == 0)
                {
                    Disarm();
                }

                throw;
            }

            _waiters.Remove(waiter);
            if (_waiters.Count == 0 && _closed)
            {
                // The listener was closed while this fiber waited: it takes what is queued (below), then nothing stays armed.
                Disarm();
            }
        }
    }

    private void Arm(FiberFrame frame)
    {
        frame.Cancel.ThrowIfCancelled();
        fd.Use("accept");
        _armed = true;
        _cancelling = false;
        Arms++;
        _tag = ring.TrackMultishot(this);
        unsafe
        {
            var sqe = ring.NextSqe(Sys.IORING_OP_ACCEPT, fd.Fd, _tag);
            sqe->IoPrio = Sys.IORING_ACCEPT_MULTISHOT;
            sqe->OpFlags = SOCK_CLOEXEC;
        }
    }

    private void Disarm()
    {
        if (_armed && !_cancelling && !_dead)
        {
            _cancelling = true;
            ring.CancelOp(_tag);
        }
    }

    private (StreamTransport, EndPoint) Wrap(int accepted)
    {
        var conn = new UringFd(accepted);
        if (NativeNetwork.IsTcp(listener.ListeningEndPoint))
        {
            conn.SetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, 1);
        }

        // The multishot request has no address buffer per connection (one would be overwritten by the next): ask the kernel.
        var peer = EpollIo.PeerName(accepted);
        return (new UringStreamTransport(conn, peer), peer ?? EpollIo.Unnamed);
    }

    /// <inheritdoc/>
    public void OnCompletion(int res, uint flags)
    {
        if (res >= 0)
        {
            _everAccepted = true;
            if (_dead || (_closed && _waiters.Count == 0))
            {
                EpollIo.close(res); // nobody can accept it any more, as a connection left in a closed listener's backlog
            }
            else
            {
                _ready.Enqueue(res);
                if (_waiters.Count == 0 && _ready.Count >= MaxUnclaimed)
                {
                    Disarm();
                }
            }
        }

        if ((flags & Sys.IORING_CQE_F_MORE) == 0)
        {
            _armed = false;
            _cancelling = false;
            if (res < 0 && -res is not (Sys.ECANCELED or EpollIo.EINTR or EpollIo.ECONNABORTED))
            {
                if (-res == Sys.EINVAL && !_everAccepted)
                {
                    ring.MultishotAcceptWorks = false; // a kernel without multishot accept: one SQE per accept on this ring
                }
                else if (_waiters.Count > 0)
                {
                    _error = -res;
                }
            }

            if (_dead || (_closed && _waiters.Count == 0))
            {
                CloseReady();
            }

            fd.EndUse();
        }

        WakeAll();
    }

    // Every waiting fiber looks at the queue again (one takes a connection, the others wait again or re-arm).
    private void WakeAll()
    {
        for (int i = 0; i < _waiters.Count; i++)
        {
            _waiters[i].TryComplete(true);
        }
    }

    private void CloseReady()
    {
        while (_ready.TryDequeue(out int queued))
        {
            EpollIo.close(queued);
        }
    }

    /// <summary>The listener was closed (any thread): once no fiber of this domain waits, the request is cancelled and the
    /// connections still queued are closed.</summary>
    /// <remarks>On the ring's own domain with nobody waiting, the cancellation is submitted and its completion awaited at once
    /// (one <c>io_uring_enter</c>, normally done in that call), so that the socket is really closed when <c>Close</c> returns, as
    /// on the other backends (the kernel's request holds the socket: a Unix path or a port would otherwise stay taken until
    /// the domain's next round). From another thread it is posted to the ring's domain.</remarks>
    public void ListenerClosed()
    {
        if (ring.Domain is { IsCurrent: true })
        {
            OnListenerClosed();
            if (_armed && _waiters.Count == 0)
            {
                ring.SubmitAndReapUntil(static s => !((UringMultishotAccept)s!)._armed, this, TimeSpan.FromSeconds(1));
            }
        }
        else
        {
            ring.Domain?.Enqueue(static s => ((UringMultishotAccept)s!).OnListenerClosed(), this);
        }
    }

    private void OnListenerClosed()
    {
        _closed = true;
        if (_waiters.Count == 0)
        {
            Disarm();
            if (!_armed)
            {
                CloseReady();
            }
        }
    }

    /// <summary>Another domain accepts on the same listener (any thread): this domain stops its multishot request and its
    /// fibers accept with one SQE each, after taking the connections already queued here.</summary>
    public void Shared() => ring.Domain?.Enqueue(static s => ((UringMultishotAccept)s!).OnShared(), this);

    private void OnShared()
    {
        _shared = true;
        Disarm();
        WakeAll();
    }

    /// <inheritdoc/>
    public void RingClosing()
    {
        Volatile.Write(ref _dead, true);
        if (_armed && !_cancelling)
        {
            _cancelling = true;
            ring.CancelOp(_tag);
        }

        CloseReady();
    }

    /// <inheritdoc/>
    public void Abandoned()
    {
        Volatile.Write(ref _dead, true);
        CloseReady();
        if (_armed)
        {
            _armed = false;
            fd.EndUse();
        }
    }
}
