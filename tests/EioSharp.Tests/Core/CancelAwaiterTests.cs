namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (session 19, h125): <see cref="Fiber.AwaitCancelAsync"/>'s awaiter is <see cref="Fiber.CancelAwaiter"/>, whose
/// <c>GetResult</c> is inlined into the awaiting method, so the cancellation is thrown from that method (a one-frame stack
/// trace) instead of from the waiter one frame below. The awaiter keeps the wait's rules: one wait per awaiter, a consumed
/// (stale) awaiter fails without touching the pooled waiter's next wait, and its continuation runs in the awaiting frame.</summary>
public class CancelAwaiterTests
{
    private static readonly AsyncLocal<string?> s_local = new();

    // A stale awaiter (its wait already ended and was read) fails every way it is used, and does not disturb the next wait,
    // which reuses the same pooled waiter: that wait still ends only with its own cancellation, with its own reason.
    [Fact]
    public void AStaleAwaiterFailsAndDoesNotTouchTheNextWait() => EioMain.Run(async _ =>
    {
        var firstReason = new InvalidOperationException("first");
        Fiber.CancelAwaiter stale = default;
        await QuietlyAsync(Cancel.SubAsync(async ctx =>
        {
            stale = Fiber.AwaitCancelAsync().GetAwaiter();
            Assert.False(stale.IsCompleted);
            ctx.Cancel(firstReason);
            Assert.True(stale.IsCompleted);
            var e = Assert.Throws<CancelledException>(() => stale.GetResult());
            Assert.Same(firstReason, e.Reason);
            await Task.CompletedTask;
        })); // the sub-context ends cancelled: not this test's concern

        var secondReason = new InvalidOperationException("second");
        var seen = new List<string>();
        await QuietlyAsync(Cancel.SubAsync(async ctx =>
        {
            await Fiber.AllAsync(
            [
                async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync(); // the pooled waiter of the stale awaiter, reused
                        seen.Add("returned");
                    }
                    catch (CancelledException e)
                    {
                        seen.Add($"cancelled:{ReferenceEquals(e.Reason, secondReason)}");
                    }
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    Assert.Throws<InvalidOperationException>(() => stale.IsCompleted);
                    Assert.Throws<InvalidOperationException>(() => stale.GetResult());
                    Assert.Throws<InvalidOperationException>(() => stale.UnsafeOnCompleted(() => seen.Add("stale continuation")));
                    await Fiber.YieldAsync();
                    seen.Add("checked");
                    ctx.Cancel(secondReason);
                },
            ]);
        }));

        Assert.Equal(["checked", "cancelled:True"], seen);
    });

    // Awaited by hand: OnCompleted runs the continuation on the domain, in the frame it was registered in (the sub-context's
    // frame, which is cancelled) and in the execution context captured there; a second registration on the same wait fails.
    [Fact]
    public void OnCompletedRunsInTheAwaitingFrameWithItsExecutionContext() => EioMain.Run(async _ =>
    {
        int domainThread = Environment.CurrentManagedThreadId;
        var done = new TaskCompletionSource<string>();
        await QuietlyAsync(Cancel.SubAsync(async ctx =>
        {
            s_local.Value = "set before the wait";
            var awaiter = Fiber.AwaitCancelAsync().GetAwaiter();
            awaiter.OnCompleted(() =>
            {
                string where = $"{Environment.CurrentManagedThreadId == domainThread}:{Fiber.IsCancelled}:{s_local.Value}";
                try
                {
                    awaiter.GetResult();
                    done.SetResult(where + ":returned");
                }
                catch (CancelledException)
                {
                    done.SetResult(where + ":cancelled");
                }
            });
            Assert.Throws<InvalidOperationException>(() => awaiter.UnsafeOnCompleted(() => { }));
            s_local.Value = "changed after";
            await Fiber.YieldAsync();
            ctx.Cancel(new InvalidOperationException("stop"));
            await Fiber.YieldAsync();
        }));

        Assert.Equal("True:True:set before the wait:cancelled", await done.Task);
    });

    [Fact]
    public void ADefaultAwaiterFailsClearly()
    {
        var e = Assert.Throws<InvalidOperationException>(() => default(Fiber.CancelAwaiter).IsCompleted);
        Assert.Contains("AwaitCancelAsync", e.Message);
        Assert.Throws<InvalidOperationException>(() => default(Fiber.CancelAwaiter).GetResult());
        Assert.Throws<InvalidOperationException>(() => default(Fiber.CancelAwaiter).UnsafeOnCompleted(() => { }));
    }

    // The cancellation is thrown from the awaiting method: once that method is optimized (the JIT inlines GetResult), the
    // exception's trace has that one frame, where the ValueTaskAwaiter it replaces threw from the waiter, a frame below (two
    // frames, whatever the tier). Tier 0 inlines nothing, so the loser runs until it is tiered up: usually within a second,
    // but a loaded machine's background compilation queue can take far longer (h161 saw 20 s run out in a full suite at
    // load ~20), so the bound is 120 s: a bound on a correct test's duration, not a speed assertion.
    [Fact]
    public void TheCancellationIsThrownFromTheAwaitingMethod() => EioMain.Run(async _ =>
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        string? trace = null;
        for (int i = 0; DateTime.UtcNow < deadline; i++)
        {
            var caught = await CancelledLoserAsync();
            trace = caught.StackTrace;
            Assert.Contains(nameof(LoserAsync), trace);
            if (new System.Diagnostics.StackTrace(caught, false).FrameCount == 1)
            {
                return;
            }

            if (i % 50 == 49)
            {
                await Task.Delay(50); // lets the runtime's call counting finish and the tier-1 code be installed
            }
        }

        Assert.Fail($"the cancellation was never thrown from the awaiting method alone: {trace}");
    });

    private static async Task<CancelledException> CancelledLoserAsync()
    {
        CancelledException? caught = null;
        await QuietlyAsync(Cancel.SubAsync(async ctx =>
        {
            await Fiber.AllAsync(
            [
                async () => caught = await LoserAsync(),
                async () =>
                {
                    await Fiber.YieldAsync();
                    ctx.Cancel(new InvalidOperationException("stop"));
                },
            ]);
        }));
        return caught!;
    }

    private static async Task<CancelledException?> LoserAsync()
    {
        try
        {
            await Fiber.AwaitCancelAsync();
            return null;
        }
        catch (CancelledException e)
        {
            return e;
        }
    }

    /// <summary>Awaits a sub-context that may end with its own cancellation (S13: code awaiting after it was cancelled).</summary>
    private static async Task QuietlyAsync(Task sub)
    {
        try
        {
            await sub;
        }
        catch (CancelledException)
        {
        }
    }
}
