using System.Net;
using System.Net.Sockets;
using EioSharp.IO;

namespace EioSharp.Net;

/// <summary>A datagram (UDP or Unix datagram) socket, owned by a switch.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.datagram_socket</c>.
/// <para><b>Thread safety</b>: may be shared between domains; sends and receives may run concurrently.</para>
/// </remarks>
public sealed class DatagramSocket : IClosable
{
    private readonly DatagramTransport _transport;
    private readonly ReleaseHook? _hook;
    private readonly Domain _ownerDomain;

    internal DatagramSocket(Switch sw, Socket socket)
        : this(sw, new SocketDatagramTransport(socket))
    {
    }

    internal DatagramSocket(Switch sw, DatagramTransport transport)
    {
        _transport = transport;
        _ownerDomain = sw.Domain;
        _hook = sw.OnRelease(Close);
    }

    /// <summary>The local address (with the real port when port 0 was asked for).</summary>
    public EndPoint? LocalEndPoint => _transport.LocalEndPoint;

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

    /// <summary>The backend's transport (tests check which backend really serves the socket).</summary>
    internal DatagramTransport Transport => _transport;

    /// <summary>Sends one datagram to <paramref name="destination"/>.</summary>
    /// <param name="destination">The receiver.</param>
    /// <param name="datagram">The payload (at most 65,507 bytes for UDP over IPv4).</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="NetException">The send failed (for example the datagram is too large, or the destination refused an earlier one).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <remarks>Eio: <c>Net.send ~dst</c>.</remarks>
    public ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return _transport.SendToAsync(destination, datagram);
    }

    /// <summary>Sets the socket's default destination (<c>connect(2)</c> on a datagram socket), for <see cref="SendAsync"/>.</summary>
    /// <param name="destination">The peer; calling again replaces it.</param>
    /// <exception cref="NetException">The address cannot be used (for example a different address family).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <remarks>
    /// <b>[ext]</b> (Eio has no connected datagram sockets). Connecting does not send anything. Afterwards the kernel
    /// only delivers datagrams from <paramref name="destination"/>, and on Linux an ICMP "port unreachable" for an
    /// earlier datagram is reported by a later send or receive as <see cref="NetException"/> with
    /// <see cref="SocketError.ConnectionRefused"/> (an unconnected socket drops that error silently).
    /// </remarks>
    public void Connect(EndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        _transport.Connect(destination);
    }

    /// <summary>Sends one datagram to the destination set by <see cref="Connect"/>.</summary>
    /// <param name="datagram">The payload (at most 65,507 bytes for UDP over IPv4).</param>
    /// <returns>An awaitable; it is already completed when the kernel accepted the datagram at once (the usual case).</returns>
    /// <exception cref="NetException">The send failed (for example the destination refused an earlier datagram:
    /// <see cref="SocketError.ConnectionRefused"/>; or the socket is not connected).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <remarks><b>[ext]</b> Eio: <c>Net.send</c> without <c>~dst</c>.</remarks>
    public ValueTask SendAsync(ReadOnlyMemory<byte> datagram) => _transport.SendAsync(datagram);

    /// <summary>Receives one datagram and its sender's address.</summary>
    /// <param name="buffer">Where to put the payload; a longer datagram is truncated.</param>
    /// <returns>The number of bytes received and the sender.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <exception cref="NetException">The receive failed.</exception>
    /// <remarks>Eio: <c>Net.recv</c>.</remarks>
    public ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer) => _transport.ReceiveFromAsync(buffer);

    /// <summary>Receives one datagram without its sender's address (cheaper when the sender does not matter).</summary>
    /// <param name="buffer">Where to put the payload; a longer datagram is truncated.</param>
    /// <returns>The number of bytes received.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <exception cref="NetException">The receive failed.</exception>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer) => _transport.ReceiveAsync(buffer);

    /// <summary>Sets the kernel receive buffer size (SO_RCVBUF), in bytes.</summary>
    /// <param name="bytes">The requested size; the kernel may adjust it.</param>
    public void SetReceiveBufferSize(int bytes) => _transport.SetReceiveBufferSize(bytes);

    /// <inheritdoc/>
    public void Close()
    {
        if (_transport.Close() && _hook is not null && ReferenceEquals(Domain.Current, _ownerDomain))
        {
            _hook.Remove();
        }
    }
}
