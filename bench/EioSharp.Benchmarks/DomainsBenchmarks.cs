using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using EioSharp.Domains;
using EioSharp.Sync;

namespace EioSharp.Benchmarks;

// Each class runs EioSharp beside its raw .NET baseline in the same run. Every invocation starts its own
// EioMain (and domains), amortised over many operations (OperationsPerInvoke), so results are per operation.

/// <summary>A promise ping-pong between two domains vs TaskCompletionSource between two thread-pool tasks.</summary>
[SimpleJob(warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser]
public class DomainsPingPongBenchmarks
{
    private const int Rounds = 20_000;

    /// <summary>Where the two sides' threads run (issue 20, h206; the loop driver's <c>Pin=...</c>, not a BenchmarkDotNet
    /// parameter): <c>none</c> (the scheduler's choice), <c>apart</c> (the first side on CPU 0, the second on CPU 1) or
    /// <c>shared</c> (both on CPU 0). Each side pins its own thread with <c>sched_setaffinity</c> when it starts and the
    /// main thread gets its previous affinity back at the end; the process still sees two processors (the domains' spin stays
    /// on, unlike under <c>taskset -c 0</c>). For <see cref="TaskCompletionSourceTwoThreads"/> and
    /// <see cref="PromiseAcrossDomains"/>: the ratio read in the same placement.</summary>
    public string Pin { get; set; } = "none";

    private int FirstCpu => Pin is "apart" or "shared" ? 0 : -1;

    private int SecondCpu => Pin switch
    {
        "apart" => 1,
        "shared" => 0,
        _ => -1,
    };

    [Benchmark(Baseline = true, OperationsPerInvoke = Rounds)]
    public async Task TaskCompletionSourceThreadPool()
    {
        var pings = new TaskCompletionSource<int>[Rounds];
        var pongs = new TaskCompletionSource<int>[Rounds];
        for (int i = 0; i < Rounds; i++)
        {
            pings[i] = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            pongs[i] = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        var other = Task.Run(async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                pongs[i].SetResult(await pings[i].Task);
            }
        });
        for (int i = 0; i < Rounds; i++)
        {
            pings[i].SetResult(i);
            await pongs[i].Task;
        }

        await other;
    }

    /// <summary>The same hand-off between two dedicated threads (each blocks in <c>Task.Wait</c>, which spins and then
    /// sleeps): what .NET pays when the two sides really are two threads. The thread-pool baseline above mostly runs on
    /// one worker (a continuation queued from a worker goes to its local queue and that worker runs it next).</summary>
    [Benchmark(OperationsPerInvoke = Rounds)]
    public void TaskCompletionSourceTwoThreads()
    {
        var pings = new TaskCompletionSource<int>[Rounds];
        var pongs = new TaskCompletionSource<int>[Rounds];
        for (int i = 0; i < Rounds; i++)
        {
            pings[i] = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            pongs[i] = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        int second = SecondCpu;
        var other = new Thread(() =>
        {
            _ = CpuPin.PinCurrentThread(second);
            for (int i = 0; i < Rounds; i++)
            {
                pongs[i].SetResult(pings[i].Task.Result);
            }
        });
        ulong previous = CpuPin.PinCurrentThread(FirstCpu);
        try
        {
            other.Start();
            for (int i = 0; i < Rounds; i++)
            {
                pings[i].SetResult(i);
                pongs[i].Task.Wait();
            }

            other.Join();
        }
        finally
        {
            CpuPin.Restore(previous);
        }
    }

    /// <summary>The honest two-thread baseline (session 13): the same async ping-pong as
    /// <see cref="TaskCompletionSourceThreadPool"/>, but each side runs on its own dedicated thread, a
    /// <see cref="SingleThreadLoop"/> whose <see cref="SynchronizationContext"/> runs that side's continuations (what a
    /// domain is). The TCSs use <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>, so <c>SetResult</c> on one
    /// thread posts the awaiting method's continuation to the other thread's context, which wakes that thread if it sleeps:
    /// one cross-thread hand-off each way per round, as in <see cref="PromiseAcrossDomains"/>.</summary>
    [Benchmark(OperationsPerInvoke = Rounds)]
    public void TaskCompletionSourceTwoLoopThreads()
    {
        var pings = new TaskCompletionSource<int>[Rounds];
        var pongs = new TaskCompletionSource<int>[Rounds];
        for (int i = 0; i < Rounds; i++)
        {
            pings[i] = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            pongs[i] = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        var pong = SingleThreadLoop.Start("pong", async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                pongs[i].SetResult(await pings[i].Task);
            }
        });
        var ping = SingleThreadLoop.Start("ping", async () =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                pings[i].SetResult(i);
                await pongs[i].Task;
            }
        });
        ping.Join();
        pong.Join();
    }

    /// <summary>With <c>EIOSHARP_BENCH_DOMAIN_COUNTERS=1</c>, <see cref="PromiseAcrossDomains"/> prints each domain's idle
    /// handling per round trip to standard error after every invocation (issue 20, h182): spins started, spins that found
    /// the post, the spins' <see cref="Thread.Yield"/> calls, sleeps in the poller, wake-ups written to it, and (h187) the
    /// spins that had the wake budget because the domain's post had woken the other.</summary>
    private static readonly bool s_printDomainCounters = Environment.GetEnvironmentVariable("EIOSHARP_BENCH_DOMAIN_COUNTERS") == "1";

    [Benchmark(OperationsPerInvoke = Rounds)]
    public void PromiseAcrossDomains()
    {
        ulong previous = CpuPin.PinCurrentThread(FirstCpu); // the main domain runs on this thread
        try
        {
            RunPromiseAcrossDomains(SecondCpu);
        }
        finally
        {
            CpuPin.Restore(previous);
        }
    }

    private static void RunPromiseAcrossDomains(int secondCpu) => EioMain.Run(async env =>
    {
        var pings = new (Promise<int> P, Resolver<int> R)[Rounds];
        var pongs = new (Promise<int> P, Resolver<int> R)[Rounds];
        for (int i = 0; i < Rounds; i++)
        {
            pings[i] = Promise.Create<int>();
            pongs[i] = Promise.Create<int>();
        }

        Domain main = Domain.Current!, other = main;
        var before = s_printDomainCounters ? DomainCounters.Read(main) : default;
        var otherBefore = default(DomainCounters);
        var otherAfter = default(DomainCounters);
        await Fiber.BothAsync(
            () => env.DomainManager.RunAsync(async () =>
            {
                _ = CpuPin.PinCurrentThread(secondCpu); // a new thread per call: not restored
                other = Domain.Current!;
                otherBefore = s_printDomainCounters ? DomainCounters.Read(other) : default;
                for (int i = 0; i < Rounds; i++)
                {
                    pongs[i].R.Resolve(await pings[i].P.AwaitAsync());
                }

                otherAfter = s_printDomainCounters ? DomainCounters.Read(other) : default;
            }),
            async () =>
            {
                for (int i = 0; i < Rounds; i++)
                {
                    pings[i].R.Resolve(i);
                    await pongs[i].P.AwaitAsync();
                }
            });
        if (s_printDomainCounters)
        {
            Console.Error.WriteLine($"main  {DomainCounters.Read(main).PerOp(before, Rounds)}");
            Console.Error.WriteLine($"other {otherAfter.PerOp(otherBefore, Rounds)}");
        }
    });

    private readonly record struct DomainCounters(long Spins, long SpinHits, long SpinYields, long IdleWaits, long WakeUps, long WakeSpins, long SpinPollHits)
    {
        public static DomainCounters Read(Domain d) => new(d.Spins, d.SpinHits, d.SpinYields, d.IdleWaits, d.WakeUps, d.WakeSpins, d.SpinPollHits);

        // polled (§215): spins ended by the awaited promise's resolution, found by the spin's poll with nothing posted.
        public string PerOp(DomainCounters b, int ops) => FormattableString.Invariant(
            $"spins={(double)(Spins - b.Spins) / ops:F3} hits={(double)(SpinHits - b.SpinHits) / ops:F3} yields={(double)(SpinYields - b.SpinYields) / ops:F3} sleeps={(double)(IdleWaits - b.IdleWaits) / ops:F3} woken={(double)(WakeUps - b.WakeUps) / ops:F3} wakespins={(double)(WakeSpins - b.WakeSpins) / ops:F3} polled={(double)(SpinPollHits - b.SpinPollHits) / ops:F3}");
    }
}

