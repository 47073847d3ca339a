using System.Runtime.InteropServices;
using EioSharp.Domains;

namespace EioSharp.Fs;

/// <summary>Appends to a <see cref="FileWriter"/> through a shared memory mapping of the file's tail: an append is a copy
/// into the page cache, with no system call, instead of a <c>pwrite</c>. Opened by <see cref="FileWriter.OpenMappedTail"/>.</summary>
/// <remarks>
/// <para><b>How</b>: the region ahead of the logical end is reserved with <c>fallocate</c> (mode 0: the blocks are
/// allocated and the file's size grows over them, reading as zeros) one chunk at a time
/// (<see cref="ChunkBytes"/>), and that chunk is mapped <c>MAP_SHARED</c>; <see cref="Append"/> copies the bytes into the
/// mapping and advances <see cref="Length"/>, which the appender keeps (the file's size on disk is the end of the
/// reservation). When an append does not fit in the mapped chunk, the chunk is unmapped and the next one, starting at the
/// page that holds <see cref="Length"/>, reserved and mapped. Appends longer than <see cref="MaxStoreBytes"/> (or than a
/// chunk less one page) are written by <c>pwrite</c> at <see cref="Length"/>, into a region reserved the same way when
/// they would go past the reserved one (<see cref="ReserveForWrites"/>).</para>
/// <para><b>Visibility and durability</b>: a copied byte is in the file's page cache at once, the same pages a
/// <c>read</c> of the file from any descriptor or process sees, exactly as after a <c>pwrite</c>; a process killed
/// after <see cref="Append"/> returned loses nothing. For the device, sync the writer as before
/// (<see cref="FileWriter.DataSync"/>, <see cref="FileWriter.DataSyncAsync"/>, <see cref="FileWriter.Sync"/>): <c>fsync</c>
/// and <c>fdatasync</c> on the descriptor write back the pages dirtied through the mapping.</para>
/// <para><b>The file's size</b>: until <see cref="Close"/> (or the writer's close, which closes the appender first), the
/// file is longer than <see cref="Length"/> and ends in zero bytes (up to a chunk). <see cref="Close"/> cuts it to
/// <see cref="Length"/> (<c>ftruncate</c>) and unmaps, so a cleanly closed file holds exactly the appended bytes, as with
/// <c>pwrite</c>. After a crash (the process killed, the machine down) the zeros stay: a reader of such a file must treat
/// trailing zero bytes as not written.</para>
/// <para><b>A full disk</b> is found when a chunk is reserved: <see cref="Append"/> then throws <see cref="IOException"/>
/// with <c>ENOSPC</c> (HResult 28; after trying to reserve only what the append needs) and nothing of that append is
/// written; a store into the mapping never faults for lack of space (no <c>SIGBUS</c>), since its blocks are allocated.</para>
/// <para><b>Fallback</b>: where a mapping cannot be used the appender writes every append by <c>pwrite</c>
/// (<see cref="FileWriter.WriteAt"/>) with the same results and exceptions, and <see cref="IsMapped"/> is false: files of
/// the portable filesystem layer, files opened in append mode or that are not regular files, off Linux, and when the
/// filesystem refuses <c>fallocate</c> (<c>EOPNOTSUPP</c>, <c>ENOSYS</c>, <c>EINVAL</c>) or <c>mmap</c> fails. The
/// fallback is silent and final for this appender.</para>
/// <para><b>Eio</b>: none (Eio has no <c>mmap</c>); it mirrors a log writer's <c>pwrite</c> of its records at the end of
/// the file (Redis's AOF <c>write</c>), and behaves the same on every backend: no operation suspends the fiber or checks
/// its cancellation, and the only system calls are at a chunk's extension, <see cref="Truncate"/> and <see cref="Close"/>.</para>
/// <para><b>Thread safety</b>: one thread at a time (the writer's owner); the writer's syncs may run concurrently from
/// another thread. Nobody else may shrink the file while the appender is open (a store past the file's end would fault).</para>
/// </remarks>
public sealed unsafe class MappedTailAppender : IDisposable
{
    /// <summary>The default <see cref="ChunkBytes"/>: 1 MiB.</summary>
    public const int DefaultChunkBytes = 1 << 20;

