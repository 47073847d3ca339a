using System.Collections.Concurrent;
using EioSharp.Sync;
using EioSharp.Tests.Core;

namespace EioSharp.Tests.Domains;

/// <summary>DomainManager.RunAsync on real domains: results, errors and cancellation in both directions (S17).</summary>
public class DomainManagerTests
{
    [Fact]
    public void S17_ResultComesBackAndCallerResumesOnItsOwnDomain()
    {
        var r = EioMain.Run(async env =>
        {
            var me = Domain.Current!;
            int myThread = Environment.CurrentManagedThreadId;
            var (value, otherDomain, otherThread) = await env.DomainManager.RunAsync(async () =>
            {
                await Fiber.YieldAsync();
                await Task.Delay(1); // an ordinary Task await also resumes on the new domain (S17a)
                return (42, Domain.Current!, Environment.CurrentManagedThreadId);
            }, "worker");
            return (value, me, otherDomain, myThread, otherThread,
                back: Domain.Current, backThread: Environment.CurrentManagedThreadId, otherName: otherDomain.Name);
        });
        Assert.Equal(42, r.value);
        Assert.NotSame(r.me, r.otherDomain);
        Assert.NotEqual(r.myThread, r.otherThread);
        Assert.Same(r.me, r.back);
        Assert.Equal(r.myThread, r.backThread);
        Assert.Equal("worker", r.otherName);
    }

    [Fact]
    public void S17_ExceptionPropagatesAsItselfWithItsStackTrace()
    {
        var ex = Assert.Throws<FormatException>(() => EioMain.Run(async env =>
        {
            await env.DomainManager.RunAsync(async () =>
            {
                await Fiber.YieldAsync();
                ThrowingMethodInTheOtherDomain();
            });
        }));
        Assert.Equal("bad input", ex.Message);
        Assert.Contains(nameof(ThrowingMethodInTheOtherDomain), ex.StackTrace);
    }

    private static void ThrowingMethodInTheOtherDomain() => throw new FormatException("bad input");

    [Fact]
    public void S17_CallerCancellationIsForwardedAndAwaited()
    {
        var log = EioMain.Run(async env =>
        {
            var events = new ConcurrentQueue<string>();
            var (started, markStarted) = Promise.Create<bool>();
            try
            {
                await Cancel.SubAsync(async ctx =>
                {
                    await Fiber.BothAsync(
                        async () =>
                        {
                            await env.DomainManager.RunAsync(async () =>
                            {
                                markStarted.Resolve(true);
                                try
                                {
                                    await Fiber.AwaitCancelAsync();
                                }
                                catch (CancelledException ex)
                                {
                                    events.Enqueue("domain cancelled: " + ex.Reason.Message);
                                    await Cancel.ProtectAsync(async () => await Task.Delay(20));
                                    events.Enqueue("domain cleanup done");
                                    throw;
                                }
                            });
                        },
                        async () =>
                        {
                            await started.AwaitAsync();
                            ctx.Cancel(new TimeoutException("stop"));
                        });
                });
            }
            catch (CancelledException ex)
            {
                events.Enqueue("caller cancelled: " + ex.Reason.Message);
            }

            return string.Join(", ", events);
        });
        Assert.Equal("domain cancelled: stop, domain cleanup done, caller cancelled: stop", log);
    }

    [Fact]
    public void S17_CancellationInsideTheDomainReachesTheCaller()
    {
        var outcome = EioMain.Run(async env =>
        {
            try
            {
                await env.DomainManager.RunAsync(async () =>
                {
                    await Switch.RunAsync(async sw =>
                    {
                        sw.CancelContext.Cancel(new TimeoutException("inner"));
                        await Fiber.YieldAsync();
                    });
                });
                return "returned";
            }
            catch (CancelledException ex)
            {
                return $"cancelled ({ex.Reason.Message}); caller cancelled: {Fiber.IsCancelled}";
            }
        });
        Assert.Equal("cancelled (inner); caller cancelled: False", outcome);
    }

    [Fact]
    public void S17_AlreadyCancelledCallerDoesNotStartADomain()
    {
        var outcome = EioMain.Run(async env =>
        {
            bool ran = false;
            try
            {
                await Cancel.SubAsync(async ctx =>
                {
                    ctx.Cancel(new TimeoutException("early"));
                    await env.DomainManager.RunAsync(() => { ran = true; return Task.CompletedTask; });
                });
            }
            catch (CancelledException)
            {
            }

            return ran;
        });
        Assert.False(outcome);
    }

