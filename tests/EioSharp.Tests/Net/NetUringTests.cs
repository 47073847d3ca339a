using EioSharp.Backends;

namespace EioSharp.Tests.Net;

/// <summary>All of <see cref="NetTests"/> on the io_uring backend (falls back to epoll/portable where the kernel refuses io_uring).</summary>
public class NetUringTests : NetTests
{
    protected override EioBackend Backend => EioBackend.Uring;

    [Fact]
    public void TheBackendReportsUringWhereTheKernelAllowsIt()
    {
        string backend = RunEio(env => Task.FromResult(env.Backend));
        Assert.Equal(UringBackend.TryCreate(EioBackendOptions.Default, out _) is not null ? "uring" : EpollBackend.TryCreate(EioBackendOptions.Default, out _) is not null ? "epoll" : "portable", backend);
    }

    [Fact]
    public void AFinishedReadCannotBeAwaitedAgain()
    {
        if (UringBackend.TryCreate(EioBackendOptions.Default, out _) is null)
        {
            return;
        }

        // The read's ValueTask comes from a source the transport reuses for its next read: a second await must fail rather
        // than return another read's result.
        RunEio(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
                Fiber.Fork(sw, async () =>
                {
                    var (s, _) = await listener.AcceptAsync(sw);
                    await s.WriteAsync("ab"u8.ToArray());
                    s.Close();
                });
                var c = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var buf = new byte[2];
                var read = c.ReadAsync(buf);
                Assert.True(await read > 0);
                await Assert.ThrowsAsync<InvalidOperationException>(async () => await read);
                c.Close();
            });
        });
    }
}
