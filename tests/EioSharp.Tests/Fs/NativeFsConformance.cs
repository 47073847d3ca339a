using System.Text;
using System.Runtime.Versioning;
using EioSharp.Fs;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Tests.Fs;

/// <summary>Run with openat2 (<c>RESOLVE_BENEATH</c>).</summary>
[SupportedOSPlatform("linux")]
public sealed class NativeFsOpenAt2Tests : NativeFsConformance
{
    internal override PathResolution Resolution => PathResolution.OpenAt2;

    [Fact]
    public void OpenAt2IsAvailableInThisEnvironment() => Assert.True(NativeFs.IsOpenAt2Supported);
}

/// <summary>Run with the user-space component-wise fallback.</summary>
[SupportedOSPlatform("linux")]
public sealed class NativeFsComponentWiseTests : NativeFsConformance
{
    internal override PathResolution Resolution => PathResolution.ComponentWise;
}

/// <summary>Run with the portable layer (.NET file APIs, user-space confinement): what macOS and Windows use.</summary>
[SupportedOSPlatform("linux")]
public sealed class PortableFsConformanceTests : NativeFsConformance
{
    internal override PathResolution Resolution => PathResolution.Portable;

    internal override bool HasInodes => false;

    internal override bool HasKernelAppend => false;

    [Fact]
    public void PortableHandlesHaveNoDescriptor()
    {
        using var s = new FsSandbox(PathResolution.Portable);
        Assert.True(s.Dir.IsPortable);
        Assert.True(s.Dir.IsConfined);
        Assert.Equal(s.Root, s.Dir.PortableRoot);
        Assert.Equal(-1, (int)s.Dir.Fd.DangerousGetHandle());
        s.MakeDir("sub");
        using var sub = NativeFs.OpenSubdirectory(s.Dir, "sub");
        Assert.True(sub.IsPortable);
        Assert.Equal(PathResolution.Portable, sub.Resolution);
    }

    [Fact]
    public void ChangeOwnerIsRefusedAfterTheEscapeCheck()
    {
        using var s = new FsSandbox(PathResolution.Portable);
        s.WriteFile("f", "");
        Assert.Throws<FsPermissionException>(() => NativeFs.ChangeOwner(s.Dir, "../outside/sentinel", -1, -1));
        Assert.Throws<FileNotFoundException>(() => NativeFs.ChangeOwner(s.Dir, "missing", -1, -1));
        Assert.Throws<PlatformNotSupportedException>(() => NativeFs.ChangeOwner(s.Dir, "f", -1, -1));
    }

    [Fact]
    public void ChangeModeFollowsInsideLinksAndRefusesOutsideOnes()
    {
        using var s = new FsSandbox(PathResolution.Portable);
        s.WriteFile("f", "");
        s.Link("l", "f");
        s.Link("out", "../outside/sentinel");
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        NativeFs.ChangeMode(s.Dir, "l", mode);
        Assert.Equal(mode, File.GetUnixFileMode(s.InRoot("f")));
        var before = File.GetUnixFileMode(s.Sentinel);
        Assert.Throws<FsPermissionException>(() => NativeFs.ChangeMode(s.Dir, "out", mode));
        Assert.Equal(before, File.GetUnixFileMode(s.Sentinel));
    }

    [Fact]
    public void ReadDirectoryEntriesReportKindsWithoutFollowingLinks()
    {
        using var s = new FsSandbox(PathResolution.Portable);
        s.MakeDir("d/sub");
        s.WriteFile("d/f", "");
        s.WriteFile("d/.hidden", "");
        s.Link("d/l", "sub");
        Assert.Equal(
            [(".hidden", FileKind.RegularFile), ("f", FileKind.RegularFile), ("l", FileKind.SymbolicLink), ("sub", FileKind.Directory)],
            NativeFs.ReadDirectoryEntries(s.Dir, "d"));
        Assert.True(NativeFs.RemoveTree(s.Dir, "d"));
        Assert.False(Directory.Exists(s.InRoot("d")));
        Assert.False(NativeFs.RemoveTree(s.Dir, "d"));
    }

    [Fact]
    public void RenameReplacesAnEmptyDirectoryAndRefusesBadReplacements()
    {
        using var s = new FsSandbox(PathResolution.Portable);
        s.MakeDir("a");
        s.WriteFile("a/x", "x");
        s.MakeDir("empty");
        s.MakeDir("full");
        s.WriteFile("full/y", "");
        s.WriteFile("file", "");
        Assert.Equal(NativeErrors.ENOTEMPTY, Assert.Throws<IOException>(() => NativeFs.Rename(s.Dir, "a", s.Dir, "full")).HResult);
        Assert.Equal(NativeErrors.ENOTDIR, Assert.ThrowsAny<IOException>(() => NativeFs.Rename(s.Dir, "a", s.Dir, "file")).HResult);
        Assert.Equal(NativeErrors.EISDIR, Assert.Throws<IOException>(() => NativeFs.Rename(s.Dir, "file", s.Dir, "full")).HResult);
        NativeFs.Rename(s.Dir, "a", s.Dir, "empty");
        Assert.Equal("x", File.ReadAllText(s.InRoot("empty/x")));
        Assert.False(Directory.Exists(s.InRoot("a")));
    }

