using EioSharp.Mock;
using EioSharp.Supervision;
using EioSharp.Time;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>Restart intensity: beyond it the supervisor stops its children and fails, and the failure escalates.</summary>
public class IntensityTests
{
    private static ChildSpec Flaky(string id, MonoClock clock, TimeSpan every) => new(id, async ctx =>
    {
        TraceLog.Line($"{id}: start {ctx.Run} at {T(clock)}");
        ctx.Ready();
        await clock.SleepAsync(every);
        throw new InvalidOperationException($"{id} crash {ctx.Run}");
    });

    [Fact]
    public void TooManyRestarts_StopsChildrenInReverse_AndFailsTheSupervisorsSwitch()
    {
        var t = MockMain.Trace(async env =>
        {
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"), Flaky("flaky", env.MonoClock, TimeSpan.FromSeconds(1)), Worker("c"))
            {
                MaxRestarts = 2,
                Period = TimeSpan.FromSeconds(10),
                OnReport = Trace,
            };
            await Switch.RunAsync(async sw =>
            {
                await Supervisor.StartAsync(sw, spec, env.MonoClock);
                TraceLog.Line("ready");
                await Fiber.AwaitCancelAsync();
            });
        });
        Expect("""
            +a: start 1
            +sup: a started
            +flaky: start 1 at t=0
            +sup: flaky started
            +c: start 1
            +sup: c started
            +ready
            +sup: flaky exited (failed: InvalidOperationException: flaky crash 1)
            +sup: restarting flaky
            +flaky: start 2 at t=1
            +sup: flaky started
            +sup: flaky exited (failed: InvalidOperationException: flaky crash 2)
            +sup: restarting flaky
            +flaky: start 3 at t=2
            +sup: flaky started
            +sup: flaky exited (failed: InvalidOperationException: flaky crash 3)
            +sup: restart intensity exceeded; shutting down
            +c: cancelled
            +sup: c stopped (cancelled)
            +a: cancelled
            +sup: a stopped (cancelled)
            Exception: RestartIntensityExceededException: Supervisor 'sup': more than 2 restart(s) within 10s (last: 'flaky').

            """, t);
    }

    [Fact]
    public void RestartsOutsideThePeriodAreForgotten()
    {
        var t = MockMain.Trace(async env =>
        {
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Flaky("flaky", env.MonoClock, TimeSpan.FromSeconds(6)))
            {
                MaxRestarts = 1,
                Period = TimeSpan.FromSeconds(5),
            };
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, env.MonoClock);
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(20));
                TraceLog.Line($"still running at {T(env.MonoClock)}");
                await sup.StopAsync();
            });
        });
        Expect("""
            +flaky: start 1 at t=0
            +flaky: start 2 at t=6
            +flaky: start 3 at t=12
            +flaky: start 4 at t=18
            +still running at t=20

            """, t);
    }

    [Fact]
    public void ChildSupervisorFailure_EscalatesToTheParentSupervisor_WhichRestartsTheSubtree()
    {
        var t = MockMain.Trace(async env =>
        {
            var inner = new SupervisorSpec("inner", RestartStrategy.OneForOne, Worker("x"), Flaky("flaky", env.MonoClock, TimeSpan.FromSeconds(1)))
            {
                MaxRestarts = 1,
                Period = TimeSpan.FromSeconds(10),
                OnReport = Trace,
            };
            var outer = new SupervisorSpec("outer", RestartStrategy.OneForOne, Worker("w"), ChildSpec.ForSupervisor(inner, env.MonoClock))
            {
                MaxRestarts = 1,
                Period = TimeSpan.FromSeconds(60),
                OnReport = Trace,
            };
            await Switch.RunAsync(async sw =>
            {
                await Supervisor.StartAsync(sw, outer, env.MonoClock);
                await Fiber.AwaitCancelAsync();
            });
        });
        Expect("""
            +w: start 1
            +outer: w started
            +x: start 1
            +inner: x started
            +flaky: start 1 at t=0
            +inner: flaky started
            +outer: inner started
            +inner: flaky exited (failed: InvalidOperationException: flaky crash 1)
            +inner: restarting flaky
            +flaky: start 2 at t=1
            +inner: flaky started
            +inner: flaky exited (failed: InvalidOperationException: flaky crash 2)
            +inner: restart intensity exceeded; shutting down
            +x: cancelled
            +inner: x stopped (cancelled)
            +outer: inner exited (failed: RestartIntensityExceededException: Supervisor 'inner': more than 1 restart(s) within 10s (last: 'flaky').)
            +outer: restarting inner
            +x: start 1
            +inner: x started
            +flaky: start 1 at t=2
            +inner: flaky started
            +outer: inner started
            +inner: flaky exited (failed: InvalidOperationException: flaky crash 1)
            +inner: restarting flaky
            +flaky: start 2 at t=3
            +inner: flaky started
            +inner: flaky exited (failed: InvalidOperationException: flaky crash 2)
            +inner: restart intensity exceeded; shutting down
            +x: cancelled
            +inner: x stopped (cancelled)
            +outer: inner exited (failed: RestartIntensityExceededException: Supervisor 'inner': more than 1 restart(s) within 10s (last: 'flaky').)
            +outer: restart intensity exceeded; shutting down
            +w: cancelled
            +outer: w stopped (cancelled)
            Exception: RestartIntensityExceededException: Supervisor 'outer': more than 1 restart(s) within 60s (last: 'inner').

            """, t);
    }

    [Fact]
    public void ARestartThatFailsToStart_IsRetried_AndCountsTowardsTheIntensity()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var db = new ChildSpec("db", async ctx =>
            {
                TraceLog.Line($"db: start {ctx.Run} at {T(clock)}");
                if (ctx.Run > 1)
                {
                    await clock.SleepAsync(TimeSpan.FromSeconds(1));
                    throw new IOException("connection refused");
                }

                ctx.Ready();
                await clock.SleepAsync(TimeSpan.FromSeconds(1));
                throw new IOException("connection lost");
            });
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, db) { MaxRestarts = 2, Period = TimeSpan.FromSeconds(60), OnReport = Trace };
            await Supervisor.RunAsync(spec, clock);
        });
        Expect("""
            +db: start 1 at t=0
            +sup: db started
            +sup: db exited (failed: IOException: connection lost)
            +sup: restarting db
            +db: start 2 at t=1
            +sup: db failed to start (failed: IOException: connection refused)
            +sup: restarting db
            +db: start 3 at t=2
            +sup: db failed to start (failed: IOException: connection refused)
            +sup: restart intensity exceeded; shutting down
            Exception: RestartIntensityExceededException: Supervisor 'sup': more than 2 restart(s) within 60s (last: 'db').

            """, t);
    }
}
