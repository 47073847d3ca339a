namespace EioSharp.Kv;

/// <summary>The string arrays a write had to leave to a running leased snapshot (the store's copy-on-write, issue 14),
/// recycled: a same-length write of a key whose array a snapshot's writer has not passed yet takes its new array from
/// here instead of allocating one, and leaves the old array here until the snapshot is done with it
/// (<see cref="KvSnapshotEpochs.MayOverwrite"/>), when it becomes the next such write's new array.</summary>
/// <remarks>
/// <para><b>Why</b>: during an AOF rewrite or BGSAVE of a keyspace being overwritten, every key the writer has not reached
/// yet needed a new array on its first write (h113, §113). Those arrays are long-lived data: each survived a gen0 and a
/// gen1 collection (copied twice, on the store's thread, which is the workstation GC's collecting thread), and each old
/// one became gen2 garbage. With redis-benchmark's 1 KB SETs over 100,000 keys and the default automatic rewrite, that
/// was ~160 of the 210 B allocated per request and most of the gen0/gen1 collections (h132). A recycled array is already
/// old: storing it in the row allocates nothing, promotes nothing and marks no card.</para>
/// <para><b>Why it is safe</b>: an array is retired only when the row owned it (<see cref="KvKeyedValue.OwnsString"/>:
/// nobody but leased snapshots ever got a reference) and the row lets go of it in the same step, so afterwards only those
/// snapshots read it. It is handed out again only once <see cref="KvSnapshotEpochs.MayOverwrite"/> holds for the epoch
/// and index it was marked with: the very condition under which the row itself would have overwritten it in place. That
/// condition never turns false again (epochs and writers' counts only grow), so arrays retired earlier in (epoch, index)
/// order are free first: they wait by epoch, in buckets of 256 indices, and are released a bucket at a time as the
/// writer passes it (the bucket it is in array by array), a whole epoch once its snapshot ended (§207: a priority queue
/// by the pair before).</para>
/// <para><b>Memory</b>: arrays waiting for a snapshot are what the old code left as garbage for the next gen2 collection
/// (they were referenced by the snapshot anyway). Free arrays are kept, by length, up to <see cref="MaxFreeBytes"/>
/// (beyond it they are dropped to the GC): the next rewrite's early writes reuse them. They are not counted in
/// used_memory (like the memory a Redis fork copies on write); MEMORY PURGE drops them (<see cref="DropFree"/>).</para>
/// <para><b>Thread safety</b>: the store's owner only (every member); the snapshot writers' progress is read through
/// <see cref="KvSnapshotEpochs.MayOverwrite"/> (volatile reads).</para>
/// </remarks>
internal sealed class KvCopyOnWriteArrays
{
    /// <summary>Free arrays kept at most, in bytes (beyond it a released array is left to the GC): 64 MiB, a quarter of
    /// redis-benchmark's 1 KB keyspace of 100,000 keys or more rewritten under writes (~25,000 copy-on-writes per rewrite
    /// measured, h132).</summary>
    public const long MaxFreeBytes = 64L * 1024 * 1024;

    /// <summary>The bound in force (<see cref="MaxFreeBytes"/>; tests lower it).</summary>
    internal long FreeLimit { get; set; } = MaxFreeBytes;

    private readonly KvSnapshotEpochs _epochs;
    private readonly Dictionary<int, Stack<byte[]>> _free = [];
    private long _freeBytes;

    // The arrays waiting, by the epoch they were marked with (ascending: one group per running snapshot that left arrays,
    // rarely more than one), each group in buckets of BucketSize snapshot indices (§207: a priority queue by (epoch,
    // index) sifted log n levels per array released on the store's thread before, ~25,000 a rewrite in the 1 KB row).
    private const int BucketShift = 8, BucketSize = 1 << BucketShift;

    private sealed class EpochGroup(int epoch)
    {
        public readonly int Epoch = epoch;
        public List<(byte[] Array, int Index)>?[] Buckets = new List<(byte[] Array, int Index)>?[16];
        public int Next; // the buckets below it were released
        public int ScannedAt = -1; // the writer's count when the bucket at Next was last released array by array
    }

    private readonly List<EpochGroup> _groups = [];
    private readonly Stack<List<(byte[] Array, int Index)>> _spareBuckets = new();
    private int _waiting;

    internal KvCopyOnWriteArrays(KvSnapshotEpochs epochs) => _epochs = epochs;

    /// <summary>Arrays retired and still read by a running snapshot.</summary>
    public int Waiting => _waiting;

    /// <summary>Bytes of free arrays kept for reuse.</summary>
    public long FreeBytes => _freeBytes;

