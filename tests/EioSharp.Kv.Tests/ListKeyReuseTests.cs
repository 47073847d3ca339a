using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>A list emptied by a pop is deleted as before, and its holder (key array, <see cref="KvKeyedValue"/>,
/// <see cref="KvList"/>) is kept for its key's next list (issue 12, session 22: the BLPOP/LPUSH ping-pong creates and
/// deletes each of its two lists every round trip). The next list under that key reuses it and reads in every way as a
/// new list: replies, MEMORY USAGE, the used-memory account, the LFU counter, events, the AOF and running snapshots.</summary>
public sealed class ListKeyReuseTests
{
    private static KvDatabase Db(StoreHarness h) => h.Store.Database(0);

    private static object Holder(StoreHarness h, string key)
    {
        int row = Db(h).RowOf(Encoding.UTF8.GetBytes(key));
        Assert.True(row >= 0, $"{key} is not in the table");
        return Db(h).ItemAt(row);
    }

    [Fact]
    public void A_list_emptied_by_a_pop_is_deleted_and_its_holder_serves_the_keys_next_list_as_a_new_one()
    {
        var h = new StoreHarness();
        var events = new EventRecorder();
        h.Store.Observer = events;
        var fresh = new StoreHarness(); // the control: the same key pushed once into an empty store
        Assert.Equal(":1\r\n", fresh.Run("RPUSH", "k", "x"));

        // Ten 3-byte elements grow the list's listpack past a new list's 16 bytes: the kept list must not keep it.
        Assert.Equal(":10\r\n", h.Run("RPUSH", "k", "a00", "a01", "a02", "a03", "a04", "a05", "a06", "a07", "a08", "a09"));
        object holder = Holder(h, "k");
        KvSnapshotEntry[] before = h.Store.CreateSnapshot(h.Now); // deep copies: untouched by the reuse below
        Assert.StartsWith("*10\r\n", h.Run("LPOP", "k", "10"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "k")); // emptied: deleted, as Redis does
        Assert.Equal(0, h.Store.Count);
        Assert.Equal(0L, Db(h).DataBytes);
        Assert.Equal(1, Db(h).SpareListCount);

        Assert.Equal(":1\r\n", h.Run("RPUSH", "k", "x"));
        Assert.Same(holder, Holder(h, "k")); // the kept holder, not a new one
        Assert.Equal(0, Db(h).SpareListCount);
        Assert.Equal(fresh.Run("MEMORY", "USAGE", "k"), h.Run("MEMORY", "USAGE", "k"));
        Assert.Equal(Db(fresh).DataBytes, Db(h).DataBytes);
        Assert.Equal(Db(fresh).Map[Encoding.UTF8.GetBytes("k")].Frequency, Db(h).Map[Encoding.UTF8.GetBytes("k")].Frequency);
        Assert.Equal("*1\r\n$1\r\nx\r\n", h.Run("LRANGE", "k", "0", "-1"));
        Assert.Equal("$9\r\nquicklist\r\n", h.Run("OBJECT", "ENCODING", "k"));
        Assert.Equal(["rpush:k", "lpop:k", "del:k", "rpush:k"], events.Events);
        Assert.Equal(["SELECT 0", "RPUSH k a00 a01 a02 a03 a04 a05 a06 a07 a08 a09", "LPOP k 10", "RPUSH k x"], h.Logged);

        // The snapshot taken before still holds the ten elements.
        var snapshotList = (KvList)Assert.Single(before).Value;
        Assert.Equal(10, snapshotList.Count);
        Assert.Equal("a09", Encoding.UTF8.GetString(snapshotList[9]));

        // The list grows and empties again as a new one would.
        Assert.Equal(":3\r\n", h.Run("LPUSH", "k", "y", "z"));
        Assert.Equal("*3\r\n$1\r\nz\r\n$1\r\ny\r\n$1\r\nx\r\n", h.Run("LRANGE", "k", "0", "-1"));
        Assert.Equal("$1\r\nx\r\n", h.Run("RPOP", "k"));
        Assert.Equal(":2\r\n", h.Run("LLEN", "k"));
    }

    [Fact]
    public void A_kept_holder_serves_only_its_own_key_and_only_an_emptied_small_list_is_kept()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "k", "a");
        object kHolder = Holder(h, "k");
        h.Run("LPOP", "k");
        Assert.Equal(1, Db(h).SpareListCount);

        // Another key gets a holder of its own (its key array is its own name).
        h.Run("RPUSH", "j", "a");
        Assert.NotSame(kHolder, Holder(h, "j"));
        Assert.Equal("*1\r\n$1\r\nj\r\n", h.Run("KEYS", "*"));
        Assert.Equal(1, Db(h).SpareListCount);

        // DEL removes a list that is not empty: nothing is kept.
        h.Run("DEL", "j");
        Assert.Equal(1, Db(h).SpareListCount);

        // A list past the small form (a 100-byte element: the ring) is not kept when emptied.
        h.Run("RPUSH", "big", new string('b', 100));
        h.Run("RPOP", "big");
        Assert.Equal(":0\r\n", h.Run("EXISTS", "big"));
        Assert.Equal(1, Db(h).SpareListCount);

        // Emptied by LREM, LTRIM and LMOVE's source: kept the same way; LMOVE's destination takes its key's kept holder.
        h.Run("RPUSH", "r", "a");
        h.Run("LREM", "r", "0", "a");
        h.Run("RPUSH", "t", "a");
        h.Run("LTRIM", "t", "1", "0");
        Assert.Equal(3, Db(h).SpareListCount); // k, r, t
        h.Run("RPUSH", "m", "a");
        object mHolder = Holder(h, "m");
        Assert.Equal("$1\r\na\r\n", h.Run("LMOVE", "m", "n", "LEFT", "LEFT"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "m"));
        Assert.Equal(4, Db(h).SpareListCount); // k, r, t, m
        Assert.Equal("$1\r\na\r\n", h.Run("LMOVE", "n", "m", "LEFT", "LEFT"));
        Assert.Same(mHolder, Holder(h, "m"));
        Assert.Equal("*1\r\n$1\r\na\r\n", h.Run("LRANGE", "m", "0", "-1"));
        Assert.Equal(3, Db(h).SpareListCount); // m taken; n kept in the place of the oldest (k): r, t, n
        h.Run("RPUSH", "r", "b");
        h.Run("RPUSH", "t", "c");
        Assert.Equal("*1\r\n$1\r\nb\r\n", h.Run("LRANGE", "r", "0", "-1"));
        Assert.Equal("*1\r\n$1\r\nc\r\n", h.Run("LRANGE", "t", "0", "-1"));
        Assert.Equal(1, Db(h).SpareListCount); // n

        // The idle trim (MEMORY PURGE) and FLUSHALL drop what is kept.
        h.Store.TrimExcess();
        Assert.Equal(0, Db(h).SpareListCount);
        h.Run("LPOP", "r");
        Assert.Equal(1, Db(h).SpareListCount);
        h.Run("FLUSHALL");
        Assert.Equal(0, Db(h).SpareListCount);
        Assert.Equal(":1\r\n", h.Run("RPUSH", "r", "x"));
        Assert.Equal("*1\r\n$1\r\nx\r\n", h.Run("LRANGE", "r", "0", "-1"));
    }

    [Fact]
    public void The_used_memory_account_stays_exact_over_many_create_and_delete_cycles()
    {
        var h = new StoreHarness();
        var fresh = new StoreHarness();
        fresh.Run("RPUSH", "ping", "x");
        fresh.Run("RPUSH", "pong", "x");
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(":1\r\n", h.Run("LPUSH", "ping", "x"));
            Assert.Equal("$1\r\nx\r\n", h.Run("LPOP", "ping"));
            Assert.Equal(":1\r\n", h.Run("LPUSH", "pong", "x"));
            Assert.Equal("$1\r\nx\r\n", h.Run("LPOP", "pong"));
            Assert.Equal(0L, Db(h).DataBytes);
            Assert.Equal(0, h.Store.Count);
        }
        h.Run("LPUSH", "ping", "x");
        h.Run("LPUSH", "pong", "x");
        Assert.Equal(Db(fresh).DataBytes, Db(h).DataBytes);
        Assert.Equal(fresh.Store.UsedMemory, h.Store.UsedMemory);
    }

    [Fact]
    public void A_kept_lists_first_small_push_reuses_its_listpack_array_and_a_new_lists_allocates_one()
    {
        // Session 32 (h184): the ping-pong's LPUSH into its kept list allocated the listpack's 16-byte array every time
        // (~80 B per round trip, the server's whole allocation on that row).
        var kept = new KvList();
        kept.Push("x"u8, left: true);
        Assert.Equal("x", Encoding.UTF8.GetString(kept.Pop(left: true)));
        Assert.True(kept.TryResetForReuse());
        long before = GC.GetAllocatedBytesForCurrentThread();
        kept.Push("y"u8, left: true);
        long keptBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        var fresh = new KvList();
        before = GC.GetAllocatedBytesForCurrentThread();
        fresh.Push("y"u8, left: true);
        long freshBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, keptBytes);
        Assert.True(freshBytes > 0); // the control: the measure sees the array a new list allocates
        Assert.Equal(fresh.EstimateBytes(), kept.EstimateBytes());
        Assert.Equal(["y"], kept.Elements.Select(Encoding.UTF8.GetString));
    }

    [Theory]
    [InlineData(1)] // fits the kept 16-byte array: used as it is
    [InlineData(12)] // 13 bytes with its length byte: a new list's first array is still 16 bytes
    [InlineData(13)] // 14 bytes: a new list's would be 17 bytes, so the kept array is not used
    [InlineData(40)]
    public void A_kept_list_reads_as_a_new_one_in_memory_usage_whatever_its_first_elements_size(int length)
    {
        var h = new StoreHarness();
        var fresh = new StoreHarness();
        string element = new('e', length);
        Assert.Equal(":1\r\n", h.Run("RPUSH", "k", "x"));
        Assert.Equal("$1\r\nx\r\n", h.Run("LPOP", "k"));
        Assert.Equal(1, Db(h).SpareListCount);
        Assert.Equal(":1\r\n", h.Run("RPUSH", "k", element));
        Assert.Equal(0, Db(h).SpareListCount);
        Assert.Equal(":1\r\n", fresh.Run("RPUSH", "k", element));
        Assert.Equal(fresh.Run("MEMORY", "USAGE", "k"), h.Run("MEMORY", "USAGE", "k"));
        Assert.Equal(fresh.Store.UsedMemory, h.Store.UsedMemory);
        Assert.Equal(":3\r\n", h.Run("LPUSH", "k", "a", "b"));
        Assert.Equal($"*3\r\n$1\r\nb\r\n$1\r\na\r\n${length}\r\n{element}\r\n", h.Run("LRANGE", "k", "0", "-1"));
    }
}
