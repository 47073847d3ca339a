using System.Runtime.InteropServices;
using EioSharp.Backends.Native;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Backends.Epoll;

/// <summary>
/// The Linux epoll backend's poller: one epoll instance per domain plus an eventfd for cross-thread wake-ups.
/// </summary>
/// <remarks>
/// Registrations are <b>edge-triggered</b> (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), added once per (fd, domain) the first
/// time an operation on that fd would block on the domain, and deleted when the fd is finally closed. Operations always try
/// the syscall first and wait only after EAGAIN; a readiness edge with no waiter is simply dropped (the next operation tries
/// the syscall first anyway), and a spurious completion only makes the operation retry. So "interest" is the waiter slot in
/// <see cref="FdRegistration"/>: a cancelled wait clears its slot, leaving nothing behind in the kernel to re-arm.
/// The epoll_event's data is a <see cref="GCHandle"/> to the registration, freed on the domain's thread after EPOLL_CTL_DEL.
/// </remarks>
internal sealed unsafe class EpollPoller : IDomainPoller, IReadyWatcher
{
    private const int MaxEvents = 256;
    private readonly SafeFileHandle _epoll;
    private readonly EventFdWaker _waker;
    private readonly int _epfd;
    private readonly EpollEvent* _events;
    private int _registrations;
    private int _wakesSinceDrain; // wake-up edges seen since the eventfd's counter was last read (domain thread only)

    /// <summary>Wake-up edges between two reads of the eventfd's counter (which would overflow only after 2^64 - 2 writes:
    /// the read is a formality that keeps the counter small).</summary>
    internal const int WakeDrainInterval = 1 << 16;

    /// <summary>How many times the eventfd's counter was read back (once per <see cref="WakeDrainInterval"/> wake-ups; for tests).</summary>
    internal int WakeDrains { get; private set; }
    private int _disposed;

    // Readiness watches without a waiting fiber (a child's pidfd): level-triggered one-shot, data = a GCHandle to the entry.
    private readonly HashSet<EpollWatchEntry> _watches = [];

    private EpollPoller(EioBackendOptions options, int epfd, EventFdWaker waker)
    {
        Options = options;
        SpinTicks = options.SpinStopwatchTicks;
        WakeSpinTicks = options.WakeSpinStopwatchTicks;
        _epfd = epfd;
        _waker = waker;
        _epoll = new SafeFileHandle(epfd, ownsHandle: true);
        _events = (EpollEvent*)NativeMemory.Alloc(MaxEvents, (nuint)sizeof(EpollEvent));
    }

    /// <summary>The run's tuning (fixed when the poller is made).</summary>
    internal EioBackendOptions Options { get; }

    public long SpinTicks { get; }

    public long WakeSpinTicks { get; }

    /// <summary>Creates a poller with <paramref name="options"/>, or returns null with the reason when epoll is unavailable (not Linux, syscall failed).</summary>
    public static EpollPoller? TryCreate(EioBackendOptions options, out string? error)
    {
        error = null;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            error = "the epoll backend needs Linux on x64 (the packed epoll_event layout)";
            return null;
        }

        try
        {
            int ep = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
            if (ep < 0)
            {
                error = $"epoll_create1 failed (errno {Marshal.GetLastPInvokeError()})";
                return null;
            }

            var waker = EventFdWaker.TryCreate(out error);
            if (waker is null)
            {
                Libc.close(ep);
                return null;
            }

            // Edge-triggered: every write to the eventfd wakes its wait queue, which queues a new edge even while the
            // counter is already non-zero, so the poller need not read the counter back after each wake-up (one syscall
            // per cross-domain wake-up less); see Poll.
            var ev = new EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLET, Data = 0 };
            if (Libc.epoll_ctl(ep, Libc.EPOLL_CTL_ADD, waker.Fd, &ev) < 0)
            {
                error = $"epoll_ctl(eventfd) failed (errno {Marshal.GetLastPInvokeError()})";
                waker.Dispose();
                Libc.close(ep);
                return null;
            }

