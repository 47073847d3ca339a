using EioSharp.Backends.Native;
using EioSharp.Backends.Uring;
using EioSharp.IO;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Fs;

/// <summary>An open file owned by a switch: positional reads, metadata and closing; see <see cref="FileReader"/> and <see cref="FileWriter"/>.</summary>
/// <remarks>
/// <para>Eio: <c>Eio.File.ro</c>. Opened with <see cref="EioPath.OpenReadAsync"/> or <see cref="EioPath.OpenWriteAsync"/>.</para>
/// <para>
/// <b>Lifetime (S29)</b>: closed when its switch finishes, or earlier by <see cref="Close"/>, which is idempotent and
/// removes the release hook (when called on the switch's domain). Closing does not cancel operations in flight: the
/// descriptor is reference-counted and stays open until a running read, write or sync returns, so a file shared with
/// another domain cannot be closed under it. Operations started after closing throw <see cref="ObjectDisposedException"/>.
/// </para>
/// <para>
/// <b>Scheduling and cancellation</b>: on the io_uring backend (<see cref="EioBackend.Uring"/>), reads, writes,
/// <c>fsync</c>/<c>fdatasync</c> and <c>fstat</c> are submissions on the calling domain's ring (IORING_OP_READ, WRITE,
/// FSYNC, STATX; each falls back to the portable way when the kernel's probe lacks its opcode), as Eio_linux does. On the
/// other backends reads and writes use <see cref="RandomAccess"/> (the calling fiber awaits them and resumes on its
/// domain), and <c>fstat</c>, <c>fsync</c> run on the blocking offload; <c>ftruncate</c> runs there on every backend.
/// Exception: on io_uring and epoll a write of at most 64 KiB to a regular file is a blocking <c>pwrite</c> on the domain's
/// thread (into the page cache; as Eio_posix does), since a hand-off to another thread costs more than the copy.
/// Every operation checks the fiber's cancellation when it starts and throws <see cref="CancelledException"/> without
/// touching the file. On the portable and epoll backends an operation that has started completes and returns its result.
/// On io_uring a fiber cancelled during an operation asks the kernel to cancel it (IORING_OP_ASYNC_CANCEL) and resumes
/// only with the operation's completion: if the kernel had already done it, its result is returned (nothing is lost; the
/// cancellation is seen at the next suspension point); if the kernel cancelled it, <see cref="CancelledException"/> and
/// nothing was read, written or synced by it (a write in several parts may have written the earlier ones). Either way the
/// kernel never writes into a read's buffer after the read has returned.
/// </para>
/// <para><b>Thread safety</b>: positional operations may run concurrently from any fibers and domains; the sequential
/// flow operations of the subclasses keep one position and allow one reader and one writer at a time.</para>
/// </remarks>
public abstract class EioFile : IClosable
{
    private readonly ReleaseHook? _hook;
    private readonly Domain _ownerDomain;
    private readonly string _display;
    private readonly FileFd _fd;

    private protected EioFile(Switch sw, SafeFileHandle handle, string display, bool portable)
    {
        Handle = handle;
        IsPortable = portable;
        _fd = new FileFd(handle);
        _display = display;
        _ownerDomain = Domain.Current ?? throw new InvalidOperationException("Files must be opened inside a fiber.");

        // On a finished switch this runs Close at once (while _hook is still null) and throws.
        _hook = sw.OnRelease(Close);
    }

    /// <summary>Gets whether <see cref="Close"/> was called (or the owning switch finished).</summary>
    public bool IsClosed => _fd.IsClosed;

    /// <summary>Gets the handle.</summary>
    private protected SafeFileHandle Handle { get; }

    /// <summary>Gets whether the file was opened by the portable filesystem layer (its directory's
    /// <see cref="DirectoryHandle.IsPortable"/>, the run's <see cref="EioFileSystem"/>): its <c>fstat</c> and <c>fsync</c>
    /// then go through .NET (<see cref="PortableFs"/>) and appends are emulated.</summary>
    internal bool IsPortable { get; }

