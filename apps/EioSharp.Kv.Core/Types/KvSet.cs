using System.Buffers;
using System.Globalization;

namespace EioSharp.Kv;

/// <summary>A set: "intset" (a sorted array of 64-bit integers) while every member is a canonical integer and there
/// are at most <c>set-max-intset-entries</c> members, "hashtable" (<see cref="KvSlotTable"/>) otherwise, like Redis
/// 7.0 (which has no listpack sets, and never converts a hashtable back).</summary>
/// <remarks>An intset lists its members in ascending order, as Redis does. <b>Thread safety</b>: none.</remarks>
internal sealed class KvSet : KvObject, IKvElements
{
    private const int RewriteItemsPerCommand = 64; // Redis's AOF_REWRITE_ITEMS_PER_CMD
    private const int HashtableEntryOverhead = 56; // dictionary entry, slot and array header, roughly

    private long[]? _ints; // intset, sorted
    private int _intCount;
    private KvSlotTable? _table; // hashtable

    private KvSet() { }

    /// <summary>An empty set in the encoding Redis's setTypeCreate picks for its first member: intset for an integer.</summary>
    public static KvSet CreateFor(ReadOnlySpan<byte> firstMember) =>
        RespNumbers.TryParseInt64(firstMember, out _) ? CreateIntset() : CreateHashtable();

    public static KvSet CreateIntset() => new() { _ints = new long[4] };

    public static KvSet CreateHashtable(int capacity = 4) => new() { _table = new KvSlotTable(hasValues: false, capacity) };

    public override KvType Type => KvType.Set;

    public override string Encoding => _table is null ? "intset" : "hashtable";

    public bool IsIntset => _table is null;

    public override long Length => Count;

    public int Count => _table?.Count ?? _intCount;

    public IEnumerable<byte[]> Elements => Members();

    public bool Contains(ReadOnlySpan<byte> member)
    {
        if (_table is not null) return _table.Contains(member);
        return RespNumbers.TryParseInt64(member, out long v) && Array.BinarySearch(_ints!, 0, _intCount, v) >= 0;
    }

    /// <summary>Adds a member; true when it was new. Converts like Redis's setTypeAdd.</summary>
    public bool Add(ReadOnlySpan<byte> member, KvEncodingLimits limits)
    {
        if (_table is null)
        {
            if (RespNumbers.TryParseInt64(member, out long v))
            {
                int i = Array.BinarySearch(_ints!, 0, _intCount, v);
                if (i >= 0) return false;
                i = ~i;
                if (_intCount == _ints!.Length) Array.Resize(ref _ints, _ints.Length * 2);
                Array.Copy(_ints, i, _ints, i + 1, _intCount - i);
                _ints[i] = v;
                _intCount++;
                if (_intCount > Math.Min(limits.SetMaxIntsetEntries, 1 << 30)) ConvertToHashtable();
                return true;
            }
            ConvertToHashtable();
        }
        if (_table!.Contains(member)) return false;
        _table.AddNew(member.ToArray(), null);
        return true;
    }

    public bool Remove(ReadOnlySpan<byte> member)
    {
        if (_table is not null) return _table.Remove(member);
        if (!RespNumbers.TryParseInt64(member, out long v)) return false;
        int i = Array.BinarySearch(_ints!, 0, _intCount, v);
        if (i < 0) return false;
        Array.Copy(_ints!, i + 1, _ints!, i, _intCount - i - 1);
        _intCount--;
        if (_ints!.Length > 16 && _intCount * 8 < _ints.Length) Array.Resize(ref _ints, _ints.Length / 2);
        return true;
    }

    /// <summary>The members in the encoding's order (ascending for an intset).</summary>
    public IEnumerable<byte[]> Members()
    {
        if (_table is not null)
        {
            foreach (int slot in _table.Slots()) yield return _table.KeyAt(slot)!;
        }
        else
        {
            for (int i = 0; i < _intCount; i++) yield return Format(_ints![i]);
        }
    }

    /// <summary>A uniformly random member (the set must not be empty).</summary>
    public byte[] Random(Random random)
    {
        if (_table is not null) return _table.KeyAt(_table.RandomSlot(random))!;
        return Format(_ints![random.Next(_intCount)]);
    }

    /// <summary>SSCAN: an intset returns everything at once with cursor 0 (like Redis); a hashtable scans slots.</summary>
    public ulong Scan(ulong cursor, long count, List<byte[]> output)
    {
        if (_table is null)
        {
            output.AddRange(Members());
            return 0;
        }
        KvSlotTable table = _table;
        return table.Scan(cursor, count, slot => output.Add(table.KeyAt(slot)!));
    }

    public override KvObject Clone()
    {
        if (_table is not null) return new KvSet { _table = _table.Clone() };
        return new KvSet { _ints = (long[])_ints!.Clone(), _intCount = _intCount };
    }

    public override void WriteRewrite(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        int left = Count;
        int inCommand = 0;
        foreach (byte[] member in Members())
        {
            if (inCommand == 0)
            {
                int n = Math.Min(left, RewriteItemsPerCommand);
                AofWriter.WriteArrayHeader(output, 2 + n);
                AofWriter.WriteBulkString(output, "SADD"u8);
                AofWriter.WriteBulkString(output, key);
                inCommand = n;
                left -= n;
            }
            AofWriter.WriteBulkString(output, member);
            inCommand--;
        }
    }

    public override long EstimateBytes()
    {
        if (_table is null) return 48 + 8L * _intCount;
        long bytes = 48;
        foreach (byte[] member in Members()) bytes += member.Length + HashtableEntryOverhead;
        return bytes;
    }

    public override long TrimExcess()
    {
        if (_table is not null) return _table.TrimExcess();
        int slack = _ints!.Length - Math.Max(_intCount, 1);
        if (slack <= 0) return 0;
        Array.Resize(ref _ints, Math.Max(_intCount, 1));
        return 8L * slack;
    }

    internal static byte[] Format(long v) => System.Text.Encoding.ASCII.GetBytes(v.ToString(CultureInfo.InvariantCulture));

    private void ConvertToHashtable()
    {
        var table = new KvSlotTable(hasValues: false, _intCount);
        for (int i = 0; i < _intCount; i++) table.AddNew(Format(_ints![i]), null);
        _table = table;
        _ints = null;
        _intCount = 0;
    }
}
