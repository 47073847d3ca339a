using System.Net.Sockets;

namespace EioSharp.Net;

/// <summary>A network operation failed (connection refused or reset, address in use, host not found...).</summary>
/// <remarks>Eio: <c>Eio.Io (Net.E _, _)</c>. Derives from <see cref="IOException"/> so flow users can handle all I/O errors alike.</remarks>
public sealed class NetException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed, naming the address or host.</param>
    /// <param name="error">The socket error code.</param>
    /// <param name="inner">The underlying exception.</param>
    public NetException(string message, SocketError error, Exception? inner = null)
        : base(message, inner)
    {
        SocketError = error;
    }

    /// <summary>The socket error code (for example <see cref="SocketError.ConnectionRefused"/>).</summary>
    public SocketError SocketError { get; }

    internal static Exception From(SocketException e, string what) => new NetException($"{what}: {e.Message}", e.SocketErrorCode, e);
}
