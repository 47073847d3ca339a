using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>How a directive may be changed.</summary>
[Flags]
public enum KvDirectiveFlags
{
    /// <summary>CONFIG SET may change it.</summary>
    None = 0,

    /// <summary>Only at start (config file or flag): CONFIG SET answers "can't set immutable config".</summary>
    Immutable = 1,

    /// <summary>Redis's protected configs (enable-protected-configs no): "can't set protected config".</summary>
    Protected = 2,

    /// <summary>Takes several arguments (<c>save</c>, <c>client-output-buffer-limit</c>): CONFIG SET splits its value at spaces.</summary>
    MultiArg = 4,
}

/// <summary>One configuration directive: its name (and alias), how to read it from and apply it to a <see cref="KvServerConfig"/>.</summary>
/// <param name="Name">Redis's name.</param>
/// <param name="Flags">Whether it may change at run time.</param>
/// <param name="Get">The value as CONFIG GET shows it.</param>
/// <param name="Set">Applies the arguments to a configuration and returns the new one; throws <see cref="KvConfigException"/>
/// with Redis's validation text (e.g. "argument must be 'yes' or 'no'").</param>
public sealed record KvConfigDirective(string Name, KvDirectiveFlags Flags, Func<KvServerConfig, string> Get,
    Func<KvServerConfig, IReadOnlyList<string>, KvServerConfig> Set)
{
    /// <summary>The old name also accepted (hash-max-ziplist-entries for hash-max-listpack-entries...), or null.</summary>
    public string? Alias { get; init; }

    /// <summary>The lines CONFIG REWRITE writes (arguments after the name, one list per line); null: one line with <see cref="Get"/>.</summary>
    public Func<KvServerConfig, List<List<string>>>? RewriteLines { get; init; }

    /// <summary>CONFIG REWRITE always quotes the value, as Redis's string and sds options and notify-keyspace-events
    /// (<c>sdscatrepr</c>: <c>dir "/data"</c>); otherwise only values that need it are quoted.</summary>
    public bool QuotedOnRewrite { get; init; }

    /// <summary>The argument lists CONFIG REWRITE writes for <paramref name="config"/>.</summary>
    public List<List<string>> LinesFor(KvServerConfig config) => RewriteLines?.Invoke(config) ?? [[Get(config)]];
}

/// <summary>The configuration directives the server supports, with Redis 7.0's value syntax and validation errors.</summary>
public static class KvConfigDirectives
{
    private static readonly KvConfigDirective[] s_all = Build();

    private static readonly Dictionary<string, KvConfigDirective> s_byName = s_all
        .SelectMany(d => d.Alias is null ? new[] { (d.Name, d) } : [(d.Name, d), (d.Alias, d)])
        .ToDictionary(p => p.Item1, p => p.Item2, StringComparer.OrdinalIgnoreCase);

    /// <summary>Every directive, in a stable order.</summary>
    public static IReadOnlyList<KvConfigDirective> All => s_all;

    /// <summary>The directive named <paramref name="name"/> (or its alias), case-insensitive; null when unknown.</summary>
    public static KvConfigDirective? Find(string name) => s_byName.GetValueOrDefault(name);

