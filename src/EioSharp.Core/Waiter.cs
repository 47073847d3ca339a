using System.Diagnostics;
using System.Runtime.CompilerServices;
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
/// <para>Invariants (the <c>ManualResetValueTaskSourceCore</c> / Channels <c>AsyncOperation</c> pattern):</para>
/// <list type="number">
/// <item><c>_state</c> goes 0 (pending) → 1 (claimed by the winner) → 3 (succeeded) or 4 (failed); only the thread that
/// moved it 0→1 writes <c>_result</c>/<c>_error</c>.</item>
/// <item>The continuation's hand-over is the int <c>_signal</c>: 0 (none) → 1 (registered: the awaiter's
/// <see cref="OnCompleted"/> stored the continuation, its state and frame) → 2 (completed: the winner's signal, after the
/// final state). <c>_signal</c> is written only on the owning domain's thread (issue 20, h178), so every change of it is a
/// plain store and neither side pays a locked instruction: a registration on that thread (the usual case: fiber code
/// awaits where it runs) stores it directly, a winner on that thread (a fiber of the same domain, a cancellation, the
/// domain's own I/O) signals directly, and a winner or a registration on another thread posts the step to the owning
/// domain (<see cref="Domain.Enqueue(Action{object?}, object?, FiberFrame?)"/>) and touches nothing else of the waiter. A
/// winner's post carries the frame it read (a racy read: null, or this use's frame), and when that is the registered
/// frame the posted item runs the continuation itself (it is the item that the winner used to post with that frame:
/// same place in the queue, same context installed); otherwise it queues it. Before, both sides raced with a
/// compare-exchange from 0 (one locked instruction per suspension, h163/h175). A promise's resolver on another thread
/// does not even complete its slot's waiter: it posts the waiter itself to the owning domain, found in the promise
/// (<c>QueuedWaiter.SlotResolved</c>), which completes it there (§209). The consumer sees the use completed
/// (<see cref="GetStatus(short)"/>, <see cref="GetResult(short)"/>) only at 2.</item>
/// <item>Each use has a version (the <see cref="ValueTask"/> token); <see cref="GetResult(short)"/> consumes the use and
/// bumps the version, so a second await of the same <see cref="ValueTask"/> (the classic misuse) throws
/// <see cref="InvalidOperationException"/> instead of resuming the fiber twice or reading a later use's result.</item>
/// <item>A pooled waiter (see <see cref="WaiterPool"/>) goes back to its domain thread's pool in
/// <see cref="GetResult(short)"/>, after it was unlinked from its cancel context. This is safe only because every
/// other holder has dropped it by then: wait structures complete a waiter only while holding the lock of the list they
/// removed it from (a cancellation that wins unlinks under the same lock), or, for a promise's single-waiter slot (no
/// lock), take it out of the slot with an atomic exchange, and a cancellation that wins but finds the slot no longer holding
/// it keeps the waiter out of the pool (<c>QueuedWaiter.OnCancelled</c>), the timer heap drops a timer before firing
/// it (a cancelled timer is never recycled: its heap entry may still be there), and an fd slot is cleared before
/// the fiber continues. A waker that lost the race (its <c>TryComplete</c> returned false) must drop the waiter, and one that won
/// must not read it afterwards (read a carried item before completing: the woken consumer may already have recycled it).</item>
/// </list>
/// </remarks>
internal class Waiter<T> : SuspensionNode, IValueTaskSource<T>, IValueTaskSource
{
    // _signal's values (invariant 2).
    private const int SignalNone = 0;
    private const int SignalRegistered = 1;
    private const int SignalCompleted = 2;

    // Run from the run queue, which installed the awaiting fiber: the continuation runs without a synchronization context
    // but still as that fiber's code (see InlineForeignContinuations).
    private static readonly Action<object?> s_runWithoutContext = static s =>
    {
        var (continuation, state) = ((Action<object?>, object?))s!;
        FiberFrame.RunForeign(FiberFrame.Current, continuation, state);
    };

    private Domain _owner;
    private int _state;
    private int _signal; // SignalNone -> SignalRegistered (OnCompleted) -> SignalCompleted (Signal): invariant 2
    private short _version;
    private bool _pooled; // rented from a WaiterPool: recycled when consumed
    private protected bool _recycleOnlyOnSuccess; // a timer: a cancelled one may still be in the heap (see CanRecycle)
    private T _result = default!;
    private Exception? _error;

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

