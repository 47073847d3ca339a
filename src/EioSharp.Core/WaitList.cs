namespace EioSharp;

/// <summary>A waiter that can sit in a <see cref="WaitList{T}"/> of a wait structure (promise, queue, semaphore...).</summary>
/// <remarks>When cancellation wins, the waiter unlinks itself under the list's lock, so cancelled waiters never pile up.</remarks>
internal class QueuedWaiter<T>(Domain owner) : Waiter<T>(owner)
{
    internal WaitList<T>? List;
    internal QueuedWaiter<T>? QPrev;
    internal QueuedWaiter<T>? QNext;

    /// <summary>An item carried by the waiter (for example the value an adder offers).</summary>
    internal object? Payload;

    protected override void OnCancelled()
    {
        var list = List;
        if (list is not null)
        {
            lock (list.Sync)
            {
                list.Remove(this);
            }
        }
    }
}

/// <summary>A FIFO doubly-linked list of waiters, protected by <see cref="Sync"/> (callers hold the lock).</summary>
/// <param name="sync">The lock that protects the list; null: the list itself.</param>
internal sealed class WaitList<T>(object? sync)
{
    private QueuedWaiter<T>? _head;
    private QueuedWaiter<T>? _tail;

    public object Sync => sync ?? this;

    public int Count { get; private set; }

    public bool IsEmpty => _head is null;

    public void Add(QueuedWaiter<T> w)
    {
        w.List = this;
        w.QPrev = _tail;
        w.QNext = null;
        if (_tail is null)
        {
            _head = w;
        }
        else
        {
            _tail.QNext = w;
        }

        _tail = w;
        Count++;
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
        Count--;
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
        var all = new List<QueuedWaiter<T>>(Count);
        while (TakeFirst() is { } w)
        {
            all.Add(w);
        }

        return all;
    }
}
