using EioSharp.Domains;

namespace EioSharp.Fs;

/// <summary>Runs a blocking call (a filesystem system call) off the domain and awaits it in the calling fiber.</summary>
/// <remarks>
/// <para>
/// Everything in <c>Fs</c> goes through this one class, which uses <see cref="Systhread.RunAsync{T}(Func{T})"/>
/// (Eio: <c>Eio_unix.run_in_systhread</c>): the call runs on one of the library's own system threads, so slow
/// <c>fsync</c>s never tie up the .NET thread pool, and the fiber resumes on its own domain (S17a).
/// </para>
/// <para>
/// <b>Cancellation</b>: the fiber's cancellation is checked when the operation starts (S13). A call that has started is
/// not interrupted: the fiber waits for it and gets its result, because a system call such as <c>rename</c> or
/// <c>fsync</c> cannot be abandoned half-way without leaving its effect unknown.
/// </para>
/// </remarks>
internal static class BlockingOffload
{
    /// <summary>Checks the current fiber's cancellation, then runs <paramref name="call"/> on a system thread and awaits it.</summary>
    /// <exception cref="CancelledException">The fiber was already cancelled; <paramref name="call"/> was not run.</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber.</exception>
    public static Task<T> RunAsync<T>(Func<T> call) => Systhread.RunAsync(call);

    /// <summary>As <see cref="RunAsync{T}(Func{T})"/> for a call without a result.</summary>
    /// <exception cref="CancelledException">The fiber was already cancelled; <paramref name="call"/> was not run.</exception>
    /// <exception cref="InvalidOperationException">Called outside a fiber.</exception>
    public static Task RunAsync(Action call) => Systhread.RunAsync(call);
}
