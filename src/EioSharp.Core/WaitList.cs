using System.Runtime.CompilerServices;

namespace EioSharp;

/// <summary>A waiter that can sit in a <see cref="WaitList{T}"/> of a wait structure (promise, queue, semaphore...).</summary>
/// <remarks>When cancellation wins, the waiter unlinks itself under the list's lock, so cancelled waiters never pile up.</remarks>
internal class QueuedWaiter<T>(Domain owner) : Waiter<T>(owner)
{
    [ThreadStatic]
    private static WaiterPool? t_free;

    internal WaitList<T>? List;

    /// <summary>The lock of the list this use was added to; kept after removal (until recycled) so that a cancellation
    /// that wins waits for a waker still holding the lock (and perhaps this waiter) to finish with it.</summary>
    internal object? Sync;
    internal QueuedWaiter<T>? QPrev;
    internal QueuedWaiter<T>? QNext;

    /// <summary>An item carried by the waiter (for example the value an adder offers).</summary>
    internal object? Payload;

    /// <summary>The promise whose single-waiter slot this use was put in (instead of a list), or null.</summary>
    internal Promise<T>? Slot;

    /// <summary>A waiter from the calling thread's pool (or a new one), recycled when its result is consumed.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)] // see RentInline
    internal static QueuedWaiter<T> Rent(Domain owner, Tracing.TraceReason reason) => RentInline(owner, reason);

    /// <summary><see cref="Rent"/>, inlined into <c>Promise.AwaitAsync</c> (issue 20, h168: no call). Not into
    /// <c>AsyncQueue</c>'s takes: inlined there (another assembly), the JIT reached every thread static through the
    /// generic helper instead of the inline thread-local access, +37 instructions per item.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static QueuedWaiter<T> RentInline(Domain owner, Tracing.TraceReason reason)
    {
        var w = WaiterPool.Rent<QueuedWaiter<T>>(t_free) ?? new QueuedWaiter<T>(owner);
        w.PrepareRented(owner, reason);
        return w;
    }

    private protected override void ReturnToPool()
    {
        ResetQueued();
        WaiterPool.Return(ref t_free, this);
    }

    /// <summary>Returns a waiter that was rented but never handed out (no one else holds it) to the pool.</summary>
    internal void ReturnUnused() => ReturnToPool();

    /// <summary>Clears the list fields of a consumed waiter (subclasses with their own pool call it from <see cref="ReturnToPool"/>).</summary>
    private protected void ResetQueued()
    {
        System.Diagnostics.Debug.Assert(List is null && QPrev is null && QNext is null, "a recycled waiter is still in a wait list");
        Payload = null;
        Sync = null;
        Slot = null;
    }

    /// <summary>The item a promise's resolver on another thread posts to this waiter's domain instead of completing the waiter
    /// (§209, issue 20, h212): the waiter, still pending unless a cancellation won meanwhile, is completed there with the
    /// value read from its promise (<see cref="Slot"/>). A cancellation that won found the slot claimed and kept the waiter
    /// out of the pool (<see cref="OnCancelled"/>), so the waiter this item names is still this use.</summary>
    internal static readonly Action<object?> SlotResolved = static s => Unsafe.As<QueuedWaiter<T>>(s!).CompleteSlotResolved();

    /// <summary>As <see cref="SlotResolved"/>, run by the awaiting domain's drain with the value in
    /// <see cref="Domain.DrainedValue"/> (<see cref="Domain.TryPostCompletion"/>; a small unmanaged <typeparamref name="T"/>
    /// only): the promise is not read. Completes the use and queues its continuation (no user code in the drain).</summary>
    internal static readonly Action<object?> SlotResolvedInDrain = static s =>
    {
        var w = Unsafe.As<QueuedWaiter<T>>(s!);
        if (!w.IsDone)
        {
            long bits = w.Owner.DrainedValue;
            w.TryCompleteTakenHere(Unsafe.As<long, T>(ref bits));
        }
    };

    private void CompleteSlotResolved()
    {
        if (IsDone)
        {
            return; // cancelled since the claim: the awaiting fiber has its cancellation; the promise keeps its value
        }

        CompletePosted(Slot!.ResolvedValue);
    }

