namespace EioSharp.Supervision;

/// <summary>Watches one fiber (or one run of a supervised child) and tells how it ended, without sharing its fate.</summary>
/// <remarks>
/// Erlang: <c>erlang:monitor(process, Pid)</c> and its <c>'DOWN'</c> message. Named <c>ExitMonitor</c> because <c>Monitor</c>
/// clashes with <c>System.Threading.Monitor</c> (an implicit using).
/// <para><b>Errors</b>: the watched fiber's exception is captured in the <see cref="ExitReason"/>; it does not fail the
/// watcher, nor (for <see cref="Fork(Switch, Func{Task}, string?)"/>) the owning switch. Compare <see cref="Fiber.Fork(Switch, Func{Task})"/>,
/// which shares the fiber's fate with its switch (Erlang's link).</para>
/// <para><b>Thread safety</b>: <see cref="AwaitAsync"/> may be called by any number of fibers on any domains.</para>
/// </remarks>
public sealed class ExitMonitor
{
    private readonly Promise<ExitReason> _exit;

    internal ExitMonitor(string name, Promise<ExitReason> exit)
    {
        Name = name;
        _exit = exit;
    }

    /// <summary>The watched fiber's or child's name.</summary>
    public string Name { get; }

    /// <summary>True once the watched code has ended.</summary>
    public bool HasExited => _exit.IsResolved;

    /// <summary>Starts <paramref name="body"/> as a fiber of <paramref name="sw"/> and returns a monitor of it.</summary>
    /// <param name="sw">The owning switch: it waits for the fiber and cancels it when cancelled, but does not fail when it fails.</param>
    /// <param name="body">The fiber's code.</param>
    /// <param name="name">A name for traces (default <c>fiber</c>).</param>
    /// <returns>The monitor. If <paramref name="sw"/> is finished or cancelled the fiber does not run and the monitor reports
    /// <see cref="ExitKind.Cancelled"/> at once (S6).</returns>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> belongs to another domain.</exception>
    /// <remarks>Erlang: <c>spawn_monitor</c>. <b>Scheduling</b>: as <see cref="Fiber.Fork(Switch, Func{Task})"/>, the fiber runs at once up to its first suspension.</remarks>
    public static ExitMonitor Fork(Switch sw, Func<Task> body, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(body);
        var p = Fiber.ForkPromise(sw, () => ExitReason.CaptureAsync(body));
        if (p.IsResolved && !p.TryPeek(out _))
        {
            // The fork was refused: ForkPromise stored the switch's cancellation (our body never throws).
            var refusal = sw.CancelContext.IsCancelled
                ? new CancelledException(sw.CancelContext.Reason!)
                : new CancelledException(new InvalidOperationException("The switch has finished."));
            p = EioSharp.Promise.CreateResolved(ExitReason.Cancelled(refusal));
        }

        return new ExitMonitor(name ?? "fiber", p);
    }

    /// <summary>Waits until the watched code has ended and returns why.</summary>
    /// <returns>The exit reason; never throws the watched code's exception.</returns>
    /// <exception cref="CancelledException">The calling fiber was cancelled while waiting (the watched code is unaffected).</exception>
    /// <remarks>Erlang: receiving the <c>'DOWN'</c> message. Returns at once, without a cancellation check, once the code has ended.</remarks>
    public ValueTask<ExitReason> AwaitAsync() => _exit.AwaitAsync();

    /// <inheritdoc/>
    public override string ToString() => _exit.TryPeek(out var r) ? $"{Name}: {r}" : $"{Name}: running";
}
