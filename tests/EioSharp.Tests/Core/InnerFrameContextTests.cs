namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (h117): a fiber's inner frames (a switch body, sub-context, protect, group, race) are the synchronization
/// context installed on the domain's thread, not an <see cref="AsyncLocal{T}"/>: code in them runs in the default execution
/// context, sees its own frame whoever resumes it, and code running concurrently in the same fiber
/// (<c>Task.WhenAll(a(), b())</c>, S17b) keeps the frames of its own async calls, as the async local gave.</summary>
public class InnerFrameContextTests
{
    private static ExecutionContext DefaultContext() => ExecutionContexts.Default();

    // Every kind of inner frame: its code runs in the default execution context before and after it suspends (a yield, a
    // promise, a task completed by another fiber), and sees the frame's own cancel context each time.
    [Fact]
    public void CodeInAnInnerFrameRunsInTheDefaultContextAndSeesItsFrameAfterEachSuspension()
    {
        var defaultContext = DefaultContext();
        var seen = new List<(string Where, bool DefaultContext, bool OwnCancel)>();
        EioMain.Run(async _ =>
        {
            var outer = Fiber.CancelContext;
            await Switch.RunAsync(async sw =>
            {
                var (p, r) = Promise.Create<int>();
                var tcs = new TaskCompletionSource();
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    r.Resolve(1);
                    await Fiber.YieldAsync();
                    tcs.SetResult();
                });
                await Check("switch body", sw.CancelContext, p, tcs.Task);
                await Cancel.SubAsync(async c => await Check("sub-context", c, null, null));
                await Cancel.ProtectAsync(async () => await Check("protect", Fiber.CancelContext, null, null));
                await Fiber.BothAsync(() => Task.CompletedTask, async () => await Check("group's last function", Fiber.CancelContext, null, null));
                int v = await Fiber.FirstAsync(
                    async () => { for (int i = 0; i < 5; i++) { await Fiber.YieldAsync(); } return 2; },
                    async () => { await Check("race's last function", Fiber.CancelContext, null, null); return 3; });
                Assert.Equal(3, v);
                Assert.Same(sw.CancelContext, Fiber.CancelContext);
            });
            Assert.Same(outer, Fiber.CancelContext);
        });

        Assert.Equal(4 + (4 * 3), seen.Count); // the switch body checks at 4 points, the other four frames at 3
        Assert.All(seen, s => Assert.True(s.DefaultContext, $"{s.Where}: not the default execution context"));
        Assert.All(seen, s => Assert.True(s.OwnCancel, $"{s.Where}: not its frame's cancel context"));

        async Task Check(string where, CancelContext own, Promise<int>? p, Task? task)
        {
            Record(where + " at its start", own);
            await Fiber.YieldAsync();
            Record(where + " after a yield", own);
            if (p is not null)
            {
                await p.AwaitAsync();
                Record(where + " after a promise", own);
            }

            if (task is not null)
            {
                await task;
                Record(where + " after a task", own);
            }
            else
            {
                await Fiber.YieldAsync();
                Record(where + " after a second yield", own);
            }
        }

        void Record(string where, CancelContext own) =>
            seen.Add((where, ReferenceEquals(ExecutionContext.Capture(), defaultContext), ReferenceEquals(own, Fiber.CancelContext)));
    }

    // S17b: two async calls of one fiber run concurrently (Task.WhenAll). a() opens a switch and suspends in its body; b()
    // runs meanwhile and must not be in a's switch: its forks go to its own switch, its cancel context is not cancelled when
    // a's switch fails, and a's switch ends (out of order: b's sub-context is still open) without disturbing b's frame.
    [Fact]
    public void S17b_ConcurrentCodeInOneFiberKeepsTheFramesOfItsOwnCalls() => EioMain.Run(async _ =>
    {
        var outer = Fiber.CancelContext;
        var (aInSwitch, aInSwitchR) = Promise.Create<bool>();
        var (bInSub, bInSubR) = Promise.Create<bool>();
        var (aEnded, aEndedR) = Promise.Create<bool>();
        CancelContext? aSwitch = null, bSub = null;
        var bSaw = new List<bool>();
        var aTcs = new TaskCompletionSource();
        bool aCancelledSeen = false;

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => Task.WhenAll(A(), B()));
        Assert.Equal("a fails", failure.Message);
        Assert.Same(outer, Fiber.CancelContext);
        Assert.All(bSaw, Assert.True);
        Assert.Equal(5, bSaw.Count);
        Assert.True(aCancelledSeen);
        Assert.False(bSub!.IsCancelled);

        async Task A()
        {
            try
            {
                await RunSwitch();
            }
            finally
            {
                aEndedR.Resolve(true);
            }
        }

        Task RunSwitch()
        {
            return Switch.RunAsync(async sw =>
            {
                aSwitch = sw.CancelContext;
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await Promise.Create<int>().Promise.AwaitAsync(); // never resolved: ends by cancellation
                    }
                    catch (CancelledException)
                    {
                        aCancelledSeen = true;
                        throw;
                    }
                });
                aInSwitchR.Resolve(true);
                await bInSub.AwaitAsync(); // b runs now, in its own calls' frames
                Assert.Same(sw.CancelContext, Fiber.CancelContext);
                aTcs.SetResult(); // b awaits this: its continuation is b's, not run in a's switch frame
                await Fiber.YieldAsync();
                Assert.Same(sw.CancelContext, Fiber.CancelContext);
                throw new InvalidOperationException("a fails");
            });
        }

        async Task B()
        {
            bSaw.Add(ReferenceEquals(outer, Fiber.CancelContext)); // a is suspended in its switch body
            await aInSwitch.AwaitAsync();
            bSaw.Add(ReferenceEquals(outer, Fiber.CancelContext));
            await Cancel.SubAsync(async c =>
            {
                bSub = c;
                bInSubR.Resolve(true);
                await aTcs.Task;
                bSaw.Add(ReferenceEquals(c, Fiber.CancelContext));
                await aEnded.AwaitAsync(); // a's switch failed and ended meanwhile, while this sub-context stays open
                bSaw.Add(ReferenceEquals(c, Fiber.CancelContext) && !c.IsCancelled);
            });
            bSaw.Add(ReferenceEquals(outer, Fiber.CancelContext));
        }
    });

    // A switch's end puts the caller's frame back before its task completes, so the caller's await resumes inline in the
    // switch's last step, as a switch body's await of its own code does: no extra turn through the run queue (S12 order).
    [Fact]
    public void S12_TheCallerOfASwitchResumesInlineWhenTheSwitchEnds() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Switch.RunAsync(sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                await Switch.RunAsync(async _ => await Fiber.YieldAsync());
                log.Add("a after its switch");
                await Cancel.SubAsync(async _ => await Fiber.YieldAsync());
                log.Add("a after its sub-context");
            });
            Fiber.Fork(sw, async () =>
            {
                await Fiber.YieldAsync();
                log.Add("b 1");
                await Fiber.YieldAsync();
                log.Add("b 2");
            });
            return Task.CompletedTask;
        });

        Assert.Equal(["a after its switch", "b 1", "a after its sub-context", "b 2"], log);
    });

    // An await without the scheduling context (ConfigureAwait(false)) of a library wait in a switch body resumes on the
    // domain in the body's frame: the waiter keeps the frame it was awaited in, not only the fiber.
    [Fact]
    public void AContextFreeAwaitInASwitchBodyResumesInTheBodysFrame() => EioMain.Run(async _ =>
    {
        await Switch.RunAsync(async sw =>
        {
            var (p, r) = Promise.Create<int>();
            Fiber.Fork(sw, async () =>
            {
                await Fiber.YieldAsync();
                r.Resolve(4);
            });
            Assert.Equal(4, await p.AwaitAsync().ConfigureAwait(false));
            Assert.Same(sw.CancelContext, Fiber.CancelContext);
        });
    });
}
