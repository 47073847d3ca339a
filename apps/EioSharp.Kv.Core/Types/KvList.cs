using System.Buffers;
using System.Diagnostics;

namespace EioSharp.Kv;

/// <summary>A list value: while small (at most 128 elements of at most 64 bytes), all elements packed into one
/// <see cref="Listpack"/> array; past that, a deque of byte strings in a ring buffer (O(1) push and pop at both ends,
/// O(1) index).</summary>
/// <remarks>
/// Redis 7.0 stores every list as a quicklist (a linked list of listpacks); OBJECT ENCODING reports <c>quicklist</c>
/// whatever the size, as Redis 7.0 does. The ring buffer's capacity is a power of two; it grows by doubling and shrinks
/// by half when a quarter full, so memory follows the length. Elements are immutable arrays (never changed in place),
/// so <see cref="Clone"/> copies only the array of references. The small form costs a length byte per element instead
/// of an array object; operations on it walk the packed bytes (at most 128 elements), as Redis walks a listpack node.
/// <para><b>Thread safety</b>: none; owned by the store owner.</para>
/// </remarks>
internal sealed class KvList : KvObject, IKvElements
{
    private const int MinCapacity = 4; // smallest ring; a list of one element costs one small array
    private const int RewriteItemsPerCommand = 64; // Redis's AOF_REWRITE_ITEMS_PER_CMD
    private const int ObjectOverheadBytes = 48; // the KvList object and its ring array header
    private const int ElementOverheadBytes = 8 + 24; // one reference in the ring plus the byte[] header

    private const int PackedMaxCount = 128; // the small form's limits (ours: Redis 7.0 reports quicklist for every list)
    private const int PackedMaxElementBytes = 64;

    private byte[][] _items = []; // ring form
    private int _head; // index of the first element in _items
    private int _count;
    private bool _packed = true; // small form: the elements are in _pack
    private Listpack _pack = new(0);
    private int _cacheIndex, _cacheOffset; // small form: byte offset of element _cacheIndex (walks resume there)

    /// <inheritdoc/>
    public override KvType Type => KvType.List;

    /// <inheritdoc/>
    public override string Encoding => "quicklist";

    /// <inheritdoc/>
    public override long Length => _count;

    /// <summary>Number of elements.</summary>
    public int Count => _count;

