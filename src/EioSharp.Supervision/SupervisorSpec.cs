namespace EioSharp.Supervision;

/// <summary>Which children a supervisor restarts when one of them ends and must be restarted.</summary>
/// <remarks>Erlang: the supervisor's <c>strategy</c> flag.</remarks>
public enum RestartStrategy
{
    /// <summary>Only the child that ended is restarted.</summary>
    OneForOne,

    /// <summary>All the other children are stopped (in reverse start order), then all are started again in order.</summary>
    OneForAll,

    /// <summary>The children started after the one that ended are stopped (in reverse start order), then it and they are started again in order.</summary>
    RestForOne,

    /// <summary>A dynamic supervisor: no static children; <see cref="Supervisor.StartChildAsync{TArg}(TArg)"/> adds children made from
    /// <see cref="SupervisorSpec.Template"/>; each is restarted on its own (as <see cref="OneForOne"/>).</summary>
    SimpleOneForOne,
}

/// <summary>Everything a supervisor needs: name, strategy, restart intensity, and its children (or its child template).</summary>
/// <remarks>
/// Erlang: the <c>{SupFlags, [ChildSpec]}</c> returned by a supervisor's <c>init/1</c>.
/// <para><b>Restart intensity</b>: if more than <see cref="MaxRestarts"/> restarts happen within any <see cref="Period"/>, the supervisor
/// gives up: it stops all its children in reverse start order and fails with <see cref="RestartIntensityExceededException"/>, which
/// fails its own switch, so the failure goes to its parent (a parent supervisor then applies its own strategy).</para>
/// </remarks>
public sealed record SupervisorSpec
{
    private readonly int _maxRestarts = 1;
    private readonly TimeSpan _period = TimeSpan.FromSeconds(5);

    /// <summary>Creates the specification of a supervisor with static children.</summary>
    /// <param name="name">The supervisor's name (reports, traces, and its id when it is itself a child).</param>
    /// <param name="strategy">The restart strategy; not <see cref="RestartStrategy.SimpleOneForOne"/> (use <see cref="Dynamic{TArg}(string, ChildTemplate{TArg})"/>).</param>
    /// <param name="children">The children, in start order; ids must be unique.</param>
    /// <exception cref="ArgumentException">The name is empty, a child id is repeated, or <paramref name="strategy"/> is <see cref="RestartStrategy.SimpleOneForOne"/>.</exception>
    public SupervisorSpec(string name, RestartStrategy strategy, params IEnumerable<ChildSpec> children)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(children);
        if (strategy == RestartStrategy.SimpleOneForOne)
        {
            throw new ArgumentException("A simple_one_for_one supervisor is made with SupervisorSpec.Dynamic.", nameof(strategy));
        }

        var list = children.ToList();
        var ids = new HashSet<string>();
        foreach (var c in list)
        {
            ArgumentNullException.ThrowIfNull(c, nameof(children));
            c.Validate();
            if (!ids.Add(c.Id))
            {
                throw new ArgumentException($"Two children have the id '{c.Id}'.", nameof(children));
            }
        }

