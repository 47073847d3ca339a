using System.Net;
using System.Net.Sockets;
using EioSharp.IO;

namespace EioSharp.Net;

/// <summary>A connected stream socket (TCP or Unix domain): a two-way flow owned by a switch.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.stream_socket</c>.
/// <para><b>Lifetime</b>: closed when its switch finishes, or earlier by <see cref="Close"/> (idempotent, S29; an operation in
/// flight keeps the OS socket alive until it finishes).</para>
/// <para><b>Thread safety</b>: one reader and one writer at a time; the socket may be handed to a fiber on another domain.</para>
/// </remarks>
public sealed class StreamSocket : IFlowDuplex
{
    private readonly SocketHandle _handle;
    private readonly ReleaseHook? _hook;
    private readonly Domain _ownerDomain;

    internal StreamSocket(Switch sw, Socket socket)
    {
        _handle = new SocketHandle(socket);
        _ownerDomain = sw.Domain;
        try
        {
            _hook = sw.OnRelease(Close);
        }
        catch (InvalidOperationException)
        {
            throw; // The switch had finished: the socket has been closed by the hook.
        }

        RemoteEndPoint = socket.RemoteEndPoint;
        LocalEndPoint = socket.LocalEndPoint;
    }

    /// <summary>The peer's address.</summary>
    public EndPoint? RemoteEndPoint { get; }

    /// <summary>This end's address.</summary>
    public EndPoint? LocalEndPoint { get; }

    /// <summary>True once <see cref="Close"/> was called (or the owning switch finished).</summary>
    public bool IsClosed => _handle.IsClosed;

    /// <summary>Disables Nagle's algorithm (TCP_NODELAY) when true.</summary>
    public bool NoDelay
    {
        get => _handle.Socket.NoDelay;
        set => _handle.Socket.NoDelay = value;
    }

    /// <inheritdoc/>
    /// <exception cref="NetException">The connection failed (for example reset by the peer).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        var frame = SocketIo.Begin(_handle, "read");
        ValueTask<int> vt;
        try
        {
            vt = _handle.Socket.ReceiveAsync(buffer, SocketFlags.None, frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            _handle.EndUse();
            throw SocketIo.Map(e, frame, "read");
        }

        return SocketIo.Complete(vt, _handle, frame, "read");
    }

    private ValueTask<int> SendSomeAsync(ReadOnlyMemory<byte> data)
    {
        var frame = SocketIo.Begin(_handle, "write");
        ValueTask<int> vt;
        try
        {
            vt = _handle.Socket.SendAsync(data, SocketFlags.None, frame.Cancel.Token);
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            _handle.EndUse();
            throw SocketIo.Map(e, frame, "write");
        }

        return SocketIo.Complete(vt, _handle, frame, "write");
    }

    /// <inheritdoc/>
    /// <exception cref="NetException">The connection failed (for example the peer closed it).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
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

    /// <inheritdoc/>
    public ValueTask ShutdownAsync(ShutdownCommand command)
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

    /// <inheritdoc/>
    public void Close()
    {
        if (_handle.Close() && _hook is not null && ReferenceEquals(Domain.Current, _ownerDomain))
        {
            _hook.Remove();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"StreamSocket {LocalEndPoint} <-> {RemoteEndPoint}";
}
