namespace EioSharp.Sync;

/// <summary>A counting semaphore for fibers, safe across domains.</summary>
/// <remarks>
/// Eio: <c>Eio.Semaphore</c>. Waiters are served first come, first served.
/// <para><b>Cancellation</b>: <see cref="AcquireAsync"/> is cancellable; a cancelled acquire holds nothing.</para>
/// </remarks>
public sealed class FiberSemaphore
{
    private readonly object _sync = new();
    private readonly WaitList<bool> _waiters;
    private int _count;

    /// <summary>Creates a semaphore with <paramref name="initialCount"/> permits.</summary>
    /// <param name="initialCount">Permits available at first (0 or more).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initialCount"/> is negative.</exception>
    public FiberSemaphore(int initialCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initialCount);
        _count = initialCount;
        _waiters = WaitList<bool>.Create(_sync);
    }

    /// <summary>The permits available now.</summary>
    /// <remarks>Eio: <c>Semaphore.get_value</c>.</remarks>
    public int CurrentCount
    {
        get
        {
            lock (_sync)
            {
                return _count;
            }
        }
    }

    /// <summary>Takes a permit, waiting until one is available.</summary>
    /// <returns>An awaitable that completes holding a permit.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting (no permit is held).</exception>
    /// <remarks>Eio: <c>Semaphore.acquire</c>.</remarks>
    public ValueTask AcquireAsync()
    {
        QueuedWaiter<bool> w;
        FiberFrame frame;
        lock (_sync)
        {
            if (_count > 0 && _waiters.IsEmpty)
            {
                _count--;
                return ValueTask.CompletedTask;
            }

            frame = FiberFrame.Require();
            frame.Cancel.ThrowIfCancelled();
            w = QueuedWaiter<bool>.Rent(frame.Fiber.Domain, Tracing.TraceReason.Mutex);
            _waiters.Add(w);
        }

        w.Attach(frame.Cancel);
        return w.VoidTask;
    }

    /// <summary>Takes a permit if one is available now.</summary>
    /// <returns>True if a permit was taken.</returns>
    public bool TryAcquire()
    {
        lock (_sync)
        {
            if (_count > 0 && _waiters.IsEmpty)
            {
                _count--;
                return true;
            }

            return false;
        }
    }

    /// <summary>Returns a permit, waking the first waiter if any.</summary>
    /// <remarks>Eio: <c>Semaphore.release</c>. May be called from any thread.</remarks>
    public void Release() => TryRelease(int.MaxValue);

    /// <summary>Returns a permit unless that would make more than <paramref name="max"/> available; false if it would.</summary>
    internal bool TryRelease(int max)
    {
        lock (_sync)
        {
            while (_waiters.TakeFirst() is { } w)
            {
                if (w.TryComplete(true))
                {
                    return true;
                }
            }

            if (_count >= max)
            {
                return false;
            }

            _count++;
            return true;
        }
    }
}
