namespace EioSharp.Backends.Uring;

/// <summary>
/// The decision behind <see cref="EioBackendOptions.UringArrivalSpin"/> (session 34, h194, issue 12), apart from the ring so
/// that it can be checked by counts: two running averages (weight 1/4 for each new sample) of an io_uring domain's idle
/// gaps (going idle past the pre-pass to the next work, in Stopwatch ticks; a sample is capped at 8 budgets, so one
/// long sleep puts the average over the budget at once) and of the completions its busy stretches reaped. The next idle
/// transition spins for twice the average gap, at most the budget, when the average gap is under the budget and the
/// stretches reaped at least <see cref="MinCompletionsPerStretch"/> on average; else it sleeps at once. It starts as if
/// after long sleeps (no spin until short gaps were seen). Domain thread only.
/// </summary>
internal struct ArrivalGaps
{
    /// <summary>The least average of completions per busy stretch that lets the domain spin: a lone client's request
    /// and reply is one receive's completion per stretch (its send posts none with write-behind).</summary>
    internal const int MinCompletionsPerStretch = 3;

    private readonly long _budget; // ticks (0: off)
    private long _gapAverage; // ticks
    private int _stretchAverage8; // completions per busy stretch, times 8

    /// <param name="budgetTicks">The longest spin, in Stopwatch ticks (0: never spin).</param>
    internal ArrivalGaps(long budgetTicks)
    {
        _budget = Math.Max(0, budgetTicks);
        _gapAverage = 8 * _budget;
    }

    /// <summary>Whether the spin is configured at all.</summary>
    internal readonly bool Enabled => _budget > 0;

    /// <summary>The average idle gap, in Stopwatch ticks.</summary>
    internal readonly long GapAverage => _gapAverage;

    /// <summary>The average completions per busy stretch.</summary>
    internal readonly double CompletionsPerStretch => _stretchAverage8 / 8.0;

    /// <summary>The spin the next idle transition would make, in Stopwatch ticks (0: sleep at once).</summary>
    internal readonly long Budget => _budget > 0 && _gapAverage < _budget && _stretchAverage8 >= 8 * MinCompletionsPerStretch
        ? Math.Min(_budget, 2 * _gapAverage)
        : 0;

    /// <summary>A busy stretch ended (the domain is idle) after reaping <paramref name="completions"/>; returns the spin
    /// to make now (<see cref="Budget"/>).</summary>
    internal long StretchEnded(long completions)
    {
        int sample = (int)Math.Min(Math.Max(completions, 0), 64) * 8;
        _stretchAverage8 += (sample - _stretchAverage8) >> 2;
        return Budget;
    }

    /// <summary>An idle gap of <paramref name="ticks"/> ended (a spin's hit, or the sleep after a spin or none).</summary>
    internal void GapEnded(long ticks)
    {
        long sample = Math.Min(Math.Max(ticks, 0), 8 * _budget);
        _gapAverage += (sample - _gapAverage) >> 2;
    }
}
