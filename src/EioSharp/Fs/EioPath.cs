using EioSharp.Backends.Uring;
using EioSharp.IO;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Fs;

/// <summary>A filesystem capability: a directory plus a path relative to it.</summary>
/// <remarks>
/// <para>
/// Eio: <c>Eio.Path.t</c> (<c>dir, path</c>). Programs start with <see cref="Stdenv.Fs"/> (unconfined, relative to the
/// process's current directory; absolute paths allowed) and <see cref="Stdenv.Cwd"/> (confined to the current
/// directory), and build paths with <c>/</c>: <c>env.Cwd / "data" / "log.txt"</c>. A path is only a name until an
/// operation uses it; nothing is opened or checked when it is built.
/// </para>
/// <para>
/// <b>Confinement (S28)</b>: every path of a confined directory (<see cref="Stdenv.Cwd"/>, or one returned by
/// <see cref="OpenSubtreeAsync"/>) is resolved beneath it (on Linux, <c>openat2</c> with <c>RESOLVE_BENEATH</c>, else a
/// component-wise resolver). Absolute paths, <c>..</c> above the directory, symlinks whose target is absolute or climbs
/// out, and symlink loops throw <see cref="FsPermissionException"/> before anything outside is opened, created or
/// changed. <c>..</c> and symlinks that stay inside are allowed. Only <see cref="Stdenv.Fs"/> is unconfined.
/// </para>
/// <para>
/// <b>Scheduling</b>: every operation runs its system calls off the domain (on a blocking-offload thread) and resumes
/// the fiber on its domain, so other fibers keep running. File reads and writes use <see cref="RandomAccess"/>.
/// </para>
/// <para>
/// <b>Cancellation</b>: every operation checks the fiber's cancellation when it starts and then throws
/// <see cref="CancelledException"/> without touching the filesystem (S13). A system call that has started runs to the
/// end and its result is returned.
/// </para>
/// <para>
/// <b>Errors</b> (the native layer's, unchanged): <see cref="FsPermissionException"/> for a confinement escape (it is
/// an <see cref="UnauthorizedAccessException"/>, as is a kernel <c>EACCES</c>/<c>EPERM</c>);
/// <see cref="FileNotFoundException"/> / <see cref="DirectoryNotFoundException"/> for a missing name; an
/// <see cref="IOException"/> otherwise, whose <see cref="Exception.HResult"/> is the errno (test
/// <see cref="FsErrors.IsAlreadyExists"/> for Eio's <c>Already_exists</c>). Messages name the path. An operation on a
/// closed subtree throws <see cref="ObjectDisposedException"/>.
/// </para>
/// <para><b>Thread safety</b>: an <see cref="EioPath"/> is immutable; operations are safe to call from several fibers
/// and domains.</para>
/// </remarks>
public sealed class EioPath : IClosable
{
    /// <summary>The largest byte array .NET can allocate (<see cref="Array.MaxLength"/>), the default limit of <see cref="LoadAsync"/>.</summary>
    public const int DefaultMaxLoadSize = 0x7FFFFFC7;

    private readonly DirectoryCapability _dir;
    private readonly string _path;

    internal EioPath(DirectoryCapability dir, string path)
    {
        _dir = dir;
        _path = path;
    }

    /// <summary>Gets the path relative to the directory capability, as built (empty for the directory itself).</summary>
    public string RelativePath => _path;

    /// <summary>Gets a native path string for display and for passing to other programs; never used for resolution.</summary>
    /// <remarks>
    /// Eio: <c>Path.native</c>. For <see cref="Stdenv.Fs"/> and <see cref="Stdenv.Cwd"/> it is the path relative to the
    /// current directory (<c>.</c> for the directory itself); for an opened subtree it starts with the path the subtree had
    /// when it was opened (later renames are not reflected); absolute paths are returned as they are.
    /// </remarks>
    public string Native =>
        _path.StartsWith('/') ? _path
        : _dir.DisplayPath == "." ? (_path.Length == 0 ? "." : _path)
        : _path.Length == 0 ? _dir.DisplayPath
        : Concat(_dir.DisplayPath, _path);

    /// <summary>Gets whether the directory behind this path is closed (only subtrees from <see cref="OpenSubtreeAsync"/> can be).</summary>
    public bool IsClosed => _dir.IsClosed;

    /// <summary>Gets the directory capability this path is relative to.</summary>
    internal DirectoryCapability Directory => _dir;

    /// <summary>Appends <paramref name="name"/> to the path, within the same directory capability.</summary>
    /// <param name="path">The base path.</param>
    /// <param name="name">A relative name such as <c>"a"</c> or <c>"a/b"</c>; an absolute name replaces the path (and is then
    /// refused by confined directories when used); empty adds a trailing slash.</param>
    /// <returns>The longer path.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <remarks>Eio: <c>Path.( / )</c>. Nothing is checked until an operation uses the path.</remarks>
    public static EioPath operator /(EioPath path, string name)
    {
        ArgumentNullException.ThrowIfNull(path);
        return path.Combine(name);
    }

