using System.Net;
using EioSharp.Backends;
using EioSharp.Backends.Uring;
using EioSharp.Net;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The io_uring idle pre-pass (issue 15, session 16): before a domain with an empty run queue counts an idle transition and
/// sleeps, the ring submits what the round queued without waiting (<see cref="UringPoller.TryIdle"/>); an operation that
/// completes as it is submitted (a send to loopback, a receive whose data is already there) then resumes its fiber in
/// another busy round instead of after an idle transition. io_uring only: epoll and portable make their calls directly.
/// In the FdCount collection because it switches a process-wide setting that other io_uring tests read.
/// </summary>
[Collection("FdCount")]
public class UringIdlePrePassTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    private const int Exchanges = 20;

    // Exchanges of a 4-byte line whose every operation completes at submission: the client's send (loopback), then the
    // server's receive (the bytes are there by then). Returns the domain's idle transitions and the pre-pass's hits over them.
    private static (long IdleWaits, long Hits, bool Ok) Exchange(bool prePass)
    {
        {
            return NetConformanceTests.RunOn(EioBackend.Uring, async env =>
            {
                (long, long, bool) result = default;
                await Switch.RunAsync(async sw =>
                {
                    var listener = env.Net.Listen(sw, Loopback0);
                    var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                    var (server, _) = await listener.AcceptAsync(sw);
                    var ring = UringOp.CurrentRing();
                    var domain = ring.Domain!;
                    long idle0 = domain.IdleWaits, hits0 = ring.IdlePrePassHits;
                    var buf = new byte[16];
                    bool ok = true;
                    for (int i = 0; i < Exchanges; i++)
                    {
                        await client.WriteAsync("ping"u8.ToArray());
                        int n = await server.ReadAsync(buf);
                        ok &= buf.AsSpan(0, n).SequenceEqual("ping"u8);
                    }

                    result = (domain.IdleWaits - idle0, ring.IdlePrePassHits - hits0, ok);
                });
                return result;
            }, new EioBackendOptions { UringIdlePrePass = prePass });
        }
    }

    [SkippableFact]
    public void OperationsThatCompleteAtSubmissionResumeWithoutAnIdleTransition()
    {
        var (idle, hits, ok) = Exchange(prePass: true);
        Assert.True(ok);
        Assert.True(hits >= 2 * Exchanges, $"pre-pass hits: {hits}");
        Assert.True(idle < Exchanges / 4, $"idle waits: {idle}"); // a stray one (a wake-up poll's re-arm) is allowed
    }

    // The same exchanges without the pre-pass: every operation reaches the kernel only with the sleeping entry, so each
    // one costs an idle transition (what the test above shows is saved).
    [SkippableFact]
    public void WithoutThePrePassEachOperationCostsAnIdleTransition()
    {
        var (idle, hits, ok) = Exchange(prePass: false);
        Assert.True(ok);
        Assert.Equal(0, hits);
        Assert.True(idle >= 2 * Exchanges, $"idle waits: {idle}");
    }
}
