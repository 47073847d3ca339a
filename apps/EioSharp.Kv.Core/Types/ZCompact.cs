using System.Buffers.Binary;
using System.Collections;

namespace EioSharp.Kv;

/// <summary>The "listpack" form of a small sorted set: entries (member, score) in (score, member) order, packed into
/// one <see cref="Listpack"/> byte array, two elements per entry (the member, then the score).</summary>
/// <remarks>
/// A score that is an integer of magnitude below 2^53 is stored as a little-endian two's complement integer of 0 to 7
/// bytes (a small score costs one byte, as in Redis's listpack); any other score as its 8 bytes of IEEE bits. Access by
/// index walks from the start (or from the last index read, so ascending scans are linear), like Redis's listpack;
/// the form holds at most <c>zset-max-listpack-entries</c> entries. <b>Thread safety</b>: none.
/// </remarks>
internal sealed class ZCompact : IEnumerable<ZEntry>
{
    private Listpack _pack = new(0);
    private int _count;
    private int _cacheIndex, _cacheOffset; // byte offset of entry _cacheIndex (a walk resumes there)

    public int Count => _count;

    /// <summary>Bytes allocated.</summary>
    public int Capacity => _pack.Capacity;

    public ZEntry this[int index]
    {
        get
        {
            int offset = OffsetOf(index);
            byte[] member = _pack.Read(offset, out int next).ToArray();
            double score = DecodeScore(_pack.Read(next, out int end));
            _cacheIndex = index + 1;
            _cacheOffset = end;
            return new ZEntry(member, score);
        }
    }

    public void Add(ZEntry e) => Insert(_count, e);

    public void AddRange(IEnumerable<ZEntry> entries)
    {
        foreach (ZEntry e in entries) Add(e);
    }

    public void Insert(int index, ZEntry e)
    {
        int offset = OffsetOf(index);
        Span<byte> score = stackalloc byte[8];
        int n = EncodeScore(e.Score, score);
        _pack.Insert(offset, e.Member);
        _pack.Insert(_pack.Skip(offset), score[..n]);
        _count++;
        ResetCache();
    }

    public void RemoveAt(int index) => RemoveRange(index, 1);

    public void RemoveRange(int index, int count)
    {
        if (count <= 0) return;
        int start = OffsetOf(index), end = start;
        for (int i = 0; i < count; i++) end = _pack.Skip(_pack.Skip(end));
        _pack.Remove(start, end);
        _count -= count;
        ResetCache();
    }

    public List<ZEntry> GetRange(int index, int count)
    {
        var list = new List<ZEntry>(count);
        for (int i = 0; i < count; i++) list.Add(this[index + i]);
        return list;
    }

    /// <summary>Drops the listpack's growth slack.</summary>
    public int TrimExcess() => _pack.TrimExcess();

    public ZCompact Clone() => new() { _pack = _pack.Clone(), _count = _count };

    public IEnumerator<ZEntry> GetEnumerator()
    {
        int offset = 0;
        for (int i = 0; i < _count; i++)
        {
            byte[] member = _pack.Read(offset, out offset).ToArray();
            double score = DecodeScore(_pack.Read(offset, out offset));
            yield return new ZEntry(member, score);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The index of the entry whose member is <paramref name="member"/>, or -1: one walk, nothing allocated.</summary>
    public int IndexOfMember(ReadOnlySpan<byte> member)
    {
        int offset = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_pack.Read(offset, out offset).SequenceEqual(member)) return i;
            offset = _pack.Skip(offset);
        }
        return -1;
    }

    /// <summary>The score of <paramref name="member"/>: one walk, nothing allocated; false when absent.</summary>
    public bool TryGetScore(ReadOnlySpan<byte> member, out double score)
    {
        int offset = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_pack.Read(offset, out offset).SequenceEqual(member))
            {
                score = DecodeScore(_pack.Read(offset, out _));
                return true;
            }
            offset = _pack.Skip(offset);
        }
        score = 0;
        return false;
    }

    /// <summary>Where (<paramref name="score"/>, <paramref name="member"/>) goes: the index of the first entry not below
    /// it in (score, member) order. One walk that stops there (a binary search would walk from the start for each probe:
    /// access by index is linear in a listpack), nothing allocated; an entry smaller than every other costs one step.</summary>
    public int InsertionPoint(double score, ReadOnlySpan<byte> member)
    {
        int offset = 0;
        for (int i = 0; i < _count; i++)
        {
            ReadOnlySpan<byte> m = _pack.Read(offset, out offset);
            if (ZEntry.Compare(DecodeScore(_pack.Read(offset, out offset)), m, score, member) >= 0) return i;
        }
        return _count;
    }

    private void ResetCache()
    {
        _cacheIndex = 0;
        _cacheOffset = 0;
    }

    private int OffsetOf(int index)
    {
        int i = 0, offset = 0;
        if (index >= _cacheIndex)
        {
            i = _cacheIndex;
            offset = _cacheOffset;
        }
        for (; i < index; i++) offset = _pack.Skip(_pack.Skip(offset));
        _cacheIndex = index;
        _cacheOffset = offset;
        return offset;
    }

    private static int EncodeScore(double score, Span<byte> target)
    {
        if (Math.Floor(score) == score && Math.Abs(score) < 9007199254740992.0 && !(score == 0 && double.IsNegative(score)))
        {
            long v = (long)score;
            int n = 0;
            while (!FitsIn(v, n)) n++; // at most 7: |v| < 2^53
            Span<byte> all = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(all, v);
            all[..n].CopyTo(target);
            return n;
        }
        BinaryPrimitives.WriteInt64LittleEndian(target, BitConverter.DoubleToInt64Bits(score));
        return 8;
    }

    // Whether v is representable as a signed integer of n bytes (n = 0: only zero).
    private static bool FitsIn(long v, int n) => n == 0 ? v == 0 : n >= 8 || (v >= -(1L << (8 * n - 1)) && v < (1L << (8 * n - 1)));

    private static double DecodeScore(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 8) return BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(bytes));
        if (bytes.Length == 0) return 0;
        long v = 0;
        for (int i = bytes.Length - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        int shift = 64 - 8 * bytes.Length;
        return (v << shift) >> shift; // sign-extend
    }
}
