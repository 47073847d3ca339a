using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The access clock (§219): a key's idle time (OBJECT IDLETIME, LRU eviction) and its LFU counter's decay count
/// the whole seconds of the time commands run at (Redis's LRU clock, <c>mstime()/1000</c>), not a clock the store reads
/// itself; and the key hash every table keyed by bytes shares (<see cref="ByteArrayComparer"/>, XXH3 with a seed per
/// process).</summary>
public class AccessClockTests
{
    [Fact]
    public void Object_idletime_counts_whole_seconds_of_the_command_time_since_the_last_access_by_every_path()
    {
        var h = new StoreHarness(); // Now: a whole second
        h.Run("SET", "s", "v");
        h.Run("HSET", "h", "f", "v");
        h.Now += 999;
        Assert.Equal(Replies.Int(0), h.Run("OBJECT", "IDLETIME", "s"));
        h.Now += 1;
        Assert.Equal(Replies.Int(1), h.Run("OBJECT", "IDLETIME", "s"));
        h.Now += 60_000;
        Assert.Equal(Replies.Int(61), h.Run("OBJECT", "IDLETIME", "s")); // OBJECT records no access
        Assert.Equal(Replies.Int(61), h.Run("OBJECT", "IDLETIME", "h"));
        Assert.Equal(Replies.Bulk("v"), h.Run("GET", "s")); // the string fast path's read, by row
        Assert.Equal(Replies.Bulk("v"), h.Run("HGET", "h", "f")); // a collection's read, by row
        Assert.Equal(Replies.Int(0), h.Run("OBJECT", "IDLETIME", "s"));
        Assert.Equal(Replies.Int(0), h.Run("OBJECT", "IDLETIME", "h"));
        h.Now += 5_000;
        Assert.Equal(Replies.Ok, h.Run("SET", "s", "w")); // the fast path's overwrite in place: lookupKeyWrite's access
        Assert.Equal(Replies.Int(2), h.Run("APPEND", "h2", "ab")); // a new key starts at the clock
        h.Now += 2_000;
        Assert.Equal(Replies.Int(2), h.Run("OBJECT", "IDLETIME", "s"));
        Assert.Equal(Replies.Int(2), h.Run("OBJECT", "IDLETIME", "h2"));
        Assert.Equal(Replies.Int(7), h.Run("OBJECT", "IDLETIME", "h"));
        Assert.Equal(Replies.Int(2), h.Run("APPEND", "s", "x")); // the general path's access (KvEntry)
        Assert.Equal(Replies.Int(0), h.Run("OBJECT", "IDLETIME", "s"));
    }

    [Fact]
    public void The_lfu_counter_decays_by_the_minutes_of_command_time_since_the_last_access()
    {
        var h = new StoreHarness(new KvStore(random: new Random(1)));
        h.Store.MemorySettings = new KvMemorySettings(0, KvEvictionPolicy.AllKeysLfu, LfuDecayTime: 1);
        h.Run("SET", "k", "v");
        Assert.Equal(Replies.Int(5), h.Run("OBJECT", "FREQ", "k")); // Redis's LFU_INIT_VAL
        h.Now += 2 * 60_000 + 59_000;
        Assert.Equal(Replies.Int(3), h.Run("OBJECT", "FREQ", "k")); // two whole minutes
        h.Run("GET", "k"); // decayed to 3, then the increment (always taken under LFU_INIT_VAL)
        Assert.Equal(Replies.Int(4), h.Run("OBJECT", "FREQ", "k"));
        h.Now += 10 * 60_000;
        Assert.Equal(Replies.Int(0), h.Run("OBJECT", "FREQ", "k"));
    }

    [Fact]
    public void Under_a_policy_other_than_lfu_an_access_moves_the_clock_and_leaves_the_lfu_counter()
    {
        var h = new StoreHarness(new KvStore(random: new Random(1)));
        h.Run("SET", "k", "v");
        for (int i = 0; i < 50; i++) h.Run("GET", "k"); // under LFU, 50 hits would take the counter past 5
        h.Now += 30_000;
        h.Run("GET", "k");
        Assert.Equal(Replies.Int(0), h.Run("OBJECT", "IDLETIME", "k"));
        h.Store.MemorySettings = new KvMemorySettings(0, KvEvictionPolicy.AllKeysLfu);
        Assert.Equal(Replies.Int(5), h.Run("OBJECT", "FREQ", "k")); // LFU_INIT_VAL: nothing counted under noeviction
        h.Run("GET", "k"); // now counted: at LFU_INIT_VAL the increment is certain
        Assert.Equal(Replies.Int(6), h.Run("OBJECT", "FREQ", "k"));
    }

    [Fact]
    public void Keys_hash_alike_as_arrays_and_spans_and_spread_over_a_power_of_two_table()
    {
        ByteArrayComparer c = ByteArrayComparer.Instance;
        byte[] a = Encoding.ASCII.GetBytes("key:000000012345");
        Assert.Equal(c.GetHashCode(a), c.GetHashCode((ReadOnlySpan<byte>)a));
        Assert.Equal(c.GetHashCode(a), c.GetHashCode((byte[])a.Clone()));
        Assert.Equal(c.GetHashCode(ReadOnlySpan<byte>.Empty), c.GetHashCode(Array.Empty<byte>()));
        // redis-benchmark's keys (-r 100000) in a table of 2^17 buckets, by the low bits as KvDatabase takes them: a
        // uniform hash puts at most ~9 in a bucket; a hash whose low bits ignored part of the key would pile them up.
        const int keys = 100_000, buckets = 1 << 17;
        var counts = new int[buckets];
        for (int i = 0; i < keys; i++) counts[c.GetHashCode(Encoding.ASCII.GetBytes($"key:{i:D12}")) & (buckets - 1)]++;
        Assert.True(counts.Max() <= 16, $"a bucket holds {counts.Max()} of {keys} keys");
    }
}
