using EioSharp.Backends.Uring;
using EioSharp.IO;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="EioBackendOptions.UringDirectSendFirst"/> (session 30, h177, issue 12): the first socket write while the
/// domain has other work queued and no send went since the ring's last entry is sent by a direct <c>send(2)</c>; the
/// writes after it in the same busy stretch, and a write that is the domain's last work, go through the ring. Checked by
/// the ring's count of direct sends and by the bytes the peers read (never by time). In the FdCount collection with the
/// other io_uring tests that read the ring's counters.
/// </summary>
[Collection("FdCount")]
public class UringDirectSendFirstTests
{
    private static readonly EioBackendOptions SendFirst = new() { UringWriteBehind = true, UringDirectSendFirst = true };

    // Two connected pairs; with a fiber kept queued (it yields a few times), the server ends write "a1" then "b1" to the
    // two clients, then "a2" on the first again; then, with nothing else queued, "b2". Returns the direct sends counted
    // during the busy writes and during the last write, and what the clients read.
    private static (long Busy, long Last, string A, string B) Exchange(EioBackendOptions options) =>
        Run(async env =>
        {
            (long, long, string, string) result = default;
            await Switch.RunAsync(async sw =>
            {
                var (clientA, serverA) = await PairAsync(env, sw);
                var (clientB, serverB) = await PairAsync(env, sw);
                var ring = UringOp.CurrentRing();
                bool stop = false;
                Fiber.Fork(sw, async () =>
                {
                    for (int i = 0; i < 8 && !Volatile.Read(ref stop); i++)
                    {
                        await Fiber.YieldAsync();
                    }
                });
                await Fiber.YieldAsync(); // the forked fiber is queued behind this one from here on
                long before = ring.DirectSends;
                await serverA.WriteAsync("a1"u8.ToArray());
                await serverB.WriteAsync("b1"u8.ToArray());
                await serverA.WriteAsync("a2"u8.ToArray());
                long busy = ring.DirectSends - before;
                Volatile.Write(ref stop, true);
                var buf = new byte[4];
                await clientA.ReadExactlyAsync(buf);
                string a = System.Text.Encoding.ASCII.GetString(buf);
                await clientB.ReadExactlyAsync(buf.AsMemory(0, 2));
                long last0 = ring.DirectSends;
                await serverB.WriteAsync("b2"u8.ToArray());
                long last = ring.DirectSends - last0;
                await clientB.ReadExactlyAsync(buf.AsMemory(2, 2));
                string b = System.Text.Encoding.ASCII.GetString(buf);
                result = (busy, last, a, b);
            });
            return result;
        }, options);

    [SkippableFact]
    public void WithTheOptionOffNoWriteIsSentDirectly()
    {
        var (busy, last, a, b) = Exchange(WriteBehind);
        Assert.Equal(0, busy);
        Assert.Equal(0, last);
        Assert.Equal("a1a2", a);
        Assert.Equal("b1b2", b);
    }

    [SkippableFact]
    public void OnlyTheFirstWriteOfABusyStretchIsSentDirectly()
    {
        var (busy, last, a, b) = Exchange(SendFirst);
        Assert.Equal(1, busy); // "a1"; "b1" and "a2" follow it before the ring's next entry
        Assert.Equal("a1a2", a);
        Assert.Equal("b1b2", b);
        Assert.Equal(0, last); // the domain's last work: through the ring
    }
}
