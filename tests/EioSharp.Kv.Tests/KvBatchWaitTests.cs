using System.Text;
using static EioSharp.Kv.Tests.SessionTestRequests;

namespace EioSharp.Kv.Tests;

/// <summary><see cref="KvBatchWait"/>: the connections in flight per epoch of batches, and the decision to hint a
/// connection domain's next sleep (by count: no clock is read).</summary>
public sealed class KvBatchWaitTests
{
    /// <summary>Runs <paramref name="batches"/> batches, connection after connection in turn (0, 1, ..., n-1, 0, 1 ...),
    /// and returns the in-flight count after each.</summary>
    private static int[] RoundRobin(KvBatchWait w, long[] marks, int batches)
    {
        var seen = new int[batches];
        for (int i = 0; i < batches; i++)
        {
            seen[i] = w.Count(ref marks[i % marks.Length]);
        }

        return seen;
    }

    [Fact]
    public void The_count_is_the_distinct_connections_of_the_last_complete_epoch()
    {
        var w = new KvBatchWait();
        var seen = RoundRobin(w, new long[12], 3 * KvBatchWait.EpochBatches);
        Assert.All(seen[..(KvBatchWait.EpochBatches - 1)], c => Assert.Equal(0, c)); // no complete epoch yet
        Assert.Equal(12, seen[KvBatchWait.EpochBatches - 1]); // the epoch's last batch closes it
        Assert.All(seen[KvBatchWait.EpochBatches..], c => Assert.Equal(12, c));
        Assert.Equal(12, w.InFlight);
    }

    [Fact]
    public void A_lone_connection_counts_one_however_many_batches_it_runs()
    {
        var w = new KvBatchWait();
        var seen = RoundRobin(w, new long[1], 10 * KvBatchWait.EpochBatches);
        Assert.Equal(1, seen[^1]);
    }

    [Fact]
    public void The_count_follows_the_connections_down_when_most_of_them_stop()
    {
        var w = new KvBatchWait();
        var marks = new long[32];
        RoundRobin(w, marks, 2 * KvBatchWait.EpochBatches);
        Assert.Equal(32, w.InFlight);
        var lone = new long[] { marks[0] }; // connection 0 alone from now on (its mark kept)
        RoundRobin(w, lone, KvBatchWait.EpochBatches);
        Assert.Equal(1, w.InFlight);
    }

    [Fact]
    public void A_connection_of_a_long_epoch_is_counted_once_in_it()
    {
        // Two connections alternate, one of them far more often: still two in flight.
        var w = new KvBatchWait();
        long a = 0, b = 0;
        for (int i = 0; i < 2 * KvBatchWait.EpochBatches; i++)
        {
            w.Count(ref (i % 8 == 0 ? ref b : ref a));
        }

        Assert.Equal(2, w.InFlight);
    }

    [Theory]
    [InlineData(0, 8, 0)]
    [InlineData(7, 8, 0)] // fewer than 8 in flight: no hint
    [InlineData(8, 8, 2)] // a quarter of those in flight
    [InlineData(11, 8, 2)]
    [InlineData(12, 8, 3)]
    [InlineData(32, 8, 8)]
    [InlineData(50, 8, 8)] // at most N
    [InlineData(1000, 8, 8)]
    [InlineData(50, 16, 12)]
    [InlineData(50, 0, 0)] // EIOSHARP_KV_BATCH_WAIT=0: off
    [InlineData(50, 1, 0)] // a wait for one completion is no hint
    public void The_hint_is_a_quarter_of_the_connections_in_flight_at_most_N_from_8_of_them(int inFlight, int max, int expected) =>
        Assert.Equal(expected, KvBatchWait.Decide(inFlight, 1, max, always: false, storeHere: true));

    [Fact]
    public void No_hint_under_appendfsync_always_nor_on_a_domain_without_the_store()
    {
        Assert.Equal(0, KvBatchWait.Decide(50, 1, 8, always: true, storeHere: true)); // the store owner hints its own wait there
        Assert.Equal(0, KvBatchWait.Decide(50, 1, 8, always: false, storeHere: false)); // its answers' wake-ups would wait
        Assert.Equal(8, KvBatchWait.Decide(50, 1, 8, always: false, storeHere: true));
    }

    [Fact]
    public void A_pipelined_batch_is_not_hinted()
    {
        Assert.Equal(0, KvBatchWait.Decide(50, 2, 8, always: false, storeHere: true));
        Assert.Equal(0, KvBatchWait.Decide(50, 16, 8, always: false, storeHere: true));
        Assert.Equal(8, KvBatchWait.Decide(50, 1, 8, always: false, storeHere: true));
    }

