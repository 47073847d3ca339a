namespace EioSharp.Sync;

/// <summary>A mutual-exclusion lock for fibers, safe across domains.</summary>
/// <remarks>
/// Eio: <c>Eio.Mutex</c>. <see cref="UseRwAsync(Func{Task}, bool)"/> poisons the mutex if its body fails while it may have left
/// the protected state inconsistent; later lockers then get <see cref="MutexPoisonedException"/>.
/// <para><b>Cancellation</b>: waiting to lock is cancellable.</para>
/// </remarks>
public sealed class FiberMutex
{
    private readonly FiberSemaphore _sem = new(1);
    private Exception? _poison;

    /// <summary>Locks the mutex, waiting if it is held.</summary>
    /// <returns>An awaitable that completes with the lock held.</returns>
    /// <exception cref="MutexPoisonedException">A previous holder failed in <see cref="UseRwAsync(Func{Task}, bool)"/>.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <remarks>Eio: <c>Mutex.lock</c>.</remarks>
    public async ValueTask LockAsync()
    {
        await _sem.AcquireAsync();
        if (_poison is { } p)
        {
            _sem.TryRelease(1);
            throw new MutexPoisonedException(p);
        }
    }

    /// <summary>Locks the mutex if it is free now.</summary>
    /// <returns>True if locked.</returns>
    /// <exception cref="MutexPoisonedException">The mutex is poisoned.</exception>
    /// <remarks>Eio: <c>Mutex.try_lock</c>.</remarks>
    public bool TryLock()
    {
        if (!_sem.TryAcquire())
        {
            return false;
        }

        if (_poison is { } p)
        {
            _sem.TryRelease(1);
            throw new MutexPoisonedException(p);
        }

        return true;
    }

    /// <summary>Unlocks the mutex.</summary>
    /// <exception cref="InvalidOperationException">The mutex is not locked.</exception>
    /// <remarks>Eio: <c>Mutex.unlock</c>. May be called from any domain (the holder is not recorded).</remarks>
    public void Unlock()
    {
        if (!_sem.TryRelease(1))
        {
            throw new InvalidOperationException("The mutex is not locked.");
        }
    }

    /// <summary>Runs <paramref name="body"/> holding the lock, for read-write access.</summary>
    /// <param name="body">The critical section.</param>
    /// <param name="protect">When true, the body runs protected from cancellation (so it cannot be interrupted half-way).</param>
    /// <returns>A task that completes when the body has run and the lock is released.</returns>
    /// <exception cref="MutexPoisonedException">The mutex is poisoned.</exception>
    /// <remarks>Eio: <c>Mutex.use_rw ~protect</c>. If the body throws, the mutex is poisoned and the exception is rethrown.</remarks>
    public async Task UseRwAsync(Func<Task> body, bool protect = false)
    {
        await LockAsync();
        try
        {
            if (protect)
            {
                await Cancel.ProtectAsync(body);
            }
            else
            {
                await body();
            }
        }
        catch (Exception ex)
        {
            _poison = ex;
            throw;
        }
        finally
        {
            Unlock();
        }
    }

    /// <summary>Runs <paramref name="body"/> holding the lock, for read-only access (a failure does not poison the mutex).</summary>
    /// <param name="body">The critical section.</param>
    /// <returns>A task that completes when the body has run and the lock is released.</returns>
    /// <remarks>Eio: <c>Mutex.use_ro</c>.</remarks>
    public async Task UseRoAsync(Func<Task> body)
    {
        await LockAsync();
        try
        {
            await body();
        }
        finally
        {
            Unlock();
        }
    }
}

/// <summary>Thrown when locking a <see cref="FiberMutex"/> whose previous holder failed.</summary>
/// <remarks>Eio: <c>Mutex.Poisoned</c>.</remarks>
public sealed class MutexPoisonedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="cause">The failure that poisoned the mutex.</param>
    public MutexPoisonedException(Exception cause)
        : base("The mutex is poisoned: a previous holder failed: " + cause.Message, cause)
    {
    }
}
