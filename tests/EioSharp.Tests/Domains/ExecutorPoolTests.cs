using EioSharp.Domains;
using EioSharp.Mock;

namespace EioSharp.Tests.Domains;

/// <summary>Eio's executor_pool.md scenarios (mock backend, virtual time) and the same rules on real domains.</summary>
public class ExecutorPoolTests
{
    private static Func<Task<int>> Sleeper(Stdenv env, string name, int ms) => async () =>
    {
        TraceLog.Line($"{name} starts at {env.MonoClock.Now.TotalMilliseconds}");
        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(ms));
        TraceLog.Line($"{name} ends at {env.MonoClock.Now.TotalMilliseconds}");
        return ms;
    };

    [Fact]
    public void S24_TwoLightJobsShareOneWorker()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                var a = pool.SubmitFork(sw, Sleeper(env, "a", 100), 0.6);
                var b = pool.SubmitFork(sw, Sleeper(env, "b", 100), 0.6);
                var c = pool.SubmitFork(sw, Sleeper(env, "c", 100), 0.6);
                TraceLog.Line($"results {await a.AwaitAsync()} {await b.AwaitAsync()} {await c.AwaitAsync()}");
            });
        });
        Assert.Equal("""
            +a starts at 0
            +b starts at 0
            +a ends at 100
            +b ends at 100
            +c starts at 100
            +c ends at 200
            +results 100 100 100

            """, t);
    }

    [Fact]
    public void S24_WeightOneIsExclusive()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                var a = pool.SubmitFork(sw, Sleeper(env, "a", 100), 1.0);
                var b = pool.SubmitFork(sw, Sleeper(env, "b", 100), 0.0);
                await a.AwaitAsync();
                await b.AwaitAsync();
            });
        });
        Assert.Equal("""
            +a starts at 0
            +a ends at 100
            +b starts at 100
            +b ends at 200

            """, t);
    }

    [Fact]
    public void S24_ZeroWeightJobsNeverFillAWorker()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                var ps = Enumerable.Range(0, 3).Select(i => pool.SubmitFork(sw, Sleeper(env, $"j{i}", 50), 0.0)).ToList();
                foreach (var p in ps)
                {
                    await p.AwaitAsync();
                }
            });
        });
        Assert.Equal("""
            +j0 starts at 0
            +j1 starts at 0
            +j2 starts at 0
            +j0 ends at 50
            +j1 ends at 50
            +j2 ends at 50

            """, t);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(-0.1)]
    [InlineData(1.0000001)]
    [InlineData(double.PositiveInfinity)]
    public void S24_InvalidWeightThrows(double weight)
    {
        MockMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pool.SubmitAsync(() => Task.FromResult(1), weight));
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pool.TrySubmitAsync(() => Task.FromResult(1), weight));
                Assert.Throws<ArgumentOutOfRangeException>(() => pool.SubmitFork(sw, () => Task.FromResult(1), weight));
            });
        });
    }

    [Fact]
    public void S24_ConstructorValidatesArguments()
    {
        MockMain.Run(async env =>
        {
            await Switch.RunAsync(sw =>
            {
                Assert.Throws<ArgumentOutOfRangeException>(() => new ExecutorPool(sw, 0, env.DomainManager));
                Assert.Throws<ArgumentOutOfRangeException>(() => new ExecutorPool(sw, 1, env.DomainManager, maxQueued: -1));
                return Task.CompletedTask;
            });
        });
    }

    [Fact]
    public void S24_JobErrorsGoToTheSubmitter()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                var r = await pool.TrySubmitAsync<int>(() => throw new InvalidOperationException("job failed"), 0.5);
                TraceLog.Line(r.ToString());
                var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => pool.SubmitAsync<int>(() => throw new InvalidOperationException("again"), 0.5));
                TraceLog.Line(ex.Message);
                TraceLog.Line((await pool.TrySubmitAsync(() => Task.FromResult(7), 0.5)).ToString());
            });
        });
        Assert.Equal("""
            +Failed(InvalidOperationException: job failed)
            +again
            +Succeeded(7)

            """, t);
    }

    [Fact]
    public void S24_ShutdownCancelsRunningAndPendingJobs()
    {
        var t = MockMain.Trace(async env =>
        {
            Promise<int>? running = null;
            Promise<int>? pending = null;
            await Switch.RunAsync(async outer =>
            {
                await Switch.RunAsync(async sw =>
                {
                    var pool = new ExecutorPool(sw, 1, env.DomainManager);
                    running = pool.SubmitFork(outer, Sleeper(env, "running", 1000), 1.0);
                    pending = pool.SubmitFork(outer, Sleeper(env, "pending", 1000), 1.0);
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(10));
                    TraceLog.Line("pool switch ends");
                }, "pool");
                TraceLog.Line($"pool switch ended at {env.MonoClock.Now.TotalMilliseconds}");
                foreach (var (n, p) in new[] { ("running", running!), ("pending", pending!) })
                {
                    try
                    {
                        await p.AwaitAsync();
                    }
                    catch (CancelledException ex)
                    {
                        TraceLog.Line($"{n}: {MockMain.Describe(ex)}");
                    }
                }
            });
        });
        Assert.Equal("""
            +running starts at 0
            +pool switch ends
            +pool switch ended at 10
            +running: Cancelled: DaemonsStoppedException: All non-daemon fibers finished; stopping daemon fibers.
            +pending: Cancelled: InvalidOperationException: The executor pool has shut down: its switch was cancelled or finished.

            """, t);
    }

    [Fact]
    public void S24_TrySubmitRejectsWhenSaturated()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager, maxQueued: 1);
                var (gate, open) = Promise.Create<bool>();
                var first = pool.SubmitFork(sw, async () => await gate.AwaitAsync() ? 1 : 0, 1.0);
                await Fiber.YieldAsync();
                Fiber.Fork(sw, async () => TraceLog.Line("queued: " + await pool.TrySubmitAsync(() => Task.FromResult(2), 1.0)));
                TraceLog.Line("third: " + await pool.TrySubmitAsync(() => Task.FromResult(3), 1.0));
                TraceLog.Line($"queued count {pool.QueuedCount}");
                open.Resolve(true);
                TraceLog.Line($"first: {await first.AwaitAsync()}");
            });
        });
        Assert.Equal("""
            +third: Rejected
            +queued count 1
            +first: 1
            +queued: Succeeded(2)

            """, t);
    }

    // The same rules on real domains, shown by ordering (never by timing thresholds).

    [Fact]
    public void S24_RealDomains_TwoLightJobsShareOneWorker()
    {
        // Job a waits for a promise that only job b resolves: this finishes only if both run on the single worker at once.
        var ids = EioMain.Run(async env =>
        {
            return await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                var (gate, open) = Promise.Create<int>();
                var a = pool.SubmitFork(sw, async () => { await gate.AwaitAsync(); return Environment.CurrentManagedThreadId; }, 0.6);
                var b = pool.SubmitFork(sw, () => { open.Resolve(1); return Task.FromResult(Environment.CurrentManagedThreadId); }, 0.6);
                return (Main: Environment.CurrentManagedThreadId, A: await a.AwaitAsync(), B: await b.AwaitAsync());
            });
        });
        Assert.Equal(ids.A, ids.B);
        Assert.NotEqual(ids.Main, ids.A);
    }

    [Fact]
    public void S24_RealDomains_WeightOneIsExclusive()
    {
        var log = EioMain.Run(async env =>
        {
            var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager, maxQueued: 0);
                var (gate, open) = Promise.Create<bool>();
                var (started, markStarted) = Promise.Create<bool>();
                var a = pool.SubmitFork(sw, async () =>
                {
                    events.Enqueue("a start");
                    markStarted.Resolve(true);
                    await gate.AwaitAsync();
                    for (int i = 0; i < 100; i++)
                    {
                        await Fiber.YieldAsync(); // give a concurrent job every chance to run
                    }

                    events.Enqueue("a end");
                    return 1;
                }, 1.0);
                await started.AwaitAsync();

                // The worker is at full load, so it is not waiting for a job: a fail-fast submit is rejected.
                var probe = await pool.TrySubmitAsync(() => { events.Enqueue("probe ran"); return Task.FromResult(0); }, 0.0);
                events.Enqueue("probe " + probe.Status);
                var b = pool.SubmitFork(sw, () => { events.Enqueue("b start"); return Task.FromResult(2); }, 1.0);
                open.Resolve(true);
                await a.AwaitAsync();
                await b.AwaitAsync();
            });
            return string.Join(", ", events);
        });
        Assert.Equal("a start, probe Rejected, a end, b start", log);
    }

    [Fact]
    public void S24_RealDomains_ShutdownCancelsRunningJob()
    {
        var outcome = EioMain.Run(async env =>
        {
            Promise<int>? running = null;
            await Switch.RunAsync(async outer =>
            {
                await Switch.RunAsync(async sw =>
                {
                    var pool = new ExecutorPool(sw, 2, env.DomainManager);
                    var (started, markStarted) = Promise.Create<bool>();
                    running = pool.SubmitFork(outer, async () =>
                    {
                        markStarted.Resolve(true);
                        await Fiber.AwaitCancelAsync();
                        return 0;
                    }, 1.0);
                    await started.AwaitAsync();
                });
            });
            try
            {
                await running!.AwaitAsync();
                return "completed";
            }
            catch (CancelledException)
            {
                return "cancelled";
            }
        });
        Assert.Equal("cancelled", outcome);
    }

    [Fact]
    public void S24_RealDomains_SubmitterCancellationCancelsTheJob()
    {
        var log = EioMain.Run(async env =>
        {
            var events = new System.Collections.Concurrent.ConcurrentQueue<string>();
            await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 1, env.DomainManager);
                var (started, markStarted) = Promise.Create<bool>();
                try
                {
                    await Cancel.SubAsync(async ctx =>
                    {
                        Fiber.Fork(sw, async () =>
                        {
                            await started.AwaitAsync();
                            ctx.Cancel(new TimeoutException("give up"));
                        });
                        return await pool.SubmitAsync(async () =>
                        {
                            markStarted.Resolve(true);
                            try
                            {
                                await Fiber.AwaitCancelAsync();
                            }
                            catch (CancelledException ex)
                            {
                                events.Enqueue("job cancelled: " + ex.Reason.Message);
                                throw;
                            }

                            return 0;
                        }, 1.0);
                    });
                }
                catch (CancelledException ex)
                {
                    events.Enqueue("submitter cancelled: " + ex.Reason.Message);
                }

                // The worker is free again.
                events.Enqueue("next: " + await pool.SubmitAsync(() => Task.FromResult(5), 1.0));
            });
            return string.Join(", ", events);
        });
        Assert.Equal("job cancelled: give up, submitter cancelled: give up, next: 5", log);
    }

    [Fact]
    public void S24_RealDomains_ManyJobsFromManyFibers()
    {
        long sum = EioMain.Run(async env =>
        {
            return await Switch.RunAsync(async sw =>
            {
                var pool = new ExecutorPool(sw, 2, env.DomainManager);
                var results = await Fiber.MapAsync(Enumerable.Range(1, 2000).ToArray(), i => pool.SubmitAsync(() => Task.FromResult((long)i), 0.1), maxFibers: 64);
                return results.Sum();
            });
        });
        Assert.Equal(2000L * 2001 / 2, sum);
    }
}
