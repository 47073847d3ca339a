using EioSharp.Sync;
using EioSharp.Tracing;

namespace EioSharp.Tests.Core;

/// <summary>Pooled waiters (issue 20): a suspension reuses a waiter, and the ValueTask of a finished use cannot touch the next use.</summary>
public class WaiterReuseTests
{
    // The classic ValueTask misuse: awaiting a ValueTask a second time after its waiter was consumed and reused. The stale
    // token is rejected (InvalidOperationException), the new use is neither resumed nor robbed of its result, and a
    // completion attempt on a finished use does nothing.
    [Fact]
    public void S14_StaleTokenOfAReusedWaiterIsRejected() => EioMain.Run(async _ =>
    {
        var domain = Domain.Current!;
        var first = Waiter.Rent(domain, TraceReason.Other);
        var firstTask = first.VoidTask;
        short firstVersion = first.Version;
        Assert.True(first.TryComplete(true));
        Assert.False(first.TryComplete(true)); // one winner per use
        Assert.True(firstTask.IsCompleted);
        firstTask.GetAwaiter().GetResult(); // consumes the use: the waiter goes back to the pool

        var second = Waiter.Rent(domain, TraceReason.Other);
        Assert.Same(first, second); // reused, not reallocated
        var secondTask = second.VoidTask;
        Assert.NotEqual(firstVersion, second.Version);

        // The stale ValueTask: every use of it throws, and it does not resume or complete the new use.
        Assert.Throws<InvalidOperationException>(() => firstTask.IsCompleted);
        Assert.Throws<InvalidOperationException>(() => firstTask.GetAwaiter().GetResult());
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await firstTask);
        Assert.False(secondTask.IsCompleted);
        Assert.False(second.IsDone);

        // The new use still completes exactly once, with its own result.
        Assert.True(second.TryComplete(true));
        Assert.False(second.TryComplete(true));
        await secondTask;
        Assert.Throws<InvalidOperationException>(() => secondTask.GetAwaiter().GetResult()); // consumed twice
    });

    // A wake-up on the waiter's own domain queues the waiter itself (issue 20, h186: its continuation, state and frame stay
    // in it until the run queue takes them). A use consumed before that item runs (a misuse: GetResult while awaited) must
    // not send the waiter back to the pool, or the item would run a later use's continuation (or a cleared one): the item
    // still runs this use's continuation, exactly once, and the next rent gets another waiter.
    [Fact]
    public void S14_AQueuedWakeUpRunsItsOwnUsesContinuationWhenTheUseIsConsumedFirst() => EioMain.Run(async _ =>
    {
        var domain = Domain.Current!;
        var w = Waiter.Rent(domain, TraceReason.Other);
        var vt = w.VoidTask;
        int ran = 0;
        vt.GetAwaiter().OnCompleted(() => ran++);
        Assert.True(w.TryCompleteTaken(true)); // on the domain: the wake-up is queued, not run
        Assert.Equal(0, ran);
        vt.GetAwaiter().GetResult(); // the misuse: consumed while its continuation is queued

        var next = Waiter.Rent(domain, TraceReason.Other);
        Assert.NotSame(w, next); // not recycled while its wake-up is queued
        Assert.True(next.TryComplete(true));
        next.VoidTask.GetAwaiter().GetResult();

        await Fiber.YieldAsync(); // the queued wake-up runs in this round
        Assert.Equal(1, ran);
        Assert.Throws<InvalidOperationException>(() => vt.GetAwaiter().GetResult()); // consumed once already
    });

    // Same misuse through a public API: a second await of a queue take's ValueTask after the fiber took another item
    // (which reused the waiter) throws instead of returning the other item again.
    [Fact]
    public void S14_SecondAwaitOfATakeThrowsAndLosesNoItem() => EioMain.Run(async _ =>
    {
        var q = new AsyncQueue<int>(0);
        var taken = new List<int>();
        await Switch.RunAsync(async sw =>
        {
            var stale = q.TakeAsync(); // suspends on a pooled waiter: nothing has been added yet
            Fiber.Fork(sw, async () =>
            {
                for (int i = 1; i <= 3; i++)
                {
                    await q.AddAsync(i);
                }
            });
            taken.Add(await stale);
            var next = q.TakeAsync();
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await stale);
            taken.Add(await next);
            taken.Add(await q.TakeAsync());
        });
        Assert.Equal([1, 2, 3], taken);
    });

    // Awaiting one pending waiter from two places at once is refused (the second continuation would be lost).
    [Fact]
    public void S14_SecondConcurrentAwaitIsRefused() => EioMain.Run(async _ =>
    {
        var (p, r) = Promise.Create<int>();
        await Switch.RunAsync(async sw =>
        {
            var vt = p.AwaitAsync();
            var t1 = vt.AsTask();
            Assert.Throws<InvalidOperationException>(() => { var again = vt.AsTask(); GC.KeepAlive(again); });
            r.Resolve(7);
            Assert.Equal(7, await t1);
        });
    });

    // Steady state: a rendezvous queue between two fibers suspends both sides on every item and allocates nothing per
    // item once the waiters are pooled (it allocated about 116 B per item with a waiter object per suspension).
    [Fact]
    public void SuspensionsOnAQueueAllocateNothingInSteadyState() => EioMain.Run(async _ =>
    {
        const int Items = 20_000;
        const long Total = (AllocationMeter.DefaultRounds + 1L) * Items;
        var q = new AsyncQueue<int>(0);
        long sum = 0;
        long allocated = 0;
        await Fiber.BothAsync(
            async () =>
            {
                for (int i = 0; i < Total; i++)
                {
                    await q.AddAsync(i);
                }
            },
            async () =>
            {
                // The fewest bytes of Items takes over warm rounds (round 0 fills the pools and tiers the code up).
                var meter = new AllocationMeter();
                while (meter.NextRound())
                {
                    meter.Start();
                    for (int i = 0; i < Items; i++)
                    {
                        sum += await q.TakeAsync();
                    }

                    meter.Stop();
                }

                allocated = meter.Fewest;
            });
        Assert.Equal(Total * (Total - 1) / 2, sum);
        Assert.True(allocated < Items, $"{allocated} bytes allocated for {Items} items");
    });

    // h175: the continuation's hand-over is an int (none -> registered -> completed). A continuation registered before the
    // completion is posted by the completion (off the owning domain's path, and on it: TryCompleteTaken), one registered
    // after it by the registration itself; each runs once, with its own state, and a second registration of the same use
    // throws without touching the first one's continuation or state.
    [Fact]
    public void S14_AContinuationRunsOnceWhetherRegisteredBeforeOrAfterTheCompletion() => EioMain.Run(async _ =>
    {
        var domain = Domain.Current!;
        var runs = new List<string>();
        Action<object?> record = s => runs.Add((string)s!);
        foreach (var how in new[] { "before", "before-taken", "after" })
        {
            var w = Waiter.Rent(domain, TraceReason.Other);
            System.Threading.Tasks.Sources.IValueTaskSource source = w;
            short token = w.Version;
            if (how != "after")
            {
                source.OnCompleted(record, how, token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags.None);
                Assert.Throws<InvalidOperationException>(() => source.OnCompleted(
                    record, "second " + how, token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags.None));
                Assert.Equal(System.Threading.Tasks.Sources.ValueTaskSourceStatus.Pending, source.GetStatus(token));
            }

            Assert.True(how == "before-taken" ? w.TryCompleteTaken(true) : w.TryComplete(true));
            Assert.False(w.TryComplete(true));
            Assert.Equal(System.Threading.Tasks.Sources.ValueTaskSourceStatus.Succeeded, source.GetStatus(token));
            if (how == "after")
            {
                source.OnCompleted(record, how, token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags.None);
            }

            await Fiber.YieldAsync(); // the posted continuation runs before the yield's
            await Fiber.YieldAsync();
            source.GetResult(token);
            Assert.Throws<InvalidOperationException>(() => source.GetResult(token));
        }

        Assert.Equal(new[] { "before", "before-taken", "after" }, runs);
    });

    // h178: a waiter's _signal is written only on its domain's thread. A completion on another thread posts the signal to
    // the domain (before or after the awaiter's registration there), and a registration on another thread posts the
    // registration (before or after the completion): in each order the continuation runs once, on the domain, with its
    // own state, and the use reads as completed only once the domain has taken the step.
    [Fact]
    public void S14_CrossThreadCompletionOrRegistrationRunsTheContinuationOnceOnTheDomain() => EioMain.Run(async _ =>
    {
        var domain = Domain.Current!;
        var runs = new List<string>();
        var threads = new List<bool>();
        Action<object?> record = s =>
        {
            runs.Add((string)s!);
            threads.Add(domain.IsCurrent);
        };
        var none = System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags.None;

        // On a thread of its own (a task waited for could be run inline, on the domain's thread).
        static void OnOtherThread(Action action)
        {
            var t = new Thread(() => action());
            t.Start();
            t.Join();
        }

        foreach (var how in new[] { "remote-completion-first", "registered-then-remote-completion", "remote-registration-first", "completed-then-remote-registration" })
        {
            var w = Waiter.Rent(domain, TraceReason.Other);
            System.Threading.Tasks.Sources.IValueTaskSource source = w;
            short token = w.Version;
            switch (how)
            {
                case "remote-completion-first":
                    bool won = false;
                    OnOtherThread(() => won = w.TryComplete(true));
                    Assert.True(won);
                    Assert.Equal(System.Threading.Tasks.Sources.ValueTaskSourceStatus.Pending, source.GetStatus(token)); // the domain has not signalled yet
                    source.OnCompleted(record, how, token, none);
                    break;
                case "registered-then-remote-completion":
                    source.OnCompleted(record, how, token, none);
                    bool won2 = false;
                    OnOtherThread(() => won2 = w.TryComplete(true));
                    Assert.True(won2);
                    break;
                case "remote-registration-first":
                    OnOtherThread(() => source.OnCompleted(record, how, token, none));
                    Assert.True(w.TryComplete(true));
                    break;
                default:
                    Assert.True(w.TryComplete(true));
                    OnOtherThread(() => source.OnCompleted(record, how, token, none));
                    break;
            }

            Assert.False(w.TryComplete(true));
            for (int i = 0; i < 3; i++)
            {
                await Fiber.YieldAsync(); // the posted step, then the continuation it queues
            }

            Assert.Equal(System.Threading.Tasks.Sources.ValueTaskSourceStatus.Succeeded, source.GetStatus(token));
            source.GetResult(token);
            Assert.Throws<InvalidOperationException>(() => source.GetResult(token));
        }

        Assert.Equal(new[] { "remote-completion-first", "registered-then-remote-completion", "remote-registration-first", "completed-then-remote-registration" }, runs);
        Assert.All(threads, Assert.True);
    });

    // h175: the per-thread pool is a stack in an array: last returned, first rented; bounded by MaxFree (a return past it
    // drops the waiter); a rented slot keeps its reference but is never rented again until a return fills it.
    [Fact]
    public void WaiterPoolIsABoundedStackThatRentsOnlyReturnedWaiters()
    {
        WaiterPool? pool = null;
        Assert.Null(WaiterPool.Rent<QueuedWaiter<int>>(pool));
        var waiters = new QueuedWaiter<int>[WaiterPool.MaxFree + 10];
        for (int i = 0; i < waiters.Length; i++)
        {
            waiters[i] = new QueuedWaiter<int>(null!);
            WaiterPool.Return(ref pool, waiters[i]);
        }

        for (int i = WaiterPool.MaxFree - 1; i >= 0; i--)
        {
            Assert.Same(waiters[i], WaiterPool.Rent<QueuedWaiter<int>>(pool));
        }

        Assert.Null(WaiterPool.Rent<QueuedWaiter<int>>(pool));
        var other = new QueuedWaiter<int>(null!);
        WaiterPool.Return(ref pool, other);
        WaiterPool.Return(ref pool, waiters[5]);
        Assert.Same(waiters[5], WaiterPool.Rent<QueuedWaiter<int>>(pool));
        Assert.Same(other, WaiterPool.Rent<QueuedWaiter<int>>(pool));
        Assert.Null(WaiterPool.Rent<QueuedWaiter<int>>(pool));
    }
}