    /// <summary>The default <see cref="MaxStoreBytes"/>: 512 bytes. Measured with the KV's AOF (1 KB values, 50 clients
    /// -P 16 SET, rounds of 1-16 KB): 4,096 cost 1.09x the CPU per request of <c>pwrite</c> appends, 512 0.95x.</summary>
    public const int DefaultMaxStoreBytes = 512;

    private const int ENOSPC = 28;
    private const int EDQUOT = 122;
    private const int EOPNOTSUPP = 95;
    private const int ENODEV = 19;

    private static readonly int s_page = Environment.SystemPageSize;

    private readonly FileWriter _file;
    private readonly int _chunk;
    private long _length;
    private long _size; // the file's size as this appender left it (the end of the last reservation or write)
    private byte* _map;
    private long _mapStart;
    private long _mapLength;
    private bool _mapped;
    private bool _closed;

    internal MappedTailAppender(FileWriter file, long length, long size, int chunkBytes, bool mappable)
    {
        _file = file;
        _length = length;
        _size = size;
        _chunk = (int)RoundUp(chunkBytes);
        _mapped = mappable;
    }

    /// <summary>Gets the logical length of the file, in bytes: where the next <see cref="Append"/> goes.</summary>
    public long Length => _length;

    /// <summary>Gets whether appends go through a mapping; false once the appender has fallen back to <c>pwrite</c>
    /// (see the remarks of <see cref="MappedTailAppender"/>).</summary>
    public bool IsMapped => _mapped;

    /// <summary>Gets how much of the file one mapping covers and one <c>fallocate</c> reserves, in bytes (a multiple of
    /// the page size).</summary>
    public int ChunkBytes => _chunk;

