using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>The source behind the yields awaited on a domain's own thread (<c>Fiber.YieldAsync</c>'s awaiter): one per
/// domain, a class with no base but <see cref="object"/>.</summary>
/// <remarks>
/// <para><b>Why not the frame</b> (issue 20, h143). .NET's <see cref="ValueTask"/> asks <c>obj is Task</c> of its source
/// three times per await (<c>IsCompleted</c>, the await's registration, <c>GetResult</c>); for a source that is not a task
/// the runtime's cast helper walks the source's whole chain of base types. A fiber frame (a <see cref="ForkedFiber"/>:
/// <c>FiberInfo</c>, <c>FiberFrame</c>, <see cref="SynchronizationContext"/>, <see cref="object"/>) cost 111 instructions of
/// the 873 of a yield in those casts; this class has one base type to walk.</para>
/// <para><b>Invariants.</b> Only the domain's own thread arms it (<see cref="Arm"/>, called by the yield's <c>GetAwaiter</c>
/// after checking the thread; an await off the domain uses its frame as the source instead). <see cref="_frame"/> is the
/// frame of the last armed yield and <see cref="_token"/> its number: an async method's await calls <c>GetAwaiter</c> and
/// then <c>OnCompleted</c> with nothing between them, so the frame read there is the yielding code's. An awaiter used after
/// a later yield was armed (a hand-written awaiter kept across awaits) sees another number and falls back to the frame
/// installed when it registers. At resume, the continuation runs as a work item queued with the yielding frame, so the
/// domain's <see cref="Domain.RunningFrame"/> is that frame when <c>GetResult</c> checks its cancellation (S13).</para>
/// <para><b>The carried yield</b> (h162, rationale §161). A yield registered on the domain's own thread while no other is
/// carried is queued as one reference, this source: the continuation, its state and its frame wait in
/// <see cref="_queuedContinuation"/>, <see cref="_queuedState"/> and <see cref="_queuedFrame"/>, and the run queue's slot
/// holds only the source (one write barrier per yield instead of three; the fields are compared first, so a fiber that
/// yields again from the same method stores nothing in them). The run queue takes them out when it dequeues the slot
/// (<see cref="TakeCarried"/>), which frees the source for the next yield; a yield registered while one is carried, or
/// from another thread, is queued as any continuation (three references, or the remote queue). The order of the run
/// queue is the same either way (S12). The fields keep their references after the item ran until the next carried
/// yield replaces them or the domain goes idle (<see cref="ReleaseCarried"/>): a finished method's state machine is kept
/// alive at most that long. All of it is touched by the domain's thread only.</para>
/// </remarks>
internal sealed class YieldSource : IValueTaskSource
{
    private static readonly Action<object?> s_runWithContext = static s =>
    {
        var (continuation, state, context) = ((Action<object?>, object?, ExecutionContext))s!;
        ExecutionContext.Run(context, static x => { var (c, st) = ((Action<object?>, object?))x!; c(st); }, (continuation, state));
    };

    private readonly Domain _domain;

    /// <summary>The frame of the last yield armed on this domain (written by its thread only).</summary>
    private FiberFrame? _frame;

    /// <summary>The number of the last armed yield (its <see cref="ValueTask"/>'s token; wraps).</summary>
    private short _token;

    internal YieldSource(Domain domain) => _domain = domain;

    /// <summary>Arms a yield of <paramref name="frame"/>'s code (on the domain's thread only).</summary>
    /// <returns>The yield's token.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal short Arm(FiberFrame frame)
    {
        if (!ReferenceEquals(_frame, frame))
        {
            _frame = frame; // a fiber yielding again (the one-fiber loop) stores nothing: no write barrier (h151)
        }

        return ++_token;
    }

    /// <summary>A yield is never complete before it is awaited: it always suspends.</summary>
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => ValueTaskSourceStatus.Pending;

