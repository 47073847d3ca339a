using System.Text.Json;

namespace EioSharp.TraceView;

/// <summary>A fiber run (a complete slice) on a domain track.</summary>
internal sealed record Run(int Tid, double Start, double Duration, long Fiber, string Name, string? Switch, int Depth, string? Outcome)
{
    public double End => Start + Duration;
}

/// <summary>A suspension of a fiber (async slice), with its reason.</summary>
internal sealed record Suspension(int Tid, long Fiber, string Reason, double Start, double End);

/// <summary>A blocking call a fiber offloaded to a system thread (Systhread.RunAsync), on that thread's track.</summary>
internal sealed record Offload(int Tid, long Fiber, double Start, double End, string Outcome);

/// <summary>A trace loaded from Chrome Trace Event JSON as written by EioSharp's ChromeTraceWriter.</summary>
internal sealed class TraceModel
{
    public Dictionary<int, string> Tracks { get; } = [];

    public List<Run> Runs { get; } = [];

    public List<Suspension> Suspensions { get; } = [];

    public List<(int Tid, double Ts, string Name)> Labels { get; } = [];

    /// <summary>System-thread offloads (category <c>systhread</c>).</summary>
    public List<Offload> Offloads { get; } = [];

    /// <summary>The system threads' tracks (tid → name), apart from the domain tracks.</summary>
    public Dictionary<int, string> SystemThreads { get; } = [];

    public int Flows { get; private set; }

    public double Start { get; private set; } = double.MaxValue;

    public double End { get; private set; }

    /// <summary>The fiber's display name (its name or "fiber #id").</summary>
    public Dictionary<long, string> FiberNames { get; } = [];

    public static TraceModel Load(string path)
    {
        using var stream = File.OpenRead(path);
        using var doc = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
        var m = new TraceModel();
        var root = doc.RootElement;
        var events = root.ValueKind == JsonValueKind.Array ? root : root.GetProperty("traceEvents");
        var open = new Dictionary<long, (int Tid, string Reason, double Ts)>();
        var raw = new List<(int Tid, double Ts, double Dur, long Fiber, string Name, string? Switch, string? Outcome)>();
        foreach (var e in events.EnumerateArray())
        {
            string ph = e.GetProperty("ph").GetString() ?? string.Empty;
            int tid = e.TryGetProperty("tid", out var t) ? t.GetInt32() : 0;
            double ts = e.TryGetProperty("ts", out var tsv) ? tsv.GetDouble() : 0;
            switch (ph)
            {
                case "M" when e.GetProperty("name").GetString() == "thread_name":
                    string trackName = e.GetProperty("args").GetProperty("name").GetString() ?? $"track {tid}";
                    if (trackName.StartsWith("system thread", StringComparison.Ordinal))
                    {
                        m.SystemThreads[tid] = trackName;
                    }
                    else
                    {
                        m.Tracks[tid] = trackName;
                    }

                    break;
                case "X" when e.TryGetProperty("cat", out var xc) && xc.GetString() == "systhread":
                    var oargs = e.GetProperty("args");
                    double odur = e.GetProperty("dur").GetDouble();
                    m.Offloads.Add(new Offload(
                        tid,
                        oargs.TryGetProperty("fiber", out var of) ? of.GetInt64() : 0,
                        ts,
                        ts + odur,
                        oargs.TryGetProperty("outcome", out var oo) ? oo.GetString() ?? "" : ""));
                    m.Extend(ts, ts + odur);
                    break;
                case "X":
                    var args = e.GetProperty("args");
                    long fiber = args.TryGetProperty("fiber", out var f) ? f.GetInt64() : 0;
                    string name = args.TryGetProperty("name", out var n) ? n.GetString() ?? "" : fiber == 0 ? "(task continuation)" : "fiber";
                    string? sw = args.TryGetProperty("switch", out var s) ? s.GetString() : null;
                    string? outcome = args.TryGetProperty("outcome", out var o) ? o.GetString() : null;
                    double dur = e.GetProperty("dur").GetDouble();
                    raw.Add((tid, ts, dur, fiber, name, sw, outcome));
                    if (fiber != 0)
                    {
                        m.FiberNames[fiber] = $"{name} #{fiber}";
                    }

                    m.Extend(ts, ts + dur);
                    break;
                case "b":
                    open[e.GetProperty("id").GetInt64()] = (tid, (e.GetProperty("name").GetString() ?? "suspended: ?").Replace("suspended: ", "", StringComparison.Ordinal), ts);
                    m.Extend(ts, ts);
                    break;
                case "e":
                    long id = e.GetProperty("id").GetInt64();
                    if (open.Remove(id, out var b))
                    {
                        m.Suspensions.Add(new Suspension(b.Tid, id, b.Reason, b.Ts, ts));
                    }

                    m.Extend(ts, ts);
                    break;
                case "f":
                    m.Flows++;
                    break;
                case "i" when e.TryGetProperty("cat", out var cat) && cat.GetString() == "label":
                    m.Labels.Add((tid, ts, e.GetProperty("name").GetString() ?? ""));
                    break;
            }
        }

        // Suspensions still open at the end of the trace last until its end.
        foreach (var (id, b) in open)
        {
            m.Suspensions.Add(new Suspension(b.Tid, id, b.Reason, b.Ts, m.End));
        }

        // Nesting depth per track: a run that starts inside another run on the same track is a fiber forked by it.
        foreach (var group in raw.GroupBy(r => r.Tid))
        {
            var stack = new List<double>();
            foreach (var r in group.OrderBy(r => r.Ts).ThenByDescending(r => r.Dur))
            {
                while (stack.Count > 0 && stack[^1] <= r.Ts)
                {
                    stack.RemoveAt(stack.Count - 1);
                }

                m.Runs.Add(new Run(r.Tid, r.Ts, r.Dur, r.Fiber, r.Name, r.Switch, stack.Count, r.Outcome));
                stack.Add(r.Ts + r.Dur);
            }
        }

        if (m.Start == double.MaxValue)
        {
            m.Start = 0;
        }

        foreach (var tid in m.Runs.Select(r => r.Tid).Concat(m.Suspensions.Select(s => s.Tid)).Distinct())
        {
            m.Tracks.TryAdd(tid, $"track {tid}");
        }

        return m;
    }

    private void Extend(double a, double b)
    {
        Start = Math.Min(Start, a);
        End = Math.Max(End, b);
    }
}
