namespace EioSharp.Kv.Tests;

/// <summary>The hinted wait's count under <c>appendfsync always</c> with overlapped rounds (session 33, h189,
/// <see cref="StoreOwner.AlwaysOverlap"/>): after a round the store waits for the other cohort of writers, at least half
/// of them, so that two cohorts of even size form and an uneven split evens out.</summary>
public sealed class AlwaysOverlapTests
{
    [Theory]
    [InlineData(50, 50, 25)] // one cohort of all the writers: the next round waits for half of them (the first returns)
    [InlineData(50, 25, 25)] // two even cohorts: the other one
    [InlineData(50, 4, 46)] // a small round: the rest of the writers, not half (the large cohort stays whole)
    [InlineData(50, 46, 25)] // a large round: half, not the 4 of the small cohort (which the large cohort's early returns join)
    [InlineData(51, 51, 26)] // odd: rounded up
    [InlineData(16, 20, 8)] // more requests than writers (readers in the round): half
    public void The_wait_expects_the_other_cohort_and_at_least_half_of_the_writers(int writers, int roundSize, int expected) =>
        Assert.Equal(expected, StoreOwner.OverlapExpect(writers, roundSize));

    [Fact]
    public void A_sequence_of_rounds_that_each_take_what_the_wait_expected_evens_out_to_two_cohorts()
    {
        // A closed loop whose rounds are exactly the wait's count: from one cohort of 50 or an uneven 4/46, the rounds
        // become 25, 25, ... within two rounds.
        foreach (int first in new[] { 50, 4, 46, 1 })
        {
            int round = first;
            var sizes = new List<int>();
            for (int i = 0; i < 6; i++)
            {
                round = StoreOwner.OverlapExpect(50, round);
                sizes.Add(round);
            }

            Assert.All(sizes.Skip(2), s => Assert.Equal(25, s));
        }
    }
}
