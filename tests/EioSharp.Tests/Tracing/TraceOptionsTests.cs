using System.Diagnostics.Tracing;
using System.Text.Json;
using EioSharp.Domains;
using EioSharp.Sync;
using EioSharp.Tracing;
using EioSharp.TraceView;

namespace EioSharp.Tests.Tracing;

/// <summary>Tracing started by <see cref="EioOptions.TraceFile"/>, system-thread offload events, ring reuse, and the
/// .NET tooling paths (the EioSharp event source and meter seen by in-process listeners).</summary>
[Collection("Tracing")]
public class TraceOptionsTests
{
    private static string TempJson() => Path.Combine(Path.GetTempPath(), $"eio-trace-opt-{Guid.NewGuid():N}.json");

    private static List<JsonElement> Events(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("traceEvents").EnumerateArray().Select(e => e.Clone()).ToList();
    }

    private static string Ph(JsonElement e) => e.GetProperty("ph").GetString()!;

    private static string? Cat(JsonElement e) => e.TryGetProperty("cat", out var c) ? c.GetString() : null;

    private static string? ArgName(JsonElement e) =>
        e.TryGetProperty("args", out var a) && a.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;

    [Fact]
    public void TraceFileOptionTracesTheRunAndStopsWhenMainReturns()
    {
        string path = TempJson();
        int result = EioMain.Run(
            async env =>
            {
                Assert.True(EioTrace.IsEnabled); // on before the main fiber's code runs
                await Switch.RunAsync(
                    sw =>
                    {
                        Fiber.Fork(sw, async () => await Fiber.YieldAsync(), "worker");
                        return Task.CompletedTask;
                    },
                    "outer");
                return 42;
            },
            new EioOptions { TraceFile = path });
        Assert.Equal(42, result);
        Assert.False(EioTrace.IsEnabled);
        var all = Events(path);
        File.Delete(path);
        Assert.Contains(all, e => Ph(e) == "M" && ArgName(e) is { } n && n.Contains("(main)", StringComparison.Ordinal));
        var worker = Assert.Single(all, e => Ph(e) == "X" && ArgName(e) == "worker" && e.GetProperty("args").TryGetProperty("outcome", out _));
        Assert.Equal("ok", worker.GetProperty("args").GetProperty("outcome").GetString());
        Assert.EndsWith("outer", worker.GetProperty("args").GetProperty("switch").GetString());
        Assert.Contains(all, e => Ph(e) == "X" && ArgName(e) == "main");
    }

    /// <summary>An unnamed fiber's creation stores its switch only when it differs from the ring's previous one (issue 17:
    /// one object store per fork was a measurable part of the fork's cost): the export must still give every unnamed
    /// fiber the path of its own switch, with forks into two switches interleaved and many forks into one.</summary>
    [Fact]
    public void UnnamedFibersKeepTheirSwitchPathWhenTheSwitchIsStoredOnce()
    {
        string path = TempJson();
        EioMain.Run(
            async env =>
            {
                await Switch.RunAsync(
                    async outer =>
                    {
                        await Switch.RunAsync(
                            inner =>
                            {
                                foreach (var sw in new[] { outer, outer, outer, inner, inner, outer, inner })
                                {
                                    Fiber.Fork(sw, async () => await Fiber.YieldAsync());
                                }

                                for (int i = 0; i < 50; i++)
                                {
                                    Fiber.Fork(inner, () => Task.CompletedTask);
                                }

                                return Task.CompletedTask;
                            },
                            "inner");
                    },
                    "outer");
                return 0;
            },
            new EioOptions { TraceFile = path });
        var all = Events(path);
        File.Delete(path);
        // The first slice of each forked fiber (the one that names its parent).
        var created = all.Where(e => Ph(e) == "X" && Cat(e) == "fiber" && e.GetProperty("args").TryGetProperty("parent", out _)
            && ArgName(e) is null).ToList();
        var paths = created.Select(e => e.GetProperty("args").TryGetProperty("switch", out var s) ? s.GetString() : null).ToList();
        Assert.Equal(57, paths.Count);
        Assert.Equal(4, paths.Count(p => p is not null && p.EndsWith("outer", StringComparison.Ordinal)));
        Assert.Equal(53, paths.Count(p => p is not null && p.EndsWith("outer/inner", StringComparison.Ordinal)));
    }

