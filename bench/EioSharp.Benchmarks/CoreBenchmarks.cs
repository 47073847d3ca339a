using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using EioSharp.Sync;

namespace EioSharp.Benchmarks;

// Every EioSharp benchmark runs inside one EioMain.Run per invocation and amortises it over a large inner loop
// (OperationsPerInvoke), so each figure is the cost of one operation with the domain setup spread thin.
// The baseline in the same class is the raw .NET way of doing the same thing; BenchmarkDotNet reports Ratio = EioSharp / .NET.

/// <summary>Common short job: 3 warmups, 8 measured iterations, one process (<see cref="CoreBenchConfig"/>).</summary>
[Config(typeof(CoreBenchConfig))]
[MemoryDiagnoser]
public abstract class CoreBench
{
    /// <summary>With <c>EIOSHARP_BENCH_TRACE=1</c>, fiber tracing records into the rings for the whole run (tracing "on").</summary>
    [GlobalSetup]
    public void StartTracingIfAsked()
    {
        if (Environment.GetEnvironmentVariable("EIOSHARP_BENCH_TRACE") == "1")
        {
            EioSharp.Tracing.EioTrace.Start(null, int.TryParse(Environment.GetEnvironmentVariable("EIOSHARP_BENCH_TRACE_RING"), out int ring) ? ring : 1 << 16);
        }
    }
}

/// <summary>The core benchmarks' job: 3 warmups, 8 measured iterations, one process; with <c>EIOSHARP_BENCH_JOB=cli</c>
/// none, so that only the job given on the command line runs (bench/trace-overhead.sh passes <c>--inProcess</c>; an
/// attribute job would run beside it, out of process).</summary>
public sealed class CoreBenchConfig : ManualConfig
{
    public CoreBenchConfig()
    {
        if (Environment.GetEnvironmentVariable("EIOSHARP_BENCH_JOB") != "cli")
        {
            AddJob(Job.Default.WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(8));
        }
    }
}

/// <summary>Fork N fibers on a switch and join them, vs Task.Run N tasks and Task.WhenAll.</summary>
public class CoreForkJoin : CoreBench
{
    private const int N = 10_000;
    private int _count;

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void TaskRunWhenAll()
    {
        var tasks = new Task[N];
        for (int i = 0; i < N; i++)
        {
            tasks[i] = Task.Run(() => Interlocked.Increment(ref _count));
        }

        Task.WaitAll(tasks);
    }

    /// <summary>The like-for-like .NET form of <see cref="ForkJoinYielding"/>: the task's body is an async lambda that yields
    /// once (the baseline's body neither is async nor yields, so it allocates no state machine).</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public void TaskRunYieldingWhenAll()
    {
        var tasks = new Task[N];
        for (int i = 0; i < N; i++)
        {
            tasks[i] = Task.Run(async () =>
            {
                await Task.Yield();
                Interlocked.Increment(ref _count);
            });
        }

        Task.WaitAll(tasks);
    }

    [Benchmark(OperationsPerInvoke = N)]
    public void ForkJoin() => EioMain.Run(_ => Switch.RunAsync(sw =>
    {
        for (int i = 0; i < N; i++)
        {
            Fiber.Fork(sw, () =>
            {
                _count++;
                return Task.CompletedTask;
            });
        }

        return Task.CompletedTask;
    }));

    [Benchmark(OperationsPerInvoke = N)]
    public void ForkJoinYielding() => EioMain.Run(_ => Switch.RunAsync(sw =>
    {
        for (int i = 0; i < N; i++)
        {
            Fiber.Fork(sw, async () =>
            {
                await Fiber.YieldAsync();
                _count++;
            });
        }

        return Task.CompletedTask;
    }));
}

/// <summary>Two fibers hand a value back and forth through a fresh promise each way, vs two tasks with TaskCompletionSource.</summary>
public class CorePromisePingPong : CoreBench
{
    private const int Rounds = 20_000;

    [Benchmark(Baseline = true, OperationsPerInvoke = Rounds)]
    public void TaskCompletionSourcePingPong()
    {
        var ping = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pong = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var a = Task.Run(async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                var myPong = pong;
                ping.SetResult(i);
                await myPong.Task;
            }
        });
        var b = Task.Run(async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                var myPing = ping;
                await myPing.Task;
                ping = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
                var p = pong;
                pong = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
                p.SetResult(i);
            }
        });
        Task.WaitAll(a, b);
    }

    [Benchmark(OperationsPerInvoke = Rounds)]
    public void PromisePingPong() => EioMain.Run(async _ =>
    {
        var ping = Promise.Create<int>();
        var pong = Promise.Create<int>();
        await Fiber.BothAsync(
            async () =>
            {
                for (int i = 0; i < Rounds; i++)
                {
                    var myPong = pong.Promise;
                    ping.Resolver.Resolve(i);
                    await myPong.AwaitAsync();
                }
            },
            async () =>
            {
                for (int i = 0; i < Rounds; i++)
                {
                    var myPing = ping.Promise;
                    await myPing.AwaitAsync();
                    ping = Promise.Create<int>();
                    var p = pong.Resolver;
                    pong = Promise.Create<int>();
                    p.Resolve(i);
                }
            });
    });
}

