using EioSharp.Mock;
using EioSharp.Sync;
using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Issue 16: Eio_mock.Clock (SetTime, Advance), Eio.Lazy's cancel modes, switch hooks from other domains.</summary>
public class ClockLazyHookTests
{
    // Eio's tests/time.md "mock clock": sleepers wake in deadline order as the time is set by hand; Advance jumps to the
    // next deadline; with nothing scheduled Advance fails. Same transcript on the mock and the real backends.
    [Theory, BothBackends]
    public void MockClock_wakes_sleepers_only_when_set_or_advanced(Backend b) => Expect(b, """
        +now 0
        +set to 5 s
        +a (3 s) woke at 5
        +advance
        +b (10 s) woke at 10
        +advance
        +c (20 s) woke at 20
        +advance: InvalidOperationException: No further events scheduled on the mock clock.
        +mono: woke at 00:00:02
        +mono back: ArgumentOutOfRangeException

        """, async env =>
        {
            var clock = new MockClock();
            TraceLog.Line($"now {clock.Now.ToUnixTimeSeconds()}");
            await Switch.RunAsync(async sw =>
            {
                foreach (var (name, s) in new[] { ("a", 3), ("c", 20), ("b", 10) })
                {
                    Fiber.Fork(sw, async () =>
                    {
                        await clock.SleepAsync(TimeSpan.FromSeconds(s));
                        TraceLog.Line($"{name} ({s} s) woke at {clock.Now.ToUnixTimeSeconds()}");
                    });
                }

                await Fiber.YieldAsync();
                TraceLog.Line("set to 5 s");
                clock.SetTime(DateTimeOffset.UnixEpoch.AddSeconds(5));
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                TraceLog.Line("advance");
                clock.Advance();
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                TraceLog.Line("advance");
                clock.Advance();
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
            });
            await Describe("advance", () => { clock.Advance(); return Task.CompletedTask; });
            var mono = new MockMonoClock();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    await mono.SleepAsync(TimeSpan.FromSeconds(2));
                    TraceLog.Line($"mono: woke at {mono.Now}");
                });
                await Fiber.YieldAsync();
                mono.Advance(TimeSpan.FromSeconds(1));
                mono.Advance(TimeSpan.FromSeconds(1));
            });
            try
            {
                mono.SetTime(TimeSpan.FromSeconds(1));
            }
            catch (ArgumentOutOfRangeException)
            {
                TraceLog.Line("mono back: ArgumentOutOfRangeException");
            }
        });

    // A timeout built on the mock clock (Time.with_timeout with a mock clock): the body is cancelled when the clock is moved.
    [Theory, BothBackends]
    public void MockClock_drives_WithTimeout_and_a_cancelled_sleeper_is_not_pending(Backend b) => Expect(b, """
        +sleepers 2
        +timed out: TimeoutException
        +sleepers 0

        """, async env =>
        {
            var clock = new MockMonoClock();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await clock.WithTimeoutAsync(TimeSpan.FromSeconds(1), () => clock.SleepAsync(TimeSpan.FromHours(1)).AsTask());
                    }
                    catch (TimeoutException)
                    {
                        TraceLog.Line("timed out: TimeoutException");
                    }
                });
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                TraceLog.Line($"sleepers {clock.SleeperCount}");
                clock.Advance();
            });
            TraceLog.Line($"sleepers {clock.SleeperCount}");
        });

    // Eio's tests/lazy.md: with `Restart a cancelled computation is forgotten and a waiting caller starts it again.
    [Theory, BothBackends]
    public void Lazy_Restart_forgets_a_cancelled_computation(Backend b) => Expect(b, """
        +run 1 starts
        +run 2 starts
        +first: Cancelled: TestFailure: first gone
        +run 2 done
        +second got 2
        +third got 2, runs=2

        """, async env =>
        {
            int runs = 0;
            var lazy = new FiberLazy<int>(async () =>
            {
                int me = ++runs;
                TraceLog.Line($"run {me} starts");
                // Run 1 is cancelled one yield after it starts: its sleep is long enough that no stall of a loaded machine
                // lets it end first (the cancel ends it at once, so it costs nothing). Run 2 is never cancelled.
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(me == 1 ? 60_000 : 300));
                TraceLog.Line($"run {me} done");
                return me;
            }, LazyCancelMode.Restart);
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("first", () => Cancel.SubAsync(async c =>
                {
                    await Fiber.BothAsync(
                        async () => await lazy.GetValueAsync(),
                        async () =>
                        {
                            await Fiber.YieldAsync();
                            c.Cancel(new TestFailure("first gone"));
                        });
                })));
                await Fiber.YieldAsync();
                TraceLog.Line($"second got {await lazy.GetValueAsync()}");
            });
            TraceLog.Line($"third got {await lazy.GetValueAsync()}, runs={runs}");
        }, RealCheck.SameLines);

    // With `Record the cancellation is the outcome: every later caller gets it and the factory never runs again.
    [Theory, BothBackends]
    public void Lazy_Record_keeps_the_cancellation(Backend b) => Expect(b, """
        +run 1 starts
        +second: Cancelled: TestFailure: first gone
        +first: Cancelled: TestFailure: first gone
        +later: Cancelled: TestFailure: first gone
        +runs=1

        """, async env =>
        {
            int runs = 0;
            var lazy = new FiberLazy<int>(async () =>
            {
                TraceLog.Line($"run {++runs} starts");
                // Cancelled one yield after it starts; long enough that no stall of a loaded machine lets it end first.
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(60));
                return 1;
            }, LazyCancelMode.Record);
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("first", () => Cancel.SubAsync(async c =>
                {
                    await Fiber.BothAsync(
                        async () => await lazy.GetValueAsync(),
                        async () =>
                        {
                            await Fiber.YieldAsync();
                            c.Cancel(new TestFailure("first gone"));
                        });
                })));
                await Fiber.YieldAsync();
                await Describe("second", async () => await lazy.GetValueAsync());
            });
            await Describe("later", async () => await lazy.GetValueAsync());
            TraceLog.Line($"runs={runs}");
        }, RealCheck.SameLines);

    // Eio's tests/domains "switch hooks from several domains": worker domains add release hooks to a switch owned by the
    // main domain and remove some, while the main domain finishes the switch; every resource is released exactly once.
    [Fact]
    public void Switch_hooks_added_and_removed_from_other_domains_while_the_switch_finishes_balance()
    {
        for (int round = 0; round < 5; round++)
        {
            long resources = 0, iterations = 0, lateHooks = 0;
            EioMain.Run(async env =>
            {
                var (swReady, publish) = Promise.Create<Switch>();
                await Switch.RunAsync(async outer =>
                {
                    Fiber.Fork(outer, () => Switch.RunAsync(async sw =>
                    {
                        publish.Resolve(sw);
                        while (Interlocked.Read(ref iterations) < 3000)
                        {
                            await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
                        }
                    }));
                    var sw = await swReady.AwaitAsync();
                    for (int d = 0; d < 3; d++)
                    {
                        int seed = d + (round * 10);
                        Fiber.Fork(outer, () => env.DomainManager.RunAsync(async () =>
                        {
                            var rng = new Random(seed);
                            var mine = new List<ReleaseHook>();
                            while (true)
                            {
                                Interlocked.Increment(ref resources);
                                try
                                {
                                    mine.Add(sw.OnRelease(() => Interlocked.Decrement(ref resources)));
                                }
                                catch (InvalidOperationException)
                                {
                                    // The switch had finished: the hook ran at once (S7), so the count is balanced.
                                    Interlocked.Increment(ref lateHooks);
                                    return;
                                }

                                if (rng.Next(2) == 0 && mine.Count > 0)
                                {
                                    int i = rng.Next(mine.Count);
                                    if (mine[i].Remove())
                                    {
                                        Interlocked.Decrement(ref resources); // closed by hand
                                    }

                                    mine.RemoveAt(i);
                                }

                                if (Interlocked.Increment(ref iterations) % 64 == 0)
                                {
                                    await Fiber.YieldAsync();
                                }
                            }
                        }));
                    }
                });
            });
            Assert.Equal(0, Interlocked.Read(ref resources));
            Assert.Equal(3, Interlocked.Read(ref lateHooks));
        }
    }
}
