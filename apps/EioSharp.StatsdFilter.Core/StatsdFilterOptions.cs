using System.Collections;
using System.CommandLine;
using System.CommandLine.Help;
using System.Globalization;
using System.Net;

namespace EioSharp.StatsdFilter;

/// <summary>How a blocklist text is read.</summary>
public enum BlocklistSyntax
{
    /// <summary>The rule syntax of <see cref="FilterRules.Parse"/>: exact name, <c>prefix*</c>, <c>regex:</c>, <c>tag:</c>, <c>line:</c>, <c>!</c>.</summary>
    Rules,

    /// <summary>The seed's syntax (<see cref="FilterRules.ParseSeed"/>): each comma-separated entry is a literal prefix of the line.</summary>
    Seed,
}

/// <summary>The configuration of the StatsD filtering proxy, from environment variables and command-line flags.</summary>
/// <remarks>
/// <para>
/// <b>Sources</b>: the seed's environment variables (<c>num_threads</c>, <c>listen_port</c>,
/// <c>target_host</c>, <c>target_port</c>, <c>blocklist</c>; names are case-sensitive, empty values
/// are ignored) are read first, then command-line flags override them. Flags are parsed by System.CommandLine:
/// <c>--flag value</c>, <c>--flag=value</c> or <c>--flag:value</c>; the switches (<c>--tcp</c>, <c>--reuseport</c>,
/// <c>--verbose</c>, <c>--enable-debug-commands</c>) take no value or <c>true</c>/<c>false</c>; <c>@file</c> reads
/// more arguments from a response file. See <see cref="Usage"/>.
/// </para>
/// <para>
/// <b>Blocklist meaning</b>: the environment variable <c>blocklist</c> keeps the seed's meaning (each entry is a
/// literal prefix of the line: <c>blocklist=foo,bar</c> drops <c>foo.x:1|c</c> and <c>foobar:1|c</c>); the
/// <c>--blocklist</c> flag takes the rule syntax of <see cref="FilterRules"/>. <c>--blocklist-syntax rules|seed</c>
/// (or the environment variable <c>blocklist_syntax</c>) chooses the meaning explicitly, whichever source the
/// blocklist came from.
/// </para>
/// <para>
/// <b>Validation</b>: every environment value present is validated, even one that a flag later
/// overrides, so a broken deployment variable is reported rather than silently shadowed.
/// </para>
/// <para><b>Errors</b>: <see cref="Parse"/> throws <see cref="StatsdFilterOptionsException"/> whose message names the option and the bad value.</para>
/// </remarks>
public sealed class StatsdFilterOptions
{
    private const string Description = """
        StatsD filtering proxy: receives StatsD lines on UDP (and optionally TCP), drops the blocked ones and forwards
        the rest, re-batched, to the upstream over UDP.

        Blocklist: the environment variable blocklist keeps the seed's meaning: each comma-separated entry is a
        literal prefix of the line (blocklist=foo,bar drops foo.x:1|c, foobar:1|c and bar.y:3|g; keeps xfoo:1|c).
        The --blocklist flag takes rules: name (exact), prefix.* or prefix* (prefix), line:TEXT (literal line
        prefix, the seed's meaning), regex:PATTERN (anchored at the start; linear-time engine unless the pattern
        needs backtracking), tag:KEY[:VALUE], and !RULE (allow rule: makes the list an allowlist).
        --blocklist-syntax seed|rules (env blocklist_syntax) chooses the meaning explicitly.

        Exit status: 0 after SIGINT/SIGTERM, 1 when the sockets cannot be opened, 2 for bad options, 3 when a
        forwarder or the self-metrics emitter crashed more than 10 times within 10s (its supervisor gave up).
        """;

    private static readonly (string Variable, string Flag)[] EnvironmentVariables =
    [
        ("num_threads", "--threads"),
        ("listen_port", "--listen-port"),
        ("target_host", "--target-host"),
        ("target_port", "--target-port"),
        ("blocklist_syntax", "--blocklist-syntax"),
        ("blocklist", "--blocklist"),
    ];