/// <summary>Pins the calling thread to one CPU (<c>sched_setaffinity</c> with pid 0: the calling thread; Linux only, for the
/// benchmarks' placement option <see cref="DomainsPingPongBenchmarks.Pin"/>).</summary>
internal static class CpuPin
{
    /// <summary>Pins the calling thread to <paramref name="cpu"/> (nothing for a negative one).</summary>
    /// <returns>The thread's affinity mask before (0 when nothing was done), for <see cref="Restore"/>.</returns>
    /// <exception cref="InvalidOperationException">The call failed (no such CPU, or not Linux).</exception>
    public static ulong PinCurrentThread(int cpu)
    {
        if (cpu < 0)
        {
            return 0;
        }

        ulong previous = 0;
        if (sched_getaffinity(0, sizeof(ulong), ref previous) != 0)
        {
            throw new InvalidOperationException($"sched_getaffinity failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }

        Set(1UL << cpu);
        return previous;
    }

    /// <summary>Gives the calling thread back the affinity <see cref="PinCurrentThread"/> returned (nothing for 0).</summary>
    public static void Restore(ulong previous)
    {
        if (previous != 0)
        {
            Set(previous);
        }
    }

    private static void Set(ulong mask)
    {
        if (sched_setaffinity(0, sizeof(ulong), ref mask) != 0)
        {
            throw new InvalidOperationException($"sched_setaffinity({mask:x}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int sched_setaffinity(int pid, nint cpusetsize, ref ulong mask);

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int sched_getaffinity(int pid, nint cpusetsize, ref ulong mask);
}

/// <summary>A dedicated thread that runs an async method and every continuation posted to its
/// <see cref="SynchronizationContext"/>, in order, until the method's task completes (the classic "AsyncPump": a
/// <see cref="System.Collections.Concurrent.BlockingCollection{T}"/> of posted callbacks, drained by the thread; an empty
/// queue blocks the thread in <see cref="SemaphoreSlim"/>, which spins briefly and then sleeps on a futex). The plain .NET
/// way to get "one thread runs this side's continuations", used as the baseline for a cross-domain hand-off.</summary>
internal sealed class SingleThreadLoop : SynchronizationContext
{
    private readonly System.Collections.Concurrent.BlockingCollection<(SendOrPostCallback Callback, object? State)> _queue = new();
    private readonly Thread _thread;
    private Exception? _failure;

    private SingleThreadLoop(string name, Func<Task> body)
    {
        _thread = new Thread(() => Run(body)) { Name = name, IsBackground = true };
    }

    /// <summary>Starts a thread running <paramref name="body"/> with this loop as its synchronization context.</summary>
    public static SingleThreadLoop Start(string name, Func<Task> body)
    {
        var loop = new SingleThreadLoop(name, body);
        loop._thread.Start();
        return loop;
    }

    /// <summary>Waits for the thread to finish; rethrows the body's failure.</summary>
    public void Join()
    {
        _thread.Join();
        if (_failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_failure);
        }
    }

    public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));

    public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException();

    public override SynchronizationContext CreateCopy() => this;

    private void Run(Func<Task> body)
    {
        SetSynchronizationContext(this);
        try
        {
            var task = body();
            _ = task.ContinueWith(static (_, q) => ((System.Collections.Concurrent.BlockingCollection<(SendOrPostCallback, object?)>)q!).CompleteAdding(),
                _queue, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            foreach (var (callback, state) in _queue.GetConsumingEnumerable())
            {
                callback(state);
            }

            task.GetAwaiter().GetResult();
        }
        catch (Exception ex)
        {
            _failure = ex;
        }
    }
}

/// <summary>Queue throughput between two domains vs a bounded Channel between two thread-pool tasks.</summary>
[SimpleJob(warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser]
public class DomainsQueueBenchmarks
{
    private const int Items = 1_000_000;
    private const int Capacity = 1024;

    [Benchmark(Baseline = true, OperationsPerInvoke = Items)]
    public async Task<long> BoundedChannelThreadPool()
    {
        var ch = Channel.CreateBounded<int>(Capacity);
        var consumer = Task.Run(async () =>
        {
            long sum = 0;
            for (int i = 0; i < Items; i++)
            {
                sum += await ch.Reader.ReadAsync();
            }

            return sum;
        });
        for (int i = 0; i < Items; i++)
        {
            await ch.Writer.WriteAsync(i);
        }

        return await consumer;
    }

    [Benchmark(OperationsPerInvoke = Items)]
    public long AsyncQueueAcrossDomains() => EioMain.Run(async env =>
    {
        var q = new AsyncQueue<int>(Capacity);
        long sum = 0;
        await Fiber.BothAsync(
            async () =>
            {
                sum = await env.DomainManager.RunAsync(async () =>
                {
                    long s = 0;
                    for (int i = 0; i < Items; i++)
                    {
                        s += await q.TakeAsync();
                    }

                    return s;
                });
            },
            async () =>
            {
                for (int i = 0; i < Items; i++)
                {
                    await q.AddAsync(i);
                }
            });
        return sum;
    });
}

/// <summary>Tiny jobs through an ExecutorPool (2 workers) vs Task.Run, 64 submitters each waiting for its job.</summary>
[SimpleJob(warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser]
public class ExecutorPoolTinyJobBenchmarks
{
    private const int Jobs = 50_000;
    private const int Submitters = 64;

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs)]
    public async Task<long> TaskRun()
    {
        var tasks = new Task<long>[Submitters];
        for (int s = 0; s < Submitters; s++)
        {
            tasks[s] = Task.Run(async () =>
            {
                long sum = 0;
                for (int i = 0; i < Jobs / Submitters; i++)
                {
                    int x = i;
                    sum += await Task.Run(() => x + 1);
                }

                return sum;
            });
        }

        long total = 0;
        foreach (var t in tasks)
        {
            total += await t;
        }

        return total;
    }

    [Benchmark(OperationsPerInvoke = Jobs)]
    public long ExecutorPoolSubmit() => EioMain.Run(async env => await Switch.RunAsync(async sw =>
    {
        var pool = new ExecutorPool(sw, 2, env.DomainManager);
        long total = 0;
        var submitters = new Func<Task>[Submitters];
        for (int s = 0; s < Submitters; s++)
        {
            submitters[s] = async () =>
            {
                for (int i = 0; i < Jobs / Submitters; i++)
                {
                    int x = i;
                    total += await pool.SubmitAsync(() => Task.FromResult(x + 1), 0.01);
                }
            };
        }

        await Fiber.AllAsync(submitters);
        return total;
    }));
}

/// <summary>CPU-bound jobs of weight 1.0: an ExecutorPool with 2 workers vs 1, beside the same jobs on 1 and 2 raw threads
/// (the ceiling the machine allows); speedup = mean(Workers=1) / mean(Workers=2) per method.</summary>
[SimpleJob(warmupCount: 2, iterationCount: 6)]
public class ExecutorPoolCpuSpeedupBenchmarks
{
    private const int Jobs = 16;
    private const int Work = 3_000_000; // about 5 ms of integer arithmetic per job

    [Params(1, 2)]
    public int Workers { get; set; }

    [Benchmark]
    public long CpuBoundJobs() => EioMain.Run(async env => await Switch.RunAsync(async sw =>
    {
        var pool = new ExecutorPool(sw, Workers, env.DomainManager);
        var promises = new Promise<long>[Jobs];
        for (int j = 0; j < Jobs; j++)
        {
            int seed = j;
            promises[j] = pool.SubmitFork(sw, () => Task.FromResult(Crunch(seed)), 1.0);
        }

        long total = 0;
        foreach (var p in promises)
        {
            total += await p.AwaitAsync();
        }

        return total;
    }));

    /// <summary>The ceiling: the same jobs on <see cref="Workers"/> plain threads taking from a shared counter.</summary>
    [Benchmark]
    public long RawThreads()
    {
        int next = -1;
        long total = 0;
        var threads = new Thread[Workers];
        for (int t = 0; t < Workers; t++)
        {
            threads[t] = new Thread(() =>
            {
                int j;
                while ((j = Interlocked.Increment(ref next)) < Jobs)
                {
                    Interlocked.Add(ref total, Crunch(j));
                }
            });
            threads[t].Start();
        }

        foreach (var t in threads)
        {
            t.Join();
        }

        return total;
    }

    private static long Crunch(int seed)
    {
        ulong x = (ulong)seed + 0x9E3779B97F4A7C15UL;
        for (int i = 0; i < Work; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }

        return (long)(x & 0xFFFF);
    }
}
