using System.Runtime.InteropServices;

namespace EioSharp.Processes;

/// <summary>
/// The one thread per process that waits for every child spawned by <see cref="ProcessManager"/> to exit and reaps it.
/// </summary>
/// <remarks>
/// <para>
/// Each child is watched through its pidfd (<c>pidfd_open</c>, Linux 5.3+): the thread <c>poll</c>s all pidfds plus a
/// wake-up pipe, and when a pidfd becomes readable it reaps that child with <c>waitpid(pid, WNOHANG)</c> and resolves the
/// child's exit promise, which wakes the awaiting fiber on its own domain. So reaping never depends on a fiber waiting: a
/// cancelled <see cref="ChildProcess.AwaitAsync"/> leaves no zombie. One thread serves all children (not one per child);
/// see docs/rationale.md "Processes" for why it is not the domain's poller.
/// </para>
/// <para>
/// Fallback when the kernel has no pidfd (ENOSYS, before 5.3) or the fd limit is hit: the child is polled with
/// <c>waitpid(pid, WNOHANG)</c> every 5 ms by the same thread. Signals are then sent with <c>kill</c>, which stays safe
/// because the pid cannot be reused before this thread reaps it.
/// </para>
/// </remarks>
internal static unsafe class ChildReaper
{
    private const int FallbackPollMs = 5;
    private static readonly object s_lock = new();
    private static readonly List<ChildProcess> s_children = [];
    private static int s_wakeRead = -1;
    private static int s_wakeWrite = -1;
    private static Thread? s_thread;

    /// <summary>Forces the no-pidfd fallback (tests).</summary>
    internal static bool ForceFallback { get; set; }

    /// <summary>Starts watching <paramref name="child"/> (any thread).</summary>
    public static void Watch(ChildProcess child)
    {
        lock (s_lock)
        {
            if (s_thread is null)
            {
                int* fds = stackalloc int[2];
                if (ProcessNative.pipe2(fds, ProcessNative.O_CLOEXEC | 0x800 /* O_NONBLOCK */) != 0)
                {
                    throw new IOException($"pipe2 failed (errno {Marshal.GetLastPInvokeError()})");
                }

                s_wakeRead = fds[0];
                s_wakeWrite = fds[1];
                s_thread = new Thread(Loop) { IsBackground = true, Name = "eio-child-reaper" };
                s_thread.Start();
            }

            s_children.Add(child);
        }

        Wake();
    }

    /// <summary>The number of children not yet reaped (tests, diagnostics).</summary>
    internal static int Watching
    {
        get
        {
            lock (s_lock)
            {
                return s_children.Count;
            }
        }
    }

    private static void Wake()
    {
        byte one = 1;
        ProcessNative.write(s_wakeWrite, &one, 1);
    }

    private static void Loop()
    {
        var fds = new ProcessNative.PollFd[16];
        var watched = new ChildProcess?[16];
        var done = new List<ChildProcess>();
        byte* drain = stackalloc byte[64];
        while (true)
        {
            int n;
            bool anyFallback = false;
            lock (s_lock)
            {
                n = s_children.Count + 1;
                if (fds.Length < n)
                {
                    Array.Resize(ref fds, n * 2);
                    Array.Resize(ref watched, n * 2);
                }

                fds[0] = new ProcessNative.PollFd { Fd = s_wakeRead, Events = ProcessNative.POLLIN };
                for (int i = 1; i < n; i++)
                {
                    var c = s_children[i - 1];
                    watched[i] = c;
                    fds[i] = new ProcessNative.PollFd { Fd = c.PidFd, Events = ProcessNative.POLLIN };
                    anyFallback |= c.PidFd < 0;
                }
            }

            fixed (ProcessNative.PollFd* p = fds)
            {
                ProcessNative.poll(p, (nuint)n, anyFallback ? FallbackPollMs : -1);
            }

            if (fds[0].REvents != 0)
            {
                while (ProcessNative.read(s_wakeRead, drain, 64) > 0)
                {
                }
            }

            for (int i = 1; i < n; i++)
            {
                var c = watched[i]!;
                watched[i] = null;
                if ((fds[i].REvents != 0 || c.PidFd < 0) && c.TryReap())
                {
                    done.Add(c);
                }
            }

            if (done.Count > 0)
            {
                lock (s_lock)
                {
                    foreach (var c in done)
                    {
                        s_children.Remove(c);
                    }
                }

                foreach (var c in done)
                {
                    c.Resolve();
                }

                done.Clear();
            }
        }
    }
}
