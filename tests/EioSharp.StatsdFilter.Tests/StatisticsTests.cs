namespace EioSharp.StatsdFilter.Tests;

public class StatisticsTests
{
    [Fact]
    public void Counts_across_shards()
    {
        var stats = new FilterStatistics(shardCount: 4);
        stats.Increment(FilterCounter.Received, shard: 0);
        stats.Add(FilterCounter.Received, 10, shard: 3);
        stats.Add(FilterCounter.Forwarded, 5, shard: 7);
        stats.Increment(FilterCounter.DroppedBlocked, shard: 1);
        stats.Add(FilterCounter.DroppedMalformed, 2);
        stats.Increment(FilterCounter.Truncated);
        stats.Increment(FilterCounter.SendErrors, shard: 2);
        Assert.Equal(new FilterStatisticsSnapshot(11, 5, 1, 2, 1, 1), stats.Snapshot());
    }

    [Fact]
    public void Delta_lines_since_last_emission()
    {
        var stats = new FilterStatistics();
        stats.Add(FilterCounter.Received, 123);
        stats.Add(FilterCounter.Forwarded, 120);
        stats.Add(FilterCounter.DroppedBlocked, 3);
        Assert.Equal(
            "statsd_filter.received:123|c\nstatsd_filter.forwarded:120|c\nstatsd_filter.dropped_blocked:3|c\n" +
            "statsd_filter.dropped_malformed:0|c\nstatsd_filter.truncated:0|c\nstatsd_filter.send_errors:0|c\nstatsd_filter.regex_timeouts:0|c",
            stats.FormatDeltaLines("statsd_filter"));
        stats.Add(FilterCounter.Received, 7);
        string second = stats.FormatDeltaLines("p");
        Assert.StartsWith("p.received:7|c\np.forwarded:0|c", second);
        foreach (string line in second.Split('\n'))
        {
            Assert.True(StatsdLine.TryParse(System.Text.Encoding.UTF8.GetBytes(line), out StatsdLineInfo info));
            Assert.Equal(StatsdMetricType.Counter, info.MetricType);
        }

        Assert.Equal(new FilterStatisticsSnapshot(130, 120, 3, 0, 0, 0), stats.Snapshot());
    }

    [Fact]
    public void Regex_timeouts_are_their_own_counter_and_self_metric()
    {
        var stats = new FilterStatistics(shardCount: 2);
        stats.Add(FilterCounter.DroppedBlocked, 5, shard: 0);
        stats.Add(FilterCounter.RegexTimeouts, 2, shard: 1);
        Assert.Equal(new FilterStatisticsSnapshot(0, 0, 5, 0, 0, 0, RegexTimeouts: 2), stats.Snapshot());
        Assert.Equal(2, stats.Snapshot()[FilterCounter.RegexTimeouts]);
        string lines = stats.FormatDeltaLines("p");
        Assert.EndsWith("\np.regex_timeouts:2|c", lines);
        Assert.Contains("\np.dropped_blocked:5|c\n", lines);
        Assert.EndsWith("\np.regex_timeouts:0|c", stats.FormatDeltaLines("p"));
        Assert.EndsWith(" regex_timeouts=2", stats.FormatSummary());
    }

    [Fact]
    public void Summary_is_human_readable()
    {
        var stats = new FilterStatistics();
        stats.Add(FilterCounter.Received, 10);
        stats.Add(FilterCounter.Forwarded, 8);
        Assert.Equal(
            "statsd-filter: received=10 forwarded=8 dropped_blocked=0 dropped_malformed=0 truncated=0 send_errors=0 regex_timeouts=0",
            stats.FormatSummary());
    }

    [Fact]
    public void Concurrent_increments_are_not_lost()
    {
        var stats = new FilterStatistics(shardCount: 2);
        long deltas = 0;
        Parallel.For(0, 8, worker =>
        {
            for (int i = 0; i < 100_000; i++)
            {
                stats.Increment(FilterCounter.Received, shard: worker);
                if (i % 10_000 == 0)
                {
                    Interlocked.Add(ref deltas, stats.TakeDelta().Received);
                }
            }
        });
        Assert.Equal(800_000, stats.Snapshot().Received);
        Assert.Equal(800_000, deltas + stats.TakeDelta().Received);
    }

    [Fact]
    public void Invalid_arguments_throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FilterStatistics(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FilterStatistics().Add((FilterCounter)7));
    }
}
