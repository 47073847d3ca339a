namespace EioSharp;

/// <summary>Thrown by the mock backend when nothing can run, no timer is pending and the main fiber has not finished.</summary>
/// <remarks>Eio: <c>Eio_mock.Backend.Deadlock_detected</c>.</remarks>
public sealed class DeadlockDetectedException : Exception
{
    /// <summary>Creates the exception with the standard message.</summary>
    public DeadlockDetectedException()
        : base("Deadlock detected: the run queue is empty, no timer is pending and the main fiber has not finished.")
    {
    }
}
