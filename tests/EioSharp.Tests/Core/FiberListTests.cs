using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's Fiber.List.filter / filter_map: concurrent, bounded by max_fibers, results in input order.</summary>
public class FiberListTests
{
    // With maxFibers 2 the items start in order, two at a time as a worker frees up; 4 (one yield) finishes before 3 (two)
    // but the result keeps the input order.
    [Theory, BothBackends]
    public void FilterMapKeepsInputOrderAndLimitsFibers(Backend b) => Expect(b, """
        +start 1
        +start 2
        +done 2
        +start 3
        +done 1
        +start 4
        +done 4
        +done 3
        +kept 2 4 and squares 4 16

        """, async env =>
        {
            int[] items = [1, 2, 3, 4];
            var kept = await Fiber.FilterAsync(
                items,
                async i =>
                {
                    TraceLog.Line($"start {i}");
                    for (int y = 0; y < (i % 2 == 1 ? 2 : 1); y++)
                    {
                        await Fiber.YieldAsync(); // odd items take longer
                    }

                    TraceLog.Line($"done {i}");
                    return i % 2 == 0;
                },
                maxFibers: 2);
            var squares = await Fiber.FilterMapAsync<int, int>(items, i => Task.FromResult((i % 2 == 0, i * i)));
            TraceLog.Line($"kept {string.Join(' ', kept)} and squares {string.Join(' ', squares)}");
        });

    // The first failure cancels the other items and is the caller's exception.
    [Theory, BothBackends]
    public void FilterFailureCancelsTheOthers(Backend b) => Expect(b, """
        +2 cancelled: Cancelled: TestFailure: 1 failed
        +filter: TestFailure: 1 failed

        """, async env =>
        {
            await Describe("filter", () => Fiber.FilterAsync<int>(
                [1, 2],
                async i =>
                {
                    if (i == 1)
                    {
                        await Fiber.YieldAsync();
                        throw new TestFailure("1 failed");
                    }

                    await Traced("2", () => Fiber.AwaitCancelAsync());
                    return true;
                }));
        });
}

/// <summary>Eio's Fiber.fork_sub and Switch.get_error / null_hook.</summary>
public class ForkSubTests
{
    // A failing child switch goes to onError and leaves the parent switch running; a sibling is not cancelled.
    [Theory, BothBackends]
    public void ForkSubFailureGoesToOnErrorNotToTheParent(Backend b) => Expect(b, """
        +child starts
        +sibling starts
        +onError: TestFailure: child failed
        +sibling done
        +parent error: none

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkSub(sw, ex => TraceLog.Line($"onError: {ex.GetType().Name}: {ex.Message}"), async csw =>
                {
                    TraceLog.Line("child starts");
                    await Fiber.YieldAsync();
                    throw new TestFailure("child failed");
                });
                Fiber.Fork(sw, async () =>
                {
                    TraceLog.Line("sibling starts");
                    await Fiber.YieldAsync();
                    await Fiber.YieldAsync();
                    TraceLog.Line("sibling done");
                });
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                TraceLog.Line($"parent error: {sw.GetError()?.Message ?? "none"}");
            });
        });

    // If onError throws, the parent fails with both exceptions (S3 combining).
    [Theory, BothBackends]
    public void ForkSubOnErrorThatThrowsFailsTheParentWithBoth(Backend b) => Expect(b, """
        +switch: Multiple: [TestFailure: child failed; TestFailure: handler failed]

        """, async env =>
        {
            await Describe("switch", () => Switch.RunAsync(sw =>
            {
                Fiber.ForkSub(sw, _ => throw new TestFailure("handler failed"), _ => throw new TestFailure("child failed"));
                return Task.CompletedTask;
            }));
        });

    [Fact]
    public void GetErrorAndNullHook()
    {
        EioSharp.Mock.MockMain.Run(async env =>
        {
            Switch? done = null;
            await Switch.RunAsync(async sw =>
            {
                done = sw;
                Assert.Null(sw.GetError());
                sw.Fail(new TestFailure("stop"));
                Assert.IsType<CancelledException>(sw.GetError());
                await Task.CompletedTask;
            }).ContinueWith(_ => { });
            Assert.IsType<InvalidOperationException>(done!.GetError());
            Assert.False(ReleaseHook.Null.Remove());
            Assert.False(ReleaseHook.Null.Remove());
        });
    }
}

/// <summary>Eio's Fiber.fork_seq: the generator runs only when the consumer asks for the next item.</summary>
public class ForkSeqTests
{
    [Theory, BothBackends]
    public void GeneratorRunsOnDemandAndEndsTheSequence(Backend b) => Expect(b, """
        +consumer asks
        +generator yields 1
        +consumer got 1
        +generator yields 2
        +consumer got 2
        +generator done
        +sequence ended

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var seq = Fiber.ForkSeq<int>(sw, async yield =>
                {
                    for (int i = 1; i <= 2; i++)
                    {
                        TraceLog.Line($"generator yields {i}");
                        await yield(i);
                    }

                    TraceLog.Line("generator done");
                });
                TraceLog.Line("consumer asks");
                await foreach (int x in seq)
                {
                    TraceLog.Line($"consumer got {x}");
                }

                TraceLog.Line("sequence ended");
            });
        });

    [Theory, BothBackends]
    public void StoppingEarlyEndsTheGeneratorAndAGeneratorErrorReachesTheConsumer(Backend b) => Expect(b, """
        +got 1, stopping
        +generator stopped: OperationCanceledException
        +consumer: TestFailure: generator broke

        """, async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                await foreach (int x in Fiber.ForkSeq<int>(sw, async yield =>
                {
                    try
                    {
                        await yield(1);
                        await yield(2);
                    }
                    catch (OperationCanceledException e)
                    {
                        TraceLog.Line($"generator stopped: {e.GetType().Name}");
                        throw;
                    }
                }))
                {
                    TraceLog.Line($"got {x}, stopping");
                    break;
                }

                await Fiber.YieldAsync();
                await Describe("consumer", async () =>
                {
                    await foreach (int x in Fiber.ForkSeq<int>(sw, _ => throw new TestFailure("generator broke")))
                    {
                        TraceLog.Line($"unexpected {x}");
                    }
                });
            });
        });
}
