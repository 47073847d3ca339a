using System.Text;

namespace EioSharp.Tracing;

/// <summary>Formats trace events as a readable transcript, one line per event, without times or process-wide ids.</summary>
/// <remarks>Fibers are shown by name (unnamed ones as <c>fiber-1</c>, <c>fiber-2</c>... in order of appearance), switches
/// by path, cancel contexts as <c>ctx-1</c>, <c>ctx-2</c>..., so a deterministic program (on the mock backend) gives the
/// same transcript every run. Domain busy/idle events are left out unless <c>includeDomain</c> is set.</remarks>
public static class TraceTranscript
{
    /// <summary>Formats <paramref name="events"/> (in the order given).</summary>
    /// <param name="events">The events, usually from <see cref="EioTrace.Snapshot"/>.</param>
    /// <param name="includeDomain">True to include domain idle/busy lines.</param>
    /// <returns>The transcript, one line per event, each ending in a newline.</returns>
    public static string Format(IEnumerable<TraceEvent> events, bool includeDomain = false)
    {
        var fibers = new Dictionary<long, string>();
        var contexts = new Dictionary<long, string>();
        var switches = new Dictionary<long, string>();
        int unnamed = 0;
        var sb = new StringBuilder();

        string F(long id, object? data = null)
        {
            if (id == 0)
            {
                return "?";
            }

            if (fibers.TryGetValue(id, out var n))
            {
                return n;
            }

            n = data is FiberInfo { Name: { } name } ? name : $"fiber-{++unnamed}";
            fibers[id] = n;
            return n;
        }

        string C(long id)
        {
            if (id == 0)
            {
                return "none";
            }

            if (!contexts.TryGetValue(id, out var n))
            {
                n = $"ctx-{contexts.Count + 1}";
                contexts[id] = n;
            }

            return n;
        }

        string S(long id) => id == 0 ? "none" : switches.TryGetValue(id, out var p) ? p : $"switch-{id}";

        // A named fiber's identity is stored with one of its events per half ring (EioTrace.CarriedData): name the
        // fibers from every event that carries one first, so that events before the carrier are named too.
        var list = events as IReadOnlyList<TraceEvent> ?? events.ToList();
        foreach (var e in list)
        {
            if (e.Fiber != 0 && e.Data is FiberInfo { Name: { } named })
            {
                fibers.TryAdd(e.Fiber, named);
            }
        }

        foreach (var e in list)
        {
            switch (e.Kind)
            {
                case TraceEventKind.FiberCreated:
                    sb.Append(F(e.Fiber, e.Data)).Append(": created by ").Append(F(e.Other)).Append(" in ").Append(S(e.Arg)).Append('\n');
                    break;
                case TraceEventKind.FiberResumed:
                    sb.Append(F(e.Fiber, e.Data)).Append(": resumed\n");
                    break;
                case TraceEventKind.FiberSuspended:
                    sb.Append(F(e.Fiber, e.Data)).Append(": suspended on ").Append(ChromeTraceWriter.ReasonName(e.Reason));
                    if (e.Arg != 0)
                    {
                        sb.Append(" fd ").Append(e.Arg);
                    }

                    sb.Append('\n');
                    break;
                case TraceEventKind.FiberWoken:
                    sb.Append(e.Other != 0 ? F(e.Other) : e.DomainId >= 0 ? "scheduler" : "thread").Append(": woke ").Append(F(e.Fiber)).Append('\n');
                    break;
                case TraceEventKind.FiberCancelled:
                    sb.Append(F(e.Fiber, e.Data)).Append(": suspension cancelled\n");
                    break;
                case TraceEventKind.FiberFinished:
                    sb.Append(F(e.Fiber, e.Data)).Append(": finished ");
                    sb.Append((FiberOutcome)e.Arg switch
                    {
                        FiberOutcome.Ok => "ok",
                        FiberOutcome.Cancelled => "cancelled",
                        _ => "failed: " + e.Exception?.GetType().Name + ": " + e.Exception?.Message,
                    });
                    sb.Append('\n');
                    break;
                case TraceEventKind.SwitchOpened:
                    switches[e.Arg] = e.SwitchPath ?? $"switch-{e.Arg}";
                    sb.Append(F(e.Fiber)).Append(": opened switch ").Append(S(e.Arg)).Append('\n');
                    break;
                case TraceEventKind.SwitchClosed:
                    sb.Append(F(e.Fiber)).Append(": closed switch ").Append(S(e.Arg));
                    if (e.Exception is { } ex)
                    {
                        sb.Append(" with ").Append(ex.GetType().Name);
                    }

                    sb.Append('\n');
                    break;
                case TraceEventKind.CancelCreated:
                    sb.Append(F(e.Fiber)).Append(": new cancel context ").Append(C(e.Arg)).Append(" under ").Append(C(e.Other)).Append('\n');
                    break;
                case TraceEventKind.CancelCancelled:
                    sb.Append(F(e.Fiber)).Append(": cancelled ").Append(C(e.Arg)).Append(" (").Append(e.Exception?.GetType().Name).Append(")\n");
                    break;
                case TraceEventKind.Label:
                    sb.Append(F(e.Fiber)).Append(": log \"").Append(e.Text).Append("\"\n");
                    break;
                case TraceEventKind.SysthreadStarted:
                    sb.Append(F(e.Fiber)).Append(": offload started on a system thread\n");
                    break;
                case TraceEventKind.SysthreadFinished:
                    sb.Append(F(e.Fiber)).Append(": offload finished").Append(e.Exception is { } oex ? " (" + oex.GetType().Name + ")" : string.Empty).Append('\n');
                    break;
                case TraceEventKind.DomainIdle when includeDomain:
                    sb.Append("domain ").Append(e.DomainId).Append(": idle\n");
                    break;
                case TraceEventKind.DomainBusy when includeDomain:
                    sb.Append("domain ").Append(e.DomainId).Append(": busy\n");
                    break;
            }
        }

        return sb.ToString();
    }
}
