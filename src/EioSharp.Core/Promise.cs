using System.Runtime.ExceptionServices;

namespace EioSharp;

/// <summary>Creates promises.</summary>
/// <remarks>Eio: <c>Eio.Promise</c>.</remarks>
public static class Promise
{
    /// <summary>Creates an unresolved promise and the resolver that resolves it.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <returns>The promise (to await) and its resolver (to resolve once).</returns>
    /// <remarks>Eio: <c>Promise.create</c>.</remarks>
    public static (Promise<T> Promise, Resolver<T> Resolver) Create<T>()
    {
        var p = new Promise<T>();
        return (p, new Resolver<T>(p));
    }

    /// <summary>Creates a promise that is already resolved with <paramref name="value"/>.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="value">The value.</param>
    /// <returns>A resolved promise.</returns>
    /// <remarks>Eio: <c>Promise.create_resolved</c>.</remarks>
    public static Promise<T> CreateResolved<T>(T value)
    {
        var p = new Promise<T>();
        p.TryResolve(value, null);
        return p;
    }
}

/// <summary>A value that will be provided once, awaited by any number of fibers on any domains.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>
/// Eio: <c>Promise.t</c> (S19).
/// <para><b>Cancellation</b>: awaiting a resolved promise returns at once without a cancellation check; awaiting an
/// unresolved one is cancellable (the awaiter gets <see cref="CancelledException"/>, the promise is unaffected).</para>
/// <para><b>Errors</b>: a promise resolved with <see cref="Resolver{T}.ResolveError(Exception)"/> rethrows that exception to every awaiter.</para>
/// <para><b>Thread safety</b>: safe across domains; a waiter always resumes on its own domain.</para>
/// </remarks>
public sealed class Promise<T>
{
    // Invariants: _state goes 0 (unresolved) -> 3 (claimed by the one resolver) -> 1 (value) or 2 (error); _value/_error
    // are written only by the claimer, before the final state is published. The waiter list is created by the first
    // fiber that has to wait and doubles as the lock; a resolver that publishes takes the list (if any) under that lock,
    // and a waiter checks the state under the same lock, so no waiter is missed.
    private volatile int _state;
    private WaitList<T>? _waiters;
    private T _value = default!;
    private Exception? _error;

    internal Promise()
    {
    }

    /// <summary>True once the promise has a value or an error.</summary>
    public bool IsResolved => _state is 1 or 2;

    /// <summary>Gets the value if the promise was resolved with one.</summary>
    /// <param name="value">The value, when this returns true.</param>
    /// <returns>True if resolved with a value (false while unresolved or if resolved with an error).</returns>
    /// <remarks>Eio: <c>Promise.peek</c>.</remarks>
    public bool TryPeek(out T value)
    {
        if (_state == 1)
        {
            value = _value;
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Waits until the promise is resolved and returns its value.</summary>
    /// <returns>The value.</returns>
    /// <exception cref="CancelledException">The promise was unresolved and the calling fiber was cancelled.</exception>
    /// <exception cref="Exception">Whatever the promise was resolved with by <see cref="Resolver{T}.ResolveError(Exception)"/>.</exception>
    /// <exception cref="InvalidOperationException">Awaiting an unresolved promise outside a fiber.</exception>
    /// <remarks>Eio: <c>Promise.await</c>. <b>Scheduling</b>: a fiber woken by resolution is queued at the back of its domain's run queue.</remarks>
    public ValueTask<T> AwaitAsync()
    {
        if (IsResolved)
        {
            return Completed();
        }

        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        QueuedWaiter<T> w;
        var list = _waiters ?? Interlocked.CompareExchange(ref _waiters, WaitList<T>.Create(null), null) ?? _waiters!;
        lock (list.Sync)
        {
            if (IsResolved)
            {
                return Completed();
            }

            w = QueuedWaiter<T>.Rent(frame.Fiber.Domain, Tracing.TraceReason.Promise);
            list.Add(w);
        }

        w.Attach(frame.Cancel);
        return w.Task;
    }

    private ValueTask<T> Completed()
    {
        if (_state == 1)
        {
            return new ValueTask<T>(_value);
        }

        return ValueTask.FromException<T>(_error!);
    }

    internal bool TryResolve(T value, Exception? error)
    {
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
        if (Interlocked.CompareExchange(ref _state, 3, 0) != 0)
#pragma warning restore CS0420
        {
            return false;
        }

        _value = value;
        _error = error;

        // A full fence between publishing the state and reading the waiter list (a waiter does the opposite: creates the
        // list with a CAS, then reads the state): with a plain volatile write the store could be reordered after the
        // load, both sides would miss each other, and the waiter would never wake.
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
        Interlocked.Exchange(ref _state, error is null ? 1 : 2);
#pragma warning restore CS0420
        var list = Volatile.Read(ref _waiters);
        if (list is null)
        {
            return true;
        }

        // Completed under the list's lock (pooled waiters, see WaitList): TryComplete only posts the continuation.
        lock (list.Sync)
        {
            while (list.TakeFirst() is { } w)
            {
                if (error is null)
                {
                    w.TryComplete(value);
                }
                else
                {
                    w.TryFail(error);
                }
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => _state switch
    {
        0 or 3 => "Promise (unresolved)",
        1 => $"Promise ({_value})",
        _ => $"Promise (error: {_error!.Message})",
    };
}

/// <summary>The write end of a <see cref="Promise{T}"/>.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>Eio: <c>Promise.u</c>. <b>Thread safety</b>: may be used from any thread, including non-domain threads.</remarks>
public sealed class Resolver<T>
{
    internal Resolver(Promise<T> promise)
    {
        Promise = promise;
    }

    /// <summary>The promise this resolver resolves.</summary>
    public Promise<T> Promise { get; }

    /// <summary>Resolves the promise with <paramref name="value"/>, waking every awaiter.</summary>
    /// <param name="value">The value.</param>
    /// <exception cref="InvalidOperationException">The promise was already resolved.</exception>
    /// <remarks>Eio: <c>Promise.resolve</c>.</remarks>
    public void Resolve(T value)
    {
        if (!TryResolve(value))
        {
            throw new InvalidOperationException("The promise is already resolved.");
        }
    }

    /// <summary>Resolves the promise if it is still unresolved.</summary>
    /// <param name="value">The value.</param>
    /// <returns>False if the promise was already resolved.</returns>
    /// <remarks>Eio: <c>Promise.try_resolve</c>.</remarks>
    public bool TryResolve(T value) => Promise.TryResolve(value, null);

    /// <summary>Resolves the promise with an error that every awaiter will get.</summary>
    /// <param name="error">The exception to rethrow to awaiters.</param>
    /// <exception cref="InvalidOperationException">The promise was already resolved.</exception>
    /// <remarks>Eio: <c>Promise.resolve_error</c>.</remarks>
    public void ResolveError(Exception error)
    {
        if (!TryResolveError(error))
        {
            throw new InvalidOperationException("The promise is already resolved.");
        }
    }

    /// <summary>Resolves the promise with an error if it is still unresolved.</summary>
    /// <param name="error">The exception to rethrow to awaiters.</param>
    /// <returns>False if the promise was already resolved.</returns>
    public bool TryResolveError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return Promise.TryResolve(default!, error);
    }
}
