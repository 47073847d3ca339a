using System.Diagnostics;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using EioSharp.Domains;

namespace EioSharp.Tests.Domains;

public class WatchdogTests
{
    // Virtual time, in lock step: a fiber "stalls" by stopping inside its work item (blocking its domain) until the test's
    // driver thread has scanned; the driver sets the clock each scan reads. So what the watchdog sees does not depend on
    // how a loaded machine schedules threads (the wall-clock versions of these tests failed under load: the watchdog's
    // thread was not scheduled while a 150-300 ms sleep lasted).
    private static readonly TimeSpan Threshold = TimeSpan.FromMilliseconds(40);
    private static readonly long ThresholdTicks = (long)(Threshold.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Drives a <see cref="Watchdog.StartDriven"/> watchdog through a plan: for each item of the plan, waits until a
    /// fiber calls the stall action, then scans <c>Scans</c> times, advancing the clock by <c>Step</c> before each scan but
    /// the first, and lets the fiber go on.</summary>
    private sealed class Driver : IDisposable
    {
        private readonly SemaphoreSlim _entered = new(0);
        private readonly SemaphoreSlim _proceed = new(0);
        private readonly Thread _thread;
        private long _now;

        public Driver((long Step, int Scans)[] plan, Action<int>? afterItem = null)
        {
            _thread = new Thread(() =>
            {
                for (int item = 0; item < plan.Length; item++)
                {
                    _entered.Wait();
                    for (int scan = 0; scan < plan[item].Scans; scan++)
                    {
                        if (scan > 0)
                        {
                            Interlocked.Add(ref _now, plan[item].Step);
                        }

                        Dog!.Scan();
                    }

                    afterItem?.Invoke(item);
                    _proceed.Release();
                }
            }) { IsBackground = true };
        }

        public ConcurrentQueue<string> Lines { get; } = new();

        public Watchdog? Dog { get; private set; }

        /// <summary>One stall: 1.2 then 2.4 thresholds of virtual time (reported once, not once per scan).</summary>
        public static (long, int) Stall => (ThresholdTicks * 12 / 10, 3);

        /// <summary>A short item: 0.6 threshold.</summary>
        public static (long, int) Short => (ThresholdTicks * 6 / 10, 2);

        /// <summary>Starts the watchdog on <paramref name="sw"/> and the driver thread.</summary>
        public void Start(Switch sw)
        {
            Dog = Watchdog.StartDriven(sw, Threshold, Lines.Enqueue, () => Interlocked.Read(ref _now));
            _thread.Start();
        }

        /// <summary>Called by a fiber: its current work item lasts until the driver has scanned it.</summary>
        public void StallHere()
        {
            _entered.Release();
            _proceed.Wait();
        }

        public bool Join() => _thread.Join(TimeSpan.FromSeconds(30));

        public void Dispose()
        {
            if (!_thread.IsAlive) // a driver still waiting (the test failed early) must not find its semaphores disposed
            {
                _entered.Dispose();
                _proceed.Dispose();
            }
        }
    }

    [Fact]
    public void TheWatchdogThreadReportsADomainBlockedUntilItDoes()
    {
        // The real watchdog (its own thread, the real clock): the fiber blocks its domain until the warning arrives, so the
        // test waits for the report however late a loaded machine schedules the watchdog's thread.
        var lines = new ConcurrentQueue<string>();
        using var reported = new ManualResetEventSlim();
        bool sawReport = false;
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    Watchdog.Start(sw, Threshold, line =>
                    {
                        lines.Enqueue(line);
                        if (line.Contains("(blocker)", StringComparison.Ordinal))
                        {
                            reported.Set(); // only its own report releases the fiber (another domain, or this one in GC/JIT, may stall too)
                        }
                    });
                    await Switch.RunAsync(async inner =>
                    {
                        Fiber.Fork(inner, async () =>
                        {
                            await Fiber.YieldAsync();
                            sawReport = reported.Wait(TimeSpan.FromSeconds(60));
                        }, "blocker");
                        await Fiber.YieldAsync();
                    }, "jobs");
                },
                "app");
        });
        Assert.True(sawReport, "no warning within 60 s");
        Assert.Single(lines, l => l.Contains("(blocker)") && l.Contains("in switch app/jobs"));
    }

    [Fact]
    public void WarningNamesTheFiberThatBlockedAfterASuspension()
    {
        using var driver = new Driver([Driver.Stall]);
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    driver.Start(sw);
                    await Switch.RunAsync(async inner =>
                    {
                        Fiber.Fork(inner, async () =>
                        {
                            await Fiber.YieldAsync();
                            driver.StallHere();
                        }, "sleepy");
                        await Fiber.YieldAsync();
                    }, "jobs");
                },
                "app");
        });
        Assert.True(driver.Join());
        var mine = driver.Lines.Where(l => l.Contains("(sleepy)")).ToList();
        Assert.Single(mine); // one warning per stall, however long it lasts
        Assert.Contains("in switch app/jobs", mine[0]);
        Assert.Contains("domain ", mine[0]);
    }

    [Fact]
    public void WarningNamesAForkedFiberThatBlocksBeforeItsFirstSuspension()
    {
        using var driver = new Driver([Driver.Stall]);
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    driver.Start(sw);
                    await Switch.RunAsync(inner =>
                    {
                        Fiber.Fork(inner, () =>
                        {
                            driver.StallHere();
                            return Task.CompletedTask;
                        }, "eager");
                        return Task.CompletedTask;
                    }, "jobs");
                },
                "app");
        });
        Assert.True(driver.Join());
        Assert.Single(driver.Lines, l => l.Contains("(eager)") && l.Contains("app/jobs"));
    }

    [Fact]
    public void WarningNamesAFiberWokenByAnotherDomain()
    {
        using var driver = new Driver([Driver.Stall]);
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    driver.Start(sw);
                    var (p, r) = Promise.Create<int>();
                    Fiber.Fork(sw, async () =>
                    {
                        await p.AwaitAsync();
                        driver.StallHere();
                    }, "woken");
                    await env.DomainManager.RunAsync(() => { r.Resolve(1); return Task.CompletedTask; });
                },
                "app");
        });
        Assert.True(driver.Join());
        Assert.Single(driver.Lines, l => l.Contains("(woken)") && l.Contains("in switch app"));
    }

    [Fact]
    public void TwoStallsGiveTwoWarningsAndShortItemsNone()
    {
        // Short items run 0.6 threshold each (12 thresholds in all: only per-item timing keeps them quiet).
        (long, int)[] plan = [.. Enumerable.Repeat(Driver.Short, 10), Driver.Stall, .. Enumerable.Repeat(Driver.Short, 10), Driver.Stall];
        int reportsAfterFirstStall = -1;
        Driver? driverRef = null;
        using var driver = driverRef = new Driver(plan, item =>
        {
            if (item == 10)
            {
                reportsAfterFirstStall = driverRef!.Lines.Count(l => l.Contains("(twice)"));
            }
        });
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    driver.Start(sw);
                    await Switch.RunAsync(inner =>
                    {
                        Fiber.Fork(inner, async () =>
                        {
                            for (int item = 0; item < plan.Length; item++)
                            {
                                driver.StallHere();
                                await Fiber.YieldAsync(); // the next work item
                            }
                        }, "twice");
                        return Task.CompletedTask;
                    }, "jobs");
                },
                "app");
        });
        Assert.True(driver.Join());
        Assert.Equal(1, reportsAfterFirstStall);
        var mine = driver.Lines.Where(l => l.Contains("(twice)")).ToList();
        Assert.Equal(2, mine.Count);
        Assert.All(mine, l => Assert.Contains("in switch app/jobs", l));
        Assert.All(mine, l => Assert.Contains("for at least 48 ms", l)); // 1.2 thresholds of virtual time when noticed
        // Not driver.Dog.StallsReported: a scan looks at every domain of the process, and test classes running in parallel
        // have domains whose long items the virtual clock also ages (a CI run counted 6); the lines above are this test's.
    }

    [Fact]
    public void ThresholdMustBePositive()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(sw =>
            {
                Assert.Throws<ArgumentOutOfRangeException>(() => Watchdog.Start(sw, TimeSpan.Zero));
                return Task.CompletedTask;
            });
        });
    }

    [Fact]
    public void MetricsReportDomains()
    {
        var seen = new ConcurrentDictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (inst, l) =>
        {
            if (inst.Meter.Name == "EioSharp")
            {
                l.EnableMeasurementEvents(inst);
            }
        };
        listener.SetMeasurementEventCallback<int>((inst, v, tags, _) => seen[inst.Name] = v);
        listener.SetMeasurementEventCallback<long>((inst, v, tags, _) => seen[inst.Name] = v);
        listener.SetMeasurementEventCallback<double>((inst, v, tags, _) => seen[inst.Name] = v);
        listener.Start();
        EioMain.Run(async env =>
        {
            await env.DomainManager.RunAsync(async () =>
            {
                for (int i = 0; i < 10; i++)
                {
                    await Fiber.YieldAsync();
                }

                listener.RecordObservableInstruments();
            });
        });
        Assert.True(seen["eiosharp.domains.live"] >= 2);
        Assert.True(seen.ContainsKey("eiosharp.domain.run_queue_length"));
        Assert.True(seen.ContainsKey("eiosharp.domain.busy_time"));
        Assert.True(seen["eiosharp.domain.work_items"] >= 1);
        Assert.True(seen.ContainsKey("eiosharp.domain.idle_waits"));
    }

    [Fact]
    public void IdleWaitsCountEachSleepInThePoller()
    {
        long waits = EioMain.Run(async env =>
        {
            var domain = Domain.Current!;
            long before = domain.IdleWaits;
            for (int i = 0; i < 3; i++)
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(20)); // nothing else to run: the domain waits
            }

            return domain.IdleWaits - before;
        });
        // At least one: a sleep whose deadline has already passed when the round ends (a slow round on a loaded machine)
        // fires without a wait, so not necessarily three.
        Assert.True(waits >= 1, $"idle waits: {waits}");
    }
}
