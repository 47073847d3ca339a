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
/// order are free first: they wait in a priority queue by that pair and are released from its head.</para>
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
    private readonly PriorityQueue<byte[], long> _waiting = new();
    private readonly Dictionary<int, Stack<byte[]>> _free = [];
    private long _freeBytes;

    internal KvCopyOnWriteArrays(KvSnapshotEpochs epochs) => _epochs = epochs;

    /// <summary>Arrays retired and still read by a running snapshot.</summary>
    public int Waiting => _waiting.Count;

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
        Release();
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
    public void Retire(byte[] array, int epoch, int index) => _waiting.Enqueue(array, ((long)epoch << 32) | (uint)index);

    /// <summary>Drops the free arrays (MEMORY PURGE, the server's idle trim), those no snapshot reads any more included;
    /// the ones snapshots still hold stay until they are released.</summary>
    /// <returns>The bytes of the arrays dropped.</returns>
    public long DropFree()
    {
        long dropped = 0;
        while (_waiting.TryPeek(out byte[]? array, out long key) && _epochs.MayOverwrite((int)(key >> 32), (int)(uint)key))
        {
            _waiting.Dequeue();
            dropped += array.Length;
        }
        dropped += _freeBytes;
        _free.Clear();
        _freeBytes = 0;
        return dropped;
    }

    // Moves the arrays no snapshot reads any more from the head of the queue to the free lists.
    private void Release()
    {
        while (_waiting.TryPeek(out byte[]? array, out long key) && _epochs.MayOverwrite((int)(key >> 32), (int)(uint)key))
        {
            _waiting.Dequeue();
            if (_freeBytes + array.Length > FreeLimit) continue;
            if (!_free.TryGetValue(array.Length, out Stack<byte[]>? stack)) _free[array.Length] = stack = new Stack<byte[]>();
            stack.Push(array);
            _freeBytes += array.Length;
        }
    }
}
