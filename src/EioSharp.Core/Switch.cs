using System.Runtime.ExceptionServices;
using EioSharp.Tracing;

namespace EioSharp;

/// <summary>A scope that owns fibers and resources: it finishes only when all of them have finished (S1).</summary>
/// <remarks>
/// Eio: <c>Eio.Switch</c>.
/// <para><b>Errors</b>: an exception escaping the body or any fiber forked with <see cref="Fiber.Fork(Switch, Func{Task})"/>
/// fails the switch (S2, S4): it is recorded and the switch is cancelled, so every other fiber gets
/// <see cref="CancelledException"/> at its next suspension point. When everything has finished, <see cref="RunAsync(Func{Switch, Task}, string?)"/>
/// throws the combined failure (S3): see <see cref="MultipleException"/>.</para>
/// <para><b>Lifetime</b>: release hooks (<see cref="OnRelease(Action)"/>, <see cref="Attach(IDisposable)"/>) run after all fibers,
/// last registered first, one at a time, each protected from cancellation (S7).</para>
/// <para><b>Thread safety</b>: a switch belongs to the domain that created it (S17); using it from another domain throws
/// <see cref="InvalidOperationException"/>, except adding and removing release hooks, which any domain may do (an extension: Eio raises <c>Invalid_argument</c> there).</para>
/// <para>The name clashes with <c>System.Diagnostics.Switch</c>; where both namespaces are imported, alias it:
/// <c>using Switch = EioSharp.Switch;</c>.</para>
/// </remarks>
public sealed class Switch
{
    private readonly Domain _domain;
    private readonly CancelContext _cancel;
    private List<Exception>? _failures;
    private int _fibers;
    private int _daemons;
    private bool _stoppingDaemons;
    private bool _finished;
    private Waiter? _idle;
    private ReleaseHook? _hooks; // most recent first
    private object? _hookLock; // guards _hooks, _hooksClosed and each hook's links: hooks may be added/removed from any domain
    private bool _hooksClosed; // the release phase has taken the last hook: a hook added now runs at once (S7)
    private long _traceId;

    // Links in the domain's list of live switches and this switch's list of live fibers (for dumps).
    internal Switch? PrevLive;
    internal Switch? NextLive;
    internal FiberInfo? LiveFibers;

    // LiveFibers is singly linked (issue 20: one link per fiber): how many more finished fibers may stay linked before the
    // list is swept (see RemoveLive). One int: it fits the switch's padding, so a switch is no larger for it.
    private int _sweepCredit;

    /// <summary>The fiber that runs the switch's body (for dumps).</summary>
    internal FiberInfo? BodyFiber;

    /// <summary>A process-unique id for traces and dumps, given on first use.</summary>
    internal long TraceId => _traceId != 0 ? _traceId : (_traceId = EioTrace.NewId());

    private Switch(Domain domain, CancelContext cancel, string? name, Switch? parent)
    {
        _domain = domain;
        _cancel = cancel;
        Name = name;
        Parent = parent;
    }

    /// <summary>The name given to <see cref="RunAsync(Func{Switch, Task}, string?)"/>, for traces and dumps.</summary>
    public string? Name { get; }

    /// <summary>The switch that owned the fiber that created this one, if any.</summary>
    public Switch? Parent { get; }

    /// <summary>The names of this switch and its ancestors, outermost first, separated by <c>/</c>.</summary>
    public string Path => Parent is null ? (Name ?? "switch") : Parent.Path + "/" + (Name ?? "switch");

    /// <summary>The switch's cancel context; cancelled when the switch fails or its parent is cancelled.</summary>
    public CancelContext CancelContext => _cancel;

    /// <summary>A token that fires when the switch is cancelled, for ordinary .NET APIs.</summary>
    /// <exception cref="InvalidOperationException">Read from a domain other than the switch's (S17).</exception>
    public CancellationToken CancellationToken => _cancel.Token;

    /// <summary>True once the switch has finished (its fibers joined and its hooks run).</summary>
    public bool IsFinished => _finished;

    /// <summary>The number of fibers currently running in the switch (daemons included).</summary>
    public int FiberCount => _fibers + _daemons;

    internal Domain Domain => _domain;

