using System.Runtime.InteropServices;
using EioSharp.Fs;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Backends.Uring;

/// <summary>
/// Files on the ring (issue 15): positional read and write (IORING_OP_READ/WRITE), fsync/fdatasync (IORING_OP_FSYNC), a
/// write and its fsync as one linked pair (IOSQE_IO_LINK),
/// fstat (IORING_OP_STATX) and open (IORING_OP_OPENAT2, with the sandbox's <c>RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS</c>)
/// as submissions on the calling domain's ring instead of blocking calls on the offload or .NET's thread pool.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Ring"/> decides per operation: the calling fiber's domain must run the io_uring backend and its kernel must
/// support the opcode (IORING_REGISTER_PROBE at ring set-up); otherwise the caller runs the portable code (the same
/// <see cref="EioFile"/> works from any domain: it asks on each call). Open files hold a reference on the
/// <see cref="SafeFileHandle"/> for the operation's duration, as <see cref="RandomAccess"/> does, so closing under an
/// operation in flight leaves the descriptor open until the completion.
/// </para>
/// <para>
/// Cancellation (as the network operations, <see cref="UringOp"/>): cancelling the fiber submits IORING_OP_ASYNC_CANCEL and
/// the fiber resumes only with the operation's own completion, so the kernel never writes a buffer after the cancelled read
/// returned; an operation that completed anyway returns its result (an opened descriptor is never lost) and the
/// cancellation is seen at the next suspension point.
/// </para>
/// </remarks>
internal static class UringFiles
{
    private const int AtEmptyPath = 0x1000;
    private const int AtSymlinkNoFollow = 0x100;
    private const int StatxSize = 256;

    private static long s_operations;

    /// <summary>File operations submitted to a ring so far in the process (tests: the backend does the file I/O itself).</summary>
    internal static long Operations => Interlocked.Read(ref s_operations);

    private static long s_linkedWriteSyncs;

    /// <summary>Linked WRITE+FSYNC pairs submitted so far in the process (tests: <see cref="WriteThenSyncAsync"/> links them).</summary>
    internal static long LinkedWriteSyncs => Interlocked.Read(ref s_linkedWriteSyncs);

    /// <summary>The IOSQE_* flags of the calling domain's ring's file WRITE and FSYNC SQEs: IOSQE_ASYNC when its run asked
    /// for <see cref="EioBackendOptions.UringFileForceAsync"/>.</summary>
    private static byte FileSqeFlags => UringOp.CurrentRing().Options.UringFileForceAsync ? Sys.IOSQE_ASYNC : (byte)0;

    /// <summary>The calling fiber's ring when its domain runs the io_uring backend and the kernel supports <paramref name="opcode"/>; else null.</summary>
    public static UringPoller? Ring(byte opcode) =>
        FiberFrame.Current is not null && Domain.Current?.Poller is UringPoller ring && ring.Supports(opcode) ? ring : null;

    /// <summary>The ring for a file's fsync/fdatasync: <see cref="Ring"/> of IORING_OP_FSYNC, or null when the run's
    /// <see cref="EioBackendOptions.UringFileSyncOnOffload"/> asks for the blocking offload.</summary>
    public static UringPoller? SyncRing() =>
        Ring(Sys.IORING_OP_FSYNC) is { } ring && !ring.Options.UringFileSyncOnOffload ? ring : null;

