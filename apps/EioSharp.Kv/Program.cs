using System.Runtime.InteropServices;
using EioSharp;
using EioSharp.Kv;
using EioSharp.Supervision;

// EioSharp.Kv: a durable key-value server speaking RESP (redis-cli and redis-benchmark work against it).

// Socket completions: .NET normally hands each one from its epoll thread to the thread pool, whose idle workers then
// spin; EioSharp's continuations only post to the fiber's domain queue, so running them inline on the epoll thread is
// cheap and saves a hop (measured: about 15% less CPU per request; docs/BENCHMARKS.md). .NET reads this variable once,
// when the first socket is used, so it must be set before that. An explicit setting in the environment wins.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

// The epoll backend: each domain waits in its own epoll and does its TCP I/O itself, with no hop through .NET's I/O
// thread (measured on 2 cores: about 1.0x redis-server's throughput vs 0.6-0.8x with the portable backend;
// docs/BENCHMARKS.md). Where it is unavailable EioMain falls back to portable. EIOSHARP_BACKEND=portable overrides.
if (Environment.GetEnvironmentVariable("EIOSHARP_BACKEND") is null)
{
    Environment.SetEnvironmentVariable("EIOSHARP_BACKEND", "epoll");
}

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
catch (Exception e) when (Find<RestartIntensityExceededException>(e) is { } gaveUp)
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


static T? Find<T>(Exception e)
    where T : Exception => e switch
    {
        T t => t,
        AggregateException a => a.InnerExceptions.Select(Find<T>).FirstOrDefault(x => x is not null),
        { InnerException: { } inner } => Find<T>(inner),
        _ => null,
    };
