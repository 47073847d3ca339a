using System.Buffers;
using System.Globalization;

namespace EioSharp.Kv;

/// <summary>A score interval of ZRANGEBYSCORE and friends: <c>(1</c> is exclusive, <c>-inf</c>/<c>+inf</c> unbounded.</summary>
internal readonly record struct ZScoreRange(double Min, bool MinExclusive, double Max, bool MaxExclusive)
{
    public bool AboveMin(double s) => MinExclusive ? s > Min : s >= Min;

    public bool BelowMax(double s) => MaxExclusive ? s < Max : s <= Max;

    /// <summary>Redis's zslIsInRange: false when the interval is empty.</summary>
    public bool IsEmpty => Min > Max || (Min == Max && (MinExclusive || MaxExclusive));
}

/// <summary>A lex interval of ZRANGEBYLEX: <c>-</c> and <c>+</c> (the infinities), <c>[a</c> inclusive, <c>(a</c> exclusive.</summary>
internal readonly record struct ZLexRange(byte[] Min, bool MinExclusive, bool MinIsNegInf, bool MinIsPosInf, byte[] Max, bool MaxExclusive, bool MaxIsNegInf, bool MaxIsPosInf)
{
    public bool AboveMin(ReadOnlySpan<byte> m)
    {
        if (MinIsNegInf) return true;
        if (MinIsPosInf) return false;
        int c = m.SequenceCompareTo(Min);
        return MinExclusive ? c > 0 : c >= 0;
    }

    public bool BelowMax(ReadOnlySpan<byte> m)
    {
        if (MaxIsPosInf) return true;
        if (MaxIsNegInf) return false;
        int c = m.SequenceCompareTo(Max);
        return MaxExclusive ? c < 0 : c <= 0;
    }

    /// <summary>Redis's zslIsInLexRange pre-check: false when the interval is empty.</summary>
    public bool IsEmpty
    {
        get
        {
            if (MinIsPosInf || MaxIsNegInf) return true;
            if (MinIsNegInf || MaxIsPosInf) return false;
            int c = Min.AsSpan().SequenceCompareTo(Max);
            return c > 0 || (c == 0 && (MinExclusive || MaxExclusive));
        }
    }
}

/// <summary>A sorted set: members with scores, ordered by score then member bytes.</summary>
/// <remarks>
/// Two representations, as Redis has: a small set (at most <c>zset-max-listpack-entries</c> members, each at most
/// <c>zset-max-listpack-value</c> bytes) is one packed byte array of entries (<see cref="ZCompact"/>, OBJECT ENCODING <c>listpack</c>; lookups by member
/// scan it, as Redis scans its listpack); past either threshold it becomes a <see cref="ZSkipList"/> (O(log n) rank and
/// range) plus a dictionary member → score (O(1) ZSCORE), OBJECT ENCODING <c>skiplist</c>. It never converts back,
/// except that destinations of ZUNIONSTORE-like commands are built compact when they fit (<see cref="ShrinkIfFits"/>).
/// Like Redis's listpack, which stores scores as text, the compact form turns -0 into 0.
/// <para><b>Thread safety</b>: none; owned by the store owner.</para>
/// </remarks>
internal sealed class KvZSet : KvObject, IKvElements
{
    private const int RewriteChunk = 64; // Redis's AOF_REWRITE_ITEMS_PER_CMD

    private ZCompact? _compact;
    private ZSkipList? _list;
    private Dictionary<byte[], double>? _dict;
    private Dictionary<byte[], double>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

    private KvZSet(bool compact)
    {
        if (compact) _compact = new ZCompact();
        else InitSkipList();
    }

    /// <summary>An empty sorted set in the representation Redis would pick for a new key whose first member has
    /// <paramref name="firstMemberLength"/> bytes.</summary>
    public static KvZSet Create(KvEncodingLimits limits, int firstMemberLength) =>
        new(limits.ZSetMaxListpackEntries > 0 && firstMemberLength <= limits.ZSetMaxListpackValue);

    /// <summary>An empty sorted set in the full representation (destinations of store commands before <see cref="ShrinkIfFits"/>).</summary>
    public static KvZSet CreateSkipList() => new(false);

