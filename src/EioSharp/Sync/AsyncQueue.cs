namespace EioSharp.Sync;

/// <summary>A bounded multi-producer, multi-consumer queue of items, safe across domains.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <remarks>
/// Eio: <c>Eio.Stream</c> (S18), renamed because <c>Stream</c> clashes with <c>System.IO.Stream</c>.
/// Capacity 0 is a rendezvous (<see cref="AddAsync(T)"/> waits until a taker has the item); capacity 1 is a mailbox;
/// <see cref="Unbounded"/> never blocks adders.
/// <para><b>Cancellation</b>: both sides are cancellable. A cancelled <see cref="TakeAsync"/> never loses an item: it either
/// returns it or the item goes to the next taker (S14). A cancelled <see cref="AddAsync(T)"/> has not added its item.</para>
/// <para><b>Scheduling</b>: an operation that can complete at once does so without suspending; woken fibers are queued at the
/// back of their own domain's run queue. Waiters are served first come, first served.</para>
/// <para><b>[ext] Closing</b>: <see cref="Close"/> ends the stream: pending and later takes throw <see cref="StreamClosedException"/>
/// once the buffered items are drained; adds throw at once (eio#641).</para>
/// </remarks>
public sealed class AsyncQueue<T>
{
    /// <summary>The capacity that means "no bound".</summary>
    public const int Unbounded = int.MaxValue;

    private readonly object _sync = new();
    private readonly Queue<T> _items = new();
    private readonly WaitList<T> _takers;
    private readonly WaitList<bool> _adders;
    private bool _closed;

    /// <summary>Creates a queue holding at most <paramref name="capacity"/> items.</summary>
    /// <param name="capacity">Items buffered before adders wait: 0 for a rendezvous, <see cref="Unbounded"/> for no limit.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    /// <remarks>Eio: <c>Stream.create</c>.</remarks>
    public AsyncQueue(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
        _takers = WaitList<T>.Create(_sync);
        _adders = WaitList<bool>.Create(_sync);
    }

    /// <summary>The most items buffered.</summary>
    public int Capacity { get; }

    /// <summary>The number of items buffered now (not counting adders waiting at a full queue).</summary>
    /// <remarks>Eio: <c>Stream.length</c>.</remarks>
    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>True if no item is buffered.</summary>
    /// <remarks>Eio: <c>Stream.is_empty</c>.</remarks>
    public bool IsEmpty => Count == 0;

