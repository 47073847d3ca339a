using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using EioSharp.Tracing;

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
    // Invariants (issue 20, h178: one int for the resolution and the slot, so a resolution pays one locked instruction and
    // an awaiter one compare-exchange of an int):
    // - _state's low two bits are the resolution: Unresolved (0) -> Claimed (3, by the one resolver, whose compare-exchange
    //   moved them from 0) -> HasValue (1) or HasError (2). _value/_error are written only by the claimer, between its claim
    //   and its store of the final resolution (a release: a reader that sees it sees them). Only the claimer writes _state
    //   after the claim (every other writer compare-exchanges from an unclaimed value and fails).
    // - SlotTaken (4) says the single-waiter slot _first belongs to a waiter (the common case is one awaiter, which needs no
    //   list and no lock: issue 20, session 15). An awaiter takes it by a compare-exchange of _state from 0 to SlotTaken and
    //   then stores itself into _first (plainly); the claim keeps the bit, so the claimer knows there is a slot waiter, and
    //   reads _first, waiting the few instructions until the awaiter's store is there if it raced it (an awaiter on another
    //   thread). While SlotTaken is set _first is null or that waiter (a waiter taken back clears it before it gives the bit
    //   back, and puts it back if a claim beat it).
    // - Any other awaiter goes into the list _waiters, created by the first fiber that needs it, which doubles as the lock;
    //   once the list exists every later waiter joins it, so the slot's waiter (if any) is older than every listed one
    //   (among awaiters on one domain; concurrent awaiters on different domains have no order to keep), and the resolver wakes
    //   the slot first, then the list in order. The claim (a full fence) comes before the resolver's read of _waiters, and a
    //   listed awaiter reads the resolution under the lock after creating or finding the list: either the resolver finds the
    //   list (and drains it under the lock, after publishing), or the awaiter sees the claim (and does not join).
    // - An awaiter that finds the promise claimed but not yet resolved (a resolver on another thread between its claim and
    //   its store of the result: straight-line code) waits for the store (AwaitPublished).
    // - A slot waiter whose cancellation wins takes itself back (TryTakeBack: SlotTaken -> 0); if a claim came first, the
    //   resolver holds the waiter and may still call TryComplete on it (which fails), so that use is not recycled
    //   (QueuedWaiter.OnCancelled): the slot's substitute for the list's lock.
    // - _errorOrDomain (§209, issue 20, h212): until the claim, the domain of the slot's waiter (stored by the awaiter before
    //   _first, read by the claimer after it sees _first), so that a resolver on another thread finds where to post the
    //   wake-up in the promise's own line, without reading the waiter (whose line then stays on the awaiting domain's CPU);
    //   after a claim with an error, that error; after a claim with a value, null (the domain is not kept alive). Only the
    //   slot's awaiter writes it before the claim, only the claimer after it.
    private const int Unresolved = 0;
    private const int HasValue = 1;
    private const int HasError = 2;
    private const int Claimed = 3;
    private const int ResolutionMask = 3;
    private const int SlotTaken = 4;

    // - AwaiterSpinning (8; §215, issue 20, h218): set with SlotTaken, unresolved, by the slot waiter's domain while it spins
    //   idle polling this promise (TryMarkAwaiterSpinning: a compare-exchange from exactly SlotTaken), taken back by it
    //   before it does anything else (TryUnmarkAwaiterSpinning: from exactly SlotTaken | AwaiterSpinning). A claim that sees
    //   it (the claim's compare-exchange keeps it until the final state, which drops it) neither completes nor posts the
    //   slot's waiter: the polling domain sees the final state, or fails to take the mark back, and completes the waiter
    //   on its own thread (CompleteSpunWaiter). Both sides change the one word by compare-exchange, so exactly one of "the
    //   claim saw the mark" and "the mark was taken back first" holds: no wake-up is lost and none is posted twice.
    private const int AwaiterSpinning = 8;

    private volatile int _state;
    private QueuedWaiter<T>? _first;
    private WaitList<T>? _waiters;
    private T _value = default!;
    private object? _errorOrDomain;

    internal Promise()
    {
    }

    /// <summary>True once the promise has a value or an error.</summary>
    public bool IsResolved => IsFinal(_state);

    /// <summary>Gets the value if the promise was resolved with one.</summary>
    /// <param name="value">The value, when this returns true.</param>
    /// <returns>True if resolved with a value (false while unresolved or if resolved with an error).</returns>
    /// <remarks>Eio: <c>Promise.peek</c>.</remarks>
    public bool TryPeek(out T value)
    {
        if ((_state & ResolutionMask) == HasValue)
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
        int s = _state;
        if (IsFinal(s))
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
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
        if (s == Unresolved && Volatile.Read(ref _waiters) is null && Interlocked.CompareExchange(ref _state, SlotTaken, Unresolved) == Unresolved)
#pragma warning restore CS0420
        {
            // The slot is this waiter's: a resolver that claims from now on sees SlotTaken and reads it from _first (h178:
            // no second read of the state, no object compare-exchange). Linked straight into the context (not Attach, h175):
            // it was found not cancelled above, and a context is cancelled only on its own domain (S17), this thread,
            // which has run nothing else since. The waiter's domain first, for the claimer (invariants, §209).
            _errorOrDomain = cancel.Domain;
            Volatile.Write(ref _first, w);
            w.Slot = this;
            cancel.AddWaiter(w);
            cancel.Domain.NoteSlotAwait(w); // the domain's next spin may poll this promise (§215)
            return w.Task;
        }

        return AwaitContended(w, cancel);
    }

    /// <summary><see cref="AwaitAsync"/> when the slot was not there for the taking: the promise was resolved or claimed in
    /// the meantime, the slot is taken (the list, under its lock), or it was freed again. Out of line (h175): the lock's locals
    /// made every await clear and save more of the stack.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private ValueTask<T> AwaitContended(QueuedWaiter<T> w, CancelContext cancel)
    {
        while (true)
        {
            int s = _state;
            if ((s & ResolutionMask) != Unresolved)
            {
                w.ReturnUnused();
                return AwaitPublished();
            }

            var list = Volatile.Read(ref _waiters);
            if (list is null && s == Unresolved)
            {
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
                if (Interlocked.CompareExchange(ref _state, SlotTaken, Unresolved) == Unresolved)
#pragma warning restore CS0420
                {
                    _errorOrDomain = cancel.Domain;
                    Volatile.Write(ref _first, w);
                    w.Slot = this;
                    cancel.AddWaiter(w);
                    cancel.Domain.NoteSlotAwait(w);
                    return w.Task;
                }

                continue; // resolved, claimed or the slot taken since: look again
            }

            list ??= Interlocked.CompareExchange(ref _waiters, WaitList<T>.Create(null), null) ?? _waiters!;
            bool added = false;
            lock (list.Sync)
            {
                // Under the lock (a full fence after the list was created or found): unresolved here means the claim, if any,
                // comes later, and that resolver will find the list (invariants).
                if ((_state & ResolutionMask) == Unresolved)
                {
                    list.Add(w);
                    added = true;
                }
            }

            if (!added)
            {
                w.ReturnUnused();
                return AwaitPublished();
            }

            w.Attach(cancel);
            return w.Task;
        }
    }

    /// <summary>The promise's result once its resolver has stored it: at once when it has, else (a resolver on another thread
    /// between its claim and its store, a few instructions) after spinning until it has.</summary>
    private ValueTask<T> AwaitPublished()
    {
        if ((_state & ResolutionMask) == Claimed)
        {
            var spin = default(SpinWait);
            while ((_state & ResolutionMask) == Claimed)
            {
                spin.SpinOnce();
            }
        }

        return Completed();
    }

    private static bool IsFinal(int state) => (state & ResolutionMask) is HasValue or HasError;

    /// <summary>Marks the promise "awaiter spinning" (§215) if it is unresolved with <paramref name="w"/> in its slot and not
    /// marked; on the slot waiter's domain thread, while that domain spins idle.</summary>
    /// <returns>True when marked: a resolver from now on stores its result and posts nothing, and the caller must poll
    /// <see cref="IsResolved"/> and end with <see cref="TryUnmarkAwaiterSpinning"/> or <see cref="CompleteSpunWaiter"/>.</returns>
    internal bool TryMarkAwaiterSpinning(QueuedWaiter<T> w)
    {
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
        return _state == SlotTaken && ReferenceEquals(_first, w)
            && Interlocked.CompareExchange(ref _state, SlotTaken | AwaiterSpinning, SlotTaken) == SlotTaken;
#pragma warning restore CS0420
    }

    /// <summary>The waiter in the single-waiter slot, if any (for tests of §215's protocol).</summary>
    internal QueuedWaiter<T>? SlotWaiter => Volatile.Read(ref _first);

    /// <summary>Takes the mark of <see cref="TryMarkAwaiterSpinning"/> back (the slot waiter's domain, before it does anything
    /// but spin); false when a resolver claimed first (it saw the mark: the caller completes the waiter,
    /// <see cref="CompleteSpunWaiter"/>).</summary>
    internal bool TryUnmarkAwaiterSpinning()
    {
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
        return Interlocked.CompareExchange(ref _state, SlotTaken, SlotTaken | AwaiterSpinning) == (SlotTaken | AwaiterSpinning);
#pragma warning restore CS0420
    }

    /// <summary>Completes the slot's waiter <paramref name="w"/> on its own domain's thread with the resolution of a claim
    /// that saw the mark (§215: that resolver neither completed nor posted it), waiting out the resolver's few stores after
    /// its claim. A cancellation, the only other party, runs on this thread and cannot have run while the domain spun, so
    /// the use is pending: plain completion (<see cref="Waiter{T}.TryCompleteTakenHere"/>), or its failure.</summary>
    internal void CompleteSpunWaiter(QueuedWaiter<T> w)
    {
        int s = _state;
        if (!IsFinal(s))
        {
            var spin = default(SpinWait);
            while (!IsFinal(s = _state))
            {
                spin.SpinOnce(sleep1Threshold: -1); // the resolver is between its claim and its final state
            }
        }

        Debug.Assert(!w.IsDone, "a spinning awaiter's use completed by someone else");
        if ((s & ResolutionMask) == HasValue)
        {
            w.TryCompleteTakenHere(_value);
        }
        else
        {
            w.TryFail(Unsafe.As<Exception>(_errorOrDomain!));
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowCancelled(CancelContext cancel) => throw cancel.MakeCancelled();

    /// <summary>Takes <paramref name="w"/> back out of the single-waiter slot (its cancellation won; on its domain); false if a
    /// resolver has claimed the promise first (it holds the waiter, or is about to read it, and may still try to complete
    /// it).</summary>
    internal bool TryTakeBack(QueuedWaiter<T> w)
    {
        // _first is cleared before the bit is given back (a new awaiter may take the slot at once and store itself), and put
        // back if a claim came first (its resolver may be waiting to read it: invariants).
        _first = null;
#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
        if (Interlocked.CompareExchange(ref _state, Unresolved, SlotTaken) == SlotTaken)
#pragma warning restore CS0420
        {
            return true;
        }

        _first = w;
        return false;
    }

    private ValueTask<T> Completed()
    {
        if ((_state & ResolutionMask) == HasValue)
        {
            return new ValueTask<T>(_value);
        }

        return ValueTask.FromException<T>(Unsafe.As<Exception>(_errorOrDomain!));
    }

    internal bool TryResolve(T value, Exception? error)
    {
        if (!TryClaimAndStore(value, error, out var first, out var firstDomain))
        {
            return false;
        }

        if (first is not null)
        {
            // The slot's waiter, without a lock: a cancellation that won and finds the slot claimed keeps the waiter from
            // being reused, so this completion (which then fails) cannot reach a later use of it.
            if (error is not null)
            {
                first.TryFail(error);
            }
            else if (firstDomain!.OnLoopStack() || firstDomain.IsCurrent)
            {
                first.TryCompleteTakenHere(value);
            }
            else if (!EioTrace.On)
            {
                // From another thread (§209, issue 20, h212): the wake-up is posted to the waiter's domain, found in this
                // promise's line, and the waiter is not touched here: that domain completes it (QueuedWaiter.SlotResolved,
                // with no compare-exchange: a cancellation runs there too) and reads the value from this promise. The
                // waiter's lines never leave the awaiting domain's CPU; the post is the promise's line, then the inbox's.
                if (!CarriesValue || !firstDomain.TryPostCompletion(QueuedWaiter<T>.SlotResolvedInDrain, first, ValueBits(value)))
                {
                    firstDomain.Enqueue(QueuedWaiter<T>.SlotResolved, first, null);
                }
            }
            else
            {
                first.TryComplete(value); // tracing: the waker's side records the wake-up (Waiter.SignalFromOtherThread)
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

    /// <summary>Whether a value of <typeparamref name="T"/> travels in the awaiting domain's inbox line (8 bytes or less, no
    /// references: §209); a JIT-time constant.</summary>
    private static bool CarriesValue => !RuntimeHelpers.IsReferenceOrContainsReferences<T>() && Unsafe.SizeOf<T>() <= sizeof(long);

    /// <summary>The bits of <paramref name="value"/> in a long (<see cref="CarriesValue"/> types only).</summary>
    private static long ValueBits(T value)
    {
        long bits = 0;
        Unsafe.As<long, T>(ref bits) = value;
        return bits;
    }

    /// <summary>The value of a promise resolved with one, read by the slot's waiter on its own domain when the resolver
    /// posted its wake-up from another thread (<see cref="TryResolve"/>): the post was made after the final state was
    /// stored, so the domain that runs it sees the value.</summary>
    internal T ResolvedValue
    {
        get
        {
            Debug.Assert((_state & ResolutionMask) == HasValue, "a slot's posted wake-up before the value");
            return _value;
        }
    }

    /// <summary>The resolution up to the slot's waiter (what <see cref="TryResolve"/> does before it completes that waiter
    /// and the list): claims the promise (the one locked instruction of a resolution: h178), takes the slot's waiter, if
    /// any, and its domain (§209), and stores the result and its final state.</summary>
    /// <returns>False if the promise was already claimed.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryClaimAndStore(T value, Exception? error, out QueuedWaiter<T>? first, out Domain? firstDomain)
    {
        int s = _state;
        while (true)
        {
            if ((s & ResolutionMask) != Unresolved)
            {
                first = null;
                firstDomain = null;
                return false;
            }

#pragma warning disable CS0420 // a volatile field passed by reference: Interlocked gives the needed ordering
            int seen = Interlocked.CompareExchange(ref _state, s | Claimed, s);
#pragma warning restore CS0420
            if (seen == s)
            {
                break;
            }

            s = seen; // an awaiter took or gave back the slot meanwhile
        }

        // The claim was the full fence between this resolution and the reads of the slot and the list (invariants). The
        // slot's waiter and its domain are read before the error is stored over the domain (§209); the awaiter stored the
        // domain before the waiter, so once the waiter is seen, so is its domain.
        first = null;
        firstDomain = null;
        if ((s & AwaiterSpinning) != 0)
        {
            // The slot waiter's domain is spinning on this promise (§215): it completes the waiter when it sees the final
            // state below (or fails to take its mark back); nothing is returned to complete or post.
            _first = null;
        }
        else if ((s & SlotTaken) != 0)
        {
            first = Volatile.Read(ref _first) ?? WaitForSlotWaiter();
            firstDomain = Unsafe.As<Domain>(_errorOrDomain);
            _first = null;
        }

        _value = value;

        // The error when there is one; otherwise the slot's domain is dropped (a constant null: no write barrier).
        if (error is not null)
        {
            _errorOrDomain = error;
        }
        else
        {
            _errorOrDomain = null;
        }

        // The final state, stored plainly (a release: whoever sees it sees the result); no one else writes _state any more.
        _state = (s & SlotTaken) | (error is null ? HasValue : HasError);
        return true;
    }

    /// <summary>The slot's waiter when the claim raced its awaiter (on another thread) between the awaiter's taking of the
    /// slot and its store of itself, or its taking back after a cancellation (a few instructions).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private QueuedWaiter<T> WaitForSlotWaiter()
    {
        var spin = default(SpinWait);
        QueuedWaiter<T>? w;
        while ((w = Volatile.Read(ref _first)) is null)
        {
            spin.SpinOnce();
        }

        return w;
    }

    /// <inheritdoc/>
    public override string ToString() => (_state & ResolutionMask) switch
    {
        Unresolved or Claimed => "Promise (unresolved)",
        HasValue => $"Promise ({_value})",
        _ => $"Promise (error: {Unsafe.As<Exception>(_errorOrDomain!).Message})",
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
