using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EioSharp.Backends.Native;
using EioSharp.IO;
using EioSharp.Net;

namespace EioSharp.Backends.Epoll;

// The epoll backend's TCP transports (Linux). Sockets are created with System.Net.Sockets.Socket (or accept4) in non-blocking
// mode and .NET's async methods are never called on them, so .NET's own epoll thread never sees the fd. Every operation runs
// on the calling domain's thread: it tries the syscall first (the fast path completes synchronously) and on EAGAIN waits in
// the calling domain's epoll (see EpollPoller: edge-triggered, registered once per fd and domain), then retries.
// A socket may be used from several domains (each one registers the fd in its own epoll); at most one reader and one writer
// at a time, as on the Portable backend. Close (S29) is idempotent; an operation in flight holds a use and the fd is
// unregistered and closed only when the last use ends.

/// <summary>Shared ownership of one non-blocking socket fd and its epoll registrations (one per domain that waited on it).</summary>
/// <remarks>The use count and close protocol are <see cref="UseCountedHandle"/>'s.</remarks>
internal sealed class EpollFd : NativeSocketFd
{
    private readonly bool _listener;
    private readonly List<FdRegistration> _more = [];
    private FdRegistration? _first;

    public EpollFd(Socket socket, bool listener = false)
        : base(socket)
    {
        _listener = listener;
    }

    public EpollFd(int fd)
        : base(fd)
    {
    }

    /// <summary>recv(2) on the calling fiber: the syscall first, then on EAGAIN a wait in the calling domain's epoll and a retry; <paramref name="what"/> names the operation in errors;
    /// <paramref name="shared"/> (datagram sockets) lets other fibers receive at the same time.</summary>
    /// <exception cref="NetException">The socket failed.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting (nothing was read).</exception>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, string what, bool shared = false)
    {
        var frame = Begin(what);
        nint n = EpollIo.Recv(Fd, buffer.Span, out int errno);
        if (n >= 0)
        {
            EndUse();
            return new ValueTask<int>((int)n);
        }

        if (errno == EpollIo.EAGAIN)
        {
            return ReceiveSlowAsync(buffer, frame, what, shared);
        }

        EndUse();
        throw EpollIo.Error(errno, what);
    }

    // Pooled state machine (as the io_uring transports' slow paths): every unpipelined request waits here, and each wait
    // allocated its box (session 26: ~130 B per one-client SET).
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReceiveSlowAsync(Memory<byte> buffer, FiberFrame frame, string what, bool shared)
    {
        try
        {
            while (true)
            {
                await WaitAsync(write: false, frame, shared);
                nint n = EpollIo.Recv(Fd, buffer.Span, out int errno);
                if (n >= 0)
                {
                    return (int)n;
                }

                if (errno != EpollIo.EAGAIN)
                {
                    throw EpollIo.Error(errno, what);
                }
            }
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Waits (holding a use) until the fd may be readable or writable, in the calling domain's epoll;
    /// <paramref name="shared"/> (datagram sockets) lets several fibers wait at once.</summary>
    public ValueTask WaitAsync(bool write, FiberFrame frame, bool shared = false)
    {
        var poller = Domain.Current?.Poller as EpollPoller
            ?? throw new InvalidOperationException("An epoll-backend socket can only wait on a domain of the epoll backend.");
        var reg = Registration(poller, out bool added);
        if (_listener && !added)
        {
            int err = poller.Rearm(reg);
            if (err != 0)
            {
                throw EpollIo.Error(err, "epoll_ctl");
            }
        }

        return reg.WaitAsync(write, frame.Cancel, shared);
    }

    private FdRegistration Registration(EpollPoller poller, out bool added)
    {
        added = false;
        var r = Volatile.Read(ref _first);
        if (r is not null && ReferenceEquals(r.Poller, poller))
        {
            return r;
        }

        lock (_more)
        {
            r = _first;
            if (r is not null && ReferenceEquals(r.Poller, poller))
            {
                return r;
            }

            foreach (var m in _more)
            {
                if (ReferenceEquals(m.Poller, poller))
                {
                    return m;
                }
            }

            r = new FdRegistration(Fd, poller, oneShot: _listener);
            added = true;
            int err = poller.Add(r);
            if (err != 0)
            {
                r.Handle.Free();
                throw EpollIo.Error(err, "epoll_ctl");
            }

            if (_first is null)
            {
                Volatile.Write(ref _first, r);
            }
            else
            {
                _more.Add(r);
            }

            return r;
        }
    }

    protected override void Release()
    {
        lock (_more)
        {
            _first?.Poller.Remove(_first);
            foreach (var m in _more)
            {
                m.Poller.Remove(m);
            }

            _first = null;
            _more.Clear();
        }

        base.Release();
    }
}

/// <summary>A connected TCP socket on the epoll backend.</summary>
internal sealed class EpollStreamTransport : StreamTransport
{
    private readonly EpollFd _fd;
    private EndPoint? _local;

    public EpollStreamTransport(EpollFd fd, EndPoint? remote)
    {
        _fd = fd;
        RemoteEndPoint = remote;
    }

    public override EndPoint? RemoteEndPoint { get; }

    public override EndPoint? LocalEndPoint => _local ??= _fd.LocalEndPoint();

    public override bool IsClosed => _fd.IsClosed;

    public override SocketOptionTarget Options => new NativeSocketOptions(_fd, _fd.Fd);

    public override bool NoDelay
    {
        get => _fd.GetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY) != 0;
        set => _fd.SetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, value ? 1 : 0);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer) => _fd.ReceiveAsync(buffer, "read");

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        var frame = _fd.Begin("write");
        nint n = EpollIo.Send(_fd.Fd, data.Span, out int errno);
        if (n == data.Length)
        {
            _fd.EndUse();
            return ValueTask.CompletedTask;
        }

