using EioSharp.Mock;
using EioSharp.Supervision;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>Start order, restart order and stop order for each strategy.</summary>
public class StrategyTests
{
    private static string Scenario(RestartStrategy strategy) => MockMain.Trace(async env =>
    {
        var spec = new SupervisorSpec("sup", strategy, Worker("a"), Worker("b"), Worker("c"), Worker("d", RestartType.Temporary));
        await Switch.RunAsync(async sw =>
        {
            var sup = await Supervisor.StartAsync(sw, spec, env.MonoClock);
            TraceLog.Line("ready; crashing b");
            await sup.CrashChildAsync("b", new InvalidOperationException("boom"));
            await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
            TraceLog.Line("children: " + string.Join(", ", (await sup.WhichChildrenAsync()).Select(c => $"{c.Id}/{c.Runs}")));
            TraceLog.Line("stopping");
            await sup.StopAsync();
        });
    });

    [Fact]
    public void OneForOne()
    {
        Expect("""
            +a: start 1
            +b: start 1
            +c: start 1
            +d: start 1
            +ready; crashing b
            +b: cancelled
            +b: start 2
            +children: a/1, b/2, c/1, d/1
            +stopping
            +d: cancelled
            +c: cancelled
            +b: cancelled
            +a: cancelled

            """, Scenario(RestartStrategy.OneForOne));
    }

    [Fact]
    public void OneForAll()
    {
        Expect("""
            +a: start 1
            +b: start 1
            +c: start 1
            +d: start 1
            +ready; crashing b
            +b: cancelled
            +d: cancelled
            +c: cancelled
            +a: cancelled
            +a: start 2
            +b: start 2
            +c: start 2
            +children: a/2, b/2, c/2
            +stopping
            +c: cancelled
            +b: cancelled
            +a: cancelled

            """, Scenario(RestartStrategy.OneForAll));
    }

    [Fact]
    public void RestForOne()
    {
        Expect("""
            +a: start 1
            +b: start 1
            +c: start 1
            +d: start 1
            +ready; crashing b
            +b: cancelled
            +d: cancelled
            +c: cancelled
            +b: start 2
            +c: start 2
            +children: a/1, b/2, c/2
            +stopping
            +c: cancelled
            +b: cancelled
            +a: cancelled

            """, Scenario(RestartStrategy.RestForOne));
    }

    [Fact]
    public void ChildrenStartOneAfterAnotherOnlyOnceReady()
    {
        var t = MockMain.Trace(async env =>
        {
            ChildSpec Slow(string id, double initSeconds) => new(id, async ctx =>
            {
                TraceLog.Line($"{id}: init at {T(env.MonoClock)}");
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(initSeconds));
                ctx.Ready();
                TraceLog.Line($"{id}: ready at {T(env.MonoClock)}");
                await Fiber.AwaitCancelAsync();
            });
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Slow("a", 2), Slow("b", 1), Slow("c", 0.5));
            await Supervisor.RunAsync(spec, env.MonoClock, sup =>
            {
                TraceLog.Line($"all ready at {T(env.MonoClock)}");
                sup.RequestStop();
            });
        });
        Expect("""
            +a: init at t=0
            +a: ready at t=2
            +b: init at t=2
            +b: ready at t=3
            +c: init at t=3
            +c: ready at t=3.5
            +all ready at t=3.5

            """, t);
    }

    [Fact]
    public void StartFailure_StopsStartedChildren_AndTheSupervisorFailsToStart()
    {
        var t = MockMain.Trace(async env =>
        {
            var bad = new ChildSpec("bad", async ctx =>
            {
                TraceLog.Line("bad: opening");
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                throw new IOException("port in use");
            });
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"), Worker("b"), bad, Worker("never")) { OnReport = Trace };
            await Switch.RunAsync(async sw =>
            {
                try
                {
                    await Supervisor.StartAsync(sw, spec, env.MonoClock);
                }
                catch (SupervisorStartException e)
                {
                    TraceLog.Line($"start failed: {e.Message} (child {e.ChildId})");
                }
            });
            TraceLog.Line("switch finished normally");
        });
        Expect("""
            +a: start 1
            +sup: a started
            +b: start 1
            +sup: b started
            +bad: opening
            +sup: bad failed to start (failed: IOException: port in use)
            +b: cancelled
            +sup: b stopped (cancelled)
            +a: cancelled
            +sup: a stopped (cancelled)
            +start failed: Supervisor 'sup' failed to start child 'bad': IOException: port in use (child bad)
            +switch finished normally

            """, t);
    }
}
