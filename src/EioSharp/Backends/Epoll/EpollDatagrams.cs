using System.Net;
using System.Net.Sockets;
using EioSharp.Backends.Native;
using EioSharp.Net;

namespace EioSharp.Backends.Epoll;

/// <summary>A datagram socket (UDP or Unix) on the epoll backend: each operation tries its syscall on the calling domain's thread and on EAGAIN waits in that domain's epoll, then retries.</summary>
/// <remarks>As on the Portable backend, at most one fiber receives and one sends at a time. Close (S29) is <see cref="EpollFd"/>'s use-counted close.</remarks>
internal sealed class EpollDatagramTransport(Socket socket) : NativeDatagramTransport<EpollFd>(socket, new EpollFd(socket))
{
    private const int AddrSize = 128;

    public override ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var frame = Fd.Begin("send");
        Span<byte> sa = stackalloc byte[AddrSize];
        int len;
        try
        {
            len = EpollIo.WriteSockaddr(destination, sa);
        }
        catch
        {
            Fd.EndUse();
            throw;
        }

        return Send(datagram, sa[..len], frame, destination);
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> datagram) => Send(datagram, default, Fd.Begin("send"), null);

    // Holds a use of the fd (taken by the caller), released when the datagram is sent or the send fails.
    private ValueTask Send(ReadOnlyMemory<byte> datagram, ReadOnlySpan<byte> sa, FiberFrame frame, EndPoint? destination)
    {
        nint n = EpollIo.SendTo(Fd.Fd, datagram.Span, sa, out int errno);
        if (n >= 0)
        {
            Fd.EndUse();
            return ValueTask.CompletedTask;
        }

        if (errno != EpollIo.EAGAIN)
        {
            Fd.EndUse();
            throw EpollIo.Error(errno, destination is null ? "send" : $"send to {destination}");
        }

        return SendSlowAsync(datagram, sa.ToArray(), frame, destination);
    }

    private async ValueTask SendSlowAsync(ReadOnlyMemory<byte> datagram, byte[] sa, FiberFrame frame, EndPoint? destination)
    {
        try
        {
            while (true)
            {
                await Fd.WaitAsync(write: true, frame, shared: true);
                nint n = EpollIo.SendTo(Fd.Fd, datagram.Span, sa, out int errno);
                if (n >= 0)
                {
                    return;
                }

                if (errno != EpollIo.EAGAIN)
                {
                    throw EpollIo.Error(errno, destination is null ? "send" : $"send to {destination}");
                }
            }
        }
        finally
        {
            Fd.EndUse();
        }
    }

    public override ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer)
    {
        var frame = Fd.Begin("receive");
        Span<byte> sa = stackalloc byte[AddrSize];
        nint n = EpollIo.RecvFrom(Fd.Fd, buffer.Span, sa, out int len, out int errno);
        if (n >= 0)
        {
            Fd.EndUse();
            return new(((int)n, Sender(sa, len)));
        }

        if (errno != EpollIo.EAGAIN)
        {
            Fd.EndUse();
            throw EpollIo.Error(errno, "receive");
        }

        return ReceiveFromSlowAsync(buffer, frame);
    }

    private async ValueTask<(int Length, EndPoint Sender)> ReceiveFromSlowAsync(Memory<byte> buffer, FiberFrame frame)
    {
        var sa = new byte[AddrSize];
        try
        {
            while (true)
            {
                await Fd.WaitAsync(write: false, frame, shared: true);
                nint n = EpollIo.RecvFrom(Fd.Fd, buffer.Span, sa, out int len, out int errno);
                if (n >= 0)
                {
                    return ((int)n, Sender(sa, len));
                }

                if (errno != EpollIo.EAGAIN)
                {
                    throw EpollIo.Error(errno, "receive");
                }
            }
        }
        finally
        {
            Fd.EndUse();
        }
    }

    private static EndPoint Sender(ReadOnlySpan<byte> sa, int len) => EpollIo.Parse(sa[..Math.Min(len, sa.Length)]) ?? EpollIo.Unnamed;

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer) => Fd.ReceiveAsync(buffer, "receive", shared: true);
}
