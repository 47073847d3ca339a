using System.Globalization;

namespace EioSharp.Kv;

/// <summary>Command-line options of the server (Redis's names where Redis has one).</summary>
/// <param name="Config">Settings shared with the protocol layer (port, bind, dir, fsync policy, password, limits).</param>
/// <param name="Domains">Domains that accept and serve connections (by default the store owner shares the main one).</param>
/// <param name="ShowHelp">True when <c>--help</c> was given.</param>
/// <param name="StoreOnMainDomain">Run the store owner on the main domain (shared with its connections) instead of a domain of its own.</param>
/// <param name="EnableDebugCommand">Whether DEBUG is allowed (Redis's <c>enable-debug-command</c>).</param>
internal sealed record KvOptions(KvServerConfig Config, int Domains, bool ShowHelp, bool StoreOnMainDomain = true,
    DebugCommandMode EnableDebugCommand = DebugCommandMode.No)
{
    /// <summary>The default number of connection domains: one per core less one, at least one.</summary>
    public static int DefaultDomains => Math.Max(1, Environment.ProcessorCount - 1);

    public const string Usage = """
        Usage: EioSharp.Kv [options]
          --port <n>                TCP port (default 6379; 0 picks a free port)
          --bind <address>          address to listen on (default 127.0.0.1)
          --dir <path>              data directory (default ./data)
          --appendonly yes|no       keep the append-only file (default yes)
          --appendfilename <name>   AOF file name inside --dir (default appendonly.aof)
          --appendfsync always|everysec|no   fsync policy (default everysec)
          --requirepass <password>  require AUTH before other commands
          --maxclients <n>          most connected clients (default 10000)
          --busy-reply-threshold <ms>  a script running longer makes other clients get -BUSY (default 5000)
          --domains <n>             connection domains (default: one per core less one, at least 1)
          --store-domain main|own   where the store owner runs: on the main connection domain (default; its
                                    connections reach the store without a cross-thread hop), or on a domain of its own
          --auto-aof-rewrite-min-size <bytes>   rewrite the AOF once it is at least this big (default 64mb)
          --auto-aof-rewrite-percentage <n>     ... and grew this much since the last rewrite (default 100; 0 disables)
          --proto-max-bulk-len <bytes>          largest bulk string (default 512mb)
          --notify-keyspace-events <classes>    keyspace notifications, Redis's letters (default none)
          --enable-debug-command yes|no|local   allow DEBUG (fault injection: DEBUG CRASH-STORE) from any
                                    connection, none (default), or loopback connections only
        """;

    /// <summary>Parses the arguments.</summary>
    /// <exception cref="ArgumentException">An option is unknown, lacks its value, or has a bad value; the message names it.</exception>
    public static KvOptions Parse(string[] args)
    {
        var c = new KvServerConfig();
        // One connection domain per core, less one left for the kernel's network stack, the clients and background work:
        // measured on 2 cores, 1 domain gives about 1.0x redis-server's throughput and 2 domains about 0.8x.
        int domains = DefaultDomains;
        bool help = false;
        bool storeOnMain = true;
        var debug = DebugCommandMode.No;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string? inline = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (name.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }

            string Value()
            {
                if (inline is not null)
                {
                    return inline;
                }

                if (i + 1 >= args.Length)
                {
                    throw new ArgumentException($"Option {name} needs a value.");
                }

                return args[++i];
            }

            switch (name)
            {
                case "--help" or "-h":
                    help = true;
                    break;
                case "--port":
                    c = c with { Port = Int(name, Value(), 0, 65535) };
                    break;
                case "--bind":
                    c = c with { Bind = Value() };
                    break;
                case "--dir":
                    c = c with { Directory = NonEmpty(name, Value()) };
                    break;
                case "--appendonly":
                    c = c with { AppendOnly = YesNo(name, Value()) };
                    break;
                case "--appendfilename":
                    string file = NonEmpty(name, Value());
                    if (file.Contains('/', StringComparison.Ordinal) || file is "." or "..")
                    {
                        throw new ArgumentException($"Option {name}: '{file}' must be a plain file name inside --dir.");
                    }

                    c = c with { AppendFileName = file };
                    break;
                case "--appendfsync":
                    string policy = Value().ToLowerInvariant();
                    if (policy is not ("always" or "everysec" or "no"))
                    {
                        throw new ArgumentException($"Option {name}: '{policy}' is not one of always, everysec, no.");
                    }

                    c = c with { AppendFsync = policy };
                    break;
                case "--requirepass":
                    c = c with { RequirePass = Value() };
                    break;
                case "--busy-reply-threshold" or "--lua-time-limit":
                    c = c with { BusyReplyThresholdMs = Int(name, Value(), 0, int.MaxValue) };
                    break;
                case "--maxclients":
                    c = c with { MaxClients = Int(name, Value(), 1, 1_000_000) };
                    break;
                case "--store-domain":
                    storeOnMain = Value().ToLowerInvariant() switch
                    {
                        "main" => true,
                        "own" => false,
                        var v => throw new ArgumentException($"Option {name}: '{v}' is not own or main."),
                    };
                    break;
                case "--enable-debug-command":
                    debug = Value().ToLowerInvariant() switch
                    {
                        "yes" => DebugCommandMode.Yes,
                        "no" => DebugCommandMode.No,
                        "local" => DebugCommandMode.Local,
                        var v => throw new ArgumentException($"Option {name}: '{v}' is not yes, no or local."),
                    };
                    break;
                case "--domains":
                    domains = Int(name, Value(), 1, 256);
                    break;
                case "--auto-aof-rewrite-min-size":
                    c = c with { AutoAofRewriteMinSize = Bytes(name, Value()) };
                    break;
                case "--auto-aof-rewrite-percentage":
                    c = c with { AutoAofRewritePercentage = Int(name, Value(), 0, 1_000_000) };
                    break;
                case "--notify-keyspace-events":
                    string events = Value();
                    if (KvConnectionState.ParseNotifyKeyspaceEvents(events) is null)
                    {
                        throw new ArgumentException($"Option {name}: {KvNotifyFlags.InvalidClassError}");
                    }

                    c = c with { NotifyKeyspaceEvents = events };
                    break;
                case "--proto-max-bulk-len":
                    long bulk = Bytes(name, Value());
                    if (bulk < 1024 || bulk > int.MaxValue)
                    {
                        throw new ArgumentException($"Option {name}: must be between 1kb and 2gb.");
                    }

                    c = c with { Limits = c.Limits with { MaxBulkLength = bulk } };
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{args[i]}'. Try --help.");
            }
        }

        return new KvOptions(c, domains, help, storeOnMain, debug);
    }

    private static string NonEmpty(string name, string value) =>
        string.IsNullOrWhiteSpace(value) ? throw new ArgumentException($"Option {name} must not be empty.") : value;

    private static int Int(string name, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
        {
            throw new ArgumentException($"Option {name}: '{value}' is not an integer between {min} and {max}.");
        }

        return n;
    }

    private static bool YesNo(string name, string value) => value.ToLowerInvariant() switch
    {
        "yes" => true,
        "no" => false,
        _ => throw new ArgumentException($"Option {name}: '{value}' is not yes or no."),
    };

    /// <summary>Parses a byte count with Redis's units (b, kb, mb, gb; k, m, g are powers of 1000).</summary>
    private static long Bytes(string name, string value)
    {
        string v = value.Trim().ToLowerInvariant();
        (string unit, long mul)[] units = [("gb", 1L << 30), ("mb", 1L << 20), ("kb", 1L << 10), ("g", 1_000_000_000), ("m", 1_000_000), ("k", 1000), ("b", 1)];
        long multiplier = 1;
        foreach (var (unit, mul) in units)
        {
            if (v.EndsWith(unit, StringComparison.Ordinal))
            {
                v = v[..^unit.Length];
                multiplier = mul;
                break;
            }
        }

        if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) || n < 0 || n > long.MaxValue / multiplier)
        {
            throw new ArgumentException($"Option {name}: '{value}' is not a size (e.g. 64mb).");
        }

        return n * multiplier;
    }
}

/// <summary>Redis's <c>enable-debug-command</c>: who may run DEBUG.</summary>
internal enum DebugCommandMode
{
    /// <summary>Nobody (the default).</summary>
    No,

    /// <summary>Any connection.</summary>
    Yes,

    /// <summary>Loopback connections only.</summary>
    Local,
}
