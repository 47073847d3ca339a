namespace EioSharp.Fs;

/// <summary>Tests for the filesystem errors that callers commonly handle, matching Eio's <c>Eio.Fs.error</c> cases.</summary>
/// <remarks>
/// Filesystem operations report errors with standard .NET types (see <see cref="EioPath"/>); every
/// <see cref="IOException"/> they throw carries the Linux errno in <see cref="Exception.HResult"/>. These helpers name
/// the cases that have no type of their own.
/// </remarks>
public static class FsErrors
{
    /// <summary>The errno of "file exists" (<c>EEXIST</c>), in <see cref="Exception.HResult"/>.</summary>
    public const int AlreadyExistsErrno = NativeErrors.EEXIST;

    /// <summary>The errno of "file too large" (<c>EFBIG</c>), used by <see cref="EioPath.LoadAsync"/> for its size limit.</summary>
    public const int FileTooLargeErrno = NativeErrors.EFBIG;

    /// <summary>Returns whether <paramref name="error"/> means the name already exists.</summary>
    /// <param name="error">An exception from a filesystem operation.</param>
    /// <returns>True for an <see cref="IOException"/> with <c>EEXIST</c>.</returns>
    /// <remarks>Eio: <c>Eio.Fs.Already_exists</c>.</remarks>
    public static bool IsAlreadyExists(Exception error) => error is IOException { HResult: NativeErrors.EEXIST };

    /// <summary>Returns whether <paramref name="error"/> means a file was larger than the limit given to <see cref="EioPath.LoadAsync"/>.</summary>
    /// <param name="error">An exception from a filesystem operation.</param>
    /// <returns>True for an <see cref="IOException"/> with <c>EFBIG</c>.</returns>
    public static bool IsFileTooLarge(Exception error) => error is IOException { HResult: NativeErrors.EFBIG };

    /// <summary>Creates the error for a file over a size limit.</summary>
    internal static IOException FileTooLarge(string path, long size, long maxSize) =>
        new($"File too large: {path} has at least {size} bytes, more than the limit of {maxSize} bytes", NativeErrors.EFBIG);
}
