using EioSharp.Backends;
using EioSharp.Domains;
using EioSharp.Fs;
using EioSharp.IO;
using EioSharp.Time;

namespace EioSharp;

/// <summary>The entry point: turns the calling thread into the main domain and runs the main fiber.</summary>
/// <remarks>
/// Eio: <c>Eio_main.run</c>, which picks <c>Eio_linux</c> / <c>Eio_posix</c> / <c>Eio_windows</c>; here the backend is a value,
/// <see cref="EioOptions.Backend"/> (<see cref="EioBackend"/>): <c>Portable</c> (the library's default: .NET sockets,
/// completions posted to the domain), <c>Epoll</c> (Linux x64: each domain waits in its own epoll and does its TCP I/O
/// itself), <c>Uring</c> (Linux x64: one io_uring per domain) or <c>Auto</c> (the best of those available here).
/// <para><b>Precedence</b>: a specific backend in the options wins; otherwise (options null, <c>Backend</c> null or
/// <c>Auto</c>) the <c>EIOSHARP_BACKEND</c> environment variable, when set, decides (so CI can run a whole test suite or a
/// server on another backend); otherwise <c>Auto</c> or the default <c>Portable</c>. An unknown name in
/// <c>EIOSHARP_BACKEND</c> is an <see cref="ArgumentException"/>. A backend that cannot run here falls back (uring → epoll →
/// portable) with one note on stderr; <see cref="Stdenv.Backend"/> names the backend in use. See docs/backends.md.</para>
/// <para><b>Tuning</b>: <see cref="EioOptions.BackendOptions"/> (null: <see cref="EioBackendOptions.Default"/>) is handed to
/// every domain of the run; the <c>EIOSHARP_*</c> tuning variables listed on <see cref="EioBackendOptions"/>, when set,
/// override single settings of it (read here, once per run); an invalid value is an <see cref="ArgumentException"/>.</para>
/// <para><b>Filesystem layer</b>: <see cref="EioOptions.FileSystem"/> chooses the layer behind <see cref="Stdenv.Fs"/> and
/// <see cref="Stdenv.Cwd"/> for this run (<see cref="EioFileSystem"/>); when it is null or <c>Auto</c>, the <c>EIOSHARP_FS</c>
/// environment variable (<c>native</c> or <c>portable</c>), when set, decides; otherwise the platform's layer. Another value
/// of the variable is an <see cref="ArgumentException"/> (<see cref="ArgumentException.ParamName"/> <c>EIOSHARP_FS</c>). Every
/// subtree and open file made from the roots keeps the run's layer, so two runs in one process may differ.</para>
/// <para><b>Scheduling</b>: returns when the main fiber finishes. Fibers must be owned by switches inside it, so nothing
/// started by the program outlives <see cref="Run(Func{Stdenv, Task})"/>.</para>
/// </remarks>
public static class EioMain
{
    /// <summary>The environment variable that overrides an unspecified backend (read only by <see cref="ResolveBackend"/>).</summary>
    internal const string BackendVariable = "EIOSHARP_BACKEND";

    /// <summary>Runs <paramref name="main"/> as the main fiber of a new main domain on the calling thread, with the default options.</summary>
    /// <param name="main">The program; receives the capabilities.</param>
    /// <exception cref="Exception">Whatever <paramref name="main"/> throws, rethrown on the calling thread.</exception>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    /// <exception cref="ArgumentException"><c>EIOSHARP_BACKEND</c> names no backend, or another <c>EIOSHARP_*</c> override
    /// (<c>EIOSHARP_FS</c>, the tuning variables) has an invalid value.</exception>
    public static void Run(Func<Stdenv, Task> main) => Run(main, null);

