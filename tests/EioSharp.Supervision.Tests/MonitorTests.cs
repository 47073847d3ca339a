using EioSharp.Mock;
using EioSharp.Supervision;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>Monitors see how a fiber or child ended without sharing its fate.</summary>
public class MonitorTests
{
    [Fact]
    public void MonitoredFibers_ReportNormalFailedAndCancelled_WithoutFailingTheSwitch()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            await Switch.RunAsync(async sw =>
            {
                var ok = ExitMonitor.Fork(sw, async () => await clock.SleepAsync(TimeSpan.FromSeconds(1)), "ok");
                var bad = ExitMonitor.Fork(sw, async () =>
                {
                    await clock.SleepAsync(TimeSpan.FromSeconds(2));
                    throw new InvalidOperationException("bad");
                }, "bad");
                ExitMonitor? cancelled = null;
                await Switch.RunAsync(async inner =>
                {
                    cancelled = ExitMonitor.Fork(inner, () => Fiber.AwaitCancelAsync(), "waiter");
                    await clock.SleepAsync(TimeSpan.FromSeconds(3));
                    inner.CancelContext.Cancel(new TimeoutException("enough"));
                });
                foreach (var m in new[] { ok, bad, cancelled! })
                {
                    TraceLog.Line($"{m.Name}: {await m.AwaitAsync()}");
                }
            });
            TraceLog.Line("switch finished normally");
        });
        Expect("""
            +ok: normal
            +bad: failed: InvalidOperationException: bad
            +waiter: cancelled
            +switch finished normally

            """, t);
    }

    [Fact]
    public void MonitoringAChild_ReportsThatRunsExit_AndTheSupervisorStillRestartsIt()
    {
        var t = MockMain.Trace(async env =>
        {
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"));
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, env.MonoClock);
                var m = await sup.MonitorChildAsync("a");
                TraceLog.Line($"monitor: {m}");
                await sup.CrashChildAsync("a", new IOException("disk"));
                TraceLog.Line($"a exit: {await m!.AwaitAsync()}");
                TraceLog.Line($"missing: {(await sup.MonitorChildAsync("zzz")) is null}");
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                await sup.StopAsync();
            });
        });
        Expect("""
            +a: start 1
            +monitor: a: running
            +a: cancelled
            +a exit: failed: IOException: disk
            +a: start 2
            +missing: True
            +a: cancelled

            """, t);
    }

    [Fact]
    public void MonitoringAForkOntoACancelledSwitch_ReportsCancelledAtOnce()
    {
        var t = MockMain.Trace(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                sw.CancelContext.Cancel(new InvalidOperationException("closing"));
                var m = ExitMonitor.Fork(sw, () =>
                {
                    TraceLog.Line("never runs");
                    return Task.CompletedTask;
                });
                TraceLog.Line($"exited at once: {m.HasExited}; {await m.AwaitAsync()}");
            });
        });
        Expect("""
            +exited at once: True; cancelled

            """, t);
    }
}
