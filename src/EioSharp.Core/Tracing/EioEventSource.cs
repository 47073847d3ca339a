using System.Diagnostics.Tracing;

namespace EioSharp.Tracing;

/// <summary>The <c>EioSharp</c> event source: the fiber trace events, for <c>dotnet-trace</c>, PerfView and in-process
/// <see cref="EventListener"/>s.</summary>
/// <remarks>
/// Enabling the source (any level, keyword <see cref="Keywords.Fibers"/> or all) turns fiber tracing on for as long as a
/// listener is attached, exactly as <see cref="EioTrace.Start(string?, int)"/> does, and every event is also written here.
/// <c>dotnet-trace collect -n EioSharp.Kv --providers EioSharp</c>. The counters (run queue length, busy time, work items,
/// live domains) are the <c>EioSharp</c> meter: <c>dotnet-counters monitor -n EioSharp.Kv --counters EioSharp</c>.
/// </remarks>
[EventSource(Name = "EioSharp")]
public sealed class EioEventSource : EventSource
{
    /// <summary>The one instance.</summary>
    public static readonly EioEventSource Log = new();

    private bool _counted;

    /// <summary>Creates the source if it was not yet (called when the first domain is made).</summary>
    /// <remarks>Issue 17 (h122): the tracing hooks touch <see cref="Log"/> only while a listener is attached, and a listener
    /// is counted only when the source, once created, is enabled; with nothing else creating it, an
    /// <see cref="EventListener"/> made before any use of the source (or <c>dotnet-trace</c> attached to a process that
    /// never named it) saw no event and never turned tracing on.</remarks>
    internal static void EnsureCreated() => GC.KeepAlive(Log);

    private EioEventSource()
        : base(EventSourceSettings.EtwSelfDescribingEventFormat)
    {
    }

    /// <summary>Keywords of the source.</summary>
    public static class Keywords
    {
        /// <summary>Fiber, switch, cancellation and domain events.</summary>
        public const EventKeywords Fibers = (EventKeywords)1;
    }

    /// <summary>Turns tracing on while at least one listener has the source enabled.</summary>
    /// <param name="command">The command.</param>
    protected override void OnEventCommand(EventCommandEventArgs command)
    {
        lock (this)
        {
            bool enabled = IsEnabled();
            if (enabled && !_counted)
            {
                _counted = true;
                EioTrace.AddEventSourceListener(add: true);
            }
            else if (!enabled && _counted)
            {
                _counted = false;
                EioTrace.AddEventSourceListener(add: false);
            }
        }
    }

    /// <summary>One fiber trace event (see <see cref="TraceEvent"/> for the fields).</summary>
    /// <param name="kind">The <see cref="TraceEventKind"/> name.</param>
    /// <param name="reason">The <see cref="TraceReason"/> name (suspensions).</param>
    /// <param name="domain">The recording domain's id (-1: not a domain thread).</param>
    /// <param name="fiber">The fiber id.</param>
    /// <param name="other">The second id.</param>
    /// <param name="arg">The argument.</param>
    /// <param name="text">The fiber name, switch path, label or exception type, if any.</param>
    [Event(1, Level = EventLevel.Verbose, Keywords = Keywords.Fibers)]
    public void FiberEvent(string kind, string reason, int domain, long fiber, long other, long arg, string text) =>
        WriteEvent(1, kind, reason, domain, fiber, other, arg, text);

    [NonEvent]
    internal void Write(TraceEventKind kind, TraceReason reason, int domain, long fiber, long other, long arg, object? data)
    {
        if (!IsEnabled())
        {
            return;
        }

        string text = data switch
        {
            string s => s,
            FiberInfo f => f.Name ?? string.Empty,
            Switch sw => sw.Path,
            Exception ex => ex.GetType().Name,
            _ => string.Empty,
        };
        FiberEvent(kind.ToString(), reason.ToString(), domain, fiber, other, arg, text);
    }
}
