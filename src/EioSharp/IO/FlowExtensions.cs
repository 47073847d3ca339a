using System.Text;

namespace EioSharp.IO;

/// <summary>Helpers on flows: copying, exact reads, string writes, and adapters to and from <see cref="Stream"/>.</summary>
/// <remarks>
/// Eio: <c>Eio.Flow</c> (<c>copy</c>, <c>read_exact</c>, <c>copy_string</c>, <c>string_source</c>, <c>buffer_sink</c>).
/// <para><b>Scheduling</b>: every helper runs in the calling fiber; none forks.</para>
/// </remarks>
public static class Flow
{
    /// <summary>The size of the chunk <see cref="CopyToAsync(IFlowSource, IFlowSink)"/> reads at a time (bytes); one page-friendly 64 KiB buffer.</summary>
    public const int CopyChunkSize = 64 * 1024;

    /// <summary>A flow that reads as end of input at once and discards everything written.</summary>
    /// <remarks>Eio: a <c>Flow.string_source ""</c> combined with a discarding sink (<c>/dev/null</c>).</remarks>
    public static IFlowDuplex Null => NullFlow.Instance;

    /// <summary>Copies everything from <paramref name="source"/> to <paramref name="sink"/> until end of input.</summary>
    /// <param name="source">The source; read until it reports end of input.</param>
    /// <param name="sink">The sink; each chunk read is written in full before the next read.</param>
    /// <returns>The number of bytes copied.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled; a prefix of the data may have been copied.</exception>
    /// <exception cref="IOException">Either device failed.</exception>
    /// <remarks>Eio: <c>Flow.copy src dst</c>. An in-memory <see cref="BufferSource"/> is written to the sink directly, without an intermediate buffer.</remarks>
    public static async ValueTask<long> CopyToAsync(this IFlowSource source, IFlowSink sink)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sink);
        if (source is BufferSource memory)
        {
            return await memory.CopyRemainingToAsync(sink);
        }

        var buffer = new byte[CopyChunkSize];
        long total = 0;
        while (true)
        {
            int n = await source.ReadAsync(buffer);
            if (n == 0)
            {
                return total;
            }

            await sink.WriteAsync(buffer.AsMemory(0, n));
            total += n;
        }
    }

    /// <summary>Reads exactly <c>buffer.Length</c> bytes, waiting as needed.</summary>
    /// <param name="source">The source.</param>
    /// <param name="buffer">Filled completely; an empty buffer returns at once.</param>
    /// <returns>An awaitable that completes when the buffer is full.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
    /// <exception cref="EndOfStreamException">The source ended before the buffer was full.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <exception cref="IOException">The device failed.</exception>
    /// <remarks>Eio: <c>Flow.read_exact</c>.</remarks>
    public static async ValueTask ReadExactlyAsync(this IFlowSource source, Memory<byte> buffer)
    {
        ArgumentNullException.ThrowIfNull(source);
        int got = 0;
        while (got < buffer.Length)
        {
            int n = await source.ReadAsync(buffer[got..]);
            if (n == 0)
            {
                throw new EndOfStreamException($"End of input after {got} of {buffer.Length} bytes.");
            }

            got += n;
        }
    }

    /// <summary>Writes <paramref name="text"/> encoded as UTF-8.</summary>
    /// <param name="sink">The sink.</param>
    /// <param name="text">The text.</param>
    /// <returns>An awaitable that completes when every byte was written.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <exception cref="IOException">The device failed.</exception>
    /// <remarks>Eio: <c>Flow.copy_string</c>.</remarks>
    public static ValueTask WriteStringAsync(this IFlowSink sink, string text)
    {
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(text);
        return sink.WriteAsync(Encoding.UTF8.GetBytes(text));
    }

    /// <summary>Wraps a source as a readable <see cref="Stream"/>, for .NET APIs that take streams.</summary>
    /// <param name="source">The flow; if it is also an <see cref="IFlowSink"/> the stream can write too.</param>
    /// <param name="ownsFlow">If true, disposing the stream closes the flow when it is <see cref="IClosable"/>.</param>
    /// <returns>A stream that cannot seek.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
    /// <remarks>
    /// Eio has no counterpart (Eio's flows are the only I/O type).
    /// <para><b>Scheduling</b>: use only the asynchronous members (<c>ReadAsync</c>, <c>WriteAsync</c>, <c>CopyToAsync</c>...)
    /// and only from a fiber; the synchronous <c>Read</c>/<c>Write</c> throw <see cref="NotSupportedException"/>, because
    /// blocking the domain's thread would stop every fiber on it.</para>
    /// <para>.NET consumers (<see cref="StreamReader"/>, <see cref="StreamWriter"/>, <see cref="Stream.CopyToAsync(Stream)"/>...)
    /// await with <c>ConfigureAwait(false)</c>. When a stream operation really suspends, the consumer's continuation is run on
    /// the fiber's domain with no <see cref="SynchronizationContext"/> installed, so the consumer's nested
    /// <c>ConfigureAwait(false)</c> continuations run inline there too instead of hopping to the thread pool; the flow itself
    /// is always called with the domain's context. The whole consumer therefore runs on the domain, in a deterministic order,
    /// and works on the mock backend (over a <c>MockFlow</c> whose reads wait for promises, for example). A consumer that
    /// awaits some other, truly external operation with <c>ConfigureAwait(false)</c> still continues on the thread pool; the
    /// stream then runs its next call on the domain of the fiber that called <c>AsStream</c>, in that fiber's cancel
    /// context (on the mock backend, such outside work is invisible to the domain and can be reported as a deadlock).</para>
    /// <para><b>Cancellation</b>: operations are cancelled by the fiber's cancellation, not by the token passed to them;
    /// a token that is already cancelled makes the call throw <see cref="OperationCanceledException"/> at once.</para>
    /// </remarks>
    public static Stream AsStream(this IFlowSource source, bool ownsFlow = true) => Wrap(source, ownsFlow);

    /// <summary>Wraps a sink as a writable <see cref="Stream"/>, for .NET APIs that take streams.</summary>
    /// <param name="sink">The flow; if it is also an <see cref="IFlowSource"/> the stream can read too.</param>
    /// <param name="ownsFlow">If true, disposing the stream closes the flow when it is <see cref="IClosable"/>.</param>
    /// <returns>A stream that cannot seek.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sink"/> is null.</exception>
    /// <remarks>See <see cref="AsStream(IFlowSource, bool)"/> for scheduling and cancellation.</remarks>
    public static Stream AsStream(this IFlowSink sink, bool ownsFlow = true) => Wrap(sink, ownsFlow);

    /// <summary>Wraps a two-way flow as a readable and writable <see cref="Stream"/>.</summary>
    /// <param name="flow">The flow.</param>
    /// <param name="ownsFlow">If true, disposing the stream closes the flow.</param>
    /// <returns>A stream that cannot seek.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="flow"/> is null.</exception>
    /// <remarks>See <see cref="AsStream(IFlowSource, bool)"/> for scheduling and cancellation.</remarks>
    public static Stream AsStream(this IFlowDuplex flow, bool ownsFlow = true) => Wrap(flow, ownsFlow);

    private static Stream Wrap(object flow, bool ownsFlow)
    {
        ArgumentNullException.ThrowIfNull(flow);
        return new FlowStream(flow as IFlowSource, flow as IFlowSink, ownsFlow ? flow as IClosable : null);
    }

    /// <summary>Wraps a <see cref="Stream"/> as a two-way flow.</summary>
    /// <param name="stream">The stream; reads need <see cref="Stream.CanRead"/>, writes need <see cref="Stream.CanWrite"/>.</param>
    /// <param name="ownsStream">If true, <see cref="IClosable.Close"/> disposes the stream.</param>
    /// <returns>A flow over the stream. <see cref="IFlowDuplex.ShutdownAsync(ShutdownCommand)"/> with <see cref="ShutdownCommand.Send"/>
    /// flushes the stream (a stream has no half-close).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    /// <remarks>
    /// Eio: <c>Eio_unix.Fd</c>-backed flows are the nearest. The stream's asynchronous methods are awaited inside the
    /// calling fiber, so the fiber resumes on its own domain; the fiber's <see cref="Fiber.CancellationToken"/> is passed
    /// to them, and a cancellation surfaces as <see cref="CancelledException"/>.
    /// </remarks>
    public static IFlowDuplex FromStream(Stream stream, bool ownsStream = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new StreamFlow(stream, ownsStream);
    }
}
