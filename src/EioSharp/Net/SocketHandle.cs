using System.Net.Sockets;

namespace EioSharp.Net;

/// <summary>
/// Shared ownership of one OS socket: operations in flight hold a use, and the socket is disposed only when it has
/// been closed and no operation is using it (S29).
/// </summary>
internal sealed class SocketHandle(Socket socket) : UseCountedHandle
{
    public Socket Socket { get; } = socket;

    protected override void Release()
    {
        try
        {
            Socket.Dispose();
        }
        catch (SocketException)
        {
            // Closing an already-broken socket: nothing more to release.
        }
    }
}
