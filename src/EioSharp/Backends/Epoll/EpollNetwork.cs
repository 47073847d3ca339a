using System.Net;
using System.Net.Sockets;
using EioSharp.Backends.Native;
using EioSharp.Net;

namespace EioSharp.Backends.Epoll;

/// <summary>The epoll backend's network (Linux): TCP and Unix-domain stream sockets and datagram (UDP, Unix) sockets do their own I/O on the calling domain.</summary>
/// <remarks>Name lookup uses the Portable implementation.</remarks>
internal sealed class EpollNetwork : NativeNetwork
{
    public static readonly EpollNetwork Instance = new();

    protected override ListenerTransport NewListener(Socket socket) => new EpollListenerTransport(socket);

    protected override DatagramTransport NewDatagram(Socket socket) => new EpollDatagramTransport(socket);

    protected override async Task<StreamTransport> ConnectStreamAsync(EndPoint ip, FiberFrame frame, IReadOnlyList<SocketOptionSetting>? options)
    {
        var socket = NewStreamSocket(ip, options);
        var fd = new EpollFd(socket);
        try
        {
            try
            {
                socket.Connect(ip);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
                // Non-blocking connect in progress: wait until writable (or failed) in this domain's epoll.
                fd.Use("connect");
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
                    throw EpollIo.Error(err, $"connect to {ip}");
                }
            }
        }
        catch
        {
            fd.Close();
            throw;
        }

        return new EpollStreamTransport(fd, ip);
    }
}
