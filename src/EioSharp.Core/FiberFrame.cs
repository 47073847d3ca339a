using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>Identity of one fiber (for names, tracing and the watchdog), which is also the fiber's first frame: the frame
/// its code starts in (issue 20: one object per fiber rather than an identity and a frame).</summary>
/// <remarks>The fiber's domain is its first cancel context's domain, and its owner is that frame's switch. Not sealed: a
/// forked racer is a subclass that also knows its race (<c>Fiber.RacerFiber</c>, issue 20), and a named fiber is a
/// <see cref="NamedFiber"/> (issue 20: most fibers have no name, so the field is not in every fiber; make fibers with
/// <see cref="Create"/>).</remarks>
internal class FiberInfo : FiberFrame
{
    /// <summary>Ids handed to a thread at a time (issue 20: no interlocked operation, nor a shared cache line, per fork).</summary>
    private const int IdBlock = 1024;

    private static long s_nextId;

    [ThreadStatic]
    private static long t_nextId;

    [ThreadStatic]
    private static long t_idEnd;

    /// <summary>Makes an unnamed fiber whose code starts in <paramref name="cancel"/>, owned by <paramref name="owner"/> (if any).</summary>
    /// <param name="cancel">The fiber's first cancel context; its domain is the fiber's.</param>
    /// <param name="owner">The switch that owns the fiber (null for a domain's main fiber, or a group with no switch).</param>
    internal FiberInfo(CancelContext cancel, Switch? owner)
        : base(cancel, owner)
    {
    }

    /// <summary>Makes a fiber, named (a <see cref="NamedFiber"/>) when <paramref name="name"/> is not null.</summary>
    /// <param name="name">A name for traces and dumps, or null.</param>
    /// <param name="cancel">The fiber's first cancel context; its domain is the fiber's.</param>
    /// <param name="owner">The switch that owns the fiber (null for a domain's main fiber, or a group with no switch).</param>
    internal static FiberInfo Create(string? name, CancelContext cancel, Switch? owner) =>
        name is null ? new FiberInfo(cancel, owner) : new NamedFiber(name, cancel, owner);

    public long Id { get; } = NewId();

    public Domain Domain => Cancel.Domain;

