using System.Buffers;
using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.Time;

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
/// <para><b>The library's file API</b>: the file is an <see cref="FileWriter"/> opened through <c>env.Fs</c> and owned by a
/// switch (the server's while it loads, the store owner run's after a restart or a rewrite); renames, the directory fsync
/// and the removal of a rewrite's temporary file go through <see cref="EioPath"/>. Appends (to the page cache), the
/// fsync of <c>appendfsync always</c> outside a round, and the swap at the end of a rewrite run on the store's domain
/// between rounds, as Redis does them on its event loop; the round's fsync (<see cref="SyncAsync"/>), the everysec fsync
/// and the rewrite's own writing run on the library's system-thread offload.</para>
/// <para><b>Fibers</b>: <see cref="Start"/> forks, on the store owner run's switch, the everysec flusher (a daemon fiber
/// sleeping on the monotonic clock); <see cref="StartRewrite"/> forks the rewrite fiber on the same switch. Both end with
/// the run (the rewrite's system-thread call stops between chunks when cancelled).</para>
/// <para><b>Thread safety</b>: every member is called on the store owner's domain (the flusher and rewrite fibers too), so
/// no lock is needed; only the system-thread calls run elsewhere, and they touch the file and the snapshot alone.</para>
/// </remarks>
internal sealed class AppendOnlyFile : IDisposable
{
    private readonly EioPath _path;
    private readonly string _pathText;
    private readonly EioPath _directory;
    private volatile FsyncPolicy _policy; // CONFIG SET appendfsync changes it (SetPolicy)
    private readonly Action<string> _log;
    private FileWriter _file;
    private long _length;
    private long _sizeAfterLastRewrite;
    private volatile bool _dirty;
    private Switch? _switch; // the store owner run's (Start): owns the flusher, the rewrite fiber and the rewritten file
    private ArrayBufferWriter<byte>? _rewriteBuffer;
    private readonly EioPath _rewriteTempPath;
    private bool _rewriteRunning; // from StartRewrite until TryFinishRewrite takes the result
    private bool _rewriteFinished; // the rewrite fiber is done: _rewriteFile (null after a failure), _rewriteWritten, _rewriteError
    private FileWriter? _rewriteFile;
    private long _rewriteWritten;
    private string? _rewriteError;
    private bool _disposed;
    private long _fsyncs;
    private CancelContext? _rewriteCancel; // the running rewrite fiber's context (Dispose cancels it)
    private bool _rewriteAbandoned; // Dispose cancelled the running rewrite
    private EioPath? _liveTempPath; // CreateForFirstRewriteAsync: the live file is <path>.incr.tmp until the first rewrite lands

    /// <summary>The suffix of the live file while the first rewrite after <c>CONFIG SET appendonly yes</c> runs.</summary>
    public const string IncrTempSuffix = ".incr.tmp";

    /// <summary>The suffix of the file a background rewrite writes before it is renamed over the AOF.</summary>
    public const string RewriteTempSuffix = ".rewrite.tmp";

