using System.Runtime.InteropServices;
using System.Text;

namespace EioSharp.Processes;

/// <summary>The libc calls of the process layer (Linux, glibc/musl): posix_spawn with file actions, pidfd, waitpid, poll.</summary>
internal static unsafe partial class ProcessNative
{
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int ECHILD = 10;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int E2BIG = 7;
    public const int ENOSYS = 38;
    public const int WNOHANG = 1;
    public const int O_CLOEXEC = 0x80000;
    public const int O_NONBLOCK = 0x800;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    // Generic syscall numbers (the same on x86_64 and arm64).
    private const long SYS_pidfd_send_signal = 424;
    private const long SYS_pidfd_open = 434;

    // Opaque glibc/musl structures, over-allocated (glibc x86_64: file actions 80 bytes, attributes 336, sigset_t 128).
    public const int FileActionsSize = 512;
    public const int AttrSize = 1024;
    public const int SigSetSize = 256;


    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_addfchdir_np(void* actions, int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_init(void* attr);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sigemptyset(void* set);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sigaddset(void* set, int signal);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn(int* pid, byte* path, void* actions, void* attr, byte** argv, byte** envp);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnp(int* pid, byte* file, void* actions, void* attr, byte** argv, byte** envp);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a, long b, long c, long d);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int waitpid(int pid, int* status, int options);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, void* ev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, void* events, int maxEvents, int timeoutMs);

    /// <summary>pidfd_open(2); -1 with errno set on failure (ENOSYS before Linux 5.3).</summary>
    public static int PidfdOpen(int pid) => (int)syscall(SYS_pidfd_open, pid, 0, 0, 0);

    /// <summary>pidfd_send_signal(2); 0 or -1 with errno.</summary>
    public static int PidfdSendSignal(int pidfd, int signal) => (int)syscall(SYS_pidfd_send_signal, pidfd, signal, 0, 0);

    /// <summary>A NUL-terminated array of NUL-terminated UTF-8 strings in one native block; free with <see cref="NativeMemory.Free"/>.</summary>
    public static byte** StringArray(IReadOnlyList<string> items)
    {
        int total = 0;
        foreach (var s in items)
        {
            total += Encoding.UTF8.GetByteCount(s) + 1;
        }

        int pointers = (items.Count + 1) * sizeof(nint);
        byte* block = (byte*)NativeMemory.Alloc((nuint)(pointers + total));
        byte** array = (byte**)block;
        byte* p = block + pointers;
        for (int i = 0; i < items.Count; i++)
        {
            array[i] = p;
            string s = items[i];
            if (s.Contains('\0'))
            {
                NativeMemory.Free(block);
                throw new ArgumentException("An argument or environment entry contains a NUL character.", nameof(items));
            }

            int n = Encoding.UTF8.GetBytes(s, new Span<byte>(p, total));
            p[n] = 0;
            p += n + 1;
            total -= n + 1;
        }

        array[items.Count] = null;
        return array;
    }

    /// <summary>A NUL-terminated UTF-8 copy of <paramref name="s"/>; free with <see cref="NativeMemory.Free"/>.</summary>
    public static byte* CString(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }
}
