using System.Net;
using System.Net.Sockets;
using EioSharp.IO;

namespace EioSharp.Net;

/// <summary>A connected .NET <see cref="Socket"/> (Portable backend); shared ownership through <see cref="SocketHandle"/> (S29).</summary>
internal sealed class SocketStreamTransport : StreamTransport
{
    private readonly SocketHandle _handle;

    public SocketStreamTransport(Socket socket)
    {
        _handle = new SocketHandle(socket);
        RemoteEndPoint = socket.RemoteEndPoint;
        LocalEndPoint = socket.LocalEndPoint;
    }

    public override EndPoint? RemoteEndPoint { get; }

    public override EndPoint? LocalEndPoint { get; }

    public override bool IsClosed => _handle.IsClosed;

    public override SocketOptionTarget Options => new DotNetSocketOptions(_handle.Socket);

    public override bool NoDelay
    {
        get => _handle.Socket.NoDelay;
        set => _handle.Socket.NoDelay = value;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        return SocketIo.Run(_handle, "read", buffer, static (socket, b, ct) => socket.ReceiveAsync(b, SocketFlags.None, ct));
    }

    private ValueTask<int> SendSomeAsync(ReadOnlyMemory<byte> data)
    {
        return SocketIo.Run(_handle, "write", data, static (socket, d, ct) => socket.SendAsync(d, SocketFlags.None, ct));
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        var vt = SendSomeAsync(data);
        if (vt.IsCompletedSuccessfully && vt.Result == data.Length)
        {
            return ValueTask.CompletedTask;
        }

        return WriteRestAsync(vt, data);
    }

    private async ValueTask WriteRestAsync(ValueTask<int> first, ReadOnlyMemory<byte> data)
    {
        int sent = await first;
        while (sent < data.Length)
        {
            sent += await SendSomeAsync(data[sent..]);
        }
    }

    public override ValueTask ShutdownAsync(ShutdownCommand command)
    {
        if (!_handle.TryUse())
        {
            throw new ObjectDisposedException("shutdown", "The socket is closed.");
        }

        try
        {
            _handle.Socket.Shutdown(command switch
            {
                ShutdownCommand.Receive => SocketShutdown.Receive,
                ShutdownCommand.Send => SocketShutdown.Send,
                _ => SocketShutdown.Both,
            });
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.NotConnected)
        {
            // The peer is already gone: nothing to shut down.
        }
        catch (SocketException e)
        {
            throw NetException.From(e, "shutdown");
        }
        finally
        {
            _handle.EndUse();
        }

        return ValueTask.CompletedTask;
    }

    public override bool Close() => _handle.Close();
}

/// <summary>A listening .NET <see cref="Socket"/> (Portable backend).</summary>
internal sealed class SocketListenerTransport(Socket socket) : ListenerTransport
{
    private readonly SocketHandle _handle = new(socket);

    public override SocketOptionTarget Options => new DotNetSocketOptions(_handle.Socket);

    public override EndPoint ListeningEndPoint { get; } = socket.LocalEndPoint!;

    public override bool IsClosed => _handle.IsClosed;

    public override async ValueTask<(StreamTransport Connection, EndPoint Peer)> AcceptAsync()
    {
        var frame = SocketIo.Begin(_handle, "accept");
        Socket accepted;
        try
        {
            accepted = await _handle.Socket.AcceptAsync(frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            throw SocketIo.Map(e, frame, "accept");
        }
        finally
        {
            _handle.EndUse();
        }

        if (accepted.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            accepted.NoDelay = true;
        }

        var peer = accepted.RemoteEndPoint ?? new UnixDomainSocketEndPoint("(unnamed)");
        return (new SocketStreamTransport(accepted), peer);
    }

    public override bool Close() => _handle.Close();

    public override void StopListening()
    {
        if (!_handle.TryUse())
        {
            return;
        }

        try
        {
            _handle.Socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Not listening any more: nothing to stop.
        }
        finally
        {
            _handle.EndUse();
        }
    }
}

/// <summary>A datagram .NET <see cref="Socket"/> (Portable backend).</summary>
internal sealed class SocketDatagramTransport(Socket socket) : DatagramTransport
{
    private readonly SocketHandle _handle = new(socket);

    public override SocketOptionTarget Options => new DotNetSocketOptions(_handle.Socket);

    public override EndPoint? LocalEndPoint => _handle.Socket.LocalEndPoint;

    public override async ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram)
    {
        var frame = SocketIo.Begin(_handle, "send");
        try
        {
            await _handle.Socket.SendToAsync(datagram, SocketFlags.None, destination, frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            throw SocketIo.Map(e, frame, $"send to {destination}");
        }
        finally
        {
            _handle.EndUse();
        }
    }

    public override void Connect(EndPoint destination)
    {
        if (!_handle.TryUse())
        {
            throw new ObjectDisposedException("connect", "The socket is closed.");
        }

        try
        {
            _handle.Socket.Connect(destination);
        }
        catch (SocketException e)
        {
            throw NetException.From(e, $"connect datagram socket to {destination}");
        }
        finally
        {
            _handle.EndUse();
        }
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> datagram)
    {
        var frame = SocketIo.Begin(_handle, "send");
        ValueTask<int> vt;
        try
        {
            vt = _handle.Socket.SendAsync(datagram, SocketFlags.None, frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            _handle.EndUse();
            throw SocketIo.Map(e, frame, "send");
        }

        if (vt.IsCompletedSuccessfully)
        {
            _handle.EndUse();
            return ValueTask.CompletedTask;
        }

        return new ValueTask(SocketIo.Finish(vt, _handle, frame, "send").AsTask());
    }

    public override async ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer)
    {
        var frame = SocketIo.Begin(_handle, "receive");
        try
        {
            var any = _handle.Socket.AddressFamily == AddressFamily.InterNetworkV6 ? (EndPoint)new IPEndPoint(IPAddress.IPv6Any, 0)
                : _handle.Socket.AddressFamily == AddressFamily.Unix ? _handle.Socket.LocalEndPoint! : new IPEndPoint(IPAddress.Any, 0);
            var r = await _handle.Socket.ReceiveFromAsync(buffer, SocketFlags.None, any, frame.Cancel.Token);
            return (r.ReceivedBytes, r.RemoteEndPoint);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            throw SocketIo.Map(e, frame, "receive");
        }
        finally
        {
            _handle.EndUse();
        }
    }

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        return SocketIo.Run(_handle, "receive", buffer, static (socket, b, ct) => socket.ReceiveAsync(b, SocketFlags.None, ct));
    }

    public override void SetReceiveBufferSize(int bytes) => _handle.Socket.ReceiveBufferSize = bytes;

    public override bool Close() => _handle.Close();
}
