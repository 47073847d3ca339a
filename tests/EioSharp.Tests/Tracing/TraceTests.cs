using System.Text.Json;
using EioSharp.Mock;
using EioSharp.Sync;
using EioSharp.Tracing;

namespace EioSharp.Tests.Tracing;

/// <summary>Tracing is process-wide: its tests run alone, not in parallel with other test classes.</summary>
[CollectionDefinition("Tracing", DisableParallelization = true)]
public sealed class TracingCollection
{
}

/// <summary>The fiber trace of a known program: the event sequence (transcript, mock backend) and the Chrome JSON export.</summary>
[Collection("Tracing")]
public class TraceTests
{
    /// <summary>The known program: a producer/consumer over an AsyncQueue, a timeout that cancels a waiting fiber, a fiber that fails.</summary>
    internal static async Task KnownProgramAsync(Stdenv env, TimeSpan? timeout = null)
    {
        await Switch.RunAsync(
            async sw =>
            {
                var q = new AsyncQueue<int>(1);
                Fiber.Fork(sw, async () =>
                {
                    for (int i = 1; i <= 3; i++)
                    {
                        await q.AddAsync(i);
                    }
                }, "producer");
                Fiber.Fork(sw, async () =>
                {
                    for (int i = 1; i <= 3; i++)
                    {
                        int v = await q.TakeAsync();
                        EioTrace.Log($"got {v}");
                    }
                }, "consumer");
                Fiber.Fork(sw, async () =>
                {
                    try
                    {
                        await env.MonoClock.WithTimeoutAsync(timeout ?? TimeSpan.FromSeconds(1), () => Fiber.AwaitCancelAsync());
                    }
                    catch (TimeoutException)
                    {
                        EioTrace.Log("timed out");
                    }
                }, "waiter");
                await Task.CompletedTask;
            },
            "work");

        try
        {
            await Switch.RunAsync(
                sw =>
                {
                    Fiber.Fork(sw, async () =>
                    {
                        await Fiber.YieldAsync();
                        throw new InvalidOperationException("boom");
                    }, "failing");
                    Fiber.Fork(sw, () => Fiber.AwaitCancelAsync(), "bystander");
                    return Task.CompletedTask;
                },
                "doomed");
        }
        catch (InvalidOperationException ex)
        {
            EioTrace.Log("caught " + ex.Message);
        }
    }

    [Fact]
    public void KnownProgramGivesTheExpectedTranscriptOnTheMockBackend()
    {
        int domain = -2;
        EioTrace.Start();
        try
        {
            MockMain.Run(env =>
            {
                domain = Domain.Current!.Id;
                return KnownProgramAsync(env);
            });
        }
        finally
        {
            EioTrace.Stop();
        }

        var events = EioTrace.Snapshot().Where(e => e.DomainId == domain).ToList();
        string transcript = TraceTranscript.Format(events);
        Assert.Equal(Expected, transcript);
    }

    private const string Expected = """
        ?: new cancel context ctx-1 under none
        main: created by ? in none
        main: new cancel context ctx-2 under ctx-1
        main: opened switch work
        producer: created by main in work
        producer: suspended on queue
        consumer: created by main in work
        consumer: woke producer
        consumer: log "got 1"
        consumer: log "got 2"
        consumer: suspended on queue
        waiter: created by main in work
        waiter: new cancel context ctx-3 under ctx-2
        fiber-1: created by waiter in work
        fiber-1: suspended on await-cancel
        waiter: suspended on sleep
        main: suspended on join
        producer: resumed
        producer: woke consumer
        producer: finished ok
        consumer: resumed
        consumer: log "got 3"
        consumer: finished ok
        scheduler: woke waiter
        waiter: resumed
        waiter: cancelled ctx-3 (NotFirstException)
        fiber-1: suspension cancelled
        waiter: woke fiber-1
        waiter: suspended on join
        fiber-1: resumed
        fiber-1: finished ok
        fiber-1: woke waiter
        waiter: resumed
        waiter: log "timed out"
        waiter: finished ok
        waiter: woke main
        main: resumed
        main: closed switch work
        main: new cancel context ctx-4 under ctx-1
        main: opened switch doomed
        failing: created by main in doomed
        failing: suspended on yield
        bystander: created by main in doomed
        bystander: suspended on await-cancel
        main: suspended on join
        failing: resumed
        failing: cancelled ctx-4 (InvalidOperationException)
        bystander: suspension cancelled
        failing: woke bystander
        failing: finished failed: InvalidOperationException: boom
        bystander: resumed
        bystander: finished cancelled
        bystander: woke main
        main: resumed
        main: closed switch doomed with InvalidOperationException
        main: log "caught boom"
        main: finished ok

        """;

