namespace EioSharp.Tests.Core;

/// <summary>The loop shape of bench CoreFirst.FirstAsync, shared by the race tests (issue 20): a forked racer that wins
/// after a yield, and a last function that waits to be cancelled.</summary>
internal static class RaceLoop
{
    /// <summary>The winner: yields once, then returns 1.</summary>
    public static async Task<int> FastAsync()
    {
        await Fiber.YieldAsync();
        return 1;
    }

    /// <summary>The loser: waits for its cancellation (never returns a value).</summary>
    public static async Task<int> SlowAsync()
    {
        await Fiber.AwaitCancelAsync();
        return 0;
    }

    /// <summary>Bytes allocated per race: the fewest over warm rounds (<see cref="AllocationMeter"/>) of
    /// <paramref name="races"/> races of <see cref="FastAsync"/> and <see cref="SlowAsync"/>, each awaited directly or, with
    /// <paramref name="asTask"/>, through <see cref="ValueTask{TResult}.AsTask"/>. Run it inside a fiber.</summary>
    public static async Task<double> BytesPerRaceAsync(int races, bool asTask = false, int rounds = AllocationMeter.DefaultRounds)
    {
        var meter = new AllocationMeter(rounds);
        while (meter.NextRound())
        {
            meter.Start();
            for (int i = 0; i < races; i++)
            {
                int v = asTask ? await Fiber.FirstAsync(FastAsync, SlowAsync).AsTask() : await Fiber.FirstAsync(FastAsync, SlowAsync);
                Assert.Equal(1, v);
            }

            meter.Stop();
        }

        return meter.Fewest / (double)races;
    }
}
