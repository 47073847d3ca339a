using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Fs;

/// <summary>Synchronous Linux filesystem operations relative to a <see cref="DirectoryHandle"/>.</summary>
/// <remarks>
/// <para>
/// This is the blocking layer under the <c>Path</c>/<c>Dir</c> capability API: every method makes
/// one or a few system calls on the calling thread and may block for as long as the filesystem
/// takes, so fiber code must run it through the blocking offload.
/// </para>
/// <para>
/// <b>Confinement (S28):</b> when the directory's <see cref="DirectoryHandle.Resolution"/> is
/// confined, every path is resolved beneath it: <c>openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)</c>
/// when available, otherwise <see cref="ComponentWiseResolver"/>. Operations on a name (mkdir,
/// unlink, rmdir, rename, symlink, readlink) first resolve the parent directory beneath the root,
/// then act on the last component with an <c>*at</c> system call, which never follows a symlink in
/// that last component. Absolute paths, <c>..</c> above the root, symlinks whose target is absolute or
/// climbs out, symlink loops and magic links throw <see cref="FsPermissionException"/> before
/// anything is created, changed or opened outside. <c>..</c> that stays inside and symlinks that
/// stay inside are allowed. A trailing slash is ignored by name operations.
/// </para>
/// <para>
/// <b>Errors:</b> see <see cref="NativeErrors"/>. Messages name the path as given. Every exception's
/// <see cref="Exception.HResult"/> is the errno. Operations on a disposed handle throw
/// <see cref="ObjectDisposedException"/>.
/// </para>
/// <para><b>Thread safety:</b> all methods are safe to call concurrently.</para>
/// </remarks>
internal static unsafe class NativeFs
{
    /// <summary>Expansions before a symlink chain counts as a loop; Linux's limit (MAXSYMLINKS).</summary>
    internal const int MaxSymlinkExpansions = 40;

    // RESOLVE_BENEATH reports EAGAIN when a concurrent rename could let ".." escape; retry a little.
    private const int MaxEAgainRetries = 32;

    private static readonly Lazy<bool> s_openAt2Supported = new(ProbeOpenAt2);

    /// <summary>Gets whether <c>openat2</c> with <c>RESOLVE_BENEATH</c> works in this process (probed once).</summary>
    /// <remarks>False on kernels before 5.6 (<c>ENOSYS</c>) and under seccomp filters that reject it (<c>EPERM</c>).</remarks>
    public static bool IsOpenAt2Supported => s_openAt2Supported.Value;

    // ---------------------------------------------------------------- opening

    /// <summary>Opens <paramref name="path"/> with the directory's resolution (confined or not).</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">A relative path; empty means the directory itself. Absolute only if <paramref name="dir"/> is unconfined.</param>
    /// <param name="flags">Access and creation flags.</param>
    /// <param name="mode">Permissions of a created file, before the umask; ignored without <see cref="OpenFlags.Create"/>.</param>
    /// <returns>An owned handle; use <see cref="RandomAccess"/> for positional I/O.</returns>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">The file is missing (its parent directory exists).</exception>
    /// <exception cref="DirectoryNotFoundException">A directory was expected and is missing, or a component is not a directory.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied access (<c>EACCES</c>/<c>EPERM</c>).</exception>
    /// <exception cref="IOException">Another error, e.g. <c>EEXIST</c> for <see cref="OpenFlags.Exclusive"/>.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="dir"/> was disposed.</exception>
    public static SafeFileHandle Open(DirectoryHandle dir, string path, OpenFlags flags, UnixFileMode mode = UnixFileMode.None)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(path);
        if (dir.IsPortable)
        {
            return PortableFs.Open(dir, path, flags, mode);
        }

