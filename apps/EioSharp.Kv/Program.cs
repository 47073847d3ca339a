using System.Runtime.InteropServices;
using EioSharp;
using EioSharp.Kv;
using EioSharp.Supervision;

// EioSharp.Kv: a durable key-value server speaking RESP (redis-cli and redis-benchmark work against it).

// The epoll backend and inline socket completions (EioMain.UseServerDefaults): measured on 2 cores, about 1.0x
// redis-server's throughput instead of 0.6-0.8x (docs/BENCHMARKS.md). EIOSHARP_BACKEND=portable overrides.
EioMain.UseServerDefaults();

KvOptions options;
try
{
    options = KvOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

if (options.ShowHelp)
{
    Console.WriteLine(KvOptions.Usage);
    return 0;
}

var (stop, stopper) = Promise.Create<bool>();
void Log(string line) => Console.Out.WriteLine($"{Environment.ProcessId}:M {DateTime.Now:dd MMM yyyy HH:mm:ss.fff} * {line}");
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopper.TryResolve(true); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopper.TryResolve(true); });
try
{
    EioMain.Run(env => KvServer.RunAsync(env, options, stop, Log));
    return 0;
}
catch (Exception e) when (RestartIntensityExceededException.FindIn(e) is { } gaveUp)
{
    // The store owner kept crashing: its supervisor gave up, which stopped the server. What was acknowledged is in the AOF.
    string cause = gaveUp.InnerException is { } inner ? $" (last failure: {inner.GetType().Name}: {inner.Message})" : "";
    Console.Error.WriteLine($"FATAL: the store owner keeps crashing: {gaveUp.Message.TrimEnd('.')}{cause}. Exiting.");
    return 3;
}
catch (AofCorruptException e)
{
    Console.Error.WriteLine($"FATAL: {e.Message}. Refusing to start; repair the file (redis-check-aof --fix) or move it away.");
    return 1;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"FATAL: {e.Message}");
    return 1;
}
