using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Kv;

/// <summary>The fsync policy of the append-only file (Redis's <c>appendfsync</c>).</summary>
internal enum FsyncPolicy
{
    /// <summary>fsync after every group commit, before any reply in it is sent.</summary>
    Always,

    /// <summary>fsync about once a second, off the store's domain (a crash may lose up to a second of acknowledged writes, as in Redis).</summary>
    EverySecond,

    /// <summary>Never fsync explicitly; the kernel writes back when it likes.</summary>
    No,
}

/// <summary>
/// The append-only file: replay on start (a torn tail is truncated with a warning, corruption elsewhere refuses to
/// start), appends from the store owner, fsync by policy, and background rewrite (compaction).
/// </summary>
/// <remarks>
/// <b>Thread safety</b>: <see cref="Append"/>, <see cref="Sync"/>, <see cref="StartRewrite"/> and <see cref="TryFinishRewrite"/>
/// are called only by the store owner. The everysec flusher thread only fsyncs, under <c>_handleLock</c>, which also
/// guards the handle swap at the end of a rewrite.
/// </remarks>
internal sealed class AppendOnlyFile : IDisposable
{
    private readonly string _path;
    private volatile FsyncPolicy _policy; // CONFIG SET appendfsync changes it (SetPolicy)
    private readonly Action<string> _log;
    private readonly object _handleLock = new();
    private Thread? _flusher;
    private readonly ManualResetEventSlim _stopFlusher = new(false);
    private SafeFileHandle _handle;
    private long _length;
    private long _sizeAfterLastRewrite;
    private volatile bool _dirty;
    private ArrayBufferWriter<byte>? _rewriteBuffer;
    private Task? _rewriteTask;
    private string? _rewriteTempPath;
    private bool _disposed;
    private long _fsyncs;

    private AppendOnlyFile(string path, FsyncPolicy policy, SafeFileHandle handle, long length, Action<string> log)
    {
        _path = path;
        _policy = policy;
        _handle = handle;
        _length = length;
        _sizeAfterLastRewrite = length;
        _log = log;
        if (policy == FsyncPolicy.EverySecond)
        {
            _flusher = new Thread(FlushLoop) { IsBackground = true, Name = "aof everysec fsync" };
            _flusher.Start();
        }
    }

    public string Path => _path;

    public long Length => _length;

    public FsyncPolicy Policy => _policy;

    /// <summary>Changes the fsync policy (CONFIG SET appendfsync): takes effect from the next append; the everysec
    /// flusher thread is started on first need and idles under the other policies. Call on the store owner.</summary>
    public void SetPolicy(FsyncPolicy policy)
    {
        if (policy == _policy)
        {
            return;
        }

        if (_policy == FsyncPolicy.EverySecond || policy == FsyncPolicy.Always)
        {
            try
            {
                Sync(); // what was written under the old policy is durable before the new one applies
            }
            catch (IOException ex)
            {
                _log($"WARNING: fsync of the AOF on appendfsync change failed: {ex.Message}");
            }
        }

        _policy = policy;
        if (policy == FsyncPolicy.EverySecond && _flusher is null)
        {
            _flusher = new Thread(FlushLoop) { IsBackground = true, Name = "aof everysec fsync" };
            _flusher.Start();
        }
    }

    public bool RewriteInProgress => _rewriteTask is not null;

    public long Rewrites { get; private set; }

    /// <summary>Size after the last rewrite (or at load), in bytes: INFO's aof_base_size.</summary>
    public long BaseSize => _sizeAfterLastRewrite;

    /// <summary>fsyncs done since start (any thread).</summary>
    public long Fsyncs => Interlocked.Read(ref _fsyncs);

    public static FsyncPolicy ParsePolicy(string text) => text switch
    {
        "always" => FsyncPolicy.Always,
        "no" => FsyncPolicy.No,
        _ => FsyncPolicy.EverySecond,
    };

    /// <summary>Opens (creating if missing) and replays the file into <paramref name="store"/>.</summary>
    /// <exception cref="AofCorruptException">The file is corrupt before its last command; the message has the byte offset.</exception>
    public static AppendOnlyFile OpenAndLoad(string path, FsyncPolicy policy, KvStore store, long nowUnixMs, RespLimits limits, Action<string> log)
    {
        var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            long length = RandomAccess.GetLength(handle);
            if (length > 0)
            {
                AofLoadResult result;
                using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16))
                {
                    result = AofLoader.Load(stream, store, nowUnixMs, limits);
                }

