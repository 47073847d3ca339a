using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EioSharp.Backends.Epoll;
using EioSharp.Net;

namespace EioSharp.Backends.Uring;

/// <summary>The io_uring backend's network (Linux): TCP listening and connected sockets do their I/O through the calling domain's ring.</summary>
/// <remarks>Not yet on the ring: Unix-domain stream sockets, datagram sockets and name lookup use the Portable implementation.</remarks>
internal sealed class UringNetwork : NetworkCapability
{
    public static readonly UringNetwork Instance = new();

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
        }
        catch (Exception e) when (e is SocketException or NetException)
        {
            socket.Dispose();
            throw e is SocketException se ? NetException.From(se, $"listen on {endpoint}") : e;
        }

        return new ListeningSocket(sw, new UringListenerTransport(socket));
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
        var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        var fd = new UringFd(socket);
        try
        {
            UringIo.SetIntOption(fd, EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, 1);
            new DotNetSocketOptions(socket).Apply(options);
            await ConnectFdAsync(fd, ip, frame);
        }
        catch
        {
            fd.Close();
            throw;
        }

        return new StreamSocket(sw, new UringStreamTransport(fd, ip));
    }

    private static async Task ConnectFdAsync(UringFd fd, IPEndPoint ip, FiberFrame frame)
    {
        nint sa = UringIo.AllocSockaddr(32);
        try
        {
            int len = UringIo.WriteSockaddr(ip, UringIo.Span(sa, 32));
            var op = UringOp.Start(frame, Sys.IORING_OP_CONNECT, fd.Fd, default, (ulong)sa, 0, 0, (ulong)len);
            int res = await op.Task;
            if (res < 0)
            {
                throw EpollIo.Error(-res, $"connect to {ip}");
            }
        }
        finally
        {
            // Freed only after the completion: the kernel may read the address until then.
            UringIo.Free(sa);
        }
    }

    public override DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null) =>
        Portable.OpenDatagram(sw, endpoint, reuseAddress, reusePort, options);

    public override Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port) => Portable.GetAddrInfoAsync(host, port);
}
