using System.Runtime.InteropServices;
using EioSharp;
using EioSharp.Jobs;

// EioSharp.Jobs: a TCP job server computing Fibonacci numbers off the I/O domain.

JobsOptions options;
bool showHelp;
try
{
    options = JobsCommandLine.Parse(args, out showHelp);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

if (showHelp)
{
    Console.WriteLine(JobsCommandLine.Usage);
    return 0;
}

// Console.Error opens (dups) its descriptor on first use: open it now, so that a log line written while the process is
// out of file descriptors (EMFILE) is written instead of failing.
_ = TraceLog.DefaultWriter.Encoding;

var (stop, stopper) = Promise.Create<bool>();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopper.TryResolve(true); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopper.TryResolve(true); });
// --trace FILE streams the fiber trace; SIGQUIT (kill -QUIT pid) prints the live tree of domains, switches and fibers.
using var diagnostics = EioSharp.Domains.ServerDiagnostics.Install(options.TraceFile);
try
{
    // --backend auto (the default) takes the best backend available here: in the mixed-fib benchmark at 0.9 of heavy
    // capacity, epoll gave cheap p99 0.26 ms where the portable backend gave 2.9 ms (docs/BENCHMARKS.md).
    // The ready line names the backend in use.
    EioMain.Run(
        env => JobsServer.RunAsync(env, options, stop, line => Console.Out.WriteLine(line)),
        new EioOptions { Backend = options.Backend });
}
catch (ArgumentException e) when (e.ParamName?.StartsWith("EIOSHARP_", StringComparison.Ordinal) == true)
{
    // EioMain.Run: the environment override names no backend, or a tuning variable has an invalid value (EioBackendOptions).
    Console.Error.WriteLine(e.Message);
    return 2;
}

return 0;

