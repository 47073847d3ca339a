using System.Buffers;
using System.Globalization;
using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.Time;

namespace EioSharp.Kv;

/// <summary>The RDB file <c>dir/dbfilename</c>: SAVE, BGSAVE [SCHEDULE], the <c>save</c> points, the save at shutdown, and
/// the load at start. Every file operation goes through the library's file capability (<c>env.Fs</c>).</summary>
/// <remarks>
/// <para><b>SAVE</b> runs on the store owner inside its round: it serializes the keyspace into memory and replaces the file
/// atomically (<see cref="EioPath.Replace"/>: temporary file, fsync, rename) before it answers, so every other command
/// waits, as Redis's SAVE blocks the server. The file is built in one array, so SAVE is bounded by its size (2 GiB);
/// BGSAVE has no such bound.</para>
/// <para><b>BGSAVE</b> takes <see cref="KvStore.CreateSnapshot"/> on the owner (as an AOF rewrite does: the state at the
/// time of the command, Redis's fork snapshot) and writes it from a fiber of the owner's run, on a system thread, to
/// <c>temp-PID.rdb</c> in the data directory, fsyncs it, renames it over the file and fsyncs the directory.</para>
/// <para><b>Thread safety</b>: every method but <see cref="ShutdownSave"/> is called on the store owner's domain.</para>
/// </remarks>
internal sealed class RdbPersistence(EioPath fs, KvLiveConfig live, KvServerStats stats, Clock clock, Action<string> log) : IKvRdbSaver
{
    internal const UnixFileMode FilePermissions = (UnixFileMode)0x1A4; // 0644, as Redis's rdb files (before the umask)
    /// <summary>Redis 7.0's REDIS_AUTOSYNC_BYTES: with rdb-save-incremental-fsync, BGSAVE fsyncs every 32 MiB written.</summary>
    internal const long AutoSyncBytes = 32L << 20;

    private const long BgSaveRetryDelayMs = 5000; // Redis's CONFIG_BGSAVE_RETRY_DELAY: a failed BGSAVE is retried by the save points after it

    // EIOSHARP_KV_TEST_BGSAVE_DELAY_MS: every BGSAVE waits this long before writing (tests of a BGSAVE in progress).
    private static readonly int s_bgSaveDelayMs =
        int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_TEST_BGSAVE_DELAY_MS"), out int d) && d > 0 ? d : 0;

    private Switch? _switch;
    private bool _scheduled;
    private long _lastBgSaveTryMs;
    private string _parsedSave = "";
    private (long Seconds, long Changes)[] _savePoints = [];
    private volatile int _shutdownSave; // 0: as the save points say; 1: SHUTDOWN SAVE; -1: SHUTDOWN NOSAVE

    private KvServerConfig Config => live.Current;


    /// <summary>SHUTDOWN SAVE (true), NOSAVE (false) or neither (null: save when save points are set, as Redis).</summary>
    public bool? ShutdownSave
    {
        get => _shutdownSave switch { 1 => true, -1 => false, _ => null };
        set => _shutdownSave = value switch { true => 1, false => -1, null => 0 };
    }

    /// <summary>A run of the store owner starts: BGSAVE forks its writer on <paramref name="sw"/>.</summary>
    public void Attach(Switch sw) => _switch = sw;

    /// <summary>The run ends (its switch cancels a BGSAVE still writing).</summary>
    public void Detach() => _switch = null;

    private EioPath Target => fs / Path.Combine(Config.Directory, Config.DbFilename);

    /// <inheritdoc/>
    public string? Save(KvStore store, long nowUnixMs)
    {
        if (stats.RdbBgSaveInProgress)
        {
            return "ERR Background save already in progress";
        }

        return SaveNow(store, nowUnixMs) ? null : "ERR";
    }

    /// <summary>Writes the file now, on the calling (owner's) thread; false (logged) when it could not be written.</summary>
    public bool SaveNow(KvStore store, long nowUnixMs)
    {
        long dirty = store.Dirty;
        try
        {
            using KvSnapshotLease lease = store.CreateSnapshotLease(nowUnixMs); // written before this returns
            ArraySegment<KvSnapshotEntry> snapshot = lease.Entries;
            var buffer = new ArrayBufferWriter<byte>(64 * 1024);
            KvServerConfig config = Config;
            KvRdb.Write(snapshot, span => buffer.Write(span), config.Version, nowUnixMs, stats.UsedMemory,
                compression: config.RdbCompression, checksum: config.RdbChecksum);
            Target.Replace(buffer.WrittenSpan, FilePermissions);
            stats.RdbDirtyAtLastSave = dirty;
            stats.LastSaveUnixSeconds = nowUnixMs / 1000;
            stats.RdbLastBgSaveOk = true;
            stats.RdbSaves++;
            log($"DB saved on disk ({snapshot.Count} keys, {buffer.WrittenCount} bytes, {Target}).");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or OutOfMemoryException or ObjectDisposedException)
        {
            // As Redis's rdbSave: a failed SAVE (or the save at shutdown) leaves rdb_last_bgsave_status as it was, so it
            // does not stop writes (stop-writes-on-bgsave-error is about background saves).
            log($"WARNING: failed saving the DB: {Describe(ex)}");
            return false;
        }
    }

