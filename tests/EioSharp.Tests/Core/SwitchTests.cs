using static EioSharp.Tests.Core.Scenario;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/switch.md: switch lifetime, failure, release hooks, daemons (S1..S9).</summary>
public class SwitchTests
{
    // The switch returns only after its fibers and hooks are done.
    [Theory, BothBackends]
    public void S01_SwitchWaitsForFibersAndHooks(Backend b) => Expect(b, """
        +body done
        +child done
        +hook
        +after switch: finished=True fibers=0

        """, async env =>
        {
            Switch? saved = null;
            await Switch.RunAsync(async sw =>
            {
                saved = sw;
                sw.OnRelease(() => TraceLog.Line("hook"));
                Fiber.Fork(sw, async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(10));
                    TraceLog.Line("child done");
                });
                TraceLog.Line("body done");
                await Task.CompletedTask;
            });
            TraceLog.Line($"after switch: finished={saved!.IsFinished} fibers={saved.FiberCount}");
        });

    // A nested switch's fibers are joined by the nested switch, not the outer one.
    [Theory, BothBackends]
    public void S01_NestedSwitchJoinsItsOwnFibers(Backend b) => Expect(b, """
        +inner child
        +inner done
        +outer done

        """, async env =>
        {
            await Switch.RunAsync(async _ =>
            {
                await Switch.RunAsync(async inner =>
                {
                    Fiber.Fork(inner, async () =>
                    {
                        await Fiber.YieldAsync();
                        TraceLog.Line("inner child");
                    });
                    await Task.CompletedTask;
                });
                TraceLog.Line("inner done");
            });
            TraceLog.Line("outer done");
        });

    // An exception in a fiber cancels the body and the other fibers, which are already suspended.
    [Theory, BothBackends]
    public void S02_FailureCancelsSiblings(Backend b) => Expect(b, """
        +sleeper cancelled: Cancelled: TestFailure: boom
        +waiter cancelled: Cancelled: TestFailure: boom
        +body cancelled: Cancelled: TestFailure: boom
        Exception: TestFailure: boom

        """, async env =>
        {
            var (p, _) = Promise.Create<int>();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Traced("sleeper", async () => await env.MonoClock.SleepAsync(TimeSpan.FromHours(1))));
                Fiber.Fork(sw, () => Traced("waiter", async () => await p.AwaitAsync()));
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    throw new TestFailure("boom");
                });
                await Traced("body", async () => await p.AwaitAsync());
            });
        });

    // A child that fails before its first suspension cancels the switch; the parent runs on until its next suspension point.
    [Theory, BothBackends]
    public void S02_ParentGetsCancelledAtItsNextSuspension(Backend b) => Expect(b, """
        +child fails
        +parent continues, switch cancelled=True
        +parent cancelled at yield
        Exception: TestFailure: early

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () =>
                {
                    TraceLog.Line("child fails");
                    throw new TestFailure("early");
                });
                TraceLog.Line($"parent continues, switch cancelled={sw.CancelContext.IsCancelled}");
                try
                {
                    await Fiber.YieldAsync();
                }
                catch (CancelledException)
                {
                    TraceLog.Line("parent cancelled at yield");
                    throw;
                }
            });
        });

    // The same exception object reported twice counts once.
    [Theory, BothBackends]
    public void S03_SameExceptionTwiceCountsOnce(Backend b) => Expect(b, """
        Exception: TestFailure: shared

        """, async env =>
        {
            var shared = new TestFailure("shared");
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => throw shared);
                sw.Fail(shared);
                await Task.CompletedTask;
                throw shared;
            });
        });

    // The cancellations a failure causes are dropped: only the root cause surfaces.
    [Theory, BothBackends]
    public void S03_CancelledIsDroppedWhenARealErrorExists(Backend b) => Expect(b, """
        Exception: TestFailure: root

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                for (int i = 0; i < 3; i++)
                {
                    Fiber.Fork(sw, async () => await Fiber.AwaitCancelAsync());
                }

                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    throw new TestFailure("root");
                });
                await Fiber.AwaitCancelAsync();
            });
        });

    // Only cancellations: the switch rethrows the cancellation.
    [Theory, BothBackends]
    public void S03_OnlyCancellationSurfacesAsCancelled(Backend b) => Expect(b, """
        Exception: Cancelled: TestFailure: outer

        """, async env =>
        {
            await Switch.RunAsync(async outer =>
            {
                Fiber.Fork(outer, async () =>
                {
                    await Fiber.YieldAsync();
                    outer.CancelContext.Cancel(new TestFailure("outer"));
                });
                await Switch.RunAsync(async inner =>
                {
                    Fiber.Fork(inner, async () => await Fiber.AwaitCancelAsync());
                    await Fiber.AwaitCancelAsync();
                });
            });
        });

    // Several real failures become one MultipleException, in the order they happened.
    [Theory, BothBackends]
    public void S03_SeveralFailuresBecomeMultipleExceptionInOrder(Backend b) => Expect(b, """
        Exception: Multiple: [TestFailure: first; TestFailure: second; TestFailure: third]

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException)
                    {
                        throw new TestFailure("second");
                    }
                });
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    throw new TestFailure("first");
                });
                try
                {
                    await Fiber.AwaitCancelAsync();
                }
                catch (CancelledException)
                {
                    await Fiber.YieldAsync().AsTaskIgnoringCancel();
                    throw new TestFailure("third");
                }
            });
        });

    // A single failure is rethrown as itself, with the stack trace of where it was thrown.
    [Theory, BothBackends]
    public void S03_SingleFailureKeepsItsStackTrace(Backend b)
    {
        Exception? caught = null;
        var t = Trace(b, async env =>
        {
            try
            {
                await Switch.RunAsync(async sw =>
                {
                    Fiber.Fork(sw, ThrowerAsync);
                    await Fiber.YieldAsync();
                });
            }
            catch (Exception ex)
            {
                caught = ex;
            }
        });
        Assert.Equal("", t);
        Assert.IsType<TestFailure>(caught);
        Assert.Contains(nameof(ThrowerAsync), caught!.StackTrace);
    }

    private static async Task ThrowerAsync()
    {
        await Fiber.YieldAsync();
        throw new TestFailure("deep");
    }

    // An exception from the body is handled like a failing fiber: siblings are cancelled and joined first.
    [Theory, BothBackends]
    public void S04_BodyExceptionIsAFiberFailure(Backend b) => Expect(b, """
        +child cancelled: Cancelled: TestFailure: body failed
        +child cleanup done
        Exception: TestFailure: body failed

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await Traced("child", () => Fiber.AwaitCancelAsync());
                    }
                    finally
                    {
                        await Cancel.ProtectAsync(async () => await env.MonoClock.SleepAsync(Ms(5)));
                        TraceLog.Line("child cleanup done");
                    }
                });
                await Fiber.YieldAsync();
                throw new TestFailure("body failed");
            });
        });

    // The body returned a value, but a child failed: the value is discarded and the failure thrown.
    [Theory, BothBackends]
    public void S05_ChildFailureWinsOverBodySuccess(Backend b) => Expect(b, """
        +body returns 42
        Exception: TestFailure: child failed

        """, async env =>
        {
            int v = await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(5));
                    throw new TestFailure("child failed");
                });
                TraceLog.Line("body returns 42");
                await Task.CompletedTask;
                return 42;
            });
            TraceLog.Line($"unreachable {v}");
        });

    // Forking onto a finished switch neither runs the child nor throws; ForkPromise holds the refusal.
    [Theory, BothBackends]
    public void S06_ForkOnFinishedSwitch(Backend b) => Expect(b, """
        +fork returned
        +promise: InvalidOperationException: The switch has finished.

        """, async env =>
        {
            Switch? saved = null;
            await Switch.RunAsync(sw =>
            {
                saved = sw;
                return Task.CompletedTask;
            });
            Fiber.Fork(saved!, () =>
            {
                TraceLog.Line("child ran (wrong)");
                return Task.CompletedTask;
            });
            TraceLog.Line("fork returned");
            var p = Fiber.ForkPromise(saved!, () => Task.FromResult(1));
            await Describe("promise", async () => await p.AwaitAsync());
        });

    // Forking onto a cancelled switch neither runs the child nor throws; ForkPromise resolves with the cancellation.
    [Theory, BothBackends]
    public void S06_ForkOnCancelledSwitch(Backend b) => Expect(b, """
        +fork returned
        +promise: Cancelled: TestFailure: stop
        +daemon fork returned
        Exception: TestFailure: stop

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                sw.Fail(new TestFailure("stop"));
                Fiber.Fork(sw, () =>
                {
                    TraceLog.Line("child ran (wrong)");
                    return Task.CompletedTask;
                });
                TraceLog.Line("fork returned");
                var p = Fiber.ForkPromise(sw, () => Task.FromResult(1));
                await Describe("promise", async () => await p.AwaitAsync());
                Fiber.ForkDaemon(sw, () =>
                {
                    TraceLog.Line("daemon ran (wrong)");
                    return Task.CompletedTask;
                });
                TraceLog.Line("daemon fork returned");
            });
        });

    // Release hooks run after all fibers, last registered first; Attach disposes resources the same way.
    [Theory, BothBackends]
    public void S07_HooksRunLastFirstAfterFibers(Backend b) => Expect(b, """
        +body done
        +fiber done
        +dispose async r3
        +hook 2
        +dispose r1

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                sw.Attach((IDisposable)new Resource("r1"));
                sw.OnRelease(() => TraceLog.Line("hook 2"));
                sw.Attach((IAsyncDisposable)new Resource("r3"));
                Fiber.Fork(sw, async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(5));
                    TraceLog.Line("fiber done");
                });
                TraceLog.Line("body done");
                await Task.CompletedTask;
            });
        });

    // Hooks run protected from cancellation: a failed switch's hook can still suspend.
    [Theory, BothBackends]
    public void S07_HooksAreProtectedFromCancellation(Backend b) => Expect(b, """
        +hook sees cancelled=False
        +hook slept
        Exception: TestFailure: failed

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                sw.OnRelease(async () =>
                {
                    TraceLog.Line($"hook sees cancelled={Fiber.IsCancelled}");
                    await env.MonoClock.SleepAsync(Ms(5));
                    TraceLog.Line("hook slept");
                });
                await Task.CompletedTask;
                throw new TestFailure("failed");
            });
        });

    // A throwing hook fails the switch, but the other hooks still run.
    [Theory, BothBackends]
    public void S07_ThrowingHookFailsSwitchButOthersRun(Backend b) => Expect(b, """
        +hook 3
        +hook 2 throws
        +hook 1
        Exception: TestFailure: hook 2

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                sw.OnRelease(() => TraceLog.Line("hook 1"));
                sw.OnRelease(() =>
                {
                    TraceLog.Line("hook 2 throws");
                    throw new TestFailure("hook 2");
                });
                sw.OnRelease(() => TraceLog.Line("hook 3"));
                await Task.CompletedTask;
            });
        });

    // Registering a hook on a finished switch runs it at once and throws InvalidOperationException.
    [Theory, BothBackends]
    public void S07_RegisteringOnFinishedSwitchRunsAtOnceAndThrows(Backend b) => Expect(b, """
        +late hook ran
        +register: InvalidOperationException: The switch has finished; the release hook was run at once.
        +register throwing: InvalidOperationException: The switch has finished; the release hook was run at once.
        +inner: TestFailure: late failure

        """, async env =>
        {
            Switch? saved = null;
            await Switch.RunAsync(sw =>
            {
                saved = sw;
                return Task.CompletedTask;
            });
            await Describe("register", () =>
            {
                saved!.OnRelease(() => TraceLog.Line("late hook ran"));
                return Task.CompletedTask;
            });
            try
            {
                saved!.OnRelease(() => throw new TestFailure("late failure"));
            }
            catch (InvalidOperationException ex)
            {
                TraceLog.Line("register throwing: " + Mock.MockMain.Describe(ex));
                TraceLog.Line("inner: " + Mock.MockMain.Describe(ex.InnerException!));
            }
        });

    // Closing a resource early removes its hook.
    [Theory, BothBackends]
    public void S07_RemovedHookDoesNotRun(Backend b) => Expect(b, """
        +removed=True again=False
        +dispose async r2
        +after

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var h1 = sw.Attach(new Resource("r1"));
                sw.Attach(new Resource("r2"));
                var h3 = sw.OnRelease(() => TraceLog.Line("hook 3 (wrong)"));
                bool removed = h1.Remove();
                h3.Remove();
                TraceLog.Line($"removed={removed} again={h1.Remove()}");
                await Task.CompletedTask;
            });
            TraceLog.Line("after");
        });

    // Daemons do not keep the switch open: they are cancelled when the rest is done, and that is not an error.
    [Theory, BothBackends]
    public void S08_DaemonsDoNotKeepSwitchOpen(Backend b) => Expect(b, """
        +daemon tick
        +worker done
        +daemon stopped: Cancelled: DaemonsStoppedException: All non-daemon fibers finished; stopping daemon fibers.
        +daemon cleanup done
        +switch returned

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkDaemon(sw, async () =>
                {
                    try
                    {
                        TraceLog.Line("daemon tick");
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException ex)
                    {
                        TraceLog.Line("daemon stopped: " + Mock.MockMain.Describe(ex));
                        await Cancel.ProtectAsync(async () => await env.MonoClock.SleepAsync(Ms(5)));
                        TraceLog.Line("daemon cleanup done");
                        throw;
                    }
                });
                Fiber.Fork(sw, async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(5));
                    TraceLog.Line("worker done");
                });
                await Task.CompletedTask;
            });
            TraceLog.Line("switch returned");
        });

    // A daemon's real failure still fails the switch.
    [Theory, BothBackends]
    public void S08_DaemonFailureIsReported(Backend b) => Expect(b, """
        +body cancelled: Cancelled: TestFailure: daemon broke
        Exception: TestFailure: daemon broke

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkDaemon(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    throw new TestFailure("daemon broke");
                });
                await Traced("body", () => Fiber.AwaitCancelAsync());
            });
        });

    // Daemons that stop on their own leave nothing behind; a daemon that ignores cancellation by failing is reported.
    [Theory, BothBackends]
    public void S08_DaemonFailingDuringStopIsReported(Backend b) => Expect(b, """
        Exception: TestFailure: cleanup failed

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkDaemon(sw, async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException)
                    {
                        throw new TestFailure("cleanup failed");
                    }
                });
                await Task.CompletedTask;
            });
        });

    // ForkPromise puts the failure into the promise; the switch is unaffected.
    [Theory, BothBackends]
    public void S09_ForkPromiseIsolatesErrors(Backend b) => Expect(b, """
        +p1: TestFailure: in promise
        +p2 = 7
        +switch ok

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var p1 = Fiber.ForkPromise<int>(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    throw new TestFailure("in promise");
                });
                var p2 = Fiber.ForkPromise(sw, async () =>
                {
                    await env.MonoClock.SleepAsync(Ms(5));
                    return 7;
                });
                await Describe("p1", async () => await p1.AwaitAsync());
                TraceLog.Line($"p2 = {await p2.AwaitAsync()}");
            });
            TraceLog.Line("switch ok");
        });

    internal static async Task Traced(string what, Func<Task> f)
    {
        try
        {
            await f();
        }
        catch (CancelledException ex)
        {
            TraceLog.Line($"{what} cancelled: {Mock.MockMain.Describe(ex)}");
            throw;
        }
    }

    internal static async Task Describe(string what, Func<Task> f)
    {
        try
        {
            await f();
            TraceLog.Line($"{what}: ok");
        }
        catch (Exception ex)
        {
            TraceLog.Line($"{what}: {Mock.MockMain.Describe(ex)}");
        }
    }

    private sealed class Resource(string name) : IDisposable, IAsyncDisposable
    {
        public void Dispose() => TraceLog.Line("dispose " + name);

        public ValueTask DisposeAsync()
        {
            TraceLog.Line("dispose async " + name);
            return ValueTask.CompletedTask;
        }
    }
}

internal static class AwaitableExtensions
{
    /// <summary>Yields without failing if the fiber is cancelled.</summary>
    public static async Task AsTaskIgnoringCancel(this Fiber.YieldAwaitable y)
    {
        try
        {
            await y;
        }
        catch (CancelledException)
        {
        }
    }
}
