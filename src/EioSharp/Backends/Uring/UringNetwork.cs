using System.Net;
using System.Net.Sockets;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Native;
using EioSharp.Net;

namespace EioSharp.Backends.Uring;

/// <summary>The io_uring backend's network (Linux): TCP listening and connected sockets do their I/O through the calling domain's ring.</summary>
/// <remarks>Not yet on the ring: Unix-domain stream sockets, datagram sockets and name lookup use the Portable implementation.</remarks>
internal sealed class UringNetwork : NativeNetwork
{
    public static readonly UringNetwork Instance = new();

    protected override bool NonBlockingListener => false;

    protected override ListenerTransport NewListener(Socket socket) => new UringListenerTransport(socket);

    protected override async Task<StreamTransport> ConnectTcpAsync(IPEndPoint ip, FiberFrame frame)
    {
        var fd = new UringFd(new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            await ConnectFdAsync(fd, ip, frame);
            fd.SetIntOption(EpollIo.IPPROTO_TCP, EpollIo.TCP_NODELAY, 1);
        }
        catch
        {
            fd.Close();
            throw;
        }

        return new UringStreamTransport(fd, ip);
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
}
