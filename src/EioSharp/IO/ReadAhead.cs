using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace EioSharp.IO;

/// <summary>
/// One read of a flow that a fiber starts and leaves in flight while it waits for something else, with no second fiber
/// to hold it: when the read completes, it resumes the starting fiber's <see cref="TakeAsync"/> if that is what the fiber
/// waits for (directly: the read's own completion runs the fiber on, no further hop through the run queue), and otherwise
/// calls the owner's callback (on the fiber's domain, as the fiber's code), which typically adds an event to a queue the
/// fiber waits on. The result is kept until it is taken (<see cref="TryTake"/>, <see cref="TakeAsync"/>); then the next
/// read can be started. Reused for any number of reads, one at a time.
/// </summary>
/// <remarks>
/// <para>Use: a server whose connection waits for a command to complete (a blocking pop) but must notice at once that its
/// client went away, and keep what the client sends meanwhile. Without this, a second fiber reads and reports each
/// read into the queue: one run of that fiber to start the read, one when it completes, one more for the connection.</para>
/// <para><b>Cancellation</b>: the read runs in a cancel context of its own, a child of the context that was current when
/// <see cref="Start"/> was called: it is cancelled with the starting fiber (its switch), or alone by <see cref="Cancel"/>.
/// A cancelled read's completion still arrives; its result is what the flow's read gave (the bytes when the read won the
/// race, else its <see cref="CancelledException"/>), so nothing read is lost. <see cref="TakeAsync"/> is not a
/// cancellation point of its own: it ends when the read does (and a cancellation of the fiber cancels the read).</para>
/// <para><b>Thread safety</b>: none; the starting fiber's domain only. <see cref="Start"/>, <see cref="TakeAsync"/> and
/// <see cref="TryTake"/> are called by one fiber, which must be the one that started the read.</para>
/// <para>No Eio counterpart (in Eio a fiber is cheap enough to hold the read: <c>Fiber.fork</c> and a stream); the pattern is
/// .NET's <c>ManualResetValueTaskSourceCore</c> reused per read.</para>
/// </remarks>
public sealed class ReadAhead : IValueTaskSource<int>
{
    private static readonly Action<object?> s_onReadDone = static s => ((ReadAhead)s!).OnReadDone();

    private readonly IFlowSource _source;
    private readonly Action? _onCompleted;
    private readonly Action _readDone; // OnReadDone as the Action an awaiter takes (made once)
    private ValueTask<int> _read;
    private int _bytes;
    private ExceptionDispatchInfo? _error;
    private byte _state; // Idle, InFlight or Completed
    private FiberFrame? _frame; // the frame Start was called in: the code resumed by the read runs in it
    private CancelContext? _cancel; // the reads' context (a child of _frame's), reused until it is cancelled
    private InnerFrame? _inner; // _frame's fiber in _cancel: current while the read is started, so the read registers there
    private Action<object?>? _continuation; // TakeAsync's waiter
    private object? _continuationState;
    private short _version;

    private const byte Idle = 0;
    private const byte InFlight = 1;
    private const byte Completed = 2;

    /// <summary>Creates a reader of <paramref name="source"/> (no read is started yet).</summary>
    /// <param name="source">The flow to read.</param>
    /// <param name="onCompleted">Called when a read completes and no <see cref="TakeAsync"/> waits for it: on the starting
    /// fiber's domain, as that fiber's code (it must not suspend, and should not throw: an exception stops the domain as a
    /// throwing continuation does). Null: nothing is called (the owner polls <see cref="IsCompleted"/>).</param>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
    public ReadAhead(IFlowSource source, Action? onCompleted = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _onCompleted = onCompleted;
        _readDone = OnReadDone;
    }

    /// <summary>True from <see cref="Start"/> until the read's result is taken (in flight or completed).</summary>
    public bool IsPending => _state != Idle;

    /// <summary>True when the read has completed and its result is not yet taken (<see cref="TryTake"/> returns it).</summary>
    public bool IsCompleted => _state == Completed;

