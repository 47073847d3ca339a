using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/time.md: sleeping, timeouts, the timer heap (S12, S13 for timers).</summary>
public class TimeTests
{
    // Sleepers wake in deadline order; equal deadlines wake in the order they slept (FIFO).
    [Theory, BothBackends]
    public void S12_SleepersWakeInDeadlineOrder(Backend b) => Expect(b, """
        +c (10 ms)
        +a (30 ms)
        +d (30 ms)
        +b (60 ms)

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                foreach (var (name, ms) in new[] { ("a", 30), ("b", 60), ("c", 10), ("d", 30) })
                {
                    Fiber.Fork(sw, async () =>
                    {
                        await env.MonoClock.SleepAsync(Ms(ms));
                        TraceLog.Line($"{name} ({ms} ms)");
                    });
                }

                await Task.CompletedTask;
            });
        }, RealCheck.SameLines);

    // Virtual time advances only when nothing can run, to the next deadline (mock only: real time is not exact).
    [Fact]
    public void S13_MockTimeAdvancesToTheNextDeadline() => Expect(Backend.Mock, """
        +t=0
        +t=1.5
        +t=1.5 (zero sleep still yields)
        +wall=1970-01-01T00:00:01.5000000+00:00
        +slept until t=3

        """, async env =>
        {
            TraceLog.Line($"t={env.MonoClock.Now.TotalSeconds}");
            await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1.5));
            TraceLog.Line($"t={env.MonoClock.Now.TotalSeconds}");
            await env.MonoClock.SleepAsync(TimeSpan.Zero);
            TraceLog.Line($"t={env.MonoClock.Now.TotalSeconds} (zero sleep still yields)");
            TraceLog.Line($"wall={env.Clock.Now:O}");
            await env.MonoClock.SleepUntilAsync(TimeSpan.FromSeconds(3));
            TraceLog.Line($"slept until t={env.MonoClock.Now.TotalSeconds}");
        });

    // A sleeping fiber is cancellable; a timeout cancels the body and throws TimeoutException.
    [Theory, BothBackends]
    public void S13_TimeoutsCancelTheBody(Backend b) => Expect(b, """
        +body cancelled: Cancelled: NotFirstException: Another fiber finished first.
        +with timeout: TimeoutException: The operation did not finish within 00:00:00.0100000.
        +try: timed out=True
        +fast: 5

        """, async env =>
        {
            await Describe("with timeout", () => env.MonoClock.WithTimeoutAsync(Ms(10), async () =>
                await Traced("body", async () => await env.MonoClock.SleepAsync(TimeSpan.FromHours(1)))));
            var r = await env.MonoClock.TryWithTimeoutAsync(Ms(10), async () =>
            {
                await Fiber.AwaitCancelAsync();
                return 1;
            });
            TraceLog.Line($"try: timed out={r.IsTimedOut}");
            var fast = await env.MonoClock.WithTimeoutAsync(TimeSpan.FromSeconds(30), async () =>
            {
                await Fiber.YieldAsync();
                return 5;
            });
            TraceLog.Line($"fast: {fast}");
        });

    // An infinite sleep waits until cancelled.
    [Theory, BothBackends]
    public void S13_InfiniteSleepWaitsUntilCancelled(Backend b) => Expect(b, """
        +sleep: Cancelled: TestFailure: wake up

        """, async env =>
        {
            await Cancel.SubAsync(async c => await Fiber.BothAsync(
                () => Describe("sleep", async () => await env.MonoClock.SleepAsync(Timeout.InfiniteTimeSpan)),
                async () =>
                {
                    await Fiber.YieldAsync();
                    c.Cancel(new TestFailure("wake up"));
                }));
        });

    // Many cancelled sleeps do not pile up in the domain's timer heap (it is compacted).
    [Theory, BothBackends]
    public void S13_CancelledTimersAreCompacted(Backend b) => Expect(b, """
        +heap after 20000 cancelled sleeps is small=True
        +a live timer still fires

        """, async env =>
        {
            var domain = Domain.Current!;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(20));
                    TraceLog.Line("a live timer still fires");
                });
                for (int i = 0; i < 20_000; i++)
                {
                    await Cancel.SubAsync(async c => await Fiber.BothAsync(
                        async () =>
                        {
                            try
                            {
                                await env.MonoClock.SleepAsync(TimeSpan.FromHours(1));
                            }
                            catch (CancelledException)
                            {
                            }
                        },
                        () =>
                        {
                            c.Cancel(new TestFailure("x"));
                            return Task.CompletedTask;
                        }));
                }

                TraceLog.Line($"heap after 20000 cancelled sleeps is small={domain.TimerCount < 3000}");
            });
        }, RealCheck.SameLines);
    // A sleep never ends before its deadline by the domain's own clock, whether the domain slept in its poller until the
    // deadline or stayed busy (a fiber yielding meanwhile, so that the timers are checked between rounds): the loop's
    // clock readings on waking and on going idle serve the due timers and the wait's timeout (issue 14, h169), and a
    // reading is only ever older than its use. A lower bound that holds on every run, not a timing threshold.
    [Theory, BothBackends]
    public void S13_SleepsNeverEndBeforeTheirDeadline(Backend b) => Expect(b, """
        +idle: early wakes 0 of 150
        +busy: early wakes 0 of 150

        """, async env =>
        {
            async Task<int> SleepsAsync()
            {
                int early = 0;
                for (int i = 0; i < 150; i++)
                {
                    var d = TimeSpan.FromTicks(i % 7 * 3_000); // 0 .. 1.8 ms
                    var start = env.MonoClock.Now;
                    await env.MonoClock.SleepAsync(d);
                    if (env.MonoClock.Now - start < d)
                    {
                        early++;
                    }
                }

                return early;
            }

            TraceLog.Line($"idle: early wakes {await SleepsAsync()} of 150");
            await Switch.RunAsync(async sw =>
            {
                bool done = false;
                if (b == Backend.Real) // the mock's virtual time moves only when nothing can run
                {
                    Fiber.Fork(sw, async () =>
                    {
                        while (!Volatile.Read(ref done))
                        {
                            await Fiber.YieldAsync();
                        }
                    });
                }
                int early = await SleepsAsync();
                Volatile.Write(ref done, true);
                TraceLog.Line($"busy: early wakes {early} of 150");
            });
        });
}
