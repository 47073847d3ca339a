using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/cancel.md: delivery, atomic winner, protect, domain affinity, .NET interop (S13..S17a).</summary>
public class CancelTests
{
    // Cancelling marks the whole unprotected subtree before waking anything: the first callback to run already sees every context cancelled.
    [Theory, BothBackends]
    public void S13_CancelMarksWholeSubtreeThenWakes(Backend b) => Expect(b, """
        +token callback: outer=True inner=True innermost=True protected=False
        +inner fiber cancelled: Cancelled: TestFailure: stop
        +reason is the cause: True
        Exception: Cancelled: TestFailure: stop

        """, async env =>
        {
            await Cancel.SubAsync(async outer =>
            {
                await Cancel.SubAsync(async inner =>
                {
                    await Cancel.SubAsync(async innermost =>
                    {
                        await Cancel.ProtectAsync(async () =>
                        {
                            var prot = Fiber.CancelContext;
                            await Cancel.SubAsync(async _ =>
                            {
                                outer.Token.Register(() => TraceLog.Line(
                                    $"token callback: outer={outer.IsCancelled} inner={inner.IsCancelled} innermost={innermost.IsCancelled} protected={prot.IsCancelled}"));
                                await Task.CompletedTask;
                            });
                        });
                        var stop = new TestFailure("stop");
                        await Fiber.BothAsync(
                            async () =>
                            {
                                try
                                {
                                    await Traced("inner fiber", () => Fiber.AwaitCancelAsync());
                                }
                                catch (CancelledException ex)
                                {
                                    TraceLog.Line($"reason is the cause: {ReferenceEquals(ex.Reason, stop)}");
                                    throw;
                                }
                            },
                            async () =>
                            {
                                await Fiber.YieldAsync();
                                outer.Cancel(stop);
                            });
                    });
                });
            });
        });