    /// <summary>Starts one read into <paramref name="buffer"/>, from the calling fiber, and returns without waiting.</summary>
    /// <param name="buffer">Where the flow reads to; must stay untouched until the result is taken.</param>
    /// <returns>True when the read completed at once (its result is ready; the callback is not called for it); false when
    /// it is in flight.</returns>
    /// <exception cref="InvalidOperationException">A read is pending (its result not taken), or not called from a fiber.</exception>
    /// <exception cref="CancelledException">The calling fiber is cancelled.</exception>
    /// <remarks>A read that fails at once keeps its exception for <see cref="TryTake"/>/<see cref="TakeAsync"/> (true);
    /// an exception the flow throws from its <c>ReadAsync</c> call itself is thrown here (nothing is then pending).</remarks>
    public bool Start(Memory<byte> buffer)
    {
        if (_state != Idle)
        {
            throw new InvalidOperationException("A read is already pending: take its result first.");
        }

        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        if (_inner is null || _cancel!.IsCancelled || !ReferenceEquals(_frame, frame))
        {
            _cancel?.Detach();
            _cancel = new CancelContext(frame.Fiber.Domain, frame.Cancel, isProtected: false);
            _inner = new InnerFrame(frame.Fiber, _cancel, frame.Switch) { Parent = frame };
            _frame = frame;
        }

        // The read is started with its own frame current: its operation registers with the read's context, and its
        // completion (which the awaiter below records where it runs: the current frame) comes back in that frame.
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(_inner);
        ValueTask<int> read;
        try
        {
            read = _source.ReadAsync(buffer);
            if (!read.IsCompleted)
            {
                _read = read;
                _state = InFlight;
                read.GetAwaiter().UnsafeOnCompleted(_readDone);
                return false;
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        Finish(read);
        return true;
    }

    /// <summary>Cancels the read in flight, if any (its completion still arrives: see the remarks on cancellation).</summary>
    /// <remarks>For an owner that stops reading (its connection ends) with a read in flight: on some backends a read keeps
    /// its socket open until it completes. Does nothing when no read is in flight.</remarks>
    public void Cancel()
    {
        if (_state == InFlight && _cancel is { IsCancelled: false } cancel)
        {
            cancel.Cancel(new OperationCanceledException("The read ahead was cancelled."));
        }
    }

    /// <summary>Takes the result of a completed read.</summary>
    /// <param name="bytes">The bytes read (0: the end of the flow), when true.</param>
    /// <returns>False when no read has completed (none started, or still in flight).</returns>
    /// <exception cref="Exception">The read's own failure (for example <see cref="Net.NetException"/>, or
    /// <see cref="CancelledException"/> for a read cancelled before it read anything), rethrown as taken.</exception>
    public bool TryTake(out int bytes)
    {
        if (_state != Completed)
        {
            bytes = 0;
            return false;
        }

        _state = Idle;
        bytes = _bytes;
        var error = _error;
        _bytes = 0;
        _error = null;
        error?.Throw();
        return true;
    }

    /// <summary>The read's result: at once when it has completed, else when it does (the read's completion resumes the
    /// awaiting fiber directly; the callback is not called for it).</summary>
    /// <returns>The bytes read (0: the end of the flow). Await once.</returns>
    /// <exception cref="InvalidOperationException">No read was started, or the previous <see cref="TakeAsync"/> is still awaited.</exception>
    /// <remarks>The read's failure is thrown from the await (see <see cref="TryTake"/>).</remarks>
    public ValueTask<int> TakeAsync()
    {
        if (_state == Completed)
        {
            try
            {
                TryTake(out int n);
                return new ValueTask<int>(n);
            }
            catch (Exception ex)
            {
                return ValueTask.FromException<int>(ex);
            }
        }

        if (_state == Idle)
        {
            throw new InvalidOperationException("No read was started.");
        }

        if (_continuation is not null)
        {
            throw new InvalidOperationException("The read's result is already being awaited.");
        }

        return new ValueTask<int>(this, _version);
    }

    private void Finish(ValueTask<int> read)
    {
        try
        {
            _bytes = read.GetAwaiter().GetResult();
            _error = null;
        }
        catch (Exception ex)
        {
            _bytes = 0;
            _error = ExceptionDispatchInfo.Capture(ex);
        }

        _state = Completed;
    }

    // The read completed (on the starting fiber's domain, normally in the read's frame: the awaiter ran this where the read
    // resumes its awaiter). A waiting TakeAsync is resumed here, in the starting frame; otherwise the owner is told.
    private void OnReadDone()
    {
        var frame = _frame!;
        if (!ReferenceEquals(Domain.Current, frame.Fiber.Domain))
        {
            frame.Fiber.Domain.Enqueue(s_onReadDone, this, frame); // not expected: a flow that completes elsewhere
            return;
        }

        var read = _read;
        _read = default;
        Finish(read);
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(frame);
        try
        {
            if (_continuation is { } continuation)
            {
                var state = _continuationState;
                _continuation = null;
                _continuationState = null;
                continuation(state);
            }
            else
            {
                _onCompleted?.Invoke();
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    private void CheckToken(short token)
    {
        if (token != _version)
        {
            throw new InvalidOperationException("This read was already awaited (a ValueTask may be awaited once).");
        }
    }

    /// <inheritdoc/>
    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token)
    {
        CheckToken(token);
        if (_state != Completed)
        {
            return ValueTaskSourceStatus.Pending;
        }

        return _error is null ? ValueTaskSourceStatus.Succeeded
            : _error.SourceException is OperationCanceledException ? ValueTaskSourceStatus.Canceled
            : ValueTaskSourceStatus.Faulted;
    }

    /// <inheritdoc/>
    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckToken(token);
        if (_state == Completed)
        {
            // Completed between the awaiter's check and this call (not on one domain thread; kept for safety).
            var frame = FiberFrame.Current ?? _frame!;
            frame.Fiber.Domain.Enqueue(continuation, state, frame);
            return;
        }

        _continuation = continuation;
        _continuationState = state;
    }

    /// <inheritdoc/>
    int IValueTaskSource<int>.GetResult(short token)
    {
        CheckToken(token);
        _version++;
        if (!TryTake(out int bytes))
        {
            throw new InvalidOperationException("The read has not completed.");
        }

        return bytes;
    }
}