    /// <summary>Appends <paramref name="name"/> to the path; the named form of the <c>/</c> operator.</summary>
    /// <param name="name">A relative name; an absolute name replaces the path; empty adds a trailing slash.</param>
    /// <returns>The longer path.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <remarks>Eio: <c>Path.( / )</c>.</remarks>
    public EioPath Combine(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string joined = name.Length == 0 ? Concat(_path, name)
            : name.StartsWith('/') ? name
            : _path == "." ? name
            : Concat(_path, name);
        return new EioPath(_dir, joined);
    }

    /// <summary>Describes the path as <c>&lt;capability:path&gt;</c>, for example <c>&lt;cwd:data/log.txt&gt;</c>.</summary>
    /// <returns>The description; the capability is <c>fs</c>, <c>cwd</c> or <c>dir:</c> and the subtree's opening path.</returns>
    /// <remarks>Eio: <c>Path.pp</c>.</remarks>
    public override string ToString() => _path.Length == 0 ? $"<{_dir.Label}>" : $"<{_dir.Label}:{_path}>";

    /// <summary>Closes the directory capability behind this path if it was opened by <see cref="OpenSubtreeAsync"/>; otherwise does nothing.</summary>
    /// <remarks>
    /// Eio: <c>Eio.Resource.close</c> on an opened directory. Idempotent (S29). Closing early removes the release hook from
    /// the owning switch (when called on its domain). Closing affects every path built on the same subtree; operations
    /// already running keep the descriptor open until they finish, later ones throw <see cref="ObjectDisposedException"/>.
    /// <see cref="Stdenv.Fs"/> and <see cref="Stdenv.Cwd"/> are closed only when the program ends.
    /// </remarks>
    public void Close() => _dir.Close();

    // ------------------------------------------------------------------ directories

