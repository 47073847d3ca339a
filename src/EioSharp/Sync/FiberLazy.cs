namespace EioSharp.Sync;

/// <summary>What a <see cref="FiberLazy{T}"/> does when the fiber computing its value is cancelled.</summary>
/// <remarks>Eio: the <c>~cancel</c> argument of <c>Lazy.from_fun</c>.</remarks>
public enum LazyCancelMode
{
    /// <summary>The factory runs protected from the computing fiber's cancellation (Eio's <c>`Protect</c>): a cancelled
    /// caller stops waiting, the computation goes on and its result serves everyone.</summary>
    Protect,

    /// <summary>The computing fiber's cancellation stops the factory and is forgotten (Eio's <c>`Restart</c>, Eio's default): the
    /// next caller, or a caller already waiting, starts the factory again.</summary>
    Restart,

    /// <summary>The computing fiber's cancellation stops the factory and is kept as the outcome (Eio's <c>`Record</c>): every
    /// later caller gets that <see cref="CancelledException"/>.</summary>
    Record,
}

/// <summary>A value computed once, on first demand, by the first fiber that asks; later askers wait for it.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>
/// Eio: <c>Eio.Lazy</c>. What cancelling the computing fiber does is chosen by <see cref="LazyCancelMode"/> (default
/// <see cref="LazyCancelMode.Protect"/>, this type's behaviour before the modes existed; Eio's default is <c>`Restart</c>).
/// A failure of the factory is cached and rethrown to every caller. Safe across domains.
/// </remarks>
public sealed class FiberLazy<T>
{
    private readonly Func<Task<T>> _factory;
    private readonly LazyCancelMode _cancelMode;
    private readonly object _sync = new();
    private Promise<T>? _promise;

    /// <summary>Creates the lazy value.</summary>
    /// <param name="factory">Computes the value; runs on the domain of the caller of <see cref="GetValueAsync"/> that starts it
    /// (at most once, except after a cancellation in <see cref="LazyCancelMode.Restart"/> mode).</param>
    /// <param name="cancel">What cancelling the computing fiber does.</param>
    /// <remarks>Eio: <c>Lazy.from_fun ~cancel</c>.</remarks>
    public FiberLazy(Func<Task<T>> factory, LazyCancelMode cancel = LazyCancelMode.Protect)
    {
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
        _cancelMode = cancel;
    }

    /// <summary>True once the value (or failure) is available.</summary>
    public bool IsValueCreated
    {
        get
        {
            lock (_sync)
            {
                return _promise?.IsResolved ?? false;
            }
        }
    }

    /// <summary>Returns the value, computing it if no caller has started to.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="CancelledException">The caller was cancelled while waiting or computing; in
    /// <see cref="LazyCancelMode.Record"/> mode also every caller after the computing fiber was cancelled.</exception>
    /// <exception cref="Exception">The factory's failure, cached.</exception>
    /// <remarks>Eio: <c>Lazy.force</c>.</remarks>
    public async ValueTask<T> GetValueAsync()
    {
        while (true)
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

            if (mine is { } resolver)
            {
                return await ComputeAsync(p, resolver);
            }

            try
            {
                return await p.AwaitAsync();
            }
            catch (RestartException)
            {
                // The computing fiber was cancelled in Restart mode: try again (this caller may compute it).
            }
        }
    }

    private async Task<T> ComputeAsync(Promise<T> p, Resolver<T> mine)
    {
        T value;
        try
        {
            value = _cancelMode == LazyCancelMode.Protect ? await Cancel.ProtectAsync(_factory) : await _factory();
        }
        catch (CancelledException) when (_cancelMode == LazyCancelMode.Restart && Fiber.CancelContext.IsCancelled)
        {
            lock (_sync)
            {
                if (ReferenceEquals(_promise, p))
                {
                    _promise = null;
                }
            }

            mine.ResolveError(new RestartException());
            throw;
        }
        catch (Exception ex)
        {
            mine.ResolveError(ex);
            throw;
        }

        mine.Resolve(value);
        return await p.AwaitAsync(); // as every other caller: a cancelled caller gets its cancellation, not the value

    }

    /// <summary>Tells waiters that the attempt was cancelled in Restart mode; never escapes <see cref="GetValueAsync"/>.</summary>
    private sealed class RestartException() : Exception("restart");
}
