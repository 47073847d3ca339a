using EioSharp.Time;

namespace EioSharp.Mock;

/// <summary>A wall clock whose time moves only by hand: <see cref="SetTime"/> and <see cref="Advance"/>. Works under any
/// backend (<see cref="MockMain"/> or <see cref="EioMain"/>); inject it where code takes a <see cref="Clock"/>.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Clock</c> (<c>make</c>, <c>set_time</c>, <c>advance</c>). Starts at the Unix epoch unless told otherwise.
/// A fiber sleeping on it waits until the time is moved to (or past) its deadline; sleeping for zero or less yields once.
/// Under <see cref="MockMain"/>, a fiber waiting on this clock while nothing else can run is a deadlock (as in Eio: this clock
/// does not auto-advance; <see cref="MockMain"/>'s own <see cref="Stdenv.Clock"/> does). <b>Thread safety</b>: every
/// member may be called from any domain; woken fibers resume on their own domains.
/// <para><see cref="AsTimeProvider"/> reports this clock's time; timers created through that provider still use real time.</para>
/// </remarks>
public sealed class MockClock : Clock
{
    private readonly ManualTimeline _timeline;

    /// <summary>Creates the clock.</summary>
    /// <param name="start">The initial time (default: the Unix epoch).</param>
    public MockClock(DateTimeOffset? start = null)
    {
        _timeline = new ManualTimeline(((start ?? DateTimeOffset.UnixEpoch) - DateTimeOffset.UnixEpoch).Ticks);
        Manual = _timeline;
    }

    /// <inheritdoc/>
    public override DateTimeOffset Now => DateTimeOffset.UnixEpoch + TimeSpan.FromTicks(_timeline.Now);

    /// <summary>The number of fibers sleeping on this clock.</summary>
    public int SleeperCount => _timeline.SleeperCount;

    /// <summary>Sets the time and wakes, earliest deadline first, every fiber whose deadline is at or before it.</summary>
    /// <param name="time">The new time (may be earlier than now: a wall clock can be set back).</param>
    /// <remarks>Eio: <c>Eio_mock.Clock.set_time</c>.</remarks>
    public void SetTime(DateTimeOffset time) => _timeline.SetTime((time - DateTimeOffset.UnixEpoch).Ticks);

    /// <summary>Sets the time to the earliest pending sleeper's deadline and wakes the fibers due then.</summary>
    /// <exception cref="InvalidOperationException">No fiber is sleeping on this clock.</exception>
    /// <remarks>Eio: <c>Eio_mock.Clock.advance</c>.</remarks>
    public void Advance()
    {
        if (!_timeline.TryAdvance())
        {
            throw new InvalidOperationException("No further events scheduled on the mock clock.");
        }
    }

    /// <inheritdoc/>
    public override TimeProvider AsTimeProvider() => new Provider(this);

    /// <inheritdoc/>
    public override string ToString() => $"MockClock {Now:O}";

    private sealed class Provider(MockClock clock) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => clock.Now;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => (clock.Now - DateTimeOffset.UnixEpoch).Ticks;
    }
}

/// <summary>A monotonic clock whose time moves only by hand: <see cref="SetTime"/> (forward only) and <see cref="Advance()"/>.</summary>
/// <remarks>Eio: <c>Eio_mock.Clock.Mono</c>. As <see cref="MockClock"/>; starts at zero.</remarks>
public sealed class MockMonoClock : MonoClock
{
    private readonly ManualTimeline _timeline;

    /// <summary>Creates the clock.</summary>
    /// <param name="start">The initial reading (default zero).</param>
    public MockMonoClock(TimeSpan start = default)
    {
        _timeline = new ManualTimeline(start.Ticks);
        Manual = _timeline;
    }

    /// <inheritdoc/>
    public override TimeSpan Now => TimeSpan.FromTicks(_timeline.Now);

    /// <summary>The number of fibers sleeping on this clock.</summary>
    public int SleeperCount => _timeline.SleeperCount;

    /// <summary>Sets the reading and wakes every fiber whose deadline is at or before it.</summary>
    /// <param name="time">The new reading.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="time"/> is earlier than <see cref="Now"/> (a monotonic clock never goes back).</exception>
    /// <remarks>Eio: <c>Eio_mock.Clock.Mono.set_time</c>.</remarks>
    public void SetTime(TimeSpan time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(time, Now);
        _timeline.SetTime(time.Ticks);
    }

    /// <summary>Moves the reading forward by <paramref name="by"/>, waking the fibers due.</summary>
    /// <param name="by">How far; not negative.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="by"/> is negative.</exception>
    public void Advance(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        _timeline.SetTime((Now + by).Ticks);
    }

    /// <summary>Sets the reading to the earliest pending sleeper's deadline and wakes the fibers due then.</summary>
    /// <exception cref="InvalidOperationException">No fiber is sleeping on this clock.</exception>
    /// <remarks>Eio: <c>Eio_mock.Clock.Mono.advance</c>.</remarks>
    public void Advance()
    {
        if (!_timeline.TryAdvance())
        {
            throw new InvalidOperationException("No further events scheduled on the mock clock.");
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"MockMonoClock {Now}";
}
