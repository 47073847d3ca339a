using System.Runtime.InteropServices;

namespace EioSharp;

/// <summary>The calling thread's CPU and a one-off step off a CPU (Linux: <c>sched_getcpu</c>,
/// <c>sched_getaffinity</c>/<c>sched_setaffinity</c> on the calling thread; elsewhere nothing). For the experiment of
/// issue 20 (h199): a domain woken onto the CPU of the domain that woke it moves off that CPU once, the affinity mask
/// restored at once (no pinning).</summary>
internal static partial class CpuPlacement
{
    private const int MaskWords = 16; // 1024 CPUs

    /// <summary>The CPU the calling thread runs on, or -1 where it cannot be read.</summary>
    internal static int CurrentCpu()
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        return sched_getcpu();
    }

    /// <summary>Moves the calling thread off <paramref name="cpu"/>: its affinity mask without that CPU, then the mask it
    /// had (the kernel migrates a running thread during the first call). False when the mask allows no other CPU or a call
    /// failed.</summary>
    internal static unsafe bool StepOff(int cpu)
    {
        if (!OperatingSystem.IsLinux() || cpu < 0 || cpu >= MaskWords * 64)
        {
            return false;
        }

        ulong* mask = stackalloc ulong[MaskWords];
        ulong* without = stackalloc ulong[MaskWords];
        if (sched_getaffinity(0, MaskWords * 8, mask) != 0)
        {
            return false;
        }

        bool other = false;
        for (int i = 0; i < MaskWords; i++)
        {
            without[i] = mask[i];
        }

        without[cpu / 64] &= ~(1UL << (cpu % 64));
        for (int i = 0; i < MaskWords; i++)
        {
            other |= without[i] != 0;
        }

        if (!other || sched_setaffinity(0, MaskWords * 8, without) != 0)
        {
            return false;
        }

        return sched_setaffinity(0, MaskWords * 8, mask) == 0;
    }

    /// <summary>The number of runnable tasks on the machine now (the fourth field of <c>/proc/loadavg</c>, before its
    /// slash), or -1 where it cannot be read.</summary>
    internal static unsafe int RunnableTasks()
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        byte* path = stackalloc byte[] { (byte)'/', (byte)'p', (byte)'r', (byte)'o', (byte)'c', (byte)'/', (byte)'l', (byte)'o', (byte)'a', (byte)'d', (byte)'a', (byte)'v', (byte)'g', 0 };
        int fd = open(path, 0);
        if (fd < 0)
        {
            return -1;
        }

        byte* buffer = stackalloc byte[128];
        nint n = read(fd, buffer, 127);
        close(fd);
        int spaces = 0, value = -1;
        for (int i = 0; i < n; i++)
        {
            byte c = buffer[i];
            if (spaces == 3)
            {
                if (c == (byte)'/')
                {
                    return value;
                }

                value = (value < 0 ? 0 : value * 10) + (c - (byte)'0');
            }
            else if (c == (byte)' ')
            {
                spaces++;
            }
        }

        return -1;
    }

    [LibraryImport("libc")]
    private static unsafe partial int open(byte* path, int flags);

    [LibraryImport("libc")]
    private static unsafe partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc")]
    private static partial int sched_getcpu();

    [LibraryImport("libc")]
    private static unsafe partial int sched_getaffinity(int pid, nuint size, ulong* mask);

    [LibraryImport("libc")]
    private static unsafe partial int sched_setaffinity(int pid, nuint size, ulong* mask);
}