    /// <inheritdoc/>
    internal override bool TrySpinMark() => Slot is { } promise && !IsDone && promise.TryMarkAwaiterSpinning(this);

    /// <inheritdoc/>
    internal override bool SpinResolved => Slot!.IsResolved;

    /// <inheritdoc/>
    internal override bool TrySpinUnmark()
    {
        var promise = Slot!;
        if (promise.TryUnmarkAwaiterSpinning())
        {
            return true;
        }

        promise.CompleteSpunWaiter(this);
        return false;
    }

    /// <inheritdoc/>
    internal override void CompleteSpun() => Slot!.CompleteSpunWaiter(this);

    protected override void OnCancelled()
    {
        if (Slot is { } promise)
        {
            // In a promise's slot (no list, no lock): take it back out. If a resolver took it first, it holds this waiter
            // and may still call TryComplete (which fails: the cancellation won), so this object must not be reused.
            if (!promise.TryTakeBack(this))
            {
                KeepOutOfPool();
            }

            return;
        }

        // Always through the lock, even if a waker has already taken the waiter out of the list: that waker may still be
        // holding it (its TryComplete lost to this cancellation), and once this returns the waiter may be recycled.
        var sync = Sync;
        if (sync is not null)
        {
            lock (sync)
            {
                List?.Remove(this);
            }
        }
    }
}

/// <summary>A FIFO doubly-linked list of waiters, protected by <see cref="Sync"/> (callers hold the lock).</summary>
/// <remarks>A waiter taken out of the list must be completed (or dropped) before the lock is released: waiters are pooled,
/// and one completed later could be a later use of the same object (see <see cref="Waiter{T}"/>, invariant 4).</remarks>
internal class WaitList<T>
{
    private QueuedWaiter<T>? _head;
    private QueuedWaiter<T>? _tail;

    // No count and no lock field: a promise allocates one of these per awaited promise, so it is kept to two references.
    private protected WaitList()
    {
    }

    /// <summary>The lock that protects the list: <paramref name="sync"/>, or the list itself when null.</summary>
    public static WaitList<T> Create(object? sync) => sync is null ? new WaitList<T>() : new WithLock(sync);

    /// <summary>The lock (a type test, not a virtual call: read on every add, session 14).</summary>
    public object Sync => this is WithLock withLock ? withLock.Lock : this;

    public bool IsEmpty => _head is null;

    public void Add(QueuedWaiter<T> w)
    {
        // A waiter comes here unlinked (rented, or taken out by Remove, which clears both links), so its links are stored
        // only where they are not null: the usual lone waiter pays no write barrier for a null QPrev (issue 20, h168).
        System.Diagnostics.Debug.Assert(w.QPrev is null && w.QNext is null && w.List is null, "a waiter added to a wait list twice");
        w.List = this;
        w.Sync = Sync;
        var tail = _tail;
        if (tail is null)
        {
            _head = w;
        }
        else
        {
            w.QPrev = tail;
            tail.QNext = w;
        }

        _tail = w;
    }

    public void Remove(QueuedWaiter<T> w)
    {
        if (!ReferenceEquals(w.List, this))
        {
            return;
        }

        if (w.QPrev is null)
        {
            _head = w.QNext;
        }
        else
        {
            w.QPrev.QNext = w.QNext;
        }

        if (w.QNext is null)
        {
            _tail = w.QPrev;
        }
        else
        {
            w.QNext.QPrev = w.QPrev;
        }

        w.QPrev = w.QNext = null;
        w.List = null;
    }

    /// <summary>Removes and returns the first waiter, or null.</summary>
    public QueuedWaiter<T>? TakeFirst()
    {
        var w = _head;
        if (w is not null)
        {
            Remove(w);
        }

        return w;
    }

    public QueuedWaiter<T>? PeekFirst() => _head;

    /// <summary>Removes every waiter and returns them in order.</summary>
    public List<QueuedWaiter<T>> TakeAll()
    {
        var all = new List<QueuedWaiter<T>>();
        while (TakeFirst() is { } w)
        {
            all.Add(w);
        }

        return all;
    }

    private sealed class WithLock(object sync) : WaitList<T>
    {
        internal object Lock { get; } = sync;
    }
}
