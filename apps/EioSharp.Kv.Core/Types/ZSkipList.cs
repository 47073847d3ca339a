namespace EioSharp.Kv;

/// <summary>An element of a sorted set: a member and its score.</summary>
internal readonly record struct ZEntry(byte[] Member, double Score)
{
    /// <summary>Redis's order: by score, then by member bytes (memcmp, shorter first on a common prefix).</summary>
    public static int Compare(double s1, ReadOnlySpan<byte> m1, double s2, ReadOnlySpan<byte> m2) =>
        s1 < s2 ? -1 : s1 > s2 ? 1 : m1.SequenceCompareTo(m2);
}

/// <summary>A skip list with span counts (Redis's <c>zskiplist</c>): elements ordered by (score, member), with O(log n)
/// insertion, deletion, rank of an element, element at a rank, and first element of a score or lex range.</summary>
/// <remarks>
/// Each node has a random number of levels (P = 1/4, at most 32, like Redis's ZSKIPLIST_P and ZSKIPLIST_MAXLEVEL); a
/// level's forward pointer carries its <em>span</em>, the number of level-0 steps it skips, so a descent that adds the
/// spans it crosses computes ranks. Level 0 is a doubly linked list (<see cref="Node.Backward"/>) for iteration in both
/// directions. Member lookup by name is not here: <see cref="KvZSet"/> keeps a dictionary member → score beside it.
/// <para><b>Thread safety</b>: none.</para>
/// </remarks>
internal sealed class ZSkipList
{
    private const int MaxLevel = 32;
    private const double Probability = 0.25;

    internal sealed class Node(byte[] member, double score, int levels)
    {
        public readonly byte[] Member = member;
        public double Score = score;
        public Node? Backward;
        public readonly Node?[] Forward = new Node?[levels];
        public readonly long[] Span = new long[levels];

        public Node? Next => Forward[0];
    }

    private readonly Node _header = new([], 0, MaxLevel);
    private Node? _tail;
    private int _level = 1;
    private ulong _seed = 0x9E3779B97F4A7C15UL;

    public long Length { get; private set; }

    public Node? First => _header.Forward[0];

    public Node? Last => _tail;

    private int RandomLevel()
    {
        int level = 1;
        while (level < MaxLevel)
        {
            // xorshift64*: levels need no quality beyond a fair geometric distribution
            _seed ^= _seed >> 12;
            _seed ^= _seed << 25;
            _seed ^= _seed >> 27;
            ulong r = _seed * 2685821657736338717UL;
            if ((r >> 40 & 0xFFFF) >= (ulong)(Probability * 0x10000)) break;
            level++;
        }
        return level;
    }

    /// <summary>Inserts an element that is not present.</summary>
    public Node Insert(double score, byte[] member)
    {
        Span<long> rank = stackalloc long[MaxLevel];
        var update = new Node[MaxLevel];
        Node x = _header;
        for (int i = _level - 1; i >= 0; i--)
        {
            rank[i] = i == _level - 1 ? 0 : rank[i + 1];
            while (x.Forward[i] is { } f && ZEntry.Compare(f.Score, f.Member, score, member) < 0)
            {
                rank[i] += x.Span[i];
                x = f;
            }
            update[i] = x;
        }
        int level = RandomLevel();
        if (level > _level)
        {
            for (int i = _level; i < level; i++)
            {
                rank[i] = 0;
                update[i] = _header;
                update[i].Span[i] = Length;
            }
            _level = level;
        }
        var node = new Node(member, score, level);
        for (int i = 0; i < level; i++)
        {
            node.Forward[i] = update[i].Forward[i];
            update[i].Forward[i] = node;
            node.Span[i] = update[i].Span[i] - (rank[0] - rank[i]);
            update[i].Span[i] = rank[0] - rank[i] + 1;
        }
        for (int i = level; i < _level; i++) update[i].Span[i]++;
        node.Backward = ReferenceEquals(update[0], _header) ? null : update[0];
        if (node.Forward[0] is { } next) next.Backward = node;
        else _tail = node;
        Length++;
        return node;
    }

