using EioSharp.Sync;
using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/sync.md, mutex.md, semaphore.md, condition.md, lazy.md, pool.md.</summary>
public class SyncTests
{
    // The mutex serialises holders in arrival order; waiting to lock is cancellable.
    [Theory, BothBackends]
    public void Mutex_SerialisesHoldersFifo(Backend b) => Expect(b, """
        +1 in
        +1 out
        +2 in
        +2 out
        +3 in
        +3 out

        """, async env =>
        {
            var m = new FiberMutex();
            await Fiber.AllAsync(Enumerable.Range(1, 3).Select<int, Func<Task>>(i => () => m.UseRoAsync(async () =>
            {
                TraceLog.Line($"{i} in");
                await Fiber.YieldAsync();
                TraceLog.Line($"{i} out");
            })));
        });

    // A failure inside UseRwAsync poisons the mutex; a failure inside UseRoAsync does not.
    [Theory, BothBackends]
    public void Mutex_UseRwFailurePoisons(Backend b) => Expect(b, """
        +ro: TestFailure: ro failed
        +ro lock again: ok
        +rw: TestFailure: rw failed
        +lock: MutexPoisonedException: The mutex is poisoned: a previous holder failed: rw failed

        """, async env =>
        {
            var m = new FiberMutex();
            await Describe("ro", () => m.UseRoAsync(() => throw new TestFailure("ro failed")));
            await Describe("ro lock again", async () =>
            {
                await m.LockAsync();
                m.Unlock();
            });
            await Describe("rw", () => m.UseRwAsync(() => throw new TestFailure("rw failed")));
            await Describe("lock", async () => await m.LockAsync());
        });