    /// <summary>Runs <paramref name="body"/> with a new switch and waits for everything attached to it.</summary>
    /// <param name="body">The code to run; receives the switch.</param>
    /// <param name="name">A name for traces (optional).</param>
    /// <returns>A task that completes after the body, every fiber forked on the switch and every release hook finished.</returns>
    /// <exception cref="CancelledException">The caller is already cancelled (the body is not run), or the switch was cancelled
    /// (by its parent) and no other error occurred.</exception>
    /// <exception cref="MultipleException">Several fibers failed.</exception>
    /// <exception cref="Exception">The single failure of the body or a fiber, rethrown as itself with its stack trace.</exception>
    /// <remarks>Eio: <c>Switch.run</c>. <b>Scheduling</b>: the body starts at once, on the calling fiber.</remarks>
    public static Task RunAsync(Func<Switch, Task> body, string? name = null) =>
        RunCoreAsync<bool>(async sw => { await body(sw); return true; }, name, isProtected: false);

    /// <summary>Runs <paramref name="body"/> with a new switch, waits for everything attached to it, and returns the body's value.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The code to run.</param>
    /// <param name="name">A name for traces (optional).</param>
    /// <returns>The body's value; discarded if a fiber failed (S5).</returns>
    /// <exception cref="CancelledException">The switch was cancelled and no other error occurred.</exception>
    /// <exception cref="MultipleException">Several fibers failed.</exception>
    /// <remarks>Eio: <c>Switch.run</c>.</remarks>
    public static Task<T> RunAsync<T>(Func<Switch, Task<T>> body, string? name = null) =>
        RunCoreAsync(body, name, isProtected: false);

    /// <summary>Like <see cref="RunAsync(Func{Switch, Task}, string?)"/>, but the switch ignores the caller's cancellation (S15).</summary>
    /// <param name="body">The code to run.</param>
    /// <param name="name">A name for traces (optional).</param>
    /// <returns>A task that completes when the switch has finished.</returns>
    /// <remarks>Eio: <c>Switch.run_protected</c>.</remarks>
    public static Task RunProtectedAsync(Func<Switch, Task> body, string? name = null) =>
        RunCoreAsync<bool>(async sw => { await body(sw); return true; }, name, isProtected: true);

    /// <summary>Like <see cref="RunAsync{T}(Func{Switch, Task{T}}, string?)"/>, but the switch ignores the caller's cancellation.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The code to run.</param>
    /// <param name="name">A name for traces (optional).</param>
    /// <returns>The body's value.</returns>
    /// <remarks>Eio: <c>Switch.run_protected</c>.</remarks>
    public static Task<T> RunProtectedAsync<T>(Func<Switch, Task<T>> body, string? name = null) =>
        RunCoreAsync(body, name, isProtected: true);

    private static async Task<T> RunCoreAsync<T>(Func<Switch, Task<T>> body, string? name, bool isProtected)
    {
        var frame = FiberFrame.Require();
        if (!isProtected)
        {
            // S13: operations check cancellation when they start; Eio's Switch.run raises Cancelled without running the body.
            frame.Cancel.ThrowIfCancelled();
        }

        var domain = frame.Fiber.Domain;
        var sw = new Switch(domain, new CancelContext(domain, frame.Cancel, isProtected), name, frame.Switch);
        var inner = new InnerFrame(frame.Fiber, sw._cancel, sw);
        FiberFrame.Enter(inner);
        sw.BodyFiber = frame.Fiber;
        sw.LinkLive();
        if (EioTrace.On)
        {
            EioTrace.SwitchOpened(sw, frame);
        }

        try
        {
            T result = default!;
            try
            {
                result = await body(sw);
            }
            catch (Exception ex)
            {
                sw.Record(ex);
            }

            while (sw._fibers > 0 || sw._daemons > 0)
            {
                if (sw._fibers == 0 && !sw._stoppingDaemons)
                {
                    // S8: only daemons are left; cancel them, and do not report that cancellation.
                    sw._stoppingDaemons = true;
                    sw._cancel.Cancel(new DaemonsStoppedException());
                    continue;
                }

                sw._idle = Waiter.Rent(domain, TraceReason.Join);
                await sw._idle.VoidTask; // not attached to a cancel context: joining cannot be interrupted
                sw._idle = null;
            }

            await sw.RunReleaseHooksAsync();
            sw._finished = true;
            sw._cancel.Detach();
            var error = sw.CombinedFailure();
            sw.UnlinkLive();
            if (EioTrace.On)
            {
                EioTrace.SwitchClosed(sw, frame, error);
            }

            if (error is not null)
            {
                ExceptionDispatchInfo.Throw(error);
            }

            return result;
        }
        finally
        {
            inner.Exit(); // before the task completes: the frame no longer counts anywhere
        }
    }

