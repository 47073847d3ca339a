using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/fiber.md: combinators, scheduling order, fiber-local values (S10..S12, S27).</summary>
public class FiberTests
{
    // Both runs f then g; the first failure cancels the other, and the error goes to the caller, not the outer switch.
    [Theory, BothBackends]
    public void S10_BothFailureCancelsTheOtherAndGoesToCaller(Backend b) => Expect(b, """
        +f starts
        +g starts
        +f cancelled: Cancelled: TestFailure: g failed
        +both: TestFailure: g failed
        +outer switch still fine: cancelled=False

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                await Describe("both", () => Fiber.BothAsync(
                    async () =>
                    {
                        TraceLog.Line("f starts");
                        await Traced("f", () => Fiber.AwaitCancelAsync());
                    },
                    async () =>
                    {
                        TraceLog.Line("g starts");
                        await Fiber.YieldAsync();
                        throw new TestFailure("g failed");
                    }));
                TraceLog.Line($"outer switch still fine: cancelled={sw.CancelContext.IsCancelled}");
            });
        });

    // Pair returns both results; All waits for every function and combines failures.
    [Theory, BothBackends]
    public void S10_PairAndAll(Backend b) => Expect(b, """
        +pair = (1, two)
        +all: Multiple: [TestFailure: a; TestFailure: c]

        """, async env =>
        {
            var pair = await Fiber.PairAsync(
                async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(5));
                    return 1;
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    return "two";
                });
            TraceLog.Line($"pair = {pair}");
            await Describe("all", () => Fiber.AllAsync(
            [
                () => throw new TestFailure("a"),
                async () => await Fiber.AwaitCancelAsync(),
                () => throw new TestFailure("c"),
            ]));
        });

    // The first success cancels the others; the cancellations this causes are not errors.
    [Theory, BothBackends]
    public void S11_FirstSuccessCancelsTheOthers(Backend b) => Expect(b, """
        +slow cancelled: Cancelled: NotFirstException: Another fiber finished first.
        +first = fast

        """, async env =>
        {
            var v = await Fiber.FirstAsync(
                async () =>
                {
                    await Traced("slow", async () => await env.MonoClock.SleepAsync(TimeSpan.FromHours(1)));
                    return "slow";
                },
                async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(5));
                    return "fast";
                });
            TraceLog.Line($"first = {v}");
        });

    // A loser that succeeds before it notices the cancellation: combine merges, NAny keeps all, default keeps the first.
    [Theory, BothBackends]
    public void S11_ExtraSuccessesAreCombined(Backend b) => Expect(b, """
        +combined = 3
        +default = 1
        +nany = [1, 2, 3]

        """, async env =>
        {
            var combined = await Fiber.FirstAsync(() => Task.FromResult(1), () => Task.FromResult(2), (x, y) => x + y);
            TraceLog.Line($"combined = {combined}");
            var first = await Fiber.FirstAsync(() => Task.FromResult(1), () => Task.FromResult(2));
            TraceLog.Line($"default = {first}");
            var all = await Fiber.NAnyAsync([() => Task.FromResult(1), () => Task.FromResult(2), () => Task.FromResult(3)]);
            TraceLog.Line($"nany = [{string.Join(", ", all)}]");
        });

    // A real exception from a loser replaces the success.
    [Theory, BothBackends]
    public void S11_LoserRealExceptionReplacesSuccess(Backend b) => Expect(b, """
        +any: TestFailure: loser cleanup failed

        """, async env =>
        {
            await Describe("any", async () => await Fiber.AnyAsync<int>(
            [
                async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                        return 0;
                    }
                    catch (CancelledException)
                    {
                        throw new TestFailure("loser cleanup failed");
                    }
                },
                () => Task.FromResult(1),
            ]));
        });

    // A real failure of one function cancels the others and is thrown.
    [Theory, BothBackends]
    public void S11_FailureCancelsTheRaceAndIsThrown(Backend b) => Expect(b, """
        +other cancelled: Cancelled: TestFailure: bad
        +first: TestFailure: bad

        """, async env =>
        {
            await Describe("first", async () => await Fiber.FirstAsync<int>(
                async () =>
                {
                    await Traced("other", () => Fiber.AwaitCancelAsync());
                    return 0;
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    throw new TestFailure("bad");
                }));
        });

    // Nothing succeeded because the caller was cancelled: the caller's cancellation is thrown.
    [Theory, BothBackends]
    public void S11_CallerCancelledThrowsCancellation(Backend b) => Expect(b, """
        +race: Cancelled: TestFailure: caller stopped
        Exception: TestFailure: caller stopped

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    await Describe("race", async () => await Fiber.FirstAsync(
                        () => Fiber.AwaitCancelAsync(),
                        async () => await env.MonoClock.SleepAsync(TimeSpan.FromHours(1))));
                });
                await env.MonoClock.SleepAsync(Ms(5));
                throw new TestFailure("caller stopped");
            });
        });

    // Any of no functions waits until the caller is cancelled.
    [Theory, BothBackends]
    public void S11_AnyOfNothingWaitsUntilCancelled(Backend b) => Expect(b, """
        +any([]): Cancelled: TestFailure: timeout

        """, async env =>
        {
            await Describe("any([])", () => Cancel.SubAsync(async ctx =>
            {
                await Fiber.BothAsync(
                    async () => await Fiber.AnyAsync(Array.Empty<Func<Task<int>>>()),
                    async () =>
                    {
                        await env.MonoClock.SleepAsync(Ms(5));
                        ctx.Cancel(new TestFailure("timeout"));
                    });
            }));
        });

    // A loser that a .NET API stopped through Fiber.CancellationToken (S17a) was cancelled by the race too: not an error,
    // whichever OperationCanceledException it ends with (issue 20: the race reads a loser's cancellation from its task's
    // state); a loser's real failure after the cancellation still replaces the success.
    [Theory, BothBackends]
    public void S11_LoserStoppedThroughTheFiberTokenIsNotAnError(Backend b) => Expect(b, """
        +slow ended: TaskCanceledException: A task was canceled.
        +first = fast
        +any: TestFailure: loser saw TaskCanceledException

        """, async env =>
        {
            var v = await Fiber.FirstAsync(
                async () =>
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, Fiber.CancellationToken);
                    }
                    catch (OperationCanceledException e)
                    {
                        TraceLog.Line($"slow ended: {Mock.MockMain.Describe(e)}");
                        throw;
                    }

                    return "slow";
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    return "fast";
                });
            TraceLog.Line($"first = {v}");
            await Describe("any", async () => await Fiber.AnyAsync<int>(
            [
                async () =>
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, Fiber.CancellationToken);
                        return 0;
                    }
                    catch (OperationCanceledException e)
                    {
                        throw new TestFailure($"loser saw {e.GetType().Name}");
                    }
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    return 1;
                },
            ]));
        });

    // An OperationCanceledException that no cancellation of the race caused is a real failure of that function (S11):
    // it cancels the race and is thrown, as before issue 20.
    [Theory, BothBackends]
    public void S11_StrayOperationCanceledIsAFailure(Backend b) => Expect(b, """
        +other cancelled: Cancelled: OperationCanceledException: stray
        +first: OperationCanceledException: stray

        """, async env =>
        {
            await Describe("first", async () => await Fiber.FirstAsync<int>(
                async () =>
                {
                    await Traced("other", () => Fiber.AwaitCancelAsync());
                    return 0;
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    throw new OperationCanceledException("stray");
                }));
        });

    // AwaitCancelAsync's task ends Canceled and rethrows the very CancelledException its context delivered (issue 20: it is
    // handed over without a throw).
    [Theory, BothBackends]
    public void S13_AwaitCancelTaskEndsCanceledWithTheCancellation(Backend b) => Expect(b, """
        +status before: WaitingForActivation
        +caught: Cancelled: TestFailure: stop; status Canceled; same exception: True

        """, async env =>
        {
            await Cancel.SubAsync(async ctx =>
            {
                Task t = Fiber.AwaitCancelAsync();
                TraceLog.Line($"status before: {t.Status}");
                await Fiber.BothAsync(
                    async () =>
                    {
                        try
                        {
                            await t;
                        }
                        catch (CancelledException e)
                        {
                            bool same = t.Exception is null && ReferenceEquals(e, Catch(t));
                            TraceLog.Line($"caught: {Mock.MockMain.Describe(e)}; status {t.Status}; same exception: {same}");
                        }
                    },
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        ctx.Cancel(new TestFailure("stop"));
                    });
            });
        });

    private static Exception? Catch(Task t)
    {
        try
        {
            t.GetAwaiter().GetResult();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    // Fork runs the child at once up to its first suspension; the parent continues next, ahead of fibers already queued.
    [Theory, BothBackends]
    public void S12_ForkRunsChildAtOnceThenParent(Backend b) => Expect(b, """
        +a1
        +b1
        +parent
        +a2
        +b2

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    TraceLog.Line("a1");
                    await Fiber.YieldAsync();
                    TraceLog.Line("a2");
                });
                Fiber.Fork(sw, async () =>
                {
                    TraceLog.Line("b1");
                    await Fiber.YieldAsync();
                    TraceLog.Line("b2");
                });
                TraceLog.Line("parent");
                await Task.CompletedTask;
            });
        });

    // Both(f, g) runs f first, then g; yielding fibers share the domain round-robin (FIFO run queue).
    [Theory, BothBackends]
    public void S12_BothOrderAndFairYield(Backend b) => Expect(b, """
        +f 0
        +g 0
        +f 1
        +g 1
        +f 2
        +g 2

        """, async env =>
        {
            async Task Loop(string name)
            {
                for (int i = 0; i < 3; i++)
                {
                    TraceLog.Line($"{name} {i}");
                    await Fiber.YieldAsync();
                }
            }

            await Fiber.BothAsync(() => Loop("f"), () => Loop("g"));
        });

    // A fiber woken by a promise goes to the back of the run queue, behind fibers that yielded before.
    [Theory, BothBackends]
    public void S12_WokenFiberGoesToBackOfQueue(Backend b) => Expect(b, """
        +waiter waits
        +resolver resolves
        +yielder resumes
        +waiter got 1

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    TraceLog.Line("waiter waits");
                    TraceLog.Line($"waiter got {await p.AwaitAsync()}");
                });
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    TraceLog.Line("yielder resumes");
                });
                TraceLog.Line("resolver resolves");
                r.Resolve(1);
                await Task.CompletedTask;
            });
        });

    // A fiber-local binding is copied into forked fibers at fork time and lasts for the call that made it.
    [Theory, BothBackends]
    public void S27_FiberLocalsAreCopiedAtForkAndScoped(Backend b) => Expect(b, """
        +outside: unbound
        +body: a
        +child at fork: a
        +inner: b
        +child later: a
        +body after inner: a
        +forked from inner: b
        +unbound inside: unbound
        +outside again: unbound

        """, async env =>
        {
            var key = new FiberLocal<string>();
            string Show() => key.TryGetValue(out var v) ? v : "unbound";
            TraceLog.Line($"outside: {Show()}");
            await key.WithBindingAsync("a", async () =>
            {
                TraceLog.Line($"body: {Show()}");
                await Switch.RunAsync(async sw =>
                {
                    Fiber.Fork(sw, async () =>
                    {
                        TraceLog.Line($"child at fork: {Show()}");
                        await env.MonoClock.SleepAsync(Ms(5));
                        TraceLog.Line($"child later: {Show()}");
                    });
                    await key.WithBindingAsync("b", async () =>
                    {
                        TraceLog.Line($"inner: {Show()}");
                        Fiber.Fork(sw, async () =>
                        {
                            await env.MonoClock.SleepAsync(Ms(10));
                            TraceLog.Line($"forked from inner: {Show()}");
                        });
                        await Fiber.YieldAsync();
                    });
                    await env.MonoClock.SleepAsync(Ms(7));
                    TraceLog.Line($"body after inner: {Show()}");
                    await key.WithoutBindingAsync(async () =>
                    {
                        await env.MonoClock.SleepAsync(Ms(6));
                        TraceLog.Line($"unbound inside: {Show()}");
                    });
                });
            });
            TraceLog.Line($"outside again: {Show()}");
        }, RealCheck.SameLines);

    // Fiber-local values set in a forked fiber do not leak into the parent.
    [Theory, BothBackends]
    public void S27_ChildBindingDoesNotLeakToParent(Backend b) => Expect(b, """
        +child: mine
        +parent: unbound

        """, async env =>
        {
            var key = new FiberLocal<string>();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => key.WithBindingAsync("mine", async () =>
                {
                    TraceLog.Line($"child: {key.GetValueOrDefault("unbound")}");
                    await Fiber.YieldAsync();
                }));
                await Fiber.YieldAsync();
                TraceLog.Line($"parent: {key.GetValueOrDefault("unbound")}");
            });
        });
}