    [Fact]
    public void UnconfinedPortableHandleFollowsEverything()
    {
        using var s = new FsSandbox(PathResolution.Unconfined);
        using var fs = DirectoryHandle.OpenPortableRoot(s.Root, PathResolution.Unconfined);
        Assert.True(fs.IsPortable);
        Assert.False(fs.IsConfined);
        s.Link("abs", s.Outside);
        Assert.Equal(FileKind.RegularFile, NativeFs.Stat(fs, "../outside/sentinel").Kind);
        Assert.Equal(FileKind.RegularFile, NativeFs.Stat(fs, s.Sentinel).Kind);
        Assert.Equal(FileKind.RegularFile, NativeFs.Stat(fs, "abs/sentinel").Kind);
        Assert.Equal(FileKind.SymbolicLink, NativeFs.Stat(fs, "abs", followSymlinks: false).Kind);
        Assert.Throws<FsPermissionException>(() => NativeFs.OpenBeneath(fs, "../outside/sentinel", OpenFlags.Read));
        using var sandbox = NativeFs.OpenSubdirectory(fs, s.Root, PathResolution.Beneath);
        Assert.Equal(PathResolution.Portable, sandbox.Resolution);
        Assert.Throws<FsPermissionException>(() => NativeFs.Stat(sandbox, "../outside/sentinel"));
    }

    [Theory]
    [InlineData(null, null, true, false)]
    [InlineData(null, null, false, true)]
    [InlineData(null, "", true, false)]
    [InlineData(null, "portable", true, true)]
    [InlineData(null, " Portable ", true, true)]
    [InlineData(null, "native", true, false)]
    [InlineData(EioFileSystem.Auto, null, true, false)]
    [InlineData(EioFileSystem.Auto, null, false, true)]
    [InlineData(EioFileSystem.Auto, "portable", true, true)]
    [InlineData(EioFileSystem.Portable, null, true, true)]
    [InlineData(EioFileSystem.Portable, "native", true, true)]
    [InlineData(EioFileSystem.Native, "portable", true, false)]
    [InlineData(EioFileSystem.Native, "nonsense", true, false)]
    public void TheLayerIsChosenByValueThenVariableThenPlatform(EioFileSystem? requested, string? variable, bool isLinux, bool portable) =>
        Assert.Equal(portable, FsPlatform.ChoosePortable(requested, variable, isLinux));

    [Fact]
    public void AnUnknownOrImpossibleChoiceIsAnError()
    {
        var typo = Assert.Throws<ArgumentException>(() => FsPlatform.ChoosePortable(null, "portabel", isLinux: true));
        Assert.Equal("EIOSHARP_FS", typo.ParamName);
        Assert.Contains("'portabel'", typo.Message, StringComparison.Ordinal);
        Assert.Equal("EIOSHARP_FS", Assert.Throws<ArgumentException>(() => FsPlatform.ChoosePortable(EioFileSystem.Auto, "nfs", isLinux: true)).ParamName);
        Assert.Equal("EIOSHARP_FS", Assert.Throws<ArgumentException>(() => FsPlatform.ChoosePortable(null, "native", isLinux: false)).ParamName);
        Assert.Throws<PlatformNotSupportedException>(() => FsPlatform.ChoosePortable(EioFileSystem.Native, null, isLinux: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => FsPlatform.ChoosePortable((EioFileSystem)7, null, isLinux: true));
    }
}

/// <summary>The confined native filesystem layer; one subclass per resolution strategy.</summary>
[SupportedOSPlatform("linux")]
public abstract class NativeFsConformance
{
    private static readonly UnixFileMode Perm644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static readonly UnixFileMode Perm755 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    internal abstract PathResolution Resolution { get; }

    /// <summary>Gets whether stat reports inode numbers (not the portable layer).</summary>
    internal virtual bool HasInodes => true;

    /// <summary>Gets whether append mode is the kernel's <c>O_APPEND</c> (positional writes go to the end); the portable
    /// layer has no such flag and <see cref="FileWriter"/> writes at the current length instead.</summary>
    internal virtual bool HasKernelAppend => true;

    private FsSandbox NewSandbox() => new(Resolution);

    // ------------------------------------------------------------------ S28

