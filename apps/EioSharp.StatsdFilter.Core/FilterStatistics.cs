using System.Globalization;
using System.Text;

namespace EioSharp.StatsdFilter;

/// <summary>One self-metric counter of the filtering proxy.</summary>
public enum FilterCounter
{
    /// <summary>Lines received (UDP and TCP), before validation.</summary>
    Received = 0,

    /// <summary>Lines forwarded to the upstream.</summary>
    Forwarded = 1,

    /// <summary>Lines dropped by the rules.</summary>
    DroppedBlocked = 2,

    /// <summary>Lines dropped because they are malformed.</summary>
    DroppedMalformed = 3,

    /// <summary>Truncated datagrams and over-long TCP lines (dropped).</summary>
    Truncated = 4,

    /// <summary>Datagrams that could not be sent upstream.</summary>
    SendErrors = 5,

    /// <summary>Lines dropped because a <c>regex:</c> rule's match timed out (fail closed); these lines are also counted in
    /// <see cref="DroppedBlocked"/>, so this is the part of it a timeout decided.</summary>
    RegexTimeouts = 6,
}

/// <summary>A point-in-time copy (or a difference) of the proxy's counters.</summary>
/// <param name="Received">Lines received.</param>
/// <param name="Forwarded">Lines forwarded.</param>
/// <param name="DroppedBlocked">Lines dropped by the rules.</param>
/// <param name="DroppedMalformed">Malformed lines dropped.</param>
/// <param name="Truncated">Truncated datagrams and over-long lines.</param>
/// <param name="SendErrors">Failed sends.</param>
/// <param name="RegexTimeouts">Lines dropped because a regular expression timed out (included in <paramref name="DroppedBlocked"/>).</param>
public readonly record struct FilterStatisticsSnapshot(
    long Received,
    long Forwarded,
    long DroppedBlocked,
    long DroppedMalformed,
    long Truncated,
    long SendErrors,
    long RegexTimeouts = 0)
{
    /// <summary>Returns the counter-by-counter difference.</summary>
    /// <param name="left">The later snapshot.</param>
    /// <param name="right">The earlier snapshot.</param>
    /// <returns><paramref name="left"/> minus <paramref name="right"/>.</returns>
    public static FilterStatisticsSnapshot operator -(FilterStatisticsSnapshot left, FilterStatisticsSnapshot right) => new(
        left.Received - right.Received,
        left.Forwarded - right.Forwarded,
        left.DroppedBlocked - right.DroppedBlocked,
        left.DroppedMalformed - right.DroppedMalformed,
        left.Truncated - right.Truncated,
        left.SendErrors - right.SendErrors,
        left.RegexTimeouts - right.RegexTimeouts);

    /// <summary>Returns the counter-by-counter difference (the named form of <c>operator -</c>).</summary>
    /// <param name="left">The later snapshot.</param>
    /// <param name="right">The earlier snapshot.</param>
    /// <returns><paramref name="left"/> minus <paramref name="right"/>.</returns>
    public static FilterStatisticsSnapshot Subtract(FilterStatisticsSnapshot left, FilterStatisticsSnapshot right) => left - right;

    /// <summary>Returns one counter by its enum value.</summary>
    /// <param name="counter">The counter.</param>
    /// <returns>Its value.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="counter"/> is not defined.</exception>
    public long this[FilterCounter counter] => counter switch
    {
        FilterCounter.Received => Received,
        FilterCounter.Forwarded => Forwarded,
        FilterCounter.DroppedBlocked => DroppedBlocked,
        FilterCounter.DroppedMalformed => DroppedMalformed,
        FilterCounter.Truncated => Truncated,
        FilterCounter.SendErrors => SendErrors,
        FilterCounter.RegexTimeouts => RegexTimeouts,
        _ => throw new ArgumentOutOfRangeException(nameof(counter)),
    };

    /// <summary>Renders the counters as StatsD counter lines, <c>&lt;prefix&gt;.received:123|c</c>, one per counter, joined by <c>\n</c>.</summary>
    /// <param name="prefix">The metric name prefix, without trailing dot.</param>
    /// <returns>Seven lines in <see cref="FilterCounter"/> order, with no trailing newline.</returns>
    public string ToStatsdLines(string prefix)
    {
        var builder = new StringBuilder();
        for (int i = 0; i < FilterStatistics.CounterNames.Length; i++)
        {
            if (i > 0)
            {
                builder.Append('\n');
            }

            builder.Append(prefix).Append('.').Append(FilterStatistics.CounterNames[i]).Append(':')
                .Append(this[(FilterCounter)i].ToString(CultureInfo.InvariantCulture)).Append("|c");
        }

        return builder.ToString();
    }

    /// <summary>Returns a one-line human-readable summary, e.g. <c>received=10 forwarded=8 ...</c>.</summary>
    /// <returns>The summary.</returns>
    public override string ToString()
    {
        var builder = new StringBuilder();
        for (int i = 0; i < FilterStatistics.CounterNames.Length; i++)
        {
            if (i > 0)
            {
                builder.Append(' ');
            }

            builder.Append(FilterStatistics.CounterNames[i]).Append('=')
                .Append(this[(FilterCounter)i].ToString(CultureInfo.InvariantCulture));
        }

        return builder.ToString();
    }
}

