using System.Runtime.InteropServices;
using EioSharp.Backends.Epoll;
using EioSharp.Backends.Uring;
using EioSharp.Fs;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Backends.Native;

/// <summary>
/// Small writes of regular files on the native backends (io_uring and epoll): a blocking <c>pwrite</c> on the domain's
/// own thread, into the page cache, instead of a hand-off to another thread (issue 15, branch h115).
/// </summary>
/// <remarks>
/// <para>
/// Why: ext4 refuses non-blocking buffered writes, so io_uring hands every IORING_OP_WRITE of such a file to an io-wq
/// worker thread and back (two thread switches for a copy that takes microseconds); the epoll backend had no file path of
/// its own and used <see cref="RandomAccess.WriteAsync(SafeFileHandle, ReadOnlyMemory{byte}, long, CancellationToken)"/>,
/// a job on .NET's thread pool whose workers spin (sched_yield) after every job. Eio_posix writes regular files the same
/// way as here (<c>do_nonblocking</c>: a <c>pwritev</c> on the domain, as a regular file is never "not ready"), and Redis
/// writes its AOF from its event loop. Pipes and devices keep their old path: a write to them may block for long.
/// </para>
/// <para>
/// Cost: the domain's other fibers wait for the write (a page-cache copy; longer if the kernel throttles a writer with
/// too many dirty pages). Writes over <see cref="EioBackendOptions.InlineWriteMaxBytes"/> keep the old path. Cancellation: checked when the write
/// starts, as before; the write itself does not suspend, so it cannot be cancelled half-way.
/// </para>
/// </remarks>
internal static partial class InlineFileWrites
{
    private static long s_count;

    /// <summary>Writes done by <see cref="Write"/> so far in the process (tests: the path is taken).</summary>
    internal static long Count => Interlocked.Read(ref s_count);

    /// <summary>Whether a write of <paramref name="length"/> bytes from the calling fiber should be done by
    /// <see cref="Write"/>: its domain runs the io_uring or epoll backend and 0 &lt; length &lt;= the run's
    /// <see cref="EioBackendOptions.InlineWriteMaxBytes"/>. The caller also checks that the file is a regular file.</summary>
    public static bool Applies(int length) =>
        length > 0 && FiberFrame.Current is not null && Domain.Current?.Poller switch
        {
            UringPoller ring => length <= ring.Options.InlineWriteMaxBytes,
            EpollPoller epoll => length <= epoll.Options.InlineWriteMaxBytes,
            _ => false,
        };

    /// <summary>All of <paramref name="data"/> written at <paramref name="offset"/> by <c>pwrite</c> on the calling thread
    /// (again after a short write or EINTR).</summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The kernel reported an error (HResult is the errno, as for the ring's writes); a part
    /// may be written.</exception>
    public static void Write(SafeFileHandle file, ReadOnlySpan<byte> data, long offset, string display)
    {
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            Interlocked.Increment(ref s_count);
            int fd = (int)file.DangerousGetHandle();
            while (!data.IsEmpty)
            {
                long res = PWrite(fd, data, offset);
                if (res > 0)
                {
                    data = data[(int)res..];
                    offset += res;
                }
                else if (res == 0)
                {
                    throw new IOException($"write {display}: the kernel wrote nothing", NativeErrors.EIO);
                }
                else if (-res is not (NativeErrors.EINTR or NativeErrors.EAGAIN))
                {
                    throw NativeErrors.FromErrno((int)-res, display);
                }
            }
        }
        finally
        {
            file.DangerousRelease();
        }
    }

    /// <summary><c>pwrite</c>: the bytes written, or minus the errno.</summary>
    private static unsafe long PWrite(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            long n = PWrite64(fd, p, (nuint)data.Length, offset);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
    }

    [LibraryImport("libc", EntryPoint = "pwrite64", SetLastError = true)]
    private static unsafe partial nint PWrite64(int fd, byte* buf, nuint count, long offset);
}