    /// <summary>The fiber's name, or null (a type test: only a <see cref="NamedFiber"/> has one).</summary>
    /// <remarks>Inlined by request (h94): left to the JIT, the trace hooks called it (their inlining budget was spent on
    /// the ring writes), one call and its register saves in every switch hook's fast path.</remarks>
    public string? Name
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (this as NamedFiber)?.FiberName;
    }

    /// <summary>True for a named fiber (<see cref="Name"/> is not null): one method-table compare, no call (the trace
    /// hooks' fast paths test it; h94).</summary>
    internal bool IsNamed
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => this is NamedFiber;
    }

    public Switch? Owner => Switch;

    /// <summary>The link in the owning switch's list of live fibers (for dumps; touched only on the domain's thread). Singly
    /// linked (issue 20: 8 B less per fiber): a finished fiber that is not the newest stays linked, marked
    /// <see cref="Finished"/>, until the switch sweeps its list (<see cref="EioSharp.Switch.RemoveLive"/>).</summary>
    internal FiberInfo? NextLive;

    /// <summary>The waiter the fiber is suspended on, recorded only while fiber frames are recorded (a watchdog, tracing
    /// or <c>EioDiagnostics.TrackFibers</c>); read racily by dumps.</summary>
    internal volatile WaiterNode? SuspendedOn;

    /// <summary>When the current suspension began: <see cref="Environment.TickCount64"/> (ms), or, recorded by the trace
    /// hook, the bitwise complement of a trace clock reading (negative; see <see cref="SuspendedAt"/>). Read it with
    /// <see cref="SuspendedForMs"/>.</summary>
    internal long SuspendedSince;

    /// <summary>A forked fiber's body while the fiber waits for it to end (see <c>Fiber.Fork</c>; null otherwise). Kept here so
    /// that the end-of-fiber continuation needs no object of its own (issue 20).</summary>
    internal Task? Body;

    /// <summary>The trace ring period (<see cref="Tracing.TraceRing.CarryEpoch"/>) in which this named fiber's identity
    /// was last stored with one of its events (written by the ring's writer; see <c>EioTrace</c>'s <c>CarriedData</c>).
    /// An int: it fits the padding after the flags, so a fiber is no larger for it.</summary>
    internal int TraceCarried;

    /// <summary>True once the fiber has finished.</summary>
    internal bool Finished;

    /// <summary>True for a daemon fiber (S8).</summary>
    internal bool Daemon;

    /// <summary>How many inner frames of this fiber's code have been entered and not yet exited
    /// (<see cref="FiberFrame.Enter"/>, <see cref="InnerFrame.Exit"/>). While it is 0 the fiber's first frame is its current
    /// frame and <see cref="FiberFrame.Current"/> returns it without reading the <see cref="AsyncLocal{T}"/> (issue 20: most
    /// fiber code runs in no inner frame). A ushort that saturates: at <see cref="ushort.MaxValue"/> it stays there (the slow
    /// path, always right), so it is never 0 while a frame is live; with <see cref="TraceCarried"/> and the two flags above it
    /// fits the object's padding (two ints did not: the fiber grew by 8 B).</summary>
    internal ushort LiveInnerFrames;

    internal void Suspended(WaiterNode w)
    {
        SuspendedSince = Environment.TickCount64;
        SuspendedOn = w;
    }

    /// <summary>As <see cref="Suspended"/>, by the trace hook: the time is <paramref name="traceStamp"/>, the trace clock's
    /// reading at the domain's last stamped event (the start of the run that suspends: no clock read of its own), or,
    /// when it is 0 (nothing stamped yet), <see cref="Environment.TickCount64"/>.</summary>
    internal void SuspendedAt(WaiterNode w, long traceStamp)
    {
        SuspendedSince = traceStamp > 0 ? ~traceStamp : Environment.TickCount64;
        SuspendedOn = w;
    }

    /// <summary>How long the current suspension has lasted, in ms (for dumps; racy, best effort).</summary>
    internal long SuspendedForMs()
    {
        long since = SuspendedSince;
        if (since >= 0)
        {
            return Math.Max(0, Environment.TickCount64 - since);
        }

        long ticks = System.Diagnostics.Stopwatch.GetTimestamp() - Tracing.TraceClock.ToStopwatch(~since);
        return Math.Max(0, ticks * 1000 / System.Diagnostics.Stopwatch.Frequency);
    }

    internal void Resumed(WaiterNode w)
    {
        if (ReferenceEquals(SuspendedOn, w))
        {
            SuspendedOn = null;
        }
    }

    public override string ToString() => Name is null ? $"fiber {Id}" : $"fiber {Id} ({Name})";

    /// <summary>A process-unique id, increasing on each thread (not across threads), from 1.</summary>
    private static long NewId()
    {
        long id = t_nextId;
        if (id == t_idEnd)
        {
            id = Interlocked.Add(ref s_nextId, IdBlock) - IdBlock;
            t_idEnd = id + IdBlock;
        }

        t_nextId = id + 1;
        return id + 1;
    }
}

/// <summary>A fiber with a name (for traces, dumps and the watchdog): a separate type so that the name is not a field of every
/// fiber (issue 20: an unnamed fiber is 8 B smaller). Made by <see cref="FiberInfo.Create"/>.</summary>
internal sealed class NamedFiber : FiberInfo
{
    internal NamedFiber(string name, CancelContext cancel, Switch? owner)
        : base(cancel, owner)
    {
        FiberName = name;
    }

    /// <summary>The name (<see cref="FiberInfo.Name"/>).</summary>
    internal string FiberName { get; }
}

