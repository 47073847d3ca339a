using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>maxmemory in the store (KvStore.Memory.cs): the used-memory account, eviction by each policy, -OOM.</summary>
public class MaxMemoryTests
{
    private const string Oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

    /// <summary>A store without the eviction time budget, so that a test's evictions all happen in the command that triggers them.</summary>
    private static StoreHarness NewHarness() => new(new KvStore(random: new Random(1)) { EvictionTimeLimit = TimeSpan.MaxValue });

    private static byte[] DumpPayload(StoreHarness h, string key)
    {
        var buffer = new ArrayBufferWriter<byte>();
        h.Store.Execute(KvCommand.Create("DUMP", key), h.Now, new RespWriter(buffer), null);
        byte[] reply = buffer.WrittenSpan.ToArray();
        int cr = Array.IndexOf(reply, (byte)'\r');
        int len = int.Parse(Encoding.ASCII.GetString(reply, 1, cr - 1));
        return reply.AsSpan(cr + 2, len).ToArray();
    }

    /// <summary>Adds <paramref name="key"/> holding a 100-byte string, with an access history set by RESTORE IDLETIME/FREQ.</summary>
    private static void Restore(StoreHarness h, byte[] payload, string key, string option, long value, long ttlMs = 0)
    {
        var buffer = new ArrayBufferWriter<byte>();
        h.Store.Execute(KvCommand.Create([Encoding.ASCII.GetBytes("RESTORE"), Encoding.ASCII.GetBytes(key),
            Encoding.ASCII.GetBytes(ttlMs.ToString()), payload, Encoding.ASCII.GetBytes(option), Encoding.ASCII.GetBytes(value.ToString())]),
            h.Now, new RespWriter(buffer), null);
        Assert.Equal(Replies.Ok, Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Used_memory_follows_collections_changed_in_place_and_returns_to_zero()
    {
        var h = NewHarness();
        Assert.Equal(0, h.Store.UsedBytes);
        h.Run("SET", "s", new string('x', 1000));
        long afterString = h.Store.UsedBytes;
        Assert.InRange(afterString, 1001, 1200);
        for (int i = 0; i < 2000; i++) h.Run("HSET", "h", "field:" + i, new string('v', 50));
        long afterHash = h.Store.UsedBytes - afterString;
        Assert.True(afterHash >= 2000 * 56, $"a 2000-field hash of ~56 payload bytes each counts {afterHash} bytes");
        long estimate = ((KvObject)h.Store.Database(0).Map["h"u8.ToArray()].Value).EstimateBytes();
        Assert.InRange(afterHash, estimate * 7 / 8, estimate * 9 / 8 + 200); // the account stays within the re-estimation band
        for (int i = 0; i < 3000; i++) h.Run("RPUSH", "l", "element-" + i);
        Assert.True(h.Store.UsedBytes > afterString + afterHash + 3000 * 9);
        for (int i = 0; i < 3000; i++) h.Run("LPOP", "l");
        Assert.Equal(afterString + afterHash, h.Store.UsedBytes); // the emptied list is gone, with its account
        h.Run("DEL", "h", "s");
        Assert.Equal(0, h.Store.UsedBytes);
        h.Run("SADD", "set", "a", "b");
        h.Run("SET", "set", "now a string"); // a collection replaced by a string
        h.Run("DEL", "set");
        Assert.Equal(0, h.Store.UsedBytes);
    }

    [Fact]
    public void Noeviction_refuses_denyoom_commands_and_serves_the_rest()
    {
        var h = NewHarness();
        h.Run("SET", "k", "1");
        h.Run("RPUSH", "l", "a", "b");
        h.Store.MemorySettings = new KvMemorySettings(1, KvEvictionPolicy.NoEviction);
        Assert.Equal(Oom, h.Run("SET", "x", "1"));
        Assert.Equal(Oom, h.Run("INCR", "k"));
        Assert.Equal(Oom, h.Run("RPUSH", "l", "c"));
        Assert.Equal(Oom, h.Run("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"));
        Assert.Equal(Replies.Bulk("1"), h.Run("GET", "k"));
        Assert.Equal(Replies.Bulk("a"), h.Run("LPOP", "l")); // not denyoom: frees memory
        Assert.Equal(Replies.Int(1), h.Run("EXPIRE", "k", "100"));
        Assert.Equal(Replies.Int(1), h.Run("DEL", "k"));
        Assert.Equal(1, h.Store.Count); // l is still there, nothing was evicted
        Assert.Equal(0, h.Store.EvictedKeys);
        h.Store.MemorySettings = KvMemorySettings.None;
        Assert.Equal(Replies.Ok, h.Run("SET", "x", "1"));
    }

    [Fact]
    public void Allkeys_lru_evicts_idle_keys_first_and_logs_del()
    {
        var h = NewHarness();
        h.Run("SET", "template", new string('x', 100));
        byte[] payload = DumpPayload(h, "template");
        h.Run("DEL", "template");
        for (int i = 0; i < 200; i++)
        {
            Restore(h, payload, "cold:" + i, "IDLETIME", 1000 + i);
            Restore(h, payload, "hot:" + i, "IDLETIME", 0);
        }
        long used = h.Store.UsedMemory;
        long perKey = used / 400;
        h.Aof.Commands.Clear();
        h.Store.MemorySettings = new KvMemorySettings(used - 150 * perKey, KvEvictionPolicy.AllKeysLru);
        Assert.Equal(Replies.Ok, h.Run("SET", "new", "v")); // evicts first, then runs
        Assert.True(h.Store.UsedMemory <= h.Store.MemorySettings.MaxMemory);
        long evicted = h.Store.EvictedKeys;
        Assert.InRange(evicted, 140, 160); // keys differ a little in size
        int hotLeft = Enumerable.Range(0, 200).Count(i => h.Store.Database(0).ContainsKey(Encoding.ASCII.GetBytes("hot:" + i)));
        Assert.True(hotLeft >= 195, $"{200 - hotLeft} hot keys of {evicted} evicted keys (sampled LRU with a pool of 16 keeps them)");
        // Each eviction is logged as DEL, before the command that caused it.
        List<string> logged = h.Logged;
        Assert.Equal(evicted, logged.Count(c => c.StartsWith("DEL ", StringComparison.Ordinal)));
        Assert.StartsWith("SET new", logged[^1]);
    }

    [Fact]
    public void Allkeys_lfu_evicts_rarely_used_keys_first_and_object_freq_answers()
    {
        var h = NewHarness();
        h.Run("SET", "template", new string('x', 100));
        byte[] payload = DumpPayload(h, "template");
        h.Run("DEL", "template");
        for (int i = 0; i < 200; i++)
        {
            Restore(h, payload, "rare:" + i, "FREQ", 1);
            Restore(h, payload, "often:" + i, "FREQ", 100);
        }
        Assert.StartsWith("-ERR An LFU maxmemory policy is not selected", h.Run("OBJECT", "FREQ", "often:1"));
        long perKey = h.Store.UsedMemory / 400;
        h.Store.MemorySettings = new KvMemorySettings(h.Store.UsedMemory - 100 * perKey, KvEvictionPolicy.AllKeysLfu);
        Assert.Equal(Replies.Int(100), h.Run("OBJECT", "FREQ", "often:1"));
        Assert.StartsWith("-ERR An LFU maxmemory policy is selected", h.Run("OBJECT", "IDLETIME", "often:1"));
        int oftenLeft = Enumerable.Range(0, 200).Count(i => h.Store.Database(0).ContainsKey(Encoding.ASCII.GetBytes("often:" + i)));
        Assert.True(h.Store.EvictedKeys >= 100);
        Assert.True(oftenLeft >= 195, $"{200 - oftenLeft} frequently used keys evicted");
    }

    [Theory]
    [InlineData(KvEvictionPolicy.VolatileLru)]
    [InlineData(KvEvictionPolicy.VolatileLfu)]
    [InlineData(KvEvictionPolicy.VolatileRandom)]
    [InlineData(KvEvictionPolicy.VolatileTtl)]
    public void Volatile_policies_evict_only_keys_with_an_expiry_then_refuse(KvEvictionPolicy policy)
    {
        var h = NewHarness();
        for (int i = 0; i < 100; i++)
        {
            h.Run("SET", "keep:" + i, new string('k', 100));
            h.Run("SET", "ttl:" + i, new string('t', 100), "PX", (1_000_000 + i * 1000).ToString());
        }
        long perKey = h.Store.UsedMemory / 200;
        h.Store.MemorySettings = new KvMemorySettings(h.Store.UsedMemory - 50 * perKey, policy);
        Assert.Equal(Replies.Bulk(new string('k', 100)), h.Run("GET", "keep:0"));
        Assert.InRange(h.Store.EvictedKeys, 48, 53);
        Assert.Equal(100, Enumerable.Range(0, 100).Count(i => h.Store.Database(0).ContainsKey(Encoding.ASCII.GetBytes("keep:" + i))));
        if (policy == KvEvictionPolicy.VolatileTtl)
        {
            // The nearest expiries go first: most of the evicted keys are among the 60 earliest.
            int lateGone = Enumerable.Range(60, 40).Count(i => !h.Store.Database(0).ContainsKey(Encoding.ASCII.GetBytes("ttl:" + i)));
            Assert.True(lateGone <= 5, $"{lateGone} keys of the 40 latest expiries evicted");
        }

        // With no volatile key left and still over the limit, denyoom commands are refused; the persistent keys stay.
        h.Store.MemorySettings = new KvMemorySettings(1, policy);
        Assert.Equal(Oom, h.Run("SET", "x", "1"));
        Assert.Equal(0, h.Store.ExpiringCount);
        Assert.Equal(100, h.Store.Count);
        Assert.True(h.Store.OutOfMemory);
    }

    [Fact]
    public void Allkeys_random_empties_every_database_when_the_limit_cannot_be_met()
    {
        var h = NewHarness();
        for (int db = 0; db < 3; db++)
        {
            h.Run("SELECT", db.ToString());
            for (int i = 0; i < 50; i++) h.Run("SET", "k" + i, "v");
        }
        h.Run("SELECT", "0");
        h.Store.ExternalMemoryBytes = 1000; // as the server counts its clients: memory no eviction can free
        h.Store.MemorySettings = new KvMemorySettings(1, KvEvictionPolicy.AllKeysRandom);
        Assert.Equal(Oom, h.Run("SET", "x", "1"));
        Assert.Equal(0, h.Store.Count);
        Assert.Equal(150, h.Store.EvictedKeys);
        Assert.Equal(Replies.Nil, h.Run("GET", "k1")); // reads still served
    }

    [Fact]
    public void Evicted_keys_are_notified_and_break_watch()
    {
        var h = NewHarness();
        var events = new List<string>();
        h.Store.Observer = new Recorder(events);
        h.Run("SET", "a", "1");
        h.Store.MemorySettings = new KvMemorySettings(1, KvEvictionPolicy.AllKeysLru);
        h.Run("GET", "a");
        Assert.Contains("0 a Evicted evicted", events);
    }

    private sealed class Recorder(List<string> events) : IKvKeyspaceObserver
    {
        public void OnKeyChanged(int db, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName) =>
            events.Add($"{db} {Encoding.ASCII.GetString(key)} {eventClass} {eventName}");

        public void OnDatabaseChanged(int db) => events.Add($"{db} flushed");
    }

    [Fact]
    public void Scripts_over_the_limit_follow_redis_flags()
    {
        var h = NewHarness();
        h.Run("SET", "a", "1");
        h.Store.MemorySettings = new KvMemorySettings(1, KvEvictionPolicy.NoEviction);
        string compat = h.Run("EVAL", "return redis.call('set','x','1')", "0");
        Assert.StartsWith("-OOM command not allowed when used memory > 'maxmemory'. script: ", compat);
        Assert.Equal(Oom, h.Run("EVAL", "#!lua\nreturn redis.call('set','x','1')", "0")); // refused before it runs
        Assert.Equal(Replies.Ok, h.Run("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set','x','1')", "0"));
        Assert.Equal(Replies.Ok, h.Run("EVAL", "redis.call('del','zz'); return redis.call('set','y','1')", "0")); // wrote first
        Assert.Equal(Oom, h.Run("EVAL", "return redis.pcall('set','x','1')", "0"));
        Assert.Equal(Replies.Bulk("1"), h.Run("EVAL", "#!lua flags=no-writes\nreturn redis.call('get','a')", "0"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public void Eviction_tenacity_bounds_one_eviction_pass(int tenacity)
    {
        // maxmemory-eviction-tenacity (h50): at 0 (time limit 0) a pass stops after its first 16 evictions, as Redis's
        // performEvictions checks the time every 16 keys; at 100 (no limit) one pass evicts down to the limit.
        var h = new StoreHarness(new KvStore(random: new Random(1)) { EvictionTimeLimit = new KvServerConfig { MaxMemoryEvictionTenacity = tenacity }.EvictionTimeLimit });
        for (int i = 0; i < 400; i++) h.Run("SET", "key:" + i, new string('v', 100));
        long perKey = h.Store.UsedMemory / 400;
        h.Store.MemorySettings = new KvMemorySettings(h.Store.UsedMemory - 200 * perKey, KvEvictionPolicy.AllKeysRandom);
        KvEvictResult result = h.Store.PerformEvictions(h.Now, null);
        if (tenacity == 0)
        {
            Assert.Equal(KvEvictResult.Running, result);
            Assert.Equal(16, h.Store.EvictedKeys);
        }
        else
        {
            Assert.Equal(KvEvictResult.Ok, result);
            Assert.InRange(h.Store.EvictedKeys, 190, 220);
        }
    }
}
