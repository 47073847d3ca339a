using System.Buffers;

namespace EioSharp.Kv;

/// <summary>A hash: "listpack" (fields and values in one array, in insertion order, looked up by a linear scan) while
/// small, "hashtable" (<see cref="KvSlotTable"/>) past <c>hash-max-listpack-entries</c> fields or a field or value
/// longer than <c>hash-max-listpack-value</c> bytes, like Redis 7.0 (never converted back).</summary>
/// <remarks>In the listpack encoding an updated field keeps its place and a new field goes last, so HGETALL, HKEYS
/// and HSCAN list fields in Redis's order. <b>Thread safety</b>: none; owned by the store owner.</remarks>
internal sealed class KvHash : KvObject, IKvHashFields
{
    private const int RewriteItemsPerCommand = 64; // Redis's AOF_REWRITE_ITEMS_PER_CMD
    private const int ListpackEntryOverhead = 4; // listpack per-element header and back-length bytes, roughly
    private const int HashtableEntryOverhead = 72; // dictionary entry, slot and two array headers, roughly

    private byte[][]? _pairs; // listpack: field0, value0, field1, value1...
    private int _pairCount;
    private KvSlotTable? _table; // hashtable

    public KvHash() => _pairs = new byte[4][];

    public override KvType Type => KvType.Hash;

    public override string Encoding => _table is null ? "listpack" : "hashtable";

    public bool IsListpack => _table is null;

    public override long Length => Count;

    public int Count => _table?.Count ?? _pairCount;

    public byte[]? GetField(ReadOnlySpan<byte> field) => Get(field);

    public byte[]? Get(ReadOnlySpan<byte> field)
    {
        if (_table is not null) return _table.Get(field);
        int i = IndexOf(field);
        return i < 0 ? null : _pairs![2 * i + 1];
    }

    public bool Contains(ReadOnlySpan<byte> field) => _table?.Contains(field) ?? IndexOf(field) >= 0;

    /// <summary>Converts to a hashtable when a field or value longer than the listpack limit is about to be written
    /// (Redis's hashTypeTryConversion, run on the arguments before writing).</summary>
    public void ConvertForLength(int length, KvEncodingLimits limits)
    {
        if (_table is null && length > limits.HashMaxListpackValue) ConvertToHashtable();
    }

    /// <summary>Sets <paramref name="field"/>; true when it is new. Converts like Redis's hashTypeSet.</summary>
    public bool Set(byte[] field, byte[] value, KvEncodingLimits limits)
    {
        if (_table is null && (field.Length > limits.HashMaxListpackValue || value.Length > limits.HashMaxListpackValue)) ConvertToHashtable();
        if (_table is not null) return _table.Set(field, value);
        int i = IndexOf(field);
        if (i >= 0)
        {
            _pairs![2 * i + 1] = value;
            return false;
        }
        if (2 * _pairCount + 2 > _pairs!.Length) Array.Resize(ref _pairs, Math.Max(4, _pairs.Length * 2));
        _pairs[2 * _pairCount] = field;
        _pairs[2 * _pairCount + 1] = value;
        _pairCount++;
        if (_pairCount > limits.HashMaxListpackEntries) ConvertToHashtable();
        return true;
    }

    public bool Remove(ReadOnlySpan<byte> field)
    {
        if (_table is not null) return _table.Remove(field);
        int i = IndexOf(field);
        if (i < 0) return false;
        Array.Copy(_pairs!, 2 * i + 2, _pairs!, 2 * i, 2 * (_pairCount - i - 1));
        _pairCount--;
        _pairs![2 * _pairCount] = null!;
        _pairs[2 * _pairCount + 1] = null!;
        if (_pairs.Length > 16 && _pairCount * 8 < _pairs.Length) Array.Resize(ref _pairs, _pairs.Length / 2);
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
            for (int i = 0; i < _pairCount; i++) yield return new(_pairs![2 * i], _pairs[2 * i + 1]);
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
        int i = random.Next(_pairCount);
        return new(_pairs![2 * i], _pairs[2 * i + 1]);
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
            copy._pairs = null;
            copy._table = _table.Clone();
        }
        else
        {
            copy._pairs = (byte[][])_pairs!.Clone();
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
        long bytes = 48;
        int overhead = _table is null ? ListpackEntryOverhead : HashtableEntryOverhead;
        foreach (KeyValuePair<byte[], byte[]> pair in Entries()) bytes += pair.Key.Length + pair.Value.Length + overhead;
        return bytes;
    }

    private int IndexOf(ReadOnlySpan<byte> field)
    {
        byte[][] pairs = _pairs!;
        for (int i = 0; i < _pairCount; i++)
            if (pairs[2 * i].AsSpan().SequenceEqual(field)) return i;
        return -1;
    }

    private void ConvertToHashtable()
    {
        var table = new KvSlotTable(hasValues: true, _pairCount);
        for (int i = 0; i < _pairCount; i++) table.AddNew(_pairs![2 * i], _pairs[2 * i + 1]);
        _table = table;
        _pairs = null;
        _pairCount = 0;
    }
}
