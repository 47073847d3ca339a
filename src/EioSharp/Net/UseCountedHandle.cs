namespace EioSharp.Net;

/// <summary>
/// Shared ownership of an OS resource (a socket or a file descriptor): operations in flight hold a use, and the resource
/// is released only once it has been closed and no operation is using it (S29: closing never pulls the resource from under
/// an operation, even one on another domain).
/// </summary>
/// <remarks>Invariant: <c>_state</c> = (closed ? 1 : 0) | (uses &lt;&lt; 1). <see cref="Release"/> runs exactly once, called by
/// whoever moves the state to "closed with no uses".</remarks>
internal abstract class UseCountedHandle
{
    private int _state;

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

    /// <summary>Ends a use taken by <see cref="TryUse"/>; releases the resource if it was closed meanwhile.</summary>
    public void EndUse()
    {
        if (Interlocked.Add(ref _state, -2) == 1)
        {
            Release();
        }
    }

    /// <summary>Closes the handle; the resource is released once no operation uses it. Idempotent.</summary>
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
                    Release();
                }

                return true;
            }
        }
    }

    /// <summary>Releases the OS resource; called exactly once.</summary>
    protected abstract void Release();
}
