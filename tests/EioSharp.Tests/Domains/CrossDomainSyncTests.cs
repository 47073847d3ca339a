using EioSharp.Sync;
using Xunit.Abstractions;

namespace EioSharp.Tests.Domains;

/// <summary>S14 across domains: cancellation and completion race on one atomic winner; waiters resume on their own domain.</summary>
public class CrossDomainSyncTests(ITestOutputHelper output)
{
    [Fact]
    public void S14_MillionItemsThroughAQueueBetweenDomainsWithCancelledTakers() => Transfer(1_000_000, capacity: 64);

    [Fact]
    public void S14_RendezvousQueueBetweenDomainsWithCancelledTakers() => Transfer(100_000, capacity: 0);

    /// <summary>Ten million items; with <c>EIOSHARP_STRESS_SECONDS</c> set (CI's bounded stress run), rounds of a million
    /// items until that time has passed (at least one round).</summary>
    [Fact]
    [Trait("Category", "Stress")]
    public void S14_TenMillionItemsStress()
    {
        string? seconds = Environment.GetEnvironmentVariable("EIOSHARP_STRESS_SECONDS");
        if (seconds is null)
        {
            Transfer(10_000_000, capacity: 16);
            return;
        }

        var budget = TimeSpan.FromSeconds(double.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int rounds = 0;
        do
        {
            Transfer(1_000_000, capacity: 16);
            rounds++;
        }
        while (clock.Elapsed < budget);
        output.WriteLine($"{rounds} round(s) of 1,000,000 items in {clock.Elapsed.TotalSeconds:F1}s");
    }

    /// <summary>Producers on the main domain, takers on two other domains (two fibers each); some takes are cancelled
    /// right after they suspend (after a random spin, so the producer often completes them in between) and some run
    /// under a short timeout. Every item must be taken exactly once.</summary>
    private void Transfer(int n, int capacity)
    {
        var seen = new int[n + 1];
        long taken = 0, sum = 0, cancelledTakes = 0, completedDespiteCancel = 0, wrongDomain = 0;
        EioMain.Run(async env =>
        {
            var q = new AsyncQueue<int>(capacity);
            await Fiber.BothAsync(
                async () =>
                {
                    int next = 0;
                    await Fiber.AllAsync(Enumerable.Range(0, 2).Select(_ => (Func<Task>)(async () =>
                    {
                        int i;
                        while ((i = ++next) <= n)
                        {
                            await q.AddAsync(i);
                        }
                    })));
                    q.Close();
                },
                async () =>
                {
                    await Fiber.AllAsync(Enumerable.Range(0, 2).Select(d => (Func<Task>)(() => env.DomainManager.RunAsync(async () =>
                    {
                        var me = Domain.Current;
                        await Fiber.AllAsync(Enumerable.Range(0, 2).Select(f => (Func<Task>)(async () =>
                        {
                            var rnd = new Random((d * 2) + f);
                            long localSum = 0, localTaken = 0;
                            while (true)
                            {
                                int v;
                                try
                                {
                                    int mode = rnd.Next(16);
                                    if (mode == 0)
                                    {
                                        v = await Cancel.SubAsync(async ctx =>
                                        {
                                            var t = q.TakeAsync();
                                            if (!t.IsCompleted)
                                            {
                                                Thread.SpinWait(rnd.Next(64));
                                                ctx.Cancel(new TimeoutException("taker gives up"));
                                                if (t.IsCompleted && !t.IsFaulted && !t.IsCanceled)
                                                {
                                                    Interlocked.Increment(ref completedDespiteCancel);
                                                }
                                            }

                                            return await t;
                                        });
                                    }
                                    else if (mode == 1)
                                    {
                                        v = await env.MonoClock.WithTimeoutAsync(TimeSpan.FromTicks(rnd.Next(1, 2000)), async () => await q.TakeAsync());
                                    }
                                    else
                                    {
                                        v = await q.TakeAsync();
                                    }
                                }
                                catch (StreamClosedException)
                                {
                                    break;
                                }
                                catch (Exception ex) when (ex is CancelledException or TimeoutException && !Fiber.IsCancelled)
                                {
                                    Interlocked.Increment(ref cancelledTakes);
                                    continue;
                                }

                                if (!ReferenceEquals(Domain.Current, me))
                                {
                                    Interlocked.Increment(ref wrongDomain);
                                }

                                Interlocked.Increment(ref seen[v]);
                                localSum += v;
                                localTaken++;
                            }

                            Interlocked.Add(ref sum, localSum);
                            Interlocked.Add(ref taken, localTaken);
                        })));
                    }, $"taker-{d}"))));
                });
        });
        output.WriteLine($"n={n} capacity={capacity}: cancelled takes {cancelledTakes}, completed although cancelled {completedDespiteCancel}");
        Assert.Equal(0, wrongDomain);
        Assert.Equal(n, taken);
        Assert.Equal((long)n * (n + 1) / 2, sum);
        for (int i = 1; i <= n; i++)
        {
            if (seen[i] != 1)
            {
                Assert.Fail($"item {i} was taken {seen[i]} times");
            }
        }
    }

    [Fact]
    public void S14_PromisesResolvedOnOneDomainAwaitedAndCancelledOnAnother() => PromisesAcrossDomains(10_000);

    /// <summary><see cref="S14_PromisesResolvedOnOneDomainAwaitedAndCancelledOnAnother"/> in rounds of 20,000 promises until
    /// <c>EIOSHARP_STRESS_SECONDS</c> have passed (one round without it): a resolver on another domain posts the slot
    /// waiter's wake-up without touching the waiter, and the awaiting domain completes it unless its cancellation won
    /// (§209).</summary>
    [Fact]
    [Trait("Category", "Stress")]
    public void S14_PromisesAcrossDomainsWithCancellationStress()
    {
        string? seconds = Environment.GetEnvironmentVariable("EIOSHARP_STRESS_SECONDS");
        var budget = TimeSpan.FromSeconds(seconds is null ? 0 : double.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int rounds = 0;
        do
        {
            PromisesAcrossDomains(20_000);
            rounds++;
        }
        while (clock.Elapsed < budget);
        output.WriteLine($"{rounds} round(s) of 20,000 promises in {clock.Elapsed.TotalSeconds:F1}s");
    }

    /// <summary>A promise's slot waiter resolved from another thread before its fiber awaits the value task (§209: the
    /// resolver posts the wake-up and the awaiting domain completes the waiter with no continuation registered yet; the
    /// later await finds it completed), and again with the fiber suspended, each on the awaiting domain.</summary>
    [Fact]
    public void SlotWaiterResolvedFromAnotherThreadBeforeAndAfterItsAwait() => EioMain.Run(async _ =>
    {
        var me = Domain.Current;
        var (p, r) = Promise.Create<int>();
        var t = p.AwaitAsync();
        Assert.False(t.IsCompleted);
        var resolver = new Thread(() => r.Resolve(7));
        resolver.Start();
        resolver.Join();
        for (int i = 0; i < 100 && !t.IsCompleted; i++)
        {
            await Fiber.YieldAsync(); // the posted completion runs in a round of its own
        }

        Assert.True(t.IsCompleted);
        Assert.Equal(7, await t);

        var (p2, r2) = Promise.Create<string>();
        var later = new Thread(() =>
        {
            Thread.Sleep(20);
            r2.Resolve("x");
        });
        later.Start();
        Assert.Equal("x", await p2.AwaitAsync());
        Assert.Same(me, Domain.Current);
        later.Join();
    });

    private void PromisesAcrossDomains(int n)
    {
        long values = 0, cancels = 0, wrong = 0;
        int progress = -1;
        EioMain.Run(async env =>
        {
            var pairs = Enumerable.Range(0, n).Select(_ => Promise.Create<int>()).ToArray();
            await Fiber.BothAsync(
                () => env.DomainManager.RunAsync(async () =>
                {
                    for (int i = 0; i < n; i++)
                    {
                        while (Volatile.Read(ref progress) < i)
                        {
                            await Fiber.YieldAsync(); // resolve only once the awaiter is about to wait: a real race
                        }

                        Thread.SpinWait(i % 50);
                        pairs[i].Resolver.Resolve(i);
                    }
                }),
                () => env.DomainManager.RunAsync(async () =>
                {
                    var me = Domain.Current;
                    var rnd = new Random(1);
                    for (int i = 0; i < n; i++)
                    {
                        try
                        {
                            int v = await Cancel.SubAsync(async ctx =>
                            {
                                Volatile.Write(ref progress, i);
                                var t = pairs[i].Promise.AwaitAsync();
                                if (!t.IsCompleted && rnd.Next(2) == 0)
                                {
                                    Thread.SpinWait(rnd.Next(32));
                                    ctx.Cancel(new TimeoutException("no"));
                                }

                                return await t;
                            });
                            Assert.Equal(i, v);
                            values++;
                        }
                        catch (CancelledException) when (!Fiber.IsCancelled)
                        {
                            cancels++;
                            Assert.Equal(i, await pairs[i].Promise.AwaitAsync()); // the promise itself is unaffected
                        }

                        if (!ReferenceEquals(me, Domain.Current))
                        {
                            wrong++;
                        }
                    }
                }));
        });
        output.WriteLine($"values {values}, cancelled awaits {cancels}");
        Assert.Equal(n, values + cancels);
        Assert.Equal(0, wrong);
    }

    /// <summary>The spinning awaiter (§215) against everything that may come at once, many times over, with pooled waiters
    /// reused from one round to the next: a domain answers each promise it awaits (a ping-pong, so it spins and marks the
    /// promise it awaits next), and its resolver resolves at once, after a random spin (at the awaiter's spin's end, where it
    /// takes its mark back) or after a timer (the awaiter asleep: the resolver must post and wake it); every fourth await
    /// races a timer of its own (the awaiter's cancellation on its domain, after its mark is taken back). Every await that
    /// returns gets its own promise's value, a cancelled one finds the promise unaffected, and nothing is lost or doubled.</summary>
    [Fact]
    public void S14_SpinningAwaiterRacesResolveSleepAndCancellation() => SpinningAwaiterRace(6_000);

    /// <summary><see cref="S14_SpinningAwaiterRacesResolveSleepAndCancellation"/> in rounds of 6,000 until
    /// <c>EIOSHARP_STRESS_SECONDS</c> have passed (one round without it).</summary>
    [Fact]
    [Trait("Category", "Stress")]
    public void S14_SpinningAwaiterStress()
    {
        string? seconds = Environment.GetEnvironmentVariable("EIOSHARP_STRESS_SECONDS");
        var budget = TimeSpan.FromSeconds(seconds is null ? 0 : double.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int rounds = 0;
        do
        {
            SpinningAwaiterRace(6_000);
            rounds++;
        }
        while (clock.Elapsed < budget);
        output.WriteLine($"{rounds} round(s) of 6,000 awaits in {clock.Elapsed.TotalSeconds:F1}s");
    }

    private void SpinningAwaiterRace(int n)
    {
        long values = 0, cancels = 0, wrong = 0, polled = 0;
        EioMain.Run(async env =>
        {
            var pings = Enumerable.Range(0, n).Select(_ => Promise.Create<int>()).ToArray();
            var pongs = Enumerable.Range(0, n).Select(_ => Promise.Create<int>()).ToArray();
            await Fiber.BothAsync(
                () => env.DomainManager.RunAsync(async () =>
                {
                    var rnd = new Random(5);
                    for (int i = 0; i < n; i++)
                    {
                        switch (rnd.Next(16))
                        {
                            case < 8:
                                break;
                            case < 15:
                                Thread.SpinWait(rnd.Next(400)); // about the awaiter's spin (5 µs) and its end
                                break;
                            default:
                                await env.MonoClock.SleepAsync(TimeSpan.FromMicroseconds(rnd.Next(300))); // the awaiter sleeps
                                break;
                        }

                        pings[i].Resolver.Resolve(i);
                        Assert.Equal(-i, await pongs[i].Promise.AwaitAsync());
                    }
                }),
                () => env.DomainManager.RunAsync(async () =>
                {
                    var me = Domain.Current!;
                    long polledBefore = me.SpinPollHits;
                    var rnd = new Random(6);
                    for (int i = 0; i < n; i++)
                    {
                        var p = pings[i].Promise;
                        int v;
                        if (i % 4 == 3)
                        {
                            var limit = TimeSpan.FromMicroseconds(rnd.Next(200));
                            v = await Fiber.FirstAsync(async () => await p.AwaitAsync(), async () =>
                            {
                                await env.MonoClock.SleepAsync(limit);
                                return -1;
                            });
                        }
                        else
                        {
                            v = await p.AwaitAsync();
                        }

                        if (v == -1)
                        {
                            cancels++;
                            v = await p.AwaitAsync(); // the promise itself is unaffected
                        }
                        else
                        {
                            values++;
                        }

                        if (v != i || !ReferenceEquals(me, Domain.Current))
                        {
                            wrong++;
                        }

                        pongs[i].Resolver.Resolve(-i);
                    }

                    polled = me.SpinPollHits - polledBefore;
                }));
        });
        output.WriteLine($"values {values}, timed out {cancels}, hand-offs found by the spin's poll {polled}");
        Assert.Equal(n, values + cancels);
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void S14_SemaphorePermitsAreConservedUnderCrossDomainCancellation()
    {
        int final = EioMain.Run(async env =>
        {
            var sem = new FiberSemaphore(3);
            int inside = 0, maxInside = 0;
            await Fiber.AllAsync(Enumerable.Range(0, 3).Select(d => (Func<Task>)(() => env.DomainManager.RunAsync(async () =>
            {
                var rnd = new Random(d);
                for (int i = 0; i < 20_000; i++)
                {
                    try
                    {
                        await Cancel.SubAsync(async ctx =>
                        {
                            var t = sem.AcquireAsync();
                            if (!t.IsCompleted && rnd.Next(3) == 0)
                            {
                                ctx.Cancel(new TimeoutException("no"));
                            }

                            await t;
                        });
                    }
                    catch (CancelledException) when (!Fiber.IsCancelled)
                    {
                        continue; // holds nothing
                    }

                    int now = Interlocked.Increment(ref inside);
                    int seenMax;
                    while (now > (seenMax = Volatile.Read(ref maxInside)) && Interlocked.CompareExchange(ref maxInside, now, seenMax) != seenMax)
                    {
                    }

                    if (i % 8 == 0)
                    {
                        await Fiber.YieldAsync();
                    }

                    Interlocked.Decrement(ref inside);
                    sem.Release();
                }
            }))));
            Assert.True(maxInside <= 3, $"{maxInside} holders at once");
            return sem.CurrentCount;
        });
        Assert.Equal(3, final);
    }

    [Fact]
    public void MutexExcludesFibersOfDifferentDomains()
    {
        long counter = EioMain.Run(async env =>
        {
            var mutex = new FiberMutex();
            long c = 0;
            await Fiber.AllAsync(Enumerable.Range(0, 3).Select(d => (Func<Task>)(() => env.DomainManager.RunAsync(async () =>
            {
                for (int i = 0; i < 20_000; i++)
                {
                    await mutex.LockAsync();
                    long v = c;
                    if (i % 16 == 0)
                    {
                        await Fiber.YieldAsync();
                    }

                    c = v + 1;
                    mutex.Unlock();
                }
            }))));
            Assert.Throws<InvalidOperationException>(mutex.Unlock);
            return c;
        });
        Assert.Equal(60_000, counter);
    }

    [Fact]
    public void ConditionBroadcastWakesWaitersOnOtherDomainsOnTheirOwnDomain()
    {
        var results = EioMain.Run(async env =>
        {
            var mutex = new FiberMutex();
            var cond = new Condition();
            int generation = 0;
            int[] wakes = [];
            await Fiber.BothAsync(
                async () => wakes = await Fiber.MapAsync(Enumerable.Range(0, 3).ToArray(), d => env.DomainManager.RunAsync(async () =>
                {
                    var me = Domain.Current;
                    int n = 0;
                    await mutex.LockAsync();
                    try
                    {
                        while (generation < 100)
                        {
                            await cond.AwaitAsync(mutex);
                            n++;
                            if (!ReferenceEquals(me, Domain.Current))
                            {
                                return -1;
                            }
                        }
                    }
                    finally
                    {
                        mutex.Unlock();
                    }

                    return n;
                })),
                async () =>
                {
                    for (int i = 0; i < 100; i++)
                    {
                        await mutex.LockAsync();
                        generation++;
                        cond.Broadcast();
                        mutex.Unlock();
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(0.2));
                    }
                });
            return wakes;
        });
        Assert.All(results, n => Assert.InRange(n, 1, 100));
    }
}
