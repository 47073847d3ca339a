namespace EioSharp.Kv;

/// <summary>A listpack: elements packed into one <c>byte[]</c>, each a varint length and its bytes, read by a linear
/// walk (Redis's listpack idea; the exact byte layout is ours). Used by the small encodings of hashes and lists.</summary>
/// <remarks>
/// Cost per element: its bytes plus one length byte (two from 128 bytes up), against one array object per element
/// otherwise. Growth keeps at most a quarter of slack, so a filled listpack is close to its content's size.
/// <para><b>Thread safety</b>: none.</para>
/// </remarks>
internal struct Listpack
{
    private const int MinCapacity = 16;

    private byte[] _data;
    private int _used;

    public Listpack(int capacity) => _data = capacity == 0 ? [] : new byte[Math.Max(capacity, MinCapacity)];

    /// <summary>Bytes in use.</summary>
    public readonly int Used => _used;

    /// <summary>Bytes allocated.</summary>
    public readonly int Capacity => _data.Length;

    /// <summary>The element starting at <paramref name="offset"/>; <paramref name="next"/> is where the following one starts.</summary>
    public readonly ReadOnlySpan<byte> Read(int offset, out int next)
    {
        int header = ReadLength(_data, offset, out int length);
        next = offset + header + length;
        return _data.AsSpan(offset + header, length);
    }

    /// <summary>Offset just past the element at <paramref name="offset"/>.</summary>
    public readonly int Skip(int offset)
    {
        int header = ReadLength(_data, offset, out int length);
        return offset + header + length;
    }

    /// <summary>Appends one element.</summary>
    public void Append(ReadOnlySpan<byte> element) => Insert(_used, element);

    /// <summary>Inserts one element at byte <paramref name="offset"/> (an element boundary).</summary>
    public void Insert(int offset, ReadOnlySpan<byte> element)
    {
        int size = EncodedSize(element.Length);
        Splice(offset, 0, size);
        Write(offset, element);
    }

    /// <summary>Replaces the element at <paramref name="offset"/> by <paramref name="element"/>.</summary>
    public void Replace(int offset, ReadOnlySpan<byte> element)
    {
        int end = Skip(offset);
        Splice(offset, end - offset, EncodedSize(element.Length));
        Write(offset, element);
    }

    /// <summary>Removes the bytes [<paramref name="offset"/>, <paramref name="end"/>) (whole elements).</summary>
    public void Remove(int offset, int end)
    {
        Splice(offset, end - offset, 0);
        if (_data.Length > 64 && _used * 2 < _data.Length) Array.Resize(ref _data, Math.Max(MinCapacity, _used + _used / 4));
    }

    /// <summary>Empties the listpack for reuse as a new one (a kept list, <see cref="KvList.TryResetForReuse"/>): an array of
    /// the smallest capacity stays for the next insert, which uses it only where a new listpack's first insert would
    /// allocate that size (so the capacity, and MEMORY USAGE, read as a new listpack's); a bigger one is dropped.</summary>
    public void Clear()
    {
        if (_data.Length != MinCapacity) _data = [];
        _used = 0;
    }

    /// <summary>Drops the growth slack: the array becomes exactly <see cref="Used"/> bytes (run when the server is idle).</summary>
    /// <returns>Bytes released.</returns>
    public int TrimExcess()
    {
        int slack = _data.Length - _used;
        if (slack <= 0) return 0;
        _data = _used == 0 ? [] : _data.AsSpan(0, _used).ToArray();
        return slack;
    }

    public readonly Listpack Clone() => new() { _data = _data.AsSpan(0, _used).ToArray(), _used = _used };

    public static int EncodedSize(int length) => LengthSize(length) + length;

    private void Write(int offset, ReadOnlySpan<byte> element)
    {
        uint v = (uint)element.Length;
        while (v >= 0x80)
        {
            _data[offset++] = (byte)(v | 0x80);
            v >>= 7;
        }
        _data[offset++] = (byte)v;
        element.CopyTo(_data.AsSpan(offset));
    }

    // Replaces `remove` bytes at `offset` by `insert` bytes of room (contents undefined).
    private void Splice(int offset, int remove, int insert)
    {
        int used = _used - remove + insert;
        // An empty listpack's kept array (Clear) is used only at the capacity a new listpack would allocate here.
        if (used > _data.Length || (_used == 0 && used > 0 && _data.Length != Math.Max(MinCapacity, used + (long)used / 4)))
        {
            long capacity = Math.Max(MinCapacity, used + (long)used / 4);
            if (capacity > Array.MaxLength) capacity = Math.Max(used, Array.MaxLength);
            var data = new byte[capacity];
            _data.AsSpan(0, offset).CopyTo(data);
            _data.AsSpan(offset + remove, _used - offset - remove).CopyTo(data.AsSpan(offset + insert));
            _data = data;
        }
        else if (remove != insert)
        {
            _data.AsSpan(offset + remove, _used - offset - remove).CopyTo(_data.AsSpan(offset + insert));
        }
        _used = used;
    }

    private static int LengthSize(int length) => length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5;

    private static int ReadLength(byte[] source, int offset, out int length)
    {
        uint v = 0;
        int shift = 0, i = offset;
        byte b;
        do
        {
            b = source[i++];
            v |= (uint)(b & 0x7F) << shift;
            shift += 7;
        }
        while ((b & 0x80) != 0);
        length = (int)v;
        return i - offset;
    }
}
