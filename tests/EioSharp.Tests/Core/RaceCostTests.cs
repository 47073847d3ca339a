namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (session 12): <see cref="Fiber.AwaitCancelAsync"/> as a fiber-aware awaitable over a pooled waiter, and a
/// domain's run queue kept for the next domain on the same thread.</summary>
public class RaceCostTests
{
    private static int s_count;

    // Awaited directly, in a fiber, as a ValueTask and as a Task: each way throws a CancelledException carrying the
    // context's reason, and the fiber's own cleanup runs. Each await of the one awaitable is a new wait.
    [Fact]
    public void AwaitCancelThrowsTheCancellationEveryWayItIsAwaited() => EioMain.Run(async _ =>
    {
        var reason = new InvalidOperationException("stop");
        var seen = new List<string>();
        await Cancel.SubAsync(async ctx =>
        {
            var awaitable = Fiber.AwaitCancelAsync();
            await Fiber.AllAsync(
            [
                async () =>
                {
                    try
                    {
                        await awaitable;
                    }
                    catch (CancelledException e)
                    {
                        seen.Add($"direct:{ReferenceEquals(e.Reason, reason)}");
                    }
                    finally
                    {
                        seen.Add("cleanup");
                    }
                },
                async () =>
                {
                    try
                    {
                        await (ValueTask)Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException e)
                    {
                        seen.Add($"valuetask:{ReferenceEquals(e.Reason, reason)}");
                    }
                },
                async () =>
                {
                    Task t = Fiber.AwaitCancelAsync();
                    try
                    {
                        await t;
                    }
                    catch (CancelledException e)
                    {
                        seen.Add($"task:{ReferenceEquals(e.Reason, reason)}:{t.Status}");
                    }
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    ctx.Cancel(reason);
                },
            ]);

            // Already cancelled: the same awaitable, awaited again, throws at once (a new wait, failing as it attaches).
            var again = await Assert.ThrowsAsync<CancelledException>(async () => await awaitable);
            seen.Add($"again:{ReferenceEquals(again.Reason, reason)}");
        });
        Assert.Equal(["direct:True", "cleanup", "valuetask:True", "task:True:Canceled", "again:True"], seen);
    });

    [Fact]
    public void ADefaultCancelAwaitableFailsClearly() => EioMain.Run(async _ =>
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await default(Fiber.CancelAwaitable));
        Assert.Contains("AwaitCancelAsync", e.Message);
    });

    // A domain's run queue grows with the number of fibers queued at once; the next domain on the same thread reuses the
    // finished one's array instead of growing a new one (10,000 queued forks grow it by about 78 B a fork). On a fresh
    // thread, the second of two identical runs therefore allocates at least 48 B a fork less than the first (on the base
    // build they allocated the same).
    [Fact]
    public void ASecondDomainOnAThreadReusesTheRunQueue()
    {
        const int Forks = 10_000;
        long first = 0, second = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                first = MeasureRun(Forks);
                second = AllocationMeter.Measure(() => MeasureRun(Forks)); // every later run reuses: the fewest of them
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        });
        thread.Start();
        thread.Join();
        Assert.Null(failure);
        Assert.True(first - second >= Forks * 48L, $"first run: {first / (double)Forks} B a fork, second: {second / (double)Forks} B a fork");
    }

    private static long MeasureRun(int forks)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        EioMain.Run(_ => Switch.RunAsync(sw =>
        {
            for (int i = 0; i < forks; i++)
            {
                Fiber.Fork(sw, YieldOnceBody);
            }

            return Task.CompletedTask;
        }));
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static async Task YieldOnceBody()
    {
        await Fiber.YieldAsync();
        s_count++;
    }
}
