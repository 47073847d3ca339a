using System.Net;
using System.Net.Sockets;
using EioSharp.Backends;
using EioSharp.Backends.Uring;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="Domain.HintNextWait"/> on io_uring (session 24, h149): the domain's next sleep lasts until the hinted number
/// of completions is pending, so receives that arrive one by one resume their fibers after one wake-up. The peers write
/// from a plain thread, one connection after another; the assertion is on counts (which sleep each reader resumed after),
/// not on time: the hinted wait cannot end before its count unless its 30 s limit passes.
/// </summary>
[Collection("FdCount")]
public class UringHintNextWaitTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    private const int Connections = 4;

    [SkippableFact]
    public void ReceivesThatArriveOneByOneResumeAfterOneWakeUp()
    {
        var (idleAtResume, hinted, ok) = NetConformanceTests.RunOn(EioBackend.Uring, async env =>
        {
            (long[], long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var peers = new Socket[Connections];
                var servers = new EioSharp.Net.StreamSocket[Connections];
                for (int i = 0; i < Connections; i++)
                {
                    peers[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    var connect = peers[i].ConnectAsync(listener.ListeningEndPoint);
                    (servers[i], _) = await listener.AcceptAsync(sw);
                    await connect;
                }

                var ring = UringOp.CurrentRing();
                var domain = ring.Domain!;
                long hinted0 = ring.HintedWaits;
                var idle = new long[Connections];
                var readers = new Promise<bool>[Connections];
                for (int i = 0; i < Connections; i++)
                {
                    int k = i;
                    readers[k] = Fiber.ForkPromise(sw, async () =>
                    {
                        var buf = new byte[16];
                        int n = await servers[k].ReadAsync(buf);
                        idle[k] = domain.IdleWaits;
                        return n == 4 && buf.AsSpan(0, 4).SequenceEqual("ping"u8);
                    });
                }

                domain.HintNextWait(Connections, TimeSpan.FromSeconds(30));
                var writer = new Thread(() =>
                {
                    foreach (var peer in peers)
                    {
                        Thread.Sleep(20); // spreads the arrivals (without the hint each would wake the domain)
                        peer.Send("ping"u8);
                    }
                });
                writer.Start();
                bool all = true;
                foreach (var r in readers)
                {
                    all &= await r.AwaitAsync();
                }

                writer.Join();
                foreach (var peer in peers)
                {
                    peer.Dispose();
                }

                result = (idle, ring.HintedWaits - hinted0, all);
            });
            return result;
        });
        Assert.True(ok);
        Assert.Equal(1, hinted);
        Assert.All(idleAtResume, v => Assert.Equal(idleAtResume[0], v)); // every reader resumed after the same sleep
    }
    [Fact]
    public void HintNextWaitFromAnotherThreadThrows()
    {
        var (onDomain, fromOther) = NetConformanceTests.RunOn(EioBackend.Portable, env =>
        {
            var domain = Domain.Current!;
            domain.HintNextWait(2, TimeSpan.FromMilliseconds(1)); // the domain's own thread: accepted (ignored here)
            Exception? caught = null;
            var other = new Thread(() =>
            {
                try
                {
                    domain.HintNextWait(2, TimeSpan.FromMilliseconds(1));
                }
                catch (Exception e)
                {
                    caught = e;
                }
            });
            other.Start();
            other.Join();
            return Task.FromResult((true, caught));
        });
        Assert.True(onDomain);
        Assert.IsType<InvalidOperationException>(fromOther);
    }

    [Fact]
    public void HintNextWaitRejectsANegativeCountOrLimit()
    {
        var (count, limit) = NetConformanceTests.RunOn(EioBackend.Portable, env =>
        {
            var domain = Domain.Current!;
            Exception? c = Record.Exception(() => domain.HintNextWait(-1, TimeSpan.FromMilliseconds(1)));
            Exception? l = Record.Exception(() => domain.HintNextWait(2, TimeSpan.FromMilliseconds(-1)));
            return Task.FromResult((c, l));
        });
        Assert.IsType<ArgumentOutOfRangeException>(count);
        Assert.IsType<ArgumentOutOfRangeException>(limit);
    }
}