    /// <summary>
    /// Each case: a setup inside the sandbox and a path prefix that designates the outside
    /// directory (or loops). Every operation is tried on prefix + "/sentinel" (existing) and
    /// prefix + "/new" (missing).
    /// </summary>
    public static TheoryData<string> EscapeCases => new()
    {
        "dotdot",
        "a/../..",
        "absolute outside path",
        "symlink to absolute outside path",
        "relative symlink climbing out",
        "symlinked parent directory pointing outside",
        "chain: inside link to a link that climbs out",
        "symlink loop",
        "self loop",
        "dotdot through symlinked dir",
    };

    private static string SetUpEscape(FsSandbox s, string name)
    {
        s.MakeDir("a");
        s.MakeDir("sub");
        switch (name)
        {
            case "dotdot":
                return "../outside";
            case "a/../..":
                return "a/../../outside";
            case "absolute outside path":
                return s.Outside;
            case "symlink to absolute outside path":
                s.Link("abs", s.Outside);
                return "abs";
            case "relative symlink climbing out":
                s.Link("rel", "../outside");
                return "rel";
            case "symlinked parent directory pointing outside":
                s.Link("sub/deep", "../../outside");
                return "sub/deep";
            case "chain: inside link to a link that climbs out":
                s.Link("sub/deep", "../../outside");
                s.Link("chain", "sub/deep");
                return "chain";
            case "symlink loop":
                s.Link("loop1", "loop2");
                s.Link("loop2", "loop1");
                return "loop1";
            case "self loop":
                s.Link("self", "self/x");
                return "self";
            case "dotdot through symlinked dir":
                // "up" -> "a" stays inside, but "up/../.." climbs from the root.
                s.Link("up", "a");
                return "up/../../outside";
            default:
                throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(EscapeCases))]
    public void S28_SandboxEscapeAttemptsAreRefused(string caseName)
    {
        using var s = NewSandbox();
        string escape = SetUpEscape(s, caseName);
        s.WriteFile("inside.txt", "inside");
        string existing = escape + "/sentinel";
        string missing = escape + "/new";
        var before = s.SnapshotOutside();
        var dir = s.Dir;

        var operations = new (string Name, Action Run)[]
        {
            ("open for reading", () => NativeFs.OpenForReading(dir, existing).Dispose()),
            ("open or-truncate existing", () => NativeFs.OpenForWriting(dir, existing, FileCreate.OrTruncate(Perm644)).Dispose()),
            ("open never existing", () => NativeFs.OpenForWriting(dir, existing, FileCreate.Never, append: true).Dispose()),
            ("create if-missing", () => NativeFs.OpenForWriting(dir, missing, FileCreate.IfMissing(Perm644)).Dispose()),
            ("create exclusive", () => NativeFs.OpenForWriting(dir, missing, FileCreate.Exclusive(Perm644)).Dispose()),
            ("open flags", () => NativeFs.Open(dir, missing, OpenFlags.Write | OpenFlags.Create, Perm644).Dispose()),
            ("open beneath", () => NativeFs.OpenBeneath(dir, existing, OpenFlags.Read).Dispose()),
            ("stat", () => NativeFs.Stat(dir, existing)),
            ("stat nofollow", () => NativeFs.Stat(dir, existing, followSymlinks: false)),
            ("stat dir", () => NativeFs.Stat(dir, escape)),
            ("read dir", () => NativeFs.ReadDirectory(dir, escape)),
            ("open subdirectory", () => NativeFs.OpenSubdirectory(dir, escape).Dispose()),
            ("mkdir", () => NativeFs.MakeDirectory(dir, missing, Perm755)),
            ("mkdirs", () => NativeFs.MakeDirectories(dir, missing + "/x/y", Perm755)),
            ("unlink", () => NativeFs.Unlink(dir, existing)),
            ("rmdir", () => NativeFs.RemoveDirectory(dir, missing)),
            ("rename out", () => NativeFs.Rename(dir, "inside.txt", dir, missing)),
            ("rename in", () => NativeFs.Rename(dir, existing, dir, "stolen")),
            ("symlink", () => NativeFs.SymLink(dir, missing, "x")),
            ("readlink", () => NativeFs.ReadLink(dir, existing)),
        };

        foreach (var (name, run) in operations)
        {
            var ex = Record.Exception(run);
            Assert.True(ex is FsPermissionException, $"{caseName} / {name}: expected FsPermissionException, got {ex?.GetType().Name ?? "success"}: {ex?.Message}");
            var refused = (FsPermissionException)ex!;
            Assert.NotNull(refused.RefusedPath);
            Assert.Contains(refused.RefusedPath!, refused.Message, StringComparison.Ordinal);
            Assert.Equal(before, s.SnapshotOutside());
        }

        Assert.Equal(FsSandbox.SentinelContents, File.ReadAllText(s.Sentinel));
        Assert.Equal("inside", File.ReadAllText(s.InRoot("inside.txt")));
        Assert.False(File.Exists(s.InRoot("stolen")));
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("/")]
    [InlineData("..")]
    [InlineData("../..")]
    [InlineData("a/../..")]
    public void S28_AbsoluteAndClimbingPathsAreRefusedForReading(string path)
    {
        using var s = NewSandbox();
        s.MakeDir("a");
        Assert.Throws<FsPermissionException>(() => NativeFs.OpenForReading(s.Dir, path).Dispose());
        Assert.Throws<FsPermissionException>(() => NativeFs.Stat(s.Dir, path));
        Assert.Throws<FsPermissionException>(() => NativeFs.ReadDirectory(s.Dir, path));
    }

