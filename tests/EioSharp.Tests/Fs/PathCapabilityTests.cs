using System.Runtime.Versioning;
using EioSharp.Fs;

namespace EioSharp.Tests.Fs;

/// <summary>S28 through the public API: escapes from <c>OpenSubtreeAsync</c> subtrees and from <c>env.Cwd</c> are refused.</summary>
[SupportedOSPlatform("linux")]
public sealed class PathCapabilityTests
{
    private static readonly UnixFileMode Perm644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static readonly UnixFileMode Perm755 = Perm644 | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    public static TheoryData<string, string> EscapeTable()
    {
        var data = new TheoryData<string, string>();
        foreach (var root in new[] { "subtree", "cwd" })
        {
            foreach (var c in new[] { "dotdot", "a/../..", "absolute", "symlink out (absolute)", "symlink out (relative)", "symlink loop", "symlinked parent" })
            {
                data.Add(root, c);
            }
        }

        return data;
    }

    /// <summary>
    /// Sets up the escape case in <paramref name="scratch"/> (a directory inside the confined root) and returns the
    /// path, relative to the confined root, that designates the sandbox's outside directory (or loops).
    /// </summary>
    private static string SetUpEscape(FsSandbox s, string caseName, string rootDir, string scratch, string scratchPrefix)
    {
        Directory.CreateDirectory(Path.Combine(scratch, "a"));
        Directory.CreateDirectory(Path.Combine(scratch, "sub"));
        string climb = Path.GetRelativePath(rootDir, s.Outside);
        switch (caseName)
        {
            case "dotdot":
                return climb;
            case "a/../..":
                return scratchPrefix + "a/../" + (scratchPrefix.Length == 0 ? "" : "../") + climb;
            case "absolute":
                return s.Outside;
            case "symlink out (absolute)":
                File.CreateSymbolicLink(Path.Combine(scratch, "abs"), s.Outside);
                return scratchPrefix + "abs";
            case "symlink out (relative)":
                File.CreateSymbolicLink(Path.Combine(scratch, "rel"), Path.GetRelativePath(scratch, s.Outside));
                return scratchPrefix + "rel";
            case "symlink loop":
                File.CreateSymbolicLink(Path.Combine(scratch, "loop1"), "loop2");
                File.CreateSymbolicLink(Path.Combine(scratch, "loop2"), "loop1");
                return scratchPrefix + "loop1";
            case "symlinked parent":
                File.CreateSymbolicLink(Path.Combine(scratch, "sub", "deep"), Path.GetRelativePath(Path.Combine(scratch, "sub"), s.Outside));
                return scratchPrefix + "sub/deep";
            default:
                throw new ArgumentException(caseName);
        }
    }

