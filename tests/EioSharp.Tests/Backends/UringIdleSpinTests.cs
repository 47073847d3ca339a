using EioSharp.Backends.Uring;
using EioSharp.IO;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="EioBackendOptions.UringIdleSpin"/> (session 26, h159, issue 12): an idle io_uring domain whose pre-pass
/// found nothing spins up to the domain spin budget for a completion's task work before it sleeps, and backs off after
/// spins that find nothing. Checked here by counts, never by time: off, nothing spins; on, a domain that only sleeps on
/// timers spins a handful of times over 200 sleeps (the backoff), not once per sleep; a request/response loop against a
/// peer thread stays correct and its idle transitions spin. In the FdCount collection with the other io_uring tests that
/// read the ring's counters.
/// </summary>
[Collection("FdCount")]
public class UringIdleSpinTests
{
    private static readonly EioBackendOptions Spin = new() { UringWriteBehind = true, UringIdleSpin = true };

    private static (long Spins, long Hits, bool Deferred) TimerSleeps(EioBackendOptions options, int sleeps) =>
        Run(async env =>
        {
            var ring = UringOp.CurrentRing();
            long spins0 = ring.IdleSpins, hits0 = ring.IdleSpinHits;
            for (int i = 0; i < sleeps; i++)
            {
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
            }

            return (ring.IdleSpins - spins0, ring.IdleSpinHits - hits0, ring.DeferTaskRun);
        }, options);

    [SkippableFact]
    public void WithTheSpinOffAnIdleDomainNeverSpins()
    {
        var (spins, _, _) = TimerSleeps(WriteBehind, 50);
        Assert.Equal(0, spins);
    }

    [SkippableFact]
    public void ADomainThatOnlySleepsOnTimersBacksOffItsSpin()
    {
        Skip.If(Environment.ProcessorCount == 1, "one core: the domains never spin");
        var (spins, hits, deferred) = TimerSleeps(Spin, 200);
        Skip.IfNot(deferred, "the ring has no DEFER_TASKRUN (kernel < 6.1): it never spins");
        // Two misses, then 1, 2, 4 ... 64 idle transitions skipped after each miss: 200 sleeps leave at most ~12 spins
        // (a hit, e.g. a completion of the runtime's own, only resets the backoff: it is counted as a spin too).
        Assert.True(spins >= 2, $"spins: {spins}");
        Assert.True(spins <= 12 + 3 * hits, $"spins: {spins}, hits: {hits} over 200 timer sleeps");
    }

    [SkippableFact]
    public void ARequestResponseLoopWithTheSpinStaysCorrectAndSpins()
    {
        const int roundTrips = 300;
        var (ok, spins, deferred) = Run(async env =>
        {
            (bool, long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                UringPoller? ring = null;
                long spins0 = 0;
                bool served = await ServeRequestResponseAsync(env, sw, roundTrips, 2, r => (ring, spins0) = (r, r.IdleSpins));
                result = (served, ring!.IdleSpins - spins0, ring.DeferTaskRun);
            });
            return result;
        }, Spin);
        Assert.True(ok);
        Skip.If(Environment.ProcessorCount == 1, "one core: the domains never spin");
        Skip.IfNot(deferred, "the ring has no DEFER_TASKRUN (kernel < 6.1): it never spins");
        Assert.True(spins >= 1, $"idle spins over {roundTrips} round trips: {spins}");
    }
}