    [Fact]
    public void S28_RefusalIsAnUnauthorizedAccessExceptionNamingThePath()
    {
        using var s = NewSandbox();
        var ex = Assert.Throws<FsPermissionException>(() => NativeFs.OpenForReading(s.Dir, "../outside/sentinel"));
        Assert.IsAssignableFrom<UnauthorizedAccessException>(ex);
        Assert.Contains("'../outside/sentinel'", ex.Message, StringComparison.Ordinal);
        Assert.Equal("../outside/sentinel", ex.RefusedPath);
    }

    [Fact]
    public void S28_SubtreeCannotClimbIntoItsParent()
    {
        using var s = NewSandbox();
        s.MakeDir("sub");
        s.WriteFile("secret.txt", "secret");
        using var sub = NativeFs.OpenSubdirectory(s.Dir, "sub");
        Assert.True(sub.IsConfined);
        Assert.Throws<FsPermissionException>(() => NativeFs.OpenForReading(sub, "../secret.txt").Dispose());
        s.Link("sub/up", "../secret.txt");
        Assert.Throws<FsPermissionException>(() => NativeFs.OpenForReading(sub, "up").Dispose());

        // The same link is fine from the parent's point of view.
        using var f = NativeFs.OpenForReading(s.Dir, "sub/up");
        Assert.Equal("secret", ReadAll(f));
    }

    [Theory]
    [InlineData("a/../b.txt")]
    [InlineData("./b.txt")]
    [InlineData("a/./../a/../b.txt")]
    [InlineData("a//..//b.txt")]
    [InlineData("a/c/../../b.txt")]
    public void LegitimateDotDotInsideWorks(string path)
    {
        using var s = NewSandbox();
        s.MakeDir("a/c");
        s.WriteFile("b.txt", "bee");
        using var f = NativeFs.OpenForReading(s.Dir, path);
        Assert.Equal("bee", ReadAll(f));
    }

