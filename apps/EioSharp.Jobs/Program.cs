using System.Globalization;
using System.Runtime.InteropServices;
using EioSharp;
using EioSharp.Jobs;

// EioSharp.Jobs: a TCP job server computing Fibonacci numbers off the I/O domain.

// The epoll backend and inline socket completions (EioMain.UseServerDefaults): in the mixed-fib benchmark at 0.9 of heavy
// capacity, cheap p99 0.26 ms instead of 2.9 ms on the portable backend (docs/BENCHMARKS.md).
EioMain.UseServerDefaults();
JobsOptions options;
try
{
    options = ParseOptions(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

var (stop, stopper) = Promise.Create<bool>();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopper.TryResolve(true); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopper.TryResolve(true); });
EioMain.Run(env => JobsServer.RunAsync(env, options, stop, line => Console.Out.WriteLine(line)));
return 0;

static JobsOptions ParseOptions(string[] args)
{
    var o = new JobsOptions();
    for (int i = 0; i < args.Length; i++)
    {
        string name = args[i];
        string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {name} needs a value.");
        int Int(int min, int max)
        {
            string v = Value();
            return int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
                ? n : throw new ArgumentException($"Option {name}: '{v}' is not an integer between {min} and {max}.");
        }

        o = name switch
        {
            "--port" => o with { Port = Int(0, 65535) },
            "--bind" => o with { Bind = Value() },
            "--workers" => o with { Workers = Int(1, 256) },
            "--queue" => o with { Queue = Int(0, 1_000_000) },
            "--inline-max" => o with { InlineMax = Int(0, 92) },
            "--max-connections" => o with { MaxConnections = Int(1, 1_000_000) },
            "--mode" => o with
            {
                Mode = Value().ToLowerInvariant() switch
                {
                    "pool" => JobsMode.Pool,
                    "inline" => JobsMode.Inline,
                    "threadpool" => JobsMode.ThreadPool,
                    var m => throw new ArgumentException($"Option --mode: '{m}' is not one of pool, inline, threadpool."),
                },
            },
            _ => throw new ArgumentException(
                $"Unknown option '{name}'. Options: --port 8080 --bind 127.0.0.1 --workers N --queue N --mode pool|inline|threadpool --inline-max N --max-connections N"),
        };
    }

    return o;
}