        if (n < 0 && errno != EpollIo.EAGAIN)
        {
            _fd.EndUse();
            throw EpollIo.Error(errno, "write");
        }

        return WriteSlowAsync(data, (int)Math.Max(0, n), frame);
    }

    private async ValueTask WriteSlowAsync(ReadOnlyMemory<byte> data, int sent, FiberFrame frame)
    {
        try
        {
            while (sent < data.Length)
            {
                await _fd.WaitAsync(write: true, frame);
                while (sent < data.Length)
                {
                    nint n = EpollIo.Send(_fd.Fd, data.Span[sent..], out int errno);
                    if (n >= 0)
                    {
                        sent += (int)n;
                        continue;
                    }

                    if (errno == EpollIo.EAGAIN)
                    {
                        break;
                    }

                    throw EpollIo.Error(errno, "write");
                }
            }
        }
        finally
        {
            _fd.EndUse();
        }
    }

    public override ValueTask ShutdownAsync(ShutdownCommand command) => _fd.Shutdown(command);

    public override bool Close() => _fd.Close();
}

/// <summary>A listening TCP socket on the epoll backend; accept loops on several domains may share it (each domain registers it).</summary>
internal sealed class EpollListenerTransport(Socket socket) : ListenerTransport
{
    private readonly EpollFd _fd = new(socket, listener: true);

    public override SocketOptionTarget Options => new NativeSocketOptions(_fd, _fd.Fd);

    public override EndPoint ListeningEndPoint { get; } = socket.LocalEndPoint!;

    public override bool IsClosed => _fd.IsClosed;

    public override void StopListening() => _fd.StopListening();

    // No synchronous fast path: every accept waits for the (level-triggered, one-shot) readiness in its domain's poll first, so
    // a busy domain takes at most one connection per scheduler round and idle domains sharing the listener get the rest
    // (S21), as .NET's queue of pending accepts does on the Portable backend. Accepts are rare next to reads and writes.
    public override ValueTask<(StreamTransport Connection, EndPoint Peer)> AcceptAsync() => AcceptSlowAsync(_fd.Begin("accept"));

    private async ValueTask<(StreamTransport Connection, EndPoint Peer)> AcceptSlowAsync(FiberFrame frame)
    {
        try
        {
            while (true)
            {
                await _fd.WaitAsync(write: false, frame);
                var r = TryAccept(out int errno);
                if (r is { } ok)
                {
                    return ok;
                }

                if (errno != EpollIo.EAGAIN)
                {
                    throw EpollIo.Error(errno, "accept");
                }
            }
        }
        finally
        {
            _fd.EndUse();
        }
    }

    private (StreamTransport, EndPoint)? TryAccept(out int errno)
    {
        while (true)
        {
            int fd = EpollIo.Accept(_fd.Fd, out var peer, out errno);
            if (fd >= 0)
            {
                var conn = new EpollFd(fd);
                if (NativeNetwork.IsTcp(ListeningEndPoint))
                {
                    conn.SetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, 1);
                }

                return (new EpollStreamTransport(conn, peer), peer ?? EpollIo.Unnamed);
            }

            // A connection reset while queued is the peer's problem, not the listener's: try the next one.
            if (errno is not (EpollIo.ECONNABORTED or EpollIo.EINTR))
            {
                return null;
            }
        }
    }

    public override bool Close() => _fd.Close();
}

