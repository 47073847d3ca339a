using System.Collections.Concurrent;
using EioSharp.Supervision;
using EioSharp.Supervision.Hosting;

namespace EioSharp.Supervision.Tests;

/// <summary>The hosted-service adapter, on the real backend (its own thread).</summary>
public class HostingTests
{
    private static ChildSpec Logged(string id, ConcurrentQueue<string> log) => new(id, async ctx =>
    {
        log.Enqueue($"{id} start");
        ctx.Ready();
        try
        {
            await Fiber.AwaitCancelAsync();
        }
        finally
        {
            log.Enqueue($"{id} stop");
        }
    });

    [Fact]
    public async Task StartsTheTreeWithTheHost_AndStopsItInReverseOrder()
    {
        var log = new ConcurrentQueue<string>();
        var service = new SupervisorHostedService(_ => new SupervisorSpec("app", RestartStrategy.OneForOne, Logged("a", log), Logged("b", log)));
        await service.StartAsync(CancellationToken.None);
        Assert.NotNull(service.Supervisor);
        Assert.Equal(["a start", "b start"], log.ToArray());
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await service.StopAsync(deadline.Token);
        Assert.True(service.Completion.IsCompletedSuccessfully);
        Assert.Equal(["a start", "b start", "b stop", "a stop"], log.ToArray());
    }

    [Fact]
    public async Task AStartFailure_FailsTheHostStart()
    {
        var service = new SupervisorHostedService(_ => new SupervisorSpec(
            "app", RestartStrategy.OneForOne, new ChildSpec("db", _ => throw new IOException("no database"))));
        var e = await Assert.ThrowsAsync<SupervisorStartException>(() => service.StartAsync(CancellationToken.None));
        Assert.Equal("db", e.ChildId);
        await Assert.ThrowsAsync<SupervisorStartException>(() => service.Completion);
    }
}
