using EioSharp.Tracing;

namespace EioSharp;

/// <summary>
/// What a fiber is suspended on while it awaits an I/O operation that .NET runs (the portable backend's sockets, the
/// stream adapters): there is no waiter of ours, so traces and dumps get this shared marker instead, and show the fiber as
/// "suspended on io" (as the epoll and io_uring backends' waits show io-read/io-write) rather than "runnable (or awaiting
/// an ordinary .NET task)". It is never linked into a cancel context (the operation is cancelled through the fiber's
/// cancellation token), so it carries no per-operation state and one instance serves every fiber.
/// </summary>
internal sealed class ExternalIoWait : WaiterNode
{
    /// <summary>The one marker.</summary>
    internal static readonly ExternalIoWait Instance = new();

    private ExternalIoWait() => TraceReason = TraceReason.Io;

    /// <summary>Records the suspension for traces and dumps when either is on (the same two hooks as a waiter's own
    /// suspension); returns whether it recorded, so the caller ends it with <see cref="End"/>. Runs on the fiber's domain,
    /// before the fiber awaits the pending operation.</summary>
    internal static bool Begin(FiberFrame frame)
    {
        if (EioTrace.On)
        {
            EioTrace.Suspended(frame, Instance);
            return true;
        }

        if (Volatile.Read(ref Domain.WatchdogsRunning) != 0)
        {
            frame.Fiber.Suspended(Instance);
            return true;
        }

        return false;
    }

    /// <summary>Ends the dumps' record of the suspension (the resume itself is traced by the run loop).</summary>
    internal static void End(FiberFrame frame) => frame.Fiber.Resumed(Instance);

    internal override bool TryCancel(CancelledException error) => false;
}
