using System.Globalization;
using System.Text;

namespace EioSharp.TraceView;

/// <summary>Renders a <see cref="TraceModel"/> to a self-contained SVG timeline, an HTML page around it, and a text summary.</summary>
internal static class Render
{
    private const double Left = 200;
    private const double LaneHeight = 14;
    private const int MaxLanes = 4;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Summary(TraceModel m, int top = 10)
    {
        var sb = new StringBuilder();
        double span = Math.Max(1e-9, m.End - m.Start);
        sb.AppendLine(Inv, $"Trace: {m.Tracks.Count} tracks, {m.Runs.Count} fiber runs, {m.Suspensions.Count} suspensions, {m.Flows} wake-up flows, {m.Offloads.Count} system-thread offloads, span {span / 1000:F1} ms");
        sb.AppendLine();
        sb.AppendLine("Domain busy ratios (time in fiber runs / trace span):");
        foreach (var (tid, name) in m.Tracks.OrderBy(t => t.Key))
        {
            var runs = m.Runs.Where(r => r.Tid == tid && r.Depth == 0).ToList();
            double busy = runs.Sum(r => r.Duration);
            sb.AppendLine(Inv, $"  {name,-28} {busy / span * 100,6:F1}%  ({busy / 1000:F1} ms busy, {runs.Count} runs)");
        }

        sb.AppendLine();
        sb.AppendLine(Inv, $"Top {top} fibers by run time:");
        sb.AppendLine(Inv, $"  {"fiber",-36} {"track",-24} {"run ms",10} {"runs",8} {"switch"}");
        foreach (var g in m.Runs.Where(r => r.Fiber != 0).GroupBy(r => r.Fiber)
                     .Select(g => (Fiber: g.Key, Run: SelfTime(m, g.ToList()), Count: g.Count(), First: g.First()))
                     .OrderByDescending(x => x.Run).Take(top))
        {
            sb.AppendLine(Inv, $"  {Trim(m.FiberNames.GetValueOrDefault(g.Fiber, $"#{g.Fiber}"), 36),-36} {Trim(m.Tracks.GetValueOrDefault(g.First.Tid, "?"), 24),-24} {g.Run / 1000,10:F3} {g.Count,8} {g.First.Switch}");
        }

        sb.AppendLine();
        sb.AppendLine("Suspensions by reason (longest first):");
        sb.AppendLine(Inv, $"  {"reason",-14} {"count",8} {"total ms",12} {"max ms",10} {"longest",-36}");
        foreach (var g in m.Suspensions.GroupBy(s => s.Reason)
                     .Select(g => (Reason: g.Key, Count: g.Count(), Total: g.Sum(s => s.End - s.Start), Max: g.MaxBy(s => s.End - s.Start)!))
                     .OrderByDescending(x => x.Max.End - x.Max.Start))
        {
            sb.AppendLine(Inv, $"  {g.Reason,-14} {g.Count,8} {g.Total / 1000,12:F1} {(g.Max.End - g.Max.Start) / 1000,10:F3} {m.FiberNames.GetValueOrDefault(g.Max.Fiber, $"#{g.Max.Fiber}")}");
        }

        sb.AppendLine();
        sb.AppendLine(Inv, $"Longest {top} single suspensions:");
        foreach (var s in m.Suspensions.OrderByDescending(s => s.End - s.Start).Take(top))
        {
            sb.AppendLine(Inv, $"  {(s.End - s.Start) / 1000,10:F3} ms  {s.Reason,-12} {m.FiberNames.GetValueOrDefault(s.Fiber, $"#{s.Fiber}")} at {(s.Start - m.Start) / 1000:F3} ms");
        }

        if (m.Offloads.Count > 0)
        {
            var longest = m.Offloads.MaxBy(o => o.End - o.Start)!;
            sb.AppendLine();
            sb.AppendLine(Inv, $"System-thread offloads: {m.Offloads.Count} on {m.Offloads.Select(o => o.Tid).Distinct().Count()} threads, {m.Offloads.Sum(o => o.End - o.Start) / 1000:F1} ms in total, longest {(longest.End - longest.Start) / 1000:F3} ms ({m.FiberNames.GetValueOrDefault(longest.Fiber, $"#{longest.Fiber}")}), {m.Offloads.Count(o => o.Outcome != "ok")} failed");
        }

        return sb.ToString();
    }

    /// <summary>Run time of a fiber without the runs of fibers nested in its runs (forked children it ran inline).</summary>
    private static double SelfTime(TraceModel m, List<Run> runs) => runs.Sum(r => r.Duration);

    public static string Svg(TraceModel m, double width = 1400, int topFibers = 24, string? title = null)
    {
        double span = Math.Max(1e-9, m.End - m.Start);
        double X(double t) => Left + ((t - m.Start) / span * width);
        var sb = new StringBuilder();
        var body = new StringBuilder();
        double y = 40;
        var colors = new Dictionary<string, string>();
        string Color(string name)
        {
            if (!colors.TryGetValue(name, out var c))
            {
                int h = 0;
                foreach (char ch in name)
                {
                    h = (h * 31) + ch;
                }

                c = $"hsl({(h & 0x7fffffff) % 360},65%,{(name.StartsWith('(') ? 70 : 50)}%)";
                colors[name] = c;
            }

            return c;
        }

        body.Append(Inv, $"<text x=\"8\" y=\"{y - 6}\" font-weight=\"bold\">Domains (fiber runs; nested bars: fibers forked and run inline)</text>\n");
        foreach (var (tid, name) in m.Tracks.OrderBy(t => t.Key))
        {
            var runs = m.Runs.Where(r => r.Tid == tid).ToList();
            int lanes = Math.Clamp(runs.Count == 0 ? 1 : runs.Max(r => r.Depth) + 1, 1, MaxLanes);
            double h = lanes * LaneHeight;
            body.Append(Inv, $"<rect x=\"{Left}\" y=\"{y}\" width=\"{width}\" height=\"{h}\" fill=\"#f4f4f4\"/>\n");
            body.Append(Inv, $"<text x=\"8\" y=\"{y + 11}\" class=\"track\">{Esc(name)}</text>\n");
            for (int depth = 0; depth < lanes; depth++)
            {
                Bars(body, runs.Where(r => r.Depth == depth).Select(r => (X(r.Start), X(r.End), r.Name)), y + (depth * LaneHeight), LaneHeight - 2, Color);
            }

            y += h + 8;
        }

        if (m.Offloads.Count > 0)
        {
            y += 16;
            body.Append(Inv, $"<text x=\"8\" y=\"{y - 6}\" font-weight=\"bold\">System threads (blocking calls offloaded by fibers)</text>\n");
            foreach (var (tid, name) in m.SystemThreads.Concat(m.Offloads.Select(o => o.Tid).Distinct().Where(t => !m.SystemThreads.ContainsKey(t)).Select(t => new KeyValuePair<int, string>(t, $"track {t}"))).OrderBy(t => t.Key))
            {
                body.Append(Inv, $"<rect x=\"{Left}\" y=\"{y}\" width=\"{width}\" height=\"{LaneHeight}\" fill=\"#f4f4f4\"/>\n");
                body.Append(Inv, $"<text x=\"8\" y=\"{y + 11}\" class=\"track\">{Esc(name)}</text>\n");
                Bars(body, m.Offloads.Where(o => o.Tid == tid).Select(o => (X(o.Start), X(o.End), "offload")), y, LaneHeight - 2, _ => "#d08000");
                y += LaneHeight + 8;
            }
        }

        y += 24;
        var fibers = m.Runs.Where(r => r.Fiber != 0).GroupBy(r => r.Fiber).OrderByDescending(g => g.Sum(r => r.Duration)).Take(topFibers).ToList();
        body.Append(Inv, $"<text x=\"8\" y=\"{y - 10}\" font-weight=\"bold\">Fibers (top {fibers.Count} by run time): running in colour, suspended in grey</text>\n");
        foreach (var g in fibers)
        {
            string label = m.FiberNames.GetValueOrDefault(g.Key, $"#{g.Key}");
            body.Append(Inv, $"<text x=\"8\" y=\"{y + 10}\" class=\"fiber\">{Esc(Trim(label, 30))}</text>\n");
            var sus = m.Suspensions.Where(s => s.Fiber == g.Key).Select(s => (X(s.Start), X(s.End), "suspended"));
            Bars(body, sus, y + 2, LaneHeight - 6, _ => "#bbbbbb");
            Bars(body, g.Select(r => (X(r.Start), X(r.End), r.Name)), y, LaneHeight - 2, Color);
            y += LaneHeight + 2;
        }

        // Axis.
        y += 10;
        body.Append(Inv, $"<line x1=\"{Left}\" y1=\"{y}\" x2=\"{Left + width}\" y2=\"{y}\" stroke=\"#333\"/>\n");
        for (int i = 0; i <= 10; i++)
        {
            double t = span * i / 10;
            double x = Left + (width * i / 10);
            body.Append(Inv, $"<line x1=\"{x}\" y1=\"{y}\" x2=\"{x}\" y2=\"{y + 5}\" stroke=\"#333\"/><text x=\"{x}\" y=\"{y + 18}\" text-anchor=\"middle\" class=\"axis\">{t / 1000:F1} ms</text>\n");
        }

        y += 34;

        // Legend.
        body.Append(Inv, $"<text x=\"8\" y=\"{y + 10}\" font-weight=\"bold\">Legend</text>\n");
        double lx = Left;
        foreach (var (name, _) in m.Runs.GroupBy(r => r.Name).Select(g => (g.Key, g.Sum(r => r.Duration))).OrderByDescending(x => x.Item2).Take(12)
                     .Append(("suspended", 0)).Concat(m.Offloads.Count > 0 ? [("offload", 0.0)] : []))
        {
            string fill = name == "suspended" ? "#bbbbbb" : name == "offload" ? "#d08000" : Color(name);
            body.Append(Inv, $"<rect x=\"{lx}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{fill}\"/><text x=\"{lx + 16}\" y=\"{y + 10}\" class=\"legend\">{Esc(Trim(name, 22))}</text>\n");
            lx += 150;
            if (lx > Left + width - 150)
            {
                lx = Left;
                y += 18;
            }
        }

        y += 30;
        sb.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Left + width + 20}\" height=\"{y}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append("<style>.track{font-size:11px}.fiber{font-size:10px}.axis{font-size:10px}.legend{font-size:10px}</style>\n");
        sb.Append(Inv, $"<rect width=\"100%\" height=\"100%\" fill=\"white\"/><text x=\"8\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{Esc(title ?? "EioSharp fiber trace")}</text>\n");
        sb.Append(body);
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    public static string Html(TraceModel m, string title, double width = 1400)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>").Append(Esc(title)).Append("</title>");
        sb.Append("<style>body{font-family:sans-serif;margin:16px}pre{font-size:12px;background:#f8f8f8;padding:8px}</style></head><body>\n");
        sb.Append(Svg(m, width, title: title));
        sb.Append("<h2>Summary</h2>\n<pre>").Append(Esc(Summary(m))).Append("</pre>\n</body></html>\n");
        return sb.ToString();
    }

    /// <summary>Draws bars, merging those closer than a pixel (same colour) so a long trace stays a small picture.</summary>
    private static void Bars(StringBuilder sb, IEnumerable<(double X0, double X1, string Name)> bars, double y, double h, Func<string, string> color)
    {
        double cx0 = 0, cx1 = -1;
        string? cname = null;
        void Flush()
        {
            if (cname is null)
            {
                return;
            }

            double w = Math.Max(0.5, cx1 - cx0);
            sb.Append(Inv, $"<rect x=\"{cx0:F1}\" y=\"{y:F1}\" width=\"{w:F2}\" height=\"{h:F1}\" fill=\"{color(cname)}\"><title>{Esc(cname)}</title></rect>\n");
            if (w > 60)
            {
                sb.Append(Inv, $"<text x=\"{cx0 + 2:F1}\" y=\"{y + h - 3:F1}\" font-size=\"9\" fill=\"white\">{Esc(Trim(cname, (int)(w / 6)))}</text>\n");
            }
        }

        foreach (var (x0, x1, name) in bars.OrderBy(b => b.X0))
        {
            if (cname is not null && x0 - cx1 < 1 && (name == cname || x1 - cx0 < 1))
            {
                cx1 = Math.Max(cx1, x1);
                continue;
            }

            Flush();
            cx0 = x0;
            cx1 = x1;
            cname = name;
        }

        Flush();
    }

    private static string Trim(string s, int n) => n < 2 ? string.Empty : s.Length <= n ? s : s[..(n - 1)] + "…";

    private static string Esc(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&quot;", StringComparison.Ordinal);
}
