using System.Diagnostics;
using System.Text.Json;

namespace EioSharp.Tracing;

/// <summary>Streams trace events as Chrome Trace Event JSON (loads in ui.perfetto.dev and chrome://tracing).</summary>
/// <remarks>
/// <para><b>Layout</b>: one process ("EioSharp"), one thread track per domain (tid = domain id + 1; tid 0 is the threads
/// that are not domains). Each run of a fiber between two suspension points is a complete slice (<c>"ph":"X"</c>, category
/// <c>fiber</c>) named after the fiber, with args <c>fiber</c> (id), <c>name</c>, <c>switch</c> (the owning switch's path)
/// and, on the last run, <c>outcome</c>. A fiber forked during another fiber's run runs at once, so its slice is nested in
/// the parent's. Each suspension is an async slice (<c>"ph":"b"</c>/<c>"e"</c>, category <c>suspended</c>, id = fiber id,
/// name <c>suspended: reason</c>). A wake-up is a flow (<c>"ph":"s"</c> on the waker's track, <c>"ph":"f"</c> with
/// <c>"bp":"e"</c> on the woken fiber's next slice; category <c>wake</c>). Labels, switches and cancellations are instant
/// events (categories <c>label</c>, <c>switch</c>, <c>cancel</c>). A blocking call offloaded to a system thread
/// (<c>Systhread.RunAsync</c>) is a complete slice (category <c>systhread</c>, name <c>offload (fiber #id)</c>, args
/// <c>fiber</c>, <c>offload</c>, <c>outcome</c>) on that thread's own track (tid 100000 + managed thread id, named
/// <c>system thread N</c>); the fiber's <c>suspended: systhread</c> slice spans it. Times are microseconds from the first event.</para>
/// <para><b>Streaming</b>: <see cref="Write(IReadOnlyList{TraceEvent})"/> may be called many times with successive batches
/// (each ordered by time); state is kept per open slice and per suspended fiber only. <see cref="Dispose"/> closes the
/// open slices and the JSON document.</para>
/// <para><b>Thread safety</b>: none; one writer thread.</para>
/// </remarks>
public sealed class ChromeTraceWriter : IDisposable
{
    private const int Pid = 1;
    private const int SystemThreadTidBase = 100_000; // tids of system-thread tracks: this + managed thread id
    private readonly Utf8JsonWriter _json;
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly Dictionary<int, DomainState> _domains = [];
    private readonly Dictionary<long, (string? Name, Switch? Owner)> _fibers = [];
    private readonly Dictionary<long, Switch> _switches = []; // switch id -> switch, for creations that carry only the id
    private readonly Dictionary<long, (long Ts, TraceReason Reason, int Tid)> _suspended = [];
    private readonly Dictionary<long, long> _pendingFlows = [];
    private readonly Dictionary<long, long> _offloads = [];
    private readonly HashSet<int> _systemThreads = [];
    private long _origin = long.MinValue;
    private long _lastTs;
    private bool _disposed;

