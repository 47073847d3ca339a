using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Native;
using EioSharp.Net;

namespace EioSharp.Backends.Uring;

/// <summary>
/// A datagram socket (UDP or Unix) on the io_uring backend: sends to an address and receives with the sender's address are
/// IORING_OP_SENDMSG / IORING_OP_RECVMSG, connected sends and receives IORING_OP_SEND / IORING_OP_RECV, each an SQE on the
/// calling domain's ring. The msghdr, its iovec and the address live in one native block freed only after the completion
/// (the fiber resumes only then, also when cancelled: see <see cref="UringOp"/>).
/// </summary>
internal sealed class UringDatagramTransport(Socket socket) : NativeDatagramTransport<UringFd>(socket, new UringFd(socket))
{
    private const int MSG_NOSIGNAL = 0x4000;

    public override async ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var frame = Fd.Begin("send");
        nint block = Msg.Alloc();
        try
        {
            int len = EpollIo.WriteSockaddr(destination, UringIo.Span(block + Msg.AddrOffset, Msg.AddrSize));
            var pin = datagram.Pin();
            Msg.Fill(block, UringIo.Addr(pin), datagram.Length, len);
            var op = UringOp.Start(frame, Sys.IORING_OP_SENDMSG, Fd.Fd, pin, (ulong)block, 1, MSG_NOSIGNAL);
            int res = await op.Task;
            if (res < 0)
            {
                throw EpollIo.Error(-res, $"send to {destination}");
            }
        }
        finally
        {
            UringIo.Free(block);
            Fd.EndUse();
        }
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> datagram)
    {
        var frame = Fd.Begin("send");
        try
        {
            var pin = datagram.Pin();
            var op = UringOp.Start(frame, Sys.IORING_OP_SEND, Fd.Fd, pin, UringIo.Addr(pin), (uint)datagram.Length, MSG_NOSIGNAL);
            int res = await op.Task;
            if (res < 0)
            {
                throw EpollIo.Error(-res, "send");
            }
        }
        finally
        {
            Fd.EndUse();
        }
    }

    // Receives try recv/recvfrom with MSG_DONTWAIT first and go through the ring only when nothing is queued: a receive of a
    // datagram already queued completes at once, as on the other backends (the StatsD proxy's drain at shutdown relies on
    // it: the first receive that would wait means the queue is empty), and a busy receiver saves a ring round per datagram.
    public override ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer)
    {
        var frame = Fd.Begin("receive");
        Span<byte> sa = stackalloc byte[Msg.AddrSize];
        nint n = EpollIo.RecvFrom(Fd.Fd, buffer.Span, sa, out int len, out int errno, EpollIo.MSG_DONTWAIT);
        if (n >= 0)
        {
            Fd.EndUse();
            return new(((int)n, EpollIo.Parse(sa[..Math.Min(len, sa.Length)]) ?? EpollIo.Unnamed));
        }

        if (errno != EpollIo.EAGAIN)
        {
            Fd.EndUse();
            throw EpollIo.Error(errno, "receive");
        }

        return ReceiveFromRingAsync(buffer, frame);
    }

    private async ValueTask<(int Length, EndPoint Sender)> ReceiveFromRingAsync(Memory<byte> buffer, FiberFrame frame)
    {
        nint block = Msg.Alloc();
        try
        {
            var pin = buffer.Pin();
            Msg.Fill(block, UringIo.Addr(pin), buffer.Length, Msg.AddrSize);
            var op = UringOp.Start(frame, Sys.IORING_OP_RECVMSG, Fd.Fd, pin, (ulong)block, 1, 0);
            int res = await op.Task;
            if (res < 0)
            {
                throw EpollIo.Error(-res, "receive");
            }

            return (res, Msg.Sender(block));
        }
        finally
        {
            UringIo.Free(block);
            Fd.EndUse();
        }
    }

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        var frame = Fd.Begin("receive");
        nint n = EpollIo.Recv(Fd.Fd, buffer.Span, out int errno, EpollIo.MSG_DONTWAIT);
        if (n >= 0)
        {
            Fd.EndUse();
            return new((int)n);
        }

        if (errno != EpollIo.EAGAIN)
        {
            Fd.EndUse();
            throw EpollIo.Error(errno, "receive");
        }

        return ReceiveRingAsync(buffer, frame);
    }

    private async ValueTask<int> ReceiveRingAsync(Memory<byte> buffer, FiberFrame frame)
    {
        try
        {
            return await Fd.RecvAsync(frame, buffer, "receive");
        }
        finally
        {
            Fd.EndUse();
        }
    }
}

/// <summary>The native block of one SENDMSG/RECVMSG: struct msghdr (56 bytes on x64) | struct iovec (16) | sockaddr storage (128).</summary>
internal static unsafe class Msg
{
    public const int IovOffset = 56;
    public const int AddrOffset = 72;
    public const int AddrSize = 128;
    private const int BlockSize = AddrOffset + AddrSize;

    public static nint Alloc() => (nint)NativeMemory.AllocZeroed(BlockSize);

    /// <summary>msghdr { name, namelen, iov, iovlen = 1, control = null, controllen = 0, flags = 0 } and its one iovec.</summary>
    public static void Fill(nint block, ulong data, int length, int nameLen)
    {
        *(ulong*)block = (ulong)(block + AddrOffset);
        *(int*)(block + 8) = nameLen;
        *(ulong*)(block + 16) = (ulong)(block + IovOffset);
        *(ulong*)(block + 24) = 1;
        *(ulong*)(block + IovOffset) = data;
        *(ulong*)(block + IovOffset + 8) = (ulong)length;
    }

    /// <summary>The sender's address a RECVMSG wrote (msg_namelen updated by the kernel).</summary>
    public static EndPoint Sender(nint block)
    {
        int nameLen = *(int*)(block + 8);
        return EpollIo.Parse(new ReadOnlySpan<byte>((void*)(block + AddrOffset), Math.Min(nameLen, AddrSize))) ?? EpollIo.Unnamed;
    }
}
