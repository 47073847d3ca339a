using EioSharp.Sync;
using static EioSharp.Kv.Tests.StoreRequests;

namespace EioSharp.Kv.Tests;

/// <summary>Under <c>appendfsync always</c> a round waits, before its write and fsync, for the writers the previous round
/// answered (issue 14, sessions 22-23, StoreOwner.GatherForSyncAsync): a closed loop of clients no longer splits into two
/// cohorts that take turns with an fsync each. Against a real store owner and a real AOF in a temporary directory, with
/// requests queued directly (no connection; each add is followed by <c>NoteQueued</c>, as a connection's): "A" is a client
/// that sends its next request as soon as it has its answer, "B" one whose request was queued while A's round was in its
/// fsync.</summary>
public sealed class SyncGatherTests
{
    private static string WithOwner(bool gather, TimeSpan? limit, Func<StoreOwner, AsyncQueue<StoreRequest>, AppendOnlyFile, Task> body) =>
        RunOwner("kv-gather", inlineRounds: false, holdRounds: true, deferAofWrites: false, (owner, queue, aof, _) => body(owner, queue, aof),
            "always", options: null, yieldBeforeBody: false, gatherSyncRounds: gather, syncGatherLimit: limit);

    /// <summary>Queues <paramref name="r"/> as a connection does: the add, then the owner told (it may end a gather).</summary>
    private static void Queue(StoreOwner owner, AsyncQueue<StoreRequest> queue, StoreRequest r)
    {
        Assert.True(queue.TryAdd(r));
        owner.NoteQueued();
    }