    [Theory]
    [MemberData(nameof(EscapeTable))]
    public void S28_EscapesAreRefusedAndTouchNothingOutside(string rootKind, string caseName)
    {
        using var s = new FsSandbox();
        string cwd = Environment.CurrentDirectory;
        string? cwdScratch = rootKind == "cwd" ? Path.Combine(cwd, "eiosharp-cwd-" + Guid.NewGuid().ToString("N")) : null;
        try
        {
            string rootDir = cwdScratch is null ? s.Root : cwd;
            string scratch = cwdScratch ?? s.Root;
            string scratchPrefix = cwdScratch is null ? "" : Path.GetFileName(cwdScratch) + "/";
            Directory.CreateDirectory(scratch);
            string escape = SetUpEscape(s, caseName, rootDir, scratch, scratchPrefix);
            File.WriteAllText(Path.Combine(scratch, "inside.txt"), "inside");
            string before = s.SnapshotOutside();

            EioMain.Run(env => Switch.RunAsync(async sw =>
            {
                var root = cwdScratch is null ? await (env.Fs / s.Root).OpenSubtreeAsync(sw) : env.Cwd;
                var b = root / escape;
                var inside = root / (scratchPrefix + "inside.txt");
                var operations = new (string Name, Func<Task> Run)[]
                {
                    ("load", () => (b / "sentinel").LoadAsync()),
                    ("load string", () => (b / "sentinel").LoadStringAsync(100)),
                    ("open read", async () => (await (b / "sentinel").OpenReadAsync(sw)).Close()),
                    ("open write or-truncate", async () => (await (b / "sentinel").OpenWriteAsync(sw, FileCreate.OrTruncate(Perm644))).Close()),
                    ("open write never append", async () => (await (b / "sentinel").OpenWriteAsync(sw, FileCreate.Never, append: true)).Close()),
                    ("open write exclusive", async () => (await (b / "new").OpenWriteAsync(sw, FileCreate.Exclusive(Perm644))).Close()),
                    ("save new", () => (b / "new").SaveAsync("x", FileCreate.IfMissing(Perm644))),
                    ("save over", () => (b / "sentinel").SaveAsync("pwned", FileCreate.OrTruncate(Perm644))),
                    ("stat", () => (b / "sentinel").StatAsync()),
                    ("stat nofollow", () => (b / "sentinel").StatAsync(followSymlinks: false)),
                    ("exists", () => (b / "sentinel").ExistsAsync()),
                    ("exists missing", () => (b / "new").ExistsAsync()),
                    ("is directory", () => b.IsDirectoryAsync()),
                    ("read dir", () => b.ReadDirectoryAsync()),
                    ("open subtree", async () => (await b.OpenSubtreeAsync(sw)).Close()),
                    ("mkdir", () => (b / "new").MakeDirectoryAsync(Perm755)),
                    ("mkdirs", () => (b / "new" / "x" / "y").MakeDirectoriesAsync(Perm755)),
                    ("unlink", () => (b / "sentinel").UnlinkAsync()),
                    ("rmdir", () => (b / "new").RemoveDirectoryAsync()),
                    ("rename in", () => (b / "sentinel").RenameAsync(root / (scratchPrefix + "stolen"))),
                    ("rename out", () => inside.RenameAsync(b / "planted")),
                    ("rename in, blocking", () => { (b / "sentinel").Rename(root / (scratchPrefix + "stolen")); return Task.CompletedTask; }),
                    ("rename out, blocking", () => { inside.Rename(b / "planted"); return Task.CompletedTask; }),
                    ("sync directory", () => b.SyncDirectoryAsync()),
                    ("sync directory, blocking", () => { b.SyncDirectory(); return Task.CompletedTask; }),
                    ("symlink", () => (b / "lnk").SymLinkAsync("x")),
                    ("readlink", () => (b / "sentinel").ReadLinkAsync()),
                    ("unlink missing ok", () => (b / "sentinel").UnlinkAsync(missingOk: true)),
                    ("rmdir missing ok", () => (b / "new").RemoveDirectoryAsync(missingOk: true)),
                    ("rmtree", () => (b / "sentinel").RemoveTreeAsync()),
                    ("rmtree missing ok", () => (b / "new").RemoveTreeAsync(missingOk: true)),
                    ("read dir entries", () => b.ReadDirectoryEntriesAsync()),
                    ("chmod", () => (b / "sentinel").ChangeModeAsync(UnixFileMode.UserRead)),
                    ("chown", () => (b / "sentinel").ChangeOwnerAsync(-1, -1)),
                    ("chown nofollow", () => (b / "sentinel").ChangeOwnerAsync(-1, -1, followSymlinks: false)),
                    ("with open in", () => (b / "sentinel").WithOpenReadAsync(f => Task.FromResult(f.Position))),
                    ("with open out", () => (b / "sentinel").WithOpenWriteAsync(FileCreate.Never, f => Task.FromResult(f.Position))),
                    ("with lines", () => (b / "sentinel").WithLinesAsync(async lines => { await foreach (var l in lines) { } return 0; })),
                    ("with open dir", () => b.WithOpenSubtreeAsync(d => Task.FromResult(0))),
                };

                foreach (var (name, run) in operations)
                {
                    var ex = await Record.ExceptionAsync(run);
                    Assert.True(ex is FsPermissionException, $"{rootKind} / {caseName} / {name}: expected FsPermissionException, got {ex?.GetType().Name ?? "success"}: {ex?.Message}");
                    Assert.Equal(before, s.SnapshotOutside());
                }
            }));

            Assert.Equal(FsSandbox.SentinelContents, File.ReadAllText(s.Sentinel));
            Assert.Equal("inside", File.ReadAllText(Path.Combine(scratch, "inside.txt")));
            Assert.False(File.Exists(Path.Combine(scratch, "stolen")));
        }
        finally
        {
            if (cwdScratch is not null && Directory.Exists(cwdScratch))
            {
                Directory.Delete(cwdScratch, recursive: true);
            }
        }
    }

