using System.Net;
using EioSharp.Backends.Uring;
using EioSharp.IO;
using EioSharp.Net;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="EioBackendOptions.UringArrivalSpin"/> (session 34, h194, issue 12): an idle io_uring domain spins for the
/// next request only while its recent idle gaps were short and its busy stretches reaped several completions each.
/// The decision (<see cref="ArrivalGaps"/>) is checked by its counts, with no clock; the ring by what must never spin (a
/// domain sleeping on timers, a lone client's request/response loop) and by several clients' replies staying right with
/// the spin on. In the FdCount collection with the other io_uring tests that read the ring's counters.
/// </summary>
[Collection("FdCount")]
public class UringArrivalSpinTests
{
    private static readonly EioBackendOptions Arrival = new() { UringWriteBehind = true, UringArrivalSpin = TimeSpan.FromMicroseconds(100) };

    [Fact]
    public void TheDecisionStartsAsAfterLongSleeps()
    {
        var gaps = new ArrivalGaps(100);
        Assert.True(gaps.Enabled);
        Assert.Equal(800, gaps.GapAverage);
        Assert.Equal(0, gaps.StretchEnded(50));
    }

    [Fact]
    public void ShortGapsBetweenBusyStretchesSpinTwiceTheAverageGap()
    {
        var gaps = new ArrivalGaps(100);
        for (int i = 0; i < 40; i++)
        {
            gaps.StretchEnded(5);
            gaps.GapEnded(30);
        }

        Assert.Equal(30, gaps.GapAverage);
        Assert.Equal(60, gaps.Budget);
    }

    [Fact]
    public void TheSpinIsCappedAtTheBudget()
    {
        var gaps = new ArrivalGaps(100);
        for (int i = 0; i < 40; i++)
        {
            gaps.StretchEnded(5);
            gaps.GapEnded(80);
        }

        Assert.Equal(100, gaps.Budget);
    }

    [Fact]
    public void ALoneClientsStretchesNeverSpin()
    {
        var gaps = new ArrivalGaps(100);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(0, gaps.StretchEnded(1));
            gaps.GapEnded(10);
        }

        Assert.Equal(0, gaps.StretchEnded(2));
    }

    [Fact]
    public void OneLongSleepStopsTheSpinAtOnce()
    {
        var gaps = new ArrivalGaps(100);
        for (int i = 0; i < 40; i++)
        {
            gaps.StretchEnded(5);
            gaps.GapEnded(30);
        }

        Assert.True(gaps.Budget > 0);
        gaps.GapEnded(10_000_000); // an idle second: capped at 8 budgets, still over the budget on average
        Assert.Equal(0, gaps.Budget);
        Assert.Equal(0, gaps.StretchEnded(5));
    }

    [Fact]
    public void OffItNeverSpins()
    {
        var gaps = new ArrivalGaps(0);
        Assert.False(gaps.Enabled);
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(0, gaps.StretchEnded(10));
            gaps.GapEnded(0);
        }
    }

    [Fact]
    public void TheOptionAndItsOverride()
    {
        Assert.Equal(TimeSpan.Zero, EioBackendOptions.Default.UringArrivalSpin);
        Assert.Throws<ArgumentOutOfRangeException>(() => new EioBackendOptions { UringArrivalSpin = TimeSpan.FromTicks(-1) });
        var set = EioBackendOptions.ApplyOverrides(EioBackendOptions.Default, n => n == "EIOSHARP_URING_ARRIVAL_SPIN_US" ? "80" : null);
        Assert.Equal(TimeSpan.FromMicroseconds(80), set.UringArrivalSpin);
        var ex = Assert.Throws<ArgumentException>(() =>
            EioBackendOptions.ApplyOverrides(EioBackendOptions.Default, n => n == "EIOSHARP_URING_ARRIVAL_SPIN_US" ? "-3" : null));
        Assert.Equal("EIOSHARP_URING_ARRIVAL_SPIN_US", ex.ParamName);
    }

    [SkippableFact]
    public void ADomainThatOnlySleepsOnTimersNeverSpins()
    {
        var (spins, deferred) = Run(async env =>
        {
            var ring = UringOp.CurrentRing();
            long spins0 = ring.ArrivalSpins;
            for (int i = 0; i < 200; i++)
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
            }

            return (ring.ArrivalSpins - spins0, ring.DeferTaskRun);
        }, Arrival);
        Skip.IfNot(deferred, "the ring has no DEFER_TASKRUN (kernel < 6.1): it never spins");
        Assert.Equal(0, spins);
    }

    [SkippableFact]
    public void ALoneClientsRequestResponseLoopNeverSpins()
    {
        const int roundTrips = 300;
        var (ok, spins, deferred) = Run(async env =>
        {
            (bool, long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var peer = StartRequestResponsePeer((IPEndPoint)listener.ListeningEndPoint, roundTrips, 3);
                var (server, _) = await listener.AcceptAsync(sw);
                var ring = UringOp.CurrentRing();
                long spins0 = ring.ArrivalSpins;
                bool serverOk = await ServeAsync(server, roundTrips, 3);
                bool clientOk = peer();
                server.Close();
                result = (clientOk && serverOk, ring.ArrivalSpins - spins0, ring.DeferTaskRun);
            });
            return result;
        }, Arrival);
        Assert.True(ok);
        Skip.IfNot(deferred, "the ring has no DEFER_TASKRUN (kernel < 6.1): it never spins");
        Assert.Equal(0, spins);
    }

    [SkippableFact]
    public void SeveralClientsRepliesStayRightWithTheSpin()
    {
        const int clients = 8, roundTrips = 400;
        bool ok = Run(async env =>
        {
            bool allOk = true;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var endpoint = (IPEndPoint)listener.ListeningEndPoint;
                var peers = new Func<bool>[clients];
                for (int c = 0; c < clients; c++)
                {
                    peers[c] = StartRequestResponsePeer(endpoint, roundTrips, 2);
                }

                await Switch.RunAsync(async inner =>
                {
                    for (int c = 0; c < clients; c++)
                    {
                        var (server, _) = await listener.AcceptAsync(inner);
                        Fiber.Fork(inner, async () =>
                        {
                            bool served = await ServeAsync(server, roundTrips, 2);
                            server.Close();
                            allOk &= served;
                        });
                    }
                });

                foreach (var peer in peers)
                {
                    allOk &= peer();
                }
            });
            return allOk;
        }, Arrival);
        Assert.True(ok);
    }

    private static async Task<bool> ServeAsync(StreamSocket server, int roundTrips, int factor)
    {
        var buf = new byte[4];
        for (int i = 0; i < roundTrips; i++)
        {
            try
            {
                await server.ReadExactlyAsync(buf);
            }
            catch (EndOfStreamException)
            {
                return false;
            }

            int v = BitConverter.ToInt32(buf, 0);
            if (v != i)
            {
                return false;
            }

            var reply = new byte[8];
            BitConverter.TryWriteBytes(reply.AsSpan(0, 4), v);
            BitConverter.TryWriteBytes(reply.AsSpan(4, 4), v * factor);
            await server.WriteAsync(reply);
        }

        await server.FlushAsync();
        return true;
    }
}
