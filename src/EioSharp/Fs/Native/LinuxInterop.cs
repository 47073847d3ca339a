using System.Runtime.InteropServices;

namespace EioSharp.Fs;

/// <summary>Raw Linux system calls and constants used by the native filesystem layer.</summary>
/// <remarks>
/// <para>
/// Only x86_64 and aarch64 Linux are supported. The two architectures share the generic errno values
/// and most open flags, but differ in <c>O_DIRECTORY</c>/<c>O_NOFOLLOW</c> and in syscall numbers, so
/// those are selected once from <see cref="RuntimeInformation.ProcessArchitecture"/>.
/// </para>
/// <para>
/// Every function here returns the raw result (-1 on failure) and leaves errno in
/// <see cref="Marshal.GetLastPInvokeError"/>; callers turn errno into exceptions through
/// <see cref="NativeErrors"/>. Paths are passed as NUL-terminated UTF-8.
/// </para>
/// <para>
/// <c>syscall(2)</c> is variadic in C. Declaring it with fixed <c>long</c> arguments is sound on the
/// Linux x86_64 (System V) and aarch64 (AAPCS64) ABIs, where variadic integer arguments travel in the
/// same registers as fixed ones; passing everything as 64-bit avoids undefined upper halves.
/// </para>
/// </remarks>
internal static unsafe partial class LinuxInterop
{
    private const string LibC = "libc";

    /// <summary>The <c>AT_FDCWD</c> pseudo descriptor: resolve relative to the current directory.</summary>
    public const int AtFdCwd = -100;

    /// <summary><c>AT_SYMLINK_NOFOLLOW</c>.</summary>
    public const int AtSymlinkNoFollow = 0x100;

    /// <summary><c>AT_REMOVEDIR</c> for <c>unlinkat</c>.</summary>
    public const int AtRemoveDir = 0x200;

    /// <summary><c>AT_EMPTY_PATH</c>: operate on the descriptor itself when the path is empty.</summary>
    public const int AtEmptyPath = 0x1000;

    // Open flags common to x86_64 and aarch64 (asm-generic values).
    public const int ORdOnly = 0;
    public const int OWrOnly = 1;
    public const int ORdWr = 2;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ONoCtty = 0x100;
    public const int OTrunc = 0x200;
    public const int OAppend = 0x400;
    public const int OCloExec = 0x80000;
    public const int OPath = 0x200000;

    /// <summary><c>O_DIRECTORY</c> for the running architecture.</summary>
    public static readonly int ODirectory;

    /// <summary><c>O_NOFOLLOW</c> for the running architecture.</summary>
    public static readonly int ONoFollow;

    /// <summary><c>O_DIRECT</c> for the running architecture.</summary>
    public static readonly int ODirect;

    /// <summary><c>F_GETFL</c>, <c>F_SETFL</c>.</summary>
    public const int FGetFl = 3, FSetFl = 4;

    /// <summary><c>RESOLVE_NO_MAGICLINKS</c>: refuse procfs-style magic links.</summary>
    public const ulong ResolveNoMagicLinks = 0x02;

    /// <summary><c>RESOLVE_BENEATH</c>: refuse any resolution that leaves the starting directory.</summary>
    public const ulong ResolveBeneath = 0x08;

    /// <summary><c>STATX_BASIC_STATS</c>.</summary>
    public const uint StatxBasicStats = 0x7ff;

    private static readonly long SysOpenAt2;
    private static readonly long SysStatx;
    private static readonly long SysGetDents64;

    static LinuxInterop()
    {
        switch (RuntimeInformation.ProcessArchitecture)
        {
            case Architecture.X64:
                ODirectory = 0x10000;
                ONoFollow = 0x20000;
                ODirect = 0x4000;
                SysOpenAt2 = 437;
                SysStatx = 332;
                SysGetDents64 = 217;
                break;
            case Architecture.Arm64:
                ODirectory = 0x4000;
                ONoFollow = 0x8000;
                ODirect = 0x10000;
                SysOpenAt2 = 437;
                SysStatx = 291;
                SysGetDents64 = 61;
                break;
            default:
                // Unsupported: every syscall below fails with ENOSYS, which callers report as IOException.
                ODirectory = 0x10000;
                ONoFollow = 0x20000;
                ODirect = 0x4000;
                SysOpenAt2 = -1;
                SysStatx = -1;
                SysGetDents64 = -1;
                break;
        }
    }

    /// <summary>The kernel's <c>struct open_how</c> for <c>openat2</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>The kernel's <c>struct statx_timestamp</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatxTimestamp
    {
        public long Seconds;
        public uint Nanoseconds;
        public int Reserved;
    }

