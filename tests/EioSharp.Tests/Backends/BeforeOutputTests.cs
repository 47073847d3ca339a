using System.Net;
using System.Net.Sockets;
using EioSharp.Backends;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="Domain.RunBeforeOutput"/> (issue 14, session 21): on a domain whose sends reach the kernel only when it
/// enters its ring (io_uring), an action given now runs before any send queued after it leaves: Redis's
/// <c>beforeSleep</c>, which writes the AOF before the iteration's replies. The peer here is a plain .NET socket, so what
/// it has received (<see cref="Socket.Available"/>, FIONREAD) tells whether the kernel had the bytes when the action ran.
/// </summary>
public class BeforeOutputTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    [SkippableFact]
    public void On_io_uring_the_action_runs_once_before_the_send_queued_after_it_reaches_the_kernel()
    {
        var (deferred, runs, seenBefore, seenAfter, runsAfterSecondWrite) = NetConformanceTests.RunOn(EioBackend.Uring, async env =>
        {
            (bool, int, int, int, int) result = default;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                peer.Connect(listener.ListeningEndPoint); // completed by the kernel (the backlog) before the accept
                var (server, _) = await listener.AcceptAsync(sw);
                var domain = Domain.Current!;
                int runs = 0, seen = -1;
                domain.RunBeforeOutput(() =>
                {
                    runs++;
                    seen = peer.Available;
                });
                await server.WriteAsync("ping"u8.ToArray()); // done once the kernel took the bytes
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                while (peer.Available < 4 && DateTime.UtcNow < deadline)
                {
                    await Fiber.YieldAsync();
                }

                int after = peer.Available;
                int runsBefore = runs;
                await server.WriteAsync("pong"u8.ToArray()); // the action was for one submission only
                result = (domain.DefersOutput, runsBefore, seen, after, runs);
            });
            return result;
        });

        Assert.True(deferred);
        Assert.Equal(1, runs);
        Assert.Equal(0, seenBefore); // the send was not in the kernel yet when the action ran
        Assert.Equal(4, seenAfter);
        Assert.Equal(1, runsAfterSecondWrite);
    }

    [SkippableFact]
    public void An_action_given_while_actions_run_runs_at_the_same_submission_and_the_order_is_kept()
    {
        var order = NetConformanceTests.RunOn(EioBackend.Uring, async env =>
        {
            var seen = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                peer.Connect(listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                var domain = Domain.Current!;
                domain.RunBeforeOutput(() =>
                {
                    seen.Add("first");
                    domain.RunBeforeOutput(() => seen.Add("nested"));
                });
                domain.RunBeforeOutput(() => seen.Add("second"));
                await server.WriteAsync("ping"u8.ToArray());
                seen.Add("written");
            });
            return string.Join(' ', seen);
        });

        Assert.Equal("first second nested written", order);
    }

    [SkippableTheory]
    [InlineData(EioBackend.Epoll)]
    [InlineData(EioBackend.Portable)]
    public void A_backend_that_sends_at_once_does_not_defer_and_refuses_an_action(EioBackend backend)
    {
        var (deferred, refused) = NetConformanceTests.RunOn(backend, env =>
        {
            var domain = Domain.Current!;
            bool threw = false;
            try
            {
                domain.RunBeforeOutput(() => { });
            }
            catch (InvalidOperationException)
            {
                threw = true;
            }

            return Task.FromResult((domain.DefersOutput, threw));
        });

        Assert.False(deferred);
        Assert.True(refused);
    }

    [SkippableFact]
    public void Io_uring_with_direct_sends_does_not_defer()
    {
        bool deferred = NetConformanceTests.RunOn(EioBackend.Uring, env => Task.FromResult(Domain.Current!.DefersOutput),
            new EioBackendOptions { UringDirectSend = true });
        Assert.False(deferred);
    }

    [SkippableFact]
    public void Another_thread_cannot_give_an_action()
    {
        bool refused = NetConformanceTests.RunOn(EioBackend.Uring, async env =>
        {
            var domain = Domain.Current!;
            return await Task.Run(() =>
            {
                try
                {
                    domain.RunBeforeOutput(() => { });
                    return false;
                }
                catch (InvalidOperationException)
                {
                    return true;
                }
            });
        });
        Assert.True(refused);
    }
}
