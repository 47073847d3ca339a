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
}
