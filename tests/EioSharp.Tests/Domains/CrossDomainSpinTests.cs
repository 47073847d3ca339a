namespace EioSharp.Tests.Domains;

/// <summary>The spin before a domain sleeps (issue 20): only after cross-domain traffic, never while idle, and a post
/// through a domain's synchronization context allocates nothing.</summary>
public class CrossDomainSpinTests
{
    // The run's spin after the environment overrides EioMain applies (EIOSHARP_DOMAIN_SPIN[_US]), as EioMain reads them.
    internal static bool SpinsHere =>
        EioBackendOptions.ApplyOverrides(EioBackendOptions.Default, Environment.GetEnvironmentVariable).SpinStopwatchTicks > 0;

    // A domain whose only events are its own timers (no post from another thread, nothing posted to another domain)
    // sleeps without spinning: an idle server burns no CPU between its timer ticks.
    [Fact]
    public void IdleDomainWithTimersNeverSpins()
    {
        long spinsWhileIdle = -1;
        EioMain.Run(async env =>
        {
            var domain = Domain.Current!;
            // The first sleep may follow start-up posts (a spin then is allowed); from its end on, only timers run.
            await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(2));
            long before = domain.Spins;
            for (int i = 0; i < 30; i++)
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
            }

            spinsWhileIdle = domain.Spins - before;
        });
        Assert.Equal(0, spinsWhileIdle);
    }

    // Two domains in a promise ping-pong spin for each other's answers (on a machine with more than one core, with the
    // spin on; EioMain.Run never runs the mock here). That a domain without cross-domain traffic never spins is the test
    // above; after a ping-pong the other domain's exit may still post late, so "no spin afterwards" is not asserted.
    [Fact]
    public void PingPongSpins()
    {
        long spinsDuring = EioMain.Run(env => SpinsDuringPingPongAsync(env, 5000));
        if (SpinsHere)
        {
            Assert.True(spinsDuring > 0, "no spin during a 5000-round cross-domain ping-pong");
        }
        else
        {
            Assert.Equal(0, spinsDuring);
        }
    }

    /// <summary>Runs <paramref name="rounds"/> promise round trips between this domain and a new one and returns how many
    /// times this domain spun meanwhile (shared with BackendOptionsTests).</summary>
    internal static async Task<long> SpinsDuringPingPongAsync(Stdenv env, int rounds)
    {
        var pings = Enumerable.Range(0, rounds).Select(_ => Promise.Create<int>()).ToArray();
        var pongs = Enumerable.Range(0, rounds).Select(_ => Promise.Create<int>()).ToArray();
        var domain = Domain.Current!;
        long start = domain.Spins;
        await Fiber.BothAsync(
            () => env.DomainManager.RunAsync(async () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    pongs[i].Resolver.Resolve(await pings[i].Promise.AwaitAsync());
                }
            }),
            async () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    pings[i].Resolver.Resolve(i);
                    await pongs[i].Promise.AwaitAsync();
                }
            });
        return domain.Spins - start;
    }

    private static readonly SendOrPostCallback s_first = static s => Interlocked.Increment(ref ((Counter)s!).Value);
    private static readonly SendOrPostCallback s_second = static s => Interlocked.Add(ref ((Counter)s!).Value, 2);

    private sealed class Counter
    {
        public long Value;
    }

    // Posts from a foreign thread through the domain's synchronization context, alternating two callbacks (as a task
    // continuation and a value-task source's continuation alternate): the posting thread allocates nothing per post (a
    // cached adapter for the last callback only allocated a delegate and an adapter, 96 B, on every switch of callback).
    [Fact]
    public void PostsThroughTheSyncContextAllocateNothing()
    {
        const int Batches = 200, PerBatch = 10;
        var counter = new Counter();
        using var ready = new ManualResetEventSlim(false);
        using var stop = new ManualResetEventSlim(false);
        SynchronizationContext? context = null;
        long allocated = -1;
        var poster = new Thread(() =>
        {
            ready.Wait();
            long expected = 0;
            void Batch()
            {
                for (int i = 0; i < PerBatch; i++)
                {
                    context!.Post((i & 1) == 0 ? s_first : s_second, counter);
                    expected += (i & 1) == 0 ? 1 : 2;
                }

                // Wait until the domain ran them, so the inbox never grows past its first segment.
                var spin = default(SpinWait);
                while (Interlocked.Read(ref counter.Value) != expected)
                {
                    spin.SpinOnce();
                }
            }

            for (int b = 0; b < 20; b++)
            {
                Batch(); // warm-up: first-use allocations (the event's lock, JIT) are not counted
            }

            // The fewest bytes of Batches batches over warm rounds (one round's count can hold the runtime's own).
            allocated = AllocationMeter.Measure(() =>
            {
                for (int b = 0; b < Batches; b++)
                {
                    Batch();
                }
            });
            stop.Set();
        });
        poster.Start();
        EioMain.Run(async env =>
        {
            context = SynchronizationContext.Current;
            ready.Set();
            while (!stop.IsSet)
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
            }
        });
        Assert.True(poster.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal((AllocationMeter.DefaultRounds + 1L) * Batches * PerBatch / 2 * 3 + 20L * PerBatch / 2 * 3, counter.Value);
        Assert.True(allocated < Batches * PerBatch, $"{allocated} B allocated by {Batches * PerBatch} posts");
    }
}
