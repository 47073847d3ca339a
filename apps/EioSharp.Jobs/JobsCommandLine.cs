using System.CommandLine;
using System.CommandLine.Help;
using System.Globalization;

namespace EioSharp.Jobs;

/// <summary>The job server's flags, parsed by System.CommandLine (<c>--flag value</c>, <c>--flag=value</c>, <c>@responsefile</c>, <c>--help</c>).</summary>
internal static class JobsCommandLine
{
    private const string Description = """
        EioSharp.Jobs: a TCP job server computing Fibonacci numbers off the I/O domain.

        Protocol (one request per line; the seed's plain form is the default):
          <n>            ->  Result: <fib n>          e.g.  printf '10\n' | nc -q1 127.0.0.1 8080  ->  Result: 55
          anything else  ->  Error: Invalid number
          <id> FIB <n>   ->  <id> OK <fib n> | <id> BUSY | <id> ERR <message>   (pipelined, id-tagged)
          PING           ->  PONG
          STATS          ->  STATS completed=... heavy=... busy=... errors=... lag_p50_us=... lag_p99_us=...
        n is 0..92 (fib 92 is the largest that fits in a signed 64-bit integer).
        """;

    private static readonly (string Name, string HelpName, string Description)[] Flags =
    [
        ("--port", "n", "TCP port (default 8080; 0 picks a free port)"),
        ("--bind", "address", "address to listen on (default 127.0.0.1)"),
        ("--workers", "n", "worker domains of the executor pool (default: one per core less one, at least 1)"),
        ("--queue", "n", "jobs that may wait for a worker; beyond it the answer is BUSY (default 64)"),
        ("--mode", "pool|inline|threadpool", "where heavy jobs run: the executor pool (default), the I/O domain, or the .NET thread pool"),
        ("--inline-max", "n", "jobs with n at most this run inline on the I/O domain in every mode (default 20)"),
        ("--max-connections", "n", "most connections served at once (default 10000)"),
        ("--backend", "auto|portable|epoll|uring", "the I/O backend (default auto: io_uring, else epoll, else portable; EIOSHARP_BACKEND overrides auto)"),
        ("--trace", "file", "record a fiber trace into this file (Chrome Trace Event JSON: ui.perfetto.dev, eiosharp-traceview); SIGQUIT prints the live fiber tree"),
    ];

    private static readonly Lazy<string> HelpText = new(() =>
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        BuildCommand().Parse(["--help"]).Invoke(new InvocationConfiguration { Output = writer, Error = writer });
        return writer.ToString();
    });

    /// <summary>The help text.</summary>
    public static string Usage => HelpText.Value;

    /// <summary>Parses the arguments.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="showHelp">Whether <c>--help</c> (or <c>-h</c>, <c>-?</c>) was given.</param>
    /// <returns>The options (defaults when <paramref name="showHelp"/>).</returns>
    /// <exception cref="ArgumentException">An option is unknown, lacks its value, or has a bad value; the message names it.</exception>
    public static JobsOptions Parse(string[] args, out bool showHelp)
    {
        RootCommand command = BuildCommand();
        ParseResult parsed = command.Parse(args);
        var o = new JobsOptions();
        showHelp = parsed.Action is HelpAction;
        if (showHelp)
        {
            return o;
        }

        if (parsed.Errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", parsed.Errors.Select(e => e.Message)) + " Try --help.");
        }

        foreach (Option option in command.Options)
        {
            if (option is not Option<string> flag || parsed.GetResult(flag) is not { Implicit: false })
            {
                continue;
            }

            string name = flag.Name;
            string value = parsed.GetValue(flag) ?? string.Empty;
            int Int(int min, int max) =>
                int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
                    ? n : throw new ArgumentException($"Option {name}: '{value}' is not an integer between {min} and {max}.");

            o = name switch
            {
                "--port" => o with { Port = Int(0, 65535) },
                "--bind" => o with { Bind = value },
                "--backend" => o with
                {
                    Backend = value.ToLowerInvariant() is "auto" or "portable" or "epoll" or "uring"
                        ? EioOptions.ParseBackend(value)
                        : throw new ArgumentException($"Option --backend: '{value}' is not one of auto, portable, epoll, uring."),
                },
                "--workers" => o with { Workers = Int(1, 256) },
                "--queue" => o with { Queue = Int(0, 1_000_000) },
                "--inline-max" => o with { InlineMax = Int(0, 92) },
                "--max-connections" => o with { MaxConnections = Int(1, 1_000_000) },
                "--trace" => o with { TraceFile = value.Length > 0 ? value : throw new ArgumentException("Option --trace: a file name is required.") },
                "--mode" => o with
                {
                    Mode = value.ToLowerInvariant() switch
                    {
                        "pool" => JobsMode.Pool,
                        "inline" => JobsMode.Inline,
                        "threadpool" => JobsMode.ThreadPool,
                        var m => throw new ArgumentException($"Option --mode: '{m}' is not one of pool, inline, threadpool."),
                    },
                },
                _ => o,
            };
        }

        return o;
    }

    private static RootCommand BuildCommand()
    {
        var command = new RootCommand(Description);
        foreach ((string name, string helpName, string description) in Flags)
        {
            command.Options.Add(new Option<string>(name) { HelpName = helpName, Description = description });
        }

        foreach (VersionOption version in command.Options.OfType<VersionOption>().ToList())
        {
            command.Options.Remove(version);
        }

        return command;
    }
}
