// A program as a user writes it after `dotnet add package EioSharp` (and .Mock, .Supervision, .Supervision.Hosting):
// scripts/pack-smoke.sh packs the libraries into a local folder and builds and runs this against it.
using EioSharp;
using EioSharp.Mock;
using EioSharp.Supervision;
using EioSharp.Supervision.Hosting;
using EioSharp.Sync;

// The real backend: a switch, a producer fiber and a bounded queue.
EioMain.Run(async env =>
{
    var queue = new AsyncQueue<int>(2);
    int sum = 0;
    await Switch.RunAsync(async sw =>
    {
        Fiber.Fork(sw, async () =>
        {
            for (int i = 1; i <= 10; i++)
            {
                await queue.AddAsync(i);
            }
        });
        for (int i = 0; i < 10; i++)
        {
            sum += await queue.TakeAsync();
        }
    });
    Console.WriteLine($"sum {sum}");
});

// The mock backend: virtual time, a transcript.
Console.Write(MockMain.Trace(async env =>
{
    await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(5));
    TraceLog.Line($"slept until {env.MonoClock.Now.TotalSeconds}s of virtual time");
}));

// A supervision tree run by the hosting adapter.
var service = new SupervisorHostedService(_ => new SupervisorSpec(
    "app",
    RestartStrategy.OneForOne,
    new ChildSpec("worker", async ctx =>
    {
        ctx.Ready();
        await Fiber.AwaitCancelAsync();
    })));
await service.StartAsync(CancellationToken.None);
Console.WriteLine(service.Supervisor is null ? "supervisor missing" : "supervisor running");
await service.StopAsync(CancellationToken.None);
await service.Completion;
Console.WriteLine("supervisor stopped");
