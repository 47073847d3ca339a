using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>Identity of one fiber (for names, tracing and the watchdog), which is also the fiber's first frame: the frame
/// its code starts in (issue 20: one object per fiber rather than an identity and a frame).</summary>
/// <remarks>The fiber's domain is its first cancel context's domain, and its owner is that frame's switch. Not sealed: a
/// named fiber is a <see cref="NamedFiber"/> (issue 20: most fibers have no name, so the field is not in every fiber; make
/// fibers with <see cref="Create"/>). A forked racer is a plain fiber (h121: its end is kept by its race's group, so it
/// no longer needs a subclass that knows the group); a fiber of <c>Fiber.Fork</c> is a <see cref="ForkedFiber"/>, which
/// keeps its body's task (h130: a plain fiber is 72 B, a forked one 80).</remarks>
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

    /// <summary>Makes a forked fiber (a <see cref="ForkedFiber"/>, or a <see cref="NamedFiber"/> when
    /// <paramref name="name"/> is not null, which is one too).</summary>
    /// <param name="name">A name for traces and dumps, or null.</param>
    /// <param name="cancel">The fiber's first cancel context; its domain is the fiber's.</param>
    /// <param name="owner">The switch that owns the fiber (null for a domain's main fiber).</param>
    internal static ForkedFiber Create(string? name, CancelContext cancel, Switch? owner) =>
        name is null ? new ForkedFiber(cancel, owner) : new NamedFiber(name, cancel, owner);

    /// <summary>The bit of <see cref="_idAndFlags"/> that is <see cref="Finished"/>.</summary>
    private const long FinishedBit = 1L << 62;

    /// <summary>The bit of <see cref="_idAndFlags"/> that is <see cref="Daemon"/>.</summary>
    private const long DaemonBit = 1L << 61;

    /// <summary>The bits of <see cref="_idAndFlags"/> that are <see cref="Id"/> (ids reach 2^61 after 73 years at 10^9
    /// forks a second).</summary>
    private const long IdMask = DaemonBit - 1;

    /// <summary>The id, with the <see cref="Finished"/> and <see cref="Daemon"/> flags in two high bits (issue 20, h130: the
    /// flags were two bool fields, which with the trace carry epoch, now <see cref="NamedFiber"/>'s, took 6 B past an 8 B
    /// boundary: an unnamed fiber is 80 B, was 88). Written on the fiber's domain only; read racily by dumps (one 8 B
    /// load, and the id bits never change).</summary>
    private long _idAndFlags = NewId();

    /// <summary>A process-unique id, increasing on each thread, from 1.</summary>
    public long Id => _idAndFlags & IdMask;

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

    /// <summary>True once the fiber has finished (set on its domain, never cleared).</summary>
    internal bool Finished
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_idAndFlags & FinishedBit) != 0;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        set => _idAndFlags = value ? _idAndFlags | FinishedBit : _idAndFlags & ~FinishedBit;
    }

    /// <summary>True for a daemon fiber (S8; set once, as the fiber is forked).</summary>
    internal bool Daemon
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_idAndFlags & DaemonBit) != 0;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        set => _idAndFlags = value ? _idAndFlags | DaemonBit : _idAndFlags & ~DaemonBit;
    }

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

/// <summary>A fiber started by <c>Fiber.Fork</c>/<c>ForkDaemon</c> (made by <see cref="FiberInfo.Create"/>): a fiber with the
/// field its end needs, <see cref="Body"/>. A separate type so that the fibers whose end is kept elsewhere (a race's or
/// group's functions, a promise's fiber) do not carry it (issue 20, h130: a racer's fiber is 72 B, a forked one 80).</summary>
internal class ForkedFiber : FiberInfo
{
    /// <summary>Makes an unnamed forked fiber (see <see cref="FiberInfo(CancelContext, Switch?)"/>).</summary>
    internal ForkedFiber(CancelContext cancel, Switch? owner)
        : base(cancel, owner)
    {
    }

    /// <summary>The fiber's body while the fiber waits for it to end (see <c>Fiber.Fork</c>; null otherwise). Kept here so
    /// that the end-of-fiber continuation needs no object of its own (issue 20).</summary>
    internal Task? Body;
}