    /// <summary>Runs <paramref name="main"/> as the main fiber of a new main domain on the calling thread, on the backend chosen by <paramref name="options"/>.</summary>
    /// <param name="main">The program; receives the capabilities.</param>
    /// <param name="options">The backend, filesystem layer and tracing settings; null for the defaults.</param>
    /// <exception cref="Exception">Whatever <paramref name="main"/> throws, rethrown on the calling thread.</exception>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    /// <exception cref="ArgumentException"><c>EIOSHARP_BACKEND</c> or <c>EIOSHARP_FS</c> names no backend or layer (and the
    /// options leave the choice to it), or a tuning variable has an invalid value.</exception>
    /// <exception cref="PlatformNotSupportedException"><see cref="EioOptions.FileSystem"/> is <see cref="EioFileSystem.Native"/> off Linux.</exception>
    public static void Run(Func<Stdenv, Task> main, EioOptions? options)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run<bool>(async env => { await main(env); return true; }, options);
    }

    /// <summary>Runs <paramref name="main"/> as the main fiber and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The program.</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    /// <exception cref="ArgumentException"><c>EIOSHARP_BACKEND</c> names no backend, or another <c>EIOSHARP_*</c> override
    /// (<c>EIOSHARP_FS</c>, the tuning variables) has an invalid value.</exception>
    public static T Run<T>(Func<Stdenv, Task<T>> main) => Run(main, null);

    /// <summary>Runs <paramref name="main"/> as the main fiber on the backend chosen by <paramref name="options"/> and returns its result.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The program.</param>
    /// <param name="options">The backend, filesystem layer and tracing settings; null for the defaults.</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain.</exception>
    /// <exception cref="ArgumentException"><c>EIOSHARP_BACKEND</c> names no backend (and the options leave the choice to it),
    /// a tuning variable (<see cref="EioBackendOptions"/>) has an invalid value, or <c>EIOSHARP_FS</c> names no filesystem
    /// layer (and the options leave the choice to it).</exception>
    /// <exception cref="PlatformNotSupportedException"><see cref="EioOptions.FileSystem"/> is <see cref="EioFileSystem.Native"/> off Linux.</exception>
    /// <exception cref="IOException">The trace file of <see cref="EioOptions.TraceFile"/> cannot be created or written.</exception>
    /// <remarks>With <see cref="EioOptions.TraceFile"/>, tracing starts before the main fiber and stops when it returns or
    /// throws; the file (Chrome/Perfetto JSON, streamed while the program runs) is complete when this returns, also when
    /// <paramref name="main"/> throws (the exception is rethrown after the file is written).</remarks>
    public static T Run<T>(Func<Stdenv, Task<T>> main, EioOptions? options)
    {
        ArgumentNullException.ThrowIfNull(main);
        BackendChoice backend = ResolveBackend(options);
        bool portableFs = ResolveFileSystem(options?.FileSystem);
        return options?.TraceFile is { } traceFile
            ? RunTraced(traceFile, () => Run(backend, portableFs, main))
            : Run(backend, portableFs, main);
    }

    /// <summary>Traces <paramref name="run"/> into <paramref name="traceFile"/>: started before, stopped (file complete) after, also on failure.</summary>
    /// <exception cref="InvalidOperationException">The calling thread is already a domain, or a trace session already runs.</exception>
    /// <exception cref="IOException">The trace file cannot be created or written.</exception>
    private static T RunTraced<T>(string traceFile, Func<T> run)
    {
        if (Domain.Current is not null)
        {
            throw new InvalidOperationException("EioMain.Run was called from a thread that is already a domain.");
        }

        Tracing.EioTrace.Start(traceFile);
        try
        {
            return run();
        }
        finally
        {
            Tracing.EioTrace.Stop();
        }
    }

    /// <summary>Runs on exactly <paramref name="backend"/> (after fallback), ignoring <c>EIOSHARP_BACKEND</c> and the tuning
    /// variables: <paramref name="tuning"/> as given (null: the defaults). For tests and tools. The filesystem layer is
    /// decided as by <see cref="Run{T}(Func{Stdenv, Task{T}}, EioOptions)"/> (<paramref name="fileSystem"/>, else
    /// <c>EIOSHARP_FS</c>, else the platform's), so scripts/test.sh's portable-filesystem run reaches the backends' cases.</summary>
    /// <exception cref="ArgumentException"><c>EIOSHARP_FS</c> is consulted and has an invalid value.</exception>
    internal static T Run<T>(EioBackend backend, Func<Stdenv, Task<T>> main, EioBackendOptions? tuning = null, EioFileSystem? fileSystem = null)
    {
        bool portableFs = ResolveFileSystem(fileSystem);
        return Run(BackendChoice.Resolve(backend, tuning ?? EioBackendOptions.Default, noteFallback: true), portableFs, main);
    }

    /// <summary>The one place the backend is decided and the environment is read: <c>EIOSHARP_BACKEND</c> and the tuning
    /// overrides (<see cref="EioBackendOptions.ApplyOverrides"/>); see the class remarks. (<c>EIOSHARP_FS</c> is read next to
    /// it, by <see cref="ResolveFileSystem"/>.)</summary>
    /// <exception cref="ArgumentException"><c>EIOSHARP_BACKEND</c> names no backend, or a tuning variable has an invalid
    /// value (<see cref="ArgumentException.ParamName"/> is the variable's name).</exception>
    internal static BackendChoice ResolveBackend(EioOptions? options)
    {
        var kind = ChooseBackend(options?.Backend, Environment.GetEnvironmentVariable(BackendVariable));
        var tuning = EioBackendOptions.ApplyOverrides(options?.BackendOptions ?? EioBackendOptions.Default, Environment.GetEnvironmentVariable);
        return BackendChoice.Resolve(kind, tuning, noteFallback: true);
    }

    /// <summary>The one place <c>EIOSHARP_FS</c> is read: whether the run's filesystem layer is the portable one.</summary>
    /// <param name="requested">The run's choice; a specific layer wins over the variable, null or <c>Auto</c> leave it to the variable.</param>
    /// <exception cref="ArgumentException"><c>EIOSHARP_FS</c> is consulted and names no layer (or <c>native</c> off Linux);
    /// <see cref="ArgumentException.ParamName"/> is the variable's name.</exception>
    /// <exception cref="PlatformNotSupportedException"><paramref name="requested"/> is <see cref="EioFileSystem.Native"/> off Linux.</exception>
    internal static bool ResolveFileSystem(EioFileSystem? requested) =>
        FsPlatform.ChoosePortable(requested, Environment.GetEnvironmentVariable(FsPlatform.Variable), OperatingSystem.IsLinux());

    /// <summary>The precedence rule alone: a specific <paramref name="requested"/> backend wins, else a set <paramref name="environmentOverride"/>, else Auto or Portable.</summary>
    /// <exception cref="ArgumentException"><paramref name="environmentOverride"/> is consulted and names no backend.</exception>
    internal static EioBackend ChooseBackend(EioBackend? requested, string? environmentOverride)
    {
        if ((requested is null or EioBackend.Auto) && !string.IsNullOrWhiteSpace(environmentOverride))
        {
            try
            {
                return EioOptions.ParseBackend(environmentOverride);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException(
                    $"{BackendVariable}: unknown backend '{environmentOverride}': expected auto, portable, epoll or uring.", BackendVariable, e);
            }
        }

        return requested ?? EioBackend.Portable;
    }

    private static T Run<T>(BackendChoice backend, bool portableFs, Func<Stdenv, Task<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (Domain.Current is not null)
        {
            throw new InvalidOperationException("EioMain.Run was called from a thread that is already a domain.");
        }

        var domain = Domain.CreateReal(null, isMain: true, pollerFactory: backend.PollerFactory);
        var fs = DirectoryCapability.CreateFs(portableFs);
        var cwd = DirectoryCapability.CreateCwd(portableFs);
        var env = new Stdenv(
            SystemClock.Instance, SystemMonoClock.Instance, new ThreadDomainManager(), backend.Name,
            Stdio.OpenStdin(), Stdio.OpenStdout(), Stdio.OpenStderr(), SecureRandomSource.Instance,
            backend.Net, fs: new EioPath(fs, ""), cwd: new EioPath(cwd, ""));
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
