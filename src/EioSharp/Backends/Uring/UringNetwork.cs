using System.Net;
using System.Net.Sockets;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Native;
using EioSharp.Net;

namespace EioSharp.Backends.Uring;

/// <summary>The io_uring backend's network (Linux): TCP and Unix-domain stream sockets and datagram (UDP, Unix) sockets do their I/O through the calling domain's ring.</summary>
/// <remarks>Name lookup uses the Portable implementation.</remarks>
internal sealed class UringNetwork : NativeNetwork
{
    public static readonly UringNetwork Instance = new();

    protected override bool NonBlocking => false;

    protected override ListenerTransport NewListener(Socket socket) => new UringListenerTransport(socket);

    protected override DatagramTransport NewDatagram(Socket socket) => new UringDatagramTransport(socket);

    protected override async Task<StreamTransport> ConnectStreamAsync(EndPoint ip, FiberFrame frame, IReadOnlyList<SocketOptionSetting>? options)
    {
        var fd = new UringFd(NewStreamSocket(ip, options));
        try
        {
            await ConnectFdAsync(fd, ip, frame);
        }
        catch
        {
            fd.Close();
            throw;
        }

        return new UringStreamTransport(fd, ip);
    }

    private static async Task ConnectFdAsync(UringFd fd, EndPoint ip, FiberFrame frame)
    {
        nint sa = UringIo.AllocSockaddr(128);
        try
        {
            int len = EpollIo.WriteSockaddr(ip, UringIo.Span(sa, 128));
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
