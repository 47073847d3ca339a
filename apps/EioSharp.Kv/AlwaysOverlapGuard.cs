namespace EioSharp.Kv;

/// <summary>Chooses, under <c>appendfsync always</c>, between overlapped rounds (the hinted wait expects the other cohort
/// of writers, <see cref="StoreOwner.OverlapExpect"/>) and one cohort (the wait expects every writer), by the rate each
/// schedule served requests at in the store's recent rounds (session 34, h195, issue 14; docs/rationale.md §191).</summary>
/// <remarks>
/// <para><b>Why a measured rate, not a model.</b> §152's model says the overlap pays while a round's fsync is shorter than
/// the clients' turn; under load both grow, and the clients' turn also carries a wake-up latency per turn that two cohorts
/// pay twice per cycle of the writers, so no one duration the store can see decides it. The store can see how fast its
/// rounds serve requests: a window's requests (the rounds that started in it) over its length in Stopwatch ticks, from
/// one round's start to the start of the round after the window's last.</para>
/// <para><b>Schedule of the decision.</b> The guard exploits its current schedule for a window of
/// <see cref="MinExploitRequests"/> requests (doubling, up to <see cref="MaxExploitRequests"/>, each time a probe confirms
/// it), then probes the other schedule for <see cref="ProbeRequests"/> requests, and keeps the probed one only if it
/// served at least <see cref="SwitchMargin"/> times the exploited window's rate (then the exploit window starts again at
/// its minimum). The first <see cref="SettleRounds"/> rounds after each change of schedule (the cohorts re-forming) are
/// not measured; nor is a gap (a wait for the clients longer than <see cref="GapMilliseconds"/>: they paused, e.g. between
/// two benchmark runs; a long fsync is the store's own time and is measured): the window keeps what it measured before
/// the gap and goes on after it.</para>
/// <para><b>Thread safety.</b> None: the store loop's, called on its domain.</para>
/// </remarks>
internal sealed class AlwaysOverlapGuard
{
    /// <summary>Requests a probe of the other schedule measures: with 50 writers, 80 overlapped rounds of 25 or 40 rounds
    /// of one cohort; 45-70 ms quietly, 0.2-0.7 s under load (a loaded disk's fsyncs vary from 0.3 to 10 ms and more: a
    /// shorter window decides by a few of them).</summary>
    public const int ProbeRequests = 2000;

    /// <summary>The first exploit window after a change of schedule (requests).</summary>
    public const int MinExploitRequests = 5000;

    /// <summary>The longest exploit window (requests): with a probe of <see cref="ProbeRequests"/> after each, at most
    /// about 5% of the requests (and, when the probed schedule is the slower one by a third, ~2% of the throughput) go to
    /// confirming the decision.</summary>
    public const int MaxExploitRequests = 40000;

    /// <summary>Rounds not measured after a change of schedule or a gap: the wait after the round that changed it is the
    /// first of the new schedule, and two cohorts even out within two rounds more (<see cref="StoreOwner.OverlapExpect"/>).</summary>
    public const int SettleRounds = 3;

    /// <summary>How much faster (ratio of rates) a probed schedule must serve to be kept: measurements of a loaded machine
    /// vary by a few percent from one window to the next.</summary>
    public const double SwitchMargin = 1.05;

    /// <summary>A wait for the clients this long (they paused: the end of a benchmark, a burst) is a gap, which the window
    /// being measured leaves out.</summary>
    public const int GapMilliseconds = 100;

    private readonly long _ticksPerSecond, _gapTicks;
    private bool _probing;
    private long _exploitTarget = MinExploitRequests;
    private int _settle = SettleRounds;
    private long _segmentStart, _windowTicks, _windowRequests, _lastRoundAt = -1;
    private int _previousSize;
    private double _exploitRate;