    private static readonly (string Name, string HelpName, string Description)[] ValueFlags =
    [
        ("--threads", "N", "domains (env num_threads; default: one per core)"),
        ("--fibers", "N", "UDP receive fibers per domain (default 2)"),
        ("--listen-port", "PORT", "UDP (and TCP) port to listen on (env listen_port; default 8125; 0 = any)"),
        ("--bind", "ADDRESS", "IP address to listen on (default 127.0.0.1)"),
        ("--target-host", "HOST", "upstream StatsD host (env target_host; default localhost)"),
        ("--target-port", "PORT", "upstream StatsD port (env target_port; default 8126)"),
        ("--blocklist-syntax", "rules|seed", "how the blocklist is read (env blocklist_syntax; default: seed for the env variable, rules for the flag)"),
        ("--blocklist", "RULES", "comma-separated rules: name, prefix.*, line:TEXT, regex:PATTERN, tag:KEY[:VALUE], !RULE (env blocklist: seed syntax)"),
        ("--mtu", "BYTES", "largest datagram sent upstream (default 1432)"),
        ("--metrics-prefix", "NAME", "prefix of self-metrics (default statsd_filter)"),
        ("--metrics-interval", "T", "self-metrics period, e.g. 10s, 500ms, 1m, 00:00:10; 0 disables (default 10s)"),
        ("--backend", "auto|portable|epoll|uring", "the I/O backend (default auto: io_uring, else epoll, else portable; EIOSHARP_BACKEND overrides auto)"),
        ("--trace", "FILE", "record a fiber trace into this file (Chrome Trace Event JSON: ui.perfetto.dev, eiosharp-traceview); SIGQUIT prints the live fiber tree"),
    ];

    private static readonly (string Name, string Description)[] Switches =
    [
        ("--reuseport", "one SO_REUSEPORT UDP socket per domain instead of one shared socket"),
        ("--tcp", "also accept newline-framed lines on TCP"),
        ("--verbose", "print one trace line per request"),
        ("--enable-debug-commands", "for fault-injection tests only (off by default): treat ingest lines named _debug.* as commands "
            + "instead of metrics; _debug.crash_forwarder:1|c crashes the receiving domain's forwarder, _debug.crash_metrics:1|c "
            + "the self-metrics emitter (each is restarted by its supervisor)"),
    ];

    private static readonly Lazy<string> HelpText = new(() =>
    {
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        BuildCommand().Parse(["--help"]).Invoke(new InvocationConfiguration { Output = writer, Error = writer });
        return writer.ToString();
    });

    private string? _blocklistSyntaxSetting;
    private bool _blocklistFromFlag;

    /// <summary>Options with every default.</summary>
    public StatsdFilterOptions()
    {
    }

    /// <summary>The help text listing every flag and its environment variable (generated by System.CommandLine).</summary>
    public static string Usage => HelpText.Value;

    /// <summary>The number of domains (threads) handling traffic, at least 1; default one per core.</summary>
    public int Threads { get; private set; } = Environment.ProcessorCount;

    /// <summary>The number of UDP receive fibers per domain, at least 1. Default 2.</summary>
    public int Fibers { get; private set; } = 2;

    /// <summary>Whether each domain binds its own UDP socket with SO_REUSEPORT (the kernel spreads senders over them by address hash) instead of all domains sharing one socket. Default false.</summary>
    public bool ReusePort { get; private set; }

    /// <summary>The port to listen on; 0 lets the system choose. Default 8125.</summary>
    public int ListenPort { get; private set; } = 8125;

    /// <summary>The address to listen on. Default 127.0.0.1.</summary>
    public IPAddress BindAddress { get; private set; } = IPAddress.Loopback;

    /// <summary>The upstream StatsD host name or address, resolved at start. Default <c>localhost</c>.</summary>
    public string TargetHost { get; private set; } = "localhost";

    /// <summary>The upstream StatsD port, 1 to 65535. Default 8126.</summary>
    public int TargetPort { get; private set; } = 8126;

    /// <summary>The blocklist as given (empty for none).</summary>
    public string Blocklist { get; private set; } = string.Empty;

    /// <summary>How <see cref="Blocklist"/> was read: <see cref="BlocklistSyntax.Seed"/> for the environment variable, <see cref="BlocklistSyntax.Rules"/> for the flag, unless <c>--blocklist-syntax</c> says otherwise.</summary>
    public BlocklistSyntax BlocklistSyntax { get; private set; } = BlocklistSyntax.Rules;

    /// <summary>The parsed <see cref="Blocklist"/>.</summary>
    public FilterRules Rules { get; private set; } = FilterRules.Empty;

    /// <summary>The largest datagram sent upstream, in bytes, 1 to 65507. Default 1432.</summary>
    public int Mtu { get; private set; } = DatagramBatcher.DefaultMtu;

    /// <summary>Whether to also accept lines on TCP (same port). Default false.</summary>
    public bool Tcp { get; private set; }

    /// <summary>Whether to print one trace line per request. Default false.</summary>
    public bool Verbose { get; private set; }

    /// <summary>Whether ingest lines named <c>_debug.*</c> are fault-injection commands (e.g. <c>_debug.crash_forwarder</c>) instead of metrics. Default false.</summary>
    public bool DebugCommands { get; private set; }

    /// <summary>The prefix of the self-metric names. Default <c>statsd_filter</c>.</summary>
    public string MetricsPrefix { get; private set; } = "statsd_filter";

