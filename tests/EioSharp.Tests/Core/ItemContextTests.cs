namespace EioSharp.Tests.Core;

/// <summary>A scheduler round installs a work item's synchronization context only when the thread holds another one
/// (issue 20, h161, rationale §157): an item that changed the thread's context itself must not leave it to the next item of
/// the same fiber, whose frame the round compares with the thread's context, not with the item before.</summary>
public class ItemContextTests
{
    [Fact]
    public void An_item_that_clears_the_context_does_not_leave_it_to_its_fibers_next_item() => EioMain.Run(async _ =>
    {
        var frame = SynchronizationContext.Current;
        Assert.NotNull(frame);
        for (int i = 0; i < 3; i++)
        {
            var yield = Fiber.YieldAsync();
            SynchronizationContext.SetSynchronizationContext(null); // this item ends with no context installed
            await yield;
            Assert.Same(frame, SynchronizationContext.Current);
        }
    });

    [Fact]
    public void An_item_that_installs_another_context_does_not_leave_it_to_its_fibers_next_item() => EioMain.Run(async _ =>
    {
        var frame = SynchronizationContext.Current;
        Assert.NotNull(frame);
        var other = new SynchronizationContext();
        for (int i = 0; i < 3; i++)
        {
            var yield = Fiber.YieldAsync();
            SynchronizationContext.SetSynchronizationContext(other); // this item ends with a foreign context installed
            await yield;
            Assert.Same(frame, SynchronizationContext.Current);
        }
    });

    [Fact]
    public void Two_fibers_yielding_in_turn_each_resume_with_their_own_frame() => EioMain.Run(async _ =>
    {
        var frames = new SynchronizationContext?[2];
        int mismatches = 0;
        await Fiber.BothAsync(
            async () =>
            {
                frames[0] = SynchronizationContext.Current;
                for (int i = 0; i < 10; i++)
                {
                    await Fiber.YieldAsync();
                    mismatches += ReferenceEquals(SynchronizationContext.Current, frames[0]) ? 0 : 1;
                }
            },
            async () =>
            {
                frames[1] = SynchronizationContext.Current;
                for (int i = 0; i < 10; i++)
                {
                    await Fiber.YieldAsync();
                    mismatches += ReferenceEquals(SynchronizationContext.Current, frames[1]) ? 0 : 1;
                }
            });

        Assert.NotSame(frames[0], frames[1]);
        Assert.Equal(0, mismatches);
    });
}
