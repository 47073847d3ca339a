using EioSharp.Backends;
using EioSharp.Sync;
using EioSharp.Tests.Backends;
using Xunit.Abstractions;

namespace EioSharp.Tests.Core;

/// <summary>
/// Session 25 (h157, from h156's wedged store loop, rationale §150/§152): a fiber that loops
/// <c>Fiber.FirstAsync(take from an AsyncQueue, sleep on the monotonic clock)</c> while producers on other domains, a plain
/// thread and a sibling fiber put items at random moments, on every backend, with and without
/// <see cref="Domain.HintNextWait"/> before each race (the KV store loop's hinted wait, §148). Checked by count, never by
/// time: every item put is taken exactly once (none lost by a cancelled loser, none twice), the loop ends (every item
/// arrives), and a cancellation from outside (the switch failed, as a shutdown does; the queue closed, as the KV server's
/// SIGTERM does) ends the loop with nothing lost. A hang fails the test through a generous guard on a separate thread
/// instead of hanging the run.
/// </summary>
[Collection("FdCount")]
public class FirstTakeSleepRaceTests(ITestOutputHelper output)
{
    private const int DomainProducers = 2;
    private const int ItemsPerProducer = 1500;
    private const int Producers = DomainProducers + 2; // + a plain thread + a fiber on the consumer's domain
    private const int Total = Producers * ItemsPerProducer;

    /// <summary>How long a case may take before it counts as wedged (a guard only: the cases take about a second).</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(3);

    public static TheoryData<EioBackend, bool, bool, bool> Cases()
    {
        var data = new TheoryData<EioBackend, bool, bool, bool>();
        foreach (var backend in new[] { EioBackend.Portable, EioBackend.Epoll, EioBackend.Uring })
        {
            foreach (bool takeFirst in new[] { true, false })
            {
                foreach (bool hint in new[] { false, true })
                {
                    foreach (bool typed in new[] { false, true })
                    {
                        data.Add(backend, takeFirst, hint, typed);
                    }
                }
            }
        }

        return data;
    }

    public static TheoryData<EioBackend, bool> StopCases()
    {
        var data = new TheoryData<EioBackend, bool>();
        foreach (var backend in new[] { EioBackend.Portable, EioBackend.Epoll, EioBackend.Uring })
        {
            data.Add(backend, false);
            data.Add(backend, true);
        }

        return data;
    }

    /// <summary>What a run counted (read by the guard when the run hangs, hence the fields).</summary>
    private sealed class Progress
    {
        public readonly int[] Seen = new int[Total];
        public int Put;
        public readonly int[] PutBy = new int[Producers]; // items each producer added (its ids are the first of its range)
        public int Taken;
        public long Races;
        public long SleepWins;
        public long LateTakes; // the sleep finished and the take still returned an item (its cancellation lost): kept
        public long Dropped; // typed races: an item the take returned that the race's value did not carry (must stay 0)
        public int Drained; // taken after the loop ended (left in the queue by a cancelled take)
        public long ThrownTakes; // the race threw (stopped from outside) after its take had stored an item

        public override string ToString() =>
            $"put {Volatile.Read(ref Put)}, taken {Volatile.Read(ref Taken)}, races {Interlocked.Read(ref Races)}, " +
            $"sleeps won {Interlocked.Read(ref SleepWins)}, late takes {Interlocked.Read(ref LateTakes)}, dropped {Interlocked.Read(ref Dropped)}, thrown takes {Interlocked.Read(ref ThrownTakes)}, drained {Drained}";
    }