/// <summary>
/// What flows with a fiber's code: the fiber and its current cancel context and switch.
/// </summary>
/// <remarks>
/// <para><b>Where the current frame is kept</b> (issue 20: no <see cref="ExecutionContext"/> per fork). The running fiber is
/// the <see cref="SynchronizationContext"/> installed on its domain's thread: a <see cref="FiberInfo"/> is one. The domain's
/// run loop installs the fiber of every item it runs (each item carries the frame it was queued for), forking installs the
/// child while its body runs up to its first suspension and puts the parent back, and an <c>await</c> in fiber code
/// captures its fiber, so a continuation of fiber A runs inline only inside fiber A's own code; completed by any other
/// code (another fiber, another thread), it is posted to A (<see cref="Post"/>) and runs from the run queue with A
/// installed. Code off the domain (the thread pool after <c>ConfigureAwait(false)</c>, a system thread) has no fiber
/// installed, so it cannot see a stale one.</para>
/// <para>Frames inside a fiber (a sub-switch, sub-context, race, protect: <see cref="Enter"/>) are still carried by an
/// <see cref="AsyncLocal{T}"/>, so they are scoped to the async call that set them, as before; such a frame counts only for
/// its own fiber (a child forked inside it starts in its own first frame) and only until its scope has ended
/// (<see cref="InnerFrame.Exit"/>: an inlined continuation whose async method has no execution context of its own runs in the one
/// of the code that completed it, which may still hold an ended frame of the same fiber).</para>
/// <para>A frame is also the source behind <c>Fiber.YieldAsync</c>'s awaiter (issue 20): a yield has no state of its own
/// (the continuation goes straight to the run queue, and resuming only checks the frame's cancellation), so the frame
/// serves every yield of its code, with token 0, and a yield allocates nothing.</para>
/// </remarks>
internal class FiberFrame : SynchronizationContext, IValueTaskSource
{
    private static readonly Action<object?> s_runWithContext = static s =>
    {
        var (continuation, state, context) = ((Action<object?>, object?, ExecutionContext))s!;
        ExecutionContext.Run(context, static x => { var (c, st) = ((Action<object?>, object?))x!; c(st); }, (continuation, state));
    };

    /// <summary>The innermost frame set inside a fiber's code by <see cref="Enter"/> (null in a fiber's first frame).</summary>
    private static readonly AsyncLocal<InnerFrame?> s_nested = new();

    /// <summary>The fiber whose continuation runs on this thread with no synchronization context installed (see
    /// <c>Waiter.InlineForeignContinuations</c>): a .NET consumer's <c>ConfigureAwait(false)</c> chain run inline on the domain.</summary>
    [ThreadStatic]
    private static FiberInfo? t_foreign;

    /// <summary>A frame: a fiber's first (<see cref="FiberInfo"/>) or an inner one (<see cref="InnerFrame"/>), the only two kinds.</summary>
    private protected FiberFrame(CancelContext cancel, Switch? sw)
    {
        Cancel = cancel;
        Switch = sw;
    }

    /// <summary>The fiber whose code this frame is (a first frame is its fiber: no field for it, 8 B less per fork).</summary>
    public FiberInfo Fiber => this is InnerFrame inner ? inner.Owner : Unsafe.As<FiberInfo>(this);

    public CancelContext Cancel { get; }

    /// <summary>The innermost switch whose body or fiber this code belongs to.</summary>
    public Switch? Switch { get; }

    /// <summary>The frame of the code running on this thread, or null outside fiber code (including fiber code that left
    /// its domain). A thread-static read and, inside a fiber, one <see cref="AsyncLocal{T}"/> read.</summary>
    public static new FiberFrame? Current
    {
        get
        {
            var fiber = AsFiber(SynchronizationContext.Current) ?? t_foreign;
            if (fiber is null)
            {
                return null;
            }

            if (fiber.LiveInnerFrames == 0)
            {
                // No inner frame of this fiber is live, so the walk below would end at the fiber: skip the AsyncLocal read.
                return fiber;
            }

            FiberFrame? f = s_nested.Value;
            while (f is InnerFrame inner && ReferenceEquals(inner.Owner, fiber))
            {
                if (!inner.Exited)
                {
                    return inner;
                }

                f = inner.Parent;
            }

            return fiber;
        }
    }

    /// <summary>The fiber of the code running on this thread (not its inner frame), or null: a thread-static read only.</summary>
    internal static FiberInfo? CurrentFiber => AsFiber(SynchronizationContext.Current) ?? t_foreign;

    /// <summary><paramref name="context"/> as a fiber, or null. The two common exact types are tested inline first (issue 20,
    /// session 15): <see cref="FiberInfo"/> is not sealed, so a plain cast of a <see cref="NamedFiber"/> (a domain's main
    /// fiber) called the runtime's cast helper on every read of the current fiber.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FiberInfo? AsFiber(SynchronizationContext? context)
    {
        if (context is not null && (context.GetType() == typeof(FiberInfo) || context.GetType() == typeof(NamedFiber)))
        {
            return Unsafe.As<FiberInfo>(context);
        }

        return context as FiberInfo;
    }

