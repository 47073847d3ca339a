using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.Supervision;

namespace EioSharp.StatsdFilter.Tests;

/// <summary>In-process: the forwarder child (<see cref="StatsdFilterServer.SenderChild"/>) under a real supervisor, sending over loopback UDP.</summary>
public class ForwarderSupervisionTests
{
    private static Socket Capture()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    private static List<string> Received(Socket capture, int count)
    {
        var buffer = new byte[65536];
        var datagrams = new List<string>();
        for (int i = 0; i < count; i++)
        {
            int n = capture.Receive(buffer);
            datagrams.Add(Encoding.ASCII.GetString(buffer, 0, n));
        }

        return datagrams;
    }

    [Fact]
    public void A_crashed_forwarder_sends_its_batch_is_restarted_and_the_sender_keeps_working()
    {
        using Socket capture = Capture();
        int port = ((IPEndPoint)capture.LocalEndPoint!).Port;
        var statistics = new FilterStatistics(1);
        var reports = new List<string>();
        int runsAfterCrash = 0;

        EioMain.Run(async env =>
        {
            var target = new UpstreamTarget("127.0.0.1", port);
            Assert.Null(await target.ResolveAsync(env.Net));
            var sender = new UpstreamSender(env.Net, target, statistics, 0, mtu: 1432);
            var spec = new SupervisorSpec(
                "forward-0",
                RestartStrategy.OneForOne,
                StatsdFilterServer.SenderChild("forwarder", sender, () => Fiber.AwaitCancelAsync()))
            {
                MaxRestarts = StatsdFilterServer.MaxForwarderRestarts,
                Period = StatsdFilterServer.ForwarderRestartPeriod,
                OnReport = r => reports.Add(r.ToString()),
            };

            await Switch.RunAsync(async sw =>
            {
                Supervisor sup = await Supervisor.StartAsync(sw, spec, env.MonoClock);

                // A line waits in the batch when the forwarder crashes: the crashing run sends it on its way out.
                sender.Append("before.crash:1|c"u8);
                Assert.True(await sup.CrashChildAsync("forwarder", new InjectedCrashException("boom")));
                for (int i = 0; i < 200 && runsAfterCrash < 2; i++)
                {
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(10));
                    ChildInfo child = (await sup.WhichChildrenAsync()).Single();
                    runsAfterCrash = child.IsRunning ? child.Runs : 0;
                }

                // The restarted run opened a fresh socket: lines flow again.
                sender.Append("after.crash:1|c"u8);
                await sender.FlushAsync();
                await sup.StopAsync();
            });
        });

        Assert.Equal(2, runsAfterCrash);
        Assert.Equal(["before.crash:1|c", "after.crash:1|c"], Received(capture, 2));
        Assert.Equal(
            [
                "forward-0: forwarder started",
                "forward-0: forwarder exited (failed: InjectedCrashException: boom)",
                "forward-0: restarting forwarder",
                "forward-0: forwarder started",
                "forward-0: forwarder stopped (cancelled)",
            ],
            reports);
        FilterStatisticsSnapshot totals = statistics.Snapshot();
        Assert.Equal(2, totals[FilterCounter.Forwarded]);
        Assert.Equal(0, totals[FilterCounter.SendErrors]);
    }

    [Fact]
    public void While_detached_a_partial_batch_waits_for_the_next_owner_and_a_full_one_is_counted_as_a_send_error()
    {
        using Socket capture = Capture();
        int port = ((IPEndPoint)capture.LocalEndPoint!).Port;
        var statistics = new FilterStatistics(1);

        EioMain.Run(async env =>
        {
            var target = new UpstreamTarget("127.0.0.1", port);
            Assert.Null(await target.ResolveAsync(env.Net));
            var sender = new UpstreamSender(env.Net, target, statistics, 0, mtu: 32);

            // No owner (the forwarder is restarting): a partial batch stays put.
            sender.Append("waits:1|c"u8);
            await sender.FlushAsync();
            Assert.False(sender.IsEmpty);

            await Switch.RunAsync(async sw =>
            {
                sender.AttachTo(sw);
                await sender.FlushAsync();
                Assert.True(sender.IsEmpty);
                sender.Detach();
            });

            // A full batch cannot wait: it is dropped and counted.
            sender.Append("dropped.aaaaaaaaaaaa:1|c"u8);
            sender.Append("next.bbbbbbbbbbbbbbbb:1|c"u8);
            Assert.False(sender.IsEmpty);
        });

        Assert.Equal(["waits:1|c"], Received(capture, 1));
        FilterStatisticsSnapshot totals = statistics.Snapshot();
        Assert.Equal(1, totals[FilterCounter.Forwarded]);
        Assert.Equal(1, totals[FilterCounter.SendErrors]);
    }
}
