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
/// order are free first. The arrays of one snapshot wait in slots by their index in it and a cursor releases them as far
/// as its writer has passed (§216: one sequential pass per snapshot); another epoch's, while that one's slots are in use
/// (two snapshots at once), wait in a priority queue by (epoch, index) and are released from its head.</para>
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
    private readonly PriorityQueue<byte[], long> _waiting = new(); // arrays of any other epoch than _slotsEpoch's
    private readonly Dictionary<int, Stack<byte[]>> _free = [];
    private long _freeBytes;
    private int _lastLength = -1; // the free list last used, by length (a keyspace of one value size: every rent)
    private Stack<byte[]>? _lastFree;

    // The arrays retired with one epoch, by their index in that snapshot (§216): a snapshot's writer passes its entries in
    // index order, so they become free in index order, and a cursor releases them with one sequential pass over this array
    // per snapshot instead of a priority queue's enqueue and dequeue (O(log n), a cache miss a level in a queue of tens of
    // thousands) per copy-on-write. Another epoch's arrays (two snapshots at once: a BGSAVE during an AOF rewrite) go to
    // the queue. Kept across snapshots (8 bytes per index of the largest seen; no allocation per snapshot).
    private byte[]?[] _slots = [];
    private int _slotsEpoch; // 0: the slots hold nothing and belong to no epoch
    private int _slotsFrom; // every index below is released (or was never retired)
    private int _slotsTo; // one past the highest index retired
    private int _slotsCount; // arrays in the slots

    internal KvCopyOnWriteArrays(KvSnapshotEpochs epochs) => _epochs = epochs;

    /// <summary>Arrays retired and not released yet (a running snapshot may still read them).</summary>
    public int Waiting => _waiting.Count + _slotsCount;

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
        Stack<byte[]>? stack = length == _lastLength ? _lastFree : FreeList(length, create: false);
        if (stack is not null && stack.TryPop(out byte[]? array))
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
        if (_slotsEpoch != epoch && _slotsCount == 0)
        {
            _slotsEpoch = epoch; // the slots are empty: they take this epoch's arrays from now on
            _slotsFrom = 0;
            _slotsTo = 0;
        }
        if (_slotsEpoch == epoch && index >= _slotsFrom)
        {
            if (index >= _slots.Length) Array.Resize(ref _slots, (int)Math.Min(Array.MaxLength, Math.Max(index + 1L, Math.Max(1024L, 2L * _slots.Length))));
            if (_slots[index] is null)
            {
                _slots[index] = array;
                _slotsCount++;
                if (index >= _slotsTo) _slotsTo = index + 1;
                return;
            }
        }
        _waiting.Enqueue(array, ((long)epoch << 32) | (uint)index);
    }

    /// <summary>Drops the free arrays (MEMORY PURGE, the server's idle trim), those no snapshot reads any more included;
    /// the ones snapshots still hold stay until they are released.</summary>
    /// <returns>The bytes of the arrays dropped.</returns>
    public long DropFree()
    {
        long dropped = 0;
        if (_slotsCount > 0)
        {
            int limit = _epochs.OverwritableBelow(_slotsEpoch, _slotsTo);
            for (int i = _slotsFrom; i < limit; i++)
            {
                if (_slots[i] is { } array)
                {
                    _slots[i] = null;
                    _slotsCount--;
                    dropped += array.Length;
                }
            }
            _slotsFrom = Math.Max(_slotsFrom, limit);
        }
        if (_slotsCount == 0)
        {
            _slots = []; // nothing waits in them: the next snapshot's copy-on-writes grow them again
            _slotsEpoch = 0;
            _slotsFrom = _slotsTo = 0;
        }
        while (_waiting.TryPeek(out byte[]? array, out long key) && _epochs.MayOverwrite((int)(key >> 32), (int)(uint)key))
        {
            _waiting.Dequeue();
            dropped += array.Length;
        }
        dropped += _freeBytes;
        _free.Clear();
        _lastLength = -1;
        _lastFree = null;
        _freeBytes = 0;
        return dropped;
    }

    // Moves the arrays no snapshot reads any more to the free lists: the slots' from the cursor up to where the snapshot's
    // writer is (or all of them once it ended), then the queue's from its head.
    private void Release()
    {
        if (_slotsCount > 0)
        {
            int limit = _epochs.OverwritableBelow(_slotsEpoch, _slotsTo);
            if (limit > _slotsFrom)
            {
                byte[]?[] slots = _slots;
                for (int i = _slotsFrom; i < limit; i++)
                {
                    if (slots[i] is { } array)
                    {
                        slots[i] = null;
                        _slotsCount--;
                        Free(array);
                    }
                }
                _slotsFrom = limit;
            }
        }
        while (_waiting.Count > 0 && _waiting.TryPeek(out byte[]? array, out long key) && _epochs.MayOverwrite((int)(key >> 32), (int)(uint)key))
        {
            _waiting.Dequeue();
            Free(array);
        }
    }

    private void Free(byte[] array)
    {
        if (_freeBytes + array.Length > FreeLimit) return;
        Stack<byte[]> stack = array.Length == _lastLength ? _lastFree! : FreeList(array.Length, create: true)!;
        stack.Push(array);
        _freeBytes += array.Length;
    }

    // The free list of arrays of `length` bytes (created if asked), remembered as the last one used.
    private Stack<byte[]>? FreeList(int length, bool create)
    {
        if (!_free.TryGetValue(length, out Stack<byte[]>? stack))
        {
            if (!create) return null;
            _free[length] = stack = new Stack<byte[]>();
        }
        _lastLength = length;
        _lastFree = stack;
        return stack;
    }
}
