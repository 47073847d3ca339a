using System.CommandLine;
using EioSharp.TraceView;

// eiosharp-traceview: renders an EioSharp fiber trace (Chrome Trace Event JSON from EioTrace / --trace) to a
// self-contained SVG or HTML timeline, and prints a text summary.
var file = new Argument<string>("trace") { Description = "the trace file (Chrome Trace Event JSON written by EioSharp)" };
var output = new Option<string?>("--output", "-o") { Description = "the picture to write: .svg or .html (default: the trace's name with .html)" };
var width = new Option<int>("--width") { Description = "timeline width in pixels (default 1400)", DefaultValueFactory = _ => 1400 };
var title = new Option<string?>("--title") { Description = "the picture's title" };
var top = new Option<int>("--top") { Description = "rows in each summary table (default 10)", DefaultValueFactory = _ => 10 };

var render = new Command("render", "render the trace to an SVG or HTML timeline (domains as rows, fibers as nested bars, suspensions greyed, a legend)")
{
    file, output, width, title,
};
render.SetAction(p =>
{
    string path = p.GetValue(file)!;
    var model = TraceModel.Load(path);
    string dest = p.GetValue(output) ?? Path.ChangeExtension(path, ".html");
    string name = p.GetValue(title) ?? $"EioSharp fiber trace: {Path.GetFileName(path)}";
    File.WriteAllText(dest, dest.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)
        ? Render.Svg(model, p.GetValue(width), title: name)
        : Render.Html(model, name, p.GetValue(width)));
    Console.WriteLine($"wrote {dest} ({model.Runs.Count} fiber runs, {model.Tracks.Count} tracks)");
    return 0;
});

var summary = new Command("summary", "print top fibers by run time, longest suspensions by reason, domain busy ratios") { file, top };
summary.SetAction(p =>
{
    Console.Write(Render.Summary(TraceModel.Load(p.GetValue(file)!), p.GetValue(top)));
    return 0;
});

var root = new RootCommand("eiosharp-traceview: EioSharp fiber traces as pictures and summaries.") { render, summary };
return root.Parse(args).Invoke();
