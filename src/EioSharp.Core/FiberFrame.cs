namespace EioSharp;

/// <summary>Identity of one fiber (for names, tracing and the watchdog).</summary>
internal sealed class FiberInfo(Domain domain, string? name, Switch? owner)
{
    private static long s_nextId;

    public long Id { get; } = Interlocked.Increment(ref s_nextId);

    public Domain Domain { get; } = domain;

    public string? Name { get; } = name;

    public Switch? Owner { get; } = owner;

    // Links in the owning switch's list of live fibers (for dumps; touched only on the domain's thread).
    internal FiberInfo? PrevLive;
    internal FiberInfo? NextLive;

    /// <summary>The waiter the fiber is suspended on, recorded only while fiber frames are recorded (a watchdog, tracing
    /// or <c>EioDiagnostics.TrackFibers</c>); read racily by dumps.</summary>
    internal volatile WaiterNode? SuspendedOn;

    /// <summary>When the current suspension began (<see cref="Environment.TickCount64"/>, ms).</summary>
    internal long SuspendedSince;

    /// <summary>True once the fiber has finished.</summary>
    internal bool Finished;

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
}

/// <summary>
/// What flows with a fiber's code: the fiber and its current cancel context. Carried by an
/// <see cref="AsyncLocal{T}"/>, so setting it inside an async method scopes it to that call (and to the fibers it forks).
/// </summary>
internal sealed class FiberFrame(FiberInfo fiber, CancelContext cancel, Switch? sw)
{
    private static readonly AsyncLocal<FiberFrame?> s_current = new();

    public FiberInfo Fiber { get; } = fiber;

    public CancelContext Cancel { get; } = cancel;

    /// <summary>The innermost switch whose body or fiber this code belongs to.</summary>
    public Switch? Switch { get; } = sw;

    public static FiberFrame? Current
    {
        get => s_current.Value;
        set => s_current.Value = value;
    }

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
