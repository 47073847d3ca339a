using EioSharp.Actors.Redis;
using EioSharp.Redis;

namespace EioSharp.Redis.Tests;

public sealed class ActorSystemTests : IDisposable
{
    private readonly RedisServer _server = RedisServer.Start();

    public void Dispose() => _server.Dispose();

    [Fact]
    public void CastCallCrashRestartAndMonitorsAcrossTwoNodes()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                ActorSystem? n1 = null, n2 = null;
                n1 = await ActorSystem.StartAsync(sw, env, SampleActors.Options("n1", _server.Port, TimeSpan.FromSeconds(2)),
                    SampleActors.Counter(() => n1!, env, TimeSpan.Zero));
                n2 = await ActorSystem.StartAsync(sw, env, SampleActors.Options("n2", _server.Port, TimeSpan.FromSeconds(2)),
                    SampleActors.Counter(() => n2!, env, TimeSpan.Zero));
                var (a, created) = await n1.SpawnAsync("a1", "counter");
                Assert.True(created);
                Assert.False((await n2.SpawnAsync("a1", "counter")).Created); // one owner
                await n2.MonitorAsync(a);

                // Casts from n2 are handled on n1; a call from n2 sees them (one actor handles one message at a time, in order).
                for (int i = 0; i < 20; i++)
                {
                    await n2.CastAsync(a, new Work(i));
                }

                var pong = await n2.CallAsync<Ping, Pong>(a, new Ping(1), TimeSpan.FromSeconds(10));
                Assert.Equal(("n1", "a1", 20L, 1L), (pong.Node, pong.Actor, pong.Handled, pong.DeliveryCount));

                // A crash: the monitor on n2 gets the error text; the actor restarts and the message comes again (delivery 2).
                await n2.CastAsync(a, new Work(100, Crash: true));
                var down = await env.MonoClock.WithTimeoutAsync(TimeSpan.FromSeconds(10), async () => await n2.Downs.TakeAsync());
                Assert.Equal((RemoteExitKind.Crashed, "asked to crash at 100", "n1"), (down.Kind, down.Text, down.Node));
                var after = await n2.CallAsync<Ping, Pong>(a, new Ping(2), TimeSpan.FromSeconds(10));
                Assert.Equal(1, after.Handled); // a new incarnation (fresh state) that handled the redelivered message
                // The Ping may have been read by the node before the restart and re-read from the pending history by the new
                // incarnation: DeliveryCount is Redis's delivery counter, which counts both reads.
                Assert.InRange(after.DeliveryCount, 1, 2);
                Assert.Equal("2", (await n1.Redis.ExecuteAsync("HGET", "deliveries", 100)).Text);
                Assert.Equal("1", (await n1.Redis.ExecuteAsync("HGET", "handled", 100)).Text);
                Assert.Empty(await n1.Redis.StreamPendingAsync(a.MailboxKey, "actors"));

                // A normal stop reaches monitors as Normal.
                await n2.MonitorAsync(a);
                Assert.True(await n1.StopAsync(a));
                down = await env.MonoClock.WithTimeoutAsync(TimeSpan.FromSeconds(10), async () => await n2.Downs.TakeAsync());
                Assert.Equal(RemoteExitKind.Normal, down.Kind);

                // A call to nobody times out on the caller's clock.
                await Assert.ThrowsAsync<TimeoutException>(() => n2.CallAsync<Ping, Pong>(ActorSystem.Ref("nobody"), new Ping(3), TimeSpan.FromMilliseconds(200)));
            });
        });
    }

    /// <summary>The Reject bound (EVALSHA of the check-and-append script; the first cast on a fresh server gets NOSCRIPT and falls
    /// back to EVAL, later ones hit the cached script): the cast over the bound is refused, and nothing is appended.</summary>
    [Fact]
    public void CastOverTheBoundIsRefusedAndNotStored()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var sender = await ActorSystem.StartAsync(sw, env, SampleActors.Options("s", _server.Port, TimeSpan.FromSeconds(2)) with { MailboxCapacity = 3 });
                var nobody = ActorSystem.Ref("unspawned");
                Assert.Equal("+OK\r\n", _server.Call("SCRIPT", "FLUSH"));
                for (int i = 0; i < 3; i++)
                {
                    await sender.CastAsync(nobody, new Work(i));
                }

                var e = await Assert.ThrowsAsync<MailboxFullException>(() => sender.CastAsync(nobody, new Work(3)));
                Assert.Equal("unspawned", e.Actor);
                Assert.Equal(3, await sender.Redis.StreamLengthAsync(nobody.MailboxKey));
            });
        });
    }
}
