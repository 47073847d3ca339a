using BenchmarkDotNet.Attributes;
using EioSharp.Domains;

namespace EioSharp.Benchmarks;

/// <summary>The hot-path cost of watchdog support: a same-domain promise ping-pong (every round suspends and resumes two
/// fibers through waiters) with no watchdog (baseline: the work item carries its frame, one field write per item) and with
/// a watchdog running (each suspension also reads the fiber frame from its AsyncLocal).</summary>
[SimpleJob(warmupCount: 2, iterationCount: 6)]
public class WatchdogOverheadBenchmarks
{
    private const int Rounds = 200_000;

    [Benchmark(Baseline = true, OperationsPerInvoke = Rounds)]
    public void PingPongWithoutWatchdog() => Run(watchdog: false);

    [Benchmark(OperationsPerInvoke = Rounds)]
    public void PingPongWithWatchdog() => Run(watchdog: true);

    private static void Run(bool watchdog) => EioMain.Run(async env =>
    {
        await Switch.RunAsync(async sw =>
        {
            if (watchdog)
            {
                Watchdog.Start(sw, TimeSpan.FromSeconds(10), _ => { });
            }

            var ping = Promise.Create<int>();
            var pong = Promise.Create<int>();
            Fiber.Fork(sw, async () =>
            {
                for (int i = 0; i < Rounds; i++)
                {
                    await ping.Promise.AwaitAsync();
                    var p = pong;
                    ping = Promise.Create<int>();
                    p.Resolver.Resolve(i);
                }
            });
            for (int i = 0; i < Rounds; i++)
            {
                var p = ping;
                var q = pong.Promise;
                p.Resolver.Resolve(i);
                await q.AwaitAsync();
                pong = Promise.Create<int>();
            }
        });
    });
}