    /// <summary>A named fiber's identity is stored with one of its events per half ring (issue 17, h68): in a ring that
    /// wrapped many times, every slice of two named fibers that switch thousands of times is still named, in the JSON
    /// export and in the transcript, and most of their suspensions share the next resume's slot.</summary>
    [Fact]
    public void NamedFibersStayNamedWhenTheirNameIsStoredOncePerHalfRing()
    {
        EioTrace.Start(null, 1024);
        try
        {
            EioMain.Run(async env =>
            {
                var q = new AsyncQueue<int>(0);
                await Switch.RunAsync(sw =>
                {
                    Fiber.Fork(sw, async () =>
                    {
                        for (int i = 0; i < 3000; i++)
                        {
                            await q.AddAsync(i);
                        }
                    }, "ping");
                    Fiber.Fork(sw, async () =>
                    {
                        for (int i = 0; i < 3000; i++)
                        {
                            await q.TakeAsync();
                        }
                    }, "pong");
                    return Task.CompletedTask;
                });
                return 0;
            });
        }
        finally
        {
            EioTrace.Stop();
        }

        var events = EioTrace.Snapshot();
        var ids = new HashSet<long>(events.Where(e => e.Data is FiberInfo { Name: "ping" or "pong" }).Select(e => e.Fiber));
        Assert.Equal(2, ids.Count);
        int theirs = events.Count(e => ids.Contains(e.Fiber));
        int carriers = events.Count(e => ids.Contains(e.Fiber) && e.Data is FiberInfo);
        Assert.InRange(theirs, 1000, int.MaxValue); // the ring (1024 slots) holds well over a thousand of their events
        Assert.InRange(carriers, 2, theirs / 20); // the name goes with a few of them only

        using var ms = new MemoryStream();
        EioTrace.WriteChromeJson(ms);
        using var doc = JsonDocument.Parse(ms.ToArray());
        var slices = doc.RootElement.GetProperty("traceEvents").EnumerateArray()
            .Where(e => Ph(e) == "X" && Cat(e) == "fiber").Select(e => e.GetProperty("name").GetString()!).ToList();
        Assert.InRange(slices.Count(n => n.StartsWith("ping #", StringComparison.Ordinal) || n.StartsWith("pong #", StringComparison.Ordinal)), 500, int.MaxValue);
        foreach (long id in ids)
        {
            Assert.DoesNotContain($"fiber #{id}", slices);
        }

        string transcript = TraceTranscript.Format(events);
        Assert.Contains("ping: suspended on queue", transcript);
        Assert.Contains("pong: resumed", transcript);
        Assert.DoesNotMatch(@"fiber-\d+: (resumed|suspended on queue)", transcript); // only the two named fibers switch
    }

    [Fact]
    public void TraceFileIsCompleteWhenMainThrows()
    {
        string path = TempJson();
        var ex = Assert.Throws<InvalidOperationException>(() => EioMain.Run(
            async _ =>
            {
                await Fiber.YieldAsync();
                throw new InvalidOperationException("boom");
            },
            new EioOptions { TraceFile = path }));
        Assert.Equal("boom", ex.Message);
        Assert.False(EioTrace.IsEnabled);
        var all = Events(path); // parses: the document was closed
        File.Delete(path);
        var main = all.Where(e => Ph(e) == "X" && ArgName(e) == "main").ToList();
        Assert.Contains(main, e => e.GetProperty("args").TryGetProperty("outcome", out var o) && o.GetString()!.StartsWith("failed", StringComparison.Ordinal));
    }

    [Fact]
    public void NullOptionsAndNoTraceFileLeaveTracingOff()
    {
        EioMain.Run(_ =>
        {
            Assert.False(EioTrace.IsEnabled);
            return Task.CompletedTask;
        }, null);
        EioMain.Run(_ =>
        {
            Assert.False(EioTrace.IsEnabled);
            return Task.CompletedTask;
        }, new EioOptions());
    }