    /// <summary>The period of self-metric emission; <see cref="TimeSpan.Zero"/> disables it. Default 10 seconds.</summary>
    public TimeSpan MetricsInterval { get; private set; } = TimeSpan.FromSeconds(10);

    /// <summary>A file to stream the fiber trace to (<c>--trace</c>), or null.</summary>
    public string? TraceFile { get; private set; }

    /// <summary>The EioSharp backend's name (<c>--backend</c>): <c>auto</c> (the default: the best available), <c>portable</c>, <c>epoll</c> or <c>uring</c>.</summary>
    public string Backend { get; private set; } = "auto";

    /// <summary>Whether <c>--help</c> was given (the caller should print <see cref="Usage"/> and exit).</summary>
    public bool ShowHelp { get; private set; }

    /// <summary>Builds the options from environment variables, then command-line flags (flags win).</summary>
    /// <param name="args">The command-line arguments; <c>@file</c> reads more from a response file.</param>
    /// <param name="environment">The environment, e.g. <see cref="Environment.GetEnvironmentVariables()"/>; <see langword="null"/> for none.</param>
    /// <returns>The validated options.</returns>
    /// <exception cref="StatsdFilterOptionsException">An option is unknown, lacks a value, or has an invalid value; the message names it.</exception>
    public static StatsdFilterOptions Parse(string[] args, IDictionary? environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        RootCommand command = BuildCommand();
        ParseResult parsed = command.Parse(args);
        var options = new StatsdFilterOptions();
        if (parsed.Action is HelpAction)
        {
            options.ShowHelp = true;
            return options;
        }

        if (parsed.Errors.Count > 0)
        {
            throw new StatsdFilterOptionsException(string.Join("; ", parsed.Errors.Select(e => e.Message)) + " (see --help)");
        }

        if (environment is not null)
        {
            foreach ((string variable, string flag) in EnvironmentVariables)
            {
                if (environment[variable] is string value && value.Length > 0)
                {
                    options.Apply(flag, $"environment variable {variable}", value, fromFlag: false);
                }
            }
        }

        foreach (Option option in command.Options)
        {
            if (parsed.GetResult(option) is not { Implicit: false })
            {
                continue;
            }

            if (option is not Option<string> flag)
            {
                continue;
            }

            string? value = parsed.GetValue(flag);
            if (flag.Arity.MaximumNumberOfValues == 1 && flag.Arity.MinimumNumberOfValues == 0)
            {
                bool on = value is null || ParseBool(flag.Name, value);
                switch (flag.Name)
                {
                    case "--tcp":
                        options.Tcp = on;
                        break;
                    case "--verbose":
                        options.Verbose = on;
                        break;
                    case "--reuseport":
                        options.ReusePort = on;
                        break;
                    case "--enable-debug-commands":
                        options.DebugCommands = on;
                        break;
                }
            }
            else
            {
                options.Apply(flag.Name, $"option {flag.Name}", value ?? string.Empty, fromFlag: true);
            }

        }

        options.BuildRules();
        return options;
    }

    private static RootCommand BuildCommand()
    {
        var command = new RootCommand(Description);
        foreach ((string name, string helpName, string description) in ValueFlags)
        {
            command.Options.Add(new Option<string>(name) { HelpName = helpName, Description = description });
        }

        foreach ((string name, string description) in Switches)
        {
            // A switch: no value means true; an explicit true/false (also yes/no, on/off, 1/0) is parsed by ParseBool so that
            // a bad one is reported naming the flag.
            command.Options.Add(new Option<string>(name) { Description = description, Arity = ArgumentArity.ZeroOrOne, HelpName = "true|false" });
        }

        // No --version: the proxy has no version of its own to print.
        foreach (VersionOption version in command.Options.OfType<VersionOption>().ToList())
        {
            command.Options.Remove(version);
        }

        return command;
    }

    private void BuildRules()
    {
        BlocklistSyntax = _blocklistSyntaxSetting switch
        {
            "seed" => BlocklistSyntax.Seed,
            "rules" => BlocklistSyntax.Rules,
            _ => _blocklistFromFlag ? BlocklistSyntax.Rules : BlocklistSyntax.Seed,
        };
        if (Blocklist.Length == 0)
        {
            Rules = FilterRules.Empty;
            return;
        }

        if (BlocklistSyntax == BlocklistSyntax.Seed)
        {
            Rules = FilterRules.ParseSeed(Blocklist);
        }
        else if (FilterRules.TryParse(Blocklist, out FilterRules? rules, out string? error))
        {
            Rules = rules;
        }
        else
        {
            string source = _blocklistFromFlag ? "option --blocklist" : "environment variable blocklist";
            throw new StatsdFilterOptionsException($"{source}: {error}");
        }
    }

