using EioSharp.Mock;
using EioSharp.Supervision;
using static EioSharp.Supervision.Tests.Helpers;

namespace EioSharp.Supervision.Tests;

/// <summary>Permanent, transient and temporary children after normal and abnormal exits.</summary>
public class RestartTypeTests
{
    [Fact]
    public void PermanentTransientTemporary_AfterNormalAndFailedExits()
    {
        var t = MockMain.Trace(async env =>
        {
            var c = env.MonoClock;
            var spec = new SupervisorSpec(
                "sup",
                RestartStrategy.OneForOne,
                ExitsOnce("perm-ok", c, TimeSpan.FromSeconds(1), fail: false, RestartType.Permanent),
                ExitsOnce("perm-fail", c, TimeSpan.FromSeconds(2), fail: true, RestartType.Permanent),
                ExitsOnce("trans-ok", c, TimeSpan.FromSeconds(3), fail: false, RestartType.Transient),
                ExitsOnce("trans-fail", c, TimeSpan.FromSeconds(4), fail: true, RestartType.Transient),
                ExitsOnce("temp-ok", c, TimeSpan.FromSeconds(5), fail: false, RestartType.Temporary),
                ExitsOnce("temp-fail", c, TimeSpan.FromSeconds(6), fail: true, RestartType.Temporary))
            {
                MaxRestarts = 10,
                OnReport = Trace,
            };
            await Switch.RunAsync(async sw =>
            {
                var sup = await Supervisor.StartAsync(sw, spec, c);
                await c.SleepAsync(TimeSpan.FromSeconds(10));
                foreach (var info in await sup.WhichChildrenAsync())
                {
                    TraceLog.Line($"{info.Id}: running={info.IsRunning} runs={info.Runs}");
                }

                await sup.StopAsync();
            });
        });
        Expect("""
            +perm-ok: start 1
            +sup: perm-ok started
            +perm-fail: start 1
            +sup: perm-fail started
            +trans-ok: start 1
            +sup: trans-ok started
            +trans-fail: start 1
            +sup: trans-fail started
            +temp-ok: start 1
            +sup: temp-ok started
            +temp-fail: start 1
            +sup: temp-fail started
            +perm-ok: done
            +sup: perm-ok exited (normal)
            +sup: restarting perm-ok
            +perm-ok: start 2
            +sup: perm-ok started
            +sup: perm-fail exited (failed: InvalidOperationException: perm-fail broke)
            +sup: restarting perm-fail
            +perm-fail: start 2
            +sup: perm-fail started
            +trans-ok: done
            +sup: trans-ok exited (normal)
            +sup: trans-fail exited (failed: InvalidOperationException: trans-fail broke)
            +sup: restarting trans-fail
            +trans-fail: start 2
            +sup: trans-fail started
            +temp-ok: done
            +sup: temp-ok exited (normal)
            +sup: temp-fail exited (failed: InvalidOperationException: temp-fail broke)
            +perm-ok: running=True runs=2
            +perm-fail: running=True runs=2
            +trans-ok: running=False runs=1
            +trans-fail: running=True runs=2
            +sup: trans-fail stopped (cancelled)
            +sup: perm-fail stopped (cancelled)
            +sup: perm-ok stopped (cancelled)

            """, t);
    }
}
