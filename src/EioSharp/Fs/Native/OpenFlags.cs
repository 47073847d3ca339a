namespace EioSharp.Fs;

/// <summary>Architecture-neutral open flags, translated to Linux <c>O_*</c> values by <see cref="NativeFs"/>.</summary>
/// <remarks><c>O_CLOEXEC</c> and <c>O_NOCTTY</c> are always added.</remarks>
[Flags]
internal enum OpenFlags
{
    /// <summary>Read-only access (<c>O_RDONLY</c>).</summary>
    Read = 0,

    /// <summary>Write-only access (<c>O_WRONLY</c>).</summary>
    Write = 1,

    /// <summary>Read and write access (<c>O_RDWR</c>).</summary>
    ReadWrite = 2,

    /// <summary>Create the file if missing (<c>O_CREAT</c>); the mode argument applies, minus the umask.</summary>
    Create = 4,

    /// <summary>With <see cref="Create"/>, fail with <c>EEXIST</c> if the name exists, even as a symlink (<c>O_EXCL</c>).</summary>
    Exclusive = 8,

    /// <summary>Truncate an existing regular file to zero length (<c>O_TRUNC</c>).</summary>
    Truncate = 16,

    /// <summary>Every write goes to the end of the file (<c>O_APPEND</c>), whatever offset is given.</summary>
    Append = 32,

    /// <summary>Fail unless the path names a directory (<c>O_DIRECTORY</c>).</summary>
    Directory = 64,

    /// <summary>Open a location only, for <c>*at</c> calls and stat (<c>O_PATH</c>); access bits are ignored.</summary>
    PathOnly = 128,

    /// <summary>Do not follow a symlink in the last component; with <see cref="PathOnly"/> the symlink itself is opened.</summary>
    NoFollow = 256,
}
