using System.Reflection;

namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (session 14): a race's group reused per thread once its race has finished, a fiber without a name field
/// (names in <see cref="NamedFiber"/>) and a switch's singly linked list of live fibers with deferred sweeps.</summary>
public class FiberSizeTests
{
    /// <summary>This thread's spare race group for result type <typeparamref name="T"/> (a private thread static).</summary>
    private static object? SpareRaceGroup<T>()
    {
        var open = typeof(Fiber).GetNestedType("ChildGroup`1", BindingFlags.NonPublic)!;
        var field = open.MakeGenericType(typeof(T)).GetField("t_spareRace", BindingFlags.NonPublic | BindingFlags.Static)!;
        return field.GetValue(null);
    }

    // Successive races on one thread reuse one group, and each starts clean: a failure, a value, the count of successes
    // (which decides whether a success is combined) and the combining function of an earlier race do not leak into the next.
    [Fact]
    public void SuccessiveRacesReuseOneGroupAndStartClean() => EioMain.Run(async _ =>
    {
        var boom = new InvalidOperationException("boom");
        var failed = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Fiber.FirstAsync<int>(
            async () =>
            {
                await Fiber.YieldAsync();
                throw boom;
            },
            async () =>
            {
                await Fiber.AwaitCancelAsync();
                return 0;
            }));
        Assert.Same(boom, failed);
        var spare = SpareRaceGroup<int>();
        Assert.NotNull(spare);

        // After a failure: a plain win.
        int second = await Fiber.FirstAsync(
            async () =>
            {
                await Fiber.YieldAsync();
                return 2;
            },
            async () =>
            {
                await Fiber.AwaitCancelAsync();
                return 0;
            });
        Assert.Equal(2, second);
        Assert.Same(spare, SpareRaceGroup<int>());

        // Every function succeeds without suspending: all are combined with this race's function (S11).
        int sum = await Fiber.AnyAsync<int>([() => Task.FromResult(1), () => Task.FromResult(2), () => Task.FromResult(3)], (a, b) => a + b);
        Assert.Equal(6, sum);
        Assert.Same(spare, SpareRaceGroup<int>());

        // No combining function now: the first success is kept, not combined with the last race's function.
        int first = await Fiber.AnyAsync<int>([() => Task.FromResult(10), () => Task.FromResult(20)]);
        Assert.Equal(10, first);

        // A race inside a race's function: the inner one gets a group of its own while the outer one's is in use.
        int outer = await Fiber.FirstAsync(
            async () =>
            {
                await Fiber.AwaitCancelAsync();
                return 0;
            },
            async () =>
            {
                int inner = await Fiber.FirstAsync(
                    async () =>
                    {
                        await Fiber.YieldAsync();
                        return 5;
                    },
                    async () =>
                    {
                        await Fiber.AwaitCancelAsync();
                        return 0;
                    });
                Assert.Equal(5, inner);
                Assert.NotSame(spare, SpareRaceGroup<int>()); // the inner race's group, spare again; the outer one still runs
                return inner + 1;
            });
        Assert.Equal(6, outer);
        Assert.NotNull(SpareRaceGroup<int>());

        // Many races in a loop, each continuing the caller inline from the previous one's end: all right.
        for (int i = 0; i < 200; i++)
        {
            int v = i;
            int got = await Fiber.FirstAsync(
                async () =>
                {
                    await Fiber.YieldAsync();
                    return v;
                },
                async () =>
                {
                    await Fiber.AwaitCancelAsync();
                    return -1;
                });
            Assert.Equal(i, got);
        }
    });

    // Fibers that finish out of order (not the newest) stay linked in their switch's list only until a sweep: the list does
    // not grow with every fiber that ever ran, dumps show only live fibers, and named fibers keep their names.
    [Fact]
    public void FibersFinishedOutOfOrderLeaveTheSwitchListAndDumps() => EioMain.Run(async _ =>
    {
        const int Rounds = 20;
        const int PerRound = 50;
        using var tracking = EioDiagnostics.TrackFibers();
        var (stop, stopResolver) = Promise.Create<bool>();
        await Switch.RunAsync(async sw =>
        {
            for (int r = 0; r < Rounds; r++)
            {
                var resolvers = new List<Resolver<bool>>();
                for (int i = 0; i < PerRound; i++)
                {
                    var (p, resolver) = Promise.Create<bool>();
                    resolvers.Add(resolver);
                    Fiber.Fork(sw, async () => await p.AwaitAsync());
                }

                // The newest fiber of the round stays live, so the others (older) finish behind it.
                Fiber.Fork(sw, async () => await stop.AwaitAsync(), "sentinel");
                foreach (var resolver in resolvers)
                {
                    resolver.Resolve(true);
                }

                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
            }

            int linked = 0;
            int finished = 0;
            for (var f = sw.LiveFibers; f is not null; f = f.NextLive)
            {
                linked++;
                if (f.Finished)
                {
                    finished++;
                }
            }

            Assert.Equal(Rounds, linked - finished);
            Assert.True(finished <= 2 * PerRound, $"{finished} finished fibers still linked (of {Rounds * PerRound})");

            string dump = sw.Dump();
            Assert.Equal(Rounds, dump.Split("(sentinel)").Length - 1);
            Assert.DoesNotContain("finished", dump);
            stopResolver.Resolve(true);
        });
    });

    // A fiber forked with a name is a NamedFiber and reports its name; one forked without is a plain, smaller fiber.
    [Fact]
    public void OnlyNamedFibersCarryANameObject() => EioMain.Run(_ => Switch.RunAsync(sw =>
    {
        FiberInfo? named = null;
        FiberInfo? plain = null;
        Fiber.Fork(sw, () =>
        {
            named = FiberFrame.CurrentFiber;
            return Task.CompletedTask;
        }, "worker");
        Fiber.Fork(sw, () =>
        {
            plain = FiberFrame.CurrentFiber;
            return Task.CompletedTask;
        });
        Assert.IsType<NamedFiber>(named);
        Assert.Equal("worker", named!.Name);
        Assert.Contains("(worker)", named.ToString());
        Assert.IsType<ForkedFiber>(plain);
        Assert.Null(plain!.Name);
        Assert.Equal("main", FiberFrame.CurrentFiber!.Name);
        return Task.CompletedTask;
    }));

    /// <summary>Bytes per object made by <paramref name="make"/>, over 1,000 of them kept alive (an exact count: the
    /// allocation is the objects' own, the array is made first).</summary>
    private static long BytesPerObject(Func<object> make)
    {
        var keep = new object[1000];
        make(); // once before counting: the constructor and id block are set up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < keep.Length; i++)
        {
            keep[i] = make();
        }

        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        GC.KeepAlive(keep);
        return bytes / keep.Length;
    }

    // Issue 20, h130: the fiber objects' sizes, exact (a layout, not a timing: the same on every backend and tier). A racer's
    // (or group child's, or promise's) fiber is a plain FiberInfo of 72 B: no Body (a forked fiber's field), no flag bytes
    // (two bits of the id) and no trace carry epoch (a named fiber's field). A forked fiber is 80 B, a named one 96. One
    // more field of 8 B, or the two flags as bools again, makes the fiber 8 B larger and fails this.
    [Fact]
    public void FibersAre72BytesPlain80Forked96Named() => EioMain.Run(_ =>
    {
        var cancel = FiberFrame.Current!.Cancel;
        Assert.Equal(72, BytesPerObject(() => new FiberInfo(cancel, null)));
        Assert.Equal(80, BytesPerObject(() => new ForkedFiber(cancel, null)));
        Assert.Equal(96, BytesPerObject(() => new NamedFiber("n", cancel, null)));
        return Task.CompletedTask;
    });

    // The flags kept in the id's high bits (h130) do not change the id, nor each other: a daemon is not finished, a finished
    // fiber keeps its id and its daemon flag, and ids still increase on a thread.
    [Fact]
    public void FiberFlagsDoNotDisturbTheIdNorEachOther() => EioMain.Run(async _ =>
    {
        FiberInfo? daemon = null;
        FiberInfo? plain = null;
        long daemonId = 0;
        var (stop, stopResolver) = Promise.Create<bool>();
        await Switch.RunAsync(async sw =>
        {
            Fiber.ForkDaemon(sw, async () =>
            {
                daemon = FiberFrame.CurrentFiber;
                daemonId = daemon!.Id;
                await stop.AwaitAsync();
            });
            Fiber.Fork(sw, () =>
            {
                plain = FiberFrame.CurrentFiber;
                return Task.CompletedTask;
            });
            Assert.True(daemon!.Daemon);
            Assert.False(daemon.Finished);
            Assert.False(plain!.Daemon);
            Assert.True(plain.Finished);
            Assert.Equal(daemonId + 1, plain.Id); // the next id on this thread: the daemon bit is not part of the id
            Assert.InRange(daemonId, 1, long.MaxValue >> 4);
            stopResolver.Resolve(true);
            await Fiber.YieldAsync();
        });

        Assert.True(daemon!.Finished);
        Assert.True(daemon.Daemon);
        Assert.Equal(daemonId, daemon.Id);
        Assert.False(FiberFrame.CurrentFiber!.Finished);
        Assert.False(FiberFrame.CurrentFiber.Daemon);
    });
}
