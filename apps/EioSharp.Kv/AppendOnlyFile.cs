using System.Buffers;
using System.Globalization;
using System.Text;
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

/// <summary>Where the multi-part AOF lives: <c>&lt;dir&gt;/&lt;appenddirname&gt;/</c> with the manifest, base and incremental
/// files named after <c>appendfilename</c>, as redis-server 7.0 lays it out.</summary>
/// <param name="Fs">The filesystem capability (<c>env.Fs</c>).</param>
/// <param name="DataDir">Redis's <c>dir</c>.</param>
/// <param name="DirName">Redis's <c>appenddirname</c>.</param>
/// <param name="FileName">Redis's <c>appendfilename</c>.</param>
internal sealed record AofPaths(EioPath Fs, string DataDir, string DirName, string FileName)
{
    public static AofPaths From(EioPath fs, KvServerConfig c) => new(fs, c.Directory, c.AppendDirName, c.AppendFileName);

    /// <summary>The AOF directory's path text.</summary>
    public string DirText => System.IO.Path.Combine(DataDir, DirName);

    public EioPath Dir => Fs / DirText;

    /// <summary>A file inside the AOF directory.</summary>
    public EioPath InDir(string name) => Fs / System.IO.Path.Combine(DataDir, DirName, name);

    /// <summary>A pre-7 single AOF: <c>&lt;dir&gt;/&lt;appendfilename&gt;</c> (upgraded into the directory at start).</summary>
    public EioPath Legacy => Fs / System.IO.Path.Combine(DataDir, FileName);

    public string ManifestName => AofManifest.ManifestName(FileName);

    public EioPath Manifest => InDir(ManifestName);

    public string TempIncrName => AofManifest.TempIncrName(FileName);

    /// <summary>The file a background rewrite writes in <c>dir</c> before it is renamed into the AOF directory as the new
    /// base (redis's <c>temp-rewriteaof-bg-&lt;pid&gt;.aof</c>).</summary>
    public EioPath RewriteTemp => Fs / System.IO.Path.Combine(DataDir, string.Create(CultureInfo.InvariantCulture, $"temp-rewriteaof-bg-{Environment.ProcessId}.aof"));
}

/// <summary>
/// The append-only file in Redis 7's multi-part layout: a manifest, a base file (RDB or commands) and incremental files
/// in <c>&lt;dir&gt;/&lt;appenddirname&gt;</c>. Replay on start (a torn tail of the last file is truncated with a warning
/// under <c>aof-load-truncated yes</c>, corruption elsewhere refuses to start), the upgrade of a pre-7 single file, appends
/// from the store owner to the last incremental file, fsync by policy, and background rewrite: a new incremental file is
/// opened and written to the manifest first, the new base is written from a snapshot, then the manifest is atomically
/// replaced and the files it made history are deleted (unless <c>aof-disable-auto-gc</c>).
/// </summary>
/// <remarks>
/// <para><b>The library's file API</b>: every file is an <see cref="FileWriter"/>/<see cref="FileReader"/> opened through
/// <c>env.Fs</c> and owned by a switch (the server's while it loads, the store owner run's after a restart or a rewrite);
/// renames, the manifest's atomic replacement (<see cref="EioPath.Replace"/>: temporary file, fsync, rename, directory
/// fsync) and removals go through <see cref="EioPath"/>. Appends (to the page cache), the fsync of <c>appendfsync always</c>
/// outside a round, the switch to a new incremental file and the manifest updates run on the store's domain between
/// rounds, as Redis does them on its event loop; the round's fsync (<see cref="SyncAsync"/>), the everysec fsync and the
/// rewrite's own writing run on the library's system-thread offload.</para>
/// <para><b>Fibers</b>: <see cref="Start"/> forks, on the store owner run's switch, the everysec flusher; a rewrite forks
/// the fiber that opens the next incremental file and the one that writes the base, on the same switch. All end with the run.</para>
/// <para><b>Thread safety</b>: every member is called on the store owner's domain (the fibers too), so no lock is needed;
/// only the system-thread calls run elsewhere, and they touch their file and the snapshot alone.</para>
/// </remarks>
internal sealed class AppendOnlyFile : IDisposable
{
    /// <summary>Redis's REDIS_AUTOSYNC_BYTES: the rewrite fsyncs every this many bytes under aof-rewrite-incremental-fsync.</summary>
    public const long IncrementalFsyncBytes = 4L * 1024 * 1024;

    private readonly AofPaths _paths;
    private readonly Func<KvServerConfig> _config;
    private volatile FsyncPolicy _policy; // CONFIG SET appendfsync changes it (SetPolicy)
    private readonly Action<string> _log;
    private AofManifest _manifest;
    private FileWriter _file; // the last incremental file (or the temporary one while waiting for the first rewrite)
    private MappedTailAppender _tail; // appends to _file: stores into a mapping of its tail (see OpenTail)
    private string _fileName;
    private long _incrLength; // bytes in _file (aof_last_incr_size)
    private long _otherLength; // bytes in the base and the earlier incremental files
    private long _rewriteBaseSize; // aof_rewrite_base_size
    private volatile bool _dirty;
    private Switch? _switch; // the store owner run's (Start): owns the flusher, the rewrite fibers and their files
    private bool _waitFirstRewrite; // CONFIG SET appendonly yes: appends go to temp-<name>.incr until the first rewrite lands
    private long _currentTimestamp; // the last #TS annotation written (aof-timestamp-enabled)

    // The rewrite: Requested (StartRewrite) -> the next incremental file is open (_nextIncr) -> Writing (TryBeginRewrite:
    // switched, the snapshot is being written) -> Finished (the fiber is done) -> TryFinishRewrite.
    private bool _rewriteRequested;
    private bool _rewriteOpening;
    private FileWriter? _nextIncr;
    private string? _nextIncrName;
    private AofManifest? _nextManifest;
    private bool _rewriteWriting;
    private bool _rewriteFinished;
    private bool _rewriteOk;
    private bool _rewriteRdb;
    private long _rewriteWritten;
    private long _rewriteIncrementalFsyncs;
    private long _rewriteWriterCpuNs; // the writer thread's CPU time for the last rewrite's base, for its log line (h208)
    private long _rewriteWriterUserNs, _rewriteWriterSystemNs; // its user and system parts (h216, §213)
    private double _rewriteWriterWallMs; // and the base's wall time: the copy-on-write window of the store's SETs (§213)
    private string? _rewriteError;
    private CancelContext? _rewriteCancel;
    private bool _rewriteAbandoned;
    private bool _disposed;
    private long _fsyncs;

    private AppendOnlyFile(AofPaths paths, Func<KvServerConfig> config, FsyncPolicy policy, AofManifest manifest, FileWriter file, string fileName,
        long incrLength, long otherLength, long baseSize, Action<string> log)
    {
        _paths = paths;
        _config = config;
        _policy = policy;
        _manifest = manifest;
        _file = file;
        _tail = OpenTail(file, incrLength, policy);
        _fileName = fileName;
        _incrLength = incrLength;
        _otherLength = otherLength;
        _rewriteBaseSize = baseSize;
        _log = log;
    }

    /// <summary>The AOF directory (for the log).</summary>
    public string Path => _paths.DirText;

    /// <summary>The file appended to now (inside <see cref="Path"/>).</summary>
    public string CurrentFileName => _fileName;

    /// <summary>True while the file was created by <see cref="CreateForFirstRewriteAsync"/> and its first rewrite has not
    /// landed: appends go to <c>temp-&lt;appendfilename&gt;.incr</c> and the manifest is untouched.</summary>
    public bool WaitingFirstRewrite => _waitFirstRewrite;

    /// <summary>INFO's aof_current_size: the base and the incremental files, in bytes.</summary>
    public long Length => _otherLength + _incrLength;

