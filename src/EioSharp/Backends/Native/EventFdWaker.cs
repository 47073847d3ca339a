using System.Runtime.InteropServices;
using EioSharp.Backends.Epoll;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Backends.Native;

/// <summary>
/// The cross-thread wake-up of a native poller (epoll, io_uring): an eventfd the poller watches in its own wait (an epoll
/// registration, or a POLL_ADD on the ring). <see cref="Wake"/> is safe from any thread, also after <see cref="Dispose"/>
/// (then it does nothing); <see cref="Drain"/> runs on the poller's thread when the fd has become readable.
/// </summary>
internal sealed unsafe class EventFdWaker : IDisposable
{
    private readonly SafeFileHandle _handle;

    private EventFdWaker(int fd)
    {
        Fd = fd;
        _handle = new SafeFileHandle(fd, ownsHandle: true);
    }

    public int Fd { get; }

    /// <summary>Creates the eventfd (non-blocking, close-on-exec), or returns null with the reason.</summary>
    public static EventFdWaker? TryCreate(out string? error)
    {
        int fd = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (fd < 0)
        {
            error = $"eventfd failed (errno {Marshal.GetLastPInvokeError()})";
            return null;
        }

        error = null;
        return new EventFdWaker(fd);
    }

    /// <summary>Makes the eventfd readable (wakes the poller's wait); a no-op once disposed.</summary>
    public void Wake()
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            ulong one = 1;
            Libc.write(Fd, &one, 8);
        }
        catch (ObjectDisposedException)
        {
            // The domain has ended: nobody to wake.
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    /// <summary>Resets the counter (the poller saw the fd readable).</summary>
    public void Drain()
    {
        ulong drain;
        Libc.read(Fd, &drain, 8);
    }

    public void Dispose() => _handle.Dispose();
}
