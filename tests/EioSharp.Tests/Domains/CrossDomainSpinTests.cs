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

    /// <summary>A poller that spins with the budgets it is given and counts its wake-up calls and waits.</summary>
    private sealed class CountingPoller(long spinTicks, long wakeSpinTicks = -1) : IDomainPoller
    {
        private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);

        public int Wakes;

        public int Waits;

        /// <summary>True from the start of a wait (the domain has armed its wake-up: a post now wakes it) to its end.</summary>
        public volatile bool Sleeping;

        public bool SpinBeforeSleep => true;

        public long SpinTicks => spinTicks;

        public long WakeSpinTicks => wakeSpinTicks < 0 ? spinTicks : wakeSpinTicks;

        public bool HasRegistrations => false;

        /// <summary>When set, a woken wait returns only once this holds (checked between short spins): the domain's thread
        /// then runs on only after whatever the test waits for has happened.</summary>
        public Func<bool>? HoldAfterWake;

        public void Wait(int timeoutMs)
        {
            Interlocked.Increment(ref Waits);
            Sleeping = true;
            _wake.Wait(timeoutMs);
            if (HoldAfterWake is { } hold)
            {
                WaitUntil(hold);
            }

            Sleeping = false;
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

    // A post to a domain that is spinning for one (§71, counted in h182) is found by the spin: no wake-up call, no sleep,
    // one spin hit per post. The spin's budget is a minute, so the domain, which ran a post from this thread in its last
    // busy stretch, is spinning when the test sees its spin count move, and still is when the test posts. Ten round trips;
    // each one's post is made only once the domain has started its next spin.
    [Fact]
    public void PostToASpinningDomainIsFoundWithoutAWakeUp()
    {
        const int Rounds = 10;
        var poller = new CountingPoller(System.Diagnostics.Stopwatch.Frequency * 60);
        var domain = Domain.CreateReal("spin-test", pollerFactory: () => poller);
        using var started = new ManualResetEventSlim(false);
        SynchronizationContext? ctx = null;
        var finish = Promise.Create<bool>();
        int ran = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                domain.RunMain(async root =>
                {
                    ctx = SynchronizationContext.Current;
                    started.Set();
                    return await finish.Promise.AwaitAsync();
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(started.Wait(TimeSpan.FromSeconds(60)), "the domain did not start");
        try
        {
            long spins0 = domain.Spins; // no spin before the first post: nothing crossed domains yet
            long hits0 = domain.SpinHits;
            ctx!.Post(_ => Interlocked.Increment(ref ran), null); // wakes the domain; after it runs, the domain spins
            long wakes0 = -1, waits0 = -1;
            for (int i = 0; i < Rounds; i++)
            {
                int posted = i + 1;
                long spins = spins0 + i + 1;
                WaitUntil(() => domain.Spins == spins && Volatile.Read(ref ran) == posted);
                if (i == 0)
                {
                    wakes0 = Volatile.Read(ref poller.Wakes);
                    waits0 = Volatile.Read(ref poller.Waits);
                }

                Assert.Equal(hits0 + i, domain.SpinHits); // the spin started after the last post is still looking
                ctx.Post(_ => Interlocked.Increment(ref ran), null);
            }

            WaitUntil(() => Volatile.Read(ref ran) == Rounds + 1);
            Assert.Equal(wakes0, Volatile.Read(ref poller.Wakes));
            Assert.Equal(waits0, Volatile.Read(ref poller.Waits));
            Assert.Equal(hits0 + Rounds, domain.SpinHits);
        }
        finally
        {
            finish.Resolver.Resolve(true);
            Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "the domain did not finish");
        }

        Assert.Null(failure);
    }

    /// <summary>A domain with its own poller, run by a thread of its own until <see cref="Stop"/>; its main fiber runs
    /// <c>body</c> (null: waits for the stop).</summary>
    private sealed class DomainThread
    {
        private readonly (Promise<bool> Promise, Resolver<bool> Resolver) _stop = Promise.Create<bool>();
        private readonly Thread _thread;
        private readonly ManualResetEventSlim _started = new(false);
        private Exception? _failure;

        public DomainThread(string name, CountingPoller poller, Func<Task>? body = null)
        {
            Poller = poller;
            Domain = Domain.CreateReal(name, pollerFactory: () => poller);
            _thread = new Thread(() =>
            {
                try
                {
                    Domain.RunMain(async root =>
                    {
                        Context = SynchronizationContext.Current;
                        _started.Set();
                        if (body is not null)
                        {
                            await body();
                        }

                        return await _stop.Promise.AwaitAsync();
                    });
                }
                catch (Exception e)
                {
                    _failure = e;
                }
            });
            _thread.Start();
            Assert.True(_started.Wait(TimeSpan.FromSeconds(60)), $"{name} did not start");
        }

        public Domain Domain { get; }

        public CountingPoller Poller { get; }

        public SynchronizationContext? Context { get; private set; }

        public void Stop()
        {
            _stop.Resolver.TryResolve(true);
            Assert.True(_thread.Join(TimeSpan.FromSeconds(60)), $"{Domain.Name} did not finish");
            Assert.Null(_failure);
        }
    }

    // §187, the trap of a ping-pong in which both domains sleep once per hand-off: a domain whose post woke its target
    // waits for the answer with the wake budget (here a minute), so the answer finds it spinning: no sleep and no wake-up
    // of its own per round trip. The peer never spins (budget 0) and is asleep before each post (the test waits for
    // that), so every post wakes it; woken, the peer runs on only once the tested domain has gone idle after the post (it
    // started a spin or a sleep), as a thread woken from the kernel answers late. With the short budget (1 tick) for every
    // spin, as before §187, the answer came after the spin had given up: the domain slept once per round trip (or skipped
    // the spin after such misses) and the peer's answers woke it.
    [Fact]
    public void APostThatWokeItsTargetIsAnsweredWithoutASleep()
    {
        const int Rounds = 20;
        var pings = Enumerable.Range(0, Rounds).Select(_ => Promise.Create<int>()).ToArray();
        var pongs = Enumerable.Range(0, Rounds).Select(_ => Promise.Create<int>()).ToArray();
        var poller = new CountingPoller(1, System.Diagnostics.Stopwatch.Frequency * 60);
        Domain? self = null;
        long idleMark = long.MaxValue; // the tested domain's spins + sleeps when it posted
        var peerPoller = new CountingPoller(0) { HoldAfterWake = () => self!.Spins + Volatile.Read(ref poller.Waits) > Volatile.Read(ref idleMark) };
        var peer = new DomainThread("wake-peer", peerPoller, async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                pongs[i].Resolver.Resolve(await pings[i].Promise.AwaitAsync());
            }
        });
        long waits = -1, wakes = -1, hits = -1, wakeSpins = -1, peerWakes = -1;
        var tested = new DomainThread("wake-spinner", poller, async () =>
        {
            self = Domain.Current!;
            for (int i = 0; i < Rounds; i++)
            {
                // The peer is asleep (its wake-up armed): this resolution's post wakes it. Blocking this domain's thread here
                // is deliberate: it is busy, not idle, while it waits.
                WaitUntil(() => peer.Poller.Sleeping);
                if (i == 1)
                {
                    // From the second round on: the first one's idle transition may follow the start-up's posts.
                    waits = Volatile.Read(ref poller.Waits);
                    wakes = Volatile.Read(ref poller.Wakes);
                    hits = self.SpinHits;
                    wakeSpins = self.WakeSpins;
                    peerWakes = Volatile.Read(ref peer.Poller.Wakes);
                }

                Volatile.Write(ref idleMark, self.Spins + Volatile.Read(ref poller.Waits));
                pings[i].Resolver.Resolve(i);
                Assert.Equal(i, await pongs[i].Promise.AwaitAsync());
            }

            Assert.Equal(Rounds - 1, Volatile.Read(ref peer.Poller.Wakes) - peerWakes); // every post woke the peer
            Assert.Equal(Rounds - 1, self.WakeSpins - wakeSpins); // so every spin after it had the wake budget
            Assert.Equal(Rounds - 1, self.SpinHits - hits); // and found the answer
            Assert.Equal(waits, Volatile.Read(ref poller.Waits)); // without a sleep
            Assert.Equal(wakes, Volatile.Read(ref poller.Wakes)); // or a wake-up
        });
        tested.Stop();
        peer.Stop();
    }

    // The wake budget's spin backs off like the short one: a domain whose posts go one way to a sleeping domain (no
    // answer comes; the domain is woken later by a plain thread) spins after its 1st idle transition, then after the 3rd,
    // 6th, 11th ... (each miss doubles the transitions skipped): at most 1 + log2 of them, here 7 of 64.
    [Fact]
    public void WakeSpinsThatFindNothingBackOff()
    {
        const int Rounds = 64;
        var peer = new DomainThread("quiet-peer", new CountingPoller(0));
        var poller = new CountingPoller(1, System.Diagnostics.Stopwatch.Frequency / 10_000); // a 100 µs wake budget
        var resumes = Enumerable.Range(0, Rounds).Select(_ => Promise.Create<bool>()).ToArray();
        int ran = 0, posted = 0;
        long spins = -1, wakeSpins = -1;
        var tested = new DomainThread("one-way", poller, async () =>
        {
            var self = Domain.Current!;
            long spins0 = self.Spins, wakeSpins0 = self.WakeSpins;
            for (int i = 0; i < Rounds; i++)
            {
                // The peer ran the last post and sleeps again (read in that order: the flag is then not the old sleep's).
                WaitUntil(() => Volatile.Read(ref ran) == i && peer.Poller.Sleeping);
                peer.Context!.Post(_ => Interlocked.Increment(ref ran), null); // wakes the peer
                Volatile.Write(ref posted, i + 1);
                await resumes[i].Promise.AwaitAsync(); // idle: resolved by the test's thread once this domain sleeps
            }

            spins = self.Spins - spins0;
            wakeSpins = self.WakeSpins - wakeSpins0;
        });
        for (int i = 0; i < Rounds; i++)
        {
            int round = i + 1;
            WaitUntil(() => Volatile.Read(ref posted) == round && poller.Sleeping); // it sleeps after this round's post
            resumes[i].Resolver.Resolve(true);
        }

        tested.Stop();
        peer.Stop();
        Assert.InRange(wakeSpins, 1, 7);
        Assert.Equal(wakeSpins, spins); // every spin followed a post that woke the peer
    }

    /// <summary>Spins until <paramref name="condition"/> holds; fails after a minute (a liveness bound, not a measurement).</summary>
    private static void WaitUntil(Func<bool> condition)
    {
        var spin = default(SpinWait);
        long deadline = Environment.TickCount64 + 60_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "the domain did not get there within a minute");
            spin.SpinOnce(sleep1Threshold: -1);
        }
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