    internal ValueTask<T> Task => new(this, _version);

    internal ValueTask VoidTask => new(this, _version);

    /// <summary>The current use's token (bumped each time the waiter is consumed).</summary>
    internal short Version => _version;

    /// <summary>Readies a waiter taken from a pool (or just made for one) for a new suspension on <paramref name="owner"/>.</summary>
    private protected void PrepareRented(Domain owner, TraceReason reason)
    {
        Debug.Assert(_state == 0 && _signal == SignalNone && !Queued && Frame is null && Context is null, "a pooled waiter was returned while still in use");
        if (!ReferenceEquals(_owner, owner))
        {
            _owner = owner; // only when it changes (issue 20, h163): a waiter goes back to its owner's thread's pool, so
                            // the owner is almost always the same, and the store would pay a write barrier on every rent
        }

        _pooled = true;
        TraceReason = reason;
        TraceArg = 0;
    }

    /// <summary>True if the consumed waiter may be reused: always, except a timer that did not fire (a cancelled timer may
    /// still be in the heap). A flag rather than a virtual property (session 14: no virtual call per resume).</summary>
    private bool CanRecycle => !_recycleOnlyOnSuccess || Succeeded;

    /// <summary>Keeps this waiter out of the pool once consumed (a waker may still hold it: see <c>QueuedWaiter.OnCancelled</c>).</summary>
    private protected void KeepOutOfPool() => _pooled = false;

    /// <summary>Puts a consumed, reset waiter back in its type's pool (pooled waiter types override this).</summary>
    private protected virtual void ReturnToPool()
    {
    }

    /// <summary>True once the use succeeded (state 3).</summary>
    private protected bool Succeeded => Volatile.Read(ref _state) == 3;

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

    /// <summary><see cref="TryComplete(T)"/> for a waker that holds this waiter exclusively: it took it out of a promise's
    /// single-waiter slot by an atomic exchange, or out of a wait list under the list's lock (so no other waker can
    /// complete this use).</summary>
    /// <remarks>On the owning domain's thread nothing else can change the state between the check and the writes: the only
    /// other party, a cancellation, runs on the owning domain too (S17), so the state needs no compare-exchange there (issue
    /// 20, h163: one locked instruction less per wake-up of a fiber by a fiber of its own domain). Elsewhere it is
    /// <see cref="TryComplete(T)"/>.</remarks>
    /// <param name="value">The result.</param>
    /// <returns>False if the use was already cancelled (then the waker must drop the waiter).</returns>
    internal bool TryCompleteTaken(T value)
    {
        // The owning domain's thread told by a stack address first (h186): no thread-static read on a wake-up by a fiber of
        // the same domain.
        if (!_owner.OnLoopStack() && !_owner.IsCurrent)
        {
            return TryComplete(value);
        }

        return TryCompleteTakenHere(value);
    }

