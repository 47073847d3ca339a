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
    // are written only by the claimer, before the final state is published.
    // Waiters (issue 20, session 15: the common case is one awaiter, which needs no list and no lock): the first waiter
    // goes into the slot _first by a CAS from null, while _waiters is still null; any other goes into the list _waiters,
    // created by the first fiber that needs it, which doubles as the lock. Once the list exists every later waiter joins
    // it, so the slot's waiter (if any) is older than every listed one (among awaiters on one domain; concurrent awaiters
    // on different domains have no order to keep), and the resolver wakes the slot first, then the list in order. The resolver publishes the state (a full fence), then takes the slot with an exchange and the list
    // under its lock; a waiter stores the slot (a full fence) and then reads the state, or checks the state under the
    // list's lock, so no waiter is missed (one of the two sides sees the other's store). A slot waiter whose cancellation
    // wins takes itself back out of the slot with a CAS; if that fails, the resolver has taken it and may still call
    // TryComplete on it (which fails), so that use is not recycled (QueuedWaiter.OnCancelled): the slot's substitute for
    // the list's lock.
    private volatile int _state;
    private QueuedWaiter<T>? _first;
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

        var frame = FiberFrame.RequireInline();
        var cancel = frame.Cancel;
        if (cancel.IsCancelled)
        {
            ThrowCancelled(cancel);
        }

        // The cancel context's domain is the fiber's (S17): one field load, where frame.Fiber.Domain tests the frame's type.
        QueuedWaiter<T> w = QueuedWaiter<T>.RentInline(cancel.Domain, Tracing.TraceReason.Promise);
        if (Volatile.Read(ref _waiters) is null)
        {
            w.Slot = this;
            if (Interlocked.CompareExchange(ref _first, w, null) is null)
            {
                // In the slot. A resolver that published before that store may have read the slot empty: read the state
                // again, and if it is resolved take the waiter back, unless the resolver already has it (then it completes it).
                if (IsResolved && ReferenceEquals(Interlocked.CompareExchange(ref _first, null, w), w))
                {
                    w.ReturnUnused();
                    return Completed();
                }

                // Linked straight into the context (not Attach, h175): it was found not cancelled above, and a context is
                // cancelled only on its own domain (S17), this thread, which has run nothing else since.
                cancel.AddWaiter(w);
                return w.Task;
            }

            w.Slot = null; // another waiter has the slot: join the list
        }

        return AwaitListed(w, cancel);
    }

    /// <summary><see cref="AwaitAsync"/>'s second and later waiters: into the list, under its lock. Out of line (h175): the
    /// lock's locals made every await clear and save more of the stack.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private ValueTask<T> AwaitListed(QueuedWaiter<T> w, CancelContext cancel)
    {
        var list = _waiters ?? Interlocked.CompareExchange(ref _waiters, WaitList<T>.Create(null), null) ?? _waiters!;
        lock (list.Sync)
        {
            if (IsResolved)
            {
                w.ReturnUnused();
                return Completed();
            }

            list.Add(w);
        }

        w.Attach(cancel);
        return w.Task;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowCancelled(CancelContext cancel) => throw cancel.MakeCancelled();

    /// <summary>Takes the waiter out of the single-waiter slot, or null (the resolver, after storing the state). Always an
    /// exchange, also when the slot looks empty: it is the full fence between the state's store and the reads of the slot
    /// and the list that TryResolve needs (h173: it was the state's own exchange, a third locked instruction).</summary>
    internal QueuedWaiter<T>? TakeFirst() => Interlocked.Exchange(ref _first, null);

    /// <summary>Takes <paramref name="w"/> back out of the single-waiter slot (its cancellation won); false if a resolver has
    /// already taken it (and may still try to complete it).</summary>
    internal bool TryTakeBack(QueuedWaiter<T> w) => ReferenceEquals(Interlocked.CompareExchange(ref _first, null, w), w);

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
        if (error is not null)
        {
            _error = error; // only when set: a null store would still pay a write barrier on every resolution
        }

        // The state is stored plainly (a release); the slot's exchange right after (TakeFirst) is the full fence between
        // publishing it and reading the slot and the list (a waiter does the opposite: stores itself into the slot or creates
        // the list with a CAS, then reads the state; without the fence the loads could pass the store, both sides would miss
        // each other, and the waiter would never wake). Two locked instructions per resolution, was three (h173).
        _state = error is null ? 1 : 2;
        if (TakeFirst() is { } first)
        {
            // The slot's waiter, without a lock: a cancellation that won and finds the slot empty keeps the waiter from
            // being reused, so this completion (which then fails) cannot reach a later use of it.
            if (error is null)
            {
                first.TryCompleteTaken(value);
            }
            else
            {
                first.TryFail(error);
            }
        }

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
                    w.TryCompleteTaken(value);
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

/// <summary>The write end of a <see cref="Promise{T}"/>: a view over its promise, with no state of its own.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>
/// Eio: <c>Promise.u</c>. <b>Thread safety</b>: may be used from any thread, including non-domain threads.
/// <para>A value type holding only a reference to its promise (issue 20: creating a promise allocates one object, not
/// two), so copies of a resolver resolve the same promise, and two resolvers are equal when they resolve the same
/// promise. Get one from <see cref="EioSharp.Promise.Create{T}"/>; <c>default(Resolver&lt;T&gt;)</c> resolves nothing: every
/// member of it throws <see cref="InvalidOperationException"/>.</para>
/// </remarks>
public readonly struct Resolver<T> : IEquatable<Resolver<T>>
{
    private readonly Promise<T>? _promise;

    internal Resolver(Promise<T> promise)
    {
        _promise = promise;
    }

    /// <summary>The promise this resolver resolves.</summary>
    /// <exception cref="InvalidOperationException">This is <c>default(Resolver&lt;T&gt;)</c>.</exception>
    public Promise<T> Promise => _promise ?? throw NoPromise();

    /// <summary>Resolves the promise with <paramref name="value"/>, waking every awaiter.</summary>
    /// <param name="value">The value.</param>
    /// <exception cref="InvalidOperationException">The promise was already resolved, or this is
    /// <c>default(Resolver&lt;T&gt;)</c>.</exception>
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
    /// <exception cref="InvalidOperationException">This is <c>default(Resolver&lt;T&gt;)</c>.</exception>
    /// <remarks>Eio: <c>Promise.try_resolve</c>.</remarks>
    public bool TryResolve(T value) => (_promise ?? throw NoPromise()).TryResolve(value, null);

    /// <summary>Resolves the promise with an error that every awaiter will get.</summary>
    /// <param name="error">The exception to rethrow to awaiters.</param>
    /// <exception cref="InvalidOperationException">The promise was already resolved, or this is
    /// <c>default(Resolver&lt;T&gt;)</c>.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
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
    /// <exception cref="InvalidOperationException">This is <c>default(Resolver&lt;T&gt;)</c>.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
    public bool TryResolveError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return (_promise ?? throw NoPromise()).TryResolve(default!, error);
    }

    /// <summary>True when both resolve the same promise (two defaults are equal).</summary>
    /// <param name="other">The other resolver.</param>
    /// <returns>Whether both resolve the same promise.</returns>
    public bool Equals(Resolver<T> other) => ReferenceEquals(_promise, other._promise);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Resolver<T> other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _promise is null ? 0 : System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(_promise);

    /// <inheritdoc/>
    public override string ToString() => _promise is null ? "Resolver (default)" : "Resolver of " + _promise;

    /// <summary>True when both resolve the same promise.</summary>
    /// <param name="left">A resolver.</param>
    /// <param name="right">Another.</param>
    /// <returns>Whether both resolve the same promise.</returns>
    public static bool operator ==(Resolver<T> left, Resolver<T> right) => left.Equals(right);

    /// <summary>True when they resolve different promises.</summary>
    /// <param name="left">A resolver.</param>
    /// <param name="right">Another.</param>
    /// <returns>Whether they resolve different promises.</returns>
    public static bool operator !=(Resolver<T> left, Resolver<T> right) => !left.Equals(right);

    private static InvalidOperationException NoPromise() =>
        new("default(Resolver<T>) resolves no promise: get a resolver from Promise.Create<T>().");
}
