using System.Net;
using EioSharp.IO;

namespace EioSharp.Net;

// The public socket types (StreamSocket, ListeningSocket, DatagramSocket) own switch registration and present the API;
// the transport underneath does the I/O. The Portable backend's transports wrap a .NET Socket (SocketTransports.cs); the
// mock backend's (EioSharp.Mock) run scripted actions. One virtual call per operation, no allocation added to the real
// path. Every transport's Close is idempotent and returns true only for the call that closed it (S29).

/// <summary>The I/O under a <see cref="StreamSocket"/>.</summary>
internal abstract class StreamTransport
{
    /// <summary>Reads and sets socket options; the default: not supported by this transport.</summary>
    public virtual SocketOptionTarget Options => throw new NotSupportedException("This socket does not support socket options.");

    public abstract EndPoint? RemoteEndPoint { get; }

    public abstract EndPoint? LocalEndPoint { get; }

    public abstract bool IsClosed { get; }

    public abstract bool NoDelay { get; set; }

    public abstract ValueTask<int> ReadAsync(Memory<byte> buffer);

    public abstract ValueTask WriteAsync(ReadOnlyMemory<byte> data);

    public abstract ValueTask ShutdownAsync(ShutdownCommand command);

    /// <summary>Closes the transport; true if this call closed it.</summary>
    public abstract bool Close();

    /// <summary>Bytes accepted by <see cref="WriteAsync"/> that the kernel has not taken yet (a write-behind send in
    /// flight, io_uring); 0 on transports whose writes return only once the kernel has every byte. Any thread.</summary>
    public virtual long UnsentBytes => 0;

    /// <summary>Waits until every byte accepted by <see cref="WriteAsync"/> is taken by the kernel, and throws the error of a
    /// send that failed after its write returned; completes at once on transports without write-behind.</summary>
    public virtual ValueTask FlushAsync() => ValueTask.CompletedTask;
}

/// <summary>The I/O under a <see cref="ListeningSocket"/>.</summary>
internal abstract class ListenerTransport
{
    /// <summary>Reads and sets socket options; the default: not supported by this transport.</summary>
    public virtual SocketOptionTarget Options => throw new NotSupportedException("This socket does not support socket options.");

    public abstract EndPoint ListeningEndPoint { get; }

    public abstract bool IsClosed { get; }

    /// <summary>Waits for a connection; the caller wraps the transport in a <see cref="StreamSocket"/> owned by its switch.</summary>
    public abstract ValueTask<(StreamTransport Connection, EndPoint Peer)> AcceptAsync();

    /// <summary>Closes the transport; true if this call closed it.</summary>
    public abstract bool Close();

    /// <summary>Told by <c>ListeningSocket.RunServerAsync</c> before it starts <paramref name="loops"/> accept loops, each on
    /// its own domain; a transport whose accept strategy depends on it (io_uring's multishot accept) adapts. Default: nothing.</summary>
    public virtual void ExpectAcceptLoops(int loops)
    {
    }

    /// <summary>Makes the kernel stop listening at once (shutdown(2) of the listening socket: new connections are refused,
    /// queued ones reset, accepts in flight fail with EINVAL) while the descriptor stays open until <see cref="Close"/> and
    /// the last accept in flight end (S29). Best effort: never throws; the default (a scripted socket) does nothing.</summary>
    public virtual void StopListening()
    {
    }
}

/// <summary>The I/O under a <see cref="DatagramSocket"/>.</summary>
internal abstract class DatagramTransport
{
    /// <summary>Reads and sets socket options; the default: not supported by this transport.</summary>
    public virtual SocketOptionTarget Options => throw new NotSupportedException("This socket does not support socket options.");

    public abstract EndPoint? LocalEndPoint { get; }

    public abstract ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram);

    public abstract void Connect(EndPoint destination);

    public abstract ValueTask SendAsync(ReadOnlyMemory<byte> datagram);

    public abstract ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer);

    public abstract ValueTask<int> ReceiveAsync(Memory<byte> buffer);

    public abstract void SetReceiveBufferSize(int bytes);

    /// <summary>Closes the transport; true if this call closed it.</summary>
    public abstract bool Close();
}
