namespace EioSharp.Fs;

/// <summary>The kind of a filesystem object.</summary>
/// <remarks>Eio: <c>Eio.File.Stat.kind</c>.</remarks>
public enum FileKind
{
    /// <summary>A type the kernel reported that is none of the others.</summary>
    Unknown,

    /// <summary>A regular file.</summary>
    RegularFile,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A symbolic link (only seen when symlinks are not followed).</summary>
    SymbolicLink,

    /// <summary>A character device.</summary>
    CharacterDevice,

    /// <summary>A block device.</summary>
    BlockDevice,

    /// <summary>A named pipe.</summary>
    Fifo,

    /// <summary>A Unix domain socket.</summary>
    Socket,
}

/// <summary>File metadata from <c>statx</c>.</summary>
/// <remarks>Eio: <c>Eio.File.Stat.t</c>. Times are UTC with 100 ns resolution (the kernel's nanoseconds are truncated).</remarks>
/// <param name="Kind">The object's type.</param>
/// <param name="Permissions">Permission bits, including set-user-ID, set-group-ID and sticky.</param>
/// <param name="Size">Size in bytes (for a symlink, the length of its target).</param>
/// <param name="Inode">Inode number.</param>
/// <param name="Device">Device containing the file, as <c>makedev(major, minor)</c>.</param>
/// <param name="LinkCount">Number of hard links.</param>
/// <param name="Uid">Owner user id.</param>
/// <param name="Gid">Owner group id.</param>
/// <param name="AccessTime">Last access time.</param>
/// <param name="ModificationTime">Last modification of the contents.</param>
/// <param name="ChangeTime">Last status change.</param>
public readonly record struct FileStat(
    FileKind Kind,
    UnixFileMode Permissions,
    long Size,
    ulong Inode,
    ulong Device,
    uint LinkCount,
    uint Uid,
    uint Gid,
    DateTimeOffset AccessTime,
    DateTimeOffset ModificationTime,
    DateTimeOffset ChangeTime)
{
    /// <summary>Converts the kernel's structure.</summary>
    internal static FileStat FromStatx(in LinuxInterop.Statx s) => new(
        KindOf(s.Mode),
        (UnixFileMode)(s.Mode & 0xFFF),
        (long)s.Size,
        s.Inode,
        MakeDev(s.DevMajor, s.DevMinor),
        s.LinkCount,
        s.Uid,
        s.Gid,
        ToTime(s.AccessTime),
        ToTime(s.ModificationTime),
        ToTime(s.ChangeTime));

    private static FileKind KindOf(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.RegularFile,
        0x4000 => FileKind.Directory,
        0xA000 => FileKind.SymbolicLink,
        0x2000 => FileKind.CharacterDevice,
        0x6000 => FileKind.BlockDevice,
        0x1000 => FileKind.Fifo,
        0xC000 => FileKind.Socket,
        _ => FileKind.Unknown,
    };

    // glibc's gnu_dev_makedev encoding.
    private static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8)
        | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    private static DateTimeOffset ToTime(in LinuxInterop.StatxTimestamp t) =>
        DateTimeOffset.UnixEpoch.AddTicks((t.Seconds * TimeSpan.TicksPerSecond) + (t.Nanoseconds / 100));
}

/// <summary>A directory entry: a name and the kind of object it names (a symlink is reported as a link, not followed).</summary>
/// <param name="Name">The entry's name (not a path).</param>
/// <param name="Kind">Its kind.</param>
/// <remarks>Eio: an element of <c>Path.read_dir</c> paired with <c>Path.kind ~follow:false</c>.</remarks>
public readonly record struct DirectoryEntry(string Name, FileKind Kind);