    [Fact]
    public void TwoDomainRunStreamsChromeJsonWithTracksSlicesAndFlows()
    {
        string path = Path.Combine(Path.GetTempPath(), $"eio-trace-{Guid.NewGuid():N}.json");
        var domains = new HashSet<int>();
        EioTrace.Start(path);
        try
        {
            EioMain.Run(async env =>
            {
                domains.Add(Domain.Current!.Id);
                var q = new AsyncQueue<int>(1);
                await Switch.RunAsync(
                    sw =>
                    {
                        Fiber.Fork(sw, () => env.DomainManager.RunAsync(async () =>
                        {
                            lock (domains)
                            {
                                domains.Add(Domain.Current!.Id);
                            }

                            for (int i = 0; i < 5; i++)
                            {
                                await q.AddAsync(i);
                            }
                        }, "worker"), "spawner");
                        Fiber.Fork(sw, async () =>
                        {
                            for (int i = 0; i < 5; i++)
                            {
                                await q.TakeAsync();
                            }
                        }, "taker");
                        return Task.CompletedTask;
                    },
                    "cross");
                await KnownProgramAsync(env, TimeSpan.FromMilliseconds(20));
            });
        }
        finally
        {
            Assert.Equal(path, EioTrace.Stop());
        }

        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        File.Delete(path);
        var all = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        string Ph(JsonElement e) => e.GetProperty("ph").GetString()!;
        int Tid(JsonElement e) => e.GetProperty("tid").GetInt32();

        // One named track per domain of the run.
        var tracks = all.Where(e => Ph(e) == "M" && e.GetProperty("name").GetString() == "thread_name")
            .ToDictionary(Tid, e => e.GetProperty("args").GetProperty("name").GetString()!);
        foreach (int d in domains)
        {
            Assert.True(tracks.ContainsKey(d + 1), $"no track for domain {d}: {string.Join(", ", tracks.Values)}");
        }

        Assert.Equal(2, domains.Count);

        // Slices: each named fiber ran at least once, with its name and switch path as args; the failed fiber says so.
        var slices = all.Where(e => Ph(e) == "X").ToList();
        JsonElement? Last(string name) => slices.LastOrDefault(e => e.GetProperty("args").TryGetProperty("name", out var n) && n.GetString() == name) is { ValueKind: JsonValueKind.Object } x ? x : null;
        foreach (string name in new[] { "main", "producer", "consumer", "waiter", "failing", "bystander", "taker", "spawner" })
        {
            Assert.True(Last(name) is not null, $"no slice for fiber {name}");
        }

        Assert.Equal("work", Last("producer")!.Value.GetProperty("args").GetProperty("switch").GetString());
        Assert.Equal("failed: InvalidOperationException: boom", Last("failing")!.Value.GetProperty("args").GetProperty("outcome").GetString());
        Assert.Equal("cancelled", Last("bystander")!.Value.GetProperty("args").GetProperty("outcome").GetString());

        // A fiber forked during the run of another is nested inside that run's slice (same track).
        var producerFirst = slices.First(e => e.GetProperty("args").TryGetProperty("name", out var n) && n.GetString() == "producer");
        double pTs = producerFirst.GetProperty("ts").GetDouble();
        Assert.Contains(slices, e => e.GetProperty("args").TryGetProperty("name", out var n) && n.GetString() == "main" && Tid(e) == Tid(producerFirst)
            && e.GetProperty("ts").GetDouble() <= pTs && e.GetProperty("ts").GetDouble() + e.GetProperty("dur").GetDouble() >= pTs);

        // Flows: every arrow end has its start, and some arrows cross from the worker domain to the main one.
        var starts = all.Where(e => Ph(e) == "s").ToDictionary(e => e.GetProperty("id").GetInt64(), Tid);
        var ends = all.Where(e => Ph(e) == "f").ToList();
        Assert.NotEmpty(ends);
        Assert.All(ends, e => Assert.True(starts.ContainsKey(e.GetProperty("id").GetInt64())));
        Assert.Contains(ends, e => starts[e.GetProperty("id").GetInt64()] != Tid(e));

        // Suspensions are async slices named after their reason.
        var suspended = all.Where(e => Ph(e) == "b").Select(e => e.GetProperty("name").GetString()).ToHashSet();
        Assert.Contains("suspended: queue", suspended);
        Assert.Contains("suspended: join", suspended);
        Assert.Contains("suspended: await-cancel", suspended);
        Assert.Contains(all, e => Ph(e) == "i" && e.GetProperty("name").GetString() == "caught boom");
    }

