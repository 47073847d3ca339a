using System.Net;
using System.Net.Sockets;
using EioSharp.Time;

namespace EioSharp.Net;

/// <summary>The network capability: listening, connecting, datagram sockets and name lookup.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.t</c> (<c>env#net</c>). Only code handed this object can reach the network (S28). Every socket is owned by
/// the switch passed when it is created and is closed when that switch finishes.
/// </remarks>
public abstract partial class NetworkCapability
{
    private protected NetworkCapability()
    {
    }

    /// <summary>Creates a socket listening for stream connections on <paramref name="endpoint"/>.</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="endpoint">An <see cref="IPEndPoint"/> (port 0 picks a free port; see <see cref="ListeningSocket.ListeningEndPoint"/>) or a <see cref="UnixDomainSocketEndPoint"/>.</param>
    /// <param name="backlog">The kernel's queue of connections not yet accepted.</param>
    /// <param name="reuseAddress">SO_REUSEADDR (for a Unix socket: remove a stale socket file first).</param>
    /// <param name="reusePort">SO_REUSEPORT (Linux): several sockets may bind the same port.</param>
    /// <param name="options">Socket options set before bind (for example <c>SocketOptions.IPv6Only.With(true)</c>); null for none.</param>
    /// <returns>The listening socket.</returns>
    /// <exception cref="NetException">Binding failed (for example the address is in use), or an option was refused.</exception>
    /// <remarks>Eio: <c>Net.listen</c> (its <c>?reuse_addr</c>, <c>?reuse_port</c>; the other options as <c>Eio_unix.Net</c>'s
    /// <c>setsockopt</c> before bind). Connections accepted from it get <c>TCP_NODELAY</c> set.</remarks>
    public abstract ListeningSocket Listen(Switch sw, EndPoint endpoint, int backlog = 128, bool reuseAddress = true, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null);

    /// <summary>Connects to <paramref name="endpoint"/>.</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="endpoint">The server's address (IP or Unix).</param>
    /// <param name="options">Socket options set before connecting (for example <c>SocketOptions.ReceiveBufferSize.With(1 &lt;&lt; 20)</c>,
    /// which must precede the handshake to widen the TCP window); null for none. TCP connections get <c>TCP_NODELAY</c>
    /// unless the options say otherwise.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="NetException">The connection failed (for example refused), or an option was refused.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <remarks>Eio: <c>Net.connect</c>.</remarks>
    public abstract Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint, IReadOnlyList<SocketOptionSetting>? options = null);

    /// <summary>Connects to <paramref name="endpoint"/>, giving up after <paramref name="timeout"/>.</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="endpoint">The server's address.</param>
    /// <param name="timeout">The time limit.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="TimeoutException">Not connected in time.</exception>
    /// <exception cref="NetException">The connection failed.</exception>
    /// <remarks>Eio: <c>Net.with_tcp_connect ~timeout</c> (for one address).</remarks>
    public Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint, TimeSpan timeout) =>
        SystemMonoClock.Instance.WithTimeoutAsync(timeout, () => ConnectAsync(sw, endpoint));

    /// <summary>Creates a datagram socket bound to <paramref name="endpoint"/>.</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="endpoint">The local address (port 0 picks a free port).</param>
    /// <param name="reuseAddress">SO_REUSEADDR.</param>
    /// <param name="reusePort">SO_REUSEPORT (Linux).</param>
    /// <param name="options">Socket options set before bind; null for none.</param>
    /// <returns>The socket.</returns>
    /// <exception cref="NetException">Binding failed, or an option was refused.</exception>
    /// <remarks>Eio: <c>Net.datagram_socket</c>.</remarks>
    public abstract DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null);

    /// <summary>Resolves <paramref name="host"/> to addresses for <paramref name="port"/>.</summary>
    /// <param name="host">A host name or literal address.</param>
    /// <param name="port">The port to put in each endpoint.</param>
    /// <returns>At least one address (S30).</returns>
    /// <exception cref="NetException">The name could not be resolved, or resolved to nothing; the message names the host.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <remarks>Eio: <c>Net.getaddrinfo</c> (and its <c>_stream</c>/<c>_datagram</c> forms: the address list is the same for both here).</remarks>
    public abstract Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port);
}

/// <summary>The Portable backend's network: <see cref="Socket"/> with completions posted to the fiber's domain.</summary>
internal sealed class PortableNetwork : NetworkCapability
{
    private const int SolSocket = 1;
    private const int SoReusePort = 15;

    public static readonly PortableNetwork Instance = new();

