namespace EioSharp.Kv;

/// <summary>A snapshot of the keyspace that hands its string arrays back when disposed (<see cref="KvStore.CreateSnapshotLease"/>):
/// while it is alive, the store never overwrites in place a string array it holds; once disposed, the keys whose
/// arrays it held may be overwritten in place again (a snapshot epoch instead of a permanent "handed out" flag).</summary>
/// <remarks>
/// <para>Dispose it when the last reader of <see cref="Entries"/> is done (the background writer of BGSAVE or of the AOF
/// rewrite has returned), never before: a same-length SET after that may overwrite the bytes of
/// <see cref="Entries"/>' string values. A lease never disposed behaves like <see cref="KvStore.CreateSnapshot"/>
/// for the keys it took (safe, only slower).</para>
/// <para><b>Thread safety</b>: <see cref="Dispose"/> may be called from any thread, once or more (later calls do nothing);
/// everything the disposing thread read from <see cref="Entries"/> before it happens before the store's next write.</para>
/// </remarks>
public sealed class KvSnapshotLease : IDisposable
{
    private readonly KvSnapshotEpochs _epochs;
    private int _epoch;
    private volatile int _passed;

    internal KvSnapshotLease(KvSnapshotEpochs epochs, int epoch)
    {
        _epochs = epochs;
        _epoch = epoch;
        Id = epoch;
    }

    /// <summary>Every live key, value and expiry, in database order (as <see cref="KvStore.CreateSnapshot"/>): a segment
    /// of <see cref="ArraySegment{T}.Count"/> entries at the start of an array that may be longer (the store's spare
    /// array with room for a key count that moves between snapshots, rationale §207); empty once disposed.</summary>
    /// <remarks>Read it through the segment (its count, indexer or enumerator), never through
    /// <see cref="ArraySegment{T}.Array"/>'s length: the array's entries past the count are empty (null keys).</remarks>
    public ArraySegment<KvSnapshotEntry> Entries { get; internal set; } = ArraySegment<KvSnapshotEntry>.Empty;

    /// <summary>The snapshot's epoch (1, 2, ... in the order the store took its leased snapshots); 0 once disposed.</summary>
    public int Epoch => _epoch;

    /// <summary>The epoch the lease was taken with (kept after <see cref="Dispose"/>).</summary>
    internal int Id { get; }

    /// <summary>How many of <see cref="Entries"/>, from the first, the writer is done with (<see cref="MarkWritten"/>).</summary>
    public int WrittenCount => _passed;

    /// <summary>Tells the store that the reader is done with <see cref="Entries"/>[0 .. <paramref name="count"/>): their
    /// string arrays may be overwritten in place from now on, while the lease still protects the rest (issue 14: an
    /// AOF rewrite or BGSAVE of a keyspace being overwritten then allocates a new array only for the keys it has not
    /// written yet). Call it from the writer's thread only once it no longer reads those arrays (their bytes were copied
    /// into its own buffer or handed to a synchronous sink), with counts that never decrease; a smaller count than
    /// before is ignored.</summary>
    /// <param name="count">The number of entries written, from the first (at most <see cref="Entries"/>' length).</param>
    /// <remarks>A volatile write: what the writer read from the arrays before it happens before the store's next
    /// in-place write of one of them (which reads the count with a volatile read).</remarks>
    public void MarkWritten(int count)
    {
        if (count > _passed) _passed = count;
    }

    /// <summary>Ends the lease: the string arrays in <see cref="Entries"/> may be overwritten in place from now on.</summary>
    public void Dispose()
    {
        int epoch = Interlocked.Exchange(ref _epoch, 0);
        if (epoch != 0)
        {
            _epochs.End(this);
            Interlocked.Add(ref _epochs.IncompressibleSkipped, _skipped);
            Interlocked.Add(ref _epochs.IncompressibleRecorded, _recorded);
            Interlocked.Add(ref _epochs.LzfSampledOut, _sampledOut);
            if (Rows is { } rows)
            {
                Rows = null;
                _epochs.ReturnRows(rows);
            }
            if (PooledEntries)
            {
                ArraySegment<KvSnapshotEntry> entries = Entries;
                Entries = ArraySegment<KvSnapshotEntry>.Empty; // a reader after Dispose (against the contract) sees no entries, not the next snapshot's
                _epochs.ReturnEntries(entries.Array!, entries.Count);
            }
        }
    }

    /// <summary>Whether <see cref="Entries"/> came from the store's spare array and goes back to it at
    /// <see cref="Dispose"/> (<see cref="KvSnapshotEpochs.RentEntries"/>).</summary>
    internal bool PooledEntries { get; set; }

    // ---- the incompressibility proofs of long strings (issue 14, h140) ----