    /// <summary>Yields: queues <paramref name="continuation"/> at the back of the domain's run queue as code of the yielding
    /// frame (in any scheduling context: fiber code resumes on its domain).</summary>
    /// <exception cref="InvalidOperationException">The awaiter was armed for another yield and is used off the fiber's domain.</exception>
    [SkipLocalsInit]
    unsafe void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        // The common case first, with no call on its path (h174: the method then saves no registers): an async method's
        // await of the last armed yield, on the domain's thread (told by the registration's stack address, see
        // _loopStack), while no yield is carried and no trace runs. Everything else takes Register, which decides as before.
        byte probe; // only its address is used (the method skips the zeroing of its locals)
        var frame = _frame;
        if (token == _token && frame is not null && !_queued && !EioTrace.On
            && (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) == 0
            && _loopStack - (nuint)(&probe) < LoopStackWindow)
        {
            if (ReferenceEquals(_queuedContinuation, continuation) && ReferenceEquals(_queuedState, state)
                && ReferenceEquals(_queuedFrame, frame))
            {
                // The same method yielding again (the one-fiber loop): only the flag and the queue's count are written.
                _queued = true;
                _domain.EnqueueCarried(this);
                return;
            }

            Carry(continuation, state, frame); // out of line: its write barriers kept registers saved on this path
            return;
        }