    /// <summary>The position a <c>Seek</c> from <paramref name="position"/> moves to (Eio's <c>File.seek</c> rules, shared by
    /// the reader and the writer); <see cref="SeekOrigin.End"/> reads the file's length.</summary>
    /// <exception cref="IOException">The new position would be negative (<c>EINVAL</c>).</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    private protected long SeekTarget(long position, long offset, SeekOrigin origin)
    {
        Use();
        long basis;
        try
        {
            basis = origin switch
            {
                SeekOrigin.Begin => 0,
                SeekOrigin.Current => position,
                SeekOrigin.End => RandomAccess.GetLength(Handle),
                _ => throw new ArgumentOutOfRangeException(nameof(origin)),
            };
        }
        finally
        {
            _fd.EndUse();
        }

        long target = basis + offset;
        if (target < 0)
        {
            throw new IOException($"seek {this}: the position would be negative ({target})", 22);
        }

        return target;
    }

    private int _regular; // 0: not known yet, 1: a regular file, 2: something else (pipe, device, ...)

    /// <summary>Whether the open file is a regular file (one <c>fstat</c> on the first call, then cached; call inside a use).</summary>
    /// <remarks>On io_uring and epoll, small writes of regular files are blocking <c>pwrite</c>s on the domain
    /// (<see cref="InlineFileWrites"/>); a pipe or a device may block for long, so their writes keep the other path.</remarks>
    private protected bool IsRegularFile
    {
        get
        {
            int r = Volatile.Read(ref _regular);
            if (r == 0)
            {
                r = NativeFs.Stat(Handle, IsPortable).Kind == FileKind.RegularFile ? 1 : 2;
                Volatile.Write(ref _regular, r);
            }

            return r == 1;
        }
    }

    /// <summary>The path the file was opened with, for error messages.</summary>
    private protected string DisplayPath => _display;

    /// <summary>Gets the release hook, for tests.</summary>
    internal ReleaseHook? Hook => _hook;

