namespace EioSharp.Tests.Core;

/// <summary>The end of a forked body or racer that suspended (issue 20): one static continuation for all of them, which
/// finds its fiber as the synchronization context installed when it runs. These cases check every way such a body can
/// complete: in its own code on the domain, from another fiber, off the domain, and after its synchronous part changed the
/// installed context.</summary>
public class ForkEndTests
{
    // Bodies that complete off their domain (ConfigureAwait(false) in fiber code, the misuse the library tolerates): .NET posts
    // the end through the fiber, and it runs on the domain with the fiber installed: the switch joins them and sees the failure.
    [Fact]
    public void AForkedBodyThatCompletesOffItsDomainEndsOnTheDomain() => EioMain.Run(async _ =>
    {
        int ended = 0;
        var domainThread = Environment.CurrentManagedThreadId;
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => Switch.RunAsync(sw =>
        {
            for (int i = 0; i < 3; i++)
            {
                Fiber.Fork(sw, async () =>
                {
                    await Task.Delay(1).ConfigureAwait(false);
                    Interlocked.Increment(ref ended);
                });
            }

            Fiber.Fork(sw, async () =>
            {
                await Task.Delay(5).ConfigureAwait(false);
                throw new InvalidOperationException("off the domain");
            });
            return Task.CompletedTask;
        }));
        Assert.Equal("off the domain", failure.Message);
        Assert.Equal(3, ended);
        Assert.Equal(domainThread, Environment.CurrentManagedThreadId);
        Fiber.Check(); // still fiber code of this domain
    });

    // A racer whose function completes off its domain is settled on the domain: its value wins, the other racer is cancelled.
    [Fact]
    public void ARacerThatCompletesOffItsDomainIsSettledOnTheDomain() => EioMain.Run(async _ =>
    {
        bool loserCancelled = false;
        int v = await Fiber.AnyAsync<int>(
        [
            async () =>
            {
                await Task.Delay(1).ConfigureAwait(false);
                return 7;
            },
            async () =>
            {
                try
                {
                    await Fiber.AwaitCancelAsync();
                    return 0;
                }
                catch (CancelledException)
                {
                    loserCancelled = true;
                    throw;
                }
            },
        ]);
        Assert.Equal(7, v);
        Assert.True(loserCancelled);
    });

    // A body whose synchronous part leaves another synchronization context installed (here none) before it returns a pending
    // task: the fork installs the fiber again to register the end, and restores the parent's context.
    [Fact]
    public void ABodyThatChangesTheInstalledContextStillEnds() => EioMain.Run(async _ =>
    {
        var (p, r) = Promise.Create<int>();
        int got = 0;
        await Switch.RunAsync(async sw =>
        {
            var parentContext = SynchronizationContext.Current; // the switch body's frame (h117: an inner frame is the context)
            var tcs = new TaskCompletionSource<int>();
            Fiber.Fork(sw, () =>
            {
                SynchronizationContext.SetSynchronizationContext(null);
                return WaitAndStore(tcs.Task);
            });
            Assert.Same(parentContext, SynchronizationContext.Current);
            await Fiber.YieldAsync();
            tcs.SetResult(5); // completed by another fiber's code: the end is posted to the child
            got = await p.AwaitAsync();
        });
        Assert.Equal(5, got);

        async Task WaitAndStore(Task<int> t)
        {
            r.Resolve(await t);
        }
    });

    // Forks of children that suspend, many more at once than the 4,096 pooled ends there were: no per-fiber delegate for
    // any of them in the steady state (the third round), only .NET's 40 B continuation object per registration. Before,
    // each fork beyond the pool's bound made a delegate bound to its fiber (64 B).
    [Fact]
    public void ManySuspendedForksNeedNoDelegatePerFiber() => EioMain.Run(async _ =>
    {
        const int Forks = 10_000;
        var (plain, yielding, box) = await YieldAllocationTests.MeasureForksAsync(Forks);
        long extra = yielding - plain - box;
        Assert.True(
            extra <= Forks * 48L,
            $"a fork of a yielding child: {yielding / Forks} B, of a child that finishes at once: {plain / Forks} B, the child's box: {box / Forks} B");
    });

    // A fork of a child that finishes at once allocates the fiber (one object: identity, first frame and context) and
    // nothing else here. Bytes per fork on .NET 10 x64: 104. Fields added to the fiber must fit its padding or be
    // justified: h68's and h69's branches each added an int that fitted alone, and merged they grew every fiber by 8 B.
    [Fact]
    public void AForkOfAChildThatFinishesAtOnceAllocatesOnlyTheFiber() => EioMain.Run(async _ =>
    {
        const int Forks = 10_000;
        var (plain, _, _) = await YieldAllocationTests.MeasureForksAsync(Forks);
        Assert.True(plain <= Forks * 104L, $"a fork of a child that finishes at once: {plain / (double)Forks} B");
    });
}