    private static string Describe(Exception ex) => AppendOnlyFile.DescribeError(ex);

    /// <inheritdoc/>
    public string BackgroundSave(KvStore store, long nowUnixMs, bool schedule, bool inExec)
    {
        if (stats.RdbBgSaveInProgress)
        {
            return "-ERR Background save already in progress";
        }

        if (stats.AofRewriteInProgress || inExec)
        {
            if (schedule || inExec)
            {
                _scheduled = true;
                return "+Background saving scheduled";
            }

            return "-ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.";
        }

        return StartBackground(store, nowUnixMs) ? "+Background saving started" : "-ERR";
    }

    /// <summary>Snapshots the keyspace and starts writing it; false when no run is attached.</summary>
    private bool StartBackground(KvStore store, long nowUnixMs)
    {
        if (_switch is not { } sw)
        {
            return false;
        }

        long dirty = store.Dirty;
        KvSnapshotLease lease = store.CreateSnapshotLease(nowUnixMs); // ended when the writer has returned
        ArraySegment<KvSnapshotEntry> snapshot = lease.Entries;
        KvServerConfig config = Config;
        EioPath target = Target;
        EioPath directory = fs / config.Directory;
        EioPath temp = fs / Path.Combine(config.Directory, "temp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".rdb");
        long usedMemory = stats.UsedMemory;
        stats.RdbBgSaveInProgress = true;
        stats.RdbBgSaveStartUnixMs = nowUnixMs;
        _lastBgSaveTryMs = nowUnixMs;
        log($"Background saving started ({snapshot.Count} keys).");
        try
        {
            Fiber.ForkDaemon(sw, async () =>
            {
                using KvSnapshotLease held = lease; // a cancelled Systhread call is waited for: the writer has returned here
                bool ok = false;
                string? error = null;
                long bytes = 0, fsyncs = 0;
                try
                {
                    FileWriter file = await temp.OpenWriteAsync(sw, FileCreate.OrTruncate(FilePermissions));
                    try
                    {
                        bytes = await Systhread.RunAsync(token =>
                        {
                            if (s_bgSaveDelayMs > 0)
                            {
                                token.WaitHandle.WaitOne(s_bgSaveDelayMs); // fault injection: a BGSAVE that takes a while
                            }

                            long offset = 0, synced = 0;
                            KvRdb.Write(snapshot, span =>
                            {
                                file.WriteAt(offset, span);
                                offset += span.Length;
                                if (config.RdbSaveIncrementalFsync && offset - synced >= AutoSyncBytes)
                                {
                                    file.Sync(); // rdb-save-incremental-fsync: rioSetAutoSync(REDIS_AUTOSYNC_BYTES)
                                    synced = offset;
                                    fsyncs++;
                                }
                            }, config.Version, nowUnixMs, usedMemory, token, compression: config.RdbCompression, checksum: config.RdbChecksum,
                                lease: lease);
                            file.Sync();
                            return offset;
                        });
                    }
                    finally
                    {
                        file.Close();
                    }

                    await temp.RenameAsync(target);
                    try
                    {
                        await directory.SyncDirectoryAsync();
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        // Not every file system lets a directory be fsynced; the rename has happened.
                    }

                    ok = true;
                }
                catch (Exception ex) when (ex is not CancelledException)
                {
                    error = Describe(ex);
                    try
                    {
                        await temp.UnlinkAsync(missingOk: true);
                    }
                    catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
                    {
                        // The failure matters more; the next BGSAVE truncates the temporary file.
                    }
                }
                catch (CancelledException)
                {
                    error = "cancelled: the store owner run ended";
                    throw;
                }
                finally
                {
                    long end = clock.Now.ToUnixTimeMilliseconds();
                    stats.RdbBgSaveInProgress = false;
                    stats.RdbLastBgSaveOk = ok;
                    stats.RdbLastBgSaveSeconds = Math.Max(0, (end - nowUnixMs) / 1000);
                    if (ok)
                    {
                        stats.RdbDirtyAtLastSave = Math.Max(stats.RdbDirtyAtLastSave, dirty);
                        stats.LastSaveUnixSeconds = end / 1000;
                        stats.RdbSaves++;
                        log($"Background saving terminated with success ({bytes} bytes, {fsyncs} incremental fsyncs, {target}).");
                    }
                    else
                    {
                        log($"WARNING: background saving error: {error}");
                    }
                }
            }, "rdb-bgsave");
        }
        catch
        {
            lease.Dispose(); // the fiber was not forked (the run is ending): nothing will end the lease
            throw;
        }
        return true;
    }

    /// <summary>The owner's cron: a scheduled BGSAVE once no AOF rewrite runs, and the <c>save</c> points.</summary>
    public void Cron(KvStore store, long nowUnixMs)
    {
        if (stats.RdbBgSaveInProgress || stats.AofRewriteInProgress)
        {
            return;
        }

        if (_scheduled)
        {
            _scheduled = false;
            StartBackground(store, nowUnixMs);
            return;
        }

        string save = Config.Save;
        if (!ReferenceEquals(save, _parsedSave))
        {
            var parts = save.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var points = new List<(long, long)>();
            for (int i = 0; i + 1 < parts.Length; i += 2)
            {
                if (long.TryParse(parts[i], CultureInfo.InvariantCulture, out long s) && long.TryParse(parts[i + 1], CultureInfo.InvariantCulture, out long c))
                {
                    points.Add((s, c));
                }
            }

            _savePoints = [.. points];
            _parsedSave = save;
        }

        long changes = Math.Max(0, store.Dirty - stats.RdbDirtyAtLastSave);
        foreach ((long seconds, long needed) in _savePoints)
        {
            // Redis's serverCron: enough changes, enough time, and after a failure not before the retry delay.
            if (changes >= needed && nowUnixMs - stats.LastSaveUnixSeconds * 1000 > seconds * 1000 &&
                (stats.RdbLastBgSaveOk || nowUnixMs - _lastBgSaveTryMs > BgSaveRetryDelayMs))
            {
                log($"{changes} changes in {seconds} seconds. Saving...");
                StartBackground(store, nowUnixMs);
                return;
            }
        }
    }

    private long _shutdownSavedDirty = -1;

    /// <summary>SHUTDOWN's save succeeded (on the owner): the save at exit is skipped if nothing is written after it.</summary>
    public void SavedForShutdown(KvStore store) => Volatile.Write(ref _shutdownSavedDirty, store.Dirty);

    /// <summary>The server stops (SHUTDOWN, SIGTERM): saves when SHUTDOWN SAVE asked, or when save points are set and
    /// SHUTDOWN NOSAVE did not say otherwise (Redis's rule). On the owner, after the last round.</summary>
    public void SaveAtExit(KvStore store)
    {
        bool save = ShutdownSave ?? Config.Save.Length > 0;
        if (!save)
        {
            return;
        }

        if (Volatile.Read(ref _shutdownSavedDirty) == store.Dirty)
        {
            return; // SHUTDOWN saved already (KvShutdownSave) and nothing was written since
        }

        log("Saving the final RDB snapshot before exiting.");
        SaveNow(store, clock.Now.ToUnixTimeMilliseconds());
    }

    /// <summary>Loads <c>dir/dbfilename</c> into <paramref name="store"/> if the file exists (on a system thread).</summary>
    /// <returns>Whether a file was loaded.</returns>
    /// <exception cref="RdbFormatException">The file is not a loadable RDB file: the server must not start.</exception>
    public static async Task<bool> LoadAtStartAsync(EioPath fs, Clock clock, KvServerConfig config, Switch sw, KvStore store, long nowUnixMs,
        KvServerStats stats, Action<string> log, string listening)
    {
        string pathText = Path.Combine(config.Directory, config.DbFilename);
        EioPath path = fs / pathText;
        if (!await path.ExistsAsync())
        {
            return false;
        }

        log($"Loading the RDB file {Path.GetFullPath(pathText)} (listening on {listening}; commands get -LOADING until it is loaded).");
        int delayMs = int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_TEST_LOAD_DELAY_MS"), out int d) ? d : 0;
        if (delayMs > 0)
        {
            await clock.SleepAsync(TimeSpan.FromMilliseconds(delayMs)); // fault injection: a slow load (the -LOADING test)
        }

        FileReader file = await path.OpenReadAsync(sw);
        try
        {
            long size = (await file.StatAsync()).Size;
            KvRdbLoadResult loader = await Systhread.RunAsync(() => KvRdb.Load(new EioFileReadStream(file), size, store, nowUnixMs,
                verifyChecksum: config.RdbChecksum));
            stats.RdbLastLoadKeysLoaded = loader.KeysLoaded;
            stats.RdbLastLoadKeysExpired = loader.ExpiredSkipped;
            log($"DB loaded from disk: RDB version {loader.Version}, {loader.KeysLoaded} keys" +
                (loader.ExpiredSkipped > 0 ? $", {loader.ExpiredSkipped} expired keys skipped" : "") +
                (loader.EmptySkipped > 0 ? $", {loader.EmptySkipped} empty keys skipped" : "") + ".");
        }
        catch (RdbFormatException e)
        {
            throw new RdbFormatException($"{e.Message} (file {Path.GetFullPath(pathText)})");
        }
        finally
        {
            file.Close();
        }

        return true;
    }
}
