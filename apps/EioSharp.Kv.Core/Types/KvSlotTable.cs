using System.Runtime.InteropServices;

namespace EioSharp.Kv;

/// <summary>The "hashtable" encoding of hashes and sets: an open-addressing index (an <c>int[]</c> of slot numbers,
/// linear probing, load at most 3/4) over a slot array that keeps elements in place, so that SCAN cursors (slot indexes)
/// and random picks (a random slot) work. Per element: its array, a slot reference and about 6 bytes of index.</summary>
/// <remarks>
/// A removed element leaves a hole that a later add reuses. When fewer than a quarter of the slots are used the
/// slots are compacted (order kept) and <see cref="Epoch"/> changes: a cursor of an older epoch restarts the scan,
/// so an element present during a whole scan is always returned (it may be returned twice), as Redis promises.
/// Random picks try random slots until one is used, which takes at most a few tries at that occupancy.
/// <para><b>Thread safety</b>: none; owned by the store owner.</para>
/// </remarks>
internal sealed class KvSlotTable
{
    private const int CursorIndexBits = 40; // cursor = epoch << 40 | slot index
    private const int CompactMinSlots = 64; // below this, holes cost nothing worth compacting

    private const int Tombstone = -1; // a removed entry in _index (probing goes on past it)

    private int[] _index; // slot + 1 per position, 0 free, Tombstone removed; length a power of two
    private int _count;
    private int _tombstones;
    private byte[]?[] _keys;
    private byte[]?[]? _values; // null: a set (no values)
    private Stack<int>? _free; // holes to reuse; created by the first removal (most tables never remove)
    private int _used; // slots [0, _used) were handed out
    private long _epoch;

    public KvSlotTable(bool hasValues, int capacity = 4)
    {
        capacity = Math.Max(capacity, 4);
        _index = new int[IndexSizeFor(capacity)];
        _keys = new byte[]?[capacity];
        _values = hasValues ? new byte[]?[capacity] : null;
    }

    public int Count => _count;

    /// <summary>Slots handed out (used or holes): the cursor range.</summary>
    public int SlotCount => _used;

    public long Epoch => _epoch;

    public byte[]? KeyAt(int slot) => _keys[slot];

    public byte[] ValueAt(int slot) => _values![slot]!;

    public bool TryGetSlot(ReadOnlySpan<byte> key, out int slot)
    {
        int at = Find(key);
        slot = at < 0 ? 0 : _index[at] - 1;
        return at >= 0;
    }

    public bool Contains(ReadOnlySpan<byte> key) => Find(key) >= 0;

    public byte[]? Get(ReadOnlySpan<byte> key) => TryGetSlot(key, out int slot) ? _values![slot] : null;

    /// <summary>Adds <paramref name="key"/> or replaces its value; true when it was added.</summary>
    public bool Set(byte[] key, byte[]? value)
    {
        if (TryGetSlot(key, out int slot))
        {
            if (_values is not null) _values[slot] = value;
            return false;
        }
        AddNew(key, value);
        return true;
    }

    /// <summary>Adds a key known to be absent (copies, conversions).</summary>
    public void AddNew(byte[] key, byte[]? value)
    {
        if ((long)(_count + _tombstones + 1) * 4 > (long)_index.Length * 3) Reindex(_count + 1);
        int slot = TakeSlot();
        _keys[slot] = key;
        if (_values is not null) _values[slot] = value;
        Insert(key, slot);
        _count++;
    }

    public bool Remove(ReadOnlySpan<byte> key)
    {
        int at = Find(key);
        if (at < 0) return false;
        int slot = _index[at] - 1;
        _index[at] = Tombstone;
        _tombstones++;
        _count--;
        _keys[slot] = null;
        if (_values is not null) _values[slot] = null;
        (_free ??= new Stack<int>()).Push(slot);
        MaybeCompact();
        return true;
    }

    /// <summary>A used slot picked uniformly at random (the table must not be empty).</summary>
    public int RandomSlot(Random random)
    {
        while (true)
        {
            int slot = random.Next(_used);
            if (_keys[slot] is not null) return slot;
        }
    }

    /// <summary>The used slots, in slot order.</summary>
    public IEnumerable<int> Slots()
    {
        for (int i = 0; i < _used; i++)
            if (_keys[i] is not null) yield return i;
    }