            return new EpollPoller(options, ep, waker);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            error = e.Message;
            return null;
        }
    }

    /// <summary>The domain this poller serves (set when the domain is created).</summary>
    internal Domain? Domain { get; private set; }

    public void Attach(Domain domain) => Domain = domain;

    /// <summary>True: a domain with recent cross-domain traffic may spin a few microseconds for the next post before it
    /// waits (readiness is gathered in the wait, so the spin delays it by at most the spin's budget).</summary>
    public bool SpinBeforeSleep => true;

    public bool HasRegistrations => _registrations > 0;

    public void Wait(int timeoutMs) => Poll(timeoutMs);

    public void PollNow() => Poll(0);

    private void Poll(int timeoutMs)
    {
        int n = Libc.epoll_wait(_epfd, _events, MaxEvents, timeoutMs);
        if (n <= 0)
        {
            return; // timeout, or EINTR: the loop calls again
        }

        for (int i = 0; i < n; i++)
        {
            ulong data = _events[i].Data;
            if (data == 0)
            {
                // The wake-up eventfd (edge-triggered): no read per wake-up. Its counter only grows by one per wake-up; it is
                // read back (reset) once every WakeDrainInterval wake-ups all the same, so it never nears its limit.
                if (++_wakesSinceDrain >= WakeDrainInterval)
                {
                    _wakesSinceDrain = 0;
                    _waker.Drain();
                    WakeDrains++;
                }

                continue;
            }

            object? target = GCHandle.FromIntPtr((nint)data).Target;
            if (target is FdRegistration reg)
            {
                reg.Ready(_events[i].Events);
            }
            else if (target is EpollWatchEntry entry)
            {
                Fire(entry);
            }
        }
    }

    /// <inheritdoc/>
    public bool TryWatch(ReadyWatch watch)
    {
        if (Volatile.Read(ref _disposed) != 0 || Domain is not { IsCurrent: true })
        {
            return false;
        }

        var entry = new EpollWatchEntry(watch);
        var ev = new EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLONESHOT, Data = (ulong)GCHandle.ToIntPtr(entry.Handle) };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, watch.Fd, &ev) < 0)
        {
            entry.Handle.Free();
            return false;
        }

        _watches.Add(entry);
        _registrations++;
        return true;
    }

    // A watched fd is readable: forget it (DEL while the fd is still open, since Ready may close it), then report.
    private void Fire(EpollWatchEntry entry)
    {
        if (!_watches.Remove(entry))
        {
            return;
        }

        var ev = default(EpollEvent);
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_DEL, entry.Watch.Fd, &ev);
        entry.Handle.Free();
        _registrations--;
        entry.Watch.Ready();
    }

    public void Wake() => _waker.Wake();

    /// <summary>Adds <paramref name="reg"/>'s fd to this epoll (on this poller's domain thread).</summary>
    /// <returns>0, or the errno.</returns>
    internal int Add(FdRegistration reg)
    {
        var ev = EventFor(reg);
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, reg.Fd, &ev) < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        _registrations++;
        return 0;
    }

    /// <summary>Re-arms a one-shot registration (on this poller's domain thread) before a new wait.</summary>
    /// <returns>0, or the errno.</returns>
    internal int Rearm(FdRegistration reg)
    {
        var ev = EventFor(reg);
        return Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_MOD, reg.Fd, &ev) < 0 ? Marshal.GetLastPInvokeError() : 0;
    }

    // Connections: edge-triggered, never re-armed. Listeners: level-triggered one-shot, re-armed by each accept that waits,
    // so several domains accepting on one listener share the connections instead of the busiest one draining the queue.
    private static EpollEvent EventFor(FdRegistration reg) => new()
    {
        Events = reg.OneShot ? Libc.EPOLLIN | Libc.EPOLLONESHOT : Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET,
        Data = (ulong)GCHandle.ToIntPtr(reg.Handle),
    };

    /// <summary>Deletes <paramref name="reg"/>'s fd (from any thread; the fd must still be open) and frees the registration on the domain.</summary>
    internal void Remove(FdRegistration reg)
    {
        bool added = false;
        try
        {
            _epoll.DangerousAddRef(ref added);
            var ev = default(EpollEvent);
            Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_DEL, reg.Fd, &ev);
        }
        catch (ObjectDisposedException)
        {
            // The domain has ended: its epoll is closed (which dropped the fd) and nothing dispatches events any more.
            reg.FreeOnDomain();
            return;
        }
        finally
        {
            if (added)
            {
                _epoll.DangerousRelease();
            }
        }

        // Events harvested before the DEL are dispatched by this poller's thread before it runs queued work, so the handle is
        // freed only after the last event that can name it.
        var domain = Domain;
        if (domain is not null && !domain.IsCurrent)
        {
            domain.Enqueue(static s => ((FdRegistration)s!).FreeOnDomain(), reg);
        }
        else
        {
            reg.FreeOnDomain();
        }
    }

    internal void Removed() => _registrations--;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _epoll.Dispose();
            _waker.Dispose();
            NativeMemory.Free(_events);

            // The domain ended with watches left (a child still running whose switch is not on this domain's fibers any
            // more): their owners watch them some other way.
            foreach (var entry in _watches)
            {
                entry.Handle.Free();
                entry.Watch.Abandoned();
            }

            _watches.Clear();
        }
    }
}

/// <summary>A <see cref="ReadyWatch"/> registered in one epoll (the target of its epoll_event's data).</summary>
internal sealed class EpollWatchEntry
{
    internal EpollWatchEntry(ReadyWatch watch)
    {
        Watch = watch;
        Handle = GCHandle.Alloc(this);
    }

