using System.Runtime.InteropServices;

namespace EioSharp.Fs;

/// <summary>Owns a Linux directory file descriptor (usually opened with <c>O_PATH | O_DIRECTORY</c>).</summary>
/// <remarks>
/// <b>Lifetime:</b> <see cref="SafeHandle"/> reference counting is what makes closing safe under
/// concurrent use (S29): operations take a reference with <see cref="SafeHandle.DangerousAddRef"/>
/// for the duration of each system call, and a <see cref="SafeHandle.Dispose()"/> that races with them
/// only closes the descriptor when the last reference is released, so a descriptor number is never
/// reused under a running operation. Dispose is idempotent.
/// </remarks>
internal sealed class SafeDirectoryFd : SafeHandle
{
    /// <summary>Takes ownership of <paramref name="fd"/> (or borrows it when <paramref name="ownsHandle"/> is false).</summary>
    public SafeDirectoryFd(int fd, bool ownsHandle = true)
        : base(new IntPtr(-1), ownsHandle)
    {
        SetHandle(new IntPtr(fd));
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == new IntPtr(-1);

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => LinuxInterop.Close((int)handle) == 0;
}
