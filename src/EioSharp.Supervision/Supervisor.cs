using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Supervision;

/// <summary>An OTP-style supervisor: starts children in order, restarts them by their restart type and its strategy, and stops them
/// in reverse order, abandoning (and reporting) a child that ignores cancellation for longer than its shutdown timeout.</summary>
/// <remarks>
/// Erlang: <c>supervisor</c>. Run one with <see cref="RunAsync(SupervisorSpec, MonoClock, Action{Supervisor}?)"/> (the calling fiber becomes
/// the supervisor), <see cref="StartAsync(Switch, SupervisorSpec, MonoClock)"/> (a new fiber of a switch), or as the child of another
/// supervisor with <see cref="ChildSpec.ForSupervisor(SupervisorSpec, MonoClock)"/>.
/// <para><b>How children run</b>: each run of a child gets its own switch, made with <see cref="Switch.RunProtectedAsync(Func{Switch, Task}, string?)"/>
/// (so the supervisor's cancellation does not reach it on its own), and started from the supervisor's fiber <i>without</i> being a fiber
/// of the supervisor's switch: a switch waits for the fibers forked on it, not for sub-switches it does not run. The supervisor waits for
/// the child explicitly, through the child's exit promise. To stop a child it cancels the child's switch and waits at most the child's
/// <see cref="ChildSpec.ShutdownTimeout"/> for that promise; after that it stops waiting, reports the child as
/// <see cref="SupervisorReportKind.Abandoned"/>, lists it in <see cref="AbandonedChildren"/>, and carries on. .NET cannot kill a fiber, so
/// an abandoned child keeps running until it ends by itself: it is the one thing that escapes structured concurrency here, and it is reported.
/// Everything else a child forks or attaches to its switch is still cleaned up when the child's switch finishes.</para>
/// <para><b>Scheduling</b>: one fiber (the supervisor's) does all the work: starting, restarting, stopping, and serving requests such as
/// <see cref="StartChildAsync(ChildSpec)"/>, one at a time, in arrival order. A child runs at once, up to its first suspension, when started.</para>
/// <para><b>Errors</b>: child failures never fail the supervisor directly; they cause restarts. The supervisor fails (throws from
/// <see cref="RunAsync(SupervisorSpec, MonoClock, Action{Supervisor}?)"/>, failing its switch) with <see cref="SupervisorStartException"/>
/// when a child fails to start initially, and with <see cref="RestartIntensityExceededException"/> after too many restarts; in both cases
/// after stopping its children in reverse start order.</para>
/// <para><b>Thread safety</b>: the request methods (<see cref="StartChildAsync(ChildSpec)"/>, <see cref="CrashChildAsync(string, Exception?)"/>, ...)
/// may be called from fibers on any domain; <see cref="RequestStop"/> from any thread. The children run on the supervisor's domain.</para>
/// </remarks>
public sealed class Supervisor
{
    private readonly SupervisorSpec _spec;
    private readonly MonoClock _clock;
    private readonly AsyncQueue<Request> _requests = new(AsyncQueue<Request>.Unbounded);
    private readonly List<ChildState> _children = [];
    private readonly Queue<TimeSpan> _restarts = new();
    private readonly List<string> _abandoned = [];
    private readonly Promise<bool> _done;
    private readonly Resolver<bool> _doneResolver;
    private int _dynamicCount;
    private bool _ran;