    /// <summary>A's first round is synced while B queues; returns B's outcome queue once A has its answer.</summary>
    private static async Task<AsyncQueue<StoreOutcome>> FirstRoundWithBQueuedAsync(StoreOwner owner, AsyncQueue<StoreRequest> queue, AppendOnlyFile aof, StoreRequest b)
    {
        var a1 = Request(Cmd("SET", "a", "1"));
        var outA = a1.ArmOutcome();
        var outB = b.ArmOutcome();
        long fsyncs = aof.Fsyncs;
        Queue(owner, queue, a1);
        await Fiber.YieldAsync(); // the store loop takes A's round, writes it and waits for its fsync
        Queue(owner, queue, b); // B queues during A's fsync
        Assert.True((await outA.TakeAsync()).Finished);
        Assert.Equal("+OK\r\n", ReplyText(a1));
        Assert.Equal(1, aof.Fsyncs - fsyncs); // A was answered after its own fsync, which B is not in
        return outB;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_round_after_an_fsync_waits_for_the_writer_it_answered(bool gather)
    {
        string text = WithOwner(gather, TimeSpan.FromSeconds(30), async (owner, queue, aof) =>
        {
            long appends = aof.Appends, fsyncs = aof.Fsyncs;
            var b = Request(Cmd("SET", "b", "1"));
            var outB = await FirstRoundWithBQueuedAsync(owner, queue, aof, b);

            // A comes back (a few scheduler turns later: the store loop has taken B by then). Gathering: B's round
            // waited for it (the last round answered A and B was queued: two expected), so both share one write and
            // one fsync. Without: B's round started alone at once, and A's request is a round of its own.
            for (int i = 0; i < 4; i++)
            {
                await Fiber.YieldAsync();
            }

            Assert.Equal(gather ? 1 : 0, owner.GatheredRoundCount); // B's round is waiting (gathering)
            var a2 = Request(Cmd("SET", "a", "2"));
            var outA2 = a2.ArmOutcome();
            Queue(owner, queue, a2); // rings the waiting round's bell: it has both writers now
            Assert.True((await outB.TakeAsync()).Finished);
            Assert.True((await outA2.TakeAsync()).Finished);
            Assert.Equal("+OK\r\n", ReplyText(b));
            Assert.Equal("+OK\r\n", ReplyText(a2));
            Assert.Equal(gather ? 2 : 3, aof.Appends - appends);
            Assert.Equal(gather ? 2 : 3, aof.Fsyncs - fsyncs); // every reply above came after the fsync of its round
            Assert.Equal(gather ? 1 : 0, owner.GatheredRoundCount);
            Assert.Equal(0, owner.GatherTimeoutCount);
        });

        int a1 = text.IndexOf("$1\r\na\r\n$1\r\n1\r\n", StringComparison.Ordinal);
        int b1 = text.IndexOf("$1\r\nb\r\n$1\r\n1\r\n", StringComparison.Ordinal);
        int a2 = text.IndexOf("$1\r\na\r\n$1\r\n2\r\n", StringComparison.Ordinal);
        Assert.True(a1 >= 0 && b1 > a1 && a2 > b1, text); // in the order the rounds ran
    }

    [Fact]
    public void A_wait_that_nobody_joins_ends_at_its_limit()
    {
        // The default limit (the rounds' fsync time, at most 2 ms): A never comes back; B's round runs alone after it.
        WithOwner(gather: true, limit: null, async (owner, queue, aof) =>
        {
            long appends = aof.Appends;
            var b = Request(Cmd("SET", "b", "1"));
            var outB = await FirstRoundWithBQueuedAsync(owner, queue, aof, b);
            Assert.True((await outB.TakeAsync()).Finished);
            Assert.Equal("+OK\r\n", ReplyText(b));
            Assert.Equal(2, aof.Appends - appends);
            Assert.Equal(1, owner.GatheredRoundCount);
            Assert.Equal(1, owner.GatherTimeoutCount);

            // That round answered B alone, and nothing was queued: the next round expects one request, and waits for none.
            var c = Request(Cmd("SET", "c", "1"));
            var outC = c.ArmOutcome();
            Queue(owner, queue, c);
            Assert.True((await outC.TakeAsync()).Finished);
            Assert.Equal(1, owner.GatheredRoundCount);
        });
    }

    [Fact]
    public void A_single_writer_never_waits()
    {
        WithOwner(gather: true, TimeSpan.FromSeconds(30), async (owner, queue, aof) =>
        {
            long appends = aof.Appends, fsyncs = aof.Fsyncs;
            for (int i = 0; i < 5; i++)
            {
                var r = Request(Cmd("INCR", "n"));
                var outcome = r.ArmOutcome();
                Queue(owner, queue, r);
                Assert.True((await outcome.TakeAsync()).Finished);
                Assert.Equal($":{i + 1}\r\n", ReplyText(r));
            }

            Assert.Equal(5, aof.Appends - appends);
            Assert.Equal(5, aof.Fsyncs - fsyncs);
            Assert.Equal(0, owner.GatheredRoundCount); // each round expected only the one writer it had answered
        });
    }

    [Fact]
    public void Closing_the_queue_ends_the_wait_and_the_round_runs()
    {
        WithOwner(gather: true, TimeSpan.FromSeconds(30), async (owner, queue, aof) =>
        {
            long fsyncs = aof.Fsyncs;
            var b = Request(Cmd("SET", "b", "1"));
            var outB = await FirstRoundWithBQueuedAsync(owner, queue, aof, b);
            queue.Close(); // shutdown while B's round waits for A (which never comes)
            owner.NoteQueued(); // as the server does after closing the queue: the wait ends at once (its limit is 30 s)
            Assert.True((await outB.TakeAsync()).Finished);
            Assert.Equal("+OK\r\n", ReplyText(b));
            Assert.Equal(2, aof.Fsyncs - fsyncs);
            Assert.Equal(1, owner.GatheredRoundCount);
        });
    }

    [Fact]
    public void Two_waits_in_a_row_that_nobody_joins_make_the_next_round_skip_its_wait()
    {
        // Each round answers one writer that never comes back while another queues during its fsync: every round expects
        // two and gets one. The 1 ms limit ends each wait (nobody else queues, whatever the machine's speed).
        WithOwner(gather: true, TimeSpan.FromMilliseconds(1), async (owner, queue, aof) =>
        {
            long fsyncs = aof.Fsyncs;
            var b = Request(Cmd("SET", "b", "1"));
            var outB = await FirstRoundWithBQueuedAsync(owner, queue, aof, b);
            var outcomes = new List<AsyncQueue<StoreOutcome>> { outB };
            for (int round = 1; round <= 2; round++)
            {
                // The store loop's round `round` (B's, then c1's) gathers and misses; once it is past its wait it waits for
                // its fsync, and the next writer queues meanwhile.
                while (owner.GatherTimeoutCount < round)
                {
                    await Fiber.YieldAsync();
                }

                var next = Request(Cmd("SET", $"c{round}", "1"));
                outcomes.Add(next.ArmOutcome());
                Queue(owner, queue, next);
                Assert.True((await outcomes[round - 1].TakeAsync()).Finished);
            }

            // c2's round expects two too (c1 answered, c2 queued during its fsync) but, after two misses, does not wait.
            Assert.True((await outcomes[2].TakeAsync()).Finished);
            Assert.Equal(2, owner.GatheredRoundCount); // B's and c1's rounds waited, each until its limit
            Assert.Equal(2, owner.GatherTimeoutCount);
            Assert.Equal(1, owner.GatherSkippedCount); // c2's round did not wait (backing off after two misses)
            Assert.Equal(4, aof.Fsyncs - fsyncs); // A's, B's, c1's, c2's: every reply after its round's fsync
        });
    }
}
