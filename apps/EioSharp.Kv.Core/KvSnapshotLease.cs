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

    internal KvSnapshotLease(KvSnapshotEpochs epochs, int epoch, KvSnapshotEntry[] entries)
    {
        _epochs = epochs;
        _epoch = epoch;
        Entries = entries;
    }

    /// <summary>Every live key, value and expiry, in database order (as <see cref="KvStore.CreateSnapshot"/>).</summary>
    public KvSnapshotEntry[] Entries { get; }

    /// <summary>The snapshot's epoch (1, 2, ... in the order the store took its leased snapshots).</summary>
    public int Epoch => _epoch;

    /// <summary>Ends the lease: the string arrays in <see cref="Entries"/> may be overwritten in place from now on.</summary>
    public void Dispose()
    {
        int epoch = Interlocked.Exchange(ref _epoch, 0);
        if (epoch != 0) _epochs.End(epoch);
    }
}

/// <summary>The leased snapshots of one store that are still running (<see cref="KvSnapshotLease"/>), shared by its
/// databases: a long string array marked with epoch <c>e</c> (<see cref="KvKeyedValue.SnapshotEpoch"/>) may be overwritten
/// in place only when <c>e &lt; </c><see cref="OldestLive"/>.</summary>
/// <remarks>Why that suffices: every leased snapshot marks every owned array it takes with its own epoch, and epochs
/// grow, so an array a running snapshot <c>L</c> holds carries an epoch of at least <c>L</c> (a later snapshot may
/// re-mark it higher, never lower). Begin and end take a lock (rare); the write path reads one volatile field.</remarks>
internal sealed class KvSnapshotEpochs
{
    private readonly Lock _gate = new();
    private readonly List<int> _live = [];
    private int _last;
    private volatile int _oldestLive = int.MaxValue;

    /// <summary>The epoch of the oldest running leased snapshot, or <see cref="int.MaxValue"/> when none runs.</summary>
    public int OldestLive => _oldestLive;

    /// <summary>Number of leased snapshots running (tests, DEBUG).</summary>
    public int LiveCount
    {
        get
        {
            lock (_gate) return _live.Count;
        }
    }

    /// <summary>Starts a snapshot: returns its epoch, already counted as running.</summary>
    public int Begin()
    {
        lock (_gate)
        {
            if (_last == int.MaxValue - 1) throw new InvalidOperationException("Snapshot epochs exhausted.");
            int epoch = ++_last;
            _live.Add(epoch);
            if (_live.Count == 1) _oldestLive = epoch;
            return epoch;
        }
    }

    /// <summary>Ends the snapshot of <paramref name="epoch"/>.</summary>
    public void End(int epoch)
    {
        lock (_gate)
        {
            _live.Remove(epoch);
            int oldest = int.MaxValue;
            foreach (int e in _live) oldest = Math.Min(oldest, e);
            _oldestLive = oldest;
        }
    }
}
