using EioSharp.Backends.Epoll;

namespace EioSharp.Backends;

/// <summary>The epoll backend (Linux x64): per-domain epoll pollers and the epoll network. Eio: <c>Eio_posix</c>.</summary>
internal static class EpollBackend
{
    /// <summary>The backend, or null with the reason when epoll cannot be used here.</summary>
    public static BackendChoice? TryCreate(out string? error)
    {
        var probe = EpollPoller.TryCreate(out error);
        if (probe is null)
        {
            return null;
        }

        probe.Dispose();
        return new BackendChoice(EioBackend.Epoll, EpollNetwork.Instance, static () => (IDomainPoller?)EpollPoller.TryCreate(out _) ?? new EventPoller());
    }
}
