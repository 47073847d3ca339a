using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary><see cref="KvStore.PrefetchKeys"/> (issue 14, h146) is a hint: a batch run with it gives the same replies,
/// keyspace, statistics and AOF as without it, whatever the batch holds (strings packed and long, collections, expired
/// and missing keys, commands without a key, chains of colliding rows, another database, more than a group).</summary>
public class PrefetchKeysTests
{
    private static readonly long Now = 1_700_000_000_000;

    private static StoreHarness Filled()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 40; i++) h.Run("SET", $"s{i}", new string((char)('a' + i % 26), 10 + i));
        for (int i = 0; i < 12; i++) h.Run("SET", $"long{i}", new string('x', 600 + i));
        h.Run("HSET", "h", "f", "v");
        h.Run("RPUSH", "l", "a", "b");
        h.Run("SET", "gone", "v", "PX", "1"); // expired by the time the batch runs (Now + 10)
        return h;
    }

    private static KvCommand[] Batch()
    {
        var commands = new List<KvCommand>();
        for (int i = 0; i < 40; i += 3) commands.Add(KvCommand.Create("SET", $"s{i}", new string('z', 10 + i)));
        for (int i = 0; i < 12; i++) commands.Add(KvCommand.Create("GET", $"long{i}"));
        for (int i = 0; i < 12; i += 2) commands.Add(KvCommand.Create("SET", $"long{i}", new string('y', 600 + i)));
        commands.Add(KvCommand.Create("DBSIZE"));
        commands.Add(KvCommand.Create("GET", "gone"));
        commands.Add(KvCommand.Create("GET", "missing"));
        commands.Add(KvCommand.Create("HGET", "h", "f"));
        commands.Add(KvCommand.Create("LPOP", "l"));
        commands.Add(KvCommand.Create("DEL", "s1", "s2"));
        commands.Add(KvCommand.Create("SELECT", "1"));
        commands.Add(KvCommand.Create("SET", "s3", "in db 1"));
        commands.Add(KvCommand.Create("SELECT", "0"));
        commands.Add(KvCommand.Create("GET", "s3"));
        return [.. commands];
    }

    // Runs the batch as StoreOwner.RunRequest does: one command at a time, PrefetchKeys before each group when asked.
    private static (string Replies, List<string> Aof, string State) Run(bool prefetch)
    {
        StoreHarness h = Filled();
        var session = new KvSession();
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new RespWriter(buffer, 2);
        KvCommand[] batch = Batch();
        int logged = h.Aof.Commands.Count;
        for (int next = 0; next < batch.Length; next++)
        {
            if (prefetch && next % KvStore.PrefetchGroup == 0) h.Store.PrefetchKeys(session, batch.AsSpan(next));
            h.Store.ExecuteBatch(session, batch.AsSpan(next, 1), Now + 10, writer, h.Aof);
        }
        h.Now = Now + 10;
        var state = new StringBuilder();
        foreach (string db in new[] { "0", "1" })
        {
            h.Run("SELECT", db);
            foreach (string key in h.Run("KEYS", "*").Split("\r\n").Where(l => l.Length > 0 && l[0] != '*' && l[0] != '$').Order())
            {
                state.Append(db).Append(' ').Append(key).Append(' ').Append(h.Run("TYPE", key)).Append(h.Run("DUMP", key)).Append(h.Run("OBJECT", "IDLETIME", key));
            }
        }
        state.Append($"hits {h.Store.KeyspaceHits} misses {h.Store.KeyspaceMisses} expired {h.Store.ExpiredKeys}");
        return (Encoding.UTF8.GetString(buffer.WrittenSpan), h.Aof.Commands.Skip(logged).Select(c => c.ToString()).ToList(), state.ToString());
    }

    [Fact]
    public void A_batch_run_with_its_keys_prefetched_gives_the_same_replies_keyspace_statistics_and_aof()
    {
        var without = Run(prefetch: false);
        var with = Run(prefetch: true);
        Assert.Equal(without.Replies, with.Replies);
        Assert.Equal(without.Aof, with.Aof);
        Assert.Equal(without.State, with.State);
        Assert.Contains("$-1", with.Replies); // the expired and the missing key
    }

    [Fact]
    public void Prefetching_keys_of_a_small_table_with_chained_rows_and_of_commands_without_keys_changes_nothing()
    {
        var h = new StoreHarness();
        for (int i = 0; i < 15; i++) h.Run("SET", $"k{i}", $"v{i}"); // 16 buckets: chains
        string before = string.Concat(Enumerable.Range(0, 15).Select(i => h.Run("GET", $"k{i}")));
        // Each row's access clock and LFU counter as stored (no clock read, no decay): an access recorded, or a row
        // written, by the prefetch would show.
        string Access() => string.Join(",", Enumerable.Range(0, 15).Select(i =>
            h.Store.Database(0).Lookup.TryGetValue(Encoding.UTF8.GetBytes($"k{i}"), out KvEntry? e) ? $"{e!.AccessClock}/{e.Frequency}" : "none"));
        string access = Access();
        var session = new KvSession();
        KvCommand[] commands = [.. Enumerable.Range(0, 20).Select(i => KvCommand.Create("GET", $"k{i}")), KvCommand.Create("DBSIZE"), KvCommand.Create("DBSIZE")];
        h.Store.PrefetchKeys(session, commands);
        h.Store.PrefetchKeys(session, commands.AsSpan(20)); // no key among them
        h.Store.PrefetchKeys(session, commands.AsSpan(0, 1)); // one command: nothing
        h.Store.PrefetchKeys(new KvSession { Db = 15 }, commands); // an empty database
        Assert.Equal(access, Access());
        Assert.Equal(before, string.Concat(Enumerable.Range(0, 15).Select(i => h.Run("GET", $"k{i}"))));
        Assert.Equal(":15\r\n", h.Run("DBSIZE"));
        Assert.Equal(30, h.Store.KeyspaceHits); // the GETs above only: the prefetch counted none
    }

    [Fact]
    public void The_prefetch_hands_its_key_hash_to_argument_1_only_and_a_reset_view_forgets_it()
    {
        // §221: the command's lookup takes the prefetch's hash (KvStore.RowOfKey) only for the very span of argument 1.
        byte[] buffer = Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
        var arena = new KvCommandArena();
        arena.Reset(buffer);
        var reader = new RespRequestReader(new RespParser(RespLimits.Default)) { Arena = arena };
        var views = new List<KvCommand>();
        int pos = 0;
        while (reader.TryRead(buffer.AsSpan(pos), pos, out int consumed, out KvCommand? command))
        {
            pos += consumed;
            views.Add(command);
        }
        Assert.Equal(2, views.Count);
        Assert.True(views[0].IsView);
        Assert.False(views[0].TryGetKeyHash(views[0][1], out _)); // nothing kept before a prefetch

        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return; // PrefetchKeys does nothing without x86's prefetch
        var h = new StoreHarness();
        h.Run("SET", "k1", "v1");
        h.Store.PrefetchKeys(new KvSession(), views.ToArray());
        Assert.True(views[0].TryGetKeyHash(views[0][1], out int hash));
        Assert.Equal(ByteArrayComparer.Instance.GetHashCode("k1"u8), hash);
        Assert.True(views[1].TryGetKeyHash(views[1][1], out int hash2));
        Assert.Equal(ByteArrayComparer.Instance.GetHashCode("k2"u8), hash2);
        Assert.False(views[0].TryGetKeyHash("k1"u8.ToArray(), out _)); // the same bytes elsewhere: hashed again
        Assert.False(views[0].TryGetKeyHash(views[0][0], out _)); // another argument
        Assert.False(views[0].TryGetKeyHash(views[0][1][..1], out _)); // a part of it

        arena.Reset(buffer); // the batch is done: the views are pointed at new arguments
        pos = 0;
        Assert.True(reader.TryRead(buffer.AsSpan(pos), pos, out _, out KvCommand? again));
        Assert.Same(views[0], again); // the arena reuses its view objects
        Assert.False(again.TryGetKeyHash(again[1], out _));
    }
}
