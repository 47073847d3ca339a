using System.Threading.Tasks.Sources;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>Identity of one fiber (for names, tracing and the watchdog), which is also the fiber's first frame: the frame
/// its code starts in (issue 20: one object per fiber rather than an identity and a frame).</summary>
/// <remarks>The fiber's domain is its first cancel context's domain, and its owner is that frame's switch.</remarks>
internal sealed class FiberInfo : FiberFrame
{
    /// <summary>Ids handed to a thread at a time (issue 20: no interlocked operation, nor a shared cache line, per fork).</summary>
    private const int IdBlock = 1024;

    private static long s_nextId;

    [ThreadStatic]
    private static long t_nextId;

    [ThreadStatic]
    private static long t_idEnd;

    /// <summary>Makes a fiber whose code starts in <paramref name="cancel"/>, owned by <paramref name="owner"/> (if any).</summary>
    /// <param name="name">A name for traces and dumps, or null.</param>
    /// <param name="cancel">The fiber's first cancel context; its domain is the fiber's.</param>
    /// <param name="owner">The switch that owns the fiber (null for a domain's main fiber, or a group with no switch).</param>
    internal FiberInfo(string? name, CancelContext cancel, Switch? owner)
        : base(cancel, owner)
    {
        Name = name;
    }

    public long Id { get; } = NewId();

    public Domain Domain => Cancel.Domain;

    public string? Name { get; }

    public Switch? Owner => Switch;

    // Links in the owning switch's list of live fibers (for dumps; touched only on the domain's thread).
    internal FiberInfo? PrevLive;
    internal FiberInfo? NextLive;

    /// <summary>The waiter the fiber is suspended on, recorded only while fiber frames are recorded (a watchdog, tracing
    /// or <c>EioDiagnostics.TrackFibers</c>); read racily by dumps.</summary>
    internal volatile WaiterNode? SuspendedOn;

    /// <summary>When the current suspension began (<see cref="Environment.TickCount64"/>, ms).</summary>
    internal long SuspendedSince;

    /// <summary>A forked fiber's body while the fiber waits for it to end (see <c>Fiber.Fork</c>; null otherwise). Kept here so
    /// that the end-of-fiber continuation needs no object of its own (issue 20).</summary>
    internal Task? Body;

    /// <summary>True once the fiber has finished.</summary>
    internal bool Finished;

    /// <summary>True for a daemon fiber (S8).</summary>
    internal bool Daemon;

    internal void Suspended(WaiterNode w)
    {
        SuspendedSince = Environment.TickCount64;
        SuspendedOn = w;
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

/// <summary>
/// What flows with a fiber's code: the fiber and its current cancel context. Carried by an
/// <see cref="AsyncLocal{T}"/>, so setting it inside an async method scopes it to that call (and to the fibers it forks).
/// </summary>
/// <remarks>A frame is also the source behind <c>Fiber.YieldAsync</c>'s awaiter (issue 20): a yield has no state of its own
/// (the continuation goes straight to the run queue, and resuming only checks the frame's cancellation), so the frame
/// serves every yield of its code, with token 0, and a yield allocates nothing.</remarks>
internal class FiberFrame : IValueTaskSource
{
    private static readonly Action<object?> s_runWithContext = static s =>
    {
        var (continuation, state, context) = ((Action<object?>, object?, ExecutionContext))s!;
        ExecutionContext.Run(context, static x => { var (c, st) = ((Action<object?>, object?))x!; c(st); }, (continuation, state));
    };

    private static readonly AsyncLocal<FiberFrame?> s_current = new();

    /// <summary>A frame of <paramref name="fiber"/>'s code in another cancel context or switch (a sub-switch, sub-context, protect).</summary>
    internal FiberFrame(FiberInfo fiber, CancelContext cancel, Switch? sw)
    {
        Fiber = fiber;
        Cancel = cancel;
        Switch = sw;
    }

    /// <summary>The first frame of a fiber: the <see cref="FiberInfo"/> itself.</summary>
    private protected FiberFrame(CancelContext cancel, Switch? sw)
    {
        Fiber = (FiberInfo)this;
        Cancel = cancel;
        Switch = sw;
    }

    public FiberInfo Fiber { get; }

    public CancelContext Cancel { get; }

    /// <summary>The innermost switch whose body or fiber this code belongs to.</summary>
    public Switch? Switch { get; }

    public static FiberFrame? Current
    {
        get => s_current.Value;
        set => s_current.Value = value;
    }

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
    void IValueTaskSource.GetResult(short token) => Cancel.ThrowIfCancelled();

    /// <summary>The current frame; throws when called outside a fiber or from a thread that is not the fiber's domain.</summary>
    public static FiberFrame Require()
    {
        var f = s_current.Value;
        if (f is null)
        {
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
