using System.Reflection;

namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (h162, rationale §161): a yield on its domain is queued as one reference, the domain's
/// <see cref="YieldSource"/>, which carries the continuation, its state and its frame; at most one yield at a time is
/// carried, the others are queued as three-reference items. Neither changes the run queue's order (S12) nor the frame a
/// continuation resumes in, and the source does not keep a finished method alive once the domain has gone idle.</summary>
public class CarriedYieldTests
{
    // Two methods of one fiber yield at once (the second cannot be carried: the source carries the first) and a second
    // fiber yields after them: every item runs in the order it was queued, in its own frame.
    [Fact]
    public void CarriedAndUncarriedYieldsRunInTheOrderTheyWereQueued() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        int wrongFrame = 0;

        async Task Loop(string name)
        {
            var frame = SynchronizationContext.Current;
            for (int i = 0; i < 3; i++)
            {
                log.Add($"{name}{i}");
                await Fiber.YieldAsync();
                wrongFrame += ReferenceEquals(SynchronizationContext.Current, frame) ? 0 : 1;
            }
        }

        await Switch.RunAsync(sw =>
        {
            Fiber.Fork(sw, () => Task.WhenAll(Loop("a"), Loop("b")));
            Fiber.Fork(sw, () => Loop("c"));
            return Task.CompletedTask;
        });

        Assert.Equal(["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"], log);
        Assert.Equal(0, wrongFrame);
    });

    // The last carried continuation (an async method's state machine) is dropped when the domain goes idle, so a method
    // that yielded and then finished is not kept alive by the domain's yield source.
    [Fact]
    public void TheDomainDropsTheLastCarriedContinuationWhenItGoesIdle() => EioMain.Run(async _ =>
    {
        var domain = Domain.Current!;
        var state = typeof(YieldSource).GetField("_queuedState", BindingFlags.NonPublic | BindingFlags.Instance)!;

        await YieldOnce();
        Assert.NotNull(state.GetValue(domain.Yields)); // kept while the domain is busy: the next yield stores nothing

        // Resolved from another thread only once the domain has gone idle (an event, not a time).
        long idle = domain.IdleWaits;
        var p = Promise.Create<bool>();
        var resolver = Task.Run(() =>
        {
            while (domain.IdleWaits == idle)
            {
                Thread.Sleep(1);
            }

            p.Resolver.Resolve(true);
        });
        await p.Promise.AwaitAsync();
        await resolver;

        Assert.Null(state.GetValue(domain.Yields));

        static async Task YieldOnce() => await Fiber.YieldAsync();
    });
}
