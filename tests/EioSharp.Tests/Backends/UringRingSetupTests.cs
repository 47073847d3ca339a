using System.Net;
using EioSharp.Backends;
using EioSharp.Backends.Uring;

namespace EioSharp.Tests.Backends;

/// <summary>
/// io_uring ring set-up (issue 15): IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN where the kernel accepts them, the plain ring
/// where it does not; both serve the network, on the main domain and on one started by the domain manager (whose ring is
/// made on the starting thread and must be bound to the domain's own thread). io_uring only.
/// </summary>
[Collection("FdCount")]
public class UringRingSetupTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    /// <summary>Whether this kernel accepts the flags, asked directly (not through the poller under test).</summary>
    private static bool KernelAcceptsDeferTaskRun()
    {
        var p = new IoUringParams { Flags = Sys.IORING_SETUP_SINGLE_ISSUER | Sys.IORING_SETUP_DEFER_TASKRUN };
        nint mem = System.Runtime.InteropServices.Marshal.AllocHGlobal(System.Runtime.InteropServices.Marshal.SizeOf<IoUringParams>());
        try
        {
            System.Runtime.InteropServices.Marshal.StructureToPtr(p, mem, false);
            long fd = Sys.syscall(Sys.SYS_io_uring_setup, 4, mem, 0, 0, 0, 0);
            if (fd < 0)
            {
                return false;
            }

            EioSharp.Backends.Epoll.EpollIo.close((int)fd);
            return true;
        }
        finally
        {
            System.Runtime.InteropServices.Marshal.FreeHGlobal(mem);
        }
    }

    /// <summary>An echo round trip on the calling domain, a cancelled read, and the ring's mode.</summary>
    private static async Task<string> EchoOnThisDomainAsync(Stdenv env)
    {
        string result = "";
        await Switch.RunAsync(async sw =>
        {
            var listener = env.Net.Listen(sw, Loopback0);
            var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
            var (server, _) = await listener.AcceptAsync(sw);
            var b = new byte[4];
            await Assert.ThrowsAsync<TimeoutException>(() =>
                env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(2), async () => await server.ReadAsync(b)));
            await client.WriteAsync("ping"u8.ToArray());
            int got = 0;
            while (got < 4)
            {
                got += await server.ReadAsync(b.AsMemory(got));
            }

            await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1)); // a timed wait in the ring too
            var ring = (UringPoller)Domain.Current!.Poller;
            result = System.Text.Encoding.ASCII.GetString(b) + (ring.DeferTaskRun ? "+defer" : "+plain");
        });
        return result;
    }

    private static string Run(bool disableDefer)
    {
        UringPoller.DeferTaskRunDisabled = disableDefer;
        try
        {
            return NetConformanceTests.RunOn(EioBackend.Uring, async env =>
            {
                string here = await EchoOnThisDomainAsync(env);
                string there = await env.DomainManager.RunAsync(() => EchoOnThisDomainAsync(env));
                return here + "," + there;
            });
        }
        finally
        {
            UringPoller.DeferTaskRunDisabled = false;
        }
    }

    [SkippableFact]
    public void RingsUseDeferTaskRunWhereTheKernelAcceptsIt()
    {
        string mode = KernelAcceptsDeferTaskRun() ? "+defer" : "+plain";
        Assert.Equal($"ping{mode},ping{mode}", Run(disableDefer: false));
    }

    [SkippableFact]
    public void WithoutDeferTaskRunThePlainRingServes()
    {
        Assert.Equal("ping+plain,ping+plain", Run(disableDefer: true));
    }
}