    /// <summary>Installs <paramref name="fiber"/> as the running fiber of this thread (its first frame), without touching
    /// the execution context. The caller restores the previous context (see <see cref="Install"/>'s return) when it returns
    /// synchronously; an async method that calls it in its synchronous part has it restored by its builder.</summary>
    /// <returns>The synchronization context that was installed.</returns>
    internal static SynchronizationContext? Install(FiberInfo fiber)
    {
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(fiber);
        return previous;
    }

    /// <summary>Makes <paramref name="frame"/> (a frame of the current fiber's code) current for the rest of the calling async
    /// method and the code it calls (an <see cref="AsyncLocal{T}"/>: one execution context per call). The caller must call
    /// <see cref="InnerFrame.Exit"/> when its scope ends, before its task completes.</summary>
    internal static void Enter(InnerFrame frame)
    {
        frame.Parent = Current;
        s_nested.Value = frame;
        frame.Entered = true;
        if (frame.Owner.LiveInnerFrames != ushort.MaxValue)
        {
            frame.Owner.LiveInnerFrames++;
        }
    }

    /// <summary>The execution context a fork last dropped its parent's inner frame from (<see cref="DropInheritedFrame"/>), and
    /// the context without it: a one-entry cache per domain thread, so that a fork inside a sub-switch whose code also set
    /// an <see cref="AsyncLocal{T}"/> of its own does not make a new execution context each time.</summary>
    [ThreadStatic]
    private static ExecutionContext? t_dropFrom;

    [ThreadStatic]
    private static ExecutionContext? t_dropTo;

    /// <summary>Called by a fork with the new fiber installed, before its body runs, in a scope whose execution context the
    /// caller restores afterwards (an async method's builder, or an explicit <see cref="ExecutionContext.Restore"/>): removes
    /// the forking code's inner frame (a sub-switch, group or sub-context of the parent fiber) from the execution context the
    /// child's code starts with (issue 20/14, session 14).</summary>
    /// <remarks>A child never uses its parent's inner frames (<see cref="Current"/> walks only frames of the running fiber),
    /// but without this every async method of the child captured the parent's non-default execution context, so every
    /// resume of the child switched that context in and out (<c>ExecutionContext.RunInternal</c>; in a server every
    /// connection fiber is forked inside a <c>Switch.RunAsync</c> body). With no other <see cref="AsyncLocal{T}"/> set,
    /// the child now runs in the default context; users' own async locals (and <see cref="FiberLocal{T}"/> bindings) still
    /// flow into the child unchanged.</remarks>
    internal static void DropInheritedFrame()
    {
        if (s_nested.Value is null)
        {
            return;
        }

        var from = ExecutionContext.Capture();
        if (from is null)
        {
            // Flow suppressed: the child's async methods capture no context, and a fork does not restore one it cannot
            // capture, so leave the thread's context alone.
            return;
        }

        if (ReferenceEquals(from, t_dropFrom) && t_dropTo is { } to)
        {
            ExecutionContext.Restore(to);
            return;
        }

        s_nested.Value = null;
        t_dropFrom = from;
        t_dropTo = ExecutionContext.Capture();
    }

    /// <summary>Makes <paramref name="frame"/> current on a domain thread running code that is in no fiber (a queued callback):
    /// installs its fiber and, for an inner frame, sets it in the execution context (without starting a new scope).</summary>
    internal static void Resume(FiberFrame frame)
    {
        SynchronizationContext.SetSynchronizationContext(frame.Fiber);
        if (frame is InnerFrame inner)
        {
            s_nested.Value = inner;
        }
    }