    private object HookLock => _hookLock ?? Interlocked.CompareExchange(ref _hookLock, new object(), null) ?? _hookLock;

    /// <summary>Takes the most recent hook, or closes the hook list (under the lock) when it is empty.</summary>
    private ReleaseHook? TakeHookOrClose()
    {
        lock (HookLock)
        {
            if (_hooks is { } hook)
            {
                hook.Unlink();
                return hook;
            }

            _hooksClosed = true;
            return null;
        }
    }

    private async Task RunReleaseHooksAsync()
    {
        if (Volatile.Read(ref _hooks) is null && TakeHookOrClose() is null)
        {
            return;
        }

        await Cancel.ProtectAsync(async () =>
        {
            while (TakeHookOrClose() is { } hook)
            {
                try
                {
                    await hook.InvokeAsync();
                }
                catch (Exception ex)
                {
                    Record(ex);
                }
            }
        });
    }

    /// <summary>Throws if the switch is cancelled or finished.</summary>
    /// <exception cref="CancelledException">The switch is cancelled.</exception>
    /// <exception cref="InvalidOperationException">The switch has finished, or the caller is on another domain.</exception>
    /// <remarks>Eio: <c>Switch.check</c>.</remarks>
    public void Check()
    {
        CheckDomain();
        if (_finished)
        {
            throw new InvalidOperationException("The switch has finished.");
        }

        _cancel.ThrowIfCancelled();
    }

    /// <summary>Like <see cref="Check"/>, but returns the exception instead of throwing it.</summary>
    /// <returns>Null while the switch is on; the <see cref="CancelledException"/> when it is cancelled; an
    /// <see cref="InvalidOperationException"/> when it has finished.</returns>
    /// <exception cref="InvalidOperationException">The caller is on another domain.</exception>
    /// <remarks>Eio: <c>Switch.get_error</c>.</remarks>
    public Exception? GetError()
    {
        CheckDomain();
        if (_finished)
        {
            return new InvalidOperationException("The switch has finished.");
        }

        return _cancel.IsCancelled ? _cancel.MakeCancelled() : null;
    }

    /// <summary>Fails the switch: records <paramref name="error"/> and cancels the switch (if this is its first failure).</summary>
    /// <param name="error">The failure; <see cref="RunAsync(Func{Switch, Task}, string?)"/> later throws it as itself, or inside a
    /// <see cref="MultipleException"/> with the switch's other failures (the same exception object is recorded once; S3).</param>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The switch has finished, or the caller is not on the switch's domain (S17);
    /// the switch is then left as it was.</exception>
    /// <remarks>Eio: <c>Switch.fail</c>, which is also bound to the switch's domain (it raises <c>Invalid_argument</c>
    /// "Switch accessed from wrong domain!"). Returns at once; the siblings are cancelled at their next suspension point (S2).
    /// To fail a switch from another domain, hand the exception to a fiber on the switch's domain (a <see cref="Promise{T}"/>
    /// or a stream, both safe across domains) and call <c>Fail</c> there.</remarks>
    public void Fail(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        CheckDomain();
        if (_finished)
        {
            throw new InvalidOperationException("The switch has finished.", error);
        }

        Record(error);
    }

    private void Record(Exception error)
    {
        _failures ??= new List<Exception>(1);
        foreach (var e in _failures)
        {
            if (ReferenceEquals(e, error))
            {
                return;
            }
        }

        _failures.Add(error);
        if (_failures.Count == 1)
        {
            _cancel.Cancel(error);
        }
    }

    private Exception? CombinedFailure() => _failures is null ? null : MultipleException.Combine(_failures);