    // An operation that already completed returns its result even if cancellation arrives before the fiber resumes.
    [Theory, BothBackends]
    public void S13_CompletedOperationWinsOverLaterCancel(Backend b) => Expect(b, """
        +got 42 although cancelled=True
        +next suspension: Cancelled: TestFailure: late

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            CancelContext? ctx = null;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("next suspension", () => Cancel.SubAsync(async c =>
                {
                    ctx = c;
                    int v = await p.AwaitAsync();
                    TraceLog.Line($"got {v} although cancelled={c.IsCancelled}");
                    await Fiber.YieldAsync();
                })));
                r.Resolve(42);
                ctx!.Cancel(new TestFailure("late"));
                await Task.CompletedTask;
            });
        });

    // YieldAsync checks cancellation when it resumes.
    [Theory, BothBackends]
    public void S13_YieldChecksCancellationOnResume(Backend b) => Expect(b, """
        +yielding
        +cancel while queued
        +yield: Cancelled: TestFailure: c

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                CancelContext? ctx = null;
                Fiber.Fork(sw, () => Describe("yield", () => Cancel.SubAsync(async c =>
                {
                    ctx = c;
                    TraceLog.Line("yielding");
                    await Fiber.YieldAsync();
                })));
                TraceLog.Line("cancel while queued");
                ctx!.Cancel(new TestFailure("c"));
                await Task.CompletedTask;
            });
        });

    // Operations check cancellation when they start (a zero sleep, an unresolved promise, a sub-context); a resolved promise does not.
    [Theory, BothBackends]
    public void S13_OperationsCheckCancellationWhenTheyStart(Backend b) => Expect(b, """
        +sleep 0: Cancelled: TestFailure: x
        +await unresolved: Cancelled: TestFailure: x
        +sub: Cancelled: TestFailure: x
        +switch: Cancelled: TestFailure: x
        +resolved promise = 5
        +outer: ok

        """, async env =>
        {
            var (unresolved, _) = Promise.Create<int>();
            var resolved = Promise.CreateResolved(5);
            await Describe("outer", () => Cancel.SubAsync(async c =>
            {
                c.Cancel(new TestFailure("x"));
                await Describe("sleep 0", async () => await env.MonoClock.SleepAsync(TimeSpan.Zero));
                await Describe("await unresolved", async () => await unresolved.AwaitAsync());
                await Describe("sub", () => Cancel.SubAsync(_ => Task.CompletedTask));
                await Describe("switch", () => Switch.RunAsync(_ =>
                {
                    TraceLog.Line("switch body ran (wrong)");
                    return Task.CompletedTask;
                }));
                TraceLog.Line($"resolved promise = {await resolved.AwaitAsync()}");
            }));
        });

    // Completion and cancellation race on one atomic state change: many racing pairs, each resolved exactly once.
    [Theory, BothBackends]
    public void S14_OneAtomicWinnerAcrossDomains(Backend b) => Expect(b, """
        +every waiter settled exactly once

        """, async env =>
        {
            const int n = 2000;
            var promises = new (Promise<int> P, Resolver<int> R)[n];
            for (int i = 0; i < n; i++)
            {
                promises[i] = Promise.Create<int>();
            }

            int got = 0;
            int cancelled = 0;
            await Switch.RunAsync(async sw =>
            {
                var contexts = new CancelContext[n];
                for (int i = 0; i < n; i++)
                {
                    int j = i;
                    Fiber.Fork(sw, async () =>
                    {
                        try
                        {
                            await Cancel.SubAsync(async c =>
                            {
                                contexts[j] = c;
                                await promises[j].P.AwaitAsync();
                            });
                            got++;
                        }
                        catch (CancelledException)
                        {
                            cancelled++;
                        }
                    });
                }

                // Resolve from another domain while this domain cancels the same waiters.
                var resolving = env.DomainManager.RunAsync(async () =>
                {
                    for (int i = 0; i < n; i++)
                    {
                        promises[i].R.Resolve(i);
                        if (i % 64 == 0)
                        {
                            await Fiber.YieldAsync();
                        }
                    }
                });
                for (int i = n - 1; i >= 0; i--)
                {
                    contexts[i].Cancel(new TestFailure("race"));
                    if (i % 64 == 0)
                    {
                        await Fiber.YieldAsync();
                    }
                }

                await resolving;
            });
            Assert.Equal(n, got + cancelled);
            TraceLog.Line("every waiter settled exactly once");
        });

    // Protect ignores the parent's cancellation and does not re-check it when the protected code returns.
    [Theory, BothBackends]
    public void S15_ProtectIgnoresParentCancellation(Backend b) => Expect(b, """
        +protected sees cancelled=False
        +protected work done
        +after protect, parent cancelled=True
        +then: Cancelled: TestFailure: fail
        Exception: TestFailure: fail

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    await Cancel.ProtectAsync(async () =>
                    {
                        await Fiber.YieldAsync();
                        TraceLog.Line($"protected sees cancelled={Fiber.IsCancelled}");
                        await env.MonoClock.SleepAsync(Ms(5));
                        TraceLog.Line("protected work done");
                    });
                    TraceLog.Line($"after protect, parent cancelled={Fiber.IsCancelled}");
                    await Describe("then", async () => await Fiber.YieldAsync());
                });
                await Task.CompletedTask;
                throw new TestFailure("fail");
            });
        });

    // RunProtectedAsync is the switch form: its fibers survive the caller's cancellation, and it is joined.
    [Theory, BothBackends]
    public void S15_RunProtectedAsyncIgnoresCallerCancellation(Backend b) => Expect(b, """
        +protected fiber done, cancelled=False
        +protected switch returned
        +outer: Cancelled: TestFailure: caller

        """, async env =>
        {
            await Describe("outer", () => Cancel.SubAsync(async c =>
            {
                await Fiber.BothAsync(
                    async () =>
                    {
                        await Switch.RunProtectedAsync(async sw =>
                        {
                            Fiber.Fork(sw, async () =>
                            {
                                await env.MonoClock.SleepAsync(Ms(10));
                                TraceLog.Line($"protected fiber done, cancelled={Fiber.IsCancelled}");
                            });
                            await Task.CompletedTask;
                        });
                        TraceLog.Line("protected switch returned");
                        await Fiber.YieldAsync();
                    },
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        c.Cancel(new TestFailure("caller"));
                    });
            }));
        });

    // Catching a stray CancelledException is not cancellation: Fiber.Check tells them apart.
    [Theory, BothBackends]
    public void S16_CheckTellsRealCancellationFromStray(Backend b) => Expect(b, """
        +caught stray; Check passes, IsCancelled=False
        +really cancelled; Check: Cancelled: TestFailure: real

        """, async env =>
        {
            try
            {
                await Task.FromException(new CancelledException(new TestFailure("from some library")));
            }
            catch (CancelledException)
            {
                Fiber.Check();
                TraceLog.Line($"caught stray; Check passes, IsCancelled={Fiber.IsCancelled}");
            }

            await Cancel.SubAsync(async c =>
            {
                c.Cancel(new TestFailure("real"));
                await Describe("really cancelled; Check", () =>
                {
                    Fiber.Check();
                    return Task.CompletedTask;
                });
            });
        });

    // DomainManager.RunAsync forwards the caller's cancellation into the new domain and returns after it finished.
    [Theory, BothBackends]
    public void S17_DomainManagerForwardsCancellation(Backend b) => Expect(b, """
        +remote started
        +remote cancelled: Cancelled: TestFailure: stop
        +run: Cancelled: TestFailure: stop
        Exception: TestFailure: stop

        """, async env =>
        {
            var (started, startedR) = Promise.Create<bool>();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("run", () => env.DomainManager.RunAsync(async () =>
                {
                    TraceLog.Line("remote started");
                    startedR.Resolve(true);
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException ex)
                    {
                        TraceLog.Line("remote cancelled: " + Mock.MockMain.Describe(ex));
                        throw;
                    }
                })));
                await started.AwaitAsync();
                throw new TestFailure("stop");
            });
        }, RealCheck.Transcript);

    // A switch and a cancel context belong to the domain that made them: using them from another domain throws.
    [Fact]
    public void S17_SwitchFromAnotherDomainThrows() => Expect(Backend.Real, """
        +fork: InvalidOperationException: This switch belongs to domain N (main) and cannot be used from domain N (other).
        +cancel: InvalidOperationException: This cancel context belongs to domain N (main) and cannot be used from domain N (other).
        +fail: InvalidOperationException: This switch belongs to domain N (main) and cannot be used from domain N (other).

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var lines = await env.DomainManager.RunAsync(async () =>
                {
                    var result = new List<string>();
                    async Task Try(string what, Action a)
                    {
                        try
                        {
                            a();
                            result.Add(what + ": ok");
                        }
                        catch (Exception ex)
                        {
                            result.Add(what + ": " + Mock.MockMain.Describe(ex));
                        }

                        await Task.CompletedTask;
                    }

                    await Try("fork", () => Fiber.Fork(sw, () => Task.CompletedTask));
                    await Try("cancel", () => sw.CancelContext.Cancel(new TestFailure("x")));
                    await Try("fail", () => sw.Fail(new TestFailure("x")));
                    return result;
                }, "other");
                foreach (var l in lines)
                {
                    TraceLog.Line(System.Text.RegularExpressions.Regex.Replace(l, "domain [0-9]+", "domain N"));
                }
            });
        });

    // Fiber.CancellationToken fires when the fiber is cancelled, so ordinary .NET APIs stop too.
    [Theory, BothBackends]
    public void S17a_CancellationTokenFires(Backend b) => Expect(b, """
        +token registered, cancelled=False
        +token fired
        +Task.Delay: TaskCanceledException: A task was canceled.
        +IsCancellationRequested=True
        +outer: ok

        """, async env =>
        {
            await Describe("outer", () => Cancel.SubAsync(async c =>
            {
                var token = Fiber.CancellationToken;
                token.Register(() => TraceLog.Line("token fired"));
                TraceLog.Line($"token registered, cancelled={token.IsCancellationRequested}");
                await Fiber.BothAsync(
                    () => Describe("Task.Delay", () => Task.Delay(Timeout.Infinite, token)),
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        c.Cancel(new TestFailure("stop"));
                    });
                TraceLog.Line($"IsCancellationRequested={token.IsCancellationRequested}");
            }));
        });

    // Awaiting an ordinary Task inside a fiber resumes on the fiber's domain thread.
    [Theory, BothBackends]
    public void S17a_AwaitingPlainTaskResumesOnDomain(Backend b) => Expect(b, """
        +after Task.Run: same thread=True, value=7
        +after Task.Delay: same thread=True
        +after Task.Yield: same thread=True
        +after TaskCompletionSource from a thread: same thread=True, value=9

        """, async env =>
        {
            int thread = Environment.CurrentManagedThreadId;
            int v = await Task.Run(() => 7);
            TraceLog.Line($"after Task.Run: same thread={Environment.CurrentManagedThreadId == thread}, value={v}");
            await Task.Delay(2);
            TraceLog.Line($"after Task.Delay: same thread={Environment.CurrentManagedThreadId == thread}");
            await Task.Yield();
            TraceLog.Line($"after Task.Yield: same thread={Environment.CurrentManagedThreadId == thread}");
            var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            var t = new Thread(() =>
            {
                Thread.Sleep(2);
                tcs.SetResult(9);
            });
            t.Start();
            v = await tcs.Task;
            TraceLog.Line($"after TaskCompletionSource from a thread: same thread={Environment.CurrentManagedThreadId == thread}, value={v}");
            Fiber.Check();
        });
}