/// <summary>Thread-safe self-metric counters of the filtering proxy, sharded to avoid contention between domains.</summary>
/// <remarks>
/// <para>
/// Each shard (use one per domain: pass the domain index) keeps its counters on its own cache lines,
/// so domains counting at high rates do not share a cache line. Updates use
/// <see cref="Interlocked"/>, so several fibers or threads may share a shard.
/// </para>
/// <para>
/// <see cref="Snapshot"/> sums the shards; it is not an atomic cut across counters (a line counted
/// as received may not yet be counted as forwarded).
/// </para>
/// <para><b>Thread safety</b>: every member is thread-safe.</para>
/// </remarks>
public sealed class FilterStatistics
{
    /// <summary>The StatsD names of the counters, in <see cref="FilterCounter"/> order.</summary>
    internal static readonly string[] CounterNames =
        ["received", "forwarded", "dropped_blocked", "dropped_malformed", "truncated", "send_errors", "regex_timeouts"];

    // 16 longs = 128 bytes per shard: covers adjacent-line prefetching on x64 and 128-byte lines on arm64.
    private const int Stride = 16;
    private const int CounterCount = 7;

    private readonly long[] _counters;
    private readonly Lock _emitLock = new();
    private FilterStatisticsSnapshot _lastEmitted;

    /// <summary>Creates the counters.</summary>
    /// <param name="shardCount">The number of shards, at least 1 (typically the number of domains).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="shardCount"/> is less than 1.</exception>
    public FilterStatistics(int shardCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        ShardCount = shardCount;
        // One extra stride in front keeps shard 0 off the array header's cache line.
        _counters = new long[(shardCount + 1) * Stride];
    }

    /// <summary>The number of shards.</summary>
    public int ShardCount { get; }

    /// <summary>Adds to a counter.</summary>
    /// <param name="counter">The counter.</param>
    /// <param name="amount">The amount to add (may be zero).</param>
    /// <param name="shard">The caller's shard, typically the domain index (taken modulo <see cref="ShardCount"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="counter"/> is not a defined <see cref="FilterCounter"/>.</exception>
    public void Add(FilterCounter counter, long amount = 1, int shard = 0)
    {
        if ((uint)counter >= CounterCount)
        {
            throw new ArgumentOutOfRangeException(nameof(counter));
        }

        Interlocked.Add(ref _counters[((((uint)shard % (uint)ShardCount) + 1) * Stride) + (uint)counter], amount);
    }

    /// <summary>Adds one to a counter.</summary>
    /// <param name="counter">The counter.</param>
    /// <param name="shard">The caller's shard (taken modulo <see cref="ShardCount"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="counter"/> is not a defined <see cref="FilterCounter"/>.</exception>
    public void Increment(FilterCounter counter, int shard = 0) => Add(counter, 1, shard);

    /// <summary>Returns the current totals, summed over the shards.</summary>
    /// <returns>The totals since creation.</returns>
    public FilterStatisticsSnapshot Snapshot()
    {
        Span<long> totals = stackalloc long[CounterCount];
        for (int shard = 1; shard <= ShardCount; shard++)
        {
            for (int c = 0; c < CounterCount; c++)
            {
                totals[c] += Interlocked.Read(ref _counters[(shard * Stride) + c]);
            }
        }

        return new FilterStatisticsSnapshot(totals[0], totals[1], totals[2], totals[3], totals[4], totals[5], totals[6]);
    }

    /// <summary>Returns the change since the previous call (or since creation) and records the current totals as the new baseline.</summary>
    /// <returns>The deltas.</returns>
    public FilterStatisticsSnapshot TakeDelta()
    {
        lock (_emitLock)
        {
            FilterStatisticsSnapshot now = Snapshot();
            FilterStatisticsSnapshot delta = now - _lastEmitted;
            _lastEmitted = now;
            return delta;
        }
    }

    /// <summary>Renders the change since the previous emission as StatsD counter lines and advances the baseline.</summary>
    /// <param name="prefix">The metric name prefix, e.g. <c>statsd_filter</c>.</param>
    /// <returns>Seven lines <c>&lt;prefix&gt;.&lt;counter&gt;:&lt;delta&gt;|c</c> joined by <c>\n</c>, ready to batch and send.</returns>
    public string FormatDeltaLines(string prefix) => TakeDelta().ToStatsdLines(prefix);

    /// <summary>Returns a human-readable summary of the totals, for printing on shutdown.</summary>
    /// <returns>For example <c>statsd-filter: received=10 forwarded=8 dropped_blocked=1 dropped_malformed=1 truncated=0 send_errors=0 regex_timeouts=0</c>.</returns>
    public string FormatSummary() => "statsd-filter: " + Snapshot().ToString();
}
