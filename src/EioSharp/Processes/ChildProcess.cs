using System.Runtime.InteropServices;
using EioSharp.Backends.Native;
using EioSharp.Time;

namespace EioSharp.Processes;

/// <summary>A child process started by <see cref="ProcessManager.Spawn"/>, owned by a switch.</summary>
/// <remarks>
/// <para>Eio: <c>Process.t</c> (<c>pid</c>, <c>await</c>, <c>await_exn</c>, <c>signal</c>).</para>
/// <para><b>Lifetime</b>: the child is reaped as soon as it exits, whether or not a fiber waits (no zombies): on the epoll
/// and io_uring backends by the spawning domain's own poller (its pidfd is in the domain's epoll set, or watched by an
/// IORING_OP_POLL_ADD on its ring), on the portable backend (or without pidfd) by the library's reaper thread. When the owning switch finishes while the child still runs, the switch's release hook sends
/// SIGTERM, waits up to the grace period given to <see cref="ProcessManager.Spawn"/> (default
/// <see cref="ProcessManager.DefaultKillGracePeriod"/>), then sends SIGKILL, and the switch finishes only once the child
/// has been reaped. (Eio sends SIGKILL at once; pass a zero grace period for that.)</para>
/// <para><b>Thread safety</b>: all members may be used from any domain.</para>
/// </remarks>
public sealed class ChildProcess
{
    private readonly object _sync = new();
    private readonly Promise<ProcessStatus> _exit;
    private readonly Resolver<ProcessStatus> _resolver;
    private int _pidfd;
    private bool _reaped;
    private ProcessStatus _status;
    private Exception? _reapError;

    internal ChildProcess(int pid, int pidfd, IReadOnlyList<string> arguments)
    {
        Pid = pid;
        _pidfd = pidfd;
        Arguments = arguments;
        (_exit, _resolver) = Promise.Create<ProcessStatus>();
    }

    /// <summary>The process id.</summary>
    /// <remarks>Eio: <c>Process.pid</c>. After the child has been reaped the number may belong to another process.</remarks>
    public int Pid { get; }

    /// <summary>The argument vector the child was started with.</summary>
    public IReadOnlyList<string> Arguments { get; }

    /// <summary>True once the child has exited and been reaped.</summary>
    public bool HasExited => _exit.IsResolved;

    /// <summary>The pidfd being watched, or -1 (fallback without pidfd, or already reaped).</summary>
    internal int PidFd => Volatile.Read(ref _pidfd);

    /// <summary>Waits for the child to exit and returns how it ended.</summary>
    /// <returns>The exit status.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting; the child keeps running and is still reaped
    /// when it exits (by the reaper, or by the switch's release hook).</exception>
    /// <exception cref="IOException">The child was reaped by someone else (e.g. SIGCHLD set to SIG_IGN), so its status is lost.</exception>
    /// <remarks>Eio: <c>Process.await</c>. Safe to call several times and from several fibers.</remarks>
    public ValueTask<ProcessStatus> AwaitAsync() => _exit.AwaitAsync();

    /// <summary>Waits for the child to exit and requires <c>Exited 0</c>.</summary>
    /// <returns>An awaitable.</returns>
    /// <exception cref="ProcessExitException">Any other status; it carries the status and <see cref="Arguments"/>.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <remarks>Eio: <c>Process.await_exn</c>.</remarks>
    public async Task AwaitSuccessAsync()
    {
        var status = await AwaitAsync();
        if (!status.IsSuccess)
        {
            throw new ProcessExitException(status, Arguments);
        }
    }

