namespace EioSharp.Kv;

/// <summary>
/// Two cohorts of writers under <c>appendfsync always</c> (session 25, h156, issue 14; docs/rationale.md §150): the store
/// answers one cohort of connections while the clients answer the other, as redis-server's clients take turns.
/// </summary>
/// <remarks>
/// A round takes every request that arrived, except a write (<see cref="StoreRequest.CohortWriter"/>) of a connection the
/// round just before answered (its cohort is the one the clients are now answering): such a write is held back, in
/// arrival order, and runs first in the next round. A round also takes at most half the writers (<c>target</c>) of new
/// arrivals beyond what it holds over: the rest is held back too, which splits one cohort of all the writers into two and
/// keeps the two near half each. A request is held at most once (held requests always run in the next round), and a
/// connection has one batch in flight, so no request overtakes an earlier one of its connection. A round that would be
/// empty (every arrival held) runs the held writes instead (up to the target): the other cohort stayed away, the round
/// runs with who is there. After the round, <see cref="EndRound"/> marks the round's writers and returns how many of the
/// other cohort (answered one round earlier) are not back yet: the store's hinted wait waits for that many.
/// A reader (no command that may append) is never held and joins no cohort. Connections that come later join the round
/// they arrive in; connections that leave are expected once (one wait to the limit) and then no more. Not thread-safe:
/// the store loop's only.
/// </remarks>
internal sealed class AlwaysCohorts
{
    private readonly List<StoreRequest> _held = [];
    private long _round; // the current round's number (rounds of the store loop, with or without cohorts)
    private int _lastSize; // writers answered by the round before (the other cohort once this round is done); 0: none known
    private int _arrivedFromLast; // of those, how many came back before this round began

    /// <summary>Requests held back, in arrival order (they run first in the next round).</summary>
    public IReadOnlyList<StoreRequest> Held => _held;

    /// <summary>Rounds taken with cohorts, and writes held back in them (for tests and diagnostics).</summary>
    public long Rounds, HeldWrites;

    /// <summary>Starts a round without cohorts (the policy is not <c>always</c>, too few writers, the server is stopping):
    /// the held requests go first into <paramref name="round"/>, nothing is held, and the cohorts are forgotten.</summary>
    public void TakeWithout(List<StoreRequest> round)
    {
        _round++;
        round.AddRange(_held);
        _held.Clear();
        _lastSize = 0;
        _arrivedFromLast = 0;
    }

    /// <summary>Starts a round with cohorts: fills <paramref name="round"/> with the held requests and those of
    /// <paramref name="arrivals"/> (arrival order) not held back; the rest is held for the next round.</summary>
    /// <param name="round">The round's requests (appended to).</param>
    /// <param name="arrivals">Requests taken from the queue for this round, oldest first.</param>
    /// <param name="target">The most writers the round takes of new arrivals: about half the writers (at least 1).</param>
    /// <param name="mayAppend">Whether a request may append to the AOF (a write, a script, EXEC).</param>
    public void Take(List<StoreRequest> round, List<StoreRequest> arrivals, int target, Func<StoreRequest, bool> mayAppend)
    {
        long just = _round; // the round before this one
        _round++;
        Rounds++;
        int writers = 0;
        foreach (var r in _held)
        {
            round.Add(r);
            writers += r.CohortWriter ? 1 : 0;
        }

        _held.Clear();
        int arrived = 0;
        foreach (var r in arrivals)
        {
            bool fromLast = r.CohortRound == just && just > 0;
            arrived += fromLast ? 1 : 0;
            bool writer = r.CohortWriter = mayAppend(r);
            if (writer && (fromLast || writers >= target))
            {
                _held.Add(r);
                continue;
            }

            round.Add(r);
            writers += writer ? 1 : 0;
        }

        if (round.Count == 0 && _held.Count > 0)
        {
            // Every arrival was held: run with who is there (up to the target), and let the cohorts re-form.
            int take = Math.Min(_held.Count, Math.Max(1, target));
            round.AddRange(_held.GetRange(0, take));
            _held.RemoveRange(0, take);
        }

        HeldWrites += _held.Count;
        _arrivedFromLast = arrived;
    }

    /// <summary>Ends a round taken with <see cref="Take"/>: marks its writers (those not parked on a blocking command) as the
    /// cohort just answered, and returns how many writers of the other cohort are not back yet (what the next round waits
    /// for; 0: wait for none, run the held requests next).</summary>
    public int EndRound(List<StoreRequest> round)
    {
        int size = 0;
        foreach (var r in round)
        {
            if (r.CohortWriter && !r.Parked)
            {
                r.CohortRound = _round;
                size++;
            }
        }

        int expect = Math.Max(0, _lastSize - _arrivedFromLast);
        _lastSize = size;
        _arrivedFromLast = 0;
        return expect;
    }

    /// <summary>The held requests, taken out (the run failed or the server stops: the caller answers them).</summary>
    public List<StoreRequest> TakeHeld()
    {
        var held = new List<StoreRequest>(_held);
        _held.Clear();
        _lastSize = 0;
        _arrivedFromLast = 0;
        return held;
    }
}
