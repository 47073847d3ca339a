using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Factories for the directives EioSharp.Kv accepts with Redis 7.0.15's validation but that cannot mean anything
/// here (replication, cluster, TLS, allocator and process tuning: docs/kv.md says why for each). Their values live in
/// <see cref="KvServerConfig.AcceptedDirectives"/> (by Redis name), so CONFIG GET shows what was set and CONFIG REWRITE
/// writes it back.</summary>
internal static class KvAcceptedDirectives
{
    private static string Get(KvServerConfig c, string name, string defaultValue) =>
        c.AcceptedDirectives.TryGetValue(name, out string? v) ? v : defaultValue;

    private static KvServerConfig Put(KvServerConfig c, string name, string value) =>
        c with { AcceptedDirectives = c.AcceptedDirectives.SetItem(name, value) };

    /// <summary>A yes/no directive (Redis's createBoolConfig).</summary>
    public static KvConfigDirective Bool(string name, bool defaultValue, KvDirectiveFlags flags = KvDirectiveFlags.None, string? alias = null) =>
        new(name, flags, c => Get(c, name, defaultValue ? "yes" : "no"),
            (c, a) => Put(c, name, KvConfigDirectives.ParseBool(a[0]) ? "yes" : "no")) { Alias = alias };

    /// <summary>An integer directive within [min, max] (createIntConfig, createLongLongConfig...).</summary>
    public static KvConfigDirective Int(string name, long min, long max, long defaultValue, KvDirectiveFlags flags = KvDirectiveFlags.None,
        string? alias = null) =>
        new(name, flags, c => Get(c, name, defaultValue.ToString(CultureInfo.InvariantCulture)),
            (c, a) => Put(c, name, KvConfigDirectives.ParseInt(a[0], min, max).ToString(CultureInfo.InvariantCulture))) { Alias = alias };

    /// <summary>A memory directive (MEMORY_CONFIG: units kb, mb...; CONFIG GET shows bytes, CONFIG REWRITE the largest exact
    /// unit). unsignedValue: Redis keeps it in an unsigned long long (cluster-link-sendbuf-limit): up to 2^64-1, no range error.
    /// atLeast: what Redis's apply function raises a smaller value to (repl-backlog-size: 16 KB, CONFIG_REPL_BACKLOG_MIN_SIZE).</summary>
    public static KvConfigDirective Memory(string name, long min, long max, long defaultValue, KvDirectiveFlags flags = KvDirectiveFlags.None,
        bool unsignedValue = false, long atLeast = 0)
    {
        string Value(KvServerConfig c) => Get(c, name, defaultValue.ToString(CultureInfo.InvariantCulture));
        return new(name, flags, Value, (c, a) => Put(c, name, unsignedValue
            ? (KvConfigDirectives.TryParseMemoryUnsigned(a[0]) ?? throw new KvConfigException("argument must be a memory value")).ToString(CultureInfo.InvariantCulture)
            : Math.Max(atLeast, KvConfigDirectives.ParseMemory(a[0], min, max)).ToString(CultureInfo.InvariantCulture)))
        {
            RewriteLines = c => [[long.TryParse(Value(c), CultureInfo.InvariantCulture, out long v) ? KvConfigDirectives.FormatBytes(v) : Value(c)]],
        };
    }

    /// <summary>An enumerated directive (createEnumConfig): one of <paramref name="values"/>, case-insensitive.</summary>
    public static KvConfigDirective Enum(string name, string[] values, string defaultValue, KvDirectiveFlags flags = KvDirectiveFlags.None) =>
        new(name, flags, c => Get(c, name, defaultValue), (c, a) =>
        {
            string v = a[0].ToLowerInvariant();
            if (!values.Contains(v)) throw new KvConfigException("argument(s) must be one of the following: " + string.Join(", ", values));
            return Put(c, name, v);
        });

    /// <summary>A string directive (createStringConfig / createSDSConfig): any value, unless <paramref name="validate"/>
    /// throws <see cref="KvConfigException"/> with Redis's text. CONFIG REWRITE quotes it, as Redis's sdscatrepr.</summary>
    public static KvConfigDirective Str(string name, string defaultValue, KvDirectiveFlags flags = KvDirectiveFlags.None, string? alias = null,
        Action<string>? validate = null) =>
        new(name, flags, c => Get(c, name, defaultValue), (c, a) =>
        {
            validate?.Invoke(a[0]);
            return Put(c, name, a[0]);
        })
        {
            Alias = alias,
            QuotedOnRewrite = true,
        };

