namespace EioSharp.Fs;

/// <summary>Runs a blocking call (a filesystem system call) off the domain and awaits it in the calling fiber.</summary>
/// <remarks>
/// <para>
/// Stand-in for <c>Systhread.RunAsync</c> (Eio: <c>Eio_unix.run_in_systhread</c>), which is being written in another
/// branch; when it is merged, replace the body of <see cref="RunAsync{T}(Func{T})"/> with a call to it. Everything in
/// <c>Fs</c> goes through this one class.
/// </para>
/// <para>
/// <b>Scheduling</b>: the call runs on the .NET thread pool (<see cref="Task.Run{TResult}(Func{TResult})"/>); the
/// fiber awaits it without <c>ConfigureAwait(false)</c>, so it resumes on its own domain (S17a). Other fibers of the
/// domain keep running meanwhile.
/// </para>
/// <para>
/// <b>Cancellation</b>: the fiber's cancellation is checked when the operation starts (S13). A call that has started is
/// not interrupted: the fiber waits for it and gets its result (like <c>run_in_systhread</c>), because a system call
/// such as <c>rename</c> or <c>fsync</c> cannot be abandoned half-way without leaving its effect unknown.
/// </para>
/// </remarks>
internal static class BlockingOffload
{
    /// <summary>Checks the current fiber's cancellation, then runs <paramref name="call"/> on the thread pool and awaits it.</summary>
    /// <exception cref="CancelledException">The fiber was already cancelled; <paramref name="call"/> was not run.</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber.</exception>
    public static async Task<T> RunAsync<T>(Func<T> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        Fiber.Check();
        return await Task.Run(call);
    }

    /// <summary>As <see cref="RunAsync{T}(Func{T})"/> for a call without a result.</summary>
    /// <exception cref="CancelledException">The fiber was already cancelled; <paramref name="call"/> was not run.</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber.</exception>
    public static async Task RunAsync(Action call)
    {
        ArgumentNullException.ThrowIfNull(call);
        Fiber.Check();
        await Task.Run(call);
    }
}
