using System.Runtime.ExceptionServices;
using EioSharp.Tracing;
using System.Threading.Tasks.Sources;

namespace EioSharp;

/// <summary>
/// One suspension of one fiber: the awaitable behind every library operation that can block
/// (promise, queue, sleep, mutex...). Completion, failure and cancellation race on one atomic
/// state change and exactly one wins (S14).
/// </summary>
/// <remarks>
/// Invariants: <c>_state</c> goes 0 (pending) → 1 (claimed by the winner) → 3 (succeeded) or 4 (failed);
/// only the thread that moved it 0→1 writes <c>_result</c>/<c>_error</c>; the continuation is posted to the
/// owning domain exactly once, after the final state is published. A waiter is used for one await only.
/// </remarks>
internal class Waiter<T> : WaiterNode, IValueTaskSource<T>, IValueTaskSource
{
    private static readonly Action<object?> s_completedSentinel = static _ => { };

    private static readonly Action<object?> s_runWithoutContext = static s =>
    {
        var (continuation, state) = ((Action<object?>, object?))s!;
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            continuation(state);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    };

    private readonly Domain _owner;
    private int _state;
    private T _result = default!;
    private Exception? _error;
    private Action<object?>? _continuation;
    private object? _continuationState;
    private FiberFrame? _frame; // the awaiting fiber, recorded only while a watchdog runs (see Domain.RunningFrame)

    internal Waiter(Domain owner)
    {
        _owner = owner;
    }

    internal Domain Owner => _owner;

    /// <summary>
    /// When true, a continuation registered without <see cref="ValueTaskSourceOnCompletedFlags.UseSchedulingContext"/> (an
    /// <c>await ... ConfigureAwait(false)</c> in a .NET consumer such as <see cref="StreamReader"/>) runs on the owning domain with no
    /// <see cref="SynchronizationContext"/> installed, so the consumer's own <c>ConfigureAwait(false)</c> continuations run inline on
    /// the domain instead of hopping to the thread pool (which the mock backend cannot see). Fiber code (which awaits with the
    /// context) is unaffected. Used by the <c>Flow.AsStream</c> adapter only.
    /// </summary>
    internal bool InlineForeignContinuations { get; init; }

    /// <summary>True once a winner has claimed the waiter (it will not wait for anything else).</summary>
    internal bool IsDone => Volatile.Read(ref _state) != 0;

    internal ValueTask<T> Task => new(this, 0);

    internal ValueTask VoidTask => new(this, 0);

    /// <summary>Registers with the fiber's cancel context; fails at once if it is already cancelled (operations check cancellation when they start).</summary>
    internal void Attach(CancelContext? context)
    {
        if (context is null)
        {
            return;
        }

        if (context.IsCancelled)
        {
            TryFail(context.MakeCancelled());
            return;
        }

        context.AddWaiter(this);
    }

    internal bool TryComplete(T value)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return false;
        }

        _result = value;
        Volatile.Write(ref _state, 3);
        Signal();
        return true;
    }

    internal bool TryFail(Exception error)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return false;
        }

        _error = error;
        Volatile.Write(ref _state, 4);
        Signal();
        return true;
    }

    /// <summary>Called by the cancel context (on the owning domain) to cancel this suspension.</summary>
    internal override bool TryCancel(CancelledException error)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return false;
        }

        _error = error;
        if (EioTrace.On)
        {
            EioTrace.Cancelled(_frame);
        }

        OnCancelled();
        Volatile.Write(ref _state, 4);
        Signal();
        return true;
    }

    /// <summary>Hook for wait structures to unlink a cancelled waiter; runs after the cancellation won.</summary>
    protected virtual void OnCancelled()
    {
    }

    private void Signal()
    {
        var c = Interlocked.Exchange(ref _continuation, s_completedSentinel);
        if (c is not null && !ReferenceEquals(c, s_completedSentinel))
        {
            if (EioTrace.On)
            {
                EioTrace.Woken(_frame);
            }

            _owner.Enqueue(c, _continuationState, _frame);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => Volatile.Read(ref _state) switch
    {
        3 => ValueTaskSourceStatus.Succeeded,
        4 => _error is OperationCanceledException ? ValueTaskSourceStatus.Canceled : ValueTaskSourceStatus.Faulted,
        _ => ValueTaskSourceStatus.Pending,
    };

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        if (InlineForeignContinuations && (flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) == 0)
        {
            state = (continuation, state);
            continuation = s_runWithoutContext;
        }

        _continuationState = state;
        if (Volatile.Read(ref Domain.WatchdogsRunning) != 0)
        {
            _frame = FiberFrame.Current;
            if (_frame is { } f)
            {
                f.Fiber.Suspended(this);
            }

            if (EioTrace.On)
            {
                EioTrace.Suspended(_frame, TraceReason, TraceArg);
            }
        }

        var previous = Interlocked.CompareExchange(ref _continuation, continuation, null);
        if (ReferenceEquals(previous, s_completedSentinel))
        {
            _owner.Enqueue(continuation, state, _frame);
        }
    }

    public T GetResult(short token)
    {
        Context?.RemoveWaiter(this);
        _frame?.Fiber.Resumed(this);
        int s = Volatile.Read(ref _state);
        if (s == 3)
        {
            return _result;
        }

        if (s == 4)
        {
            ExceptionDispatchInfo.Throw(_error!);
        }

        throw new InvalidOperationException("The operation has not completed.");
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);
}

/// <summary>The part of a waiter that a cancel context links into its list of suspended operations.</summary>
internal abstract class WaiterNode
{
    // Links in the cancel context's list (touched only on the context's domain).
    internal CancelContext? Context;
    internal WaiterNode? Prev;
    internal WaiterNode? Next;

    /// <summary>What the suspension waits for, for traces and dumps (set where the waiter is made).</summary>
    internal TraceReason TraceReason = TraceReason.Other;

    /// <summary>A detail for traces: the file descriptor of an I/O wait.</summary>
    internal long TraceArg;

    internal abstract bool TryCancel(CancelledException error);
}

/// <summary>A waiter with no result value.</summary>
internal class Waiter : Waiter<bool>
{
    internal Waiter(Domain owner)
        : base(owner)
    {
    }
}

/// <summary>A sleeping fiber in the domain's timer heap.</summary>
internal sealed class TimerWaiter : Waiter<bool>
{
    internal TimerWaiter(Domain owner, long deadline)
        : base(owner)
    {
        Deadline = deadline;
        TraceReason = TraceReason.Sleep;
    }

    internal long Deadline { get; }

    /// <summary>Counts the dead heap entry so the domain can compact its heap (runs on the owning domain).</summary>
    protected override void OnCancelled() => Owner.TimerCancelled();
}
