namespace EioSharp.Mock;

/// <summary>One scripted response of a mock (a value, an exception, or waiting for a promise), producing a <typeparamref name="T"/>.</summary>
/// <typeparam name="T">What the scripted operation returns.</typeparam>
/// <remarks>Eio: <c>Eio_mock.Action.t</c>. Build actions with the factories of <see cref="MockAction"/>.</remarks>
public sealed class MockAction<T>
{
    internal MockAction(Func<ValueTask<T>> run)
    {
        Run = run;
    }

    internal Func<ValueTask<T>> Run { get; }

    /// <summary>Uses an action that produces no value (such as <see cref="MockAction.Raise(Exception)"/>) where a value is expected.</summary>
    /// <param name="effect">The action; if it finishes without throwing, the operation fails with <see cref="InvalidOperationException"/>.</param>
    /// <returns>The typed action.</returns>
    public static implicit operator MockAction<T>(MockEffect effect)
    {
        ArgumentNullException.ThrowIfNull(effect);
        return new MockAction<T>(async () =>
        {
            await effect.Run();
            throw new InvalidOperationException("This mock action produced no value.");
        });
    }

    /// <summary>Uses a value-producing action where no value is expected (the value is ignored).</summary>
    /// <param name="action">The action.</param>
    /// <returns>The untyped action.</returns>
    public static implicit operator MockEffect(MockAction<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        return new MockEffect(async () => await action.Run());
    }
}

/// <summary>One scripted response of a mock that produces no value (succeed, throw, or wait).</summary>
/// <remarks>Eio: <c>unit Eio_mock.Action.t</c>.</remarks>
public sealed class MockEffect
{
    internal MockEffect(Func<ValueTask> run)
    {
        Run = run;
    }

    internal Func<ValueTask> Run { get; }
}

/// <summary>Factories for scripted mock responses.</summary>
/// <remarks>Eio: <c>Eio_mock.Action</c> (<c>`Return</c>, <c>`Raise</c>, <c>`Await</c>, <c>`Yield_then</c>, <c>`Run</c>).
/// With <c>using static EioSharp.Mock.MockAction;</c> scripts read like Eio's: <c>flow.OnRead(Return("a"), Raise(ex))</c>.</remarks>
public static class MockAction
{
    /// <summary>Returns <paramref name="value"/> at once.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="value">The value.</param>
    /// <returns>The action.</returns>
    /// <remarks>Eio: <c>`Return</c>.</remarks>
    public static MockAction<T> Return<T>(T value) => new(() => new ValueTask<T>(value));

    /// <summary>Returns a string at once (for mock flow reads: its UTF-8 bytes are the data read).</summary>
    /// <param name="value">The text.</param>
    /// <returns>The action.</returns>
    /// <remarks>Eio: <c>`Return "..."</c>.</remarks>
    public static MockAction<string> ReturnString(string value) => Return(value);

    /// <summary>Succeeds at once, producing nothing.</summary>
    /// <returns>The action.</returns>
    /// <remarks>Eio: <c>`Return ()</c>.</remarks>
    public static MockEffect Ok() => new(() => ValueTask.CompletedTask);

    /// <summary>Throws <paramref name="error"/>.</summary>
    /// <param name="error">The exception.</param>
    /// <returns>The action; converts to any <see cref="MockAction{T}"/>.</returns>
    /// <remarks>Eio: <c>`Raise</c>.</remarks>
    public static MockEffect Raise(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return new MockEffect(() => ValueTask.FromException(error));
    }

    /// <summary>Waits for <paramref name="promise"/> and returns its value (or throws its error).</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="promise">The promise; resolving it releases the operation.</param>
    /// <returns>The action.</returns>
    /// <remarks>Eio: <c>`Await</c>. The wait is cancellable.</remarks>
    public static MockAction<T> AwaitPromise<T>(Promise<T> promise)
    {
        ArgumentNullException.ThrowIfNull(promise);
        return new MockAction<T>(promise.AwaitAsync);
    }

    /// <summary>Yields to other fibers, then performs <paramref name="next"/>.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="next">The action performed after the yield.</param>
    /// <returns>The action.</returns>
    /// <remarks>Eio: <c>`Yield_then</c>.</remarks>
    public static MockAction<T> YieldThen<T>(MockAction<T> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return new MockAction<T>(async () =>
        {
            await Fiber.YieldAsync();
            return await next.Run();
        });
    }

    /// <summary>Runs <paramref name="f"/> and returns its result.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="f">The code; it runs in the fiber performing the operation.</param>
    /// <returns>The action.</returns>
    /// <remarks>Eio: <c>`Run</c>.</remarks>
    public static MockAction<T> Run<T>(Func<Task<T>> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return new MockAction<T>(async () => await f());
    }
}
