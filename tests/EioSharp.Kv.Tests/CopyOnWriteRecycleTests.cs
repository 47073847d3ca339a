using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The arrays a same-length SET leaves to a running leased snapshot are recycled once the snapshot is done with
/// them (issue 14, h132, KvCopyOnWriteArrays): a later copy-on-write takes one instead of allocating, never one a running
/// snapshot still reads, and every snapshot still sees the values of its own time.</summary>
public class CopyOnWriteRecycleTests
{
    private static string Value(char c, int length = 1024) => new(c, length);

    private static string Bulk(string s) => $"${Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";

    private static string SnapValue(KvSnapshotLease lease, string key) =>
        Encoding.UTF8.GetString((byte[])lease.Entries.Single(e => Encoding.UTF8.GetString(e.Key) == key).Value);

    // K keys, each in an array of its row's own (the second SET), with value c.
    private static StoreHarness Keys(int count, char c)
    {
        var h = new StoreHarness();
        for (int i = 0; i < count; i++)
        {
            h.Run("SET", $"k{i}", Value(c));
            h.Run("SET", $"k{i}", Value(c));
        }
        return h;
    }

    private static KvCommand[] Sets(int count, char c) =>
        Enumerable.Range(0, count).Select(i => KvCommand.Create("SET", $"k{i}", Value(c))).ToArray();

