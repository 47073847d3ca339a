using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.Backends.Native;

/// <summary>What the native backends' datagram transports share: the fd's ownership and the calls that never wait (connect, options, local address, close).</summary>
/// <typeparam name="TFd">The backend's fd type.</typeparam>
internal abstract class NativeDatagramTransport<TFd>(Socket socket, TFd fd) : DatagramTransport
    where TFd : NativeSocketFd
{
    private EndPoint? _local;

    /// <summary>The socket's fd (use-counted: S29).</summary>
    protected TFd Fd { get; } = fd;

    public override EndPoint? LocalEndPoint => _local ??= Fd.LocalEndPoint();

    /// <summary>connect(2) of a datagram socket only sets its default peer: it never waits, so it runs synchronously.</summary>
    public override void Connect(EndPoint destination)
    {
        Fd.Use("connect");
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
            Fd.EndUse();
        }
    }

    public override void SetReceiveBufferSize(int bytes)
    {
        Fd.Use("setsockopt");
        try
        {
            socket.ReceiveBufferSize = bytes;
        }
        finally
        {
            Fd.EndUse();
        }
    }

    public override SocketOptionTarget Options => new NativeSocketOptions(Fd, Fd.Fd);

    public override bool Close() => Fd.Close();
}
