using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The store's key count, expiring-key count and used bytes are kept as the databases change (issue 14,
/// session 17) instead of walking the databases on every read; INFO keyspace's per-database counts are walked only when
/// a count may have moved. These tests check both against a walk after every command of a random mix.</summary>
public sealed class KeyspaceTotalsTests
{
    private static void AssertTotalsMatchWalk(KvStore store, KvServerStats stats, string after)
    {
        long keys = 0, expiring = 0, bytes = 0;
        for (int i = 0; i < store.DatabaseCount; i++)
        {
            KvDatabase db = store.Database(i);
            keys += db.Count;
            expiring += db.Volatile.Count;
            bytes += db.DataBytes + (long)db.Count * KvStore.EntryOverheadBytes;
        }
        Assert.True(keys == store.Count, $"Count {store.Count}, walk {keys}, after {after}");
        Assert.True(expiring == store.ExpiringCount, $"ExpiringCount {store.ExpiringCount}, walk {expiring}, after {after}");
        Assert.True(bytes == store.UsedBytes, $"UsedBytes {store.UsedBytes}, walk {bytes}, after {after}");

        stats.UpdateFrom(store);
        Assert.Equal(keys, stats.Keys);
        Assert.Equal(expiring, stats.ExpiringKeys);
        Assert.Equal(bytes, stats.DatasetBytes);
        var perDb = stats.KeysPerDatabase;
        for (int i = 0; i < store.DatabaseCount; i++)
        {
            Assert.True(perDb[i] == (store.CountIn(i), store.ExpiringCountIn(i)),
                $"db{i}: INFO keyspace {perDb[i]}, store ({store.CountIn(i)}, {store.ExpiringCountIn(i)}), after {after}");
        }
    }

    [Fact]
    public void Totals_and_info_keyspace_match_a_walk_after_every_command()
    {
        var rng = new Random(14);
        var h = new StoreHarness(new KvStore(random: new Random(1), databases: 4));
        var stats = new KvServerStats();
        string Key() => "k" + rng.Next(24);
        string Value() => new string('v', rng.Next(0, 700)); // packed and own-array strings
        for (int step = 0; step < 3000; step++)
        {
            string[] cmd = rng.Next(16) switch
            {
                0 or 1 or 2 => ["SET", Key(), Value()],
                3 => ["SET", Key(), Value(), "PX", "100000"],
                4 => ["DEL", Key()],
                5 => ["EXPIRE", Key(), "1000"],
                6 => ["PERSIST", Key()],
                7 => ["MOVE", Key(), rng.Next(4).ToString()],
                8 => ["SWAPDB", rng.Next(4).ToString(), rng.Next(4).ToString()],
                9 => ["RPUSH", "l" + rng.Next(4), Value()],
                10 => ["APPEND", Key(), Value()],
                11 => ["GETDEL", Key()],
                12 => ["HSET", "h" + rng.Next(4), Key(), Value()],
                13 => rng.Next(40) == 0 ? ["FLUSHDB"] : ["GET", Key()],
                14 => rng.Next(80) == 0 ? ["FLUSHALL"] : ["INCR", "n" + rng.Next(4)],
                _ => ["COPY", Key(), Key(), "DB", rng.Next(4).ToString()],
            };
            h.Run(cmd);
            AssertTotalsMatchWalk(h.Store, stats, string.Join(' ', cmd[..Math.Min(cmd.Length, 3)]));
        }
        Assert.True(h.Store.Count > 0);
    }

    [Fact]
    public void Info_keyspace_follows_a_move_and_a_swapdb_that_keep_the_total()
    {
        var h = new StoreHarness();
        var stats = new KvServerStats();
        h.Run("SET", "a", "1");
        h.Run("SET", "b", "2", "EX", "100");
        stats.UpdateFrom(h.Store);
        Assert.Equal((2L, 1L), stats.KeysPerDatabase[0]);
        h.Run("MOVE", "b", "3"); // the total stays 2
        stats.UpdateFrom(h.Store);
        Assert.Equal((1L, 0L), stats.KeysPerDatabase[0]);
        Assert.Equal((1L, 1L), stats.KeysPerDatabase[3]);
        h.Run("SWAPDB", "3", "5"); // nothing is added or removed
        stats.UpdateFrom(h.Store);
        Assert.Equal((0L, 0L), stats.KeysPerDatabase[3]);
        Assert.Equal((1L, 1L), stats.KeysPerDatabase[5]);
        Assert.Equal(2, stats.Keys);
    }

    [Fact]
    public void Info_keyspace_follows_databases_past_the_last_bit()
    {
        // UpdateFrom visits the databases by the bits set in the changed-database mask; bit 63 stands for database 63 and
        // every later one (session 26).
        var h = new StoreHarness(new KvStore(random: new Random(1), databases: 70));
        var stats = new KvServerStats();
        AssertTotalsMatchWalk(h.Store, stats, "nothing");
        foreach (int db in new[] { 1, 62, 63, 64, 69 })
        {
            h.Run("SET", "k" + db, "v", "EX", "100");
            AssertTotalsMatchWalk(h.Store, stats, "SET k" + db);
            h.Run("MOVE", "k" + db, db.ToString(System.Globalization.CultureInfo.InvariantCulture));
            AssertTotalsMatchWalk(h.Store, stats, "MOVE k" + db);
        }
        h.Run("SWAPDB", "69", "2");
        AssertTotalsMatchWalk(h.Store, stats, "SWAPDB 69 2");
        h.Run("SWAPDB", "64", "65");
        AssertTotalsMatchWalk(h.Store, stats, "SWAPDB 64 65");
        Assert.Equal((1L, 1L), stats.KeysPerDatabase[65]);
        Assert.Equal((1L, 1L), stats.KeysPerDatabase[2]);
        h.Run("FLUSHALL");
        AssertTotalsMatchWalk(h.Store, stats, "FLUSHALL");
    }

    [Fact]
    public void A_new_store_is_walked_even_when_its_version_equals_the_last_one()
    {
        var stats = new KvServerStats();
        var first = new StoreHarness();
        first.Run("SET", "a", "1");
        first.Run("SET", "b", "1");
        first.Run("SET", "c", "1");
        stats.UpdateFrom(first.Store);
        Assert.Equal((3L, 0L), stats.KeysPerDatabase[0]);
        var second = new StoreHarness(); // a restarted owner's store: as many count changes, another distribution
        second.Run("SET", "a", "1");
        second.Run("MOVE", "a", "2");
        Assert.Equal(first.Store.KeyspaceCountsVersion, second.Store.KeyspaceCountsVersion);
        Assert.NotEqual(0, second.Store.CountIn(2));
        stats.UpdateFrom(second.Store);
        Assert.Equal((0L, 0L), stats.KeysPerDatabase[0]);
        Assert.Equal((1L, 0L), stats.KeysPerDatabase[2]);
    }
}