    /// <summary>A guard that starts with <paramref name="overlap"/> (the schedule before any measurement), on a clock of
    /// <paramref name="ticksPerSecond"/> ticks (Stopwatch's, or a test's).</summary>
    public AlwaysOverlapGuard(bool overlap = true, long ticksPerSecond = 0)
    {
        Overlap = overlap;
        _ticksPerSecond = ticksPerSecond > 0 ? ticksPerSecond : System.Diagnostics.Stopwatch.Frequency;
        _gapTicks = _ticksPerSecond * GapMilliseconds / 1000;
    }

    /// <summary>Whether the wait after the next round expects the other cohort (true) or every writer (false).</summary>
    public bool Overlap { get; private set; }

    /// <summary>Probes started, probes whose schedule was kept, and windows restarted by a gap (diagnostics).</summary>
    public long Probes, Switches, Gaps;

    /// <summary>The rates (requests per second) of the last exploited window of each schedule, for diagnostics; 0: none yet.</summary>
    public double OverlapRate, OneCohortRate;

    /// <summary>Notes the start of a round the guard governs (one that follows a hinted wait of the always path), of
    /// <paramref name="size"/> requests at <paramref name="now"/> (ticks), after a wait for the clients of
    /// <paramref name="waitedTicks"/> (from the previous round's replies to now); may change <see cref="Overlap"/>, which
    /// then applies from this round's wait on.</summary>
    public void OnRound(int size, long now, long waitedTicks)
    {
        if (_interrupted)
        {
            // Rounds the guard does not govern ran since its last (a benchmark's clients connecting or leaving: fewer
            // writers than overlap needs): the window keeps what it measured up to the last governed round's start.
            _interrupted = false;
            Gaps++;
            if (_settle == 0)
            {
                _windowTicks += _lastRoundAt - _segmentStart;
            }

            _settle = SettleRounds;
        }
        else if (_lastRoundAt >= 0 && waitedTicks > _gapTicks)
        {
            // The clients paused (the store's own time, a long fsync included, is never a gap: it is what the schedules
            // differ in): the window keeps what it measured up to the previous round's replies, that round included,
            // and goes on after settling.
            Gaps++;
            if (_settle == 0)
            {
                _windowTicks += now - waitedTicks - _segmentStart;
                _windowRequests += _previousSize;
            }

            _settle = SettleRounds;
        }

        _lastRoundAt = now;
        if (_settle > 0)
        {
            if (--_settle == 0)
            {
                _segmentStart = now;
                _previousSize = size;
            }

            return;
        }

        _windowRequests += _previousSize; // the previous round's requests were served between its start and now
        _previousSize = size;
        if (_windowRequests < (_probing ? ProbeRequests : _exploitTarget))
        {
            return;
        }

        double rate = _windowRequests / (double)(_windowTicks + now - _segmentStart);
        double perSecond = rate * _ticksPerSecond;
        _windowRequests = 0;
        _windowTicks = 0;
        _segmentStart = now;
        if (!_probing)
        {
            _exploitRate = rate;
            _probing = true;
            Probes++;
        }
        else
        {
            _probing = false;
            if (rate >= _exploitRate * SwitchMargin)
            {
                Switches++;
                _exploitTarget = MinExploitRequests; // the probed schedule stays (no settling): confirm it again soon
                NoteRate(perSecond);
                return;
            }

            _exploitTarget = Math.Min(_exploitTarget * 2, MaxExploitRequests);
        }

        NoteRate(perSecond);
        Overlap = !Overlap;
        _settle = SettleRounds;
    }

    /// <summary>Notes a round the guard does not govern (too few writers, no append, another policy): the time until the
    /// next governed round is left out of the window, as a gap.</summary>
    public void Interrupt()
    {
        if (_lastRoundAt >= 0)
        {
            _interrupted = true;
        }
    }

    private bool _interrupted;

    private void NoteRate(double perSecond)
    {
        if (Overlap)
        {
            OverlapRate = perSecond;
        }
        else
        {
            OneCohortRate = perSecond;
        }
    }

}