    /// <summary>Opens the directory at this path as a new confined capability owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The switch that owns the directory: it is closed when the switch finishes, or earlier by <see cref="Close"/>.</param>
    /// <returns>A path with an empty relative part naming the new directory; paths built from it cannot leave it (S28),
    /// even when this path is unconfined (<see cref="Stdenv.Fs"/>).</returns>
    /// <exception cref="FsPermissionException">This path is confined and would leave its directory.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied search permission.</exception>
    /// <exception cref="IOException">Another error; <see cref="Exception.HResult"/> is the errno.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished (the directory was closed again at once) or belongs to another domain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">This path's own subtree was closed.</exception>
    /// <remarks>
    /// Eio: <c>Path.open_dir ~sw</c>; S28 calls it <c>OpenSubtree</c>. On Linux the new directory is pinned by its
    /// descriptor: renaming it later does not change what it names. Symlinks inside it are followed only while they stay
    /// inside. On the portable filesystem layer (macOS, Windows, or a run with <see cref="EioFileSystem.Portable"/>) there is no descriptor: the
    /// directory is named by its absolute path (renaming it changes what it names) and each operation checks its path
    /// component by component just before using it, so a concurrent change between the check and the use is not
    /// excluded (docs/backends.md, macOS and Windows).
    /// </remarks>
    public async Task<EioPath> OpenSubtreeAsync(Switch sw)
    {
        ArgumentNullException.ThrowIfNull(sw);
        PathResolution? resolution = _dir.IsUnconfined ? PathResolution.Beneath : null;
        var handle = await OffloadAsync((d, p) => NativeFs.OpenSubdirectory(d, p, resolution));
        try
        {
            return new EioPath(DirectoryCapability.CreateOwned(sw, handle), "");
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Opens the directory at this path as a new confined capability owned by <paramref name="sw"/>; the same as <see cref="OpenSubtreeAsync"/>.</summary>
    /// <param name="sw">The owning switch.</param>
    /// <returns>The confined directory.</returns>
    /// <exception cref="FsPermissionException">This path is confined and would leave its directory.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">Another error.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished or belongs to another domain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <remarks>Eio: <c>Path.open_dir</c>.</remarks>
    public Task<EioPath> OpenDirAsync(Switch sw) => OpenSubtreeAsync(sw);

    /// <summary>Returns the metadata of the object at this path.</summary>
    /// <param name="followSymlinks">Whether a symlink in the last component is followed (still confined) or described itself.</param>
    /// <returns>The metadata.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="DirectoryNotFoundException">A directory component is missing or not a directory.</exception>
    /// <exception cref="IOException">Another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.stat ~follow</c>.</remarks>
    public Task<FileStat> StatAsync(bool followSymlinks = true) =>
        OffloadAsync((d, p) => NativeFs.Stat(d, p, followSymlinks));

    /// <summary>Returns whether something exists at this path.</summary>
    /// <param name="followSymlinks">Whether a dangling symlink counts as missing (true) or as existing (false).</param>
    /// <returns>True if the path names an object.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory (an escape is refused, never reported as missing).</exception>
    /// <exception cref="IOException">An error other than a missing name.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.kind ~follow path &lt;&gt; `Not_found</c>.</remarks>
    public async Task<bool> ExistsAsync(bool followSymlinks = true) => await KindOrNullAsync(followSymlinks) is not null;

    /// <summary>Returns whether this path names a directory (following symlinks).</summary>
    /// <returns>True for a directory; false for anything else or nothing.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="IOException">An error other than a missing name.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.is_directory</c>.</remarks>
    public async Task<bool> IsDirectoryAsync() => await KindOrNullAsync(true) == FileKind.Directory;

    /// <summary>Returns whether this path names a regular file (following symlinks).</summary>
    /// <returns>True for a regular file; false for anything else or nothing.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="IOException">An error other than a missing name.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.is_file</c>.</remarks>
    public async Task<bool> IsFileAsync() => await KindOrNullAsync(true) == FileKind.RegularFile;

    /// <summary>Lists the names in the directory at this path, without <c>.</c> and <c>..</c>, sorted ordinally.</summary>
    /// <returns>The names (not paths); names that are not valid UTF-8 are decoded with replacement characters.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">Another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.read_dir</c>.</remarks>
    public async Task<IReadOnlyList<string>> ReadDirectoryAsync() =>
        await OffloadAsync((d, p) => NativeFs.ReadDirectory(d, p));

    /// <summary>Creates a directory at this path; its parent must exist.</summary>
    /// <param name="permissions">Permissions of the new directory, before the process umask is applied.</param>
    /// <returns>A task that completes when the directory exists.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was created.</exception>
    /// <exception cref="DirectoryNotFoundException">The parent is missing.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> (see <see cref="FsErrors.IsAlreadyExists"/>) if the name exists, even as a dangling symlink; or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.mkdir ~perm</c>.</remarks>
    public Task MakeDirectoryAsync(UnixFileMode permissions) =>
        OffloadAsync((d, p) => NativeFs.MakeDirectory(d, p, permissions));

    /// <summary>Creates a directory at this path and any missing parents, each step confined.</summary>
    /// <param name="permissions">Permissions of each new directory, before the umask.</param>
    /// <param name="existsOk">Whether an existing directory at this path is accepted (otherwise <c>EEXIST</c>).</param>
    /// <returns>A task that completes when the directory exists.</returns>
    /// <exception cref="FsPermissionException">A prefix of the path would leave its confined directory; nothing outside was created.</exception>
    /// <exception cref="DirectoryNotFoundException">A prefix exists and is not a directory.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the directory exists and <paramref name="existsOk"/> is false; or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.mkdirs ?exists_ok ~perm</c>.</remarks>
    public Task MakeDirectoriesAsync(UnixFileMode permissions, bool existsOk = false) =>
        OffloadAsync((d, p) => NativeFs.MakeDirectories(d, p, permissions, existsOk));

    /// <summary>Renames the object at this path to <paramref name="destination"/>, atomically replacing a file there.</summary>
    /// <param name="destination">The new name; it may belong to another directory capability (each path is confined by its own).</param>
    /// <returns>A task that completes when the rename is done.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="FsPermissionException">Either path would leave its confined directory; nothing was renamed.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at this path.</exception>
    /// <exception cref="IOException"><c>EXDEV</c> across filesystems, <c>EISDIR</c>/<c>ENOTEMPTY</c> for an impossible replacement, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">A subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.rename</c>.</remarks>
    public Task RenameAsync(EioPath destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var dst = destination._dir;
        string dstPath = destination._path;
        return OffloadAsync((d, p) => NativeFs.Rename(d, p, dst.Handle, dstPath));
    }

    /// <summary>Renames this path to <paramref name="destination"/> on the calling thread (<c>renameat</c>), blocking it (and so its domain) until the kernel returns; an existing file at the destination is replaced atomically.</summary>
    /// <param name="destination">The new name; it may belong to another directory capability (each path is confined by its own).</param>
    /// <exception cref="ArgumentNullException"><paramref name="destination"/> is null.</exception>
    /// <exception cref="FsPermissionException">Either path would leave its confined directory; nothing was renamed.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at this path.</exception>
    /// <exception cref="IOException"><c>EXDEV</c> across filesystems, <c>EISDIR</c>/<c>ENOTEMPTY</c> for an impossible replacement, or another error.</exception>
    /// <exception cref="ObjectDisposedException">A subtree was closed.</exception>
    /// <remarks>Not in Eio (<see cref="RenameAsync"/> is <c>Path.rename</c>). For a replacement a caller must not yield
    /// across, such as swapping a compacted log in between two rounds of appends. Does not check the fiber's cancellation.</remarks>
    public void Rename(EioPath destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        NativeFs.Rename(_dir.Handle, _path, destination._dir.Handle, destination._path);
    }

    /// <summary>Flushes the directory at this path to the device (<c>fsync</c> of the directory), so that the names created,
    /// renamed or removed in it survive a crash.</summary>
    /// <returns>A task that completes when the device has acknowledged the directory's entries.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="DirectoryNotFoundException">Nothing exists at the path, or it is not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied opening the directory.</exception>
    /// <exception cref="IOException">The kernel reported an error (some filesystems refuse <c>fsync</c> on a directory with <c>EINVAL</c>).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Not in Eio. Runs on the blocking offload. A durable replacement is: write and sync the new file, rename it
    /// over the old one, then sync the directory.</remarks>
    public Task SyncDirectoryAsync() => OffloadAsync((d, p) => SyncDirectoryCore(d, p));

    /// <summary>Flushes the directory at this path to the device on the calling thread, blocking it (and so its domain);
    /// otherwise as <see cref="SyncDirectoryAsync"/>.</summary>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="DirectoryNotFoundException">Nothing exists at the path, or it is not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied opening the directory.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Not in Eio. Does not check the fiber's cancellation.</remarks>
    public void SyncDirectory() => SyncDirectoryCore(_dir.Handle, _path);

    private static void SyncDirectoryCore(DirectoryHandle dir, string path)
    {
        NativeFs.SyncDirectory(dir, path);
    }

    /// <summary>Removes the file or symlink at this path (a symlink itself, never its target).</summary>
    /// <returns>A task that completes when the name is gone.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException"><c>EISDIR</c> for a directory, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.unlink</c>.</remarks>
    public Task UnlinkAsync() => UnlinkAsync(missingOk: false);

    /// <summary>Removes the file or symlink at this path; with <paramref name="missingOk"/>, a missing name is not an error.</summary>
    /// <param name="missingOk">Whether nothing at the path counts as success (Eio's <c>?missing_ok</c>).</param>
    /// <returns>A task that completes when the name is gone.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path and <paramref name="missingOk"/> is false.</exception>
    /// <exception cref="IOException"><c>EISDIR</c> for a directory, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.unlink ?missing_ok</c>.</remarks>
    public Task UnlinkAsync(bool missingOk) => OffloadAsync((d, p) =>
    {
        try
        {
            NativeFs.Unlink(d, p);
        }
        catch (FileNotFoundException) when (missingOk)
        {
        }
    });

    /// <summary>Removes the empty directory at this path.</summary>
    /// <returns>A task that completes when the directory is gone.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="DirectoryNotFoundException">The path is not a directory.</exception>
    /// <exception cref="IOException"><c>ENOTEMPTY</c> if the directory is not empty, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.rmdir</c>.</remarks>
    public Task RemoveDirectoryAsync() => RemoveDirectoryAsync(missingOk: false);

    /// <summary>Removes the empty directory at this path; with <paramref name="missingOk"/>, a missing name is not an error.</summary>
    /// <param name="missingOk">Whether nothing at the path counts as success (Eio's <c>?missing_ok</c>).</param>
    /// <returns>A task that completes when the directory is gone.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path and <paramref name="missingOk"/> is false.</exception>
    /// <exception cref="IOException"><c>ENOTEMPTY</c> if the directory is not empty, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.rmdir ?missing_ok</c>.</remarks>
    public Task RemoveDirectoryAsync(bool missingOk) => OffloadAsync((d, p) =>
    {
        try
        {
            NativeFs.RemoveDirectory(d, p);
        }
        catch (FileNotFoundException) when (missingOk)
        {
        }
    });

    /// <summary>Removes the file, symlink or directory at this path, with everything beneath a directory. Symlinks are
    /// removed, never followed, so nothing outside the tree is touched.</summary>
    /// <param name="missingOk">Whether nothing at the path counts as success (Eio's <c>?missing_ok</c>).</param>
    /// <returns>A task that completes when the tree is gone.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was removed.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path and <paramref name="missingOk"/> is false.</exception>
    /// <exception cref="IOException">An entry could not be removed (permissions, a mount point); entries before it are gone.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.rmtree ?missing_ok</c>. Runs as one job on the blocking offload (each step confined).</remarks>
    public Task RemoveTreeAsync(bool missingOk = false)
    {
        string display = ToString();
        return OffloadAsync((d, p) =>
        {
            if (!NativeFs.RemoveTree(d, p) && !missingOk)
            {
                throw new FileNotFoundException($"rmtree {display}: no such file or directory", display);
            }
        });
    }

    /// <summary>Lists the directory at this path with the kind of each entry (symlinks as <see cref="FileKind.SymbolicLink"/>,
    /// not followed), sorted ordinally by name, without <c>.</c> and <c>..</c>.</summary>
    /// <returns>The entries.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">Another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.read_dir</c> with <c>Path.kind</c> of each entry (one <c>getdents64</c> pass; the kind comes from
    /// <c>d_type</c>, with an <c>lstat</c> only where the filesystem reports none).</remarks>
    public async Task<IReadOnlyList<DirectoryEntry>> ReadDirectoryEntriesAsync() =>
        (await OffloadAsync((d, p) => NativeFs.ReadDirectoryEntries(d, p))).Select(e => new DirectoryEntry(e.Name, e.Kind)).ToArray();

    /// <summary>Sets the permission bits of the object at this path (a symlink's target; confined).</summary>
    /// <param name="permissions">The new mode bits (not masked by the umask).</param>
    /// <returns>A task that completes when the mode is set.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was changed.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="UnauthorizedAccessException">The process does not own the object (<c>EPERM</c>).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.chmod ~follow:true ~perm</c> (Linux has no mode on symlinks, so <c>~follow:false</c> does not apply).</remarks>
    public Task ChangeModeAsync(UnixFileMode permissions) => OffloadAsync((d, p) => NativeFs.ChangeMode(d, p, permissions));

    /// <summary>Sets the owner and group of the object at this path (confined).</summary>
    /// <param name="userId">The new owner's uid, or -1 to keep it.</param>
    /// <param name="groupId">The new group's gid, or -1 to keep it.</param>
    /// <param name="followSymlinks">False changes a symlink itself.</param>
    /// <returns>A task that completes when the owner is set.</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was changed.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="UnauthorizedAccessException">Not allowed (<c>EPERM</c>): giving a file away needs <c>CAP_CHOWN</c>; an
    /// unprivileged owner may only pick one of its own groups.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: not in Eio 1.5's <c>Path</c> (<c>Unix.chown</c>); offered because services change ownership of what they create.</remarks>
    public Task ChangeOwnerAsync(int userId, int groupId, bool followSymlinks = true) =>
        OffloadAsync((d, p) => NativeFs.ChangeOwner(d, p, userId, groupId, followSymlinks));

    /// <summary>Creates a symlink at this path whose contents are <paramref name="target"/>.</summary>
    /// <param name="target">The link's contents, stored verbatim; a target outside a confined directory can be created but is refused when followed.</param>
    /// <returns>A task that completes when the link exists.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="target"/> is null.</exception>
    /// <exception cref="FsPermissionException">This path would leave its confined directory.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the name exists, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.symlink ~link_to</c>.</remarks>
    public Task SymLinkAsync(string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return OffloadAsync((d, p) => NativeFs.SymLink(d, p, target));
    }

    /// <summary>Returns the contents of the symlink at this path, without resolving it.</summary>
    /// <returns>The target as stored.</returns>
    /// <exception cref="FsPermissionException">The parent would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException"><c>EINVAL</c> if it is not a symlink, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.read_link</c>.</remarks>
    public Task<string> ReadLinkAsync() => OffloadAsync((d, p) => NativeFs.ReadLink(d, p));

    // ------------------------------------------------------------------ files

    /// <summary>Opens the file at this path for reading; <paramref name="sw"/> owns it.</summary>
    /// <param name="sw">The switch that closes the file when it finishes (or use <see cref="EioFile.Close"/> earlier).</param>
    /// <returns>The open file.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sw"/> is null.</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was opened.</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="DirectoryNotFoundException">A directory component is missing or not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied read access.</exception>
    /// <exception cref="IOException">Another error.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished (the file was closed again at once) or belongs to another domain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.open_in ~sw</c>.</remarks>
    public async Task<FileReader> OpenReadAsync(Switch sw)
    {
        ArgumentNullException.ThrowIfNull(sw);
        var handle = await OpenFileAsync(OpenFlags.Read, UnixFileMode.None, (d, p) => NativeFs.OpenForReading(d, p));
        bool portable = _dir.Handle.IsPortable;
        return Own(handle, h => new FileReader(sw, h, ToString(), portable));
    }

    /// <summary>Opens the file at this path for writing (and positional reading); <paramref name="sw"/> owns it.</summary>
    /// <param name="sw">The switch that closes the file when it finishes (or use <see cref="EioFile.Close"/> earlier).</param>
    /// <param name="create">Whether to create the file if missing, truncate it, or require it to be new, and the permissions of a new file.</param>
    /// <param name="append">Whether every write goes to the end of the file (<c>O_APPEND</c>), whatever offset is given.</param>
    /// <returns>The open file; sequential writes start at offset 0 unless <paramref name="append"/> is set.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="sw"/> is null.</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was created or opened.</exception>
    /// <exception cref="FileNotFoundException">The file is missing and <paramref name="create"/> is <see cref="FileCreate.Never"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">A directory component is missing or not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied access (the file is opened read-write, like Eio).</exception>
    /// <exception cref="IOException"><c>EEXIST</c> (see <see cref="FsErrors.IsAlreadyExists"/>) with <see cref="FileCreate.Exclusive"/> when the name exists; or another error.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="sw"/> has finished (the file was closed again at once) or belongs to another domain.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.open_out ~sw ?append ~create</c>.</remarks>
    public async Task<FileWriter> OpenWriteAsync(Switch sw, FileCreate create, bool append = false)
    {
        ArgumentNullException.ThrowIfNull(sw);
        var handle = await OpenFileAsync(
            OpenFlags.ReadWrite | create.ToOpenFlags() | (append ? OpenFlags.Append : 0), create.Permissions,
            (d, p) => NativeFs.OpenForWriting(d, p, create, append));
        bool portable = _dir.Handle.IsPortable;
        return Own(handle, h => new FileWriter(sw, h, ToString(), append, portable));
    }

    /// <summary>Opens the file for reading, runs <paramref name="body"/> with it and closes it, also when the body throws.</summary>
    /// <typeparam name="T">The body's result.</typeparam>
    /// <param name="body">Uses the file.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="FileNotFoundException">The file is missing (and the other errors of <see cref="OpenReadAsync"/>).</exception>
    /// <remarks>Eio: <c>Path.with_open_in</c>.</remarks>
    public Task<T> WithOpenReadAsync<T>(Func<FileReader, Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Switch.RunAsync(async sw => await body(await OpenReadAsync(sw)), "with_open_in");
    }

    /// <summary>Opens the file for writing, runs <paramref name="body"/> with it and closes it, also when the body throws.</summary>
    /// <typeparam name="T">The body's result.</typeparam>
    /// <param name="create">As for <see cref="OpenWriteAsync"/>.</param>
    /// <param name="body">Uses the file.</param>
    /// <param name="append">As for <see cref="OpenWriteAsync"/>.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="IOException">The errors of <see cref="OpenWriteAsync"/>.</exception>
    /// <remarks>Eio: <c>Path.with_open_out ?append ~create</c>.</remarks>
    public Task<T> WithOpenWriteAsync<T>(FileCreate create, Func<FileWriter, Task<T>> body, bool append = false)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Switch.RunAsync(async sw => await body(await OpenWriteAsync(sw, create, append)), "with_open_out");
    }

    /// <summary>Opens the directory as a confined subtree, runs <paramref name="body"/> with it and closes it.</summary>
    /// <typeparam name="T">The body's result.</typeparam>
    /// <param name="body">Uses the subtree.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="DirectoryNotFoundException">The directory is missing (and the other errors of <see cref="OpenSubtreeAsync"/>).</exception>
    /// <remarks>Eio: <c>Path.with_open_dir</c>.</remarks>
    public Task<T> WithOpenSubtreeAsync<T>(Func<EioPath, Task<T>> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Switch.RunAsync(async sw => await body(await OpenSubtreeAsync(sw)), "with_open_dir");
    }

    /// <summary>Opens the file and runs <paramref name="body"/> with its lines, read lazily as the body enumerates them; the
    /// file is closed when the body returns or throws.</summary>
    /// <typeparam name="T">The body's result.</typeparam>
    /// <param name="body">Consumes the lines (each without its <c>\n</c> or <c>\r\n</c>; a last line without a terminator
    /// is included). Enumerate once, within the body.</param>
    /// <param name="maxLineLength">The longest line accepted, in bytes.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="BufferLimitExceededException">A line is longer than <paramref name="maxLineLength"/>.</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <remarks>Eio: <c>Path.with_lines</c> (over <c>Buf_read.lines</c>).</remarks>
    public Task<T> WithLinesAsync<T>(Func<IAsyncEnumerable<string>, Task<T>> body, int maxLineLength = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(body);
        return WithOpenReadAsync(file => body(new BufferedReader(file, maxLineLength).ReadLinesAsync()));
    }

    /// <summary>Gets the last component of the path (<c>"b"</c> for <c>"a/b/"</c>), or the empty string when there is none
    /// (the directory itself, or <c>"/"</c>).</summary>
    /// <remarks>Eio: the second part of <c>Path.split</c> (OCaml's <c>Filename.basename</c> without its <c>"."</c>).</remarks>
    public string Name => Split() is { } s ? s.Name : "";

    /// <summary>Splits the path into its parent and its last component.</summary>
    /// <returns>The parent (on the same directory capability; <c>""</c> for a one-component relative path, <c>"/"</c> for
    /// one under the root) and the last component; null for the directory itself or the root.</returns>
    /// <remarks>Eio: <c>Path.split</c>. Trailing slashes are ignored; <c>..</c> is a component like any other (nothing is resolved).</remarks>
    public (EioPath Parent, string Name)? Split()
    {
        string p = _path;
        int end = p.Length;
        while (end > 1 && p[end - 1] == '/')
        {
            end--;
        }

        p = p[..end];
        if (p.Length == 0 || p == "/")
        {
            return null;
        }

        int slash = p.LastIndexOf('/');
        if (slash < 0)
        {
            return (new EioPath(_dir, ""), p);
        }

        string parent = p[..slash].TrimEnd('/');
        return (new EioPath(_dir, parent.Length == 0 ? "/" : parent), p[(slash + 1)..]);
    }

    /// <summary>Reads the whole file at this path.</summary>
    /// <param name="maxSize">The largest file accepted, in bytes; checked against the file's size before the buffer is
    /// allocated, and again if the file grows while it is read. Zero accepts only empty files.</param>
    /// <returns>The contents.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is negative or above <see cref="DefaultMaxLoadSize"/>.</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="IOException">The file is larger than <paramref name="maxSize"/> (<see cref="FsErrors.IsFileTooLarge"/>,
    /// <c>EFBIG</c>); <c>EISDIR</c> for a directory; or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.load</c> (which has no limit; a server should always pass one).</remarks>
    public Task<byte[]> LoadAsync(int maxSize = DefaultMaxLoadSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxSize, DefaultMaxLoadSize);
        string display = ToString();
        return OffloadAsync((d, p) => LoadCore(d, p, maxSize, display));
    }