    /// <summary>Starts the JSON document on <paramref name="stream"/>.</summary>
    /// <param name="stream">The destination.</param>
    /// <param name="leaveOpen">True to leave the stream open after <see cref="Dispose"/>.</param>
    public ChromeTraceWriter(Stream stream, bool leaveOpen = false)
    {
        _stream = stream ?? throw new ArgumentNullException(nameof(stream));
        _leaveOpen = leaveOpen;
        _json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, SkipValidation = true });
        _json.WriteStartObject();
        _json.WriteString("displayTimeUnit", "ms");
        _json.WritePropertyName("traceEvents");
        _json.WriteStartArray();
        Meta("process_name", 0, "EioSharp");
    }

    /// <summary>Slices written so far.</summary>
    public int SliceCount { get; private set; }

    /// <summary>Flow arrows written so far (pairs).</summary>
    public int FlowCount { get; private set; }

    /// <summary>System-thread offloads written so far.</summary>
    public int OffloadCount { get; private set; }

    /// <summary>Names a domain's track (call before or after its events; the last name wins in viewers).</summary>
    /// <param name="domainId">The domain id (-1: threads that are not domains).</param>
    /// <param name="name">The name.</param>
    public void NameDomain(int domainId, string name)
    {
        var d = Domain(domainId);
        if (d.Named)
        {
            return;
        }

        d.Named = true;
        Meta("thread_name", Tid(domainId), domainId < 0 ? name : $"domain {domainId} ({name})");
        _json.WriteStartObject();
        _json.WriteString("ph", "M");
        _json.WriteString("name", "thread_sort_index");
        _json.WriteNumber("pid", Pid);
        _json.WriteNumber("tid", Tid(domainId));
        _json.WriteStartObject("args");
        _json.WriteNumber("sort_index", domainId + 1);
        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    /// <summary>Writes a batch of events, ordered by time (and following the previous batch).</summary>
    /// <param name="events">The events.</param>
    public void Write(IReadOnlyList<TraceEvent> events)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        // A named fiber's identity is stored with one of its events per half ring (EioTrace.CarriedData): take the names
        // of the batch first, so that the slices before the carrier (the oldest part of a wrapped ring) are named too.
        foreach (var e in events)
        {
            if (e.Fiber != 0 && e.Data is FiberInfo { Name: not null } info)
            {
                _fibers.TryAdd(e.Fiber, (info.Name, info.Owner));
            }
        }
        foreach (var e in events)
        {
            Write(e);
        }

        _json.Flush();
    }

    /// <summary>Marks that <paramref name="count"/> events of a domain were lost (overwritten before they were read).</summary>
    /// <param name="domainId">The domain.</param>
    /// <param name="count">How many.</param>
    /// <param name="timestamp">When the loss was noticed (<see cref="Stopwatch"/> ticks).</param>
    public void Lost(int domainId, long count, long timestamp)
    {
        // The slices open on that domain may have ended in the lost events: close them here.
        CloseAll(Domain(domainId), Math.Max(timestamp, _lastTs), null);
        _json.WriteStartObject();
        _json.WriteString("ph", "i");
        _json.WriteString("s", "t");
        _json.WriteString("cat", "lost");
        _json.WriteString("name", $"{count} events lost");
        _json.WriteNumber("pid", Pid);
        _json.WriteNumber("tid", Tid(domainId));
        _json.WriteNumber("ts", Us(Math.Max(timestamp, _lastTs)));
        _json.WriteEndObject();
    }

    private void Write(in TraceEvent e)
    {
        if (_origin == long.MinValue)
        {
            _origin = e.Timestamp;
        }

        _lastTs = Math.Max(_lastTs, e.Timestamp);
        var d = Domain(e.DomainId);
        if (e.Fiber != 0)
        {
            if (e.Data is FiberInfo info)
            {
                _fibers[e.Fiber] = (info.Name, info.Owner);
            }
            else if (e.Data is Switch owner && e.Kind is TraceEventKind.FiberCreated or TraceEventKind.FiberResumed or TraceEventKind.FiberSuspended)
            {
                _fibers[e.Fiber] = (null, owner); // an unnamed fiber's events carry its switch
                if (e.Kind == TraceEventKind.FiberCreated && e.Arg != 0)
                {
                    _switches[e.Arg] = owner;
                }
            }
            else if (e.Data is null && e.Kind == TraceEventKind.FiberCreated && e.Arg != 0 && _switches.TryGetValue(e.Arg, out var known))
            {
                _fibers[e.Fiber] = (null, known); // the switch went with an earlier creation in it (EioTrace.FiberCreated)
            }
        }

        if (e.Kind == TraceEventKind.SwitchOpened && e.Data is Switch opened && e.Arg != 0)
        {
            _switches[e.Arg] = opened;
        }
        else if (e.Kind == TraceEventKind.SwitchClosed && e.Arg != 0)
        {
            _switches.Remove(e.Arg); // no fiber is created in it any more
        }

        switch (e.Kind)
        {
            case TraceEventKind.FiberResumed:
                CloseAll(d, e.Timestamp, null);
                d.Open.Add(new Slice(e.Fiber, e.Timestamp));
                if (e.Fiber != 0)
                {
                    Resumed(e.Fiber, e.Timestamp, e.DomainId);
                }

                break;
            case TraceEventKind.FiberCreated:
                d.Open.Add(new Slice(e.Fiber, e.Timestamp) { Parent = e.Other });
                break;
            case TraceEventKind.FiberSuspended:
                CloseFiber(d, e.Fiber, e.Timestamp, null);
                if (e.Fiber != 0)
                {
                    EndSuspension(e.Fiber, e.Timestamp); // async slices of one fiber share a track: never two open
                    _suspended[e.Fiber] = (e.Timestamp, e.Reason, Tid(e.DomainId));
                    _json.WriteStartObject();
                    _json.WriteString("ph", "b");
                    _json.WriteString("cat", "suspended");
                    _json.WriteString("name", "suspended: " + ReasonName(e.Reason));
                    _json.WriteNumber("id", e.Fiber);
                    _json.WriteNumber("pid", Pid);
                    _json.WriteNumber("tid", Tid(e.DomainId));
                    _json.WriteNumber("ts", Us(e.Timestamp));
                    _json.WriteStartObject("args");
                    _json.WriteNumber("fiber", e.Fiber);
                    _json.WriteString("reason", ReasonName(e.Reason));
                    if (e.Arg != 0)
                    {
                        _json.WriteNumber("fd", e.Arg);
                    }

                    _json.WriteEndObject();
                    _json.WriteEndObject();
                }

                break;
            case TraceEventKind.FiberFinished:
                CloseFiber(d, e.Fiber, e.Timestamp, OutcomeText(e));
                _fibers.Remove(e.Fiber);
                _pendingFlows.Remove(e.Fiber);
                _suspended.Remove(e.Fiber);
                break;
            case TraceEventKind.FiberWoken:
                FlowCount++;
                _pendingFlows[e.Fiber] = e.Arg;
                _json.WriteStartObject();
                _json.WriteString("ph", "s");
                _json.WriteString("cat", "wake");
                _json.WriteString("name", "wake");
                _json.WriteNumber("id", e.Arg);
                _json.WriteNumber("pid", Pid);
                _json.WriteNumber("tid", Tid(e.DomainId));
                // A wake-up on the waker's own domain has the time of the domain's next event, often the end of the
                // waker's run: the arrow starts one tick earlier, inside that run (a flow binds to the slice enclosing it).
                _json.WriteNumber("ts", Us(d.Open.Count > 0 ? Math.Max(d.Open[^1].Start, e.Timestamp - 1) : e.Timestamp));
                _json.WriteEndObject();
                break;
            case TraceEventKind.FiberCancelled:
                Instant(e, "cancel", $"fiber {e.Fiber} cancelled");
                break;
            case TraceEventKind.DomainIdle:
                CloseAll(d, e.Timestamp, null);
                break;
            case TraceEventKind.DomainBusy:
                break;
            case TraceEventKind.Label:
                Instant(e, "label", e.Text ?? string.Empty);
                break;
            case TraceEventKind.SysthreadStarted:
                _offloads[e.Arg] = e.Timestamp;
                break;
            case TraceEventKind.SysthreadFinished:
                Offload(e, _offloads.Remove(e.Arg, out long began) ? began : e.Timestamp);
                break;
            case TraceEventKind.SwitchOpened:
                Instant(e, "switch", $"switch {e.Arg} opened: {e.SwitchPath}");
                break;
            case TraceEventKind.SwitchClosed:
                Instant(e, "switch", e.Exception is { } ex ? $"switch {e.Arg} closed: {ex.GetType().Name}" : $"switch {e.Arg} closed");
                break;
            case TraceEventKind.CancelCreated:
                break; // too frequent to draw; kept in the rings and the transcript
            case TraceEventKind.CancelCancelled:
                Instant(e, "cancel", $"cancel context {e.Arg} cancelled: {e.Exception?.GetType().Name}");
                break;
        }
    }

    /// <summary>Ends the fiber's open suspension slice, if any (at its resume, or at a next suspension recorded without
    /// a resume between them: a task continuation resumed as fiber 0).</summary>
    private void EndSuspension(long fiber, long ts)
    {
        if (_suspended.Remove(fiber, out var s))
        {
            _json.WriteStartObject();
            _json.WriteString("ph", "e");
            _json.WriteString("cat", "suspended");
            _json.WriteString("name", "suspended: " + ReasonName(s.Reason));
            _json.WriteNumber("id", fiber);
            _json.WriteNumber("pid", Pid);
            _json.WriteNumber("tid", s.Tid);
            _json.WriteNumber("ts", Us(ts));
            _json.WriteEndObject();
        }
    }

    private void Resumed(long fiber, long ts, int domainId)
    {
        EndSuspension(fiber, ts);

        if (_pendingFlows.Remove(fiber, out long flow))
        {
            _json.WriteStartObject();
            _json.WriteString("ph", "f");
            _json.WriteString("bp", "e");
            _json.WriteString("cat", "wake");
            _json.WriteString("name", "wake");
            _json.WriteNumber("id", flow);
            _json.WriteNumber("pid", Pid);
            _json.WriteNumber("tid", Tid(domainId));
            _json.WriteNumber("ts", Us(ts));
            _json.WriteEndObject();
        }
    }

    private void CloseFiber(DomainState d, long fiber, long ts, string? outcome)
    {
        for (int i = d.Open.Count - 1; i >= 0; i--)
        {
            if (d.Open[i].Fiber == fiber)
            {
                while (d.Open.Count > i + 1)
                {
                    EmitSlice(d, d.Open[^1], ts, null);
                    d.Open.RemoveAt(d.Open.Count - 1);
                }

                EmitSlice(d, d.Open[i], ts, outcome);
                d.Open.RemoveAt(i);
                return;
            }
        }

        // A continuation of an ordinary task: its fiber is known only now.
        if (d.Open.Count > 0 && d.Open[^1].Fiber == 0 && fiber != 0)
        {
            var top = d.Open[^1];
            d.Open.RemoveAt(d.Open.Count - 1);
            EmitSlice(d, top with { Fiber = fiber }, ts, outcome);
            Resumed(fiber, top.Start, d.Id);
        }
    }

    private void CloseAll(DomainState d, long ts, string? outcome)
    {
        while (d.Open.Count > 0)
        {
            EmitSlice(d, d.Open[^1], ts, outcome);
            d.Open.RemoveAt(d.Open.Count - 1);
        }
    }

    private void EmitSlice(DomainState d, Slice s, long end, string? outcome)
    {
        SliceCount++;
        (string? Name, Switch? Owner)? info = _fibers.TryGetValue(s.Fiber, out var known) ? known : null;
        _json.WriteStartObject();
        _json.WriteString("ph", "X");
        _json.WriteString("cat", "fiber");
        _json.WriteString("name", s.Fiber == 0 ? "(task continuation)" : info?.Name is { } n ? $"{n} #{s.Fiber}" : $"fiber #{s.Fiber}");
        _json.WriteNumber("pid", Pid);
        _json.WriteNumber("tid", Tid(d.Id));
        _json.WriteNumber("ts", Us(s.Start));
        _json.WriteNumber("dur", Math.Max(0, Us(end) - Us(s.Start)));
        _json.WriteStartObject("args");
        _json.WriteNumber("fiber", s.Fiber);
        if (info?.Name is { } name)
        {
            _json.WriteString("name", name);
        }

        if (info?.Owner is { } sw)
        {
            _json.WriteString("switch", sw.Path);
        }

        if (s.Parent != 0)
        {
            _json.WriteNumber("parent", s.Parent);
        }

        if (outcome is not null)
        {
            _json.WriteString("outcome", outcome);
        }

        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    /// <summary>A system-thread offload as a complete slice on that thread's own track ("system thread N").</summary>
    private void Offload(in TraceEvent e, long began)
    {
        OffloadCount++;
        int tid = SystemThreadTidBase + (int)e.Other;
        if (_systemThreads.Add(tid))
        {
            Meta("thread_name", tid, $"system thread {e.Other}");
        }

        _json.WriteStartObject();
        _json.WriteString("ph", "X");
        _json.WriteString("cat", "systhread");
        _json.WriteString("name", $"offload (fiber #{e.Fiber})");
        _json.WriteNumber("pid", Pid);
        _json.WriteNumber("tid", tid);
        _json.WriteNumber("ts", Us(began));
        _json.WriteNumber("dur", Math.Max(0, Us(e.Timestamp) - Us(began)));
        _json.WriteStartObject("args");
        _json.WriteNumber("fiber", e.Fiber);
        _json.WriteNumber("offload", e.Arg);
        _json.WriteString("outcome", e.Exception is { } ex ? "failed: " + ex.GetType().Name : "ok");
        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    private void Instant(in TraceEvent e, string cat, string name)
    {
        _json.WriteStartObject();
        _json.WriteString("ph", "i");
        _json.WriteString("s", "t");
        _json.WriteString("cat", cat);
        _json.WriteString("name", name);
        _json.WriteNumber("pid", Pid);
        _json.WriteNumber("tid", Tid(e.DomainId));
        _json.WriteNumber("ts", Us(e.Timestamp));
        _json.WriteStartObject("args");
        _json.WriteNumber("fiber", e.Fiber);
        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    private void Meta(string what, int tid, string name)
    {
        _json.WriteStartObject();
        _json.WriteString("ph", "M");
        _json.WriteString("name", what);
        _json.WriteNumber("pid", Pid);
        _json.WriteNumber("tid", tid);
        _json.WriteStartObject("args");
        _json.WriteString("name", name);
        _json.WriteEndObject();
        _json.WriteEndObject();
    }

    private static string OutcomeText(in TraceEvent e) => (FiberOutcome)e.Arg switch
    {
        FiberOutcome.Ok => "ok",
        FiberOutcome.Cancelled => "cancelled",
        _ => "failed: " + (e.Exception is { } ex ? $"{ex.GetType().Name}: {ex.Message}" : "?"),
    };

    /// <summary>The lower-case name of a suspension reason, as written in traces and dumps (<c>io-read</c>, <c>queue</c>...).</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The name.</returns>
    public static string ReasonName(TraceReason reason) => reason switch
    {
        TraceReason.IoRead => "io-read",
        TraceReason.IoWrite => "io-write",
        TraceReason.AwaitCancel => "await-cancel",
        _ => reason.ToString().ToLowerInvariant(),
    };

    private static int Tid(int domainId) => domainId + 1;

    private double Us(long ts) => Math.Round((ts - _origin) * 1_000_000.0 / Stopwatch.Frequency, 3);

    private DomainState Domain(int id)
    {
        if (!_domains.TryGetValue(id, out var d))
        {
            d = new DomainState(id);
            _domains[id] = d;
        }

        return d;
    }

    /// <summary>Closes the open slices at the last event's time and ends the JSON document.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        foreach (var d in _domains.Values)
        {
            CloseAll(d, _lastTs, null);
        }

        _disposed = true;
        _json.WriteEndArray();
        _json.WriteEndObject();
        _json.Flush();
        _json.Dispose();
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }

    private sealed class DomainState(int id)
    {
        public int Id { get; } = id;

        public bool Named { get; set; }

        public List<Slice> Open { get; } = [];
    }

    private readonly record struct Slice(long Fiber, long Start)
    {
        public long Parent { get; init; }
    }
}
