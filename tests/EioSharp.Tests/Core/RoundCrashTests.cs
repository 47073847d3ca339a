namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (h167): a round runs its items in one try, not one try per item. A posted callback that throws
/// (a bug in foreign code, which stops the domain) ends the try, and the round goes on with the items after it: every
/// item of the round still runs, and the domain reports the first exception.</summary>
public class RoundCrashTests
{
    // Four callbacks queued in one round: the first and the third throw. The second and the fourth still run, in order,
    // and the run fails with the first exception once the round is over.
    [Fact]
    public void S17_EveryItemOfARoundRunsWhenSomeThrow()
    {
        var log = new List<string>();
        var ex = Assert.Throws<ArithmeticException>(() => EioMain.Run(async _ =>
        {
            var context = SynchronizationContext.Current!;
            context.Post(_ => throw new ArithmeticException("first"), null);
            context.Post(_ => log.Add("second"), null);
            context.Post(_ => throw new ArithmeticException("third"), null);
            context.Post(_ => log.Add("fourth"), null);
            await Fiber.AwaitCancelAsync();
        }));
        Assert.Equal("first", ex.Message);
        Assert.Equal(["second", "fourth"], log);
    }

    // The last item of a round throws: the round ends (nothing is left of it) and the domain fails with it.
    [Fact]
    public void S17_TheLastItemOfARoundThrowing()
    {
        var log = new List<string>();
        var ex = Assert.Throws<ArithmeticException>(() => EioMain.Run(async _ =>
        {
            var context = SynchronizationContext.Current!;
            context.Post(_ => log.Add("first"), null);
            context.Post(_ => throw new ArithmeticException("last"), null);
            await Fiber.AwaitCancelAsync();
        }));
        Assert.Equal("last", ex.Message);
        Assert.Equal(["first"], log);
    }
}
