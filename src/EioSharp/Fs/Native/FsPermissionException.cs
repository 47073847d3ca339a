namespace EioSharp.Fs;

/// <summary>The exception thrown when a path would leave the directory capability it was resolved in.</summary>
/// <remarks>
/// <para>
/// Thrown for confined paths (<c>env.Cwd</c> and directories opened with <c>OpenSubtree</c>) that are
/// absolute, climb above the directory with <c>..</c>, pass through a symbolic link whose target is
/// absolute or climbs out, loop through symbolic links (more than 40 expansions, Linux's
/// <c>ELOOP</c> limit), or cross a procfs "magic link". Nothing outside the directory is touched
/// before the exception is thrown. Eio: <c>Eio.Fs.Permission_denied</c> raised by confined paths.
/// </para>
/// <para>
/// <b>Why <see cref="UnauthorizedAccessException"/>:</b> it is the type .NET already uses for
/// <c>EACCES</c>/<c>EPERM</c>, and Eio reports both an ordinary permission error and a sandbox
/// escape as <c>Permission_denied</c>. Catching <see cref="UnauthorizedAccessException"/> therefore
/// catches both, like matching Eio's <c>Permission_denied</c>; catching
/// <see cref="FsPermissionException"/> selects sandbox refusals only. It is deliberately not an
/// <see cref="IOException"/>: retrying or treating a refusal as a transient I/O fault is never right.
/// </para>
/// </remarks>
public sealed class FsPermissionException : UnauthorizedAccessException
{
    /// <summary>Creates a refusal with a default message.</summary>
    public FsPermissionException()
        : base("Permission denied: the path escapes its directory capability")
    {
    }

    /// <summary>Creates a refusal with the given message.</summary>
    /// <param name="message">The message, which should name the path.</param>
    public FsPermissionException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates a refusal with the given message and inner exception.</summary>
    /// <param name="message">The message, which should name the path.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public FsPermissionException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }

    private FsPermissionException(string path, string message, Exception? innerException)
        : base(message, innerException)
    {
        RefusedPath = path;
    }

    /// <summary>Gets the refused path as the caller gave it, or <see langword="null"/> if unknown.</summary>
    public string? RefusedPath { get; }

    /// <summary>Creates a refusal for <paramref name="path"/> whose message names it.</summary>
    internal static FsPermissionException ForPath(string path, string message, Exception? innerException = null) =>
        new(path, message, innerException);
}
