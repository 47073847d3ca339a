using EioSharp.Time;

namespace EioSharp.Supervision;

/// <summary>When a supervisor restarts a child that ended.</summary>
/// <remarks>Erlang: the <c>restart</c> field of a child specification.</remarks>
public enum RestartType
{
    /// <summary>Always restarted, whatever the exit reason.</summary>
    Permanent,

    /// <summary>Restarted only after a failure (<see cref="ExitKind.Failed"/>); a normal or cancelled exit is final.</summary>
    Transient,

    /// <summary>Never restarted; removed from the supervisor when it ends.</summary>
    Temporary,
}

/// <summary>Whether a child is a worker or a supervisor (informational, and it picks the default shutdown timeout).</summary>
/// <remarks>Erlang: the <c>type</c> field of a child specification.</remarks>
public enum ChildKind
{
    /// <summary>A worker; default shutdown timeout <see cref="ChildSpec.DefaultWorkerShutdown"/>.</summary>
    Worker,

    /// <summary>A supervisor; default shutdown timeout infinite, so its own children are stopped in order.</summary>
    Supervisor,
}

/// <summary>How a supervisor starts, restarts and stops one child.</summary>
/// <param name="Id">The child's name in its supervisor: unique there, used in reports and by <see cref="Supervisor.CrashChildAsync(string, Exception?)"/>.</param>
/// <param name="Start">The child's code. It receives a <see cref="ChildContext"/> and must call <see cref="ChildContext.Ready"/> once initialised
/// (returning also counts as ready). Each restart calls it again, so state built inside it is fresh.</param>
/// <remarks>
/// Erlang: <c>supervisor:child_spec()</c>: <c>id</c>, <c>start</c>, <c>restart</c>, <c>shutdown</c>, <c>type</c>.
/// <para><b>Readiness</b>: the supervisor starts children one at a time, in order; it starts the next child only after the previous
/// one called <see cref="ChildContext.Ready"/> (like <c>proc_lib:init_ack</c>). If the start function throws before that, the start
/// failed: at initial start the supervisor stops the children already started and fails to start (<see cref="SupervisorStartException"/>).</para>
/// <para><b>Lifetime</b>: the child runs in its own switch, protected from the supervisor's cancellation; only the supervisor stops it
/// (see <see cref="ShutdownTimeout"/>). Everything the child forks or attaches to <see cref="ChildContext.Switch"/> is cleaned up when it ends.</para>
/// </remarks>
public sealed record ChildSpec(string Id, Func<ChildContext, Task> Start)
{
    /// <summary>The default shutdown timeout for workers: 5 seconds (as in OTP).</summary>
    public static readonly TimeSpan DefaultWorkerShutdown = TimeSpan.FromSeconds(5);

    private TimeSpan? _shutdown;

    /// <summary>When the child is restarted (default <see cref="RestartType.Permanent"/>).</summary>
    public RestartType Restart { get; init; } = RestartType.Permanent;

    /// <summary>Worker or supervisor (default <see cref="ChildKind.Worker"/>).</summary>
    public ChildKind Kind { get; init; } = ChildKind.Worker;

    /// <summary>How long the supervisor waits for the child to finish after cancelling it before abandoning it.</summary>
    /// <remarks>
    /// Default: <see cref="DefaultWorkerShutdown"/> for workers, <see cref="Timeout.InfiniteTimeSpan"/> for supervisors.
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits forever (OTP <c>infinity</c>); <see cref="TimeSpan.Zero"/> abandons the child unless
    /// it has finished by the time the supervisor runs again (the nearest thing to <c>brutal_kill</c>: .NET cannot kill a fiber).
    /// An abandoned child keeps running outside the supervisor's switch and is reported as leaked (<see cref="SupervisorReportKind.Abandoned"/>).
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative value other than <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    public TimeSpan ShutdownTimeout
    {
        get => _shutdown ?? (Kind == ChildKind.Supervisor ? Timeout.InfiniteTimeSpan : DefaultWorkerShutdown);
        init
        {
            if (value < TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The shutdown timeout must be zero, positive or infinite.");
            }

            _shutdown = value;
        }
    }

    /// <summary>Creates the specification of a child that is itself a supervisor (a subtree).</summary>
    /// <param name="spec">The child supervisor's specification; its <see cref="SupervisorSpec.Name"/> is the child's id.</param>
    /// <param name="clock">The clock the child supervisor uses for restart intensity and shutdown timeouts.</param>
    /// <returns>A permanent child of kind <see cref="ChildKind.Supervisor"/> with an infinite shutdown timeout. It is ready once all
    /// its own children are ready; when its restart intensity is exceeded it fails, and the failure goes to this supervisor.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static ChildSpec ForSupervisor(SupervisorSpec spec, MonoClock clock)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(clock);
        return new ChildSpec(spec.Name, ctx => Supervisor.RunAsync(spec, clock, _ => ctx.Ready())) { Kind = ChildKind.Supervisor };
    }

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Id);
        ArgumentNullException.ThrowIfNull(Start);
    }
}