    /// <summary>Registers <paramref name="release"/> to run when the switch finishes.</summary>
    /// <param name="release">The clean-up action.</param>
    /// <returns>A hook that can be removed when the resource is closed early.</returns>
    /// <exception cref="InvalidOperationException">The switch has finished (the action has then already been run; if it threw, that is the inner exception).</exception>
    /// <remarks>Eio: <c>Switch.on_release_cancellable</c>. Safe from any domain (an extension: Eio's raises <c>Invalid_argument</c> from another domain): a hook registered while the switch
    /// releases is either run by the release phase or, once that has taken the last hook, run at once with the exception
    /// above. The hook runs on the switch's domain in the release phase, or on the caller's thread in that late case.</remarks>
    public ReleaseHook OnRelease(Action release)
    {
        ArgumentNullException.ThrowIfNull(release);
        return AddHook(new ReleaseHook(this, release, null));
    }

    /// <summary>Registers an asynchronous <paramref name="release"/> to run when the switch finishes.</summary>
    /// <param name="release">The clean-up function; it runs protected from cancellation.</param>
    /// <returns>A hook that can be removed when the resource is closed early.</returns>
    /// <exception cref="InvalidOperationException">The switch has finished (the function has then already been started).</exception>
    /// <remarks>Eio: <c>Switch.on_release_cancellable</c>. Safe from any domain (an extension: Eio's raises <c>Invalid_argument</c> from another domain): a hook registered while the switch
    /// releases is either run by the release phase or, once that has taken the last hook, run at once with the exception
    /// above. The hook runs on the switch's domain in the release phase, or on the caller's thread in that late case.</remarks>
    public ReleaseHook OnRelease(Func<ValueTask> release)
    {
        ArgumentNullException.ThrowIfNull(release);
        return AddHook(new ReleaseHook(this, null, release));
    }

    /// <summary>Makes the switch own <paramref name="resource"/>: it is disposed when the switch finishes.</summary>
    /// <param name="resource">The resource.</param>
    /// <returns>A hook to remove if the resource is disposed early.</returns>
    /// <exception cref="InvalidOperationException">The switch has finished (the resource has then been disposed).</exception>
    public ReleaseHook Attach(IDisposable resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return OnRelease(resource.Dispose);
    }

    /// <summary>Makes the switch own <paramref name="resource"/>: it is disposed asynchronously when the switch finishes.</summary>
    /// <param name="resource">The resource.</param>
    /// <returns>A hook to remove if the resource is disposed early.</returns>
    /// <exception cref="InvalidOperationException">The switch has finished (disposal has then been started).</exception>
    public ReleaseHook Attach(IAsyncDisposable resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return OnRelease(resource.DisposeAsync);
    }

    /// <summary>Makes the switch own a resource that is both synchronously and asynchronously disposable (asynchronous disposal is used).</summary>
    /// <typeparam name="T">The resource type.</typeparam>
    /// <param name="resource">The resource.</param>
    /// <returns>A hook to remove if the resource is disposed early.</returns>
    public ReleaseHook Attach<T>(T resource)
        where T : IDisposable, IAsyncDisposable
    {
        ArgumentNullException.ThrowIfNull(resource);
        return OnRelease(resource.DisposeAsync);
    }

    private ReleaseHook AddHook(ReleaseHook hook)
    {
        bool closed;
        lock (HookLock)
        {
            closed = _hooksClosed;
            if (!closed)
            {
                hook.Next = _hooks;
                if (_hooks is not null)
                {
                    _hooks.Prev = hook;
                }

                _hooks = hook;
            }
        }

        if (closed)
        {
            // S7: registering on a finished switch runs the hook at once and throws InvalidOperationException
            // (with the hook's own failure, if any, as the inner exception).
            Exception? hookFailure = null;
            try
            {
                var t = hook.InvokeAsync();
                if (t.IsCompleted)
                {
                    t.GetAwaiter().GetResult();
                }
            }
            catch (Exception ex)
            {
                hookFailure = ex;
            }

            throw new InvalidOperationException("The switch has finished; the release hook was run at once.", hookFailure);
        }

        return hook;
    }

    /// <summary>Removes <paramref name="hook"/> if it is still registered; any domain.</summary>
    internal bool RemoveHook(ReleaseHook hook)
    {
        lock (HookLock)
        {
            if (hook.IsRemoved)
            {
                return false;
            }

            hook.Unlink();
            return true;
        }
    }

