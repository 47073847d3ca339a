using System.Diagnostics;
using System.Runtime.InteropServices;

namespace EioSharp.TestKit;

/// <summary>Signals for one child process that can never reach another process: a Linux pidfd (<c>pidfd_open(2)</c>,
/// Linux 5.3+) opened while the child is known to be alive, signals sent with <c>pidfd_send_signal(2)</c>.</summary>
/// <remarks>
/// <para>Why: a child's process id is free for reuse once the child has exited and been reaped (.NET's
/// <see cref="Process"/> reaps its children itself), and <c>kernel.pid_max</c> is 32768 on the CI machine. A
/// <c>kill(pid)</c> after that moment could stop or kill an unrelated process, such as a test host (session 25, h155:
/// the rare "Test host process crashed" was checked against this). A pidfd names the process, not the number: once the
/// process is gone, <c>pidfd_send_signal</c> fails with ESRCH.</para>
/// <para>The pidfd is trusted only if the child had not been reaped when it was opened: <see cref="Open(int, Func{bool})"/>
/// opens it first and asks <c>hasExited</c> afterwards (a child that .NET has not reaped keeps its id).</para>
/// <para>Without pidfds (kernel before 5.3, seccomp: ENOSYS/EPERM) it falls back to <c>kill(2)</c> after a
/// <c>hasExited</c> check: the window between the reap and the kill remains, as before.</para>
/// <para><b>Thread safety</b>: <see cref="TrySend"/> and <see cref="Send"/> may be called from any thread; <see cref="Dispose"/> once, after them.</para>
/// </remarks>
public sealed partial class ChildSignals : IDisposable
{
    private const int SysPidfdSendSignal = 424; // the same number on every Linux architecture
    private const int SysPidfdOpen = 434;
    private const int Esrch = 3;
    private readonly int _pid;
    private readonly Func<bool> _hasExited;
    private readonly bool _viaPidfd;
    private int _pidfd; // -1: none (exited when opened, no pidfd support, or disposed)

    private ChildSignals(int pid, Func<bool> hasExited, int pidfd)
    {
        _pid = pid;
        _hasExited = hasExited;
        _pidfd = pidfd;
        _viaPidfd = pidfd >= 0;
    }

    /// <summary>Whether signals go through a pidfd (otherwise through <c>kill(2)</c> after an exit check).</summary>
    public bool UsesPidfd => _viaPidfd;

    /// <summary>Opens the signals of <paramref name="process"/>, a child this process started (call it right after the start).</summary>
    /// <param name="process">The started child.</param>
    /// <returns>The signaller; dispose it with the process.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="process"/> is null.</exception>
    public static ChildSignals Open(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        return Open(process.Id, () => process.HasExited);
    }

    /// <summary>Opens the signals of the child <paramref name="pid"/>, whose exit (reap) <paramref name="hasExited"/> reports.</summary>
    /// <param name="pid">The child's process id.</param>
    /// <param name="hasExited">Whether the child has exited and been reaped (e.g. <see cref="Process.HasExited"/> of the
    /// child's <see cref="Process"/>).</param>
    /// <returns>The signaller; dispose it with the process.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="hasExited"/> is null.</exception>
    public static ChildSignals Open(int pid, Func<bool> hasExited)
    {
        ArgumentNullException.ThrowIfNull(hasExited);
        int fd = (int)SysCall(SysPidfdOpen, pid, 0);
        if (fd >= 0 && hasExited())
        {
            // Reaped before (or while) the pidfd was opened: it may name another process. Nothing to signal.
            _ = Close(fd);
            return new ChildSignals(pid, static () => true, -1);
        }

        return new ChildSignals(pid, hasExited, fd >= 0 ? fd : -1);
    }

    /// <summary>Sends <paramref name="signal"/> to the child if it still exists.</summary>
    /// <param name="signal">A Linux signal number (9 SIGKILL, 15 SIGTERM, 10 SIGUSR1, 18 SIGCONT...).</param>
    /// <returns>True if the signal was sent; false if the child is gone (exited and reaped; a zombie not yet reaped
    /// still counts as there, and ignores the signal).</returns>
    /// <exception cref="InvalidOperationException">The system call failed for another reason; the message has the errno.</exception>
    /// <exception cref="ObjectDisposedException">The pidfd was closed (<see cref="Dispose"/>).</exception>
    public bool TrySend(int signal)
    {
        int fd = Volatile.Read(ref _pidfd);
        ObjectDisposedException.ThrowIf(_viaPidfd && fd < 0, this);
        int result;
        if (fd >= 0)
        {
            result = (int)SysCall(SysPidfdSendSignal, fd, signal, 0, 0);
        }
        else
        {
            if (_hasExited())
            {
                return false;
            }

            result = SysKill(_pid, signal);
        }

        if (result == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno == Esrch)
        {
            return false;
        }

        throw new InvalidOperationException($"{(fd >= 0 ? "pidfd_send_signal" : "kill")}({_pid}, {signal}) failed: errno {errno}");
    }

    /// <summary>Sends <paramref name="signal"/> to the child, which must still exist.</summary>
    /// <param name="signal">A Linux signal number.</param>
    /// <exception cref="InvalidOperationException">The child has exited (and been reaped), or the system call failed.</exception>
    /// <exception cref="ObjectDisposedException">The pidfd was closed (<see cref="Dispose"/>).</exception>
    public void Send(int signal)
    {
        if (!TrySend(signal))
        {
            throw new InvalidOperationException($"signal {signal} not sent: process {_pid} has exited");
        }
    }

    /// <summary>Closes the pidfd.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _pidfd, -1);
        if (fd >= 0)
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, long a1, long a2);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, long a1, long a2, long a3, long a4);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
