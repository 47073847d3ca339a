using System.Runtime.InteropServices;

namespace EioSharp.Fs;

/// <summary>Linux errno values and their translation into .NET exceptions.</summary>
/// <remarks>
/// <para>
/// Translation follows System.IO on Unix: the message is the C library's <c>strerror</c> text followed
/// by the path, and <see cref="Exception.HResult"/> carries the raw errno, so a caller can tell
/// <c>EEXIST</c> (Eio's <c>Already_exists</c>) from other <see cref="IOException"/>s with
/// <c>ex.HResult == NativeErrors.EEXIST</c>.
/// </para>
/// <list type="bullet">
/// <item><c>ENOENT</c>: <see cref="FileNotFoundException"/>, or <see cref="DirectoryNotFoundException"/> when a directory was expected.</item>
/// <item><c>ENOTDIR</c>: <see cref="DirectoryNotFoundException"/>.</item>
/// <item><c>EACCES</c>, <c>EPERM</c>: <see cref="UnauthorizedAccessException"/>.</item>
/// <item>anything else, including <c>EEXIST</c>: <see cref="IOException"/>.</item>
/// </list>
/// <para>
/// Sandbox refusals (<c>EXDEV</c> and <c>ELOOP</c> from confined resolution, and the equivalent
/// decisions of the component-wise resolver) are reported separately as
/// <see cref="FsPermissionException"/> through <see cref="Refused"/>.
/// </para>
/// </remarks>
internal static class NativeErrors
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EXDEV = 18;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ERANGE = 34;
    public const int ENOSYS = 38;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;

    /// <summary>Builds the exception for <paramref name="errno"/> raised while operating on <paramref name="path"/>.</summary>
    /// <param name="errno">The Linux errno value.</param>
    /// <param name="path">The path as the caller gave it, for the message.</param>
    /// <param name="directoryExpected">Whether a directory was being looked up (selects the not-found type).</param>
    public static Exception FromErrno(int errno, string path, bool directoryExpected = false)
    {
        var message = $"{Message(errno)}: '{path}'";
        Exception ex = errno switch
        {
            ENOENT when directoryExpected => new DirectoryNotFoundException(message),
            ENOENT => new FileNotFoundException(message, path),
            ENOTDIR => new DirectoryNotFoundException(message),
            EACCES or EPERM => new UnauthorizedAccessException(message),
            _ => new IOException(message),
        };
        ex.HResult = errno;
        return ex;
    }

    /// <summary>The C library's text for a Linux <paramref name="errno"/>; off Linux (the portable layer, whose errno values
    /// are Linux's and not the host's) glibc's text for the values used here.</summary>
    private static string Message(int errno) => OperatingSystem.IsLinux() ? Marshal.GetPInvokeErrorMessage(errno) : errno switch
    {
        EPERM => "Operation not permitted",
        ENOENT => "No such file or directory",
        EACCES => "Permission denied",
        EBUSY => "Device or resource busy",
        EEXIST => "File exists",
        EXDEV => "Invalid cross-device link",
        ENOTDIR => "Not a directory",
        EISDIR => "Is a directory",
        EINVAL => "Invalid argument",
        EFBIG => "File too large",
        ENOTEMPTY => "Directory not empty",
        ELOOP => "Too many levels of symbolic links",
        _ => $"Error {errno}",
    };

    /// <summary>Builds the exception for the last P/Invoke error.</summary>
    public static Exception Last(string path, bool directoryExpected = false) =>
        FromErrno(Marshal.GetLastPInvokeError(), path, directoryExpected);

    /// <summary>Builds the sandbox refusal for <paramref name="path"/>.</summary>
    /// <param name="path">The path as the caller gave it.</param>
    /// <param name="reason">Why it was refused, e.g. "escapes the directory".</param>
    public static FsPermissionException Refused(string path, string reason) =>
        FsPermissionException.ForPath(path, $"Permission denied: '{path}' {reason}");
}
