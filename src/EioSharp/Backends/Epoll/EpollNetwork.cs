using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.Backends.Epoll;

/// <summary>The epoll backend's network (Linux): TCP listening and connected sockets do their own I/O on the calling domain.</summary>
/// <remarks>Unix-domain stream sockets, datagram sockets and name lookup use the Portable implementation unchanged.</remarks>
internal sealed class EpollNetwork : NetworkCapability
{
    public static readonly EpollNetwork Instance = new();

    private static PortableNetwork Portable => PortableNetwork.Instance;

    public override ListeningSocket Listen(Switch sw, EndPoint endpoint, int backlog = 128, bool reuseAddress = true, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        if (endpoint is not IPEndPoint)
        {
            return Portable.Listen(sw, endpoint, backlog, reuseAddress, reusePort, options);
        }

        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var socket = PortableNetwork.NewSocket(endpoint, SocketType.Stream);
        try
        {
            PortableNetwork.ApplyReuse(socket, reuseAddress, reusePort);
            new DotNetSocketOptions(socket).Apply(options);
            socket.Bind(endpoint);
            socket.Listen(backlog);
            socket.Blocking = false;
        }
        catch (Exception e) when (e is SocketException or NetException)
        {
            socket.Dispose();
            throw e is SocketException se ? NetException.From(se, $"listen on {endpoint}") : e;
        }

        return new ListeningSocket(sw, new EpollListenerTransport(socket));
    }

    public override async Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint, IReadOnlyList<SocketOptionSetting>? options = null)
    {
        if (endpoint is not IPEndPoint ip)
        {
            return await Portable.ConnectAsync(sw, endpoint, options);
        }

        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        var fd = new EpollFd(socket);
        try
        {
            EpollIo.SetIntOption(fd, EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, 1);
            new DotNetSocketOptions(socket).Apply(options);
            try
            {
                socket.Connect(ip);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
                // Non-blocking connect in progress: wait until writable (or failed) in this domain's epoll.
                fd.TryUse();
                try
                {
                    await fd.WaitAsync(write: true, frame);
                }
                finally
                {
                    fd.EndUse();
                }

                int err = EpollIo.PendingError(fd.Fd);
                if (err != 0)
                {
                    throw EpollIo.Error(err, $"connect to {endpoint}");
                }
            }
        }
        catch (SocketException e)
        {
            fd.Close();
            throw NetException.From(e, $"connect to {endpoint}");
        }
        catch
        {
            fd.Close();
            throw;
        }

        return new StreamSocket(sw, new EpollStreamTransport(fd, ip));
    }

    public override DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null) =>
        Portable.OpenDatagram(sw, endpoint, reuseAddress, reusePort, options);

    public override Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port) => Portable.GetAddrInfoAsync(host, port);
}