    [Fact]
    public void S28_SubtreeAllowsDotDotAndSymlinksThatStayInside()
    {
        using var s = new FsSandbox();
        s.MakeDir("a/b");
        s.WriteFile("f.txt", "hello");
        s.Link("a/b/up", "../../f.txt");
        EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            Assert.Equal("hello", await (root / "a/b/../../f.txt").LoadStringAsync());
            Assert.Equal("hello", await (root / "a" / "b" / "up").LoadStringAsync());

            // A subtree of a subtree is confined to itself: the same link now climbs out.
            var b = await (root / "a/b").OpenSubtreeAsync(sw);
            await Assert.ThrowsAsync<FsPermissionException>(() => (b / "up").LoadStringAsync());
            await Assert.ThrowsAsync<FsPermissionException>(() => (b / "../../f.txt").LoadStringAsync());
        }));
    }

    [Fact]
    public void S28_FsIsUnconfinedAndCwdIsConfined()
    {
        using var s = new FsSandbox();
        string climb = Path.GetRelativePath(Environment.CurrentDirectory, s.Sentinel);
        EioMain.Run(async env =>
        {
            Assert.Equal(FsSandbox.SentinelContents, await (env.Fs / s.Sentinel).LoadStringAsync());
            Assert.Equal(FsSandbox.SentinelContents, await (env.Fs / climb).LoadStringAsync());
            await Assert.ThrowsAsync<FsPermissionException>(() => (env.Cwd / s.Sentinel).LoadStringAsync());
            await Assert.ThrowsAsync<FsPermissionException>(() => (env.Cwd / climb).LoadStringAsync());
            Assert.True(await env.Cwd.IsDirectoryAsync());
        });
    }

    [Fact]
    public void PathsJoinLikeEio()
    {
        using var s = new FsSandbox();
        EioMain.Run(async env =>
        {
            Assert.Equal("<fs>", env.Fs.ToString());
            Assert.Equal("<cwd:a/b>", (env.Cwd / "a" / "b").ToString());
            Assert.Equal("a/b", (env.Cwd / "a" / "b").Native);
            Assert.Equal(".", env.Cwd.Native);
            Assert.Equal("a/b", (env.Cwd / "." / "a/b").RelativePath);
            Assert.Equal("/abs", (env.Cwd / "a" / "/abs").RelativePath);
            Assert.Equal("a/", (env.Cwd / "a" / "").RelativePath);
            Assert.Equal("a/b", (env.Cwd / "a/" / "b").RelativePath);
            Assert.Equal("a/b", (env.Cwd / "a").Combine("b").RelativePath);

            await Switch.RunAsync(async sw =>
            {
                var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
                Assert.Equal($"<dir:{s.Root}>", root.ToString());
                Assert.Equal(s.Root + "/x.txt", (root / "x.txt").Native);
                Assert.Equal(s.Root, root.Native);
            });
        });
    }

    [Fact]
    public void MockBackendHasNoFilesystem()
    {
        Mock.MockMain.Run(env =>
        {
            Assert.Throws<NotSupportedException>(() => env.Fs);
            Assert.Throws<NotSupportedException>(() => env.Cwd);
            return Task.CompletedTask;
        });
    }
}
