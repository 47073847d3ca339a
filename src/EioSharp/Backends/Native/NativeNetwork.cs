using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.Backends.Native;

/// <summary>
/// The network of a native Linux backend (epoll, io_uring): the socket set-up both share (create, options, bind, listen,
/// error mapping and close on failure) for TCP, Unix-domain stream sockets and datagram (UDP, Unix) sockets, with the
/// transports supplied by the backend. Name lookup goes to the Portable implementation.
/// </summary>
internal abstract class NativeNetwork : NetworkCapability
{
    protected static PortableNetwork Portable => PortableNetwork.Instance;

    /// <summary>Whether sockets made here are put in non-blocking mode (epoll retries on EAGAIN; io_uring's ring waits itself).</summary>
    protected virtual bool NonBlocking => true;

    /// <summary>The backend's listener over a bound, listening stream socket (which it now owns).</summary>
    protected abstract ListenerTransport NewListener(Socket socket);

    /// <summary>The backend's transport over a bound datagram socket (which it now owns).</summary>
    protected abstract DatagramTransport NewDatagram(Socket socket);

    /// <summary>Connects a new stream socket (TCP or Unix) to <paramref name="endpoint"/> on the calling fiber and returns its transport; closes the socket on failure.</summary>
    /// <remarks>The backend creates the socket with <see cref="NewStreamSocket"/> (TCP_NODELAY on IP, then <paramref name="options"/>).</remarks>
    protected abstract Task<StreamTransport> ConnectStreamAsync(EndPoint endpoint, FiberFrame frame, IReadOnlyList<SocketOptionSetting>? options);

    /// <summary>A new stream socket for <paramref name="endpoint"/> (non-blocking where <see cref="NonBlocking"/>): TCP_NODELAY on IP
    /// sockets, then the caller's <paramref name="options"/> (which may turn it off), all before connect. Disposes the socket if
    /// an option is refused.</summary>
    protected Socket NewStreamSocket(EndPoint endpoint, IReadOnlyList<SocketOptionSetting>? options)
    {
        var socket = PortableNetwork.NewSocket(endpoint, SocketType.Stream);
        try
        {
            if (IsTcp(endpoint))
            {
                socket.NoDelay = true;
            }

            new DotNetSocketOptions(socket).Apply(options);
            socket.Blocking = !NonBlocking;
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    /// <summary>Whether sockets of <paramref name="endpoint"/>'s family get TCP_NODELAY (IP only).</summary>
    internal static bool IsTcp(EndPoint? endpoint) => endpoint is IPEndPoint;

    public override ListeningSocket Listen(Switch sw, EndPoint endpoint, int backlog = 128, bool reuseAddress = true, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        var socket = PortableNetwork.ListenSocket(endpoint, backlog, reuseAddress, reusePort, options);
        socket.Blocking = !NonBlocking;
        return new ListeningSocket(sw, NewListener(socket));
    }

    public override async Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint, IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        StreamTransport transport;
        try
        {
            transport = await ConnectStreamAsync(endpoint, frame, options);
        }
        catch (SocketException e)
        {
            throw NetException.From(e, $"connect to {endpoint}");
        }

        return new StreamSocket(sw, transport);
    }

    public override DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        var socket = PortableNetwork.BindDatagram(endpoint, reuseAddress, reusePort, options);
        socket.Blocking = !NonBlocking;
        return new DatagramSocket(sw, NewDatagram(socket));
    }

    public override Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port) => Portable.GetAddrInfoAsync(host, port);
}
