namespace EioSharp.Mock;

/// <summary>The scripted actions for one kind of mock operation, performed in order.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Handler</c> with <c>Handler.seq</c>. Use on the mock domain only (not thread-safe). An operation with no
/// action queued either throws "not configured" (<see cref="Next(string)"/>, <see cref="RunSynchronously(string, string)"/>,
/// as Eio's default handler does) or waits until an action is queued (<see cref="NextOrWaitAsync"/>, for operations that
/// wait for the outside world, such as accept and receive).
/// </remarks>
internal sealed class MockActionQueue<T>
{
    private readonly Queue<MockAction<T>> _actions = new();
    private readonly List<Waiter> _waiting = [];

    public void Enqueue(MockAction<T>[] actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        foreach (var a in actions)
        {
            _actions.Enqueue(a ?? throw new ArgumentNullException(nameof(actions)));
        }

        // Wake every waiting operation; each takes the next action in turn, or waits again.
        foreach (var w in _waiting.ToArray())
        {
            w.TryComplete(true);
        }
    }

    /// <summary>Performs the next action; with none queued, throws <see cref="InvalidOperationException"/> (Eio: <c>Failure "Mock ... handler not configured"</c>).</summary>
    public ValueTask<T> Next(string what) =>
        _actions.TryDequeue(out var action) ? action.Run() : throw NotConfigured(what);

    /// <summary>Performs the next action, which must finish at once (for synchronous operations such as listen).</summary>
    public T RunSynchronously(string what, string operation)
    {
        var pending = Next(what);
        if (!pending.IsCompleted)
        {
            throw new InvalidOperationException(
                $"{operation} is synchronous: script it with actions that finish at once (Return, Raise), not ones that wait.");
        }

        return pending.GetAwaiter().GetResult();
    }

    /// <summary>Performs the next action, waiting (cancellably) until one is queued.</summary>
    public async ValueTask<T> NextOrWaitAsync()
    {
        while (true)
        {
            if (_actions.TryDequeue(out var action))
            {
                return await action.Run();
            }

            var frame = FiberFrame.Require();
            var w = new Waiter(frame.Fiber.Domain) { TraceReason = Tracing.TraceReason.Mock };
            w.Attach(frame.Cancel);
            _waiting.Add(w);
            try
            {
                await w.VoidTask;
            }
            finally
            {
                _waiting.Remove(w);
            }
        }
    }

    private static InvalidOperationException NotConfigured(string what) => new($"Mock {what} handler not configured");
}
