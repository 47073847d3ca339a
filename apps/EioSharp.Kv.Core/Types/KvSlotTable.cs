using System.Runtime.InteropServices;

namespace EioSharp.Kv;

/// <summary>The "hashtable" encoding of hashes and sets: a dictionary from element to slot over a slot array that
/// keeps elements in place, so that SCAN cursors (slot indexes) and random picks (a random slot) work.</summary>
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

    private readonly Dictionary<byte[], int> _index;
    private readonly Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private byte[]?[] _keys;
    private byte[]?[]? _values; // null: a set (no values)
    private readonly Stack<int> _free = new();
    private int _used; // slots [0, _used) were handed out
    private long _epoch;

    public KvSlotTable(bool hasValues, int capacity = 4)
    {
        capacity = Math.Max(capacity, 4);
        _index = new Dictionary<byte[], int>(capacity, ByteArrayComparer.Instance);
        _lookup = _index.GetAlternateLookup<ReadOnlySpan<byte>>();
        _keys = new byte[]?[capacity];
        _values = hasValues ? new byte[]?[capacity] : null;
    }

    public int Count => _index.Count;

    /// <summary>Slots handed out (used or holes): the cursor range.</summary>
    public int SlotCount => _used;

    public long Epoch => _epoch;

    public byte[]? KeyAt(int slot) => _keys[slot];

    public byte[] ValueAt(int slot) => _values![slot]!;

    public bool TryGetSlot(ReadOnlySpan<byte> key, out int slot) => _lookup.TryGetValue(key, out slot);

    public bool Contains(ReadOnlySpan<byte> key) => _lookup.ContainsKey(key);

    public byte[]? Get(ReadOnlySpan<byte> key) => _lookup.TryGetValue(key, out int slot) ? _values![slot] : null;

    /// <summary>Adds <paramref name="key"/> or replaces its value; true when it was added.</summary>
    public bool Set(byte[] key, byte[]? value)
    {
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_index, key, out bool exists);
        if (exists)
        {
            if (_values is not null) _values[slot] = value;
            return false;
        }
        slot = TakeSlot();
        _keys[slot] = key;
        if (_values is not null) _values[slot] = value;
        return true;
    }

    /// <summary>Adds a key known to be absent (copies, conversions).</summary>
    public void AddNew(byte[] key, byte[]? value)
    {
        int slot = TakeSlot();
        _index.Add(key, slot);
        _keys[slot] = key;
        if (_values is not null) _values[slot] = value;
    }

    public bool Remove(ReadOnlySpan<byte> key)
    {
        if (!_lookup.Remove(key, out _, out int slot)) return false;
        _keys[slot] = null;
        if (_values is not null) _values[slot] = null;
        _free.Push(slot);
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

    private int TakeSlot()
    {
        if (_free.Count > 0) return _free.Pop();
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
                CollectionsMarshal.GetValueRefOrNullRef(_index, key) = write;
            }
            write++;
        }
        Array.Clear(_keys, write, _used - write);
        if (_values is not null) Array.Clear(_values, write, _used - write);
        _used = write;
        _free.Clear();
        int size = Math.Max(4, write * 2);
        if (size < _keys.Length)
        {
            Array.Resize(ref _keys, size);
            if (_values is not null) Array.Resize(ref _values, size);
        }
        _epoch = (_epoch + 1) & ((1L << (63 - CursorIndexBits)) - 1);
    }
}
