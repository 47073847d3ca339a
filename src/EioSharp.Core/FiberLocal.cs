namespace EioSharp;

/// <summary>A fiber-local value: bound for the dynamic extent of a call and copied into fibers forked inside it (S27).</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <remarks>Eio: <c>Fiber.key</c>, <c>Fiber.with_binding</c>, <c>Fiber.get</c>. Carried by an <see cref="AsyncLocal{T}"/>.</remarks>
public sealed class FiberLocal<T>
{
    private readonly AsyncLocal<Box?> _value = new();

    /// <summary>Gets the value bound in the current fiber.</summary>
    /// <param name="value">The value, when bound.</param>
    /// <returns>True if a value is bound.</returns>
    /// <remarks>Eio: <c>Fiber.get</c>.</remarks>
    public bool TryGetValue(out T value)
    {
        if (_value.Value is { Bound: true } b)
        {
            value = b.Value;
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>The bound value, or <paramref name="fallback"/> when unbound.</summary>
    /// <param name="fallback">Returned when nothing is bound.</param>
    /// <returns>The value.</returns>
    public T GetValueOrDefault(T fallback = default!) => TryGetValue(out var v) ? v : fallback;

    /// <summary>Runs <paramref name="body"/> with the value bound to <paramref name="value"/>.</summary>
    /// <typeparam name="TResult">The result type.</typeparam>
    /// <param name="value">The value to bind.</param>
    /// <param name="body">The code that sees the binding (and fibers it forks, from fork time on).</param>
    /// <returns>The body's result.</returns>
    /// <remarks>Eio: <c>Fiber.with_binding</c>.</remarks>
    public async Task<TResult> WithBindingAsync<TResult>(T value, Func<Task<TResult>> body)
    {
        _value.Value = new Box(value, true);
        return await body();
    }

    /// <summary>Runs <paramref name="body"/> with the value bound to <paramref name="value"/>.</summary>
    /// <param name="value">The value to bind.</param>
    /// <param name="body">The code that sees the binding.</param>
    /// <returns>A task that completes when the body does.</returns>
    /// <remarks>Eio: <c>Fiber.with_binding</c>.</remarks>
    public async Task WithBindingAsync(T value, Func<Task> body)
    {
        _value.Value = new Box(value, true);
        await body();
    }

    /// <summary>Runs <paramref name="body"/> with the value unbound.</summary>
    /// <param name="body">The code.</param>
    /// <returns>A task that completes when the body does.</returns>
    /// <remarks>Eio: <c>Fiber.without_binding</c>.</remarks>
    public async Task WithoutBindingAsync(Func<Task> body)
    {
        _value.Value = new Box(default!, false);
        await body();
    }

    private sealed record Box(T Value, bool Bound);
}
