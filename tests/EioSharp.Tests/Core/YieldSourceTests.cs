namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (h143): a yield awaited on its domain goes through the domain's <see cref="YieldSource"/>, armed with the
/// yielding frame by the awaiter's <c>GetAwaiter</c>; the cases where that arming does not describe the await.</summary>
public class YieldSourceTests
{
    // An awaiter registered after a later yield of the domain was armed (hand-written awaiter juggling) is queued with the
    // frame installed when it registers, resumes in order, and its GetResult checks that frame.
    [Fact]
    public void AnAwaiterRegisteredAfterALaterYieldWasArmedResumesInItsFrame() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Switch.RunAsync(async sw =>
        {
            var done = Promise.Create<bool>();
            Fiber.Fork(sw, async () =>
            {
                string me = Fiber.Describe();
                var first = Fiber.YieldAsync().GetAwaiter();
                var second = Fiber.YieldAsync().GetAwaiter(); // arms a later yield: first's token is no longer the last
                first.UnsafeOnCompleted(() =>
                {
                    first.GetResult();
                    log.Add(Fiber.Describe() == me ? "first resumed in its fiber" : "first resumed elsewhere");
                    second.UnsafeOnCompleted(() =>
                    {
                        second.GetResult();
                        log.Add(Fiber.Describe() == me ? "second resumed in its fiber" : "second resumed elsewhere");
                        done.Resolver.Resolve(true);
                    });
                });
                log.Add("registered");
                await done.Promise.AwaitAsync();
            });

            Fiber.Fork(sw, async () =>
            {
                log.Add("other");
                await Fiber.YieldAsync();
                log.Add("other again");
            });
            await Task.CompletedTask;
        });

        Assert.Equal(["registered", "other", "first resumed in its fiber", "other again", "second resumed in its fiber"], log);
    });

    // A yield made on the domain and awaited on the thread pool (the awaitable carried off): the frame is the source, the
    // continuation is posted back, and the code after the await runs on the domain's thread.
    [Fact]
    public void AYieldAwaitedOffItsDomainResumesOnTheDomain() => EioMain.Run(async _ =>
    {
        int domainThread = Environment.CurrentManagedThreadId;
        var y = Fiber.YieldAsync();
        int resumedOn = await Task.Run(async () =>
        {
            await y;
            return Environment.CurrentManagedThreadId;
        });
        Assert.Equal(domainThread, resumedOn);
    });

    // A cancelled fiber's yield throws at resume whichever frame yields: the fiber's first frame here (S13's own test
    // covers an inner frame).
    [Fact]
    public void S13_AYieldOfACancelledFirstFrameThrowsOnResume() => EioMain.Run(async _ =>
    {
        string? outcome = null;
        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => Switch.RunAsync(async sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                try
                {
                    await Fiber.YieldAsync();
                    outcome = "resumed";
                }
                catch (CancelledException)
                {
                    outcome = "cancelled";
                    throw;
                }
            });
            sw.Fail(new InvalidOperationException("stop")); // cancels the switch while the child's yield is queued
            await Task.CompletedTask;
        }));
        Assert.Equal("stop", failure.Message);
        Assert.Equal("cancelled", outcome);
    });

    // h174: the registration tells the domain's thread by its stack address. An awaiter armed on the domain and registered
    // from a thread-pool thread while its token is still the last armed one (no other yield between) is not taken for the
    // domain's: it is posted through the inbox and resumes on the domain's thread, in its frame.
    [Fact]
    public void AnArmedAwaiterRegisteredFromAnotherThreadIsPostedToTheDomain() => EioMain.Run(async _ =>
    {
        int domainThread = Environment.CurrentManagedThreadId;
        string me = Fiber.Describe();
        var resumed = Promise.Create<(int Thread, string Fiber)>();
        var awaiter = Fiber.YieldAsync().GetAwaiter();
        await Task.Run(() => awaiter.UnsafeOnCompleted(() =>
        {
            awaiter.GetResult();
            resumed.Resolver.Resolve((Environment.CurrentManagedThreadId, Fiber.Describe()));
        }));
        var (thread, fiber) = await resumed.Promise.AwaitAsync();
        Assert.Equal(domainThread, thread);
        Assert.Equal(me, fiber);
    });

    // h174: a yield registered deeper in the domain thread's stack than the window the stack-address test covers (32 KB)
    // takes the thread-static test and is carried as any other: the order of the run queue is unchanged (S12).
    [Fact]
    public void AYieldRegisteredDeepInTheStackKeepsItsTurn() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Switch.RunAsync(async sw =>
        {
            Fiber.Fork(sw, async () =>
            {
                await Deep(48, log); // 48 frames of at least 1 KB each: the yield's registration is past the window
                log.Add("deep again");
            });
            Fiber.Fork(sw, async () =>
            {
                log.Add("other");
                await Fiber.YieldAsync();
                log.Add("other again");
            });
            await Task.CompletedTask;
        });

        // The deep yield was queued before the other fiber's: it resumes first (what runs inline after it is not asserted).
        Assert.Equal(["deep yields", "other", "deep resumed"], log.Take(3));
        Assert.True(log.IndexOf("deep resumed") < log.IndexOf("other again"));
        Assert.Contains("deep again", log);
    });

    private static Task Deep(int depth, List<string> log)
    {
        Span<byte> pad = stackalloc byte[1024];
        pad[depth] = 1;
        var task = depth == 0 ? YieldHere(log) : Deep(depth - 1, log);
        return pad[depth] == 1 ? task : throw new InvalidOperationException(); // the buffer is live across the call
    }

    private static async Task YieldHere(List<string> log)
    {
        log.Add("deep yields");
        await Fiber.YieldAsync();
        log.Add("deep resumed");
    }
}
