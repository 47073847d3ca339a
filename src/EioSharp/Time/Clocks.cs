namespace EioSharp.Time;

/// <summary>What wall and monotonic clocks share: sleeping for a duration and timeouts.</summary>
/// <remarks>Eio: <c>Eio.Time</c>. Sleeping uses the calling fiber's domain's timer heap.</remarks>
public abstract class ClockBase
{
    private protected ClockBase()
    {
    }

    /// <summary>Set by clocks whose time is moved by hand (the mock clocks): sleeping waits on it instead of the domain's timers.</summary>
    private protected ManualTimeline? Manual { get; init; }

    /// <summary>Suspends the calling fiber for <paramref name="duration"/>.</summary>
    /// <param name="duration">How long; zero or negative still yields to other fibers once; <see cref="Timeout.InfiniteTimeSpan"/> waits until cancelled.</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while sleeping.</exception>
    /// <remarks>Eio: <c>Time.sleep</c>. <b>Scheduling</b>: the fiber is queued when the deadline passes.</remarks>
    public ValueTask SleepAsync(TimeSpan duration)
    {
        var frame = FiberFrame.Require();
        if (duration == Timeout.InfiniteTimeSpan)
        {
            return Fiber.AwaitCancelAsync(); // the pooled waiter's value task (issue 20)
        }

        if (Manual is { } manual)
        {
            return manual.SleepAsync(frame, duration);
        }

        var domain = frame.Fiber.Domain;
        long ticks = duration.Ticks <= 0 ? 0 : duration.Ticks;
        return SleepUntilTicks(frame, domain.Now + ticks);
    }

    /// <summary>Sleeps on the calling fiber's domain timer heap, for library code that holds no clock (virtual time on the mock backend).</summary>
    internal static ValueTask SleepOnCurrentDomainAsync(TimeSpan duration)
    {
        var frame = FiberFrame.Require();
        return SleepUntilTicks(frame, frame.Fiber.Domain.Now + Math.Max(0, duration.Ticks));
    }

    private protected static ValueTask SleepUntilTicks(FiberFrame frame, long deadline)
    {
        frame.Cancel.ThrowIfCancelled();
        var w = TimerWaiter.Rent(frame.Fiber.Domain, deadline);
        frame.Fiber.Domain.AddTimer(w);
        w.Attach(frame.Cancel);
        return w.VoidTask;
    }

    /// <summary>Runs <paramref name="body"/>, cancelling it and throwing if it takes longer than <paramref name="timeout"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="timeout">The time limit; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="body">The operation.</param>
    /// <returns>The body's result. A body that completed returns its value even when the time limit passed in the same
    /// scheduler round (S13), so a value taken from a queue is never dropped by the timeout.</returns>
    /// <exception cref="TimeoutException">The time limit passed first (the body has then been cancelled and has finished).</exception>
    /// <remarks>Eio: <c>Time.with_timeout_exn</c>. If the body produced its value in the same instant the time limit passed,
    /// the value wins: a completed operation (for example a <c>TakeAsync</c> that already removed an item) is never thrown away.</remarks>
    public async Task<T> WithTimeoutAsync<T>(TimeSpan timeout, Func<Task<T>> body)
    {
        var r = await TryWithTimeoutAsync(timeout, body);
        if (r.IsTimedOut)
        {
            throw new TimeoutException($"The operation did not finish within {timeout}.");
        }

        return r.Value;
    }

    /// <summary>Runs <paramref name="body"/>, cancelling it and throwing if it takes longer than <paramref name="timeout"/>.</summary>
    /// <param name="timeout">The time limit.</param>
    /// <param name="body">The operation.</param>
    /// <returns>A task that completes when the body does.</returns>
    /// <exception cref="TimeoutException">The time limit passed first.</exception>
    /// <remarks>Eio: <c>Time.with_timeout_exn</c>.</remarks>
    public Task WithTimeoutAsync(TimeSpan timeout, Func<Task> body) =>
        WithTimeoutAsync<bool>(timeout, async () => { await body(); return true; });

    /// <summary>Runs <paramref name="body"/> with a time limit, reporting a timeout as a result instead of an exception.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="timeout">The time limit; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="body">The operation.</param>
    /// <returns>The body's value, or a result whose <see cref="TimeoutResult{T}.IsTimedOut"/> is true.</returns>
    /// <remarks>Eio: <c>Time.with_timeout</c>. Built on <see cref="Fiber.FirstAsync{T}(Func{Task{T}}, Func{Task{T}}, Func{T, T, T}?)"/>
    /// with both sides returning values, so a body that completed before it noticed the timeout keeps its value (S11, S14).</remarks>
    public async Task<TimeoutResult<T>> TryWithTimeoutAsync<T>(TimeSpan timeout, Func<Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return new TimeoutResult<T>(false, await body());
        }

        return await Fiber.FirstAsync(
            async () => new TimeoutResult<T>(false, await body()),
            async () =>
            {
                await SleepAsync(timeout);
                return new TimeoutResult<T>(true, default!);
            },
            static (first, second) => first.IsTimedOut ? second : first);
    }
}

/// <summary>The outcome of <see cref="ClockBase.TryWithTimeoutAsync{T}(TimeSpan, Func{Task{T}})"/>.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <param name="IsTimedOut">True if the time limit passed first.</param>
/// <param name="Value">The body's value when it finished in time.</param>
public readonly record struct TimeoutResult<T>(bool IsTimedOut, T Value);

/// <summary>A wall clock: time of day, which can jump when the system clock is set.</summary>
/// <remarks>Eio: <c>Eio.Time.clock</c> (<c>env#clock</c>). For measuring intervals use <see cref="MonoClock"/>.</remarks>
public abstract class Clock : ClockBase
{
    /// <summary>The current time.</summary>
    public abstract DateTimeOffset Now { get; }

    /// <summary>Suspends the calling fiber until <paramref name="time"/> (at once if it has passed).</summary>
    /// <param name="time">The wall-clock deadline.</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while sleeping.</exception>
    /// <remarks>Eio: <c>Time.sleep_until</c>.</remarks>
    public ValueTask SleepUntilAsync(DateTimeOffset time) => SleepAsync(time - Now);

    /// <summary>A <see cref="TimeProvider"/> view of this clock, for .NET APIs that take one.</summary>
    /// <returns>The provider.</returns>
    public abstract TimeProvider AsTimeProvider();
}

/// <summary>A monotonic clock: never jumps, for measuring intervals and deadlines.</summary>
/// <remarks>Eio: <c>Eio.Time.Mono</c> (<c>env#mono_clock</c>).</remarks>
public abstract class MonoClock : ClockBase
{
    /// <summary>Time since an arbitrary fixed origin.</summary>
    public abstract TimeSpan Now { get; }

    /// <summary>Suspends the calling fiber until this clock reads <paramref name="time"/>.</summary>
    /// <param name="time">The deadline, on this clock.</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while sleeping.</exception>
    /// <remarks>Eio: <c>Time.Mono.sleep_until</c>.</remarks>
    public ValueTask SleepUntilAsync(TimeSpan time) => SleepAsync(time - Now);
}

/// <summary>The system's clocks.</summary>
internal sealed class SystemClock : Clock
{
    public static readonly SystemClock Instance = new();

    public override DateTimeOffset Now => DateTimeOffset.UtcNow;

    public override TimeProvider AsTimeProvider() => TimeProvider.System;
}

internal sealed class SystemMonoClock : MonoClock
{
    public static readonly SystemMonoClock Instance = new();

    public override TimeSpan Now => TimeSpan.FromTicks(StopwatchTimeSource.Instance.Now);
}

