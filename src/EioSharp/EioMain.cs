using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.IO;
using EioSharp.Time;

namespace EioSharp;

/// <summary>The entry point: turns the calling thread into the main domain and runs the main fiber.</summary>
/// <remarks>
/// Eio: <c>Eio_main.run</c>. The backend is chosen by the <c>EIOSHARP_BACKEND</c> environment variable
/// (<c>portable</c>, the default and currently the only real backend).
/// <para><b>Scheduling</b>: returns when the main fiber finishes. Fibers must be owned by switches inside it, so nothing
/// started by the program outlives <see cref="Run(Func{Stdenv, Task})"/>.</para>
/// </remarks>
public static class EioMain
{
    /// <summary>Runs <paramref name="main"/> as the main fiber of a new main domain on the calling thread.</summary>
    /// <param name="main">The program; receives the capabilities.</param>
    /// <exception cref="Exception">Whatever <paramref name="main"/> throws, rethrown on the calling thread.</exception>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    public static void Run(Func<Stdenv, Task> main) =>
        Run<bool>(async env => { await main(env); return true; });

    /// <summary>Runs <paramref name="main"/> as the main fiber and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The program.</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    public static T Run<T>(Func<Stdenv, Task<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (Domain.Current is not null)
        {
            throw new InvalidOperationException("EioMain.Run was called from a thread that is already a domain.");
        }

        var domain = Domain.CreateReal(null, isMain: true);
        var fs = DirectoryCapability.CreateFs();
        var cwd = DirectoryCapability.CreateCwd();
        var env = new Stdenv(
            SystemClock.Instance, SystemMonoClock.Instance, new ThreadDomainManager(), "portable",
            Stdio.OpenStdin(), Stdio.OpenStdout(), Stdio.OpenStderr(), SecureRandomSource.Instance,
            Net.PortableNetwork.Instance, fs: new EioPath(fs, ""), cwd: new EioPath(cwd, ""));
        try
        {
            return domain.RunMain(_ => main(env));
        }
        finally
        {
            cwd.DisposeRoot();
            fs.DisposeRoot();
        }
    }
}