    /// <summary>One IORING_OP_READ of up to <c>buffer.Length</c> bytes at <paramref name="offset"/> (pread).</summary>
    /// <returns>The bytes read; 0 at or past the end of the file.</returns>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled and nothing was read.</exception>
    /// <exception cref="IOException">The kernel reported an error (HResult is the errno).</exception>
    public static async ValueTask<int> ReadAsync(SafeFileHandle file, Memory<byte> buffer, long offset, string display)
    {
        var frame = FiberFrame.Require();
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            if (buffer.IsEmpty)
            {
                return 0;
            }

            while (true)
            {
                var pin = buffer.Pin();
                Interlocked.Increment(ref s_operations);
                var op = UringOp.Start(frame, Sys.IORING_OP_READ, Fd(file), pin, UringIo.Addr(pin), (uint)buffer.Length, 0, (ulong)offset);
                int res = await op.Task;
                if (res >= 0)
                {
                    return res;
                }

                if (-res is not (NativeErrors.EINTR or NativeErrors.EAGAIN))
                {
                    throw NativeErrors.FromErrno(-res, display);
                }
            }
        }
        finally
        {
            file.DangerousRelease();
        }
    }

    /// <summary>IORING_OP_WRITEs of all of <paramref name="data"/> at <paramref name="offset"/> (pwrite; appends in append mode).</summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled; a part already written stays written.</exception>
    /// <exception cref="IOException">The kernel reported an error (HResult is the errno).</exception>
    public static async ValueTask WriteAsync(SafeFileHandle file, ReadOnlyMemory<byte> data, long offset, string display)
    {
        var frame = FiberFrame.Require();
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            while (!data.IsEmpty)
            {
                var pin = data.Pin();
                Interlocked.Increment(ref s_operations);
                var op = UringOp.Start(frame, Sys.IORING_OP_WRITE, Fd(file), pin, UringIo.Addr(pin), (uint)data.Length, 0, (ulong)offset, FileSqeFlags);
                int res = await op.Task;
                if (res > 0)
                {
                    data = data[res..];
                    offset += res;
                }
                else if (res == 0)
                {
                    throw new IOException($"write {display}: the kernel wrote nothing", NativeErrors.EIO);
                }
                else if (-res is not (NativeErrors.EINTR or NativeErrors.EAGAIN))
                {
                    throw NativeErrors.FromErrno(-res, display);
                }
            }
        }
        finally
        {
            file.DangerousRelease();
        }
    }

    /// <summary>
    /// All of <paramref name="data"/> written at <paramref name="offset"/>, then <c>fsync</c> (<c>fdatasync</c> when
    /// <paramref name="dataOnly"/>): an IORING_OP_WRITE linked (IOSQE_IO_LINK) to an IORING_OP_FSYNC, one submission and
    /// one wake-up of the fiber for both. A short write breaks the link (the kernel cancels the fsync): the rest is written
    /// and synced the same way.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled and the kernel cancelled the write or the fsync (a part,
    /// or all, of the data may be written and not synced).</exception>
    /// <exception cref="IOException">The kernel reported an error for the write or the fsync (HResult is the errno).</exception>
    public static async ValueTask WriteThenSyncAsync(SafeFileHandle file, ReadOnlyMemory<byte> data, long offset, bool dataOnly, string display)
    {
        var frame = FiberFrame.Require();
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            uint fsyncFlags = dataOnly ? Sys.IORING_FSYNC_DATASYNC : 0;
            while (!data.IsEmpty)
            {
                var pin = data.Pin();
                Interlocked.Increment(ref s_operations);
                Interlocked.Increment(ref s_linkedWriteSyncs);
                var op = UringOp.StartWriteThenSync(frame, Fd(file), pin, UringIo.Addr(pin), (uint)data.Length, (ulong)offset, fsyncFlags, FileSqeFlags);
                long pair = await op.PairTask;
                int written = (int)pair, synced = (int)(pair >> 32);
                if (written == data.Length)
                {
                    if (synced >= 0)
                    {
                        return;
                    }

                    if (-synced is not (NativeErrors.EINTR or Sys.ECANCELED))
                    {
                        throw NativeErrors.FromErrno(-synced, display);
                    }

                    break; // the fsync alone, below
                }

                if (written > 0)
                {
                    data = data[written..];
                    offset += written;
                }
                else if (written == 0)
                {
                    throw new IOException($"write {display}: the kernel wrote nothing", NativeErrors.EIO);
                }
                else if (-written is not (NativeErrors.EINTR or NativeErrors.EAGAIN))
                {
                    throw NativeErrors.FromErrno(-written, display);
                }
            }

            await SyncAsync(file, dataOnly, display);
        }
        finally
        {
            file.DangerousRelease();
        }
    }

    /// <summary>IORING_OP_FSYNC: <c>fsync</c>, or <c>fdatasync</c> when <paramref name="dataOnly"/>.</summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the kernel started the sync.</exception>
    /// <exception cref="IOException">The kernel reported an error (e.g. <c>EIO</c>).</exception>
    public static async ValueTask SyncAsync(SafeFileHandle file, bool dataOnly, string display)
    {
        var frame = FiberFrame.Require();
        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            while (true)
            {
                Interlocked.Increment(ref s_operations);
                var op = UringOp.Start(frame, Sys.IORING_OP_FSYNC, Fd(file), default, 0, 0, dataOnly ? Sys.IORING_FSYNC_DATASYNC : 0, 0, FileSqeFlags);
                int res = await op.Task;
                if (res >= 0)
                {
                    return;
                }

                if (-res != NativeErrors.EINTR)
                {
                    throw NativeErrors.FromErrno(-res, display);
                }
            }
        }
        finally
        {
            file.DangerousRelease();
        }
    }

    /// <summary>IORING_OP_STATX on the open file (<c>AT_EMPTY_PATH</c>), the statx buffer in native memory until the completion.</summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the kernel ran the statx.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    public static async ValueTask<FileStat> StatAsync(SafeFileHandle file, string display)
    {
        var frame = FiberFrame.Require();
        bool added = false;
        file.DangerousAddRef(ref added);
        nint block = Blocks.AllocZeroed(StatxSize + 8); // struct statx, then the empty path ""
        try
        {
            while (true)
            {
                Interlocked.Increment(ref s_operations);
                var op = UringOp.Start(frame, Sys.IORING_OP_STATX, Fd(file), default, (ulong)(block + StatxSize), LinuxInterop.StatxBasicStats,
                    AtEmptyPath | AtSymlinkNoFollow, (ulong)block);
                int res = await op.Task;
                if (res >= 0)
                {
                    return Blocks.ReadStatx(block);
                }

                if (-res != NativeErrors.EINTR)
                {
                    throw NativeErrors.FromErrno(-res, display);
                }
            }
        }
        finally
        {
            // The fiber resumes only with the completion: the kernel is done with the block.
            Blocks.Free(block);
            file.DangerousRelease();
        }
    }

    /// <summary>Whether <see cref="OpenAsync"/> can open beneath <paramref name="dir"/> on the ring (else the caller offloads the blocking open).</summary>
    /// <remarks>The component-wise resolver (kernels without openat2, or asked for) stays a blocking walk on the offload.</remarks>
    public static bool CanOpen(DirectoryHandle dir) =>
        Ring(Sys.IORING_OP_OPENAT2) is not null
        && !dir.IsPortable
        && dir.Resolution switch
        {
            PathResolution.Unconfined or PathResolution.OpenAt2 => true,
            PathResolution.ComponentWise or PathResolution.Portable => false,
            _ => NativeFs.IsOpenAt2Supported,
        };

    /// <summary>
    /// IORING_OP_OPENAT2 of <paramref name="path"/> relative to <paramref name="dir"/>, with the directory's confinement
    /// (<c>RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS</c>, errors and refusals as the blocking open) or none when unconfined.
    /// Call only when <see cref="CanOpen"/> said so.
    /// </summary>
    /// <returns>An owned handle.</returns>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>; nothing was opened or created.</exception>
    /// <exception cref="IOException">The errors of <see cref="NativeFs.Open"/>.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="dir"/> was closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the kernel ran the open.</exception>
    public static async Task<SafeFileHandle> OpenAsync(DirectoryHandle dir, string path, OpenFlags flags, UnixFileMode mode)
    {
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        var (native, follow) = NativeFs.ToNative(flags);
        bool directoryExpected = NativeFs.IsDirectoryOpen(flags);
        bool confined = dir.Resolution != PathResolution.Unconfined;
        var how = confined
            ? NativeFs.OpenHowBeneath(native, (uint)mode, follow)
            : new LinuxInterop.OpenHow
            {
                Flags = (ulong)(uint)(native | (follow ? 0 : LinuxInterop.ONoFollow)),
                Mode = (native & LinuxInterop.OCreat) != 0 ? (uint)mode : 0,
            };
        var pathBytes = LinuxInterop.ToNative(path.Length == 0 ? "." : path);
        using var lease = dir.Lease();
        nint block = Blocks.OpenBlock(how, pathBytes, out int howSize); // open_how, then the NUL-terminated path
        try
        {
            int eagain = 0;
            while (true)
            {
                Interlocked.Increment(ref s_operations);
                var op = UringOp.Start(frame, Sys.IORING_OP_OPENAT2, lease.Fd, default, (ulong)(block + howSize), (uint)howSize, 0, (ulong)block);
                int res = await op.Task;
                if (res >= 0)
                {
                    return NativeFs.ToFileHandle(res);
                }

                var error = confined
                    ? NativeFs.OpenAt2BeneathFailure(-res, lease.Fd, path, directoryExpected, ref eagain)
                    : -res == NativeErrors.EINTR ? null : NativeErrors.FromErrno(-res, path, directoryExpected);
                if (error is not null)
                {
                    throw error;
                }
            }
        }
        finally
        {
            Blocks.Free(block);
        }
    }

    /// <summary>
    /// Queues an IORING_OP_CLOSE of <paramref name="fd"/> on the calling thread's ring when it is a domain of the io_uring
    /// backend whose kernel has the opcode; false otherwise (the caller closes it with <c>close</c>). The close is submitted
    /// with the domain's next round; the ring waits for it before it is torn down, so the descriptor is never leaked.
    /// </summary>
    public static bool TryCloseOnRing(int fd)
    {
        if (Domain.Current?.Poller is not UringPoller ring || !ring.Supports(Sys.IORING_OP_CLOSE))
        {
            return false;
        }

        if (!ring.QueueClose(fd))
        {
            return false;
        }

        Interlocked.Increment(ref s_operations);
        return true;
    }

    private static int Fd(SafeFileHandle file) => (int)file.DangerousGetHandle();

    /// <summary>The native blocks the kernel reads or writes until an operation's completion (no pointer code in the async methods).</summary>
    private static unsafe class Blocks
    {
        public static nint AllocZeroed(int size) => (nint)NativeMemory.AllocZeroed((nuint)size);

        public static void Free(nint block) => NativeMemory.Free((void*)block);

        public static FileStat ReadStatx(nint block) => FileStat.FromStatx(*(LinuxInterop.Statx*)block);

        /// <summary>An <c>open_how</c> followed by the path's bytes; <paramref name="howSize"/> is where the path starts.</summary>
        public static nint OpenBlock(in LinuxInterop.OpenHow how, byte[] path, out int howSize)
        {
            howSize = sizeof(LinuxInterop.OpenHow);
            nint block = (nint)NativeMemory.Alloc((nuint)(howSize + path.Length));
            *(LinuxInterop.OpenHow*)block = how;
            path.CopyTo(new Span<byte>((void*)(block + howSize), path.Length));
            return block;
        }
    }
}