/// <summary>A fiber with a name (for traces, dumps and the watchdog): a separate type so that the name is not a field of every
/// fiber (issue 20: an unnamed fiber is 8 B smaller). Made by <see cref="FiberInfo.Create"/>: a forked fiber, or a domain's
/// main fiber (which does not use <see cref="ForkedFiber.Body"/>: 8 B once per domain).</summary>
internal sealed class NamedFiber : ForkedFiber
{
    internal NamedFiber(string name, CancelContext cancel, Switch? owner)
        : base(cancel, owner)
    {
        FiberName = name;
    }

    /// <summary>The name (<see cref="FiberInfo.Name"/>).</summary>
    internal string FiberName { get; }

    /// <summary>The trace ring period (<see cref="Tracing.TraceRing.CarryEpoch"/>) in which this named fiber's identity
    /// was last stored with one of its events (written by the ring's writer; see <c>EioTrace</c>'s <c>CarriedData</c>).
    /// Only a named fiber's identity is carried, so only a named fiber has the field (issue 20, h130: in every fiber it
    /// took 4 of the 6 B that made an unnamed fiber 88 B).</summary>
    internal int TraceCarried;
}

/// <summary>
/// What flows with a fiber's code: the fiber and its current cancel context and switch.
/// </summary>
/// <remarks>
/// <para><b>Where the current frame is kept</b> (issue 20: no <see cref="ExecutionContext"/> per fork, nor per frame). The
/// running frame is the <see cref="SynchronizationContext"/> installed on its domain's thread: a fiber's first frame
/// (<see cref="FiberInfo"/>) or one of its inner frames (<see cref="InnerFrame"/>) is one. The domain's run loop installs
/// the frame of every item it runs (each item carries the frame it was queued for), forking installs the child while its
/// body runs up to its first suspension and puts the caller's frame back, and an <c>await</c> in fiber code captures the
/// installed frame, so a continuation of fiber A's code runs inline only where that same frame is installed; completed by
/// any other code (another fiber, another frame, another thread), it is posted to the frame (<see cref="Post"/>) and runs
/// from the run queue with that frame installed. Code off the domain (the thread pool after <c>ConfigureAwait(false)</c>,
/// a system thread) has no frame installed, so it cannot see a stale one.</para>
/// <para><b>Inner frames</b> (a sub-switch, sub-context, race, group, protect: <see cref="Enter"/>) are installed the same
/// way (issue 20, session 17: they were carried by an <see cref="AsyncLocal{T}"/>, so every resume of code in a switch body
/// ran in a non-default execution context). They keep the async local's scope: .NET's async method builder puts back the
/// caller's synchronization context when the method's synchronous part returns (as it puts back its execution context),
/// and each await captures the context installed where it suspends, so a frame entered by an async method counts for that
/// method and the code it calls, not for its caller nor for code that runs concurrently with it in the same fiber
/// (<c>Task.WhenAll(a(), b())</c>: rule S17b in docs/semantics.md). <see cref="InnerFrame.Exit"/> puts the enclosing frame back
/// when the exited frame is installed, so the awaiting caller's continuation runs inline as before.</para>
/// <para>A frame is also the source behind <c>Fiber.YieldAsync</c>'s awaiter when the yield is awaited off its domain
/// (issue 20): a yield has no state of its own (the continuation goes straight to the run queue, and resuming only checks
/// the frame's cancellation), so the frame serves every such yield of its code, with token 0, and a yield allocates
/// nothing. On the domain's own thread the domain's <see cref="YieldSource"/> serves instead (h143: cheaper casts).</para>
/// </remarks>
internal class FiberFrame : SynchronizationContext, IValueTaskSource
{
    private static readonly Action<object?> s_runWithContext = static s =>
    {
        var (continuation, state, context) = ((Action<object?>, object?, ExecutionContext))s!;
        ExecutionContext.Run(context, static x => { var (c, st) = ((Action<object?>, object?))x!; c(st); }, (continuation, state));
    };

    /// <summary>The frame whose continuation runs on this thread with no synchronization context installed (see
    /// <c>Waiter.InlineForeignContinuations</c>): a .NET consumer's <c>ConfigureAwait(false)</c> chain run inline on the domain.</summary>
    [ThreadStatic]
    private static FiberFrame? t_foreign;

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
    /// its domain): the installed synchronization context (a thread-static read and a type test), or, when that is an inner
    /// frame whose scope has ended, the innermost enclosing frame still live.</summary>
    public static new FiberFrame? Current => CurrentCore();

    /// <summary><see cref="Current"/>, inlined where it is asked for.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FiberFrame? CurrentCore()
    {
        var frame = AsFrame(SynchronizationContext.Current) ?? t_foreign;
        if (frame is InnerFrame { Exited: true } inner)
        {
            // An inlined continuation of code whose frame has ended (it ran on after its switch, e.g. an async method
            // that was not awaited): the enclosing frame of the same fiber that is still live.
            return inner.Live();
        }

        return frame;
    }