    /// <summary>Reads up to <c>buffer.Length</c> bytes starting at <paramref name="fileOffset"/>; the sequential position is not used or changed.</summary>
    /// <param name="fileOffset">The offset in the file, in bytes, from its start; must not be negative.</param>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The number of bytes read; 0 at or past the end of the file (or for an empty buffer).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fileOffset"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the read started (on io_uring: or during it,
    /// and the kernel cancelled it; nothing was read).</exception>
    /// <exception cref="IOException">The kernel reported an error (for example <c>EISDIR</c>).</exception>
    /// <remarks>Eio: <c>File.pread</c> (single buffer; end of file is 0 here, not an exception).</remarks>
    public async ValueTask<int> ReadAtAsync(long fileOffset, Memory<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fileOffset);
        var cancel = Begin();
        try
        {
            if (UringFiles.Ring(Sys.IORING_OP_READ) is not null)
            {
                return await UringFiles.ReadAsync(Handle, buffer, fileOffset, _display);
            }

            return await RandomAccess.ReadAsync(Handle, buffer, fileOffset, cancel.Token);
        }
        catch (OperationCanceledException) when (cancel.IsCancelled)
        {
            cancel.ThrowIfCancelled();
            throw;
        }
        finally
        {
            _fd.EndUse();
        }
    }

    /// <summary>Fills <paramref name="buffer"/> from the file starting at <paramref name="fileOffset"/>.</summary>
    /// <param name="fileOffset">The offset in the file, in bytes; must not be negative.</param>
    /// <param name="buffer">Where to put the bytes; all of it is filled.</param>
    /// <returns>A task that completes when the buffer is full.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fileOffset"/> is negative.</exception>
    /// <exception cref="EndOfStreamException">The file ends before the buffer is full.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before one of the reads started.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Eio: <c>File.pread_exact</c>.</remarks>
    public async ValueTask ReadExactlyAtAsync(long fileOffset, Memory<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int n = await ReadAtAsync(fileOffset, buffer);
            if (n == 0)
            {
                throw new EndOfStreamException($"End of file in {_display} at offset {fileOffset}");
            }

            fileOffset += n;
            buffer = buffer[n..];
        }
    }

    /// <summary>Reads up to <c>buffer.Length</c> bytes starting at <paramref name="fileOffset"/> on the calling thread (<c>pread</c>), blocking it (and so its domain) until the kernel returns.</summary>
    /// <param name="fileOffset">The offset in the file, in bytes, from its start; must not be negative.</param>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The number of bytes read; 0 at or past the end of the file (or for an empty buffer).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fileOffset"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>
    /// Not in Eio (whose file operations always suspend the fiber). For work that already runs off the domain (on a
    /// <see cref="EioSharp.Domains.Systhread"/> call, for example a replay that feeds a parser through a stream), or for
    /// short reads a caller must not yield across. Does not check the fiber's cancellation (it may run outside a fiber);
    /// on a domain prefer <see cref="ReadAtAsync"/>.
    /// </remarks>
    public int ReadAt(long fileOffset, Span<byte> buffer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fileOffset);
        Use();
        try
        {
            return RandomAccess.Read(Handle, buffer, fileOffset);
        }
        finally
        {
            _fd.EndUse();
        }
    }

    /// <summary>Returns the metadata of the open file (<c>fstat</c>).</summary>
    /// <returns>The metadata; <see cref="FileStat.Size"/> is the current size in bytes.</returns>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Eio: <c>File.stat</c>.</remarks>
    public async Task<FileStat> StatAsync()
    {
        Begin();
        try
        {
            if (UringFiles.Ring(Sys.IORING_OP_STATX) is not null)
            {
                return await UringFiles.StatAsync(Handle, _display);
            }

            return await BlockingOffload.RunAsync(() => NativeFs.Stat(Handle, IsPortable));
        }
        finally
        {
            _fd.EndUse();
        }
    }

    /// <summary>Closes the file; calling it again does nothing (S29).</summary>
    /// <remarks>Eio: <c>Resource.close</c>. Removes the release hook when called on the owning switch's domain;
    /// from another domain the hook stays and does nothing when it runs. The descriptor is closed once no operation uses
    /// it any more: by an IORING_OP_CLOSE on the ring when that happens on a domain of the io_uring backend (submitted with
    /// the domain's next round; its result, like <c>close</c>'s elsewhere, is not reported), else by <c>close</c>.</remarks>
    public void Close()
    {
        if (!_fd.IsClosed)
        {
            BeforeClose();
        }

        if (!_fd.Close())
        {
            return;
        }

        if (ReferenceEquals(Domain.Current, _ownerDomain))
        {
            _hook?.Remove();
        }
    }

    /// <summary>Runs once before the descriptor is closed by <see cref="Close"/> (the file is still usable): a subclass
    /// finishes what it keeps beside the descriptor (the writer's mapped tail). Must not throw.</summary>
    private protected virtual void BeforeClose()
    {
    }

    /// <summary>Describes the file by the path it was opened with.</summary>
    /// <returns>For example <c>FileReader &lt;cwd:data.bin&gt;</c>.</returns>
    public override string ToString() => $"{GetType().Name} {_display}{(IsClosed ? " (closed)" : "")}";

    /// <summary>Checks cancellation and takes a use of the open file (end it with <see cref="EndUse"/>); returns the fiber's cancel context.</summary>
    private protected CancelContext Begin()
    {
        var cancel = Fiber.CancelContext;
        cancel.ThrowIfCancelled();
        Use();
        return cancel;
    }

    /// <summary>Takes a use of the open file (the descriptor stays open until <see cref="EndUse"/>), or throws <see cref="ObjectDisposedException"/> when it is closed.</summary>
    private protected void Use()
    {
        if (!_fd.TryUse())
        {
            throw new ObjectDisposedException(ToString());
        }
    }

    /// <summary>Ends a use taken by <see cref="Begin"/> or <see cref="Use"/>; closes the descriptor if the file was closed meanwhile.</summary>
    private protected void EndUse() => _fd.EndUse();
}