    internal void UnlinkHook(ReleaseHook hook)
    {
        if (hook.Prev is null)
        {
            if (ReferenceEquals(_hooks, hook))
            {
                _hooks = hook.Next;
            }
        }
        else
        {
            hook.Prev.Next = hook.Next;
        }

        if (hook.Next is not null)
        {
            hook.Next.Prev = hook.Prev;
        }

        hook.Prev = hook.Next = null;
    }

    internal void CheckDomain() => _domain.CheckCurrent("This switch");

    /// <summary>Adds a fiber to the switch; false if the switch is finished or cancelled (S6).</summary>
    /// <param name="daemon">True for a daemon fiber (S8).</param>
    /// <param name="evenIfCancelled">Accept the fiber on a cancelled (but unfinished) switch; it then starts cancelled.
    /// Used by the race combinators, whose later functions must still run (S11).</param>
    internal bool TryAddFiber(bool daemon, bool evenIfCancelled = false)
    {
        CheckDomain();
        if (_finished || (_cancel.IsCancelled && !evenIfCancelled))
        {
            return false;
        }

        if (daemon)
        {
            _daemons++;
        }
        else
        {
            _fibers++;
        }

        return true;
    }

    private void LinkLive()
    {
        NextLive = _domain.LiveSwitches;
        if (NextLive is not null)
        {
            NextLive.PrevLive = this;
        }

        _domain.LiveSwitches = this;
    }

    private void UnlinkLive()
    {
        if (PrevLive is null)
        {
            if (ReferenceEquals(_domain.LiveSwitches, this))
            {
                _domain.LiveSwitches = NextLive;
            }
        }
        else
        {
            PrevLive.NextLive = NextLive;
        }

        if (NextLive is not null)
        {
            NextLive.PrevLive = PrevLive;
        }

        PrevLive = NextLive = null;
    }

    /// <summary>Links <paramref name="f"/>, a new fiber of this switch, at the head of <see cref="LiveFibers"/> (newest first).</summary>
    internal void AddLive(FiberInfo f)
    {
        f.NextLive = LiveFibers;
        LiveFibers = f;
    }

    /// <summary>Marks <paramref name="f"/> (linked by <see cref="AddLive"/>, removed once) finished and unlinks it: at once
    /// when it is the newest linked fiber (a fiber that ends before any later fork, the usual case), together with any
    /// finished fibers behind it; otherwise later, by a sweep of the list once more fibers have finished behind the head than
    /// were live at the previous sweep (at least 8): amortised O(1) per fiber, and the finished fibers still linked are never
    /// more than the fibers live at the previous sweep, plus 9 (the list is singly linked, issue 20). Dumps skip finished
    /// fibers.</summary>
    internal void RemoveLive(FiberInfo f)
    {
        f.Finished = true;
        if (ReferenceEquals(LiveFibers, f))
        {
            var next = f.NextLive;
            f.NextLive = null;
            while (next is { Finished: true } done)
            {
                next = done.NextLive;
                done.NextLive = null;
            }

            LiveFibers = next;
            return;
        }

        if (--_sweepCredit < 0)
        {
            SweepLive();
        }
    }

    /// <summary>Unlinks every finished fiber from <see cref="LiveFibers"/>; the next sweep comes after as many deferred
    /// removals as fibers remain (at least 8).</summary>
    private void SweepLive()
    {
        int live = 0;
        FiberInfo? previous = null;
        var f = LiveFibers;
        while (f is not null)
        {
            var next = f.NextLive;
            if (f.Finished)
            {
                if (previous is null)
                {
                    LiveFibers = next;
                }
                else
                {
                    previous.NextLive = next;
                }

                f.NextLive = null;
            }
            else
            {
                previous = f;
                live++;
            }

            f = next;
        }

        _sweepCredit = Math.Max(8, live);
    }

    internal Exception ForkRefusal() =>
        _cancel.IsCancelled ? _cancel.MakeCancelled() : new InvalidOperationException("The switch has finished.");

    internal void FiberFailed(Exception error, bool daemon)
    {
        if (daemon && _stoppingDaemons && error is CancelledException)
        {
            return; // S8: the cancellation that stops daemons is not an error.
        }

        Record(error);
    }

    internal void FiberExited(bool daemon)
    {
        if (daemon)
        {
            _daemons--;
        }
        else
        {
            _fibers--;
        }

        if (_idle is not null && _fibers == 0)
        {
            _idle.TryComplete(true);
        }
    }