    /// <summary><see cref="Current"/> from <paramref name="context"/>, the synchronization context installed on the calling
    /// thread (read by a caller that knows its thread: <see cref="Domain.LoopThreadContext"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static FiberFrame? CurrentIn(SynchronizationContext? context)
    {
        var frame = AsFrame(context) ?? t_foreign;
        if (frame is InnerFrame { Exited: true } inner)
        {
            return inner.Live();
        }

        return frame;
    }

    /// <summary>The fiber of the code running on this thread (not its inner frame), or null.</summary>
    internal static FiberInfo? CurrentFiber => (AsFrame(SynchronizationContext.Current) ?? t_foreign)?.Fiber;

    /// <summary><paramref name="context"/> as a frame, or null. The four exact types are tested inline first (issue 20,
    /// session 15): <see cref="FiberInfo"/> is not sealed, so a plain cast of a <see cref="NamedFiber"/> (a domain's main
    /// fiber) called the runtime's cast helper on every read of the current frame. A forked fiber first (h130: the most
    /// common frame once forked fibers became <see cref="ForkedFiber"/>s).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FiberFrame? AsFrame(SynchronizationContext? context)
    {
        // Each test written as `context.GetType() == typeof(T)`, which the JIT turns into one method-table compare (h143:
        // with the type read into a local first, Tier-1 code called Object.GetType on every read of the current frame).
        if (context is not null
            && (context.GetType() == typeof(ForkedFiber) || context.GetType() == typeof(InnerFrame)
                || context.GetType() == typeof(FiberInfo) || context.GetType() == typeof(NamedFiber)))
        {
            return Unsafe.As<FiberFrame>(context);
        }

        return context as FiberFrame;
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
    /// method and the code it calls: installs it as the synchronization context, which the method's builder replaces with
    /// the caller's when the method first returns, and which its awaits capture. The caller must call
    /// <see cref="InnerFrame.Exit"/> when its scope ends, before its task completes; a caller that is not an async method
    /// must put its caller's context back itself before it returns.</summary>
    internal static void Enter(InnerFrame frame)
    {
        frame.Parent = Current;
        SynchronizationContext.SetSynchronizationContext(frame);
    }

    /// <summary>Makes <paramref name="frame"/> current on a domain thread running code that is in no fiber (a queued callback):
    /// installs it (an async caller's builder restores the previous context).</summary>
    internal static void Resume(FiberFrame frame) => SynchronizationContext.SetSynchronizationContext(frame);

    /// <summary>Runs <paramref name="continuation"/> with no synchronization context installed but as code of
    /// <paramref name="frame"/> (see <see cref="t_foreign"/>).</summary>
    internal static void RunForeign(FiberFrame? frame, Action<object?> continuation, object? state)
    {
        var context = SynchronizationContext.Current;
        var outer = t_foreign;
        SynchronizationContext.SetSynchronizationContext(null);
        t_foreign = frame;
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

    /// <summary>Posts <paramref name="d"/> to the run queue of this frame's domain, to run in this frame (an await in this
    /// frame's code of a task completed elsewhere resumes through here).</summary>
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

    /// <summary>The current frame; throws when called outside a fiber. Unlike <see cref="Require"/>, it does not check that
    /// the thread is the fiber's domain (issue 20, h143: one thread-static read less per yield): for callers that do the
    /// thread check later themselves (<c>Fiber.YieldAsync</c>'s awaiter).</summary>
    internal static FiberFrame RequireInFiber() => CurrentCore() ?? throw NotInFiber();

    private static InvalidOperationException NotInFiber() =>
        new("This operation must be called from a fiber (inside EioMain.Run or a fiber it started).");

    /// <summary>The current frame; throws when called outside a fiber or from a thread that is not the fiber's domain.</summary>
    /// <remarks>Not inlined (h168): inlined into <c>AsyncQueue</c>'s takes (another assembly, inside a lock) the JIT reached
    /// the thread statics through its generic helper, which cost more than the call.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static FiberFrame Require() => RequireInline();

    /// <summary><see cref="Require"/>, inlined into the suspensions that pay for it on every call (issue 20, h168: no call,
    /// and one <c>__tls_get_addr</c> call for the frame and the thread check, where there were two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static FiberFrame RequireInline()
    {
        // The last domain to start its loop, confirmed by a stack address (h186): on its loop thread the frame is read
        // through that thread's field, and a frame of that domain needs no thread test, so no thread-static read. Anything
        // else (another domain's thread, a nested domain run, no fiber) takes the thread-static path below, as before.
        if (Domain.LastLoop is { } loop && loop.OnLoopStack() && CurrentIn(loop.LoopThreadContext) is { } lf
            && ReferenceEquals(lf.Cancel.Domain, loop))
        {
            return lf;
        }

        var f = CurrentCore();
        if (f is null)
        {
            ThrowNotInFiber();
        }

        // The domain's loop thread, through Thread.CurrentThread: the frame read above read it already, so the JIT reads
        // the thread once for both (h162's Domain.IsCurrentThread; the t_current test was a second __tls_get_addr call).
        // It differs from IsCurrent only inside another domain run nested in one of this domain's work items on its own
        // thread, where this domain is blocked in that work item: its fiber's code touches nothing another thread uses,
        // and a wake-up from there takes the cross-thread path (Waiter.TryCompleteTaken and Domain.Enqueue test IsCurrent).
        // The frame's cancel context's domain is its fiber's (S17; h175: one field load, where f.Fiber.Domain tests the
        // frame's type first).
        var domain = f.Cancel.Domain;
        System.Diagnostics.Debug.Assert(ReferenceEquals(domain, f.Fiber.Domain), "a frame's cancel context is on its fiber's domain");
        if (!domain.IsCurrentThread)
        {
            ThrowWrongThread(domain);
        }

        return f;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotInFiber() => throw NotInFiber();

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowWrongThread(Domain domain) => throw new InvalidOperationException(
        $"Fiber code for domain {domain.Id} is running on another thread; was ConfigureAwait(false) used in fiber code?");
}

/// <summary>A frame of a fiber's code in another cancel context or switch than the code around it (a sub-switch,
/// sub-context, protect, race or group), made current for the rest of an async call by <see cref="FiberFrame.Enter"/>.</summary>
internal sealed class InnerFrame : FiberFrame
{
    /// <summary>A frame of <paramref name="fiber"/>'s code in <paramref name="cancel"/> and <paramref name="sw"/>.</summary>
    internal InnerFrame(FiberInfo fiber, CancelContext cancel, Switch? sw)
        : base(cancel, sw)
    {
        _owner = fiber;
    }

    /// <summary>The fiber while this frame's scope is live; null once it has ended (<see cref="Exit"/>), which is how an ended
    /// frame is told (issue 20, h125: no flag field, so a frame is 56 B, was 64; an ended frame finds its fiber through
    /// <see cref="Parent"/>, which <see cref="Exit"/> makes non-null).</summary>
    private FiberInfo? _owner;

    /// <summary>The fiber (as <see cref="FiberFrame.Fiber"/>, without its type test); for an ended frame, the fiber of the
    /// enclosing live frame, the same fiber.</summary>
    internal FiberInfo Owner
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref _owner) ?? Live().Fiber;
    }

    /// <summary>The frame in which this one was entered (<see cref="FiberFrame.Enter"/>): the same fiber's.</summary>
    internal FiberFrame? Parent { get; set; }

    /// <summary>True once this frame's scope has ended (<see cref="Exit"/>).</summary>
    internal bool Exited => Volatile.Read(ref _owner) is null;

    /// <summary>This frame if its scope has not ended, else the innermost enclosing frame whose scope has not ended (or the
    /// fiber's first frame).</summary>
    internal FiberFrame Live()
    {
        FiberFrame f = this;
        while (f is InnerFrame { Exited: true } inner)
        {
            f = inner.Parent!; // set before the frame was marked ended (Exit)
        }

        return f;
    }

    /// <summary>Ends the scope of this frame: it no longer counts as current anywhere (its async call calls this before its
    /// task completes). When it is the installed synchronization context, the enclosing live frame is installed instead,
    /// so that the task's completion runs the awaiting caller's continuation inline (its await captured that frame).
    /// Idempotent.</summary>
    internal void Exit()
    {
        if (_owner is { } owner)
        {
            Parent ??= owner; // a frame never entered: its fiber's first frame encloses it
            Volatile.Write(ref _owner, null); // after Parent: a reader that sees the frame ended finds its fiber
            if (ReferenceEquals(SynchronizationContext.Current, this))
            {
                SynchronizationContext.SetSynchronizationContext(Live());
            }
        }
    }
}