    /// <summary>Applies the directive lines of a configuration file (and, after them, any flag lines) to <paramref name="config"/>.</summary>
    /// <exception cref="KvConfigException">Unknown directive or bad value; the message is Redis's "FATAL CONFIG FILE ERROR" text.</exception>
    public static KvServerConfig Apply(KvServerConfig config, IEnumerable<KvConfigLine> lines)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(lines);
        bool saveSeen = false;
        foreach (KvConfigLine line in lines)
        {
            string name = line.Args[0];
            if (name.Equals("user", StringComparison.OrdinalIgnoreCase) && line.Args.Count >= 2)
            {
                // Redis 7.0's ACLAppendUserForLoading: kept, applied (and checked) once the file is read (KvLiveConfig).
                config = config with { Users = [.. config.Users, [.. line.Args.Skip(1)]] };
                continue;
            }
            KvConfigDirective d = Find(name) ?? throw KvConfigFile.LineError(line.File, line.LineNumber, line.Text, "Bad directive or wrong number of arguments");
            var args = line.Args.Skip(1).ToList();
            if ((d.Flags & KvDirectiveFlags.MultiArg) == 0 && args.Count != 1)
            {
                throw KvConfigFile.LineError(line.File, line.LineNumber, line.Text, "wrong number of arguments");
            }
            try
            {
                if (d.Name == "save")
                {
                    // As Redis: the first save line of a file replaces the default, later ones add points.
                    if (saveSeen && !(args.Count == 1 && args[0].Length == 0)) args = [.. SplitSpaces(config.Save), .. args];
                    saveSeen = true;
                }
                else if (d.Name == "client-output-buffer-limit" && args.Count > 0)
                {
                    // One class per line: merge with the other classes.
                    args = [.. SplitSpaces(d.Get(config)), .. args];
                }
                config = d.Set(config, args);
            }
            catch (KvConfigException e)
            {
                throw KvConfigFile.LineError(line.File, line.LineNumber, line.Text, e.Message);
            }
        }
        return config;
    }

    /// <summary>Splits a CONFIG SET value of a multi-argument directive at spaces (empty parts dropped).</summary>
    public static List<string> SplitSpaces(string value) => [.. value.Split(' ', StringSplitOptions.RemoveEmptyEntries)];

    private static string I(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string YesNo(bool v) => v ? "yes" : "no";

    private static KvConfigDirective Bool(string name, Func<KvServerConfig, bool> get, Func<KvServerConfig, bool, KvServerConfig> set,
        KvDirectiveFlags flags = KvDirectiveFlags.None) =>
        new(name, flags, c => YesNo(get(c)), (c, a) => set(c, ParseBool(a[0])));

    private static KvConfigDirective Int(string name, long min, long max, Func<KvServerConfig, long> get,
        Func<KvServerConfig, long, KvServerConfig> set, KvDirectiveFlags flags = KvDirectiveFlags.None) =>
        new(name, flags, c => Shown(c, name) ?? I(get(c)), (c, a) => SetShown(c, name, ParseInt(a[0], min, max), get, set));

    private static KvConfigDirective Memory(string name, long min, long max, Func<KvServerConfig, long> get,
        Func<KvServerConfig, long, KvServerConfig> set, KvDirectiveFlags flags = KvDirectiveFlags.None, bool unsignedValue = false) =>
        new(name, flags, c => Shown(c, name) ?? I(get(c)), (c, a) =>
        {
            // Redis's unsigned long long memory configs (maxmemory) take up to 2^64-1: kept as long.MaxValue, shown as set.
            if (unsignedValue && TryParseMemoryUnsigned(a[0]) is { } huge && huge > (ulong)long.MaxValue)
            {
                KvServerConfig next = set(c, long.MaxValue);
                return next with { AcceptedDirectives = next.AcceptedDirectives.SetItem(name, huge.ToString(CultureInfo.InvariantCulture)) };
            }
            return SetShown(c, name, ParseMemory(a[0], min, max), get, set);
        })
        {
            RewriteLines = c => [[Shown(c, name) is { } shown
                ? (long.TryParse(shown, CultureInfo.InvariantCulture, out long v) ? FormatBytes(v) : shown) : FormatBytes(get(c))]],
        };

    /// <summary>The value CONFIG GET shows for a directive whose setting is wider than the property holding it (h50: a
    /// count Redis keeps as a long long, kept here in an int and clamped), or null.</summary>
    private static string? Shown(KvServerConfig c, string name) => c.AcceptedDirectives.GetValueOrDefault(name);

    /// <summary>Applies <paramref name="value"/>; when the property cannot hold it (clamped to an int), remembers the value
    /// set so that CONFIG GET and CONFIG REWRITE show it, as Redis does.</summary>
    private static KvServerConfig SetShown(KvServerConfig c, string name, long value, Func<KvServerConfig, long> get,
        Func<KvServerConfig, long, KvServerConfig> set)
    {
        KvServerConfig next = set(c, value);
        return next with
        {
            AcceptedDirectives = value > int.MaxValue && get(next) != value ? next.AcceptedDirectives.SetItem(name, I(value)) : next.AcceptedDirectives.Remove(name),
        };
    }

    /// <summary>A byte count as CONFIG REWRITE writes it (Redis's rewriteConfigBytesOption: gb, mb or kb when exact).</summary>
    public static string FormatBytes(long value) =>
        value == 0 ? "0"
        : value % (1L << 30) == 0 ? I(value >> 30) + "gb"
        : value % (1L << 20) == 0 ? I(value >> 20) + "mb"
        : value % (1L << 10) == 0 ? I(value >> 10) + "kb"
        : I(value);

    private static KvConfigDirective Enum(string name, string[] values, Func<KvServerConfig, string> get,
        Func<KvServerConfig, string, KvServerConfig> set, KvDirectiveFlags flags = KvDirectiveFlags.None) =>
        new(name, flags, get, (c, a) =>
        {
            string v = a[0].ToLowerInvariant();
            if (!values.Contains(v)) throw new KvConfigException("argument(s) must be one of the following: " + string.Join(", ", values));
            return set(c, v);
        });

    private static KvConfigDirective Str(string name, Func<KvServerConfig, string> get, Func<KvServerConfig, string, KvServerConfig> set,
        KvDirectiveFlags flags = KvDirectiveFlags.None) =>
        new(name, flags, get, (c, a) => set(c, a[0])) { QuotedOnRewrite = true };

    /// <summary>Redis's yes/no (case-insensitive).</summary>
    public static bool ParseBool(string value) => value.ToLowerInvariant() switch
    {
        "yes" => true,
        "no" => false,
        _ => throw new KvConfigException("argument must be 'yes' or 'no'"),
    };

    /// <summary>Redis's integer argument (string2ll: no blanks, no '+', no exponent) within [min, max].</summary>
    public static long ParseInt(string value, long min, long max)
    {
        if (!RespNumbers.TryParseInt64(Encoding.ASCII.GetBytes(value), out long n)) throw new KvConfigException("argument couldn't be parsed into an integer");
        return n < min || n > max ? throw new KvConfigException($"argument must be between {min} and {max} inclusive") : n;
    }

    /// <summary>Redis's memory argument (memtoull: a count with an optional unit b, k, kb, m, mb, g, gb; kb, mb, gb are
    /// powers of 1024, k, m, g powers of 1000) within [min, max]. As Redis 7.0's numericParseString, the unsigned count is
    /// read into a long long: one above <see cref="long.MaxValue"/> is negative and fails the range check.</summary>
    public static long ParseMemory(string value, long min, long max)
    {
        ulong u = TryParseMemoryUnsigned(value) ?? throw new KvConfigException("argument must be a memory value");
        long n = unchecked((long)u);
        return n < min || n > max ? throw new KvConfigException($"argument must be between {min} and {max} inclusive") : n;
    }

    /// <summary>A memory value (see <see cref="ParseMemory"/>) that fits a long, or null.</summary>
    public static long? TryParseMemory(string value) => TryParseMemoryUnsigned(value) is { } u && u <= long.MaxValue ? (long)u : null;

    /// <summary>Redis 7.0's memtoull: no sign, digits then an optional unit; no digits is 0 (an empty value is 0); digits
    /// beyond the range saturate (strtoull); the product with the unit must fit. Null: not a memory value.</summary>
    public static ulong? TryParseMemoryUnsigned(string value)
    {
        int digits = 0;
        while (digits < value.Length && char.IsAsciiDigit(value[digits])) digits++;
        string unit = value[digits..].ToLowerInvariant();
        ulong mul = unit switch
        {
            "" or "b" => 1,
            "k" => 1000,
            "kb" => 1024,
            "m" => 1_000_000,
            "mb" => 1L << 20,
            "g" => 1_000_000_000,
            "gb" => 1L << 30,
            _ => 0,
        };
        if (mul == 0 || digits >= 128) return null;
        ulong n = digits == 0 ? 0
            : ulong.TryParse(value.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out ulong parsed) ? parsed : ulong.MaxValue;
        return n > ulong.MaxValue / mul ? null : n * mul;
    }

    /// <summary>A memory-or-percent value (Redis's MEMORY_CONFIG | PERCENT_CONFIG, <c>maxmemory-clients</c>) as CONFIG GET
    /// shows it: a negative value is a percentage (<c>-10</c>: <c>10%</c>), otherwise the byte count.</summary>
    public static string FormatMemoryOrPercent(long value) => value < 0 ? I(-value) + "%" : I(value);

    /// <summary>Redis 7.0's numericParseString for a MEMORY_CONFIG | PERCENT_CONFIG directive: first as memtoull reads a
    /// memory value (digits only, optional unit; the unsigned result wraps as C's does and is then taken as a signed
    /// number, so 18446744073709551615 is -1: 1%), then as <c>N%</c> (string2ll, N ≥ 0), stored as -N. Errors: "argument
    /// must be a memory or percent value"; a percentage above <paramref name="maxPercent"/>: "percentage argument must be
    /// less or equal to N" (checked with redis-server 7.0.15).</summary>
    public static long ParseMemoryOrPercent(string value, long maxPercent)
    {
        ArgumentNullException.ThrowIfNull(value);
        long n;
        if (TryMemToULL(value) is { } bytes) n = unchecked((long)bytes);
        else if (value.Length > 1 && value[^1] == '%' && RespNumbers.TryParseInt64(Encoding.ASCII.GetBytes(value[..^1]), out long pct) && pct >= 0) n = -pct;
        else throw new KvConfigException("argument must be a memory or percent value");
        if (n < -maxPercent) throw new KvConfigException($"percentage argument must be less or equal to {I(maxPercent)}");
        return n;
    }

    /// <summary>Redis 7.0's memtoull: an optional unit (b, k, kb, m, mb, g, gb; any case) after decimal digits, parsed
    /// by strtoull (saturating at 2^64-1), multiplied with C's unsigned wrap-around; an empty count is 0 ("" and "kb" are
    /// 0). Null when a character is not a digit.</summary>
    private static ulong? TryMemToULL(string value)
    {
        string v = value.ToLowerInvariant();
        (string Unit, ulong Mul)[] units = [("gb", 1UL << 30), ("mb", 1UL << 20), ("kb", 1UL << 10), ("g", 1_000_000_000), ("m", 1_000_000), ("k", 1000), ("b", 1)];
        ulong mul = 1;
        foreach (var (unit, m) in units)
        {
            if (v.EndsWith(unit, StringComparison.Ordinal))
            {
                v = v[..^unit.Length];
                mul = m;
                break;
            }
        }
        if (!v.All(char.IsAsciiDigit)) return null;
        ulong n = 0;
        foreach (char ch in v)
        {
            ulong d = (ulong)(ch - '0');
            if (n > (ulong.MaxValue - d) / 10)
            {
                n = ulong.MaxValue; // strtoull: ERANGE, ULLONG_MAX (memtoull does not look at errno)
                break;
            }
            n = n * 10 + d;
        }
        return unchecked(n * mul);
    }

    private static KvConfigDirective[] Build()
    {
        const long IntMax = int.MaxValue;
        const long LongMax = long.MaxValue;
        var im = KvDirectiveFlags.Immutable;
        string[] policies = ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"];
        KvEncodingLimits E(KvServerConfig c) => c.Encodings;
        return
        [
            // port and bind change the listening sockets at run time (the server's Applying hook binds the new ones first).
            Int("port", 0, 65535, c => c.Port, (c, v) => c with { Port = (int)v }),
            new("bind", KvDirectiveFlags.MultiArg, c => c.Bind, (c, a) => c with
            {
                Bind = a.Count > 16 ? throw new KvConfigException("Too many bind addresses specified.") : string.Join(' ', a),
            }) { RewriteLines = c => [[.. SplitSpaces(c.Bind)]] },
            Str("dir", c => c.Directory, (c, v) => c with { Directory = v.Length == 0 ? throw new KvConfigException("dir must not be empty") : v }, KvDirectiveFlags.Protected),
            Bool("appendonly", c => c.AppendOnly, (c, v) => c with { AppendOnly = v }),
            Str("appendfilename", c => c.AppendFileName, (c, v) => c with
            {
                AppendFileName = v.Contains('/', StringComparison.Ordinal) || v is "" or "." or ".."
                    ? throw new KvConfigException("appendfilename can't be a path, just a filename") : v,
            }, im),
            // ---- h53: multi-part AOF ----
            Str("appenddirname", c => c.AppendDirName, (c, v) => c with
            {
                AppendDirName = v is "." or ".." ? throw new KvConfigException("appenddirname can't be '.' or '..'")
                    : v.Contains('/', StringComparison.Ordinal) ? throw new KvConfigException("appenddirname can't be a path, just a dirname")
                    : v.Length == 0 ? throw new KvConfigException("appenddirname can't be empty") : v,
            }, im),
            Bool("aof-use-rdb-preamble", c => c.AofUseRdbPreamble, (c, v) => c with { AofUseRdbPreamble = v }),
            Bool("aof-timestamp-enabled", c => c.AofTimestampEnabled, (c, v) => c with { AofTimestampEnabled = v }),
            Bool("aof-load-truncated", c => c.AofLoadTruncated, (c, v) => c with { AofLoadTruncated = v }),
            Bool("no-appendfsync-on-rewrite", c => c.NoAppendFsyncOnRewrite, (c, v) => c with { NoAppendFsyncOnRewrite = v }),
            Bool("aof-rewrite-incremental-fsync", c => c.AofRewriteIncrementalFsync, (c, v) => c with { AofRewriteIncrementalFsync = v }),
            Bool("aof-disable-auto-gc", c => c.AofDisableAutoGc, (c, v) => c with { AofDisableAutoGc = v }),
            Str("dbfilename", c => c.DbFilename, (c, v) => c with
            {
                DbFilename = v.Contains('/', StringComparison.Ordinal) || v is "" or "." or ".."
                    ? throw new KvConfigException("dbfilename can't be a path, just a filename") : v,
            }, KvDirectiveFlags.Protected),
            Enum("appendfsync", ["everysec", "always", "no"], c => c.AppendFsync, (c, v) => c with { AppendFsync = v }),
            Str("requirepass", c => c.RequirePass ?? "", (c, v) => c with { RequirePass = v }),
            Str("aclfile", c => c.AclFile, (c, v) => c with { AclFile = v }, im),
            Int("acllog-max-len", 0, LongMax, c => c.AclLogMaxLen, (c, v) => c with { AclLogMaxLen = (int)Math.Min(v, IntMax) }),
            Enum("acl-pubsub-default", ["allchannels", "resetchannels"], c => c.AclPubsubDefault, (c, v) => c with { AclPubsubDefault = v }),
            Int("maxclients", 1, uint.MaxValue, c => c.MaxClients, (c, v) => c with { MaxClients = (int)Math.Min(v, 1_000_000) }),
            Int("databases", 1, IntMax, c => c.Databases, (c, v) => c with { Databases = (int)v }, im),
            Int("timeout", 0, IntMax, c => c.Timeout, (c, v) => c with { Timeout = (int)v }),
            Int("tcp-keepalive", 0, IntMax, c => c.TcpKeepAlive, (c, v) => c with { TcpKeepAlive = (int)v }),
            Memory("maxmemory", 0, LongMax, c => c.MaxMemory, (c, v) => c with { MaxMemory = v }, unsignedValue: true),
            // ---- h51: client eviction ----
            new("maxmemory-clients", KvDirectiveFlags.None, c => FormatMemoryOrPercent(c.MaxMemoryClients),
                (c, a) => c with { MaxMemoryClients = ParseMemoryOrPercent(a[0], 100) })
            {
                RewriteLines = c => [[c.MaxMemoryClients < 0 ? FormatMemoryOrPercent(c.MaxMemoryClients) : FormatBytes(c.MaxMemoryClients)]],
            },
            // ---- end h51 ----
            Enum("maxmemory-policy", policies, c => c.MaxMemoryPolicy, (c, v) => c with { MaxMemoryPolicy = v }),
            Int("maxmemory-samples", 1, IntMax, c => c.MaxMemorySamples, (c, v) => c with { MaxMemorySamples = (int)v }),
            Int("lfu-log-factor", 0, IntMax, c => c.LfuLogFactor, (c, v) => c with { LfuLogFactor = (int)v }),
            Int("lfu-decay-time", 0, IntMax, c => c.LfuDecayTime, (c, v) => c with { LfuDecayTime = (int)v }),
            Memory("proto-max-bulk-len", 1024 * 1024, LongMax, c => c.Limits.MaxBulkLength,
                (c, v) => c with { Limits = c.Limits with { MaxBulkLength = Math.Min(v, int.MaxValue) } }),
            Memory("client-query-buffer-limit", 1024 * 1024, LongMax, c => c.ClientQueryBufferLimit, (c, v) => c with { ClientQueryBufferLimit = v }),
            Int("auto-aof-rewrite-percentage", 0, IntMax, c => c.AutoAofRewritePercentage, (c, v) => c with { AutoAofRewritePercentage = (int)v }),
            Memory("auto-aof-rewrite-min-size", 0, LongMax, c => c.AutoAofRewriteMinSize, (c, v) => c with { AutoAofRewriteMinSize = v }),
            Bool("protected-mode", c => c.ProtectedMode, (c, v) => c with { ProtectedMode = v }),
            Int("io-threads", 1, 128, _ => 1, (c, _) => c, im),
            Int("hash-max-listpack-entries", 0, LongMax, c => E(c).HashMaxListpackEntries,
                (c, v) => c with { Encodings = E(c) with { HashMaxListpackEntries = (int)Math.Min(v, IntMax) } }) with { Alias = "hash-max-ziplist-entries" },
            Memory("hash-max-listpack-value", 0, LongMax, c => E(c).HashMaxListpackValue,
                (c, v) => c with { Encodings = E(c) with { HashMaxListpackValue = (int)Math.Min(v, IntMax) } }) with { Alias = "hash-max-ziplist-value" },
            Int("set-max-intset-entries", 0, LongMax, c => E(c).SetMaxIntsetEntries,
                (c, v) => c with { Encodings = E(c) with { SetMaxIntsetEntries = (int)Math.Min(v, IntMax) } }),
            Int("zset-max-listpack-entries", 0, LongMax, c => E(c).ZSetMaxListpackEntries,
                (c, v) => c with { Encodings = E(c) with { ZSetMaxListpackEntries = (int)Math.Min(v, IntMax) } }) with { Alias = "zset-max-ziplist-entries" },
            Memory("zset-max-listpack-value", 0, LongMax, c => E(c).ZSetMaxListpackValue,
                (c, v) => c with { Encodings = E(c) with { ZSetMaxListpackValue = (int)Math.Min(v, IntMax) } }) with { Alias = "zset-max-ziplist-value" },
            Int("list-max-listpack-size", int.MinValue, IntMax, c => E(c).ListMaxListpackSize,
                (c, v) => c with { Encodings = E(c) with { ListMaxListpackSize = (int)v } }) with { Alias = "list-max-ziplist-size" },
            Int("list-compress-depth", 0, IntMax, c => E(c).ListCompressDepth, (c, v) => c with { Encodings = E(c) with { ListCompressDepth = (int)v } }),
            Int("stream-node-max-entries", 0, LongMax, c => E(c).StreamNodeMaxEntries,
                (c, v) => c with { Encodings = E(c) with { StreamNodeMaxEntries = (int)Math.Min(v, IntMax) } }),
            Memory("stream-node-max-bytes", 0, LongMax, c => E(c).StreamNodeMaxBytes,
                (c, v) => c with { Encodings = E(c) with { StreamNodeMaxBytes = (int)Math.Min(v, IntMax) } }),
            Memory("hll-sparse-max-bytes", 0, LongMax, c => c.HllSparseMaxBytes, (c, v) => c with { HllSparseMaxBytes = v }),
            new("notify-keyspace-events", KvDirectiveFlags.None, c => c.NotifyKeyspaceEvents, (c, a) =>
            {
                if (!KvNotifyFlags.TryParse(Encoding.ASCII.GetBytes(a[0]), out int flags)) throw new KvConfigException(KvNotifyFlags.InvalidClassError);
                return c with { NotifyKeyspaceEvents = KvNotifyFlags.Format(flags) };
            })
            {
                QuotedOnRewrite = true,
            },
            new("client-output-buffer-limit", KvDirectiveFlags.MultiArg, FormatOutputLimits, ParseOutputLimits)
            {
                RewriteLines = c => [.. SplitSpaces(FormatOutputLimits(c)).Chunk(4).Select(l => l.ToList())],
            },
            Int("busy-reply-threshold", 0, LongMax, c => c.BusyReplyThresholdMs, (c, v) => c with { BusyReplyThresholdMs = (int)Math.Min(v, IntMax) })
                with { Alias = "lua-time-limit" },
            Int("slowlog-log-slower-than", -1, LongMax, c => c.SlowlogLogSlowerThan, (c, v) => c with { SlowlogLogSlowerThan = v }),
            Int("slowlog-max-len", 0, LongMax, c => c.SlowlogMaxLen, (c, v) => c with { SlowlogMaxLen = v }),
            Int("latency-monitor-threshold", 0, LongMax, c => c.LatencyMonitorThreshold, (c, v) => c with { LatencyMonitorThreshold = v }),
            Int("hz", 0, IntMax, c => c.Hz, (c, v) => c with { Hz = (int)Math.Clamp(v, 1, 500) }),
            Int("active-expire-effort", 1, 10, c => c.ActiveExpireEffort, (c, v) => c with { ActiveExpireEffort = (int)v }),
            Int("tracking-table-max-keys", 0, LongMax, c => c.TrackingTableMaxKeys, (c, v) => c with { TrackingTableMaxKeys = v }),
            new("save", KvDirectiveFlags.MultiArg, c => c.Save, ParseSave)
            {
                RewriteLines = c => c.Save.Length == 0 ? [[""]] : [.. SplitSpaces(c.Save).Chunk(2).Select(p => p.ToList())],
            },
            // ---- h52: RDB (config.c: rdbchecksum IMMUTABLE_CONFIG, the others MODIFIABLE_CONFIG) ----
            Bool("rdbcompression", c => c.RdbCompression, (c, v) => c with { RdbCompression = v }),
            Bool("rdbchecksum", c => c.RdbChecksum, (c, v) => c with { RdbChecksum = v }, im),
            Bool("stop-writes-on-bgsave-error", c => c.StopWritesOnBgsaveError, (c, v) => c with { StopWritesOnBgsaveError = v }),
            Bool("rdb-del-sync-files", c => c.RdbDelSyncFiles, (c, v) => c with { RdbDelSyncFiles = v }),
            Bool("rdb-save-incremental-fsync", c => c.RdbSaveIncrementalFsync, (c, v) => c with { RdbSaveIncrementalFsync = v }),
            Enum("sanitize-dump-payload", ["no", "yes", "clients"], c => c.SanitizeDumpPayload, (c, v) => c with { SanitizeDumpPayload = v }),
            Enum("loglevel", ["debug", "verbose", "notice", "warning"], c => c.LogLevel, (c, v) => c with { LogLevel = v }),
            // ---- h55: process directives ----
            Str("logfile", c => c.LogFile, (c, v) => c with { LogFile = v }, im),
            Str("pidfile", c => c.PidFile, (c, v) => c with { PidFile = v }, im),
            Int("tcp-backlog", 0, IntMax, c => c.TcpBacklog, (c, v) => c with { TcpBacklog = (int)v }, im),
            Str("unixsocket", c => c.UnixSocket, (c, v) => c with { UnixSocket = v }, im),
            new("unixsocketperm", im, c => Convert.ToString(c.UnixSocketPerm, 8), (c, a) => c with { UnixSocketPerm = (int)ParseOctal(a[0], 0, 0x1FF) }),
            Enum("supervised", ["upstart", "systemd", "auto", "no"], c => c.Supervised, (c, v) => c with { Supervised = v }, im),
            new("shutdown-on-sigint", KvDirectiveFlags.MultiArg, c => c.ShutdownOnSigint, (c, a) => c with { ShutdownOnSigint = ParseShutdownFlags(a) })
            {
                RewriteLines = c => [SplitSpaces(c.ShutdownOnSigint)],
            },
            new("shutdown-on-sigterm", KvDirectiveFlags.MultiArg, c => c.ShutdownOnSigterm, (c, a) => c with { ShutdownOnSigterm = ParseShutdownFlags(a) })
            {
                RewriteLines = c => [SplitSpaces(c.ShutdownOnSigterm)],
            },
            Int("shutdown-timeout", 0, IntMax, c => c.ShutdownTimeout, (c, v) => c with { ShutdownTimeout = (int)v }),
            Enum("enable-debug-command", ["no", "yes", "local"], c => c.EnableDebugCommand, (c, v) => c with { EnableDebugCommand = v }, im),
            Enum("enable-module-command", ["no", "yes", "local"], c => c.EnableModuleCommand, (c, v) => c with { EnableModuleCommand = v }, im),
            Bool("daemonize", _ => false, (c, v) => v ? throw new KvConfigException("daemonize yes is not supported (run under a supervisor)") : c, im),
            // ---- h50: replication, cluster, TLS, tuning (accepted ones: KvConfigDirectives.Accepted.cs; docs/kv.md says why) ----
            KvAcceptedDirectives.ReplicaOf(),
            KvAcceptedDirectives.Str("masterauth", ""),
            KvAcceptedDirectives.Str("masteruser", ""),
            Int("min-replicas-to-write", 0, IntMax, c => c.MinReplicasToWrite, (c, v) => c with { MinReplicasToWrite = (int)v })
                with { Alias = "min-slaves-to-write" },
            Int("min-replicas-max-lag", 0, IntMax, c => c.MinReplicasMaxLag, (c, v) => c with { MinReplicasMaxLag = (int)v })
                with { Alias = "min-slaves-max-lag" },
            KvAcceptedDirectives.Memory("repl-backlog-size", 1, LongMax, 1L << 20, atLeast: 16 * 1024),
            KvAcceptedDirectives.Int("repl-backlog-ttl", 0, LongMax, 3600),
            KvAcceptedDirectives.Bool("repl-disable-tcp-nodelay", false),
            KvAcceptedDirectives.Enum("repl-diskless-load", ["disabled", "on-empty-db", "swapdb"], "disabled"),
            KvAcceptedDirectives.Bool("repl-diskless-sync", true),
            KvAcceptedDirectives.Int("repl-diskless-sync-delay", 0, IntMax, 5),
            KvAcceptedDirectives.Int("repl-diskless-sync-max-replicas", 0, IntMax, 0),
            KvAcceptedDirectives.Int("repl-ping-replica-period", 1, IntMax, 10, alias: "repl-ping-slave-period"),
            KvAcceptedDirectives.Int("repl-timeout", 1, IntMax, 60),
            KvAcceptedDirectives.Str("replica-announce-ip", "", alias: "slave-announce-ip"),
            KvAcceptedDirectives.Int("replica-announce-port", 0, 65535, 0, alias: "slave-announce-port"),
            KvAcceptedDirectives.Bool("replica-announced", true),
            KvAcceptedDirectives.Bool("replica-ignore-disk-write-errors", false),
            KvAcceptedDirectives.Bool("replica-ignore-maxmemory", true, alias: "slave-ignore-maxmemory"),
            KvAcceptedDirectives.Bool("replica-lazy-flush", false, alias: "slave-lazy-flush"),
            KvAcceptedDirectives.Int("replica-priority", 0, IntMax, 100, alias: "slave-priority"),
            KvAcceptedDirectives.Bool("replica-read-only", true, alias: "slave-read-only"),
            KvAcceptedDirectives.Bool("replica-serve-stale-data", true, alias: "slave-serve-stale-data"),
            KvAcceptedDirectives.Enum("propagation-error-behavior", ["ignore", "panic", "panic-on-replicas"], "ignore"),
            KvAcceptedDirectives.Bool("cluster-allow-pubsubshard-when-down", true),
            KvAcceptedDirectives.Bool("cluster-allow-reads-when-down", false),
            KvAcceptedDirectives.Bool("cluster-allow-replica-migration", true),
            KvAcceptedDirectives.Int("cluster-announce-bus-port", 0, 65535, 0),
            KvAcceptedDirectives.Str("cluster-announce-hostname", "", validate: KvAcceptedDirectives.ValidateHostname),
            KvAcceptedDirectives.Str("cluster-announce-ip", ""),
            KvAcceptedDirectives.Int("cluster-announce-port", 0, 65535, 0),
            KvAcceptedDirectives.Int("cluster-announce-tls-port", 0, 65535, 0),
            KvAcceptedDirectives.Str("cluster-config-file", "nodes.conf", im),
            Bool("cluster-enabled", _ => false,
                (c, v) => v ? throw new KvConfigException("cluster-enabled yes is not supported (EioSharp.Kv runs standalone)") : c, im),
            KvAcceptedDirectives.Memory("cluster-link-sendbuf-limit", 0, LongMax, 0, unsignedValue: true),
            KvAcceptedDirectives.Int("cluster-migration-barrier", 0, IntMax, 1),
            KvAcceptedDirectives.Int("cluster-node-timeout", 0, LongMax, 15000),
            KvAcceptedDirectives.Int("cluster-port", 0, 65535, 0, im),
            KvAcceptedDirectives.Enum("cluster-preferred-endpoint-type", ["ip", "hostname", "unknown-endpoint"], "ip"),
            KvAcceptedDirectives.Bool("cluster-replica-no-failover", false, alias: "cluster-slave-no-failover"),
            KvAcceptedDirectives.Int("cluster-replica-validity-factor", 0, IntMax, 10, alias: "cluster-slave-validity-factor"),
            KvAcceptedDirectives.Bool("cluster-require-full-coverage", true),
            Int("tls-port", 0, 65535, _ => 0,
                (c, v) => v != 0 ? throw new KvConfigException("tls-port must be 0: EioSharp.Kv does not support TLS") : c),
            KvAcceptedDirectives.Enum("tls-auth-clients", ["no", "yes", "optional"], "yes"),
            KvAcceptedDirectives.Str("tls-ca-cert-dir", ""),
            KvAcceptedDirectives.Str("tls-ca-cert-file", ""),
            KvAcceptedDirectives.Str("tls-cert-file", ""),
            KvAcceptedDirectives.Str("tls-ciphers", ""),
            KvAcceptedDirectives.Str("tls-ciphersuites", ""),
            KvAcceptedDirectives.Str("tls-client-cert-file", ""),
            KvAcceptedDirectives.Str("tls-client-key-file", ""),
            KvAcceptedDirectives.Str("tls-client-key-file-pass", ""),
            Bool("tls-cluster", _ => false, (c, v) => v ? throw new KvConfigException("tls-cluster yes is not supported: EioSharp.Kv does not support TLS") : c),
            KvAcceptedDirectives.Str("tls-dh-params-file", ""),
            KvAcceptedDirectives.Str("tls-key-file", ""),
            KvAcceptedDirectives.Str("tls-key-file-pass", ""),
            KvAcceptedDirectives.Bool("tls-prefer-server-ciphers", false),
            KvAcceptedDirectives.Str("tls-protocols", ""),
            Bool("tls-replication", _ => false, (c, v) => v ? throw new KvConfigException("tls-replication yes is not supported: EioSharp.Kv does not support TLS") : c),
            KvAcceptedDirectives.Int("tls-session-cache-size", 0, IntMax, 20480),
            KvAcceptedDirectives.Int("tls-session-cache-timeout", 0, IntMax, 300),
            KvAcceptedDirectives.Bool("tls-session-caching", true),
            KvAcceptedDirectives.Bool("lazyfree-lazy-eviction", false),
            KvAcceptedDirectives.Bool("lazyfree-lazy-expire", false),
            KvAcceptedDirectives.Bool("lazyfree-lazy-server-del", false),
            KvAcceptedDirectives.Bool("lazyfree-lazy-user-del", false),
            KvAcceptedDirectives.Bool("lazyfree-lazy-user-flush", false),
            Bool("activedefrag", _ => false, (c, v) => v ? throw new KvConfigException("Active defragmentation cannot be enabled: it requires a " +
                "Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution") : c),
            KvAcceptedDirectives.Int("active-defrag-cycle-max", 1, 99, 25),
            KvAcceptedDirectives.Int("active-defrag-cycle-min", 1, 99, 1),
            KvAcceptedDirectives.Memory("active-defrag-ignore-bytes", 1, LongMax, 100L << 20),
            KvAcceptedDirectives.Int("active-defrag-max-scan-fields", 1, LongMax, 1000),
            KvAcceptedDirectives.Int("active-defrag-threshold-lower", 0, 1000, 10),
            KvAcceptedDirectives.Int("active-defrag-threshold-upper", 0, 1000, 100),
            KvAcceptedDirectives.Bool("activerehashing", true),
            KvAcceptedDirectives.Bool("dynamic-hz", true),
            KvAcceptedDirectives.Bool("always-show-logo", false, im),
            KvAcceptedDirectives.Bool("crash-log-enabled", true),
            KvAcceptedDirectives.Bool("crash-memcheck-enabled", true),
            KvAcceptedDirectives.Bool("disable-thp", true, im),
            KvAcceptedDirectives.Bool("jemalloc-bg-thread", true),
            KvAcceptedDirectives.Str("ignore-warnings", ""),
            KvAcceptedDirectives.Str("server_cpulist", "", im),
            KvAcceptedDirectives.Str("bio_cpulist", "", im),
            KvAcceptedDirectives.Str("aof_rewrite_cpulist", "", im),
            KvAcceptedDirectives.Str("bgsave_cpulist", "", im),
            KvAcceptedDirectives.Int("socket-mark-id", 0, uint.MaxValue, 0, im),
            KvAcceptedDirectives.Str("bind-source-addr", ""),
            Enum("enable-protected-configs", ["no", "yes", "local"], _ => "no", (c, v) => v != "no"
                ? throw new KvConfigException("enable-protected-configs: only 'no' is supported (EioSharp.Kv cannot move dir or dbfilename at run time)")
                : c, im),
            KvAcceptedDirectives.Bool("io-threads-do-reads", false, im),
            KvAcceptedDirectives.Enum("oom-score-adj", ["no", "yes", "relative", "absolute"], "no"),
            KvAcceptedDirectives.OomScoreAdjValues(),
            KvAcceptedDirectives.Bool("set-proc-title", true, im),
            KvAcceptedDirectives.Str("proc-title-template", "{title} {listen-addr} {server-mode}", validate: KvAcceptedDirectives.ValidateProcTitleTemplate),
            Bool("syslog-enabled", _ => false,
                (c, v) => v ? throw new KvConfigException("syslog-enabled yes is not supported (the log goes to standard output or logfile)") : c, im),
            KvAcceptedDirectives.Str("syslog-ident", "redis", im),
            KvAcceptedDirectives.Enum("syslog-facility", ["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"], "local0", im),
            Int("maxmemory-eviction-tenacity", 0, 100, c => c.MaxMemoryEvictionTenacity, (c, v) => c with { MaxMemoryEvictionTenacity = (int)v }),
            Bool("latency-tracking", c => c.LatencyTracking, (c, v) => c with { LatencyTracking = v }),
            KvAcceptedDirectives.LatencyPercentiles(),
        ];
    }

    /// <summary>The names of Redis's shutdown flags (shutdown-on-sigint, shutdown-on-sigterm), in the order CONFIG GET lists them.</summary>
    private static readonly string[] s_shutdownFlags = ["save", "nosave", "now", "force"];

    /// <summary>Redis's flags enum of shutdown-on-sigint/sigterm: one or more of default, save, nosave, now, force (any
    /// case, repeats allowed); SAVE with NOSAVE refused. Returns the value as CONFIG GET shows it: the flags set, in
    /// Redis's order, or <c>default</c> when none.</summary>
    public static string ParseShutdownFlags(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var set = new bool[s_shutdownFlags.Length];
        args = [.. args.SelectMany(SplitSpaces)]; // a config file's one quoted value is split as Redis splits a multi-arg value
        if (args.Count == 0) throw new KvConfigException("argument(s) must be one of the following: default, save, nosave, now, force");
        foreach (string arg in args)
        {
            string v = arg.ToLowerInvariant();
            if (v == "default") continue;
            int i = Array.IndexOf(s_shutdownFlags, v);
            if (i < 0) throw new KvConfigException("argument(s) must be one of the following: default, save, nosave, now, force");
            set[i] = true;
        }
        if (set[0] && set[1]) throw new KvConfigException("shutdown options SAVE and NOSAVE can't be used simultaneously");
        string[] names = [.. s_shutdownFlags.Where((_, i) => set[i])];
        return names.Length == 0 ? "default" : string.Join(' ', names);
    }

    /// <summary>Redis's octal argument (unixsocketperm: strtoll base 8, the whole text) within [min, max]; the range error
    /// shows the bounds in octal, as Redis.</summary>
    public static long ParseOctal(string value, long min, long max)
    {
        ArgumentNullException.ThrowIfNull(value);
        string v = value.TrimStart(' ', '\t', '\n', '\v', '\f', '\r');
        bool negative = v.StartsWith('-');
        if (v.StartsWith('-') || v.StartsWith('+')) v = v[1..];
        long n = 0;
        foreach (char ch in v)
        {
            if (ch is < '0' or > '7') throw new KvConfigException("argument couldn't be parsed as an octal number");
            n = Math.Min(n * 8 + (ch - '0'), long.MaxValue / 16);
        }
        if (negative) n = -n;
        return n < min || n > max
            ? throw new KvConfigException($"argument must be between {Convert.ToString(min, 8)} and {Convert.ToString(max, 8)} inclusive")
            : n;
    }

    private static string FormatOutputLimits(KvServerConfig c) =>
        $"normal {I(c.NormalOutputHardLimit)} {I(c.NormalOutputSoftLimit)} {I(c.NormalOutputSoftSeconds)} slave 268435456 67108864 60 " +
        $"pubsub {I(c.PubSubOutputHardLimit)} {I(c.PubSubOutputSoftLimit)} {I((long)c.PubSubOutputSoftSeconds.TotalSeconds)}";

    private static KvServerConfig ParseOutputLimits(KvServerConfig c, IReadOnlyList<string> args)
    {
        if (args.Count > 0 && args.All(a => a.Length == 0)) return c; // CONFIG SET client-output-buffer-limit "": no change, as redis-server 7.0.15
        if (args.Count == 0 || args.Count % 4 != 0) throw new KvConfigException("Wrong number of arguments in buffer limit configuration.");
        var result = c;
        for (int i = 0; i < args.Count; i += 4)
        {
            string cls = args[i].ToLowerInvariant();
            if (cls is not ("normal" or "slave" or "replica" or "pubsub")) throw new KvConfigException("Invalid client class specified in buffer limit configuration.");
            long? hard = TryParseMemory(args[i + 1]), soft = TryParseMemory(args[i + 2]);
            bool secondsOk = RespNumbers.TryParseInt64(Encoding.ASCII.GetBytes(args[i + 3]), out long seconds) && seconds >= 0;
            if (hard is null || soft is null || !secondsOk) throw new KvConfigException("Error in hard, soft or soft_seconds setting in buffer limit configuration.");
            result = cls switch
            {
                "normal" => result with { NormalOutputHardLimit = hard.Value, NormalOutputSoftLimit = soft.Value, NormalOutputSoftSeconds = seconds },
                "pubsub" => result with
                {
                    PubSubOutputHardLimit = hard.Value, PubSubOutputSoftLimit = soft.Value, PubSubOutputSoftSeconds = TimeSpan.FromSeconds(seconds),
                },
                _ => result, // no replicas: accepted, not kept
            };
        }
        return result;
    }

    private static KvServerConfig ParseSave(KvServerConfig c, IReadOnlyList<string> args)
    {
        if (args.Count == 1 && args[0].Length == 0) return c with { Save = "" };
        if (args.Count % 2 != 0) throw new KvConfigException("Invalid save parameters");
        foreach (string a in args)
        {
            if (!RespNumbers.TryParseInt64(Encoding.ASCII.GetBytes(a), out long v) || v < 0) throw new KvConfigException("Invalid save parameters");
        }
        return c with { Save = string.Join(' ', args) };
    }
}