    // S14 for semaphores: a cancelled acquire holds nothing, and the permit goes to the next waiter.
    [Theory, BothBackends]
    public void S14_CancelledAcquireHoldsNothing(Backend b) => Expect(b, """
        +w1: Cancelled: TestFailure: w1 gives up
        +w2 acquired
        +count after release=1

        """, async env =>
        {
            var s = new FiberSemaphore(0);
            CancelContext? ctx = null;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("w1", () => Cancel.SubAsync(async c =>
                {
                    ctx = c;
                    await s.AcquireAsync();
                    TraceLog.Line("(wrong) w1 acquired");
                })));
                Fiber.Fork(sw, async () =>
                {
                    await s.AcquireAsync();
                    TraceLog.Line("w2 acquired");
                    s.Release();
                });
                ctx!.Cancel(new TestFailure("w1 gives up"));
                s.Release();
                await Task.CompletedTask;
            });
            TraceLog.Line($"count after release={s.CurrentCount}");
        });

    // A semaphore admits at most its count at once.
    [Theory, BothBackends]
    public void Semaphore_LimitsConcurrency(Backend b) => Expect(b, """
        +max inside=2, count=2

        """, async env =>
        {
            var s = new FiberSemaphore(2);
            int inside = 0;
            int max = 0;
            await Fiber.AllAsync(Enumerable.Range(0, 6).Select<int, Func<Task>>(_ => async () =>
            {
                await s.AcquireAsync();
                inside++;
                max = Math.Max(max, inside);
                await env.MonoClock.SleepAsync(Ms(2));
                inside--;
                s.Release();
            }));
            TraceLog.Line($"max inside={max}, count={s.CurrentCount}");
        });

    // A broadcast wakes the fibers waiting now; a cancelled waiter re-locks the mutex before it sees the cancellation.
    [Theory, BothBackends]
    public void Condition_BroadcastAndCancel(Backend b) => Expect(b, """
        +w1 saw ready=True
        +w2 saw ready=True
        +cancelled waiter holds the lock again=True
        +waiter: Cancelled: TestFailure: stop

        """, async env =>
        {
            var m = new FiberMutex();
            var cond = new Condition();
            bool ready = false;
            await Switch.RunAsync(async sw =>
            {
                foreach (var name in new[] { "w1", "w2" })
                {
                    Fiber.Fork(sw, async () =>
                    {
                        await m.LockAsync();
                        while (!ready)
                        {
                            await cond.AwaitAsync(m);
                        }

                        TraceLog.Line($"{name} saw ready={ready}");
                        m.Unlock();
                    });
                }

                await Fiber.YieldAsync();
                await m.LockAsync();
                ready = true;
                cond.Broadcast();
                m.Unlock();
            });
            await Describe("waiter", () => Cancel.SubAsync(async c =>
            {
                await Fiber.BothAsync(
                    async () =>
                    {
                        await m.LockAsync();
                        try
                        {
                            await cond.AwaitAsync(m);
                        }
                        finally
                        {
                            TraceLog.Line($"cancelled waiter holds the lock again={!m.TryLock()}");
                            m.Unlock();
                        }
                    },
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        c.Cancel(new TestFailure("stop"));
                    });
            }));
        });

    // S15 for lazy values: the factory runs once, protected from the first caller's cancellation (that caller waits for it
    // and, as Protect does not re-check, gets the value); later callers share it; failures are cached.
    [Theory, BothBackends]
    public void S15_LazyFactoryIsProtectedAndRunsOnce(Backend b) => Expect(b, """
        +factory starts
        +factory done
        +second caller got 42
        +first caller: ok
        +third caller got 42, runs=1
        +failing: TestFailure: factory failed
        +failing again: TestFailure: factory failed

        """, async env =>
        {
            int runs = 0;
            var lazy = new FiberLazy<int>(async () =>
            {
                runs++;
                TraceLog.Line("factory starts");
                await env.MonoClock.SleepAsync(Ms(5));
                TraceLog.Line("factory done");
                return 42;
            });
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("first caller", () => Cancel.SubAsync(async c =>
                {
                    await Fiber.BothAsync(
                        async () => await lazy.GetValueAsync(),
                        async () =>
                        {
                            await Fiber.YieldAsync();
                            c.Cancel(new TestFailure("first caller gone"));
                        });
                })));
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                TraceLog.Line($"second caller got {await lazy.GetValueAsync()}");
            });
            TraceLog.Line($"third caller got {await lazy.GetValueAsync()}, runs={runs}");
            var failing = new FiberLazy<int>(() => throw new TestFailure("factory failed"));
            await Describe("failing", async () => await failing.GetValueAsync());
            await Describe("failing again", async () => await failing.GetValueAsync());
        });

    // The pool creates at most maxSize resources and reuses them; a resource whose user failed goes back to the pool
    // (Eio's Pool.use) and is reused: no third resource is created.
    [Theory, BothBackends]
    public void Pool_ReusesAndLimits(Backend b) => Expect(b, """
        +created r1
        +created r2
        +max in use=2
        +use: TestFailure: user failed
        +next user got r2

        """, async env =>
        {
            int created = 0;
            var pool = new ResourcePool<string>(
                2,
                () => Task.FromResult($"r{++created}"),
                dispose: r =>
                {
                    TraceLog.Line($"disposed {r}");
                    return Task.CompletedTask;
                });
            int inUse = 0;
            int max = 0;
            var order = new List<string>();
            await Fiber.AllAsync(Enumerable.Range(0, 5).Select<int, Func<Task>>(_ => () => pool.UseAsync(async r =>
            {
                if (!order.Contains(r))
                {
                    order.Add(r);
                    TraceLog.Line($"created {r}");
                }

                inUse++;
                max = Math.Max(max, inUse);
                await Fiber.YieldAsync(); // yields, not sleeps: the order stays the same on the real scheduler
                await Fiber.YieldAsync();
                inUse--;
            })));
            TraceLog.Line($"max in use={max}");
            await Describe("use", () => pool.UseAsync(_ => throw new TestFailure("user failed")));
            await pool.UseAsync(async r =>
            {
                await Fiber.YieldAsync();
                await pool.UseAsync(r2 =>
                {
                    TraceLog.Line($"next user got {r2}");
                    return Task.CompletedTask;
                });
            });
        });

    // Disposal is the validator's decision: a resource whose user failed is validated at its next use like any other.
    [Theory, BothBackends]
    public void Pool_ValidatorDecidesDisposalAfterAFailedUse(Backend b) => Expect(b, """
        +use: TestFailure: user failed with r1
        +validate r1: false
        +disposed r1
        +got r2
        +validate r2: true
        +got r2

        """, async env =>
        {
            int created = 0;
            var pool = new ResourcePool<string>(
                1,
                () => Task.FromResult($"r{++created}"),
                validate: r =>
                {
                    bool ok = r != "r1";
                    TraceLog.Line($"validate {r}: {(ok ? "true" : "false")}");
                    return Task.FromResult(ok);
                },
                dispose: r =>
                {
                    TraceLog.Line($"disposed {r}");
                    return Task.CompletedTask;
                });
            await Describe("use", () => pool.UseAsync(r => throw new TestFailure($"user failed with {r}")));
            await pool.UseAsync(r => { TraceLog.Line($"got {r}"); return Task.CompletedTask; });
            await pool.UseAsync(r => { TraceLog.Line($"got {r}"); return Task.CompletedTask; });
        });
}
