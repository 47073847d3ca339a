using System.Net.Sockets;

namespace EioSharp.Net;

/// <summary>
/// Shared ownership of one OS socket: operations in flight hold a use, and the socket is disposed only when it has
/// been closed and no operation is using it (S29).
/// </summary>
/// <remarks>Invariant: <c>_state</c> = (closed ? 1 : 0) | (uses &lt;&lt; 1). The socket is disposed exactly once, by whoever
/// moves the state to "closed with no uses".</remarks>
internal sealed class SocketHandle(Socket socket)
{
    private int _state;

    public Socket Socket { get; } = socket;

    public bool IsClosed => (Volatile.Read(ref _state) & 1) != 0;

    /// <summary>Takes a use; false if the handle is closed.</summary>
    public bool TryUse()
    {
        while (true)
        {
            int s = Volatile.Read(ref _state);
            if ((s & 1) != 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _state, s + 2, s) == s)
            {
                return true;
            }
        }
    }

    public void EndUse()
    {
        if (Interlocked.Add(ref _state, -2) == 1)
        {
            Dispose();
        }
    }

    /// <summary>Closes the handle; the socket is disposed once no operation uses it. Idempotent.</summary>
    /// <returns>True if this call closed it.</returns>
    public bool Close()
    {
        while (true)
        {
            int s = Volatile.Read(ref _state);
            if ((s & 1) != 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _state, s | 1, s) == s)
            {
                if (s == 0)
                {
                    Dispose();
                }

                return true;
            }
        }
    }

    private void Dispose()
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
