namespace EioSharp.Supervision;

/// <summary>How a fiber, supervised child or actor ended.</summary>
/// <remarks>Erlang: the exit reason's three families, <c>normal</c>, <c>shutdown</c> and any other term.</remarks>
public enum ExitKind
{
    /// <summary>The code returned.</summary>
    Normal,

    /// <summary>A <see cref="CancelledException"/> escaped: the code was cancelled (for a child, normally by its supervisor stopping it).</summary>
    Cancelled,

    /// <summary>Any other exception escaped.</summary>
    Failed,
}

/// <summary>Why a fiber, supervised child or actor ended: normally, cancelled, or with an exception.</summary>
/// <remarks>
/// Erlang: the exit reason delivered by a monitor's <c>'DOWN'</c> message. Instances are immutable.
/// <see cref="ToString"/> gives a short stable text (<c>normal</c>, <c>cancelled</c>, <c>failed: Type: message</c>) used in reports and transcripts.
/// </remarks>
public sealed class ExitReason
{
    private ExitReason(ExitKind kind, Exception? error)
    {
        Kind = kind;
        Error = error;
    }

    /// <summary>The reason for code that returned.</summary>
    public static ExitReason Normal { get; } = new(ExitKind.Normal, null);

    /// <summary>Which family the reason belongs to.</summary>
    public ExitKind Kind { get; }

    /// <summary>The exception that escaped (a <see cref="CancelledException"/> for <see cref="ExitKind.Cancelled"/>); null for <see cref="ExitKind.Normal"/>.</summary>
    public Exception? Error { get; }

    /// <summary>True for <see cref="ExitKind.Failed"/>: the exit that transient children are restarted after.</summary>
    public bool IsFailure => Kind == ExitKind.Failed;

    /// <summary>Creates the reason for code that was cancelled.</summary>
    /// <param name="error">The cancellation that escaped.</param>
    /// <returns>The reason.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
    public static ExitReason Cancelled(CancelledException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return new(ExitKind.Cancelled, error);
    }

    /// <summary>Creates the reason for code that threw.</summary>
    /// <param name="error">The exception; a <see cref="CancelledException"/> gives a <see cref="ExitKind.Cancelled"/> reason.</param>
    /// <returns>The reason.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
    public static ExitReason FromException(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error is CancelledException c ? Cancelled(c) : new(ExitKind.Failed, error);
    }

    /// <summary>Runs <paramref name="body"/> and describes how it ended, never throwing what it threw.</summary>
    /// <param name="body">The code.</param>
    /// <returns>The exit reason.</returns>
    public static async Task<ExitReason> CaptureAsync(Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            await body();
            return Normal;
        }
        catch (Exception ex)
        {
            return FromException(ex);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ExitKind.Normal => "normal",
        ExitKind.Cancelled => "cancelled",
        _ => $"failed: {Error!.GetType().Name}: {Error.Message}",
    };
}