    private void Apply(string flag, string source, string value, bool fromFlag)
    {
        switch (flag)
        {
            case "--threads":
                Threads = ParseInt(source, value, 1, 4096);
                break;
            case "--fibers":
                Fibers = ParseInt(source, value, 1, 1024);
                break;
            case "--listen-port":
                ListenPort = ParseInt(source, value, 0, 65535);
                break;
            case "--target-port":
                TargetPort = ParseInt(source, value, 1, 65535);
                break;
            case "--mtu":
                Mtu = ParseInt(source, value, 1, DatagramBatcher.MaxUdpPayload);
                break;
            case "--bind":
                if (!IPAddress.TryParse(value, out IPAddress? address))
                {
                    throw new StatsdFilterOptionsException($"{source}: '{value}' is not an IP address");
                }

                BindAddress = address;
                break;
            case "--target-host":
                if (string.IsNullOrWhiteSpace(value) || value.Any(char.IsWhiteSpace))
                {
                    throw new StatsdFilterOptionsException($"{source}: '{value}' is not a host name or address");
                }

                TargetHost = value;
                break;
            case "--blocklist":
                // Validated now in the syntax its source implies, so that a bad environment value is reported even if a
                // flag overrides it; parsed for good by BuildRules once --blocklist-syntax is known.
                if ((_blocklistSyntaxSetting ?? (fromFlag ? "rules" : "seed")) == "rules" && !FilterRules.TryParse(value, out _, out string? error))
                {
                    throw new StatsdFilterOptionsException($"{source}: {error}");
                }

                Blocklist = value;
                _blocklistFromFlag = fromFlag;
                break;
            case "--blocklist-syntax":
                if (value is not ("seed" or "rules"))
                {
                    throw new StatsdFilterOptionsException($"{source}: '{value}' is not a blocklist syntax (seed or rules)");
                }

                _blocklistSyntaxSetting = value;
                break;
            case "--metrics-prefix":
                if (value.Length == 0 || value.AsSpan().IndexOfAny(":|@#\n\r\t ,") >= 0 || value[^1] == '.')
                {
                    throw new StatsdFilterOptionsException(
                        $"{source}: '{value}' is not a valid metric prefix (non-empty, no ':', '|', '@', '#', ',', whitespace or trailing '.')");
                }

                MetricsPrefix = value;
                break;
            case "--metrics-interval":
                MetricsInterval = ParseDuration(source, value);
                break;
            case "--trace":
                TraceFile = value.Length > 0 ? value : throw new StatsdFilterOptionsException($"{source}: a file name is required");
                break;
            case "--backend":
                Backend = value.ToLowerInvariant() is "auto" or "portable" or "epoll" or "uring"
                    ? value.ToLowerInvariant()
                    : throw new StatsdFilterOptionsException($"{source}: '{value}' is not a backend (auto, portable, epoll or uring)");
                break;
            default:
                throw new StatsdFilterOptionsException($"unknown option '{flag}' (see --help)");
        }
    }

    private static int ParseInt(string source, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int result) || result < min || result > max)
        {
            throw new StatsdFilterOptionsException($"{source}: '{value}' is not an integer from {min} to {max}");
        }

        return result;
    }

    private static bool ParseBool(string flag, string value) => value.ToUpperInvariant() switch
    {
        "TRUE" or "1" or "YES" or "ON" => true,
        "FALSE" or "0" or "NO" or "OFF" => false,
        _ => throw new StatsdFilterOptionsException($"option {flag}: '{value}' is not a boolean (true or false)"),
    };

    /// <summary>Parses a duration: a number with unit <c>ms</c>, <c>s</c>, <c>m</c> or <c>h</c>, a <see cref="TimeSpan"/> (<c>hh:mm:ss</c>), or <c>0</c>.</summary>
    private static TimeSpan ParseDuration(string source, string value)
    {
        string text = value.Trim();
        if (text == "0")
        {
            return TimeSpan.Zero;
        }

        (string suffix, double scaleMs)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach ((string suffix, double scaleMs) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double amount)
                && amount * scaleMs <= TimeSpan.MaxValue.TotalMilliseconds / 2)
            {
                return TimeSpan.FromMilliseconds(amount * scaleMs);
            }
        }

        if (text.Contains(':', StringComparison.Ordinal)
            && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out TimeSpan span)
            && span >= TimeSpan.Zero)
        {
            return span;
        }

        throw new StatsdFilterOptionsException(
            $"{source}: '{value}' is not a duration (examples: 10s, 500ms, 1m, 00:00:10; 0 disables)");
    }
}

/// <summary>Reports an invalid proxy configuration; the message names the option or environment variable.</summary>
public sealed class StatsdFilterOptionsException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StatsdFilterOptionsException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong, naming the option.</param>
    public StatsdFilterOptionsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    /// <param name="message">What is wrong, naming the option.</param>
    /// <param name="innerException">The cause.</param>
    public StatsdFilterOptionsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
