using System.Buffers;

namespace EioSharp.Kv;

/// <summary>A hash: "listpack" (fields and values packed into one <see cref="Listpack"/> byte array, in insertion order,
/// looked up by a linear scan) while
/// small, "hashtable" (<see cref="KvSlotTable"/>) past <c>hash-max-listpack-entries</c> fields or a field or value
/// longer than <c>hash-max-listpack-value</c> bytes, like Redis 7.0 (never converted back).</summary>
/// <remarks>In the listpack encoding an updated field keeps its place and a new field goes last, so HGETALL, HKEYS
/// and HSCAN list fields in Redis's order. <b>Thread safety</b>: none; owned by the store owner.</remarks>
internal sealed class KvHash : KvObject, IKvHashFields
{
    private const int RewriteItemsPerCommand = 64; // Redis's AOF_REWRITE_ITEMS_PER_CMD
    private const int HashtableEntryOverhead = 72; // dictionary entry, slot and two array headers, roughly

    private Listpack _pack = new(0); // listpack: field0, value0, field1, value1... (empty once a hashtable)
    private int _pairCount;
    private KvSlotTable? _table; // hashtable

    public KvHash() { }

    public override KvType Type => KvType.Hash;

    public override string Encoding => _table is null ? "listpack" : "hashtable";

    public bool IsListpack => _table is null;

    public override long Length => Count;

    public int Count => _table?.Count ?? _pairCount;

    public byte[]? GetField(ReadOnlySpan<byte> field) => Get(field);

    public byte[]? Get(ReadOnlySpan<byte> field)
    {
        if (_table is not null) return _table.Get(field);
        int at = IndexOf(field);
        return at < 0 ? null : _pack.Read(_pack.Skip(at), out _).ToArray();
    }

    public bool Contains(ReadOnlySpan<byte> field) => _table?.Contains(field) ?? IndexOf(field) >= 0;

    /// <summary>Converts to a hashtable when a field or value longer than the listpack limit is about to be written
    /// (Redis's hashTypeTryConversion, run on the arguments before writing).</summary>
    public void ConvertForLength(int length, KvEncodingLimits limits)
    {
        if (_table is null && length > limits.HashMaxListpackValue) ConvertToHashtable();
    }

    /// <summary><see cref="Set(byte[], byte[], KvEncodingLimits)"/> from spans (HSET's arguments): the listpack form
    /// copies the bytes into the pack, so arrays are made only for the hashtable form (no two arrays per HSET of a small
    /// hash).</summary>
    public bool Set(ReadOnlySpan<byte> field, ReadOnlySpan<byte> value, KvEncodingLimits limits)
    {
        if (_table is null && (field.Length > limits.HashMaxListpackValue || value.Length > limits.HashMaxListpackValue)) ConvertToHashtable();
        if (_table is not null) return _table.Set(field.ToArray(), value.ToArray());
        int at = IndexOf(field);
        if (at >= 0)
        {
            _pack.Replace(_pack.Skip(at), value);
            return false;
        }
        _pack.Append(field);
        _pack.Append(value);
        _pairCount++;
        if (_pairCount > limits.HashMaxListpackEntries) ConvertToHashtable();
        return true;
    }

    /// <summary>Sets <paramref name="field"/>; true when it is new. Converts like Redis's hashTypeSet. The hashtable form
    /// keeps the arrays given (no copy); the listpack form is the span overload's.</summary>
    public bool Set(byte[] field, byte[] value, KvEncodingLimits limits)
    {
        if (_table is null && (field.Length > limits.HashMaxListpackValue || value.Length > limits.HashMaxListpackValue)) ConvertToHashtable();
        return _table is not null ? _table.Set(field, value) : Set((ReadOnlySpan<byte>)field, value, limits);
    }