    /// <summary>Issue 15: a session started while fibers are in the middle of a run (the fiber that starts it, and a fiber of
    /// another domain) shows those runs as slices from the start, even when they do not suspend before it stops (the KV
    /// server's DEBUG TRACE START: a connection whose reads all found their data at once ran from START to STOP in one
    /// run, and the trace held no slice at all).</summary>
    [Fact]
    public void SessionStartedDuringRunsShowsTheRunsInProgress()
    {
        string path = Path.Combine(Path.GetTempPath(), $"eio-trace-{Guid.NewGuid():N}.json");
        using var workerRunning = new ManualResetEventSlim();
        using var sessionOn = new ManualResetEventSlim();
        using var workerLogged = new ManualResetEventSlim();
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(
                sw =>
                {
                    Fiber.Fork(sw, () => env.DomainManager.RunAsync(() =>
                    {
                        // A run on another domain that is in progress when the session starts and ends without suspending.
                        workerRunning.Set();
                        Assert.True(sessionOn.Wait(TimeSpan.FromSeconds(30)));
                        EioTrace.Log("worker after start");
                        workerLogged.Set();
                        return Task.CompletedTask;
                    }, "worker"), "spawner");

                    // The main fiber starts the session in the middle of its run and stops it before its run ends.
                    Assert.True(workerRunning.Wait(TimeSpan.FromSeconds(30)));
                    EioTrace.Start(path);
                    EioTrace.Log("main after start");
                    sessionOn.Set();
                    Assert.True(workerLogged.Wait(TimeSpan.FromSeconds(30)));
                    Assert.Equal(path, EioTrace.Stop());
                    return Task.CompletedTask;
                },
                "work");
        });

        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        File.Delete(path);
        var all = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        string Ph(JsonElement e) => e.GetProperty("ph").GetString()!;
        int Tid(JsonElement e) => e.GetProperty("tid").GetInt32();
        double Ts(JsonElement e) => e.GetProperty("ts").GetDouble();
        var slices = all.Where(e => Ph(e) == "X" && e.GetProperty("cat").GetString() == "fiber").ToList();
        foreach (string label in new[] { "main after start", "worker after start" })
        {
            var l = Assert.Single(all, e => Ph(e) == "i" && e.GetProperty("name").GetString() == label);
            Assert.True(
                slices.Any(x => Tid(x) == Tid(l) && Ts(x) <= Ts(l) && Ts(l) <= Ts(x) + x.GetProperty("dur").GetDouble()),
                $"no slice holds \"{label}\" on its track: {string.Join(", ", slices.Select(x => $"{x.GetProperty("name")}@{Tid(x)}"))}");
        }

        var main = all.Single(e => Ph(e) == "i" && e.GetProperty("name").GetString() == "main after start");
        Assert.Contains(slices, x => Tid(x) == Tid(main) && x.GetProperty("args").TryGetProperty("name", out var n) && n.GetString() == "main");
    }

    /// <summary>Issue 15: a fiber that starts a session and has it stopped by another thread before it records any event
    /// (the KV server's DEBUG TRACE STOP runs on a system thread, which may turn recording off before the fiber's
    /// suspension is recorded) still shows its run.</summary>
    [Fact]
    public void SessionStoppedByAnotherThreadBeforeTheRunningFiberRecordedShowsItsRun()
    {
        string path = Path.Combine(Path.GetTempPath(), $"eio-trace-{Guid.NewGuid():N}.json");
        string? stopped = null;
        EioMain.Run(_ =>
        {
            EioTrace.Start(path);
            var stopper = new Thread(() => stopped = EioTrace.Stop());
            stopper.Start();
            stopper.Join(); // blocks the main fiber's run: nothing is recorded on its domain until the session stops
            return Task.CompletedTask;
        });

        Assert.Equal(path, stopped);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        File.Delete(path);
        var all = doc.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        Assert.Contains(all, e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("cat").GetString() == "fiber"
            && e.GetProperty("args").TryGetProperty("name", out var n) && n.GetString() == "main");
    }

    [Fact]
    public void OffByDefaultAndRecordsNothingWhenOff()
    {
        Assert.False(EioTrace.IsEnabled);
        EioTrace.Start();
        EioTrace.Stop();
        MockMain.Run(env => KnownProgramAsync(env));
        Assert.Empty(EioTrace.Snapshot());
    }
}