    [Fact]
    public void SymlinksThatStayInsideWork()
    {
        using var s = NewSandbox();
        s.MakeDir("sub/inner");
        s.WriteFile("sub/inner/file.txt", "data");
        s.Link("filelink", "sub/inner/file.txt");
        s.Link("dirlink", "sub/inner");
        s.Link("sub/up", "../filelink");             // relative link with .. that stays inside, to a link
        s.Link("sub/inner/back", "../../dirlink/file.txt");
        s.Link("chain", "dirlink");

        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(s.Dir, "filelink")));
        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(s.Dir, "dirlink/file.txt")));
        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(s.Dir, "sub/up")));
        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(s.Dir, "sub/inner/back")));
        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(s.Dir, "chain/back")));
        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(s.Dir, "dirlink/../inner/file.txt")));
        Assert.Equal(["back", "file.txt"], NativeFs.ReadDirectory(s.Dir, "chain"));
        Assert.Equal(FileKind.Directory, NativeFs.Stat(s.Dir, "chain").Kind);
        Assert.Equal(FileKind.SymbolicLink, NativeFs.Stat(s.Dir, "chain", followSymlinks: false).Kind);
        using var sub = NativeFs.OpenSubdirectory(s.Dir, "dirlink");
        Assert.Equal("data", ReadAll(NativeFs.OpenForReading(sub, "file.txt")));
    }

    [Fact]
    public void CreatingThroughADanglingSymlinkInsideCreatesTheTargetInside()
    {
        using var s = NewSandbox();
        s.MakeDir("sub");
        s.Link("dangling", "sub/target.txt");
        using (var f = NativeFs.OpenForWriting(s.Dir, "dangling", FileCreate.IfMissing(Perm644)))
        {
            RandomAccess.Write(f, "hi"u8, 0);
        }

        Assert.Equal("hi", File.ReadAllText(s.InRoot("sub/target.txt")));
    }

    [Fact]
    public void ExclusiveCreateDoesNotFollowASymlink()
    {
        using var s = NewSandbox();
        s.Link("dangling", "target.txt");
        var ex = Assert.Throws<IOException>(() => NativeFs.OpenForWriting(s.Dir, "dangling", FileCreate.Exclusive(Perm644)));
        Assert.Equal(NativeErrors.EEXIST, ex.HResult);
        Assert.False(File.Exists(s.InRoot("target.txt")));
    }

    // ------------------------------------------------------------------ opening and create modes

    [Fact]
    public void CreateNeverRequiresAnExistingFileAndKeepsItsContents()
    {
        using var s = NewSandbox();
        var missing = Assert.Throws<FileNotFoundException>(() => NativeFs.OpenForWriting(s.Dir, "nope.txt", FileCreate.Never));
        Assert.Contains("'nope.txt'", missing.Message, StringComparison.Ordinal);
        Assert.Equal(NativeErrors.ENOENT, missing.HResult);

        s.WriteFile("f.txt", "hello");
        using (var f = NativeFs.OpenForWriting(s.Dir, "f.txt", FileCreate.Never))
        {
            RandomAccess.Write(f, "J"u8, 0);
        }

        Assert.Equal("Jello", File.ReadAllText(s.InRoot("f.txt")));
    }

    [Fact]
    public void CreateIfMissingCreatesWithPermissionsAndKeepsExisting()
    {
        using var s = NewSandbox();
        var perm = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = NativeFs.OpenForWriting(s.Dir, "new.txt", FileCreate.IfMissing(perm)))
        {
            RandomAccess.Write(f, "abc"u8, 0);
        }

        Assert.Equal(perm, File.GetUnixFileMode(s.InRoot("new.txt")));
        Assert.Equal(perm, NativeFs.Stat(s.Dir, "new.txt").Permissions);
        using (var f = NativeFs.OpenForWriting(s.Dir, "new.txt", FileCreate.IfMissing(Perm644)))
        {
            RandomAccess.Write(f, "X"u8, 1);
        }

        Assert.Equal("aXc", File.ReadAllText(s.InRoot("new.txt")));
    }

    [Fact]
    public void CreateOrTruncateTruncates()
    {
        using var s = NewSandbox();
        s.WriteFile("f.txt", "a long old content");
        using (var f = NativeFs.OpenForWriting(s.Dir, "f.txt", FileCreate.OrTruncate(Perm644)))
        {
            Assert.Equal(0, RandomAccess.GetLength(f));
            RandomAccess.Write(f, "new"u8, 0);
        }

        Assert.Equal("new", File.ReadAllText(s.InRoot("f.txt")));
        using (NativeFs.OpenForWriting(s.Dir, "g.txt", FileCreate.OrTruncate(Perm644)))
        {
        }

        Assert.True(File.Exists(s.InRoot("g.txt")));
    }

    [Fact]
    public void CreateExclusiveFailsWithEExistIfPresent()
    {
        using var s = NewSandbox();
        using (NativeFs.OpenForWriting(s.Dir, "x.txt", FileCreate.Exclusive(Perm644)))
        {
        }

        var ex = Assert.Throws<IOException>(() => NativeFs.OpenForWriting(s.Dir, "x.txt", FileCreate.Exclusive(Perm644)));
        Assert.Equal(NativeErrors.EEXIST, ex.HResult);
        Assert.Contains("exists", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("'x.txt'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AppendWritesAtTheEndWhateverTheOffset()
    {
        using var s = NewSandbox();
        s.WriteFile("log.txt", "abc");
        using (var f = NativeFs.OpenForWriting(s.Dir, "log.txt", FileCreate.Never, append: true))
        {
            RandomAccess.Write(f, "def"u8, HasKernelAppend ? 0 : RandomAccess.GetLength(f));
            RandomAccess.Write(f, "gh"u8, HasKernelAppend ? 0 : RandomAccess.GetLength(f));
        }

        Assert.Equal("abcdefgh", File.ReadAllText(s.InRoot("log.txt")));
    }

    [Fact]
    public void OpenForReadingReadsAndRefusesWrites()
    {
        using var s = NewSandbox();
        s.WriteFile("r.txt", "read me");
        using var f = NativeFs.OpenForReading(s.Dir, "r.txt");
        Assert.Equal("read me", ReadAll(f));
        Assert.ThrowsAny<Exception>(() => RandomAccess.Write(f, "x"u8, 0));
    }

    [Fact]
    public void MissingFilesAndDirectoriesAreReportedByType()
    {
        using var s = NewSandbox();
        s.WriteFile("file", "");
        var notFound = Assert.Throws<FileNotFoundException>(() => NativeFs.OpenForReading(s.Dir, "missing.txt"));
        Assert.Contains("'missing.txt'", notFound.Message, StringComparison.Ordinal);
        Assert.Throws<DirectoryNotFoundException>(() => NativeFs.ReadDirectory(s.Dir, "nodir"));
        Assert.Throws<DirectoryNotFoundException>(() => NativeFs.OpenSubdirectory(s.Dir, "file"));
        Assert.Throws<DirectoryNotFoundException>(() => NativeFs.OpenForReading(s.Dir, "file/x"));
        Assert.Throws<DirectoryNotFoundException>(() => NativeFs.OpenForReading(s.Dir, "nodir/x"));
        Assert.Throws<DirectoryNotFoundException>(() => NativeFs.MakeDirectory(s.Dir, "nodir/x", Perm755));
    }

    [Fact]
    public void EmptyPathMeansTheDirectoryItself()
    {
        using var s = NewSandbox();
        s.WriteFile("a.txt", "");
        Assert.Equal(["a.txt"], NativeFs.ReadDirectory(s.Dir, ""));
        Assert.Equal(FileKind.Directory, NativeFs.Stat(s.Dir, "").Kind);
        Assert.Equal(FileKind.Directory, NativeFs.Stat(s.Dir, ".").Kind);
    }

    // ------------------------------------------------------------------ stat

    [Fact]
    public void StatReportsKindSizePermissionsTimesAndInode()
    {
        using var s = NewSandbox();
        var before = DateTimeOffset.UtcNow.AddSeconds(-5);
        s.WriteFile("f.txt", "12345");
        File.SetUnixFileMode(s.InRoot("f.txt"), Perm644);
        s.MakeDir("d");
        s.Link("l", "f.txt");

        var st = NativeFs.Stat(s.Dir, "f.txt");
        Assert.Equal(FileKind.RegularFile, st.Kind);
        Assert.Equal(5, st.Size);
        Assert.Equal(Perm644, st.Permissions);
        Assert.Equal(1u, st.LinkCount);
        Assert.InRange(st.ModificationTime, before, DateTimeOffset.UtcNow.AddSeconds(5));
        Assert.InRange(st.ChangeTime, before, DateTimeOffset.UtcNow.AddSeconds(5));
        Assert.InRange(st.AccessTime, before, DateTimeOffset.UtcNow.AddSeconds(5));
        Assert.Equal(File.GetLastWriteTimeUtc(s.InRoot("f.txt")), st.ModificationTime.UtcDateTime);

        Assert.Equal(FileKind.Directory, NativeFs.Stat(s.Dir, "d").Kind);
        var followed = NativeFs.Stat(s.Dir, "l");
        Assert.Equal(FileKind.RegularFile, followed.Kind);
        Assert.Equal(st.Inode, followed.Inode);
        Assert.Equal(st.Device, followed.Device);
        var link = NativeFs.Stat(s.Dir, "l", followSymlinks: false);
        Assert.Equal(FileKind.SymbolicLink, link.Kind);
        Assert.Equal("f.txt".Length, link.Size);
        Assert.True(!HasInodes || st.Inode != link.Inode);

        using var f = NativeFs.OpenForReading(s.Dir, "f.txt");
        var byHandle = NativeFs.Stat(f, s.Dir.IsPortable);
        Assert.True(!HasInodes || st.Inode == byHandle.Inode);
        Assert.Equal(5, byHandle.Size);
    }

    // ------------------------------------------------------------------ directories

    [Fact]
    public void ReadDirectoryListsSortedNamesWithoutDots()
    {
        using var s = NewSandbox();
        s.MakeDir("d");
        Assert.Empty(NativeFs.ReadDirectory(s.Dir, "d"));
        s.WriteFile("d/b", "");
        s.WriteFile("d/a", "");
        s.MakeDir("d/C");
        s.Link("d/z", "nowhere");
        s.WriteFile("d/é", "");
        Assert.Equal(["C", "a", "b", "z", "é"], NativeFs.ReadDirectory(s.Dir, "d"));
    }

    [Fact]
    public void ReadDirectoryHandlesMoreEntriesThanOneBuffer()
    {
        using var s = NewSandbox();
        s.MakeDir("many");
        var expected = new List<string>();
        for (int i = 0; i < 1500; i++)
        {
            string name = $"entry-{i:D5}-" + new string('x', 40);
            expected.Add(name);
            File.WriteAllBytes(s.InRoot("many/" + name), []);
        }

        expected.Sort(StringComparer.Ordinal);
        Assert.Equal(expected, NativeFs.ReadDirectory(s.Dir, "many"));
    }

    [Fact]
    public void MakeDirectoryCreatesWithPermissionsAndFailsIfPresent()
    {
        using var s = NewSandbox();
        NativeFs.MakeDirectory(s.Dir, "d", Perm755);
        Assert.True(Directory.Exists(s.InRoot("d")));
        Assert.Equal(Perm755, NativeFs.Stat(s.Dir, "d").Permissions);
        var ex = Assert.Throws<IOException>(() => NativeFs.MakeDirectory(s.Dir, "d", Perm755));
        Assert.Equal(NativeErrors.EEXIST, ex.HResult);
        NativeFs.MakeDirectory(s.Dir, "d/e/", Perm755);
        Assert.True(Directory.Exists(s.InRoot("d/e")));
        Assert.Equal(NativeErrors.EEXIST, Assert.Throws<IOException>(() => NativeFs.MakeDirectory(s.Dir, "d/..", Perm755)).HResult);
    }

    [Fact]
    public void MakeDirectoriesCreatesEveryMissingLevel()
    {
        using var s = NewSandbox();
        NativeFs.MakeDirectories(s.Dir, "a/b/c", Perm755);
        Assert.True(Directory.Exists(s.InRoot("a/b/c")));
        Assert.Equal(NativeErrors.EEXIST, Assert.Throws<IOException>(() => NativeFs.MakeDirectories(s.Dir, "a/b/c", Perm755)).HResult);
        NativeFs.MakeDirectories(s.Dir, "a/b/c", Perm755, existsOk: true);
        NativeFs.MakeDirectories(s.Dir, "a/b/../x/y/", Perm755);
        Assert.True(Directory.Exists(s.InRoot("a/x/y")));

        s.Link("alias", "a/b");
        NativeFs.MakeDirectories(s.Dir, "alias/d/e", Perm755);
        Assert.True(Directory.Exists(s.InRoot("a/b/d/e")));

        s.WriteFile("file", "");
        Assert.ThrowsAny<IOException>(() => NativeFs.MakeDirectories(s.Dir, "file/x", Perm755));
    }

    [Fact]
    public void RenameMovesWithinAndAcrossDirectoryHandlesAndReplacesFiles()
    {
        using var s = NewSandbox();
        s.MakeDir("src");
        s.MakeDir("dst");
        s.WriteFile("src/a.txt", "A");
        s.WriteFile("dst/old.txt", "old");

        NativeFs.Rename(s.Dir, "src/a.txt", s.Dir, "src/b.txt");
        Assert.False(File.Exists(s.InRoot("src/a.txt")));
        Assert.Equal("A", File.ReadAllText(s.InRoot("src/b.txt")));

        using var src = NativeFs.OpenSubdirectory(s.Dir, "src");
        using var dst = NativeFs.OpenSubdirectory(s.Dir, "dst");
        NativeFs.Rename(src, "b.txt", dst, "old.txt");
        Assert.Equal("A", File.ReadAllText(s.InRoot("dst/old.txt")));
        Assert.Empty(NativeFs.ReadDirectory(src));

        Assert.Throws<FileNotFoundException>(() => NativeFs.Rename(s.Dir, "nope", s.Dir, "x"));

        // A directory, and a symlink (the link moves, not its target).
        NativeFs.Rename(s.Dir, "src", s.Dir, "dst/src2");
        Assert.True(Directory.Exists(s.InRoot("dst/src2")));
        s.Link("lnk", "dst");
        NativeFs.Rename(s.Dir, "lnk", s.Dir, "lnk2");
        Assert.Equal("dst", new FileInfo(s.InRoot("lnk2")).LinkTarget);
    }

    [Fact]
    public void UnlinkRemovesFilesAndLinksButNotDirectories()
    {
        using var s = NewSandbox();
        s.WriteFile("f.txt", "");
        s.MakeDir("d");
        s.WriteFile("d/target", "t");
        s.Link("lnk", "d/target");

        NativeFs.Unlink(s.Dir, "f.txt");
        Assert.False(File.Exists(s.InRoot("f.txt")));
        NativeFs.Unlink(s.Dir, "lnk");
        Assert.False(File.Exists(s.InRoot("lnk")));
        Assert.True(File.Exists(s.InRoot("d/target")));

        var missing = Assert.Throws<FileNotFoundException>(() => NativeFs.Unlink(s.Dir, "f.txt"));
        Assert.Contains("'f.txt'", missing.Message, StringComparison.Ordinal);
        Assert.ThrowsAny<IOException>(() => NativeFs.Unlink(s.Dir, "d"));
        Assert.True(Directory.Exists(s.InRoot("d")));
    }

    [Fact]
    public void RemoveDirectoryRemovesOnlyEmptyDirectories()
    {
        using var s = NewSandbox();
        s.MakeDir("empty");
        s.MakeDir("full");
        s.WriteFile("full/x", "");
        s.WriteFile("file", "");

        NativeFs.RemoveDirectory(s.Dir, "empty/");
        Assert.False(Directory.Exists(s.InRoot("empty")));
        var notEmpty = Assert.Throws<IOException>(() => NativeFs.RemoveDirectory(s.Dir, "full"));
        Assert.Equal(NativeErrors.ENOTEMPTY, notEmpty.HResult);
        Assert.Throws<DirectoryNotFoundException>(() => NativeFs.RemoveDirectory(s.Dir, "file"));
        Assert.Throws<FileNotFoundException>(() => NativeFs.RemoveDirectory(s.Dir, "empty"));
        Assert.ThrowsAny<IOException>(() => NativeFs.RemoveDirectory(s.Dir, "full/.."));
        Assert.True(Directory.Exists(s.Root));
    }

    [Fact]
    public void SymLinkAndReadLinkRoundTrip()
    {
        using var s = NewSandbox();
        s.MakeDir("d");
        NativeFs.SymLink(s.Dir, "d/l", "../some/where");
        Assert.Equal("../some/where", NativeFs.ReadLink(s.Dir, "d/l"));
        Assert.Equal("../some/where", new FileInfo(s.InRoot("d/l")).LinkTarget);
        string longTarget = new('t', 1000);
        NativeFs.SymLink(s.Dir, "long", longTarget);
        Assert.Equal(longTarget, NativeFs.ReadLink(s.Dir, "long"));
        Assert.Equal(NativeErrors.EEXIST, Assert.Throws<IOException>(() => NativeFs.SymLink(s.Dir, "long", "x")).HResult);
        Assert.Equal(NativeErrors.EINVAL, Assert.Throws<IOException>(() => NativeFs.ReadLink(s.Dir, "d")).HResult);
    }

    [Fact]
    public void OpenSubdirectoryOutlivesItsParentHandle()
    {
        using var s = NewSandbox();
        s.MakeDir("a/b");
        s.WriteFile("a/b/f", "f");
        var parent = DirectoryHandle.OpenRoot(s.Root, Resolution);
        using var sub = NativeFs.OpenSubdirectory(parent, "a/b");
        parent.Dispose();
        Assert.Equal(Resolution, sub.Resolution);
        Assert.Equal(["f"], NativeFs.ReadDirectory(sub));
        Assert.Equal(s.InRoot("a/b"), sub.DisplayPath);
    }

    [Fact]
    public void S29_DisposeIsIdempotentAndLaterOperationsThrowObjectDisposed()
    {
        using var s = NewSandbox();
        var dir = DirectoryHandle.OpenRoot(s.Root, Resolution);
        dir.Dispose();
        dir.Dispose();
        Assert.True(dir.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => NativeFs.ReadDirectory(dir));
        Assert.Throws<ObjectDisposedException>(() => NativeFs.MakeDirectory(dir, "x", Perm755));
        Assert.Throws<ObjectDisposedException>(() => NativeFs.OpenForReading(dir, "x"));
    }

    [Fact]
    public void S29_DisposeRacingWithOperationsNeverYieldsABadDescriptor()
    {
        using var s = NewSandbox();
        s.MakeDir("a/b");
        s.WriteFile("a/b/f", "x");
        for (int round = 0; round < 20; round++)
        {
            var dir = DirectoryHandle.OpenRoot(s.Root, Resolution);
            using var start = new Barrier(5);
            var failures = new System.Collections.Concurrent.ConcurrentBag<Exception>();
            var workers = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < 200; i++)
                {
                    try
                    {
                        NativeFs.Stat(dir, "a/b/f");
                        NativeFs.ReadDirectory(dir, "a");
                        NativeFs.OpenForReading(dir, "a/b/f").Dispose();
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                    catch (Exception ex)
                    {
                        failures.Add(ex);
                        return;
                    }
                }
            })).ToArray();
            foreach (var worker in workers)
            {
                worker.Start();
            }

            start.SignalAndWait();
            Thread.Sleep(round % 3);
            dir.Dispose();
            foreach (var worker in workers)
            {
                worker.Join();
            }
            Assert.Empty(failures);
        }
    }

    // ------------------------------------------------------------------ sync

    [Fact]
    public void SyncAndDataSyncFlushAnOpenFile()
    {
        using var s = NewSandbox();
        var f = NativeFs.OpenForWriting(s.Dir, "s.txt", FileCreate.IfMissing(Perm644));
        RandomAccess.Write(f, "durable"u8, 0);
        NativeFs.Sync(f, s.Dir.IsPortable);
        NativeFs.DataSync(f, s.Dir.IsPortable);
        f.Dispose();
        Assert.Equal("durable", File.ReadAllText(s.InRoot("s.txt")));
        Assert.Throws<ObjectDisposedException>(() => NativeFs.Sync(f, s.Dir.IsPortable));
        Assert.Throws<ObjectDisposedException>(() => NativeFs.DataSync(f, s.Dir.IsPortable));
    }

    private static string ReadAll(SafeFileHandle file)
    {
        using (file)
        {
            var buffer = new byte[4096];
            int n = RandomAccess.Read(file, buffer, 0);
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
    }
}