    private void InitSkipList()
    {
        _list = new ZSkipList();
        _dict = new Dictionary<byte[], double>(ByteArrayComparer.Instance);
        _lookup = _dict.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public override KvType Type => KvType.ZSet;

    public override string Encoding => _compact is not null ? "listpack" : "skiplist";

    public bool IsCompact => _compact is not null;

    public override long Length => _compact?.Count ?? _list!.Length;

    public int Count => (int)Length;

    public IEnumerable<byte[]> Elements
    {
        get
        {
            foreach (ZEntry e in Range(0, Length - 1, reverse: false)) yield return e.Member;
        }
    }

    // ------------------------------------------------------------------ lookups

    public bool TryGetScore(ReadOnlySpan<byte> member, out double score)
    {
        return _compact is null ? _lookup.TryGetValue(member, out score) : _compact.TryGetScore(member, out score);
    }

    /// <summary>The 0-based rank of <paramref name="member"/> in ascending order, or -1.</summary>
    public long Rank(ReadOnlySpan<byte> member)
    {
        if (_compact is not null)
        {
            for (int i = 0; i < _compact.Count; i++)
                if (_compact[i].Member.AsSpan().SequenceEqual(member)) return i;
            return -1;
        }
        return _lookup.TryGetValue(member, out double score) ? _list!.Rank(score, member) : -1;
    }

    /// <summary>The entry at 0-based ascending <paramref name="rank"/>.</summary>
    public ZEntry At(long rank)
    {
        if (_compact is not null) return _compact[(int)rank];
        ZSkipList.Node n = _list!.At(rank);
        return new ZEntry(n.Member, n.Score);
    }

    /// <summary>The entries of ascending ranks <paramref name="start"/>..<paramref name="end"/> (inclusive, valid), in
    /// ascending order or, when <paramref name="reverse"/>, from <paramref name="end"/> down to <paramref name="start"/>.</summary>
    public IEnumerable<ZEntry> Range(long start, long end, bool reverse)
    {
        if (start > end || Length == 0) yield break;
        if (_compact is not null)
        {
            if (reverse) for (long i = end; i >= start; i--) yield return _compact[(int)i];
            else for (long i = start; i <= end; i++) yield return _compact[(int)i];
            yield break;
        }
        ZSkipList.Node? n = _list!.At(reverse ? end : start);
        for (long left = end - start + 1; left > 0 && n is not null; left--)
        {
            yield return new ZEntry(n.Member, n.Score);
            n = reverse ? n.Backward : n.Next;
        }
    }

    /// <summary>Number of entries whose score is below the range (the ascending rank of the first one in it).</summary>
    public long CountBelow(in ZScoreRange range)
    {
        if (_compact is not null)
        {
            int lo = 0, hi = _compact.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (!range.AboveMin(_compact[mid].Score)) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
        return _list!.CountWhile(range, static (r, n) => !r.AboveMin(n.Score));
    }

    /// <summary>Number of entries whose score is at most the range's max (the ascending rank just past the last one in it).</summary>
    public long CountUpToMax(in ZScoreRange range)
    {
        if (_compact is not null)
        {
            int lo = 0, hi = _compact.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (range.BelowMax(_compact[mid].Score)) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
        return _list!.CountWhile(range, static (r, n) => r.BelowMax(n.Score));
    }

    public long CountBelow(in ZLexRange range)
    {
        if (_compact is not null)
        {
            int lo = 0, hi = _compact.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (!range.AboveMin(_compact[mid].Member)) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
        return _list!.CountWhile(range, static (r, n) => !r.AboveMin(n.Member));
    }

    public long CountUpToMax(in ZLexRange range)
    {
        if (_compact is not null)
        {
            int lo = 0, hi = _compact.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (range.BelowMax(_compact[mid].Member)) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
        return _list!.CountWhile(range, static (r, n) => r.BelowMax(n.Member));
    }

    // ------------------------------------------------------------------ changes

    /// <summary>Sets the score of <paramref name="member"/>, adding it when absent; converts to the skip list when the
    /// set outgrows the compact thresholds.</summary>
    /// <returns>True when the member was added, false when it existed (its score replaced).</returns>
    public bool Set(byte[] member, double score, KvEncodingLimits limits)
    {
        if (_compact is not null)
        {
            int at = IndexOf(member);
            if (at < 0 && (_compact.Count + 1 > limits.ZSetMaxListpackEntries || member.Length > limits.ZSetMaxListpackValue))
            {
                ConvertToSkipList();
            }
            else
            {
                if (score == 0) score = 0; // the listpack stores "0" for -0
                if (at >= 0)
                {
                    member = _compact[at].Member;
                    _compact.RemoveAt(at);
                }
                _compact.Insert(InsertionPoint(score, member), new ZEntry(member, score));
                return at < 0;
            }
        }
        if (_lookup.TryGetValue(member, out byte[]? stored, out double old))
        {
            if (old != score || double.IsNegative(old) != double.IsNegative(score))
            {
                _list!.UpdateScore(old, stored, score);
                _dict![stored] = score;
            }
            return false;
        }
        _list!.Insert(score, member);
        _dict!.Add(member, score);
        return true;
    }

    /// <summary>Removes <paramref name="member"/>; false when absent.</summary>
    public bool Remove(ReadOnlySpan<byte> member)
    {
        if (_compact is not null)
        {
            int at = IndexOf(member);
            if (at < 0) return false;
            _compact.RemoveAt(at);
            return true;
        }
        if (!_lookup.TryGetValue(member, out byte[]? key, out double score)) return false;
        _list!.Delete(score, key);
        _dict!.Remove(key);
        return true;
    }

    /// <summary>Removes ascending ranks <paramref name="start"/>..<paramref name="end"/> (inclusive, valid) and returns them in order.</summary>
    public List<ZEntry> RemoveRange(long start, long end)
    {
        var removed = new List<ZEntry>((int)Math.Max(0, end - start + 1));
        if (start > end) return removed;
        if (_compact is not null)
        {
            removed.AddRange(_compact.GetRange((int)start, (int)(end - start + 1)));
            _compact.RemoveRange((int)start, (int)(end - start + 1));
            return removed;
        }
        removed.AddRange(Range(start, end, reverse: false));
        foreach (ZEntry e in removed)
        {
            _list!.Delete(e.Score, e.Member);
            _dict!.Remove(e.Member);
        }
        return removed;
    }

    private int IndexOf(ReadOnlySpan<byte> member) => _compact!.IndexOfMember(member);

    private int InsertionPoint(double score, byte[] member) => _compact!.InsertionPoint(score, member);

    /// <summary>Converts the compact form to the skip list (no-op when already converted).</summary>
    public void ConvertToSkipList()
    {
        if (_compact is null) return;
        ZCompact entries = _compact;
        _compact = null;
        InitSkipList();
        foreach (ZEntry e in entries)
        {
            _list!.Insert(e.Score, e.Member);
            _dict!.Add(e.Member, e.Score);
        }
    }

    /// <summary>Redis's zsetConvertToListpackIfNeeded: makes a skip-list set compact when it fits the thresholds.</summary>
    public void ShrinkIfFits(KvEncodingLimits limits)
    {
        if (_compact is not null || _list!.Length > limits.ZSetMaxListpackEntries) return;
        var entries = new ZCompact();
        for (ZSkipList.Node? n = _list.First; n is not null; n = n.Next)
        {
            if (n.Member.Length > limits.ZSetMaxListpackValue) return;
            entries.Add(new ZEntry(n.Member, n.Score == 0 ? 0 : n.Score));
        }
        _compact = entries;
        _list = null;
        _dict = null;
        _lookup = default;
    }

    // ------------------------------------------------------------------ KvObject

    public override KvObject Clone()
    {
        var copy = new KvZSet(_compact is not null);
        if (_compact is not null)
        {
            copy._compact = _compact.Clone();
        }
        else
        {
            for (ZSkipList.Node? n = _list!.First; n is not null; n = n.Next)
            {
                copy._list!.Insert(n.Score, n.Member);
                copy._dict!.Add(n.Member, n.Score);
            }
        }
        return copy;
    }

    public override void WriteRewrite(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        long left = Length;
        using IEnumerator<ZEntry> it = Range(0, Length - 1, reverse: false).GetEnumerator();
        while (left > 0)
        {
            int n = (int)Math.Min(RewriteChunk, left);
            AofWriter.WriteArrayHeader(output, 2 + 2 * n);
            AofWriter.WriteBulkString(output, "ZADD"u8);
            AofWriter.WriteBulkString(output, key);
            for (int i = 0; i < n; i++)
            {
                it.MoveNext();
                AofWriter.WriteBulkString(output, System.Text.Encoding.ASCII.GetBytes(FormatRoundTrip(it.Current.Score)));
                AofWriter.WriteBulkString(output, it.Current.Member);
            }
            left -= n;
        }
    }

    /// <summary>A score as text that parses back to the same double (including -0 and the infinities).</summary>
    internal static string FormatRoundTrip(double score) =>
        double.IsPositiveInfinity(score) ? "inf" : double.IsNegativeInfinity(score) ? "-inf" : score.ToString("R", CultureInfo.InvariantCulture);

    public override long TrimExcess() => _compact?.TrimExcess() ?? 0;

    public override long EstimateBytes()
    {
        long bytes = 48;
        if (_compact is not null)
        {
            return bytes + 24 + _compact.Capacity;
        }
        // per member: node (object header, member ref, score, backward, two arrays of about 1.33 levels) + dictionary slot
        for (ZSkipList.Node? n = _list!.First; n is not null; n = n.Next)
            bytes += 24 + n.Member.Length + 48 + 2 * (24 + 8 * n.Forward.Length) + 24;
        return bytes;
    }
}