    /// <summary>True once <see cref="Close"/> was called.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_sync)
            {
                return _closed;
            }
        }
    }

    /// <summary>Adds <paramref name="item"/>, waiting while the queue is full (for capacity 0, until a taker has it).</summary>
    /// <param name="item">The item.</param>
    /// <returns>An awaitable that completes once the item is in the queue or handed to a taker.</returns>
    /// <exception cref="StreamClosedException">The queue is closed (then or while waiting).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting; the item was not added.</exception>
    /// <remarks>Eio: <c>Stream.add</c>.</remarks>
    public ValueTask AddAsync(T item)
    {
        AddWaiter w;
        FiberFrame frame;
        lock (_sync)
        {
            if (_closed)
            {
                throw new StreamClosedException();
            }

            if (GiveToTaker(item) || TryBuffer(item))
            {
                return ValueTask.CompletedTask;
            }

            frame = FiberFrame.Require();
            frame.Cancel.ThrowIfCancelled();
            w = AddWaiter.Rent(frame.Fiber.Domain, item);
            _adders.Add(w);
        }

        w.Attach(frame.Cancel);
        return w.VoidTask;
    }

    /// <summary>Adds <paramref name="item"/> if that can be done without waiting.</summary>
    /// <param name="item">The item.</param>
    /// <returns>True if added (buffered or handed to a waiting taker).</returns>
    /// <exception cref="StreamClosedException">The queue is closed.</exception>
    /// <remarks>Eio: <c>Stream.add</c> without suspending (no direct Eio equivalent).</remarks>
    public bool TryAdd(T item)
    {
        lock (_sync)
        {
            if (_closed)
            {
                throw new StreamClosedException();
            }

            return GiveToTaker(item) || TryBuffer(item);
        }
    }

    /// <summary>Removes and returns the oldest item, waiting until one is available.</summary>
    /// <returns>The item.</returns>
    /// <exception cref="StreamClosedException">The queue is closed and drained.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting; no item was taken.</exception>
    /// <remarks>Eio: <c>Stream.take</c>.</remarks>
    public ValueTask<T> TakeAsync()
    {
        QueuedWaiter<T> w;
        FiberFrame frame;
        lock (_sync)
        {
            if (TryTakeLocked(out var item))
            {
                return new ValueTask<T>(item);
            }

            if (_closed)
            {
                throw new StreamClosedException();
            }

            frame = FiberFrame.Require();
            frame.Cancel.ThrowIfCancelled();
            w = QueuedWaiter<T>.Rent(frame.Fiber.Domain, Tracing.TraceReason.Queue);
            _takers.Add(w);
        }

        w.Attach(frame.Cancel);
        return w.Task;
    }

    /// <summary>Removes and returns the oldest item if one is available now.</summary>
    /// <param name="item">The item, when this returns true.</param>
    /// <returns>True if an item was taken.</returns>
    /// <remarks>Eio: <c>Stream.take_nonblocking</c>.</remarks>
    public bool TryTake(out T item)
    {
        lock (_sync)
        {
            return TryTakeLocked(out item);
        }
    }

    /// <summary>Takes every item available now (up to <paramref name="max"/>) into <paramref name="into"/>, without waiting.</summary>
    /// <param name="into">Receives the items, oldest first.</param>
    /// <param name="max">The most items to take.</param>
    /// <returns>The number of items taken.</returns>
    public int TryTakeMany(List<T> into, int max = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(into);
        int n = 0;
        lock (_sync)
        {
            while (n < max && TryTakeLocked(out var item))
            {
                into.Add(item);
                n++;
            }
        }

        return n;
    }

    /// <summary>Closes the queue: later adds throw; takes throw once the buffered items are drained.</summary>
    /// <remarks>[ext] Not in Eio (eio#641). Idempotent. Waiting adders get <see cref="StreamClosedException"/> and their items are not added.</remarks>
    public void Close()
    {
        lock (_sync)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;

            // Failed under the lock: waiters are pooled (see WaitList).
            while (_takers.TakeFirst() is { } t)
            {
                t.TryFail(new StreamClosedException());
            }

            while (_adders.TakeFirst() is { } a)
            {
                a.TryFail(new StreamClosedException());
            }
        }
    }

    private bool GiveToTaker(T item)
    {
        while (_takers.TakeFirst() is { } taker)
        {
            if (taker.TryCompleteTaken(item))
            {
                return true;
            }
        }

        return false;
    }

    private bool TryBuffer(T item)
    {
        if (_items.Count < Capacity)
        {
            _items.Enqueue(item);
            return true;
        }

        return false;
    }

    private bool TryTakeLocked(out T item)
    {
        if (_items.Count > 0)
        {
            item = _items.Dequeue();
            while (_adders.TakeFirst() is AddWaiter a)
            {
                // The item is read before the adder is woken: once woken, its waiter may be consumed and reused (pooled).
                var added = a.Item;
                if (a.TryCompleteTaken(true))
                {
                    _items.Enqueue(added);
                    break;
                }
            }

            return true;
        }

        while (_adders.TakeFirst() is AddWaiter a)
        {
            var added = a.Item; // read before waking the adder (see above)
            if (a.TryCompleteTaken(true))
            {
                item = added;
                return true;
            }
        }

        item = default!;
        return false;
    }

    private sealed class AddWaiter(Domain owner) : QueuedWaiter<bool>(owner)
    {
        [ThreadStatic]
        private static WaiterPool? t_free;

        public T Item { get; private set; } = default!;

        internal static AddWaiter Rent(Domain owner, T item)
        {
            var w = WaiterPool.Rent<AddWaiter>(t_free) ?? new AddWaiter(owner);
            w.PrepareRented(owner, Tracing.TraceReason.Queue);
            w.Item = item;
            return w;
        }

        private protected override void ReturnToPool()
        {
            Item = default!;
            ResetQueued();
            WaiterPool.Return(ref t_free, this);
        }
    }
}

/// <summary>Thrown by <see cref="AsyncQueue{T}"/> operations on a closed queue.</summary>
/// <remarks>[ext] Eio has no close; see eio#641.</remarks>
public sealed class StreamClosedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public StreamClosedException()
        : base("The queue is closed.")
    {
    }
}