    /// <summary>Runs <paramref name="continuation"/> with no synchronization context installed but as code of
    /// <paramref name="fiber"/> (see <see cref="t_foreign"/>).</summary>
    internal static void RunForeign(FiberInfo? fiber, Action<object?> continuation, object? state)
    {
        var context = SynchronizationContext.Current;
        var outer = t_foreign;
        SynchronizationContext.SetSynchronizationContext(null);
        t_foreign = fiber;
        try
        {
            continuation(state);
        }
        finally
        {
            t_foreign = outer;
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    /// <summary>Posts <paramref name="d"/> to the run queue of this frame's domain, to run as this frame's fiber (an await
    /// in this fiber's code of a task completed elsewhere resumes through here).</summary>
    public override void Post(SendOrPostCallback d, object? state) => Fiber.Domain.Post(d, state, this);

    /// <summary>Runs <paramref name="d"/> at once on the fiber's own domain thread; from another thread it would block the
    /// caller, which is not supported.</summary>
    public override void Send(SendOrPostCallback d, object? state) => Fiber.Domain.SyncContext.Send(d, state);

    /// <inheritdoc/>
    public override SynchronizationContext CreateCopy() => this;

    /// <summary>A yield is never complete before it is awaited: it always suspends.</summary>
    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => ValueTaskSourceStatus.Pending;

    /// <summary>Yields: queues <paramref name="continuation"/> at the back of the fiber's domain's run queue (in any scheduling
    /// context: fiber code resumes on its domain).</summary>
    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        if (EioTrace.On)
        {
            EioTrace.Suspended(this, TraceReason.Yield, 0);
        }

        // An async method's await hands over its state machine box, which restores its own execution context; only a bare
        // awaiter.OnCompleted(Action) asks for the context to flow.
        if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 && ExecutionContext.Capture() is { } context)
        {
            state = (continuation, state, context);
            continuation = s_runWithContext;
        }

        Fiber.Domain.Enqueue(continuation, state, this);
    }

    /// <summary>Resumes after a yield: throws <see cref="CancelledException"/> if this frame's context was cancelled meanwhile (S13).</summary>
    /// <remarks>Thrown here rather than by <see cref="CancelContext.ThrowIfCancelled"/>: one frame less on the exception's
    /// stack trace, which .NET grows by doubling (see <c>Waiter&lt;T&gt;.GetResultCore</c>; issue 20).</remarks>
    void IValueTaskSource.GetResult(short token)
    {
        var cancel = Cancel;
        if (cancel.IsCancelled)
        {
            throw cancel.MakeCancelled();
        }
    }

    /// <summary>The current frame; throws when called outside a fiber or from a thread that is not the fiber's domain.</summary>
    public static FiberFrame Require()
    {
        var f = Current;
        if (f is null)
        {
            if (s_nested.Value is { } flowed && !flowed.Owner.Domain.IsCurrent)
            {
                throw new InvalidOperationException(
                    $"Fiber code for domain {flowed.Fiber.Domain.Id} is running on another thread; was ConfigureAwait(false) used in fiber code?");
            }

            throw new InvalidOperationException(
                "This operation must be called from a fiber (inside EioMain.Run or a fiber it started).");
        }

        if (!f.Fiber.Domain.IsCurrent)
        {
            throw new InvalidOperationException(
                $"Fiber code for domain {f.Fiber.Domain.Id} is running on another thread; was ConfigureAwait(false) used in fiber code?");
        }

        return f;
    }
}

/// <summary>A frame of a fiber's code in another cancel context or switch than the code around it (a sub-switch,
/// sub-context, protect, race or group), made current for the rest of an async call by <see cref="FiberFrame.Enter"/>.</summary>
internal sealed class InnerFrame : FiberFrame
{
    /// <summary>A frame of <paramref name="fiber"/>'s code in <paramref name="cancel"/> and <paramref name="sw"/>.</summary>
    internal InnerFrame(FiberInfo fiber, CancelContext cancel, Switch? sw)
        : base(cancel, sw)
    {
        Owner = fiber;
    }

    /// <summary>The fiber (as <see cref="FiberFrame.Fiber"/>, without its type test).</summary>
    internal FiberInfo Owner { get; }

    /// <summary>The frame in which this one was entered (<see cref="FiberFrame.Enter"/>): the same fiber's.</summary>
    internal FiberFrame? Parent { get; set; }

    /// <summary>True once <see cref="FiberFrame.Enter"/> made this frame current (counted in <see cref="FiberInfo.LiveInnerFrames"/>).</summary>
    internal bool Entered { get; set; }

    /// <summary>True once this frame's scope has ended (<see cref="Exit"/>).</summary>
    internal bool Exited { get; private set; }

    /// <summary>Ends the scope of this frame: it no longer counts as current anywhere (its async call calls this before its
    /// task completes). Idempotent.</summary>
    internal void Exit()
    {
        if (!Exited)
        {
            Exited = true;
            if (Entered && Owner.LiveInnerFrames != ushort.MaxValue)
            {
                Owner.LiveInnerFrames--;
            }
        }
    }
}
