using System.Text;
using EioSharp.Kv;
using static EioSharp.Kv.Tests.StoreClient;

namespace EioSharp.Kv.Tests;

/// <summary>The store's blocked-command registrations, which are pooled (issue 12, session 14): a registration and its
/// waiter nodes are reused from one block to the next, each use a new generation; the command is copied out of the view
/// it arrived in; a key's waiter list is kept idle for the key's next block. Order, once-only service and isolation
/// between databases must hold across the reuse.</summary>
public class BlockedRegistrationTests
{
    [Fact]
    public void A_reused_registration_serves_its_new_block_once_in_blocking_order_and_its_command_is_a_copy_of_the_view()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), w = new(3);

        // a blocks with a command that is a view over a reused buffer (as a connection's parsed command is).
        var builder = new KvCommandBuilder();
        KvCommand view = builder.Start().Add("BLPOP"u8).Add("k1"u8).Add("k2"u8).Add("0"u8).Build();
        Assert.True(view.IsView);
        h.Store.Execute(a.Session, view, h.Now, a.Writer, h.Aof);
        Assert.Equal("", a.Take());
        KvBlockedCommand first = a.Session.Blocked!;
        Assert.NotNull(first);
        long firstSequence = first.Sequence;
        builder.Start().Add("LPUSH"u8).Add("zz"u8).Add("zz"u8).Add("9"u8).Build(); // overwrites the view's bytes
        Assert.Equal("BLPOP k1 k2 0", string.Join(' ', Enumerable.Range(0, first.Command.Count).Select(i => Encoding.UTF8.GetString(first.Command[i]))));

        Assert.Equal("", Run(h, b, "BLPOP", "k2", "0"));
        Assert.Equal(2, h.Store.BlockedClients);

        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k2", "v1")); // a blocked first on k2
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k2", "v1"), a.Take());
        Assert.Null(a.Session.Blocked);
        Assert.Equal(KvUnblockReason.Served, first.Outcome);

        // a blocks again: its registration comes back from the pool as a new generation.
        Assert.Equal("", Run(h, a, "BLPOP", "k2", "0"));
        Assert.Same(first, a.Session.Blocked);
        Assert.NotEqual(firstSequence, a.Session.Blocked!.Sequence);

        Assert.Equal(":1\r\n", Run(h, w, "CLIENT", "UNBLOCK", "2")); // b (blocked before a's second block) leaves
        Assert.Equal(new[] { b.Session }, h.Store.TakeUnblocked());
        Assert.Equal("*-1\r\n", b.Take());

        Assert.Equal(":2\r\n", Run(h, w, "LPUSH", "k2", "v2", "v3"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k2", "v3"), a.Take()); // served once: one element popped
        Assert.Equal(":1\r\n", Run(h, w, "LLEN", "k2"));
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k1", "x")); // nobody waits on k1 any more
        Assert.Empty(h.Store.TakeUnblocked());
        Assert.Equal(":1\r\n", Run(h, w, "LLEN", "k1"));
        Assert.Equal(0, h.Store.BlockedClients);
        Assert.Equal("", a.Take() + b.Take());
    }

    /// <summary>BLPOP/BRPOP's serve pops directly (not as a nested LPOP/RPOP command, session 19): each blocked client
    /// gets its own end of the list, as <c>[key, element]</c>, the pops are logged as Redis propagates them (LPOP/RPOP
    /// key), the key a serve empties is deleted, and a client blocked on several keys is served from the first one that
    /// holds a list.</summary>
    [Fact]
    public void A_served_blpop_or_brpop_pops_its_own_end_logs_lpop_or_rpop_and_deletes_the_emptied_key()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), c = new(3), w = new(4);
        Assert.Equal("", Run(h, a, "BLPOP", "nokey", "k", "0"));
        Assert.Equal("", Run(h, b, "BRPOP", "k", "0"));
        Assert.Equal("", Run(h, c, "BRPOP", "s", "k2", "0"));
        Assert.Equal("+OK\r\n", Run(h, w, "SET", "s", "string")); // a key of another type is skipped, not an error
        h.Aof.Commands.Clear();

        Assert.Equal(":3\r\n", Run(h, w, "RPUSH", "k", "x", "y", "z"));
        Assert.Equal(new[] { a.Session, b.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "x"), a.Take());
        Assert.Equal(Pop("k", "z"), b.Take());
        Assert.Equal(["RPUSH k x y z", "LPOP k", "RPOP k"], h.Logged);
        Assert.Equal("*1\r\n$1\r\ny\r\n", Run(h, w, "LRANGE", "k", "0", "-1"));

        Assert.Equal(":2\r\n", Run(h, w, "LPUSH", "k2", "p", "q"));
        Assert.Equal(new[] { c.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k2", "p"), c.Take());
        Assert.Equal("RPOP k2", h.Logged[^1]);
        Assert.Equal(":1\r\n", Run(h, w, "LLEN", "k2"));

        Assert.Equal("", Run(h, a, "BLPOP", "k3", "0"));
        Assert.Equal(":1\r\n", Run(h, w, "RPUSH", "k3", "only"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k3", "only"), a.Take());
        Assert.Equal(["RPUSH k3 only", "LPOP k3"], h.Logged[^2..]);
        Assert.Equal(":0\r\n", Run(h, w, "EXISTS", "k3")); // emptied by the serve: deleted
        Assert.Equal(0, h.Store.BlockedClients);
        Assert.Equal("", a.Take() + b.Take() + c.Take());
    }

    [Fact]
    public void A_key_given_twice_waits_once()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), w = new(3);
        Assert.Equal("", Run(h, a, "BLPOP", "k", "k", "0"));
        Assert.Equal("", Run(h, b, "BRPOP", "k", "0"));
        Assert.Equal(":3\r\n", Run(h, w, "RPUSH", "k", "x", "y", "z"));
        Assert.Equal(new[] { a.Session, b.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "x"), a.Take());
        Assert.Equal(Pop("k", "z"), b.Take());
        Assert.Equal(":1\r\n", Run(h, w, "LLEN", "k"));
        Assert.Equal(0, h.Store.BlockedClients);
    }

    [Fact]
    public void A_key_blocked_on_again_in_another_database_is_not_served_by_the_first_database()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(3);
        Assert.Equal("", Run(h, a, "BLPOP", "k", "0"));
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "v"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "v"), a.Take());

        // The waiter list of (db 0, k) is idle now; a block on (db 1, k) must not take it.
        Assert.Equal("+OK\r\n", Run(h, a, "SELECT", "1"));
        Assert.Equal("", Run(h, a, "BLPOP", "k", "0"));
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "db0"));
        Assert.Empty(h.Store.TakeUnblocked());
        Assert.Equal("+OK\r\n", Run(h, w, "SELECT", "1"));
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "db1"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "db1"), a.Take());
        Assert.Equal("+OK\r\n", Run(h, w, "SELECT", "0"));
        Assert.Equal(":1\r\n", Run(h, w, "LLEN", "k"));
    }

    [Fact]
    public void A_cancelled_block_is_never_served_and_its_registration_serves_the_next_block_of_another_client()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), w = new(3);
        Assert.Equal("", Run(h, a, "BLPOP", "k", "0"));
        KvBlockedCommand reg = a.Session.Blocked!;
        Assert.True(h.Store.CancelBlocked(a.Session)); // a's connection went away
        Assert.Equal(KvUnblockReason.Cancelled, reg.Outcome);
        Assert.Equal("", Run(h, b, "BLPOP", "k", "0"));
        Assert.Same(reg, b.Session.Blocked); // the pool's registration, now b's

        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "v"));
        Assert.Equal(new[] { b.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k", "v"), b.Take());
        Assert.Equal("", a.Take());
        Assert.Equal(":0\r\n", Run(h, w, "LLEN", "k"));
    }

    [Fact]
    public void Timed_out_blocks_end_in_blocking_order_and_their_registrations_are_reused()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), c = new(3), w = new(4);
        Assert.Equal("", Run(h, b, "BLPOP", "k", "1"));
        Assert.Equal("", Run(h, a, "BLMOVE", "src", "dst", "LEFT", "RIGHT", "1"));
        Assert.Equal("", Run(h, c, "BZPOPMIN", "z", "0"));
        Assert.Equal(2, h.Store.ExpireBlocked(h.Now + 1000));
        Assert.Equal(new[] { b.Session, a.Session }, h.Store.TakeUnblocked());
        Assert.Equal("*-1\r\n", a.Take());
        Assert.Equal("*-1\r\n", b.Take());

        // Both registrations are back in the pool; the next blocks take them and wait on their own keys only.
        Assert.Equal("", Run(h, a, "BRPOP", "k2", "0"));
        Assert.Equal("", Run(h, b, "BLPOP", "k3", "0"));
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k", "x"));
        Assert.Equal(":1\r\n", Run(h, w, "RPUSH", "src", "y"));
        Assert.Empty(h.Store.TakeUnblocked());
        Assert.Equal(":1\r\n", Run(h, w, "ZADD", "z", "1", "m"));
        Assert.Equal(new[] { c.Session }, h.Store.TakeUnblocked());
        Assert.Equal("*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n", c.Take());
        Assert.Equal(":1\r\n", Run(h, w, "LPUSH", "k3", "v"));
        Assert.Equal(new[] { b.Session }, h.Store.TakeUnblocked());
        Assert.Equal(Pop("k3", "v"), b.Take());
        Assert.Equal(1, h.Store.BlockedClients);
    }

    private static void BlockWithView(StoreHarness h, StoreClient c, KvCommandBuilder builder, params string[] args)
    {
        builder.Start();
        foreach (string a in args) builder.Add(Encoding.UTF8.GetBytes(a));
        KvCommand view = builder.Build();
        Assert.True(view.IsView);
        h.Store.Execute(c.Session, view, h.Now, c.Writer, h.Aof);
        Assert.Equal("", c.Take());
        Assert.NotNull(c.Session.Blocked);
    }

    [Fact]
    public void Blocked_moves_multi_pops_and_sorted_set_pops_are_served_from_the_registrations_copy_of_their_command()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), c = new(3), d = new(4), e = new(5), w = new(6);
        var builder = new KvCommandBuilder(); // each block's view is overwritten by the next one
        BlockWithView(h, a, builder, "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0");
        BlockWithView(h, b, builder, "BRPOPLPUSH", "src", "dst2", "0");
        BlockWithView(h, c, builder, "BLMPOP", "0", "2", "none", "src", "RIGHT", "COUNT", "2");
        BlockWithView(h, d, builder, "BZPOPMIN", "z1", "z2", "0");
        BlockWithView(h, e, builder, "BZMPOP", "0", "1", "z2", "MAX");
        builder.Start().Add("XXXXXX"u8).Add("yyy"u8).Add("zzzz"u8).Add("wwww"u8).Add("vvvvv"u8).Add("u"u8).Add("tt"u8).Build();

        Assert.Equal(":4\r\n", Run(h, w, "RPUSH", "src", "a", "b", "c", "d"));
        Assert.Equal(new[] { a.Session, b.Session, c.Session }, h.Store.TakeUnblocked());
        Assert.Equal("$1\r\na\r\n", a.Take()); // LMOVE src dst LEFT RIGHT
        Assert.Equal("$1\r\nd\r\n", b.Take()); // RPOPLPUSH src dst2
        Assert.Equal("*2\r\n$3\r\nsrc\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n", c.Take()); // LMPOP 2 none src RIGHT COUNT 2
        Assert.Equal("*1\r\n$1\r\na\r\n", Run(h, w, "LRANGE", "dst", "0", "-1"));
        Assert.Equal("*1\r\n$1\r\nd\r\n", Run(h, w, "LRANGE", "dst2", "0", "-1"));
        Assert.Equal(":0\r\n", Run(h, w, "EXISTS", "src"));

        Assert.Equal(":2\r\n", Run(h, w, "ZADD", "z2", "1", "m1", "2", "m2"));
        Assert.Equal(new[] { d.Session, e.Session }, h.Store.TakeUnblocked());
        Assert.Equal("*3\r\n$2\r\nz2\r\n$2\r\nm1\r\n$1\r\n1\r\n", d.Take()); // [key, member, score]
        Assert.Equal("*2\r\n$2\r\nz2\r\n*1\r\n*2\r\n$2\r\nm2\r\n$1\r\n2\r\n", e.Take()); // ZMPOP 1 z2 MAX
        Assert.Equal(0, h.Store.BlockedClients);
    }

    [Theory]
    [InlineData("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0")]
    [InlineData("BRPOPLPUSH", "src", "dst", "0")]
    [InlineData("BLMPOP", "0", "1", "src", "LEFT")]
    [InlineData("BZPOPMIN", "src", "0")]
    [InlineData("BZMPOP", "0", "1", "src", "MIN")]
    public void A_block_of_a_move_or_multi_pop_allocates_no_serve_closure_or_argument_arrays(params string[] args)
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        KvCommand command = KvCommand.Create(args);
        bool zset = args[0].StartsWith("BZ", StringComparison.Ordinal);
        var meter = new AllocationMeter(); // the fewest bytes of a block over warm rounds
        while (meter.NextRound())
        {
            meter.Start();
            h.Store.Execute(a.Session, command, h.Now, a.Writer, h.Aof); // blocks (a pooled registration after the first)
            meter.Stop();
            Assert.NotNull(a.Session.Blocked);
            Assert.Equal(":1\r\n", zset ? Run(h, w, "ZADD", "src", "1", "m") : Run(h, w, "RPUSH", "src", "x"));
            Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
            Assert.NotEqual("", a.Take());
            Assert.Equal(":0\r\n", Run(h, w, "EXISTS", "src"));
            Run(h, w, "DEL", "dst");
        }

        // Before: a closure over the command's arguments (and for BLMOVE/BRPOPLPUSH/BLMPOP/BZMPOP their copies as arrays),
        // 120 B (BZPOPMIN) to 560 B (BLMPOP) per block, measured on the old code. The registration, its waiter node and
        // the key's waiter list are reused from the first round on.
        Assert.Equal(0, meter.Fewest);
    }

    [Fact]
    public void A_blocked_xreadgroup_allocates_no_request_copy_key_copies_or_serve_closure()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), w = new(2);
        Assert.Equal("+OK\r\n", Run(h, w, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"));
        KvCommand read = KvCommand.Create("XREADGROUP", "GROUP", "g", "c1", "COUNT", "10", "BLOCK", "0", "STREAMS", "s", ">");
        long allocated = 0;
        for (int round = 1; round <= 4; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            h.Store.Execute(a.Session, read, h.Now, a.Writer, h.Aof); // blocks (a pooled registration after the first)
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.NotNull(a.Session.Blocked);
            Assert.Equal("", a.Take());
            string id = $"{round}-1";
            Assert.Equal($"${id.Length}\r\n{id}\r\n", Run(h, w, "XADD", "s", id, "f", "v"));
            Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
            Assert.Equal($"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n${id.Length}\r\n{id}\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", a.Take());
            Assert.Equal(":1\r\n", Run(h, w, "XACK", "s", "g", id));
        }

        // Before: the request's copy and its ID array, an array of (db, key) with a copy of each key, and a closure over
        // the request with its delegate per block (304 B for one stream, measured on the old code). Now the registration
        // keeps the request.
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void A_reused_registration_serves_a_stream_read_with_its_own_keys_ids_and_count()
    {
        var h = new StoreHarness();
        StoreClient a = new(1), b = new(2), w = new(3);
        Assert.Equal("$3\r\n1-1\r\n", Run(h, w, "XADD", "s1", "1-1", "f", "v"));
        Assert.Equal("", Run(h, a, "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s1", "$")); // $ = 1-1
        KvBlockedCommand reg = a.Session.Blocked!;
        // Two entries arrive at once (a RENAME onto the key a waits on): COUNT 1 serves the first only.
        Assert.Equal("$3\r\n2-1\r\n", Run(h, w, "XADD", "t", "2-1", "f", "v"));
        Assert.Equal("$3\r\n3-1\r\n", Run(h, w, "XADD", "t", "3-1", "f", "v"));
        Assert.Equal("+OK\r\n", Run(h, w, "RENAME", "t", "s1"));
        Assert.Equal(new[] { a.Session }, h.Store.TakeUnblocked());
        Assert.Equal("*1\r\n*2\r\n$2\r\ns1\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", a.Take());

        // b's block takes a's registration from the pool: other key positions, two streams, no COUNT, its own IDs.
        Assert.Equal("", Run(h, b, "XREAD", "BLOCK", "0", "STREAMS", "s2", "s1", "0-0", "$")); // s1's $ = 3-1
        Assert.Same(reg, b.Session.Blocked);
        Assert.Equal("$3\r\n1-1\r\n", Run(h, w, "XADD", "t", "1-1", "a", "1"));
        Assert.Equal("$3\r\n2-1\r\n", Run(h, w, "XADD", "t", "2-1", "b", "2"));
        Assert.Equal("+OK\r\n", Run(h, w, "RENAME", "t", "s2"));
        Assert.Equal(new[] { b.Session }, h.Store.TakeUnblocked());
        Assert.Equal("*1\r\n*2\r\n$2\r\ns2\r\n*2\r\n"
            + "*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
            + "*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n", b.Take());
        Assert.Equal("", a.Take());
        Assert.Equal(0, h.Store.BlockedClients);
    }
}
