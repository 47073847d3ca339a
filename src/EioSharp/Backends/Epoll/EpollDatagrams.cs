using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.Backends.Epoll;

/// <summary>A datagram socket (UDP or Unix) on the epoll backend: each operation tries its syscall on the calling domain's thread and on EAGAIN waits in that domain's epoll, then retries.</summary>
/// <remarks>As on the Portable backend, at most one fiber receives and one sends at a time. Close (S29) is <see cref="EpollFd"/>'s use-counted close.</remarks>
internal sealed class EpollDatagramTransport(Socket socket) : DatagramTransport
{
    private const int AddrSize = 128;
    private readonly EpollFd _fd = new(socket);
    private EndPoint? _local;

    public override EndPoint? LocalEndPoint => _local ??= _fd.LocalEndPoint();

    public override ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var frame = _fd.Begin("send");
        Span<byte> sa = stackalloc byte[AddrSize];
        int len;
        try
        {
            len = EpollIo.WriteSockaddr(destination, sa);
        }
        catch
        {
            _fd.EndUse();
            throw;
        }

        return Send(datagram, sa[..len], frame, destination);
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> datagram) => Send(datagram, default, _fd.Begin("send"), null);

    // Holds a use of the fd (taken by the caller), released when the datagram is sent or the send fails.
    private ValueTask Send(ReadOnlyMemory<byte> datagram, ReadOnlySpan<byte> sa, FiberFrame frame, EndPoint? destination)
    {
        nint n = EpollIo.SendTo(_fd.Fd, datagram.Span, sa, out int errno);
        if (n >= 0)
        {
            _fd.EndUse();
            return ValueTask.CompletedTask;
        }

        if (errno != EpollIo.EAGAIN)
        {
            _fd.EndUse();
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
                await _fd.WaitAsync(write: true, frame);
                nint n = EpollIo.SendTo(_fd.Fd, datagram.Span, sa, out int errno);
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
            _fd.EndUse();
        }
    }

    public override ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer)
    {
        var frame = _fd.Begin("receive");
        Span<byte> sa = stackalloc byte[AddrSize];
        nint n = EpollIo.RecvFrom(_fd.Fd, buffer.Span, sa, out int len, out int errno);
        if (n >= 0)
        {
            _fd.EndUse();
            return new(((int)n, Sender(sa, len)));
        }

        if (errno != EpollIo.EAGAIN)
        {
            _fd.EndUse();
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
                await _fd.WaitAsync(write: false, frame);
                nint n = EpollIo.RecvFrom(_fd.Fd, buffer.Span, sa, out int len, out int errno);
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
            _fd.EndUse();
        }
    }

    private static EndPoint Sender(ReadOnlySpan<byte> sa, int len) => EpollIo.Parse(sa[..Math.Min(len, sa.Length)]) ?? EpollIo.Unnamed;

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        var frame = _fd.Begin("receive");
        nint n = EpollIo.Recv(_fd.Fd, buffer.Span, out int errno);
        if (n >= 0)
        {
            _fd.EndUse();
            return new((int)n);
        }

        if (errno != EpollIo.EAGAIN)
        {
            _fd.EndUse();
            throw EpollIo.Error(errno, "receive");
        }

        return ReceiveSlowAsync(buffer, frame);
    }

    private async ValueTask<int> ReceiveSlowAsync(Memory<byte> buffer, FiberFrame frame)
    {
        try
        {
            while (true)
            {
                await _fd.WaitAsync(write: false, frame);
                nint n = EpollIo.Recv(_fd.Fd, buffer.Span, out int errno);
                if (n >= 0)
                {
                    return (int)n;
                }

                if (errno != EpollIo.EAGAIN)
                {
                    throw EpollIo.Error(errno, "receive");
                }
            }
        }
        finally
        {
            _fd.EndUse();
        }
    }

    public override void Connect(EndPoint destination)
    {
        _fd.Use("connect");
        try
        {
            socket.Connect(destination);
        }
        catch (SocketException e)
        {
            throw NetException.From(e, $"connect datagram socket to {destination}");
        }
        finally
        {
            _fd.EndUse();
        }
    }

    public override void SetReceiveBufferSize(int bytes)
    {
        _fd.Use("setsockopt");
        try
        {
            socket.ReceiveBufferSize = bytes;
        }
        finally
        {
            _fd.EndUse();
        }
    }

    public override bool Close() => _fd.Close();
}
