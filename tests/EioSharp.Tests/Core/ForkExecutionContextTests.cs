namespace EioSharp.Tests.Core;

/// <summary>Session 14 (issues 20/14): a forked fiber does not inherit its parent's inner frame (the sub-switch, group or
/// sub-context the fork was made in, carried by an <see cref="AsyncLocal{T}"/>), so a fiber forked in a switch body runs in
/// the default execution context and its resumes switch no context in and out; users' own async locals and fiber-local
/// bindings still flow into the child, and the parent keeps its frame.</summary>
public class ForkExecutionContextTests
{
    private static readonly AsyncLocal<string?> s_user = new();

    private static ExecutionContext DefaultContext() => ExecutionContexts.Default();

    [Fact]
    public void AFiberForkedInASwitchBodyRunsInTheDefaultContextBeforeAndAfterItsFirstSuspension()
    {
        var defaultContext = DefaultContext();
        EioMain.Run(async _ =>
        {
            ExecutionContext? body = null, childAtStart = null, childResumed = null, promiseChild = null, groupChild = null;
            await Switch.RunAsync(async sw =>
            {
                body = ExecutionContext.Capture();
                Fiber.Fork(sw, async () =>
                {
                    childAtStart = ExecutionContext.Capture();
                    await Fiber.YieldAsync();
                    childResumed = ExecutionContext.Capture();
                });
                var p = Fiber.ForkPromise(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    promiseChild = ExecutionContext.Capture();
                    return 1;
                });
                await Fiber.BothAsync(
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        groupChild = ExecutionContext.Capture();
                    },
                    () => Task.CompletedTask);
                Assert.Equal(1, await p.AwaitAsync());

                // The switch body itself runs in the default context too (h117: its frame is the installed synchronization
                // context, not an async local).
                Assert.Same(defaultContext, ExecutionContext.Capture());
            });

            Assert.Same(defaultContext, body);
            Assert.Same(defaultContext, childAtStart);
            Assert.Same(defaultContext, childResumed);
            Assert.Same(defaultContext, promiseChild);
            Assert.Same(defaultContext, groupChild);
        });
    }

    [Fact]
    public void UserAsyncLocalsAndFiberLocalsStillFlowIntoForkedFibersAndTheParentKeepsItsFrame() => EioMain.Run(async _ =>
    {
        var key = new FiberLocal<int>();
        string? seenAtStart = null, seenResumed = null, seenInPromise = null;
        int boundInChild = -1;
        CancelContext? parentContextAfterFork = null, childContext = null;
        await Switch.RunAsync(async sw =>
        {
            s_user.Value = "parent";
            await key.WithBindingAsync(7, async () =>
            {
                var bodyContext = Fiber.CancelContext;
                Fiber.Fork(sw, async () =>
                {
                    seenAtStart = s_user.Value;
                    childContext = Fiber.CancelContext;
                    s_user.Value = "child"; // the child's own: not seen by the parent
                    await Fiber.YieldAsync();
                    seenResumed = s_user.Value;
                    boundInChild = key.GetValueOrDefault(-2);
                });
                parentContextAfterFork = Fiber.CancelContext;
                Assert.Same(bodyContext, parentContextAfterFork);
                var p = Fiber.ForkPromise(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    seenInPromise = s_user.Value;
                    return key.GetValueOrDefault(-2);
                });
                Assert.Equal(7, await p.AwaitAsync());
                return 0;
            });

            Assert.Equal("parent", s_user.Value);
            Assert.Same(sw.CancelContext, Fiber.CancelContext); // still in the sub-switch's frame after forking
        });

        Assert.Equal("parent", seenAtStart);
        Assert.Equal("child", seenResumed);
        Assert.Equal("parent", seenInPromise);
        Assert.Equal(7, boundInChild);
        Assert.NotNull(childContext);
        Assert.Null(s_user.Value); // the switch body's value was scoped to it
    });

    // Forks inside one frame with a user async local set reuse one context for their children (the per-thread one-entry
    // cache): every child sees the value and none sees another's.
    [Fact]
    public void ManyForksInOneFrameWithAUserLocalEachSeeTheValue() => EioMain.Run(async _ =>
    {
        int ok = 0;
        await Switch.RunAsync(async sw =>
        {
            s_user.Value = "v";
            for (int i = 0; i < 100; i++)
            {
                int n = i;
                Fiber.Fork(sw, async () =>
                {
                    if (s_user.Value == "v")
                    {
                        s_user.Value = "mine" + n;
                        await Fiber.YieldAsync();
                        if (s_user.Value == "mine" + n)
                        {
                            ok++;
                        }
                    }
                });
            }

            await Fiber.YieldAsync();
            Assert.Equal("v", s_user.Value);
        });

        Assert.Equal(100, ok);
    });
}
