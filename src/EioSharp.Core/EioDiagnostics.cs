using System.Text;
using System.Text.Json;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>Live dumps of the process's domains, switches and fibers (like a Go goroutine dump).</summary>
/// <remarks>
/// [ext] Not in Eio (eio-trace shows the same tree after the fact).
/// <para><b>What a dump shows</b>: every live domain (id, name, run queue length, whether it is running a work item), its
/// main fiber, and the tree of its live switches (nested by the switch that was current when each was opened), each with
/// its cancel context (id, cancelled or not, why) and its live fibers: id, name, state (running, suspended, runnable)
/// and, for a suspended fiber, on what (<see cref="TraceReason"/>, the file descriptor of an I/O wait), for how long, and
/// the cancel context the suspension is attached to.</para>
/// <para><b>Cost</b>: the tree (switches and fibers) is always kept, a few pointer writes per fork and switch. What a fiber
/// is suspended on is recorded only while fibers are tracked: <see cref="TrackFibers"/>, a running watchdog, or tracing
/// (with a watchdog or <see cref="TrackFibers"/>: one <see cref="AsyncLocal{T}"/> read and one clock read of
/// <see cref="Environment.TickCount64"/> per suspension; with tracing alone, written by the trace hook with the time of the
/// domain's last trace event, the start of the run that suspended: no clock read);
/// otherwise a fiber that is not running is shown as "not running (untracked)".</para>
/// <para><b>Thread safety</b>: callable from any thread, including while domains run (for example from a signal handler
/// when a domain is stuck): the structures are read without stopping the domains, so a dump taken while they change is
/// best effort (a fiber may appear in the state it left a moment before).</para>
/// </remarks>
public static class EioDiagnostics
{
    private const int MaxNodes = 100_000;

    /// <summary>Records what each fiber is suspended on, for dumps, until the returned handle is disposed.</summary>
    /// <returns>A handle; dispose it to stop tracking (tracking stays on while any handle, watchdog or trace is active).</returns>
    public static IDisposable TrackFibers()
    {
        Interlocked.Increment(ref Domain.WatchdogsRunning);
        return new Tracking();
    }

    /// <summary>The live tree of every domain of the process, as indented text.</summary>
    /// <returns>The dump; one line per domain, switch and fiber.</returns>
    public static string DumpTree()
    {
        var sb = new StringBuilder();
        foreach (var d in DomainRegistry.Snapshot)
        {
            WriteDomainText(sb, d);
        }

        return sb.ToString();
    }

