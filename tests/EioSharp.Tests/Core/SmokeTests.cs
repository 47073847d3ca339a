using EioSharp.Mock;
using EioSharp.Sync;

namespace EioSharp.Tests.Core;

public class SmokeTests
{
    [Fact]
    public void ForkRunsChildFirstThenParent()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    TraceLog.Line("child start");
                    await Fiber.YieldAsync();
                    TraceLog.Line("child end");
                });
                TraceLog.Line("parent");
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                TraceLog.Line($"parent woke at {env.MonoClock.Now.TotalSeconds}");
            });
        });
        Assert.Equal("""
            +child start
            +parent
            +child end
            +parent woke at 1

            """, t);
    }

    [Fact]
    public void FailureCancelsSibling()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(10));
                    }
                    catch (CancelledException)
                    {
                        TraceLog.Line("sibling cancelled");
                        throw;
                    }
                });
                await Fiber.YieldAsync();
                throw new InvalidOperationException("boom");
            });
        });
        Assert.Equal("""
            +sibling cancelled
            Exception: InvalidOperationException: boom

            """, t);
    }

    [Fact]
    public void QueueAcrossRealScheduler()
    {
        int sum = EioMain.Run(async env =>
        {
            var q = new AsyncQueue<int>(0);
            int total = 0;
            await Fiber.BothAsync(
                async () =>
                {
                    for (int i = 1; i <= 1000; i++)
                    {
                        await q.AddAsync(i);
                    }
                },
                async () =>
                {
                    for (int i = 1; i <= 1000; i++)
                    {
                        total += await q.TakeAsync();
                    }
                });
            await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(5));
            await Task.Delay(1);
            return total;
        });
        Assert.Equal(500500, sum);
    }

    [Fact]
    public void DomainManagerRunsOnAnotherThread()
    {
        var (a, b) = EioMain.Run(async env =>
        {
            int main = Environment.CurrentManagedThreadId;
            int other = await env.DomainManager.RunAsync(async () =>
            {
                await Fiber.YieldAsync();
                return Environment.CurrentManagedThreadId;
            });
            Assert.Equal(main, Environment.CurrentManagedThreadId);
            return (main, other);
        });
        Assert.NotEqual(a, b);
    }
}
