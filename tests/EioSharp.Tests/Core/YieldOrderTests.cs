namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (h151): what a yield must keep even when the run queue is empty, and what a fiber spinning on
/// <c>Fiber.YieldAsync</c> must still let in. The first two are why a yield cannot complete synchronously when "nothing
/// else can run" (the code that would run next is on the stack, not in the run queue; rationale §146); the last two pin
/// the number of yields after which work already waiting (a post from another thread, a due timer) has run, which any
/// change to the run loop's rounds must keep. Counts, not times: each spin starts after the work is in place.</summary>
public class YieldOrderTests
{
    // S12: Fork runs the child up to its first suspension, then the parent goes on. The parent is not in the run queue while
    // the child runs (it is below the child on the stack), so the child's yield finds the queue empty and must still return.
    [Fact]
    public void S12_AChildYieldingInALoopLetsItsParentGoOnAfterItsFirstYield() => EioMain.Run(async _ =>
    {
        int spins = 0;
        bool stop = false;
        await Switch.RunAsync(sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                while (!stop)
                {
                    await Fiber.YieldAsync();
                    spins++;
                }
            });

            stop = true; // runs after the child's first yield, before its resumption
            return Task.CompletedTask;
        });

        Assert.Equal(1, spins);
    });

    // A yield inside a method the fiber called without awaiting it yet returns to that caller first (as Task.Yield does):
    // the caller's next statement runs before the code after the yield, although nothing else is queued on the domain.
    [Fact]
    public void S12_AYieldReturnsToTheCallerOfAMethodNotYetAwaited() => EioMain.Run(async _ =>
    {
        var log = new List<string>();

        async Task Helper()
        {
            await Fiber.YieldAsync();
            log.Add("after the yield");
        }

        var helper = Helper();
        log.Add("caller");
        await helper;
        Assert.Equal(["caller", "after the yield"], log);
    });

    // A post from another thread that is already in the domain's inbox when a fiber starts to spin runs in the next round:
    // the fiber's first resumption comes before it (queued earlier), its second after it.
    [Fact]
    public void S12_ASpinningFiberLetsAPostFromAnotherThreadInAfterTwoYields() => EioMain.Run(async _ =>
    {
        var context = SynchronizationContext.Current!;
        bool posted = false;
        // From a thread of its own (Task.Run(...).Wait() may run the task inline on the domain's thread: a local post).
        var poster = new Thread(() => context.Post(_ => posted = true, null));
        poster.Start();
        poster.Join(); // in the inbox now (the domain blocks meanwhile)
        int yields = 0;
        while (!posted)
        {
            await Fiber.YieldAsync();
            yields++;
        }

        Assert.Equal(2, yields);
    });

    // A timer that is due when a fiber starts to spin fires at the start of the next round: the sleeper's continuation is
    // queued behind the spinner's first resumption, so the spinner sees it after its second yield.
    [Fact]
    public void S12_ASpinningFiberLetsADueTimerInAfterTwoYields() => EioMain.Run(async env =>
    {
        bool fired = false;
        int yields = 0;
        await Switch.RunAsync(async sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
                fired = true;
            });

            Thread.Sleep(30); // the domain blocked past the deadline: the timer is due before the first yield
            while (!fired)
            {
                await Fiber.YieldAsync();
                yields++;
            }
        });

        Assert.Equal(2, yields);
    });
}