    /// <summary>Visits used slots from <paramref name="cursor"/> until <paramref name="count"/> were visited; returns the next cursor (0 at the end).</summary>
    public ulong Scan(ulong cursor, long count, Action<int> visit)
    {
        long mask = (1L << CursorIndexBits) - 1;
        long index = (long)(cursor & (ulong)mask);
        if (cursor != 0 && (long)(cursor >> CursorIndexBits) != _epoch) index = 0; // compacted since: restart
        long visited = 0, examined = 0, maxExamined = Math.Max(count, count * 10);
        while (index < _used && visited < count && examined < maxExamined)
        {
            int slot = (int)index++;
            examined++;
            if (_keys[slot] is null) continue;
            visited++;
            visit(slot);
        }
        return index >= _used ? 0 : (ulong)((_epoch << CursorIndexBits) | index);
    }

    public KvSlotTable Clone()
    {
        var copy = new KvSlotTable(_values is not null, Count);
        foreach (int slot in Slots()) copy.AddNew(_keys[slot]!, _values?[slot]);
        return copy;
    }

    /// <summary>Shrinks the slot arrays to the slots handed out (no hole moves, so cursors stay valid).</summary>
    /// <returns>Bytes released.</returns>
    public long TrimExcess()
    {
        int size = Math.Max(_used, 1);
        int slack = _keys.Length - size;
        if (slack <= 0) return 0;
        Array.Resize(ref _keys, size);
        if (_values is not null) Array.Resize(ref _values, size);
        return 8L * slack * (_values is null ? 1 : 2);
    }

    private int TakeSlot()
    {
        if (_free is { Count: > 0 }) return _free.Pop();
        if (_used == _keys.Length)
        {
            int size = (int)Math.Min(Array.MaxLength, _keys.Length * 2L);
            Array.Resize(ref _keys, size);
            if (_values is not null) Array.Resize(ref _values, size);
        }
        return _used++;
    }

    private void MaybeCompact()
    {
        if (_used <= CompactMinSlots || (long)Count * 4 >= _used) return;
        int write = 0;
        for (int read = 0; read < _used; read++)
        {
            byte[]? key = _keys[read];
            if (key is null) continue;
            if (write != read)
            {
                _keys[write] = key;
                if (_values is not null) _values[write] = _values[read];
            }
            write++;
        }
        Array.Clear(_keys, write, _used - write);
        if (_values is not null) Array.Clear(_values, write, _used - write);
        _used = write;
        _free = null;
        int size = Math.Max(4, write * 2);
        if (size < _keys.Length)
        {
            Array.Resize(ref _keys, size);
            if (_values is not null) Array.Resize(ref _values, size);
        }
        Reindex(_count);
        _epoch = (_epoch + 1) & ((1L << (63 - CursorIndexBits)) - 1);
    }

    private static int IndexSizeFor(int count)
    {
        int size = 8;
        while (size < (long)count * 2) size *= 2; // load at most 1/2 right after a rebuild
        return size;
    }

    private static int Hash(ReadOnlySpan<byte> key) => ByteArrayComparer.Instance.GetHashCode(key);

    // Position in _index of the key, or -1.
    private int Find(ReadOnlySpan<byte> key)
    {
        int[] index = _index;
        int mask = index.Length - 1;
        for (int at = Hash(key) & mask; ; at = (at + 1) & mask)
        {
            int v = index[at];
            if (v == 0) return -1;
            if (v > 0 && _keys[v - 1].AsSpan().SequenceEqual(key)) return at;
        }
    }

    private void Insert(byte[] key, int slot)
    {
        int mask = _index.Length - 1;
        int at = Hash(key) & mask;
        while (_index[at] > 0) at = (at + 1) & mask;
        if (_index[at] == Tombstone) _tombstones--;
        _index[at] = slot + 1;
    }

    // Rebuilds the index for `count` elements from the slots (drops tombstones).
    private void Reindex(int count)
    {
        _index = new int[IndexSizeFor(count)];
        _tombstones = 0;
        for (int slot = 0; slot < _used; slot++)
            if (_keys[slot] is { } key) Insert(key, slot);
    }
}
