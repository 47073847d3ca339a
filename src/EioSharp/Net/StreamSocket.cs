using System.Net;
using System.Net.Sockets;
using EioSharp.IO;

namespace EioSharp.Net;

/// <summary>A connected stream socket (TCP or Unix domain): a two-way flow owned by a switch.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.stream_socket</c>.
/// <para><b>Lifetime</b>: closed when its switch finishes, or earlier by <see cref="Close"/> (idempotent, S29; an operation in
/// flight keeps the OS socket alive until it finishes).</para>
/// <para><b>Thread safety</b>: one reader and one writer at a time; the socket may be handed to a fiber on another domain.</para>
/// </remarks>
public sealed class StreamSocket : IFlowDuplex
{
    private readonly StreamTransport _transport;
    private readonly ReleaseHook? _hook;
    private readonly Domain _ownerDomain;

    internal StreamSocket(Switch sw, Socket socket)
        : this(sw, new SocketStreamTransport(socket))
    {
    }

    internal StreamSocket(Switch sw, StreamTransport transport)
    {
        _transport = transport;
        _ownerDomain = sw.Domain;
        _hook = sw.OnRelease(Close); // Throws InvalidOperationException if the switch had finished: the hook closed the socket.
    }

    /// <summary>The peer's address.</summary>
    public EndPoint? RemoteEndPoint => _transport.RemoteEndPoint;

    /// <summary>This end's address.</summary>
    public EndPoint? LocalEndPoint => _transport.LocalEndPoint;

    /// <summary>The backend's transport (tests check which backend really serves the socket).</summary>
    internal StreamTransport Transport => _transport;

    /// <summary>True once <see cref="Close"/> was called (or the owning switch finished).</summary>
    public bool IsClosed => _transport.IsClosed;

    /// <summary>Disables Nagle's algorithm (TCP_NODELAY) when true.</summary>
    public bool NoDelay
    {
        get => _transport.NoDelay;
        set => _transport.NoDelay = value;
    }

    /// <summary>Sets a socket option (see <see cref="SocketOptions"/>).</summary>
    /// <typeparam name="T">The option's value type.</typeparam>
    /// <param name="option">The option, for example <see cref="SocketOptions.KeepAlive"/>.</param>
    /// <param name="value">The value.</param>
    /// <exception cref="NetException">The kernel refused (the option does not apply to this socket, or the value is invalid).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <exception cref="NotSupportedException">This socket's backend has no options (a scripted mock socket keeps them in a table).</exception>
    /// <remarks>Eio: <c>Eio.Net.setsockopt</c>. A system call on the calling thread; never suspends.</remarks>
    public void SetOption<T>(SocketOption<T> option, T value)
    {
        ArgumentNullException.ThrowIfNull(option);
        var (v, e) = option.Encode(value);
        _transport.Options.Set(option, v, e);
    }

    /// <summary>Reads a socket option (see <see cref="SocketOptions"/>).</summary>
    /// <typeparam name="T">The option's value type.</typeparam>
    /// <param name="option">The option.</param>
    /// <returns>The kernel's value (which may differ from the value set: Linux doubles buffer sizes).</returns>
    /// <exception cref="NetException">The option does not apply to this socket.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <exception cref="NotSupportedException">This socket's backend has no options.</exception>
    /// <remarks>Eio: <c>Eio.Net.getsockopt</c>. A system call on the calling thread; never suspends.</remarks>
    public T GetOption<T>(SocketOption<T> option)
    {
        ArgumentNullException.ThrowIfNull(option);
        return option.Decode(_transport.Options.Get(option));
    }

    /// <inheritdoc/>
    /// <exception cref="NetException">The connection failed (for example reset by the peer).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => _transport.ReadAsync(buffer);

    /// <inheritdoc/>
    /// <exception cref="NetException">The connection failed (for example the peer closed it).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => _transport.WriteAsync(data);

    /// <inheritdoc/>
    /// <remarks>On the io_uring backend a shutdown of the sending side first waits for a write-behind send in flight
    /// (see <see cref="FlushAsync"/>), so that no byte already written is cut off.</remarks>
    public ValueTask ShutdownAsync(ShutdownCommand command) => _transport.ShutdownAsync(command);

    /// <summary>
    /// Bytes that <see cref="WriteAsync"/> has accepted and the kernel has not taken yet: on the io_uring backend with
    /// write-behind sends on (<see cref="EioBackendOptions.UringWriteBehind"/>; off by default) a small write is copied into a buffer of
    /// the socket and sent behind the writer (it returns before the send's completion); otherwise 0, as writes return only
    /// once the kernel holds every byte. Readable from any thread (for a server's output accounting, such as Redis's
    /// CLIENT LIST <c>obl</c>). No Eio counterpart (Eio's flows return once the kernel took the bytes).
    /// </summary>
    public long UnsentBytes => _transport.UnsentBytes;

    /// <summary>
    /// Waits until every byte accepted by <see cref="WriteAsync"/> has been taken by the kernel (io_uring write-behind
    /// sends), and reports the error of such a send: a send that fails after its write returned is reported by the next
    /// <see cref="WriteAsync"/>, <see cref="FlushAsync"/> or sending-side <see cref="ShutdownAsync"/>. Completes at once on
    /// the backends without write-behind.
    /// </summary>
    /// <returns>An awaitable that completes when nothing accepted is left unsent.</returns>
    /// <exception cref="NetException">A write-behind send failed (for example the peer reset the connection).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting; the send itself goes on.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ValueTask FlushAsync() => _transport.FlushAsync();

    /// <inheritdoc/>
    public void Close()
    {
        if (_transport.Close() && _hook is not null && ReferenceEquals(Domain.Current, _ownerDomain))
        {
            _hook.Remove();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"StreamSocket {LocalEndPoint} <-> {RemoteEndPoint}";
}
