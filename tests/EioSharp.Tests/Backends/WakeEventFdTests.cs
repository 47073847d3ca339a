using EioSharp.Backends.Epoll;
using EioSharp.Backends.Uring;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The native pollers' cross-thread wake-up (session 13): the eventfd is watched edge-triggered (epoll) or by a multishot
/// poll (io_uring), so a wake-up costs the woken domain no read of the counter and (io_uring) no new poll. Every wake-up must
/// still end a wait although the counter stays non-zero between them; the counter is read back only once per
/// <c>WakeDrainInterval</c> wake-ups.
/// </summary>
public class WakeEventFdTests
{
    /// <summary>More wake-ups than the drain interval, each followed by a wait that must end (a wait that is not woken
    /// times out after 10 s and fails the test).</summary>
    private static void EveryWakeEndsAWait(IDomainPoller poller, int interval)
    {
        for (int i = 0; i < interval + 100; i++)
        {
            poller.Wake();
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            poller.Wait(10_000);
            Assert.True(System.Diagnostics.Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(9), $"wake-up {i} did not end the wait");
        }
    }

    [SkippableFact]
    public void Epoll_EveryWakeUpEndsTheWaitWithoutReadingTheCounter()
    {
        var poller = EpollPoller.TryCreate(EioBackendOptions.Default, out string? error);
        Skip.If(poller is null, $"epoll unavailable: {error}");
        try
        {
            EveryWakeEndsAWait(poller!, EpollPoller.WakeDrainInterval);
            Assert.Equal(1, poller!.WakeDrains);
        }
        finally
        {
            poller!.Dispose();
        }
    }

    [SkippableFact]
    public void Uring_EveryWakeUpEndsTheWaitWithOneMultishotPoll()
    {
        var poller = UringPoller.TryCreate(EioBackendOptions.Default, out string? error);
        Skip.If(poller is null, $"io_uring unavailable: {error}");
        try
        {
            EveryWakeEndsAWait(poller!, UringPoller.WakeDrainInterval);
            Assert.Equal(1, poller!.WakeDrains);
            Assert.Equal(1, poller.WakePollsArmed); // armed once, never ended by the kernel, never re-queued
        }
        finally
        {
            poller!.Dispose();
        }
    }
}
