using System.Diagnostics;

namespace EioSharp.Tracing;

/// <summary>What a <see cref="TraceEvent"/> records.</summary>
/// <remarks>Eio: the events of <c>Eio.Private.Trace</c> (<c>Fiber</c>, <c>Create</c>, <c>Suspend</c>, <c>Log</c>...).</remarks>
public enum TraceEventKind : byte
{
    /// <summary>A fiber was created (forked) and starts running at once. <see cref="TraceEvent.Fiber"/> is the new fiber,
    /// <see cref="TraceEvent.Other"/> its parent fiber (0 if unknown), <see cref="TraceEvent.Arg"/> the owning switch's id.</summary>
    FiberCreated = 1,

    /// <summary>A work item started on the domain: the fiber (0 for a continuation of an ordinary .NET task, whose fiber is
    /// not known until it suspends or finishes) runs until it suspends or finishes or the next item starts.</summary>
    FiberResumed,

    /// <summary>The fiber suspended: <see cref="TraceEvent.Reason"/> says on what; <see cref="TraceEvent.Arg"/> is the file
    /// descriptor for I/O suspensions (else 0).</summary>
    FiberSuspended,

    /// <summary>A suspended fiber (<see cref="TraceEvent.Fiber"/>) was made runnable by <see cref="TraceEvent.Other"/> (the
    /// fiber running on the recording thread, 0 if none or unknown); <see cref="TraceEvent.Arg"/> is the flow id that links
    /// this wake-up to the woken fiber's next <see cref="FiberResumed"/>. A fiber woken by a fiber of its own domain cannot
    /// run before the waker's run ends, so that wake-up carries the time of the domain's next event (no clock read of its
    /// own); a wake-up from another domain or thread carries the time it happened.</summary>
    FiberWoken,

    /// <summary>The suspension of <see cref="TraceEvent.Fiber"/> was cancelled.</summary>
    FiberCancelled,

    /// <summary>The fiber finished; <see cref="TraceEvent.Arg"/> is a <see cref="FiberOutcome"/>, <see cref="TraceEvent.Data"/> the exception if it failed.</summary>
    FiberFinished,

    /// <summary>A switch opened in <see cref="TraceEvent.Fiber"/>: <see cref="TraceEvent.Arg"/> its id, <see cref="TraceEvent.Other"/> its parent switch's id.</summary>
    SwitchOpened,

    /// <summary>A switch finished (<see cref="TraceEvent.Arg"/> its id; <see cref="TraceEvent.Data"/> the failure, if any).</summary>
    SwitchClosed,

    /// <summary>A cancel context was created: <see cref="TraceEvent.Arg"/> its id, <see cref="TraceEvent.Other"/> its parent's id.</summary>
    CancelCreated,

    /// <summary>A cancel context was cancelled: <see cref="TraceEvent.Arg"/> its id, <see cref="TraceEvent.Data"/> the reason.</summary>
    CancelCancelled,

    /// <summary>The domain woke up (has work again).</summary>
    DomainBusy,

    /// <summary>The domain has nothing to run and waits for events or timers.</summary>
    DomainIdle,

    /// <summary>A user label (<see cref="EioTrace.Log(string)"/>); <see cref="TraceEvent.Data"/> is the text.</summary>
    Label,

    /// <summary>A system thread started a blocking call offloaded by <see cref="TraceEvent.Fiber"/> (<c>Systhread.RunAsync</c>):
    /// recorded on that thread (<see cref="TraceEvent.DomainId"/> -1); <see cref="TraceEvent.Arg"/> is the offload's id,
    /// <see cref="TraceEvent.Other"/> the system thread's managed thread id.</summary>
    SysthreadStarted,

    /// <summary>The offloaded call <see cref="TraceEvent.Arg"/> returned (<see cref="TraceEvent.Data"/>: the exception it
    /// threw, if any); the fiber is woken next. Same fields as <see cref="SysthreadStarted"/>.</summary>
    SysthreadFinished,
}

