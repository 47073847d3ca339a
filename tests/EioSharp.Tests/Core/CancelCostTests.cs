using System.Diagnostics;

namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (session 15): a cancelled wait throws from the waiter's own <c>GetResult</c> (no throw helper frame on
/// the exception's stack trace, which .NET grows by doubling), a cancel context keeps its suspended operations in a circular
/// list without a tail field and its flags and trace id in one field, and a cancellation keeps no message cache.</summary>
public class CancelCostTests
{
    /// <summary>The method of the first (throwing) frame of <paramref name="e"/>'s stack trace.</summary>
    private static string ThrowingMethod(Exception e) => new StackTrace(e).GetFrame(0)?.GetMethod()?.Name ?? "?";

    // A cancelled wait on a pooled waiter and a cancelled yield: each throws a fresh CancelledException from the awaiter's
    // GetResult itself (at tier 0 from the waiter's inlined core), not from a helper called by it (ThrowFailure,
    // CancelContext.ThrowIfCancelled).
    [Fact]
    public void ACancelledWaitAndACancelledYieldThrowFromTheirGetResult() => EioMain.Run(async _ =>
    {
        var thrownBy = new List<string>();
        await Cancel.SubAsync(async ctx =>
        {
            await Fiber.AllAsync(
            [
                async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException e)
                    {
                        thrownBy.Add("wait:" + ThrowingMethod(e));
                    }
                },
                async () =>
                {
                    var yielding = Fiber.YieldAsync();
                    ctx.Cancel(new InvalidOperationException("stop")); // before the yield resumes: it throws then (S13)
                    try
                    {
                        await yielding;
                    }
                    catch (CancelledException e)
                    {
                        thrownBy.Add("yield:" + ThrowingMethod(e));
                    }
                },
            ]);
        });

        Assert.Equal(2, thrownBy.Count);
        Assert.Contains(thrownBy, s => s.StartsWith("wait:", StringComparison.Ordinal));
        Assert.Contains(thrownBy, s => s.StartsWith("yield:", StringComparison.Ordinal));
        Assert.All(thrownBy, s => Assert.Contains("GetResult", s, StringComparison.Ordinal));
    });

    // Five fibers wait on promises in one switch (so on one cancel context's list); the first, the middle and the last
    // leave the list by completing, a sixth joins it afterwards, and cancelling wakes the rest in the order they suspended.
    [Fact]
    public void WaitersLeaveTheContextFromAnyPlaceAndTheRestAreWokenInOrder() => EioMain.Run(async _ =>
    {
        var woken = new List<int>();
        var finished = new List<int>();
        var promises = Enumerable.Range(0, 5).Select(_ => Promise.Create<int>()).ToArray();
        try
        {
            await Cancel.SubAsync(async ctx =>
            {
                await Switch.RunAsync(async sw =>
                {
                    for (int i = 0; i < 5; i++)
                    {
                        int n = i;
                        Fiber.Fork(sw, async () =>
                        {
                            try
                            {
                                finished.Add(n + await promises[n].Promise.AwaitAsync());
                            }
                            catch (CancelledException)
                            {
                                woken.Add(n);
                            }
                        });
                    }

                    promises[0].Resolver.Resolve(0);
                    promises[2].Resolver.Resolve(0);
                    promises[4].Resolver.Resolve(0);
                    await Fiber.YieldAsync(); // the three resume (and leave the list) before this body goes on
                    Assert.Equal([0, 2, 4], finished);
                    Fiber.Fork(sw, async () =>
                    {
                        try
                        {
                            await Fiber.AwaitCancelAsync();
                        }
                        catch (CancelledException)
                        {
                            woken.Add(5);
                        }
                    });
                    ctx.Cancel(new InvalidOperationException("stop"));
                });
            });
        }
        catch (OperationCanceledException)
        {
            // The sub-context was cancelled: how the switch and the sub-context end is not what this test is about.
        }

        Assert.Equal([1, 3, 5], woken);

        // The emptied list takes new waiters again (its head was cleared when its only waiter left).
        try
        {
            await Cancel.SubAsync(async ctx =>
            {
                var (p, r) = Promise.Create<int>();
                await Fiber.AllAsync(
                [
                    async () => finished.Add(await p.AwaitAsync()), // the only waiter of the group's context
                    async () =>
                    {
                        r.Resolve(7);
                        await Fiber.YieldAsync(); // the first resumes and leaves the list empty
                        try
                        {
                            await Fiber.AwaitCancelAsync(); // joins the emptied list
                        }
                        catch (CancelledException)
                        {
                            woken.Add(6);
                        }
                    },
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        await Fiber.YieldAsync();
                        ctx.Cancel(new InvalidOperationException("stop"));
                    },
                ]);
            });
        }
        catch (OperationCanceledException)
        {
        }

        Assert.Equal([0, 2, 4, 7], finished);
        Assert.Equal([1, 3, 5, 6], woken);
    });

    // The objects made per race and per cancelled suspension: a cancel context is 72 B (no tail field; flags and trace id
    // packed) and a cancellation 136 B (no message cache). The message is still made from the reason.
    [Fact]
    public void ACancelContextAndACancellationAreNoLargerThanTheirFields() => EioMain.Run(_ =>
    {
        var parent = FiberFrame.Require().Cancel;
        var warm = new CancelContext(parent.Domain, parent, isProtected: false);
        warm.Detach();
        // The fewest bytes over warm rounds (one round's count can hold the runtime's own allocations).
        var meter = new AllocationMeter();
        CancelContext context = warm;
        while (meter.NextRound())
        {
            meter.Start();
            context = new CancelContext(parent.Domain, parent, isProtected: true);
            meter.Stop();
            context.Detach();
        }

        long contextBytes = meter.Fewest;
        Assert.True(context.IsProtected);
        Assert.False(warm.IsProtected);
        Assert.NotEqual(context.TraceId, warm.TraceId);
        Assert.Equal(context.TraceId, context.TraceId);

        var reason = new InvalidOperationException("why");
        meter = new AllocationMeter();
        CancelledException? cancelled = null;
        while (meter.NextRound())
        {
            meter.Start();
            cancelled = new CancelledException(reason);
            meter.Stop();
        }

        long cancelledBytes = meter.Fewest;

        Assert.True(contextBytes <= 72, $"a cancel context allocated {contextBytes} B");
        Assert.True(cancelledBytes <= 136, $"a CancelledException allocated {cancelledBytes} B");
        Assert.Equal("Cancelled: why", cancelled!.Message);
        return Task.CompletedTask;
    });
}
