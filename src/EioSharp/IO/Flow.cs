namespace EioSharp.IO;

/// <summary>A source of bytes (a socket's receive side, a file open for reading, an in-memory buffer).</summary>
/// <remarks>
/// Eio: <c>Eio.Flow.source</c> (<c>single_read</c>). Unlike Eio, end of input is reported as 0 bytes read rather than
/// an exception, as in .NET; <c>BufferedReader</c> turns it into <see cref="EndOfStreamException"/> where a read
/// needs more bytes.
/// <para><b>Cancellation</b>: reads are cancellable; a cancelled read has consumed nothing that is lost, unless the
/// implementation says otherwise.</para>
/// </remarks>
public interface IFlowSource
{
    /// <summary>Reads at least one byte (waiting if none are available), at most <c>buffer.Length</c>.</summary>
    /// <param name="buffer">Where to put the bytes; must not be empty.</param>
    /// <returns>The number of bytes read; 0 only at end of input.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <exception cref="IOException">The underlying device failed.</exception>
    ValueTask<int> ReadAsync(Memory<byte> buffer);
}

/// <summary>A sink of bytes (a socket's send side, a file open for writing, an in-memory buffer).</summary>
/// <remarks>Eio: <c>Eio.Flow.sink</c> (<c>Flow.write</c>).</remarks>
public interface IFlowSink
{
    /// <summary>Writes all of <paramref name="data"/>, waiting as needed.</summary>
    /// <param name="data">The bytes.</param>
    /// <returns>An awaitable that completes when every byte has been handed to the device.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled; some prefix of the data may have been written.</exception>
    /// <exception cref="IOException">The underlying device failed (for example the peer closed the connection).</exception>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data);
}

/// <summary>Which direction(s) of a two-way flow to shut down.</summary>
/// <remarks>Eio: <c>Flow.shutdown_command</c>.</remarks>
public enum ShutdownCommand
{
    /// <summary>No more reads (Eio: <c>`Receive</c>).</summary>
    Receive,

    /// <summary>No more writes: the peer sees end of input (Eio: <c>`Send</c>).</summary>
    Send,

    /// <summary>Both directions (Eio: <c>`All</c>).</summary>
    All,
}

/// <summary>A resource that can be closed; closing is idempotent (S29).</summary>
/// <remarks>Eio: <c>Eio.Resource.close</c>. Closing a resource owned by a switch early removes its release hook.</remarks>
public interface IClosable
{
    /// <summary>Closes the resource. Calling it again does nothing.</summary>
    void Close();
}

/// <summary>A two-way flow such as a TCP connection.</summary>
/// <remarks>Eio: <c>Eio.Flow.two_way</c>.</remarks>
public interface IFlowDuplex : IFlowSource, IFlowSink, IClosable
{
    /// <summary>Shuts down one or both directions (half-close).</summary>
    /// <param name="command">Which direction(s).</param>
    /// <returns>An awaitable.</returns>
    /// <exception cref="IOException">The device failed.</exception>
    /// <remarks>Eio: <c>Flow.shutdown</c>.</remarks>
    ValueTask ShutdownAsync(ShutdownCommand command);
}
