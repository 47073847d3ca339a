using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using EioSharp.Backends.Epoll;
using EioSharp.IO;
using EioSharp.Net;

namespace EioSharp.Backends.Native;

// What the two native Linux backends (epoll, io_uring) share about a socket: one fd with use-counted ownership (S29: close
// is idempotent, an operation in flight holds a use and the fd is closed only when the last use ends), and the synchronous
// calls that need no waiting (shutdown, socket options, the local address). Each backend subclasses the fd for its waiting.

/// <summary>Shared ownership of one socket fd of a native backend (a .NET <see cref="Socket"/> used only for its fd, or a bare accepted fd).</summary>
internal abstract class NativeSocketFd : UseCountedHandle
{
    private readonly Socket? _socket;

    protected NativeSocketFd(Socket socket)
    {
        _socket = socket;
        Fd = (int)socket.SafeHandle.DangerousGetHandle();
    }

    protected NativeSocketFd(int fd) => Fd = fd;

    public int Fd { get; }

    /// <summary>Begins an operation on the calling fiber: checks cancellation (throws <see cref="OperationCanceledException"/>) and takes a use (throws <see cref="ObjectDisposedException"/> when closed).</summary>
    public FiberFrame Begin(string what)
    {
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        Use(what);
        return frame;
    }

    /// <summary>Takes a use, or throws <see cref="ObjectDisposedException"/> naming <paramref name="what"/> when the socket is closed.</summary>
    public void Use(string what)
    {
        if (!TryUse())
        {
            throw new ObjectDisposedException(what, "The socket is closed.");
        }
    }

    /// <summary>Closes the socket (or the bare fd); runs once, when the socket is closed and no operation uses it.</summary>
    protected override void Release()
    {
        if (_socket is not null)
        {
            try
            {
                _socket.Dispose();
            }
            catch (SocketException)
            {
                // Closing an already-broken socket: nothing more to release.
            }
        }
        else
        {
            EpollIo.close(Fd);
        }
    }

    /// <summary>getsockopt of an int option; throws <see cref="NetException"/> on failure, <see cref="ObjectDisposedException"/> when closed.</summary>
    public int GetIntOption(int level, int name)
    {
        Use("getsockopt");
        try
        {
            return EpollIo.GetIntOptionRaw(Fd, level, name);
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>setsockopt of an int option; throws <see cref="NetException"/> on failure, <see cref="ObjectDisposedException"/> when closed.</summary>
    public void SetIntOption(int level, int name, int value)
    {
        Use("setsockopt");
        try
        {
            EpollIo.SetIntOptionRaw(Fd, level, name, value);
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>The socket's local address (getsockname), or null when it is closed or the call fails.</summary>
    public EndPoint? LocalEndPoint()
    {
        if (!TryUse())
        {
            return null;
        }

        try
        {
            return EpollIo.SockName(Fd);
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>shutdown(2) of a listening socket: the kernel stops listening at once (see ListenerTransport.StopListening);
    /// errors are ignored, and a closed socket is left alone.</summary>
    public void StopListening()
    {
        if (!TryUse())
        {
            return;
        }

        try
        {
            _ = EpollIo.shutdown(Fd, 2); // SHUT_RDWR
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>shutdown(2); a socket that is not connected (any more) is not an error. Synchronous on both native backends.</summary>
    public ValueTask Shutdown(ShutdownCommand command)
    {
        Use("shutdown");
        try
        {
            int how = command switch
            {
                ShutdownCommand.Receive => 0,
                ShutdownCommand.Send => 1,
                _ => 2,
            };
            if (EpollIo.shutdown(Fd, how) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != EpollIo.ENOTCONN)
                {
                    throw EpollIo.Error(errno, "shutdown");
                }
            }
        }
        finally
        {
            EndUse();
        }

        return ValueTask.CompletedTask;
    }
}
