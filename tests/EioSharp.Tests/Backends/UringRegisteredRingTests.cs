using EioSharp.Backends.Uring;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The registered ring (session 39, h217, issue 14, docs/rationale.md §214): a domain's ring is registered in its thread's
/// io_uring context at its first entry (IORING_REGISTER_RING_FDS), its entries name it by that index
/// (IORING_ENTER_REGISTERED_RING), and its teardown unregisters it. Checked by the ring's state and by reuse: a
/// request/response loop runs on a registered ring; the kernel allows 16 registered rings per thread, so 40 runs one after
/// the other on one thread are each registered only if each teardown gave its index back. In the FdCount collection with
/// the other io_uring tests that read the ring's state.
/// </summary>
[Collection("FdCount")]
public class UringRegisteredRingTests
{
    private static (bool Ok, bool Registered, bool Deferred) Exchange(bool on, int rounds) =>
        Run(async env =>
        {
            (bool, bool, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                UringPoller? ring = null;
                bool served = await ServeRequestResponseAsync(env, sw, rounds, 7, r => ring = r);
                result = (served, ring!.RingRegistered, ring.DeferTaskRun);
            });
            return result;
        }, new EioBackendOptions { UringWriteBehind = true, UringRegisteredRing = on });

    [SkippableFact]
    public void ARequestResponseLoopRunsOnARegisteredRing()
    {
        var (ok, registered, deferred) = Exchange(on: true, 200);
        Assert.True(ok);
        // Registered at the first entry of a ring made disabled (SINGLE_ISSUER | DEFER_TASKRUN, 6.1+; the registration
        // itself is 5.18+): a kernel without those rings enters by fd.
        Assert.Equal(deferred, registered);
    }

    [SkippableFact]
    public void WithTheOptionOffTheRingIsEnteredByItsFd()
    {
        var (ok, registered, _) = Exchange(on: false, 50);
        Assert.True(ok);
        Assert.False(registered);
    }

    [SkippableFact]
    public void EachTeardownGivesTheThreadsIndexBack()
    {
        int registered = 0, runs = 40;
        string failed = "";
        bool deferred = false;
        for (int i = 0; i < runs; i++)
        {
            var (r, d) = Run(async env =>
            {
                (bool, bool) result = default;
                await Switch.RunAsync(async sw =>
                {
                    // A byte through a loopback pair: the accept and the read complete only through entries of the ring
                    // (a 1 ms sleep did not always enter it: a first run's JIT can make its first round longer than that).
                    var (client, server) = await PairAsync(env, sw);
                    await client.WriteAsync(new byte[1]);
                    await client.FlushAsync();
                    await server.ReadAsync(new byte[1]);
                    var ring = UringOp.CurrentRing();
                    result = (ring.RingRegistered, ring.DeferTaskRun);
                });
                return result;
            });
            registered += r ? 1 : 0;
            failed += r ? "" : $" {i}";
            deferred = d;
        }

        Skip.IfNot(deferred, "the ring has no DEFER_TASKRUN (kernel < 6.1): it is entered by fd");
        Assert.True(runs == registered, $"{registered} of {runs} runs registered; not:{failed}");
    }
}