    /// <summary>Reads the whole file at this path as UTF-8 text.</summary>
    /// <param name="maxSize">The largest file accepted, in bytes (not characters), as for <see cref="LoadAsync"/>.</param>
    /// <returns>The decoded text; invalid UTF-8 is replaced with U+FFFD and a byte order mark is kept.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is negative or above <see cref="DefaultMaxLoadSize"/>.</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="IOException">The file is larger than <paramref name="maxSize"/>, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.load</c>.</remarks>
    public async Task<string> LoadStringAsync(int maxSize = DefaultMaxLoadSize) =>
        System.Text.Encoding.UTF8.GetString(await LoadAsync(maxSize));

    /// <summary>Writes <paramref name="data"/> to the file at this path, opening and closing it.</summary>
    /// <param name="data">The bytes; the caller must not change them until the task completes.</param>
    /// <param name="create">Whether to create the file if missing, truncate it, or require it to be new. With
    /// <see cref="FileCreate.IfMissing"/> or <see cref="FileCreate.Never"/> and no <paramref name="append"/>, the data
    /// overwrites the start of an existing file and the rest is kept (as in Eio).</param>
    /// <param name="append">Whether the data goes to the end of the file.</param>
    /// <returns>A task that completes when the data has been handed to the kernel (not synced: open the file and use
    /// <see cref="FileWriter.SyncAsync"/> for durability).</returns>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was written.</exception>
    /// <exception cref="FileNotFoundException">The file is missing and <paramref name="create"/> is <see cref="FileCreate.Never"/>.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> with <see cref="FileCreate.Exclusive"/>, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.save ?append ~create</c>.</remarks>
    public Task SaveAsync(ReadOnlyMemory<byte> data, FileCreate create, bool append = false) =>
        OffloadAsync((d, p) =>
        {
            using var handle = NativeFs.OpenForWriting(d, p, create, append);
            RandomAccess.Write(handle, data.Span, append && d.IsPortable ? RandomAccess.GetLength(handle) : 0);
        });

