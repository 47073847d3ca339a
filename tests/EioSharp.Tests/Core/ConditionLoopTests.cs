using EioSharp.Sync;
using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's Condition.loop_no_mutex: retry on each broadcast; a broadcast between the check and the wait is not lost.</summary>
public class ConditionLoopTests
{
    [Theory, BothBackends]
    public void LoopNoMutexRetriesOnBroadcastsUntilTheUpdateSucceeds(Backend b) => Expect(b, """
        +check 0
        +check 0
        +setter: 1
        +check 1
        +setter: 2
        +check 2
        +setter: 3
        +check 3
        +loop got 3

        """, async env =>
        {
            var cond = new Condition();
            int state = 0;
            await Fiber.BothAsync(
                async () =>
                {
                    int v = await cond.LoopNoMutexAsync(() =>
                    {
                        TraceLog.Line($"check {state}");
                        return (state >= 3, state);
                    });
                    TraceLog.Line($"loop got {v}");
                },
                async () =>
                {
                    for (int i = 1; i <= 3; i++)
                    {
                        await Fiber.YieldAsync();
                        state = i;
                        TraceLog.Line($"setter: {i}");
                        cond.Broadcast();
                    }
                });
        });

    // The update changes the state and broadcasts itself between its check and the wait (the race loop_no_mutex closes):
    // the registration made before the call catches that broadcast, so the loop does not hang.
    [Theory, BothBackends]
    public void ABroadcastDuringTheUpdateIsNotLost(Backend b) => Expect(b, """
        +check 0
        +check 1 (broadcasting)
        +check 2
        +done at 2

        """, async env =>
        {
            var cond = new Condition();
            int state = 0;
            int v = await cond.LoopNoMutexAsync(() =>
            {
                bool broadcasting = state == 1;
                TraceLog.Line($"check {state}{(broadcasting ? " (broadcasting)" : "")}");
                int seen = state;
                state++;
                if (broadcasting)
                {
                    cond.Broadcast(); // stands in for another domain changing the state right after the check
                }

                return (seen == 2, seen);
            });
            TraceLog.Line($"done at {v}");
        });

    // A registration left over when the update succeeds is withdrawn: later broadcasts find no stale waiter.
    [Theory, BothBackends]
    public void SucceedingAfterRegisteringLeavesNoWaiter(Backend b) => Expect(b, """
        +result 7

        """, async env =>
        {
            var cond = new Condition();
            int calls = 0;
            int v = await cond.LoopNoMutexAsync(() => (++calls == 2, 7));
            cond.Broadcast();
            TraceLog.Line($"result {v}");
            Assert.Equal(2, calls);
        });
}