/// <summary>A file open for reading: a flow source reading from offset 0 onwards, plus positional reads.</summary>
/// <remarks>
/// Eio: <c>Eio.File.ro</c> from <c>Path.open_in</c>. Lifetime, scheduling and cancellation as for <see cref="EioFile"/>.
/// <para><b>Thread safety</b>: one sequential reader at a time (it keeps its own position, independent of
/// <see cref="EioFile.ReadAtAsync"/>).</para>
/// </remarks>
public sealed class FileReader : EioFile, IFlowSource
{
    private long _position;

    internal FileReader(Switch sw, SafeFileHandle handle, string display, bool portable = false)
        : base(sw, handle, display, portable)
    {
    }

    /// <summary>Gets the offset, in bytes, of the next sequential <see cref="ReadAsync"/>.</summary>
    public long Position => _position;

    /// <summary>Moves the sequential position and returns the new one.</summary>
    /// <param name="offset">Bytes from <paramref name="origin"/> (may be negative for <see cref="SeekOrigin.Current"/>/<see cref="SeekOrigin.End"/>).</param>
    /// <param name="origin">Where <paramref name="offset"/> counts from; <see cref="SeekOrigin.End"/> reads the file's current length.</param>
    /// <returns>The new position (a position past the end is allowed: reads there return 0, writes leave a hole).</returns>
    /// <exception cref="IOException">The new position would be negative (<c>EINVAL</c>).</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <remarks>Eio: <c>File.seek</c> (<c>`Set</c> / <c>`Cur</c> / <c>`End</c>). Only this object's position moves; positional
    /// reads and writes are unaffected. A system call only for <see cref="SeekOrigin.End"/>.</remarks>
    public long Seek(long offset, SeekOrigin origin) => _position = SeekTarget(_position, offset, origin);

    /// <summary>Reads the next bytes of the file, at most <c>buffer.Length</c>.</summary>
    /// <param name="buffer">Where to put the bytes.</param>
    /// <returns>The number of bytes read; 0 at end of file.</returns>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the read started.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Eio: <c>Flow.single_read</c> on a file.</remarks>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        int n = await ReadAtAsync(_position, buffer);
        _position += n;
        return n;
    }
}

/// <summary>A file open for writing: a flow sink writing from offset 0 (or appending), plus positional I/O, sync and truncation.</summary>
/// <remarks>
/// Eio: <c>Eio.File.rw</c> from <c>Path.open_out</c>. Opened read-write, so <see cref="EioFile.ReadAtAsync"/> works too.
/// Lifetime, scheduling and cancellation as for <see cref="EioFile"/>. Data written is in the kernel's page cache when a
/// write completes; call <see cref="SyncAsync"/> or <see cref="DataSyncAsync"/> for durability.
/// <para><b>Thread safety</b>: one sequential writer at a time; positional writes may run concurrently.</para>
/// </remarks>
public sealed class FileWriter : EioFile, IFlowSink
{
    private long _position;

    private readonly bool _emulateAppend;

    internal FileWriter(Switch sw, SafeFileHandle handle, string display, bool append, bool portable = false)
        : base(sw, handle, display, portable)
    {
        IsAppend = append;
        _emulateAppend = append && portable;
    }

    /// <summary>Gets whether every write goes to the end of the file (<c>O_APPEND</c>).</summary>
    public bool IsAppend { get; }

    private MappedTailAppender? _tail;