/// <summary>Live dumps: the tree of domains, switches and fibers, with what each fiber is suspended on.</summary>
[Collection("Tracing")]
public class DumpTests
{
    [Fact]
    public void DumpShowsSwitchesFibersAndWhatEachWaitsFor()
    {
        string text = "", tree = "", json = "";
        using (EioDiagnostics.TrackFibers())
        {
            MockMain.Run(async env =>
            {
                try
                {
                    await Switch.RunAsync(
                        async sw =>
                        {
                            var q = new AsyncQueue<int>(0);
                            Fiber.Fork(sw, async () => await q.TakeAsync(), "taker");
                            Fiber.Fork(sw, async () => await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(10)), "sleeper");
                            await Switch.RunAsync(
                                inner =>
                                {
                                    Fiber.Fork(inner, () => Fiber.AwaitCancelAsync(), "idler");
                                    text = sw.Dump();
                                    tree = EioDiagnostics.DumpTree();
                                    json = EioDiagnostics.DumpTreeJson();
                                    sw.CancelContext.Cancel(new TimeoutException("enough"));
                                    return Task.CompletedTask;
                                },
                                "inner");
                        },
                        "outer");
                }
                catch (CancelledException)
                {
                }
            });
        }

        Assert.Matches(@"^switch \d+ ""outer"" \(outer\), cancel context \d+ live, body in fiber \d+ \(main\)\n", text);
        Assert.Matches(@"\n  fiber \d+ \(taker\): suspended on queue for \d+ ms, cancel context \d+ live\n", text);
        Assert.Matches(@"\n  fiber \d+ \(sleeper\): suspended on sleep for \d+ ms, cancel context \d+ live\n", text);
        Assert.Matches(@"\n  switch \d+ ""inner"" \(outer/inner\), cancel context \d+ live, body in fiber \d+ \(main\)\n    fiber \d+ \(idler\): suspended on await-cancel for \d+ ms", text);
        Assert.Matches(@"(?m)^domain \d+ \(mock\): running a work item, run queue \d+\n  fiber \d+ \(main\): running\n  switch \d+ ""outer""", tree);
        Assert.Matches(@"\n    fiber \d+ \(taker\): suspended on queue for \d+ ms", tree); // one level deeper under its domain