    /// <summary>For each entry whose long string array the snapshot marked (<see cref="KvKeyedValue.MarkSnapshot"/>), its
    /// row; null elsewhere, or null when there is none. May be shorter or longer than <see cref="Entries"/>.</summary>
    internal KvKeyedValue?[]? Rows { get; set; }

    private long _skipped, _recorded, _sampledOut; // the writer's thread only, added to the store's totals at Dispose

    /// <summary>Counts a string the writer wrote raw without trying LZF, by its adaptive compression (the tries before it
    /// gave up: <see cref="RdbWriter.LzfSampledOut"/>). The writer's thread.</summary>
    internal void CountSampledOut() => _sampledOut++;

    /// <summary>Strings written raw by the writer's adaptive compression so far (tests).</summary>
    internal long SampledOut => _sampledOut;

    /// <summary>Whether the string of entry <paramref name="index"/> was proven incompressible by an earlier snapshot's
    /// writer and is unchanged since (its row still holds the array this snapshot took, with the same bytes): the writer
    /// may then write it raw without trying LZF, as the proof says LZF would give up (<see cref="RdbWriter"/>).</summary>
    /// <remarks>Call it from the writer's thread before <see cref="MarkWritten"/> passes the entry.</remarks>
    internal bool IsIncompressible(int index)
    {
        if (Rows is not { } rows || (uint)index >= (uint)rows.Length || rows[index] is not { } row) return false;
        if (!row.IsProvenIncompressible(Id, index)) return false;
        _skipped++;
        return true;
    }

    /// <summary>Records that LZF's bound proved the string of entry <paramref name="index"/> incompressible (with redis's
    /// budget, its length less 4), so that the next snapshot's writer may skip it while the row keeps those bytes.
    /// Nothing when the row's array or bytes changed since the snapshot.</summary>
    /// <remarks>Call it from the writer's thread, before <see cref="MarkWritten"/> passes the entry.</remarks>
    internal void RecordIncompressible(int index)
    {
        if (Rows is not { } rows || (uint)index >= (uint)rows.Length || rows[index] is not { } row) return;
        if (row.TryRecordIncompressible(Id, index)) _recorded++;
    }

    /// <summary>Entries written raw on an earlier proof (<see cref="IsIncompressible"/>) so far (tests).</summary>
    internal long IncompressibleSkipped => _skipped;

    /// <summary>Proofs recorded so far (<see cref="RecordIncompressible"/>) (tests).</summary>
    internal long IncompressibleRecorded => _recorded;
}

/// <summary>The leased snapshots of one store that are still running (<see cref="KvSnapshotLease"/>), shared by its
/// databases: a long string array marked with epoch <c>e</c> (<see cref="KvKeyedValue.SnapshotEpoch"/>) may be overwritten
/// in place only when <c>e &lt; </c><see cref="OldestLive"/>, or when <c>e</c> is the oldest running snapshot and its
/// writer has passed the array's entry (<see cref="MayOverwrite"/>).</summary>
/// <remarks>Why that suffices: every leased snapshot marks every owned array it takes with its own epoch and its index in
/// the snapshot, and epochs grow, so an array a running snapshot <c>L</c> holds carries an epoch of at least <c>L</c> (a
/// later snapshot may re-mark it higher, never lower); snapshots later than the mark did not take it. Begin and end take
/// a lock (rare); the write path reads one volatile reference and one volatile int.</remarks>
internal sealed class KvSnapshotEpochs
{
    private readonly Lock _gate = new();
    private readonly List<KvSnapshotLease> _live = [];
    private int _last;
    private volatile KvSnapshotLease? _oldest;

    public KvSnapshotEpochs() => CopyOnWrite = new KvCopyOnWriteArrays(this);

    /// <summary>The arrays writes leave to running snapshots, recycled (the store's owner only).</summary>
    public KvCopyOnWriteArrays CopyOnWrite { get; }

    /// <summary>Long strings that ended snapshots' writers wrote raw on an earlier proof that LZF gives up on them
    /// (<see cref="KvSnapshotLease.IsIncompressible"/>), since the store began (MEMORY MALLOC-STATS).</summary>
    public long IncompressibleSkipped;

    /// <summary>Proofs of incompressibility ended snapshots' writers recorded in rows, since the store began.</summary>
    public long IncompressibleRecorded;

    /// <summary>Long strings that ended snapshots' writers wrote raw without trying LZF because the tries before them had
    /// given up (adaptive compression, <see cref="RdbWriter.LzfSampledOut"/>), since the store began.</summary>
    public long LzfSampledOut;

    // The rows array of the last ended snapshot (KvSnapshotLease.Rows), cleared, for the next one: one array of 8 bytes a
    // key per snapshot would otherwise be large-object garbage every AOF rewrite.
    private KvKeyedValue?[]? _spareRows;

