using EioSharp.Domains;
using EioSharp.Mock;

namespace EioSharp.Tests.Domains;

public class SysthreadTests
{
    [Fact]
    public void RunsOnADedicatedThreadAndResumesOnTheDomain()
    {
        var r = EioMain.Run(async env =>
        {
            var me = Domain.Current;
            int myThread = Environment.CurrentManagedThreadId;
            var (thread, pool, domain) = await Systhread.RunAsync(() =>
                (Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread, Domain.Current));
            return (myThread, thread, pool, domain, same: ReferenceEquals(me, Domain.Current), back: Environment.CurrentManagedThreadId);
        });
        Assert.NotEqual(r.myThread, r.thread);
        Assert.False(r.pool);
        Assert.Null(r.domain);
        Assert.True(r.same);
        Assert.Equal(r.myThread, r.back);
    }

    [Fact]
    public void OtherFibersRunWhileTheCallBlocks()
    {
        var log = EioMain.Run(async env =>
        {
            var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
            using var release = new ManualResetEventSlim();
            await Fiber.BothAsync(
                async () =>
                {
                    await Systhread.RunAsync(() => release.Wait());
                    events.Enqueue("blocking call returned");
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    events.Enqueue("other fiber ran");
                    release.Set();
                });
            return string.Join(", ", events);
        });
        Assert.Equal("other fiber ran, blocking call returned", log);
    }

    [Fact]
    public void ExceptionsPropagate()
    {
        var ex = Assert.Throws<IOException>(() => EioMain.Run(async env =>
        {
            await Systhread.RunAsync<int>(() => throw new IOException("disk"));
        }));
        Assert.Equal("disk", ex.Message);
    }

    [Fact]
    public void CancelledFiberWaitsForTheCallAndGetsItsResult()
    {
        var log = EioMain.Run(async env =>
        {
            var events = new List<string>();
            using var release = new ManualResetEventSlim();
            try
            {
                await Cancel.SubAsync(async ctx =>
                {
                    await Fiber.BothAsync(
                        async () =>
                        {
                            int v = await Systhread.RunAsync(() => { release.Wait(); return 7; });
                            events.Add($"call returned {v}");
                            await Fiber.YieldAsync();
                        },
                        async () =>
                        {
                            await Fiber.YieldAsync();
                            ctx.Cancel(new TimeoutException("stop"));
                            events.Add("cancelled");
                            release.Set();
                        });
                });
            }
            catch (CancelledException)
            {
                events.Add("CancelledException");
            }

            return string.Join(", ", events);
        });
        Assert.Equal("cancelled, call returned 7, CancelledException", log);
    }

    [Fact]
    public void TokenOverloadStopsTheCall()
    {
        var outcome = EioMain.Run(async env =>
        {
            try
            {
                await env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(20), () =>
                    Systhread.RunAsync(token =>
                    {
                        token.WaitHandle.WaitOne();
                        token.ThrowIfCancellationRequested();
                        return 0;
                    }));
                return "returned";
            }
            catch (TimeoutException)
            {
                return "timed out";
            }
        });
        Assert.Equal("timed out", outcome);
    }

    [Fact]
    public void MockBackendDoesNotReportADeadlockWhileACallRuns()
    {
        var t = MockMain.Trace(async env =>
        {
            int v = await Systhread.RunAsync(() => { Thread.Sleep(30); return 5; });
            TraceLog.Line($"got {v}");
        });
        Assert.Equal("+got 5\n", t);
    }

    [Fact]
    public void ManyConcurrentCallsAreBoundedByMaxThreads()
    {
        int sum = EioMain.Run(async env =>
        {
            var results = await Fiber.MapAsync(Enumerable.Range(1, 200).ToArray(), i => Systhread.RunAsync(() => { Thread.Sleep(1); return i; }));
            Assert.InRange(Systhread.ThreadCount, 1, Systhread.MaxThreads);
            return results.Sum();
        });
        Assert.Equal(200 * 201 / 2, sum);
    }
}