    public FsyncPolicy Policy => _policy;

    public bool RewriteInProgress => _rewriteRequested || _rewriteWriting || _rewriteFinished;

    public long Rewrites { get; private set; }

    /// <summary>INFO's aof_base_size: after a rewrite, the new base plus what the incremental file held when it finished;
    /// after a load, the base file's size (as redis 7.0).</summary>
    public long BaseSize => _rewriteBaseSize;

    /// <summary>fsyncs done since start (any thread).</summary>
    public long Fsyncs => Interlocked.Read(ref _fsyncs);

    /// <summary>Successful <see cref="Append"/> calls with data (the file writes of commands: one per store round, or per
    /// held cycle of rounds; a <c>#TS</c> annotation's extra write not counted); owner's domain only. For tests and
    /// diagnostics.</summary>
    public long Appends { get; private set; }

    /// <summary>fsyncs skipped because a rewrite was running under no-appendfsync-on-rewrite.</summary>
    public long FsyncsSkippedForRewrite { get; private set; }

    /// <summary>The manifest in force (tests, INFO).</summary>
    public AofManifest Manifest => _manifest;

    /// <summary>no-appendfsync-on-rewrite: while the rewrite writes its base, the policy's fsyncs are skipped (Redis's
    /// flushAppendOnlyFile returns before fsync while a child is active).</summary>
    public bool SkipFsyncForRewrite => _rewriteWriting && _config().NoAppendFsyncOnRewrite;

    /// <summary>Starts the everysec flusher on <paramref name="sw"/> (the store owner run's switch, on its domain), which
    /// also owns the rewrite fibers and the files they write. Call once, before the first round.</summary>
    public void Start(Switch sw, MonoClock clock)
    {
        _switch = sw;
        Fiber.ForkDaemon(sw, () => FlushLoopAsync(clock), "aof-everysec-fsync");
    }

    /// <summary>Changes the fsync policy (CONFIG SET appendfsync): takes effect from the next append. Call on the store owner.</summary>
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