    internal ReadyWatch Watch { get; }

    internal GCHandle Handle { get; }
}

/// <summary>One fd registered in one domain's epoll; holds the fibers waiting for it to become readable or writable there.</summary>
/// <remarks>For a stream, at most one reader and one writer wait on one registration at a time (a second is a usage
/// error, as on io_uring). A datagram socket may have several fibers receiving (or sending) at once, as on the other
/// backends (the StatsD proxy's receive fibers share one socket): those past the first wait in a list, touched only on
/// the domain's thread, and readiness wakes them all (each tries its call again; an edge-triggered registration must not
/// leave a waiter asleep while data is queued).</remarks>
internal sealed class FdRegistration
{
    private Waiter? _reader;
    private Waiter? _writer;
    private List<Waiter>? _moreReaders; // shared waits past the first (domain thread only)
    private List<Waiter>? _moreWriters;
    private int _freed;

    internal FdRegistration(int fd, EpollPoller poller, bool oneShot)
    {
        Fd = fd;
        Poller = poller;
        OneShot = oneShot;
        Handle = GCHandle.Alloc(this);
    }

    internal int Fd { get; }

    /// <summary>Level-triggered one-shot (listeners) rather than edge-triggered (connections).</summary>
    internal bool OneShot { get; }

    internal EpollPoller Poller { get; }

    internal GCHandle Handle { get; }

    /// <summary>Dispatches readiness (on the poller's thread): completes the waiters it concerns.</summary>
    internal void Ready(uint events)
    {
        if ((events & (Libc.EPOLLIN | Libc.EPOLLRDHUP | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            Interlocked.Exchange(ref _reader, null)?.TryComplete(true);
            WakeAll(_moreReaders);
        }

        if ((events & (Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR)) != 0)
        {
            Interlocked.Exchange(ref _writer, null)?.TryComplete(true);
            WakeAll(_moreWriters);
        }
    }

    // Completing a waiter only enqueues its fiber's continuation, so the list is not changed under the loop.
    private static void WakeAll(List<Waiter>? waiters)
    {
        if (waiters is { Count: > 0 })
        {
            foreach (var w in waiters)
            {
                w.TryComplete(true);
            }

            waiters.Clear();
        }
    }

    /// <summary>Suspends the calling fiber until the fd may be readable (<paramref name="write"/> false) or writable.</summary>
    /// <param name="write">Wait for writability (else readability).</param>
    /// <param name="cancel">The fiber's cancel context.</param>
    /// <param name="shared">True for a datagram socket: other fibers may wait the same way at the same time.</param>
    /// <remarks>Cancellation (S13/S14): the waiter is attached to the fiber's cancel context and the one atomic winner decides;
    /// either way the slot (or the list entry) is cleared before the fiber continues, so no stale waiter stays behind.</remarks>
    /// <exception cref="InvalidOperationException">Not <paramref name="shared"/>, and another fiber already waits this way.</exception>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))] // pooled: one wait per unpipelined request (session 26)
    internal async ValueTask WaitAsync(bool write, CancelContext cancel, bool shared = false)
    {
        var waiter = Waiter.Rent(Poller.Domain!, write ? Tracing.TraceReason.IoWrite : Tracing.TraceReason.IoRead);
        waiter.TraceArg = Fd;
        List<Waiter>? more = null;
        if (Interlocked.CompareExchange(ref write ? ref _writer : ref _reader, waiter, null) is not null)
        {
            if (!shared)
            {
                throw new InvalidOperationException(write ? "Another fiber is already writing to this socket." : "Another fiber is already reading from this socket.");
            }

            more = write ? (_moreWriters ??= []) : (_moreReaders ??= []);
            more.Add(waiter);
        }

        waiter.Attach(cancel);
        try
        {
            await waiter.VoidTask;
        }
        finally
        {
            if (more is null)
            {
                Interlocked.CompareExchange(ref write ? ref _writer : ref _reader, null, waiter);
            }
            else
            {
                more.Remove(waiter);
            }
        }
    }

    internal void FreeOnDomain()
    {
        if (Interlocked.Exchange(ref _freed, 1) == 0)
        {
            Handle.Free();
            Poller.Removed();
        }
    }
}

[StructLayout(LayoutKind.Sequential, Pack = 4)]
internal struct EpollEvent
{
    public uint Events;
    public ulong Data;
}

/// <summary>The libc calls of the epoll backend (Linux).</summary>
internal static unsafe partial class Libc
{
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CTL_MOD = 3;
    public const uint EPOLLONESHOT = 1u << 30;
    public const uint EPOLLIN = 0x1;
    public const uint EPOLLOUT = 0x4;
    public const uint EPOLLERR = 0x8;
    public const uint EPOLLHUP = 0x10;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, EpollEvent* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);
}
