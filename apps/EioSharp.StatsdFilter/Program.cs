using System.Runtime.InteropServices;
using EioSharp;
using EioSharp.StatsdFilter;
using EioSharp.Supervision;

// Thin entry point: options, signals, and the server under EioMain.Run. See StatsdFilterServer for the design.
StatsdFilterOptions options;
try
{
    options = StatsdFilterOptions.Parse(args, Environment.GetEnvironmentVariables());
}
catch (StatsdFilterOptionsException e)
{
    Console.Error.WriteLine($"statsd-filter: {e.Message}");
    Console.Error.WriteLine(StatsdFilterOptions.Usage);
    return 2;
}

if (options.ShowHelp)
{
    Console.WriteLine(StatsdFilterOptions.Usage);
    return 0;
}

// Console.Error opens (dups) its descriptor on first use: open it now, so that a log line written while the process is
// out of file descriptors (EMFILE) is written instead of failing.
_ = TraceLog.DefaultWriter.Encoding;

// SIGINT/SIGTERM resolve the stop promise (from a runtime thread; promises are thread-safe): ingest stops,
// pending batches are flushed, the final self-metrics are sent and the summary printed.
var (stop, stopper) = Promise.Create<bool>();
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    stopper.TryResolve(true);
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

// SIGUSR1 (kill -USR1 pid) prints the running totals, "statsd-filter: stats: received=... send_errors=...", and keeps
// serving: the counters are read with Interlocked, so a runtime thread may print them while the domains count.
StatsdFilterServer? server = null;
const PosixSignal SigUsr1 = (PosixSignal)10; // SIGUSR1 on Linux; PosixSignal names only the portable signals
using var sigusr1 = OperatingSystem.IsLinux()
    ? PosixSignalRegistration.Create(SigUsr1, context =>
    {
        context.Cancel = true;
        if (Volatile.Read(ref server) is { } running)
        {
            Console.Out.WriteLine("statsd-filter: stats: " + running.Statistics.Snapshot());
        }
    })
    : null;

// --trace FILE streams the fiber trace; SIGQUIT (kill -QUIT pid) prints the live tree of domains, switches and fibers.
using var diagnostics = EioSharp.Domains.ServerDiagnostics.Install(options.TraceFile);

try
{
    // --backend auto (the default) takes the best backend available here; EIOSHARP_BACKEND overrides auto.
    EioMain.Run(
        async env =>
        {
            Console.Out.WriteLine($"statsd-filter: EioSharp backend: {env.Backend}");
            Volatile.Write(ref server, new StatsdFilterServer(env, options, stop, Console.Out));
            await server.RunAsync();
        },
        new EioOptions { Backend = EioOptions.ParseBackend(options.Backend) });
}
catch (ArgumentException e) when (e.ParamName?.StartsWith("EIOSHARP_", StringComparison.Ordinal) == true)
{
    // EioMain.Run: the environment override names no backend, or a tuning variable has an invalid value (EioBackendOptions).
    Console.Error.WriteLine(e.Message);
    return 2;
}
catch (Exception e) when (e is EioSharp.Net.NetException or IOException)
{
    Console.Error.WriteLine($"statsd-filter: {e.Message}");
    return 1;
}
catch (Exception e) when (RestartIntensityExceededException.FindIn(e) is { } gaveUp)
{
    // A forwarder (or the self-metrics emitter) kept crashing: its supervisor gave up, which stopped the proxy.
    string cause = gaveUp.InnerException is { } inner ? $" (last failure: {inner.GetType().Name}: {inner.Message})" : "";
    Console.Error.WriteLine($"statsd-filter: fatal: {gaveUp.Message.TrimEnd('.')}{cause}; stopping");
    if (server is not null)
    {
        Console.WriteLine(server.Statistics.FormatSummary());
    }

    return 3;
}

Console.WriteLine(server!.Statistics.FormatSummary());
return 0;
