namespace EioSharp.Fs;

/// <summary>An open directory that relative paths are resolved against, confined or not.</summary>
/// <remarks>
/// <para>
/// Wraps an <c>O_PATH | O_DIRECTORY</c> file descriptor. The descriptor pins the directory itself,
/// not its path: renaming the directory (or any of its parents) does not change what the handle
/// names. With a confined <see cref="Resolution"/> this handle is the root of a sandbox (S28):
/// the operations of <see cref="NativeFs"/> refuse paths that would leave it.
/// Eio: the directory behind <c>Eio.Path.open_dir</c> / <c>env#cwd</c>.
/// </para>
/// <para>
/// <b>Lifetime:</b> <see cref="Dispose"/> is idempotent (S29). An operation running on another
/// thread keeps the descriptor open until its system call returns (see <see cref="SafeDirectoryFd"/>);
/// operations started after disposal throw <see cref="ObjectDisposedException"/>.
/// </para>
/// <para><b>Thread safety:</b> all members are safe to use from several threads.</para>
/// </remarks>
internal sealed class DirectoryHandle : IDisposable
{
    internal DirectoryHandle(SafeDirectoryFd fd, string displayPath, PathResolution resolution)
    {
        Fd = fd;
        DisplayPath = displayPath;
        Resolution = resolution;
    }

    // A portable handle (PortableFs): no descriptor, the directory is named by its path. The placeholder Fd is invalid and
    // borrowed, so disposing it closes nothing; it only gives the handle S29's closed state and the use count of leases.
    private DirectoryHandle(string? portableRoot, string displayPath, PathResolution resolution)
    {
        Fd = new SafeDirectoryFd(-1, ownsHandle: false);
        DisplayPath = displayPath;
        Resolution = resolution == PathResolution.Unconfined ? PathResolution.Unconfined : PathResolution.Portable;
        IsPortable = true;
        PortableRoot = portableRoot;
    }

    /// <summary>Gets whether this handle is served by <see cref="PortableFs"/> (named by a path, no descriptor).</summary>
    public bool IsPortable { get; }

    /// <summary>Gets the absolute path of a portable handle's directory; null for a native handle and for the portable
    /// <c>env.Fs</c> (relative paths then go to the process's current directory, as <c>AT_FDCWD</c> does).</summary>
    public string? PortableRoot { get; }

    /// <summary>Gets the descriptor.</summary>
    internal SafeDirectoryFd Fd { get; }

    /// <summary>Gets the path the directory had when opened, for messages only; never used for resolution.</summary>
    public string DisplayPath { get; }

    /// <summary>Gets how relative paths are resolved against this directory.</summary>
    public PathResolution Resolution { get; }

    /// <summary>Gets whether paths resolved against this directory are confined to it.</summary>
    public bool IsConfined => Resolution != PathResolution.Unconfined;

    /// <summary>Gets whether <see cref="Dispose"/> has been called.</summary>
    public bool IsClosed => Fd.IsClosed;

    /// <summary>Opens the directory at <paramref name="absolutePath"/> (following symlinks) as a root.</summary>
    /// <param name="absolutePath">An absolute path to an existing directory.</param>
    /// <param name="resolution">How paths below the root are resolved; confined by default. <see cref="PathResolution.Portable"/>
    /// gives a <see cref="PortableFs"/> handle (no descriptor); every other value a native one (Linux).</param>
    /// <returns>A handle the caller must dispose.</returns>
    /// <exception cref="ArgumentException">The path is not absolute or contains NUL.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist or a component is not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">Search permission was denied.</exception>
    /// <exception cref="IOException">Another error, with the errno in <see cref="Exception.HResult"/>.</exception>
    public static DirectoryHandle OpenRoot(string absolutePath, PathResolution resolution = PathResolution.Beneath)
    {
        ArgumentNullException.ThrowIfNull(absolutePath);
        if (resolution == PathResolution.Portable)
        {
            return OpenPortableRoot(absolutePath, PathResolution.Portable);
        }

        if (!absolutePath.StartsWith('/'))
        {
            throw new ArgumentException($"Path is not absolute: '{absolutePath}'", nameof(absolutePath));
        }

        var fd = NativeFs.OpenDirectoryFd(LinuxInterop.AtFdCwd, absolutePath);
        return new DirectoryHandle(new SafeDirectoryFd(fd), absolutePath, resolution);
    }

    /// <summary>Returns an unconfined handle for the process's current directory (<c>AT_FDCWD</c>), as the base of <c>env.Fs</c>.</summary>
    /// <param name="portable">Whether the handle is served by <see cref="PortableFs"/> (the run's layer, <see cref="FsPlatform"/>);
    /// by default a native <c>AT_FDCWD</c> handle.</param>
    /// <remarks>
    /// Relative paths follow later <c>chdir</c> calls; absolute paths are used as they are. Disposing it
    /// closes nothing.
    /// </remarks>
    public static DirectoryHandle CurrentDirectoryUnconfined(bool portable = false) =>
        portable
            ? new DirectoryHandle(portableRoot: null, ".", PathResolution.Unconfined)
            : new(new SafeDirectoryFd(LinuxInterop.AtFdCwd, ownsHandle: false), ".", PathResolution.Unconfined);

    /// <summary>Creates a portable handle for the directory <paramref name="absolutePath"/> (which must exist).</summary>
    /// <exception cref="ArgumentException">The path is not fully qualified or contains NUL.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist or is not a directory.</exception>
    internal static DirectoryHandle OpenPortableRoot(string absolutePath, PathResolution resolution)
    {
        if (!Path.IsPathFullyQualified(absolutePath) || absolutePath.Contains('\0'))
        {
            throw new ArgumentException($"Path is not absolute: '{absolutePath}'", nameof(absolutePath));
        }

        if (!Directory.Exists(absolutePath))
        {
            throw NativeErrors.FromErrno(File.Exists(absolutePath) ? NativeErrors.ENOTDIR : NativeErrors.ENOENT, absolutePath, directoryExpected: true);
        }

        return new DirectoryHandle(Path.GetFullPath(absolutePath), absolutePath, resolution);
    }

    /// <summary>Creates a portable handle for a directory <see cref="PortableFs"/> has resolved.</summary>
    internal static DirectoryHandle Portable(string fullPath, string displayPath, PathResolution resolution) =>
        new(fullPath, displayPath, resolution);

    /// <summary>Takes a reference on the descriptor for the duration of one operation.</summary>
    /// <exception cref="ObjectDisposedException">The handle was disposed.</exception>
    internal FdLease Lease() => new(this);

    /// <summary>Closes the descriptor; idempotent, and deferred while an operation is using it.</summary>
    public void Dispose() => Fd.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"<dir {DisplayPath}{(IsConfined ? "" : " unconfined")}{(IsPortable ? " portable" : "")}>";

    /// <summary>A reference on a directory descriptor, released by <see cref="Dispose"/>.</summary>
    internal readonly struct FdLease : IDisposable
    {
        private readonly SafeDirectoryFd? _handle;

        public FdLease(DirectoryHandle dir)
        {
            if (dir.Fd.IsClosed)
            {
                throw new ObjectDisposedException(dir.ToString());
            }

            bool added = false;
            try
            {
                dir.Fd.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                throw new ObjectDisposedException(dir.ToString());
            }

            _handle = dir.Fd;
            Fd = (int)dir.Fd.DangerousGetHandle();
        }

        /// <summary>Gets the descriptor number, valid until this lease is disposed.</summary>
        public int Fd { get; }

        public void Dispose() => _handle?.DangerousRelease();
    }
}