    /// <summary>Redis 7.0's isValidAnnouncedHostname (cluster-announce-hostname): letters, digits, '-' and '.' only.</summary>
    public static void ValidateHostname(string value)
    {
        if (!value.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.'))
        {
            throw new KvConfigException("Hostnames may only contain alphanumeric characters, hyphens or dots");
        }
    }

    /// <summary>Redis 7.0's validateProcTitleTemplate: the template must expand (known variables {title},
    /// {listen-addr}, {server-mode}, {port}, {tls-port}, {unixsocket}, {config-file}; "{{" and "}}" are literal braces)
    /// to something that is not blank.</summary>
    public static void ValidateProcTitleTemplate(string template)
    {
        const string Error = "template format is invalid or contains unknown variables";
        var expanded = new StringBuilder();
        for (int i = 0; i < template.Length; i++)
        {
            char ch = template[i];
            if (ch == '{' && i + 1 < template.Length && template[i + 1] == '{')
            {
                expanded.Append('{');
                i++;
            }
            else if (ch == '}' && i + 1 < template.Length && template[i + 1] == '}')
            {
                expanded.Append('}');
                i++;
            }
            else if (ch == '{')
            {
                int end = template.IndexOf('}', i + 1);
                if (end < 0) throw new KvConfigException(Error);
                expanded.Append(template.AsSpan(i + 1, end - i - 1) switch
                {
                    "title" => "eiosharp-kv",
                    "listen-addr" => "127.0.0.1:6379",
                    "server-mode" or "unixsocket" or "config-file" => "",
                    "port" or "tls-port" => "0",
                    _ => throw new KvConfigException(Error),
                });
                i = end;
            }
            else
            {
                expanded.Append(ch);
            }
        }
        if (expanded.ToString().Trim(' ').Length == 0) throw new KvConfigException(Error);
    }

    /// <summary>oom-score-adj-values: three integers in [-2000, 2000] (master, replica, background child), as Redis 7.0.</summary>
    public static KvConfigDirective OomScoreAdjValues() =>
        new("oom-score-adj-values", KvDirectiveFlags.MultiArg, c => Get(c, "oom-score-adj-values", "0 200 800"), (c, a) =>
        {
            if (a.Count != 3) throw new KvConfigException("wrong number of arguments");
            var values = new long[3];
            for (int i = 0; i < 3; i++)
            {
                if (!RespNumbers.TryParseInt64(Encoding.ASCII.GetBytes(a[i]), out values[i]) || values[i] < -2000 || values[i] > 2000)
                {
                    throw new KvConfigException("Invalid oom-score-adj-values, elements must be between -2000 and 2000.");
                }
            }
            return Put(c, "oom-score-adj-values", string.Join(' ', values.Select(v => v.ToString(CultureInfo.InvariantCulture))));
        })
        {
            RewriteLines = c => [[.. KvConfigDirectives.SplitSpaces(Get(c, "oom-score-adj-values", "0 200 800"))]],
        };

    /// <summary>replicaof / slaveof: "no one" (a master, CONFIG GET shows "") is accepted; a master's address is refused
    /// at start, as EioSharp.Kv does not replicate (CONFIG SET answers Redis's immutable error).</summary>
    public static KvConfigDirective ReplicaOf() =>
        new("replicaof", KvDirectiveFlags.Immutable | KvDirectiveFlags.MultiArg, _ => "", (c, a) =>
        {
            if (a.Count != 2) throw new KvConfigException("wrong number of arguments");
            if (a[0].Equals("no", StringComparison.OrdinalIgnoreCase) && a[1].Equals("one", StringComparison.OrdinalIgnoreCase)) return c;
            if (!int.TryParse(a[1], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
            {
                throw new KvConfigException("Invalid master port");
            }
            throw new KvConfigException("replicaof: EioSharp.Kv does not replicate; it always runs as a master (remove the directive)");
        })
        {
            Alias = "slaveof",
            RewriteLines = _ => [],
        };

    /// <summary>latency-tracking-info-percentiles: numbers in [0, 100] separated by spaces (may be empty), as Redis 7.0.</summary>
    public static KvConfigDirective LatencyPercentiles() =>
        new("latency-tracking-info-percentiles", KvDirectiveFlags.MultiArg, c => FormatPercentiles(c.LatencyTrackingInfoPercentiles), (c, a) =>
        {
            var list = new List<double>();
            foreach (string s in a)
            {
                if (s.Length == 0) continue;
                if (!TryParseDouble(s, out double p)) throw new KvConfigException("Invalid latency-tracking-info-percentiles parameters");
                if (p < 0 || p > 100) throw new KvConfigException("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]");
                list.Add(p);
            }
            return c with { LatencyTrackingInfoPercentiles = [.. list] };
        })
        {
            RewriteLines = c => [[.. c.LatencyTrackingInfoPercentiles.Select(FormatPercentile)]],
        };

    /// <summary>A percentile as Redis prints it (<c>%f</c> with trailing zeros and point removed: 99.9, 50).</summary>
    public static string FormatPercentile(double p)
    {
        string s = p.ToString("F6", CultureInfo.InvariantCulture);
        return s.Contains('.', StringComparison.Ordinal) ? s.TrimEnd('0').TrimEnd('.') : s;
    }

    private static string FormatPercentiles(IReadOnlyList<double> ps) => string.Join(' ', ps.Select(FormatPercentile));

    /// <summary>strtod as Redis's string2d uses it: decimal with optional exponent, or a 0x hexadecimal integer; no blanks.</summary>
    private static bool TryParseDouble(string s, out double value)
    {
        value = 0;
        if (s.Length == 0 || char.IsWhiteSpace(s[0])) return false;
        string body = s.TrimStart('+', '-');
        bool negative = s.StartsWith('-');
        if (body.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (!long.TryParse(body.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long hex)) return false;
            value = negative ? -hex : hex;
            return true;
        }
        return double.TryParse(s, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
            CultureInfo.InvariantCulture, out value) && double.IsFinite(value);
    }

    /// <summary>Redis's evictionTimeLimitUs: how long one eviction pass may run for a maxmemory-eviction-tenacity
    /// (0..10: 50 us a step, 11..99: 15% more a step, 100: no limit).</summary>
    public static TimeSpan EvictionTimeLimit(int tenacity) =>
        tenacity <= 10 ? TimeSpan.FromMicroseconds(50L * Math.Max(0, tenacity))
        : tenacity < 100 ? TimeSpan.FromMicroseconds((long)(500.0 * Math.Pow(1.15, tenacity - 10.0)))
        : TimeSpan.MaxValue;

    /// <summary>The empty set of accepted-directive values.</summary>
    public static ImmutableDictionary<string, string> Empty { get; } = ImmutableDictionary.Create<string, string>(StringComparer.Ordinal);
}