/// <summary>One producer and one consumer move items through a bounded queue, vs a bounded Channel (capacity 0 uses a Channel of capacity 1: Channels have no rendezvous).</summary>
public class CoreQueue : CoreBench
{
    private const int Items = 100_000;

    [Params(0, 1, 100)]
    public int Capacity { get; set; }

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public void Channel()
    {
        var ch = System.Threading.Channels.Channel.CreateBounded<int>(new BoundedChannelOptions(Math.Max(1, Capacity))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        var producer = Task.Run(async () =>
        {
            for (int i = 0; i < Items; i++)
            {
                await ch.Writer.WriteAsync(i);
            }
        });
        var consumer = Task.Run(async () =>
        {
            long sum = 0;
            for (int i = 0; i < Items; i++)
            {
                sum += await ch.Reader.ReadAsync();
            }

            return sum;
        });
        Task.WaitAll(producer, consumer);
    }

    [Benchmark(OperationsPerInvoke = Items)]
    public void AsyncQueue() => EioMain.Run(async _ =>
    {
        var q = new AsyncQueue<int>(Capacity);
        long sum = 0;
        await Fiber.BothAsync(
            async () =>
            {
                for (int i = 0; i < Items; i++)
                {
                    await q.AddAsync(i);
                }
            },
            async () =>
            {
                for (int i = 0; i < Items; i++)
                {
                    sum += await q.TakeAsync();
                }
            });
    });
}

/// <summary>F fibers each yield until the total reaches the operation count, vs F tasks doing Task.Yield.</summary>
public class CoreYield : CoreBench
{
    private const int Ops = 100_000;

    [Params(1, 1000)]
    public int Fibers { get; set; }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public void TaskYield()
    {
        int each = Ops / Fibers;
        var tasks = new Task[Fibers];
        for (int f = 0; f < Fibers; f++)
        {
            tasks[f] = Task.Run(async () =>
            {
                for (int i = 0; i < each; i++)
                {
                    await Task.Yield();
                }
            });
        }

        Task.WaitAll(tasks);
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public void FiberYield() => EioMain.Run(_ => Switch.RunAsync(sw =>
    {
        int each = Ops / Fibers;
        for (int f = 0; f < Fibers; f++)
        {
            Fiber.Fork(sw, async () =>
            {
                for (int i = 0; i < each; i++)
                {
                    await Fiber.YieldAsync();
                }
            });
        }

        return Task.CompletedTask;
    }));
}

/// <summary>A race where one side finishes after one yield and the other waits until cancelled, vs Task.WhenAny with a linked CancellationTokenSource.</summary>
public class CoreFirst : CoreBench
{
    private const int Races = 10_000;

    [Benchmark(Baseline = true, OperationsPerInvoke = Races)]
    public void WhenAnyLinkedCts() => Task.Run(async () =>
    {
        using var outer = new CancellationTokenSource();
        for (int i = 0; i < Races; i++)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(outer.Token);
            var fast = FastAsync();
            var slow = Task.Delay(Timeout.Infinite, cts.Token);
            await Task.WhenAny(fast, slow);
            await cts.CancelAsync();
            try
            {
                await slow;
            }
            catch (OperationCanceledException)
            {
            }

            _ = await fast;
        }
    }).Wait();

    private static async Task<int> FastAsync()
    {
        await Task.Yield();
        return 1;
    }

    /// <summary>The like-for-like .NET form of <see cref="FirstAsync"/> (session 15): both sides are async lambdas, as in
    /// the EioSharp row, so the loser is an async method that ends cancelled (in <see cref="WhenAnyLinkedCts"/> the loser
    /// is <see cref="Task.Delay(int, CancellationToken)"/> itself, which ends cancelled without a throw or an async frame).</summary>
    [Benchmark(OperationsPerInvoke = Races)]
    public void WhenAnyLinkedCtsAsyncLambdas() => Task.Run(async () =>
    {
        using var outer = new CancellationTokenSource();
        Func<Task<int>> fastFn = async () =>
        {
            await Task.Yield();
            return 1;
        };
        for (int i = 0; i < Races; i++)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(outer.Token);
            var token = cts.Token;
            var fast = fastFn();
            var slow = SlowAsync(token);
            await Task.WhenAny(fast, slow);
            await cts.CancelAsync();
            try
            {
                await slow;
            }
            catch (OperationCanceledException)
            {
            }

            _ = await fast;
        }
    }).Wait();

    private static async Task<int> SlowAsync(CancellationToken token)
    {
        await Task.Delay(Timeout.Infinite, token);
        return 0;
    }

    [Benchmark(OperationsPerInvoke = Races)]
    public void FirstAsync() => EioMain.Run(async _ =>
    {
        for (int i = 0; i < Races; i++)
        {
            await Fiber.FirstAsync(
                async () =>
                {
                    await Fiber.YieldAsync();
                    return 1;
                },
                async () =>
                {
                    await Fiber.AwaitCancelAsync();
                    return 0;
                });
        }
    });
}
