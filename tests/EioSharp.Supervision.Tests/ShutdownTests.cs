using EioSharp.Mock;
using EioSharp.Supervision;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>Shutdown: cancel, wait the shutdown timeout, then abandon and report.</summary>
public class ShutdownTests
{
    [Fact]
    public void ChildIgnoringCancellation_IsAbandonedAfterItsTimeout_AndReported()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var stubborn = new ChildSpec("stubborn", async ctx =>
            {
                ctx.Ready();
                while (true)
                {
                    // Ignores cancellation: each sleep is protected, and it never checks.
                    await Cancel.ProtectAsync(async () => await clock.SleepAsync(TimeSpan.FromSeconds(1)));
                    TraceLog.Line($"stubborn: tick at {T(clock)}");
                }
            })
            { ShutdownTimeout = TimeSpan.FromSeconds(2.5) };
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"), stubborn, Worker("c")) { OnReport = Trace };
            Supervisor? sup = null;
            await Switch.RunAsync(async sw =>
            {
                sup = await Supervisor.StartAsync(sw, spec, clock);
                await clock.SleepAsync(TimeSpan.FromSeconds(1.5));
                TraceLog.Line($"stopping at {T(clock)}");
                await sup.StopAsync();
                TraceLog.Line($"stopped at {T(clock)}");
            });
            TraceLog.Line($"switch finished at {T(clock)}; abandoned: {string.Join(", ", sup!.AbandonedChildren)}");
        });
        Expect("""
            +a: start 1
            +sup: a started
            +sup: stubborn started
            +c: start 1
            +sup: c started
            +stubborn: tick at t=1
            +stopping at t=1.5
            +c: cancelled
            +sup: c stopped (cancelled)
            +stubborn: tick at t=2
            +stubborn: tick at t=3
            +stubborn: tick at t=4
            +sup: stubborn still running 2.5s after cancellation; abandoned (leaked)
            +a: cancelled
            +sup: a stopped (cancelled)
            +stopped at t=4
            +switch finished at t=4; abandoned: stubborn

            """, t);
    }

    [Fact]
    public void CancellingTheOwningSwitch_StopsChildrenInReverse_WithinTheirTimeouts()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var slowStop = new ChildSpec("slow-stop", async ctx =>
            {
                ctx.Ready();
                try
                {
                    await Fiber.AwaitCancelAsync();
                }
                finally
                {
                    await Cancel.ProtectAsync(async () => await clock.SleepAsync(TimeSpan.FromSeconds(1)));
                    TraceLog.Line($"slow-stop: flushed at {T(clock)}");
                }
            });
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"), slowStop, Worker("c")) { OnReport = Trace };
            try
            {
                await Switch.RunAsync(async sw =>
                {
                    await Supervisor.StartAsync(sw, spec, clock);
                    await clock.SleepAsync(TimeSpan.FromSeconds(1));
                    sw.Fail(new InvalidOperationException("owner failed"));
                });
            }
            catch (InvalidOperationException e)
            {
                TraceLog.Line($"owner: {e.Message} at {T(clock)}");
            }
        });
        Expect("""
            +a: start 1
            +sup: a started
            +sup: slow-stop started
            +c: start 1
            +sup: c started
            +c: cancelled
            +sup: c stopped (cancelled)
            +slow-stop: flushed at t=2
            +sup: slow-stop stopped (cancelled)
            +a: cancelled
            +sup: a stopped (cancelled)
            +owner: owner failed at t=2

            """, t);
    }
}
