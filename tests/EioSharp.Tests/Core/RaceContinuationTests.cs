namespace EioSharp.Tests.Core;

/// <summary>Issue 20 (session 13): a race is its own continuation (no async frame): the last function's end is run inline
/// when it completes in the caller's own code, posted to the caller's fiber otherwise, and the race's task completes only
/// when every function has ended (S11's join), on the caller's domain.</summary>
public class RaceContinuationTests
{
    // The last function finishes on the thread pool (ConfigureAwait(false) in fiber code): the race's end is posted back to
    // the caller's fiber, so the caller resumes on its domain thread, in its own fiber, with the winner's value.
    [Fact]
    public void LastFunctionEndingOffTheDomainResumesTheCallerOnItsDomain() => EioMain.Run(async _ =>
    {
        int thread = Environment.CurrentManagedThreadId;
        var loser = new List<string>();
        int v = await Fiber.FirstAsync(
            async () =>
            {
                try
                {
                    await Fiber.AwaitCancelAsync();
                    return 0;
                }
                finally
                {
                    loser.Add($"cleanup:{Environment.CurrentManagedThreadId == thread}");
                }
            },
            async () =>
            {
                await Task.Delay(1).ConfigureAwait(false);
                return 5;
            });
        Assert.Equal(5, v);
        Assert.Equal(thread, Environment.CurrentManagedThreadId);
        Assert.Equal(["cleanup:True"], loser);
        await Fiber.YieldAsync(); // still fiber code
    });

    // The last function's task is completed by another fiber (outside the race): its end is posted to the caller's fiber
    // rather than run inside the other fiber's code; the forked racer, cancelled, has finished before the race returns.
    [Fact]
    public void LastFunctionCompletedByAnotherFiberIsSettledInTheCallersFiber() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Switch.RunAsync(async sw =>
        {
            var tcs = new TaskCompletionSource<int>();
            Fiber.Fork(sw, async () =>
            {
                await Fiber.YieldAsync();
                await Fiber.YieldAsync();
                log.Add("resolving");
                tcs.SetResult(9);
                log.Add("resolved");
            });
            int v = await Fiber.FirstAsync(
                async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                        return 0;
                    }
                    finally
                    {
                        log.Add("loser-cleanup");
                    }
                },
                () => tcs.Task);
            log.Add($"won:{v}");
        });
        Assert.Equal(["resolving", "resolved", "loser-cleanup", "won:9"], log);
    });

    // The last function succeeds without suspending while a forked racer is still suspended: the race is not over until
    // that racer has been cancelled and has ended (its cleanup runs before the caller continues).
    [Fact]
    public void SynchronousWinnerStillJoinsTheSuspendedRacer() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            int v = await Fiber.FirstAsync(
                async () =>
                {
                    try
                    {
                        await Fiber.AwaitCancelAsync();
                        return 0;
                    }
                    finally
                    {
                        log.Add($"cleanup{i}");
                    }
                },
                () => Task.FromResult(7 + i));
            log.Add($"won{v}");
        }

        Assert.Equal(["cleanup0", "won7", "cleanup1", "won8", "cleanup2", "won9"], log);
    });

    // Failures keep the async method's shape: a synchronous throw of the last function, a caller already cancelled, and a
    // null function list are all in the returned task, never thrown by the call itself.
    [Fact]
    public void FailuresAreTheTasksNotTheCalls() => EioMain.Run(async _ =>
    {
        var boom = new InvalidOperationException("boom");
        Task<int> thrown = Fiber.FirstAsync<int>(
            async () =>
            {
                await Fiber.AwaitCancelAsync();
                return 0;
            },
            () => throw boom).AsTask();
        Assert.Same(boom, await Assert.ThrowsAsync<InvalidOperationException>(() => thrown));

        Task<int>? cancelled = null;
        await Cancel.SubAsync(async ctx =>
        {
            ctx.Cancel(new TimeoutException("stop"));
            cancelled = Fiber.FirstAsync(() => Task.FromResult(1), () => Task.FromResult(2)).AsTask();
            await Task.CompletedTask;
        });
        Assert.True(cancelled!.IsCanceled);
        await Assert.ThrowsAsync<CancelledException>(() => cancelled);

        Task<int> none = Fiber.AnyAsync<int>(null!).AsTask();
        await Assert.ThrowsAsync<ArgumentNullException>(() => none);
    });

    // A value-less race, and a race of one function (forks nothing): same join and result rules.
    [Fact]
    public void ValueLessAndSingleFunctionRaces() => EioMain.Run(async _ =>
    {
        var log = new List<string>();
        await Fiber.FirstAsync(
            async () =>
            {
                await Fiber.YieldAsync();
                log.Add("f");
            },
            async () =>
            {
                try
                {
                    await Fiber.AwaitCancelAsync();
                }
                finally
                {
                    log.Add("g-cleanup");
                }
            });
        int one = await Fiber.AnyAsync<int>([async () => { await Fiber.YieldAsync(); return 3; }]);
        Assert.Equal(3, one);
        Assert.Equal(["f", "g-cleanup"], log);
    });
}