    /// <summary>Element <paramref name="index"/> (0 is the head); the index must be in range.</summary>
    public byte[] this[int index]
    {
        get
        {
            Debug.Assert((uint)index < (uint)_count);
            if (_packed)
            {
                byte[] v = _pack.Read(OffsetOf(index), out int next).ToArray();
                _cacheIndex = index + 1;
                _cacheOffset = next;
                return v;
            }
            return _items[(_head + index) & (_items.Length - 1)];
        }
        set
        {
            Debug.Assert((uint)index < (uint)_count);
            if (_packed && value.Length > PackedMaxElementBytes) ConvertToRing();
            if (_packed)
            {
                _pack.Replace(OffsetOf(index), value);
                ResetCache();
                return;
            }
            _items[(_head + index) & (_items.Length - 1)] = value;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<byte[]> Elements
    {
        get
        {
            if (_packed)
            {
                int offset = 0;
                for (int i = 0; i < _count; i++) yield return _pack.Read(offset, out offset).ToArray();
                yield break;
            }
            for (int i = 0; i < _count; i++) yield return this[i];
        }
    }

    /// <summary>Adds an element at the head.</summary>
    public void PushLeft(byte[] value)
    {
        if (_packed && !FitsPacked(value, 1)) ConvertToRing();
        if (_packed)
        {
            _pack.Insert(0, value);
            _count++;
            ResetCache();
            return;
        }
        if (_count == _items.Length) Resize(_items.Length * 2);
        _head = (_head - 1) & (_items.Length - 1);
        _items[_head] = value;
        _count++;
    }

    /// <summary>Adds an element at the tail.</summary>
    public void PushRight(byte[] value)
    {
        if (_packed && !FitsPacked(value, 1)) ConvertToRing();
        if (_packed)
        {
            _pack.Append(value);
            _count++;
            return;
        }
        if (_count == _items.Length) Resize(_items.Length * 2);
        _items[(_head + _count) & (_items.Length - 1)] = value;
        _count++;
    }

    /// <summary>Adds an element at the head (<paramref name="left"/>) or the tail.</summary>
    public void Push(byte[] value, bool left)
    {
        if (left) PushLeft(value);
        else PushRight(value);
    }

    /// <summary>As <see cref="Push(byte[], bool)"/> from a span: the small form copies the bytes into its listpack (no array per
    /// element); an array is made only when the element goes into the ring.</summary>
    public void Push(ReadOnlySpan<byte> value, bool left)
    {
        if (_packed && value.Length <= PackedMaxElementBytes && _count + 1 <= PackedMaxCount)
        {
            if (left)
            {
                _pack.Insert(0, value);
                ResetCache();
            }
            else
            {
                _pack.Append(value);
            }
            _count++;
            return;
        }
        Push(value.ToArray(), left);
    }

    /// <summary>Removes the head (<paramref name="left"/>) or the tail and writes it to <paramref name="reply"/> as a bulk
    /// string (as <c>WriteBulkString(Pop(left))</c>, without an array per element in the small form); the list must
    /// not be empty.</summary>
    internal void PopTo(bool left, RespWriter reply)
    {
        Debug.Assert(_count > 0);
        if (!_packed)
        {
            reply.WriteBulkString(Pop(left));
            return;
        }
        int start = left ? 0 : OffsetOf(_count - 1);
        reply.WriteBulkString(_pack.Read(start, out int end));
        _pack.Remove(start, end);
        _count--;
        ResetCache();
    }

    /// <summary>Removes and returns the head (<paramref name="left"/>) or the tail; the list must not be empty.</summary>
    public byte[] Pop(bool left)
    {
        Debug.Assert(_count > 0);
        if (_packed)
        {
            int start = left ? 0 : OffsetOf(_count - 1);
            byte[] v = _pack.Read(start, out int end).ToArray();
            _pack.Remove(start, end);
            _count--;
            ResetCache();
            return v;
        }
        int slot = left ? _head : (_head + _count - 1) & (_items.Length - 1);
        byte[] value = _items[slot];
        _items[slot] = null!;
        if (left) _head = (_head + 1) & (_items.Length - 1);
        _count--;
        MaybeShrink();
        return value;
    }

    /// <summary>Inserts <paramref name="value"/> before element <paramref name="index"/> (<paramref name="index"/> ==
    /// <see cref="Count"/> appends); moves the shorter side.</summary>
    public void Insert(int index, byte[] value)
    {
        Debug.Assert((uint)index <= (uint)_count);
        if (index == 0)
        {
            PushLeft(value);
            return;
        }
        if (index == _count)
        {
            PushRight(value);
            return;
        }
        if (_packed && !FitsPacked(value, 1)) ConvertToRing();
        if (_packed)
        {
            _pack.Insert(OffsetOf(index), value);
            _count++;
            ResetCache();
            return;
        }
        if (_count == _items.Length) Resize(_items.Length * 2);
        int mask = _items.Length - 1;
        if (index < _count / 2)
        {
            _head = (_head - 1) & mask;
            for (int i = 0; i < index; i++) _items[(_head + i) & mask] = _items[(_head + i + 1) & mask];
        }
        else
        {
            for (int i = _count; i > index; i--) _items[(_head + i) & mask] = _items[(_head + i - 1) & mask];
        }
        _items[(_head + index) & mask] = value;
        _count++;
    }

    /// <summary>Keeps only the elements at indexes [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>).</summary>
    public void Keep(int start, int length)
    {
        Debug.Assert(start >= 0 && length >= 0 && start + length <= _count);
        if (_packed)
        {
            int keepFrom = OffsetOf(start);
            int keepTo = OffsetOf(start + length);
            _pack.Remove(keepTo, _pack.Used);
            _pack.Remove(0, keepFrom);
            _count = length;
            ResetCache();
            return;
        }
        int mask = _items.Length - 1;
        for (int i = 0; i < start; i++) _items[(_head + i) & mask] = null!;
        for (int i = start + length; i < _count; i++) _items[(_head + i) & mask] = null!;
        _head = (_head + start) & mask;
        _count = length;
        MaybeShrink();
    }

    /// <summary>Removes the elements for which <paramref name="remove"/> returns true, keeping the order of the others.</summary>
    /// <param name="remove">Decides per element; called once per element from the head or, when <paramref name="fromTail"/>, from the tail.</param>
    /// <param name="fromTail">Visit from the tail.</param>
    /// <returns>Elements removed.</returns>
    public int RemoveWhere(Func<byte[], bool> remove, bool fromTail)
    {
        if (_packed)
        {
            var all = new List<byte[]>(Elements);
            var keep = new bool[all.Count];
            int gone = 0;
            for (int k = 0; k < all.Count; k++)
            {
                int i = fromTail ? all.Count - 1 - k : k;
                keep[i] = !remove(all[i]);
                if (!keep[i]) gone++;
            }
            if (gone == 0) return 0;
            var pack = new Listpack(0);
            for (int i = 0; i < all.Count; i++)
                if (keep[i]) pack.Append(all[i]);
            _pack = pack;
            _count -= gone;
            ResetCache();
            return gone;
        }
        int mask = _items.Length - 1;
        int removed = 0;
        if (!fromTail)
        {
            int write = 0;
            for (int read = 0; read < _count; read++)
            {
                byte[] v = _items[(_head + read) & mask];
                if (remove(v)) removed++;
                else _items[(_head + write++) & mask] = v;
            }
            for (int i = write; i < _count; i++) _items[(_head + i) & mask] = null!;
        }
        else
        {
            int write = _count - 1;
            for (int read = _count - 1; read >= 0; read--)
            {
                byte[] v = _items[(_head + read) & mask];
                if (remove(v)) removed++;
                else _items[(_head + write--) & mask] = v;
            }
            for (int i = 0; i <= write; i++) _items[(_head + i) & mask] = null!;
            _head = (_head + write + 1) & mask;
        }
        _count -= removed;
        MaybeShrink();
        return removed;
    }

    /// <inheritdoc/>
    public override KvObject Clone()
    {
        if (_packed) return new KvList { _pack = _pack.Clone(), _count = _count };
        var copy = new KvList { _packed = false, _items = new byte[_items.Length][] };
        for (int i = 0; i < _count; i++) copy._items[i] = this[i];
        copy._count = _count;
        return copy;
    }

    /// <inheritdoc/>
    public override void WriteRewrite(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        for (int start = 0; start < _count; start += RewriteItemsPerCommand)
        {
            int n = Math.Min(RewriteItemsPerCommand, _count - start);
            AofWriter.WriteArrayHeader(output, 2 + n);
            AofWriter.WriteBulkString(output, "RPUSH"u8);
            AofWriter.WriteBulkString(output, key);
            for (int i = start; i < start + n; i++) AofWriter.WriteBulkString(output, this[i]); // ascending: walks resume
        }
    }

    /// <inheritdoc/>
    public override long EstimateBytes()
    {
        if (_packed) return ObjectOverheadBytes + _pack.Capacity;
        long bytes = ObjectOverheadBytes + (long)_items.Length * 8;
        for (int i = 0; i < _count; i++) bytes += ElementOverheadBytes - 8 + this[i].Length;
        return bytes;
    }

    /// <summary>Like <see cref="EstimateBytes()"/> from the first <paramref name="samples"/> elements (MEMORY USAGE SAMPLES).</summary>
    public long EstimateBytes(int samples)
    {
        if (_packed || samples <= 0 || samples >= _count) return EstimateBytes();
        long sampled = 0;
        for (int i = 0; i < samples; i++) sampled += ElementOverheadBytes - 8 + this[i].Length;
        return ObjectOverheadBytes + (long)_items.Length * 8 + sampled * _count / samples;
    }

    /// <inheritdoc/>
    public override long TrimExcess()
    {
        if (_packed) return _pack.TrimExcess();
        return 0; // the ring keeps its power-of-two capacity (index arithmetic)
    }

    private bool FitsPacked(byte[] value, int adding) => value.Length <= PackedMaxElementBytes && _count + adding <= PackedMaxCount;

    /// <summary>An emptied list in its small form goes back to the state of <c>new KvList()</c> (its listpack emptied: an
    /// array of the smallest size is kept and used only where a new list's would be that size, so that it grows and is
    /// estimated exactly as a new list's), to be reused for its key's next list
    /// (<see cref="KvDatabase.RemoveEmptiedRow"/>); false (unchanged) for a list in its ring form or not empty.</summary>
    internal bool TryResetForReuse()
    {
        if (!_packed || _count != 0) return false;
        _pack.Clear(); // a one-element list's 16-byte array stays: the ping-pong's push allocates nothing (session 32)
        _head = 0;
        ResetCache();
        return true;
    }

    private void ResetCache()
    {
        _cacheIndex = 0;
        _cacheOffset = 0;
    }

    // Small form: the byte offset of element `index` (== _count: the end).
    private int OffsetOf(int index)
    {
        int i = 0, offset = 0;
        if (index >= _cacheIndex)
        {
            i = _cacheIndex;
            offset = _cacheOffset;
        }
        for (; i < index; i++) offset = _pack.Skip(offset);
        _cacheIndex = index;
        _cacheOffset = offset;
        return offset;
    }

    private void ConvertToRing()
    {
        int capacity = MinCapacity;
        while (capacity < _count + 1) capacity *= 2;
        var items = new byte[capacity][];
        int i = 0;
        foreach (byte[] v in Elements) items[i++] = v;
        _packed = false;
        _pack = new Listpack(0);
        _items = items;
        _head = 0;
        ResetCache();
    }

    private void MaybeShrink()
    {
        if (_items.Length > MinCapacity && _count <= _items.Length / 4) Resize(_items.Length / 2);
    }

    private void Resize(int capacity)
    {
        if (capacity > Array.MaxLength) throw new InvalidOperationException("The list is too long.");
        var items = new byte[capacity][];
        for (int i = 0; i < _count; i++) items[i] = this[i];
        _items = items;
        _head = 0;
    }
}