/// <summary>What a suspended fiber waits for.</summary>
public enum TraceReason : byte
{
    /// <summary>Not a suspension, or not known.</summary>
    None = 0,

    /// <summary><c>Promise.AwaitAsync</c>.</summary>
    Promise,

    /// <summary>Taking from or adding to an <c>AsyncQueue</c>.</summary>
    Queue,

    /// <summary>A sleep or deadline (<c>Clock.SleepAsync</c>, timeouts).</summary>
    Sleep,

    /// <summary>Waiting for a file descriptor to become readable.</summary>
    IoRead,

    /// <summary>Waiting for a file descriptor to become writable.</summary>
    IoWrite,

    /// <summary>An I/O operation run by .NET (a socket or stream of the portable backend).</summary>
    Io,

    /// <summary>A mutex or semaphore.</summary>
    Mutex,

    /// <summary>A condition variable.</summary>
    Condition,

    /// <summary>A switch waiting for its fibers to finish.</summary>
    Join,

    /// <summary><c>Fiber.YieldAsync</c>.</summary>
    Yield,

    /// <summary><c>Fiber.AwaitCancelAsync</c> (or anything that waits only for cancellation).</summary>
    AwaitCancel,

    /// <summary>A blocking call offloaded to a system thread (<c>Systhread.RunAsync</c>, blocking file operations).</summary>
    Systhread,

    /// <summary>A mock-backend action (the mock's scripted replies).</summary>
    Mock,

    /// <summary>Something else (another library waiter).</summary>
    Other,
}

/// <summary>How a fiber finished (<see cref="TraceEventKind.FiberFinished"/>'s <see cref="TraceEvent.Arg"/>).</summary>
public enum FiberOutcome
{
    /// <summary>It returned normally.</summary>
    Ok = 0,

    /// <summary>It threw an exception other than <see cref="CancelledException"/>.</summary>
    Failed = 1,

    /// <summary>It ended with <see cref="CancelledException"/>.</summary>
    Cancelled = 2,
}

/// <summary>One recorded event: a fixed-size record in a domain's trace ring.</summary>
/// <param name="Timestamp">When (<see cref="Stopwatch.GetTimestamp"/> ticks).</param>
/// <param name="Kind">What happened.</param>
/// <param name="Reason">For suspensions: on what.</param>
/// <param name="DomainId">The domain whose thread recorded the event, or -1 for a thread that is not a domain.</param>
/// <param name="Fiber">The fiber the event is about (0: none or unknown).</param>
/// <param name="Other">A second id (parent fiber, waking fiber, parent switch or context); see <see cref="TraceEventKind"/>.</param>
/// <param name="Arg">An argument (switch id, file descriptor, flow id, outcome); see <see cref="TraceEventKind"/>.</param>
/// <param name="Data">An object already at hand, never allocated for the event: a named fiber's identity (on its events),
/// the switch (on an unnamed fiber's creation, and on switch events), an exception, a label; else null (an unnamed fiber's
/// other events carry nothing, so that the rings keep no short-lived objects alive).</param>
public readonly record struct TraceEvent(
    long Timestamp,
    TraceEventKind Kind,
    TraceReason Reason,
    int DomainId,
    long Fiber,
    long Other,
    long Arg,
    object? Data)
{
    /// <summary>The fiber's name, for the events of a named fiber (created, resumed, suspended, cancelled, finished).</summary>
    public string? FiberName => Data is FiberInfo f ? f.Name : null;

    /// <summary>The path of the fiber's switch (a named fiber's events, any fiber's creation) or of the switch opened or closed.</summary>
    public string? SwitchPath => Data switch
    {
        FiberInfo f => f.Owner?.Path,
        Switch s => s.Path,
        _ => null,
    };

    /// <summary>The label text of a <see cref="TraceEventKind.Label"/> event.</summary>
    public string? Text => Data as string;

    /// <summary>The exception carried by a finished fiber, closed switch or cancelled context.</summary>
    public Exception? Exception => Data as Exception;
}
