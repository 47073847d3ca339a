using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>One SLOWLOG entry.</summary>
/// <param name="Id">Increasing id.</param>
/// <param name="UnixSeconds">When the command ran.</param>
/// <param name="Micros">How long it ran, in microseconds.</param>
/// <param name="Args">Its arguments, shortened as Redis does (at most 32, each at most 128 bytes).</param>
/// <param name="ClientAddress">The client's address.</param>
/// <param name="ClientName">The client's name (empty when none).</param>
public sealed record KvSlowLogEntry(long Id, long UnixSeconds, long Micros, IReadOnlyList<byte[]> Args, string ClientAddress, string ClientName);

/// <summary>Per-command and per-error statistics (INFO commandstats, errorstats, latencystats), the slow log (SLOWLOG) and the
/// latency monitor (LATENCY), shared by the connections and the store owner.</summary>
/// <remarks><b>Thread safety</b>: every member may be called from any domain. <see cref="Record"/>, called for every
/// command, takes no lock on its usual path: each thread counts into its own shard (per-command counters only that thread
/// writes), and the readers (INFO) add the shards up under the lock; a command that failed, was slow or went over the
/// latency threshold takes the lock for the error, slow-log and latency tables, as does <see cref="RecordRejected"/>.
/// CONFIG RESETSTAT (<see cref="Reset"/>) starts a new generation: readers skip the shards of older ones, and each thread
/// empties its own shard at its next command. A reader may miss a command that is being counted at the same moment (as a
/// command still running on another domain).</remarks>
public sealed class KvCommandStats
{
    private const int SlowLogMaxArgs = 32; // Redis SLOWLOG_ENTRY_MAX_ARGC
    private const int SlowLogMaxString = 128; // Redis SLOWLOG_ENTRY_MAX_STRING
    private const int LatencyHistoryLength = 160; // Redis LATENCY_TS_LEN

    private readonly object _lock = new();
    private readonly Dictionary<int, Shard> _shards = []; // by managed thread id (a dead thread's id, reused, takes its shard over)
    private readonly Dictionary<string, long> _rejected = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly LinkedList<KvSlowLogEntry> _slowLog = new();
    private readonly Dictionary<string, LatencyEvent> _latency = new(StringComparer.Ordinal);
    private long _nextSlowLogId;
    private int _recorderShards; // KvCommandRecorder shards registered (their keys in _shards: -1, -2, ...)
    private long _totalErrorReplies;
    private volatile int _generation; // CONFIG RESETSTAT increments it

    // The calling thread's shard of the instance it last recorded into (one look-up under the lock per thread and instance).
    [ThreadStatic] private static KvCommandStats? t_owner;
    [ThreadStatic] private static Shard? t_shard;

    internal sealed class CommandCounters
    {
        public long Calls;
        public long Micros;
        public long Failed;
        public readonly long[] Histogram = new long[64]; // bucket i: durations in [2^(i-1), 2^i) microseconds
    }

    /// <summary>One thread's counters (or one <see cref="KvCommandRecorder"/>'s): written by that thread only (no lock),
    /// read by any under <see cref="_lock"/>.</summary>
    internal sealed class Shard
    {
        public readonly ConcurrentDictionary<string, CommandCounters> Commands = new(StringComparer.Ordinal);
        public string? LastName; // the last command's name (table names are interned: one reference compare per command)
        public CommandCounters? LastCounters;
        public volatile int Generation;

        public CommandCounters Counters(string name)
        {
            if (!ReferenceEquals(name, LastName))
            {
                if (!Commands.TryGetValue(name, out CommandCounters? c)) c = Commands.GetOrAdd(name, static _ => new CommandCounters());
                LastCounters = c;
                LastName = name;
            }
            return LastCounters!;
        }

        /// <summary>CONFIG RESETSTAT happened: forget the counts (on the owning thread), then join the new generation.</summary>
        public void Restart(int generation)
        {
            Commands.Clear();
            LastName = null;
            LastCounters = null;
            Generation = generation;
        }
    }