    [Fact]
    public void S17_ACrashingForeignCallbackFailsTheDomainAndReachesTheCaller()
    {
        var ex = Assert.Throws<ArithmeticException>(() => EioMain.Run(async env =>
        {
            await env.DomainManager.RunAsync(async () =>
            {
                SynchronizationContext.Current!.Post(_ => throw new ArithmeticException("foreign"), null);
                await Fiber.AwaitCancelAsync();
            });
        }));
        Assert.Equal("foreign", ex.Message);
    }

    [Fact]
    public void S17_SwitchesAndContextsAreDomainAffine()
    {
        var errors = EioMain.Run(async env =>
        {
            var list = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var ctx = sw.CancelContext;
                var mutex = new FiberMutex();
                await env.DomainManager.RunAsync(() =>
                {
                    void Expect(string what, Action a)
                    {
                        try
                        {
                            a();
                            list.Add(what + ": no exception");
                        }
                        catch (InvalidOperationException)
                        {
                            list.Add(what + ": InvalidOperationException");
                        }
                    }

                    Expect("Fork", () => Fiber.Fork(sw, () => Task.CompletedTask));
                    Expect("ForkDaemon", () => Fiber.ForkDaemon(sw, () => Task.CompletedTask));
                    Expect("ForkPromise", () => Fiber.ForkPromise(sw, () => Task.FromResult(1)));
                    Expect("Check", sw.Check);
                    Expect("Fail", () => sw.Fail(new Exception("x")));
                    Expect("OnRelease (any domain, an extension of Eio)", () => sw.OnRelease(() => { }));
                    Expect("CancellationToken", () => _ = sw.CancellationToken);
                    Expect("Cancel", () => ctx.Cancel(new Exception("x")));
                    Expect("Token", () => _ = ctx.Token);
                    Expect("IsCancelled (read-only, allowed)", () => { if (ctx.IsCancelled) { throw new InvalidOperationException(); } });
                    return Task.CompletedTask;
                });
                Assert.False(sw.CancelContext.IsCancelled);
            });
            return list;
        });
        Assert.Equal(
            [
                "Fork: InvalidOperationException",
                "ForkDaemon: InvalidOperationException",
                "ForkPromise: InvalidOperationException",
                "Check: InvalidOperationException",
                "Fail: InvalidOperationException",
                "OnRelease (any domain, an extension of Eio): no exception",
                "CancellationToken: InvalidOperationException",
                "Cancel: InvalidOperationException",
                "Token: InvalidOperationException",
                "IsCancelled (read-only, allowed): no exception",
            ],
            errors);
    }

    // S17: Switch.Fail is domain-bound, as Eio's Switch.fail (check_our_domain: Invalid_argument "Switch accessed from wrong
    // domain!"). Several domains calling it at once, 200 times over, each get InvalidOperationException on their own domain;
    // the switch is left on (not cancelled, no failure recorded), its sleeping fibers are not disturbed, nothing hangs.
    [Fact]
    public async Task S17_FailFromOtherDomainsThrowsThereAndLeavesTheSwitchOn()
    {
        const int Rounds = 200, Domains = 3, Sleepers = 2;
        var run = Task.Run(() => EioMain.Run(async env =>
        {
            var outcomes = new ConcurrentDictionary<string, int>();
            int siblingsCancelled = 0, siblingsDone = 0, switchesCancelled = 0;
            for (int round = 0; round < Rounds; round++)
            {
                await Switch.RunAsync(async sw =>
                {
                    var (release, releaseR) = Promise.Create<bool>();
                    for (int i = 0; i < Sleepers; i++)
                    {
                        Fiber.Fork(sw, async () =>
                        {
                            try
                            {
                                await release.AwaitAsync();
                                Interlocked.Increment(ref siblingsDone);
                            }
                            catch (CancelledException)
                            {
                                Interlocked.Increment(ref siblingsCancelled);
                                throw;
                            }
                        });
                    }

                    await Fiber.AllAsync(Enumerable.Range(0, Domains).Select(_ => (Func<Task>)(() => env.DomainManager.RunAsync(() =>
                    {
                        string outcome;
                        try
                        {
                            sw.Fail(new TestFailure("from another domain"));
                            outcome = "no exception";
                        }
                        catch (Exception ex)
                        {
                            outcome = ex.GetType().Name;
                        }

                        outcomes.AddOrUpdate(outcome, 1, (_, n) => n + 1);
                        return Task.CompletedTask;
                    }))).ToArray());
                    if (sw.CancelContext.IsCancelled)
                    {
                        switchesCancelled++;
                    }

                    releaseR.Resolve(true);
                });
            }

            return (outcomes: string.Join(", ", outcomes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} x{kv.Value}")),
                siblingsDone, siblingsCancelled, switchesCancelled);
        }));
        var r = await run.WaitAsync(TimeSpan.FromMinutes(3)); // TimeoutException on a hang; rethrows if any RunAsync threw
        Assert.Equal($"InvalidOperationException x{Rounds * Domains}", r.outcomes);
        Assert.Equal(Rounds * Sleepers, r.siblingsDone);
        Assert.Equal(0, r.siblingsCancelled);
        Assert.Equal(0, r.switchesCancelled);
    }

    // S17, S2, S3: the way to fail a switch from another domain (Eio's too) is to hand the exception to a fiber on the switch's
    // domain, here through a promise (safe across domains), and call Fail there. Several domains race to hand over their own
    // exception; exactly one wins; RunAsync throws that exception itself (not a MultipleException, not Cancelled), the
    // sleeping siblings are cancelled, and no domain sees an exception. 200 rounds, bounded so a hang fails the test.
    [Fact]
    public async Task S17_FailureHandedToTheOwningDomainFailsTheSwitchOnce()
    {
        const int Rounds = 200, Domains = 3, Sleepers = 2;
        var run = Task.Run(() => EioMain.Run(async env =>
        {
            int siblingsCancelled = 0, remoteErrors = 0, winners = 0;
            var failures = new List<string>();
            for (int round = 0; round < Rounds; round++)
            {
                var (failure, failureR) = Promise.Create<Exception>();
                var sent = new Exception?[Domains];
                try
                {
                    await Switch.RunAsync(async sw =>
                    {
                        for (int i = 0; i < Sleepers; i++)
                        {
                            Fiber.Fork(sw, async () =>
                            {
                                try
                                {
                                    await env.MonoClock.SleepAsync(TimeSpan.FromHours(1));
                                }
                                catch (CancelledException)
                                {
                                    Interlocked.Increment(ref siblingsCancelled);
                                    throw;
                                }
                            });
                        }

                        Fiber.Fork(sw, async () => sw.Fail(await failure.AwaitAsync())); // on the switch's domain
                        await Fiber.AllAsync(Enumerable.Range(0, Domains).Select(d => (Func<Task>)(() => env.DomainManager.RunAsync(() =>
                        {
                            try
                            {
                                var mine = new TestFailure($"domain {d}");
                                if (failureR.TryResolve(mine))
                                {
                                    sent[d] = mine;
                                    Interlocked.Increment(ref winners);
                                }
                            }
                            catch (Exception)
                            {
                                Interlocked.Increment(ref remoteErrors);
                            }

                            return Task.CompletedTask;
                        }))).ToArray());
                        await Fiber.AwaitCancelAsync(); // the body too is cancelled by the failure
                    });
                    failures.Add("returned");
                }
                catch (TestFailure ex)
                {
                    failures.Add(Array.IndexOf(sent, ex) >= 0 ? "the winner's exception" : "another TestFailure: " + ex.Message);
                }
                catch (Exception ex)
                {
                    failures.Add(ex.GetType().Name + ": " + ex.Message);
                }
            }

            return (failures, siblingsCancelled, remoteErrors, winners);
        }));
        var r = await run.WaitAsync(TimeSpan.FromMinutes(3)); // TimeoutException on a hang
        Assert.Equal(Enumerable.Repeat("the winner's exception", Rounds), r.failures);
        Assert.Equal(Rounds, r.winners);
        Assert.Equal(Rounds * Sleepers, r.siblingsCancelled);
        Assert.Equal(0, r.remoteErrors);
    }

    [Fact]
    public void ManyDomainsInParallel()
    {
        var ids = EioMain.Run(async env =>
        {
            var results = await Fiber.MapAsync(Enumerable.Range(0, 8).ToArray(), i => env.DomainManager.RunAsync(async () =>
            {
                await Fiber.YieldAsync();
                return Domain.Current!.Id;
            }));
            return results;
        });
        Assert.Equal(8, ids.Distinct().Count());
    }
}