    /// <summary>The live tree of every domain of the process, as JSON.</summary>
    /// <param name="indented">True for indented JSON.</param>
    /// <returns>A JSON object <c>{"domains":[{"id","name","runQueue","running","main","switches":[{"id","name","path",
    /// "cancel":{"id","cancelled","reason"},"body","fibers":[{"id","name","state","reason","fd","suspendedMs","cancel"}],
    /// "switches":[...]}]}]}</c>.</returns>
    public static string DumpTreeJson(bool indented = true)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            w.WriteStartArray("domains");
            foreach (var d in DomainRegistry.Snapshot)
            {
                w.WriteStartObject();
                w.WriteNumber("id", d.Id);
                w.WriteString("name", d.Name);
                w.WriteNumber("runQueue", d.RunQueueLength);
                w.WriteBoolean("running", d.CurrentItem != 0);
                if (d.MainFiber is { Finished: false } main)
                {
                    w.WritePropertyName("main");
                    WriteFiberJson(w, d, main);
                }

                w.WriteStartArray("switches");
                foreach (var sw in RootSwitches(d))
                {
                    WriteSwitchJson(w, d, sw, 0);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>A one-line description of the fiber running a frame, with its state and switch path (for the watchdog).</summary>
    internal static string DescribeFiber(Domain d, FiberInfo f)
    {
        var sb = new StringBuilder();
        sb.Append(f).Append(": ").Append(State(d, f));
        if (f.Owner is { } sw)
        {
            sb.Append(", in switch ").Append(sw.Path);
        }

        return sb.ToString();
    }

    /// <summary>The subtree of one switch as text (see <see cref="Switch.Dump"/>).</summary>
    internal static string DumpSwitch(Switch sw)
    {
        var sb = new StringBuilder();
        WriteSwitchText(sb, sw.Domain, sw, 0);
        return sb.ToString();
    }

    private static void WriteDomainText(StringBuilder sb, Domain d)
    {
        sb.Append("domain ").Append(d.Id).Append(" (").Append(d.Name).Append("): ")
            .Append(d.CurrentItem != 0 ? "running a work item" : "idle or between items")
            .Append(", run queue ").Append(d.RunQueueLength).Append('\n');
        if (d.MainFiber is { Finished: false } main)
        {
            sb.Append("  ").Append(FiberLine(d, main)).Append('\n');
        }

        foreach (var sw in RootSwitches(d))
        {
            WriteSwitchText(sb, d, sw, 1);
        }
    }

    private static void WriteSwitchText(StringBuilder sb, Domain d, Switch sw, int depth)
    {
        if (depth > 64)
        {
            return;
        }

        string pad = new(' ', depth * 2);
        sb.Append(pad).Append("switch ").Append(sw.TraceId).Append(" \"").Append(sw.Name ?? "switch").Append("\" (")
            .Append(sw.Path).Append("), ").Append(CancelText(sw.CancelContext));
        if (sw.BodyFiber is { } body)
        {
            sb.Append(", body in ").Append(body);
        }

        sb.Append('\n');
        foreach (var f in Fibers(sw))
        {
            sb.Append(pad).Append("  ").Append(FiberLine(d, f)).Append('\n');
        }

        foreach (var child in ChildSwitches(d, sw))
        {
            WriteSwitchText(sb, d, child, depth + 1);
        }
    }

    private static string FiberLine(Domain d, FiberInfo f)
    {
        var line = new StringBuilder();
        line.Append(f).Append(": ").Append(State(d, f));
        if (f.SuspendedOn is { Context: { } ctx })
        {
            line.Append(", ").Append(CancelText(ctx));
        }

        return line.ToString();
    }

    private static string State(Domain d, FiberInfo f)
    {
        if (f.Finished)
        {
            return "finished";
        }

        if (ReferenceEquals(d.RunningFrame?.Fiber, f) && d.CurrentItem != 0)
        {
            return "running";
        }

        if (f.SuspendedOn is { } w)
        {
            long ms = f.SuspendedForMs();
            string fd = w.TraceArg != 0 ? $" fd {w.TraceArg}" : string.Empty;
            return $"suspended on {ChromeTraceWriter.ReasonName(w.TraceReason)}{fd} for {ms} ms";
        }

        return Domain.FibersTracked
            ? "runnable (or awaiting an ordinary .NET task)"
            : "not running (untracked: see EioDiagnostics.TrackFibers)";
    }

    private static string CancelText(CancelContext c)
    {
        string state = c.Reason is { } r ? $"cancelled ({r.GetType().Name}: {r.Message})" : c.IsProtected ? "protected" : "live";
        return $"cancel context {c.TraceId} {state}";
    }

    private static void WriteSwitchJson(Utf8JsonWriter w, Domain d, Switch sw, int depth)
    {
        w.WriteStartObject();
        w.WriteNumber("id", sw.TraceId);
        w.WriteString("name", sw.Name);
        w.WriteString("path", sw.Path);
        WriteCancelJson(w, sw.CancelContext);
        if (sw.BodyFiber is { } body)
        {
            w.WriteNumber("body", body.Id);
        }

        w.WriteStartArray("fibers");
        foreach (var f in Fibers(sw))
        {
            WriteFiberJson(w, d, f);
        }

        w.WriteEndArray();
        w.WriteStartArray("switches");
        if (depth < 64)
        {
            foreach (var child in ChildSwitches(d, sw))
            {
                WriteSwitchJson(w, d, child, depth + 1);
            }
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteFiberJson(Utf8JsonWriter w, Domain d, FiberInfo f)
    {
        w.WriteStartObject();
        w.WriteNumber("id", f.Id);
        w.WriteString("name", f.Name);
        var waiter = f.SuspendedOn;
        string state = f.Finished ? "finished"
            : ReferenceEquals(d.RunningFrame?.Fiber, f) && d.CurrentItem != 0 ? "running"
            : waiter is not null ? "suspended"
            : Domain.FibersTracked ? "runnable" : "untracked";
        w.WriteString("state", state);
        if (state == "suspended" && waiter is not null)
        {
            w.WriteString("reason", ChromeTraceWriter.ReasonName(waiter.TraceReason));
            if (waiter.TraceArg != 0)
            {
                w.WriteNumber("fd", waiter.TraceArg);
            }

            w.WriteNumber("suspendedMs", f.SuspendedForMs());
            if (waiter.Context is { } ctx)
            {
                WriteCancelJson(w, ctx);
            }
        }

        w.WriteEndObject();
    }

    private static void WriteCancelJson(Utf8JsonWriter w, CancelContext c)
    {
        w.WriteStartObject("cancel");
        w.WriteNumber("id", c.TraceId);
        w.WriteBoolean("cancelled", c.IsCancelled);
        w.WriteBoolean("protected", c.IsProtected);
        if (c.Reason is { } r)
        {
            w.WriteString("reason", $"{r.GetType().Name}: {r.Message}");
        }

        w.WriteEndObject();
    }

    private static List<Switch> AllSwitches(Domain d)
    {
        var all = new List<Switch>();
        for (var s = d.LiveSwitches; s is not null && all.Count < MaxNodes; s = s.NextLive)
        {
            all.Add(s);
        }

        all.Reverse(); // oldest first
        return all;
    }

    private static IEnumerable<Switch> RootSwitches(Domain d) =>
        AllSwitches(d).Where(s => s.Parent is null || !ReferenceEquals(s.Parent.Domain, d) || s.Parent.IsFinished);

    private static IEnumerable<Switch> ChildSwitches(Domain d, Switch parent) =>
        AllSwitches(d).Where(s => ReferenceEquals(s.Parent, parent));

    private static List<FiberInfo> Fibers(Switch sw)
    {
        var all = new List<FiberInfo>();
        for (var f = sw.LiveFibers; f is not null && all.Count < MaxNodes; f = f.NextLive)
        {
            if (!f.Finished) // a finished fiber may stay linked until the switch sweeps its list
            {
                all.Add(f);
            }
        }

        all.Reverse(); // oldest first
        return all;
    }

    private sealed class Tracking : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref Domain.WatchdogsRunning);
            }
        }
    }
}
