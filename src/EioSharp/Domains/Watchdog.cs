using System.Diagnostics;

namespace EioSharp.Domains;

/// <summary>Reports domains whose current fiber runs too long without returning to the scheduler (a blocking call or a long
/// computation on a domain thread).</summary>
/// <remarks>
/// [ext] Not in Eio. The .NET answer to Erlang's preemption: since a fiber cannot be preempted, the watchdog detects and
/// reports; it never kills or interrupts anything.
/// <para><b>What it watches</b>: every live domain of the process (each registers itself when its scheduler starts). A
/// domain stalls when one work item (one run of a fiber between two suspension points) lasts longer than the threshold.
/// For each stall the watchdog writes exactly one warning naming the domain, the fiber (id and name) and its switch path
/// (<see cref="Switch.Path"/>), and how long the item had run when it was noticed.</para>
/// <para><b>Cost</b>: the scheduler numbers each work item (no clock read per item); the fiber travels with the work item, so naming it
/// costs one field write per item. While at least one watchdog runs, each suspension also records its fiber (one
/// <see cref="AsyncLocal{T}"/> read). Continuations of ordinary .NET tasks (S17a) are reported as "unknown fiber".
/// The watchdog's own thread wakes every quarter threshold (at least every millisecond).</para>
/// <para><b>Lifetime</b>: owned by a switch: it stops when the switch finishes, or when disposed.</para>
/// </remarks>
public sealed class Watchdog : IDisposable
{
    /// <summary>The default threshold: 100 ms.</summary>
    public static readonly TimeSpan DefaultThreshold = TimeSpan.FromMilliseconds(100);

    private readonly long _thresholdTicks; // Stopwatch ticks
    private readonly Action<string> _report;
    private readonly ManualResetEventSlim _stop = new(false);
    private readonly Dictionary<Domain, (long Item, long FirstSeen, bool Reported)> _watched = [];
    private readonly int _intervalMs;
    private readonly Func<long> _clock; // Stopwatch ticks
    private int _disposed;

    private Watchdog(TimeSpan threshold, Action<string> report, Func<long>? clock = null)
    {
        Threshold = threshold;
        _clock = clock ?? Stopwatch.GetTimestamp;
        _thresholdTicks = (long)(threshold.TotalSeconds * Stopwatch.Frequency);
        _report = report;
        _intervalMs = Math.Max(1, (int)(threshold.TotalMilliseconds / 4));
    }

    /// <summary>The time a work item may run before it is reported.</summary>
    public TimeSpan Threshold { get; }

    /// <summary>The number of stalls reported so far.</summary>
    public int StallsReported { get; private set; }

    /// <summary>Starts a watchdog owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The owning switch: the watchdog stops when it finishes.</param>
    /// <param name="threshold">How long one work item may run before it is reported (default <see cref="DefaultThreshold"/>); must be positive.</param>
    /// <param name="report">Receives each warning (one line); default <see cref="TraceLog.Line(string)"/>. Called on the
    /// watchdog's thread, so it must be thread-safe and must not block for long.</param>
    /// <returns>The running watchdog.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sw"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threshold"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished or belongs to another domain (S17).</exception>
    public static Watchdog Start(Switch sw, TimeSpan? threshold = null, Action<string>? report = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        var t = threshold ?? DefaultThreshold;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(t, TimeSpan.Zero, nameof(threshold));
        var w = new Watchdog(t, report ?? TraceLog.Line);
        sw.OnRelease(w.Dispose);
        Interlocked.Increment(ref Domain.WatchdogsRunning);

        // Start (not UnsafeStart): the execution context flows, so a TraceLog redirection of the starting fiber applies.
        var thread = new Thread(w.Loop) { IsBackground = true, Name = "eio watchdog" };
        thread.Start();
        return w;
    }

    /// <summary>Starts a watchdog without its own thread: the caller runs each scan (<see cref="Scan"/>) with a clock it
    /// controls, so tests decide exactly when the watchdog looks and how much time has passed (virtual time).</summary>
    /// <param name="sw">The owning switch.</param>
    /// <param name="threshold">How long one work item may run before it is reported.</param>
    /// <param name="report">Receives each warning.</param>
    /// <param name="clock">The current time in <see cref="Stopwatch"/> ticks, read once per scan.</param>
    /// <returns>The watchdog; call <see cref="Scan"/> from one thread at a time.</returns>
    internal static Watchdog StartDriven(Switch sw, TimeSpan threshold, Action<string> report, Func<long> clock)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(threshold, TimeSpan.Zero, nameof(threshold));
        var w = new Watchdog(threshold, report, clock);
        sw.OnRelease(w.Dispose);
        Interlocked.Increment(ref Domain.WatchdogsRunning);
        return w;
    }

    /// <summary>Stops the watchdog. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Interlocked.Decrement(ref Domain.WatchdogsRunning);
            _stop.Set();
        }
    }

    private void Loop()
    {
        while (!_stop.Wait(_intervalMs))
        {
            Scan();
        }

        _stop.Dispose();
    }

    /// <summary>One look at every domain: reports each work item that has run for the threshold since this watchdog first
    /// saw it. Called by the watchdog's thread, or by the test driving a <see cref="StartDriven"/> watchdog.</summary>
    internal void Scan()
    {
        long now = _clock();
        var domains = DomainRegistry.Snapshot;
        foreach (var d in domains)
        {
            // The scheduler numbers its work items instead of timestamping each one; a domain is stalled when the same
            // item is still running after the threshold, measured from when this watchdog first saw it running (so a stall
            // is noticed between one threshold and one threshold plus a scan interval after it began).
            long item = d.CurrentItem;
            if (item == 0)
            {
                _watched.Remove(d);
                continue;
            }

            if (!_watched.TryGetValue(d, out var seen) || seen.Item != item)
            {
                _watched[d] = (item, now, false);
                continue;
            }

            if (seen.Reported || now - seen.FirstSeen < _thresholdTicks)
            {
                continue;
            }

            var frame = d.RunningFrame;
            if (d.CurrentItem != item)
            {
                continue; // the item ended while we looked; the frame may belong to the next one
            }

            _watched[d] = (item, seen.FirstSeen, true);
            StallsReported++;
            try
            {
                _report(Describe(d, frame, Stopwatch.GetElapsedTime(seen.FirstSeen, now)));
            }
            catch (Exception)
            {
                // A failing sink must not stop the watchdog.
            }
        }

        if (_watched.Count > domains.Length)
        {
            foreach (var gone in _watched.Keys.Where(k => Array.IndexOf(domains, k) < 0).ToList())
            {
                _watched.Remove(gone);
            }
        }
    }

    private static string Describe(Domain d, FiberFrame? frame, TimeSpan elapsed)
    {
        string fiber = frame is null ? "unknown fiber" : frame.Fiber.ToString();
        string path = frame?.Switch?.Path ?? frame?.Fiber.Owner?.Path ?? "(no switch)";
        string dump = frame is null ? string.Empty : "; dump: " + EioDiagnostics.DescribeFiber(d, frame.Fiber);
        return $"watchdog: domain {d.Id} ({d.Name}) has run one work item for at least {elapsed.TotalMilliseconds:F0} ms without " +
            $"returning to its scheduler: {fiber} in switch {path}{dump}";
    }
}