    /// <summary>A live dump of this switch: its cancel context, its fibers (state, what each is suspended on and for how
    /// long) and the switches opened inside it, as indented text.</summary>
    /// <returns>The dump. See <see cref="EioDiagnostics"/> for what is recorded and when.</returns>
    /// <remarks>[ext] Not in Eio. Callable from any thread (best effort while the domain runs).</remarks>
    public string Dump() => EioDiagnostics.DumpSwitch(this);

    /// <inheritdoc/>
    public override string ToString() => $"Switch {Path}";

    private sealed class DaemonsStoppedException() : Exception("All non-daemon fibers finished; stopping daemon fibers.");
}

/// <summary>A release hook registered on a switch.</summary>
/// <remarks>Eio: <c>Switch.hook</c>.</remarks>
public sealed class ReleaseHook
{
    private readonly Switch _switch;
    private readonly Action? _action;
    private readonly Func<ValueTask>? _asyncAction;
    private bool _removed;

    internal ReleaseHook? Prev;
    internal ReleaseHook? Next;

    /// <summary>A hook registered nowhere: removing it does nothing (a placeholder before a resource has a real hook).</summary>
    /// <remarks>Eio: <c>Switch.null_hook</c>.</remarks>
    public static ReleaseHook Null { get; } = new(null!, null, null);

    internal ReleaseHook(Switch sw, Action? action, Func<ValueTask>? asyncAction)
    {
        _switch = sw;
        _action = action;
        _asyncAction = asyncAction;
    }

    /// <summary>Removes the hook so it will not run (for a resource closed early). Idempotent.</summary>
    /// <returns>True if the hook was registered and is now removed; false if it had already run or been removed.</returns>
    /// <remarks>Eio: <c>Switch.remove_hook</c>. Safe from any domain (an extension: Eio's raises <c>Invalid_argument</c> from another domain): a removal that races with the switch's
    /// release phase either removes the hook before it is taken (it never runs) or returns false (it runs or has run).</remarks>
    public bool Remove()
    {
        if (ReferenceEquals(this, Null))
        {
            return false;
        }

        return _switch.RemoveHook(this);
    }

    internal bool IsRemoved => _removed;

    /// <summary>Marks the hook removed and takes it out of the list; the caller holds the switch's hook lock.</summary>
    internal void Unlink()
    {
        _removed = true;
        _switch.UnlinkHook(this);
    }

    internal ValueTask InvokeAsync()
    {
        if (_action is not null)
        {
            _action();
            return ValueTask.CompletedTask;
        }

        return _asyncAction!();
    }
}

/// <summary>Several fibers failed: the failures, in the order they happened.</summary>
/// <remarks>
/// Eio: <c>Eio.Exn.Multiple</c>. The combining rule (S3): the same exception object reported twice counts once;
/// <see cref="CancelledException"/> is dropped when any other exception exists (the root cause wins over the
/// cancellations it caused); a single remaining failure is rethrown as itself; several become one <see cref="MultipleException"/>.
/// </remarks>
public sealed class MultipleException : AggregateException
{
    /// <summary>Creates the exception from the failures, in order.</summary>
    /// <param name="errors">The failures.</param>
    public MultipleException(IEnumerable<Exception> errors)
        : base("Multiple exceptions", errors)
    {
    }

    /// <summary>Applies the combining rule to failures listed in the order they happened.</summary>
    /// <param name="errors">The failures (at least one).</param>
    /// <returns>The exception to throw.</returns>
    /// <exception cref="ArgumentException"><paramref name="errors"/> is empty.</exception>
    public static Exception Combine(IReadOnlyList<Exception> errors)
    {
        if (errors.Count == 0)
        {
            throw new ArgumentException("No failures to combine.", nameof(errors));
        }

        var distinct = new List<Exception>(errors.Count);
        foreach (var e in errors)
        {
            if (!distinct.Exists(d => ReferenceEquals(d, e)))
            {
                distinct.Add(e);
            }
        }

        var real = distinct.FindAll(e => e is not CancelledException);
        if (real.Count == 0)
        {
            return distinct[0];
        }

        return real.Count == 1 ? real[0] : new MultipleException(real);
    }
}