    /// <summary><see cref="TryCompleteTaken(T)"/> when the caller has found that it runs on the owning domain's thread (a
    /// promise's resolver, which reads the domain of its slot's waiter from the promise: §209).</summary>
    /// <param name="value">The result.</param>
    /// <returns>False if the use was already cancelled (then the waker must drop the waiter).</returns>
    internal bool TryCompleteTakenHere(T value)
    {
        if (_state != 0)
        {
            return false;
        }

        _result = value;
        Volatile.Write(ref _state, 3);

        // Out of the cancel context now, not when the fiber consumes the use (h173): a completed use can no longer be
        // cancelled, and on this domain (the context's) the list is free to change. Fibers that share a context (a switch's
        // children) then find it empty when they suspend next: a lone waiter is linked with two stores, not four more
        // into its neighbours, and unlinked with no store of a reference.
        Context?.RemoveWaiter(this);
        SignalHere();
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
            EioTrace.Cancelled(Frame);
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

    /// <summary>The winner's hand-over of the continuation (after the final state): on the owning domain's thread at once,
    /// from anywhere else through an item posted to that domain (invariant 2).</summary>
    private void Signal()
    {
        if (_owner.IsCurrent)
        {
            SignalHere();
            return;
        }

        SignalFromOtherThread();
    }

    /// <summary><see cref="Signal"/> on the owning domain's thread (the caller checked): <c>_signal</c> is written only
    /// here, so plain reads and stores (invariant 2).</summary>
    private void SignalHere()
    {
        int s = _signal;
        if (s == SignalNone)
        {
            _signal = SignalCompleted; // nobody awaits yet: OnCompleted will find it and queue its own continuation
            return;
        }

        Debug.Assert(s == SignalRegistered, "a use signalled twice");

        if (EioTrace.On)
        {
            // Read before SignalCompleted is stored: from then on a consumer may consume the use (invariant 2).
            var c = Continuation!;
            var state = ContinuationState;
            var frame = Frame;
            _signal = SignalCompleted;
            _owner.EnqueueWoken(c, state, frame); // the wake-up's trace event, then the enqueue (h90)
            return;
        }

        // The run queue's slot holds this waiter, which keeps the continuation, state and frame until the dequeue takes them
        // (Domain.RunQueue.TryDequeue; issue 20, h186): one reference stored there, not three. Queued is set before SignalCompleted is
        // published (a release): until the dequeue the use is not recycled even if a consumer consumes it first (a misuse:
        // Consume checks Queued), so the item still runs this use's continuation, which then finds its token stale.
        Queued = true;
        Volatile.Write(ref _signal, SignalCompleted);
        _owner.EnqueueWaiterHere(this);
    }


    /// <summary><see cref="Signal"/> on any other thread: posts <see cref="s_signalPosted"/> to the owning domain with the
    /// frame registered so far (a racy read: null while none is, else this use's: the waiter cannot be reused before the
    /// posted item has run), and touches the waiter no more. Out of line: cross-thread wake-ups only.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SignalFromOtherThread()
    {
        var frame = Volatile.Read(ref Frame);
        if (EioTrace.On)
        {
            EioTrace.Woken(frame); // the wake-up's trace event on the waker's side, as before (h90)
        }

        _owner.Enqueue(s_signalPosted, this, frame);
    }

    // The owning domain's side of a signal from another thread (an item posted there by SignalFromOtherThread).
    private static readonly Action<object?> s_signalPosted = static s => Unsafe.As<Waiter<T>>(s!).SignalPosted();

    /// <summary>Runs on the owning domain as the item a winner on another thread posted (invariant 2).</summary>
    private void SignalPosted()
    {
        if (!TakeSignalledContinuation(out var c, out var state, out var frame))
        {
            return;
        }

        if (ReferenceEquals(frame, _owner.RunningFrame))
        {
            // This item was posted with the continuation's frame (the winner read it after the registration), so it runs
            // with that frame installed, where the winner's post of the continuation itself used to run: run it here.
            c(state);
            return;
        }

        _owner.EnqueueHere(c, state, frame); // registered while the winner posted: a run of its own, next round
    }

    /// <summary>The owning domain's side of a completion signalled from another thread (<see cref="SignalPosted"/>,
    /// <see cref="CompletePosted"/>; domain thread only, plain stores): marks the use signalled and, when a continuation is
    /// registered, hands it over with its state and frame (true); false when none is registered yet (then
    /// <c>OnCompleted</c> finds the mark and queues the continuation itself).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TakeSignalledContinuation(out Action<object?> continuation, out object? state, out FiberFrame? frame)
    {
        int s = _signal;
        if (s == SignalNone)
        {
            _signal = SignalCompleted; // registered later: OnCompleted finds it and queues its continuation
            continuation = null!;
            state = null;
            frame = null;
            return false;
        }

        Debug.Assert(s == SignalRegistered, "a use signalled twice");
        continuation = Continuation!;
        state = ContinuationState;
        frame = Frame;
        _signal = SignalCompleted;
        return true;
    }

    /// <summary>Completes this use with <paramref name="value"/> on its owning domain's thread, as the item that a waker on
    /// another thread, which holds the waiter exclusively, posted there instead of completing it itself (a promise's slot
    /// waiter: §209, issue 20, h212), so that the waker does not touch the waiter at all. The caller has checked that the
    /// use is still pending (<see cref="IsDone"/>): a cancellation, the only other party, runs on this thread too, so
    /// plain stores (as in <see cref="TryCompleteTakenHere"/>). A registered continuation runs here, inside the posted
    /// item, with its frame installed (<see cref="Domain.RunPostedContinuation"/>), where the winner's posted continuation
    /// used to run.</summary>
    private protected void CompletePosted(T value)
    {
        Debug.Assert(_state == 0 && _owner.IsCurrent, "a posted completion of a use that is not pending, or off its domain");
        _result = value;
        Volatile.Write(ref _state, 3);
        Context?.RemoveWaiter(this);
        if (!TakeSignalledContinuation(out var c, out var state, out var frame))
        {
            return;
        }

        if (EioTrace.On)
        {
            _owner.EnqueueWoken(c, state, frame); // the wake-up's trace event, then a run of its own (as SignalHere)
            return;
        }

        _owner.RunPostedContinuation(c, state, frame);
    }

    public ValueTaskSourceStatus GetStatus(short token)
    {
        ValidateToken(token);
        if (Volatile.Read(ref _signal) != SignalCompleted)
        {
            return ValueTaskSourceStatus.Pending; // not complete, or the winner has not finished signalling (invariant 2)
        }

        return Volatile.Read(ref _state) switch
        {
            3 => ValueTaskSourceStatus.Succeeded,
            4 => _error is OperationCanceledException ? ValueTaskSourceStatus.Canceled : ValueTaskSourceStatus.Faulted,
            _ => ValueTaskSourceStatus.Pending,
        };
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ValidateToken(token);
        int s = _signal; // on another thread than the owning domain's a racy read: the check below is then best effort
        if (s == SignalRegistered)
        {
            // Checked before the fields are overwritten: the first awaiter's continuation must still run with its own state.
            throw new InvalidOperationException("This operation is already being awaited (a ValueTask may be awaited only once).");
        }

        if (InlineForeignContinuations && (flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) == 0)
        {
            state = (continuation, state);
            continuation = s_runWithoutContext;
        }

        // The frame: the run loop installs it to run the continuation (inner frames included: issue 20, h117). On the owning
        // domain's loop, told by a stack address (h186), it is read through the domain's thread: no thread-static read.
        FiberFrame? frame;
        if (_owner.OnLoopStack())
        {
            frame = FiberFrame.CurrentIn(_owner.LoopThreadContext);
        }
        else
        {
            frame = FiberFrame.Current;
            if (!_owner.IsCurrentThread)
            {
                RegisterFromOtherThread(continuation, state, frame);
                return;
            }
        }

        // On the owning domain's thread, the only one that writes _signal (invariant 2; h178): no compare-exchange, and the
        // value read above is still its value (nothing between there and here completes a waiter). The continuation is
        // stored only when it changes (see Consume: it is kept across uses).
        if (!ReferenceEquals(Continuation, continuation))
        {
            Continuation = continuation;
        }

        ContinuationState = state;
        Frame = frame;
        if (EioTrace.On)
        {
            EioTrace.Suspended(frame, this); // the trace event and the dumps' record of the suspension (no clock read)
        }
        else if (Volatile.Read(ref Domain.WatchdogsRunning) != 0 && frame is { } f)
        {
            f.Fiber.Suspended(this);
        }

        if (s == SignalNone)
        {
            _signal = SignalRegistered;
            return;
        }

        _owner.Enqueue(continuation, state, frame); // completed before the registration: nobody else will post it
    }

    /// <summary>A registration on another thread than the owning domain's (a <see cref="ValueTask"/> handed to other code
    /// before it was awaited): recorded as on the owning thread, then posted there, where <c>_signal</c> is written
    /// (invariant 2). A second registration racing this one on the owning thread loses its continuation (as a concurrent
    /// double await could before); one after another throws above.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RegisterFromOtherThread(Action<object?> continuation, object? state, FiberFrame? frame)
    {
        if (EioTrace.On)
        {
            EioTrace.Suspended(frame, this);
        }
        else if (Volatile.Read(ref Domain.WatchdogsRunning) != 0 && frame is { } f)
        {
            f.Fiber.Suspended(this);
        }

        _owner.Enqueue(s_registerPosted, new PostedRegistration(this, continuation, state, frame), null);
    }

    private static readonly Action<object?> s_registerPosted = static s =>
    {
        var r = Unsafe.As<PostedRegistration>(s!);
        r.Waiter.RegisterPosted(r.Continuation, r.State, r.Frame);
    };

    /// <summary>Runs on the owning domain as the item <see cref="RegisterFromOtherThread"/> posted.</summary>
    private void RegisterPosted(Action<object?> continuation, object? state, FiberFrame? frame)
    {
        int s = _signal;
        if (s == SignalRegistered)
        {
            return; // a racing second registration won (a misuse): its continuation stays the one
        }

        if (!ReferenceEquals(Continuation, continuation))
        {
            Continuation = continuation;
        }

        ContinuationState = state;
        Frame = frame;
        if (s == SignalNone)
        {
            _signal = SignalRegistered;
            return;
        }

        _owner.EnqueueHere(continuation, state, frame); // completed first: nobody else will post it
    }

    /// <summary>A registration posted to the owning domain (<see cref="RegisterFromOtherThread"/>).</summary>
    private sealed class PostedRegistration(Waiter<T> waiter, Action<object?> continuation, object? state, FiberFrame? frame)
    {
        internal Waiter<T> Waiter { get; } = waiter;

        internal Action<object?> Continuation { get; } = continuation;

        internal object? State { get; } = state;

        internal FiberFrame? Frame { get; } = frame;
    }

    public T GetResult(short token) => GetResultCore(token);

    /// <summary>Consumes the use and returns its value, or throws its failure as <c>await</c> would: a cancellation made for
    /// this wait and never thrown (the usual case: <see cref="CancelContext.Cancel(Exception)"/> makes one per waiter) is
    /// thrown as it is, which is what <see cref="ExceptionDispatchInfo.Throw(Exception)"/> would do for it without the
    /// dispatch info object (issue 20: every cancelled suspension paid one); anything else keeps its earlier stack trace
    /// through <see cref="ExceptionDispatchInfo"/>.</summary>
    /// <remarks>Inlined into both <c>GetResult</c>s, and the fresh cancellation is thrown right here, not by a throw helper
    /// (issue 20, session 15): .NET grows a thrown exception's stack-trace array by doubling from one frame (72, 176, 344,
    /// 640 B for 1, 2, 3-4, 5-8 frames, every smaller array garbage), so each frame between the throw and the awaiting
    /// method's catch costs. The cancelled wait's trace is now <c>IValueTaskSource.GetResult</c> and the awaiting method
    /// (176 B, was 344 B with the helper and the public <c>GetResult</c>), or the awaiting method alone where the JIT
    /// inlines the interface call (dynamic PGO: 72 B, was 176 B).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private T GetResultCore(short token)
    {
        var error = Consume(token, out var result);
        if (error is not null)
        {
            if (error is CancelledException { StackTrace: null } cancelled)
            {
                throw cancelled;
            }

            ExceptionDispatchInfo.Throw(error);
        }

        return result;
    }

    /// <summary>Consumes the completed use like <see cref="GetResult(short)"/>, but returns its failure instead of throwing
    /// it (library code that hands the failure on, e.g. into a task, without a throw: issue 20).</summary>
    /// <param name="token">The use's token.</param>
    /// <param name="result">The value, when the use succeeded.</param>
    /// <returns>The failure, or null when the use succeeded.</returns>
    /// <exception cref="InvalidOperationException">The token is stale or the use has not completed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // GetResult's body: no extra call on every resumption
    internal Exception? Consume(short token, out T result)
    {
        ValidateToken(token);
        if (Volatile.Read(ref _signal) != SignalCompleted)
        {
            throw new InvalidOperationException("The operation has not completed.");
        }

        Context?.RemoveWaiter(this);
        Frame?.Fiber.Resumed(this);
        int s = Volatile.Read(ref _state);
        Debug.Assert(s is 3 or 4, "SignalCompleted is published only after the final state");
        result = _result;
        var error = _error;

        // Consume this use: the token of any copy of this ValueTask is now stale (invariant 3).
        _version++;
        if (_pooled && CanRecycle && !Queued)
        {
            Debug.Assert(Context is null && Prev is null && Next is null, "a recycled waiter is still linked to a cancel context");
            _state = 0;
            _result = default!;
            _error = null;
            ContinuationState = null;
            Frame = null;

            // Continuation is kept for the next use (issue 20, h186), which stores it only when it differs: on every await
            // of compiled async code it is the same static delegate (CoreLib's box-invoking one; ValueTaskAwaiter's for an
            // Action; s_runWithoutContext), whose state carries the awaiting code, so a free waiter keeps nothing alive
            // that the runtime does not, and a suspension pays one write barrier less. The state and the frame (which name
            // the awaiting fiber) are cleared as before (h163's reason).
            _signal = SignalNone;
            ReturnToPool();
        }

        return s == 4 ? error! : null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] // on every GetStatus/OnCompleted/GetResult: the throw is out of line
    private void ValidateToken(short token)
    {
        if (token != _version)
        {
            ThrowStaleToken();
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowStaleToken() => throw new InvalidOperationException(
        "This ValueTask was already awaited: the operation it stood for has completed and its waiter may have been reused (a ValueTask may be awaited only once).");

    T IValueTaskSource<T>.GetResult(short token) => GetResultCore(token);

    void IValueTaskSource.GetResult(short token) => GetResultCore(token);
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

/// <summary>The part of a waiter that holds its registered continuation (non-generic, so that the run queue reads it
/// directly when it dequeues a wake-up queued with the waiter itself: <see cref="Domain.EnqueueWaiterHere"/>; issue 20,
/// h186). Written by the waiter on its owning domain's thread (invariant 2 of <see cref="Waiter{T}"/>).</summary>
internal abstract class SuspensionNode : WaiterNode
{
    /// <summary>The continuation: stored by <c>OnCompleted</c> before it publishes the registration, kept across uses.</summary>
    internal Action<object?>? Continuation;

    /// <summary>The continuation's state (cleared when the use is recycled).</summary>
    internal object? ContinuationState;

    /// <summary>The awaiting code's frame: the run loop installs it to run the continuation (cleared when recycled).</summary>
    internal FiberFrame? Frame;

    /// <summary>The waiter's wake-up is in the run queue and not yet taken: the use is not recycled until then.</summary>
    internal bool Queued;

    // The spinning awaiter (§215, issue 20, h218): a domain that goes idle and spins with a fiber suspended on a promise's
    // single-waiter slot marks that promise and polls it beside its inbox (Domain.SpinForRemote). These run on the owning
    // domain's thread only, while it spins (no fiber code runs, so the use cannot be cancelled or consumed meanwhile).

    /// <summary>Marks the promise whose slot this pending use holds "awaiter spinning" (a resolver then posts nothing); false
    /// when this use is not in a promise's slot, is done, or the promise was claimed (then nothing is marked).</summary>
    internal virtual bool TrySpinMark() => false;

    /// <summary>Whether the marked promise has its final resolution (read while spinning, after <see cref="TrySpinMark"/>).</summary>
    internal virtual bool SpinResolved => false;

    /// <summary>Takes the mark back; false when a resolver claimed the promise first (it saw the mark and will post nothing):
    /// the use is then completed here (<see cref="CompleteSpun"/>).</summary>
    internal virtual bool TrySpinUnmark() => true;

    /// <summary>Completes the use from its marked promise's resolution (waiting out the resolver's few stores if it is still
    /// between its claim and its final state) and queues its continuation: the resolver saw the mark and posted nothing.</summary>
    internal virtual void CompleteSpun()
    {
    }
}

/// <summary>A waiter with no result value.</summary>
internal class Waiter : Waiter<bool>
{
    [ThreadStatic]
    private static WaiterPool? t_free;

    internal Waiter(Domain owner)
        : base(owner)
    {
    }

    /// <summary>A waiter from the calling thread's pool (or a new one), recycled when its result is consumed.</summary>
    internal static Waiter Rent(Domain owner, TraceReason reason)
    {
        var w = WaiterPool.Rent<Waiter>(t_free) ?? new Waiter(owner);
        w.PrepareRented(owner, reason);
        return w;
    }

    private protected override void ReturnToPool() => WaiterPool.Return(ref t_free, this);
}

/// <summary>A sleeping fiber in the domain's timer heap.</summary>
internal sealed class TimerWaiter : Waiter<bool>
{
    [ThreadStatic]
    private static WaiterPool? t_free;

    private TimerWaiter(Domain owner)
        : base(owner)
    {
        TraceReason = TraceReason.Sleep;
        _recycleOnlyOnSuccess = true; // only a timer that fired is reused: see CanRecycle
    }

    internal long Deadline { get; private set; }

    /// <summary>A timer waiter for <paramref name="deadline"/> from the calling thread's pool (or a new one).</summary>
    internal static TimerWaiter Rent(Domain owner, long deadline)
    {
        var w = WaiterPool.Rent<TimerWaiter>(t_free) ?? new TimerWaiter(owner);
        w.PrepareRented(owner, TraceReason.Sleep);
        w.Deadline = deadline;
        return w;
    }

    // Only a timer that fired is reused (_recycleOnlyOnSuccess): the domain dequeued it before completing it. A cancelled
    // one may still sit in the heap (dropped later), so it is left to the garbage collector.
    private protected override void ReturnToPool() => WaiterPool.Return(ref t_free, this);

    /// <summary>Counts the dead heap entry so the domain can compact its heap (runs on the owning domain).</summary>
    protected override void OnCancelled() => Owner.TimerCancelled();
}

/// <summary>
/// A per-thread free list of consumed waiters of one waiter type (each domain runs on one thread, and a waiter is consumed
/// on its owning domain, so renting and returning need no synchronisation). Bounded (<see cref="MaxFree"/>), so a burst of
/// suspensions does not keep its waiters forever.
/// </summary>
/// <remarks>
/// <para>Each waiter type keeps its own pool in a <c>[ThreadStatic]</c> field of its own and passes it here (issue 20,
/// session 15): a thread-static of a generic class instantiated over a reference type is reached through a generic lookup
/// and a helper call on every rent and return, where a field of a non-generic class, or of a generic one over a value type
/// (<c>QueuedWaiter&lt;int&gt;</c>), is read inline.</para>
/// <para>A stack in an array (issue 20, h175), not a list linked through the waiters: a rent only lowers the count (the slot
/// keeps its reference: slots at or above the count are dead and never read), and a return stores the waiter into its slot
/// only when the slot holds another one. A fiber that suspends and resumes over and over gets the same waiter back from the
/// same slot, so neither side stores a reference (the linked list paid a write barrier on a rent and two on a return, one
/// of them the checked barrier of a store through a reference to the thread static). A dead slot may name a waiter that is
/// in use or was kept out of the pool; it is overwritten by the next return there, and keeps nothing alive that the
/// waiter does not.</para>
/// </remarks>
internal sealed class WaiterPool
{
    /// <summary>The most free waiters kept per thread and type.</summary>
    internal const int MaxFree = 256;

    private Slot[] _items = new Slot[8];
    private int _count;

    /// <summary>Takes a free waiter from <paramref name="pool"/> (null: none made yet on this thread), or returns null when it
    /// is empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TW? Rent<TW>(WaiterPool? pool)
        where TW : WaiterNode
    {
        if (pool is not null)
        {
            int c = pool._count - 1;
            var items = pool._items;
            if ((uint)c < (uint)items.Length)
            {
                pool._count = c;
                return Unsafe.As<TW>(items[c].Waiter);
            }
        }

        return null;
    }

    /// <summary>Puts the consumed, reset waiter <paramref name="w"/> into the pool at <paramref name="pool"/> (made on the
    /// first return), unless it is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Return<TW>(ref WaiterPool? pool, TW w)
        where TW : WaiterNode
    {
        var p = pool;
        if (p is not null)
        {
            int c = p._count;
            var items = p._items;
            if ((uint)c < (uint)items.Length)
            {
                ref var slot = ref items[c].Waiter;
                if (!ReferenceEquals(slot, w))
                {
                    slot = w;
                }

                p._count = c + 1;
                return;
            }
        }

        ReturnSlow(ref pool, w);
    }

    /// <summary>The first return on a thread, or one into a full array: makes the pool, or doubles the array up to
    /// <see cref="MaxFree"/>, or drops the waiter.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ReturnSlow(ref WaiterPool? pool, WaiterNode w)
    {
        var p = pool ??= new WaiterPool();
        int c = p._count;
        if (c == p._items.Length)
        {
            if (c >= MaxFree)
            {
                return;
            }

            Array.Resize(ref p._items, c * 2);
        }

        p._items[c].Waiter = w;
        p._count = c + 1;
    }

    /// <summary>An array element (a struct: a store into it is not type-checked as one into a <c>WaiterNode[]</c> would be).</summary>
    private struct Slot
    {
        internal WaiterNode? Waiter;
    }
}
