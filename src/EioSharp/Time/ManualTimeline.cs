namespace EioSharp.Time;

/// <summary>Time that moves only when told (<see cref="SetTime"/>, <see cref="TryAdvance"/>), with the fibers sleeping on
/// it: the core of the mock clocks (Eio_mock.Clock). Safe from any domain; sleepers wake on their own domains.</summary>
internal sealed class ManualTimeline(long start)
{
    private readonly object _sync = new();
    private readonly List<Sleeper> _sleepers = [];
    private long _now = start;
    private long _sequence;

    /// <summary>The current time, in ticks.</summary>
    public long Now
    {
        get
        {
            lock (_sync)
            {
                return _now;
            }
        }
    }

    /// <summary>The number of fibers sleeping on this timeline.</summary>
    public int SleeperCount
    {
        get
        {
            lock (_sync)
            {
                return _sleepers.Count;
            }
        }
    }

    public ValueTask SleepAsync(FiberFrame frame, TimeSpan duration)
    {
        frame.Cancel.ThrowIfCancelled();
        if (duration <= TimeSpan.Zero)
        {
            return YieldOnceAsync();
        }

        var (promise, resolver) = Promise.Create<bool>();
        Sleeper sleeper;
        lock (_sync)
        {
            sleeper = new Sleeper(_now + duration.Ticks, _sequence++, resolver);
            _sleepers.Add(sleeper);
        }

        return new ValueTask(WaitAsync(promise, sleeper));
    }

    private static async ValueTask YieldOnceAsync() => await Fiber.YieldAsync();

    private async Task WaitAsync(Promise<bool> promise, Sleeper sleeper)
    {
        try
        {
            await promise.AwaitAsync();
        }
        finally
        {
            // Cancelled (or woken): a cancelled sleeper no longer counts as a pending timer for Advance.
            lock (_sync)
            {
                _sleepers.Remove(sleeper);
            }
        }
    }

    /// <summary>Sets the time and wakes every sleeper whose deadline is at or before it, earliest first.</summary>
    public void SetTime(long ticks)
    {
        List<Sleeper> due;
        lock (_sync)
        {
            _now = ticks;
            due = _sleepers.Where(s => s.Deadline <= ticks).OrderBy(s => s.Deadline).ThenBy(s => s.Sequence).ToList();
            foreach (var s in due)
            {
                _sleepers.Remove(s);
            }
        }

        foreach (var s in due)
        {
            s.Resolver.TryResolve(true);
        }
    }

    /// <summary>Moves the time to the earliest sleeper's deadline and wakes the sleepers due then; false if none sleeps.</summary>
    public bool TryAdvance()
    {
        long next;
        lock (_sync)
        {
            if (_sleepers.Count == 0)
            {
                return false;
            }

            next = _sleepers.Min(s => s.Deadline);
        }

        SetTime(Math.Max(next, Now));
        return true;
    }

    private sealed record Sleeper(long Deadline, long Sequence, Resolver<bool> Resolver);
}
