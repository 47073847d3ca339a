using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using EioSharp.Domains;

namespace EioSharp.Tests.Domains;

public class WatchdogTests
{
    private static List<string> Run(Func<Switch, Task> body)
    {
        var lines = new ConcurrentQueue<string>();
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    Watchdog.Start(sw, TimeSpan.FromMilliseconds(40), lines.Enqueue);
                    await Switch.RunAsync(body, "jobs");
                },
                "app");
        });
        return lines.ToList();
    }

    [Fact]
    public void WarningNamesTheFiberThatBlockedAfterASuspension()
    {
        var lines = Run(async inner =>
        {
            Fiber.Fork(inner, async () =>
            {
                await Fiber.YieldAsync();
                Thread.Sleep(300);
            }, "sleepy");
            await Fiber.YieldAsync();
        });
        var mine = lines.Where(l => l.Contains("(sleepy)")).ToList();
        Assert.Single(mine); // one warning per stall, however long it lasts
        Assert.Contains("in switch app/jobs", mine[0]);
        Assert.Contains("domain ", mine[0]);
    }

    [Fact]
    public void WarningNamesAForkedFiberThatBlocksBeforeItsFirstSuspension()
    {
        var lines = Run(inner =>
        {
            Fiber.Fork(inner, () =>
            {
                Thread.Sleep(200);
                return Task.CompletedTask;
            }, "eager");
            return Task.CompletedTask;
        });
        Assert.Single(lines, l => l.Contains("(eager)") && l.Contains("app/jobs"));
    }

    [Fact]
    public void WarningNamesAFiberWokenByAnotherDomain()
    {
        var lines = new ConcurrentQueue<string>();
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                async sw =>
                {
                    Watchdog.Start(sw, TimeSpan.FromMilliseconds(40), lines.Enqueue);
                    var (p, r) = Promise.Create<int>();
                    Fiber.Fork(sw, async () =>
                    {
                        await p.AwaitAsync();
                        Thread.Sleep(200);
                    }, "woken");
                    await env.DomainManager.RunAsync(() => { r.Resolve(1); return Task.CompletedTask; });
                },
                "app");
        });
        Assert.Single(lines, l => l.Contains("(woken)") && l.Contains("in switch app"));
    }

    [Fact]
    public void TwoStallsGiveTwoWarningsAndShortItemsNone()
    {
        var lines = Run(async inner =>
        {
            for (int i = 0; i < 50; i++)
            {
                await Fiber.YieldAsync(); // short items: no warning
            }

            Fiber.Fork(inner, async () =>
            {
                Thread.Sleep(150);
                await Fiber.YieldAsync();
                Thread.Sleep(150);
            }, "twice");
        });
        Assert.Equal(2, lines.Count(l => l.Contains("(twice)")));
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
    }
}