        Name = name;
        Strategy = strategy;
        Children = list;
    }

    private SupervisorSpec(string name, ChildTemplate template)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(template);
        Name = name;
        Strategy = RestartStrategy.SimpleOneForOne;
        Children = [];
        Template = template;
    }

    /// <summary>The supervisor's name.</summary>
    public string Name { get; init; }

    /// <summary>The restart strategy.</summary>
    public RestartStrategy Strategy { get; }

    /// <summary>The static children, in start order (empty for a dynamic supervisor).</summary>
    public IReadOnlyList<ChildSpec> Children { get; }

    /// <summary>The child template of a <see cref="RestartStrategy.SimpleOneForOne"/> supervisor; null otherwise.</summary>
    public ChildTemplate? Template { get; }

    /// <summary>The most restarts allowed within <see cref="Period"/> (OTP <c>intensity</c>, default 1); zero means any restart is too many.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative value.</exception>
    public int MaxRestarts
    {
        get => _maxRestarts;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _maxRestarts = value;
        }
    }

    /// <summary>The sliding window for <see cref="MaxRestarts"/> (OTP <c>period</c>, default 5 seconds), measured on the supervisor's clock.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to zero or a negative value.</exception>
    public TimeSpan Period
    {
        get => _period;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            _period = value;
        }
    }

    /// <summary>Receives the supervisor's reports (child started, exited, restarted, stopped, abandoned; intensity exceeded). Default: none.</summary>
    /// <remarks>Called on the supervisor's fiber; it must not block or throw (an exception from it is ignored).
    /// For logs or transcripts: <c>OnReport = r =&gt; TraceLog.Line(r.ToString())</c>.</remarks>
    public Action<SupervisorReport>? OnReport { get; init; }

    /// <summary>Creates the specification of a dynamic (<see cref="RestartStrategy.SimpleOneForOne"/>) supervisor.</summary>
    /// <typeparam name="TArg">The argument each child is started with.</typeparam>
    /// <param name="name">The supervisor's name.</param>
    /// <param name="template">The template of every child.</param>
    /// <returns>The specification; it starts with no children.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="template"/> is null.</exception>
    public static SupervisorSpec Dynamic<TArg>(string name, ChildTemplate<TArg> template) => new(name, template);
}

/// <summary>What a <see cref="SupervisorReport"/> is about.</summary>
/// <remarks>Erlang: the SASL supervisor and progress reports.</remarks>
public enum SupervisorReportKind
{
    /// <summary>A child started and signalled ready.</summary>
    Started,

    /// <summary>A child ended on its own (not stopped by the supervisor); <see cref="SupervisorReport.Reason"/> says how.</summary>
    Exited,

    /// <summary>A child is being restarted.</summary>
    Restarting,

    /// <summary>A child failed to start (it threw before signalling ready).</summary>
    StartFailed,

    /// <summary>The supervisor cancelled a child and it finished within its shutdown timeout.</summary>
    Stopped,

    /// <summary>A child did not finish within its shutdown timeout after being cancelled: it was abandoned and keeps running outside the supervisor (leaked).</summary>
    Abandoned,

    /// <summary>Too many restarts within the period: the supervisor is shutting down and will fail.</summary>
    IntensityExceeded,
}

/// <summary>One event in a supervisor's life, for logs and tests.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Supervisor">The supervisor's name.</param>
/// <param name="ChildId">The child concerned (null for <see cref="SupervisorReportKind.IntensityExceeded"/>).</param>
/// <param name="Reason">How the child ended, for <see cref="SupervisorReportKind.Exited"/>, <see cref="SupervisorReportKind.Stopped"/>
/// and <see cref="SupervisorReportKind.StartFailed"/>; null otherwise.</param>
/// <param name="Timeout">The shutdown timeout that passed, for <see cref="SupervisorReportKind.Abandoned"/>.</param>
public sealed record SupervisorReport(SupervisorReportKind Kind, string Supervisor, string? ChildId, ExitReason? Reason = null, TimeSpan? Timeout = null)
{
    /// <summary>A short stable description, for example <c>sup: worker exited (failed: IOException: disk full)</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => Kind switch
    {
        SupervisorReportKind.Started => $"{Supervisor}: {ChildId} started",
        SupervisorReportKind.Exited => $"{Supervisor}: {ChildId} exited ({Reason})",
        SupervisorReportKind.Restarting => $"{Supervisor}: restarting {ChildId}",
        SupervisorReportKind.StartFailed => $"{Supervisor}: {ChildId} failed to start ({Reason})",
        SupervisorReportKind.Stopped => $"{Supervisor}: {ChildId} stopped ({Reason})",
        SupervisorReportKind.Abandoned => $"{Supervisor}: {ChildId} still running {Timeout?.TotalSeconds}s after cancellation; abandoned (leaked)",
        _ => $"{Supervisor}: restart intensity exceeded; shutting down",
    };
}
