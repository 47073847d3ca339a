using Microsoft.Win32.SafeHandles;

namespace EioSharp.Fs;

/// <summary>The filesystem layer over .NET's file APIs only, for macOS and Windows (and Linux in a run with <see cref="EioFileSystem.Portable"/> or <c>EIOSHARP_FS=portable</c>).</summary>
/// <remarks>
/// <para>
/// Same contract as <see cref="NativeFs"/> (which forwards here for a <see cref="DirectoryHandle.IsPortable"/> handle):
/// same exceptions, the errno of the errors it decides itself in <see cref="Exception.HResult"/> (Linux numbering, as
/// <see cref="NativeErrors"/>), messages naming the path as given. Errors that .NET raises (for example a denied
/// access) pass through with .NET's own message and HResult.
/// </para>
/// <para>
/// <b>Confinement (S28)</b> without descriptors: a confined path is resolved in user space one component at a time from
/// the directory's absolute path, under <see cref="ComponentWiseResolver"/>'s rules: absolute paths are refused, <c>..</c>
/// pops the components walked (never above the root), every symlink met is read (<see cref="FileSystemInfo.LinkTarget"/>)
/// and its target spliced in (absolute targets refused, more than <see cref="NativeFs.MaxSymlinkExpansions"/> expansions
/// refused as a loop). The operation then uses the path made of the checked real components, in which no component but
/// possibly the last (when it is not followed) is a symlink.
/// </para>
/// <para>
/// <b>Limits</b> (documented in docs/rationale.md): (1) check-then-use: another process that replaces a checked directory
/// with a symlink between the check and the use can redirect that one operation outside (the native layer is immune:
/// <c>openat2</c>/<c>O_NOFOLLOW</c> walk descriptors); (2) a directory handle names a path, so renaming an opened subtree
/// changes what it names; (3) no inode, device, uid, gid or link count in <see cref="FileStat"/> (zero, link count 1), the
/// change time is the modification time, and every object that is not a directory or symlink is a regular file; (4) no
/// <c>O_APPEND</c>: appends are written at the length read before each write (not atomic against other writers);
/// (5) <c>chown</c> and directory <c>fsync</c> have no .NET API (the first throws <see cref="PlatformNotSupportedException"/>,
/// the second only checks the directory exists); (6) on Windows <c>chmod</c> is unsupported and symlinks need the
/// privilege to create them.
/// </para>
/// <para><b>Thread safety:</b> all methods are safe to call concurrently.</para>
/// </remarks>
internal static class PortableFs
{
    private const FileShare Share = FileShare.ReadWrite | FileShare.Delete;

    private static readonly EnumerationOptions ListAll = new()
    {
        AttributesToSkip = 0,
        IgnoreInaccessible = false,
        RecurseSubdirectories = false,
        ReturnSpecialDirectories = false,
    };

    /// <summary>What a path names, without following a symlink in its last component.</summary>
    internal enum Kind
    {
        Missing,
        File,
        Directory,
        Link,
    }

    // ---------------------------------------------------------------- opening

    /// <summary>As <see cref="NativeFs.Open"/>.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="IOException">As for <see cref="NativeFs.Open"/>.</exception>
    public static SafeFileHandle Open(DirectoryHandle dir, string path, OpenFlags flags, UnixFileMode mode)
    {
        using var lease = dir.Lease();
        bool create = (flags & OpenFlags.Create) != 0;
        bool exclusive = create && (flags & OpenFlags.Exclusive) != 0;
        bool follow = (flags & OpenFlags.NoFollow) == 0 && !exclusive;
        var r = Resolve(dir, path, follow, directoryExpected: (flags & OpenFlags.Directory) != 0);
        switch (r.Kind)
        {
            case Kind.Link:
                throw NativeErrors.FromErrno(exclusive ? NativeErrors.EEXIST : NativeErrors.ELOOP, path);
            case Kind.Directory:
                throw NativeErrors.FromErrno(exclusive ? NativeErrors.EEXIST : NativeErrors.EISDIR, path);
            case Kind.File when exclusive:
                throw NativeErrors.FromErrno(NativeErrors.EEXIST, path);
            case Kind.Missing when !create:
                throw NativeErrors.FromErrno(NativeErrors.ENOENT, path, (flags & OpenFlags.Directory) != 0);
        }

        if ((flags & OpenFlags.Directory) != 0)
        {
            throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, path, directoryExpected: true);
        }

