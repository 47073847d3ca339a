using EioSharp.Domains;

namespace EioSharp.Tests.Core;

/// <summary>Issue 20: the current fiber is the synchronization context installed on the domain's thread (no execution context
/// per fork). Code must see its own fiber and cancel context whoever resumes it, and code that left the domain must see none.</summary>
public class CurrentFiberTests
{
    // Fiber A awaits a plain TaskCompletionSource (synchronous continuations) that fiber B completes. A's continuation must
    // run as A (posted to A, not inlined into B's turn), and B must still be B after SetResult returns.
    [Fact]
    public void ATaskCompletedByAnotherFiberResumesItsAwaiterAsTheAwaiter() => EioMain.Run(async _ =>
    {
        var tcs = new TaskCompletionSource<int>();
        string? aBefore = null, aAfter = null, bBefore = null, bAfter = null;
        CancelContext? aContext = null, aContextAfter = null, bContext = null, bContextAfter = null;
        await Switch.RunAsync(sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                aBefore = Fiber.Describe();
                aContext = Fiber.CancelContext;
                await tcs.Task;
                aAfter = Fiber.Describe();
                aContextAfter = Fiber.CancelContext;
            });
            Fiber.Fork(sw, async () =>
            {
                await Cancel.SubAsync(async _ =>
                {
                    bBefore = Fiber.Describe();
                    bContext = Fiber.CancelContext;
                    await Fiber.YieldAsync();
                    tcs.SetResult(1);
                    bAfter = Fiber.Describe();
                    bContextAfter = Fiber.CancelContext;
                });
            });
            return Task.CompletedTask;
        });

        Assert.NotNull(aBefore);
        Assert.NotEqual(aBefore, bBefore);
        Assert.Equal(aBefore, aAfter);
        Assert.Same(aContext, aContextAfter);
        Assert.Equal(bBefore, bAfter);
        Assert.Same(bContext, bContextAfter);
        Assert.NotSame(aContext, bContext);
    });

    // Code that left the domain (ConfigureAwait(false) on the thread pool, Task.Run, a system thread) sees no fiber: fiber
    // operations throw InvalidOperationException there instead of acting on whichever fiber last ran on some thread. Back on
    // the domain (the fiber's await of that code), the fiber is its own again.
    [Fact]
    public void CodeOffTheDomainSeesNoFiber() => EioMain.Run(async _ =>
    {
        string me = Fiber.Describe();
        var ctx = Fiber.CancelContext;

        bool threwAfterConfigureAwaitFalse = await OffDomainAsync();
        Assert.True(threwAfterConfigureAwaitFalse);
        Assert.Equal(me, Fiber.Describe());
        Assert.Same(ctx, Fiber.CancelContext);

        bool threwInTaskRun = await Task.Run(() => ThrowsNotInFiber(Fiber.Check));
        Assert.True(threwInTaskRun);
        Assert.Equal(me, Fiber.Describe());

        bool threwOnSysthread = await Systhread.RunAsync(() => ThrowsNotInFiber(Fiber.Check));
        Assert.True(threwOnSysthread);
        Assert.Equal(me, Fiber.Describe());
        Assert.Same(ctx, Fiber.CancelContext);
    });

    // A fiber forked inside a sub-switch starts in its own frame (the parent's inner frame flows in the execution context
    // but counts only for the parent), before and after it suspends; the parent keeps the switch's frame after the fork.
    [Fact]
    public void AChildForkedInsideAnInnerFrameSeesItsOwnFrame() => EioMain.Run(async _ =>
    {
        string parent = Fiber.Describe();
        string? child = null, childAfter = null, parentInSwitch = null, parentAfterFork = null;
        CancelContext? childCtx = null, childCtxAfter = null, switchCtx = null, parentCtxAfterFork = null;
        await Switch.RunAsync(async sw =>
        {
            await Cancel.SubAsync(async sub =>
            {
                parentInSwitch = Fiber.Describe();
                Fiber.Fork(sw, async () =>
                {
                    child = Fiber.Describe();
                    childCtx = Fiber.CancelContext;
                    await Fiber.YieldAsync();
                    childAfter = Fiber.Describe();
                    childCtxAfter = Fiber.CancelContext;
                });
                parentAfterFork = Fiber.Describe();
                parentCtxAfterFork = Fiber.CancelContext;
                Assert.Same(sub, parentCtxAfterFork);
                await Fiber.YieldAsync();
                Assert.Same(sub, Fiber.CancelContext);
            });
            switchCtx = sw.CancelContext;
            Assert.Same(sw.CancelContext, Fiber.CancelContext);
        });

        Assert.Equal(parent, parentInSwitch);
        Assert.Equal(parent, parentAfterFork);
        Assert.NotNull(child);
        Assert.NotEqual(parent, child);
        Assert.Equal(child, childAfter);
        Assert.Same(switchCtx, childCtx);
        Assert.Same(switchCtx, childCtxAfter);
    });

    // The outer code of a fiber, awaiting a task that code still running in an ended inner frame of the same fiber completes
    // (a detached task started inside Cancel.SubAsync), resumes inline; an async method with no execution context of its
    // own would then run in that code's context, which still holds the ended inner frame: the outer code must see its own
    // frame (the sub-context is over), not the inner one. (Under EioMain.Run the main fiber's code turned out to have an
    // execution context of its own even on a clean thread, so this checks the outcome, not that the inline path without
    // a context was taken.)
    [Fact]
    public void AnEndedInnerFrameIsNotCurrentForOuterCodeResumedInline() => OnCleanThread(() => EioMain.Run(async _ =>
    {
        var outer = Fiber.CancelContext;
        var tcs = new TaskCompletionSource();
        CancelContext? inner = null;
        bool detachedRan = false;
        Task? detached = null;
        await Cancel.SubAsync(ctx =>
        {
            inner = ctx;
            detached = DetachedAsync();
            return Task.CompletedTask;
        });
        Assert.Same(outer, Fiber.CancelContext);
        await tcs.Task; // completed by the detached code after its yield, and resumed inline in it
        Assert.True(detachedRan);
        Assert.Same(outer, Fiber.CancelContext);
        Assert.NotSame(inner, Fiber.CancelContext);
        await Fiber.YieldAsync();
        Assert.Same(outer, Fiber.CancelContext);
        await detached!;
        Assert.Same(outer, Fiber.CancelContext);

        async Task DetachedAsync()
        {
            await Fiber.YieldAsync();
            detachedRan = true;
            tcs.SetResult();
        }
    }));

    /// <summary>Runs <paramref name="test"/> on a new thread that does not inherit the test runner's execution context.</summary>
    private static void OnCleanThread(Action test)
    {
        Exception? failure = null;
        Thread thread;
        using (ExecutionContext.SuppressFlow())
        {
            thread = new Thread(() =>
            {
                try
                {
                    test();
                }
                catch (Exception ex)
                {
                    failure = ex;
                }
            });
            thread.Start();
        }

        thread.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private static async Task<bool> OffDomainAsync()
    {
        await Task.Delay(1).ConfigureAwait(false);
        return ThrowsNotInFiber(Fiber.Check);
    }

    private static bool ThrowsNotInFiber(Action fiberOperation)
    {
        try
        {
            fiberOperation();
            return false;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }
}
