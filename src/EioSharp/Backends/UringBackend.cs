using EioSharp.Backends.Uring;

namespace EioSharp.Backends;

/// <summary>The io_uring backend (Linux x64): one ring per domain and the io_uring network. Eio: <c>Eio_linux</c>.</summary>
internal static class UringBackend
{
    private static readonly Lazy<string?> s_unavailable = new(() =>
    {
        var probe = UringPoller.TryCreate(EioBackendOptions.Default, out string? error);
        probe?.Dispose();
        return probe is null ? error : null;
    });

    /// <summary>The backend, or null with the reason when io_uring cannot be used here (checked once per process).</summary>
    public static BackendChoice? TryCreate(EioBackendOptions options, out string? error)
    {
        error = s_unavailable.Value;
        if (error is not null)
        {
            return null;
        }

        return new BackendChoice(EioBackend.Uring, UringNetwork.Instance, () => (IDomainPoller?)UringPoller.TryCreate(options, out _) ?? new EventPoller(options.SpinStopwatchTicks, options.WakeSpinStopwatchTicks));
    }
}
