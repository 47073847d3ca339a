using EioSharp.Backends.Epoll;

namespace EioSharp.Backends;

/// <summary>The epoll backend (Linux x64): per-domain epoll pollers and the epoll network. Eio: <c>Eio_posix</c>.</summary>
internal static class EpollBackend
{
    /// <summary>The backend, or null with the reason when epoll cannot be used here.</summary>
    public static BackendChoice? TryCreate(EioBackendOptions options, out string? error)
    {
        var probe = EpollPoller.TryCreate(options, out error);
        if (probe is null)
        {
            return null;
        }

        probe.Dispose();
        return new BackendChoice(EioBackend.Epoll, EpollNetwork.Instance, () => (IDomainPoller?)EpollPoller.TryCreate(options, out _) ?? new EventPoller(options.SpinStopwatchTicks, options.WakeSpinStopwatchTicks));
    }
}
