using EioSharp.Mock;
using EioSharp.Supervision;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

public class SupervisorTests
{
    [Fact]
    public void OneForOne_StartsInOrder_RestartsOnlyTheFailedChild_StopsInReverse()
    {
        var t = MockMain.Trace(async env =>
        {
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, Worker("a"), Worker("b"), Worker("c")) { OnReport = Trace };
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, env.MonoClock);
                TraceLog.Line("ready");
                await sup.CrashChildAsync("b", new InvalidOperationException("boom"));
                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                TraceLog.Line("stopping");
                await sup.StopAsync();
                TraceLog.Line("stopped");
            });
        });
        Assert.Equal("""
            +a: start 1
            +sup: a started
            +b: start 1
            +sup: b started
            +c: start 1
            +sup: c started
            +ready
            +b: cancelled
            +sup: b exited (failed: InvalidOperationException: boom)
            +sup: restarting b
            +b: start 2
            +sup: b started
            +stopping
            +c: cancelled
            +sup: c stopped (cancelled)
            +b: cancelled
            +sup: b stopped (cancelled)
            +a: cancelled
            +sup: a stopped (cancelled)
            +stopped

            """, t);
    }

    [Fact]
    public void AServiceLoopOnAnotherDomain_SignalsReadyFromThere_AndAnInjectedCrashRestartsIt()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var service = new ChildSpec("forwarder", async ctx =>
            {
                await env.DomainManager.RunAsync(async () =>
                {
                    TraceLog.Line($"forwarder {ctx.Run}: connecting");
                    await clock.SleepAsync(TimeSpan.FromSeconds(1));
                    ctx.Ready();
                    try
                    {
                        while (true)
                        {
                            await clock.SleepAsync(TimeSpan.FromSeconds(2));
                            TraceLog.Line($"forwarder {ctx.Run}: flush at {T(clock)}");
                        }
                    }
                    catch (CancelledException)
                    {
                        TraceLog.Line($"forwarder {ctx.Run}: cancelled at {T(clock)}");
                        throw;
                    }
                });
            });
            var spec = new SupervisorSpec("sup", RestartStrategy.OneForOne, service) { OnReport = Trace };
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, clock);
                await clock.SleepAsync(TimeSpan.FromSeconds(4.5));
                TraceLog.Line($"injecting at {T(clock)}: {await sup.CrashChildAsync("forwarder", new IOException("injected"))}");
                await clock.SleepAsync(TimeSpan.FromSeconds(2.5));
                await sup.StopAsync();
            });
        });
        Expect("""
            +forwarder 1: connecting
            +sup: forwarder started
            +forwarder 1: flush at t=3
            +forwarder 1: flush at t=5
            +forwarder 1: cancelled at t=5.5
            +injecting at t=5.5: True
            +sup: forwarder exited (failed: IOException: injected)
            +sup: restarting forwarder
            +forwarder 2: connecting
            +sup: forwarder started
            +forwarder 2: cancelled at t=8
            +sup: forwarder stopped (cancelled)

            """, t);
    }
}