    /// <summary>Every item put is taken exactly once, and the loop reaches the end; the sleep also wins races (the loop
    /// does go through both outcomes). <paramref name="typed"/>: the race returns the item
    /// (<see cref="Fiber.FirstAsync{T}(Func{Task{T}}, Func{Task{T}}, Func{T, T, T}?)"/>) with a combine that keeps a late
    /// take's item; otherwise the value-less race and the take stores its item itself.</summary>
    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void EveryItemPutIsTakenOnceByALoopOfTakeSleepRaces(EioBackend backend, bool takeFirst, bool hint, bool typed)
    {
        var p = Guarded(backend, env => RunAsync(env, takeFirst, hint, stop: StopKind.None, p: new Progress(), typed: typed));
        output.WriteLine(p.ToString());
        Assert.Equal(Total, p.Put);
        Assert.Equal(Total, p.Taken);
        Assert.Equal(0, p.Dropped);
        Assert.All(p.Seen, n => Assert.Equal(1, n));
        Assert.True(p.SleepWins > 0, p.ToString());
    }

    /// <summary>Why h156's store loop lost requests (rationale §153): with the typed race and no combine, a take that
    /// completed (a producer handed it the item) before the sleep's win could cancel it is a second success, and the
    /// default combine keeps the first value, the sleep's: the item is gone from the queue and from the race's value. Not
    /// timing: the other function hands the item to the suspended take and then returns at once (S12: the take was
    /// started first, up to its suspension). Eio's <c>Fiber.first</c> does the same (its documented warning); a combine that
    /// keeps the item, or the value-less race with the take storing its item, loses nothing.</summary>
    [Fact]
    public void ALateTakeIsASecondSuccessWhichTheDefaultCombineDrops() => EioMain.Run(async _ =>
    {
        var queue = new AsyncQueue<int>(4);
        int value = await Fiber.FirstAsync(
            async () => await queue.TakeAsync(),
            async () =>
            {
                Assert.True(queue.TryAdd(42)); // handed to the waiting take: its waiter completes, its fiber is queued
                return await Task.FromResult(-1); // this function wins first
            });
        Assert.Equal(-1, value);
        Assert.Equal(0, queue.Count); // the take had it: dropped by the default combine (keep the first)

        int kept = await Fiber.FirstAsync(
            async () => await queue.TakeAsync(),
            async () =>
            {
                Assert.True(queue.TryAdd(43));
                return await Task.FromResult(-1);
            },
            static (first, late) => first >= 0 ? first : late);
        Assert.Equal(43, kept);

        int stored = -1;
        await Fiber.FirstAsync(
            async () => stored = await queue.TakeAsync(),
            async () => Assert.True(queue.TryAdd(44)));
        Assert.Equal(44, stored);
        Assert.Equal(0, queue.Count);
    });

    /// <summary>A cancellation from outside ends the loop mid-stream, and nothing is lost: what the loop took plus what the
    /// queue still holds is exactly what was put, each once.</summary>
    [SkippableTheory]
    [MemberData(nameof(StopCases))]
    public void AStopFromOutsideEndsTheLoopAndLosesNothing(EioBackend backend, bool closeQueue)
    {
        var p = Guarded(backend, env => RunAsync(env, takeFirst: true, hint: backend == EioBackend.Uring, closeQueue ? StopKind.CloseQueue : StopKind.FailSwitch, new Progress()));
        output.WriteLine(p.ToString());
        Assert.True(p.Put > 0 && p.Put <= Total, p.ToString());
        var missing = new List<int>();
        for (int k = 0; k < Producers; k++)
        {
            for (int i = 0; i < p.PutBy[k]; i++)
            {
                if (p.Seen[k * ItemsPerProducer + i] == 0)
                {
                    missing.Add(k * ItemsPerProducer + i);
                }
            }
        }

        Assert.True(missing.Count == 0 && p.Put == p.Taken + p.Drained, $"{p}; put by producer {string.Join(",", p.PutBy)}; missing {string.Join(",", missing)}");
        int once = 0;
        foreach (int n in p.Seen)
        {
            Assert.InRange(n, 0, 1);
            once += n;
        }

        Assert.Equal(p.Put, once);
    }

    private enum StopKind
    {
        None,
        FailSwitch,
        CloseQueue,
    }

    private sealed class StopException() : Exception("stopped from outside");