    /// <summary>Gets or sets the longest append, in bytes, that is stored through the mapping (default
    /// <see cref="DefaultMaxStoreBytes"/>); longer ones
    /// are written by <c>pwrite</c> at <see cref="Length"/> (into the same reserved region, see <see cref="ReserveForWrites"/>). A store takes a page fault
    /// for every page it is the first to dirty since the page was last written back, which for long appends costs more
    /// than the kernel's copy in <c>pwrite</c>; for short records the system call is the larger cost.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative value.</exception>
    public int MaxStoreBytes
    {
        get => _maxStore;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _maxStore = value;
        }
    }

    private int _maxStore = DefaultMaxStoreBytes;

    /// <summary>Gets how many chunks were reserved and mapped so far, or zero-filled (<see cref="ZeroFillAhead"/>: fills
    /// started) (tests, diagnostics).</summary>
    public long Extensions { get; private set; }

    /// <summary>Appends <paramref name="data"/> at <see cref="Length"/> and advances it.</summary>
    /// <param name="data">The bytes (copied before the call returns).</param>
    /// <exception cref="ObjectDisposedException">The appender or its writer is closed.</exception>
    /// <exception cref="IOException">Reserving the next chunk failed (<c>ENOSPC</c>: the disk is full; <c>EDQUOT</c>,
    /// <c>EFBIG</c>, <c>EIO</c>), or, for a <c>pwrite</c>, the kernel reported an error; HResult carries the errno. A
    /// reservation failure writes nothing; a failed <c>pwrite</c> may have written part of the data (cut it off with
    /// <see cref="Truncate"/>). <see cref="Length"/> is unchanged either way.</exception>
    public void Append(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (data.IsEmpty)
        {
            return;
        }

        long end = _length + data.Length;
        if (_zeroFill)
        {
            AppendIntoZeros(data, end);
            return;
        }

        if (_mapped && data.Length <= _maxStore && (end <= _mapStart + _mapLength && _map is not null || MapFor(data.Length)))
        {
            data.CopyTo(new Span<byte>(_map + (_length - _mapStart), data.Length));
            _length = end;
            return;
        }

        if (_mapped && _reserveWrites && end > _size)
        {
            ReserveAhead(end);
        }

        _file.WriteAt(_length, data);
        _length = end;
        _size = Math.Max(_size, end);
    }

    /// <summary>Gets or sets whether a <c>pwrite</c> append (longer than <see cref="MaxStoreBytes"/>) that goes past the
    /// reserved region first reserves, with <c>fallocate</c> as a store's chunk is, a chunk from the page holding
    /// <see cref="Length"/> (or up to the append's end when that is further), so that the write lands in
    /// allocated blocks (ext4: no delayed-allocation reservation per page in the write, no block allocation at writeback)
    /// rather than past the file's end (default true). Only while the appender is mapped (<see cref="IsMapped"/>); a
    /// failed reservation is not an error here: the <c>pwrite</c> then goes past the end as without it (and a filesystem
    /// without <c>fallocate</c> turns it off for good).</summary>
    /// <remarks>Measured with the KV's AOF (1 KB values, 50 clients -P 16 SET: every round a ~17 KB <c>pwrite</c>): the
    /// store thread's time in <c>pwrite64</c> 0.39-0.45 -> 0.36-0.40 µs a request, ext4's delayed-allocation step
    /// (<c>ext4_da_get_block_prep</c>) in it 0.10-0.11 -> 0.02; in C, 17.2 KB appends 11.1-11.9 -> 8.6-9.0 µs each. A
    /// reserved (unwritten) extent is converted at writeback by the kernel's end-of-I/O worker, outside the process.
    /// As with stores, the file ends in zeros up to a chunk while open and after a crash (see the class remarks).</remarks>
    public bool ReserveForWrites
    {
        get => _reserveWrites;
        set => _reserveWrites = value;
    }

    private bool _reserveWrites = true;

    // Reserves from the page holding Length (where a store's MapFor would map) a chunk, or up to `end` when that is
    // further, without mapping it.
    private void ReserveAhead(long end)
    {
        long start = _length & ~(long)(s_page - 1);
        long length = Math.Max(_chunk, RoundUp(end - start));
        _file.BeginFileUse();
        try
        {
            int fd = (int)_file.FileHandle.DangerousGetHandle();
            int errno = Reserve(fd, start, length);
            if (errno == 0)
            {
                _size = Math.Max(_size, start + length);
            }
            else if (errno is EOPNOTSUPP or NativeErrors.ENOSYS or NativeErrors.EINVAL or ENODEV)
            {
                _reserveWrites = false; // the filesystem cannot: plain pwrites from now on
            }
        }
        finally
        {
            _file.EndFileUse();
        }
    }

    /// <summary>Gets or sets whether the region ahead of <see cref="Length"/> is prepared with written, synced zeros
    /// instead of reserved with <c>fallocate</c>, so that a sync after an append writes only the data (default false).</summary>
    /// <remarks>
    /// <para><b>What for</b>: a log synced after every append (Redis's <c>appendfsync always</c>). An append past the
    /// file's end changes its size, so the next <c>fdatasync</c> must also write the inode (and, after delayed
    /// allocation, the allocation's metadata); an append into a <c>fallocate</c>d region costs the sync the conversion
    /// of an unwritten extent. An append into blocks that are already written, inside a size that is already on the
    /// device, leaves the sync only the data pages. In this mode every append is a <c>pwrite</c> (no store through a
    /// mapping) into such a region.</para>
    /// <para><b>Scheduling</b>: a chunk (<see cref="ChunkBytes"/>) of zeros is written and <c>fdatasync</c>ed on the
    /// library's system-thread offload when less than half a chunk of prepared zeros is left ahead of
    /// <see cref="Length"/>, and at once when the property is set; the owner appends below it meanwhile and takes the
    /// new region only once the fill's sync has returned (nothing is appended where the size is not yet durable). An
    /// append that goes past the prepared region while no fill runs is a <c>pwrite</c> past the end, as without this
    /// mode (its sync then writes the size); one that would go past it while a fill runs first waits for the fill,
    /// blocking the calling thread, as do <see cref="Truncate"/> and <see cref="Close"/>. No fiber is suspended and no
    /// cancellation is checked.</para>
    /// <para><b>Costs</b>: the device receives every chunk twice (zeros, then the data); the file ends in up to one and
    /// a half chunks of zeros while open and after a crash, as with <c>fallocate</c> (see the class remarks).</para>
    /// <para><b>Errors</b>: a failed fill (a full disk) is not reported here: the zeros it wrote before it failed stay
    /// (appends go into them: a fill never takes space an append would have had), no further chunk is filled until the
    /// next <see cref="Truncate"/> (a log writer's cut after a failed append, the way it finds the disk's room again),
    /// and meanwhile appends past the prepared region are <c>pwrite</c>s past the end, where a full disk fails them as
    /// without this mode.</para>
    /// <para><b>Memory</b>: one static 256 KiB array of zeros for every appender in the process (the fills' source),
    /// allocated at the first fill; the chunk itself is page cache, not the process's memory.</para>
    /// <para><b>Where</b>: only while the appender can map (<see cref="IsMapped"/>: regular files on Linux, not the
    /// portable layer); elsewhere setting it changes nothing and it reads false. Measured with the KV's AOF under
    /// <c>appendfsync always</c> in docs/BENCHMARKS.md (session 36, h201).</para>
    /// <para><b>Thread safety</b>: set it on the owner's thread, as <see cref="Append"/>.</para>
    /// </remarks>
    /// <exception cref="ObjectDisposedException">Set on a closed appender.</exception>
    public bool ZeroFillAhead
    {
        get => _zeroFill;
        set
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (value == _zeroFill || !_mapped && value)
            {
                return;
            }

            if (!value)
            {
                CollectFill(wait: true);
                _zeroFill = false;
                return;
            }

            Unmap(); // appends are pwrites from now on
            _zeroFill = true;
            _zeroFilled = true;
            _fillDone ??= new ManualResetEventSlim(false);
            StartFillIfLow();
        }
    }

    private bool _zeroFill;
    private bool _zeroFilled; // the mode was on at some point: the file may hold zeros past _size (Close cuts it)
    private ManualResetEventSlim? _fillDone;
    private bool _filling; // a fill runs (owner's view; the fill thread sets _fillDone when it is done)
    private long _fillEnd; // where the running fill ends
    private Exception? _fillError; // written by the fill thread before _fillDone is set
    private bool _fillFailed; // a fill failed: no more until the next Truncate
    private static byte[]? s_zeros;

    private void AppendIntoZeros(ReadOnlySpan<byte> data, long end)
    {
        CollectFill(wait: end > _size);
        _file.WriteAt(_length, data);
        _length = end;
        _size = Math.Max(_size, end);
        StartFillIfLow();
    }

    // Takes a finished fill's result (waiting for a running one when `wait`): the prepared region grows to its end.
    private void CollectFill(bool wait)
    {
        if (!_filling)
        {
            return;
        }

        if (!_fillDone!.IsSet)
        {
            if (!wait)
            {
                return;
            }

            _fillDone.Wait();
        }

        _filling = false;
        _fillDone.Reset();
        if (_fillError is null)
        {
            _size = Math.Max(_size, _fillEnd);
        }
        else
        {
            _fillError = null;
            _fillFailed = true; // a full disk (or another error): no more fills until a Truncate; pwrites past the end, which report it
        }
    }

    private void StartFillIfLow()
    {
        if (!_zeroFill || _filling || _fillFailed || _size - _length >= _chunk / 2)
        {
            return;
        }

        long start = _size;
        long end = start + _chunk;
        _fillEnd = end;
        _filling = true;
        Extensions++;
        var file = _file;
        var done = _fillDone!;
        byte[] zeros = s_zeros ??= new byte[256 * 1024];
        SysthreadPool.Shared.Post(null, () =>
        {
            try
            {
                for (long at = start; at < end; at += zeros.Length)
                {
                    file.WriteAt(at, zeros.AsSpan(0, (int)Math.Min(zeros.Length, end - at)));
                }

                file.DataSync(); // the blocks and the new size on the device before any append goes there
            }
            catch (Exception ex)
            {
                _fillError = ex;
            }
            finally
            {
                done.Set();
            }
        });
    }

    /// <summary>Sets the logical length back to <paramref name="length"/> and cuts the file there (<c>ftruncate</c>), for
    /// example to drop a record whose write failed half-way; the next append reserves and maps again (under
    /// <see cref="ZeroFillAhead"/>: fills again, also after a failed fill).</summary>
    /// <param name="length">The new length in bytes: 0 to <see cref="Length"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or past <see cref="Length"/>.</exception>
    /// <exception cref="ObjectDisposedException">The appender or its writer is closed.</exception>
    /// <exception cref="IOException">The kernel refused the truncation; <see cref="Length"/> is then
    /// <paramref name="length"/> anyway (the next appends overwrite what is past it).</exception>
    public void Truncate(long length)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _length);
        Unmap(); // before the file shrinks under the mapping
        CollectFill(wait: true); // nor under a running fill
        _fillFailed = false; // the owner's recovery step (a full disk's failed append cut off): the next append fills again (§210)
        _length = length;
        _file.SetLength(length);
        _size = length;
    }

    /// <summary>Unmaps the tail and cuts the file to <see cref="Length"/> (<c>ftruncate</c>, only when its size differs),
    /// so that the file holds exactly the appended bytes; the writer stays open. Calling it again does nothing.</summary>
    /// <exception cref="IOException">The truncation failed (the file keeps its zeros past <see cref="Length"/>); the
    /// appender is closed anyway.</exception>
    /// <remarks>Does not sync: a durable close is <see cref="Close"/> then the writer's <see cref="FileWriter.DataSync"/>
    /// (the new size is metadata that <c>fdatasync</c> writes).</remarks>
    public void Close()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        try
        {
            Unmap();
            CollectFill(wait: true);
            _fillDone?.Dispose();
            _zeroFill = false;
            if ((_size != _length || _zeroFilled) && !_file.IsClosed)
            {
                _file.SetLength(_length);
                _size = _length;
            }
        }
        finally
        {
            _file.TailClosed(this);
        }
    }

    /// <summary>Same as <see cref="Close"/>.</summary>
    public void Dispose() => Close();

    /// <summary>Describes the appender by its writer and length.</summary>
    /// <returns>For example <c>MappedTailAppender of FileWriter &lt;cwd:log&gt; at 4096 (mapped)</c>.</returns>
    public override string ToString() => $"MappedTailAppender of {_file} at {_length} ({(_mapped ? "mapped" : "pwrite")})";

    /// <summary>Reserves and maps the chunk that starts at the page holding <see cref="Length"/>; false when the append
    /// should be a <c>pwrite</c> (too long for a chunk, or the appender has just fallen back).</summary>
    private bool MapFor(int count)
    {
        if (count > _chunk - s_page)
        {
            return false;
        }

        Unmap();
        long start = _length & ~(long)(s_page - 1);
        long need = RoundUp(_length + count - start);
        _file.BeginFileUse();
        try
        {
            int fd = (int)_file.FileHandle.DangerousGetHandle();
            long length = _chunk;
            int errno = Reserve(fd, start, length);
            if (errno is ENOSPC or EDQUOT && need < length)
            {
                length = need; // room for this append alone, as a pwrite would have had
                errno = Reserve(fd, start, length);
            }

            if (errno != 0)
            {
                if (errno is EOPNOTSUPP or NativeErrors.ENOSYS or NativeErrors.EINVAL or ENODEV)
                {
                    _mapped = false;
                    return false;
                }

                throw NativeErrors.FromErrno(errno, _file.ToString());
            }

            _size = Math.Max(_size, start + length);
            nint map = LinuxInterop.MMap(0, (nuint)length, LinuxInterop.ProtReadWrite, LinuxInterop.MapShared, fd, start);
            if (map == LinuxInterop.MapFailed)
            {
                _mapped = false;
                return false;
            }

            _map = (byte*)map;
            _mapStart = start;
            _mapLength = length;
            Extensions++;
            return true;
        }
        finally
        {
            _file.EndFileUse();
        }
    }

    private static int Reserve(int fd, long start, long length)
    {
        while (LinuxInterop.FAllocate(fd, 0, start, length) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != NativeErrors.EINTR)
            {
                return errno;
            }
        }

        return 0;
    }

    private void Unmap()
    {
        if (_map is not null)
        {
            LinuxInterop.MUnmap((nint)_map, (nuint)_mapLength);
            _map = null;
            _mapStart = 0;
            _mapLength = 0;
        }
    }

    private static long RoundUp(long bytes) => (bytes + s_page - 1) & ~(long)(s_page - 1);
}
