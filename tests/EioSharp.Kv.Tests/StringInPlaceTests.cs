using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>A plain SET of a value as long as the key's current one overwrites it in place (issue 14, KvDatabase.Strings.cs):
/// whoever still holds the old bytes (a snapshot, a reply, an AOF command, DUMP, COPY, a script, SET ... GET) keeps seeing
/// them, and the in-place path is really taken where nothing holds them.</summary>
public class StringInPlaceTests
{
    private const string Ok = "+OK\r\n";

    private static string Value(char c, int length = 1024) => new(c, length);

    private static string Bulk(string s) => $"${Encoding.UTF8.GetByteCount(s)}\r\n{s}\r\n";

    private static byte[] RunBytes(StoreHarness h, params byte[][] args)
    {
        var buffer = new ArrayBufferWriter<byte>();
        h.Store.Execute(KvCommand.Create(args), h.Now, new RespWriter(buffer), h.Aof);
        return buffer.WrittenSpan.ToArray();
    }

    private static long InPlace(StoreHarness h) => h.Store.Database(0).InPlaceStringWrites;

    // The store's accounting must match a database built from scratch with the same content.
    private static void AssertDataBytes(StoreHarness h, params (string Key, string Value)[] content)
    {
        long expected = content.Sum(kv => (long)Encoding.UTF8.GetByteCount(kv.Key) + Encoding.UTF8.GetByteCount(kv.Value));
        Assert.Equal(expected, h.Store.Database(0).DataBytes);
    }

