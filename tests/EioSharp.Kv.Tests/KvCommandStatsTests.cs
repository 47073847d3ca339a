namespace EioSharp.Kv.Tests;

/// <summary><see cref="KvCommandStats"/>: counts taken on several threads without a lock (one shard per thread) add up in
/// INFO, and CONFIG RESETSTAT from any thread clears them all.</summary>
public sealed class KvCommandStatsTests
{
    private static readonly KvServerConfig Config = new();
    private static readonly KvCommand Get = KvCommand.Create("GET", "k");

    private static void OnThread(Action action)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        Assert.Null(failure);
    }

    [Fact]
    public void Counts_from_several_threads_add_up()
    {
        var stats = new KvCommandStats();
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                stats.Record("get", Get, 3, null, Config, 0, "a", null);
                stats.Record("set", Get, 1, i % 10 == 0 ? "ERR boom" : null, Config, 0, "a", null);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        stats.RecordRejected("set", "ERR wrong number of arguments for 'set' command");

        Assert.Equal(
            "cmdstat_get:calls=4000,usec=12000,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n" +
            "cmdstat_set:calls=4000,usec=4000,usec_per_call=1.00,rejected_calls=1,failed_calls=400\r\n",
            stats.CommandStatsText());
        Assert.Equal("errorstat_ERR:count=401\r\n", stats.ErrorStatsText());
        Assert.Equal(401, stats.TotalErrorReplies);
        // 3 us falls in the bucket [2, 4): every percentile is its upper bound; 1 us in [1, 2).
        Assert.Equal(
            "latency_percentiles_usec_get:p50=4.000,p99=4.000,p99.9=4.000\r\n" +
            "latency_percentiles_usec_set:p50=2.000,p99=2.000,p99.9=2.000\r\n",
            stats.LatencyStatsText());
    }

    [Fact]
    public void A_recorder_counts_into_the_same_statistics_and_a_reset_clears_its_shard()
    {
        // §221: the store's KvCommandRecorder (a shard of its own, no delegate) adds up with the threads' shards in INFO,
        // takes the slow log's client address from the session's connection, and is emptied by CONFIG RESETSTAT.
        var stats = new KvCommandStats();
        var recorder = new KvCommandRecorder(stats, new KvLiveConfig(Config));
        var state = new KvConnectionState(7, Config, new KvServerStats()) { RemoteAddress = "10.0.0.1:5" };
        long second = System.Diagnostics.Stopwatch.Frequency;
        recorder.Record(state.Session, Get, 0, 2 * second, null); // 2 s: over slowlog-log-slower-than
        recorder.Record(state.Session, Get, 0, second, "ERR boom");
        OnThread(() => stats.Record("get", Get, 3, null, Config, 0, "a", null)); // a thread's shard beside it
        Assert.Equal(
            "cmdstat_get:calls=3,usec=3000003,usec_per_call=1000001.00,rejected_calls=0,failed_calls=1\r\n",
            stats.CommandStatsText());
        Assert.Equal("errorstat_ERR:count=1\r\n", stats.ErrorStatsText());
        List<KvSlowLogEntry> slow = stats.SlowLog(-1);
        Assert.Equal(new long[] { 1_000_000, 2_000_000 }, slow.Select(e => e.Micros));
        Assert.All(slow, e => Assert.Equal(("10.0.0.1:5", ""), (e.ClientAddress, e.ClientName)));

        stats.Reset();
        Assert.Equal("", stats.CommandStatsText());
        recorder.Record(state.Session, Get, 0, second, null);
        Assert.Equal(
            "cmdstat_get:calls=1,usec=1000000,usec_per_call=1000000.00,rejected_calls=0,failed_calls=0\r\n",
            stats.CommandStatsText());
    }

    [Fact]
    public void A_reset_on_another_thread_clears_every_threads_counts()
    {
        var stats = new KvCommandStats();
        OnThread(() => stats.Record("get", Get, 5, null, Config, 0, "a", null));
        stats.Record("get", Get, 5, null, Config, 0, "a", null);
        stats.RecordRejected("get", "ERR x");
        Assert.Contains("cmdstat_get:calls=2,", stats.CommandStatsText(), StringComparison.Ordinal);

        OnThread(stats.Reset);
        Assert.Equal("", stats.CommandStatsText());
        Assert.Equal("", stats.ErrorStatsText());
        Assert.Equal("", stats.LatencyStatsText());
        Assert.Equal(0, stats.TotalErrorReplies);

        // This thread's shard, written before the reset, starts over at its next command.
        stats.Record("get", Get, 7, null, Config, 0, "a", null);
        Assert.Equal("cmdstat_get:calls=1,usec=7,usec_per_call=7.00,rejected_calls=0,failed_calls=0\r\n", stats.CommandStatsText());
    }

    [Fact]
    public void Two_instances_on_one_thread_keep_their_own_counts()
    {
        var a = new KvCommandStats();
        var b = new KvCommandStats();
        a.Record("get", Get, 1, null, Config, 0, "a", null);
        b.Record("get", Get, 1, null, Config, 0, "a", null);
        a.Record("get", Get, 1, null, Config, 0, "a", null);
        Assert.Contains("cmdstat_get:calls=2,", a.CommandStatsText(), StringComparison.Ordinal);
        Assert.Contains("cmdstat_get:calls=1,", b.CommandStatsText(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_slow_command_still_reaches_the_slow_log()
    {
        var stats = new KvCommandStats();
        var config = new KvServerConfig { SlowlogLogSlowerThan = 10 };
        stats.Record("get", Get, 5, null, config, 1_000, "a", null);
        stats.Record("get", Get, 50, null, config, 2_000, "a", null);
        KvSlowLogEntry entry = Assert.Single(stats.SlowLog(-1));
        Assert.Equal(50, entry.Micros);
        Assert.Equal(2, entry.UnixSeconds);
    }
}