    /// <summary>Runs one case on its own thread; a run that does not end within <see cref="HangGuard"/> fails with its
    /// counts (the thread is a background one, so a wedged domain does not keep the test host alive).</summary>
    private static Progress Guarded(EioBackend backend, Func<Stdenv, Task<Progress>> body)
    {
        Progress? result = null;
        Exception? failure = null;
        Progress? live = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = NetConformanceTests.RunOn(backend, async env =>
                {
                    var p = await body(env);
                    live = p;
                    return p;
                });
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        })
        { IsBackground = true, Name = "race-loop-guarded" };
        thread.Start();
        if (!thread.Join(HangGuard))
        {
            Assert.Fail($"the take/sleep race loop on {backend} made no end within {HangGuard} (wedged): {s_current}");
        }

        if (failure is Xunit.SkipException)
        {
            throw failure;
        }

        Assert.Null(failure);
        return result!;
    }

    private static volatile Progress? s_current; // the running case's counts, for the hang message

    private static async Task<Progress> RunAsync(Stdenv env, bool takeFirst, bool hint, StopKind stop, Progress p, bool typed = false)
    {
        s_current = p;
        var queue = new AsyncQueue<int>(64); // bounded: adders wait too, and a take wakes them
        var clock = env.MonoClock;
        var domain = Domain.Current!;
        var (stopSignal, stopResolver) = Promise.Create<bool>();
        int stopAfter = stop == StopKind.None ? int.MaxValue : new Random(7).Next(Total / 4, Total / 2);
        Exception? loopEnd = null;

        void Added(int producer)
        {
            Interlocked.Increment(ref p.PutBy[producer]);
            if (Interlocked.Increment(ref p.Put) == stopAfter)
            {
                if (stop == StopKind.CloseQueue)
                {
                    queue.Close(); // from whichever producer got there: another domain, the thread, or this domain
                }
                else
                {
                    stopResolver.TryResolve(true);
                }
            }
        }

        try
        {
            await Switch.RunAsync(async sw =>
            {
                for (int d = 0; d < DomainProducers; d++)
                {
                    int producer = d;
                    Fiber.Fork(sw, () => env.DomainManager.RunAsync(() => ProduceOnFibersAsync(queue, env, producer, Added), $"producer-{producer}"));
                }

                var thread = new Thread(() => ProduceOnThread(queue, DomainProducers, Added)) { IsBackground = true };
                thread.Start();
                Fiber.Fork(sw, () => ProduceOnFibersAsync(queue, env, DomainProducers + 1, Added));
                if (stop == StopKind.FailSwitch)
                {
                    Fiber.Fork(sw, async () =>
                    {
                        await stopSignal.AwaitAsync(); // resolved from another domain or thread: the "signal"
                        sw.Fail(new StopException());
                    });
                }

                try
                {
                    await ConsumeAsync(queue, clock, domain, takeFirst, hint, typed, p);
                }
                finally
                {
                    // Not joined on the domain (a blocking join would stall it): the thread ends once the queue is
                    // closed or all its items are in.
                    if (stop != StopKind.None)
                    {
                        queue.Close();
                    }

                    thread.Join();
                }
            });
        }
        catch (Exception ex) when (stop != StopKind.None && ex is StopException or StreamClosedException or MultipleException)
        {
            loopEnd = ex;
        }

        if (stop != StopKind.None)
        {
            Assert.NotNull(loopEnd);
            while (queue.TryTake(out int item))
            {
                p.Seen[item]++;
                p.Drained++;
            }
        }

        return p;
    }

    /// <summary>The loop under test: races a take against a short sleep until every item is in (or it is stopped).</summary>
    private static async Task ConsumeAsync(AsyncQueue<int> queue, EioSharp.Time.MonoClock clock, Domain domain, bool takeFirst, bool hint, bool typed, Progress p)
    {
        var rnd = new Random(11);
        var more = new List<int>();
        while (Volatile.Read(ref p.Taken) < Total)
        {
            if (hint)
            {
                domain.HintNextWait(rnd.Next(2, 9), TimeSpan.FromMilliseconds(rnd.Next(1, 4))); // as the store loop does
            }

            var wait = TimeSpan.FromTicks(rnd.Next(0, 3000)); // 0-300 µs: the sleep wins often
            int got = -1;
            int returned = -1; // what the take returned, whatever the race's outcome (the take stores it itself)
            bool slept = false;
            try
            {
                if (typed)
                {
                    Func<Task<int>> take = async () => returned = await queue.TakeAsync();
                    Func<Task<int>> sleep = async () =>
                    {
                        await clock.SleepAsync(wait);
                        slept = true;
                        return -1;
                    };
                    got = takeFirst ? await Fiber.FirstAsync(take, sleep, KeepItem) : await Fiber.FirstAsync(sleep, take, KeepItem);
                    if (returned >= 0 && got != returned)
                    {
                        Interlocked.Increment(ref p.Dropped);
                    }
                }
                else
                {
                    Func<Task> take = async () => returned = await queue.TakeAsync();
                    Func<Task> sleep = async () =>
                    {
                        await clock.SleepAsync(wait);
                        slept = true;
                    };
                    if (takeFirst)
                    {
                        await Fiber.FirstAsync(take, sleep);
                    }
                    else
                    {
                        await Fiber.FirstAsync(sleep, take);
                    }
                }
            }
            catch (Exception) when (returned >= 0)
            {
                // Stopped from outside while the take had its item: the race throws the caller's cancellation (S11, as
                // Eio's Fiber.any raises the parent's cancellation even over a success), and the item is the one the
                // take stored. Taken, not lost; then the loop ends.
                p.Seen[returned]++;
                Interlocked.Increment(ref p.Taken);
                Interlocked.Increment(ref p.ThrownTakes);
                throw;
            }

            got = returned;
            Interlocked.Increment(ref p.Races);
            if (slept)
            {
                Interlocked.Increment(ref p.SleepWins);
            }

            if (got >= 0)
            {
                if (slept)
                {
                    Interlocked.Increment(ref p.LateTakes);
                }

                p.Seen[got]++;
                Interlocked.Increment(ref p.Taken);
                more.Clear();
                queue.TryTakeMany(more, 16); // the store loop's round: whatever else is queued
                foreach (int item in more)
                {
                    p.Seen[item]++;
                    Interlocked.Increment(ref p.Taken);
                }
            }
        }
    }

    /// <summary>The typed race's combine: a late take's item wins over the sleep's -1 (without it the item is dropped).</summary>
    private static readonly Func<int, int, int> KeepItem = static (first, late) => first >= 0 ? first : late;

    private static async Task ProduceOnFibersAsync(AsyncQueue<int> queue, Stdenv env, int producer, Action<int> added)
    {
        var rnd = new Random(100 + producer);
        for (int i = 0; i < ItemsPerProducer; i++)
        {
            try
            {
                await queue.AddAsync(producer * ItemsPerProducer + i);
            }
            catch (StreamClosedException)
            {
                return; // stopped: the item was not added
            }

            added(producer);
            switch (rnd.Next(4))
            {
                case 0:
                    break;
                case 1:
                    await Fiber.YieldAsync();
                    break;
                case 2:
                    await env.MonoClock.SleepAsync(TimeSpan.FromTicks(500));
                    break;
                default:
                    await env.MonoClock.SleepAsync(TimeSpan.FromTicks(rnd.Next(0, 5000)));
                    break;
            }
        }
    }

    private static void ProduceOnThread(AsyncQueue<int> queue, int producer, Action<int> added)
    {
        var rnd = new Random(100 + producer);
        for (int i = 0; i < ItemsPerProducer; i++)
        {
            try
            {
                while (!queue.TryAdd(producer * ItemsPerProducer + i))
                {
                    Thread.Sleep(0); // full: the consumer makes room
                }
            }
            catch (StreamClosedException)
            {
                return;
            }

            added(producer);
            switch (rnd.Next(4))
            {
                case 0:
                    break;
                case 1:
                    Thread.SpinWait(rnd.Next(1, 2000));
                    break;
                case 2:
                    Thread.Sleep(0);
                    break;
                default:
                    if (rnd.Next(8) == 0)
                    {
                        Thread.Sleep(1);
                    }

                    break;
            }
        }
    }
}
