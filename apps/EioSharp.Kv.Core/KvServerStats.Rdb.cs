namespace EioSharp.Kv;

public sealed partial class KvServerStats
{
    /// <summary>Redis's shared.bgsaveerr (without '-'): the error of writes while stop-writes-on-bgsave-error holds them.</summary>
    public const string BgSaveError = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. " +
        "Commands that may modify the data set are disabled, because this instance is configured to report errors during writes " +
        "if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

    /// <summary>Redis's writeCommandsDeniedByDiskError and writeCommandsGetDiskErrorMessage: the error (without '-') write
    /// commands and PING get, or null when writes are allowed. The RDB error first (stop-writes-on-bgsave-error yes, save
    /// points set, the last BGSAVE or save failed), then the AOF's (the last write or fsync failed).</summary>
    /// <param name="config">The configuration in force.</param>
    public string? DiskWriteError(KvServerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!RdbLastBgSaveOk && config.StopWritesOnBgsaveError && config.Save.Length > 0) return BgSaveError;
        if (!AofLastWriteOk) return "MISCONF Errors writing to the AOF file: " + (AofLastWriteError ?? "unknown error");
        return null;
    }

    /// <summary>The store's write counter (<see cref="KvStore.Dirty"/>) when the last successful SAVE or BGSAVE took its
    /// snapshot: INFO rdb_changes_since_last_save counts from it.</summary>
    public long RdbDirtyAtLastSave { get; set; }

    /// <summary>Whether a BGSAVE is writing (INFO rdb_bgsave_in_progress).</summary>
    public bool RdbBgSaveInProgress { get; set; }

    /// <summary>When the running BGSAVE started, Unix milliseconds.</summary>
    public long RdbBgSaveStartUnixMs { get; set; }

    /// <summary>INFO rdb_current_bgsave_time_sec: seconds the running BGSAVE has taken so far, -1 when none runs.</summary>
    public long RdbCurrentBgSaveSeconds =>
        RdbBgSaveInProgress ? Math.Max(0, (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - RdbBgSaveStartUnixMs) / 1000) : -1;

    /// <summary>Whether the last BGSAVE (or SAVE) succeeded (INFO rdb_last_bgsave_status).</summary>
    public bool RdbLastBgSaveOk { get; set; } = true;

    /// <summary>Seconds the last BGSAVE took (INFO rdb_last_bgsave_time_sec; -1 before the first).</summary>
    public long RdbLastBgSaveSeconds { get; set; } = -1;

    /// <summary>RDB files written since start (INFO rdb_saves).</summary>
    public long RdbSaves { get; set; }

    /// <summary>Keys loaded from the RDB file at start (INFO rdb_last_load_keys_loaded).</summary>
    public long RdbLastLoadKeysLoaded { get; set; }

    /// <summary>Keys of the RDB file skipped at start because they had expired (INFO rdb_last_load_keys_expired).</summary>
    public long RdbLastLoadKeysExpired { get; set; }
}
