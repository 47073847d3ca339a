using System.Text;
using System.Runtime.Versioning;
using EioSharp.Fs;

namespace EioSharp.Tests.Fs;

/// <summary>The unconfined variant behind <c>env.Fs</c>, and the default strategy selection.</summary>
[SupportedOSPlatform("linux")]
public sealed class NativeFsUnconfinedTests
{
    private static readonly UnixFileMode Perm644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    [Fact]
    public void UnconfinedHandleFollowsDotDotAbsolutePathsAndOutsideSymlinks()
    {
        using var s = new FsSandbox(PathResolution.Unconfined);
        s.Link("abs", s.Outside);
        Assert.False(s.Dir.IsConfined);
        Assert.Equal(FsSandbox.SentinelContents, Read(NativeFs.OpenForReading(s.Dir, "../outside/sentinel")));
        Assert.Equal(FsSandbox.SentinelContents, Read(NativeFs.OpenForReading(s.Dir, s.Sentinel)));
        Assert.Equal(FsSandbox.SentinelContents, Read(NativeFs.OpenForReading(s.Dir, "abs/sentinel")));
        NativeFs.MakeDirectory(s.Dir, "../outside/made", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.True(Directory.Exists(Path.Combine(s.Outside, "made")));
        NativeFs.MakeDirectories(s.Dir, Path.Combine(s.Outside, "p/q"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.True(Directory.Exists(Path.Combine(s.Outside, "p/q")));
    }

    [Fact]
    public void OpenUnconfinedResolvesAgainstTheCurrentDirectoryOrAHandle()
    {
        using var s = new FsSandbox();
        using (var f = NativeFs.OpenUnconfined(null, Path.Combine(s.Root, "new.txt"), OpenFlags.Write | OpenFlags.Create, Perm644))
        {
            RandomAccess.Write(f, "x"u8, 0);
        }

        Assert.Equal("x", File.ReadAllText(s.InRoot("new.txt")));

        // The confined root handle, used unconfined on purpose.
        Assert.Equal(FsSandbox.SentinelContents, Read(NativeFs.OpenUnconfined(s.Dir, "../outside/sentinel", OpenFlags.Read)));
        Assert.Throws<FsPermissionException>(() => NativeFs.OpenBeneath(s.Dir, "../outside/sentinel", OpenFlags.Read));
    }

    [Fact]
    public void CurrentDirectoryHandleIsUnconfinedAndDisposingItClosesNothing()
    {
        using var s = new FsSandbox();
        var cwd = DirectoryHandle.CurrentDirectoryUnconfined();
        Assert.False(cwd.IsConfined);
        Assert.Equal(FsSandbox.SentinelContents, Read(NativeFs.OpenForReading(cwd, s.Sentinel)));
        cwd.Dispose();
        cwd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => NativeFs.Stat(cwd, s.Sentinel));

        // A second one still works: AT_FDCWD was never closed.
        using var again = DirectoryHandle.CurrentDirectoryUnconfined();
        Assert.Equal(FileKind.RegularFile, NativeFs.Stat(again, s.Sentinel).Kind);
    }

    [Fact]
    public void OpenBeneathConfinesAnUnconfinedHandle()
    {
        using var s = new FsSandbox(PathResolution.Unconfined);
        Assert.Throws<FsPermissionException>(() => NativeFs.OpenBeneath(s.Dir, "../outside/sentinel", OpenFlags.Read));
        using var sandbox = NativeFs.OpenSubdirectory(s.Dir, s.Root, PathResolution.Beneath);
        Assert.True(sandbox.IsConfined);
        Assert.Throws<FsPermissionException>(() => NativeFs.Stat(sandbox, "../outside/sentinel"));
    }

    [Fact]
    public void DefaultResolutionIsConfined()
    {
        using var s = new FsSandbox();
        Assert.Equal(PathResolution.Beneath, s.Dir.Resolution);
        Assert.Throws<FsPermissionException>(() => NativeFs.Stat(s.Dir, "../outside/sentinel"));
    }

    [Fact]
    public void OpenRootRejectsRelativePathsAndMissingDirectories()
    {
        Assert.Throws<ArgumentException>(() => DirectoryHandle.OpenRoot("relative/path"));
        Assert.Throws<DirectoryNotFoundException>(() => DirectoryHandle.OpenRoot("/nonexistent-" + Guid.NewGuid().ToString("N")));
        Assert.Throws<ArgumentException>(() => DirectoryHandle.OpenRoot("/tmp/a\0b"));
    }

    private static string Read(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        using (file)
        {
            var buffer = new byte[4096];
            return Encoding.UTF8.GetString(buffer, 0, RandomAccess.Read(file, buffer, 0));
        }
    }
}
