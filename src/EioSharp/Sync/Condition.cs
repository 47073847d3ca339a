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

    /// <summary>Calls <paramref name="update"/> until it returns a value, waiting for a broadcast between calls; no broadcast
    /// that happens between a call and the wait is missed.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="update">Checks the state: <c>(true, value)</c> to finish with <c>value</c>, <c>(false, _)</c> to wait and retry.</param>
    /// <returns>The first value <paramref name="update"/> produced.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <exception cref="Exception">Whatever <paramref name="update"/> throws.</exception>
    /// <remarks>Eio: <c>Condition.loop_no_mutex</c>. The fiber registers as a waiter <i>before</i> each call to
    /// <paramref name="update"/> (after the first), so a broadcast made after the state changed but before the wait still
    /// wakes it. A registration left unused when <paramref name="update"/> succeeds is withdrawn.</remarks>
    public async Task<T> LoopNoMutexAsync<T>(Func<(bool Done, T Value)> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var (done, value) = update();
        while (!done)
        {
            var frame = FiberFrame.Require();
            frame.Cancel.ThrowIfCancelled();
            var w = new QueuedWaiter<bool>(frame.Fiber.Domain) { TraceReason = Tracing.TraceReason.Condition };
            lock (_sync)
            {
                _waiters.Add(w);
            }

            w.Attach(frame.Cancel);
            try
            {
                (done, value) = update();
            }
            catch
            {
                Withdraw(w);
                throw;
            }

            if (done)
            {
                Withdraw(w);
                break;
            }

            await w.VoidTask;
        }

        return value;
    }

    private void Withdraw(QueuedWaiter<bool> w)
    {
        lock (_sync)
        {
            _waiters.Remove(w);
        }

        w.TryComplete(true); // detaches it; nobody awaits it
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