    /// <summary>The kernel's <c>struct statx</c> (256 bytes; fields after <c>stx_dev_minor</c> unused).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(4)] public uint BlockSize;
        [FieldOffset(8)] public ulong Attributes;
        [FieldOffset(16)] public uint LinkCount;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(64)] public StatxTimestamp AccessTime;
        [FieldOffset(80)] public StatxTimestamp BirthTime;
        [FieldOffset(96)] public StatxTimestamp ChangeTime;
        [FieldOffset(112)] public StatxTimestamp ModificationTime;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }

    [LibraryImport(LibC, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5);

    /// <summary><c>openat2(dirfd, path, how, sizeof how)</c>.</summary>
    public static int OpenAt2(int dirFd, byte* path, OpenHow* how)
    {
        if (SysOpenAt2 < 0)
        {
            Marshal.SetLastPInvokeError(NativeErrors.ENOSYS);
            return -1;
        }

        return (int)Syscall(SysOpenAt2, dirFd, (long)path, (long)how, sizeof(OpenHow), 0);
    }

    /// <summary><c>statx(dirfd, path, flags, mask, buffer)</c>.</summary>
    public static int StatX(int dirFd, byte* path, int flags, uint mask, Statx* buffer)
    {
        if (SysStatx < 0)
        {
            Marshal.SetLastPInvokeError(NativeErrors.ENOSYS);
            return -1;
        }

        return (int)Syscall(SysStatx, dirFd, (long)path, flags, mask, (long)buffer);
    }

    /// <summary><c>getdents64(fd, buffer, count)</c>; returns bytes read, 0 at end, -1 on error.</summary>
    public static long GetDents64(int fd, byte* buffer, int count)
    {
        if (SysGetDents64 < 0)
        {
            Marshal.SetLastPInvokeError(NativeErrors.ENOSYS);
            return -1;
        }

        return Syscall(SysGetDents64, fd, (long)buffer, count, 0, 0);
    }

    [LibraryImport(LibC, EntryPoint = "openat", SetLastError = true)]
    public static partial int OpenAt(int dirFd, byte* path, int flags, uint mode);

    [LibraryImport(LibC, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "readlinkat", SetLastError = true)]
    public static partial nint ReadLinkAt(int dirFd, byte* path, byte* buffer, nuint size);

    [LibraryImport(LibC, EntryPoint = "mkdirat", SetLastError = true)]
    public static partial int MkDirAt(int dirFd, byte* path, uint mode);

    [LibraryImport(LibC, EntryPoint = "unlinkat", SetLastError = true)]
    public static partial int UnlinkAt(int dirFd, byte* path, int flags);

    [LibraryImport(LibC, EntryPoint = "renameat", SetLastError = true)]
    public static partial int RenameAt(int oldDirFd, byte* oldPath, int newDirFd, byte* newPath);

    [LibraryImport(LibC, EntryPoint = "chmod", SetLastError = true)]
    public static partial int ChMod(byte* path, uint mode);

    [LibraryImport(LibC, EntryPoint = "fchownat", SetLastError = true)]
    public static partial int FChOwnAt(int dirFd, byte* path, int owner, int group, int flags);

    [LibraryImport(LibC, EntryPoint = "symlinkat", SetLastError = true)]
    public static partial int SymLinkAt(byte* target, int newDirFd, byte* linkPath);

    [LibraryImport(LibC, EntryPoint = "fsync", SetLastError = true)]
    public static partial int FSync(SafeHandle fd);

    [LibraryImport(LibC, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FDataSync(SafeHandle fd);

    /// <summary><c>fallocate(fd, mode, offset, len)</c>; mode 0 allocates the range and extends the file's size over it.</summary>
    [LibraryImport(LibC, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int FAllocate(int fd, int mode, long offset, long length);

    /// <summary><c>fcntl(fd, cmd, arg)</c> with an int argument (<c>F_GETFL</c>, <c>F_SETFL</c>).</summary>
    [LibraryImport(LibC, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, int arg);

    /// <summary><c>pwrite(fd, buf, count, offset)</c>.</summary>
    [LibraryImport(LibC, EntryPoint = "pwrite", SetLastError = true)]
    public static partial nint PWrite(int fd, byte* buffer, nuint count, long offset);

    /// <summary><c>mmap</c>; returns <see cref="MapFailed"/> on failure.</summary>
    [LibraryImport(LibC, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint MMap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(LibC, EntryPoint = "munmap", SetLastError = true)]
    public static partial int MUnmap(nint address, nuint length);

    /// <summary><c>MAP_FAILED</c>.</summary>
    public const nint MapFailed = -1;

    /// <summary><c>PROT_READ | PROT_WRITE</c>.</summary>
    public const int ProtReadWrite = 0x1 | 0x2;

    /// <summary><c>MAP_SHARED</c>.</summary>
    public const int MapShared = 0x01;

    /// <summary>Encodes <paramref name="path"/> as NUL-terminated UTF-8.</summary>
    /// <exception cref="ArgumentException">The path contains a NUL character.</exception>
    public static byte[] ToNative(string path)
    {
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Path contains a NUL character: '{path.Replace("\0", "\\0", StringComparison.Ordinal)}'", nameof(path));
        }

        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(path) + 1];
        System.Text.Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }
}
