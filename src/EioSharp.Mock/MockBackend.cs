using EioSharp.Time;

namespace EioSharp.Mock;

// The mock backend's part of the scheduler: its virtual time (and the clocks over it) and its idle policy (time jumps to the
// next timer; nothing to run, no timer and nothing posted from another thread is a deadlock). The kernel's Domain knows
// none of this: it asks its poller (IDomainPoller.TryIdle) before sleeping.

/// <summary>Virtual time for the mock backend: advances only when the domain is idle (to the next timer's deadline).</summary>
internal sealed class VirtualTimeSource : ITimeSource
{
    private long _now;

    /// <summary>Virtual time since the run started, in ticks (100 ns).</summary>
    public long Now => Volatile.Read(ref _now);

    /// <summary>Moves virtual time forward to <paramref name="ticks"/> (never backwards).</summary>
    public void AdvanceTo(long ticks)
    {
        if (ticks > _now)
        {
            Volatile.Write(ref _now, ticks);
        }
    }
}

/// <summary>
/// The mock domain's poller: waits like the portable event poller, but decides idleness itself (<see cref="TryIdle"/>):
/// with nothing to run and nothing pending outside the domain, virtual time jumps to the next timer, and with no timer either
/// it waits <see cref="DeadlockGrace"/> of real time for a post from another thread, then throws <see cref="DeadlockDetectedException"/>.
/// </summary>
/// <remarks>Eio: <c>Eio_mock.Backend</c>'s scheduler loop (which raises <c>Deadlock_detected</c>).</remarks>
internal sealed class MockPoller(VirtualTimeSource time, TimeSpan deadlockGrace) : IDomainPoller
{
    /// <summary>How long the mock backend waits by default for work posted from other threads before it reports a
    /// deadlock: 5 s, because a thread pool starved by a busy machine (parallel test runs) can take more than a second to
    /// run a timer callback such as <c>Task.Delay</c>'s. <see cref="MockMain.Run{T}(Func{Stdenv, Task{T}}, MockNet?, TimeSpan?)"/>
    /// takes another value.</summary>
    internal static readonly TimeSpan DefaultDeadlockGrace = TimeSpan.FromSeconds(5);

    /// <summary>This run's grace (see <see cref="DefaultDeadlockGrace"/>).</summary>
    internal TimeSpan DeadlockGrace { get; } = deadlockGrace;

    private readonly EventPoller _events = new();

    // Spinning for cross-thread posts buys nothing in a deterministic single-domain run.
    public bool SpinBeforeSleep => false;

    public long SpinTicks => 0;

    public bool HasRegistrations => false;

    public string? TraceLinePrefix => "+";

    public bool TryIdle(Domain domain, bool haveTimer, long nextDeadline)
    {
        // An external operation posts its continuation before it calls EndExternal, so once the count reads 0 the
        // queue must be checked again: the loop's emptiness check may predate that post (a false deadlock otherwise).
        if (domain.HasExternalOperations || domain.HasRemoteWork)
        {
            return false;
        }

        if (haveTimer)
        {
            time.AdvanceTo(nextDeadline);
            return true;
        }

        // Nothing can run and no timer is pending. A fiber may still be awaiting an ordinary .NET task (Task.Run,
        // Task.Delay, a socket) whose continuation will be posted from another thread; .NET gives no hook when such an
        // await starts, so wait a grace period of real time for a post before declaring deadlock.
        if (domain.WaitForRemote(DeadlockGrace))
        {
            return true;
        }

        throw new DeadlockDetectedException();
    }

    public void Wait(int timeoutMs) => _events.Wait(timeoutMs);

    public void PollNow() => _events.PollNow();

    public void Wake() => _events.Wake();

    public void Attach(Domain domain) => _events.Attach(domain);

    public void Dispose() => _events.Dispose();
}

/// <summary>The wall clock over the mock's virtual time: the Unix epoch plus virtual time.</summary>
internal sealed class VirtualClock(VirtualTimeSource time) : Clock
{
    public override DateTimeOffset Now => DateTimeOffset.UnixEpoch + TimeSpan.FromTicks(time.Now);

    public override TimeProvider AsTimeProvider() => new VirtualTimeProvider(this);

    private sealed class VirtualTimeProvider(VirtualClock clock) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => clock.Now;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => (clock.Now - DateTimeOffset.UnixEpoch).Ticks;
    }
}

/// <summary>The monotonic clock over the mock's virtual time.</summary>
internal sealed class VirtualMonoClock(VirtualTimeSource time) : MonoClock
{
    public override TimeSpan Now => TimeSpan.FromTicks(time.Now);
}
