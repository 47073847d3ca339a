namespace EioSharp;

/// <summary>How an idle domain waits (the backend's part of the scheduler): for a cross-thread post, a timer deadline and (for a native backend) I/O readiness.</summary>
/// <remarks>
/// <see cref="Wait"/> and <see cref="PollNow"/> run only on the domain's thread; <see cref="Wake"/> may be called from any
/// thread. Backends implement it outside the kernel (src/EioSharp/Backends/); the kernel knows only this interface and the
/// portable <see cref="EventPoller"/>. Both waits dispatch whatever they harvested before returning (I/O waiters are completed, which only enqueues
/// continuations on the domain: no fiber code runs inside the poller).
/// </remarks>
internal interface IDomainPoller
{
    /// <summary>True when an idle domain with recent cross-domain traffic may spin briefly for the next post before
    /// <see cref="Wait"/> (read on the domain's thread just before it would wait); false for a backend whose idle handling
    /// must not be delayed (the mock) or while the poller holds work that only <see cref="Wait"/> hands to the OS.</summary>
    bool SpinBeforeSleep { get; }

    /// <summary>The longest such a spin lasts, in <see cref="System.Diagnostics.Stopwatch"/> ticks (0: never spin): the
    /// run's <c>EioBackendOptions.DomainSpin</c>, fixed when the poller is made.</summary>
    long SpinTicks { get; }

    /// <summary>The longest the spin lasts after a busy stretch whose post had to wake the domain it went to, in
    /// <see cref="System.Diagnostics.Stopwatch"/> ticks (at least <see cref="SpinTicks"/>; 0 when that is 0): the run's
    /// <c>EioBackendOptions.DomainWakeSpin</c>, fixed when the poller is made.</summary>
    long WakeSpinTicks => SpinTicks;

    /// <summary>True when <see cref="PollNow"/> may find something (some fd is registered).</summary>
    bool HasRegistrations { get; }

    /// <summary>Blocks up to <paramref name="timeoutMs"/> (-1: no limit) until woken or (native) an fd is ready.</summary>
    void Wait(int timeoutMs);

    /// <summary>Gathers ready I/O without blocking (called between scheduler rounds while the domain is busy).</summary>
    void PollNow();

    /// <summary>Wakes the domain's <see cref="Wait"/>; safe from any thread.</summary>
    void Wake();

    /// <summary>
    /// Called on the domain's thread when its run queue is empty, before the domain sleeps: a backend that decides idleness
    /// itself (the mock: virtual time, deadlock detection) handles it here and returns true (the domain runs its loop again);
    /// false (the default) lets the domain sleep in <see cref="Wait"/> until a post, its next timer or I/O.
    /// </summary>
    /// <param name="domain">The idle domain.</param>
    /// <param name="haveTimer">Whether a timer is pending.</param>
    /// <param name="nextDeadline">The next timer's deadline in the domain's time (ticks), when <paramref name="haveTimer"/>.</param>
    /// <returns>True if the backend handled the idle round.</returns>
    /// <exception cref="Exception">Whatever the backend reports (the mock: its deadlock exception), thrown out of the domain's run.</exception>
    bool TryIdle(Domain domain, bool haveTimer, long nextDeadline) => false;

    /// <summary>True when the sends of the domain's fibers reach the kernel only when this poller submits its queued
    /// operations (<see cref="PollNow"/>, <see cref="Wait"/>, <see cref="TryIdle"/>): then it runs the domain's
    /// <see cref="Domain.RunBeforeOutput"/> actions before each such submission (<see cref="Domain.BeforeOutputPending"/>).
    /// False (the default) for a backend that sends inside the write call.</summary>
    bool DefersOutput => false;

    /// <summary><see cref="Domain.HintNextWait"/>: the next <see cref="Wait"/> waits for <paramref name="completions"/> completions or
    /// <paramref name="maxNanoseconds"/>, whichever first (io_uring's min_complete); a no-op where unsupported.</summary>
    void HintNextWait(int completions, long maxNanoseconds)
    {
    }

    /// <summary>The prefix of <c>TraceLog</c> lines written on this backend's domains (null: the default by domain name).</summary>
    string? TraceLinePrefix => null;

    /// <summary>Called once by the domain that owns this poller, when the domain is created (before any wait).</summary>
    void Attach(Domain domain);

    /// <summary>Releases OS resources once the domain's loop has ended.</summary>
    void Dispose();
}

/// <summary>The default poller: a <see cref="ManualResetEventSlim"/>; I/O completions arrive as posts from .NET's threads.</summary>
internal sealed class EventPoller(long spinTicks, long wakeSpinTicks) : IDomainPoller
{
    /// <summary>The default spin budget (5 µs, <c>EioBackendOptions.DomainSpin</c>'s default) in Stopwatch ticks; 0 on one core.</summary>
    internal static long DefaultSpinTicks => Environment.ProcessorCount > 1 ? System.Diagnostics.Stopwatch.Frequency * 5 / 1_000_000 : 0;

    /// <summary>The default spin budget after a post that woke its target (50 µs, <c>EioBackendOptions.DomainWakeSpin</c>'s
    /// default) in Stopwatch ticks; 0 on one core.</summary>
    internal static long DefaultWakeSpinTicks => Environment.ProcessorCount > 1 ? System.Diagnostics.Stopwatch.Frequency * 50 / 1_000_000 : 0;

    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);

    /// <summary>A poller with the default spin budget.</summary>
    public EventPoller()
        : this(DefaultSpinTicks, DefaultWakeSpinTicks)
    {
    }

    public bool SpinBeforeSleep => true;

    public long SpinTicks => spinTicks;

    public long WakeSpinTicks => wakeSpinTicks;

    public bool HasRegistrations => false;

    public void Wait(int timeoutMs)
    {
        _wake.Wait(timeoutMs);
        _wake.Reset();
    }

    public void PollNow()
    {
    }

    public void Attach(Domain domain)
    {
    }

    public void Wake() => _wake.Set();

    public void Dispose()
    {
    }
}