    private sealed class LatencyEvent
    {
        public readonly List<(long UnixSeconds, long Ms)> History = [];
        public long Max;
    }

    private Shard LocalShard()
    {
        if (ReferenceEquals(t_owner, this)) return t_shard!;
        Shard shard;
        lock (_lock)
        {
            int thread = Environment.CurrentManagedThreadId;
            if (!_shards.TryGetValue(thread, out shard!)) _shards[thread] = shard = new Shard { Generation = _generation };
        }
        t_owner = this;
        t_shard = shard;
        return shard;
    }

    /// <summary>Error replies since start (or CONFIG RESETSTAT).</summary>
    public long TotalErrorReplies
    {
        get
        {
            lock (_lock) return _totalErrorReplies;
        }
    }

    /// <summary>The wall clock in Unix milliseconds, for <see cref="Record"/> called without a time.</summary>
    public Func<long>? Clock { get; set; }

    /// <summary>Records a command that ran: counts it, adds it to the slow log when it was slow, and to the latency monitor.</summary>
    /// <param name="name">The command's name as in INFO commandstats (<c>get</c>, <c>client|list</c>).</param>
    /// <param name="command">The command (for the slow log).</param>
    /// <param name="micros">How long it ran.</param>
    /// <param name="error">The error reply it gave (for errorstats: its first word), or null.</param>
    /// <param name="config">The configuration in force (slowlog and latency thresholds).</param>
    /// <param name="nowUnixMs">The time; negative: read from <see cref="Clock"/> only if an entry needs it (a slow-log entry or a
    /// latency sample), so that a command that needs neither costs no clock read.</param>
    /// <param name="clientAddress">The client's address.</param>
    /// <param name="clientName">The client's name.</param>
    public void Record(string name, KvCommand command, long micros, string? error, KvServerConfig config, long nowUnixMs,
        string clientAddress, string? clientName)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(config);
        if (Count(LocalShard(), name, micros, error, config, out bool slow, out bool latency)) return; // the usual command: no lock
        RecordUnderLock(command, micros, error, config, nowUnixMs, slow, latency, clientAddress, clientName);
    }

    /// <summary>A new shard of its own for a <see cref="KvCommandRecorder"/> (registered under a key no thread has).</summary>
    internal Shard NewRecorderShard()
    {
        lock (_lock)
        {
            var shard = new Shard { Generation = _generation };
            _shards[-1 - _recorderShards++] = shard; // thread ids are positive
            return shard;
        }
    }

    /// <summary>Counts a command in <paramref name="shard"/> (its calling thread's); true when nothing more is to be
    /// done (no error, not slow, under the latency threshold: no lock).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal bool Count(Shard shard, string name, long micros, string? error, KvServerConfig config, out bool slow, out bool latency)
    {
        int generation = _generation;
        if (shard.Generation != generation) shard.Restart(generation);
        CommandCounters c = shard.Counters(name);
        c.Calls++;
        c.Micros += micros;
        if (config.LatencyTracking) c.Histogram[Math.Min(63, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)Math.Max(0, micros)))]++; // latency-tracking (h50)
        if (error is not null) c.Failed++;
        slow = config.SlowlogLogSlowerThan >= 0 && micros >= config.SlowlogLogSlowerThan && config.SlowlogMaxLen > 0;
        latency = config.LatencyMonitorThreshold > 0 && micros / 1000 >= config.LatencyMonitorThreshold;
        return error is null && !slow && !latency;
    }

    /// <summary>What <see cref="Record"/> does under the lock for a command that failed, was slow or went over the
    /// latency threshold.</summary>
    internal void RecordUnderLock(KvCommand command, long micros, string? error, KvServerConfig config, long nowUnixMs, bool slow,
        bool latency, string clientAddress, string? clientName)
    {
        lock (_lock)
        {
            if (error is not null) CountError(error);
            if (slow)
            {
                if (nowUnixMs < 0) nowUnixMs = Clock?.Invoke() ?? 0;
                _slowLog.AddFirst(new KvSlowLogEntry(_nextSlowLogId++, nowUnixMs / 1000, micros, SlowLogArgs(command), clientAddress, clientName ?? ""));
                while (_slowLog.Count > config.SlowlogMaxLen) _slowLog.RemoveLast();
            }
            if (latency)
            {
                if (nowUnixMs < 0) nowUnixMs = Clock?.Invoke() ?? 0;
                AddLatencySample("command", nowUnixMs / 1000, micros / 1000);
            }
        }
    }

    /// <summary>Counts an error reply that no command recorded (unknown command, wrong arity, NOAUTH): errorstats and rejected_calls.</summary>
    public void RecordRejected(string? name, string error)
    {
        ArgumentNullException.ThrowIfNull(error);
        lock (_lock)
        {
            CountError(error);
            if (name is not null) _rejected[name] = _rejected.GetValueOrDefault(name) + 1;
        }
    }

    private void CountError(string error)
    {
        _totalErrorReplies++;
        int space = error.IndexOf(' ', StringComparison.Ordinal);
        string prefix = space < 0 ? error : error[..space];
        _errors[prefix] = _errors.GetValueOrDefault(prefix) + 1;
    }

    private void AddLatencySample(string eventName, long unixSeconds, long ms)
    {
        if (!_latency.TryGetValue(eventName, out LatencyEvent? e)) _latency[eventName] = e = new LatencyEvent();
        if (e.History.Count > 0 && e.History[^1].UnixSeconds == unixSeconds)
        {
            // One sample per second, the largest (as Redis's latencyAddSample).
            if (ms > e.History[^1].Ms) e.History[^1] = (unixSeconds, ms);
        }
        else
        {
            e.History.Add((unixSeconds, ms));
            if (e.History.Count > LatencyHistoryLength) e.History.RemoveAt(0);
        }
        e.Max = Math.Max(e.Max, ms);
    }

    /// <summary>Whether argument <paramref name="i"/> is a secret that the slow log shows as <c>(redacted)</c>, as Redis does.</summary>
    private static bool IsSecret(KvCommand command, int i)
    {
        string name = command.Info?.Name ?? "";
        if (name == "auth") return i > 0;
        if (name == "hello") return i >= 2 && (Ascii.EqualsIgnoreCase(command[i - 1], "AUTH"u8) || (i >= 3 && Ascii.EqualsIgnoreCase(command[i - 2], "AUTH"u8)));
        if (name == "config" && i >= 3 && i % 2 == 1 && command.Count >= 2 && Ascii.EqualsIgnoreCase(command[1], "SET"u8))
            return Ascii.EqualsIgnoreCase(command[i - 1], "requirepass"u8) || Ascii.EqualsIgnoreCase(command[i - 1], "masterauth"u8);
        return false;
    }

    private static byte[][] SlowLogArgs(KvCommand command)
    {
        int n = Math.Min(command.Count, SlowLogMaxArgs);
        var args = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            if (IsSecret(command, i))
            {
                args[i] = "(redacted)"u8.ToArray();
                continue;
            }
            if (n < command.Count && i == n - 1)
            {
                args[i] = Encoding.ASCII.GetBytes($"... ({command.Count - n + 1} more arguments)");
                break;
            }
            ReadOnlySpan<byte> a = command[i];
            args[i] = a.Length > SlowLogMaxString
                ? [.. a[..SlowLogMaxString], .. Encoding.ASCII.GetBytes($"... ({a.Length - SlowLogMaxString} more bytes)")]
                : a.ToArray();
        }
        return args;
    }

    /// <summary>CONFIG RESETSTAT: command, error and latency statistics (the slow log is kept, as in Redis).</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _generation++; // the shards are emptied by their threads; readers skip them until then
            _rejected.Clear();
            _errors.Clear();
            _totalErrorReplies = 0;
        }
    }

    /// <summary>SLOWLOG GET: the newest <paramref name="count"/> entries (all when negative).</summary>
    public List<KvSlowLogEntry> SlowLog(long count)
    {
        lock (_lock) return [.. count < 0 ? _slowLog : _slowLog.Take((int)Math.Min(count, int.MaxValue))];
    }

    /// <summary>SLOWLOG LEN.</summary>
    public int SlowLogLength
    {
        get
        {
            lock (_lock) return _slowLog.Count;
        }
    }

    /// <summary>SLOWLOG RESET.</summary>
    public void ResetSlowLog()
    {
        lock (_lock) _slowLog.Clear();
    }

    /// <summary>LATENCY LATEST: event, time of the latest sample, latest and all-time maximum latency (ms).</summary>
    public List<(string Event, long UnixSeconds, long LatestMs, long MaxMs)> LatencyLatest()
    {
        lock (_lock) return [.. _latency.Where(p => p.Value.History.Count > 0).Select(p => (p.Key, p.Value.History[^1].UnixSeconds, p.Value.History[^1].Ms, p.Value.Max))];
    }

    /// <summary>LATENCY HISTORY: the samples of <paramref name="eventName"/> (oldest first).</summary>
    public List<(long UnixSeconds, long Ms)> LatencyHistory(string eventName)
    {
        lock (_lock) return _latency.TryGetValue(eventName, out LatencyEvent? e) ? [.. e.History] : [];
    }

    /// <summary>LATENCY RESET: forgets the given events (all when none); returns how many were reset.</summary>
    public int ResetLatency(IReadOnlyCollection<string> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        lock (_lock)
        {
            if (events.Count == 0)
            {
                int n = _latency.Count;
                _latency.Clear();
                return n;
            }
            return events.Count(e => _latency.Remove(e));
        }
    }

    /// <summary>The INFO commandstats section body.</summary>
    public string CommandStatsText()
    {
        var sb = new StringBuilder();
        lock (_lock)
        {
            foreach (var (name, c) in Merged())
            {
                if (c.Calls == 0 && c.Rejected == 0 && c.Failed == 0) continue;
                double perCall = c.Calls == 0 ? 0 : (double)c.Micros / c.Calls;
                sb.Append(CultureInfo.InvariantCulture,
                    $"cmdstat_{name}:calls={c.Calls},usec={c.Micros},usec_per_call={perCall:0.00},rejected_calls={c.Rejected},failed_calls={c.Failed}\r\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>The INFO errorstats section body.</summary>
    public string ErrorStatsText()
    {
        var sb = new StringBuilder();
        lock (_lock)
        {
            foreach (var (prefix, count) in _errors.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                sb.Append(CultureInfo.InvariantCulture, $"errorstat_{prefix}:count={count}\r\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>The INFO latencystats section body: for each command whose latency was recorded, the percentiles of
    /// <paramref name="config"/>'s latency-tracking-info-percentiles (p50, p99, p99.9 by default) in microseconds, from
    /// power-of-two buckets (each percentile is the upper bound of its bucket); empty when latency-tracking is no (as
    /// Redis 7.0). Null config: Redis's defaults.</summary>
    public string LatencyStatsText(KvServerConfig? config = null)
    {
        config ??= s_defaultConfig;
        if (!config.LatencyTracking) return "";
        var sb = new StringBuilder();
        lock (_lock)
        {
            foreach (var (name, c) in Merged())
            {
                long recorded = 0;
                foreach (long n in c.Histogram) recorded += n;
                if (recorded == 0) continue; // no histogram (never ran while latency-tracking was on)
                sb.Append("latency_percentiles_usec_").Append(name).Append(':');
                for (int i = 0; i < config.LatencyTrackingInfoPercentiles.Count; i++)
                {
                    double p = config.LatencyTrackingInfoPercentiles[i];
                    if (i > 0) sb.Append(',');
                    sb.Append(CultureInfo.InvariantCulture, $"p{KvAcceptedDirectives.FormatPercentile(p)}={Percentile(c, p, recorded):0.000}");
                }
                sb.Append("\r\n");
            }
        }
        return sb.ToString();
    }

    private static readonly KvServerConfig s_defaultConfig = new();

    /// <summary>A command's counts over all shards of the current generation, with its rejections.</summary>
    private sealed class Totals
    {
        public long Calls, Micros, Failed, Rejected;
        public readonly long[] Histogram = new long[64];
    }

    /// <summary>The counts of every command, by name (call under the lock).</summary>
    private SortedDictionary<string, Totals> Merged()
    {
        var all = new SortedDictionary<string, Totals>(StringComparer.Ordinal);
        int generation = _generation;
        foreach (Shard shard in _shards.Values)
        {
            if (shard.Generation != generation) continue; // reset since: its thread empties it at its next command
            foreach (var (name, c) in shard.Commands)
            {
                if (!all.TryGetValue(name, out Totals? t)) all[name] = t = new Totals();
                t.Calls += c.Calls;
                t.Micros += c.Micros;
                t.Failed += c.Failed;
                for (int i = 0; i < t.Histogram.Length; i++) t.Histogram[i] += c.Histogram[i];
            }
        }
        foreach (var (name, rejected) in _rejected)
        {
            if (!all.TryGetValue(name, out Totals? t)) all[name] = t = new Totals();
            t.Rejected += rejected;
        }
        return all;
    }

    private static double Percentile(Totals c, double p, long recorded)
    {
        long target = Math.Max(1, (long)Math.Ceiling(recorded * p / 100));
        long seen = 0;
        for (int i = 0; i < c.Histogram.Length; i++)
        {
            seen += c.Histogram[i];
            if (seen >= target) return i == 0 ? 1 : Math.Pow(2, i);
        }
        return Math.Pow(2, 63);
    }
}

/// <summary>Records the commands one sequential caller runs (the store owner's thread: <see cref="KvStore.CommandRecorder"/>)
/// into <see cref="KvCommandStats"/>, as <see cref="KvCommandStats.Record"/> does for the calling thread, without a
/// delegate, a thread-static look-up of the thread's shard, or the client's address and name read per command (only for
/// a slow-log entry): §221.</summary>
/// <remarks><b>Thread safety</b>: one caller at a time (its shard is written without a lock, as a thread's is); the
/// statistics it feeds are read from any domain (INFO commandstats, CONFIG RESETSTAT: the shard is emptied at its next
/// command, as a thread's).</remarks>
public sealed class KvCommandRecorder
{
    private readonly KvCommandStats _stats;
    private readonly KvLiveConfig _config;
    private readonly KvCommandStats.Shard _shard;

    /// <summary>Creates a recorder into <paramref name="stats"/> with a shard of its own.</summary>
    /// <param name="stats">The statistics it counts into.</param>
    /// <param name="config">The configuration in force (slow-log and latency thresholds, latency-tracking), read per command.</param>
    public KvCommandRecorder(KvCommandStats stats, KvLiveConfig config)
    {
        ArgumentNullException.ThrowIfNull(stats);
        ArgumentNullException.ThrowIfNull(config);
        _stats = stats;
        _config = config;
        _shard = stats.NewRecorderShard();
    }

    /// <summary>Records a command the store ran for <paramref name="session"/>: counted under its table name
    /// (<c>unknown</c> for none), timed from <paramref name="startTimestamp"/> to <paramref name="endTimestamp"/>
    /// (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> readings; whole microseconds, as the
    /// <see cref="KvStore.CommandObserver"/> the server used before).</summary>
    /// <param name="session">The connection's session (its client's address and name go into a slow-log entry).</param>
    /// <param name="command">The command.</param>
    /// <param name="startTimestamp">When it started.</param>
    /// <param name="endTimestamp">When it ended.</param>
    /// <param name="error">Its error reply, or null.</param>
    public void Record(KvSession session, KvCommand command, long startTimestamp, long endTimestamp, string? error)
    {
        long micros = (long)System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp, endTimestamp).TotalMicroseconds;
        KvServerConfig config = _config.Current;
        if (_stats.Count(_shard, command.Info?.Name ?? "unknown", micros, error, config, out bool slow, out bool latency)) return;
        KvConnectionState? connection = session.Connection;
        _stats.RecordUnderLock(command, micros, error, config, -1, slow, latency, connection?.RemoteAddress ?? "?", connection?.Name);
    }
}
