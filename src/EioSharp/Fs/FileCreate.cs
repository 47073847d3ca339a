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
/// <remarks>Eio: <c>Eio.Fs.create</c> (<c>`Never | `If_missing perm | `Or_truncate perm | `Exclusive perm</c>).</remarks>
/// <param name="Kind">What to do with a missing or existing file.</param>
/// <param name="Permissions">Permissions of a newly created file, before the process umask is applied; unused for <see cref="FileCreateKind.Never"/>.</param>
public readonly record struct FileCreate(FileCreateKind Kind, UnixFileMode Permissions)
{
    /// <summary>Never create: the file must exist.</summary>
    public static FileCreate Never => new(FileCreateKind.Never, UnixFileMode.None);

    /// <summary>Create with <paramref name="permissions"/> if missing.</summary>
    public static FileCreate IfMissing(UnixFileMode permissions) => new(FileCreateKind.IfMissing, permissions);

    /// <summary>Create with <paramref name="permissions"/> if missing, otherwise truncate.</summary>
    public static FileCreate OrTruncate(UnixFileMode permissions) => new(FileCreateKind.OrTruncate, permissions);

    /// <summary>Create with <paramref name="permissions"/>; the name must not exist.</summary>
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