        return ToFileHandle(OpenFd(dir, dir.Resolution, path, flags, mode));
    }

    /// <summary>Opens <paramref name="path"/> confined beneath <paramref name="dir"/>, whatever the handle's own resolution.</summary>
    /// <remarks>Uses the handle's strategy if confined, otherwise <see cref="PathResolution.Beneath"/>. Errors as <see cref="Open"/>.</remarks>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="IOException">As for <see cref="Open"/>.</exception>
    public static SafeFileHandle OpenBeneath(DirectoryHandle dir, string path, OpenFlags flags, UnixFileMode mode = UnixFileMode.None)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(path);
        if (dir.IsPortable)
        {
            var beneath = dir.IsConfined ? dir : DirectoryHandle.Portable(Path.GetFullPath(dir.PortableRoot ?? "."), dir.DisplayPath, PathResolution.Portable);
            return PortableFs.Open(beneath, path, flags, mode);
        }

        var resolution = dir.IsConfined ? dir.Resolution : PathResolution.Beneath;
        return ToFileHandle(OpenFd(dir, resolution, path, flags, mode));
    }

    /// <summary>Opens <paramref name="path"/> with plain <c>openat</c>, relative to <paramref name="dir"/> or the current directory.</summary>
    /// <param name="dir">The base directory (a portable one opens through <see cref="PortableFs"/>), or <see langword="null"/>
    /// for the current directory (<c>AT_FDCWD</c>, native).</param>
    /// <param name="path">Any path; absolute paths ignore <paramref name="dir"/>.</param>
    /// <param name="flags">Access and creation flags.</param>
    /// <param name="mode">Permissions of a created file.</param>
    /// <remarks>Nothing is confined; this is <c>env.Fs</c>. Errors as <see cref="Open"/>, minus <see cref="FsPermissionException"/>.</remarks>
    /// <exception cref="IOException">As for <see cref="Open"/>.</exception>
    public static SafeFileHandle OpenUnconfined(DirectoryHandle? dir, string path, OpenFlags flags, UnixFileMode mode = UnixFileMode.None)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (dir is { IsPortable: true })
        {
            var unconfined = dir.IsConfined ? DirectoryHandle.Portable(dir.PortableRoot!, dir.DisplayPath, PathResolution.Unconfined) : dir;
            return PortableFs.Open(unconfined, path, flags, mode);
        }

        if (dir is null)
        {
            var (native, follow) = ToNative(flags);
            return ToFileHandle(OpenAtChecked(LinuxInterop.AtFdCwd, path, native | (follow ? 0 : LinuxInterop.ONoFollow), (uint)mode, path, IsDirectoryOpen(flags)));
        }

        return ToFileHandle(OpenFd(dir, PathResolution.Unconfined, path, flags, mode));
    }

    /// <summary>Opens a file for reading. Eio: <c>Path.open_in</c>.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="IOException">Other errors, as for <see cref="Open"/>.</exception>
    public static SafeFileHandle OpenForReading(DirectoryHandle dir, string path) => Open(dir, path, OpenFlags.Read);

    /// <summary>Opens a file for reading and writing, creating it according to <paramref name="create"/>. Eio: <c>Path.open_out</c>.</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">The file's path.</param>
    /// <param name="create">Whether to create or truncate, and the permissions of a new file.</param>
    /// <param name="append">Whether every write goes to the end of the file (<c>O_APPEND</c>).</param>
    /// <remarks>Like Eio the file is opened <c>O_RDWR</c>, so read permission is needed as well.</remarks>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">The file is missing and <paramref name="create"/> is <see cref="FileCreateKind.Never"/>.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> with <see cref="FileCreateKind.Exclusive"/>, or other errors as for <see cref="Open"/>.</exception>
    public static SafeFileHandle OpenForWriting(DirectoryHandle dir, string path, FileCreate create, bool append = false)
    {
        var flags = OpenFlags.ReadWrite | create.ToOpenFlags() | (append ? OpenFlags.Append : 0);
        return Open(dir, path, flags, create.Permissions);
    }

    // ---------------------------------------------------------------- metadata

    /// <summary>Returns the metadata of <paramref name="path"/>. Eio: <c>Path.stat ~follow</c>.</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">The path; empty means the directory itself.</param>
    /// <param name="followSymlinks">Whether a symlink in the last component is followed (confined) or described itself.</param>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException">Other errors, as for <see cref="Open"/>.</exception>
    public static FileStat Stat(DirectoryHandle dir, string path, bool followSymlinks = true)
    {
        if (dir.IsPortable)
        {
            return PortableFs.Stat(dir, path, followSymlinks);
        }

        var flags = OpenFlags.PathOnly | (followSymlinks ? 0 : OpenFlags.NoFollow);
        int fd = OpenFd(dir, dir.Resolution, path, flags, UnixFileMode.None);
        try
        {
            return StatFd(fd, path);
        }
        finally
        {
            LinuxInterop.Close(fd);
        }
    }

    /// <summary>Returns the metadata of an open file. Eio: <c>File.stat</c>.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="portable">Whether the file was opened by the portable layer (<see cref="DirectoryHandle.IsPortable"/> of
    /// its directory): then .NET's handle-based calls answer (<see cref="PortableFs.Stat(SafeFileHandle)"/>), else <c>fstat</c>.</param>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="file"/> was closed.</exception>
    public static FileStat Stat(SafeFileHandle file, bool portable = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (portable)
        {
            return PortableFs.Stat(file);
        }

        bool added = false;
        file.DangerousAddRef(ref added);
        try
        {
            return StatFd((int)file.DangerousGetHandle(), "<file>");
        }
        finally
        {
            file.DangerousRelease();
        }
    }

    /// <summary>Lists the names in a directory, excluding <c>.</c> and <c>..</c>, sorted ordinally. Eio: <c>Path.read_dir</c>.</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">The directory to list; empty means <paramref name="dir"/> itself.</param>
    /// <remarks>Names that are not valid UTF-8 are decoded with replacement characters.</remarks>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">Other errors, as for <see cref="Open"/>.</exception>
    public static string[] ReadDirectory(DirectoryHandle dir, string path = "")
    {
        if (dir.IsPortable)
        {
            return PortableFs.ReadDirectory(dir, path);
        }

        var raw = ReadDirents(dir, path);
        var result = new string[raw.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = raw[i].Name;
        }

        Array.Sort(result, StringComparer.Ordinal);
        return result;
    }

    /// <summary>The entries of a directory as getdents64 gives them (name, d_type), without <c>.</c> and <c>..</c>, unsorted.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">Other errors, as for <see cref="Open"/>.</exception>
    private static List<(string Name, byte Type)> ReadDirents(DirectoryHandle dir, string path)
    {
        int fd = OpenFd(dir, dir.Resolution, path, OpenFlags.Read | OpenFlags.Directory, UnixFileMode.None);
        var entries = new List<(string, byte)>();
        try
        {
            const int BufferSize = 32 * 1024;
            byte* buffer = (byte*)NativeMemory.Alloc(BufferSize);
            try
            {
                while (true)
                {
                    long n = LinuxInterop.GetDents64(fd, buffer, BufferSize);
                    if (n == 0)
                    {
                        break;
                    }

                    if (n < 0)
                    {
                        if (Marshal.GetLastPInvokeError() == NativeErrors.EINTR)
                        {
                            continue;
                        }

                        throw NativeErrors.Last(path, directoryExpected: true);
                    }

                    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                    for (long offset = 0; offset < n;)
                    {
                        byte* entry = buffer + offset;
                        ushort recordLength = *(ushort*)(entry + 16);
                        var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + 19);
                        if (!(name.SequenceEqual("."u8) || name.SequenceEqual(".."u8)))
                        {
                            entries.Add((System.Text.Encoding.UTF8.GetString(name), entry[18]));
                        }

                        offset += recordLength;
                    }
                }
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
        finally
        {
            LinuxInterop.Close(fd);
        }

        return entries;
    }

    /// <summary>Returns the target of the symlink <paramref name="path"/> without resolving it. Eio: <c>Path.read_link</c>.</summary>
    /// <exception cref="FsPermissionException">The parent would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException"><c>EINVAL</c> if it is not a symlink, or other errors.</exception>
    public static string ReadLink(DirectoryHandle dir, string path)
    {
        if (dir.IsPortable)
        {
            return PortableFs.ReadLink(dir, path);
        }

        using var parent = ResolveParent(dir, path, NativeErrors.EINVAL);
        var leaf = LinuxInterop.ToNative(parent.Leaf);
        fixed (byte* p = leaf)
        {
            if (TryReadLinkAt(parent.Fd, p, out var target, out int errno))
            {
                return target;
            }

            throw NativeErrors.FromErrno(errno, path);
        }
    }

    // ---------------------------------------------------------------- changing names

    /// <summary>Creates a directory. Eio: <c>Path.mkdir ~perm</c>.</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">The new directory's path; its parent must exist.</param>
    /// <param name="permissions">Permissions before the umask.</param>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The parent is missing.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the name exists (even as a dangling symlink), or other errors.</exception>
    public static void MakeDirectory(DirectoryHandle dir, string path, UnixFileMode permissions)
    {
        if (dir.IsPortable)
        {
            PortableFs.MakeDirectory(dir, path, permissions);
            return;
        }

        using var parent = ResolveParent(dir, path, NativeErrors.EEXIST);
        var leaf = LinuxInterop.ToNative(parent.Leaf);
        fixed (byte* p = leaf)
        {
            if (LinuxInterop.MkDirAt(parent.Fd, p, (uint)permissions) != 0)
            {
                throw NativeErrors.Last(path);
            }
        }
    }

    /// <summary>Creates a directory and any missing parents, each step confined like <see cref="MakeDirectory"/>. Eio: <c>Path.mkdirs ?exists_ok ~perm</c>.</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">The directory to create.</param>
    /// <param name="permissions">Permissions of every created directory, before the umask.</param>
    /// <param name="existsOk">Whether an existing directory at <paramref name="path"/> is success.</param>
    /// <exception cref="FsPermissionException">A prefix of the path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">A prefix exists and is not a directory.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the directory exists and <paramref name="existsOk"/> is false, or other errors.</exception>
    public static void MakeDirectories(DirectoryHandle dir, string path, UnixFileMode permissions, bool existsOk = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        var parts = path.Split('/');

        // The last non-empty component: trailing slashes do not add levels.
        int lastIndex = Array.FindLastIndex(parts, p => p.Length != 0);
        if (lastIndex < 0)
        {
            lastIndex = parts.Length - 1;
        }

        for (int i = 0; i <= lastIndex; i++)
        {
            string component = parts[i];
            if (i == 0 && component.Length == 0 && parts.Length > 1)
            {
                // Absolute path: start at "/" (refused later if confined).
                continue;
            }

            bool last = i == lastIndex;
            string prefix = string.Join('/', parts, 0, i + 1);
            if (component is "" or "." or "..")
            {
                if (last)
                {
                    var stat = Stat(dir, prefix);
                    if (!existsOk)
                    {
                        throw NativeErrors.FromErrno(NativeErrors.EEXIST, path);
                    }

                    if (stat.Kind != FileKind.Directory)
                    {
                        throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, path);
                    }

                    return;
                }

                continue;
            }

            try
            {
                MakeDirectory(dir, prefix, permissions);
            }
            catch (IOException ex) when (ex.HResult == NativeErrors.EEXIST)
            {
                if (last && !existsOk)
                {
                    throw NativeErrors.FromErrno(NativeErrors.EEXIST, path);
                }

                if (Stat(dir, prefix).Kind != FileKind.Directory)
                {
                    throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, path);
                }
            }

            if (last)
            {
                return;
            }
        }
    }

    /// <summary>Removes a file or symlink (the link itself, never its target). Eio: <c>Path.unlink</c>.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException"><c>EISDIR</c> for a directory, or other errors.</exception>
    public static void Unlink(DirectoryHandle dir, string path)
    {
        if (dir.IsPortable)
        {
            PortableFs.Unlink(dir, path);
            return;
        }

        UnlinkCore(dir, path, 0);
    }

    /// <summary>Removes an empty directory. Eio: <c>Path.rmdir</c>.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="DirectoryNotFoundException">The path is not a directory.</exception>
    /// <exception cref="IOException"><c>ENOTEMPTY</c> if the directory is not empty, or other errors.</exception>
    public static void RemoveDirectory(DirectoryHandle dir, string path)
    {
        if (dir.IsPortable)
        {
            PortableFs.RemoveDirectory(dir, path);
            return;
        }

        UnlinkCore(dir, path, LinuxInterop.AtRemoveDir);
    }

    /// <summary>Renames <paramref name="oldPath"/> to <paramref name="newPath"/>, replacing a file there. Eio: <c>Path.rename</c>.</summary>
    /// <param name="oldDir">The directory <paramref name="oldPath"/> is relative to.</param>
    /// <param name="oldPath">The existing name.</param>
    /// <param name="newDir">The directory <paramref name="newPath"/> is relative to (may be <paramref name="oldDir"/>).</param>
    /// <param name="newPath">The new name.</param>
    /// <exception cref="FsPermissionException">Either path would leave its directory.</exception>
    /// <exception cref="FileNotFoundException"><paramref name="oldPath"/> does not exist.</exception>
    /// <exception cref="IOException"><c>EXDEV</c> across filesystems, <c>EISDIR</c>/<c>ENOTEMPTY</c> for bad replacements, or other errors.</exception>
    public static void Rename(DirectoryHandle oldDir, string oldPath, DirectoryHandle newDir, string newPath)
    {
        if (oldDir.IsPortable || newDir.IsPortable)
        {
            if (!(oldDir.IsPortable && newDir.IsPortable))
            {
                throw new ArgumentException("Cannot rename between a portable and a native directory handle.");
            }

            PortableFs.Rename(oldDir, oldPath, newDir, newPath);
            return;
        }

        using var oldParent = ResolveParent(oldDir, oldPath, NativeErrors.EBUSY);
        using var newParent = ResolveParent(newDir, newPath, NativeErrors.EBUSY);
        var oldLeaf = LinuxInterop.ToNative(oldParent.Leaf);
        var newLeaf = LinuxInterop.ToNative(newParent.Leaf);
        fixed (byte* o = oldLeaf)
        fixed (byte* n = newLeaf)
        {
            if (LinuxInterop.RenameAt(oldParent.Fd, o, newParent.Fd, n) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw NativeErrors.FromErrno(errno, errno == NativeErrors.ENOENT ? oldPath : $"{oldPath} -> {newPath}");
            }
        }
    }

    /// <summary>Changes the permission bits of the object at <paramref name="path"/> (symlinks followed, confined). Eio: <c>Path.chmod</c>.</summary>
    /// <remarks>The object is opened with <c>O_PATH</c> by the confined resolver, then changed through <c>/proc/self/fd</c>,
    /// so a symlink that leaves the directory is refused before anything is changed.</remarks>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="UnauthorizedAccessException">Not the owner (<c>EPERM</c>).</exception>
    public static void ChangeMode(DirectoryHandle dir, string path, UnixFileMode permissions)
    {
        if (dir.IsPortable)
        {
            PortableFs.ChangeMode(dir, path, permissions);
            return;
        }

        int fd = OpenFd(dir, dir.Resolution, path, OpenFlags.PathOnly, UnixFileMode.None);
        try
        {
            var proc = LinuxInterop.ToNative($"/proc/self/fd/{fd}");
            fixed (byte* p = proc)
            {
                if (LinuxInterop.ChMod(p, (uint)permissions) != 0)
                {
                    throw NativeErrors.Last(path);
                }
            }
        }
        finally
        {
            LinuxInterop.Close(fd);
        }
    }

    /// <summary>Changes the owner and group of the object at <paramref name="path"/> (-1 keeps one). Confined as <see cref="ChangeMode"/>.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="UnauthorizedAccessException">The process may not give the object away (<c>EPERM</c>: needs <c>CAP_CHOWN</c>
    /// for another owner, or membership of the group).</exception>
    public static void ChangeOwner(DirectoryHandle dir, string path, int owner, int group, bool followSymlinks = true)
    {
        if (dir.IsPortable)
        {
            PortableFs.ChangeOwner(dir, path, followSymlinks);
            return;
        }

        int fd = OpenFd(dir, dir.Resolution, path, OpenFlags.PathOnly | (followSymlinks ? 0 : OpenFlags.NoFollow), UnixFileMode.None);
        try
        {
            byte empty = 0;
            if (LinuxInterop.FChOwnAt(fd, &empty, owner, group, LinuxInterop.AtEmptyPath) != 0)
            {
                throw NativeErrors.Last(path);
            }
        }
        finally
        {
            LinuxInterop.Close(fd);
        }
    }

    /// <summary>Lists a directory with each entry's kind (from <c>d_type</c>; a filesystem that reports none gets an
    /// <c>lstat</c>), without <c>.</c> and <c>..</c>, sorted ordinally by name. Symlinks are reported as links.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    public static (string Name, FileKind Kind)[] ReadDirectoryEntries(DirectoryHandle dir, string path = "")
    {
        if (dir.IsPortable)
        {
            return PortableFs.ReadDirectoryEntries(dir, path);
        }

        var raw = ReadDirents(dir, path);
        var entries = new List<(string, FileKind)>(raw.Count);
        foreach (var (name, type) in raw)
        {
            entries.Add((name, KindOfDirentType(type)));
        }

        var result = entries.ToArray();
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i].Item2 == FileKind.Unknown)
            {
                string child = path.Length == 0 ? result[i].Item1 : path.TrimEnd('/') + "/" + result[i].Item1;
                result[i].Item2 = Stat(dir, child, followSymlinks: false).Kind;
            }
        }

        Array.Sort(result, (a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return result;
    }

    private static FileKind KindOfDirentType(byte type) => type switch
    {
        8 => FileKind.RegularFile,
        4 => FileKind.Directory,
        10 => FileKind.SymbolicLink,
        1 => FileKind.Fifo,
        2 => FileKind.CharacterDevice,
        6 => FileKind.BlockDevice,
        12 => FileKind.Socket,
        _ => FileKind.Unknown,
    };

    /// <summary>Removes <paramref name="path"/> and, if it is a directory, everything beneath it; symlinks are removed,
    /// never followed. Eio: <c>Path.rmtree</c>.</summary>
    /// <returns>False if nothing existed at the path.</returns>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    public static bool RemoveTree(DirectoryHandle dir, string path)
    {
        FileKind kind;
        try
        {
            kind = Stat(dir, path, followSymlinks: false).Kind;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }

        if (kind != FileKind.Directory)
        {
            Unlink(dir, path);
            return true;
        }

        foreach (var (name, childKind) in ReadDirectoryEntries(dir, path))
        {
            string child = path.Length == 0 ? name : path.TrimEnd('/') + "/" + name;
            if (childKind == FileKind.Directory)
            {
                RemoveTree(dir, child);
            }
            else
            {
                try
                {
                    Unlink(dir, child);
                }
                catch (FileNotFoundException)
                {
                    // Removed concurrently: the goal is reached.
                }
            }
        }

        RemoveDirectory(dir, path);
        return true;
    }

    /// <summary>Creates a symlink at <paramref name="linkPath"/> containing <paramref name="target"/>. Eio: <c>Path.symlink</c>.</summary>
    /// <param name="dir">The directory <paramref name="linkPath"/> is relative to.</param>
    /// <param name="linkPath">Where to create the link; confined like <see cref="MakeDirectory"/>.</param>
    /// <param name="target">The link's contents, stored verbatim; it is not checked (a link pointing outside can be created, but not followed, in a confined directory).</param>
    /// <exception cref="FsPermissionException"><paramref name="linkPath"/> would leave <paramref name="dir"/>.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the name exists, or other errors.</exception>
    public static void SymLink(DirectoryHandle dir, string linkPath, string target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (dir.IsPortable)
        {
            PortableFs.SymLink(dir, linkPath, target);
            return;
        }

        using var parent = ResolveParent(dir, linkPath, NativeErrors.EEXIST);
        var leaf = LinuxInterop.ToNative(parent.Leaf);
        var nativeTarget = LinuxInterop.ToNative(target);
        fixed (byte* l = leaf)
        fixed (byte* t = nativeTarget)
        {
            if (LinuxInterop.SymLinkAt(t, parent.Fd, l) != 0)
            {
                throw NativeErrors.Last(linkPath);
            }
        }
    }

    /// <summary>Opens the directory at <paramref name="path"/> as a new handle. The basis of Eio's <c>Path.open_dir</c> / <c>OpenSubtree</c>.</summary>
    /// <param name="dir">The directory the path is relative to.</param>
    /// <param name="path">The subdirectory; empty means <paramref name="dir"/> itself (a second handle).</param>
    /// <param name="resolution">The new handle's resolution; by default that of <paramref name="dir"/>. Pass a confined value to sandbox a subtree of an unconfined directory.</param>
    /// <returns>A handle the caller must dispose; it is independent of <paramref name="dir"/>'s lifetime.</returns>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">Other errors, as for <see cref="Open"/>.</exception>
    public static DirectoryHandle OpenSubdirectory(DirectoryHandle dir, string path, PathResolution? resolution = null)
    {
        if (dir.IsPortable)
        {
            return PortableFs.OpenSubdirectory(dir, path, resolution);
        }

        int fd = OpenFd(dir, dir.Resolution, path, OpenFlags.PathOnly | OpenFlags.Directory, UnixFileMode.None);
        string display = path.StartsWith('/') ? path : path.Length == 0 ? dir.DisplayPath : $"{dir.DisplayPath.TrimEnd('/')}/{path}";
        return new DirectoryHandle(new SafeDirectoryFd(fd), display, resolution ?? dir.Resolution);
    }

    // ---------------------------------------------------------------- open files

    /// <summary>Flushes the file's data and metadata to the device (<c>fsync</c>). Eio: <c>File.sync</c>.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="portable">Whether the file was opened by the portable layer: then <see cref="PortableFs.Sync"/>, else <c>fsync</c>.</param>
    /// <exception cref="IOException">The kernel reported an error (e.g. <c>EIO</c>).</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="file"/> was closed.</exception>
    public static void Sync(SafeFileHandle file, bool portable = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (portable)
        {
            PortableFs.Sync(file);
            return;
        }

        while (LinuxInterop.FSync(file) != 0)
        {
            if (Marshal.GetLastPInvokeError() != NativeErrors.EINTR)
            {
                throw NativeErrors.Last("<file>");
            }
        }
    }

    /// <summary>Flushes the file's data, and only the metadata needed to read it back, to the device (<c>fdatasync</c>).</summary>
    /// <param name="file">The open file.</param>
    /// <param name="portable">Whether the file was opened by the portable layer: then <see cref="PortableFs.Sync"/> (.NET has no
    /// fdatasync), else <c>fdatasync</c>.</param>
    /// <exception cref="IOException">The kernel reported an error (e.g. <c>EIO</c>).</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="file"/> was closed.</exception>
    public static void DataSync(SafeFileHandle file, bool portable = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (portable)
        {
            PortableFs.Sync(file);
            return;
        }

        while (LinuxInterop.FDataSync(file) != 0)
        {
            if (Marshal.GetLastPInvokeError() != NativeErrors.EINTR)
            {
                throw NativeErrors.Last("<file>");
            }
        }
    }

    /// <summary>Flushes the directory at <paramref name="path"/> (its entries) to the device: opens it and <c>fsync</c>s it.</summary>
    /// <remarks>The portable layer cannot open a directory with .NET and only checks that it exists (see <see cref="PortableFs"/>).</remarks>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    /// <exception cref="IOException">The kernel reported an error.</exception>
    public static void SyncDirectory(DirectoryHandle dir, string path)
    {
        if (dir.IsPortable)
        {
            PortableFs.SyncDirectory(dir, path);
            return;
        }

        using var handle = Open(dir, path.Length == 0 ? "." : path, OpenFlags.Read | OpenFlags.Directory);
        Sync(handle);
    }

    // ---------------------------------------------------------------- internals

    /// <summary>Opens <paramref name="path"/> as an <c>O_PATH | O_DIRECTORY</c> descriptor relative to <paramref name="dirFd"/>, unconfined.</summary>
    internal static int OpenDirectoryFd(int dirFd, string path) =>
        OpenAtChecked(dirFd, path, LinuxInterop.OPath | LinuxInterop.ODirectory | LinuxInterop.OCloExec, 0, path, directoryExpected: true);

    /// <summary>Resolves and opens <paramref name="path"/> with <paramref name="resolution"/>; returns an owned raw descriptor.</summary>
    internal static int OpenFd(DirectoryHandle dir, PathResolution resolution, string path, OpenFlags flags, UnixFileMode mode)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(path);
        var (native, follow) = ToNative(flags);
        bool directoryExpected = IsDirectoryOpen(flags);
        using var lease = dir.Lease();
        return resolution switch
        {
            PathResolution.Unconfined =>
                OpenAtChecked(lease.Fd, path.Length == 0 ? "." : path, native | (follow ? 0 : LinuxInterop.ONoFollow), (uint)mode, path, directoryExpected),
            PathResolution.OpenAt2 => OpenAt2Beneath(lease.Fd, path, native, (uint)mode, follow, directoryExpected),
            PathResolution.ComponentWise => ComponentWiseResolver.Open(lease.Fd, path, native, (uint)mode, follow, directoryExpected),
            _ => IsOpenAt2Supported
                ? OpenAt2Beneath(lease.Fd, path, native, (uint)mode, follow, directoryExpected)
                : ComponentWiseResolver.Open(lease.Fd, path, native, (uint)mode, follow, directoryExpected),
        };
    }

    internal static bool IsDirectoryOpen(OpenFlags flags) => (flags & OpenFlags.Directory) != 0;

    internal static (int Native, bool Follow) ToNative(OpenFlags flags)
    {
        int native = LinuxInterop.OCloExec | LinuxInterop.ONoCtty;
        if ((flags & OpenFlags.PathOnly) != 0)
        {
            native = LinuxInterop.OCloExec | LinuxInterop.OPath;
        }
        else if ((flags & OpenFlags.ReadWrite) != 0)
        {
            native |= LinuxInterop.ORdWr;
        }
        else if ((flags & OpenFlags.Write) != 0)
        {
            native |= LinuxInterop.OWrOnly;
        }

        if ((flags & OpenFlags.Create) != 0)
        {
            native |= LinuxInterop.OCreat;
        }

        if ((flags & OpenFlags.Exclusive) != 0)
        {
            native |= LinuxInterop.OExcl;
        }

        if ((flags & OpenFlags.Truncate) != 0)
        {
            native |= LinuxInterop.OTrunc;
        }

        if ((flags & OpenFlags.Append) != 0)
        {
            native |= LinuxInterop.OAppend;
        }

        if ((flags & OpenFlags.Directory) != 0)
        {
            native |= LinuxInterop.ODirectory;
        }

        return (native, (flags & OpenFlags.NoFollow) == 0);
    }

    internal static SafeFileHandle ToFileHandle(int fd) => new(new IntPtr(fd), ownsHandle: true);

    /// <summary><c>openat</c> retrying <c>EINTR</c>; throws the translated errno.</summary>
    internal static int OpenAtChecked(int dirFd, string path, int nativeFlags, uint mode, string displayPath, bool directoryExpected)
    {
        var bytes = LinuxInterop.ToNative(path);
        fixed (byte* p = bytes)
        {
            while (true)
            {
                int fd = LinuxInterop.OpenAt(dirFd, p, nativeFlags, (nativeFlags & LinuxInterop.OCreat) != 0 ? mode : 0);
                if (fd >= 0)
                {
                    return fd;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != NativeErrors.EINTR)
                {
                    throw NativeErrors.FromErrno(errno, displayPath, directoryExpected);
                }
            }
        }
    }

    /// <summary>Confined open with <c>openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)</c>.</summary>
    private static int OpenAt2Beneath(int dirFd, string path, int nativeFlags, uint mode, bool follow, bool directoryExpected)
    {
        var bytes = LinuxInterop.ToNative(path.Length == 0 ? "." : path);
        var how = OpenHowBeneath(nativeFlags, mode, follow);
        int eagain = 0;
        fixed (byte* p = bytes)
        {
            while (true)
            {
                int fd = LinuxInterop.OpenAt2(dirFd, p, &how);
                if (fd >= 0)
                {
                    return fd;
                }

                var error = OpenAt2BeneathFailure(Marshal.GetLastPInvokeError(), dirFd, path, directoryExpected, ref eagain);
                if (error is not null)
                {
                    throw error;
                }
            }
        }
    }

    /// <summary>The <c>open_how</c> of a confined open (<c>RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS</c>); shared with the io_uring backend's IORING_OP_OPENAT2.</summary>
    internal static LinuxInterop.OpenHow OpenHowBeneath(int nativeFlags, uint mode, bool follow) => new()
    {
        Flags = (ulong)(uint)(nativeFlags | (follow ? 0 : LinuxInterop.ONoFollow)),
        Mode = (nativeFlags & LinuxInterop.OCreat) != 0 ? mode : 0,
        Resolve = LinuxInterop.ResolveBeneath | LinuxInterop.ResolveNoMagicLinks,
    };

    /// <summary>
    /// What a failed confined <c>openat2</c> means: null to retry (<c>EINTR</c>, or <c>EAGAIN</c> from a concurrent rename,
    /// counted in <paramref name="eagain"/>), otherwise the exception (<c>EXDEV</c>/<c>ELOOP</c>: the sandbox's refusal).
    /// Shared by the blocking open and the io_uring backend's IORING_OP_OPENAT2.
    /// </summary>
    internal static Exception? OpenAt2BeneathFailure(int errno, int dirFd, string path, bool directoryExpected, ref int eagain)
    {
        switch (errno)
        {
            case NativeErrors.EINTR:
                return null;
            case NativeErrors.EAGAIN when ++eagain < MaxEAgainRetries:
                return null;
            case NativeErrors.EXDEV:
                return NativeErrors.Refused(path, "escapes the directory (absolute path, '..' above it, or a symbolic link leading out of it)");
            case NativeErrors.ELOOP:
                // With RESOLVE_BENEATH, ELOOP means a symlink loop, too many links, or a magic link.
                return NativeErrors.Refused(path, "has too many levels of symbolic links (a loop) or passes through a magic link");
            case NativeErrors.ENOENT when !directoryExpected:
                // Like System.IO: a missing parent directory is DirectoryNotFoundException.
                return NativeErrors.FromErrno(errno, path, directoryExpected: !ParentExistsBeneath(dirFd, path));
            default:
                return NativeErrors.FromErrno(errno, path, directoryExpected);
        }
    }

    /// <summary>Whether the directory part of <paramref name="path"/> resolves to a directory beneath <paramref name="dirFd"/>; used on the error path only.</summary>
    private static bool ParentExistsBeneath(int dirFd, string path)
    {
        string trimmed = path.TrimEnd('/');
        int slash = trimmed.LastIndexOf('/');
        if (slash <= 0)
        {
            return true;
        }

        var bytes = LinuxInterop.ToNative(trimmed[..slash]);
        var how = new LinuxInterop.OpenHow
        {
            Flags = (ulong)(uint)(LinuxInterop.OPath | LinuxInterop.ODirectory | LinuxInterop.OCloExec),
            Resolve = LinuxInterop.ResolveBeneath | LinuxInterop.ResolveNoMagicLinks,
        };
        fixed (byte* p = bytes)
        {
            int fd = LinuxInterop.OpenAt2(dirFd, p, &how);
            if (fd < 0)
            {
                return false;
            }

            LinuxInterop.Close(fd);
            return true;
        }
    }

    private static bool ProbeOpenAt2()
    {
        var dot = "."u8.ToArray().Append((byte)0).ToArray();
        var how = new LinuxInterop.OpenHow
        {
            Flags = (ulong)(uint)(LinuxInterop.OPath | LinuxInterop.ODirectory | LinuxInterop.OCloExec),
            Resolve = LinuxInterop.ResolveBeneath | LinuxInterop.ResolveNoMagicLinks,
        };
        fixed (byte* p = dot)
        {
            int fd = LinuxInterop.OpenAt2(LinuxInterop.AtFdCwd, p, &how);
            if (fd >= 0)
            {
                LinuxInterop.Close(fd);
                return true;
            }

            // ENOSYS: kernel before 5.6. EPERM: a seccomp filter. EINVAL/E2BIG: flags unknown to this kernel.
            // Anything else (e.g. the current directory was deleted) still proves the call exists.
            return Marshal.GetLastPInvokeError() is not (NativeErrors.ENOSYS or NativeErrors.EPERM or NativeErrors.EINVAL or 7);
        }
    }

    private static FileStat StatFd(int fd, string path)
    {
        LinuxInterop.Statx buffer;
        byte empty = 0;
        if (LinuxInterop.StatX(fd, &empty, LinuxInterop.AtEmptyPath | LinuxInterop.AtSymlinkNoFollow, LinuxInterop.StatxBasicStats, &buffer) != 0)
        {
            throw NativeErrors.Last(path);
        }

        return FileStat.FromStatx(buffer);
    }

    private static void UnlinkCore(DirectoryHandle dir, string path, int flags)
    {
        using var parent = ResolveParent(dir, path, (flags & LinuxInterop.AtRemoveDir) != 0 ? NativeErrors.EINVAL : NativeErrors.EISDIR);
        var leaf = LinuxInterop.ToNative(parent.Leaf);
        fixed (byte* p = leaf)
        {
            if (LinuxInterop.UnlinkAt(parent.Fd, p, flags) != 0)
            {
                throw NativeErrors.Last(path);
            }
        }
    }

    /// <summary>
    /// Splits <paramref name="path"/> into parent and last component, and opens the parent with the
    /// directory's resolution. A last component of <c>.</c> or <c>..</c> (or an empty path) cannot be
    /// acted on by name: the whole path is resolved (so escapes are still refused and missing
    /// directories still reported) and then <paramref name="dotErrno"/> is thrown.
    /// </summary>
    internal static ParentDirectory ResolveParent(DirectoryHandle dir, string path, int dotErrno)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(path);
        string trimmed = path.TrimEnd('/');
        if (trimmed.Length == 0 && path.Length > 0)
        {
            trimmed = "/";
        }

        int slash = trimmed.LastIndexOf('/');
        string parentPath = slash < 0 ? "" : slash == 0 ? "/" : trimmed[..slash];
        string leaf = slash < 0 ? trimmed : trimmed[(slash + 1)..];
        if (leaf is "" or "." or "..")
        {
            int check = OpenFd(dir, dir.Resolution, path, OpenFlags.PathOnly | OpenFlags.NoFollow, UnixFileMode.None);
            LinuxInterop.Close(check);
            throw NativeErrors.FromErrno(dotErrno, path);
        }

        if (parentPath.Length == 0)
        {
            // The leaf lives directly in dir: borrow its descriptor (kept alive by the lease).
            var lease = dir.Lease();
            return new ParentDirectory(lease.Fd, owned: false, leaf, lease);
        }

        int fd = OpenFd(dir, dir.Resolution, parentPath, OpenFlags.PathOnly | OpenFlags.Directory, UnixFileMode.None);
        return new ParentDirectory(fd, owned: true, leaf, default);
    }

    /// <summary>Reads a symlink with <c>readlinkat</c>, growing the buffer until the target fits.</summary>
    internal static bool TryReadLinkAt(int dirFd, byte* path, out string target, out int errno)
    {
        int size = 256;
        while (true)
        {
            var buffer = new byte[size];
            fixed (byte* b = buffer)
            {
                nint n = LinuxInterop.ReadLinkAt(dirFd, path, b, (nuint)size);
                if (n < 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    target = "";
                    return false;
                }

                if (n < size)
                {
                    errno = 0;
                    target = System.Text.Encoding.UTF8.GetString(buffer, 0, (int)n);
                    return true;
                }
            }

            size *= 4;
        }
    }

    /// <summary>A resolved parent directory and the name to act on in it.</summary>
    internal readonly struct ParentDirectory : IDisposable
    {
        private readonly bool _owned;
        private readonly DirectoryHandle.FdLease _lease;

        public ParentDirectory(int fd, bool owned, string leaf, DirectoryHandle.FdLease lease)
        {
            Fd = fd;
            _owned = owned;
            Leaf = leaf;
            _lease = lease;
        }

        /// <summary>Gets the parent's descriptor.</summary>
        public int Fd { get; }

        /// <summary>Gets the last component (no slashes, never <c>.</c> or <c>..</c>).</summary>
        public string Leaf { get; }

        public void Dispose()
        {
            if (_owned)
            {
                LinuxInterop.Close(Fd);
            }
            else
            {
                _lease.Dispose();
            }
        }
    }
}