    [Fact]
    public void The_environment_sets_N_and_the_limit_and_0_turns_it_off()
    {
        int max = KvBatchWait.MaxRequests;
        var limit = KvBatchWait.Limit;
        try
        {
            KvBatchWait.MaxRequests = KvBatchWait.DefaultMaxRequests;
            KvBatchWait.Limit = KvBatchWait.DefaultLimit;
            KvBatchWait.Configure(null, null);
            Assert.Equal(8, KvBatchWait.MaxRequests); // the default: on
            Assert.Equal(TimeSpan.FromMicroseconds(100), KvBatchWait.Limit);
            KvBatchWait.Configure("x", "-5");
            Assert.Equal(8, KvBatchWait.MaxRequests);
            Assert.Equal(TimeSpan.FromMicroseconds(100), KvBatchWait.Limit);
            KvBatchWait.Configure("16", "250");
            Assert.Equal(16, KvBatchWait.MaxRequests);
            Assert.Equal(TimeSpan.FromMicroseconds(250), KvBatchWait.Limit);
            KvBatchWait.Configure("0", null);
            Assert.Equal(0, KvBatchWait.MaxRequests);
        }
        finally
        {
            KvBatchWait.MaxRequests = max;
            KvBatchWait.Limit = limit;
        }
    }

    /// <summary>Serves <paramref name="connections"/> connections on one domain (the store owner's), each sending
    /// <paramref name="rounds"/> PINGs one batch at a time, in turn; returns the hints given on the domain's thread after
    /// the first two epochs (the count starts from the thread's last run) and the in-flight count at the end.</summary>
    private static (long Hints, int InFlight) Serve(int connections, int rounds)
    {
        long hints = 0;
        int inFlight = 0;
        SessionTestServer.Run(async server =>
        {
            long before = 0;
            int warm = (2 * KvBatchWait.EpochBatches / connections) + 1; // two epochs: the count no longer the last run's
            var flows = Enumerable.Range(0, connections).Select(_ => new QueueFlow()).ToArray();
            var tasks = new List<Func<Task>>();
            for (int i = 0; i < connections; i++)
            {
                var flow = flows[i];
                int port = 40000 + i;
                tasks.Add(() => server.ServeAsync(flow, port));
            }

            tasks.Add(async () =>
            {
                for (int r = 1; r <= rounds; r++)
                {
                    if (r == warm + 1)
                    {
                        before = KvBatchWait.Current?.Hints ?? 0;
                    }

                    foreach (var flow in flows)
                    {
                        flow.Input.TryAdd(Resp("PING"));
                    }

                    for (int i = 0; flows.Any(f => f.Sink.ToArray().Length < r * "+PONG\r\n".Length); i++)
                    {
                        Assert.True(i < 100_000, "the replies never came");
                        await Fiber.YieldAsync();
                    }
                }

                hints = (KvBatchWait.Current?.Hints ?? 0) - before;
                inFlight = KvBatchWait.Current?.InFlight ?? 0;
                foreach (var flow in flows)
                {
                    flow.Input.TryAdd([]); // end of input
                }
            });
            await Fiber.AllAsync(tasks);
            Assert.All(flows, f => Assert.Equal(string.Concat(Enumerable.Repeat("+PONG\r\n", rounds)), Encoding.ASCII.GetString(f.Sink.ToArray())));
        });
        return (hints, inFlight);
    }

    [Fact]
    public void Sessions_hint_their_domains_sleep_while_12_connections_are_in_flight_and_not_while_7_are()
    {
        int max = KvBatchWait.MaxRequests;
        var limit = KvBatchWait.Limit;
        try
        {
            KvBatchWait.MaxRequests = KvBatchWait.DefaultMaxRequests;
            KvBatchWait.Limit = TimeSpan.FromSeconds(10); // the batches' rate is always "fast" then: no clock in the outcome
            var (hints, inFlight) = Serve(12, 20);
            Assert.Equal(12, inFlight);
            Assert.True(hints > 0, "no hint with 12 connections in flight");

            (hints, inFlight) = Serve(7, 40);
            Assert.Equal(7, inFlight);
            Assert.Equal(0, hints);

            KvBatchWait.MaxRequests = 0; // EIOSHARP_KV_BATCH_WAIT=0
            (hints, _) = Serve(12, 20);
            Assert.Equal(0, hints);
        }
        finally
        {
            KvBatchWait.MaxRequests = max;
            KvBatchWait.Limit = limit;
        }
    }
}
