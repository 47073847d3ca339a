namespace EioSharp.Sync;

/// <summary>A condition variable: fibers wait until another fiber broadcasts a change.</summary>
/// <remarks>
/// Eio: <c>Eio.Condition</c>. Safe across domains. A broadcast wakes only fibers already waiting, so check your
/// condition in a loop around <see cref="AwaitAsync(FiberMutex)"/>.
/// </remarks>
public sealed class Condition
{
    private readonly object _sync = new();
    private readonly WaitList<bool> _waiters;

    /// <summary>Creates a condition.</summary>
    public Condition()
    {
        _waiters = WaitList<bool>.Create(_sync);
    }

    /// <summary>Atomically unlocks <paramref name="mutex"/>, waits for a broadcast, then locks it again.</summary>
    /// <param name="mutex">A mutex held by the caller.</param>
    /// <returns>A task that completes with the mutex held again.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting (the mutex is re-locked first).</exception>
    /// <remarks>Eio: <c>Condition.await</c>.</remarks>
    public async Task AwaitAsync(FiberMutex mutex)
    {
        ArgumentNullException.ThrowIfNull(mutex);
        var wait = Register();
        mutex.Unlock();
        try
        {
            await wait;
        }
        finally
        {
            await Cancel.ProtectAsync(async () => await mutex.LockAsync());
        }
    }

    /// <summary>Waits for the next broadcast, without a mutex.</summary>
    /// <returns>An awaitable.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <remarks>Eio: <c>Condition.await_no_mutex</c>.</remarks>
    public ValueTask AwaitNoMutexAsync() => Register();

    private ValueTask Register()
    {
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        QueuedWaiter<bool> w;
        lock (_sync)
        {
            w = QueuedWaiter<bool>.Rent(frame.Fiber.Domain, Tracing.TraceReason.Condition);
            _waiters.Add(w);
        }

        w.Attach(frame.Cancel);
        return w.VoidTask;
    }

    /// <summary>Wakes every fiber waiting now.</summary>
    /// <remarks>Eio: <c>Condition.broadcast</c>. May be called from any thread.</remarks>
    public void Broadcast()
    {
        // Completed under the lock: waiters are pooled (see WaitList).
        lock (_sync)
        {
            while (_waiters.TakeFirst() is { } w)
            {
                w.TryComplete(true);
            }
        }
    }
}