    public bool Remove(ReadOnlySpan<byte> field)
    {
        if (_table is not null) return _table.Remove(field);
        int at = IndexOf(field);
        if (at < 0) return false;
        _pack.Remove(at, _pack.Skip(_pack.Skip(at)));
        _pairCount--;
        return true;
    }

    /// <summary>Fields and values in the encoding's order (insertion order for a listpack).</summary>
    public IEnumerable<KeyValuePair<byte[], byte[]>> Entries()
    {
        if (_table is not null)
        {
            foreach (int slot in _table.Slots()) yield return new(_table.KeyAt(slot)!, _table.ValueAt(slot));
        }
        else
        {
            for (int at = 0, i = 0; i < _pairCount; i++)
            {
                byte[] field = _pack.Read(at, out at).ToArray();
                yield return new(field, _pack.Read(at, out at).ToArray());
            }
        }
    }

    /// <summary>A uniformly random field and its value (the hash must not be empty).</summary>
    public KeyValuePair<byte[], byte[]> Random(Random random)
    {
        if (_table is not null)
        {
            int slot = _table.RandomSlot(random);
            return new(_table.KeyAt(slot)!, _table.ValueAt(slot));
        }
        int pick = random.Next(_pairCount), offset = 0;
        for (int i = 0; i < pick; i++) offset = _pack.Skip(_pack.Skip(offset));
        byte[] f = _pack.Read(offset, out offset).ToArray();
        return new(f, _pack.Read(offset, out _).ToArray());
    }

    /// <summary>HSCAN: a listpack returns everything at once with cursor 0 (like Redis); a hashtable scans slots.</summary>
    public ulong Scan(ulong cursor, long count, List<KeyValuePair<byte[], byte[]>> output)
    {
        if (_table is null)
        {
            output.AddRange(Entries());
            return 0;
        }
        KvSlotTable table = _table;
        return table.Scan(cursor, count, slot => output.Add(new(table.KeyAt(slot)!, table.ValueAt(slot))));
    }

    public override KvObject Clone()
    {
        var copy = new KvHash();
        if (_table is not null)
        {
            copy._table = _table.Clone();
        }
        else
        {
            copy._pack = _pack.Clone();
            copy._pairCount = _pairCount;
        }
        return copy;
    }

    public override void WriteRewrite(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        int left = Count;
        int inCommand = 0;
        foreach (KeyValuePair<byte[], byte[]> pair in Entries())
        {
            if (inCommand == 0)
            {
                int n = Math.Min(left, RewriteItemsPerCommand);
                AofWriter.WriteArrayHeader(output, 2 + 2 * n);
                AofWriter.WriteBulkString(output, "HSET"u8);
                AofWriter.WriteBulkString(output, key);
                inCommand = n;
                left -= n;
            }
            AofWriter.WriteBulkString(output, pair.Key);
            AofWriter.WriteBulkString(output, pair.Value);
            inCommand--;
        }
    }

    public override long EstimateBytes()
    {
        if (_table is null) return 48 + _pack.Capacity;
        long bytes = 48;
        int overhead = HashtableEntryOverhead;
        foreach (KeyValuePair<byte[], byte[]> pair in Entries()) bytes += pair.Key.Length + pair.Value.Length + overhead;
        return bytes;
    }

    public override long TrimExcess() => _table?.TrimExcess() ?? _pack.TrimExcess();

    // Byte offset of the field's element in the listpack, or -1.
    private int IndexOf(ReadOnlySpan<byte> field)
    {
        for (int at = 0, i = 0; i < _pairCount; i++)
        {
            int start = at;
            if (_pack.Read(at, out at).SequenceEqual(field)) return start;
            at = _pack.Skip(at);
        }
        return -1;
    }

    private void ConvertToHashtable()
    {
        var table = new KvSlotTable(hasValues: true, _pairCount);
        foreach (KeyValuePair<byte[], byte[]> pair in Entries()) table.AddNew(pair.Key, pair.Value);
        _table = table;
        _pack = new Listpack(0);
        _pairCount = 0;
    }
}
