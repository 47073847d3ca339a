using System.Collections.Concurrent;
using EioSharp.Supervision;
using EioSharp.Supervision.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

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

    private static IHost BuildHost(Func<Stdenv, SupervisorSpec> buildSpec)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddEioSupervisor(buildSpec);
        return builder.Build();
    }

    [Fact]
    public async Task RealHost_StartsTheTree_AndStopsItInReverseOrderWithTheHost()
    {
        var log = new ConcurrentQueue<string>();
        using IHost host = BuildHost(_ => new SupervisorSpec("app", RestartStrategy.OneForOne, Logged("a", log), Logged("b", log)));
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await host.StartAsync(deadline.Token);
        Assert.Equal(["a start", "b start"], log.ToArray());
        SupervisorHostedService service = host.Services.GetServices<IHostedService>().OfType<SupervisorHostedService>().Single();
        Assert.NotNull(service.Supervisor);

        await host.StopAsync(deadline.Token);
        Assert.True(service.Completion.IsCompletedSuccessfully);
        Assert.Equal(["a start", "b start", "b stop", "a stop"], log.ToArray());
    }

    [Fact]
    public async Task RealHost_StopsTheApplicationWhenTheTreeFails()
    {
        // A child that crashes after it is ready, under a supervisor that allows no restart: the top of the tree fails, and
        // the adapter escalates to the host, which shuts down on its own.
        var log = new ConcurrentQueue<string>();
        var crashing = new ChildSpec("worker", async ctx =>
        {
            ctx.Ready();
            await Fiber.YieldAsync();
            throw new InvalidOperationException("worker broke");
        });
        using IHost host = BuildHost(_ => new SupervisorSpec("app", RestartStrategy.OneForOne, Logged("a", log), crashing) { MaxRestarts = 0 });
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await host.StartAsync(deadline.Token);
        Task shutdown = host.WaitForShutdownAsync(deadline.Token);
        Assert.Same(shutdown, await Task.WhenAny(shutdown, Task.Delay(TimeSpan.FromSeconds(30))));
        await shutdown;
        Assert.False(deadline.IsCancellationRequested, "the host did not stop by itself");

        SupervisorHostedService service = host.Services.GetServices<IHostedService>().OfType<SupervisorHostedService>().Single();
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => service.Completion);
        Assert.NotNull(RestartIntensityExceededException.FindIn(failure));
        Assert.Contains("a stop", log);
    }

    [Fact]
    public async Task RealHost_AStartFailure_FailsTheHostStart()
    {
        using IHost host = BuildHost(_ => new SupervisorSpec(
            "app", RestartStrategy.OneForOne, new ChildSpec("db", _ => throw new IOException("no database"))));
        var e = await Assert.ThrowsAsync<SupervisorStartException>(() => host.StartAsync());
        Assert.Equal("db", e.ChildId);
    }
}