    // The entries array of the last ended leased snapshot (KvSnapshotLease.Entries), cleared, for the next one (issue 14,
    // h197): 32 bytes a key of fresh large-object memory per AOF rewrite otherwise (3.2 MB per 100,000 keys, cleared by
    // the GC and faulted in on the store's thread while it stalls every connection). Allocated with room
    // (EntriesCapacity) and reused for any count up to its length (§207): h197 reused it only for the same count, which
    // a keyspace being written almost never keeps from one rewrite to the next.
    private KvSnapshotEntry[]? _spareEntries;

    /// <summary>How long, in ms, the store keeps what it may reuse for its next leased snapshot (the free copy-on-write
    /// arrays, the spare rows and entries arrays) after the last one ended: 60 s by default, EIOSHARP_KV_SNAPSHOT_SPARES_MS
    /// (0: the idle trim drops them at once, as before h197).</summary>
    /// <remarks>Why: the server's idle trim (a second without writes) dropped them, so an AOF rewrite after a pause of
    /// writes (every run of a benchmark, h193) allocated its copy-on-write arrays and its entries array again: fresh
    /// memory the GC clears and the kernel faults in on the store's thread. Rewrites that recur within the window reuse
    /// them; once none ran for the window the cron drops them (<see cref="KvStore.ReleaseStaleSnapshotSpares"/>), so an
    /// idle server holds nothing extra.</remarks>
    internal static readonly long DefaultSpareRetentionMs =
        long.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_KV_SNAPSHOT_SPARES_MS"), out long ms) && ms >= 0 ? ms : 60_000;

    /// <summary>The retention in force (<see cref="DefaultSpareRetentionMs"/>; tests change it).</summary>
    internal long SpareRetentionMs { get; set; } = DefaultSpareRetentionMs;

    /// <summary>The clock of the retention, in ms (<see cref="Environment.TickCount64"/>; tests replace it).</summary>
    internal Func<long> Clock { get; set; } = static () => Environment.TickCount64;

    private long _lastEndedMs = long.MinValue; // Clock() when the last leased snapshot ended; MinValue: none ended yet

    /// <summary>Whether the spares are kept: a leased snapshot runs, or the last one ended less than
    /// <see cref="SpareRetentionMs"/> ago (the store's owner).</summary>
    public bool RetainsSpares
    {
        get
        {
            if (_oldest is not null) return true;
            long ended = Interlocked.Read(ref _lastEndedMs);
            return ended != long.MinValue && Clock() - ended < SpareRetentionMs;
        }
    }

    /// <summary>Whether anything is kept for the next snapshot (free or waiting copy-on-write arrays, a spare array).</summary>
    public bool HoldsSpares =>
        CopyOnWrite.FreeBytes > 0 || CopyOnWrite.Waiting > 0 || Volatile.Read(ref _spareRows) is not null ||
        Volatile.Read(ref _spareEntries) is not null;

    /// <summary>Entries arrays a leased snapshot took from the last one instead of allocating (since the store began).</summary>
    public long EntriesReused { get; private set; }

    /// <summary>The length of a new entries array for a snapshot of <paramref name="length"/> entries: an eighth more and
    /// 256, so that the next snapshots reuse it while the key count moves by less than that (§207).</summary>
    internal static int EntriesCapacity(int length) => (int)Math.Min(Array.MaxLength, length + (long)(length >> 3) + 256);

    /// <summary>An array of at least <paramref name="length"/> empty entries for a leased snapshot (the store's owner):
    /// the last ended one's, cleared, when it is long enough and not longer than a new one for half as many keys more, else
    /// a new one of <see cref="EntriesCapacity"/> (the spare is dropped; the new array becomes the next spare).</summary>
    /// <remarks>Why room: a keyspace being written (the 1 KB -P16 SET row's 100,000 random keys) moves its count by a few
    /// keys between nearly every two rewrites, and an array of the exact count (h197) was then new memory each time:
    /// ~10-15 ms of the store's thread per rewrite at 100,000 keys, the GC's clearing and the kernel's page faults
    /// (h208, §205; rationale §207).</remarks>
    public KvSnapshotEntry[] RentEntries(int length)
    {
        KvSnapshotEntry[]? entries = Interlocked.Exchange(ref _spareEntries, null);
        if (entries is not null && entries.Length >= length && entries.Length <= EntriesCapacity(length + (length >> 1)))
        {
            EntriesReused++;
            return entries;
        }
        return new KvSnapshotEntry[EntriesCapacity(length)];
    }