    [Fact]
    public void Arrays_left_to_an_ended_snapshot_are_reused_by_the_next_one_without_allocating()
    {
        const int Count = 300;
        StoreHarness h = Keys(Count, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        var writer = new RespWriter(new ArrayBufferWriter<byte>(64 * 1024));

        KvSnapshotLease first = h.Store.CreateSnapshotLease(h.Now);
        foreach (KvCommand set in Sets(Count, 'b')) h.Store.Execute(set, h.Now, writer, null);
        Assert.Equal(Count, cow.Allocated); // nothing to recycle yet: one new array per key
        Assert.Equal(0, cow.Recycled);
        Assert.Equal(Count, cow.Waiting); // the old arrays, still the snapshot's
        for (int i = 0; i < Count; i++) Assert.Equal(Value('a'), SnapValue(first, $"k{i}"));
        first.Dispose();

        // The next snapshots' overwrites take the arrays the previous one gave back, and that snapshot's values stay
        // intact. From the second on (the queue and the free list have their capacity) they allocate nothing at all.
        KvSnapshotLease second = first;
        for (int round = 1; round <= 3; round++)
        {
            second = h.Store.CreateSnapshotLease(h.Now);
            char old = (char)('a' + round), now = (char)('b' + round);
            KvCommand[] sets = Sets(Count, now);
            long before = GC.GetAllocatedBytesForCurrentThread();
            foreach (KvCommand set in sets) h.Store.Execute(set, h.Now, writer, null);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (round > 1) Assert.Equal(0, allocated);
            else Assert.True(allocated < Count * 64, $"{allocated} B"); // the free list's growth, no array of 1 KB
            Assert.Equal(Count, cow.Allocated);
            Assert.Equal(round * Count, cow.Recycled);
            for (int i = 0; i < Count; i++)
            {
                Assert.Equal(Value(old), SnapValue(second, $"k{i}"));
                Assert.Equal(Bulk(Value(now)), h.Run("GET", $"k{i}"));
            }
            if (round < 3) second.Dispose();
        }
        second.Dispose();
        cow.DropFree();
        Assert.Equal(0, cow.FreeBytes);
        Assert.Equal(0, cow.Waiting);
    }

    /// <summary>Two snapshots run at once (a BGSAVE during an AOF rewrite): the arrays the older one still reads are not
    /// handed to the overwrites the newer one causes; they are reused only once the older one's writer passed them.</summary>
    [Fact]
    public void An_array_a_running_snapshot_still_reads_is_never_handed_out()
    {
        const int Count = 200;
        StoreHarness h = Keys(Count, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        var writer = new RespWriter(new ArrayBufferWriter<byte>(64 * 1024));

        KvSnapshotLease older = h.Store.CreateSnapshotLease(h.Now);
        foreach (KvCommand set in Sets(Count, 'b')) h.Store.Execute(set, h.Now, writer, null); // 'a' arrays wait for `older`
        KvSnapshotLease newer = h.Store.CreateSnapshotLease(h.Now); // takes the 'b' arrays
        foreach (KvCommand set in Sets(Count, 'c')) h.Store.Execute(set, h.Now, writer, null); // 'b' arrays wait for `newer`
        Assert.Equal(2 * Count, cow.Allocated); // `older` has written nothing: none of its arrays could be reused
        Assert.Equal(0, cow.Recycled);
        for (int i = 0; i < Count; i++)
        {
            Assert.Equal(Value('a'), SnapValue(older, $"k{i}"));
            Assert.Equal(Value('b'), SnapValue(newer, $"k{i}"));
        }

        // `older`'s writer passes the first half: those arrays are free for the next copy-on-writes (a third snapshot's).
        older.MarkWritten(Count / 2);
        KvSnapshotLease third = h.Store.CreateSnapshotLease(h.Now); // takes the 'c' arrays
        foreach (KvCommand set in Sets(Count, 'd')) h.Store.Execute(set, h.Now, writer, null);
        Assert.Equal(Count / 2, cow.Recycled);
        Assert.Equal(2 * Count + (Count / 2), cow.Allocated);
        for (int i = 0; i < Count; i++)
        {
            int index = older.Entries.ToList().FindIndex(e => Encoding.UTF8.GetString(e.Key) == $"k{i}");
            if (index >= Count / 2) Assert.Equal(Value('a'), SnapValue(older, $"k{i}")); // not passed yet: intact
            Assert.Equal(Value('b'), SnapValue(newer, $"k{i}"));
            Assert.Equal(Value('c'), SnapValue(third, $"k{i}"));
            Assert.Equal(Bulk(Value('d')), h.Run("GET", $"k{i}"));
        }
        older.Dispose();
        newer.Dispose();
        third.Dispose();
        foreach (KvCommand set in Sets(Count, 'e')) h.Store.Execute(set, h.Now, writer, null); // every lease ended: in place
        Assert.Equal(2 * Count + (Count / 2), cow.Allocated);
        Assert.Equal(Count / 2, cow.Recycled);
    }

    /// <summary>The arrays one snapshot leaves wait by their index in it and are released exactly as far as its writer
    /// has passed (§216: slots and a cursor instead of a priority queue): an overwrite under the snapshot recycles only
    /// arrays of entries below <see cref="KvSnapshotLease.WrittenCount"/>, the entries at or past it keep their values,
    /// and once the slots have grown nothing more is allocated for them.</summary>
    [Fact]
    public void Arrays_wait_by_their_snapshot_index_and_are_released_as_far_as_the_writer_passed()
    {
        const int Count = 400;
        StoreHarness h = Keys(Count, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        var writer = new RespWriter(new ArrayBufferWriter<byte>(64 * 1024));
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        List<string> order = lease.Entries.Select(e => Encoding.UTF8.GetString(e.Key)).ToList();

        // The first half of the snapshot's order overwritten: each leaves its 'a' array in the slots.
        foreach (string key in order.Take(Count / 2)) h.Store.Execute(KvCommand.Create("SET", key, Value('b')), h.Now, writer, null);
        Assert.Equal(Count / 2, cow.Allocated);
        Assert.Equal(Count / 2, cow.Waiting);

        // The writer passes the first quarter: the second half's overwrites recycle exactly those arrays, then allocate.
        lease.MarkWritten(Count / 4);
        foreach (string key in order.Skip(Count / 2)) h.Store.Execute(KvCommand.Create("SET", key, Value('c')), h.Now, writer, null);
        Assert.Equal(Count / 4, cow.Recycled);
        Assert.Equal(Count / 2 + Count / 4, cow.Allocated);
        Assert.Equal(Count / 2 + Count / 4, cow.Waiting); // the first half's second quarter and the whole second half
        for (int i = Count / 4; i < Count; i++) Assert.Equal(Value('a'), SnapValue(lease, order[i])); // not passed: intact

        // The writer passes everything and ends; as many overwrites under the next snapshot as arrays wait take recycled
        // arrays only (no array of 1 KB, no new slots array).
        lease.MarkWritten(Count);
        lease.Dispose();
        KvSnapshotLease next = h.Store.CreateSnapshotLease(h.Now);
        List<string> nextOrder = next.Entries.Select(e => Encoding.UTF8.GetString(e.Key)).ToList();
        const int Waited = Count / 2 + Count / 4;
        KvCommand[] sets = nextOrder.Take(Waited).Select(key => KvCommand.Create("SET", key, Value('d'))).ToArray();
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (KvCommand set in sets) h.Store.Execute(set, h.Now, writer, null);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < Count * 64, $"{allocated} B"); // the free list's growth at most; Allocated says no 1 KB array
        Assert.Equal(Waited, cow.Allocated);
        Assert.Equal(Count / 4 + Waited, cow.Recycled);
        Assert.Equal(Waited, cow.Waiting);
        for (int i = 0; i < Count; i++)
        {
            Assert.Equal(Value(order.IndexOf(nextOrder[i]) < Count / 2 ? 'b' : 'c'), SnapValue(next, nextOrder[i]));
            Assert.Equal(Bulk(Value(i < Waited ? 'd' : order.IndexOf(nextOrder[i]) < Count / 2 ? 'b' : 'c')), h.Run("GET", nextOrder[i]));
        }
        next.Dispose();
        cow.DropFree();
        Assert.Equal(0, cow.Waiting);
        Assert.Equal(0, cow.FreeBytes);
    }

    /// <summary>Free arrays of another length are not used, and the free lists stop growing at their bound.</summary>
    [Fact]
    public void Only_arrays_of_the_same_length_are_reused()
    {
        StoreHarness h = Keys(50, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        for (int i = 0; i < 50; i++) h.Run("SET", $"k{i}", Value('b'));
        lease.Dispose();
        h.Run("SET", "l", Value('x', 2000));
        h.Run("SET", "l", Value('x', 2000));
        lease = h.Store.CreateSnapshotLease(h.Now);
        h.Run("SET", "l", Value('y', 2000));
        Assert.Equal(51, cow.Allocated); // the 1024-byte arrays are free, but not of this length
        Assert.Equal(0, cow.Recycled);
        h.Run("SET", "k0", Value('c'));
        Assert.Equal(1, cow.Recycled);
        lease.Dispose();
        Assert.Equal(Bulk(Value('y', 2000)), h.Run("GET", "l"));
        Assert.Equal(Bulk(Value('c')), h.Run("GET", "k0"));
        Assert.True(cow.FreeBytes <= KvCopyOnWriteArrays.MaxFreeBytes);
    }

    [Fact]
    public void Free_arrays_beyond_the_bound_are_left_to_the_garbage_collector()
    {
        StoreHarness h = Keys(50, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        cow.FreeLimit = 10 * 1024;
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        for (int i = 0; i < 50; i++) h.Run("SET", $"k{i}", Value('b'));
        lease.Dispose();
        lease = h.Store.CreateSnapshotLease(h.Now);
        for (int i = 0; i < 50; i++) h.Run("SET", $"k{i}", Value('c'));
        lease.Dispose();
        Assert.Equal(10, cow.Recycled); // 10 of the 50 released arrays were kept
        Assert.Equal(90, cow.Allocated);
        Assert.Equal(0, cow.FreeBytes); // the 10 were taken again
        cow.DropFree(); // releases the second lease's 50: 10 kept... and dropped
        Assert.Equal(0, cow.FreeBytes);
        Assert.Equal(0, cow.Waiting);
        Assert.Equal(Bulk(Value('c')), h.Run("GET", "k49"));
    }

    /// <summary>The server's idle trim (before its compacting collection) gives the free arrays back too when no
    /// snapshot is retained (retention 0: EIOSHARP_KV_SNAPSHOT_SPARES_MS=0, the behaviour before h197).</summary>
    [Fact]
    public void The_idle_trim_drops_the_free_arrays()
    {
        StoreHarness h = Keys(40, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        h.Store.SnapshotEpochs.SpareRetentionMs = 0;
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        for (int i = 0; i < 40; i++) h.Run("SET", $"k{i}", Value('b'));
        lease.Dispose();
        h.Run("SET", "other", "x"); // no copy-on-write: the 40 arrays are still queued, released by the trim
        Assert.Equal(40, cow.Waiting);
        Assert.True(h.Store.TrimExcess() >= 40 * 1024);
        Assert.Equal(0, cow.FreeBytes);
        Assert.Equal(0, cow.Waiting);
        Assert.Equal(0, h.Store.TrimExcess());
        lease = h.Store.CreateSnapshotLease(h.Now);
        h.Run("SET", "k0", Value('c'));
        lease.Dispose();
        Assert.Equal(0, cow.Recycled); // nothing left to recycle after the trim
        Assert.Equal(41, cow.Allocated);
    }

    /// <summary>While leased snapshots recur (one ended less than the retention ago), the idle trim keeps what the next
    /// one reuses: the free copy-on-write arrays and the spare rows and entries arrays (h197); once none ran for the
    /// retention the cron's release drops them all, and MEMORY PURGE drops them at any time.</summary>
    [Fact]
    public void The_idle_trim_keeps_the_spares_while_snapshots_recur_and_the_stale_release_drops_them()
    {
        StoreHarness h = Keys(40, 'a');
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        KvSnapshotEpochs epochs = h.Store.SnapshotEpochs;
        long clock = 1_000_000;
        epochs.Clock = () => clock;
        epochs.SpareRetentionMs = 60_000;
        Assert.False(epochs.RetainsSpares); // no snapshot yet
        Assert.Equal(0, h.Store.ReleaseStaleSnapshotSpares());

        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        KvSnapshotEntry[] entries = lease.Entries.Array!;
        for (int i = 0; i < 40; i++) h.Run("SET", $"k{i}", Value('b')); // 40 copy-on-writes
        Assert.True(epochs.RetainsSpares); // running
        lease.Dispose();
        Assert.Equal(0, lease.Entries.Count); // the array went back to the store
        Assert.True(epochs.HoldsSpares);

        clock += 1_000; // the idle trim a second later: the arrays stay for the next rewrite
        h.Store.TrimExcess();
        Assert.Equal(40, cow.Waiting);
        clock += 58_999;
        Assert.Equal(0, h.Store.ReleaseStaleSnapshotSpares()); // still within the retention

        lease = h.Store.CreateSnapshotLease(h.Now); // the next rewrite: reuses the entries array and the 40 arrays
        Assert.Same(entries, lease.Entries.Array);
        Assert.Equal(1, epochs.EntriesReused);
        for (int i = 0; i < 40; i++) h.Run("SET", $"k{i}", Value('c'));
        Assert.Equal(40, cow.Allocated);
        Assert.Equal(40, cow.Recycled);
        for (int i = 0; i < 40; i++) Assert.Equal(Value('b'), SnapValue(lease, $"k{i}"));
        lease.Dispose();

        clock += 59_999;
        h.Store.TrimExcess();
        Assert.Equal(0, h.Store.ReleaseStaleSnapshotSpares());
        Assert.True(epochs.HoldsSpares);
        clock += 1; // the retention passed since the last snapshot's end: everything goes
        Assert.True(h.Store.ReleaseStaleSnapshotSpares() >= (40 * 1024) + (32 * 40));
        Assert.False(epochs.HoldsSpares);
        Assert.Equal(0, cow.Waiting);
        Assert.Equal(0, cow.FreeBytes);
        Assert.Equal(0, h.Store.ReleaseStaleSnapshotSpares());

        lease = h.Store.CreateSnapshotLease(h.Now); // nothing left to reuse
        Assert.NotSame(entries, lease.Entries.Array);
        h.Run("SET", "k0", Value('d'));
        Assert.Equal(41, cow.Allocated);
        lease.Dispose();
        Assert.True(epochs.HoldsSpares);
        Assert.Equal("+OK\r\n", h.Run("MEMORY", "PURGE")); // within the retention, but purged all the same
        Assert.False(epochs.HoldsSpares);
    }

    /// <summary>A leased snapshot takes the last one's entries array (h197) while the key count fits in it (an array with
    /// room, §207), and that array, cleared and written over, holds exactly the keys, values and expiries of the second
    /// snapshot's time: none of the first one's (a key deleted, one added, values overwritten in place and by
    /// copy-on-write, a collection changed); its entries past the snapshot's count are empty. A count that moved by a key
    /// and expired keys not removed yet take the same array (no copy); a count past its room gets a new array.</summary>
    [Fact]
    public void A_second_snapshot_in_the_first_ones_entries_array_holds_the_values_of_its_own_time()
    {
        const int Count = 200;
        StoreHarness h = Keys(Count, 'a');
        h.Run("SET", "small", "s1");
        h.Run("HSET", "hash", "f", "v1");
        h.Run("SET", "gone", "x");
        h.Run("SET", "ttl", "t", "PX", "100000");
        KvSnapshotEpochs epochs = h.Store.SnapshotEpochs;

        KvSnapshotLease first = h.Store.CreateSnapshotLease(h.Now);
        KvSnapshotEntry[] array = first.Entries.Array!;
        Assert.Equal(Count + 4, first.Entries.Count);
        Assert.Equal(0, first.Entries.Offset);
        Assert.Equal(KvSnapshotEpochs.EntriesCapacity(Count + 4), array.Length); // room for a count that moves (§207)
        Assert.All(array.Skip(Count + 4), e => Assert.Null(e.Key));
        for (int i = 0; i < Count / 2; i++) h.Run("SET", $"k{i}", Value('b')); // copy-on-write: the first still holds 'a'
        for (int i = 0; i < Count; i++) Assert.Equal(Value('a'), SnapValue(first, $"k{i}"));
        first.Dispose();
        Assert.Equal(0, first.Entries.Count);
        Assert.All(array, e => Assert.Null(e.Key)); // cleared on its way back

        for (int i = Count / 2; i < Count; i++) h.Run("SET", $"k{i}", Value('c')); // in place now
        h.Run("SET", "small", "s2");
        h.Run("HSET", "hash", "f", "v2");
        h.Run("DEL", "gone");
        h.Run("SET", "new", "n");
        KvSnapshotLease second = h.Store.CreateSnapshotLease(h.Now);
        Assert.Same(array, second.Entries.Array);
        KvSnapshotEntry[] reference = h.Store.CreateSnapshot(h.Now); // a fresh array of the exact count, never pooled
        Assert.NotSame(array, reference);
        Assert.Equal(Count + 4, reference.Length);
        Assert.Equal(Describe(reference), Describe(second.Entries));
        for (int i = 0; i < Count; i++) Assert.Equal(Value(i < Count / 2 ? 'b' : 'c'), SnapValue(second, $"k{i}"));
        Assert.Equal("s2", SnapValue(second, "small"));
        Assert.DoesNotContain(second.Entries, e => Encoding.UTF8.GetString(e.Key) == "gone");
        Assert.Equal(h.Now + 100000, second.Entries.Single(e => Encoding.UTF8.GetString(e.Key) == "ttl").ExpireAtUnixMs);
        for (int i = 0; i < Count; i++) h.Run("SET", $"k{i}", Value('d')); // after the second: its values stay
        Assert.Equal(Describe(reference), Describe(second.Entries));
        second.Dispose();

        h.Run("SET", "another", "x"); // the count moved: the same array all the same (h197 allocated one here)
        KvSnapshotLease third = h.Store.CreateSnapshotLease(h.Now);
        Assert.Same(array, third.Entries.Array);
        Assert.Equal(Count + 5, third.Entries.Count);
        Assert.Equal(Describe(h.Store.CreateSnapshot(h.Now)), Describe(third.Entries));
        third.Dispose();

        h.Now += 200_000; // "ttl" expired, not removed yet: the snapshot leaves it out, in the same array (no copy)
        KvSnapshotLease fourth = h.Store.CreateSnapshotLease(h.Now);
        Assert.Same(array, fourth.Entries.Array);
        Assert.Equal(Count + 4, fourth.Entries.Count);
        Assert.All(array.Skip(Count + 4), e => Assert.Null(e.Key)); // past the snapshot: empty
        Assert.Equal(Describe(h.Store.CreateSnapshot(h.Now)), Describe(fourth.Entries));
        fourth.Dispose();
        Assert.Equal(3, epochs.EntriesReused); // the second's, the third's and the fourth's

        for (int i = 0; i < array.Length; i++) h.Run("SET", $"more{i}", "m"); // past the array's room: a new one
        KvSnapshotLease fifth = h.Store.CreateSnapshotLease(h.Now);
        Assert.NotSame(array, fifth.Entries.Array);
        Assert.True(fifth.Entries.Array!.Length >= fifth.Entries.Count + (fifth.Entries.Count / 8)); // with room again
        Assert.Equal(Describe(h.Store.CreateSnapshot(h.Now)), Describe(fifth.Entries));
        KvSnapshotEntry[] larger = fifth.Entries.Array;
        fifth.Dispose();
        Assert.Equal(3, epochs.EntriesReused);

        for (int i = 0; i < array.Length; i++) h.Run("DEL", $"more{i}"); // far under its length: a new one (no spare held much larger than the keyspace)
        KvSnapshotLease sixth = h.Store.CreateSnapshotLease(h.Now);
        Assert.NotSame(larger, sixth.Entries.Array);
        Assert.Equal(Describe(h.Store.CreateSnapshot(h.Now)), Describe(sixth.Entries));
        sixth.Dispose();
    }

    // Every entry as text (database, key, value or the collection's contents, expiry), in order.
    private static string Describe(IEnumerable<KvSnapshotEntry> entries) => string.Join("\n", entries.Select(e =>
        $"{e.Db} {Encoding.UTF8.GetString(e.Key)} {(e.Value is byte[] b ? Encoding.UTF8.GetString(b) : e.Value.GetType().Name + ":" + ObjectText(e.Value))} {e.ExpireAtUnixMs}"));

    private static string ObjectText(object value)
    {
        var rdb = new MemoryStream();
        KvRdb.Write([new KvSnapshotEntry(0, "o"u8.ToArray(), value, -1)], span => rdb.Write(span), "7.0.15", 0, 0);
        return Convert.ToHexString(rdb.ToArray());
    }

    /// <summary>The BGSAVE / AOF rewrite shape, three times over: each snapshot is written on another thread (marking its
    /// progress) while the owner keeps overwriting every key with values of the same length; each file holds exactly the
    /// values of its snapshot's time, and the later rounds run on recycled arrays.</summary>
    [Fact]
    public async Task Successive_snapshots_written_while_the_keys_are_overwritten_hold_the_values_of_their_time()
    {
        const int Count = 1500;
        var h = new StoreHarness();
        var random = new Random(132);
        byte[] RandomValue()
        {
            var v = new byte[1024];
            random.NextBytes(v);
            return v;
        }
        void Set(int i, byte[] value)
        {
            h.Store.Execute(KvCommand.Create([Encoding.ASCII.GetBytes("SET"), Encoding.ASCII.GetBytes($"k{i}"), value]), h.Now,
                new RespWriter(new ArrayBufferWriter<byte>()), null);
        }
        var current = new byte[Count][];
        for (int i = 0; i < Count; i++)
        {
            current[i] = RandomValue();
            Set(i, current[i]);
            Set(i, current[i]);
        }
        KvCopyOnWriteArrays cow = h.Store.CopyOnWriteArrays;
        for (int round = 0; round < 3; round++)
        {
            byte[][] atSnapshot = (byte[][])current.Clone();
            KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
            var rdb = new MemoryStream();
            using var ownerPassed = new ManualResetEventSlim();
            // The writer's first piece (~1 MiB of the ~1.5 MiB) waits for one pass of the owner over every key, so that
            // each round overwrites keys the writer has not reached (copy-on-write) as well as keys it has passed.
            Task writer = Task.Run(() => KvRdb.Write(lease.Entries, span => { ownerPassed.Wait(); rdb.Write(span); }, "7.0.15",
                h.Now, 0, compression: false, lease: lease));
            while (!writer.IsCompleted)
            {
                for (int i = 0; i < Count; i++)
                {
                    current[i] = RandomValue();
                    Set(i, current[i]);
                }
                ownerPassed.Set();
            }
            await writer;
            lease.Dispose();
            var loaded = new KvStore(random: new Random(1));
            rdb.Position = 0;
            KvRdb.Load(rdb, rdb.Length, loaded, h.Now);
            Assert.Equal(Count, loaded.Count);
            KvSnapshotEntry[] file = loaded.CreateSnapshot(h.Now);
            foreach (KvSnapshotEntry e in file)
            {
                int i = int.Parse(Encoding.ASCII.GetString(e.Key.AsSpan(1)));
                Assert.Equal(atSnapshot[i], (byte[])e.Value);
            }
        }
        Assert.True(cow.Recycled > 0, $"recycled {cow.Recycled}, allocated {cow.Allocated}");
        Assert.Equal(2, h.Store.SnapshotEpochs.EntriesReused); // rounds 2 and 3 wrote into round 1's entries array (h197)
        for (int i = 0; i < Count; i++)
        {
            var reply = new ArrayBufferWriter<byte>();
            h.Store.Execute(KvCommand.Create("GET", $"k{i}"), h.Now, new RespWriter(reply), null);
            Assert.Equal(current[i], reply.WrittenSpan.Slice(7, 1024).ToArray()); // after "$1024\r\n"
        }
    }
}
