using EioSharp.Sync;
using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/stream.md, for <see cref="AsyncQueue{T}"/> (S14, S18).</summary>
public class StreamTests
{
    // Capacity 0 is a rendezvous: AddAsync waits until a taker has the item (the second add finds the taker waiting).
    [Theory, BothBackends]
    public void S18_CapacityZeroIsRendezvous(Backend b) => Expect(b, """
        +adding 1
        +taker ready
        +took 1
        +added 1
        +adding 2
        +added 2
        +took 2

        """, async env =>
        {
            var q = new AsyncQueue<int>(0);
            await Fiber.BothAsync(
                async () =>
                {
                    for (int i = 1; i <= 2; i++)
                    {
                        TraceLog.Line($"adding {i}");
                        await q.AddAsync(i);
                        TraceLog.Line($"added {i}");
                    }
                },
                async () =>
                {
                    TraceLog.Line("taker ready");
                    for (int i = 0; i < 2; i++)
                    {
                        TraceLog.Line($"took {await q.TakeAsync()}");
                    }
                });
        });

    // Capacity 1 is a mailbox: the first add completes at once, the second waits for a take.
    [Theory, BothBackends]
    public void S18_CapacityOneIsMailbox(Backend b) => Expect(b, """
        +added a at once, count=1
        +adding b waits
        +took a
        +added b
        +took b

        """, async env =>
        {
            var q = new AsyncQueue<string>(1);
            await q.AddAsync("a");
            TraceLog.Line($"added a at once, count={q.Count}");
            await Fiber.BothAsync(
                async () =>
                {
                    TraceLog.Line("adding b waits");
                    await q.AddAsync("b");
                    TraceLog.Line("added b");
                },
                async () =>
                {
                    TraceLog.Line($"took {await q.TakeAsync()}");
                    await Fiber.YieldAsync();
                    TraceLog.Line($"took {await q.TakeAsync()}");
                });
        });

    // Items and waiters are first come, first served.
    [Theory, BothBackends]
    public void S18_FifoTakers(Backend b) => Expect(b, """
        +t1 got 1
        +t2 got 2
        +t3 got 3

        """, async env =>
        {
            var q = new AsyncQueue<int>(10);
            await Switch.RunAsync(async sw =>
            {
                for (int i = 1; i <= 3; i++)
                {
                    string name = $"t{i}";
                    Fiber.Fork(sw, async () => TraceLog.Line($"{name} got {await q.TakeAsync()}"));
                }

                for (int i = 1; i <= 3; i++)
                {
                    await q.AddAsync(i);
                }
            });
        });

    // Both sides are cancellable; a cancelled add has not added its item.
    [Theory, BothBackends]
    public void S18_CancelledAddDoesNotAdd(Backend b) => Expect(b, """
        +add: Cancelled: TestFailure: give up
        +count=1, next take=first

        """, async env =>
        {
            var q = new AsyncQueue<string>(1);
            await q.AddAsync("first");
            await Describe("add", () => Cancel.SubAsync(async c =>
            {
                await Fiber.BothAsync(
                    async () => await q.AddAsync("second"),
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        c.Cancel(new TestFailure("give up"));
                    });
            }));
            TraceLog.Line($"count={q.Count}, next take={await q.TakeAsync()}");
        });

    // [ext] Close: pending takers fail, buffered items are drained first, adds throw at once, waiting adders fail.
    [Theory, BothBackends]
    public void S18_CloseEndsTheStream(Backend b) => Expect(b, """
        +pending take: StreamClosedException: The queue is closed.
        +pending add: StreamClosedException: The queue is closed.
        +drained x
        +take after drain: StreamClosedException: The queue is closed.
        +add after close: StreamClosedException: The queue is closed.
        +closed=True, close again is fine

        """, async env =>
        {
            var empty = new AsyncQueue<int>(0);
            await Fiber.BothAsync(
                () => Describe("pending take", async () => await empty.TakeAsync()),
                async () =>
                {
                    await Fiber.YieldAsync();
                    empty.Close();
                });
            var full = new AsyncQueue<string>(1);
            await full.AddAsync("x");
            await Fiber.BothAsync(
                () => Describe("pending add", async () => await full.AddAsync("y")),
                async () =>
                {
                    await Fiber.YieldAsync();
                    full.Close();
                });
            TraceLog.Line($"drained {await full.TakeAsync()}");
            await Describe("take after drain", async () => await full.TakeAsync());
            await Describe("add after close", async () => await full.AddAsync("z"));
            full.Close();
            TraceLog.Line($"closed={full.IsClosed}, close again is fine");
        });

    // A taker cancelled after the item was handed over still returns the item (completion won the race).
    [Theory, BothBackends]
    public void S14_CancelledTakeStillReturnsHandedItem(Backend b) => Expect(b, """
        +taker got 1 (cancelled=True)
        +queue empty=True

        """, async env =>
        {
            var q = new AsyncQueue<int>(5);
            CancelContext? ctx = null;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await Cancel.SubAsync(async c =>
                        {
                            ctx = c;
                            int v = await q.TakeAsync();
                            TraceLog.Line($"taker got {v} (cancelled={c.IsCancelled})");
                        });
                    }
                    catch (CancelledException)
                    {
                        TraceLog.Line("(wrong) taker cancelled");
                    }
                });
                await q.AddAsync(1);
                ctx!.Cancel(new TestFailure("too late"));
            });
            TraceLog.Line($"queue empty={q.IsEmpty}");
        });

    // A taker cancelled before an item arrived is skipped: the item goes to the next taker.
    [Theory, BothBackends]
    public void S14_CancelledTakeNeverLosesAnItem(Backend b) => Expect(b, """
        +t1: Cancelled: TestFailure: t1 gives up
        +t2 got 1

        """, async env =>
        {
            var q = new AsyncQueue<int>(0);
            CancelContext? ctx = null;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => Describe("t1", () => Cancel.SubAsync(async c =>
                {
                    ctx = c;
                    TraceLog.Line($"(wrong) t1 got {await q.TakeAsync()}");
                })));
                Fiber.Fork(sw, async () => TraceLog.Line($"t2 got {await q.TakeAsync()}"));
                ctx!.Cancel(new TestFailure("t1 gives up"));
                await q.AddAsync(1);
            });
        });

    // Across domains, takers that time out never lose an item: everything added is taken exactly once.
    [Theory, BothBackends]
    public void S14_TakersThatTimeOutLoseNothingAcrossDomains(Backend b) => Expect(b, """
        +all 3000 items taken once

        """, async env =>
        {
            const int n = 3000;
            var q = new AsyncQueue<int>(0);
            var seen = new bool[n];
            int taken = 0;
            var producer = env.DomainManager.RunAsync(async () =>
            {
                for (int i = 0; i < n; i++)
                {
                    await q.AddAsync(i);
                }
            });
            await Fiber.AllAsync(Enumerable.Range(0, 4).Select<int, Func<Task>>(_ => async () =>
            {
                while (Volatile.Read(ref taken) < n)
                {
                    var r = await env.MonoClock.TryWithTimeoutAsync(TimeSpan.FromTicks(1000), async () => await q.TakeAsync());
                    if (!r.IsTimedOut)
                    {
                        Assert.False(seen[r.Value]);
                        seen[r.Value] = true;
                        taken++;
                    }
                }
            }));
            await producer;
            Assert.True(seen.All(x => x));
            TraceLog.Line($"all {n} items taken once");
        });
}