    /// <summary>New arrays a copy-on-write needed because none of its length was free (since the store was created).</summary>
    public long Allocated { get; private set; }

    /// <summary>Copy-on-writes served with a recycled array (since the store was created).</summary>
    public long Recycled { get; private set; }

    /// <summary>An array of exactly <paramref name="length"/> bytes that nobody else references, for the row's new value:
    /// a recycled one if one is free (its old bytes still in it: the caller overwrites all of them), else a new one.</summary>
    public byte[] Rent(int length)
    {
        if (_groups.Count > 0) Release(keep: true);
        if (_free.TryGetValue(length, out Stack<byte[]>? stack) && stack.TryPop(out byte[]? array))
        {
            _freeBytes -= length;
            Recycled++;
            return array;
        }
        Allocated++;
        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Takes <paramref name="array"/>, which the row has just let go of and the snapshot of
    /// <paramref name="epoch"/> still holds at <paramref name="index"/> (its <see cref="KvKeyedValue.SnapshotEpoch"/> and
    /// <see cref="KvKeyedValue.SnapshotIndex"/>): it is reused once that snapshot's writer has passed it or ended.</summary>
    public void Retire(byte[] array, int epoch, int index)
    {
        EpochGroup? group = null;
        int at = _groups.Count;
        while (at > 0 && _groups[at - 1].Epoch >= epoch)
        {
            if (_groups[at - 1].Epoch == epoch)
            {
                group = _groups[at - 1];
                break;
            }
            at--;
        }
        if (group is null) _groups.Insert(at, group = new EpochGroup(epoch));
        int b = index >> BucketShift;
        if (b < group.Next)
        {
            // The writer passed the whole bucket after the row looked (another thread): the array is free already.
            Keep(array);
            return;
        }
        if (b >= group.Buckets.Length) Array.Resize(ref group.Buckets, Math.Max(b + 1, group.Buckets.Length * 2));
        (group.Buckets[b] ??= _spareBuckets.TryPop(out var list) ? list : new List<(byte[] Array, int Index)>()).Add((array, index));
        _waiting++;
    }

    /// <summary>Drops the free arrays (MEMORY PURGE, the server's idle trim), those no snapshot reads any more included;
    /// the ones snapshots still hold stay until they are released.</summary>
    /// <returns>The bytes of the arrays dropped.</returns>
    public long DropFree()
    {
        long dropped = Release(keep: false);
        dropped += _freeBytes;
        _free.Clear();
        _freeBytes = 0;
        return dropped;
    }

    // Moves the arrays no snapshot reads any more to the free lists (keep) or drops them; returns the bytes dropped.
    private long Release(bool keep)
    {
        long dropped = 0;
        while (_groups.Count > 0)
        {
            EpochGroup g = _groups[0];
            int passed = _epochs.PassedBound(g.Epoch); // indices below it may be overwritten
            if (passed <= 0) break;
            int full = passed == int.MaxValue ? g.Buckets.Length : Math.Min(passed >> BucketShift, g.Buckets.Length);
            for (; g.Next < full; g.Next++)
            {
                if (g.Buckets[g.Next] is not { } bucket) continue;
                foreach ((byte[] array, _) in bucket) dropped += Free(array, keep);
                _waiting -= bucket.Count;
                g.Buckets[g.Next] = null;
                bucket.Clear();
                _spareBuckets.Push(bucket);
            }
            if (passed == int.MaxValue)
            {
                _groups.RemoveAt(0); // the snapshot ended: every array of its epoch is free
                continue;
            }
            // The oldest running snapshot: the bucket its writer is in, array by array, when its count moved.
            if (g.Next < g.Buckets.Length && g.ScannedAt != passed && g.Buckets[g.Next] is { } current)
            {
                g.ScannedAt = passed;
                for (int i = current.Count - 1; i >= 0; i--)
                {
                    if (current[i].Index >= passed) continue;
                    dropped += Free(current[i].Array, keep);
                    current[i] = current[^1];
                    current.RemoveAt(current.Count - 1);
                    _waiting--;
                }
            }
            break;
        }
        return dropped;
    }

    private long Free(byte[] array, bool keep)
    {
        if (!keep) return array.Length;
        Keep(array);
        return 0;
    }

    private void Keep(byte[] array)
    {
        if (_freeBytes + array.Length > FreeLimit) return;
        if (!_free.TryGetValue(array.Length, out Stack<byte[]>? stack)) _free[array.Length] = stack = new Stack<byte[]>();
        stack.Push(array);
        _freeBytes += array.Length;
    }
}