                if (result.IsTruncated)
                {
                    log($"WARNING: the append-only file {path} ends with an incomplete command (a torn write): " +
                        $"truncating it from {result.TotalLength} to {result.ValidLength} bytes.");
                    RandomAccess.SetLength(handle, result.ValidLength);
                    RandomAccess.FlushToDisk(handle);
                    length = result.ValidLength;
                }

                log($"DB loaded from append only file {path}: {result.CommandCount} commands, {store.Count} keys.");
            }

            return new AppendOnlyFile(path, policy, handle, length, log);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Appends encoded commands at the end of the file (to the page cache; see <see cref="Sync"/>).</summary>
    /// <exception cref="IOException">The write failed (a disk full: <see cref="DescribeError"/> gives Redis's text); the
    /// file is truncated back to its length before the call, so a retry appends cleanly.</exception>
    public void Append(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        try
        {
            RandomAccess.Write(_handle, data, _length);
        }
        catch (IOException)
        {
            // A short write may have left part of the data: cut it off (as Redis does), so that the file stays a sequence
            // of whole commands and the retry appends at the same place.
            TryTruncate(_length);
            throw;
        }

        _length += data.Length;
        _dirty = true;
        _rewriteBuffer?.Write(data);
    }

    /// <summary>Whether the file accepts a write now: writes a byte past the end and cuts it off again (used to find out
    /// that a full disk has room again when there is nothing pending to retry).</summary>
    /// <exception cref="IOException">It does not.</exception>
    public void Probe()
    {
        try
        {
            RandomAccess.Write(_handle, "\n"u8, _length);
        }
        finally
        {
            TryTruncate(_length);
        }
    }

    private void TryTruncate(long length)
    {
        try
        {
            RandomAccess.SetLength(_handle, length);
        }
        catch (IOException ex)
        {
            _log($"WARNING: could not cut the append-only file back to {length} bytes after a failed write: {ex.Message}");
        }
    }

    private static int s_injectedFsyncFailures;

    /// <summary>Makes the next <paramref name="count"/> background fsyncs fail with EIO (<c>DEBUG FAIL-FSYNC</c>, tests).</summary>
    public static void InjectFsyncFailures(int count) => Volatile.Write(ref s_injectedFsyncFailures, count);

    /// <summary>The last background fsync failed, and none has succeeded since: <see cref="DescribeError"/> text, else null.</summary>
    public string? FsyncError => Volatile.Read(ref _fsyncError);

    private string? _fsyncError;

    /// <summary>The C library's text for an I/O failure (Redis prints <c>strerror(errno)</c>): "No space left on device"
    /// for ENOSPC, "Input/output error" for EIO; otherwise the exception's message without the file name.</summary>
    public static string DescribeError(Exception ex)
    {
        int errno = ex.HResult & 0xFFFF;
        switch (errno)
        {
            case 28: return "No space left on device";
            case 5: return "Input/output error";
            case 27: return "File too large";
            case 122: return "Disk quota exceeded";
            case 30: return "Read-only file system";
        }

        string message = ex.Message;
        int file = message.IndexOf(" : '", StringComparison.Ordinal);
        return file > 0 ? message[..file] : message;
    }

    /// <summary>fsyncs now (used by <see cref="FsyncPolicy.Always"/> after each group commit, and at shutdown).</summary>
    public void Sync()
    {
        lock (_handleLock)
        {
            _dirty = false;
            RandomAccess.FlushToDisk(_handle);
            Interlocked.Increment(ref _fsyncs);
        }
    }

    /// <summary>True when the file has grown enough since the last rewrite (Redis's auto-aof-rewrite rule).</summary>
    public bool ShouldRewrite(int percentage, long minSize)
    {
        if (percentage <= 0 || _rewriteTask is not null || _length < minSize)
        {
            return false;
        }

        long baseSize = Math.Max(1, _sizeAfterLastRewrite);
        return (_length - baseSize) * 100 / baseSize >= percentage;
    }

    /// <summary>Starts writing a compact file from <paramref name="snapshot"/> on a background thread; appends made meanwhile are buffered.</summary>
    public void StartRewrite(KvSnapshotEntry[] snapshot)
    {
        if (_rewriteTask is not null)
        {
            return;
        }

        _rewriteBuffer = new ArrayBufferWriter<byte>(64 * 1024);
        _rewriteTempPath = _path + ".rewrite.tmp";
        string temp = _rewriteTempPath;
        _log($"Background append only file rewriting started ({snapshot.Length} keys).");
        _rewriteTask = Task.Run(() =>
        {
            using var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            var chunk = new ArrayBufferWriter<byte>(1 << 20);
            const int KeysPerChunk = 4096;
            int db = -1;
            for (int i = 0; i < snapshot.Length; i += KeysPerChunk)
            {
                chunk.ResetWrittenCount();
                db = AofRewriter.Write(new ArraySegment<KvSnapshotEntry>(snapshot, i, Math.Min(KeysPerChunk, snapshot.Length - i)), chunk, db);
                fs.Write(chunk.WrittenSpan);
            }

            fs.Flush(flushToDisk: true);
        });
    }

    /// <summary>If the background rewrite has finished, appends what was written meanwhile and atomically replaces the file.</summary>
    /// <returns>True if a rewrite was completed (or abandoned after a failure) by this call.</returns>
    public bool TryFinishRewrite()
    {
        var task = _rewriteTask;
        if (task is null || !task.IsCompleted)
        {
            return false;
        }

        string temp = _rewriteTempPath!;
        var pending = _rewriteBuffer!;
        _rewriteTask = null;
        _rewriteBuffer = null;
        _rewriteTempPath = null;
        if (!task.IsCompletedSuccessfully)
        {
            _log($"WARNING: background AOF rewrite failed: {task.Exception?.GetBaseException().Message}; keeping the old file.");
            TryDelete(temp);
            return true;
        }

        SafeFileHandle newHandle;
        try
        {
            newHandle = File.OpenHandle(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            long newLength = RandomAccess.GetLength(newHandle);
            RandomAccess.Write(newHandle, pending.WrittenSpan, newLength);
            newLength += pending.WrittenCount;
            RandomAccess.FlushToDisk(newHandle);
            File.Move(temp, _path, overwrite: true);
            SyncDirectory();
            SafeFileHandle old;
            lock (_handleLock)
            {
                old = _handle;
                _handle = newHandle;
            }

            old.Dispose();
            _log($"Background AOF rewrite finished: {_length} -> {newLength} bytes.");
            _length = newLength;
            _sizeAfterLastRewrite = newLength;
            Rewrites++;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log($"WARNING: finishing the AOF rewrite failed: {ex.Message}; keeping the old file.");
            TryDelete(temp);
        }

        return true;
    }

    private void SyncDirectory()
    {
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_path));
        if (dir is null)
        {
            return;
        }

        try
        {
            using var d = File.OpenHandle(dir, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(d);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not every file system lets a directory be opened for fsync; the rename itself has happened.
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    private void FlushLoop()
    {
        while (!_stopFlusher.Wait(TimeSpan.FromSeconds(1)))
        {
            if (!_dirty || _policy != FsyncPolicy.EverySecond)
            {
                continue;
            }

            try
            {
                if (Volatile.Read(ref s_injectedFsyncFailures) > 0 && Interlocked.Decrement(ref s_injectedFsyncFailures) >= 0)
                {
                    throw new IOException("Input/output error (injected by DEBUG FAIL-FSYNC)", 5);
                }

                Sync();
                if (Volatile.Read(ref _fsyncError) is not null)
                {
                    Volatile.Write(ref _fsyncError, null);
                    _log("Background AOF fsync succeeded again: writes are accepted.");
                }
            }
            catch (Exception ex) when (ex is IOException)
            {
                // Like Redis (aof_bio_fsync_status): until an fsync succeeds, writes are refused with -MISCONF.
                _dirty = true; // try again in a second
                if (Volatile.Read(ref _fsyncError) is null)
                {
                    _log($"WARNING: background fsync of the AOF failed: {ex.Message}; refusing writes until an fsync succeeds.");
                }

                Volatile.Write(ref _fsyncError, DescribeError(ex));
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stopFlusher.Set();
        _flusher?.Join();
        try
        {
            _rewriteTask?.Wait();
        }
        catch (AggregateException)
        {
            // A failed rewrite leaves the old file in place.
        }

        if (_rewriteTempPath is not null)
        {
            TryDelete(_rewriteTempPath);
        }

        Sync();
        _handle.Dispose();
    }
}
