using System.IO.Pipes;
using EioSharp.IO;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Processes;

/// <summary>One end of an OS pipe from <see cref="ProcessManager.Pipe"/>: a flow that <see cref="ProcessManager.Spawn"/> hands to a
/// child directly (its descriptor becomes the child's stdin/stdout/stderr, with no copying fiber).</summary>
/// <remarks>Eio: the flows returned by <c>Process.pipe</c>. Reads and writes in this process go through .NET's pipe stream
/// (completions resume the fiber on its domain). Closing is idempotent and removes the switch hook (S29).</remarks>
public abstract class ProcessPipeEnd : IClosable
{
    private readonly StreamFlow _flow;
    private readonly ReleaseHook? _hook;
    private readonly Domain? _owner;

    private protected ProcessPipeEnd(Switch sw, SafePipeHandle handle, PipeDirection direction)
    {
        Handle = handle;
        _flow = new StreamFlow(new AnonymousPipeClientStream(direction, handle), ownsStream: true);
        _owner = Domain.Current;
        _hook = sw.OnRelease(Release);
    }

    /// <summary>True once closed.</summary>
    public bool IsClosed => Handle.IsClosed;

    internal SafePipeHandle Handle { get; }

    private protected StreamFlow Flow => _flow;

    /// <summary>Closes this end of the pipe (the other end then sees end of input, or EPIPE).</summary>
    /// <remarks>Eio: <c>Flow.close</c>.</remarks>
    public void Close()
    {
        Release();
        if (_hook is not null && ReferenceEquals(Domain.Current, _owner))
        {
            _hook.Remove();
        }
    }

    private void Release() => _flow.Close();
}

/// <summary>The reading end of a pipe.</summary>
/// <remarks>Eio: <c>Process.pipe</c>'s first flow (<c>&lt;Flow.source; Flow.close&gt;</c>).</remarks>
public sealed class ProcessPipeSource : ProcessPipeEnd, IFlowSource
{
    internal ProcessPipeSource(Switch sw, SafePipeHandle handle)
        : base(sw, handle, PipeDirection.In)
    {
    }

    /// <inheritdoc/>
    public ValueTask<int> ReadAsync(Memory<byte> buffer) => Flow.ReadAsync(buffer);
}

/// <summary>The writing end of a pipe.</summary>
/// <remarks>Eio: <c>Process.pipe</c>'s second flow (<c>&lt;Flow.sink; Flow.close&gt;</c>).</remarks>
public sealed class ProcessPipeSink : ProcessPipeEnd, IFlowSink
{
    internal ProcessPipeSink(Switch sw, SafePipeHandle handle)
        : base(sw, handle, PipeDirection.Out)
    {
    }

    /// <inheritdoc/>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => Flow.WriteAsync(data);
}