    [Fact]
    public void SysthreadOffloadIsItsOwnEventInTheRingsTheJsonAndTheViewer()
    {
        string path = TempJson();
        long blocker = 0;
        EioMain.Run(
            async _ =>
            {
                await Switch.RunAsync(
                    sw =>
                    {
                        Fiber.Fork(sw, async () =>
                        {
                            blocker = FiberFrame.Current!.Fiber.Id;
                            await Systhread.RunAsync(() => Thread.Sleep(30));
                            await Assert.ThrowsAsync<TimeZoneNotFoundException>(() => Systhread.RunAsync(() => throw new TimeZoneNotFoundException()));
                        }, "blocker");
                        return Task.CompletedTask;
                    },
                    "offloads");
            },
            new EioOptions { TraceFile = path });

        // The rings: started and finished on a thread that is not a domain, for the offloading fiber, started before finished.
        var events = EioTrace.Snapshot();
        var starts = events.Where(e => e.Kind == TraceEventKind.SysthreadStarted && e.Fiber == blocker).ToList();
        var ends = events.Where(e => e.Kind == TraceEventKind.SysthreadFinished && e.Fiber == blocker).ToList();
        Assert.Equal(2, starts.Count);
        Assert.Equal(2, ends.Count);
        Assert.All(starts.Concat(ends), e => Assert.Equal(-1, e.DomainId));
        Assert.Equal(starts.Select(e => e.Arg).Order(), ends.Select(e => e.Arg).Order());
        Assert.True(starts[0].Timestamp <= ends.Single(e => e.Arg == starts[0].Arg).Timestamp);
        Assert.Single(ends, e => e.Exception is TimeZoneNotFoundException);

        // The JSON: two slices on a "system thread N" track, a suspension of the fiber on "systhread".
        var all = Events(path);
        var offloads = all.Where(e => Ph(e) == "X" && Cat(e) == "systhread").ToList();
        Assert.Equal(2, offloads.Count);
        Assert.All(offloads, o => Assert.Equal(blocker, o.GetProperty("args").GetProperty("fiber").GetInt64()));
        Assert.Contains(offloads, o => o.GetProperty("args").GetProperty("outcome").GetString() == "ok" && o.GetProperty("dur").GetDouble() >= 25_000);
        Assert.Contains(offloads, o => o.GetProperty("args").GetProperty("outcome").GetString() == "failed: TimeZoneNotFoundException");
        var tids = offloads.Select(o => o.GetProperty("tid").GetInt32()).ToHashSet();
        Assert.All(tids, tid => Assert.Contains(all, e => Ph(e) == "M" && e.GetProperty("tid").GetInt32() == tid && ArgName(e)!.StartsWith("system thread ", StringComparison.Ordinal)));
        Assert.Contains(all, e => Ph(e) == "b" && e.GetProperty("name").GetString() == "suspended: systhread" && e.GetProperty("id").GetInt64() == blocker);

        // The viewer: offloads listed apart from the domains, in the summary and in the picture.
        var model = TraceModel.Load(path);
        File.Delete(path);
        Assert.Equal(2, model.Offloads.Count);
        Assert.DoesNotContain(model.Tracks.Values, n => n.StartsWith("system thread", StringComparison.Ordinal));
        Assert.Matches(@"System-thread offloads: 2 on \d threads?, .* 1 failed", Render.Summary(model));
        Assert.Contains("System threads (blocking calls offloaded by fibers)", Render.Svg(model));
    }

    [Fact]
    public void RingsOfFinishedDomainsAreReusedWhileRecording()
    {
        EioTrace.Start();
        try
        {
            for (int i = 0; i < 30; i++)
            {
                EioMain.Run(_ => Switch.RunAsync(sw =>
                {
                    Fiber.Fork(sw, () => Task.CompletedTask);
                    return Task.CompletedTask;
                }));
            }

            // 30 domains ran, one after another: the newest finished ones stay readable, the older ones were recycled.
            int rings = EioTrace.Rings().Count;
            Assert.InRange(rings, 2, 1 + 8 + 1);
            var last = EioTrace.Snapshot().Where(e => e.DomainId >= 0).Max(e => e.DomainId);
            Assert.Contains(EioTrace.Snapshot(), e => e.DomainId == last && e.Kind == TraceEventKind.FiberFinished);
        }
        finally
        {
            EioTrace.Stop();
        }
    }

    [Fact]
    public void EventListenerSeesTheFiberEventsAndTurnsTracingOnWhileAttached()
    {
        Assert.Equal("EioSharp", EioEventSource.Log.Name); // the source exists before the listener, which enables it when told of it
        using var listener = new FiberEventListener();
        Assert.True(EioTrace.IsEnabled);
        EioMain.Run(async _ =>
        {
            await Switch.RunAsync(
                sw =>
                {
                    Fiber.Fork(sw, async () => await Fiber.YieldAsync(), "listened");
                    return Task.CompletedTask;
                },
                "es");
            EioTrace.Log("hello listener");
        });
        listener.Dispose();
        Assert.False(EioTrace.IsEnabled);
        lock (listener.Seen)
        {
            Assert.Contains(listener.Seen, s => s.Kind == "FiberCreated" && s.Text == "listened");
            Assert.Contains(listener.Seen, s => s.Kind == "FiberFinished");
            Assert.Contains(listener.Seen, s => s.Kind == "SwitchOpened" && s.Text.EndsWith("es", StringComparison.Ordinal));
            Assert.Contains(listener.Seen, s => s.Kind == "Label" && s.Text == "hello listener");
        }
    }