    private void DeleteNode(Node x, Node[] update)
    {
        for (int i = 0; i < _level; i++)
        {
            if (ReferenceEquals(update[i].Forward[i], x))
            {
                update[i].Span[i] += x.Span[i] - 1;
                update[i].Forward[i] = x.Forward[i];
            }
            else
            {
                update[i].Span[i]--;
            }
        }
        if (x.Forward[0] is { } next) next.Backward = x.Backward;
        else _tail = x.Backward;
        while (_level > 1 && _header.Forward[_level - 1] is null) _level--;
        Length--;
    }

    /// <summary>Removes the element (score, member); false when absent.</summary>
    public bool Delete(double score, ReadOnlySpan<byte> member)
    {
        var update = new Node[MaxLevel];
        Node x = _header;
        for (int i = _level - 1; i >= 0; i--)
        {
            while (x.Forward[i] is { } f && ZEntry.Compare(f.Score, f.Member, score, member) < 0) x = f;
            update[i] = x;
        }
        Node? target = x.Forward[0];
        if (target is null || target.Score != score || !target.Member.AsSpan().SequenceEqual(member)) return false;
        DeleteNode(target, update);
        return true;
    }

    /// <summary>Changes the score of an element present with <paramref name="oldScore"/>; keeps the node in place when
    /// the order allows (like Redis's zslUpdateScore).</summary>
    public void UpdateScore(double oldScore, byte[] member, double newScore)
    {
        var update = new Node[MaxLevel];
        Node x = _header;
        for (int i = _level - 1; i >= 0; i--)
        {
            while (x.Forward[i] is { } f && ZEntry.Compare(f.Score, f.Member, oldScore, member) < 0) x = f;
            update[i] = x;
        }
        Node node = x.Forward[0] ?? throw new InvalidOperationException("member not in the skip list");
        if ((node.Backward is null || ZEntry.Compare(node.Backward.Score, node.Backward.Member, newScore, member) < 0) &&
            (node.Forward[0] is null || ZEntry.Compare(node.Forward[0]!.Score, node.Forward[0]!.Member, newScore, member) > 0))
        {
            node.Score = newScore;
            return;
        }
        DeleteNode(node, update);
        Insert(newScore, node.Member);
    }

    /// <summary>The 0-based rank of (score, member), or -1 when absent.</summary>
    public long Rank(double score, ReadOnlySpan<byte> member)
    {
        long rank = 0;
        Node x = _header;
        for (int i = _level - 1; i >= 0; i--)
        {
            while (x.Forward[i] is { } f && ZEntry.Compare(f.Score, f.Member, score, member) <= 0)
            {
                rank += x.Span[i];
                x = f;
            }
            if (!ReferenceEquals(x, _header) && x.Score == score && x.Member.AsSpan().SequenceEqual(member)) return rank - 1;
        }
        return -1;
    }

    /// <summary>The node at 0-based <paramref name="rank"/> (0 &lt;= rank &lt; Length).</summary>
    public Node At(long rank)
    {
        long target = rank + 1, traversed = 0;
        Node x = _header;
        for (int i = _level - 1; i >= 0; i--)
        {
            while (x.Forward[i] is { } f && traversed + x.Span[i] <= target)
            {
                traversed += x.Span[i];
                x = f;
            }
            if (traversed == target) return x;
        }
        throw new ArgumentOutOfRangeException(nameof(rank));
    }

    /// <summary>The number of leading elements for which <paramref name="before"/> holds (it must hold for a prefix of
    /// the order only): the 0-based rank of the first element for which it does not.</summary>
    public long CountWhile<TState>(TState state, Func<TState, Node, bool> before)
    {
        long rank = 0;
        Node x = _header;
        for (int i = _level - 1; i >= 0; i--)
        {
            while (x.Forward[i] is { } f && before(state, f))
            {
                rank += x.Span[i];
                x = f;
            }
        }
        return rank;
    }
}
