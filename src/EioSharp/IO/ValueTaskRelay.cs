using System.Threading.Tasks.Sources;

namespace EioSharp.IO;

/// <summary>
/// A reusable <see cref="IValueTaskSource{TResult}"/> that hands a caller one pending <see cref="ValueTask{TResult}"/>
/// of <typeparamref name="TPending"/> at a time as a <see cref="ValueTask{TResult}"/> of <typeparamref name="TResult"/>,
/// converting the result with <see cref="Complete"/> when the caller takes it: what an <c>async</c> wrapper method would
/// do, without its per-wait box, continuation delegate and context continuation.
/// </summary>
/// <remarks>
/// <para>Use it for an operation that an object performs one at a time (a reader's fill, a session's pending read): keep
/// one instance per owner and call <see cref="StartRelay"/> for each wait that did not complete synchronously.</para>
/// <para>Scheduling: the caller's continuation is registered on the pending operation's own awaiter with the flags the
/// caller's <c>await</c> passed, so it runs where the pending operation would have resumed it (in a fiber, the fiber's
/// domain); the relay adds no hop. Cancellation and errors are the pending operation's: a faulted or cancelled operation
/// rethrows from <c>GetResult</c> and <see cref="Complete"/> is not called.</para>
/// <para>Misuse: each <see cref="ValueTask{TResult}"/> it returns may be awaited once; a second <c>GetResult</c>,
/// <c>GetStatus</c> or <c>OnCompleted</c> with the old token throws <see cref="InvalidOperationException"/> (the version
/// token moves on when the result is taken). Not thread-safe: one wait at a time.</para>
/// <para>No Eio counterpart (Eio's effects need no awaiter objects); the pattern is .NET's
/// <c>ManualResetValueTaskSourceCore</c> reused per operation.</para>
/// </remarks>
/// <typeparam name="TPending">The result type of the operation being waited for.</typeparam>
/// <typeparam name="TResult">The result type the caller sees.</typeparam>
public abstract class ValueTaskRelay<TPending, TResult> : IValueTaskSource<TResult>
{
    private ValueTask<TPending> _pending;
    private short _version;
    private Action? _onDone;
    private Action<object?>? _continuation;
    private object? _continuationState;

    /// <summary>Starts relaying <paramref name="pending"/>: returns the caller's <see cref="ValueTask{TResult}"/>, valid
    /// for one await. The previous relayed wait must have been taken (its result read) first.</summary>
    /// <param name="pending">The operation to wait for (usually not yet completed).</param>
    /// <returns>A task that completes when <paramref name="pending"/> does, with <see cref="Complete"/>'s value.</returns>
    protected ValueTask<TResult> StartRelay(ValueTask<TPending> pending)
    {
        _pending = pending;
        return new ValueTask<TResult>(this, _version);
    }

    /// <summary>Converts the pending operation's result into the caller's, when the caller takes it (once per wait).</summary>
    /// <param name="result">The pending operation's result.</param>
    /// <returns>The caller's result.</returns>
    protected abstract TResult Complete(TPending result);

    private void CheckToken(short token)
    {
        if (token != _version)
        {
            throw new InvalidOperationException("This operation was already awaited (a ValueTask may be awaited once).");
        }
    }

    /// <inheritdoc/>
    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckToken(token);
        var p = _pending;
        return p.IsCompletedSuccessfully ? ValueTaskSourceStatus.Succeeded
            : p.IsCanceled ? ValueTaskSourceStatus.Canceled
            : p.IsFaulted ? ValueTaskSourceStatus.Faulted
            : ValueTaskSourceStatus.Pending;
    }

    /// <inheritdoc/>
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckToken(token);
        _continuation = continuation;
        _continuationState = state;
        var onDone = _onDone ??= OnDone;
        // The pending operation's awaiter captures the same context the caller's await would (it is called from the
        // caller's await).
        if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0)
        {
            _pending.GetAwaiter().OnCompleted(onDone);
        }
        else
        {
            _pending.GetAwaiter().UnsafeOnCompleted(onDone);
        }
    }

    private void OnDone()
    {
        var c = _continuation!;
        var s = _continuationState;
        _continuation = null;
        _continuationState = null;
        c(s);
    }

    /// <inheritdoc/>
    public TResult GetResult(short token)
    {
        CheckToken(token);
        var p = _pending;
        _pending = default;
        _version++;
        return Complete(p.GetAwaiter().GetResult());
    }
}
