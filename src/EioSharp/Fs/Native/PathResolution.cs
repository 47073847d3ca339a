namespace EioSharp.Fs;

/// <summary>How relative paths are resolved against a <see cref="DirectoryHandle"/>.</summary>
internal enum PathResolution
{
    /// <summary>
    /// Confined (S28): paths may not leave the directory. Uses <c>openat2</c> with
    /// <c>RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS</c> when the kernel allows it (Linux 5.6+, not
    /// blocked by seccomp), otherwise <see cref="ComponentWise"/>.
    /// </summary>
    Beneath,

    /// <summary>Confined, always with <c>openat2</c>; fails with <c>ENOSYS</c> where it is unavailable. For tests.</summary>
    OpenAt2,

    /// <summary>Confined, always with the user-space component-by-component resolver. For tests and old kernels.</summary>
    ComponentWise,

    /// <summary>
    /// Confined by <see cref="PortableFs"/>: .NET file APIs only, no Linux system calls; paths are resolved component by
    /// component in user space under the same rules as <see cref="ComponentWise"/>, then the resulting path string is
    /// used. The default off Linux, and on Linux for a run with <see cref="EioFileSystem.Portable"/> (or <c>EIOSHARP_FS=portable</c>; see <see cref="FsPlatform"/>).
    /// Limits: a directory is named by its path, not pinned by a descriptor, so a symlink swapped in between the check and
    /// the use (a race with another process) can still redirect an operation; see <see cref="PortableFs"/>.
    /// </summary>
    Portable,

    /// <summary>Unconfined (<c>env.Fs</c>): plain <c>openat</c>; absolute paths, <c>..</c> and every symlink are followed.</summary>
    Unconfined,
}
