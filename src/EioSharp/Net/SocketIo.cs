using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace EioSharp.Net;

/// <summary>Shared plumbing for socket operations on the Portable backend.</summary>
/// <remarks>
/// .NET completes socket operations on its own I/O threads; because the fiber awaits them with the domain's
/// <see cref="SynchronizationContext"/> current, the continuation is posted back to the fiber's domain. The fiber's
/// cancel context is passed as a <see cref="CancellationToken"/>; a cancelled operation surfaces as <see cref="CancelledException"/>.
/// </remarks>
internal static class SocketIo
{
    public static FiberFrame Begin(SocketHandle handle, string what)
    {
        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        if (!handle.TryUse())
        {
            throw new ObjectDisposedException(what, "The socket is closed.");
        }

        return frame;
    }

    public static Exception Map(Exception e, FiberFrame frame, string what) => e switch
    {
        OperationCanceledException when frame.Cancel.IsCancelled => frame.Cancel.MakeCancelled(),
        SocketException se => NetException.From(se, what),
        ObjectDisposedException => new ObjectDisposedException(what, "The socket is closed."),
        _ => e,
    };

    public static async ValueTask<T> Finish<T>(ValueTask<T> op, SocketHandle handle, FiberFrame frame, string what)
    {
        // Traces and dumps show the fiber as suspended on io while .NET runs the operation (ExternalIoWait).
        bool recorded = !op.IsCompleted && ExternalIoWait.Begin(frame);
        try
        {
            return await op;
        }
        catch (Exception e) when (IsSocketError(e))
        {
            throw Map(e, frame, what);
        }
        finally
        {
            if (recorded)
            {
                ExternalIoWait.End(frame);
            }

            handle.EndUse();
        }
    }

    public static bool IsSocketError(Exception e) => e is OperationCanceledException or SocketException or ObjectDisposedException;

    /// <summary>Starts a socket operation with the fiber's cancellation token and finishes it (fast path without awaiting).</summary>
    /// <remarks><paramref name="op"/> should be a static lambda, with what it needs passed as <paramref name="state"/>, so no
    /// closure is allocated per operation.</remarks>
    public static ValueTask<TResult> Run<TState, TResult>(
        SocketHandle handle, string what, TState state, Func<Socket, TState, CancellationToken, ValueTask<TResult>> op)
    {
        var frame = Begin(handle, what);
        ValueTask<TResult> vt;
        try
        {
            vt = op(handle.Socket, state, frame.Cancel.Token);
        }
        catch (Exception e) when (IsSocketError(e))
        {
            handle.EndUse();
            throw Map(e, frame, what);
        }

        return Complete(vt, handle, frame, what);
    }

    /// <summary>Finishes an operation started after <see cref="Begin"/>: the fast path returns at once, the slow path awaits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ValueTask<T> Complete<T>(ValueTask<T> vt, SocketHandle handle, FiberFrame frame, string what)
    {
        if (vt.IsCompletedSuccessfully)
        {
            var r = vt.Result;
            handle.EndUse();
            return new ValueTask<T>(r);
        }

        return Finish(vt, handle, frame, what);
    }
}
