using System.Buffers;
using System.Net;
using System.Text;
using EioSharp.IO;
using Xunit.Abstractions;

namespace EioSharp.Kv.Tests;

/// <summary>The connections' receive and reply buffers come from <see cref="KvServerContext.ConnectionBuffers"/> and go
/// back to it when a connection ends cleanly (issue 14): connect + PING + close allocates no buffer once the pool holds
/// some, a buffer goes back once, and a connection whose batch is still in the store owner's hands keeps its buffers.</summary>
public sealed class ConnectionBufferPoolTests(ITestOutputHelper output)
{
    /// <summary>A pool of the server's kind that records the arrays handed out and given back, and fails on an array
    /// given back that is not out (twice, or never rented).</summary>
    private sealed class RecordingPool : ArrayPool<byte>
    {
        private readonly ArrayPool<byte> _inner = Create(KvConnectionSession.InitialReadBuffer, 64);

        public HashSet<byte[]> Out { get; } = new(ReferenceEqualityComparer.Instance);

        public List<byte[]> Returned { get; } = [];

        public int Rents { get; private set; }

        public override byte[] Rent(int minimumLength)
        {
            var a = _inner.Rent(minimumLength);
            Assert.True(Out.Add(a), "an array handed out twice");
            Rents++;
            return a;
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            Assert.True(Out.Remove(array), "an array given back that was not out (given back twice?)");
            Returned.Add(array);
            _inner.Return(array, clearArray);
        }
    }

    private static readonly byte[] Ping = "*1\r\n$4\r\nPING\r\n"u8.ToArray();

    private static void WithServer(RecordingPool pool, Func<KvServerContext, KvServerStats, Task> body) =>
        SessionTestServer.Run(server => body(server.Context, server.Stats), buffers: pool);

    private static Task ServeAsync(KvServerContext ctx, IFlowDuplex flow) =>
        KvConnection.ServeSessionAsync(ctx, flow, new IPEndPoint(IPAddress.Loopback, 40000), "127.0.0.1:6379");

    [Fact]
    public void Connect_ping_close_takes_its_buffers_from_the_pool_and_gives_them_back()
    {
        var pool = new RecordingPool();
        long perConnection = 0;
        WithServer(pool, async (ctx, _) =>
        {
            for (int i = 0; i < 5; i++)
            {
                var warm = new ChunkFlow(Ping); // warm-up: the pool fills, code paths are jitted
                await ServeAsync(ctx, warm);
                Assert.Equal("+PONG\r\n", Encoding.ASCII.GetString(warm.Sink.ToArray()));
                Assert.Empty(pool.Out); // every buffer given back
            }

            const int N = 50;
            var meter = new AllocationMeter(); // the fewest bytes of N connections over warm rounds
            while (meter.NextRound())
            {
                var flows = Enumerable.Range(0, N).Select(_ => new ChunkFlow(Ping)).ToArray();
                meter.Start();
                foreach (var flow in flows)
                {
                    await ServeAsync(ctx, flow);
                }

                meter.Stop();
                Assert.All(flows, f => Assert.Equal("+PONG\r\n", Encoding.ASCII.GetString(f.Sink.ToArray())));
            }

            perConnection = meter.Fewest / N;
        });

        output.WriteLine($"{perConnection} B allocated per connect + PING + close");

        // Before the pool: 16 KiB receive buffer + two 4 KiB reply buffers (24,576 B) and the session's objects per
        // connection. With it: the session's objects only (a few kB); well under one receive buffer.
        Assert.True(perConnection < KvConnectionSession.InitialReadBuffer, $"{perConnection} B per connect + PING + close");
        Assert.Empty(pool.Out);
        Assert.All(pool.Returned, a => Assert.True(a.Length is KvConnectionSession.InitialReadBuffer or KvConnectionSession.OutputBuffer));
        // Receive buffer, output buffer, request's reply buffer: once each, for 5 warm-up connections and 50 a round.
        Assert.Equal(3 * (5 + ((AllocationMeter.DefaultRounds + 1) * 50)), pool.Returned.Count);
    }

    [Fact]
    public void Two_live_connections_never_share_a_buffer_and_a_closed_ones_buffers_go_to_the_next()
    {
        var pool = new RecordingPool();
        WithServer(pool, async (ctx, _) =>
        {
            var a = new QueueFlow();
            var first = new ChunkFlow(Ping);
            var second = new ChunkFlow(Ping);
            await Fiber.BothAsync(
                () => ServeAsync(ctx, a),
                async () =>
                {
                    a.Input.TryAdd(Ping);
                    while (a.Sink.ToArray().Length == 0)
                    {
                        await Fiber.YieldAsync();
                    }

                    var heldByA = pool.Out.ToHashSet(ReferenceEqualityComparer.Instance);
                    Assert.Equal(3, heldByA.Count);
                    await ServeAsync(ctx, first);
                    var returnedByFirst = pool.Returned.ToList();
                    Assert.Equal(3, returnedByFirst.Count);
                    Assert.DoesNotContain(returnedByFirst, heldByA.Contains); // a's buffers stay a's while it lives
                    await ServeAsync(ctx, second);
                    Assert.DoesNotContain(pool.Returned, heldByA.Contains);
                    Assert.Equal(3, pool.Rents - 6); // the second connection rented three arrays...
                    Assert.Equal(2 * 3, pool.Returned.Count); // ...and gave them back
                    a.Input.TryAdd(Ping);
                    a.Input.TryAdd([]); // end of input: a ends cleanly and gives its buffers back
                });
            Assert.Equal("+PONG\r\n+PONG\r\n", Encoding.ASCII.GetString(a.Sink.ToArray()));
            Assert.Empty(pool.Out);
        });
    }

    [Fact]
    public void A_connection_that_goes_away_while_its_blocking_command_is_parked_keeps_its_buffers_out_of_the_pool()
    {
        // The parked request (BLPOP) is in the store owner's hands when the client leaves: its reply buffer must not go
        // to another connection while the owner may still write into it.
        var pool = new RecordingPool();
        WithServer(pool, async (ctx, stats) =>
        {
            var blocked = new QueueFlow();
            await Fiber.BothAsync(
                async () =>
                {
                    try
                    {
                        await ServeAsync(ctx, blocked);
                    }
                    catch (Exception)
                    {
                        // The client went away while blocked (as KvConnection.HandleAsync swallows it).
                    }
                },
                async () =>
                {
                    blocked.Input.TryAdd("*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n"u8.ToArray());
                    for (int i = 0; stats.BlockedClients != 1; i++)
                    {
                        Assert.True(i < 100_000, "never blocked");
                        await Fiber.YieldAsync();
                    }

                    blocked.Input.TryAdd([]); // the client goes away while BLPOP waits
                });
            Assert.Empty(pool.Returned);
            Assert.Equal(3, pool.Out.Count);

            var next = new ChunkFlow(Ping); // the next connection gets buffers of its own, not the parked one's
            var parked = pool.Out.ToHashSet(ReferenceEqualityComparer.Instance);
            await ServeAsync(ctx, next);
            Assert.Equal("+PONG\r\n", Encoding.ASCII.GetString(next.Sink.ToArray()));
            Assert.DoesNotContain(pool.Returned, parked.Contains);
        });
    }
}