    /// <summary>Sends signal <paramref name="signal"/> to the child; does nothing if it has already exited.</summary>
    /// <param name="signal">A Linux signal number (see <see cref="UnixSignal"/>).</param>
    /// <exception cref="IOException">The kernel refused (e.g. EPERM, or an invalid signal number: EINVAL).</exception>
    /// <remarks>Eio: <c>Process.signal</c>. Never signals another process, even if the pid has been reused: the signal goes
    /// through the pidfd, or (without pidfd) through the pid before the reaper has reaped it, while it cannot be reused.</remarks>
    public void Signal(int signal)
    {
        lock (_sync)
        {
            if (_reaped)
            {
                return;
            }

            int r = _pidfd >= 0 ? ProcessNative.PidfdSendSignal(_pidfd, signal) : ProcessNative.kill(Pid, signal);
            if (r != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != ProcessNative.ESRCH)
                {
                    throw new IOException($"Signalling process {Pid} with {UnixSignal.Name(signal)} failed (errno {errno}).", errno);
                }
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"ChildProcess {Pid} ({ArgumentFormat.Format(Arguments)}){(HasExited ? " " + _status : "")}";

    /// <summary>
    /// Has the child's pidfd watched by <paramref name="watcher"/> (the spawning domain's poller, on its thread): the domain
    /// reaps the child itself when the pidfd becomes readable, with no hand-off from the reaper thread. False when there is
    /// no pidfd or the poller refused; the caller then uses <see cref="ChildReaper.Watch"/>.
    /// </summary>
    internal bool TryWatchOn(IReadyWatcher watcher) => WatchedByDomain = PidFd >= 0 && watcher.TryWatch(new PidfdWatch(this, watcher));

    /// <summary>True when the spawning domain's poller watches the child (tests).</summary>
    internal bool WatchedByDomain { get; private set; }

    /// <summary>Closes the pidfd when it cannot be watched (the reaper then polls the pid).</summary>
    internal void DropPidfd()
    {
        lock (_sync)
        {
            if (_pidfd >= 0)
            {
                ProcessNative.close(_pidfd);
                Volatile.Write(ref _pidfd, -1);
            }
        }
    }

    /// <summary>Reaps the child if it has exited (reaper thread). True when it was reaped (or is gone).</summary>
    internal unsafe bool TryReap()
    {
        lock (_sync)
        {
            if (_reaped)
            {
                return true;
            }

            int status;
            int r;
            do
            {
                r = ProcessNative.waitpid(Pid, &status, ProcessNative.WNOHANG);
            }
            while (r < 0 && Marshal.GetLastPInvokeError() == ProcessNative.EINTR);

            if (r == 0)
            {
                return false;
            }

            if (r == Pid)
            {
                _status = ProcessStatus.FromWaitStatus(status);
            }
            else
            {
                _reapError = new IOException($"Process {Pid} was reaped by someone else (errno {Marshal.GetLastPInvokeError()}); its exit status is unknown.");
            }

            _reaped = true;
            if (_pidfd >= 0)
            {
                ProcessNative.close(_pidfd);
                Volatile.Write(ref _pidfd, -1);
            }

            return true;
        }
    }

    /// <summary>Publishes the status after <see cref="TryReap"/> (reaper thread, outside its lock).</summary>
    internal void Resolve()
    {
        if (_reapError is null)
        {
            _resolver.TryResolve(_status);
        }
        else
        {
            _resolver.TryResolveError(_reapError);
        }
    }

    /// <summary>The switch's release hook: SIGTERM, up to <paramref name="grace"/>, SIGKILL; returns once reaped.</summary>
    internal async ValueTask TerminateAsync(MonoClock clock, TimeSpan grace)
    {
        if (HasExited)
        {
            return;
        }

        if (grace > TimeSpan.Zero)
        {
            Signal(UnixSignal.Terminate);
            var r = await clock.TryWithTimeoutAsync(grace, async () => await AwaitAsync());
            if (!r.IsTimedOut)
            {
                return;
            }
        }

        Signal(UnixSignal.Kill);
        try
        {
            await AwaitAsync();
        }
        catch (IOException)
        {
            // Reaped elsewhere: nothing left to wait for.
        }
    }

    /// <summary>The child's pidfd watched by a domain's poller: readable means the child has exited.</summary>
    private sealed class PidfdWatch(ChildProcess child, IReadyWatcher watcher) : ReadyWatch
    {
        internal override int Fd => child.PidFd;

        internal override void Ready()
        {
            if (child.TryReap())
            {
                child.Resolve();
            }
            else if (child.PidFd < 0 || !watcher.TryWatch(this))
            {
                // Spurious readiness (the pidfd is still open): watch again, or let the reaper thread take over.
                ChildReaper.Watch(child);
            }
        }

        internal override void Abandoned()
        {
            if (child.TryReap())
            {
                child.Resolve();
            }
            else
            {
                ChildReaper.Watch(child);
            }
        }
    }
}
