using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>Packed strings live as records in shared pages (KvDatabase, "record pages"; issue 14's memory target): many
/// keys share one array, a replaced or removed record is counted dead until the pages are rewritten between commands,
/// a removed handle still reads its key and value, and a record too big for a page gets an array of its own.</summary>
public sealed class RecordPageTests
{
    private const string Ok = "+OK\r\n";

    private static string Bulk(string s) => $"${Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Short_strings_share_pages_and_read_back()
    {
        var h = new StoreHarness();
        const int keys = 20_000;
        for (int i = 0; i < keys; i++) Assert.Equal(Ok, h.Run("SET", $"key:{i}", $"v{i:D15}"));
        KvDatabase db = h.Store.Database(0);
        var pages = new HashSet<object>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < keys; i++)
        {
            int row = db.RowOf(B($"key:{i}"));
            Assert.True(row >= 0);
            object item = db.ItemAt(row);
            Assert.Equal(KvDatabase.PageSize, Assert.IsType<byte[]>(item).Length);
            pages.Add(item);
        }
        // 20,000 records of 1 + 9..10 + 1 + 16 bytes in pages of ~64 KB: ~9 pages, not 20,000 arrays.
        Assert.InRange(pages.Count, 1, 12);
        for (int i = 0; i < keys; i += 97) Assert.Equal(Bulk($"v{i:D15}"), h.Run("GET", $"key:{i}"));
        Assert.Equal(0, db.PageRecordBytes.Dead);
        Assert.Equal(keys * 16L + Enumerable.Range(0, keys).Sum(i => (long)$"key:{i}".Length), db.DataBytes);
    }

    [Fact]
    public void Replaced_and_removed_records_are_dead_until_the_pages_are_rewritten()
    {
        var h = new StoreHarness();
        KvDatabase db = h.Store.Database(0);
        const int keys = 5_000;
        for (int i = 0; i < keys; i++) h.Run("SET", $"k{i}", "x");
        Assert.Equal(0, db.PageRecordBytes.Dead);
        // A value of another length makes a new record; the old one (1 + 2..5 + 1 + 1 bytes) is dead.
        h.Run("SET", "k1", "yy");
        Assert.Equal(1 + 2 + 1 + 1, db.PageRecordBytes.Dead);
        h.Run("DEL", "k2");
        Assert.Equal(2 * (1 + 2 + 1 + 1), db.PageRecordBytes.Dead);
        // The same length again: in place, nothing dead.
        h.Run("SET", "k1", "zz");
        Assert.Equal(2 * (1 + 2 + 1 + 1), db.PageRecordBytes.Dead);
        Assert.Equal(0, db.PageCompactions);

        // Churn until more than 1 MB and half the pages are dead: the pages are rewritten after a command.
        string big = new('b', 300);
        for (int round = 0; db.PageCompactions == 0; round++)
        {
            Assert.True(round < 20, "pages never rewritten");
            for (int i = 0; i < keys; i++) h.Run("SET", $"k{i}", round % 2 == 0 ? big : big + "!");
        }
        (long total, long dead) = db.PageRecordBytes;
        Assert.True(dead < (1 << 20) || dead * 2 < total, $"dead {dead} of {total} after the rewrite");
        for (int i = 0; i < keys; i += 7)
        {
            string got = h.Run("GET", $"k{i}");
            Assert.True(got == Bulk(big) || got == Bulk(big + "!"), got);
        }
        Assert.Equal(keys, h.Store.Count);
    }

    [Fact]
    public void A_removed_handle_keeps_its_key_and_value_while_new_records_are_added()
    {
        var h = new StoreHarness();
        KvDatabase db = h.Store.Database(0);
        h.Run("SET", "gone", "old-value");
        Assert.True(db.Lookup.TryGetValue(B("gone"), out KvEntry? e));
        db.Remove(e);
        for (int i = 0; i < 3000; i++) db.AddPackedString(B($"new{i}"), B("0123456789abcdef"), -1);
        Assert.Equal("gone", Encoding.UTF8.GetString(e.Key));
        Assert.Equal("old-value", Encoding.UTF8.GetString((byte[])e.Value));
        Assert.Equal("old-value", Encoding.UTF8.GetString(e.StringSpan));

        // RENAME and MOVE read the removed key's value after removing it.
        h.Run("SET", "a", "value-a");
        Assert.Equal(Ok, h.Run("RENAME", "a", "b"));
        Assert.Equal(Bulk("value-a"), h.Run("GET", "b"));
        Assert.Equal(":1\r\n", h.Run("MOVE", "b", "1"));
        h.Run("SELECT", "1");
        Assert.Equal(Bulk("value-a"), h.Run("GET", "b"));
    }

    [Fact]
    public void A_record_too_big_for_a_page_gets_its_own_array_and_leaves_nothing_dead()
    {
        var h = new StoreHarness();
        KvDatabase db = h.Store.Database(0);
        string key = new('K', KvDatabase.PageSize / 8 + 10);
        Assert.Equal(Ok, h.Run("SET", key, "v"));
        int row = db.RowOf(B(key));
        byte[] own = Assert.IsType<byte[]>(db.ItemAt(row));
        Assert.NotEqual(KvDatabase.PageSize, own.Length);
        Assert.Equal(0, db.PosAt(row));
        Assert.Equal(Bulk("v"), h.Run("GET", key));
        Assert.Equal(Ok, h.Run("SET", key, "longer"));
        Assert.Equal(Bulk("longer"), h.Run("GET", key));
        Assert.Equal(":1\r\n", h.Run("DEL", key));
        Assert.Equal((0L, 0L), db.PageRecordBytes);
    }

    [Fact]
    public void Values_of_every_length_round_trip_through_records()
    {
        var h = new StoreHarness();
        // Lengths across the varint boundaries (127/128) and the packed limit (512: longer values are not records).
        foreach (int length in new[] { 0, 1, 15, 16, 127, 128, 129, 300, 511, 512, 513, 1000 })
        {
            string key = $"len:{length}";
            string value = new((char)('a' + length % 26), length);
            Assert.Equal(Ok, h.Run("SET", key, value));
            Assert.Equal(Bulk(value), h.Run("GET", key));
            Assert.Equal($":{length}\r\n", h.Run("STRLEN", key));
            Assert.Equal(Ok, h.Run("SET", key, value + "z"));
            Assert.Equal(Bulk(value + "z"), h.Run("GET", key));
            Assert.Equal($":{length + 2}\r\n", h.Run("APPEND", key, "y"));
            Assert.Equal(Bulk(value + "zy"), h.Run("GET", key));
        }
        Assert.Equal(Ok, h.Run("SET", "n", "9"));
        Assert.Equal(":10\r\n", h.Run("INCR", "n"));
        Assert.Equal(":11\r\n", h.Run("INCR", "n"));
        Assert.Equal(Bulk("11"), h.Run("GET", "n"));
        Assert.Equal(Ok, h.Run("FLUSHALL"));
        Assert.Equal((0L, 0L), h.Store.Database(0).PageRecordBytes);
    }
}

/// <summary>MEMORY PURGE also trims the C heap (KvNativeHeap: glibc malloc_trim), and MALLOC-STATS reports the count.</summary>
public sealed class NativeHeapTrimTests
{
    [Fact]
    public void Memory_purge_trims_the_c_heap_and_malloc_stats_counts_it()
    {
        var h = new StoreHarness();
        long before = KvNativeHeap.Trims;
        Assert.Equal("+OK\r\n", h.Run("MEMORY", "PURGE"));
        Assert.True(KvNativeHeap.Trims > before, $"trims {KvNativeHeap.Trims} after {before}");
        string stats = h.Run("MEMORY", "MALLOC-STATS");
        Assert.Contains("C heap trims (malloc_trim): ", stats);
    }
}