        Register(continuation, state, token, flags);
    }

    /// <summary><see cref="IValueTaskSource.OnCompleted"/>'s general case: a stale token, tracing, a flowing execution
    /// context, a yield already carried, a deep stack or another thread.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private unsafe void Register(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        var frame = _frame;
        if (token != _token || frame is null)
        {
            frame = NotLastArmed();
        }

        if (EioTrace.On)
        {
            EioTrace.Suspended(frame, TraceReason.Yield, 0);
        }

        // An async method's await hands over its state machine box, which restores its own execution context; only a bare
        // awaiter.OnCompleted(Action) asks for the context to flow.
        if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 && ExecutionContext.Capture() is { } context)
        {
            state = WithContext(continuation, state, context); // out of line: its tuple kept no stack frame to clear here
            continuation = s_runWithContext;
        }

        // On the domain's thread (h174): the registration's own stack address within the window below the domain loop's
        // frame (see _loopStack) proves it without a thread-static read; otherwise (a deep stack, the loop not running,
        // another thread) the thread-static test decides, as before.
        byte probe;
        bool onLoop = _loopStack - (nuint)(&probe) < LoopStackWindow;
        if (!_queued && (onLoop || _domain.IsCurrent))
        {
            Carry(continuation, state, frame);
            return;
        }

        if (onLoop)
        {
            // Another yield is carried (many fibers yielding in one round): a three-reference item, queued without the
            // thread-static test the general enqueue makes (the stack address has proved the thread).
            _domain.EnqueueOnLoopThread(continuation, state, frame);
            return;
        }

        _domain.Enqueue(continuation, state, frame);
    }

    /// <summary>Queues the yield as the one-reference item (h162): this source carries the continuation, and the run queue's
    /// slot holds only this source (domain thread only, no yield carried). A fiber that yields again from the same method
    /// (the one-fiber loop) stores nothing here, and nothing in the slot either (h167).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Carry(Action<object?> continuation, object? state, FiberFrame frame)
    {
        _queued = true;
        if (!ReferenceEquals(_queuedContinuation, continuation))
        {
            _queuedContinuation = continuation;
        }

        if (!ReferenceEquals(_queuedState, state))
        {
            _queuedState = state;
        }

        if (!ReferenceEquals(_queuedFrame, frame))
        {
            _queuedFrame = frame;
        }

        _domain.EnqueueCarried(this);
    }

    /// <summary>How far below <see cref="_loopStack"/> a registration's stack address proves that it runs on the domain's
    /// thread (bytes). Deeper registrations take the thread-static test.</summary>
    internal const nuint LoopStackWindow = 32 * 1024;

    /// <summary>An address in the domain thread's stack just below its loop's frame while the loop runs (0 otherwise), with
    /// at least <see cref="LoopStackWindow"/> of that thread's own stack below it (h174).</summary>
    /// <remarks>Every frame the loop calls is below it on that thread's stack, and no other thread's stack overlaps the
    /// window below it, so a registration whose local lies in the window runs on the domain's thread, inside its loop: one
    /// subtraction and one compare instead of the thread-static read of <see cref="Domain.IsCurrent"/> (on Linux a
    /// <c>__tls_get_addr</c> call). A false answer only sends the registration to that thread-static test. On the domain's
    /// thread inside another domain run nested in one of its work items, the test is true where <see cref="Domain.IsCurrent"/>
    /// is not: the yield is then queued on this domain's run queue directly rather than through its inbox, from the one
    /// thread that touches that queue, and runs when the work item that holds the nested domain has returned, as
    /// before.</remarks>
    private nuint _loopStack;

    /// <summary>The domain's loop starts on its thread (<paramref name="mark"/>: see <see cref="_loopStack"/>; 0 when the
    /// thread has too little stack left).</summary>
    internal void EnterLoop(nuint mark) => _loopStack = mark;

    /// <summary>The domain's loop has ended: no registration is told by its stack address any more.</summary>
    internal void LeaveLoop() => _loopStack = 0;

    /// <summary>Whether the carried continuation (<see cref="_queuedContinuation"/>, <see cref="_queuedState"/>,
    /// <see cref="_queuedFrame"/>) is in the run queue (domain thread only). At most one yield at a time is carried; the
    /// others are queued as three-reference items, as any continuation.</summary>
    private bool _queued;

    /// <summary>The carried yield's continuation (kept after it runs, so that the next yield from the same code stores
    /// nothing; released when the domain goes idle, see <see cref="ReleaseCarried"/>).</summary>
    private Action<object?>? _queuedContinuation;

    /// <inheritdoc cref="_queuedContinuation"/>
    private object? _queuedState;

    /// <inheritdoc cref="_queuedContinuation"/>
    private FiberFrame? _queuedFrame;

    /// <summary>Takes the carried continuation out of a run-queue slot that held this source (domain thread only): the
    /// source can carry the next yield from now on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void TakeCarried(out Action<object?> continuation, out object? state, out FiberFrame? frame)
    {
        _queued = false;
        continuation = _queuedContinuation!;
        state = _queuedState;
        frame = _queuedFrame;
    }

    /// <summary>Drops the references of the last carried continuation once it has run (the domain, before it sleeps): an
    /// idle domain keeps no async method's state alive through its yield source.</summary>
    internal void ReleaseCarried()
    {
        if (!_queued)
        {
            _queuedContinuation = null;
            _queuedState = null;
            _queuedFrame = null;
        }
    }

    /// <summary>Resumes after a yield: throws <see cref="CancelledException"/> if the yielding frame's context was cancelled
    /// meanwhile (S13). The frame is the running item's (the continuation was queued with it).</summary>
    void IValueTaskSource.GetResult(short token)
    {
        var frame = _domain.RunningFrame;
        if (frame is not null)
        {
            var cancel = frame.Cancel;
            if (cancel.IsCancelled)
            {
                throw cancel.MakeCancelled();
            }
        }
    }

    /// <summary>The state of <see cref="s_runWithContext"/>: <paramref name="continuation"/> and <paramref name="state"/> to
    /// run in <paramref name="context"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static object WithContext(Action<object?> continuation, object? state, ExecutionContext context) =>
        (continuation, state, context);

    /// <summary>The frame of a yield whose awaiter registers after a later yield was armed: the frame installed now.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private FiberFrame NotLastArmed()
    {
        var frame = FiberFrame.Current;
        if (frame is null || !ReferenceEquals(frame.Cancel.Domain, _domain) || !_domain.IsCurrent)
        {
            throw new InvalidOperationException(
                "A Fiber.YieldAsync awaiter was registered off its fiber after another yield; await each yield where it is made.");
        }

        return frame;
    }
}
