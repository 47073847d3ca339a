using EioSharp.Backends.Uring;

namespace EioSharp.Backends;

/// <summary>The io_uring backend (Linux x64): one ring per domain and the io_uring network. Eio: <c>Eio_linux</c>.</summary>
internal static class UringBackend
{
    private static readonly Lazy<string?> s_unavailable = new(() =>
    {
        var probe = UringPoller.TryCreate(out string? error);
        probe?.Dispose();
        return probe is null ? error : null;
    });

    /// <summary>The backend, or null with the reason when io_uring cannot be used here (checked once per process).</summary>
    public static BackendChoice? TryCreate(out string? error)
    {
        error = s_unavailable.Value;
        if (error is not null)
        {
            return null;
        }

        return new BackendChoice(EioBackend.Uring, UringNetwork.Instance, static () => (IDomainPoller?)UringPoller.TryCreate(out _) ?? new EventPoller());
    }
}