    private AppendOnlyFile(EioPath fs, string pathText, FsyncPolicy policy, FileWriter file, long length, Action<string> log)
    {
        _path = fs / pathText;
        _pathText = pathText;
        _rewriteTempPath = fs / (pathText + RewriteTempSuffix);
        _directory = fs / (System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(pathText)) ?? "/");
        _policy = policy;
        _file = file;
        _length = length;
        _sizeAfterLastRewrite = length;
        _log = log;
    }

    public string Path => _pathText;

    /// <summary>True while the file was created by <see cref="CreateForFirstRewriteAsync"/> and its first rewrite has not
    /// landed: appends go to <c>&lt;path&gt;.incr.tmp</c> and the file at <see cref="Path"/> is untouched.</summary>
    public bool WaitingFirstRewrite => _liveTempPath is not null;

    public long Length => _length;

    public FsyncPolicy Policy => _policy;

    /// <summary>Starts the everysec flusher on <paramref name="sw"/> (the store owner run's switch, on its domain), which
    /// also owns the rewrite fibers and the files they write. Call once, before the first round.</summary>
    public void Start(Switch sw, MonoClock clock)
    {
        _switch = sw;
        Fiber.ForkDaemon(sw, () => FlushLoopAsync(clock), "aof-everysec-fsync");
    }

    /// <summary>Changes the fsync policy (CONFIG SET appendfsync): takes effect from the next append; the everysec
    /// flusher fiber idles under the other policies. Call on the store owner.</summary>
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
    }

    public bool RewriteInProgress => _rewriteRunning;

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

    /// <summary>Opens (creating if missing) <paramref name="path"/> through <paramref name="fs"/>, owned by
    /// <paramref name="sw"/>, and replays it into <paramref name="store"/>.</summary>
    /// <param name="fs">The filesystem capability the path is relative to (<c>env.Fs</c>).</param>
    /// <param name="path">The file's path (relative to the current directory, or absolute).</param>
    /// <param name="sw">The switch that owns the open file (on the calling fiber's domain).</param>
    /// <param name="policy">The fsync policy.</param>
    /// <param name="store">The keyspace to replay into.</param>
    /// <param name="nowUnixMs">The wall-clock time for expiry, in Unix milliseconds.</param>
    /// <param name="limits">Parser limits.</param>
    /// <param name="log">Where warnings and the load summary go.</param>
    /// <param name="onSystemThread">Replay on a system thread (the server's first load: the domain keeps accepting
    /// connections, which answer -LOADING) or on the calling fiber, holding its domain (a restart of the store owner: the
    /// domain's connections only queue requests for the next run meanwhile, as before).</param>
    /// <param name="onOpened">Called on the calling fiber once the file is open, right before the replay (the caller
    /// raises its loading flag there, so that the open's offload does not expose it).</param>
    /// <param name="loadDelay">Waits this long on the system thread before the replay (fault injection for the -LOADING test).</param>
    /// <exception cref="AofCorruptException">The file is corrupt before its last command; the message has the byte offset.</exception>
    public static async Task<AppendOnlyFile> OpenAndLoadAsync(EioPath fs, string path, Switch sw, FsyncPolicy policy, KvStore store,
        long nowUnixMs, RespLimits limits, Action<string> log, bool onSystemThread = true, Action? onOpened = null, TimeSpan loadDelay = default)
    {
        var aofPath = fs / path;
        await RemoveLeftoversAsync(fs, path, log);
        var file = await aofPath.OpenWriteAsync(sw, FileCreate.IfMissing(NewFilePermissions));
        try
        {
            onOpened?.Invoke();
            long Replay()
            {
                if (loadDelay > TimeSpan.Zero)
                {
                    Thread.Sleep(loadDelay);
                }

                return Load(file, path, store, nowUnixMs, limits, log);
            }

            long length = onSystemThread ? await Systhread.RunAsync(Replay) : Replay();
            return new AppendOnlyFile(fs, path, policy, file, length, log);
        }
        catch
        {
            file.Close();
            throw;
        }
    }

    /// <summary>CONFIG SET appendonly yes: creates (or truncates) the temporary live file <c>&lt;path&gt;.incr.tmp</c> next to
    /// <paramref name="path"/> through <paramref name="fs"/>, owned by <paramref name="sw"/>, empty; the caller then starts a
    /// rewrite of the whole keyspace (Redis's startAppendOnly) and appends to the temporary file meanwhile. The file at
    /// <paramref name="path"/> (an older AOF, if any) is not touched until <see cref="TryFinishRewrite"/> renames the
    /// complete rewrite over it (as Redis 7 switches its manifest only when the first rewrite is done), so a crash during
    /// the wait leaves it as it was.</summary>
    public static async Task<AppendOnlyFile> CreateForFirstRewriteAsync(EioPath fs, string path, Switch sw, FsyncPolicy policy, Action<string> log)
    {
        var live = fs / (path + IncrTempSuffix);
        var file = await live.OpenWriteAsync(sw, FileCreate.OrTruncate(NewFilePermissions));
        return new AppendOnlyFile(fs, path, policy, file, 0, log) { _liveTempPath = live };
    }

    /// <summary>Removes the temporary files a killed process may have left next to <paramref name="path"/>
    /// (<c>.incr.tmp</c>, <c>.rewrite.tmp</c>): neither is ever loaded.</summary>
    private static async Task RemoveLeftoversAsync(EioPath fs, string path, Action<string> log)
    {
        foreach (string suffix in new[] { IncrTempSuffix, RewriteTempSuffix })
        {
            var leftover = fs / (path + suffix);
            try
            {
                if (await leftover.ExistsAsync())
                {
                    await leftover.UnlinkAsync(missingOk: true);
                    log($"Removed the leftover temporary file {path}{suffix} (an interrupted AOF rewrite; never loaded).");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log($"WARNING: could not remove the leftover {path}{suffix}: {ex.Message}");
            }
        }
    }

    // File.OpenHandle's mode for a new file (before the umask), as before.
    private const UnixFileMode NewFilePermissions = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead |
        UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>Replays <paramref name="file"/> (blocking; on a system thread); cuts a torn tail off. Returns the valid length.</summary>
    private static long Load(FileWriter file, string path, KvStore store, long nowUnixMs, RespLimits limits, Action<string> log)
    {
        var stream = new EioFileReadStream(file);
        var result = AofLoader.Load(stream, store, nowUnixMs, limits);
        if (result.TotalLength == 0)
        {
            return 0;
        }

        if (result.IsTruncated)
        {
            log($"WARNING: the append-only file {path} ends with an incomplete command (a torn write): " +
                $"truncating it from {result.TotalLength} to {result.ValidLength} bytes.");
            file.SetLength(result.ValidLength);
            file.Sync();
        }

        log($"DB loaded from append only file {path}: {result.CommandCount} commands, {store.Count} keys.");
        return result.ValidLength;
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
            _file.WriteAt(_length, data);
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
            _file.WriteAt(_length, "\n"u8);
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
            _file.SetLength(length);
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

    /// <summary>fsyncs now, on the store's domain (<see cref="FsyncPolicy.Always"/> outside a round, a policy change, and at shutdown).</summary>
    /// <remarks>Every fsync of the AOF is an <c>fdatasync</c>, as Redis's (<c>redis_fsync</c> on Linux): the file's data
    /// and its size are made durable, not its timestamps (which the replay does not need).</remarks>
    public void Sync()
    {
        _dirty = false;
        _file.DataSync();
        Interlocked.Increment(ref _fsyncs);
    }

    /// <summary>fsyncs with <see cref="FileWriter.SyncAsync"/> (on the io_uring backend's ring, else the library's blocking
    /// offload, a system thread); the store's domain runs its other fibers meanwhile (the round's fsync under <see cref="FsyncPolicy.Always"/>).</summary>
    public async Task SyncAsync()
    {
        _dirty = false;
        await _file.DataSyncAsync(); // fdatasync, as Sync
        Interlocked.Increment(ref _fsyncs);
    }

    /// <summary>True when the file has grown enough since the last rewrite (Redis's auto-aof-rewrite rule).</summary>
    public bool ShouldRewrite(int percentage, long minSize)
    {
        if (percentage <= 0 || _rewriteRunning || _length < minSize)
        {
            return false;
        }

        long baseSize = Math.Max(1, _sizeAfterLastRewrite);
        return (_length - baseSize) * 100 / baseSize >= percentage;
    }

    /// <summary>Starts writing a compact file from <paramref name="snapshot"/>: a fiber on the run's switch opens the
    /// temporary file and writes it on a system thread; appends made meanwhile are buffered.</summary>
    /// <exception cref="InvalidOperationException"><see cref="Start"/> was not called.</exception>
    public void StartRewrite(KvSnapshotEntry[] snapshot)
    {
        if (_rewriteRunning)
        {
            return;
        }

        var sw = _switch ?? throw new InvalidOperationException("AppendOnlyFile.Start was not called");
        _rewriteBuffer = new ArrayBufferWriter<byte>(64 * 1024);
        _rewriteRunning = true;
        _rewriteFinished = false;
        _rewriteFile = null;
        _rewriteError = null;
        var temp = _rewriteTempPath;
        _log($"Background append only file rewriting started ({snapshot.Length} keys).");
        Fiber.ForkDaemon(sw, async () =>
        {
            try
            {
                // A context of its own, so that Dispose (CONFIG SET appendonly no, the run's end) can stop it, as Redis
                // kills the rewrite child in stopAppendOnly.
                await Cancel.SubAsync(async ctx =>
                {
                    _rewriteCancel = ctx;
                    await RewriteAsync();
                });
            }
            catch (CancelledException) when (_rewriteAbandoned)
            {
                // Dispose cancelled it: the fiber ends (its temporary file is removed).
            }
            finally
            {
                _rewriteCancel = null;
            }

            async Task RewriteAsync()
            {
                FileWriter? file = null;
                try
                {
                    file = await temp.OpenWriteAsync(sw, FileCreate.OrTruncate(NewFilePermissions));
                    var target = file;
                    long written = await Systhread.RunAsync(token =>
                    {
                        HoldForTest(token);
                        var chunk = new ArrayBufferWriter<byte>(1 << 20);
                        const int KeysPerChunk = 4096;
                        int db = -1;
                        long offset = 0;
                        for (int i = 0; i < snapshot.Length; i += KeysPerChunk)
                        {
                            token.ThrowIfCancellationRequested(); // the run is ending: abandon the rewrite
                            chunk.ResetWrittenCount();
                            db = AofRewriter.Write(new ArraySegment<KvSnapshotEntry>(snapshot, i, Math.Min(KeysPerChunk, snapshot.Length - i)), chunk, db);
                            target.WriteAt(offset, chunk.WrittenSpan);
                            offset += chunk.WrittenCount;
                        }

                        target.Sync();
                        return offset;
                    });
                    if (_disposed)
                    {
                        // The file was closed meanwhile: nothing will finish this rewrite.
                        file.Close();
                        await TryDeleteAsync(temp);
                        return;
                    }

                    _rewriteFile = file;
                    _rewriteWritten = written;
                }
                catch (Exception ex) when (ex is not CancelledException)
                {
                    _rewriteError = ex.Message;
                    file?.Close();
                }
                catch (CancelledException)
                {
                    // The run ended first: nothing will finish this rewrite.
                    _rewriteError = "cancelled: the store owner run ended";
                    file?.Close();
                    await TryDeleteAsync(temp);
                    throw;
                }
                finally
                {
                    _rewriteFinished = true;
                }
            }
        }, "aof-rewrite");
    }

    // EIOSHARP_KV_TEST_REWRITE_DELAY_MS: every rewrite waits this long before writing (fault injection: a test kills the
    // process while the first rewrite after CONFIG SET appendonly yes runs).
    private static readonly int s_rewriteDelayMs =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_TEST_REWRITE_DELAY_MS"), out int d) && d > 0 ? d : 0;

    private static void HoldForTest(CancellationToken token)
    {
        if (s_rewriteDelayMs > 0)
        {
            token.WaitHandle.WaitOne(s_rewriteDelayMs);
            token.ThrowIfCancellationRequested();
        }
    }

    /// <summary>If the background rewrite has finished, appends what was written meanwhile and atomically replaces the file.</summary>
    /// <returns>True if a rewrite was completed (or abandoned after a failure) by this call.</returns>
    public bool TryFinishRewrite()
    {
        if (!_rewriteRunning || !_rewriteFinished || _disposed)
        {
            return false;
        }

        var temp = _rewriteTempPath;
        var pending = _rewriteBuffer!;
        var newFile = _rewriteFile;
        _rewriteRunning = false;
        _rewriteFinished = false;
        _rewriteFile = null;
        _rewriteBuffer = null;
        if (newFile is null)
        {
            _log(_liveTempPath is null
                ? $"WARNING: background AOF rewrite failed: {_rewriteError}; keeping the old file."
                : $"WARNING: background AOF rewrite failed: {_rewriteError}; appending to the temporary file until a rewrite succeeds.");
            DeleteLater(temp);
            return true;
        }

        try
        {
            long newLength = _rewriteWritten;
            newFile.WriteAt(newLength, pending.WrittenSpan);
            newLength += pending.WrittenCount;
            newFile.Sync();
            temp.Rename(_path);
            SyncDirectory();
            var old = _file;
            _file = newFile;
            old.Close();
            if (_liveTempPath is { } liveTemp)
            {
                // The first rewrite after CONFIG SET appendonly yes: the AOF now has the whole keyspace; the temporary live
                // file (its appends are in the rewrite's buffer, written above) is no longer needed.
                _liveTempPath = null;
                DeleteLater(liveTemp);
            }

            _log($"Background AOF rewrite finished: {_length} -> {newLength} bytes.");
            _length = newLength;
            _sizeAfterLastRewrite = newLength;
            Rewrites++;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _log($"WARNING: finishing the AOF rewrite failed: {ex.Message}; keeping the old file.");
            newFile.Close();
            DeleteLater(temp);
        }

        return true;
    }

    private void SyncDirectory()
    {
        try
        {
            _directory.SyncDirectory();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not every file system lets a directory be opened for fsync; the rename itself has happened.
        }
    }

    /// <summary>Removes a rewrite's temporary file from a fiber on the run's switch (never blocks the caller).</summary>
    private void DeleteLater(EioPath temp)
    {
        if (_switch is { } sw)
        {
            try
            {
                Fiber.Fork(sw, () => TryDeleteAsync(temp), "aof-rewrite-cleanup");
            }
            catch (InvalidOperationException)
            {
                // The run's switch has finished: the file stays (the next rewrite truncates it).
            }
        }
    }

    private static async Task TryDeleteAsync(EioPath path)
    {
        try
        {
            await Cancel.ProtectAsync(() => path.UnlinkAsync()); // also when the run is ending
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The everysec flusher: a daemon fiber on the run's switch; every second on the monotonic clock, fsyncs on the
    /// library's offload if anything was appended since the last fsync.</summary>
    private async Task FlushLoopAsync(MonoClock clock)
    {
        while (!_disposed)
        {
            await clock.SleepAsync(TimeSpan.FromSeconds(1));
            if (_disposed)
            {
                return;
            }

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

                await SyncAsync();
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
                if (_disposed)
                {
                    return;
                }

                _dirty = true; // the file was swapped by a rewrite meanwhile: sync the new one next time
            }
        }
    }

    /// <summary>Final fsync and close, on the store's domain. A rewrite still running is abandoned (its fiber ends with the
    /// run's switch and removes its temporary file).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_rewriteRunning && !_rewriteFinished && _rewriteCancel is { } rewrite)
        {
            _rewriteAbandoned = true;
            rewrite.Cancel(new ObjectDisposedException(nameof(AppendOnlyFile), "the append-only file was closed"));
        }

        if (_rewriteRunning && _rewriteFinished)
        {
            // Finished but not taken (TryFinishRewrite runs first when it can): drop the compacted file.
            _rewriteFile?.Close();
            _rewriteFile = null;
            DeleteLater(_rewriteTempPath);
        }

        try
        {
            Sync();
        }
        finally
        {
            _file.Close();
            if (_liveTempPath is { } liveTemp)
            {
                // Closed before the first rewrite landed (CONFIG SET appendonly no, the run's end, shutdown): the file at
                // Path stays as it was, as Redis's stopAppendOnly leaves its old manifest; drop the temporary live file.
                _liveTempPath = null;
                DeleteLater(liveTemp);
            }
        }
    }
}
