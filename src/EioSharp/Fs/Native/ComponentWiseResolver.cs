using System.Runtime.InteropServices;

namespace EioSharp.Fs;

/// <summary>Confined path resolution in user space, for kernels where <c>openat2</c> is unavailable.</summary>
/// <remarks>
/// <para>
/// Emulates <c>RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS</c>: the path is walked one component at a
/// time with <c>openat(O_PATH | O_NOFOLLOW)</c> from the root descriptor, keeping the descriptors of
/// the directories walked through on a stack.
/// </para>
/// <list type="bullet">
/// <item>Absolute paths are refused.</item>
/// <item><c>..</c> pops the stack; popping the root is refused. The real <c>..</c> entry is never
/// looked up, so a directory renamed out of the tree mid-walk cannot be used to climb out.</item>
/// <item>A symlink (detected by <c>ELOOP</c>/<c>ENOTDIR</c> under <c>O_NOFOLLOW</c>, or by an
/// <c>O_PATH</c> descriptor that <c>readlinkat</c> accepts) is read with <c>readlinkat</c>; an
/// absolute target is refused, a relative one is spliced in front of the remaining components and
/// walked from the symlink's directory under the same rules, so a relative target that climbs out
/// is refused by the <c>..</c> rule. More than <see cref="NativeFs.MaxSymlinkExpansions"/> expansions
/// count as a loop and are refused.</item>
/// <item>The last component is opened with the caller's flags plus <c>O_NOFOLLOW</c>; when the
/// caller follows symlinks and it is one, it is expanded as above. <c>O_CREAT</c> therefore creates
/// the target of a dangling symlink only when that target is inside, like <c>openat2</c>.</item>
/// </list>
/// <para>
/// Magic links (<c>/proc/self/fd/N</c>) read as absolute paths or as pseudo-names such as
/// <c>pipe:[123]</c>; the former are refused and the latter resolve to nothing.
/// </para>
/// </remarks>
internal static unsafe class ComponentWiseResolver
{
    /// <summary>Opens <paramref name="path"/> beneath <paramref name="rootFd"/> with <paramref name="nativeFlags"/>.</summary>
    /// <param name="rootFd">The root directory descriptor (borrowed, never closed).</param>
    /// <param name="path">The relative path as the caller gave it; empty means the root itself.</param>
    /// <param name="nativeFlags">Linux open flags for the last component (<c>O_NOFOLLOW</c> is added).</param>
    /// <param name="mode">Mode for <c>O_CREAT</c>.</param>
    /// <param name="followFinal">Whether a symlink in the last component is followed.</param>
    /// <param name="directoryExpected">Selects <see cref="DirectoryNotFoundException"/> for a missing last component.</param>
    /// <returns>An owned descriptor.</returns>
    /// <exception cref="FsPermissionException">The path would leave the root.</exception>
    /// <exception cref="IOException">The translated errno, see <see cref="NativeErrors"/>.</exception>
    public static int Open(int rootFd, string path, int nativeFlags, uint mode, bool followFinal, bool directoryExpected)
    {
        if (path.StartsWith('/'))
        {
            throw NativeErrors.Refused(path, "is absolute");
        }

        // Remaining components, next one on top.
        var pending = new Stack<string>();
        Push(pending, path);

        // Descriptors of the directories below the root that the walk is in; owned.
        var stack = new List<int>();
        int expansions = 0;
        try
        {
            while (true)
            {
                string component = pending.Count == 0 ? "." : pending.Pop();
                bool last = pending.Count == 0;
                int current = stack.Count == 0 ? rootFd : stack[^1];

                if (component is "" or ".")
                {
                    if (last)
                    {
                        return NativeFs.OpenAtChecked(current, ".", nativeFlags, mode, path, directoryExpected);
                    }

                    continue;
                }

                if (component == "..")
                {
                    if (stack.Count == 0)
                    {
                        throw NativeErrors.Refused(path, "escapes the directory ('..' above it)");
                    }

                    LinuxInterop.Close(stack[^1]);
                    stack.RemoveAt(stack.Count - 1);
                    if (last)
                    {
                        return NativeFs.OpenAtChecked(stack.Count == 0 ? rootFd : stack[^1], ".", nativeFlags, mode, path, directoryExpected);
                    }

                    continue;
                }

                var name = LinuxInterop.ToNative(component);
                fixed (byte* p = name)
                {
                    int flags = last
                        ? nativeFlags | LinuxInterop.ONoFollow
                        : LinuxInterop.OPath | LinuxInterop.ODirectory | LinuxInterop.ONoFollow | LinuxInterop.OCloExec;
                    int fd = OpenAt(current, p, flags, last ? mode : 0, out int errno);
                    if (fd >= 0)
                    {
                        if (!last)
                        {
                            stack.Add(fd);
                            continue;
                        }

                        // O_PATH | O_NOFOLLOW opens a symlink itself instead of failing with ELOOP.
                        if (followFinal && (nativeFlags & LinuxInterop.OPath) != 0)
                        {
                            byte empty = 0;
                            if (NativeFs.TryReadLinkAt(fd, &empty, out var finalTarget, out _))
                            {
                                LinuxInterop.Close(fd);
                                Expand(pending, finalTarget, path, ref expansions);
                                continue;
                            }
                        }

                        return fd;
                    }

                    // Under O_NOFOLLOW a symlink shows up as ELOOP (or ENOTDIR with O_DIRECTORY on some kernels).
                    if ((errno is NativeErrors.ELOOP or NativeErrors.ENOTDIR) && (!last || followFinal)
                        && NativeFs.TryReadLinkAt(current, p, out var target, out _))
                    {
                        Expand(pending, target, path, ref expansions);
                        continue;
                    }

                    throw NativeErrors.FromErrno(errno, path, directoryExpected || !last);
                }
            }
        }
        finally
        {
            foreach (int fd in stack)
            {
                LinuxInterop.Close(fd);
            }
        }
    }

    private static int OpenAt(int dirFd, byte* name, int flags, uint mode, out int errno)
    {
        while (true)
        {
            int fd = LinuxInterop.OpenAt(dirFd, name, flags, (flags & LinuxInterop.OCreat) != 0 ? mode : 0);
            if (fd >= 0)
            {
                errno = 0;
                return fd;
            }

            errno = Marshal.GetLastPInvokeError();
            if (errno != NativeErrors.EINTR)
            {
                return -1;
            }
        }
    }

    private static void Expand(Stack<string> pending, string target, string path, ref int expansions)
    {
        if (++expansions > NativeFs.MaxSymlinkExpansions)
        {
            throw NativeErrors.Refused(path, "has too many levels of symbolic links (a loop)");
        }

        if (target.StartsWith('/'))
        {
            throw NativeErrors.Refused(path, $"passes through a symbolic link to an absolute path ('{target}')");
        }

        if (target.Length == 0)
        {
            throw NativeErrors.FromErrno(NativeErrors.ENOENT, path);
        }

        Push(pending, target);
    }

    private static void Push(Stack<string> pending, string path)
    {
        var parts = path.Split('/');
        for (int i = parts.Length - 1; i >= 0; i--)
        {
            pending.Push(parts[i]);
        }
    }
}
