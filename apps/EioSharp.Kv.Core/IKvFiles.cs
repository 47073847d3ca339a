using System.Runtime.InteropServices;

namespace EioSharp.Kv;

/// <summary>The files the protocol layer reads and writes on an operator's command: the configuration file (CONFIG REWRITE)
/// and the ACL file (ACL LOAD, ACL SAVE, and the ACL file read at start).</summary>
/// <remarks>The protocol layer has no file access of its own: the server hands it one built on the library's file
/// capability (<c>KvFiles</c> over <c>env.Fs</c> in EioSharp.Kv). Both methods block the calling domain while the kernel
/// works, as Redis's main thread does for these commands: they are rare, small, and must answer in order with the other
/// replies (also inside MULTI/EXEC, which runs on the store owner).
/// <para><b>Thread safety</b>: implementations may be called from any domain at once.</para></remarks>
public interface IKvFiles
{
    /// <summary>Reads the whole file at <paramref name="path"/> as UTF-8 text (a byte order mark is dropped).</summary>
    /// <param name="path">An absolute path, or one relative to the process's current directory.</param>
    /// <returns>The text.</returns>
    /// <exception cref="FileNotFoundException">The file (or a directory on the way) is missing.</exception>
    /// <exception cref="UnauthorizedAccessException">The kernel denied access.</exception>
    /// <exception cref="IOException">Another error; <see cref="Exception.HResult"/> is the errno where there is one.</exception>
    string ReadAllText(string path);

    /// <summary>Replaces the file at <paramref name="path"/> with <paramref name="text"/> (UTF-8, no byte order mark),
    /// atomically and durably, as Redis does for CONFIG REWRITE and ACL SAVE: a temporary file in the same directory is
    /// written and fsynced, renamed over the path, and the directory is fsynced. The new file's mode is 0644 less the umask.</summary>
    /// <param name="path">An absolute path, or one relative to the process's current directory.</param>
    /// <param name="text">The new contents.</param>
    /// <exception cref="UnauthorizedAccessException">The kernel denied creating or renaming the file.</exception>
    /// <exception cref="IOException">Writing, syncing or renaming failed (the old file is then unchanged); <see cref="Exception.HResult"/> is the errno.</exception>
    void ReplaceAllText(string path, string text);

    /// <summary>The system's text for a file error (<c>strerror</c>: "No such file or directory"), as Redis puts it in its
    /// replies; the exception's message when it carries no errno.</summary>
    /// <param name="error">An exception from <see cref="ReadAllText"/> or <see cref="ReplaceAllText"/>.</param>
    /// <returns>The text.</returns>
    static string ErrorText(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.HResult is > 0 and < 4096 ? Marshal.GetPInvokeErrorMessage(error.HResult) : error.Message;
    }
}
