using EioSharp.Tracing;
using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>A promise's first waiter sits in a lock-free slot, the others in a list (issue 20, session 15); a cancel context
/// links its lone suspended operation without a tail. Order, cancellation and reuse must be as with one list.</summary>
public class PromiseSlotTests
{
    // The first awaiter is in the slot, the second in the list. The first is cancelled (its slot is emptied); a third
    // awaiter must then join the list behind the second, not take the free slot: awaiters are woken in the order they
    // started waiting (S12), so the second is woken before the third.
    [Theory, BothBackends]
    public void S19_AwaitersWokenInOrderAfterTheFirstIsCancelled(Backend b) => Expect(b, """
        +w1: Cancelled: TestFailure: stop w1
        +w2 got 5
        +w3 got 5
        +w4 got 5

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            CancelContext? w1Context = null;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("w1", () => Cancel.SubAsync(async c =>
                {
                    w1Context = c;
                    TraceLog.Line($"w1 got {await p.AwaitAsync()}");
                })));
                Fiber.Fork(sw, async () => TraceLog.Line($"w2 got {await p.AwaitAsync()}"));
                w1Context!.Cancel(new TestFailure("stop w1"));
                await Fiber.YieldAsync(); // w1 runs its cancellation
                Fiber.Fork(sw, async () => TraceLog.Line($"w3 got {await p.AwaitAsync()}"));
                Fiber.Fork(sw, async () => TraceLog.Line($"w4 got {await p.AwaitAsync()}"));
                r.Resolve(5);
            });
        });

    // A lone awaiter that was cancelled leaves the slot free: the next awaiter of the same promise takes it and is woken.
    [Theory, BothBackends]
    public void S19_SlotIsFreeAgainAfterItsWaiterIsCancelled(Backend b) => Expect(b, """
        +first: Cancelled: TestFailure: stop
        +second got 8

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            await Describe("first", () => Cancel.SubAsync(async c =>
            {
                await Switch.RunAsync(async sw =>
                {
                    Fiber.Fork(sw, async () => await p.AwaitAsync());
                    c.Cancel(new TestFailure("stop"));
                    await Task.CompletedTask;
                });
            }));
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () => TraceLog.Line($"second got {await p.AwaitAsync()}"));
                r.Resolve(8);
                await Task.CompletedTask;
            });
        });

    // Fibers of one switch share its cancel context, which wakes their suspensions oldest first (S13). a (the first in the
    // context's list) and c (in the middle) resume and suspend again, so they are now the newest: cancelling wakes b, d,
    // a, c. The context keeps a lone suspension without a tail; this walks it through head, middle and tail changes.
    [Theory, BothBackends]
    public void S13_CancellationWakesSuspensionsOldestFirst(Backend b) => Expect(b, """
        +b cancelled
        +d cancelled
        +a cancelled
        +c cancelled
        +sub: ok

        """, async env =>
        {
            var (pa, ra) = Promise.Create<int>();
            var (pc, rc) = Promise.Create<int>();
            var (pb, _) = Promise.Create<int>();
            var (pd, _) = Promise.Create<int>();
            var (never, _) = Promise.Create<int>();
            await Describe("sub", () => Cancel.SubAsync(async c =>
            {
                await Switch.RunAsync(async sw =>
                {
                    foreach (var (name, first) in new[] { ("a", pa), ("b", pb), ("c", pc), ("d", pd) })
                    {
                        Fiber.Fork(sw, async () =>
                        {
                            try
                            {
                                await first.AwaitAsync();
                                await never.AwaitAsync();
                            }
                            catch (CancelledException)
                            {
                                TraceLog.Line($"{name} cancelled");
                            }
                        });
                    }

                    ra.Resolve(1);
                    rc.Resolve(1);
                    await Fiber.YieldAsync(); // a and c resume and suspend again
                    c.Cancel(new TestFailure("stop"));
                });
            }));
        });

    // A use completed by a fiber of its own domain leaves its cancel context at once (h173), not when its fiber resumes.
    // w1 and w2 share one context; w1's promise is resolved, w2 suspends after that (the context's list then holds w2
    // alone), and the context is cancelled before w1 runs: w1's completion won (it gets its value, and its next
    // suspension is cancelled), and w2 is cancelled.
    [Theory, BothBackends]
    public void CompletedUseLeavesItsCancelContextBeforeItsFiberResumes(Backend b) => Expect(b, """
        +w1 got 5
        +w1 then: Cancelled: TestFailure: stop
        +w2: Cancelled: TestFailure: stop
        +sub: ok

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            var (q, _) = Promise.Create<int>();
            var (never, _) = Promise.Create<int>();
            await Describe("sub", () => Cancel.SubAsync(async c =>
            {
                await Switch.RunAsync(async inner =>
                {
                    Fiber.Fork(inner, async () =>
                    {
                        TraceLog.Line($"w1 got {await p.AwaitAsync()}");
                        await Describe("w1 then", async () => await never.AwaitAsync());
                    });
                    Fiber.Fork(inner, () => Describe("w2", async () => await q.AwaitAsync()));
                    r.Resolve(5); // w1's use completed here, on its domain: out of the context already
                    c.Cancel(new TestFailure("stop")); // before w1 runs: cancels w2 and w1's next suspension
                    await Task.CompletedTask;
                });
            }));
        });

    // The race the slot has instead of a lock: a resolver (on another thread) has taken the waiter out of the slot but not
    // completed it yet when the awaiting fiber's cancellation wins. The resolver still holds the waiter and will call
    // TryComplete on it, so that waiter must never be reused: a later suspension would be completed by this stale resolver.
    [Fact]
    public void CancelledSlotWaiterHeldByAResolverIsNotReused() => EioMain.Run(async _ =>
    {
        var (p, _) = Promise.Create<int>();
        CancelContext? context = null;
        string outcome = "none";
        QueuedWaiter<int>? held = null;
        await Switch.RunAsync(async sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                try
                {
                    await Cancel.SubAsync(async c =>
                    {
                        context = c;
                        await p.AwaitAsync();
                    });
                }
                catch (CancelledException)
                {
                    outcome = "cancelled";
                }
            });
            // What TryResolve does before it completes the slot's waiter: claim, store the value, take the waiter (h178).
            Assert.True(p.TryClaimAndStore(7, null, out held, out var heldDomain));
            Assert.NotNull(held);
            Assert.Same(Domain.Current, heldDomain); // the slot's domain, read from the promise (§209)
            context!.Cancel(new TestFailure("stop")); // the cancellation wins the waiter's state
            await Fiber.YieldAsync(); // the fiber resumes and consumes its cancelled use
        });
        Assert.Equal("cancelled", outcome);

        // The waiter did not go back to this thread's pool: renting more than the pool can hold never returns it.
        for (int i = 0; i <= WaiterPool.MaxFree; i++)
        {
            Assert.NotSame(held, QueuedWaiter<int>.Rent(Domain.Current!, TraceReason.Other));
        }

        Assert.False(held!.TryComplete(1)); // the resolver's late completion does nothing
        Assert.False(held.TryCompleteTaken(1)); // nor does it by the owning domain's plain path (h163)

        // Nor the wake-up a resolver on another thread posts instead (§209): the posted item finds the use cancelled.
        Domain.Current!.Enqueue(QueuedWaiter<int>.SlotResolved, held, null);
        await Fiber.YieldAsync();
        await Fiber.YieldAsync();
        Assert.True(held.IsDone);
        Assert.Equal("cancelled", outcome);
    });

    // Resolvers on the thread pool race the awaiting fiber's cancellation (a race against a yield) many times over, with
    // pooled waiters reused from one round to the next: every await that returns gets its own promise's value. A stale
    // completion of a reused waiter would hand a later round an earlier round's value.
    [Fact]
    public void ResolveRacingCancellationNeverCompletesALaterUse() => EioMain.Run(async _ =>
    {
        const int Rounds = 5_000;
        for (int i = 0; i < Rounds; i++)
        {
            var (p, r) = Promise.Create<int>();
            var (q, s) = Promise.Create<int>();
            ThreadPool.UnsafeQueueUserWorkItem(static st => st.Resolve(st.Promise.GetHashCode()), r, preferLocal: false);
            int got = await Fiber.FirstAsync(async () => await p.AwaitAsync(), async () =>
            {
                await Fiber.YieldAsync();
                return -1;
            });
            if (got != -1)
            {
                Assert.Equal(p.GetHashCode(), got);
            }

            // A suspension right after (on a pooled waiter, perhaps the one just used), completed here: it must get its own value.
            var pending = q.AwaitAsync();
            s.Resolve(i);
            Assert.Equal(i, await pending);
        }
    });

    // §215's protocol step by step on one domain, the spin's calls made by the test (what Domain.SpinForRemote does), the
    // resolver on another thread: a resolver that finds the "awaiter spinning" mark posts nothing and the marking domain
    // completes the waiter; a mark taken back first leaves the resolver's post as before; a claim between the mark and its
    // taking back makes the taking back fail and complete the waiter; an error travels the same way; a completed use is
    // not marked.
    [Fact]
    public void SpinningAwaiterMarkDecidesWhoCompletesTheSlotWaiter() => EioMain.Run(async _ =>
    {
        var me = Domain.Current!;

        // Marked, then resolved elsewhere: no post; the poll sees the resolution and the domain completes the waiter.
        var (p1, r1) = Promise.Create<int>();
        var t1 = p1.AwaitAsync();
        var w1 = p1.SlotWaiter!;
        Assert.True(w1.TrySpinMark());
        Assert.False(w1.TrySpinMark()); // marked once
        Assert.False(w1.SpinResolved);
        Elsewhere(() => r1.Resolve(11));
        Assert.False(me.HasRemoteWork); // the resolver posted nothing
        Assert.True(w1.SpinResolved);
        Assert.False(t1.IsCompleted);
        w1.CompleteSpun();
        Assert.True(t1.IsCompleted);
        Assert.Equal(11, await t1);

        // Marked and taken back, then resolved elsewhere: the resolver posts the wake-up (§209's path).
        var (p2, r2) = Promise.Create<int>();
        var t2 = p2.AwaitAsync();
        var w2 = p2.SlotWaiter!;
        Assert.True(w2.TrySpinMark());
        Assert.True(w2.TrySpinUnmark());
        Elsewhere(() => r2.Resolve(22));
        Assert.True(me.HasRemoteWork);
        Assert.False(t2.IsCompleted);
        Assert.Equal(22, await t2);

        // Marked, resolved elsewhere, then the mark taken back: that fails, and completes the waiter.
        var (p3, r3) = Promise.Create<int>();
        var t3 = p3.AwaitAsync();
        var w3 = p3.SlotWaiter!;
        Assert.True(w3.TrySpinMark());
        Elsewhere(() => r3.Resolve(33));
        Assert.False(w3.TrySpinUnmark());
        Assert.False(me.HasRemoteWork);
        Assert.True(t3.IsCompleted);
        Assert.Equal(33, await t3);

        // An error, marked: the same way, and the awaiter gets the error.
        var (p4, r4) = Promise.Create<string>();
        var t4 = p4.AwaitAsync();
        var w4 = p4.SlotWaiter!;
        Assert.True(w4.TrySpinMark());
        Elsewhere(() => r4.ResolveError(new TestFailure("boom")));
        Assert.False(me.HasRemoteWork);
        Assert.True(w4.SpinResolved);
        w4.CompleteSpun();
        Assert.Equal("boom", (await Assert.ThrowsAsync<TestFailure>(async () => await t4)).Message);

        // A use completed on its own domain is not marked, and a resolved promise keeps no slot waiter.
        var (p5, r5) = Promise.Create<int>();
        var t5 = p5.AwaitAsync();
        var w5 = p5.SlotWaiter!;
        r5.Resolve(55);
        Assert.Null(p5.SlotWaiter);
        Assert.False(w5.TrySpinMark());
        Assert.Equal(55, await t5);

        static void Elsewhere(Action action)
        {
            var thread = new Thread(() => action());
            thread.Start();
            thread.Join();
        }
    });
}
