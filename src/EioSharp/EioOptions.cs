namespace EioSharp;

/// <summary>Settings for <see cref="EioMain"/>: which backend and filesystem layer run the program and whether it is traced.</summary>
/// <remarks>
/// Eio: the choice <c>Eio_main.run</c> makes between <c>Eio_linux</c>, <c>Eio_posix</c> and friends, made here by value
/// instead of by linking. A null <see cref="EioOptions"/> means the defaults.
/// </remarks>
public sealed class EioOptions
{
    /// <summary>The backend; <c>null</c> (the default) means <see cref="EioBackend.Portable"/> unless the <c>EIOSHARP_BACKEND</c>
    /// environment variable names one (see <see cref="EioMain"/> for the precedence).</summary>
    public EioBackend? Backend { get; init; }

    /// <summary>The backends' tuning for this run (given to every domain it creates); <c>null</c> (the default) means
    /// <see cref="EioBackendOptions.Default"/>. The <c>EIOSHARP_*</c> variables listed on <see cref="EioBackendOptions"/>'s
    /// properties, when set, override single settings (read once per run by <see cref="EioMain"/>).</summary>
    public EioBackendOptions? BackendOptions { get; init; }

    /// <summary>The filesystem layer behind <see cref="Stdenv.Fs"/>, <see cref="Stdenv.Cwd"/> and everything opened from them;
    /// <c>null</c> (the default) and <see cref="EioFileSystem.Auto"/> mean the platform's layer (<see cref="EioFileSystem.Native"/>
    /// on Linux, <see cref="EioFileSystem.Portable"/> elsewhere) unless the <c>EIOSHARP_FS</c> environment variable names one
    /// (see <see cref="EioMain"/> for the precedence). <see cref="EioFileSystem.Native"/> off Linux makes
    /// <see cref="EioMain.Run(Func{Stdenv, Task}, EioOptions)"/> throw <see cref="PlatformNotSupportedException"/>.</summary>
    public EioFileSystem? FileSystem { get; init; }

    /// <summary>When not null, tracing starts before the main fiber and the trace is written to this file (Chrome/Perfetto JSON) when it returns.</summary>
    public string? TraceFile { get; init; }

    /// <summary>Parses a backend name as the servers' <c>--backend</c> flag and <c>EIOSHARP_BACKEND</c> spell it.</summary>
    /// <param name="name"><c>auto</c>, <c>portable</c>, <c>epoll</c> or <c>uring</c> (also <c>io_uring</c>), any case.</param>
    /// <returns>The backend.</returns>
    /// <exception cref="ArgumentException"><paramref name="name"/> is none of those.</exception>
    public static EioBackend ParseBackend(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "auto" => EioBackend.Auto,
        "portable" => EioBackend.Portable,
        "epoll" => EioBackend.Epoll,
        "uring" or "io_uring" or "io-uring" => EioBackend.Uring,
        _ => throw new ArgumentException($"Unknown backend '{name}': expected auto, portable, epoll or uring.", nameof(name)),
    };
}
