using EioSharp.Mock;
using EioSharp.Supervision;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>simple_one_for_one: children from one template, added at run time.</summary>
public class DynamicTests
{
    [Fact]
    public void ChildrenFromTemplate_RestartedByType_StoppedInReverse()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var template = new ChildTemplate<string>("conn", async (ctx, peer) =>
            {
                TraceLog.Line($"{ctx.Id}: serving {peer} (run {ctx.Run})");
                ctx.Ready();
                try
                {
                    await Fiber.AwaitCancelAsync();
                }
                catch (CancelledException)
                {
                    TraceLog.Line($"{ctx.Id}: cancelled");
                    throw;
                }
            })
            { Restart = RestartType.Transient };
            var spec = SupervisorSpec.Dynamic("conns", template) with { OnReport = Trace, MaxRestarts = 5 };
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, clock);
                TraceLog.Line("started " + await sup.StartChildAsync("10.0.0.1"));
                TraceLog.Line("started " + await sup.StartChildAsync("10.0.0.2"));
                TraceLog.Line("started " + await sup.StartChildAsync("10.0.0.3"));
                await sup.CrashChildAsync("conn-2", new IOException("reset"));
                await clock.SleepAsync(TimeSpan.FromSeconds(1));
                TraceLog.Line($"terminate conn-1: {await sup.TerminateChildAsync("conn-1")}");
                try
                {
                    await sup.StartChildAsync(42);
                }
                catch (InvalidOperationException e)
                {
                    TraceLog.Line(e.Message);
                }

                try
                {
                    await sup.StartChildAsync(Worker("static"));
                }
                catch (InvalidOperationException e)
                {
                    TraceLog.Line(e.Message);
                }

                TraceLog.Line("children: " + string.Join(", ", (await sup.WhichChildrenAsync()).Select(c => $"{c.Id}/{c.Runs}")));
                await sup.StopAsync();
                try
                {
                    await sup.StartChildAsync("late");
                }
                catch (SupervisorNotRunningException e)
                {
                    TraceLog.Line(e.Message);
                }
            });
        });
        Expect("""
            +conn-1: serving 10.0.0.1 (run 1)
            +conns: conn-1 started
            +started conn-1
            +conn-2: serving 10.0.0.2 (run 1)
            +conns: conn-2 started
            +started conn-2
            +conn-3: serving 10.0.0.3 (run 1)
            +conns: conn-3 started
            +started conn-3
            +conn-2: cancelled
            +conns: conn-2 exited (failed: IOException: reset)
            +conns: restarting conn-2
            +conn-2: serving 10.0.0.2 (run 2)
            +conns: conn-2 started
            +conn-1: cancelled
            +conns: conn-1 stopped (cancelled)
            +terminate conn-1: True
            +Supervisor 'conns' starts children with a String argument, not Int32.
            +Supervisor 'conns' is simple_one_for_one: start children from its template.
            +children: conn-2/2, conn-3/1
            +conn-3: cancelled
            +conns: conn-3 stopped (cancelled)
            +conn-2: cancelled
            +conns: conn-2 stopped (cancelled)
            +Supervisor 'conns' is not running.

            """, t);
    }

    [Fact]
    public void StaticSupervisor_StartChildAsync_AppendsAndReportsStartFailures()
    {
        var t = MockMain.Trace(async env =>
        {
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"));
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, env.MonoClock);
                await sup.StartChildAsync(Worker("b"));
                try
                {
                    await sup.StartChildAsync(new ChildSpec("broken", _ => throw new FormatException("bad config")));
                }
                catch (ChildStartException e)
                {
                    TraceLog.Line(e.Message);
                }

                try
                {
                    await sup.StartChildAsync(Worker("a"));
                }
                catch (ArgumentException e)
                {
                    TraceLog.Line(e.Message);
                }

                TraceLog.Line("children: " + string.Join(", ", (await sup.WhichChildrenAsync()).Select(c => c.Id)));
                await sup.StopAsync();
            });
        });
        Expect("""
            +a: start 1
            +b: start 1
            +Child 'broken' failed to start: FormatException: bad config
            +Supervisor 'sup' already has a child 'a'.
            +children: a, b
            +b: cancelled
            +a: cancelled

            """, t);
    }
}