        bool wasAlways = _policy == FsyncPolicy.Always;
        _policy = policy;
        if (wasAlways != (policy == FsyncPolicy.Always) && !_disposed)
        {
            // The appender for the new policy (see OpenTail): the old one cut to the logical length first.
            long length = _tail.Length;
            CloseTail(_tail, _fileName);
            _tail = OpenTail(_file, length, policy);
        }
    }

    public static FsyncPolicy ParsePolicy(string text) => text switch
    {
        "always" => FsyncPolicy.Always,
        "no" => FsyncPolicy.No,
        _ => FsyncPolicy.EverySecond,
    };

    // File.OpenHandle's mode for a new file (before the umask), as before.
    private const UnixFileMode NewFilePermissions = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead |
        UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>Whether there is an AOF to load: a manifest naming a base or incremental file, or a pre-7 single file in
    /// <c>dir</c> (which the load upgrades).</summary>
    /// <exception cref="AofCorruptException">The manifest is malformed.</exception>
    public static async Task<bool> ExistsAsync(AofPaths paths)
    {
        if (await paths.Legacy.IsFileAsync())
        {
            return true;
        }

        var manifest = await LoadManifestAsync(paths); // a malformed manifest refuses to start (AofCorruptException)
        return manifest.Base is not null || manifest.Incr.Count > 0;
    }

    /// <summary>Reads the manifest if the directory has one (Redis's aofLoadManifestFromDisk); an empty manifest otherwise.</summary>
    /// <exception cref="AofCorruptException">The manifest is malformed (Redis's texts, with the line).</exception>
    private static async Task<AofManifest> LoadManifestAsync(AofPaths paths)
    {
        if (!await paths.Dir.IsDirectoryAsync() || !await paths.Manifest.ExistsAsync())
        {
            return new AofManifest();
        }

        try
        {
            return AofManifest.Parse(await paths.Manifest.LoadStringAsync());
        }
        catch (AofManifestException e)
        {
            string where = e.LineText is null ? "" : $"Reading the manifest file, at line {e.Line}: '{e.LineText}': ";
            throw new AofCorruptException($"FATAL AOF MANIFEST FILE ERROR in {paths.ManifestName}: {where}{e.Message}");
        }
    }

    /// <summary>Writes the manifest atomically and durably (Redis's persistAofManifest: a temporary file fsynced, renamed
    /// over the manifest, the directory fsynced), on the calling thread, when it is dirty.</summary>
    private static void PersistManifest(AofPaths paths, AofManifest manifest)
    {
        if (!manifest.Dirty)
        {
            return;
        }

        paths.Manifest.Replace(Encoding.UTF8.GetBytes(manifest.Format()), NewFilePermissions);
        SyncDirectory(paths.Dir);
        manifest.Dirty = false;
    }

    /// <summary>Opens the AOF through <paramref name="paths"/> and replays it into <paramref name="store"/>, as redis 7.0
    /// starts: the manifest is read; a pre-7 single file in <c>dir</c> is moved into the directory as its base (the
    /// upgrade); the base (RDB or commands, or an RDB preamble followed by commands) and the incremental files are replayed
    /// in order; with neither, a base is written from <paramref name="store"/> (what the RDB file gave, or nothing); the
    /// last incremental file (a new one if there is none) is opened for appending and the manifest written.</summary>
    /// <param name="paths">Where the files are.</param>
    /// <param name="sw">The switch that owns the open files (on the calling fiber's domain).</param>
    /// <param name="policy">The fsync policy.</param>
    /// <param name="config">The live configuration (aof-load-truncated, aof-use-rdb-preamble... are read when used).</param>
    /// <param name="store">The keyspace to replay into.</param>
    /// <param name="nowUnixMs">The wall-clock time for expiry, in Unix milliseconds.</param>
    /// <param name="limits">Parser limits.</param>
    /// <param name="log">Where warnings and the load summary go.</param>
    /// <param name="onSystemThread">Replay on a system thread (the server's first load: the domain keeps accepting
    /// connections, which answer -LOADING) or on the calling fiber, holding its domain.</param>
    /// <param name="onOpened">Called on the calling fiber once the files are open, right before the replay.</param>
    /// <param name="loadDelay">Waits this long on the system thread before the replay (fault injection for the -LOADING test).</param>
    /// <exception cref="AofCorruptException">A file is corrupt before its last command, a file the manifest names is
    /// missing, the manifest is malformed, or the last file is truncated under aof-load-truncated no.</exception>
    public static async Task<AppendOnlyFile> OpenAndLoadAsync(AofPaths paths, Switch sw, FsyncPolicy policy, Func<KvServerConfig> config, KvStore store,
        long nowUnixMs, RespLimits limits, Action<string> log, bool onSystemThread = true, Action? onOpened = null, TimeSpan loadDelay = default)
    {
        await RemoveLeftoversAsync(paths, log);
        AofManifest manifest = await LoadManifestAsync(paths);
        await UpgradeIfNeededAsync(paths, manifest, log);

        // The files to replay, in order: the base, then the incremental files (the last may be truncated).
        var parts = new List<AofFileInfo>();
        if (manifest.Base is { } baseInfo)
        {
            parts.Add(baseInfo);
        }

        parts.AddRange(manifest.Incr);
        var readers = new List<EioFile>();
        FileWriter? last = null;
        try
        {
            for (int i = 0; i < parts.Count; i++)
            {
                EioPath path = paths.InDir(parts[i].FileName);
                if (!await path.IsFileAsync())
                {
                    throw new AofCorruptException($"Unable to obtain the AOF file {parts[i].FileName} length. stat: No such file or directory " +
                        $"(it is in the manifest {paths.ManifestName} but not in {paths.DirText})");
                }

                if (i == parts.Count - 1)
                {
                    last = await path.OpenWriteAsync(sw, FileCreate.Never);
                    readers.Add(last);
                }
                else if (parts[i].Type == AofFileType.Incr)
                {
                    // Writable so that a zero tail a kill left on it (between a rewrite's manifest and the old file's
                    // cut) can be cut as the last file's is (§210): redis-check-aof and redis-server refuse it otherwise.
                    readers.Add(await path.OpenWriteAsync(sw, FileCreate.Never));
                }
                else
                {
                    readers.Add(await path.OpenReadAsync(sw));
                }
            }

            var sizes = new long[parts.Count];
            for (int i = 0; i < parts.Count; i++)
            {
                sizes[i] = (await readers[i].StatAsync()).Size;
            }

            onOpened?.Invoke();
            KvServerConfig c = config();
            (long Total, long LastLength, long BaseLength) Replay()
            {
                if (loadDelay > TimeSpan.Zero)
                {
                    Thread.Sleep(loadDelay);
                }

                long total = 0, lastLength = 0, baseLength = 0;
                for (int i = 0; i < parts.Count; i++)
                {
                    bool isLast = i == parts.Count - 1;
                    long length = LoadOne(readers[i], sizes[i], parts[i], isLast, c.AofLoadTruncated, store, nowUnixMs, limits, log);
                    total += length;
                    if (isLast)
                    {
                        lastLength = length;
                    }

                    if (parts[i].Type == AofFileType.Base)
                    {
                        baseLength = length;
                    }
                }

                return (total, lastLength, baseLength);
            }

            var (totalLength, lastFileLength, baseLength) = parts.Count == 0 ? (0L, 0L, 0L) : onSystemThread ? await Systhread.RunAsync(Replay) : Replay();
            if (parts.Count > 0)
            {
                log($"DB loaded from append only file {paths.DirText}/{paths.ManifestName}: {parts.Count} file(s), {totalLength} bytes, {store.Count} keys.");
            }

            // Redis's aofOpenIfNeededOnServerStart.
            await paths.Dir.MakeDirectoriesAsync(KvServer.DataDirectoryPermissions, existsOk: true);
            if (manifest.Base is null && manifest.Incr.Count == 0)
            {
                string baseName = manifest.NewBase(paths.FileName, c.AofUseRdbPreamble);
                baseLength = await WriteBaseAtStartAsync(paths, sw, baseName, c, store, nowUnixMs);
                totalLength = baseLength;
                log($"Creating AOF base file {baseName} on server start");
            }

            bool hadIncr = manifest.Incr.Count > 0;
            string incrName = manifest.LastIncrOrNew(paths.FileName);
            FileWriter file;
            long incrLength;
            if (hadIncr && last is not null)
            {
                file = last;
                incrLength = lastFileLength;
                readers.Remove(last);
                last = null;
            }
            else
            {
                file = await paths.InDir(incrName).OpenWriteAsync(sw, FileCreate.IfMissing(NewFilePermissions));
                incrLength = (await file.StatAsync()).Size;
                totalLength += incrLength;
            }

            try
            {
                PersistManifest(paths, manifest);
            }
            catch
            {
                file.Close();
                throw;
            }

            log(hadIncr ? $"Opening AOF incr file {incrName} on server start" : $"Creating AOF incr file {incrName} on server start");
            return new AppendOnlyFile(paths, config, policy, manifest, file, incrName, incrLength, totalLength - incrLength, baseLength, log);
        }
        finally
        {
            foreach (var reader in readers)
            {
                reader.Close();
            }
        }
    }

    /// <summary>Redis's upgrade from a pre-7 single AOF (loadAppendOnlyFiles / aofUpgradePrepare): when <c>dir</c> has
    /// <c>appendonly.aof</c> and the directory has no manifest (or only an upgraded base not moved yet), the manifest is
    /// written with that file as its base, then the file is moved into the directory. A crash at any step is retried at
    /// the next start.</summary>
    private static async Task UpgradeIfNeededAsync(AofPaths paths, AofManifest manifest, Action<string> log)
    {
        if (!await paths.Legacy.IsFileAsync())
        {
            return;
        }

        bool upgrade = !await paths.Dir.IsDirectoryAsync()
            || (manifest.Base is null && manifest.Incr.Count == 0)
            || (manifest.Base is not null && manifest.Incr.Count == 0 && manifest.Base.FileName == paths.FileName && !await paths.InDir(paths.FileName).ExistsAsync());
        if (!upgrade)
        {
            return;
        }

        await paths.Dir.MakeDirectoriesAsync(KvServer.DataDirectoryPermissions, existsOk: true);
        manifest.SetUpgradedBase(paths.FileName);
        PersistManifest(paths, manifest);
        await paths.Legacy.RenameAsync(paths.InDir(paths.FileName));
        SyncDirectory(paths.Dir); // the moved file's new entry
        SyncDirectory(paths.Fs / paths.DataDir); // and its old one gone
        log($"Successfully migrated an old-style AOF file ({paths.FileName}) into the AOF directory ({paths.DirName}).");
    }

    /// <summary>Replays one part (blocking; on a system thread). An RDB file (it starts with <c>REDIS</c>) is loaded with
    /// the RDB loader and any commands after it replayed (an old-style preamble); a torn tail is cut off when allowed.
    /// Returns the part's (valid) length.</summary>
    private static long LoadOne(EioFile file, long fileLength, AofFileInfo part, bool isLast, bool loadTruncated, KvStore store, long nowUnixMs, RespLimits limits, Action<string> log)
    {
        string name = part.FileName;
        Span<byte> sig = stackalloc byte[5];
        int n = file.ReadAt(0, sig);
        long start = 0;
        if (n == 5 && sig.SequenceEqual("REDIS"u8))
        {
            try
            {
                var rdb = KvRdb.Load(new EioFileReadStream(file), fileLength, store, nowUnixMs);
                start = rdb.BytesRead;
            }
            catch (RdbFormatException e)
            {
                throw new AofCorruptException(part.Type == AofFileType.Base
                    ? $"Error reading the RDB base file {name}, AOF loading aborted: {e.Message}"
                    : $"Error reading the RDB preamble of the AOF file {name}, AOF loading aborted: {e.Message}", e);
            }
        }

        // An incremental file appended through a mapped tail and not closed cleanly (a crash) ends in the zeros reserved
        // ahead of its last record: a record always ends with '\n', so they are cut off before the commands are read.
        long end = part.Type == AofFileType.Base ? fileLength : ZeroTailStart(file, fileLength);
        AofLoadResult result;
        try
        {
            result = AofLoader.Load(new EioFileReadStream(file, start, end), store, nowUnixMs, limits);
        }
        catch (AofCorruptException e)
        {
            throw new AofCorruptException(start + e.Offset, $"{name}: {e.Message}", e);
        }

        long valid = start + result.ValidLength;
        if (result.IsTruncated)
        {
            long total = fileLength;
            if (!isLast)
            {
                throw new AofCorruptException(valid, $"{name} is truncated and it is not the last file (Fatal error: the truncated file is not the last file)");
            }

            if (!loadTruncated)
            {
                throw new AofCorruptException(valid, $"Unexpected end of file reading the append only file {name}. You can: " +
                    "1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. " +
                    "2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.");
            }

            if (result.TransactionReverted)
            {
                log($"Revert incomplete MULTI/EXEC transaction in AOF file {name}");
            }

            log($"!!! Warning: short read while loading the AOF file {name}!!!");
            log($"!!! Truncating the AOF {name} at offset {valid} !!!");
            log($"WARNING: the append-only file {name} ends with an incomplete command (a torn write): " +
                $"truncating it from {total} to {valid} bytes.");
            if (file is not FileWriter writer)
            {
                throw new AofCorruptException(valid, $"{name} is truncated and could not be opened for writing");
            }

            writer.SetLength(valid);
            writer.Sync();
            log($"AOF {name} loaded anyway because aof-load-truncated is enabled");
        }
        else if (end < fileLength)
        {
            // Not a torn record: the reserved tail of a server that did not close the file (cut whatever aof-load-truncated says).
            log($"!!! Warning: short read while loading the AOF file {name}!!!");
            log($"The append-only file {name} ends with {fileLength - end} zero bytes after its last command at offset {end} " +
                "(the space reserved ahead of a mapped tail; the server was not shut down cleanly).");
            if (file is FileWriter writer) // the last file, or an earlier incremental one (§210)
            {
                log($"!!! Truncating the AOF {name} at offset {end} !!!");
                writer.SetLength(end);
                writer.Sync();
            }
        }

        return valid;
    }

    /// <summary>Where the zero bytes at the end of <paramref name="file"/> start (<paramref name="fileLength"/> when it does
    /// not end in zero): one past its last non-zero byte, read backwards in 64 KiB blocks. Blocking (the loader's system thread).</summary>
    internal static long ZeroTailStart(EioFile file, long fileLength)
    {
        byte[] block = new byte[64 * 1024];
        long end = fileLength;
        while (end > 0)
        {
            int n = (int)Math.Min(block.Length, end);
            long from = end - n;
            int read = 0;
            while (read < n)
            {
                int r = file.ReadAt(from + read, block.AsSpan(read, n - read));
                if (r == 0)
                {
                    return fileLength; // shorter than its size said: leave it to the loader
                }

                read += r;
            }

            int last = block.AsSpan(0, n).LastIndexOfAnyExcept((byte)0);
            if (last >= 0)
            {
                return from + last + 1;
            }

            end = from;
        }

        return 0;
    }

    /// <summary>Whether a base file is written past the page cache (<see cref="UncachedWriter"/>, where the filesystem
    /// allows it): EIOSHARP_KV_AOF_BASE_DIRECT=0 turns it off (A/B measurements, tests).</summary>
    internal static bool BaseDirect { get; set; } = Environment.GetEnvironmentVariable("EIOSHARP_KV_AOF_BASE_DIRECT") != "0";

    /// <summary>Whether a base written past the page cache still fdatasyncs every 4 MB under aof-rewrite-incremental-fsync
    /// (EIOSHARP_KV_AOF_BASE_DIRECT_FSYNC=1, the behaviour before §216, for A/B measurements and tests). By default it
    /// does not: the directive bounds the dirty pages a rewrite leaves for its final fsync, and a direct write leaves none
    /// (it returns once the device has its blocks); the final fsync before the rename stays. Measured in the 1 KB -P16
    /// SET row: the writer's thread 0.79x CPU per base of ~100k keys (24 fdatasyncs fewer), 0.60x wall.</summary>
    internal static bool DirectIncrementalFsync { get; set; } = Environment.GetEnvironmentVariable("EIOSHARP_KV_AOF_BASE_DIRECT_FSYNC") == "1";

    /// <summary>Writes the keyspace as the first base at start (Redis's rewriteAppendOnlyFile from aofOpenIfNeededOnServerStart):
    /// to the temporary file, fsynced, renamed into the directory.</summary>
    private static async Task<long> WriteBaseAtStartAsync(AofPaths paths, Switch sw, string baseName, KvServerConfig c, KvStore store, long nowUnixMs)
    {
        var temp = paths.RewriteTemp;
        var file = await temp.OpenWriteAsync(sw, FileCreate.OrTruncate(NewFilePermissions));
        long written;
        try
        {
            using KvSnapshotLease snapshot = store.CreateSnapshotLease(nowUnixMs);
            written = await Systhread.RunAsync(token => WriteBase(file, snapshot.Entries, c, nowUnixMs, 0, token, out _));
        }
        finally
        {
            file.Close();
        }

        await temp.RenameAsync(paths.InDir(baseName));
        return written;
    }

    /// <summary>Writes a base file from a snapshot (blocking; on a system thread): RDB under aof-use-rdb-preamble, else AOF
    /// commands after a <c>#TS</c> annotation under aof-timestamp-enabled; fsyncs every 4 MB under
    /// aof-rewrite-incremental-fsync, and at the end. <paramref name="lease"/>, when given (its entries are <paramref name="snapshot"/>), learns after each key or chunk
    /// of keys that the writer is done with them (<see cref="KvSnapshotLease.MarkWritten"/>), so the store overwrites
    /// those keys in place again during the rest of the rewrite (issue 14).</summary>
    private static long WriteBase(FileWriter target, ArraySegment<KvSnapshotEntry> snapshot, KvServerConfig c, long nowUnixMs, long usedMemory,
        CancellationToken token, out long incrementalFsyncs, KvSnapshotLease? lease = null)
    {
        long offset = 0, syncedAt = 0, fsyncs = 0;
        bool incremental = c.AofRewriteIncrementalFsync;
        // The base is written past the page cache (O_DIRECT, whole 1 MiB blocks; the last partial block through it) where
        // the filesystem allows: the kernel's copy into page-cache pages, their writeback and their release when the
        // file is replaced at the next rewrite cost several times the writer's own work on some machines (issue 14,
        // rationale §181). Same bytes; EIOSHARP_KV_AOF_BASE_DIRECT=0 writes through the page cache (A/B, tests). The RDB
        // writer hands whole blocks from its own block-aligned buffer, which the direct writer writes without copying
        // them into its buffer first (h208: one copy of the whole base fewer per rewrite).
        using UncachedWriter? direct = BaseDirect ? target.OpenUncached(0) : null;
        void Write(ReadOnlySpan<byte> piece)
        {
            if (direct is not null)
            {
                direct.Write(piece);
            }
            else
            {
                target.WriteAt(offset, piece);
            }
        }

        void Sink(ReadOnlySpan<byte> data)
        {
            token.ThrowIfCancellationRequested();
            if (!incremental)
            {
                Write(data);
                offset += data.Length;
                return;
            }

            if (direct is { IsDirect: true } && !DirectIncrementalFsync)
            {
                // Past the page cache the incremental fdatasyncs bound nothing: no dirty page is made (each write returns
                // once the device has its blocks) and the file is named in no manifest before the final fsync and rename
                // (§216). Only the final Sync below remains.
                Write(data);
                offset += data.Length;
                return;
            }

            while (!data.IsEmpty)
            {
                // rioSetAutoSync: an fdatasync each time 4 MB more have been written (bounded dirty pages during the
                // rewrite; past the page cache it only flushes the device's cache: what was given to the direct writer
                // but still sits in its buffer, less than a block, is not written yet).
                int piece = (int)Math.Min(data.Length, IncrementalFsyncBytes - (offset - syncedAt));
                Write(data[..piece]);
                offset += piece;
                data = data[piece..];
                if (offset - syncedAt >= IncrementalFsyncBytes)
                {
                    target.DataSync();
                    syncedAt = offset;
                    fsyncs++;
                }
            }
        }

        if (c.AofUseRdbPreamble)
        {
            KvRdb.Write(snapshot, Sink, c.Version, nowUnixMs, usedMemory, token, aofBase: true, lease: lease);
        }
        else
        {
            var chunk = new ArrayBufferWriter<byte>(1 << 20);
            if (c.AofTimestampEnabled)
            {
                chunk.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"#TS:{nowUnixMs / 1000}\r\n")));
            }

            const int KeysPerChunk = 4096;
            int db = -1;
            for (int i = 0; i < snapshot.Count; i += KeysPerChunk)
            {
                token.ThrowIfCancellationRequested();
                int count = Math.Min(KeysPerChunk, snapshot.Count - i);
                db = AofRewriter.Write(snapshot.Slice(i, count), chunk, db);
                lease?.MarkWritten(i + count); // the values were copied into the chunk
                Sink(chunk.WrittenSpan);
                chunk.ResetWrittenCount();
            }

            Sink(chunk.WrittenSpan);
        }

        direct?.Complete();
        target.Sync();
        incrementalFsyncs = fsyncs;
        return offset;
    }

    /// <summary>BGREWRITEAOF while appendonly is no (Redis 7.0's rewriteAppendOnlyFileBackground with the AOF off): writes
    /// <paramref name="snapshot"/> as a new base file in the AOF directory (created if needed) and a manifest naming only
    /// it: the earlier base and every incremental file become history (none is being written), and the history is removed
    /// unless aof-disable-auto-gc. The file is written on a system thread; the manifest is replaced atomically, so a
    /// failure or a crash leaves the directory as it was (a temporary file aside, removed at the next start).</summary>
    /// <returns>The bytes written to the base file.</returns>
    /// <exception cref="IOException">Writing or renaming failed (the caller reports aof_last_bgrewrite_status:err).</exception>
    public static async Task<long> RewriteWhileOffAsync(AofPaths paths, Switch sw, KvServerConfig c, ArraySegment<KvSnapshotEntry> snapshot, long nowUnixMs,
        long usedMemory, Action<string> log)
    {
        await paths.Dir.MakeDirectoriesAsync(KvServer.DataDirectoryPermissions, existsOk: true);
        AofManifest manifest = await LoadManifestAsync(paths);
        var temp = paths.RewriteTemp;
        var file = await temp.OpenWriteAsync(sw, FileCreate.OrTruncate(NewFilePermissions));
        long written;
        try
        {
            written = await Systhread.RunAsync(token => WriteBase(file, snapshot, c, nowUnixMs, usedMemory, token, out _));
        }
        catch
        {
            file.Close();
            await TryDeleteAsync(temp);
            throw;
        }

        file.Close();
        var next = manifest.Clone();
        string baseName = next.NewBase(paths.FileName, c.AofUseRdbPreamble);
        next.MarkRewrittenIncrAsHistory(keepLast: false);
        await temp.RenameAsync(paths.InDir(baseName));
        log($"Successfully renamed the temporary AOF base file {temp.Name} into {baseName}");
        next.Dirty = true;
        PersistManifest(paths, next);
        if (!c.AofDisableAutoGc && next.History.Count > 0)
        {
            var removed = next.History.ToArray();
            next.History.Clear();
            next.Dirty = true;
            PersistManifest(paths, next);
            foreach (var info in removed)
            {
                log($"Removing the history file {info.FileName} in the background");
                await TryDeleteAsync(paths.InDir(info.FileName));
            }
        }

        log($"Background AOF rewrite terminated with success (appendonly no: base {baseName}, {written} bytes).");
        return written;
    }

    /// <summary>CONFIG SET appendonly yes (Redis's startAppendOnly): creates the AOF directory if needed, reads its
    /// manifest (the files of an earlier run become history when the first rewrite lands), and opens (truncating) the
    /// temporary live file <c>temp-&lt;appendfilename&gt;.incr</c>; the caller then starts a rewrite of the whole keyspace
    /// and appends to the temporary file meanwhile. The manifest is not touched until <see cref="TryFinishRewrite"/>
    /// renames the new base and the temporary file into it, so a crash during the wait leaves the directory as it was.</summary>
    public static async Task<AppendOnlyFile> CreateForFirstRewriteAsync(AofPaths paths, Switch sw, FsyncPolicy policy, Func<KvServerConfig> config, Action<string> log)
    {
        await paths.Dir.MakeDirectoriesAsync(KvServer.DataDirectoryPermissions, existsOk: true);
        AofManifest manifest = await LoadManifestAsync(paths);
        var file = await paths.InDir(paths.TempIncrName).OpenWriteAsync(sw, FileCreate.OrTruncate(NewFilePermissions));
        return new AppendOnlyFile(paths, config, policy, manifest, file, paths.TempIncrName, 0, 0, 0, log) { _waitFirstRewrite = true };
    }

    /// <summary>Removes the temporary files a killed process may have left (the temporary incremental file, rewrite files
    /// in <c>dir</c>): none is ever loaded.</summary>
    private static async Task RemoveLeftoversAsync(AofPaths paths, Action<string> log)
    {
        var candidates = new List<(EioPath Path, string Name)> { (paths.InDir(paths.TempIncrName), paths.TempIncrName) };
        try
        {
            if (await (paths.Fs / paths.DataDir).IsDirectoryAsync())
            {
                foreach (string name in await (paths.Fs / paths.DataDir).ReadDirectoryAsync())
                {
                    if (name.StartsWith("temp-rewriteaof-bg-", StringComparison.Ordinal) && name.EndsWith(".aof", StringComparison.Ordinal))
                    {
                        candidates.Add((paths.Fs / System.IO.Path.Combine(paths.DataDir, name), name));
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log($"WARNING: could not list {paths.DataDir} for leftover AOF rewrite files: {ex.Message}");
        }

        foreach (var (leftover, name) in candidates)
        {
            try
            {
                if (await leftover.ExistsAsync())
                {
                    await leftover.UnlinkAsync(missingOk: true);
                    log($"Removed the leftover temporary file {name} (an interrupted AOF rewrite; never loaded).");
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log($"WARNING: could not remove the leftover {name}: {ex.Message}");
            }
        }
    }

    /// <summary>Appends encoded commands at the end of the current incremental file (to the page cache; see <see cref="Sync"/>);
    /// under aof-timestamp-enabled, a <c>#TS:&lt;unix seconds&gt;</c> line first when the second has changed since the last one.</summary>
    /// <exception cref="IOException">The write failed (a disk full: <see cref="DescribeError"/> gives Redis's text); the
    /// file is truncated back to its length before the call, so a retry appends cleanly.</exception>
    public void Append(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        long before = _incrLength;
        try
        {
            if (_config().AofTimestampEnabled)
            {
                long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                if (_currentTimestamp < now)
                {
                    byte[] ts = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"#TS:{now}\r\n"));
                    _tail.Append(ts);
                    _incrLength += ts.Length;
                    _currentTimestamp = now;
                }
            }

            _tail.Append(data);
        }
        catch (IOException)
        {
            // A short write may have left part of the data: cut it off (as Redis does), so that the file stays a sequence
            // of whole commands and the retry appends at the same place.
            _incrLength = before;
            _currentTimestamp = 0;
            TryTruncate(before);
            throw;
        }

        _incrLength += data.Length;
        _dirty = true;
        Appends++;
    }

    /// <summary>Whether the file accepts a write now: writes a byte past the end and cuts it off again (used to find out
    /// that a full disk has room again when there is nothing pending to retry).</summary>
    /// <exception cref="IOException">It does not.</exception>
    public void Probe()
    {
        try
        {
            _tail.Append("\n"u8);
        }
        finally
        {
            TryTruncate(_incrLength);
        }
    }

    /// <summary>The incremental file's tail chunk under <c>everysec</c>/<c>no</c>: 8 MiB, reserved (<c>fallocate</c>) and
    /// mapped at a time, 8x the library's default. A reservation's cost is mostly per call (ext4's block allocator scans
    /// its groups and inserts an extent once a call), and a long round (1 KB values, 50 clients -P 16: ~450 MB of AOF a
    /// second) reserved a 1 MiB chunk every ~1,000 SETs: the store thread's <c>fallocate</c> took 1.28-1.33% of its
    /// samples with 1 MiB chunks and 0.23-0.29% with 8 MiB, its <c>pwrite</c>s unchanged (docs/BENCHMARKS.md, session 33,
    /// h191). The price: up to 8 MiB of zeros past the last record while the file is open and after a crash (the loader
    /// cuts them), and of disk space held per open incremental file (a disk with less room reserves what an append needs).</summary>
    internal const int DefaultTailChunkBytes = 8 << 20;

    /// <summary>Chunk of the incremental file's mapped tail (EIOSHARP_KV_AOF_TAIL_CHUNK_KB; default
    /// <see cref="DefaultTailChunkBytes"/>; 0 appends by pwrite, for A/B measurements and tests).</summary>
    internal static int TailChunkBytes { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_AOF_TAIL_CHUNK_KB"), out int kb) && kb >= 0 ? kb * 1024 : DefaultTailChunkBytes;

    /// <summary>The longest round's append stored through the mapping (EIOSHARP_KV_AOF_TAIL_STORE_MAX, bytes); longer ones
    /// are pwrites into the reserved region.</summary>
    internal static int TailMaxStoreBytes { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_AOF_TAIL_STORE_MAX"), out int b) && b >= 0 ? b : MappedTailAppender.DefaultMaxStoreBytes;

    /// <summary>Whether a round's append too long to store (a pwrite) first reserves the tail's next chunk, so that it is
    /// written into allocated blocks (EIOSHARP_KV_AOF_TAIL_RESERVE_WRITES=0 turns it off, for A/B measurements).</summary>
    internal static bool TailReserveForWrites { get; set; } = Environment.GetEnvironmentVariable("EIOSHARP_KV_AOF_TAIL_RESERVE_WRITES") != "0";

    /// <summary>The incremental file's appender: a store into a <c>fallocate</c>d shared mapping of its tail (no system
    /// call per round; the record is in the page cache before the reply, as after a pwrite), which the library turns into
    /// a pwrite where the filesystem cannot (<see cref="MappedTailAppender"/>). Closed (the file cut to its logical
    /// length) at a rewrite's switch and at <see cref="Dispose"/>; a crash leaves zeros past the last record, which the
    /// loader cuts off (<see cref="ZeroTailStart"/>).</summary>
    /// <remarks>Under <c>appendfsync always</c> nothing is stored through the mapping and nothing is reserved with
    /// <c>fallocate</c>: the round's fdatasync dominates, and a store into a reserved (unwritten) extent costs that
    /// fdatasync the extent's conversion (measured: the 50-client durable SET row took 1.5x the CPU with the mapping,
    /// §164). Instead the tail is prepared ahead with written zeros (<see cref="AlwaysZeroTail"/>, the default since
    /// §210) and the rounds are <c>pwrite</c>s into them, or, with <c>EIOSHARP_KV_ALWAYS_ZERO_TAIL=0</c>, <c>pwrite</c>s
    /// past the end as before session 38.</remarks>
    private static MappedTailAppender OpenTail(FileWriter file, long length, FsyncPolicy policy)
    {
        bool zeroTail = policy == FsyncPolicy.Always && AlwaysZeroTail;
        int chunk = zeroTail ? AlwaysZeroTailChunkBytes : policy == FsyncPolicy.Always ? 0 : TailChunkBytes is > 0 and < 64 * 1024 ? 64 * 1024 : TailChunkBytes;
        var tail = file.OpenMappedTail(length, chunk);
        tail.MaxStoreBytes = TailMaxStoreBytes;
        tail.ReserveForWrites = TailReserveForWrites;
        tail.ZeroFillAhead = zeroTail;
        return tail;
    }

    /// <summary>Under <c>appendfsync always</c>, whether the incremental file's tail is prepared ahead with written zeros
    /// (<see cref="MappedTailAppender.ZeroFillAhead"/>: a chunk written and fdatasynced on the library's system-thread
    /// offload before the appends reach it), so that a round's <c>fdatasync</c> writes only its data, not the inode's new
    /// size (ext4 without a journal writes that inode block synchronously in every appending <c>fdatasync</c>).
    /// On by default since session 38 (h213, §210; built in session 36 by h201, §201: 0.48-0.70x the block requests per
    /// fsync, quietly 1.13x ops/s at 0.87x the CPU per request); <c>EIOSHARP_KV_ALWAYS_ZERO_TAIL=0</c> turns it off
    /// (appends past the end, no zero tail under <c>always</c>). The price: a killed server leaves up to 1.5 chunks of
    /// zeros after its last command, which the next start cuts (<see cref="ZeroTailStart"/>) and redis-server refuses
    /// until <c>redis-check-aof --fix</c> (docs/kv.md); every chunk reaches the device twice (zeros, then data). Where the
    /// file cannot be mapped (the portable layer) the appender ignores it.</summary>
    internal static bool AlwaysZeroTail { get; set; } = Environment.GetEnvironmentVariable("EIOSHARP_KV_ALWAYS_ZERO_TAIL") != "0";

    /// <summary>The zero-filled chunk under <see cref="AlwaysZeroTail"/> (EIOSHARP_KV_ALWAYS_ZERO_TAIL_KB, default 1 MiB).</summary>
    internal static int AlwaysZeroTailChunkBytes { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_ALWAYS_ZERO_TAIL_KB"), out int zkb) && zkb >= 64 ? zkb * 1024 : 1 << 20;

    private void CloseTail(MappedTailAppender tail, string name)
    {
        try
        {
            tail.Close();
        }
        catch (IOException ex)
        {
            _log($"WARNING: could not cut the append-only file {name} to its length ({tail.Length} bytes): {ex.Message}; " +
                "its reserved zero bytes stay until the next start.");
        }
    }

    private void TryTruncate(long length)
    {
        try
        {
            _tail.Truncate(length);
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
    /// <remarks>Every fsync of the AOF is an <c>fdatasync</c>, as Redis's (<c>redis_fsync</c> on Linux).</remarks>
    public void Sync()
    {
        _dirty = false;
        _file.DataSync();
        Interlocked.Increment(ref _fsyncs);
    }

    /// <summary>The policy's fsync of a round (<see cref="FsyncPolicy.Always"/>): skipped (counted) while a rewrite writes
    /// under no-appendfsync-on-rewrite, else <see cref="Sync"/>.</summary>
    public void SyncForPolicy()
    {
        if (SkipFsyncForRewrite)
        {
            _dirty = true;
            FsyncsSkippedForRewrite++;
            return;
        }

        Sync();
    }

    /// <summary>fsyncs with <see cref="FileWriter.DataSyncAsync"/> (on the io_uring backend's ring, else the library's blocking
    /// offload); the store's domain runs its other fibers meanwhile (the round's fsync under <see cref="FsyncPolicy.Always"/>).
    /// Skipped while a rewrite writes under no-appendfsync-on-rewrite.</summary>
    public async Task SyncAsync()
    {
        if (SkipFsyncForRewrite)
        {
            _dirty = true;
            FsyncsSkippedForRewrite++;
            return;
        }

        _dirty = false;
        await _file.DataSyncAsync();
        Interlocked.Increment(ref _fsyncs);
    }

    /// <summary>True when the AOF has grown enough since the last rewrite (Redis's auto-aof-rewrite rule on aof_current_size
    /// against aof_rewrite_base_size).</summary>
    public bool ShouldRewrite(int percentage, long minSize)
    {
        if (percentage <= 0 || RewriteInProgress || Length < minSize)
        {
            return false;
        }

        long baseSize = Math.Max(1, _rewriteBaseSize);
        return (Length - baseSize) * 100 / baseSize >= percentage;
    }

    /// <summary>Asks for a background rewrite (BGREWRITEAOF, the auto rule): a fiber opens the next incremental file
    /// (<c>appendonly.aof.N.incr.aof</c>, truncated), then <see cref="TryBeginRewrite"/> switches to it between rounds.
    /// While waiting for the first rewrite, the temporary incremental file is reused (truncated at the switch).</summary>
    /// <exception cref="InvalidOperationException"><see cref="Start"/> was not called.</exception>
    public void StartRewrite()
    {
        if (RewriteInProgress)
        {
            return;
        }

        var sw = _switch ?? throw new InvalidOperationException("AppendOnlyFile.Start was not called");
        _rewriteRequested = true;
        if (_waitFirstRewrite)
        {
            return; // TryBeginRewrite truncates the temporary file: the snapshot has everything written to it so far
        }

        _rewriteOpening = true;
        var next = _manifest.Clone();
        string name = next.NewIncr(_paths.FileName);
        Fiber.ForkDaemon(sw, async () =>
        {
            try
            {
                var file = await _paths.InDir(name).OpenWriteAsync(sw, FileCreate.OrTruncate(NewFilePermissions));
                if (_disposed)
                {
                    file.Close();
                    return;
                }

                _nextIncr = file;
                _nextIncrName = name;
                _nextManifest = next;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _log($"WARNING: Can't open the append-only file {name}: {ex.Message}; the rewrite is not started.");
                _rewriteRequested = false;
                _rewriteError = ex.Message;
                RewriteFailedToStart = true;
            }
            finally
            {
                _rewriteOpening = false;
            }
        }, "aof-rewrite-open-incr");
    }

    /// <summary>Set when a requested rewrite could not start (the next incremental file could not be opened or the
    /// manifest written); the owner reads and clears it (INFO aof_last_bgrewrite_status).</summary>
    public bool RewriteFailedToStart { get; set; }

    /// <summary>Between rounds, on the store owner: once the next incremental file is open, writes the manifest naming it
    /// (Redis's openNewIncrAofForAppend), switches appends to it, takes the snapshot and forks the fiber that writes the
    /// new base. Returns true when it switched (the caller resets the AOF's selected database: the new file starts with SELECT).</summary>
    public bool TryBeginRewrite(Func<KvSnapshotLease> snapshot, long usedMemory)
    {
        if (!_rewriteRequested || _rewriteWriting || _rewriteOpening || _disposed)
        {
            return false;
        }

        var sw = _switch ?? throw new InvalidOperationException("AppendOnlyFile.Start was not called");
        if (_waitFirstRewrite)
        {
            try
            {
                _tail.Truncate(0);
            }
            catch (IOException ex)
            {
                _log($"WARNING: Can't truncate the temporary append-only file {_paths.TempIncrName}: {ex.Message}");
                _rewriteRequested = false;
                RewriteFailedToStart = true;
                return false;
            }

            _incrLength = 0;
        }
        else
        {
            if (_nextIncr is not { } next || _nextManifest is not { } manifest)
            {
                return false;
            }

            try
            {
                PersistManifest(_paths, manifest);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _log($"WARNING: Can't persist the AOF manifest for the new incr file {_nextIncrName}: {ex.Message}; the rewrite is not started.");
                next.Close();
                _ = DeleteLater(_paths.InDir(_nextIncrName!));
                _nextIncr = null;
                _nextManifest = null;
                _rewriteRequested = false;
                RewriteFailedToStart = true;
                return false;
            }

            _log($"Creating AOF incr file {_nextIncrName} on background rewrite");
            var old = _file;
            CloseTail(_tail, _fileName);
            _manifest = manifest;
            _file = next;
            _tail = OpenTail(next, 0, _policy);
            _fileName = _nextIncrName!;
            _otherLength += _incrLength;
            _incrLength = 0;
            _nextIncr = null;
            _nextManifest = null;
            BackgroundSyncAndClose(old);
        }

        _currentTimestamp = 0;
        _rewriteRequested = false;
        _rewriteWriting = true;
        _rewriteFinished = false;
        _rewriteOk = false;
        _rewriteError = null;
        KvServerConfig c = _config();
        _rewriteRdb = c.AofUseRdbPreamble;
        // The snapshot is taken on the store's thread: every connection waits meanwhile. The log says how long, in wall
        // and in the thread's CPU time, and the collections that ran in it (issue 14, h202).
        long snapshotStart = System.Diagnostics.Stopwatch.GetTimestamp();
        long cpuStart = ThreadCpuNs();
        int gcStart = GC.CollectionCount(0);
        KvSnapshotLease lease = snapshot();
        long cpuNs = ThreadCpuNs() - cpuStart;
        int gcs = GC.CollectionCount(0) - gcStart;
        double snapshotMs = System.Diagnostics.Stopwatch.GetElapsedTime(snapshotStart).TotalMilliseconds;
        ArraySegment<KvSnapshotEntry> entries = lease.Entries;
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var temp = _paths.RewriteTemp;
        _log(string.Create(CultureInfo.InvariantCulture,
            $"Background append only file rewriting started ({entries.Count} keys, snapshot taken in {snapshotMs:F1} ms, CPU {cpuNs / 1e6:F1} ms, {gcs} collections)."));
        try
        {
            Fiber.ForkDaemon(sw, async () =>
            {
                using KvSnapshotLease held = lease; // the writer has returned (a cancelled Systhread call is waited for): hand the arrays back
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
                        long fsyncs = 0;
                        long writerCpuNs = 0;
                        long written = await Systhread.RunAsync(token =>
                        {
                            HoldForTest(token);
                            long cpu0 = ThreadCpuNs();
                            ThreadTimes(out long user0, out long system0);
                            long wall0 = System.Diagnostics.Stopwatch.GetTimestamp();
                            long w = WriteBase(target, entries, c, now, usedMemory, token, out long f, lease);
                            writerCpuNs = ThreadCpuNs() - cpu0;
                            ThreadTimes(out long user1, out long system1);
                            _rewriteWriterUserNs = user1 - user0;
                            _rewriteWriterSystemNs = system1 - system0;
                            _rewriteWriterWallMs = System.Diagnostics.Stopwatch.GetElapsedTime(wall0).TotalMilliseconds;
                            fsyncs = f;
                            return w;
                        });
                        _rewriteWriterCpuNs = writerCpuNs;
                        file.Close();
                        file = null;
                        _rewriteWritten = written;
                        _rewriteIncrementalFsyncs = fsyncs;
                        _rewriteOk = !_disposed;
                        if (_disposed)
                        {
                            await TryDeleteAsync(temp);
                        }
                    }
                    catch (Exception ex) when (ex is not CancelledException)
                    {
                        _rewriteError = ex.Message;
                        file?.Close();
                        await TryDeleteAsync(temp);
                    }
                    catch (CancelledException)
                    {
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
        catch
        {
            lease.Dispose(); // the fiber was not forked (the run is ending): nothing will end the lease
            throw;
        }
        return true;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    private struct Timespec
    {
        public long Sec, Nsec;
    }

    // The calling thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID), 0 where it cannot be read.
    private static long ThreadCpuNs() => ClockGetTime(3, out Timespec t) == 0 ? t.Sec * 1_000_000_000 + t.Nsec : 0;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetRusage(int who, out Rusage usage);

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential, Size = 144)]
    private struct Rusage
    {
        public long UserSec, UserUsec, SystemSec, SystemUsec; // ru_utime, ru_stime (struct timeval); 14 longs follow
    }

    // The calling thread's user and system CPU time in ns (getrusage RUSAGE_THREAD, tick-grained), 0 where it cannot be
    // read: the rewrite's log line splits the writer's CPU into its own work and the kernel's (h216, §213).
    private static void ThreadTimes(out long userNs, out long systemNs)
    {
        if (GetRusage(1, out Rusage u) == 0)
        {
            userNs = u.UserSec * 1_000_000_000 + u.UserUsec * 1_000;
            systemNs = u.SystemSec * 1_000_000_000 + u.SystemUsec * 1_000;
        }
        else
        {
            userNs = systemNs = 0;
        }
    }

    /// <summary>fsyncs the previous incremental file and closes it, off the store's domain (Redis's aof_background_fsync_and_close).</summary>
    private void BackgroundSyncAndClose(FileWriter old)
    {
        async Task SyncAndCloseAsync()
        {
            try
            {
                await Cancel.ProtectAsync(() => old.DataSyncAsync());
                Interlocked.Increment(ref _fsyncs);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                _log($"WARNING: fsync of the previous AOF incr file failed: {ex.Message}");
            }
            finally
            {
                old.Close();
            }
        }

        if (_switch is { } sw)
        {
            try
            {
                Fiber.Fork(sw, SyncAndCloseAsync, "aof-fsync-close-old-incr");
                return;
            }
            catch (InvalidOperationException)
            {
            }
        }

        try
        {
            old.DataSync();
        }
        finally
        {
            old.Close();
        }
    }

    // EIOSHARP_KV_TEST_REWRITE_DELAY_MS: every rewrite waits this long before writing (fault injection).
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

    /// <summary>If the background rewrite has finished, lands it (Redis's backgroundRewriteDoneHandler): the temporary file
    /// is renamed into the directory as the new base (the old base becomes history), the temporary incremental file too
    /// when this was the first rewrite after CONFIG SET appendonly yes, the incremental files before the current one become
    /// history, the manifest is atomically replaced, and the history files are deleted unless aof-disable-auto-gc.</summary>
    /// <returns>True if a rewrite was completed (or abandoned after a failure) by this call.</returns>
    public bool TryFinishRewrite()
    {
        if (!_rewriteWriting || !_rewriteFinished || _disposed)
        {
            return false;
        }

        _rewriteWriting = false;
        _rewriteFinished = false;
        var temp = _paths.RewriteTemp;
        if (!_rewriteOk)
        {
            _log(_waitFirstRewrite
                ? $"WARNING: background AOF rewrite failed: {_rewriteError}; appending to the temporary file until a rewrite succeeds."
                : $"WARNING: background AOF rewrite failed: {_rewriteError}; the incr files stay in the manifest.");
            return true;
        }

        var next = _manifest.Clone();
        string baseName = next.NewBase(_paths.FileName, _rewriteRdb);
        EioPath basePath = _paths.InDir(baseName);
        string? newIncrName = null;
        try
        {
            temp.Rename(basePath);
            _log($"Successfully renamed the temporary AOF base file {temp.Name} into {baseName}");
            if (_waitFirstRewrite)
            {
                newIncrName = next.NewIncr(_paths.FileName);
                _paths.InDir(_paths.TempIncrName).Rename(_paths.InDir(newIncrName));
                _log($"Successfully renamed the temporary AOF incr file {_paths.TempIncrName} into {newIncrName}");
            }

            next.MarkRewrittenIncrAsHistory(keepLast: true);
            PersistManifest(_paths, next);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _log($"WARNING: finishing the AOF rewrite failed: {ex.Message}; keeping the old manifest.");
            _ = DeleteLater(basePath);
            if (newIncrName is not null)
            {
                try
                {
                    _paths.InDir(newIncrName).Rename(_paths.InDir(_paths.TempIncrName)); // back, so appends go on to a known file
                }
                catch (Exception ex2) when (ex2 is IOException or UnauthorizedAccessException)
                {
                    _log($"WARNING: could not rename {newIncrName} back to {_paths.TempIncrName}: {ex2.Message}");
                }
            }

            _rewriteOk = false;
            return true;
        }

        _manifest = next;
        if (newIncrName is not null)
        {
            _fileName = newIncrName;
            _waitFirstRewrite = false;
        }

        long before = Length;
        _otherLength = _rewriteWritten;
        _rewriteBaseSize = _rewriteWritten + _incrLength;
        _currentTimestamp = 0;
        Rewrites++;
        _log($"Background AOF rewrite terminated with success: {before} -> {Length} bytes (base {baseName}, {_rewriteWritten} bytes" +
            (_config().AofRewriteIncrementalFsync ? $", {_rewriteIncrementalFsyncs} incremental fsyncs)." : ")."));
        _log(string.Create(CultureInfo.InvariantCulture, $"The AOF rewrite's base took the writer's thread {_rewriteWriterCpuNs / 1e6:F1} ms of CPU (user {_rewriteWriterUserNs / 1e6:F0} ms, system {_rewriteWriterSystemNs / 1e6:F0} ms) in {_rewriteWriterWallMs:F0} ms."));
        _log($"Background AOF rewrite finished: {before} -> {Length} bytes.");
        DeleteHistoryFiles();
        return true;
    }

    /// <summary>Redis's aofDelHistoryFiles: unless aof-disable-auto-gc, removes the history files (in the background) and
    /// writes the manifest without them. Also called when aof-disable-auto-gc is set back to no.</summary>
    public void DeleteHistoryFiles()
    {
        if (_config().AofDisableAutoGc || _manifest.History.Count == 0 || _disposed || _waitFirstRewrite)
        {
            return;
        }

        var next = _manifest.Clone();
        var removed = next.History.ToArray();
        next.History.Clear();
        next.Dirty = true;
        try
        {
            PersistManifest(_paths, next);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log($"WARNING: could not write the AOF manifest without its history files: {ex.Message}");
            return;
        }

        _manifest = next;
        foreach (var info in removed)
        {
            _log($"Removing the history file {info.FileName} in the background");
            _ = DeleteLater(_paths.InDir(info.FileName));
        }
    }

    private static void SyncDirectory(EioPath directory)
    {
        try
        {
            directory.SyncDirectory();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not every file system lets a directory be opened for fsync; the rename itself has happened.
        }
    }

    /// <summary>Removes a file from a fiber on the run's switch (never blocks the caller). Returns false when the run's
    /// switch has finished (the file stays).</summary>
    private bool DeleteLater(EioPath path)
    {
        if (_switch is { } sw)
        {
            try
            {
                Fiber.Fork(sw, () => TryDeleteAsync(path), "aof-unlink");
                return true;
            }
            catch (InvalidOperationException)
            {
            }
        }

        return false;
    }

    private static async Task TryDeleteAsync(EioPath path)
    {
        try
        {
            await Cancel.ProtectAsync(() => path.UnlinkAsync(missingOk: true)); // also when the run is ending
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>The everysec flusher: a daemon fiber on the run's switch; every second on the monotonic clock, fsyncs on the
    /// library's offload if anything was appended since the last fsync (not while a rewrite writes under no-appendfsync-on-rewrite).</summary>
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

            if (SkipFsyncForRewrite)
            {
                FsyncsSkippedForRewrite++;
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
    /// run's switch and removes its temporary file); an incremental file opened for a rewrite that did not start is removed
    /// (it is not in the manifest).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_rewriteWriting && !_rewriteFinished && _rewriteCancel is { } rewrite)
        {
            _rewriteAbandoned = true;
            rewrite.Cancel(new ObjectDisposedException(nameof(AppendOnlyFile), "the append-only file was closed"));
        }

        if (_rewriteWriting && _rewriteFinished && _rewriteOk)
        {
            DeleteLater(_paths.RewriteTemp); // finished but not landed: drop the new base
        }

        if (_nextIncr is { } unused)
        {
            unused.Close();
            DeleteLater(_paths.InDir(_nextIncrName!));
            _nextIncr = null;
        }

        try
        {
            CloseTail(_tail, _fileName); // cut to its logical length, then synced with it
            Sync();
        }
        finally
        {
            _file.Close();
            if (_waitFirstRewrite)
            {
                // Closed before the first rewrite landed (CONFIG SET appendonly no, the run's end, shutdown): the manifest
                // stays as it was, as Redis's stopAppendOnly leaves it; drop the temporary live file.
                _waitFirstRewrite = false;
                DeleteLater(_paths.InDir(_paths.TempIncrName)); // else removed as a leftover at the next start
            }
        }
    }
}