    /// <summary>Gives back a leased snapshot's entries array once its writer is done (any thread): its first
    /// <paramref name="used"/> entries (the rest were never written) are cleared here, so the spare holds no key or value
    /// alive and the store's thread does not pay the pass.</summary>
    public void ReturnEntries(KvSnapshotEntry[] entries, int used)
    {
        if (entries.Length == 0) return;
        Array.Clear(entries, 0, used);
        Volatile.Write(ref _spareEntries, entries);
    }

    /// <summary>Drops the spare entries array (MEMORY PURGE, the stale spares' release).</summary>
    /// <returns>Bytes released (approximately).</returns>
    public long DropSpareEntries() =>
        System.Runtime.CompilerServices.Unsafe.SizeOf<KvSnapshotEntry>() * (long)(Interlocked.Exchange(ref _spareEntries, null)?.Length ?? 0);

    /// <summary>An array of at least <paramref name="length"/> nulls for a snapshot's rows (the store's owner).</summary>
    public KvKeyedValue?[] RentRows(int length)
    {
        KvKeyedValue?[]? rows = Interlocked.Exchange(ref _spareRows, null);
        return rows is not null && rows.Length >= length && rows.Length <= 2 * length + 1024 ? rows : new KvKeyedValue?[length];
    }

    /// <summary>Drops the spare rows array (MEMORY PURGE, the idle trim).</summary>
    /// <returns>Bytes released (approximately).</returns>
    public long DropSpareRows() => 8L * (Interlocked.Exchange(ref _spareRows, null)?.Length ?? 0);

    /// <summary>Gives back a snapshot's rows array once its writer is done (any thread).</summary>
    public void ReturnRows(KvKeyedValue?[] rows)
    {
        Array.Clear(rows);
        Volatile.Write(ref _spareRows, rows);
    }

    /// <summary>The epoch of the oldest running leased snapshot, or <see cref="int.MaxValue"/> when none runs.</summary>
    public int OldestLive => _oldest?.Id ?? int.MaxValue;

    /// <summary>Whether a long string array marked with <paramref name="epoch"/> at <paramref name="index"/>
    /// (<see cref="KvKeyedValue.SnapshotEpoch"/>, <see cref="KvKeyedValue.SnapshotIndex"/>) may be overwritten in place:
    /// every running snapshot that may hold it ended, or the only one left (the oldest running, of that very epoch:
    /// snapshots older than it took the array too or an older one, later ones re-mark what they take) has written the
    /// entry at <paramref name="index"/> (<see cref="KvSnapshotLease.MarkWritten"/>).</summary>
    public bool MayOverwrite(int epoch, int index)
    {
        KvSnapshotLease? oldest = _oldest;
        if (oldest is null) return true;
        int id = oldest.Id;
        return epoch < id || (epoch == id && index < oldest.WrittenCount);
    }

    /// <summary>How many indices, from 0, of the arrays marked with <paramref name="epoch"/> may be overwritten in place
    /// now, up to <paramref name="count"/>: <see cref="MayOverwrite"/>(<paramref name="epoch"/>, i) holds exactly for
    /// every i below the result (all <paramref name="count"/> once no snapshot that may hold them runs, the oldest running
    /// snapshot's <see cref="KvSnapshotLease.WrittenCount"/> for its own epoch, none for a later epoch). The copy-on-write
    /// arrays' release by index (§216).</summary>
    public int OverwritableBelow(int epoch, int count)
    {
        KvSnapshotLease? oldest = _oldest;
        if (oldest is null) return count;
        int id = oldest.Id;
        return epoch < id ? count : epoch == id ? Math.Min(oldest.WrittenCount, count) : 0;
    }

    /// <summary>Number of leased snapshots running (tests, DEBUG).</summary>
    public int LiveCount
    {
        get
        {
            lock (_gate) return _live.Count;
        }
    }

    /// <summary>Starts a snapshot: returns its lease (without entries yet), already counted as running.</summary>
    public KvSnapshotLease Begin()
    {
        lock (_gate)
        {
            if (_last == int.MaxValue - 1) throw new InvalidOperationException("Snapshot epochs exhausted.");
            var lease = new KvSnapshotLease(this, ++_last);
            _live.Add(lease);
            if (_live.Count == 1) _oldest = lease;
            return lease;
        }
    }

    /// <summary>Ends the snapshot of <paramref name="lease"/>.</summary>
    public void End(KvSnapshotLease lease)
    {
        lock (_gate)
        {
            Interlocked.Exchange(ref _lastEndedMs, Clock());
            _live.Remove(lease);
            KvSnapshotLease? oldest = null;
            foreach (KvSnapshotLease l in _live)
            {
                if (oldest is null || l.Id < oldest.Id) oldest = l;
            }
            _oldest = oldest;
        }
    }
}
