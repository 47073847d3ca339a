namespace EioSharp.IO;

/// <summary>A two-way flow over a <see cref="System.IO.Stream"/> (see <see cref="Flow.FromStream(Stream, bool)"/>).</summary>
internal sealed class StreamFlow : IFlowDuplex
{
    private readonly bool _ownsStream;
    private int _closed;

    internal StreamFlow(Stream stream, bool ownsStream)
    {
        Stream = stream;
        _ownsStream = ownsStream;
    }

    internal Stream Stream { get; }

    public ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        var token = Start();
        var pending = Stream.ReadAsync(buffer, token);
        return pending.IsCompletedSuccessfully ? pending : AwaitExternalAsync(pending);
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        var token = Start();
        var pending = Stream.WriteAsync(data, token);
        return pending.IsCompletedSuccessfully ? pending : AwaitExternalAsync(pending);
    }

    public ValueTask ShutdownAsync(ShutdownCommand command)
    {
        if (command == ShutdownCommand.Receive || !Stream.CanWrite)
        {
            return ValueTask.CompletedTask;
        }

        var token = Start();
        return AwaitExternalAsync(new ValueTask(Stream.FlushAsync(token)));
    }

    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0 && _ownsStream)
        {
            Stream.Dispose();
        }
    }

    /// <summary>Checks that the flow is open and the fiber not cancelled; returns the fiber's token for the stream call.</summary>
    private CancellationToken Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closed) != 0, this);
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        return frame.Cancel.Token;
    }

    // The stream completes on a .NET thread; the await resumes on the fiber's domain through its SynchronizationContext.
    // BeginExternal tells the mock backend that an outside completion is pending, so it does not report a deadlock.
    private static async ValueTask<int> AwaitExternalAsync(ValueTask<int> pending)
    {
        var frame = FiberFrame.Require();
        var domain = frame.Fiber.Domain;
        domain.BeginExternal();
        bool recorded = !pending.IsCompleted && ExternalIoWait.Begin(frame); // traces and dumps: suspended on io

        try
        {
            return await pending;
        }
        catch (OperationCanceledException ex) when (ex is not CancelledException && frame.Cancel.IsCancelled)
        {
            throw frame.Cancel.MakeCancelled();
        }
        finally
        {
            if (recorded)
            {
                ExternalIoWait.End(frame);
            }

            domain.EndExternal();
        }
    }

    private static async ValueTask AwaitExternalAsync(ValueTask pending)
    {
        var frame = FiberFrame.Require();
        var domain = frame.Fiber.Domain;
        domain.BeginExternal();
        bool recorded = !pending.IsCompleted && ExternalIoWait.Begin(frame); // traces and dumps: suspended on io

        try
        {
            await pending;
        }
        catch (OperationCanceledException ex) when (ex is not CancelledException && frame.Cancel.IsCancelled)
        {
            throw frame.Cancel.MakeCancelled();
        }
        finally
        {
            if (recorded)
            {
                ExternalIoWait.End(frame);
            }

            domain.EndExternal();
        }
    }
}

/// <summary>A <see cref="System.IO.Stream"/> over flows (see <see cref="Flow.AsStream(IFlowSource, bool)"/>).</summary>
internal sealed class FlowStream : Stream
{
    private const string SyncMessage =
        "A flow stream supports only asynchronous reads and writes from a fiber: blocking would stop every fiber on the domain.";

    private readonly IFlowSource? _source;
    private readonly IFlowSink? _sink;
    private readonly IClosable? _owned;

    // The fiber that created the stream: calls arriving on another thread (a .NET consumer that used ConfigureAwait(false))
    // are run on its domain, in its cancel context.
    private readonly FiberFrame? _frame;
    private int _disposed;

    internal FlowStream(IFlowSource? source, IFlowSink? sink, IClosable? owned)
    {
        _source = source;
        _sink = sink;
        _owned = owned;
        _frame = FiberFrame.Current;
    }

    public override bool CanRead => _source is not null && _disposed == 0;

    public override bool CanWrite => _sink is not null && _disposed == 0;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var source = _source ?? throw new NotSupportedException("The flow is not a source.");
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (buffer.IsEmpty)
        {
            return new ValueTask<int>(0);
        }

        if (IsOffDomain(out var frame))
        {
            return new ValueTask<int>(RunOnDomainAsync(frame, () => source.ReadAsync(buffer)));
        }

