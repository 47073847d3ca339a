using System.Runtime.InteropServices;

namespace EioSharp.Processes;

/// <summary>
/// The one thread per process that waits for children spawned by <see cref="ProcessManager"/> to exit and reaps them:
/// children spawned on the portable backend, children without a pidfd, and children handed over by a native poller
/// (<see cref="Backends.Native.ReadyWatch.Abandoned"/>: the spawning domain ended first). On the epoll and io_uring
/// backends a child with a pidfd is watched and reaped by the spawning domain's own poller instead (no thread hop).
/// </summary>
/// <remarks>
/// <para>
/// Each child is watched through its pidfd (<c>pidfd_open</c>, Linux 5.3+), added by the spawning thread to this thread's
/// epoll instance (<c>epoll_ctl</c> is safe while another thread waits, so adding a child wakes nobody). When a pidfd
/// becomes readable the thread reaps that child with <c>waitpid(pid, WNOHANG)</c> and resolves the child's exit promise,
/// which wakes the awaiting fibers on their own domains. So reaping never depends on a fiber waiting: a cancelled
/// <see cref="ChildProcess.AwaitAsync"/> leaves no zombie. One thread serves all children (not one per child); see
/// docs/rationale.md §21 and the section on domain-watched children (issue 16, branch h48).
/// </para>
/// <para>
/// Fallback when the kernel has no pidfd (ENOSYS, before 5.3): the child is polled with <c>waitpid(pid, WNOHANG)</c>
/// every 5 ms by the same thread. Signals are then sent with <c>kill</c>, which stays safe because the pid cannot be
/// reused before this thread reaps it.
/// </para>
/// </remarks>
internal static unsafe class ChildReaper
{
    private const int FallbackPollMs = 5;
    private const int MaxEvents = 64;
    private const ulong WakeData = ulong.MaxValue;
    private const int EPOLL_CTL_ADD = 1;
    private const uint EPOLLIN = 1;

    // struct epoll_event is packed (12 bytes) on x86_64, naturally aligned (16 bytes) elsewhere.
    private static readonly bool s_packed = RuntimeInformation.ProcessArchitecture == Architecture.X64;
    private static readonly int s_eventSize = s_packed ? 12 : 16;
    private static readonly int s_dataOffset = s_packed ? 4 : 8;

    private static readonly object s_lock = new();
    private static readonly Dictionary<int, ChildProcess> s_byPidfd = [];
    private static readonly List<ChildProcess> s_fallback = [];
    private static int s_epfd = -1;
    private static int s_wakeRead = -1;
    private static int s_wakeWrite = -1;
    private static Thread? s_thread;

    /// <summary>Forces the no-pidfd fallback for new children (tests).</summary>
    internal static bool ForceFallback { get; set; }

    /// <summary>The number of children not yet reaped (tests, diagnostics).</summary>
    internal static int Watching
    {
        get
        {
            lock (s_lock)
            {
                return s_byPidfd.Count + s_fallback.Count;
            }
        }
    }

    /// <summary>Starts watching <paramref name="child"/> (any thread).</summary>
    /// <exception cref="IOException">The reaper could not be started or the pidfd not registered (the child is then
    /// watched by polling instead, so this is only thrown when the thread itself cannot start).</exception>
    public static void Watch(ChildProcess child)
    {
        bool wake = false;
        lock (s_lock)
        {
            Start();
            int fd = child.PidFd;
            if (fd >= 0)
            {
                s_byPidfd[fd] = child;
                if (Ctl(fd, (ulong)fd) != 0)
                {
                    s_byPidfd.Remove(fd);
                    child.DropPidfd();
                    fd = -1;
                }
            }

            if (fd < 0)
            {
                s_fallback.Add(child);
                wake = s_fallback.Count == 1;
            }
        }

        if (wake)
        {
            byte one = 1;
            ProcessNative.write(s_wakeWrite, &one, 1);
        }
    }

    private static int Ctl(int fd, ulong data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = EPOLLIN;
        *(ulong*)(ev + s_dataOffset) = data;
        return ProcessNative.epoll_ctl(s_epfd, EPOLL_CTL_ADD, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    private static void Start()
    {
        if (s_thread is not null)
        {
            return;
        }

        int ep = ProcessNative.epoll_create1(ProcessNative.O_CLOEXEC);
        if (ep < 0)
        {
            throw new IOException($"epoll_create1 failed (errno {Marshal.GetLastPInvokeError()})");
        }

        int* fds = stackalloc int[2];
        if (ProcessNative.pipe2(fds, ProcessNative.O_CLOEXEC | ProcessNative.O_NONBLOCK) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            ProcessNative.close(ep);
            throw new IOException($"pipe2 failed (errno {errno})");
        }

        s_epfd = ep;
        s_wakeRead = fds[0];
        s_wakeWrite = fds[1];
        Ctl(s_wakeRead, WakeData);
        s_thread = new Thread(Loop) { IsBackground = true, Name = "eio-child-reaper" };
        s_thread.Start();
    }

    private static void Loop()
    {
        byte* events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * 16));
        byte* drain = stackalloc byte[64];
        var done = new List<ChildProcess>();
        var polled = new List<ChildProcess>();
        while (true)
        {
            int timeout;
            lock (s_lock)
            {
                timeout = s_fallback.Count > 0 ? FallbackPollMs : -1;
            }

            int n = ProcessNative.epoll_wait(s_epfd, events, MaxEvents, timeout);
            for (int i = 0; i < n; i++)
            {
                ulong data = *(ulong*)(events + (i * s_eventSize) + s_dataOffset);
                if (data == WakeData)
                {
                    while (ProcessNative.read(s_wakeRead, drain, 64) > 0)
                    {
                    }

                    continue;
                }

                int fd = (int)data;
                ChildProcess? c;
                lock (s_lock)
                {
                    s_byPidfd.TryGetValue(fd, out c);
                }

                // The pidfd is closed by TryReap; remove the entry first, while the number cannot have been reused.
                if (c is not null)
                {
                    lock (s_lock)
                    {
                        s_byPidfd.Remove(fd);
                    }

                    if (c.TryReap())
                    {
                        done.Add(c);
                    }
                    else
                    {
                        lock (s_lock)
                        {
                            s_byPidfd[fd] = c; // spurious readiness: the pidfd is still open and registered
                        }
                    }
                }
            }

            if (timeout > 0)
            {
                lock (s_lock)
                {
                    polled.AddRange(s_fallback);
                }

                foreach (var c in polled)
                {
                    if (c.TryReap())
                    {
                        lock (s_lock)
                        {
                            s_fallback.Remove(c);
                        }

                        done.Add(c);
                    }
                }

                polled.Clear();
            }

            foreach (var c in done)
            {
                c.Resolve();
            }

            done.Clear();
        }
    }
}
