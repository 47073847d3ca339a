namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (session 18, h121): a cancel context keeps its child contexts and its token source in one field (a list,
/// a source, or both). Whatever the order they were made in, cancelling the context reaches every child and fires its
/// token, and a finished child leaves its parent.</summary>
public class CancelContextMoreTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CancellingReachesChildrenAndTokenWhicheverCameFirst(bool tokenFirst) => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Cancel.SubAsync(async outer =>
        {
            CancellationToken token = default;
            if (tokenFirst)
            {
                token = outer.Token;
            }

            await Fiber.AllAsync(
            [
                () => Cancel.SubAsync(async _ =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException)
                    {
                        log.Add("child-a");
                    }
                }),
                () => Cancel.SubAsync(async _ =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException)
                    {
                        log.Add("child-b");
                    }
                }),
                async () =>
                {
                    await Fiber.YieldAsync();
                    if (!tokenFirst)
                    {
                        token = outer.Token; // taken while the two children are open
                    }

                    token.Register(() => log.Add("token"));
                    outer.Cancel(new TimeoutException("stop"));
                },
            ]);
            Assert.True(token.IsCancellationRequested);
        });
        Assert.Equal(["child-a", "child-b", "token"], log.Order().ToList());
    });

    // Children that finished leave their parent: cancelling the parent later reaches only the open one.
    [Fact]
    public void FinishedChildrenLeaveTheirParent() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Cancel.SubAsync(async outer =>
        {
            for (int i = 0; i < 3; i++)
            {
                await Cancel.SubAsync(_ => Task.CompletedTask); // made and finished: detached
            }

            Assert.False(outer.Token.IsCancellationRequested); // a token source next to the (finished) children
            await Fiber.AllAsync(
            [
                () => Cancel.SubAsync(async _ =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                    }
                    catch (CancelledException)
                    {
                        log.Add("open-child");
                    }
                }),
                async () =>
                {
                    await Fiber.YieldAsync();
                    outer.Cancel(new TimeoutException("stop"));
                },
            ]);
        });
        Assert.Equal(["open-child"], log);
    });
}
