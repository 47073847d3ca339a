namespace EioSharp.Backends.Native;

/// <summary>
/// A one-shot watch for "this descriptor has become readable", kept by a native poller (epoll, io_uring) with no fiber
/// waiting on it: the poller calls <see cref="Ready"/> on its domain's thread when the descriptor is readable. Used for a
/// child's pidfd, so that the child is reaped by the domain that spawned it, whether or not a fiber awaits it.
/// </summary>
/// <remarks>
/// The poller forgets the watch before calling <see cref="Ready"/> (so <see cref="Ready"/> may close the descriptor, or
/// watch it again). If the poller is torn down (its domain ended) or the kernel refuses the watch after it was accepted,
/// the poller calls <see cref="Abandoned"/> instead, exactly once, and the owner must watch the descriptor some other way.
/// </remarks>
internal abstract class ReadyWatch
{
    /// <summary>The descriptor watched.</summary>
    internal abstract int Fd { get; }

    /// <summary>The descriptor is readable (on the poller's domain thread, inside its wait: post work, run no fiber code).</summary>
    internal abstract void Ready();

    /// <summary>The poller will never report readiness (torn down, or the kernel refused); any thread.</summary>
    internal abstract void Abandoned();
}

/// <summary>A native poller that can keep <see cref="ReadyWatch"/>es (implemented by the epoll and io_uring pollers).</summary>
internal interface IReadyWatcher
{
    /// <summary>Starts watching <paramref name="watch"/>'s descriptor for readability (on the poller's domain thread only).</summary>
    /// <param name="watch">The watch; its <see cref="ReadyWatch.Fd"/> must stay open until <see cref="ReadyWatch.Ready"/>
    /// or <see cref="ReadyWatch.Abandoned"/>.</param>
    /// <returns>False when it cannot be watched here (the poller is torn down, or the kernel refused at once); the caller
    /// then watches it another way. True: exactly one of Ready/Abandoned will be called.</returns>
    bool TryWatch(ReadyWatch watch);
}