    [Fact]
    public void Same_length_set_overwrites_in_place_long_and_packed()
    {
        var h = new StoreHarness();
        Assert.Equal(Ok, h.Run("SET", "k", Value('a')));
        Assert.Equal(0, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "k", Value('b')));
        Assert.Equal(1, InPlace(h));
        Assert.Equal(Bulk(Value('b')), h.Run("GET", "k")); // GET reads in place: the next SET still may overwrite
        Assert.Equal(Ok, h.Run("SET", "k", Value('c')));
        Assert.Equal(2, InPlace(h));
        Assert.Equal(Bulk(Value('c')), h.Run("GET", "k"));
        Assert.Equal(Ok, h.Run("SET", "k", Value('d', 2000))); // another length: a new array
        Assert.Equal(2, InPlace(h));
        Assert.Equal(Bulk(Value('d', 2000)), h.Run("GET", "k"));
        Assert.Equal(Ok, h.Run("SET", "k", Value('e', 2000)));
        Assert.Equal(3, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "k", "short")); // long -> packed, then packed in place
        Assert.Equal(Ok, h.Run("SET", "k", "SHORT"));
        Assert.Equal(4, InPlace(h));
        Assert.Equal(Bulk("SHORT"), h.Run("GET", "k"));
        Assert.Equal(Bulk("embstr"), h.Run("OBJECT", "ENCODING", "k"));
        Assert.Equal(Ok, h.Run("SET", "k", "12345"));
        Assert.Equal(Bulk("int"), h.Run("OBJECT", "ENCODING", "k")); // the encoding is recomputed after an in-place write
        Assert.Equal(Ok, h.Run("SET", "k", Value('f')));
        Assert.Equal(Bulk(Value('f')), h.Run("GET", "k"));
        AssertDataBytes(h, ("k", Value('f')));
    }

    /// <summary>A plain SET of a value longer than a packed one over a live key goes by row like a short one (issue 14,
    /// session 15): no <see cref="KvEntry"/> handle per request (86 B of every 1 KB SET before), same effects (in place,
    /// expiry cleared, the value read back).</summary>
    [Fact]
    public void A_plain_set_of_a_long_value_over_a_live_key_allocates_nothing()
    {
        var h = new StoreHarness();
        Assert.Equal(Ok, h.Run("SET", "k", Value('a')));
        Assert.Equal(":1\r\n", h.Run("EXPIRE", "k", "100"));
        KvCommand[] sets = [KvCommand.Create("SET", "k", Value('b')), KvCommand.Create("SET", "k", Value('c'))];
        var output = new ArrayBufferWriter<byte>(64 * 1024);
        var writer = new RespWriter(output);
        h.Store.Execute(sets[0], h.Now, writer, null); // warm: the first call's one-time work
        Assert.Equal(":-1\r\n", h.Run("TTL", "k")); // the expiry is cleared on the by-row path too
        long allocated = AllocationMeter.Measure(() => // the fewest bytes of 1,000 SETs over warm rounds
        {
            for (int i = 0; i < 1000; i++)
            {
                h.Store.Execute(sets[i & 1], h.Now, writer, null);
            }
        });

        Assert.Equal(0, allocated);
        Assert.Equal(1 + (6 * 1000), InPlace(h)); // every one of them overwrote the row's array in place
        Assert.Equal(Bulk(Value('c')), h.Run("GET", "k")); // the last one (i = 999: sets[1])
    }

    [Fact]
    public void Set_over_another_type_and_expiry_accounting()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "k", "x", "y", "z");
        Assert.Equal(Ok, h.Run("SET", "k", Value('a')));
        Assert.Equal("+string\r\n", h.Run("TYPE", "k"));
        AssertDataBytes(h, ("k", Value('a')));
        h.Run("PEXPIRE", "k", "100000");
        Assert.Equal(Ok, h.Run("SET", "k", Value('b'))); // in place, and the expiry is cleared as SET does
        Assert.Equal(":-1\r\n", h.Run("PTTL", "k"));
        Assert.Equal(1, InPlace(h));
        h.Run("SET", "p", Value('p', 600), "PX", "10");
        h.Now += 20; // p expired, not yet removed: plain SET replaces the stale row
        Assert.Equal(Ok, h.Run("SET", "p", Value('q', 600)));
        Assert.Equal(Bulk(Value('q', 600)), h.Run("GET", "p"));
        Assert.Equal(":-1\r\n", h.Run("PTTL", "p"));
        AssertDataBytes(h, ("k", Value('b')), ("p", Value('q', 600)));
    }

    [Fact]
    public void A_snapshot_keeps_the_old_bytes()
    {
        var h = new StoreHarness();
        h.Run("SET", "long", Value('a'));
        h.Run("SET", "long", Value('a')); // now in an array of its own: the next same-length SET would overwrite it
        h.Run("SET", "short", "0123456789abcdef");
        KvSnapshotEntry[] snapshot = h.Store.CreateSnapshot(h.Now);
        long before = InPlace(h);
        h.Run("SET", "long", Value('b'));
        h.Run("SET", "short", "fedcba9876543210"); // packed rows are copied into snapshots: in place is fine
        Assert.Equal(before + 1, InPlace(h));
        Dictionary<string, string> snap = snapshot.ToDictionary(e => Encoding.UTF8.GetString(e.Key), e => Encoding.UTF8.GetString((byte[])e.Value));
        Assert.Equal(Value('a'), snap["long"]);
        Assert.Equal("0123456789abcdef", snap["short"]);
        Assert.Equal(Bulk(Value('b')), h.Run("GET", "long"));
        Assert.Equal(Bulk("fedcba9876543210"), h.Run("GET", "short"));
        h.Run("SET", "long", Value('c')); // the array the snapshot does not hold is the row's own again
        Assert.Equal(before + 2, InPlace(h));
        Assert.Equal(Value('a'), Encoding.UTF8.GetString((byte[])snapshot.Single(e => e.Key.Length == 4).Value));
    }

    [Fact]
    public void A_reply_already_written_keeps_the_old_bytes()
    {
        var h = new StoreHarness();
        h.Run("SET", "k", Value('a'));
        h.Run("SET", "k", Value('a'));
        var reply = new ArrayBufferWriter<byte>();
        h.Store.Execute(KvCommand.Create("GET", "k"), h.Now, new RespWriter(reply), h.Aof);
        long before = InPlace(h);
        h.Run("SET", "k", Value('b'));
        Assert.Equal(before + 1, InPlace(h)); // GET handed out no reference: overwritten in place...
        Assert.Equal(Bulk(Value('a')), Encoding.UTF8.GetString(reply.WrittenSpan)); // ...and the reply had its copy
        Assert.Equal(Bulk(Value('b')), h.Run("SET", "k", Value('c'), "GET")); // SET GET: the old value, then the new one
        Assert.Equal(Bulk(Value('c')), h.Run("GETSET", "k", Value('d')));
        Assert.Equal(Bulk(Value('d')), h.Run("GET", "k"));
    }

    /// <summary>A sink that keeps the command objects it is given and encodes them only at the end (the strictest
    /// reading of <see cref="IAofSink"/>: "the command passed may be the caller's own command object").</summary>
    private sealed class DeferredSink : IAofSink
    {
        public List<KvCommand> Held { get; } = [];

        public void Append(KvCommand command) => Held.Add(command);
    }

    [Fact]
    public void Logged_commands_held_by_the_aof_keep_their_bytes()
    {
        var store = new KvStore(random: new Random(1));
        var sink = new DeferredSink();
        long now = 1_700_000_000_000;
        void Run(params string[] args) => store.Execute(KvCommand.Create(args), now, new RespWriter(new ArrayBufferWriter<byte>()), sink);
        Run("SET", "k", Value('a'));
        Run("SET", "k", Value('b'));
        Run("SET", "k", Value('c')); // in place
        Run("SETEX", "k", "100", Value('d')); // logged as SET k <value> PXAT: a command the store built with the value
        Run("SET", "k", Value('e'));
        Run("SET", "k", Value('f'));
        Run("APPEND", "k", "!");
        Run("SET", "k", Value('g', 1025));
        Run("SET", "k", Value('h', 1025));
        Assert.True(store.Database(0).InPlaceStringWrites >= 2);
        string[] values = sink.Held.Where(c => c.Count >= 3 && !c.GetString(0).Equals("SELECT", StringComparison.OrdinalIgnoreCase))
            .Select(c => c.GetString(2)).ToArray();
        Assert.Equal([Value('a'), Value('b'), Value('c'), Value('d'), Value('e'), Value('f'), "!", Value('g', 1025), Value('h', 1025)], values);
        var log = new ArrayBufferWriter<byte>();
        foreach (KvCommand c in sink.Held) AofWriter.WriteCommand(log, c);
        var replayed = new KvStore(random: new Random(1));
        AofLoader.Load(log.WrittenSpan, replayed, now);
        Assert.Equal(Value('h', 1025), Encoding.UTF8.GetString((byte[])replayed.CreateSnapshot(now).Single().Value));
    }

    [Fact]
    public void Dump_copy_and_scripts_keep_the_old_bytes()
    {
        var h = new StoreHarness();
        h.Run("SET", "k", Value('a'));
        h.Run("SET", "k", Value('a'));
        byte[] dump = RunBytes(h, "DUMP"u8.ToArray(), "k"u8.ToArray());
        int cr = Array.IndexOf(dump, (byte)'\r');
        byte[] payload = dump.AsSpan(cr + 2, int.Parse(Encoding.ASCII.GetString(dump, 1, cr - 1))).ToArray();
        byte[] kept = payload.ToArray();
        h.Run("SET", "k", Value('b'));
        Assert.Equal(kept, payload);
        Assert.Equal(Ok, Encoding.UTF8.GetString(RunBytes(h, "RESTORE"u8.ToArray(), "r"u8.ToArray(), "0"u8.ToArray(), payload)));
        Assert.Equal(Bulk(Value('a')), h.Run("GET", "r"));
        Assert.Equal(Bulk(Value('b')), h.Run("GET", "k"));
        Assert.Equal(Ok, h.Run("SET", "r", Value('z'))); // RESTORE's array came from the payload: a new one, then in place
        Assert.Equal(Ok, h.Run("SET", "r", Value('w')));
        Assert.Equal(Bulk(Value('w')), h.Run("GET", "r"));
        Assert.Equal(":1\r\n", h.Run("COPY", "k", "copy"));
        Assert.Equal(Ok, h.Run("SET", "k", Value('c')));
        Assert.Equal(Ok, h.Run("SET", "k", Value('d')));
        Assert.Equal(Bulk(Value('b')), h.Run("GET", "copy"));
        Assert.Equal(Ok, h.Run("SET", "copy", Value('x')));
        Assert.Equal(Bulk(Value('d')), h.Run("GET", "k"));
        Assert.Equal(Bulk(Value('x')), h.Run("GET", "copy"));
        Assert.Equal(Ok, h.Run("RENAME", "copy", "moved"));
        Assert.Equal(Ok, h.Run("SET", "moved", Value('y')));
        Assert.Equal(Bulk(Value('y')), h.Run("GET", "moved"));
        string script = "local old = redis.call('GET', KEYS[1]); redis.call('SET', KEYS[1], ARGV[1]); return {old, redis.call('GET', KEYS[1])}";
        Assert.Equal($"*2\r\n{Bulk(Value('d'))}{Bulk(Value('e'))}", h.Run("EVAL", script, "1", "k", Value('e')));
        Assert.Equal($"*2\r\n{Bulk(Value('e'))}{Bulk(Value('f'))}", h.Run("EVAL", script, "1", "k", Value('f')));
    }

    [Fact]
    public void A_handle_does_not_return_a_stale_copy_after_an_in_place_write()
    {
        var db = new KvDatabase(0);
        KvEntry e = db.AddPackedString("k"u8, "aaaa"u8, -1);
        Assert.Equal("aaaa", Encoding.UTF8.GetString((byte[])e.Value)); // a copy, cached by the handle
        db.ReplacePackedString(e, "bbbb"u8);
        Assert.Equal(1, db.InPlaceStringWrites);
        Assert.Equal("bbbb", Encoding.UTF8.GetString((byte[])e.Value));
        KvEntry l = db.AddLongString("l"u8, new byte[600], -1);
        byte[] handedOut = (byte[])l.Value; // a reference to the row's array: the next write must not touch it
        db.ReplaceLongString(l, Enumerable.Repeat((byte)7, 600).ToArray());
        Assert.Equal(1, db.InPlaceStringWrites);
        Assert.All(handedOut, b => Assert.Equal(0, b));
        Assert.All((byte[])l.Value, b => Assert.Equal(7, b));
    }
    private static string SnapValue(IEnumerable<KvSnapshotEntry> entries, string key) =>
        Encoding.UTF8.GetString((byte[])entries.Single(e => Encoding.UTF8.GetString(e.Key) == key).Value);

    [Fact]
    public void A_leased_snapshot_freezes_its_arrays_while_it_runs_and_hands_them_back_when_disposed()
    {
        var h = new StoreHarness();
        foreach (string k in new[] { "x", "y" })
        {
            h.Run("SET", k, Value('a'));
            h.Run("SET", k, Value('a')); // the row's own array now
        }
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        Assert.Equal(1, h.Store.LiveSnapshotLeases);
        long before = InPlace(h);
        Assert.Equal(Ok, h.Run("SET", "x", Value('b'))); // the lease holds x's array: a new one
        Assert.Equal(before, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "x", Value('c'))); // that new array is nobody else's: in place
        Assert.Equal(before + 1, InPlace(h));
        Assert.Equal(Value('a'), SnapValue(lease.Entries, "x"));
        Assert.Equal(Value('a'), SnapValue(lease.Entries, "y"));
        lease.Dispose();
        lease.Dispose(); // once only
        Assert.Equal(0, h.Store.LiveSnapshotLeases);
        Assert.Equal(Ok, h.Run("SET", "y", Value('b'))); // y's array was handed back: in place again
        Assert.Equal(before + 2, InPlace(h));
        Assert.Equal(Bulk(Value('c')), h.Run("GET", "x"));
        Assert.Equal(Bulk(Value('b')), h.Run("GET", "y"));

        // A snapshot without a lease hands the arrays out for good (one allocation per key afterwards, then in place).
        KvSnapshotEntry[] forGood = h.Store.CreateSnapshot(h.Now);
        Assert.Equal(Ok, h.Run("SET", "y", Value('d')));
        Assert.Equal(before + 2, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "y", Value('e')));
        Assert.Equal(before + 3, InPlace(h));
        Assert.Equal(Value('b'), SnapValue(forGood, "y"));
    }

    [Fact]
    public void A_snapshot_takes_every_live_key_of_every_database_and_leaves_out_expired_ones_not_removed_yet()
    {
        var h = new StoreHarness();
        h.Run("SET", "long", Value('a'));
        h.Run("SET", "short", "s");
        h.Run("RPUSH", "list", "1", "2");
        h.Run("SET", "gone", Value('g'), "PX", "10"); // expired below, still in its row (nothing touched it)
        h.Run("SET", "gone2", "g", "PX", "10");
        h.Run("SELECT", "3");
        h.Run("SET", "other", Value('o'), "PX", "100000");
        h.Run("SELECT", "0");
        h.Now += 1000;
        Assert.Equal(6, h.Store.Count); // the expired keys still count
        KvSnapshotEntry[] snapshot = h.Store.CreateSnapshot(h.Now);
        Assert.Equal(
            ["0 list KvList -1", "0 long " + Value('a') + " -1", "0 short s -1", "3 other " + Value('o') + " " + (h.Now - 1000 + 100000)],
            snapshot.Select(e => $"{e.Db} {Encoding.UTF8.GetString(e.Key)} {(e.Value is byte[] b ? Encoding.UTF8.GetString(b) : e.Value.GetType().Name)} {e.ExpireAtUnixMs}").Order(StringComparer.Ordinal));
    }

    /// <summary>The snapshot's pass by row (h208, <c>KvDatabase.SnapshotInto</c>): a leased snapshot shares each owned long
    /// string's array and marks its row with the lease's epoch and the entry's index (and records the row for the writer's
    /// proofs), hands out a string that is not the row's own as it is, copies packed strings, clones collections and keeps
    /// expiries; a snapshot without a lease hands the owned arrays out for good.</summary>
    [Fact]
    public void A_leased_snapshot_marks_each_owned_long_string_with_its_entry_and_records_its_row()
    {
        var h = new StoreHarness();
        h.Run("SET", "own1", Value('a'));
        h.Run("SET", "own1", Value('a'));
        h.Run("SET", "short", "s");
        h.Run("RPUSH", "list", "1", "2");
        h.Run("SET", "own2", Value('b'));
        h.Run("SET", "own2", Value('b'));
        h.Run("PEXPIRE", "own2", "100000");
        h.Run("SELECT", "2");
        h.Run("SET", "own3", Value('c'));
        h.Run("SET", "own3", Value('c'));
        h.Run("SELECT", "0");
        KvDatabase db0 = h.Store.Database(0), db2 = h.Store.Database(2);
        KvKeyedValue Row(KvDatabase db, string key) => (KvKeyedValue)db.ItemAt(db.RowOf(Encoding.UTF8.GetBytes(key)));
        int IndexOf(IEnumerable<KvSnapshotEntry> entries, string key) => entries.ToList().FindIndex(e => Encoding.UTF8.GetString(e.Key) == key);

        using (KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now))
        {
            ArraySegment<KvSnapshotEntry> entries = lease.Entries;
            Assert.Equal(
                ["0 list KvList -1", "0 own1 " + Value('a') + " -1", "0 own2 " + Value('b') + " " + (h.Now + 100000), "0 short s -1", "2 own3 " + Value('c') + " -1"],
                entries.Select(e => $"{e.Db} {Encoding.UTF8.GetString(e.Key)} {(e.Value is byte[] b ? Encoding.UTF8.GetString(b) : e.Value.GetType().Name)} {e.ExpireAtUnixMs}").Order(StringComparer.Ordinal));
            Assert.Equal(4, IndexOf(entries, "own3")); // database order
            foreach ((KvDatabase db, string key) in new[] { (db0, "own1"), (db0, "own2"), (db2, "own3") })
            {
                KvKeyedValue row = Row(db, key);
                int i = IndexOf(entries, key);
                Assert.Same(row.Value, entries[i].Value); // shared, not copied
                Assert.Same(row.Key, entries[i].Key);
                Assert.True(row.OwnsString); // still the row's: overwritten in place once the writer passed it
                Assert.Equal(lease.Id, row.SnapshotEpoch);
                Assert.Equal(i, row.SnapshotIndex);
                Assert.Same(row, lease.Rows![i]);
            }
            Assert.Null(lease.Rows![IndexOf(entries, "short")]);
            Assert.Null(lease.Rows![IndexOf(entries, "list")]);
            Assert.NotSame(Row(db0, "list").Value, entries[IndexOf(entries, "list")].Value); // a clone
            Assert.Equal(2, ((KvObject)entries[IndexOf(entries, "list")].Value).Length);
        }

        KvSnapshotEntry[] forGood = h.Store.CreateSnapshot(h.Now);
        Assert.False(Row(db0, "own1").OwnsString);
        Assert.False(Row(db2, "own3").OwnsString);
        Assert.Same(Row(db0, "own1").Value, forGood[IndexOf(forGood, "own1")].Value);

        // Arrays handed out for good are not the rows' own: a later lease shares them without marking or recording them.
        using KvSnapshotLease later = h.Store.CreateSnapshotLease(h.Now);
        KvKeyedValue own1 = Row(db0, "own1");
        Assert.Same(own1.Value, later.Entries[IndexOf(later.Entries, "own1")].Value);
        Assert.NotEqual(later.Id, own1.SnapshotEpoch); // not marked by this lease
        Assert.True(later.Rows is null || later.Rows[IndexOf(later.Entries, "own1")] is null);
    }

    [Fact]
    public void A_snapshot_allocates_its_entries_and_no_object_per_key()
    {
        var h = new StoreHarness();
        const int Keys = 2000;
        for (int i = 0; i < Keys; i++) h.Run("SET", "key:" + i, Value('v'));
        h.Store.CreateSnapshotLease(h.Now).Dispose(); // compiled once
        var meter = new AllocationMeter(); // the fewest bytes of a snapshot over warm rounds
        while (meter.NextRound())
        {
            meter.Start();
            using KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
            meter.Stop();
            Assert.Equal(Keys, lease.Entries.Count);
        }

        // The lease alone: the entries' array is the last ended lease's (same key count, h197).
        Assert.InRange(meter.Fewest, 1, 1024);

        var plain = new AllocationMeter();
        while (plain.NextRound())
        {
            plain.Start();
            KvSnapshotEntry[] snapshot = h.Store.CreateSnapshot(h.Now);
            plain.Stop();
            Assert.Equal(Keys, snapshot.Length);
        }
        // A plain snapshot (never pooled): the entries' array (32 B an entry); a handle per key (72 B each) or a list
        // copied into the array at the end would at least double it.
        Assert.InRange(plain.Fewest, Keys * 32, Keys * 32 + 1024);
    }

    [Fact]
    public void Overlapping_leases_free_an_array_only_when_every_lease_holding_it_ended()
    {
        var h = new StoreHarness();
        h.Run("SET", "x", Value('a'));
        h.Run("SET", "x", Value('a'));
        h.Run("SET", "y", Value('a'));
        h.Run("SET", "y", Value('a'));
        KvSnapshotLease first = h.Store.CreateSnapshotLease(h.Now);
        KvSnapshotLease second = h.Store.CreateSnapshotLease(h.Now);
        Assert.True(second.Epoch > first.Epoch);
        long before = InPlace(h);
        second.Dispose(); // the later one ends first: the first still holds both arrays
        Assert.Equal(Ok, h.Run("SET", "x", Value('b')));
        Assert.Equal(before, InPlace(h));
        Assert.Equal(Value('a'), SnapValue(first.Entries, "x"));
        KvSnapshotLease third = h.Store.CreateSnapshotLease(h.Now); // holds x's new array and y's old one
        first.Dispose(); // the third still holds y's array (re-marked with its epoch)
        Assert.Equal(Ok, h.Run("SET", "y", Value('b')));
        Assert.Equal(before, InPlace(h));
        Assert.Equal(Value('a'), SnapValue(third.Entries, "y"));
        Assert.Equal(Value('b'), SnapValue(third.Entries, "x"));
        Assert.Equal(Ok, h.Run("SET", "y", Value('c'))); // y's newest array is nobody else's
        Assert.Equal(before + 1, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "x", Value('c'))); // x's array is the third's
        Assert.Equal(before + 1, InPlace(h));
        third.Dispose();
        Assert.Equal(Ok, h.Run("SET", "x", Value('d'))); // every lease ended: in place
        Assert.Equal(before + 2, InPlace(h));
        Assert.Equal(0, h.Store.LiveSnapshotLeases);
    }

    [Fact]
    public async Task A_snapshot_being_written_while_the_keys_are_overwritten_writes_the_values_of_its_own_time()
    {
        // The BGSAVE / AOF rewrite shape: the snapshot is written on another thread while the owner keeps writing the
        // same keys with values of the same length; the file must hold exactly the values at snapshot time.
        var h = new StoreHarness();
        const int Keys = 200;
        for (int i = 0; i < Keys; i++)
        {
            h.Run("SET", $"k{i}", Value((char)('a' + i % 26), 600 + i));
            h.Run("SET", $"k{i}", Value((char)('a' + i % 26), 600 + i));
        }
        h.Run("SET", "packed", "0123456789");
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        var rdb = new MemoryStream();
        using var started = new ManualResetEventSlim();
        Task writer = Task.Run(() =>
        {
            started.Set();
            for (int round = 0; round < 3; round++)
            {
                rdb.SetLength(0);
                rdb.Position = 0;
                KvRdb.Write(lease.Entries, span => { rdb.Write(span); Thread.SpinWait(50); }, "7.0.15", h.Now, 0);
            }
        });
        started.Wait();
        long before = InPlace(h);
        for (int round = 0; !writer.IsCompleted || round < 3; round++)
        {
            for (int i = 0; i < Keys; i++) h.Run("SET", $"k{i}", Value((char)('A' + (round + i) % 26), 600 + i));
            h.Run("SET", "packed", "abcdefghij");
        }
        await writer;
        lease.Dispose();
        Assert.True(InPlace(h) > before); // the writes after the first one per key did go in place
        var loaded = new KvStore(random: new Random(1));
        rdb.Position = 0;
        KvRdb.Load(rdb, rdb.Length, loaded, h.Now);
        var check = new StoreHarness(loaded);
        for (int i = 0; i < Keys; i++) Assert.Equal(Bulk(Value((char)('a' + i % 26), 600 + i)), check.Run("GET", $"k{i}"));
        Assert.Equal(Bulk("0123456789"), check.Run("GET", "packed"));
        long afterLease = InPlace(h);
        h.Run("SET", "k0", Value('z', 600));
        Assert.Equal(afterLease + 1, InPlace(h));
    }

    /// <summary>The writer of a leased snapshot hands each key back once it has copied its bytes (issue 14, h113): while
    /// it is paused in its sink (the owner's turn, deterministic here on one thread), every key it has passed is
    /// overwritten in place and every key still ahead gets a new array; the file holds the values of the snapshot's time
    /// and the store the new ones.</summary>
    [Fact]
    public void A_rewrite_writer_hands_back_the_keys_it_has_written_and_keeps_the_rest_frozen()
    {
        var h = new StoreHarness();
        const int Keys = 3000; // 3 MB of values uncompressed: the sink is called at about 1 MB, 2 MB and the end
        for (int i = 0; i < Keys; i++)
        {
            h.Run("SET", $"k{i}", Value((char)('a' + i % 26), 1000));
            h.Run("SET", $"k{i}", Value((char)('a' + i % 26), 1000)); // the row's own array now
        }
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        var rdb = new MemoryStream();
        var passed = new List<int>();
        var inPlace = new List<long>();
        int round = 0;
        KvRdb.Write(lease.Entries, span =>
        {
            rdb.Write(span);
            if (round == 2) return; // two rounds of writes are enough
            round++;
            passed.Add(lease.WrittenCount);
            long before = InPlace(h);
            for (int i = 0; i < Keys; i++) h.Run("SET", $"k{i}", Value((char)('A' + (i + round) % 26), 1000));
            inPlace.Add(InPlace(h) - before);
        }, "7.0.15", h.Now, 0, compression: false, lease: lease);
        Assert.Equal(Keys, lease.WrittenCount);
        lease.Dispose();

        Assert.Equal(2, passed.Count);
        Assert.InRange(passed[0], 1, Keys - 1); // the first 1 MB is about a third of the keys
        Assert.Equal(passed[0], inPlace[0]); // exactly the keys written so far went in place
        Assert.Equal(Keys, inPlace[1]); // the rest got arrays of their own in round 1: in place now too
        var loaded = new KvStore(random: new Random(1));
        rdb.Position = 0;
        KvRdb.Load(rdb, rdb.Length, loaded, h.Now);
        var check = new StoreHarness(loaded);
        for (int i = 0; i < Keys; i++)
        {
            Assert.Equal(Bulk(Value((char)('a' + i % 26), 1000)), check.Run("GET", $"k{i}"));
            Assert.Equal(Bulk(Value((char)('A' + (i + 2) % 26), 1000)), h.Run("GET", $"k{i}"));
        }
    }

    /// <summary>Once the writer has passed every key, overwriting them all while the lease is still alive allocates
    /// nothing; the same overwrites under a lease whose writer has not started allocate a new array per key.</summary>
    [Fact]
    public void Keys_a_rewrite_has_written_are_overwritten_in_place_again_without_allocating()
    {
        var h = new StoreHarness();
        const int Keys = 500;
        var sets = new KvCommand[Keys];
        for (int i = 0; i < Keys; i++)
        {
            h.Run("SET", $"k{i}", Value('a'));
            h.Run("SET", $"k{i}", Value('a'));
            sets[i] = KvCommand.Create("SET", $"k{i}", Value('b'));
        }
        var output = new ArrayBufferWriter<byte>(64 * 1024);
        var writer = new RespWriter(output);

        KvSnapshotLease notWritten = h.Store.CreateSnapshotLease(h.Now);
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (KvCommand set in sets) h.Store.Execute(set, h.Now, writer, null);
        long frozen = GC.GetAllocatedBytesForCurrentThread() - before;
        notWritten.Dispose();
        Assert.True(frozen >= Keys * 1024L, $"{frozen} B: every key needed a new array");

        KvSnapshotLease written = h.Store.CreateSnapshotLease(h.Now);
        KvRdb.Write(written.Entries, static _ => { }, "7.0.15", h.Now, 0, lease: written);
        long inPlaceBefore = InPlace(h);
        output.ResetWrittenCount();
        before = GC.GetAllocatedBytesForCurrentThread();
        foreach (KvCommand set in sets) h.Store.Execute(set, h.Now, writer, null);
        long handedBack = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(1, h.Store.LiveSnapshotLeases); // still alive: only the writer's progress freed the arrays
        written.Dispose();
        Assert.Equal(0, handedBack);
        Assert.Equal(inPlaceBefore + Keys, InPlace(h));
    }

    /// <summary>A restart after a rewrite taken while the keys were overwritten (random, incompressible values: LZF is
    /// tried and given up on): the rewritten file alone loads the values of the snapshot's time, and the file plus the
    /// commands logged since (the new incremental file) rebuild the live store exactly.</summary>
    [Fact]
    public void A_restart_loads_a_rewrite_taken_while_the_keys_were_overwritten()
    {
        var h = new StoreHarness();
        var random = new Random(14);
        const int Keys = 1500;
        byte[] RandomValue()
        {
            var v = new byte[1024];
            random.NextBytes(v);
            return v;
        }
        var atSnapshot = new byte[Keys][];
        for (int i = 0; i < Keys; i++)
        {
            atSnapshot[i] = RandomValue();
            RunBytes(h, "SET"u8.ToArray(), Resp.Bytes($"k{i}"), atSnapshot[i]);
            RunBytes(h, "SET"u8.ToArray(), Resp.Bytes($"k{i}"), atSnapshot[i]);
        }
        KvSnapshotLease lease = h.Store.CreateSnapshotLease(h.Now);
        int logged = h.Aof.Commands.Count; // the rewrite's cut: what follows goes to the new incremental file
        var rdb = new MemoryStream();
        bool overwritten = false;
        KvRdb.Write(lease.Entries, span =>
        {
            rdb.Write(span);
            if (overwritten) return;
            overwritten = true;
            Assert.InRange(lease.WrittenCount, 1, Keys - 1);
            for (int i = 0; i < Keys; i += 2) RunBytes(h, "SET"u8.ToArray(), Resp.Bytes($"k{i}"), RandomValue());
        }, "7.0.15", h.Now, 0, aofBase: true, lease: lease);
        lease.Dispose();
        Assert.True(overwritten);

        var restarted = new KvStore(random: new Random(1));
        rdb.Position = 0;
        KvRdb.Load(rdb, rdb.Length, restarted, h.Now);
        var check = new StoreHarness(restarted);
        for (int i = 0; i < Keys; i++)
        {
            Assert.Equal(atSnapshot[i], RunBytes(check, "GET"u8.ToArray(), Resp.Bytes($"k{i}")).AsSpan(7)[..1024].ToArray());
        }
        var reply = new RespWriter(new ArrayBufferWriter<byte>());
        foreach (KvCommand command in h.Aof.Commands.Skip(logged)) restarted.Execute(command, h.Now, reply, null);
        for (int i = 0; i < Keys; i++)
        {
            Assert.Equal(RunBytes(h, "GET"u8.ToArray(), Resp.Bytes($"k{i}")), RunBytes(check, "GET"u8.ToArray(), Resp.Bytes($"k{i}")));
        }
    }

    [Fact]
    public void Set_with_options_setex_mset_and_setnx_write_in_place_with_the_same_effects()
    {
        var h = new StoreHarness();
        Assert.Equal(Ok, h.Run("SET", "k", Value('a'), "EX", "100"));
        Assert.Equal(0, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "k", Value('b'), "PX", "50000"));
        Assert.Equal(1, InPlace(h));
        Assert.Equal(":50000\r\n", h.Run("PTTL", "k"));
        Assert.Equal(Ok, h.Run("SET", "k", Value('c'), "XX", "KEEPTTL"));
        Assert.Equal(2, InPlace(h));
        Assert.Equal(":50000\r\n", h.Run("PTTL", "k"));
        Assert.Equal("$-1\r\n", h.Run("SET", "k", Value('x'), "NX")); // not set
        Assert.Equal(2, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "k", Value('d'), "PXAT", (h.Now + 70000).ToString()));
        Assert.Equal(3, InPlace(h));
        Assert.Equal(":70000\r\n", h.Run("PTTL", "k"));
        Assert.Equal(Ok, h.Run("SET", "k", Value('e'), "XX")); // no expiry option: the TTL is cleared
        Assert.Equal(4, InPlace(h));
        Assert.Equal(":-1\r\n", h.Run("PTTL", "k"));
        Assert.Equal(Ok, h.Run("SETEX", "k", "10", Value('f')));
        Assert.Equal(Ok, h.Run("PSETEX", "k", "20000", Value('g')));
        Assert.Equal(6, InPlace(h));
        Assert.Equal(":20000\r\n", h.Run("PTTL", "k"));
        Assert.Equal(Bulk(Value('g')), h.Run("GET", "k"));
        Assert.Equal(Ok, h.Run("MSET", "k", Value('h'), "m", Value('m'), "s", "short"));
        Assert.Equal(7, InPlace(h));
        Assert.Equal(":-1\r\n", h.Run("PTTL", "k"));
        Assert.Equal(Ok, h.Run("MSET", "k", Value('i'), "m", Value('n'), "s", "SHORT", "k", Value('j'))); // k twice: the last wins
        Assert.Equal(11, InPlace(h));
        Assert.Equal(Bulk(Value('j')), h.Run("GET", "k"));
        Assert.Equal(":0\r\n", h.Run("MSETNX", "k", Value('x'), "new", Value('x')));
        Assert.Equal(":1\r\n", h.Run("MSETNX", "new1", Value('p'), "new2", "tiny"));
        Assert.Equal(":1\r\n", h.Run("SETNX", "nx", Value('q')));
        Assert.Equal(":0\r\n", h.Run("SETNX", "nx", Value('r')));
        Assert.Equal(11, InPlace(h));
        Assert.Equal(Ok, h.Run("SET", "nx", Value('s'))); // SETNX's array is the row's own
        Assert.Equal(Ok, h.Run("SET", "new1", Value('t')));
        Assert.Equal(13, InPlace(h));
        Assert.Equal(Bulk(Value('s')), h.Run("GET", "nx"));
        Assert.Equal(Bulk("SHORT"), h.Run("GET", "s"));
        Assert.Equal(Bulk("raw"), h.Run("OBJECT", "ENCODING", "k"));
        AssertDataBytes(h, ("k", Value('j')), ("m", Value('n')), ("s", "SHORT"), ("new1", Value('t')), ("new2", "tiny"), ("nx", Value('s')));

        // SET ... GET hands the old value out: its next write allocates, and the reply is the old bytes.
        Assert.Equal(Bulk(Value('j')), h.Run("SET", "k", Value('k'), "GET"));
        Assert.Equal(Bulk(Value('k')), h.Run("SET", "k", Value('l'), "EX", "5", "GET"));
        Assert.Equal(Bulk(Value('l')), h.Run("GET", "k"));

        // The log replays to the same keyspace (SETEX/PSETEX/SET EX are logged as SET ... PXAT with the value's copy).
        var log = new ArrayBufferWriter<byte>();
        foreach (KvCommand c in h.Aof.Commands) AofWriter.WriteCommand(log, c);
        var replayed = new StoreHarness(new KvStore(random: new Random(1))) { Now = h.Now };
        AofLoader.Load(log.WrittenSpan, replayed.Store, h.Now);
        foreach (string key in new[] { "k", "m", "s", "new1", "new2", "nx" })
        {
            Assert.Equal(h.Run("GET", key), replayed.Run("GET", key));
            Assert.Equal(h.Run("PTTL", key), replayed.Run("PTTL", key));
        }
        Assert.Contains(h.Logged, l => l.Contains("PXAT", StringComparison.Ordinal));
    }

    [Fact]
    public void Setex_in_place_over_a_value_a_deferred_aof_sink_holds()
    {
        var store = new KvStore(random: new Random(1));
        var sink = new DeferredSink();
        long now = 1_700_000_000_000;
        void Run(params string[] args) => store.Execute(KvCommand.Create(args), now, new RespWriter(new ArrayBufferWriter<byte>()), sink);
        Run("SET", "k", Value('a'), "EX", "100");
        Run("SETEX", "k", "100", Value('b'));
        Run("SET", "k", Value('c'), "PX", "100000");
        Run("MSET", "k", Value('d'));
        Run("SET", "k", Value('e'), "NX");
        Run("SET", "k", Value('f'), "XX", "KEEPTTL");
        Assert.True(store.Database(0).InPlaceStringWrites >= 4);
        string[] values = sink.Held.Where(c => c.Count >= 3 && !c.GetString(0).Equals("SELECT", StringComparison.OrdinalIgnoreCase))
            .Select(c => c.GetString(2)).ToArray();
        Assert.Equal([Value('a'), Value('b'), Value('c'), Value('d'), Value('f')], values);
    }

    [Fact]
    public void String_readers_do_not_hand_out_the_array()
    {
        var h = new StoreHarness();
        h.Run("SET", "k", Value('a'));
        h.Run("SET", "k", Value('a'));
        h.Run("SET", "n", "12");
        long before = InPlace(h);
        Assert.Equal($"*2\r\n{Bulk(Value('a'))}$2\r\n12\r\n", h.Run("MGET", "k", "n"));
        Assert.Equal(":1024\r\n", h.Run("STRLEN", "k"));
        Assert.Equal(Bulk("aaa"), h.Run("GETRANGE", "k", "0", "2"));
        Assert.Equal(Bulk(Value('a')), h.Run("GETEX", "k", "PERSIST"));
        Assert.Equal(Ok, h.Run("SET", "k", Value('b')));
        Assert.Equal(before + 1, InPlace(h));
        Assert.Equal(":13\r\n", h.Run("INCR", "n"));
        Assert.Equal(":1025\r\n", h.Run("APPEND", "k", "!"));
        Assert.Equal(":1025\r\n", h.Run("SETRANGE", "k", "0", "X"));
        Assert.Equal(Bulk("X" + Value('b', 1023) + "!"), h.Run("GETDEL", "k"));
        Assert.Equal("$-1\r\n", h.Run("GET", "k"));
    }
}
