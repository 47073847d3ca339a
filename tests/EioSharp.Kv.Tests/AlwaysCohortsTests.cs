using static EioSharp.Kv.Tests.StoreRequests;

namespace EioSharp.Kv.Tests;

/// <summary>The two cohorts of writers under <c>appendfsync always</c> (<see cref="AlwaysCohorts"/>, session 25, h156): which
/// requests a round takes, which it holds back (and in what order), and how many writers the next round waits for. By
/// count: each <see cref="StoreRequest"/> stands for one connection (a connection has one batch in flight).</summary>
public sealed class AlwaysCohortsTests
{
    private static readonly Func<StoreRequest, bool> s_mayAppend = StoreOwner.MayAppend;

    private static StoreRequest Set(int i) => Request(Cmd("SET", $"k{i}", "v"));

    private static StoreRequest Get(int i) => Request(Cmd("GET", $"k{i}"));

    /// <summary>Takes one round of <paramref name="arrivals"/>; returns the round.</summary>
    private static List<StoreRequest> Take(AlwaysCohorts cohorts, int target, params StoreRequest[] arrivals)
    {
        var round = new List<StoreRequest>();
        cohorts.Take(round, [.. arrivals], target, s_mayAppend);
        return round;
    }

    [Fact]
    public void AllWritersAtOnceAreSplitIntoTwoCohortsThatAlternate()
    {
        var cohorts = new AlwaysCohorts();
        var conns = Enumerable.Range(0, 20).Select(Set).ToArray();

        // Round 1: all 20 arrive together; half run, the other half is held back, in arrival order.
        var r1 = Take(cohorts, 10, conns);
        Assert.Equal(conns[..10], r1);
        Assert.Equal(conns[10..], cohorts.Held);
        Assert.Equal(0, cohorts.EndRound(r1)); // no cohort before: wait for nobody, run the held ones next

        // Round 2: the held half, nothing new; then wait for the 10 answered by round 1.
        var r2 = Take(cohorts, 10);
        Assert.Equal(conns[10..], r2);
        Assert.Empty(cohorts.Held);
        Assert.Equal(10, cohorts.EndRound(r2));

        // Round 3: round 1's cohort comes back, and 3 of round 2's (answered just now) are early: held, not run.
        var r3 = Take(cohorts, 10, [conns[12], .. conns[..10], conns[15], conns[11]]);
        Assert.Equal(conns[..10], r3);
        Assert.Equal([conns[12], conns[15], conns[11]], cohorts.Held);
        Assert.Equal(7, cohorts.EndRound(r3)); // round 2's cohort: 10, of which 3 are back (held)

        // Round 4: the rest of round 2's cohort; the held ones go first.
        StoreRequest[] rest = [.. conns[10..].Except([conns[12], conns[15], conns[11]])];
        var r4 = Take(cohorts, 10, rest);
        Assert.Equal([conns[12], conns[15], conns[11], .. rest], r4);
        Assert.Empty(cohorts.Held);
        Assert.Equal(10, cohorts.EndRound(r4));
        Assert.Equal(4, cohorts.Rounds);
        Assert.Equal(13, cohorts.HeldWrites);
    }

    [Fact]
    public void ReadersAreNeverHeldAndJoinNoCohort()
    {
        var cohorts = new AlwaysCohorts();
        var w = Enumerable.Range(0, 4).Select(Set).ToArray();
        var r1 = Take(cohorts, 4, w);
        Assert.Equal(0, cohorts.EndRound(r1));

        // A writer of round 1 sends a read now: it runs (it is not a write); it counts as back, but is not marked.
        var read = w[0];
        read.Commands.Clear();
        read.Commands.Add(Cmd("GET", "k0"));
        var reader = Get(99);
        var r2 = Take(cohorts, 4, read, reader);
        Assert.Equal([read, reader], r2);
        Assert.Empty(cohorts.Held);
        Assert.Equal(3, cohorts.EndRound(r2)); // the other cohort: round 1's 4, of which one (the read) is back
        Assert.Equal(1, r1[0].CohortRound); // still round 1's mark: its read joined no cohort
        Assert.Equal(-1, reader.CohortRound);
    }

    [Fact]
    public void ARoundOfOnlyHeldWritesRunsWithWhoIsThere()
    {
        var cohorts = new AlwaysCohorts();
        var conns = Enumerable.Range(0, 6).Select(Set).ToArray();
        var r1 = Take(cohorts, 3, conns);
        cohorts.EndRound(r1);
        var r2 = Take(cohorts, 3);
        cohorts.EndRound(r2);

        // Only round 2's cohort came back (round 1's stayed away): rather than an empty round, they run, at most the target.
        var r3 = Take(cohorts, 2, conns[3..]);
        Assert.Equal(conns[3..5], r3);
        Assert.Equal([conns[5]], cohorts.Held);
        cohorts.EndRound(r3);

        // The one left over runs in the next round, ahead of anything new, even beyond the target (held only once).
        var r4 = Take(cohorts, 2, conns[0], conns[1]);
        Assert.Equal([conns[5], conns[0]], r4);
        Assert.Equal([conns[1]], cohorts.Held);
    }

    [Fact]
    public void AParkedWriterJoinsNoCohort()
    {
        var cohorts = new AlwaysCohorts();
        var conns = Enumerable.Range(0, 4).Select(Set).ToArray();
        var r1 = Take(cohorts, 4, conns);
        conns[2].Parked = true; // parked on a blocking command: its next request comes when it is served, not in a turn
        cohorts.EndRound(r1);
        conns[2].Parked = false;
        var r2 = Take(cohorts, 4);
        Assert.Equal(3, cohorts.EndRound(r2)); // round 1's cohort: 3, not 4
        Assert.Equal(-1, conns[2].CohortRound);
    }

    [Fact]
    public void TurningCohortsOffRunsTheHeldRequestsFirstAndForgetsTheCohorts()
    {
        var cohorts = new AlwaysCohorts();
        var conns = Enumerable.Range(0, 4).Select(Set).ToArray();
        var r1 = Take(cohorts, 2, conns);
        cohorts.EndRound(r1);
        var round = new List<StoreRequest>();
        cohorts.TakeWithout(round);
        Assert.Equal(conns[2..], round);
        Assert.Empty(cohorts.Held);

        // Next round with cohorts again: round 1's writers are not the round before's, so nothing is held.
        var r3 = Take(cohorts, 4, conns[0], conns[1]);
        Assert.Equal(conns[..2], r3);
        Assert.Equal(0, cohorts.EndRound(r3)); // no cohort known before
    }

    [Fact]
    public void TakeHeldGivesBackTheHeldRequests()
    {
        var cohorts = new AlwaysCohorts();
        var conns = Enumerable.Range(0, 4).Select(Set).ToArray();
        Take(cohorts, 1, conns);
        Assert.Equal(conns[1..], cohorts.TakeHeld());
        Assert.Empty(cohorts.Held);
    }
}
