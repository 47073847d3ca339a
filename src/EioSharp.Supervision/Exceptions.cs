namespace EioSharp.Supervision;

/// <summary>A supervisor could not start: one of its children failed to start (the children started before it were stopped).</summary>
/// <remarks>Erlang: <c>{error, {shutdown, {failed_to_start_child, Id, Reason}}}</c>.</remarks>
public sealed class SupervisorStartException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="supervisor">The supervisor's name.</param>
    /// <param name="childId">The child that failed to start.</param>
    /// <param name="inner">Why it failed.</param>
    public SupervisorStartException(string supervisor, string childId, Exception inner)
        : base($"Supervisor '{supervisor}' failed to start child '{childId}': {inner.GetType().Name}: {inner.Message}", inner)
    {
        Supervisor = supervisor;
        ChildId = childId;
    }

    /// <summary>The supervisor's name.</summary>
    public string Supervisor { get; }

    /// <summary>The child that failed to start.</summary>
    public string ChildId { get; }
}

/// <summary>A supervisor gave up: more than the allowed restarts happened within its period.</summary>
/// <remarks>Erlang: the supervisor exits with reason <c>shutdown</c> after <c>reached_max_restart_intensity</c>.
/// The inner exception is the failure of the child whose exit was one restart too many (null if it ended normally).</remarks>
public sealed class RestartIntensityExceededException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="supervisor">The supervisor's name.</param>
    /// <param name="childId">The child whose exit exceeded the intensity.</param>
    /// <param name="maxRestarts">The allowed restarts.</param>
    /// <param name="period">The window.</param>
    /// <param name="inner">That child's failure, if any.</param>
    public RestartIntensityExceededException(string supervisor, string childId, int maxRestarts, TimeSpan period, Exception? inner)
        : base($"Supervisor '{supervisor}': more than {maxRestarts} restart(s) within {period.TotalSeconds}s (last: '{childId}').", inner)
    {
        Supervisor = supervisor;
        ChildId = childId;
    }

    /// <summary>The supervisor's name.</summary>
    public string Supervisor { get; }

    /// <summary>The child whose exit exceeded the intensity.</summary>
    public string ChildId { get; }

    /// <summary>Finds the escalation in a failure as a switch reports it: itself, inside a <see cref="MultipleException"/>
    /// (or any <see cref="AggregateException"/>), or as an inner exception.</summary>
    /// <param name="error">The failure, for example what <see cref="Switch.RunAsync(Func{Switch, Task}, string?)"/> threw.</param>
    /// <returns>The first escalation found (depth first), or null if the failure has none.</returns>
    /// <remarks>Servers use it to tell "a supervisor gave up" (exit with a clear message) from other failures.</remarks>
    public static RestartIntensityExceededException? FindIn(Exception error) => error switch
    {
        null => null,
        RestartIntensityExceededException found => found,
        AggregateException a => a.InnerExceptions.Select(FindIn).FirstOrDefault(x => x is not null),
        { InnerException: { } inner } => FindIn(inner),
        _ => null,
    };
}

/// <summary>A child could not be started by <see cref="Supervisor.StartChildAsync(ChildSpec)"/>: its start function threw before it was ready.</summary>
/// <remarks>Erlang: <c>{error, Reason}</c> from <c>supervisor:start_child</c>.</remarks>
public sealed class ChildStartException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="childId">The child.</param>
    /// <param name="inner">Why it failed.</param>
    public ChildStartException(string childId, Exception inner)
        : base($"Child '{childId}' failed to start: {inner.GetType().Name}: {inner.Message}", inner)
    {
        ChildId = childId;
    }

    /// <summary>The child.</summary>
    public string ChildId { get; }
}

/// <summary>The supervisor is not running (not started yet, stopping or finished), so it cannot take the request.</summary>
public sealed class SupervisorNotRunningException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="supervisor">The supervisor's name.</param>
    public SupervisorNotRunningException(string supervisor)
        : base($"Supervisor '{supervisor}' is not running.")
    {
    }
}

/// <summary>An actor ended (crashed, or was stopped) while handling a call, so the call gets no reply.</summary>
/// <remarks>Erlang: the exit a <c>gen_server:call</c> raises when the server dies during the call.</remarks>
public sealed class ActorFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="actor">The actor's name.</param>
    /// <param name="inner">What ended the actor.</param>
    public ActorFailedException(string actor, Exception inner)
        : base($"Actor '{actor}' ended while handling the call: {inner.GetType().Name}: {inner.Message}", inner)
    {
        Actor = actor;
    }

    /// <summary>The actor's name.</summary>
    public string Actor { get; }
}

/// <summary><see cref="Actor{TState, TMsg}.Cast(TMsg)"/> found the actor's mailbox full.</summary>
public sealed class MailboxFullException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="actor">The actor's name.</param>
    /// <param name="capacity">The mailbox's capacity, in messages.</param>
    public MailboxFullException(string actor, int capacity)
        : base($"The mailbox of actor '{actor}' is full ({capacity} messages).")
    {
        Actor = actor;
    }

    /// <summary>The actor's name.</summary>
    public string Actor { get; }
}
