namespace EioSharp;

/// <summary>Which backend runs a program: the scheduler's wait, the network and (in time) the file I/O under <see cref="Stdenv"/>.</summary>
/// <remarks>
/// Eio: the choice <c>Eio_main.run</c> makes between <c>Eio_linux</c> (io_uring), <c>Eio_posix</c> (poll) and
/// <c>Eio_windows</c>, made here by value (<see cref="EioOptions.Backend"/>, the servers' <c>--backend</c> flag) instead of
/// by linking. A backend that cannot run here (not Linux x64, the kernel refuses io_uring) falls back to the next one
/// (<see cref="Uring"/> → <see cref="Epoll"/> → <see cref="Portable"/>) with one note on stderr; <see cref="Stdenv.Backend"/>
/// names the backend really in use. See docs/backends.md.
/// </remarks>
public enum EioBackend
{
    /// <summary>The best backend available here: <see cref="Uring"/>, else <see cref="Epoll"/>, else <see cref="Portable"/> (no note on fallback).</summary>
    Auto,

    /// <summary>.NET sockets and files; I/O completions are posted to the domain from .NET's threads (Eio: <c>Eio_posix</c>'s role, any OS).</summary>
    Portable,

    /// <summary>Linux x64: each domain waits in its own epoll instance and does its TCP I/O on its own thread (Eio: <c>Eio_posix</c>).</summary>
    Epoll,

    /// <summary>Linux x64: one io_uring per domain, operations submitted once per scheduler round with the wait (Eio: <c>Eio_linux</c>).</summary>
    Uring,
}