    /// <summary>Starts appending to the file through a shared memory mapping of its tail (<c>mmap</c> <c>MAP_SHARED</c>,
    /// the region ahead reserved with <c>fallocate</c>) instead of a <c>pwrite</c> per append; see
    /// <see cref="MappedTailAppender"/>.</summary>
    /// <param name="length">The logical length of the file, in bytes: the first append goes there. Normally the file's
    /// size; bytes of the file past it are overwritten by appends and cut off at <see cref="MappedTailAppender.Close"/>.
    /// Must not be negative.</param>
    /// <param name="chunkBytes">How much of the file one mapping covers (and one <c>fallocate</c> reserves ahead), in
    /// bytes; rounded up to the page size; at least 64 KiB, or 0 for no mapping at all (every append a <c>pwrite</c>, as
    /// the fallback: for comparisons and tests). An append longer than a chunk less one page is written by
    /// <c>pwrite</c>, and so is one longer than <see cref="MappedTailAppender.MaxStoreBytes"/>.</param>
    /// <returns>The appender; the writer has at most one open at a time, and closing the writer closes it first.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or <paramref name="chunkBytes"/>
    /// is negative or between 1 and 64 KiB - 1.</exception>
    /// <exception cref="InvalidOperationException">An appender of this writer is open.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The file's size could not be read (<c>fstat</c>).</exception>
    /// <remarks>Not in Eio (which has no <c>mmap</c>): it mirrors a log writer's <c>write(2)</c> of its records, as Redis's
    /// AOF, with the record reaching the page cache by a store instead of a system call. The appender falls back to
    /// <c>pwrite</c> (<see cref="MappedTailAppender.IsMapped"/> false) for files of the portable filesystem layer, files
    /// opened in append mode, files that are not regular, off Linux, and when <c>fallocate</c> or <c>mmap</c> is refused
    /// (a filesystem without <c>fallocate</c>: <c>EOPNOTSUPP</c>). Behaves the same on every backend (the mapping does
    /// not involve the domain's poller). Does not check the fiber's cancellation; no system call is made except the
    /// <c>fstat</c>.</remarks>
    public MappedTailAppender OpenMappedTail(long length, int chunkBytes = MappedTailAppender.DefaultChunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegative(chunkBytes);
        if (chunkBytes is > 0 and < 64 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkBytes), chunkBytes, "a chunk is at least 64 KiB (or 0: no mapping)");
        }
        if (_tail is not null)
        {
            throw new InvalidOperationException($"{this} already has an open mapped tail");
        }

        Use();
        try
        {
            bool mappable = chunkBytes > 0 && OperatingSystem.IsLinux() && !IsPortable && !IsAppend && IsRegularFile;
            long size = RandomAccess.GetLength(Handle);
            var tail = new MappedTailAppender(this, length, size, Math.Max(chunkBytes, 64 * 1024), mappable);
            _tail = tail;
            return tail;
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Starts writing the file sequentially from <paramref name="offset"/> past the page cache (<c>O_DIRECT</c>,
    /// through an aligned buffer); see <see cref="UncachedWriter"/>.</summary>
    /// <param name="offset">Where the first byte goes, in bytes; direct writes need a multiple of
    /// <see cref="UncachedWriter.Alignment"/> (otherwise the writer writes through the page cache). Must not be negative.</param>
    /// <param name="bufferBytes">The buffer's size, in bytes (rounded up to <see cref="UncachedWriter.Alignment"/>): the
    /// size of each write. Must be positive.</param>
    /// <returns>The writer (native memory: dispose it); call <see cref="UncachedWriter.Complete"/> to write its last bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative or <paramref name="bufferBytes"/>
    /// is not positive.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <remarks>Not in Eio. For a large file written once on a system thread (a snapshot, a log's rewritten base); blocking,
    /// no fiber suspension or cancellation check. Falls back to writes through the page cache for files of the portable
    /// filesystem layer, files opened in append mode or that are not regular, off Linux, and where the filesystem refuses
    /// <c>O_DIRECT</c> (<see cref="UncachedWriter.IsDirect"/> false).</remarks>
    public UncachedWriter OpenUncached(long offset = 0, int bufferBytes = UncachedWriter.DefaultBufferBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bufferBytes);
        Use();
        try
        {
            bool directable = OperatingSystem.IsLinux() && !IsPortable && !IsAppend && IsRegularFile;
            return new UncachedWriter(this, offset, bufferBytes, directable);
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>The handle, for the mapped tail's system calls.</summary>
    internal SafeFileHandle FileHandle => Handle;

    /// <summary>Takes a use of the descriptor (for the mapped tail); end it with <see cref="EndFileUse"/>.</summary>
    internal void BeginFileUse() => Use();

    /// <summary>Ends a use taken by <see cref="BeginFileUse"/>.</summary>
    internal void EndFileUse() => EndUse();

    /// <summary>The mapped tail closed: the writer may open another.</summary>
    internal void TailClosed(MappedTailAppender tail)
    {
        if (ReferenceEquals(_tail, tail))
        {
            _tail = null;
        }
    }

    private protected override void BeforeClose()
    {
        try
        {
            _tail?.Close();
        }
        catch (IOException)
        {
            // Like close(2)'s own result, not reported: the file keeps its reserved zeros past the logical end.
        }
    }

    /// <summary>Gets the offset, in bytes, of the next sequential <see cref="WriteAsync"/> (meaningless in append mode).</summary>
    public long Position => _position;

    /// <summary>Moves the sequential position and returns the new one.</summary>
    /// <param name="offset">Bytes from <paramref name="origin"/> (may be negative for <see cref="SeekOrigin.Current"/>/<see cref="SeekOrigin.End"/>).</param>
    /// <param name="origin">Where <paramref name="offset"/> counts from; <see cref="SeekOrigin.End"/> reads the file's current length.</param>
    /// <returns>The new position (a position past the end is allowed: reads there return 0, writes leave a hole).</returns>
    /// <exception cref="IOException">The new position would be negative (<c>EINVAL</c>).</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <remarks>Eio: <c>File.seek</c> (<c>`Set</c> / <c>`Cur</c> / <c>`End</c>). Only this object's position moves; positional
    /// reads and writes are unaffected. A system call only for <see cref="SeekOrigin.End"/>.</remarks>
    public long Seek(long offset, SeekOrigin origin) => _position = SeekTarget(_position, offset, origin);

    // The portable filesystem (PortableFs) cannot open with O_APPEND: an append goes to the length read just before it.
    private long AppendOffset(long fileOffset) => _emulateAppend ? RandomAccess.GetLength(Handle) : fileOffset;

    /// <summary>Writes all of <paramref name="data"/> at the sequential position (or at the end in append mode).</summary>
    /// <param name="data">The bytes; the caller must not change them until the write completes.</param>
    /// <returns>A task that completes when every byte has been handed to the kernel.</returns>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the write started.</exception>
    /// <exception cref="IOException">The kernel reported an error (for example <c>ENOSPC</c>).</exception>
    /// <remarks>Eio: <c>Flow.write</c> on a file.</remarks>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        await WriteAtAsync(_position, data);
        _position += data.Length;
    }

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="fileOffset"/>; the sequential position is not used or changed.</summary>
    /// <param name="fileOffset">The offset in the file, in bytes; must not be negative. Writing past the end leaves a hole
    /// that reads as zeros. Ignored in append mode (Linux <c>pwrite</c> appends).</param>
    /// <param name="data">The bytes; the caller must not change them until the write completes.</param>
    /// <returns>A task that completes when every byte has been handed to the kernel.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fileOffset"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the write started (on io_uring: or during it,
    /// and the kernel cancelled the part in flight; earlier parts may have been written).</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Eio: <c>File.pwrite_all</c>.</remarks>
    public async ValueTask WriteAtAsync(long fileOffset, ReadOnlyMemory<byte> data)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fileOffset);
        var cancel = Begin();
        try
        {
            if (InlineFileWrites.Applies(data.Length) && IsRegularFile)
            {
                // io_uring or epoll, a small write of a regular file: into the page cache on this thread (no hand-off).
                InlineFileWrites.Write(Handle, data.Span, AppendOffset(fileOffset), DisplayPath);
                return;
            }

            if (UringFiles.Ring(Sys.IORING_OP_WRITE) is not null)
            {
                await UringFiles.WriteAsync(Handle, data, AppendOffset(fileOffset), DisplayPath);
                return;
            }

            await RandomAccess.WriteAsync(Handle, data, AppendOffset(fileOffset), cancel.Token);
        }
        catch (OperationCanceledException) when (cancel.IsCancelled)
        {
            cancel.ThrowIfCancelled();
            throw;
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="fileOffset"/>, then flushes the file to the storage
    /// device (<c>fsync</c>, or <c>fdatasync</c> when <paramref name="dataOnly"/>), as one operation.</summary>
    /// <param name="fileOffset">The offset in the file, in bytes; must not be negative. Ignored in append mode (Linux
    /// <c>pwrite</c> appends).</param>
    /// <param name="data">The bytes; the caller must not change them until the task completes.</param>
    /// <param name="dataOnly">Sync as <see cref="DataSyncAsync"/> (data, and only the metadata needed to read it back)
    /// rather than <see cref="SyncAsync"/>.</param>
    /// <returns>A task that completes when the device has acknowledged the data.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fileOffset"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the write started (on io_uring: or before the
    /// kernel started the sync; the data may then be written and not synced).</exception>
    /// <exception cref="IOException">The kernel reported an error for the write (for example <c>ENOSPC</c>) or the sync
    /// (for example <c>EIO</c>); <see cref="Exception.HResult"/> carries the errno.</exception>
    /// <remarks>
    /// Not in Eio (<c>File.pwrite_all</c> then <c>File.sync</c>, which it equals in effect). On the io_uring backend, for
    /// a write of at most 64 KiB to a regular file, a blocking <c>pwrite</c> on the domain then an IORING_OP_FSYNC (one
    /// hand-off to a kernel worker); for larger writes or other files an IORING_OP_WRITE linked (IOSQE_IO_LINK) to an
    /// IORING_OP_FSYNC: one submission, and the kernel starts the sync only after the whole write. On epoll the same small
    /// write then the sync on the blocking offload; elsewhere both calls run in one job on the blocking offload.
    /// </remarks>
    public async ValueTask WriteAtAndSyncAsync(long fileOffset, ReadOnlyMemory<byte> data, bool dataOnly = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fileOffset);
        Begin();
        try
        {
            if (InlineFileWrites.Applies(data.Length) && IsRegularFile)
            {
                // io_uring or epoll, a small write of a regular file: the write on this thread, then only the sync handed off.
                InlineFileWrites.Write(Handle, data.Span, AppendOffset(fileOffset), DisplayPath);
                if (UringFiles.SyncRing() is not null)
                {
                    await UringFiles.SyncAsync(Handle, dataOnly, DisplayPath);
                }
                else
                {
                    await BlockingOffload.RunAsync(() => SyncCore(dataOnly));
                }

                return;
            }

            if (UringFiles.Ring(Sys.IORING_OP_WRITE) is not null && UringFiles.SyncRing() is not null)
            {
                await UringFiles.WriteThenSyncAsync(Handle, data, AppendOffset(fileOffset), dataOnly, DisplayPath);
                return;
            }

            await BlockingOffload.RunAsync(() =>
            {
                RandomAccess.Write(Handle, data.Span, AppendOffset(fileOffset));
                SyncCore(dataOnly);
            });
        }
        finally
        {
            EndUse();
        }
    }

    private void SyncCore(bool dataOnly)
    {
        if (dataOnly)
        {
            NativeFs.DataSync(Handle, IsPortable);
        }
        else
        {
            NativeFs.Sync(Handle, IsPortable);
        }
    }

    /// <summary>Flushes the file's data and metadata to the storage device (<c>fsync</c>).</summary>
    /// <returns>A task that completes when the device has acknowledged the data.</returns>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the sync started (on io_uring: or before the kernel started it).</exception>
    /// <exception cref="IOException">The kernel reported an error (for example <c>EIO</c>: written data may be lost).</exception>
    /// <remarks>Eio: <c>File.sync</c>.</remarks>
    public async Task SyncAsync()
    {
        Begin();
        try
        {
            if (UringFiles.SyncRing() is not null)
            {
                await UringFiles.SyncAsync(Handle, dataOnly: false, DisplayPath);
                return;
            }

            await BlockingOffload.RunAsync(() => NativeFs.Sync(Handle, IsPortable));
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Flushes the file's data, and only the metadata needed to read it back, to the device (<c>fdatasync</c>).</summary>
    /// <returns>A task that completes when the device has acknowledged the data.</returns>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the sync started (on io_uring: or before the kernel started it).</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Cheaper than <see cref="SyncAsync"/> when only the contents matter (an append-only log). Not in Eio.</remarks>
    public async Task DataSyncAsync()
    {
        Begin();
        try
        {
            if (UringFiles.SyncRing() is not null)
            {
                await UringFiles.SyncAsync(Handle, dataOnly: true, DisplayPath);
                return;
            }

            await BlockingOffload.RunAsync(() => NativeFs.DataSync(Handle, IsPortable));
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="fileOffset"/> on the calling thread (<c>pwrite</c>), blocking it (and so its domain) until the kernel has taken every byte.</summary>
    /// <param name="fileOffset">The offset in the file, in bytes; must not be negative. Ignored in append mode.</param>
    /// <param name="data">The bytes.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fileOffset"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The kernel reported an error (for example <c>ENOSPC</c>; <see cref="Exception.HResult"/>
    /// carries the errno); part of the data may have been written.</exception>
    /// <remarks>
    /// Not in Eio. For short writes into the page cache that a caller must not yield across, as a server appending a
    /// group commit to its log between two rounds of requests (Redis writes its AOF from its event loop the same way), or
    /// for work already running off the domain. Does not check the fiber's cancellation. Otherwise prefer
    /// <see cref="WriteAtAsync"/>.
    /// </remarks>
    public void WriteAt(long fileOffset, ReadOnlySpan<byte> data)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fileOffset);
        Use();
        try
        {
            RandomAccess.Write(Handle, data, AppendOffset(fileOffset));
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Flushes the file's data and metadata to the device (<c>fsync</c>) on the calling thread, blocking it (and so its domain) until the device has acknowledged the data.</summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The kernel reported an error (for example <c>EIO</c>: written data may be lost).</exception>
    /// <remarks>Not in Eio. For a sync a caller must not yield across (a final sync while closing, or a commit that must
    /// be durable before anything else runs on the domain), or on a system thread; otherwise prefer <see cref="SyncAsync"/>,
    /// which runs on the blocking offload. Does not check the fiber's cancellation.</remarks>
    public void Sync()
    {
        Use();
        try
        {
            NativeFs.Sync(Handle, IsPortable);
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Flushes the file's data, and only the metadata needed to read it back (its size), to the device
    /// (<c>fdatasync</c>) on the calling thread, blocking it (and so its domain) until the device has acknowledged the data.</summary>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The kernel reported an error (for example <c>EIO</c>: written data may be lost).</exception>
    /// <remarks>Not in Eio. The blocking form of <see cref="DataSyncAsync"/>, for the same uses as <see cref="Sync"/>
    /// (an append-only log's commit that must be durable before anything else runs on the domain, or work already on a
    /// system thread). Does not check the fiber's cancellation.</remarks>
    public void DataSync()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        NativeFs.DataSync(Handle, IsPortable);
    }

    /// <summary>Sets the file's size (<c>ftruncate</c>) on the calling thread, blocking it (and so its domain) until the kernel returns.</summary>
    /// <param name="length">The new size in bytes; must not be negative.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Not in Eio. For example to cut a torn append off a log before the next one; otherwise prefer
    /// <see cref="SetLengthAsync"/>. Does not check the fiber's cancellation.</remarks>
    public void SetLength(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Use();
        try
        {
            RandomAccess.SetLength(Handle, length);
        }
        finally
        {
            EndUse();
        }
    }

    /// <summary>Sets the file's size, cutting it or extending it with zeros (<c>ftruncate</c>).</summary>
    /// <param name="length">The new size in bytes; must not be negative.</param>
    /// <returns>A task that completes when the size has changed.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <remarks>Eio: <c>File.truncate</c>. The sequential position is unchanged.</remarks>
    public Task SetLengthAsync(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Begin();
        return SetLengthCoreAsync(length);
    }

    private async Task SetLengthCoreAsync(long length)
    {
        try
        {
            await BlockingOffload.RunAsync(() => RandomAccess.SetLength(Handle, length));
        }
        finally
        {
            EndUse();
        }
    }
}