        bool truncate = (flags & OpenFlags.Truncate) != 0;
        var fileMode = exclusive ? FileMode.CreateNew
            : create ? (truncate ? FileMode.Create : FileMode.OpenOrCreate)
            : truncate ? FileMode.Truncate : FileMode.Open;
        var access = (flags & OpenFlags.ReadWrite) != 0 ? FileAccess.ReadWrite
            : (flags & OpenFlags.Write) != 0 ? FileAccess.Write : FileAccess.Read;
        if (access == FileAccess.Read && truncate)
        {
            access = FileAccess.ReadWrite;
        }

        if (!create || OperatingSystem.IsWindows())
        {
            return File.OpenHandle(r.FullPath, fileMode, access, Share);
        }

        // Only FileStream takes the permissions of a new file (passed to open(2), so the umask applies as natively). The
        // stream is unbuffered and dropped without Dispose, which would close the handle; it has nothing to flush.
        var stream = new FileStream(r.FullPath, new FileStreamOptions
        {
            Mode = fileMode,
            Access = access,
            Share = Share,
            BufferSize = 0,
            UnixCreateMode = mode,
        });
        var handle = stream.SafeFileHandle;
        GC.SuppressFinalize(stream);
        return handle;
    }

    // ---------------------------------------------------------------- metadata

    /// <summary>As <see cref="NativeFs.Stat(DirectoryHandle, string, bool)"/>.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    public static FileStat Stat(DirectoryHandle dir, string path, bool followSymlinks)
    {
        using var lease = dir.Lease();
        var r = Resolve(dir, path, followSymlinks, directoryExpected: false);
        return r.Kind switch
        {
            Kind.Missing => throw NativeErrors.FromErrno(NativeErrors.ENOENT, path),
            Kind.Link => StatOf(new FileInfo(r.FullPath), FileKind.SymbolicLink, r.LinkTarget),
            Kind.Directory => StatOf(new DirectoryInfo(r.FullPath), FileKind.Directory, null),
            _ => StatOf(new FileInfo(r.FullPath), FileKind.RegularFile, null),
        };
    }

    /// <summary>As <see cref="NativeFs.Stat(SafeFileHandle, bool)"/>, from .NET's handle-based metadata calls.</summary>
    /// <remarks>A file that cannot seek (a FIFO, a socket, a device) is <see cref="FileKind.Unknown"/> with size 0: .NET's
    /// handle-based calls do not tell those kinds apart (so <see cref="EioFile"/> never writes one inline).</remarks>
    /// <exception cref="ObjectDisposedException"><paramref name="file"/> was closed.</exception>
    /// <exception cref="IOException">The system reported an error.</exception>
    public static FileStat Stat(SafeFileHandle file)
    {
        ObjectDisposedException.ThrowIf(file.IsClosed, file);
        var attributes = File.GetAttributes(file);
        bool isDirectory = (attributes & FileAttributes.Directory) != 0;
        var permissions = OperatingSystem.IsWindows()
            ? WindowsPermissions(attributes, isDirectory)
            : File.GetUnixFileMode(file);
        var modified = new DateTimeOffset(File.GetLastWriteTimeUtc(file));
        var kind = isDirectory ? FileKind.Directory : FileKind.RegularFile;
        long size = 0;
        if (!isDirectory)
        {
            try
            {
                size = RandomAccess.GetLength(file);
            }
            catch (NotSupportedException)
            {
                // Not seekable (a FIFO, a socket, a character device): .NET cannot say which, and it has no length.
                kind = FileKind.Unknown;
            }
        }

        return new FileStat(
            kind,
            permissions,
            size,
            Inode: 0,
            Device: 0,
            LinkCount: 1,
            Uid: 0,
            Gid: 0,
            new DateTimeOffset(File.GetLastAccessTimeUtc(file)),
            modified,
            modified);
    }

    /// <summary>As <see cref="NativeFs.ReadDirectoryEntries"/>: names and kinds (symlinks as links), sorted ordinally.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    public static (string Name, FileKind Kind)[] ReadDirectoryEntries(DirectoryHandle dir, string path)
    {
        using var lease = dir.Lease();
        string full = ResolveDirectory(dir, path);
        var result = new List<(string, FileKind)>();
        foreach (var entry in new DirectoryInfo(full).EnumerateFileSystemInfos("*", ListAll))
        {
            var (kind, _) = Probe(entry.FullName);
            result.Add((entry.Name, kind switch
            {
                Kind.Directory => FileKind.Directory,
                Kind.Link => FileKind.SymbolicLink,
                _ => FileKind.RegularFile,
            }));
        }

        var array = result.ToArray();
        Array.Sort(array, (a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return array;
    }

    /// <summary>As <see cref="NativeFs.ReadDirectory"/>.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    public static string[] ReadDirectory(DirectoryHandle dir, string path)
    {
        using var lease = dir.Lease();
        string full = ResolveDirectory(dir, path);
        var names = new DirectoryInfo(full).EnumerateFileSystemInfos("*", ListAll).Select(e => e.Name).ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        return names;
    }

    /// <summary>As <see cref="NativeFs.ReadLink"/>.</summary>
    /// <exception cref="FsPermissionException">The parent would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException"><c>EINVAL</c> if it is not a symlink.</exception>
    public static string ReadLink(DirectoryHandle dir, string path)
    {
        using var lease = dir.Lease();
        string full = ResolveParent(dir, path, NativeErrors.EINVAL);
        var (kind, target) = Probe(full);
        return kind switch
        {
            Kind.Missing => throw NativeErrors.FromErrno(NativeErrors.ENOENT, path),
            Kind.Link => target!,
            _ => throw NativeErrors.FromErrno(NativeErrors.EINVAL, path),
        };
    }

    // ---------------------------------------------------------------- changing names

    /// <summary>As <see cref="NativeFs.MakeDirectory"/>.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The parent is missing.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the name exists (even as a dangling symlink).</exception>
    public static void MakeDirectory(DirectoryHandle dir, string path, UnixFileMode permissions)
    {
        using var lease = dir.Lease();
        string full = ResolveParent(dir, path, NativeErrors.EEXIST);
        if (Probe(full).Kind != Kind.Missing)
        {
            throw NativeErrors.FromErrno(NativeErrors.EEXIST, path);
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(full);
        }
        else
        {
            Directory.CreateDirectory(full, permissions);
        }
    }

    /// <summary>As <see cref="NativeFs.Unlink"/>.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="IOException"><c>EISDIR</c> for a directory.</exception>
    public static void Unlink(DirectoryHandle dir, string path)
    {
        using var lease = dir.Lease();
        string full = ResolveParent(dir, path, NativeErrors.EISDIR);
        switch (Probe(full).Kind)
        {
            case Kind.Missing:
                throw NativeErrors.FromErrno(NativeErrors.ENOENT, path);
            case Kind.Directory:
                throw NativeErrors.FromErrno(NativeErrors.EISDIR, path);
            case Kind.Link when OperatingSystem.IsWindows() && (File.GetAttributes(full) & FileAttributes.Directory) != 0:
                Directory.Delete(full); // a directory symlink or junction: removes the link only
                break;
            default:
                File.Delete(full);
                break;
        }
    }

    /// <summary>As <see cref="NativeFs.RemoveDirectory"/>.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="DirectoryNotFoundException">The path is not a directory.</exception>
    /// <exception cref="IOException"><c>ENOTEMPTY</c> if the directory is not empty.</exception>
    public static void RemoveDirectory(DirectoryHandle dir, string path)
    {
        using var lease = dir.Lease();
        string full = ResolveParent(dir, path, NativeErrors.EINVAL);
        switch (Probe(full).Kind)
        {
            case Kind.Missing:
                throw NativeErrors.FromErrno(NativeErrors.ENOENT, path);
            case Kind.Directory:
                if (Directory.EnumerateFileSystemEntries(full, "*", ListAll).Any())
                {
                    throw NativeErrors.FromErrno(NativeErrors.ENOTEMPTY, path);
                }

                Directory.Delete(full, recursive: false);
                break;
            default:
                throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, path);
        }
    }

    /// <summary>As <see cref="NativeFs.Rename"/>: replaces a file, or an empty directory with a directory.</summary>
    /// <exception cref="FsPermissionException">Either path would leave its directory.</exception>
    /// <exception cref="FileNotFoundException"><paramref name="oldPath"/> does not exist.</exception>
    /// <exception cref="IOException"><c>EISDIR</c>, <c>ENOTDIR</c> or <c>ENOTEMPTY</c> for a bad replacement.</exception>
    public static void Rename(DirectoryHandle oldDir, string oldPath, DirectoryHandle newDir, string newPath)
    {
        using var oldLease = oldDir.Lease();
        using var newLease = newDir.Lease();
        string from = ResolveParent(oldDir, oldPath, NativeErrors.EBUSY);
        string to = ResolveParent(newDir, newPath, NativeErrors.EBUSY);
        var fromKind = Probe(from).Kind;
        var toKind = Probe(to).Kind;
        string both = $"{oldPath} -> {newPath}";
        if (fromKind == Kind.Missing)
        {
            throw NativeErrors.FromErrno(NativeErrors.ENOENT, oldPath);
        }

        if (string.Equals(from, to, StringComparison.Ordinal))
        {
            return;
        }

        if (fromKind == Kind.Directory)
        {
            switch (toKind)
            {
                case Kind.Directory when Directory.EnumerateFileSystemEntries(to, "*", ListAll).Any():
                    throw NativeErrors.FromErrno(NativeErrors.ENOTEMPTY, both);
                case Kind.Directory:
                    Directory.Delete(to);
                    break;
                case Kind.File or Kind.Link:
                    throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, both);
            }

            Directory.Move(from, to);
            return;
        }

        if (toKind == Kind.Directory)
        {
            throw NativeErrors.FromErrno(NativeErrors.EISDIR, both);
        }

        // A symlink to a directory (or a Windows directory link): File.Move refuses it, Directory.Move renames the link
        // itself (rename(2) on Unix) but cannot replace, so a file or link in the way is removed first (not atomic).
        if (fromKind == Kind.Link && Directory.Exists(from))
        {
            if (toKind != Kind.Missing)
            {
                File.Delete(to);
            }

            Directory.Move(from, to);
            return;
        }

        File.Move(from, to, overwrite: true);
    }

    /// <summary>As <see cref="NativeFs.ChangeMode"/> (symlinks followed, confined).</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="PlatformNotSupportedException">On Windows, which has no permission bits.</exception>
    public static void ChangeMode(DirectoryHandle dir, string path, UnixFileMode permissions)
    {
        using var lease = dir.Lease();
        var r = Resolve(dir, path, followFinal: true, directoryExpected: false);
        if (r.Kind == Kind.Missing)
        {
            throw NativeErrors.FromErrno(NativeErrors.ENOENT, path);
        }

        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException($"chmod is not supported on Windows: '{path}'");
        }

        File.SetUnixFileMode(r.FullPath, permissions);
    }

    /// <summary>As <see cref="NativeFs.ChangeOwner"/>: resolves (so an escape is still refused first), then refuses.</summary>
    /// <exception cref="FsPermissionException">The path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="FileNotFoundException">Nothing exists at the path.</exception>
    /// <exception cref="PlatformNotSupportedException">Always otherwise: .NET has no <c>chown</c>.</exception>
    public static void ChangeOwner(DirectoryHandle dir, string path, bool followSymlinks)
    {
        using var lease = dir.Lease();
        if (Resolve(dir, path, followSymlinks, directoryExpected: false).Kind == Kind.Missing)
        {
            throw NativeErrors.FromErrno(NativeErrors.ENOENT, path);
        }

        throw new PlatformNotSupportedException($"chown is not available on the portable filesystem (no .NET API): '{path}'");
    }

    /// <summary>As <see cref="NativeFs.SymLink"/>; the target is stored verbatim.</summary>
    /// <exception cref="FsPermissionException"><paramref name="linkPath"/> would leave <paramref name="dir"/>.</exception>
    /// <exception cref="IOException"><c>EEXIST</c> if the name exists.</exception>
    public static void SymLink(DirectoryHandle dir, string linkPath, string target)
    {
        using var lease = dir.Lease();
        string full = ResolveParent(dir, linkPath, NativeErrors.EEXIST);
        if (Probe(full).Kind != Kind.Missing)
        {
            throw NativeErrors.FromErrno(NativeErrors.EEXIST, linkPath);
        }

        File.CreateSymbolicLink(full, target);
    }

    /// <summary>As <see cref="NativeFs.OpenSubdirectory"/>: a new portable handle naming the resolved directory's path.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    public static DirectoryHandle OpenSubdirectory(DirectoryHandle dir, string path, PathResolution? resolution)
    {
        using var lease = dir.Lease();
        string full = Path.GetFullPath(ResolveDirectory(dir, path));
        string display = Path.IsPathRooted(path) ? path : path.Length == 0 ? dir.DisplayPath : $"{dir.DisplayPath.TrimEnd('/')}/{path}";
        return DirectoryHandle.Portable(full, display, resolution ?? dir.Resolution);
    }

    /// <summary>Checks that the directory at <paramref name="path"/> exists; .NET cannot open a directory to <c>fsync</c> it.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave <paramref name="dir"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory is missing or not a directory.</exception>
    public static void SyncDirectory(DirectoryHandle dir, string path)
    {
        using var lease = dir.Lease();
        ResolveDirectory(dir, path);
    }

    // ---------------------------------------------------------------- open files

    /// <summary>Flushes an open file to the device with .NET's <see cref="FileStream.Flush(bool)"/> (<c>fsync</c> on Unix,
    /// <c>FlushFileBuffers</c> on Windows).</summary>
    /// <exception cref="ObjectDisposedException"><paramref name="file"/> was closed.</exception>
    /// <exception cref="IOException">The system reported an error.</exception>
    public static void Sync(SafeFileHandle file)
    {
        ObjectDisposedException.ThrowIf(file.IsClosed, file);

        // A throw-away unbuffered stream over the caller's handle; not disposed (that would close the handle).
        var stream = new FileStream(file, FileAccess.Write, bufferSize: 0);
        GC.SuppressFinalize(stream);
        stream.Flush(flushToDisk: true);
    }

    // ---------------------------------------------------------------- resolution

    /// <summary>A resolved path: the OS path to use and what it names (a symlink only when the last one was not followed).</summary>
    internal readonly record struct Resolved(string FullPath, Kind Kind, string? LinkTarget);

    /// <summary>Resolves <paramref name="path"/> against <paramref name="dir"/>: confined unless the handle is unconfined.</summary>
    /// <exception cref="FsPermissionException">A confined path would leave the directory.</exception>
    /// <exception cref="DirectoryNotFoundException">A directory component is missing or not a directory.</exception>
    internal static Resolved Resolve(DirectoryHandle dir, string path, bool followFinal, bool directoryExpected)
    {
        if (!dir.IsConfined)
        {
            string full = path.Length == 0 ? dir.PortableRoot ?? "."
                : Path.IsPathRooted(path) || dir.PortableRoot is null ? path
                : Path.Join(dir.PortableRoot, path);
            var (kind, target) = Probe(full);
            if (kind == Kind.Link && followFinal)
            {
                kind = Directory.Exists(full) ? Kind.Directory : File.Exists(full) ? Kind.File : Kind.Missing;
                target = null;
            }

            return new Resolved(full, kind, target);
        }

        string root = dir.PortableRoot!;
        if (Path.IsPathRooted(path))
        {
            throw NativeErrors.Refused(path, "is absolute");
        }

        var pending = new Stack<string>();
        Push(pending, path);
        var walked = new List<string>();
        int expansions = 0;
        while (true)
        {
            string component = pending.Count == 0 ? "." : pending.Pop();
            bool last = pending.Count == 0;
            if (component is "" or ".")
            {
                if (last)
                {
                    return new Resolved(Join(root, walked, null), Kind.Directory, null);
                }

                continue;
            }

            if (component == "..")
            {
                if (walked.Count == 0)
                {
                    throw NativeErrors.Refused(path, "escapes the directory ('..' above it)");
                }

                walked.RemoveAt(walked.Count - 1);
                if (last)
                {
                    return new Resolved(Join(root, walked, null), Kind.Directory, null);
                }

                continue;
            }

            if (OperatingSystem.IsWindows() && component.Contains(':'))
            {
                // A drive-relative name ("C:x") or an alternate data stream: not a plain name in this directory.
                throw NativeErrors.Refused(path, "names a drive or stream (':')");
            }

            string full = Join(root, walked, component);
            var (kind, target) = Probe(full);
            if (kind == Kind.Link && (!last || followFinal))
            {
                if (++expansions > NativeFs.MaxSymlinkExpansions)
                {
                    throw NativeErrors.Refused(path, "has too many levels of symbolic links (a loop)");
                }

                if (Path.IsPathRooted(target!))
                {
                    throw NativeErrors.Refused(path, $"passes through a symbolic link to an absolute path ('{target}')");
                }

                if (target!.Length == 0)
                {
                    throw NativeErrors.FromErrno(NativeErrors.ENOENT, path);
                }

                Push(pending, target);
                continue;
            }

            if (last)
            {
                return new Resolved(full, kind, target);
            }

            switch (kind)
            {
                case Kind.Missing:
                    throw NativeErrors.FromErrno(NativeErrors.ENOENT, path, directoryExpected: true);
                case Kind.Directory:
                    walked.Add(component);
                    break;
                default:
                    throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, path);
            }
        }
    }

    /// <summary>Resolves a path that must name a directory (symlinks followed); returns its OS path.</summary>
    /// <exception cref="DirectoryNotFoundException">Missing or not a directory.</exception>
    private static string ResolveDirectory(DirectoryHandle dir, string path)
    {
        var r = Resolve(dir, path, followFinal: true, directoryExpected: true);
        return r.Kind switch
        {
            Kind.Directory => r.FullPath,
            Kind.Missing => throw NativeErrors.FromErrno(NativeErrors.ENOENT, path, directoryExpected: true),
            _ => throw NativeErrors.FromErrno(NativeErrors.ENOTDIR, path),
        };
    }

    /// <summary>
    /// As <see cref="NativeFs.ResolveParent"/>: resolves the parent directory (confined, symlinks followed) and returns
    /// the OS path of the last component in it, which is not resolved. A last component of <c>.</c>, <c>..</c> or nothing
    /// resolves the whole path (so escapes are refused and missing names reported) and then throws <paramref name="dotErrno"/>.
    /// </summary>
    private static string ResolveParent(DirectoryHandle dir, string path, int dotErrno)
    {
        string trimmed = TrimSeparators(path);
        if (trimmed.Length == 0 && path.Length > 0)
        {
            trimmed = path[..1];
        }

        int slash = LastSeparator(trimmed);
        string parentPath = slash < 0 ? "" : slash == 0 ? trimmed[..1] : trimmed[..slash];
        string leaf = slash < 0 ? trimmed : trimmed[(slash + 1)..];
        if (leaf is "" or "." or ".." || (slash == 0 && trimmed.Length == 1))
        {
            Resolve(dir, path, followFinal: false, directoryExpected: false);
            throw NativeErrors.FromErrno(dotErrno, path);
        }

        if (OperatingSystem.IsWindows() && leaf.Contains(':') && dir.IsConfined)
        {
            throw NativeErrors.Refused(path, "names a drive or stream (':')");
        }

        string parent = parentPath.Length == 0 && dir.IsConfined ? dir.PortableRoot! : ResolveDirectory(dir, parentPath);
        return Path.Join(parent, leaf);
    }

    /// <summary>What <paramref name="full"/> names, not following a symlink there; for a symlink also its target.</summary>
    internal static (Kind Kind, string? Target) Probe(string full)
    {
        FileAttributes attributes;
        try
        {
            attributes = File.GetAttributes(full);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return (Kind.Missing, null);
        }

        if ((attributes & FileAttributes.ReparsePoint) != 0)
        {
            // On Windows other reparse points (cloud placeholders, deduplicated files) have no link target.
            string? target = new FileInfo(full).LinkTarget;
            if (target is not null)
            {
                return (Kind.Link, target);
            }
        }

        return ((attributes & FileAttributes.Directory) != 0 ? Kind.Directory : Kind.File, null);
    }

    private static FileStat StatOf(FileSystemInfo info, FileKind kind, string? linkTarget)
    {
        var modified = new DateTimeOffset(info.LastWriteTimeUtc);
        var permissions = kind == FileKind.SymbolicLink
            ? (UnixFileMode)0x1FF
            : OperatingSystem.IsWindows() ? WindowsPermissions(info.Attributes, kind == FileKind.Directory) : info.UnixFileMode;
        long size = kind switch
        {
            FileKind.SymbolicLink => System.Text.Encoding.UTF8.GetByteCount(linkTarget!),
            FileKind.RegularFile => ((FileInfo)info).Length,
            _ => 0,
        };
        return new FileStat(kind, permissions, size, Inode: 0, Device: 0, LinkCount: 1, Uid: 0, Gid: 0,
            new DateTimeOffset(info.LastAccessTimeUtc), modified, modified);
    }

    // Windows has no permission bits: read-only files are r-x/r--, others rwx/rw-, for everyone.
    private static UnixFileMode WindowsPermissions(FileAttributes attributes, bool isDirectory)
    {
        int bits = (attributes & FileAttributes.ReadOnly) != 0 ? 0x124 : 0x1B6;
        return (UnixFileMode)(isDirectory ? bits | 0x49 : bits);
    }

    private static string Join(string root, List<string> walked, string? last)
    {
        var parts = new string[walked.Count + (last is null ? 1 : 2)];
        parts[0] = root;
        walked.CopyTo(parts, 1);
        if (last is not null)
        {
            parts[^1] = last;
        }

        return Path.Join(parts);
    }

    private static void Push(Stack<string> pending, string path)
    {
        var parts = OperatingSystem.IsWindows() ? path.Split('/', '\\') : path.Split('/');
        for (int i = parts.Length - 1; i >= 0; i--)
        {
            pending.Push(parts[i]);
        }
    }

    private static bool IsSeparator(char c) => c == '/' || (OperatingSystem.IsWindows() && c == '\\');

    private static string TrimSeparators(string path)
    {
        int end = path.Length;
        while (end > 0 && IsSeparator(path[end - 1]))
        {
            end--;
        }

        return path[..end];
    }

    private static int LastSeparator(string path)
    {
        for (int i = path.Length - 1; i >= 0; i--)
        {
            if (IsSeparator(path[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