        using var doc = JsonDocument.Parse(json);
        var mock = doc.RootElement.GetProperty("domains").EnumerateArray().Single(d => d.GetProperty("name").GetString() == "mock");
        Assert.Equal("running", mock.GetProperty("main").GetProperty("state").GetString());
        var outer = mock.GetProperty("switches").EnumerateArray().Single();
        Assert.Equal("outer", outer.GetProperty("name").GetString());
        var fibers = outer.GetProperty("fibers").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!, f => f);
        Assert.Equal("queue", fibers["taker"].GetProperty("reason").GetString());
        Assert.Equal("sleep", fibers["sleeper"].GetProperty("reason").GetString());
        Assert.False(fibers["taker"].GetProperty("cancel").GetProperty("cancelled").GetBoolean());
        var inner = outer.GetProperty("switches").EnumerateArray().Single();
        Assert.Equal("outer/inner", inner.GetProperty("path").GetString());
        Assert.Equal("await-cancel", inner.GetProperty("fibers")[0].GetProperty("reason").GetString());
    }

    /// <summary>With tracing on (and nothing else tracking fibers), the trace hook records what a fiber is suspended on
    /// and since when, from the time of the domain's last trace event (issue 17: no clock read of its own): the dump shows
    /// the reason and a duration that covers the real time the fiber has been waiting.</summary>
    [Fact]
    public void DumpWhileTracingShowsSuspensionsAndTheirDuration()
    {
        string text = "", json = "";
        EioTrace.Start();
        try
        {
            MockMain.Run(async _ =>
            {
                await Switch.RunAsync(
                    async sw =>
                    {
                        var q = new AsyncQueue<int>(0);
                        var (p, r) = Promise.Create<int>();
                        Fiber.Fork(sw, async () => await q.TakeAsync(), "taker");
                        Fiber.Fork(sw, async () => await p.AwaitAsync(), "awaiter");
                        await Fiber.YieldAsync(); // a new run: the suspensions above are older than its start
                        Thread.Sleep(150); // real time passes while both wait (this blocks the domain on purpose)
                        text = sw.Dump();
                        json = EioDiagnostics.DumpTreeJson();
                        await q.AddAsync(1);
                        r.Resolve(2);
                    },
                    "traced");
            });
        }
        finally
        {
            EioTrace.Stop();
        }

        Assert.Matches(@"\n  fiber \d+ \(taker\): suspended on queue for \d+ ms, cancel context \d+ live\n", text);
        Assert.Matches(@"\n  fiber \d+ \(awaiter\): suspended on promise for \d+ ms", text);
        using var doc = JsonDocument.Parse(json);
        var mock = doc.RootElement.GetProperty("domains").EnumerateArray().Single(d => d.GetProperty("name").GetString() == "mock");
        var fibers = mock.GetProperty("switches").EnumerateArray().Single().GetProperty("fibers").EnumerateArray()
            .ToDictionary(f => f.GetProperty("name").GetString()!, f => f);
        foreach (var (name, reason) in new[] { ("taker", "queue"), ("awaiter", "promise") })
        {
            Assert.Equal("suspended", fibers[name].GetProperty("state").GetString());
            Assert.Equal(reason, fibers[name].GetProperty("reason").GetString());
            // At least the real time slept (under load it may be much more); the upper bound only catches a time
            // decoded from the wrong clock (a raw counter or the complement taken as milliseconds).
            Assert.InRange(fibers[name].GetProperty("suspendedMs").GetInt64(), 140, 600_000);
        }
    }

    /// <summary>As <see cref="DumpWhileTracingShowsSuspensionsAndTheirDuration"/> for unnamed fibers and for a named
    /// fiber's later suspensions: these take the suspension hook's fast path (h90: no fiber identity to store in the
    /// ring), which must record the dumps' suspension as the general path does.</summary>
    [Fact]
    public void DumpWhileTracingShowsTheSuspensionsOfTheHooksFastPath()
    {
        string text = "", json = "";
        EioTrace.Start();
        try
        {
            MockMain.Run(async _ =>
            {
                await Switch.RunAsync(
                    async sw =>
                    {
                        var q = new AsyncQueue<int>(0);
                        var (p, r) = Promise.Create<int>();
                        var (p2, r2) = Promise.Create<int>();
                        Fiber.Fork(sw, async () => await q.TakeAsync()); // unnamed: the fast path from its first suspension
                        Fiber.Fork(sw, async () => await p.AwaitAsync());
                        Fiber.Fork(sw, async () =>
                        {
                            await Fiber.YieldAsync(); // its identity is stored with this first suspension (general path)
                            await p2.AwaitAsync(); // then carried in this period: the fast path
                        }, "again");
                        await Fiber.YieldAsync();
                        await Fiber.YieldAsync(); // "again" is suspended on its promise by now
                        Thread.Sleep(150);
                        text = sw.Dump();
                        json = EioDiagnostics.DumpTreeJson();
                        await q.AddAsync(1);
                        r.Resolve(2);
                        r2.Resolve(3);
                    },
                    "traced");
            });
        }
        finally
        {
            EioTrace.Stop();
        }

        Assert.Matches(@"\n  fiber \d+: suspended on queue for \d+ ms, cancel context \d+ live\n", text);
        Assert.Matches(@"\n  fiber \d+: suspended on promise for \d+ ms", text);
        Assert.Matches(@"\n  fiber \d+ \(again\): suspended on promise for \d+ ms", text);
        using var doc = JsonDocument.Parse(json);
        var mock = doc.RootElement.GetProperty("domains").EnumerateArray().Single(d => d.GetProperty("name").GetString() == "mock");
        var fibers = mock.GetProperty("switches").EnumerateArray().Single().GetProperty("fibers").EnumerateArray().ToList();
        Assert.Equal(3, fibers.Count);
        Assert.Equal(["queue", "promise", "promise"], fibers.Select(f => f.GetProperty("reason").GetString()));
        foreach (var f in fibers)
        {
            Assert.Equal("suspended", f.GetProperty("state").GetString());
            Assert.InRange(f.GetProperty("suspendedMs").GetInt64(), 140, 600_000);
        }
    }

    /// <summary>Forks in a loop (the fork hooks' fast paths, h94: an unnamed fiber in the switch the ring's last carrier
    /// carried, and an unnamed fiber that returns) record each fiber's creation, with its parent and switch, and its end
    /// with its outcome, in order, as the general paths do (a named fiber and a failing one take those).</summary>
    [Fact]
    public void ForksInALoopRecordEachCreationWithParentAndSwitchAndEachEndWithItsOutcome()
    {
        EioTrace.Start();
        try
        {
            MockMain.Run(async _ =>
            {
                await Assert.ThrowsAsync<InvalidOperationException>(() => Switch.RunAsync(
                    async sw =>
                    {
                        for (int i = 0; i < 9; i++)
                        {
                            if (i == 4)
                            {
                                Fiber.Fork(sw, () => Task.CompletedTask, "named");
                            }
                            else if (i == 8)
                            {
                                Fiber.Fork(sw, () => Task.FromException(new InvalidOperationException("boom"))); // fails the switch: the last fork
                            }
                            else
                            {
                                Fiber.Fork(sw, () => Task.CompletedTask);
                            }
                        }

                        await Task.CompletedTask;
                    },
                    "forks"));
            });
        }
        finally
        {
            EioTrace.Stop();
        }

        var events = EioTrace.Snapshot().Where(e => e.DomainId >= 0).ToList();
        var opened = events.Single(e => e.Kind == TraceEventKind.SwitchOpened && e.Data is Switch { Name: "forks" });
        long parent = opened.Fiber, switchId = opened.Arg;
        var created = events.Where(e => e.Kind == TraceEventKind.FiberCreated && e.Arg == switchId).ToList();
        Assert.Equal(9, created.Count);
        Assert.All(created, c => Assert.Equal(parent, c.Other));
        Assert.Equal(9, created.Select(c => c.Fiber).Distinct().Count());
        Assert.Equal("named", created[4].FiberName);
        Assert.All(created.Where((_, i) => i != 4), c => Assert.Null(c.FiberName));
        Assert.Equal("forks", created[0].SwitchPath); // the first creation in the switch carries it

        // Each fiber ends (outcome in Arg) after its own creation and before the next fiber's creation.
        int previousEnd = -1;
        for (int i = 0; i < created.Count; i++)
        {
            int c = events.IndexOf(created[i]);
            int end = events.FindIndex(e => e.Kind == TraceEventKind.FiberFinished && e.Fiber == created[i].Fiber);
            Assert.True(c > previousEnd && end > c, $"fork {i}: created at {c}, finished at {end}, previous end {previousEnd}");
            Assert.Equal((long)(i == 8 ? FiberOutcome.Failed : FiberOutcome.Ok), events[end].Arg);
            Assert.True(events[end].Timestamp >= events[c].Timestamp);
            previousEnd = end;
        }
    }
}
