using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>A stream entry ID: milliseconds and sequence number, ordered as a 128-bit number.</summary>
internal readonly record struct StreamId(ulong Ms, ulong Seq) : IComparable<StreamId>
{
    public static readonly StreamId Zero = new(0, 0);
    public static readonly StreamId Max = new(ulong.MaxValue, ulong.MaxValue);

    public bool IsZero => Ms == 0 && Seq == 0;

    public int CompareTo(StreamId other) => Ms != other.Ms ? Ms.CompareTo(other.Ms) : Seq.CompareTo(other.Seq);

    public static bool operator <(StreamId a, StreamId b) => a.CompareTo(b) < 0;
    public static bool operator >(StreamId a, StreamId b) => a.CompareTo(b) > 0;
    public static bool operator <=(StreamId a, StreamId b) => a.CompareTo(b) <= 0;
    public static bool operator >=(StreamId a, StreamId b) => a.CompareTo(b) >= 0;

    /// <summary>Redis's streamIncrID: the next ID; false (and 0-0) after the maximum.</summary>
    public bool TryIncrement(out StreamId next)
    {
        if (Seq == ulong.MaxValue)
        {
            if (Ms == ulong.MaxValue)
            {
                next = Zero;
                return false;
            }
            next = new StreamId(Ms + 1, 0);
            return true;
        }
        next = new StreamId(Ms, Seq + 1);
        return true;
    }

    /// <summary>Redis's streamDecrID: the previous ID; false (and the maximum) before 0-0.</summary>
    public bool TryDecrement(out StreamId previous)
    {
        if (Seq == 0)
        {
            if (Ms == 0)
            {
                previous = Max;
                return false;
            }
            previous = new StreamId(Ms - 1, ulong.MaxValue);
            return true;
        }
        previous = new StreamId(Ms, Seq - 1);
        return true;
    }

    public override string ToString() => Ms.ToString(CultureInfo.InvariantCulture) + "-" + Seq.ToString(CultureInfo.InvariantCulture);

    public byte[] ToBytes() => Encoding.ASCII.GetBytes(ToString());

    /// <summary>Redis's streamGenericParseIDOrReply: <c>ms-seq</c>, <c>ms</c> (seq = <paramref name="missingSeq"/>),
    /// <c>-</c>/<c>+</c> unless <paramref name="strict"/>, and <c>ms-*</c> when <paramref name="allowSeqStar"/>
    /// (then <paramref name="seqGiven"/> is false).</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, ulong missingSeq, bool strict, bool allowSeqStar, out StreamId id, out bool seqGiven)
    {
        id = Zero;
        seqGiven = true;
        if (text.Length > 127) return false;
        int nul = text.IndexOf((byte)0);
        if (nul >= 0) text = text[..nul]; // Redis parses a C string copy
        if (text.Length == 1 && (text[0] == (byte)'-' || text[0] == (byte)'+'))
        {
            if (strict) return false;
            id = text[0] == (byte)'-' ? Zero : Max;
            return true;
        }
        int dash = text.IndexOf((byte)'-');
        ReadOnlySpan<byte> msPart = dash >= 0 ? text[..dash] : text;
        if (!TryParseUnsigned(msPart, out ulong ms)) return false;
        ulong seq = missingSeq;
        if (dash >= 0)
        {
            ReadOnlySpan<byte> seqPart = text[(dash + 1)..];
            if (allowSeqStar && seqPart.Length == 1 && seqPart[0] == (byte)'*')
            {
                seq = 0;
                seqGiven = false;
            }
            else if (!TryParseUnsigned(seqPart, out seq))
            {
                return false;
            }
        }
        id = new StreamId(ms, seq);
        return true;
    }

    // Redis's string2ull: string2ll (negative rejected), else strtoull (spaces, sign, leading zeros, negation wraps).
    private static bool TryParseUnsigned(ReadOnlySpan<byte> s, out ulong value)
    {
        value = 0;
        if (RespNumbers.TryParseInt64(s, out long ll))
        {
            if (ll < 0) return false;
            value = (ulong)ll;
            return true;
        }
        if (s.Length == 0) return false;
        int i = 0;
        while (i < s.Length && s[i] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r') i++;
        bool negative = false;
        if (i < s.Length && (s[i] == (byte)'+' || s[i] == (byte)'-'))
        {
            negative = s[i] == (byte)'-';
            i++;
        }
        int digitsStart = i;
        ulong v = 0;
        for (; i < s.Length; i++)
        {
            uint d = (uint)(s[i] - '0');
            if (d > 9) return false;
            if (v > (ulong.MaxValue - d) / 10) return false; // ERANGE
            v = v * 10 + d;
        }
        if (i == digitsStart) return false; // no digits: nothing converted
        value = negative ? 0 - v : v;
        return true;
    }
}

/// <summary>One entry of a stream: its ID and field/value pairs (alternating); <see cref="Deleted"/> marks a tombstone
/// that still occupies its node, as in Redis's listpacks.</summary>
/// <remarks>The arrays are never written after the entry is made: a field name may be the same array as its node's
/// master field and other entries' (XADD shares them).</remarks>
internal sealed class StreamEntry(StreamId id, byte[][] pairs)
{
    public readonly StreamId Id = id;
    public readonly byte[][] Pairs = pairs;
    public bool Deleted;
    public bool SameFields; // the fields equal the node's master fields (listpack size emulation)

    public int FieldCount => Pairs.Length / 2;
}

/// <summary>A node of the stream: the entries one of Redis's listpacks would hold. Redis decides when to start a new
/// node from the listpack's byte size and entry count, and approximate trimming (<c>~</c>) removes whole nodes only, so
/// the node boundaries and the listpack size are emulated to trim exactly as Redis does.</summary>
internal sealed class StreamNode
{
    public readonly List<StreamEntry> Entries = [];
    public StreamId MasterId;
    public byte[][] MasterFields = [];
    public long Live; // Redis's "count"
    public long DeletedCount; // Redis's "deleted"
    public long FixedBytes; // listpack bytes except the count and deleted integers

    public long ListpackBytes => FixedBytes + ListpackSize.Integer(Live) + ListpackSize.Integer(DeletedCount);

    public StreamNode Clone()
    {
        var n = new StreamNode { MasterId = MasterId, MasterFields = MasterFields, Live = Live, DeletedCount = DeletedCount, FixedBytes = FixedBytes };
        foreach (StreamEntry e in Entries) n.Entries.Add(new StreamEntry(e.Id, e.Pairs) { Deleted = e.Deleted, SameFields = e.SameFields });
        return n;
    }

    /// <summary>Index of the first entry with an ID at least <paramref name="id"/> (Entries.Count when none).</summary>
    public int LowerBound(StreamId id)
    {
        int lo = 0, hi = Entries.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (Entries[mid].Id < id) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}

/// <summary>Sizes of listpack elements (Redis's listpack.c encodings), for the node size emulation.</summary>
internal static class ListpackSize
{
    public static int Integer(long v)
    {
        int encoded = v is >= 0 and <= 127 ? 1
            : v is >= -4096 and <= 4095 ? 2
            : v is >= -32768 and <= 32767 ? 3
            : v is >= -8388608 and <= 8388607 ? 4
            : v is >= int.MinValue and <= int.MaxValue ? 5
            : 9;
        return encoded + 1; // one back-length byte
    }

    public static long String(ReadOnlySpan<byte> s)
    {
        if (RespNumbers.TryParseInt64(s, out long v)) return Integer(v);
        long l = s.Length;
        long encoded = l < 64 ? 1 + l : l < 4096 ? 2 + l : 5 + l;
        int backlen = encoded <= 127 ? 1 : encoded < 16383 ? 2 : encoded < 2097151 ? 3 : encoded < 268435455 ? 4 : 5;
        return encoded + backlen;
    }
}

/// <summary>A pending entry of a consumer group (Redis's streamNACK): delivered, not yet acknowledged.</summary>
/// <remarks>The entry is its own node in two ordered trees (<see cref="StreamPel"/>): the group's PEL and its consumer's
/// PEL share it, as Redis's two rax trees share one streamNACK, so a delivered entry costs this one object (no tree node
/// objects beside it).</remarks>
internal sealed class StreamPending(StreamId id)
{
    public readonly StreamId Id = id;
    public StreamConsumer? Consumer;
    public long DeliveryTime; // unix ms of the last delivery
    public long DeliveryCount;

    // Children in the group's tree and in the consumer's tree (StreamPel): null when not in that tree.
    internal StreamPending? GroupLeft, GroupRight, ConsumerLeft, ConsumerRight;
}

/// <summary>A PEL: pending entries ordered by ID, as an intrusive treap whose nodes are the entries themselves (a group's
/// PEL uses their group links, a consumer's PEL their consumer links, so one entry sits in both).</summary>
/// <remarks>Find, Add, Remove and <see cref="Ceiling"/> are O(log n) expected and allocate nothing; a node's priority is a
/// hash of its ID with a per-process random seed, so IDs chosen by a client cannot unbalance the tree. Enumeration is a
/// <see cref="Ceiling"/> per step (O(log n) each, no stack, no allocation), so it stays valid when the entry it returned
/// is removed, or moved to another consumer's PEL, before the next step.</remarks>
internal sealed class StreamPel(bool consumerLinks)
{
    private static readonly ulong Seed = (ulong)Random.Shared.NextInt64() | 1;

    private readonly bool _consumerLinks = consumerLinks;
    private StreamPending? _root;

    /// <summary>The number of pending entries.</summary>
    public int Count { get; private set; }

    private ref StreamPending? Left(StreamPending p) => ref _consumerLinks ? ref p.ConsumerLeft : ref p.GroupLeft;

    private ref StreamPending? Right(StreamPending p) => ref _consumerLinks ? ref p.ConsumerRight : ref p.GroupRight;

    private static ulong Priority(StreamId id)
    {
        ulong h = (id.Ms ^ Seed) * 0x9E3779B97F4A7C15UL;
        h ^= id.Seq * 0xC2B2AE3D27D4EB4FUL;
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9UL;
        return h ^ (h >> 32);
    }

    /// <summary>The entry with this ID, or null.</summary>
    public StreamPending? Find(StreamId id)
    {
        StreamPending? t = _root;
        while (t is not null)
        {
            int c = id.CompareTo(t.Id);
            if (c == 0) return t;
            t = c < 0 ? Left(t) : Right(t);
        }
        return null;
    }

    /// <summary>The first entry with an ID at least <paramref name="id"/>, or null.</summary>
    public StreamPending? Ceiling(StreamId id)
    {
        StreamPending? best = null, t = _root;
        while (t is not null)
        {
            if (t.Id >= id)
            {
                best = t;
                t = Left(t);
            }
            else
            {
                t = Right(t);
            }
        }
        return best;
    }

    /// <summary>The entry with the smallest ID, or null.</summary>
    public StreamPending? Min
    {
        get
        {
            StreamPending? t = _root;
            if (t is null) return null;
            while (Left(t) is { } l) t = l;
            return t;
        }
    }

    /// <summary>The entry with the largest ID, or null.</summary>
    public StreamPending? Max
    {
        get
        {
            StreamPending? t = _root;
            if (t is null) return null;
            while (Right(t) is { } r) t = r;
            return t;
        }
    }

    /// <summary>Adds an entry whose ID is not in this PEL (and which is in no other PEL using the same links).</summary>
    public void Add(StreamPending x)
    {
        Debug.Assert(Find(x.Id) is null);
        ulong px = Priority(x.Id);
        // Down to where x belongs by priority (a max-heap on priority), then split that subtree around x's ID.
        ref StreamPending? slot = ref _root;
        while (slot is not null && Priority(slot.Id) >= px) slot = ref x.Id < slot.Id ? ref Left(slot) : ref Right(slot);
        StreamPending? rest = slot;
        ref StreamPending? less = ref Left(x);
        ref StreamPending? greater = ref Right(x);
        while (rest is not null)
        {
            if (rest.Id < x.Id)
            {
                less = rest;
                less = ref Right(rest);
                rest = Right(rest);
            }
            else
            {
                greater = rest;
                greater = ref Left(rest);
                rest = Left(rest);
            }
        }
        less = null;
        greater = null;
        slot = x;
        Count++;
    }

    /// <summary>Removes this entry; false when it is not in this PEL.</summary>
    public bool Remove(StreamPending x)
    {
        ref StreamPending? slot = ref _root;
        while (slot is not null && slot != x)
        {
            int c = x.Id.CompareTo(slot.Id);
            if (c == 0) return false; // another entry with its ID
            slot = ref c < 0 ? ref Left(slot) : ref Right(slot);
        }
        if (slot is null) return false;
        // Replace x by the merge of its subtrees (all of the left one's IDs are below the right one's).
        StreamPending? a = Left(x), b = Right(x);
        while (true)
        {
            if (a is null)
            {
                slot = b;
                break;
            }
            if (b is null)
            {
                slot = a;
                break;
            }
            if (Priority(a.Id) >= Priority(b.Id))
            {
                slot = a;
                slot = ref Right(a);
                a = Right(a);
            }
            else
            {
                slot = b;
                slot = ref Left(b);
                b = Left(b);
            }
        }
        Left(x) = null;
        Right(x) = null;
        Count--;
        return true;
    }

    /// <summary>Removes every entry (their links in this PEL are cleared).</summary>
    public void Clear()
    {
        while (_root is { } r) Remove(r);
    }

    /// <summary>The entries in ID order.</summary>
    public Enumerator GetEnumerator() => new(this, StreamId.Zero, StreamId.Max);

    /// <summary>The entries with IDs in [<paramref name="start"/>, <paramref name="end"/>], in order.</summary>
    public RangeEnumerable Range(StreamId start, StreamId end) => new(this, start, end);

    /// <summary>A <see cref="Range"/> for foreach.</summary>
    public readonly struct RangeEnumerable(StreamPel pel, StreamId start, StreamId end)
    {
        public Enumerator GetEnumerator() => new(pel, start, end);
    }

    /// <summary>Steps by <see cref="Ceiling"/> from the last ID returned.</summary>
    public struct Enumerator(StreamPel pel, StreamId start, StreamId end)
    {
        private StreamId _next = start;
        private bool _done = start > end;

        public StreamPending Current { get; private set; } = null!;

        public bool MoveNext()
        {
            if (_done) return false;
            StreamPending? p = pel.Ceiling(_next);
            if (p is null || p.Id > end)
            {
                _done = true;
                return false;
            }
            Current = p;
            if (!p.Id.TryIncrement(out _next)) _done = true;
            return true;
        }
    }
}

/// <summary>Orders names as Redis's radix trees do: bytewise, a prefix first.</summary>
internal sealed class StreamNameComparer : IComparer<byte[]>
{
    public static readonly StreamNameComparer Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}

/// <summary>A consumer of a group: its name, when it was last seen, and its own PEL.</summary>
internal sealed class StreamConsumer(byte[] name, long seenTime)
{
    public readonly byte[] Name = name;
    public long SeenTime = seenTime;
    public readonly StreamPel Pel = new(consumerLinks: true);
}

/// <summary>A consumer group: last delivered ID, logical read counter, PEL and consumers.</summary>
internal sealed class StreamGroup(byte[] name, StreamId lastId, long entriesRead)
{
    public const long InvalidEntriesRead = -1; // Redis's SCG_INVALID_ENTRIES_READ

    public readonly byte[] Name = name;
    public StreamId LastId = lastId;
    public long EntriesRead = entriesRead;
    public readonly StreamPel Pel = new(consumerLinks: false);
    /// <summary>The consumers in name order (XINFO, XPENDING, the AOF rewrite); changed only through
    /// <see cref="AddConsumer"/> and <see cref="RemoveConsumer"/>, which keep the by-name index in step.</summary>
    public readonly SortedDictionary<byte[], StreamConsumer> Consumers = new(StreamNameComparer.Instance);

    // The same consumers by name, looked up by span: XREADGROUP, XCLAIM and XPENDING find a consumer per call without
    // copying its name into an array.
    private readonly Dictionary<byte[], StreamConsumer> _consumerIndex = new(ByteArrayComparer.Instance);

    public StreamPending? FindPending(StreamId id) => Pel.Find(id);

    public StreamConsumer? FindConsumer(ReadOnlySpan<byte> name) =>
        _consumerIndex.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(name, out StreamConsumer? c) ? c : null;

    /// <summary>Adds a consumer (its name must be new to the group).</summary>
    public void AddConsumer(StreamConsumer c)
    {
        Consumers.Add(c.Name, c);
        _consumerIndex.Add(c.Name, c);
    }

    /// <summary>Removes a pending entry from the group and its consumer.</summary>
    public void RemovePending(StreamPending p)
    {
        Pel.Remove(p);
        p.Consumer?.Pel.Remove(p);
    }

    /// <summary>Removes a consumer and its pending entries (XGROUP DELCONSUMER).</summary>
    public void RemoveConsumer(StreamConsumer c)
    {
        while (c.Pel.Min is { } p)
        {
            c.Pel.Remove(p);
            Pel.Remove(p);
        }
        Consumers.Remove(c.Name);
        _consumerIndex.Remove(c.Name);
    }
}

/// <summary>A stream (Redis's stream type): entries in ID order in nodes, consumer groups, and the counters of Redis 7.0
/// (entries added, max deleted ID, first ID).</summary>
/// <remarks>Range seeks are binary searches over the nodes and inside a node (O(log n)); XDEL marks an entry deleted in
/// its node and drops the node once it holds no live entry, like Redis.</remarks>
internal sealed class KvStream : KvObject
{
    private const int MaxListpackBytes = 1 << 30; // Redis's STREAM_LISTPACK_MAX_SIZE

    public readonly List<StreamNode> Nodes = [];
    public long Count; // live entries
    public StreamId LastId;
    public StreamId FirstId; // Redis's first_id ("recorded-first-entry-id")
    public StreamId MaxDeletedId;
    public long EntriesAdded;
    /// <summary>The consumer groups in name order (null until the first); changed only through <see cref="AddGroup"/> and
    /// <see cref="RemoveGroup"/>, which keep the by-name index in step.</summary>
    public SortedDictionary<byte[], StreamGroup>? Groups { get; private set; }

    // The same groups by name, looked up by span (every XREADGROUP, XACK, XCLAIM, XPENDING finds its group without
    // copying the name into an array).
    private Dictionary<byte[], StreamGroup>? _groupIndex;

    public override KvType Type => KvType.Stream;

    public override string Encoding => "stream";

    public override long Length => Count;

    public int GroupCount => Groups?.Count ?? 0;

    public StreamGroup? FindGroup(ReadOnlySpan<byte> name) =>
        _groupIndex is not null && _groupIndex.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(name, out StreamGroup? g) ? g : null;

    /// <summary>Adds a group; false (nothing changed) when one with its name exists.</summary>
    public bool AddGroup(StreamGroup g)
    {
        _groupIndex ??= new Dictionary<byte[], StreamGroup>(ByteArrayComparer.Instance);
        if (!_groupIndex.TryAdd(g.Name, g)) return false;
        (Groups ??= new SortedDictionary<byte[], StreamGroup>(StreamNameComparer.Instance)).Add(g.Name, g);
        return true;
    }

    /// <summary>Removes a group of this stream (XGROUP DESTROY).</summary>
    public void RemoveGroup(StreamGroup g)
    {
        Groups?.Remove(g.Name);
        _groupIndex?.Remove(g.Name);
    }

    // ------------------------------------------------------------------ entries

    /// <summary>Appends an entry whose ID is greater than <see cref="LastId"/> (streamAppendItem after the ID checks).</summary>
    public void Append(StreamId id, byte[][] pairs, int nodeMaxEntries, int nodeMaxBytes)
    {
        Debug.Assert(id > LastId);
        long totalLength = 0;
        foreach (byte[] b in pairs) totalLength += b.Length;
        StreamNode? node = Nodes.Count > 0 ? Nodes[^1] : null;
        if (node is not null)
        {
            long maxBytes = nodeMaxBytes <= 0 || nodeMaxBytes > MaxListpackBytes ? MaxListpackBytes : nodeMaxBytes;
            if (node.ListpackBytes + totalLength >= maxBytes) node = null;
            else if (nodeMaxEntries > 0 && node.Live + node.DeletedCount >= nodeMaxEntries) node = null;
        }
        int fieldCount = pairs.Length / 2;
        bool sameFields;
        if (node is null)
        {
            node = new StreamNode { MasterId = id, MasterFields = new byte[fieldCount][] };
            long fixedBytes = 7 + ListpackSize.Integer(fieldCount) + ListpackSize.Integer(0);
            for (int i = 0; i < fieldCount; i++)
            {
                node.MasterFields[i] = pairs[2 * i];
                fixedBytes += ListpackSize.String(pairs[2 * i]);
            }
            node.FixedBytes = fixedBytes;
            Nodes.Add(node);
            sameFields = true;
        }
        else
        {
            sameFields = fieldCount == node.MasterFields.Length;
            for (int i = 0; sameFields && i < fieldCount; i++) sameFields = pairs[2 * i].AsSpan().SequenceEqual(node.MasterFields[i]);
        }
        long bytes = ListpackSize.Integer(sameFields ? 2 : 0)
            + ListpackSize.Integer(unchecked((long)(id.Ms - node.MasterId.Ms)))
            + ListpackSize.Integer(unchecked((long)(id.Seq - node.MasterId.Seq)));
        if (!sameFields) bytes += ListpackSize.Integer(fieldCount);
        for (int i = 0; i < fieldCount; i++)
        {
            if (!sameFields) bytes += ListpackSize.String(pairs[2 * i]);
            bytes += ListpackSize.String(pairs[2 * i + 1]);
        }
        bytes += ListpackSize.Integer(fieldCount + 3 + (sameFields ? 0 : fieldCount + 1));
        node.FixedBytes += bytes;
        node.Entries.Add(new StreamEntry(id, pairs) { SameFields = sameFields });
        node.Live++;
        Count++;
        EntriesAdded++;
        LastId = id;
        if (Count == 1) FirstId = id;
    }

    /// <summary>Index of the node a forward seek to <paramref name="id"/> starts in (raxSeek "&lt;=", else the first).</summary>
    private int SeekNode(StreamId id)
    {
        int lo = 0, hi = Nodes.Count - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (Nodes[mid].MasterId <= id)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return found < 0 ? 0 : found;
    }

    /// <summary>Appends to <paramref name="into"/> the live entries with IDs in [start, end], forward or backward, at most
    /// <paramref name="count"/> of them (0: no limit); no iterator object, so reads allocate nothing here.</summary>
    public void CollectRange(StreamId start, StreamId end, long count, bool reverse, List<StreamEntry> into)
    {
        if (Nodes.Count == 0 || start > end) return;
        int taken = 0;
        if (!reverse)
        {
            for (int n = SeekNode(start); n < Nodes.Count; n++)
            {
                List<StreamEntry> entries = Nodes[n].Entries;
                for (int i = Nodes[n].LowerBound(start); i < entries.Count; i++)
                {
                    StreamEntry e = entries[i];
                    if (e.Id > end) return;
                    if (e.Deleted) continue;
                    into.Add(e);
                    if (++taken == count) return;
                }
            }
            return;
        }
        for (int n = SeekNode(end); n >= 0; n--)
        {
            StreamNode node = Nodes[n];
            int i = node.LowerBound(end);
            if (i == node.Entries.Count || node.Entries[i].Id > end) i--;
            for (; i >= 0; i--)
            {
                StreamEntry e = node.Entries[i];
                if (e.Id < start) return;
                if (e.Deleted) continue;
                into.Add(e);
                if (++taken == count) return;
            }
        }
    }

    /// <summary>The live entry with this ID, or null.</summary>
    public StreamEntry? Find(StreamId id)
    {
        if (Nodes.Count == 0) return null;
        StreamNode node = Nodes[SeekNode(id)];
        int i = node.LowerBound(id);
        if (i < node.Entries.Count && node.Entries[i].Id == id && !node.Entries[i].Deleted) return node.Entries[i];
        return null;
    }

    /// <summary>Marks the entry deleted (XDEL); drops its node when no live entry is left. False when there is none.</summary>
    public bool Delete(StreamId id)
    {
        if (Nodes.Count == 0) return false;
        int n = SeekNode(id);
        StreamNode node = Nodes[n];
        int i = node.LowerBound(id);
        if (i >= node.Entries.Count || node.Entries[i].Id != id || node.Entries[i].Deleted) return false;
        if (node.Live == 1)
        {
            Nodes.RemoveAt(n);
        }
        else
        {
            node.Entries[i].Deleted = true;
            node.Live--;
            node.DeletedCount++;
        }
        Count--;
        return true;
    }

    /// <summary>The first or last entry ID, skipping tombstones or not (streamGetEdgeID); Max (first) or Zero (last) when none.</summary>
    public StreamId EdgeId(bool first, bool skipTombstones)
    {
        // A direct walk over the nodes (no iterator object): XREAD/XREADGROUP ask for the last valid ID on every call.
        if (first)
        {
            foreach (StreamNode node in Nodes)
            {
                foreach (StreamEntry e in node.Entries)
                {
                    if (!skipTombstones || !e.Deleted) return e.Id;
                }
            }
            return StreamId.Max;
        }
        for (int n = Nodes.Count - 1; n >= 0; n--)
        {
            List<StreamEntry> entries = Nodes[n].Entries;
            for (int i = entries.Count - 1; i >= 0; i--)
            {
                if (!skipTombstones || !entries[i].Deleted) return entries[i].Id;
            }
        }
        return StreamId.Zero;
    }

    /// <summary>The last live entry's ID (streamLastValidID); Zero when empty.</summary>
    public StreamId LastValidId() => EdgeId(first: false, skipTombstones: true);

    /// <summary>Redis's streamTrim: MAXLEN (<paramref name="byLength"/>) or MINID; approximate trimming removes whole
    /// nodes only; <paramref name="limit"/> (0: none) bounds the entries removed. Returns the number removed.</summary>
    public long Trim(bool byLength, long maxLength, StreamId minId, bool approx, long limit)
    {
        long deleted = 0;
        int n = 0;
        while (n < Nodes.Count)
        {
            if (byLength && Count <= maxLength) break;
            StreamNode node = Nodes[n];
            long entries = node.Live;
            if (limit != 0 && deleted + entries > limit) break;
            bool removeNode = byLength ? Count - entries >= maxLength : node.Entries[^1].Id < minId;
            if (removeNode)
            {
                Nodes.RemoveAt(n);
                Count -= entries;
                deleted += entries;
                continue;
            }
            if (approx) break;
            long fromNode = 0;
            foreach (StreamEntry e in node.Entries)
            {
                bool stop = byLength ? Count <= maxLength : e.Id >= minId;
                if (stop) break;
                if (!e.Deleted)
                {
                    e.Deleted = true;
                    fromNode++;
                    Count--;
                }
            }
            node.Live -= fromNode;
            node.DeletedCount += fromNode;
            deleted += fromNode;
            break;
        }
        if (deleted > 0) FirstId = Count == 0 ? StreamId.Zero : EdgeId(first: true, skipTombstones: true);
        return deleted;
    }

    /// <summary>Redis's streamRangeHasTombstones with no end: whether an XDEL tombstone lies at or after <paramref name="start"/>.</summary>
    public bool RangeHasTombstones(StreamId start)
    {
        if (Count == 0 || MaxDeletedId.IsZero) return false;
        if (FirstId > MaxDeletedId) return false;
        return start <= MaxDeletedId;
    }

    /// <summary>Redis's streamEstimateDistanceFromFirstEverEntry; -1 when it cannot be known.</summary>
    public long EstimateDistance(StreamId id)
    {
        if (EntriesAdded == 0) return 0;
        if (Count == 0 && id <= LastId) return EntriesAdded;
        int cmpLast = id.CompareTo(LastId);
        if (cmpLast == 0) return EntriesAdded;
        if (cmpLast > 0) return StreamGroup.InvalidEntriesRead;
        int cmpFirst = id.CompareTo(FirstId);
        if (MaxDeletedId.IsZero || MaxDeletedId < FirstId)
        {
            if (cmpFirst < 0) return EntriesAdded - Count;
            if (cmpFirst == 0) return EntriesAdded - Count + 1;
        }
        return StreamGroup.InvalidEntriesRead;
    }

    /// <summary>Redis's streamCGLag; null when it cannot be known.</summary>
    public long? Lag(StreamGroup group)
    {
        if (EntriesAdded == 0) return 0;
        if (group.EntriesRead != StreamGroup.InvalidEntriesRead && !RangeHasTombstones(group.LastId)) return EntriesAdded - group.EntriesRead;
        long read = EstimateDistance(group.LastId);
        return read != StreamGroup.InvalidEntriesRead ? EntriesAdded - read : null;
    }

    /// <summary>Records delivery of <paramref name="id"/> to a group (the read counter update of Redis 7.0's streamReplyWithRange).</summary>
    public void AdvanceGroup(StreamGroup group, StreamId id)
    {
        if (group.EntriesRead != StreamGroup.InvalidEntriesRead && !RangeHasTombstones(id)) group.EntriesRead++;
        else if (EntriesAdded != 0) group.EntriesRead = EstimateDistance(id);
        group.LastId = id;
    }

    // ------------------------------------------------------------------ KvObject

    public override KvObject Clone()
    {
        var s = new KvStream { Count = Count, LastId = LastId, FirstId = FirstId, MaxDeletedId = MaxDeletedId, EntriesAdded = EntriesAdded };
        foreach (StreamNode n in Nodes) s.Nodes.Add(n.Clone());
        if (Groups is not null)
        {
            foreach (StreamGroup g in Groups.Values)
            {
                var copy = new StreamGroup(g.Name, g.LastId, g.EntriesRead);
                foreach (StreamConsumer c in g.Consumers.Values) copy.AddConsumer(new StreamConsumer(c.Name, c.SeenTime));
                foreach (StreamPending p in g.Pel)
                {
                    StreamConsumer? owner = p.Consumer is null ? null : copy.Consumers[p.Consumer.Name];
                    var q = new StreamPending(p.Id) { Consumer = owner, DeliveryTime = p.DeliveryTime, DeliveryCount = p.DeliveryCount };
                    copy.Pel.Add(q);
                    owner?.Pel.Add(q);
                }
                s.AddGroup(copy);
            }
        }
        return s;
    }

    /// <summary>What Redis's rewriteStreamObject (aof.c) emits: XADD per entry (XADD MAXLEN 0 for an empty stream),
    /// XSETID with ENTRIESADDED and MAXDELETEDID, then per group XGROUP CREATE ... ENTRIESREAD, and per consumer
    /// XCLAIM ... TIME RETRYCOUNT JUSTID FORCE for each pending entry, or XGROUP CREATECONSUMER when it has none.</summary>
    public override void WriteRewrite(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        if (Count > 0)
        {
            foreach (StreamEntry e in Nodes.SelectMany(static node => node.Entries).Where(static e => !e.Deleted))
            {
                AofWriter.WriteArrayHeader(output, 3 + e.Pairs.Length);
                AofWriter.WriteBulkString(output, "XADD"u8);
                AofWriter.WriteBulkString(output, key);
                AofWriter.WriteBulkString(output, e.Id.ToBytes());
                foreach (byte[] b in e.Pairs) AofWriter.WriteBulkString(output, b);
            }
        }
        else
        {
            AofWriter.WriteArrayHeader(output, 7);
            AofWriter.WriteBulkString(output, "XADD"u8);
            AofWriter.WriteBulkString(output, key);
            AofWriter.WriteBulkString(output, "MAXLEN"u8);
            AofWriter.WriteBulkString(output, "0"u8);
            AofWriter.WriteBulkString(output, "0-1"u8);
            AofWriter.WriteBulkString(output, "x"u8);
            AofWriter.WriteBulkString(output, "y"u8);
        }
        AofWriter.WriteArrayHeader(output, 7);
        AofWriter.WriteBulkString(output, "XSETID"u8);
        AofWriter.WriteBulkString(output, key);
        AofWriter.WriteBulkString(output, LastId.ToBytes());
        AofWriter.WriteBulkString(output, "ENTRIESADDED"u8);
        AofWriter.WriteBulkString(output, EntriesAdded);
        AofWriter.WriteBulkString(output, "MAXDELETEDID"u8);
        AofWriter.WriteBulkString(output, MaxDeletedId.ToBytes());
        if (Groups is null) return;
        foreach (StreamGroup g in Groups.Values)
        {
            AofWriter.WriteArrayHeader(output, 7);
            AofWriter.WriteBulkString(output, "XGROUP"u8);
            AofWriter.WriteBulkString(output, "CREATE"u8);
            AofWriter.WriteBulkString(output, key);
            AofWriter.WriteBulkString(output, g.Name);
            AofWriter.WriteBulkString(output, g.LastId.ToBytes());
            AofWriter.WriteBulkString(output, "ENTRIESREAD"u8);
            AofWriter.WriteBulkString(output, g.EntriesRead);
            foreach (StreamConsumer c in g.Consumers.Values)
            {
                if (c.Pel.Count == 0)
                {
                    AofWriter.WriteArrayHeader(output, 5);
                    AofWriter.WriteBulkString(output, "XGROUP"u8);
                    AofWriter.WriteBulkString(output, "CREATECONSUMER"u8);
                    AofWriter.WriteBulkString(output, key);
                    AofWriter.WriteBulkString(output, g.Name);
                    AofWriter.WriteBulkString(output, c.Name);
                    continue;
                }
                foreach (StreamPending p in c.Pel)
                {
                    AofWriter.WriteArrayHeader(output, 12);
                    AofWriter.WriteBulkString(output, "XCLAIM"u8);
                    AofWriter.WriteBulkString(output, key);
                    AofWriter.WriteBulkString(output, g.Name);
                    AofWriter.WriteBulkString(output, c.Name);
                    AofWriter.WriteBulkString(output, "0"u8);
                    AofWriter.WriteBulkString(output, p.Id.ToBytes());
                    AofWriter.WriteBulkString(output, "TIME"u8);
                    AofWriter.WriteBulkString(output, p.DeliveryTime);
                    AofWriter.WriteBulkString(output, "RETRYCOUNT"u8);
                    AofWriter.WriteBulkString(output, p.DeliveryCount);
                    AofWriter.WriteBulkString(output, "JUSTID"u8);
                    AofWriter.WriteBulkString(output, "FORCE"u8);
                }
            }
        }
    }

    public override long EstimateBytes()
    {
        long bytes = 64;
        foreach (StreamNode n in Nodes) bytes += 48 + n.ListpackBytes;
        if (Groups is not null)
        {
            foreach (StreamGroup g in Groups.Values)
            {
                bytes += 96 + g.Name.Length + g.Pel.Count * 64L;
                foreach (StreamConsumer c in g.Consumers.Values) bytes += 64 + c.Name.Length + c.Pel.Count * 32L;
            }
        }
        return bytes;
    }
}