    private Supervisor(SupervisorSpec spec, MonoClock clock)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(clock);
        _spec = spec;
        _clock = clock;
        (_done, _doneResolver) = EioSharp.Promise.Create<bool>();
    }

    /// <summary>The supervisor's name (from its specification).</summary>
    public string Name => _spec.Name;

    /// <summary>The restart strategy.</summary>
    public RestartStrategy Strategy => _spec.Strategy;

    /// <summary>True once the supervisor has finished (its children stopped or abandoned).</summary>
    public bool IsFinished => _done.IsResolved;

    /// <summary>The ids of the children abandoned so far because they outlived their shutdown timeout, in the order it happened.</summary>
    /// <remarks>A child restarted after being abandoned is listed once per abandoned run. Safe to read from any thread.</remarks>
    public IReadOnlyList<string> AbandonedChildren
    {
        get
        {
            lock (_abandoned)
            {
                return _abandoned.ToArray();
            }
        }
    }

    /// <summary>Runs a supervisor on the calling fiber until it is stopped, cancelled, or fails.</summary>
    /// <param name="spec">The supervisor's specification.</param>
    /// <param name="clock">The clock for the restart-intensity window and the shutdown timeouts (pass <c>env.MonoClock</c>).</param>
    /// <param name="onReady">Called once every initial child is ready, with the supervisor (for requests and <see cref="StopAsync"/>).</param>
    /// <returns>A task that completes normally after <see cref="RequestStop"/> (or <see cref="StopAsync"/>), once the children are stopped.</returns>
    /// <exception cref="SupervisorStartException">A child failed to start; the children started before it were stopped.</exception>
    /// <exception cref="RestartIntensityExceededException">Too many restarts within the period; the children were stopped.</exception>
    /// <exception cref="CancelledException">The calling fiber was cancelled; the children were stopped first (each within its shutdown timeout).</exception>
    /// <exception cref="ArgumentNullException"><paramref name="spec"/> or <paramref name="clock"/> is null.</exception>
    /// <remarks>Erlang: <c>supervisor:start_link</c> plus the supervisor's life. The supervisor's own switch is named after it.</remarks>
    public static Task RunAsync(SupervisorSpec spec, MonoClock clock, Action<Supervisor>? onReady = null) =>
        new Supervisor(spec, clock).RunCoreAsync(onReady);

    /// <summary>Starts a supervisor in a new fiber of <paramref name="sw"/> and returns it once all its initial children are ready.</summary>
    /// <param name="sw">The switch that owns the supervisor: cancelling it stops the supervisor, and a supervisor failure after the start
    /// (<see cref="RestartIntensityExceededException"/>) fails it.</param>
    /// <param name="spec">The supervisor's specification.</param>
    /// <param name="clock">The clock for intensity and shutdown timeouts.</param>
    /// <returns>The running supervisor.</returns>
    /// <exception cref="SupervisorStartException">A child failed to start (reported to the caller only; <paramref name="sw"/> is not failed).</exception>
    /// <exception cref="CancelledException"><paramref name="sw"/> or the caller was cancelled before the start finished.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished or belongs to another domain.</exception>
    /// <remarks>Erlang: <c>supervisor:start_link</c>. <b>Lifetime</b>: the supervisor is an ordinary (non-daemon) fiber of
    /// <paramref name="sw"/>, so the switch stays open until the supervisor is stopped (<see cref="StopAsync"/>) or the switch is cancelled.</remarks>
    public static async Task<Supervisor> StartAsync(Switch sw, SupervisorSpec spec, MonoClock clock)
    {
        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var sup = new Supervisor(spec, clock);
        var (ready, resolver) = EioSharp.Promise.Create<bool>();
        Fiber.Fork(
            sw,
            async () =>
            {
                try
                {
                    await sup.RunCoreAsync(_ => resolver.TryResolve(true));
                    resolver.TryResolveError(new SupervisorNotRunningException(sup.Name));
                }
                catch (Exception ex) when (!ready.IsResolved)
                {
                    // A start failure goes to the starter (OTP returns {error, Reason}), not to the switch.
                    resolver.TryResolveError(ex);
                }
            },
            spec.Name);
        await ready.AwaitAsync();
        return sup;
    }

    /// <summary>Adds a child to a static supervisor and starts it (last in start order).</summary>
    /// <param name="spec">The child; its id must not be in use.</param>
    /// <returns>A task that completes once the child is ready.</returns>
    /// <exception cref="ChildStartException">The child failed to start; it is not kept.</exception>
    /// <exception cref="ArgumentException">A child with that id exists.</exception>
    /// <exception cref="InvalidOperationException">This is a <see cref="RestartStrategy.SimpleOneForOne"/> supervisor.</exception>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    /// <exception cref="CancelledException">The caller was cancelled while waiting (the child may still be started).</exception>
    /// <remarks>Erlang: <c>supervisor:start_child/2</c> with a child specification.</remarks>
    public async Task StartChildAsync(ChildSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        await SendAsync<string>(r => new StartChildRequest(spec, null, null, r));
    }

    /// <summary>Starts a new child of a dynamic supervisor from its template, with <paramref name="argument"/>.</summary>
    /// <typeparam name="TArg">The template's argument type.</typeparam>
    /// <param name="argument">Passed to the template's start function (at every restart of this child too).</param>
    /// <returns>The new child's id (<c>IdPrefix-n</c>), once it is ready.</returns>
    /// <exception cref="ChildStartException">The child failed to start; it is not kept.</exception>
    /// <exception cref="InvalidOperationException">This is not a <see cref="RestartStrategy.SimpleOneForOne"/> supervisor, or its template takes another argument type.</exception>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    /// <exception cref="CancelledException">The caller was cancelled while waiting.</exception>
    /// <remarks>Erlang: <c>supervisor:start_child/2</c> with extra arguments, on a <c>simple_one_for_one</c> supervisor.</remarks>
    public Task<string> StartChildAsync<TArg>(TArg argument) =>
        SendAsync<string>(r => new StartChildRequest(null, argument, typeof(TArg), r));

    /// <summary>Stops a child (as at shutdown: cancel, wait its shutdown timeout, else abandon) and removes it from the supervisor.</summary>
    /// <param name="id">The child's id.</param>
    /// <returns>False if there is no such child.</returns>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    /// <exception cref="CancelledException">The caller was cancelled while waiting (the stop still completes).</exception>
    /// <remarks>Erlang: <c>supervisor:terminate_child</c> followed by <c>delete_child</c>.</remarks>
    public Task<bool> TerminateChildAsync(string id) => SendAsync<bool>(r => new TerminateRequest(id, r));

    /// <summary>Crashes a running child: fails its switch with <paramref name="error"/>, as if the child had thrown it. For fault-injection tests and operators.</summary>
    /// <param name="id">The child's id.</param>
    /// <param name="error">The failure (default: an <see cref="InvalidOperationException"/> naming the child).</param>
    /// <returns>True if the child was running and has been failed; its restart then follows the usual rules (it counts towards the intensity).</returns>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    /// <remarks>Erlang: <c>exit(Pid, Reason)</c>. The child's fibers get <see cref="CancelledException"/> at their next suspension point;
    /// a child that ignores cancellation keeps running, and its exit is seen when it ends.</remarks>
    public Task<bool> CrashChildAsync(string id, Exception? error = null) =>
        SendAsync<bool>(r => new CrashRequest(id, error ?? new InvalidOperationException($"Child '{id}' crashed on request."), r));

    /// <summary>Monitors the current run of a child: the monitor reports how that run ends (a restart is a new run, not watched).</summary>
    /// <param name="id">The child's id.</param>
    /// <returns>The monitor, or null if no such child is running.</returns>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    /// <remarks>Erlang: <c>erlang:monitor(process, Pid)</c> on a child's pid.</remarks>
    public Task<ExitMonitor?> MonitorChildAsync(string id) => SendAsync<ExitMonitor?>(r => new MonitorRequest(id, r));

    /// <summary>Describes the children, in start order.</summary>
    /// <returns>One entry per child the supervisor keeps (temporary children are dropped when they end).</returns>
    /// <exception cref="SupervisorNotRunningException">The supervisor has finished or is stopping.</exception>
    /// <remarks>Erlang: <c>supervisor:which_children</c>.</remarks>
    public Task<IReadOnlyList<ChildInfo>> WhichChildrenAsync() => SendAsync<IReadOnlyList<ChildInfo>>(r => new WhichChildrenRequest(r));

    /// <summary>Asks the supervisor to stop: it stops its children in reverse start order and its run returns normally.</summary>
    /// <remarks>Erlang: <c>supervisor:stop</c> without waiting. Safe from any thread, fibers or not; a no-op once finished.
    /// Requests already queued are served first.</remarks>
    public void RequestStop()
    {
        try
        {
            _requests.TryAdd(new StopRequest());
        }
        catch (StreamClosedException)
        {
            // Already finished.
        }
    }

    /// <summary>Stops the supervisor and waits until it has finished.</summary>
    /// <returns>A task that completes once the children are stopped (or abandoned) and the supervisor has finished.</returns>
    /// <exception cref="CancelledException">The caller was cancelled while waiting (the stop goes on).</exception>
    /// <remarks>Erlang: <c>supervisor:stop</c>. Do not call it from one of this supervisor's children: the child is itself stopped while waiting.</remarks>
    public async Task StopAsync()
    {
        RequestStop();
        await _done.AwaitAsync();
    }

    /// <summary>Waits until the supervisor has finished, however it ends.</summary>
    /// <returns>A task that completes when the supervisor has finished (its own failure, if any, goes to whoever runs it).</returns>
    /// <exception cref="CancelledException">The caller was cancelled while waiting.</exception>
    public async Task AwaitFinishedAsync() => await _done.AwaitAsync();

    /// <inheritdoc/>
    public override string ToString() => $"Supervisor {Name} ({Strategy})";

    private async Task<T> SendAsync<T>(Func<Resolver<T>, Request> make)
    {
        var (p, r) = EioSharp.Promise.Create<T>();
        try
        {
            _requests.TryAdd(make(r));
        }
        catch (StreamClosedException)
        {
            throw new SupervisorNotRunningException(Name);
        }

        return await p.AwaitAsync();
    }

    private async Task RunCoreAsync(Action<Supervisor>? onReady)
    {
        if (_ran)
        {
            throw new InvalidOperationException("A supervisor runs once.");
        }

        _ran = true;
        try
        {
            await Switch.RunAsync(
                async sw =>
                {
                    try
                    {
                        foreach (var spec in _spec.Children)
                        {
                            var c = new ChildState(spec);
                            _children.Add(c);
                            if (await StartRunAsync(c) is { } failure)
                            {
                                throw new SupervisorStartException(Name, spec.Id, failure);
                            }
                        }

                        onReady?.Invoke(this);
                        await LoopAsync();
                    }
                    finally
                    {
                        await Cancel.ProtectAsync(StopAllAsync);
                    }
                },
                Name);
        }
        finally
        {
            _requests.Close();
            while (_requests.TryTake(out var req))
            {
                req.Refuse(new SupervisorNotRunningException(Name));
            }

            _doneResolver.TryResolve(true);
        }
    }

    private async Task LoopAsync()
    {
        while (true)
        {
            var req = await _requests.TakeAsync();
            switch (req)
            {
                case StopRequest:
                    return;
                case ChildExit exit:
                    await OnChildExitAsync(exit.Run);
                    break;
                case StartChildRequest start:
                    await OnStartChildAsync(start);
                    break;
                case TerminateRequest term:
                    var t = FindChild(term.Id);
                    if (t is not null)
                    {
                        if (t.Current is { } run)
                        {
                            await Cancel.ProtectAsync(() => StopRunAsync(run));
                        }

                        _children.Remove(t);
                    }

                    term.Reply.TryResolve(t is not null);
                    break;
                case CrashRequest crash:
                    var cr = FindChild(crash.Id)?.Current;
                    bool crashed = cr is not null && !cr.Exit.IsResolved && !cr.Switch!.IsFinished;
                    if (crashed)
                    {
                        cr!.Switch!.Fail(crash.Error);
                    }

                    crash.Reply.TryResolve(crashed);
                    break;
                case MonitorRequest mon:
                    var mr = FindChild(mon.Id)?.Current;
                    mon.Reply.TryResolve(mr is null ? null : new ExitMonitor(mon.Id, mr.Exit));
                    break;
                case WhichChildrenRequest which:
                    which.Reply.TryResolve(_children
                        .Select(c => new ChildInfo(c.Spec.Id, c.Spec.Kind, c.Spec.Restart, c.Current is not null, c.Runs))
                        .ToArray());
                    break;
            }
        }
    }

    private ChildState? FindChild(string id) => _children.Find(c => c.Spec.Id == id);

    private async Task OnStartChildAsync(StartChildRequest req)
    {
        ChildSpec spec;
        if (req.Spec is not null)
        {
            if (_spec.Strategy == RestartStrategy.SimpleOneForOne)
            {
                req.Reply.TryResolveError(new InvalidOperationException($"Supervisor '{Name}' is simple_one_for_one: start children from its template."));
                return;
            }

            if (FindChild(req.Spec.Id) is not null)
            {
                req.Reply.TryResolveError(new ArgumentException($"Supervisor '{Name}' already has a child '{req.Spec.Id}'."));
                return;
            }

            spec = req.Spec;
        }
        else
        {
            if (_spec.Template is not { } template)
            {
                req.Reply.TryResolveError(new InvalidOperationException($"Supervisor '{Name}' has no child template (it is not simple_one_for_one)."));
                return;
            }

            if (req.ArgumentType != template.ArgumentType)
            {
                req.Reply.TryResolveError(new InvalidOperationException(
                    $"Supervisor '{Name}' starts children with a {template.ArgumentType.Name} argument, not {req.ArgumentType!.Name}."));
                return;
            }

            spec = template.Instantiate($"{template.IdPrefix}-{++_dynamicCount}", req.Argument);
        }

        var c = new ChildState(spec);
        _children.Add(c);
        if (await StartRunAsync(c) is { } failure)
        {
            c.Current = null;
            _children.Remove(c);
            req.Reply.TryResolveError(new ChildStartException(spec.Id, failure));
            return;
        }

        req.Reply.TryResolve(spec.Id);
    }

    private async Task OnChildExitAsync(ChildRun run)
    {
        var c = run.Child;
        if (!ReferenceEquals(c.Current, run))
        {
            return; // a run the supervisor stopped (or abandoned) itself; already handled
        }

        c.Current = null;
        run.Exit.TryPeek(out var reason);
        if (run.WasReady)
        {
            Report(SupervisorReportKind.Exited, c.Spec.Id, reason);
        }

        bool restart = c.Spec.Restart switch
        {
            RestartType.Permanent => true,
            RestartType.Transient => reason.IsFailure,
            _ => false,
        };
        if (!restart)
        {
            if (c.Spec.Restart == RestartType.Temporary || _spec.Strategy == RestartStrategy.SimpleOneForOne)
            {
                _children.Remove(c);
            }

            return;
        }

        var now = _clock.Now;
        _restarts.Enqueue(now);
        while (now - _restarts.Peek() >= _spec.Period)
        {
            _restarts.Dequeue();
        }

        if (_restarts.Count > _spec.MaxRestarts)
        {
            Report(SupervisorReportKind.IntensityExceeded, null);
            throw new RestartIntensityExceededException(Name, c.Spec.Id, _spec.MaxRestarts, _spec.Period, reason.IsFailure ? reason.Error : null);
        }

        switch (_spec.Strategy)
        {
            case RestartStrategy.OneForAll:
                await RestartGroupAsync(0);
                break;
            case RestartStrategy.RestForOne:
                await RestartGroupAsync(_children.IndexOf(c));
                break;
            default:
                Report(SupervisorReportKind.Restarting, c.Spec.Id);
                await StartRunAsync(c); // a failed restart ends the run; its exit comes back here and counts as another restart
                break;
        }
    }

    /// <summary>Stops the running children from <paramref name="from"/> on (in reverse order) and starts them all again in order.</summary>
    private async Task RestartGroupAsync(int from)
    {
        var group = _children.GetRange(from, _children.Count - from);
        await Cancel.ProtectAsync(async () =>
        {
            for (int i = group.Count - 1; i >= 0; i--)
            {
                if (group[i].Current is { } run)
                {
                    await StopRunAsync(run);
                }
            }
        });
        foreach (var c in group)
        {
            if (c.Spec.Restart == RestartType.Temporary)
            {
                _children.Remove(c); // stopped as part of the group, never restarted
                continue;
            }

            Report(SupervisorReportKind.Restarting, c.Spec.Id);
            if (await StartRunAsync(c) is not null)
            {
                break; // the failed run's exit comes back as a request and restarts the group again
            }
        }
    }

    /// <summary>Starts a new run of <paramref name="c"/> and waits until it is ready; returns the start failure, or null.</summary>
    private async Task<Exception?> StartRunAsync(ChildState c)
    {
        var run = new ChildRun(c, ++c.Runs);
        c.Current = run;
        _ = HostAsync(run); // deliberately not awaited: see the class remarks
        var failure = await run.Started.AwaitAsync();
        if (failure is null)
        {
            run.WasReady = true;
            Report(SupervisorReportKind.Started, c.Spec.Id);
        }
        else
        {
            Report(SupervisorReportKind.StartFailed, c.Spec.Id, ExitReason.FromException(failure));
        }

        return failure;
    }

    /// <summary>Runs one run of a child in its own protected switch, outside the supervisor's switch, and reports its exit.</summary>
    private async Task HostAsync(ChildRun run)
    {
        var spec = run.Child.Spec;
        ExitReason reason;
        try
        {
            await Switch.RunProtectedAsync(
                sw =>
                {
                    run.Switch = sw;
                    var ctx = new ChildContext(Name, spec.Id, run.Number, sw, run.StartedResolver);
                    Fiber.Fork(
                        sw,
                        async () =>
                        {
                            await spec.Start(ctx);
                            ctx.Ready();
                        },
                        spec.Id);
                    return Task.CompletedTask;
                },
                spec.Id);
            reason = ExitReason.Normal;
        }
        catch (Exception ex)
        {
            reason = ExitReason.FromException(ex);
        }

        run.StartedResolver.TryResolve(reason.Error);
        run.ExitResolver.TryResolve(reason);
        try
        {
            _requests.TryAdd(new ChildExit(run));
        }
        catch (StreamClosedException)
        {
            // The supervisor has finished (this run was abandoned): nobody to tell.
        }
    }

    private async Task StopAllAsync()
    {
        for (int i = _children.Count - 1; i >= 0; i--)
        {
            if (_children[i].Current is { } run)
            {
                await StopRunAsync(run);
            }
        }
    }

    /// <summary>Cancels a run and waits its shutdown timeout; abandons it after that. Call it protected.</summary>
    private async Task StopRunAsync(ChildRun run)
    {
        var c = run.Child;
        if (ReferenceEquals(c.Current, run))
        {
            c.Current = null;
        }

        if (run.Exit.IsResolved)
        {
            return; // ended on its own; its exit request will be ignored
        }

        run.Switch!.CancelContext.Cancel(new ChildShutdownException(Name, c.Spec.Id));
        var timeout = c.Spec.ShutdownTimeout;
        var r = await _clock.TryWithTimeoutAsync(timeout, async () => await run.Exit.AwaitAsync());
        if (r.IsTimedOut)
        {
            lock (_abandoned)
            {
                _abandoned.Add(c.Spec.Id);
            }

            Report(SupervisorReportKind.Abandoned, c.Spec.Id, timeout: timeout);
        }
        else
        {
            Report(SupervisorReportKind.Stopped, c.Spec.Id, r.Value);
        }
    }

    private void Report(SupervisorReportKind kind, string? childId, ExitReason? reason = null, TimeSpan? timeout = null)
    {
        if (_spec.OnReport is not { } onReport)
        {
            return;
        }

        try
        {
            onReport(new SupervisorReport(kind, Name, childId, reason, timeout));
        }
        catch (Exception)
        {
            // A reporter must not take the supervisor down.
        }
    }

    private sealed class ChildState(ChildSpec spec)
    {
        public ChildSpec Spec { get; } = spec;

        public ChildRun? Current { get; set; }

        public int Runs { get; set; }
    }

    private sealed class ChildRun
    {
        public ChildRun(ChildState child, int number)
        {
            Child = child;
            Number = number;
            (Started, StartedResolver) = EioSharp.Promise.Create<Exception?>();
            (Exit, ExitResolver) = EioSharp.Promise.Create<ExitReason>();
        }

        public ChildState Child { get; }

        public int Number { get; }

        public Switch? Switch { get; set; }

        public bool WasReady { get; set; }

        /// <summary>Null once ready; the failure if the run ended before it was ready.</summary>
        public Promise<Exception?> Started { get; }

        public Resolver<Exception?> StartedResolver { get; }

        public Promise<ExitReason> Exit { get; }

        public Resolver<ExitReason> ExitResolver { get; }
    }

    private abstract class Request
    {
        public virtual void Refuse(Exception error)
        {
        }
    }

    private abstract class Request<T>(Resolver<T> reply) : Request
    {
        public Resolver<T> Reply { get; } = reply;

        public override void Refuse(Exception error) => Reply.TryResolveError(error);
    }

    private sealed class StopRequest : Request;

    private sealed class ChildExit(ChildRun run) : Request
    {
        public ChildRun Run { get; } = run;
    }

    private sealed class StartChildRequest(ChildSpec? spec, object? argument, Type? argumentType, Resolver<string> reply) : Request<string>(reply)
    {
        public ChildSpec? Spec { get; } = spec;

        public object? Argument { get; } = argument;

        public Type? ArgumentType { get; } = argumentType;
    }

    private sealed class TerminateRequest(string id, Resolver<bool> reply) : Request<bool>(reply)
    {
        public string Id { get; } = id;
    }

    private sealed class CrashRequest(string id, Exception error, Resolver<bool> reply) : Request<bool>(reply)
    {
        public string Id { get; } = id;

        public Exception Error { get; } = error;
    }

    private sealed class MonitorRequest(string id, Resolver<ExitMonitor?> reply) : Request<ExitMonitor?>(reply)
    {
        public string Id { get; } = id;
    }

    private sealed class WhichChildrenRequest(Resolver<IReadOnlyList<ChildInfo>> reply) : Request<IReadOnlyList<ChildInfo>>(reply);

    private sealed class ChildShutdownException(string supervisor, string child)
        : Exception($"Supervisor '{supervisor}' is stopping child '{child}'.");
}

/// <summary>A snapshot of one child of a supervisor.</summary>
/// <param name="Id">The child's id.</param>
/// <param name="Kind">Worker or supervisor.</param>
/// <param name="Restart">Its restart type.</param>
/// <param name="IsRunning">True if a run of it is in progress.</param>
/// <param name="Runs">How many times it has been started (1 + restarts).</param>
/// <remarks>Erlang: an entry of <c>supervisor:which_children</c>.</remarks>
public sealed record ChildInfo(string Id, ChildKind Kind, RestartType Restart, bool IsRunning, int Runs);
