namespace EioSharp.Sync;

/// <summary>A value computed once, on first demand, by the first fiber that asks; later askers wait for it.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>
/// Eio: <c>Eio.Lazy</c> (with <c>~cancel:`Protect</c>): the factory runs protected from the first caller's cancellation,
/// so a cancelled caller does not spoil the value for the others. A failure is cached and rethrown to every caller.
/// Safe across domains.
/// </remarks>
public sealed class FiberLazy<T>
{
    private readonly Func<Task<T>> _factory;
    private readonly object _sync = new();
    private Promise<T>? _promise;

    /// <summary>Creates the lazy value.</summary>
    /// <param name="factory">Computes the value; runs at most once, on the domain of the first caller of <see cref="GetValueAsync"/>.</param>
    /// <remarks>Eio: <c>Lazy.from_fun</c>.</remarks>
    public FiberLazy(Func<Task<T>> factory)
    {
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
    }

    /// <summary>True once the value (or failure) is available.</summary>
    public bool IsValueCreated => _promise?.IsResolved ?? false;

    /// <summary>Returns the value, computing it if this is the first call.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="CancelledException">The caller was cancelled while waiting (the computation goes on for others).</exception>
    /// <exception cref="Exception">The factory's failure, cached.</exception>
    /// <remarks>Eio: <c>Lazy.force</c>.</remarks>
    public async ValueTask<T> GetValueAsync()
    {
        Resolver<T>? mine = null;
        Promise<T> p;
        lock (_sync)
        {
            if (_promise is null)
            {
                (_promise, mine) = Promise.Create<T>();
            }

            p = _promise;
        }

        if (mine is not null)
        {
            try
            {
                mine.Resolve(await Cancel.ProtectAsync(_factory));
            }
            catch (Exception ex)
            {
                mine.ResolveError(ex);
            }
        }

        return await p.AwaitAsync();
    }
}
