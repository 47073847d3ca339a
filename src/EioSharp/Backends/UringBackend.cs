namespace EioSharp.Backends;

/// <summary>The io_uring backend (Linux x64): one ring per domain. Eio: <c>Eio_linux</c>.</summary>
internal static class UringBackend
{
    /// <summary>The backend, or null with the reason when io_uring cannot be used here.</summary>
    public static BackendChoice? TryCreate(out string? error)
    {
        error = "not built yet";
        return null;
    }
}
