using System.Text;
using EioSharp.Fs;
using EioSharp.Sync;
using static EioSharp.Kv.Tests.StoreRequests;

namespace EioSharp.Kv.Tests;

/// <summary>Inline rounds whose AOF write waits for the domain's next submission (issue 14, session 21,
/// <see cref="StoreOwner.DeferAofWrites"/>): on a domain that sends only when it enters its ring (io_uring), an inline
/// write round's reply is released at once and its bytes are written, with every round answered meanwhile, by the
/// domain's before-output action (<see cref="Domain.RunBeforeOutput"/>), before any of those replies can leave. Against
/// a real store owner and a real AOF in a temporary directory, with rounds run inline from a fiber of the store's domain.
/// On a backend that sends at once (epoll, portable) the same rounds write before they return, as before.</summary>
public sealed class DeferredAofWriteTests
{
    /// <summary>Runs <paramref name="body"/> against a store owner (inline rounds on, deferral as <paramref name="defer"/>)
    /// with an AOF under <paramref name="fsync"/>; returns the incremental AOF's text after the owner stopped.</summary>
    /// <remarks>The backend is io_uring where the machine has it (<see cref="EioBackend.Auto"/>, unless
    /// <paramref name="backend"/> says otherwise): the library's default backend (portable) sends at once.</remarks>
    private static string WithOwner(bool defer, Func<StoreOwner, AsyncQueue<StoreRequest>, AppendOnlyFile, Func<Task>, Task> body, string fsync = "everysec",
        EioBackend backend = EioBackend.Auto) =>
        RunOwner("kv-deferred", inlineRounds: true, holdRounds: true, deferAofWrites: defer,
            (owner, queue, aof, env) => body(owner, queue, aof,
                async () => await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(20))), // the domain goes idle and comes back
            fsync, new EioOptions { Backend = backend }, yieldBeforeBody: true); // the store loop waits for its first request

    [Theory]
    [InlineData(true, EioBackend.Auto)]
    [InlineData(false, EioBackend.Auto)]
    [InlineData(true, EioBackend.Portable)]
    public void Inline_write_rounds_are_written_once_before_the_domain_next_submits(bool defer, EioBackend backend)
    {
        bool domainDefers = false;
        string text = WithOwner(defer, async (owner, queue, aof, idle) =>
        {
            domainDefers = Domain.Current!.DefersOutput;
            var first = Request(Cmd("SET", "a", "1"));
            var second = Request(Cmd("INCR", "a"), Cmd("GET", "a"));

            // On a loaded machine the store's timer work (the cron tick, block timeouts) or another item in the domain's run
            // queue can be pending when the body starts, and then the batch must go through the queue (ci65 saw it once on
            // epoll): let the domain go idle until the store loop is idle with nothing due (bounded), then test.
            for (int i = 0; i < 50 && !owner.CanRunInline(first); i++)
            {
                await idle();
            }

            long appendsBefore = aof.Appends, deferredBefore = owner.DeferredRoundCount, writesBefore = owner.DeferredWriteCount;

            Assert.True(owner.CanRunInline(first));
            Assert.True(owner.RunInline(first));
            Assert.Equal("+OK\r\n", ReplyText(first));
            Assert.True(owner.CanRunInline(second)); // a write batch runs inline even with the first round's write pending
            Assert.True(owner.RunInline(second));
            Assert.Equal(":2\r\n$1\r\n2\r\n", ReplyText(second));
            bool deferring = defer && domainDefers;
            if (deferring)
            {
                Assert.Equal(0, aof.Appends - appendsBefore); // answered, not written yet
                Assert.Equal(2, owner.DeferredRoundCount - deferredBefore);
            }
            else
            {
                Assert.Equal(2, aof.Appends - appendsBefore); // each round wrote before it returned
                Assert.Equal(0, owner.DeferredRoundCount - deferredBefore);
            }

            // The domain goes idle: before it sleeps in its ring, the before-output action writes both rounds at once.
            await idle();
            if (deferring)
            {
                Assert.Equal(1, aof.Appends - appendsBefore);
                Assert.Equal(1, owner.DeferredWriteCount - writesBefore);
            }
            else
            {
                Assert.Equal(2, aof.Appends - appendsBefore);
            }
        }, backend: backend);

        if (backend == EioBackend.Portable)
        {
            Assert.False(domainDefers);
        }

        int set = text.IndexOf("$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n", StringComparison.Ordinal);
        int incr = text.IndexOf("$4\r\nINCR\r\n$1\r\na\r\n", StringComparison.Ordinal);
        Assert.True(set >= 0 && incr > set, text);
    }

    [Fact]
    public void A_queued_round_writes_the_answered_inline_rounds_before_its_own_and_before_its_reply()
    {
        WithOwner(defer: true, async (owner, queue, aof, idle) =>
        {
            bool deferring = Domain.Current!.DefersOutput;
            var inline = Request(Cmd("SET", "k", "v"));
            Assert.True(owner.RunInline(inline));
            long appendsBefore = aof.Appends;
            var read = Request(Cmd("GET", "k"));
            var outcome = read.ArmOutcome();
            Assert.True(queue.TryAdd(read)); // (as from another domain, or a busy store): it reads the inline round's value
            Assert.True((await outcome.TakeAsync()).Finished);
            Assert.Equal("$1\r\nv\r\n", ReplyText(read));
            Assert.Equal(deferring ? 1 : 0, aof.Appends - appendsBefore); // the SET's bytes went first, in the store loop
            long writes = owner.DeferredWriteCount;
            await idle();
            Assert.Equal(writes, owner.DeferredWriteCount); // nothing left for the before-output action
        });
    }

    [Fact]
    public void Under_appendfsync_always_nothing_is_deferred()
    {
        WithOwner(defer: true, async (owner, queue, aof, idle) =>
        {
            var write = Request(Cmd("SET", "a", "1"));
            Assert.False(owner.CanRunInline(write)); // always: the queue and its group commit
            var outcome = write.ArmOutcome();
            long appendsBefore = aof.Appends, fsyncsBefore = aof.Fsyncs;
            Assert.True(queue.TryAdd(write));
            Assert.True((await outcome.TakeAsync()).Finished);
            Assert.Equal(1, aof.Appends - appendsBefore);
            Assert.True(aof.Fsyncs - fsyncsBefore >= 1);
            Assert.Equal(0, owner.DeferredRoundCount);
        }, fsync: "always");
    }
}
