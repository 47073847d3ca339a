using EioSharp.Mock;
using EioSharp.Time;

namespace EioSharp.Tests.Core;

/// <summary>Eio's Time.Timeout values (none, v, seconds, run, run_exn, pp) as <see cref="TimeLimit"/>, on the mock clock.</summary>
public class TimeLimitTests
{
    [Fact]
    public void RunRunExnAndNoneOnVirtualTime()
    {
        var t = MockMain.Trace(async env =>
        {
            var clock = env.MonoClock;
            var limit = TimeLimit.Seconds(clock, 1.5);
            TraceLog.Line($"limit {limit}, none {TimeLimit.None}, {TimeLimit.Of(clock, TimeSpan.FromMilliseconds(250))}, {TimeLimit.Of(clock, TimeSpan.FromTicks(100))}");
            var fast = await limit.RunAsync(async () => { await clock.SleepAsync(TimeSpan.FromSeconds(1)); return "fast"; });
            TraceLog.Line($"fast: timed out={fast.IsTimedOut} value={fast.Value} at {clock.Now.TotalSeconds}s");
            var slow = await limit.RunAsync(async () => { await clock.SleepAsync(TimeSpan.FromSeconds(2)); return "slow"; });
            TraceLog.Line($"slow: timed out={slow.IsTimedOut} at {clock.Now.TotalSeconds}s");
            try
            {
                await limit.WithTimeoutAsync(async () => { await clock.SleepAsync(TimeSpan.FromSeconds(2)); return 0; });
            }
            catch (TimeoutException e)
            {
                TraceLog.Line($"run_exn: {e.Message} at {clock.Now.TotalSeconds}s");
            }

            // The countdown starts afresh on each run: the value is a duration, not a deadline.
            await limit.RunExnAsync(() => clock.SleepAsync(TimeSpan.FromSeconds(1)).AsTask());
            var none = await TimeLimit.None.RunAsync(async () => { await clock.SleepAsync(TimeSpan.FromSeconds(100)); return "done"; });
            TraceLog.Line($"none: {none.Value} at {clock.Now.TotalSeconds}s");
        });
        Assert.Equal("""
            +limit 1.5s, none (no timeout), 250ms, 10us
            +fast: timed out=False value=fast at 1s
            +slow: timed out=True at 2.5s
            +run_exn: Timeout (1.5s). at 4s
            +none: done at 105s

            """, t);
    }

    [Fact]
    public void InvalidDurationsAreRejected()
    {
        MockMain.Run(env =>
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => TimeLimit.Seconds(env.MonoClock, -1));
            Assert.Throws<ArgumentOutOfRangeException>(() => TimeLimit.Seconds(env.MonoClock, double.NaN));
            Assert.Throws<ArgumentOutOfRangeException>(() => TimeLimit.Of(env.MonoClock, TimeSpan.FromSeconds(-1)));
            Assert.True(TimeLimit.None.IsNone);
            return Task.CompletedTask;
        });
    }
}
