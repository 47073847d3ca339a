namespace EioSharp.Sync;

/// <summary>A pool of up to a fixed number of reusable resources (for example connections), created on demand.</summary>
/// <typeparam name="T">The resource type.</typeparam>
/// <remarks>
/// Eio: <c>Eio.Pool</c>. <see cref="UseAsync{TResult}(Func{T, Task{TResult}})"/> lends a resource to its body and takes it
/// back afterwards. At most <c>maxSize</c> resources exist at once; callers wait (cancellably) for one to be free.
/// A resource goes back to the pool after its body, also when the body threw (as Eio); one that fails validation when
/// it is next taken is disposed and replaced.
/// <para><b>Thread safety</b>: safe across domains.</para>
/// </remarks>
public sealed class ResourcePool<T>
{
    private readonly Func<Task<T>> _create;
    private readonly Func<T, Task<bool>>? _validate;
    private readonly Func<T, Task>? _dispose;
    private readonly FiberSemaphore _slots;
    private readonly Stack<T> _idle = new();
    private readonly object _sync = new();

    /// <summary>Creates the pool.</summary>
    /// <param name="maxSize">The most resources in existence at once (at least 1).</param>
    /// <param name="create">Creates a resource.</param>
    /// <param name="validate">Checks an idle resource before reuse; false disposes it and creates another (optional).</param>
    /// <param name="dispose">Releases a resource that is dropped (optional).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is less than 1.</exception>
    /// <remarks>Eio: <c>Pool.create</c>.</remarks>
    public ResourcePool(int maxSize, Func<Task<T>> create, Func<T, Task<bool>>? validate = null, Func<T, Task>? dispose = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 1);
        _create = create ?? throw new ArgumentNullException(nameof(create));
        _validate = validate;
        _dispose = dispose;
        _slots = new FiberSemaphore(maxSize);
    }

    /// <summary>Borrows a resource for the duration of <paramref name="body"/>.</summary>
    /// <typeparam name="TResult">The body's result type.</typeparam>
    /// <param name="body">Uses the resource; must not keep it.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="CancelledException">The caller was cancelled while waiting for a resource.</exception>
    /// <exception cref="Exception">Whatever <paramref name="body"/> throws; the resource is returned to the pool first
    /// (the validator decides at its next use whether it is disposed).</exception>
    /// <remarks>Eio: <c>Pool.use</c>.</remarks>
    public async Task<TResult> UseAsync<TResult>(Func<T, Task<TResult>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        await _slots.AcquireAsync();
        try
        {
            var resource = await GetAsync();
            TResult result;
            try
            {
                result = await body(resource);
            }
            finally
            {
                // Eio's Pool.use: the resource goes back to the pool even when the body raised; whether it is
                // reused is decided by the validator when it is next taken.
                lock (_sync)
                {
                    _idle.Push(resource);
                }
            }

            return result;
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Borrows a resource for the duration of <paramref name="body"/>.</summary>
    /// <param name="body">Uses the resource.</param>
    /// <returns>A task that completes when the body has.</returns>
    /// <remarks>Eio: <c>Pool.use</c>.</remarks>
    public Task UseAsync(Func<T, Task> body) => UseAsync<bool>(async r => { await body(r); return true; });

    private async Task<T> GetAsync()
    {
        while (true)
        {
            T candidate;
            lock (_sync)
            {
                if (!_idle.TryPop(out candidate!))
                {
                    break;
                }
            }

            if (_validate is null || await _validate(candidate))
            {
                return candidate;
            }

            await DropAsync(candidate);
        }

        return await _create();
    }

    private async Task DropAsync(T resource)
    {
        if (_dispose is not null)
        {
            await Cancel.ProtectAsync(() => _dispose(resource));
        }
    }
}
