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
}
