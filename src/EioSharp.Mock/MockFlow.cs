using System.Text;
using EioSharp.IO;

namespace EioSharp.Mock;

/// <summary>A scripted two-way flow that traces every read, write, shutdown and close.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Flow</c>. Reads perform the actions queued by <see cref="OnRead(MockAction{string}[])"/> in order; each
/// returns a string whose UTF-8 bytes are the data (what does not fit in the reader's buffer is returned by the next reads,
/// before the next action). With no action queued a read returns end of input. Writes perform the actions queued by
/// <see cref="OnWrite(MockEffect[])"/> (none queued: accept). Trace lines, through <see cref="TraceLog"/>:
/// <c>+flow: read "..."</c>, <c>+flow: wrote "..."</c>, <c>+flow: shutdown send</c>, <c>+flow: closed</c>
/// (strings quoted like OCaml's <c>%S</c>; the label replaces <c>flow</c>).
/// <para><b>Lifetime</b>: <see cref="Close"/> is idempotent (S29): only the first call is traced; reads and writes after it
/// throw <see cref="ObjectDisposedException"/>.</para>
/// <para><b>Thread safety</b>: not thread-safe; use from one domain.</para>
/// </remarks>
public sealed class MockFlow : IFlowDuplex
{
    private readonly Queue<MockAction<string>> _reads = new();
    private readonly Queue<MockEffect> _writes = new();
    private byte[] _leftover = [];
    private int _leftoverOffset;
    private bool _closed;

    /// <summary>Creates a mock flow.</summary>
    /// <param name="label">The name used in trace lines.</param>
    /// <exception cref="ArgumentNullException"><paramref name="label"/> is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Flow.make</c>.</remarks>
    public MockFlow(string label = "flow")
    {
        Label = label ?? throw new ArgumentNullException(nameof(label));
    }

    /// <summary>The name used in trace lines.</summary>
    public string Label { get; }

    /// <summary>Queues actions for the next reads (after those already queued).</summary>
    /// <param name="actions">One action per read: <see cref="MockAction.Return{T}(T)"/> a string, <see cref="MockAction.Raise(Exception)"/>, <see cref="MockAction.AwaitPromise{T}(Promise{T})"/>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Flow.on_read</c>.</remarks>
    public void OnRead(params MockAction<string>[] actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        foreach (var a in actions)
        {
            _reads.Enqueue(a ?? throw new ArgumentNullException(nameof(actions)));
        }
    }

    /// <summary>Queues actions for the next writes (after those already queued).</summary>
    /// <param name="actions">One action per write: <see cref="MockAction.Ok"/>, <see cref="MockAction.Raise(Exception)"/>, <see cref="MockAction.AwaitPromise{T}(Promise{T})"/>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Flow.on_copy_bytes</c> (for failures and delays).</remarks>
    public void OnWrite(params MockEffect[] actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        foreach (var a in actions)
        {
            _writes.Enqueue(a ?? throw new ArgumentNullException(nameof(actions)));
        }
    }

    /// <inheritdoc/>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        Fiber.Check();
        if (_leftoverOffset == _leftover.Length)
        {
            if (!_reads.TryDequeue(out var action))
            {
                return 0;
            }

            var text = await action.Run();
            _leftover = Encoding.UTF8.GetBytes(text ?? string.Empty);
            _leftoverOffset = 0;
            if (_leftover.Length == 0)
            {
                TraceLog.Line($"{Label}: read \"\"");
                return 0;
            }
        }

        int n = Math.Min(buffer.Length, _leftover.Length - _leftoverOffset);
        var chunk = _leftover.AsSpan(_leftoverOffset, n);
        chunk.CopyTo(buffer.Span);
        _leftoverOffset += n;
        TraceLog.Line($"{Label}: read {OCamlQuote.String(chunk)}");
        return n;
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        Fiber.Check();
        if (_writes.TryDequeue(out var action))
        {
            await action.Run();
        }

        TraceLog.Line($"{Label}: wrote {OCamlQuote.String(data.Span)}");
    }

    /// <inheritdoc/>
    public ValueTask ShutdownAsync(ShutdownCommand command)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        TraceLog.Line($"{Label}: shutdown {command.ToString().ToLowerInvariant()}");
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public void Close()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        TraceLog.Line($"{Label}: closed");
    }
}