    [Fact]
    public void EventListenerSeesTheEventsOfUnnamedFibersThatTheHooksFastPathsWrite()
    {
        // The switch hooks' fast paths (unnamed fibers: resume, yield, fork, end) write the ring without telling the
        // EventSource; they are taken only while no listener is attached, so that every event goes through the general
        // paths, which tell it (issue 17, h116's open test).
        using var listener = new FiberEventListener();
        EioMain.Run(async _ =>
        {
            await Switch.RunAsync(
                sw =>
                {
                    for (int i = 0; i < 3; i++)
                    {
                        Fiber.Fork(sw, async () =>
                        {
                            await Fiber.YieldAsync();
                            await Fiber.YieldAsync();
                        });
                    }

                    return Task.CompletedTask;
                },
                "unnamed");
        });
        listener.Dispose();
        lock (listener.Seen)
        {
            string seen = string.Join(", ", listener.Seen);
            Assert.True(listener.Seen.Count(s => s.Kind == "FiberCreated") >= 3, seen);
            Assert.True(listener.Seen.Count(s => s.Kind == "FiberSuspended" && s.Reason == "Yield") >= 6, seen);
            Assert.True(listener.Seen.Count(s => s.Kind == "FiberResumed") >= 6, seen);
            Assert.True(listener.Seen.Count(s => s.Kind == "FiberFinished" && s.Text.Length == 0) >= 3, seen);
        }
    }

    [Fact]
    public void MeterCountersAreSeenThroughTheMetricsEventSource()
    {
        // What dotnet-counters does: enable System.Diagnostics.Metrics with the meter's name and read the published values.
        using var listener = new MetricsListener("EioSharp");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        EioMain.Run(async env =>
        {
            while (DateTime.UtcNow < deadline && !listener.HasAll("eiosharp.domain.work_items", "eiosharp.domains.live", "eiosharp.domain.run_queue_length", "eiosharp.domain.busy_time"))
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(50));
            }
        });
        Assert.True(
            listener.HasAll("eiosharp.domain.work_items", "eiosharp.domains.live", "eiosharp.domain.run_queue_length", "eiosharp.domain.busy_time"),
            "instruments seen: " + string.Join(", ", listener.Instruments()));
    }

    private sealed class FiberEventListener : EventListener
    {
        public List<(string Kind, string Text, string Reason)> Seen { get; } = [];

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "EioSharp")
            {
                EnableEvents(eventSource, EventLevel.Verbose, EioEventSource.Keywords.Fibers);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventSource.Name == "EioSharp" && e.EventName == "FiberEvent" && e.Payload is { Count: 7 } p)
            {
                lock (Seen)
                {
                    Seen.Add(((string)p[0]!, (string)p[6]!, (string)p[1]!));
                }
            }
        }
    }

    private sealed class MetricsListener(string meter) : EventListener
    {
        private readonly HashSet<string> _instruments = [];

        public bool HasAll(params string[] names)
        {
            lock (_instruments)
            {
                return names.All(_instruments.Contains);
            }
        }

        public List<string> Instruments()
        {
            lock (_instruments)
            {
                return [.. _instruments];
            }
        }

        protected override void OnEventSourceCreated(EventSource eventSource)
        {
            if (eventSource.Name == "System.Diagnostics.Metrics")
            {
                EnableEvents(eventSource, EventLevel.Informational, (EventKeywords)0x2 /* TimeSeriesValues */, new Dictionary<string, string?>
                {
                    ["SessionId"] = Guid.NewGuid().ToString("N"),
                    ["Metrics"] = meter ?? "EioSharp",
                    ["RefreshInterval"] = "0.2",
                    ["MaxTimeSeries"] = "1000",
                    ["MaxHistograms"] = "10",
                });
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventSource.Name != "System.Diagnostics.Metrics" || e.PayloadNames is null || e.Payload is null)
            {
                return;
            }

            int m = e.PayloadNames.IndexOf("meterName");
            int i = e.PayloadNames.IndexOf("instrumentName");
            if (m >= 0 && i >= 0 && e.EventName is "GaugeValuePublished" or "CounterRateValuePublished" or "UpDownCounterRateValuePublished" && (string?)e.Payload[m] == "EioSharp")
            {
                lock (_instruments)
                {
                    _instruments.Add((string)e.Payload[i]!);
                }
            }
        }
    }
}
