namespace EioSharp.Kv.Tests;

/// <summary>The PEL tree (<see cref="StreamPel"/>): a group's and its consumers' PELs sharing entries, checked against a
/// sorted model under random adds, removals, moves between consumers, range walks and removal during a walk.</summary>
public sealed class StreamPelTests
{
    private static StreamId Id(ulong ms, ulong seq) => new(ms, seq);

    private static List<StreamId> Ids(StreamPel pel)
    {
        var ids = new List<StreamId>();
        foreach (StreamPending p in pel) ids.Add(p.Id);
        return ids;
    }

    [Fact]
    public void Empty_pel_has_no_entries()
    {
        var pel = new StreamPel(consumerLinks: false);
        Assert.Equal(0, pel.Count);
        Assert.Null(pel.Min);
        Assert.Null(pel.Max);
        Assert.Null(pel.Find(StreamId.Zero));
        Assert.Null(pel.Ceiling(StreamId.Zero));
        Assert.Empty(Ids(pel));
        Assert.False(pel.Remove(new StreamPending(Id(1, 1))));
    }

    [Fact]
    public void Extreme_ids_are_ordered_and_enumeration_ends_after_the_maximum()
    {
        var pel = new StreamPel(consumerLinks: false);
        foreach (StreamId id in new[] { StreamId.Max, StreamId.Zero, Id(ulong.MaxValue, 0), Id(0, ulong.MaxValue), Id(1, 0) })
        {
            pel.Add(new StreamPending(id));
        }
        Assert.Equal([StreamId.Zero, Id(0, ulong.MaxValue), Id(1, 0), Id(ulong.MaxValue, 0), StreamId.Max], Ids(pel));
        Assert.Equal(StreamId.Max, pel.Max!.Id);
        var range = new List<StreamId>();
        foreach (StreamPending p in pel.Range(Id(0, 1), Id(ulong.MaxValue, 0))) range.Add(p.Id);
        Assert.Equal([Id(0, ulong.MaxValue), Id(1, 0), Id(ulong.MaxValue, 0)], range);
        Assert.Empty(pel.Range(Id(5, 0), Id(4, 0)).ToListOf());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Group_and_consumer_pels_match_a_sorted_model(int seed)
    {
        var random = new Random(seed);
        var group = new StreamPel(consumerLinks: false);
        StreamPel[] consumers = [new(consumerLinks: true), new(consumerLinks: true), new(consumerLinks: true)];
        var model = new SortedDictionary<StreamId, (StreamPending Entry, int Owner)>();
        for (int step = 0; step < 20_000; step++)
        {
            int op = random.Next(10);
            // IDs from a small space, so adds collide with present ones and removals find them.
            var id = Id((ulong)random.Next(200), (ulong)random.Next(4));
            if (op < 4)
            {
                if (model.ContainsKey(id)) continue;
                var p = new StreamPending(id);
                int owner = random.Next(consumers.Length);
                group.Add(p);
                consumers[owner].Add(p);
                model[id] = (p, owner);
            }
            else if (op < 7)
            {
                StreamPending? p = group.Find(id);
                Assert.Equal(model.ContainsKey(id), p is not null);
                if (p is null) continue;
                Assert.Same(model[id].Entry, p);
                Assert.True(group.Remove(p));
                Assert.True(consumers[model[id].Owner].Remove(p));
                Assert.False(group.Remove(p));
                model.Remove(id);
            }
            else if (op < 9)
            {
                if (!model.TryGetValue(id, out var m)) continue;
                int to = random.Next(consumers.Length);
                Assert.True(consumers[m.Owner].Remove(m.Entry));
                consumers[to].Add(m.Entry);
                model[id] = (m.Entry, to);
            }
            else
            {
                // Remove every other entry of a range while walking it (XAUTOCLAIM and DELCONSUMER do so).
                var end = Id(id.Ms + 20, 0);
                var expected = model.Keys.Where(k => k >= id && k <= end).ToList();
                var seen = new List<StreamId>();
                foreach (StreamPending p in group.Range(id, end))
                {
                    seen.Add(p.Id);
                    if (seen.Count % 2 == 0) continue;
                    Assert.True(group.Remove(p));
                    Assert.True(consumers[model[p.Id].Owner].Remove(p));
                    model.Remove(p.Id);
                }
                Assert.Equal(expected, seen);
            }
            if (step % 500 == 0 || step == 19_999)
            {
                Assert.Equal(model.Keys.ToList(), Ids(group));
                Assert.Equal(model.Count, group.Count);
                for (int c = 0; c < consumers.Length; c++)
                {
                    Assert.Equal(model.Where(kv => kv.Value.Owner == c).Select(kv => kv.Key).ToList(), Ids(consumers[c]));
                    Assert.Equal(model.Count(kv => kv.Value.Owner == c), consumers[c].Count);
                }
                Assert.Equal(model.Count == 0 ? null : model.Keys.First(), group.Min?.Id);
                Assert.Equal(model.Count == 0 ? null : model.Keys.Last(), group.Max?.Id);
                var probe = Id((ulong)random.Next(210), 2);
                Assert.Equal(model.Keys.Where(k => k >= probe).Cast<StreamId?>().FirstOrDefault(), group.Ceiling(probe)?.Id);
            }
        }
    }

    [Fact]
    public void Ascending_delivery_and_acknowledgement_keep_the_tree_shallow()
    {
        // The usual workload: entries delivered in ID order and acknowledged oldest first. A degenerate tree would make
        // this quadratic; the depth check bounds it directly.
        var pel = new StreamPel(consumerLinks: false);
        var entries = new List<StreamPending>();
        for (ulong i = 0; i < 100_000; i++)
        {
            var p = new StreamPending(Id(1_700_000_000_000 + i / 3, i % 3));
            pel.Add(p);
            entries.Add(p);
        }
        Assert.Equal(100_000, pel.Count);
        Assert.InRange(Depth(pel), 17, 80); // log2(100000) ~ 17; a treap's expected depth is under 3 ln n ~ 35
        foreach (StreamPending p in entries.Take(99_000)) Assert.True(pel.Remove(p));
        Assert.Equal(1_000, pel.Count);
        Assert.Same(entries[99_000], pel.Min);
        Assert.Same(entries[^1], pel.Max);
    }

    private static int Depth(StreamPel pel)
    {
        // Depth through the group links (the tree's own fields), by a walk from the root found as the entry no other is
        // a child of.
        var all = new List<StreamPending>();
        foreach (StreamPending p in pel) all.Add(p);
        var children = new HashSet<StreamPending>(ReferenceEqualityComparer.Instance);
        foreach (StreamPending p in all)
        {
            if (p.GroupLeft is not null) children.Add(p.GroupLeft);
            if (p.GroupRight is not null) children.Add(p.GroupRight);
        }
        StreamPending root = all.Single(p => !children.Contains(p));
        int Walk(StreamPending? n) => n is null ? 0 : 1 + Math.Max(Walk(n.GroupLeft), Walk(n.GroupRight));
        return Walk(root);
    }
}

internal static class StreamPelRangeExtensions
{
    public static List<StreamPending> ToListOf(this StreamPel.RangeEnumerable range)
    {
        var list = new List<StreamPending>();
        foreach (StreamPending p in range) list.Add(p);
        return list;
    }
}
