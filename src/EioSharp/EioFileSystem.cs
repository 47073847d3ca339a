namespace EioSharp;

/// <summary>Which filesystem layer serves a run's <see cref="Stdenv.Fs"/> and <see cref="Stdenv.Cwd"/> (and every subtree
/// and open file made from them).</summary>
/// <remarks>
/// Eio: <c>Eio_linux</c>'s and <c>Eio_posix</c>'s own <c>fs</c>/<c>cwd</c> against <c>Eio_windows</c>'s, chosen here by
/// value (<see cref="EioOptions.FileSystem"/>) instead of by linking. The layer belongs to the run: two runs in one process
/// may use different layers. The <c>EIOSHARP_FS</c> environment variable (<c>native</c> or <c>portable</c>) overrides
/// <see cref="Auto"/> only (see <see cref="EioMain"/>). See docs/backends.md.
/// </remarks>
public enum EioFileSystem
{
    /// <summary>The platform's layer: <see cref="Native"/> on Linux, <see cref="Portable"/> elsewhere.</summary>
    Auto,

    /// <summary>Linux only: <c>openat2</c>/<c>openat</c> and the other <c>*at</c> system calls on directory descriptors (a
    /// subtree is pinned by its descriptor; confinement by <c>RESOLVE_BENEATH</c> or a component-wise resolver).</summary>
    Native,

    /// <summary>Any OS: .NET's file APIs only; a directory is named by its path and confinement is checked component by
    /// component in user space just before each use (the layer macOS and Windows use; limits in docs/backends.md).</summary>
    Portable,
}
