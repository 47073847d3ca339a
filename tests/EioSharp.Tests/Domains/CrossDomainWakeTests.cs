namespace EioSharp.Tests.Domains;

/// <summary>Cross-domain wake-ups are batched (issue 20): posts to a sleeping domain wake it once, and it drains them all.</summary>
public class CrossDomainWakeTests
{
    /// <summary>A poller whose first wait blocks until the test opens the gate (the sleeping domain is slow to be scheduled),
    /// counting the wake-up calls it gets.</summary>
    private sealed class GatedPoller : IDomainPoller
    {
        private readonly ManualResetEventSlim _wake = new(false);
        private int _waits;

        public ManualResetEventSlim Sleeping { get; } = new(false);

        public ManualResetEventSlim Gate { get; } = new(false);

        public int Wakes;

        public int Waits => Volatile.Read(ref _waits);

        public bool SpinBeforeSleep => false;

        public long SpinTicks => 0;

        public bool HasRegistrations => false;

        public void Wait(int timeoutMs)
        {
            if (Interlocked.Increment(ref _waits) == 1)
            {
                Sleeping.Set();
                Gate.Wait();
            }

            _wake.Wait(timeoutMs);
            _wake.Reset();
        }

        public void PollNow()
        {
        }

        public void Wake()
        {
            Interlocked.Increment(ref Wakes);
            _wake.Set();
        }

        public void Attach(Domain domain)
        {
        }

        public void Dispose()
        {
        }
    }

    // 1000 promises resolved from another thread while the owning domain sleeps: one wake-up call (the first resolution
    // finds the domain asleep; the others find it already woken), and the domain runs all 1000 waiters once it runs.
    [Fact]
    public void S14_ResolutionsFromAnotherThreadWakeASleepingDomainOnce()
    {
        const int N = 1000;
        var poller = new GatedPoller();
        var domain = Domain.CreateReal("wake-test", pollerFactory: () => poller);
        var promises = Enumerable.Range(0, N).Select(_ => Promise.Create<int>()).ToArray();
        long sum = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                domain.RunMain(_ => Switch.RunAsync(sw =>
                {
                    foreach (var (p, _) in promises)
                    {
                        Fiber.Fork(sw, async () =>
                        {
                            int v = await p.AwaitAsync();
                            sum += v; // not `sum += await ...`: that reads sum before the await
                        });
                    }

                    return Task.FromResult(0);
                }));
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        try
        {
            Assert.True(poller.Sleeping.Wait(TimeSpan.FromSeconds(60)), "the domain never went to sleep");
            for (int i = 0; i < N; i++)
            {
                promises[i].Resolver.Resolve(i);
            }
        }
        finally
        {
            poller.Gate.Set();
        }

        Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "the domain did not finish");
        Assert.Null(failure);
        Assert.Equal((long)N * (N - 1) / 2, sum);
        Assert.Equal(1, poller.Wakes);
        Assert.Equal(1, domain.WakeUps);
        Assert.Equal(1, poller.Waits); // all 1000 continuations ran without the domain waiting again
    }

    // Two domains resolving each other's promises in a ping-pong: every round trip finishes and each value arrives in
    // order, whether a domain is asleep, spinning for the answer or busy when the other posts (the adaptive reply spin).
    [Fact]
    public void S14_PromisePingPongBetweenDomainsDeliversEveryRound()
    {
        const int Rounds = 20_000;
        var pings = Enumerable.Range(0, Rounds).Select(_ => Promise.Create<int>()).ToArray();
        var pongs = Enumerable.Range(0, Rounds).Select(_ => Promise.Create<int>()).ToArray();
        long wrong = 0;
        EioMain.Run(async env =>
        {
            await Fiber.BothAsync(
                () => env.DomainManager.RunAsync(async () =>
                {
                    for (int i = 0; i < Rounds; i++)
                    {
                        pongs[i].Resolver.Resolve(await pings[i].Promise.AwaitAsync() + 1);
                    }
                }),
                async () =>
                {
                    for (int i = 0; i < Rounds; i++)
                    {
                        pings[i].Resolver.Resolve(i);
                        if (await pongs[i].Promise.AwaitAsync() != i + 1)
                        {
                            wrong++;
                        }
                    }
                });
        });
        Assert.Equal(0, wrong);
    }
}
