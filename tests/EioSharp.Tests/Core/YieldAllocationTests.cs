using System.Runtime.CompilerServices;
using EioSharp.Tracing;

namespace EioSharp.Tests.Core;

/// <summary>Issue 20: a yield allocates nothing, and a forked child that suspends costs no per-fiber delegate in the steady state.</summary>
public class YieldAllocationTests
{
    private static readonly AsyncLocal<int> s_flowed = new();

    private static int s_count;

    // An async method's first suspension on a custom awaiter costs its MoveNextAction delegate (64 B) on top of the method's
    // box; Fiber.YieldAsync's awaiter is a ValueTaskAwaiter, which takes the box itself. So a method that yields once
    // costs no more than one that suspends once on a pooled waiter (completed from the run queue, so it also resumes in
    // the next round): its box, and the caller's await of its task (the caller being fiber code, a synchronization-context
    // continuation).
    [Fact]
    public void AFirstYieldCostsNoMoreThanAFirstSuspensionOnAPooledWaiter() => EioMain.Run(async _ =>
    {
        const int Calls = 10_000;
        var domain = Domain.Current!;
        // The fewest bytes of each over warm rounds (round 0 tiers the code up and fills the pools).
        var yields = new AllocationMeter();
        var waits = new AllocationMeter();
        while (yields.NextRound() & waits.NextRound())
        {
            yields.Start();
            for (int i = 0; i < Calls; i++)
            {
                await YieldOnce();
            }

            yields.Stop();

            waits.Start();
            for (int i = 0; i < Calls; i++)
            {
                await WaitOnce(domain);
            }

            waits.Stop();
        }

        long yieldBytes = yields.Fewest, waiterBytes = waits.Fewest;

        Assert.True(
            yieldBytes <= waiterBytes + (Calls * 8L),
            $"{yieldBytes / Calls} B per call of a method that yields once vs {waiterBytes / Calls} B for one that suspends once on a pooled waiter");
    });

    // Each GetAwaiter of the awaitable is a new yield (the awaitable may be awaited twice), each goes to the back of the run
    // queue, and a bare awaiter.OnCompleted(Action) (not an async method) flows the execution context.
    [Fact]
    public void EveryAwaitOfTheAwaitableYieldsAndOnCompletedFlowsTheContext() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Switch.RunAsync(async sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                log.Add("other 1");
                await Fiber.YieldAsync();
                log.Add("other 2");
                await Fiber.YieldAsync();
                log.Add("other 3");
            });

            var y = Fiber.YieldAsync();
            log.Add("main 1");
            await y;
            log.Add("main 2");
            await y;
            log.Add("main 3");
        });
        Assert.Equal(["other 1", "main 1", "other 2", "main 2", "other 3", "main 3"], log);

        s_flowed.Value = 42;
        int seen = -1;
        var done = Promise.Create<bool>();
        var awaiter = Fiber.YieldAsync().GetAwaiter();
        Assert.False(awaiter.IsCompleted);
        s_flowed.Value = 43; // captured when OnCompleted is called, not when the awaiter was made
        awaiter.OnCompleted(() =>
        {
            seen = s_flowed.Value;
            done.Resolver.Resolve(true);
        });
        s_flowed.Value = 0;
        await done.Promise.AwaitAsync();
        Assert.Equal(43, seen);
    });

    // A forked child that suspends: in the steady state (the third round of the same forks), its end reuses a pooled
    // continuation instead of a delegate bound to the fiber, and its yield needs no MoveNextAction delegate. So a fork of
    // a yielding child costs what a fork of a child that finishes at once costs, plus the child's async box (measured
    // apart) and the synchronization-context continuation that .NET makes for the end's registration (40 B); before, also
    // the two delegates (64 B each).
    [Fact]
    public void AForkOfAYieldingChildNeedsNoDelegatePerFiberInSteadyState() => EioMain.Run(async _ =>
    {
        const int Forks = 1000;
        var (plain, yielding, box) = await MeasureForksAsync(Forks);
        long extra = yielding - plain - box;
        Assert.True(
            extra <= Forks * 64L,
            $"a fork of a yielding child: {yielding / Forks} B, of a child that finishes at once: {plain / Forks} B, the child's box: {box / Forks} B");
    });

    /// <summary>Bytes allocated on this thread (the fewest of warm rounds, in fiber code) by <paramref name="forks"/> forks of a
    /// child that finishes at once, by as many forks of a child that yields once, and by as many plain calls of that child
    /// (its box alone).</summary>
    internal static async Task<(long Plain, long Yielding, long Box)> MeasureForksAsync(int forks)
    {
        Func<Task> plainBody = static () =>
        {
            s_count++;
            return Task.CompletedTask;
        };
        Func<Task> yieldingBody = YieldOnceBody;
        var tasks = new Task[forks];
        var plain = new AllocationMeter();
        var yielding = new AllocationMeter();
        var box = new AllocationMeter();
        while (plain.NextRound() & yielding.NextRound() & box.NextRound()) // round 0 warms up; then the fewest of each
        {
            await Switch.RunAsync(sw =>
            {
                plain.Start();
                for (int i = 0; i < forks; i++)
                {
                    Fiber.Fork(sw, plainBody);
                }

                plain.Stop();
                return Task.CompletedTask;
            });
            await Switch.RunAsync(sw =>
            {
                yielding.Start();
                for (int i = 0; i < forks; i++)
                {
                    Fiber.Fork(sw, yieldingBody);
                }

                yielding.Stop();
                return Task.CompletedTask;
            });

            box.Start();
            for (int i = 0; i < forks; i++)
            {
                tasks[i] = YieldOnceBody(); // the box alone: plain async calls in this fiber
            }

            box.Stop();
            foreach (var t in tasks)
            {
                await t;
            }
        }

        return (plain.Fewest, yielding.Fewest, box.Fewest);
    }

    [Fact]
    public void APostToTheDomainAllocatesNothing() => EioMain.Run(async _ =>
    {
        const int Posts = 10_000;
        var context = SynchronizationContext.Current!;
        int ran = 0;
        SendOrPostCallback callback = static s => ((StrongBox<int>)s!).Value++;
        var box = new StrongBox<int>();
        var meter = new AllocationMeter(); // round 0 makes the adapter and grows the run queue; then the fewest bytes
        while (meter.NextRound())
        {
            int round = meter.Round + 1;
            meter.Start();
            for (int i = 0; i < Posts; i++)
            {
                context.Post(callback, box);
            }

            meter.Stop();
            ran = 0;
            while (box.Value < round * Posts && ran++ < 100)
            {
                await Fiber.YieldAsync(); // the posts run in the next round, in order, each with its state
            }

            Assert.Equal(round * Posts, box.Value);
        }

        long allocated = meter.Fewest;

        Assert.True(allocated < Posts, $"{allocated} bytes allocated for {Posts} posts");
    });

    private static async Task YieldOnce() => await Fiber.YieldAsync();

    private static async Task YieldOnceBody()
    {
        await Fiber.YieldAsync();
        s_count++;
    }

    private static async Task WaitOnce(Domain domain)
    {
        var w = Waiter.Rent(domain, TraceReason.Other);
        domain.Enqueue(static s => ((Waiter)s!).TryComplete(true), w);
        await w.VoidTask;
    }
}