    /// <summary>Writes <paramref name="text"/> as UTF-8 (without a byte order mark) to the file at this path.</summary>
    /// <param name="text">The text.</param>
    /// <param name="create">The create mode, as for <see cref="SaveAsync(ReadOnlyMemory{byte}, FileCreate, bool)"/>.</param>
    /// <param name="append">Whether the text goes to the end of the file.</param>
    /// <returns>A task that completes when the data has been handed to the kernel.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was written.</exception>
    /// <exception cref="FileNotFoundException">The file is missing and <paramref name="create"/> is <see cref="FileCreate.Never"/>.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> with <see cref="FileCreate.Exclusive"/>, or another error.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Eio: <c>Path.save</c>.</remarks>
    public Task SaveAsync(string text, FileCreate create, bool append = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        return SaveAsync(System.Text.Encoding.UTF8.GetBytes(text), create, append);
    }

    /// <summary>Reads the whole file at this path on the calling thread, blocking it (and so its domain) until the kernel
    /// returns; otherwise as <see cref="LoadAsync"/>.</summary>
    /// <param name="maxSize">The largest file accepted, in bytes, as for <see cref="LoadAsync"/>.</param>
    /// <returns>The contents.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is negative or above <see cref="DefaultMaxLoadSize"/>.</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory.</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="IOException">The file is larger than <paramref name="maxSize"/> (<see cref="FsErrors.IsFileTooLarge"/>),
    /// <c>EISDIR</c> for a directory, or another error.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Not in Eio (<see cref="LoadAsync"/> is <c>Path.load</c>). For a small file read where the caller cannot
    /// yield (a command answered synchronously, such as a server's <c>ACL LOAD</c>). Does not check the fiber's cancellation.</remarks>
    public byte[] Load(int maxSize = DefaultMaxLoadSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxSize, DefaultMaxLoadSize);
        return LoadCore(_dir.Handle, _path, maxSize, ToString());
    }

    /// <summary>Replaces the file at this path with <paramref name="data"/>, atomically and durably: the data goes to a new
    /// temporary file in the same directory (<c>NAME.tmp-XXXXXXXX</c>, created exclusively), which is synced, renamed over
    /// this path, and then the directory is synced.</summary>
    /// <param name="data">The new contents; the caller must not change them until the task completes.</param>
    /// <param name="permissions">Permissions of the new file, before the process umask (the old file's are not kept, as
    /// Redis's <c>CONFIG REWRITE</c> and <c>ACL SAVE</c> do not keep them).</param>
    /// <returns>A task that completes when the new contents and the new name are on the device.</returns>
    /// <exception cref="ArgumentException">The path names no file (the directory itself, or it ends with <c>/</c>).</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was written.</exception>
    /// <exception cref="DirectoryNotFoundException">The parent directory is missing.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied creating the temporary file or renaming it.</exception>
    /// <exception cref="IOException">Writing, syncing or renaming failed (<c>ENOSPC</c>, <c>EIO</c>, <c>EISDIR</c> when a
    /// directory has this name...): the old file is then unchanged and the temporary file removed; or syncing the directory
    /// failed after the rename (the new contents are in place but may not survive a crash).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled before the operation started.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Not in Eio. Readers see either the whole old file or the whole new one, never a part; after a crash the
    /// path holds one of them (a temporary file may be left behind if the process dies before the rename). Runs on the
    /// blocking offload.</remarks>
    public Task ReplaceAsync(ReadOnlyMemory<byte> data, UnixFileMode permissions)
    {
        string display = ToString();
        return OffloadAsync((d, p) => ReplaceCore(d, p, data.Span, permissions, display));
    }

    /// <summary>Replaces the file at this path with <paramref name="data"/> on the calling thread, blocking it (and so its
    /// domain) until the kernel returns; otherwise as <see cref="ReplaceAsync"/>.</summary>
    /// <param name="data">The new contents.</param>
    /// <param name="permissions">Permissions of the new file, before the process umask.</param>
    /// <exception cref="ArgumentException">The path names no file (the directory itself, or it ends with <c>/</c>).</exception>
    /// <exception cref="FsPermissionException">The path would leave its confined directory; nothing was written.</exception>
    /// <exception cref="DirectoryNotFoundException">The parent directory is missing.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied creating the temporary file or renaming it.</exception>
    /// <exception cref="IOException">As for <see cref="ReplaceAsync"/>.</exception>
    /// <exception cref="ObjectDisposedException">The subtree was closed.</exception>
    /// <remarks>Not in Eio. For a rare small write where the caller cannot yield (a server's <c>CONFIG REWRITE</c> or
    /// <c>ACL SAVE</c>, answered synchronously as Redis does). Does not check the fiber's cancellation.</remarks>
    public void Replace(ReadOnlySpan<byte> data, UnixFileMode permissions) => ReplaceCore(_dir.Handle, _path, data, permissions, ToString());

    private static void ReplaceCore(DirectoryHandle dir, string path, ReadOnlySpan<byte> data, UnixFileMode permissions, string display)
    {
        if (path.Length == 0 || path.EndsWith('/'))
        {
            throw new ArgumentException($"{display} names a directory, not a file", nameof(path));
        }

        int slash = path.LastIndexOf('/');
        string parent = slash < 0 ? "" : slash == 0 ? "/" : path[..slash];
        SafeFileHandle? handle = null;
        string temp = "";
        for (int attempt = 0; handle is null; attempt++)
        {
            temp = path + ".tmp-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
            try
            {
                handle = NativeFs.OpenForWriting(dir, temp, FileCreate.Exclusive(permissions));
            }
            catch (IOException e) when (FsErrors.IsAlreadyExists(e) && attempt < 100)
            {
                // Another writer's temporary name: draw again (mkstemp's loop).
            }
        }

        bool renamed = false;
        try
        {
            using (handle)
            {
                RandomAccess.Write(handle, data, 0);
                NativeFs.Sync(handle, dir.IsPortable);
            }

            NativeFs.Rename(dir, temp, dir, path);
            renamed = true;
        }
        finally
        {
            if (!renamed)
            {
                try
                {
                    NativeFs.Unlink(dir, temp);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // The original error matters more; a leftover temporary file is harmless.
                }
            }
        }

        SyncDirectoryCore(dir, parent);
    }

    // ------------------------------------------------------------------ internals

    /// <summary>Opens a file: IORING_OP_OPENAT2 on the calling domain's ring when its backend and kernel can (same flags,
    /// confinement and errors), else <paramref name="blocking"/> on the offload.</summary>
    private Task<SafeFileHandle> OpenFileAsync(OpenFlags flags, UnixFileMode mode, Func<DirectoryHandle, string, SafeFileHandle> blocking)
    {
        if (UringFiles.Ring(Sys.IORING_OP_OPENAT2) is not null)
        {
            Fiber.CancelContext.ThrowIfCancelled();
            var handle = _dir.Handle;
            if (UringFiles.CanOpen(handle))
            {
                return UringFiles.OpenAsync(handle, _path, flags, mode);
            }
        }

        return OffloadAsync(blocking);
    }

    private Task<T> OffloadAsync<T>(Func<DirectoryHandle, string, T> op)
    {
        var dir = _dir;
        string path = _path;
        return BlockingOffload.RunAsync(() => op(dir.Handle, path));
    }

    private Task OffloadAsync(Action<DirectoryHandle, string> op)
    {
        var dir = _dir;
        string path = _path;
        return BlockingOffload.RunAsync(() => op(dir.Handle, path));
    }

    private async Task<FileKind?> KindOrNullAsync(bool followSymlinks)
    {
        try
        {
            return (await StatAsync(followSymlinks)).Kind;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static T Own<T>(SafeFileHandle handle, Func<SafeFileHandle, T> wrap)
    {
        try
        {
            return wrap(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static byte[] LoadCore(DirectoryHandle dir, string path, int maxSize, string display)
    {
        using var handle = NativeFs.OpenForReading(dir, path);
        long size = RandomAccess.GetLength(handle);
        if (size > maxSize)
        {
            throw FsErrors.FileTooLarge(display, size, maxSize);
        }

        // Files such as those in /proc report size 0 and still have contents: keep reading to end of file,
        // growing only while the limit allows.
        var buffer = new byte[size];
        int filled = 0;
        Span<byte> probe = stackalloc byte[4096];
        while (true)
        {
            if (filled < buffer.Length)
            {
                int n = RandomAccess.Read(handle, buffer.AsSpan(filled), filled);
                if (n == 0)
                {
                    return filled == buffer.Length ? buffer : buffer[..filled];
                }

                filled += n;
                continue;
            }

            int extra = RandomAccess.Read(handle, probe, filled);
            if (extra == 0)
            {
                return buffer;
            }

            if ((long)filled + extra > maxSize)
            {
                throw FsErrors.FileTooLarge(display, (long)filled + extra, maxSize);
            }

            int newLength = (int)Math.Min(maxSize, Math.Max((long)buffer.Length * 2, (long)filled + extra));
            Array.Resize(ref buffer, newLength);
            probe[..extra].CopyTo(buffer.AsSpan(filled));
            filled += extra;
        }
    }

    // OCaml's Filename.concat.
    private static string Concat(string dir, string name) =>
        dir.Length == 0 || dir.EndsWith('/') ? dir + name : dir + "/" + name;
}
