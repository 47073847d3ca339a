using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.Backends.Native;

/// <summary>
/// The network of a native Linux backend (epoll, io_uring): the socket set-up both share (create, options, bind, listen,
/// error mapping and close on failure), with the transports supplied by the backend. What a backend does not handle itself
/// goes to the Portable implementation unchanged (name lookup always does).
/// </summary>
internal abstract class NativeNetwork : NetworkCapability
{
    protected static PortableNetwork Portable => PortableNetwork.Instance;

    /// <summary>Whether listening sockets are put in non-blocking mode (epoll retries on EAGAIN; io_uring's ring waits itself).</summary>
    protected virtual bool NonBlockingListener => true;

    /// <summary>The backend's listener over a bound, listening TCP socket (which it now owns).</summary>
    protected abstract ListenerTransport NewListener(Socket socket);

    /// <summary>Connects a new TCP socket to <paramref name="ip"/> on the calling fiber and returns its transport; closes the socket on failure.</summary>
    protected abstract Task<StreamTransport> ConnectTcpAsync(IPEndPoint ip, FiberFrame frame);

    public override ListeningSocket Listen(Switch sw, EndPoint endpoint, int backlog = 128, bool reuseAddress = true, bool reusePort = false)
    {
        if (endpoint is not IPEndPoint)
        {
            return Portable.Listen(sw, endpoint, backlog, reuseAddress, reusePort);
        }

        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var socket = PortableNetwork.NewSocket(endpoint, SocketType.Stream);
        try
        {
            PortableNetwork.ApplyReuse(socket, reuseAddress, reusePort);
            socket.Bind(endpoint);
            socket.Listen(backlog);
            socket.Blocking = !NonBlockingListener;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw NetException.From(e, $"listen on {endpoint}");
        }

        return new ListeningSocket(sw, NewListener(socket));
    }

    public override async Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint)
    {
        if (endpoint is not IPEndPoint ip)
        {
            return await Portable.ConnectAsync(sw, endpoint);
        }

        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        StreamTransport transport;
        try
        {
            transport = await ConnectTcpAsync(ip, frame);
        }
        catch (SocketException e)
        {
            throw NetException.From(e, $"connect to {endpoint}");
        }

        return new StreamSocket(sw, transport);
    }

    public override DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false) =>
        Portable.OpenDatagram(sw, endpoint, reuseAddress, reusePort);

    public override Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port) => Portable.GetAddrInfoAsync(host, port);
}
