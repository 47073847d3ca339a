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
    /// <summary>True when spinning briefly before <see cref="Wait"/> pays (the event poller); false when waiting also gathers I/O.</summary>
    bool SpinBeforeSleep { get; }

    /// <summary>True when <see cref="PollNow"/> may find something (some fd is registered).</summary>
    bool HasRegistrations { get; }

    /// <summary>Blocks up to <paramref name="timeoutMs"/> (-1: no limit) until woken or (native) an fd is ready.</summary>
    void Wait(int timeoutMs);

    /// <summary>Gathers ready I/O without blocking (called between scheduler rounds while the domain is busy).</summary>
    void PollNow();

    /// <summary>Wakes the domain's <see cref="Wait"/>; safe from any thread.</summary>
    void Wake();

    /// <summary>Called once by the domain that owns this poller, when the domain is created (before any wait).</summary>
    void Attach(Domain domain);

    /// <summary>Releases OS resources once the domain's loop has ended.</summary>
    void Dispose();
}

/// <summary>The default poller: a <see cref="ManualResetEventSlim"/>; I/O completions arrive as posts from .NET's threads.</summary>
internal sealed class EventPoller : IDomainPoller
{
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);

    public bool SpinBeforeSleep => true;

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

