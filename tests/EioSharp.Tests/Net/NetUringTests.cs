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
        Assert.Equal(UringBackend.TryCreate(out _) is not null ? "uring" : EpollBackend.TryCreate(out _) is not null ? "epoll" : "portable", backend);
    }
}