/// <summary>The libc socket calls of the epoll backend, and errno mapping.</summary>
internal static unsafe partial class EpollIo
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EINPROGRESS = 115;
    public const int ENOTCONN = 107;
    public const int ECONNABORTED = 103;
    public const int IPPROTO_TCP = 6;
    public const int TCP_NODELAY = 1;
    public const int SOL_SOCKET = 1;
    public const int SO_ERROR = 4;
    private const int MSG_NOSIGNAL = 0x4000;
    private const int SOCK_NONBLOCK = 0x800;
    private const int SOCK_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(int fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvfrom(int fd, byte* buf, nint len, int flags, byte* addr, int* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendto(int fd, byte* buf, nint len, int flags, byte* addr, int addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int accept4(int fd, byte* addr, int* addrlen, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockname(int fd, byte* addr, int* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getpeername(int fd, byte* addr, int* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, int* value, int len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, int* value, int* len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    /// <summary>MSG_DONTWAIT: a receive that would block fails with EAGAIN, also on a blocking socket (the io_uring backend's).</summary>
    public const int MSG_DONTWAIT = 0x40;

    public static nint Recv(int fd, Span<byte> buffer, out int errno, int flags = 0)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = recv(fd, p, buffer.Length, flags);
                errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno != EINTR)
                {
                    return n;
                }
            }
        }
    }

    /// <summary>send(2) with MSG_NOSIGNAL (and <paramref name="flags"/>: MSG_DONTWAIT on a blocking socket), retried on EINTR.</summary>
    public static nint Send(int fd, ReadOnlySpan<byte> data, out int errno, int flags = 0)
    {
        fixed (byte* p = data)
        {
            while (true)
            {
                nint n = send(fd, p, data.Length, MSG_NOSIGNAL | flags);
                errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno != EINTR)
                {
                    return n;
                }
            }
        }
    }

    /// <summary>recvfrom(2) of one datagram into <paramref name="buffer"/>, retried on EINTR; the sender's sockaddr goes to <paramref name="addr"/> (128 bytes).</summary>
    public static nint RecvFrom(int fd, Span<byte> buffer, Span<byte> addr, out int addrLen, out int errno, int flags = 0)
    {
        fixed (byte* p = buffer)
        fixed (byte* a = addr)
        {
            while (true)
            {
                int len = addr.Length;
                nint n = recvfrom(fd, p, buffer.Length, flags, a, &len);
                addrLen = len;
                errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno != EINTR)
                {
                    return n;
                }
            }
        }
    }

    /// <summary>sendto(2) of one datagram (to the connected peer when <paramref name="addr"/> is empty), retried on EINTR.</summary>
    public static nint SendTo(int fd, ReadOnlySpan<byte> data, ReadOnlySpan<byte> addr, out int errno)
    {
        fixed (byte* p = data)
        fixed (byte* a = addr)
        {
            while (true)
            {
                nint n = sendto(fd, p, data.Length, MSG_NOSIGNAL, addr.IsEmpty ? null : a, addr.Length);
                errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno != EINTR)
                {
                    return n;
                }
            }
        }
    }

    public static int Accept(int fd, out EndPoint? peer, out int errno)
    {
        byte* addr = stackalloc byte[128];
        int len = 128;
        int r = accept4(fd, addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        errno = r < 0 ? Marshal.GetLastPInvokeError() : 0;
        peer = r < 0 ? null : Parse(new ReadOnlySpan<byte>(addr, len));
        return r;
    }

    public static EndPoint? SockName(int fd)
    {
        byte* addr = stackalloc byte[128];
        int len = 128;
        return getsockname(fd, addr, &len) < 0 ? null : Parse(new ReadOnlySpan<byte>(addr, len));
    }

    /// <summary>The connected socket's peer address (getpeername), or null when the call fails (e.g. the peer already reset it).</summary>
    public static EndPoint? PeerName(int fd)
    {
        byte* addr = stackalloc byte[128];
        int len = 128;
        return getpeername(fd, addr, &len) < 0 ? null : Parse(new ReadOnlySpan<byte>(addr, Math.Min(len, 128)));
    }

    /// <summary>Parses a sockaddr_in or sockaddr_in6.</summary>
    internal static EndPoint? Parse(ReadOnlySpan<byte> sa)
    {
        if (sa.Length < 2)
        {
            return null;
        }

        int family = sa[0] | (sa[1] << 8);
        if (family == 2 && sa.Length >= 8)
        {
            return new IPEndPoint(new IPAddress(sa.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(sa[2..]));
        }

        if (family == 10 && sa.Length >= 28)
        {
            uint scope = BinaryPrimitives.ReadUInt32LittleEndian(sa[24..]);
            return new IPEndPoint(new IPAddress(sa.Slice(8, 16), scope), BinaryPrimitives.ReadUInt16BigEndian(sa[2..]));
        }

        if (family == 1)
        {
            // sockaddr_un: an unnamed socket (a client that did not bind) has no path; an abstract one starts with NUL.
            var path = sa[2..];
            if (path.IsEmpty)
            {
                return Unnamed;
            }

            if (path[0] != 0)
            {
                int nul = path.IndexOf((byte)0);
                path = nul >= 0 ? path[..nul] : path;
            }

            return path.IsEmpty ? Unnamed : new UnixDomainSocketEndPoint(System.Text.Encoding.UTF8.GetString(path));
        }

        return null;
    }

    /// <summary>The address reported for an unnamed Unix-domain socket (as the Portable backend reports it).</summary>
    internal static readonly UnixDomainSocketEndPoint Unnamed = new("(unnamed)");

    /// <summary>Writes <paramref name="ep"/> as a native sockaddr into <paramref name="sa"/> (at least 128 bytes); returns its length.</summary>
    /// <remarks>IP addresses are written without allocating; other families (Unix) through <see cref="EndPoint.Serialize"/>,
    /// whose buffer is the native sockaddr on Linux.</remarks>
    public static int WriteSockaddr(EndPoint ep, Span<byte> sa)
    {
        sa.Clear();
        if (ep is IPEndPoint ip)
        {
            if (ip.AddressFamily == AddressFamily.InterNetwork)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(sa, 2);
                BinaryPrimitives.WriteUInt16BigEndian(sa[2..], (ushort)ip.Port);
                ip.Address.TryWriteBytes(sa.Slice(4, 4), out _);
                return 16;
            }

            BinaryPrimitives.WriteUInt16LittleEndian(sa, 10);
            BinaryPrimitives.WriteUInt16BigEndian(sa[2..], (ushort)ip.Port);
            ip.Address.TryWriteBytes(sa.Slice(8, 16), out _);
            BinaryPrimitives.WriteUInt32LittleEndian(sa[24..], (uint)ip.Address.ScopeId);
            return 28;
        }

        var serialized = ep.Serialize();
        serialized.Buffer.Span[..serialized.Size].CopyTo(sa);
        return serialized.Size;
    }

    /// <summary>getsockopt of an int option on a raw fd the caller holds a use of.</summary>
    public static int GetIntOptionRaw(int fd, int level, int name)
    {
        int v = 0, len = sizeof(int);
        if (getsockopt(fd, level, name, &v, &len) < 0)
        {
            throw Error(Marshal.GetLastPInvokeError(), "getsockopt");
        }

        return v;
    }

    /// <summary>setsockopt of an int option on a raw fd the caller holds a use of.</summary>
    public static void SetIntOptionRaw(int fd, int level, int name, int value)
    {
        if (setsockopt(fd, level, name, &value, sizeof(int)) < 0)
        {
            throw Error(Marshal.GetLastPInvokeError(), "setsockopt");
        }
    }

    /// <summary>The pending error of a non-blocking connect (SO_ERROR), 0 on success.</summary>
    public static int PendingError(int fd)
    {
        int v = 0, len = sizeof(int);
        return getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len) < 0 ? Marshal.GetLastPInvokeError() : v;
    }

    /// <summary>Maps a Linux errno to the <see cref="SocketError"/> .NET would report, wrapped as a <see cref="NetException"/>.</summary>
    public static Exception Error(int errno, string what)
    {
        var code = errno switch
        {
            32 => SocketError.Shutdown, // EPIPE
            101 => SocketError.NetworkUnreachable,
            103 => SocketError.ConnectionAborted,
            104 => SocketError.ConnectionReset,
            107 => SocketError.NotConnected,
            110 => SocketError.TimedOut,
            111 => SocketError.ConnectionRefused,
            113 => SocketError.HostUnreachable,
            9 => SocketError.OperationAborted, // EBADF
            24 => SocketError.TooManyOpenSockets, // EMFILE
            23 => SocketError.TooManyOpenSockets, // ENFILE
            105 => SocketError.NoBufferSpaceAvailable, // ENOBUFS
            12 => SocketError.NoBufferSpaceAvailable, // ENOMEM
            98 => SocketError.AddressAlreadyInUse,
            99 => SocketError.AddressNotAvailable,
            _ => SocketError.SocketError,
        };
        return NetException.From(new SocketException((int)code), what);
    }
}
