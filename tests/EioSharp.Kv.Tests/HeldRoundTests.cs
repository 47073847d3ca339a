using System.Text;
using EioSharp.Fs;
using EioSharp.Sync;
using static EioSharp.Kv.Tests.StoreRequests;

namespace EioSharp.Kv.Tests;

/// <summary>The store loop writes the AOF once per cycle of its domain (issue 12, session 16): a request queued while a
/// round's replies are held (another fiber of the domain was ready) runs as a further round whose AOF bytes join the
/// same write, and no reply is released before that write. Against a real store owner and a real AOF in a temporary
/// directory, with requests queued directly (no connection).</summary>
public sealed class HeldRoundTests
{
    /// <summary>Runs <paramref name="body"/> against a store owner with an AOF (everysec unless <paramref name="fsync"/>)
    /// in a fresh directory; returns the AOF's text after the owner stopped.</summary>
    private static string WithOwner(bool hold, Func<StoreOwner, AsyncQueue<StoreRequest>, AppendOnlyFile, Task> body, string fsync = "everysec") =>
        RunOwner("kv-held", inlineRounds: false, holdRounds: hold, deferAofWrites: false, (owner, queue, aof, _) => body(owner, queue, aof), fsync, options: null, yieldBeforeBody: false);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Requests_queued_in_separate_rounds_of_one_cycle_share_one_AOF_write(bool hold)
    {
        string text = WithOwner(hold, async (owner, queue, aof) =>
        {
            var first = Request(Cmd("SET", "a", "1"));
            var second = Request(Cmd("INCR", "a"), Cmd("GET", "a"));
            var outFirst = first.ArmOutcome();
            var outSecond = second.ArmOutcome();
            long appendsBefore = aof.Appends, heldBefore = owner.HeldRoundCount, queuedBefore = owner.QueuedRoundCount;

            Assert.True(queue.TryAdd(first));
            // The store loop runs the first round while this fiber is still ready (it yields after the store fiber):
            // with holding, the round's write and reply wait for this fiber to have run.
            await Fiber.YieldAsync();
            bool firstAnsweredEarly = outFirst.TryTake(out _);
            Assert.True(queue.TryAdd(second)); // queued after the first round ran, in the same cycle of the domain
            if (!firstAnsweredEarly)
            {
                Assert.True((await outFirst.TakeAsync()).Finished);
            }

            Assert.True((await outSecond.TakeAsync()).Finished);
            Assert.Equal("+OK\r\n", ReplyText(first));
            Assert.Equal(":2\r\n$1\r\n2\r\n", ReplyText(second));
            Assert.Equal(2, owner.QueuedRoundCount - queuedBefore); // two rounds either way
            if (hold)
            {
                Assert.False(firstAnsweredEarly); // held until the write of the cycle
                Assert.Equal(1, owner.HeldRoundCount - heldBefore);
                Assert.Equal(1, aof.Appends - appendsBefore); // one write for both rounds
            }
            else
            {
                Assert.Equal(0, owner.HeldRoundCount - heldBefore);
                Assert.Equal(2, aof.Appends - appendsBefore);
            }
        });

        // Both rounds' commands are in the file, in order.
        int set = text.IndexOf("$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n", StringComparison.Ordinal);
        int incr = text.IndexOf("$4\r\nINCR\r\n$1\r\na\r\n", StringComparison.Ordinal);
        Assert.True(set >= 0 && incr > set, text);
    }

    [Fact]
    public void A_round_with_nothing_to_append_is_not_held()
    {
        WithOwner(hold: true, async (owner, queue, aof) =>
        {
            var read = Request(Cmd("GET", "missing"));
            var outcome = read.ArmOutcome();
            long heldBefore = owner.HeldRoundCount, appendsBefore = aof.Appends;
            Assert.True(queue.TryAdd(read));
            await Fiber.YieldAsync(); // the store fiber runs the round now; nothing to write: its reply is released at once
            Assert.True(outcome.TryTake(out var o) && o.Finished);
            Assert.Equal("$-1\r\n", ReplyText(read));
            Assert.Equal(0, owner.HeldRoundCount - heldBefore);
            Assert.Equal(0, aof.Appends - appendsBefore);
        });
    }

    [Fact]
    public void Under_appendfsync_always_each_round_is_written_and_synced_before_its_reply()
    {
        WithOwner(hold: true, async (owner, queue, aof) =>
        {
            var first = Request(Cmd("SET", "a", "1"));
            var second = Request(Cmd("SET", "b", "2"));
            var outFirst = first.ArmOutcome();
            var outSecond = second.ArmOutcome();
            long appendsBefore = aof.Appends, fsyncsBefore = aof.Fsyncs;
            Assert.True(queue.TryAdd(first));
            await Fiber.YieldAsync();
            Assert.True(queue.TryAdd(second));
            Assert.True((await outFirst.TakeAsync()).Finished);
            Assert.True(aof.Fsyncs - fsyncsBefore >= 1); // the first reply came after its fsync
            Assert.True((await outSecond.TakeAsync()).Finished);
            Assert.Equal(0, owner.HeldRoundCount);
            Assert.Equal(2, aof.Appends - appendsBefore);
            Assert.True(aof.Fsyncs - fsyncsBefore >= 2);
        }, fsync: "always");
    }
}
