using System.Globalization;

namespace EioSharp.Time;

/// <summary>A time limit as a value: no limit, or a duration measured on a monotonic clock. Pass one to code that should
/// not care whether (or on which clock) it is limited.</summary>
/// <remarks>
/// Eio: <c>Time.Timeout.t</c> (<c>Timeout.none</c>, <c>Timeout.v</c>, <c>Timeout.seconds</c>, <c>run</c>, <c>run_exn</c>,
/// <c>pp</c>). Named <c>TimeLimit</c> because <c>System.Threading.Timeout</c> is in the SDK's implicit usings. Each
/// <see cref="RunAsync{T}"/> starts the countdown afresh: the value is a duration, not a deadline.
/// </remarks>
public sealed class TimeLimit
{
    private TimeLimit(MonoClock? clock, TimeSpan duration)
    {
        Clock = clock;
        Duration = duration;
    }

    /// <summary>No time limit: <see cref="RunAsync{T}"/> just runs the body.</summary>
    /// <remarks>Eio: <c>Time.Timeout.none</c>.</remarks>
    public static TimeLimit None { get; } = new(null, Timeout.InfiniteTimeSpan);

    /// <summary>The clock the limit is measured on (null for <see cref="None"/>).</summary>
    public MonoClock? Clock { get; }

    /// <summary>The duration (<see cref="Timeout.InfiniteTimeSpan"/> for <see cref="None"/>).</summary>
    public TimeSpan Duration { get; }

    /// <summary>True for <see cref="None"/>.</summary>
    public bool IsNone => Clock is null;

    /// <summary>A limit of <paramref name="duration"/> on <paramref name="clock"/>.</summary>
    /// <param name="clock">The monotonic clock.</param>
    /// <param name="duration">The duration (zero or more).</param>
    /// <returns>The limit.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="duration"/> is negative.</exception>
    /// <remarks>Eio: <c>Time.Timeout.v clock span</c>.</remarks>
    public static TimeLimit Of(MonoClock clock, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentOutOfRangeException.ThrowIfLessThan(duration, TimeSpan.Zero);
        return new TimeLimit(clock, duration);
    }

    /// <summary>A limit of <paramref name="seconds"/> seconds on <paramref name="clock"/>.</summary>
    /// <param name="clock">The monotonic clock.</param>
    /// <param name="seconds">Seconds (zero or more, finite).</param>
    /// <returns>The limit.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="seconds"/> is negative, NaN or infinite.</exception>
    /// <remarks>Eio: <c>Time.Timeout.seconds clock s</c>.</remarks>
    public static TimeLimit Seconds(MonoClock clock, double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "The number of seconds must be finite and not negative.");
        }

        return Of(clock, TimeSpan.FromSeconds(seconds));
    }

    /// <summary>Runs <paramref name="body"/> within the limit, reporting a timeout as a result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The operation; cancelled when the limit passes first.</param>
    /// <returns>The value, or a result with <see cref="TimeoutResult{T}.IsTimedOut"/> true.</returns>
    /// <exception cref="Exception">Whatever <paramref name="body"/> throws.</exception>
    /// <remarks>Eio: <c>Time.Timeout.run</c> (its <c>Error `Timeout</c> is <see cref="TimeoutResult{T}.IsTimedOut"/>). As
    /// <see cref="ClockBase.TryWithTimeoutAsync{T}"/>: a body that completed in the same instant keeps its value.</remarks>
    public async Task<TimeoutResult<T>> RunAsync<T>(Func<Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Clock is null ? new TimeoutResult<T>(false, await body()) : await Clock.TryWithTimeoutAsync(Duration, body);
    }

    /// <summary>Runs <paramref name="body"/> within the limit, throwing if it passes first.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The operation.</param>
    /// <returns>The body's value.</returns>
    /// <exception cref="TimeoutException">The limit passed first (the body was cancelled and has finished); the message
    /// names the limit as <see cref="ToString"/> does.</exception>
    /// <remarks>Eio: <c>Time.Timeout.run_exn</c> (Eio raises <c>Time.Timeout</c>).</remarks>
    public async Task<T> RunExnAsync<T>(Func<Task<T>> body)
    {
        var r = await RunAsync(body);
        if (r.IsTimedOut)
        {
            throw new TimeoutException($"Timeout ({this}).");
        }

        return r.Value;
    }

    /// <summary>Runs <paramref name="body"/> within the limit, throwing if it passes first.</summary>
    /// <param name="body">The operation.</param>
    /// <returns>A task that completes when the body has.</returns>
    /// <exception cref="TimeoutException">The limit passed first.</exception>
    /// <remarks>Eio: <c>Time.Timeout.run_exn</c>.</remarks>
    public Task RunExnAsync(Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunExnAsync<bool>(async () => { await body(); return true; });
    }

    /// <summary>Formats as Eio's <c>Timeout.pp</c>: <c>(no timeout)</c>, or the duration as <c>5s</c>, <c>1.5s</c>, <c>250ms</c>, <c>10us</c>.</summary>
    /// <returns>The text.</returns>
    public override string ToString()
    {
        if (IsNone)
        {
            return "(no timeout)";
        }

        var inv = CultureInfo.InvariantCulture;
        double s = Duration.TotalSeconds;
        return s >= 1 ? s.ToString("0.###", inv) + "s"
            : Duration.TotalMilliseconds >= 1 ? Duration.TotalMilliseconds.ToString("0.###", inv) + "ms"
            : Duration.TotalMicroseconds.ToString("0.###", inv) + "us";
    }
}

/// <summary><c>WithTimeout</c> taking a <see cref="TimeLimit"/> value.</summary>
public static class TimeLimitExtensions
{
    /// <summary>Runs <paramref name="body"/> within <paramref name="limit"/>; the same as <see cref="TimeLimit.RunExnAsync{T}"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="limit">The limit (<see cref="TimeLimit.None"/>: none).</param>
    /// <param name="body">The operation.</param>
    /// <returns>The body's value.</returns>
    /// <exception cref="TimeoutException">The limit passed first.</exception>
    /// <remarks>Eio: <c>Time.Timeout.run_exn</c>, the form of <c>with_timeout_exn</c> that takes a timeout value.</remarks>
    public static Task<T> WithTimeoutAsync<T>(this TimeLimit limit, Func<Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(limit);
        return limit.RunExnAsync(body);
    }
}
