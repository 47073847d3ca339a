using System.Collections;
using System.Globalization;
using System.Net;

namespace EioSharp.StatsdFilter;

/// <summary>The configuration of the StatsD filtering proxy, from environment variables and command-line flags.</summary>
/// <remarks>
/// <para>
/// <b>Sources</b>: the seed's environment variables (<c>num_threads</c>, <c>listen_port</c>,
/// <c>target_host</c>, <c>target_port</c>, <c>blocklist</c>; names are case-sensitive, empty values
/// are ignored) are read first, then command-line flags override them. Flags take their value as
/// <c>--flag value</c> or <c>--flag=value</c>; <c>--tcp</c>, <c>--reuseport</c>, <c>--verbose</c> and
/// <c>--enable-debug-commands</c> take none (or
/// <c>=true</c>/<c>=false</c>). See <see cref="Usage"/>.
/// </para>
/// <para>
/// <b>Validation</b>: every environment value present is validated, even one that a flag later
/// overrides, so a broken deployment variable is reported rather than silently shadowed.
/// </para>
/// <para><b>Errors</b>: <see cref="Parse"/> throws <see cref="StatsdFilterOptionsException"/> whose message names the option and the bad value.</para>
/// </remarks>
public sealed class StatsdFilterOptions
{
    /// <summary>The help text listing every flag and its environment variable.</summary>
    public const string Usage = """
        Usage: statsd-filter [options]
          --threads N            domains (env num_threads; default: one per core)
          --fibers N             UDP receive fibers per domain (default 2)
          --reuseport            one SO_REUSEPORT UDP socket per domain instead of one shared socket
          --listen-port PORT     UDP (and TCP) port to listen on (env listen_port; default 8125; 0 = any)
          --bind ADDRESS         IP address to listen on (default 127.0.0.1)
          --target-host HOST     upstream StatsD host (env target_host; default localhost)
          --target-port PORT     upstream StatsD port (env target_port; default 8126)
          --blocklist RULES      comma-separated rules: name, prefix.*, regex:PATTERN, tag:KEY[:VALUE], !RULE (env blocklist)
          --mtu BYTES            largest datagram sent upstream (default 1432)
          --tcp                  also accept newline-framed lines on TCP
          --verbose              print one trace line per request
          --metrics-prefix NAME  prefix of self-metrics (default statsd_filter)
          --metrics-interval T   self-metrics period, e.g. 10s, 500ms, 1m, 00:00:10; 0 disables (default 10s)
          --enable-debug-commands
                                 for fault-injection tests only (off by default): treat ingest lines named
                                 _debug.* as commands instead of metrics; _debug.crash_forwarder:1|c crashes
                                 the receiving domain's forwarder, _debug.crash_metrics:1|c the self-metrics
                                 emitter (each is restarted by its supervisor)
          --help                 print this text

        Exit status: 0 after SIGINT/SIGTERM, 1 when the sockets cannot be opened, 2 for bad options, 3 when a
        forwarder or the self-metrics emitter crashed more than 10 times within 10s (its supervisor gave up).
        """;

    /// <summary>Options with every default.</summary>
    public StatsdFilterOptions()
    {
    }

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

    /// <summary>Whether <c>--help</c> was given (the caller should print <see cref="Usage"/> and exit).</summary>
    public bool ShowHelp { get; private set; }

    /// <summary>Builds the options from environment variables, then command-line flags (flags win).</summary>
    /// <param name="args">The command-line arguments.</param>
    /// <param name="environment">The environment, e.g. <see cref="Environment.GetEnvironmentVariables()"/>; <see langword="null"/> for none.</param>
    /// <returns>The validated options.</returns>
    /// <exception cref="StatsdFilterOptionsException">An option is unknown, lacks a value, or has an invalid value; the message names it.</exception>
    public static StatsdFilterOptions Parse(string[] args, IDictionary? environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new StatsdFilterOptions();
        if (environment is not null)
        {
            foreach ((string variable, string flag) in EnvironmentVariables)
            {
                if (environment[variable] is string value && value.Length > 0)
                {
                    options.Apply(flag, $"environment variable {variable}", value);
                }
            }
        }

        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new StatsdFilterOptionsException($"unexpected argument '{arg}' (options start with --; see --help)");
            }

            string flag = arg;
            string? value = null;
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (equals >= 0)
            {
                flag = arg[..equals];
                value = arg[(equals + 1)..];
            }

            if (flag is "--tcp" or "--verbose" or "--help" or "--reuseport" or "--enable-debug-commands")
            {
                bool on = value is null || ParseBool(flag, value);
                switch (flag)
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
                    default:
                        options.ShowHelp = on;
                        break;
                }

                continue;
            }

            if (!IsValueFlag(flag))
            {
                throw new StatsdFilterOptionsException($"unknown option '{flag}' (see --help)");
            }

            if (value is null)
            {
                if (i + 1 >= args.Length)
                {
                    throw new StatsdFilterOptionsException($"option {flag} needs a value");
                }

                value = args[++i];
            }

            options.Apply(flag, $"option {flag}", value);
        }

        return options;
    }

    private static readonly (string Variable, string Flag)[] EnvironmentVariables =
    [
        ("num_threads", "--threads"),
        ("listen_port", "--listen-port"),
        ("target_host", "--target-host"),
        ("target_port", "--target-port"),
        ("blocklist", "--blocklist"),
    ];

    private static bool IsValueFlag(string flag) => flag is "--threads" or "--fibers" or "--listen-port" or "--bind" or "--target-host"
        or "--target-port" or "--blocklist" or "--mtu" or "--metrics-prefix" or "--metrics-interval";

    private void Apply(string flag, string source, string value)
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
                if (!FilterRules.TryParse(value, out FilterRules? rules, out string? error))
                {
                    throw new StatsdFilterOptionsException($"{source}: {error}");
                }

                Blocklist = value;
                Rules = rules;
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