    public override ListeningSocket Listen(Switch sw, EndPoint endpoint, int backlog = 128, bool reuseAddress = true, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        return new ListeningSocket(sw, ListenSocket(endpoint, backlog, reuseAddress, reusePort, options));
    }

    /// <summary>A bound, listening stream socket (IP or Unix; a stale Unix socket file is removed when <paramref name="reuseAddress"/>); every backend's listen.</summary>
    /// <exception cref="NetException">Binding or listening failed.</exception>
    internal static Socket ListenSocket(EndPoint endpoint, int backlog, bool reuseAddress, bool reusePort, IReadOnlyList<SocketOptionSetting>? options)
    {
        var socket = NewSocket(endpoint, SocketType.Stream);
        try
        {
            if (endpoint is not UnixDomainSocketEndPoint)
            {
                ApplyReuse(socket, reuseAddress, reusePort);
            }

            new DotNetSocketOptions(socket).Apply(options);
            try
            {
                socket.Bind(endpoint);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse &&
                                             endpoint is UnixDomainSocketEndPoint && reuseAddress && IsStaleUnixSocket(endpoint))
            {
                File.Delete(endpoint.ToString()!);
                socket.Bind(endpoint);
            }

            socket.Listen(backlog);
        }
        catch (Exception e) when (e is SocketException or NetException)
        {
            socket.Dispose();
            throw e is SocketException se ? NetException.From(se, $"listen on {endpoint}") : e;
        }

        return socket;
    }

    public override async Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint, IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        var frame = FiberFrame.Require();
        var socket = NewSocket(endpoint, SocketType.Stream);
        try
        {
            if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
            {
                socket.NoDelay = true;
            }

            new DotNetSocketOptions(socket).Apply(options);
            await socket.ConnectAsync(endpoint, frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e) || e is NetException)
        {
            socket.Dispose();
            throw e is NetException ? e : SocketIo.Map(e, frame, $"connect to {endpoint}");
        }

        return new StreamSocket(sw, socket);
    }

    public override DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        return new DatagramSocket(sw, BindDatagram(endpoint, reuseAddress, reusePort, options));
    }

    /// <summary>A bound datagram socket (IP or Unix); every backend's datagram open.</summary>
    /// <exception cref="NetException">Binding failed.</exception>
    internal static Socket BindDatagram(EndPoint endpoint, bool reuseAddress, bool reusePort, IReadOnlyList<SocketOptionSetting>? options)
    {
        var socket = NewSocket(endpoint, SocketType.Dgram);
        try
        {
            ApplyReuse(socket, reuseAddress, reusePort);
            new DotNetSocketOptions(socket).Apply(options);
            socket.Bind(endpoint);
        }
        catch (Exception e) when (e is SocketException or NetException)
        {
            socket.Dispose();
            throw e is SocketException se ? NetException.From(se, $"bind datagram socket to {endpoint}") : e;
        }

        return socket;
    }

    public override async Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        if (IPAddress.TryParse(host, out var literal))
        {
            return [new IPEndPoint(literal, port)];
        }

        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(host, frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            throw SocketIo.Map(e, frame, $"getaddrinfo {host}");
        }

        if (addresses.Length == 0)
        {
            throw new NetException($"getaddrinfo {host}: no addresses found", SocketError.HostNotFound);
        }

        return addresses.Select(a => new IPEndPoint(a, port)).ToArray();
    }

    internal static Socket NewSocket(EndPoint endpoint, SocketType type) => endpoint switch
    {
        UnixDomainSocketEndPoint => new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified),
        _ => new Socket(endpoint.AddressFamily, type, type == SocketType.Stream ? ProtocolType.Tcp : ProtocolType.Udp),
    };

    private const int SoReuseAddr = 2; // Linux

    internal static void ApplyReuse(Socket socket, bool reuseAddress, bool reusePort)
    {
        if (reuseAddress)
        {
            if (OperatingSystem.IsLinux())
            {
                // SO_REUSEADDR alone: .NET's SocketOptionName.ReuseAddress also sets SO_REUSEPORT on Linux, which lets a
                // second socket bind a port another one is listening on (a server "moving" to a port in use would succeed).
                socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            }
            else
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            }
        }

        if (reusePort && OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
        }
    }

    /// <summary>True if nothing is listening on the Unix socket path (connecting is refused), so the file is left over.</summary>
    internal static bool IsStaleUnixSocket(EndPoint endpoint)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(endpoint);
            return false;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.ConnectionRefused;
        }
    }
}
