// Linked into the unit-test projects (EioSharp.Tests, EioSharp.Kv.Tests, EioSharp.StatsdFilter.Tests): one source, no
// extra assembly. Issue: CI fidelity (session 17, h118).
namespace EioSharp.TestSupport;

/// <summary>
/// Measures the bytes a piece of code allocates on the calling thread as the <em>fewest</em> over several warm rounds
/// (<see cref="GC.GetAllocatedBytesForCurrentThread"/> around each round), not one round's count: the runtime itself
/// allocates now and then on a test's thread (tier-up, call counting, OSR, a type's first use: CI saw 160 B in one
/// round), and that lands in some round, not every one. A per-operation allocation of the measured code lands in every
/// round, so the fewest still shows it. Round 0 is a warm-up and is not counted; at least 3 rounds are counted.
/// </summary>
/// <remarks>
/// The meter makes no allocation between <see cref="Start"/> and <see cref="Stop"/>, so it can wrap code inline, in async
/// code too (no closure, no state-machine box of its own inside the window):
/// <code>
/// var meter = new AllocationMeter();
/// while (meter.NextRound()) { setup(); meter.Start(); work(); meter.Stop(); check(); }
/// Assert.Equal(0, meter.Fewest);
/// </code>
/// A round must start and stop on the same thread (the count is per thread); <see cref="Stop"/> throws otherwise.
/// </remarks>
internal sealed class AllocationMeter
{
    /// <summary>Counted rounds when none are given (after the warm-up round).</summary>
    public const int DefaultRounds = 5;

    private readonly int _rounds;
    private int _round = -1;
    private int _counted;
    private long _start = -1;
    private int _startThread;
    private long _fewest = long.MaxValue;
    private long _last;

    /// <param name="rounds">Counted rounds after the warm-up round: at least 3.</param>
    public AllocationMeter(int rounds = DefaultRounds)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 3);
        _rounds = rounds;
    }

    /// <summary>Round 0 is the warm-up; 1..rounds are counted.</summary>
    public int Round => _round;

    /// <summary>True during round 0 (not counted).</summary>
    public bool IsWarmUp => _round == 0;

    /// <summary>Moves to the next round; false once the warm-up and every counted round have run.</summary>
    public bool NextRound()
    {
        if (_start >= 0)
        {
            throw new InvalidOperationException($"round {_round} was started and not stopped");
        }

        if (_round >= 0 && _round <= _rounds && _last < 0)
        {
            throw new InvalidOperationException($"round {_round} was never measured");
        }

        _round++;
        _last = -1;
        return _round <= _rounds;
    }

    /// <summary>Opens this round's window (reads the thread's allocated-bytes counter).</summary>
    public void Start()
    {
        if (_round < 0 || _round > _rounds)
        {
            throw new InvalidOperationException("Start outside a round: call NextRound first");
        }

        _startThread = Environment.CurrentManagedThreadId;
        _start = GC.GetAllocatedBytesForCurrentThread();
    }

    /// <summary>Closes the window; returns this round's bytes and keeps the fewest of the counted rounds.</summary>
    public long Stop()
    {
        long now = GC.GetAllocatedBytesForCurrentThread();
        if (_start < 0)
        {
            throw new InvalidOperationException("Stop without Start");
        }

        if (Environment.CurrentManagedThreadId != _startThread)
        {
            throw new InvalidOperationException("a round stopped on another thread than it started on: its bytes mean nothing");
        }

        long bytes = now - _start;
        _start = -1;
        _last = bytes;
        if (_round > 0)
        {
            _fewest = Math.Min(_fewest, bytes);
            _counted++;
        }

        return bytes;
    }

    /// <summary>The fewest bytes of any counted round; throws unless every round has been measured.</summary>
    public long Fewest => _counted == _rounds && _round > _rounds
        ? _fewest
        : throw new InvalidOperationException($"{_counted} of {_rounds} counted rounds measured");

    /// <summary>The fewest bytes <paramref name="action"/> allocates on this thread in one call, over
    /// <paramref name="rounds"/> calls after a warm-up call.</summary>
    public static long Measure(Action action, int rounds = DefaultRounds)
    {
        var meter = new AllocationMeter(rounds);
        while (meter.NextRound())
        {
            meter.Start();
            action();
            meter.Stop();
        }

        return meter.Fewest;
    }
}