        var consumerContext = EnterFiberContext();
        try
        {
            return OnDomain(source.ReadAsync(buffer));
        }
        finally
        {
            LeaveFiberContext(consumerContext);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var sink = _sink ?? throw new NotSupportedException("The flow is not a sink.");
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (buffer.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        if (IsOffDomain(out var frame))
        {
            return new ValueTask(RunOnDomainAsync(frame, async () => { await sink.WriteAsync(buffer); return 0; }));
        }

        var consumerContext = EnterFiberContext();
        try
        {
            return OnDomain(sink.WriteAsync(buffer));
        }
        finally
        {
            LeaveFiberContext(consumerContext);
        }
    }

    // A consumer continuation resumed by a pending operation of this stream runs on the domain without a
    // SynchronizationContext (see OnDomain), as code of the fiber that awaited it (FiberFrame.RunForeign). The flow is fiber
    // code, so it must run with that fiber installed as the context: its own awaits then resume on the domain, in the fiber.
    // Returns the consumer's context to restore.
    private static SynchronizationContext? EnterFiberContext()
    {
        var current = SynchronizationContext.Current;
        SynchronizationContext? fiberContext = FiberFrame.Current ?? Domain.Current?.SyncContext; // null off any domain: the flow call reports that itself
        if (fiberContext is not null && !ReferenceEquals(current, fiberContext))
        {
            SynchronizationContext.SetSynchronizationContext(fiberContext);
        }

        return current;
    }

    private static void LeaveFiberContext(SynchronizationContext? consumerContext)
    {
        if (!ReferenceEquals(SynchronizationContext.Current, consumerContext))
        {
            SynchronizationContext.SetSynchronizationContext(consumerContext);
        }
    }

    private bool IsOffDomain(out FiberFrame frame)
    {
        frame = _frame!;
        return _frame is not null && !_frame.Fiber.Domain.IsCurrent;
    }

    /// <summary>Runs a flow operation on the creating fiber's domain, in that fiber's context, for a caller on another thread.</summary>
    private static Task<int> RunOnDomainAsync(FiberFrame frame, Func<ValueTask<int>> operation)
    {
        var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        frame.Fiber.Domain.Enqueue(_ => _ = RunAsync(), null);
        return tcs.Task;

        async Task RunAsync()
        {
            FiberFrame.Resume(frame); // from a queued callback in no fiber; restored by this method's builder
            try
            {
                tcs.SetResult(await operation());
            }
            catch (Exception ex)
            {
                tcs.SetException(ex);
            }
        }
    }

    // .NET stream consumers (StreamReader, CopyToAsync...) await with ConfigureAwait(false). On a domain thread, which has a
    // SynchronizationContext, the runtime then queues their continuation to the thread pool instead of running it inline,
    // and fiber code would continue off its domain. A pending operation is therefore completed through a Waiter, whose
    // continuations always run on the owning domain whatever the await's configuration. The consumer's nested async methods
    // (StreamReader.ReadLineAsync awaits ReadBufferAsync, which awaits this stream) also await with ConfigureAwait(false),
    // and the runtime inlines such a continuation only on a thread with no SynchronizationContext: the waiter therefore runs
    // a continuation registered without the scheduling context with none installed (InlineForeignContinuations), so the
    // whole consumer chain runs on the domain, and its completion posts the fiber's own continuation to the run queue. No
    // work goes through the thread pool, so the mock backend sees every step (no false deadlock) and order is deterministic.
    private static ValueTask<int> OnDomain(ValueTask<int> pending)
    {
        if (pending.IsCompleted)
        {
            return pending;
        }

        var w = new Waiter<int>(FiberFrame.Require().Fiber.Domain) { InlineForeignContinuations = true };
        _ = ForwardAsync(pending, w);
        return w.Task;

        static async Task ForwardAsync(ValueTask<int> pending, Waiter<int> w)
        {
            try
            {
                w.TryComplete(await pending);
            }
            catch (Exception ex)
            {
                w.TryFail(ex);
            }
        }
    }

    private static ValueTask OnDomain(ValueTask pending)
    {
        if (pending.IsCompleted)
        {
            return pending;
        }

        var w = new Waiter(FiberFrame.Require().Fiber.Domain) { InlineForeignContinuations = true };
        _ = ForwardAsync(pending, w);
        return w.VoidTask;

        static async Task ForwardAsync(ValueTask pending, Waiter w)
        {
            try
            {
                await pending;
                w.TryComplete(true);
            }
            catch (Exception ex)
            {
                w.TryFail(ex);
            }
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_sink is not BufferedWriter w)
        {
            return Task.CompletedTask;
        }

        if (IsOffDomain(out var frame))
        {
            return RunOnDomainAsync(frame, async () => { await w.FlushAsync(); return 0; });
        }

        var consumerContext = EnterFiberContext();
        try
        {
            return OnDomain(w.FlushAsync()).AsTask();
        }
        finally
        {
            LeaveFiberContext(consumerContext);
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException(SyncMessage);

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException(SyncMessage);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && disposing)
        {
            _owned?.Close();
        }

        base.Dispose(disposing);
    }
}
