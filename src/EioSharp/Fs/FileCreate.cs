namespace EioSharp.Fs;

/// <summary>What opening a file for writing does when the file does or does not exist.</summary>
public enum FileCreateKind
{
    /// <summary>Fail with <see cref="FileNotFoundException"/> if the file is missing.</summary>
    Never,

    /// <summary>Create the file if missing; keep existing contents.</summary>
    IfMissing,

    /// <summary>Create the file if missing; truncate it if it exists.</summary>
    OrTruncate,

    /// <summary>Create the file; fail with an <c>EEXIST</c> <see cref="IOException"/> if the name exists.</summary>
    Exclusive,
}

/// <summary>The create mode for opening a file for writing, with the permissions of a new file.</summary>
/// <remarks>
/// Eio: <c>Eio.Fs.create</c>: <see cref="Never"/> is <c>`Never</c>, <see cref="IfMissing"/> is <c>`If_missing perm</c>,
/// <see cref="OrTruncate"/> is <c>`Or_truncate perm</c>, <see cref="Exclusive"/> is <c>`Exclusive perm</c>. Used by
/// <see cref="EioPath.OpenWriteAsync"/> and <see cref="EioPath.SaveAsync(ReadOnlyMemory{byte}, FileCreate, bool)"/>.
/// <c>default(FileCreate)</c> is <see cref="Never"/>.
/// </remarks>
/// <param name="Kind">What to do with a missing or existing file.</param>
/// <param name="Permissions">Permissions of a newly created file, before the process umask is applied; unused for <see cref="FileCreateKind.Never"/>.</param>
public readonly record struct FileCreate(FileCreateKind Kind, UnixFileMode Permissions)
{
    /// <summary>Gets the mode that never creates: the file must exist (Eio: <c>`Never</c>).</summary>
    public static FileCreate Never => new(FileCreateKind.Never, UnixFileMode.None);

    /// <summary>Creates the file with <paramref name="permissions"/> if it is missing; an existing file keeps its contents (Eio: <c>`If_missing</c>).</summary>
    /// <param name="permissions">Permissions of a new file, before the umask (for example <c>UserRead | UserWrite</c>).</param>
    /// <returns>The create mode.</returns>
    public static FileCreate IfMissing(UnixFileMode permissions) => new(FileCreateKind.IfMissing, permissions);

    /// <summary>Creates the file with <paramref name="permissions"/> if it is missing, otherwise truncates it to zero length (Eio: <c>`Or_truncate</c>).</summary>
    /// <param name="permissions">Permissions of a new file, before the umask; an existing file keeps its own.</param>
    /// <returns>The create mode.</returns>
    public static FileCreate OrTruncate(UnixFileMode permissions) => new(FileCreateKind.OrTruncate, permissions);

    /// <summary>Creates the file with <paramref name="permissions"/>; the name must not exist, even as a symlink (Eio: <c>`Exclusive</c>, <c>O_EXCL</c>).</summary>
    /// <param name="permissions">Permissions of the new file, before the umask.</param>
    /// <returns>The create mode; opening fails with an <c>EEXIST</c> <see cref="IOException"/> (<see cref="FsErrors.IsAlreadyExists"/>) if the name exists.</returns>
    public static FileCreate Exclusive(UnixFileMode permissions) => new(FileCreateKind.Exclusive, permissions);

    /// <summary>The <see cref="OpenFlags"/> this create mode adds.</summary>
    internal OpenFlags ToOpenFlags() => Kind switch
    {
        FileCreateKind.Never => 0,
        FileCreateKind.IfMissing => OpenFlags.Create,
        FileCreateKind.OrTruncate => OpenFlags.Create | OpenFlags.Truncate,
        FileCreateKind.Exclusive => OpenFlags.Create | OpenFlags.Exclusive,
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown create mode"),
    };
}