/// <summary>The template from which a <see cref="RestartStrategy.SimpleOneForOne"/> supervisor makes each child.</summary>
/// <remarks>Erlang: the single child specification of a <c>simple_one_for_one</c> supervisor.</remarks>
public abstract record ChildTemplate
{
    private protected ChildTemplate(string idPrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(idPrefix);
        IdPrefix = idPrefix;
    }

    /// <summary>Children are named <c>IdPrefix-1</c>, <c>IdPrefix-2</c>, ... in start order.</summary>
    public string IdPrefix { get; }

    /// <summary>When each child is restarted (default <see cref="RestartType.Temporary"/>, the usual choice for per-request children).</summary>
    public RestartType Restart { get; init; } = RestartType.Temporary;

    /// <summary>The kind of each child (default <see cref="ChildKind.Worker"/>).</summary>
    public ChildKind Kind { get; init; } = ChildKind.Worker;

    /// <summary>Each child's shutdown timeout; null for the default of its kind (see <see cref="ChildSpec.ShutdownTimeout"/>).</summary>
    public TimeSpan? ShutdownTimeout { get; init; }

    internal abstract Type ArgumentType { get; }

    internal abstract ChildSpec Instantiate(string id, object? argument);
}

/// <summary>A template whose children each get an argument of type <typeparamref name="TArg"/>.</summary>
/// <typeparam name="TArg">The argument passed to <see cref="Supervisor.StartChildAsync{TArg}(TArg)"/>.</typeparam>
public sealed record ChildTemplate<TArg> : ChildTemplate
{
    /// <summary>Creates a template.</summary>
    /// <param name="idPrefix">The prefix of the children's ids.</param>
    /// <param name="start">The children's code: receives the child context and the argument given to
    /// <see cref="Supervisor.StartChildAsync{TArg}(TArg)"/> (the same argument again at each restart).</param>
    /// <exception cref="ArgumentException"><paramref name="idPrefix"/> is null or empty.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="start"/> is null.</exception>
    public ChildTemplate(string idPrefix, Func<ChildContext, TArg, Task> start)
        : base(idPrefix)
    {
        ArgumentNullException.ThrowIfNull(start);
        Start = start;
    }

    /// <summary>The children's code.</summary>
    public Func<ChildContext, TArg, Task> Start { get; }

    internal override Type ArgumentType => typeof(TArg);

    internal override ChildSpec Instantiate(string id, object? argument)
    {
        var arg = (TArg)argument!;
        var start = Start;
        var spec = new ChildSpec(id, ctx => start(ctx, arg)) { Restart = Restart, Kind = Kind };
        return ShutdownTimeout is { } t ? spec with { ShutdownTimeout = t } : spec;
    }
}

/// <summary>What a supervised child's start function receives: its identity, its switch, and the readiness signal.</summary>
/// <remarks>
/// Erlang: the parts of <c>proc_lib</c> a child uses (<c>init_ack</c>). One context per run: a restarted child gets a new one.
/// <para><b>Thread safety</b>: <see cref="Ready"/> may be called from any thread (for example from work the child moved to another
/// domain with <c>DomainManager.RunAsync</c>); <see cref="Switch"/> belongs to the supervisor's domain (S17).</para>
/// </remarks>
public sealed class ChildContext
{
    private readonly Resolver<Exception?> _started;

    internal ChildContext(string supervisorName, string id, int run, Switch sw, Resolver<Exception?> started)
    {
        SupervisorName = supervisorName;
        Id = id;
        Run = run;
        Switch = sw;
        _started = started;
    }

    /// <summary>The supervising supervisor's name.</summary>
    public string SupervisorName { get; }

    /// <summary>The child's id.</summary>
    public string Id { get; }

    /// <summary>Which run of the child this is: 1 for the first start, 2 after the first restart, ...</summary>
    public int Run { get; }

    /// <summary>The child's own switch: fibers and resources attached to it end with this run of the child.</summary>
    /// <remarks>Failing it (<see cref="Switch.Fail(Exception)"/>) crashes the child with that exception.</remarks>
    public Switch Switch { get; }

    /// <summary>True once <see cref="Ready"/> was called (or the start function returned).</summary>
    public bool IsReady => _started.Promise.IsResolved;

    /// <summary>Tells the supervisor the child has initialised, so it can start the next child. Idempotent.</summary>
    /// <remarks>Erlang: <c>proc_lib:init_ack</c>. Call it once the child can serve (for example after opening its files or binding its socket),
    /// then carry on with the child's main loop.</remarks>
    public void Ready() => _started.TryResolve(null);

    /// <inheritdoc/>
    public override string ToString() => $"{SupervisorName}/{Id} (run {Run})";
}
