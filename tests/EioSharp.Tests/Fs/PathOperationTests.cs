using System.Runtime.Versioning;
using System.Text;
using EioSharp.Fs;

namespace EioSharp.Tests.Fs;

/// <summary>Eio's remaining <c>Path</c>/<c>File</c> operations (issue 16): rmtree, missing_ok, read_dir with kinds, chmod,
/// chown, with_open_in/out/dir, with_lines, split, File.seek, rename across directories, mkdirs exists_ok.</summary>
[SupportedOSPlatform("linux")]
public sealed class PathOperationTests
{
    private static readonly UnixFileMode Perm644 =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static readonly UnixFileMode Perm755 = Perm644 | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    [Fact]
    public void RemoveTree_removes_a_nested_tree_without_following_symlinks_and_honours_missingOk()
    {
        using var s = new FsSandbox();
        s.MakeDir("t/a/b");
        s.WriteFile("t/a/b/f", "x");
        s.WriteFile("t/g", "y");
        s.Link("t/out", s.Outside); // a link to a directory outside: removed, not followed
        s.Link("t/a/dangling", "nowhere");
        string before = s.SnapshotOutside();
        var r = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            await (root / "t").RemoveTreeAsync();
            bool gone = !await (root / "t").ExistsAsync(followSymlinks: false);
            await (root / "t").RemoveTreeAsync(missingOk: true);
            var missing = await Record.ExceptionAsync(() => (root / "t").RemoveTreeAsync());
            s.WriteFile("single", "z");
            await (root / "single").RemoveTreeAsync();
            return (gone, missing?.GetType().Name, await (root / "single").ExistsAsync());
        }));
        Assert.Equal((true, nameof(FileNotFoundException), false), r);
        Assert.Equal(before, s.SnapshotOutside());
        Assert.True(File.Exists(s.Sentinel));
    }

    [Fact]
    public void Unlink_and_rmdir_with_missingOk_accept_a_missing_name_and_still_fail_on_other_errors()
    {
        using var s = new FsSandbox();
        s.MakeDir("d");
        s.WriteFile("d/f", "x");
        var r = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            await (root / "nothing").UnlinkAsync(missingOk: true);
            await (root / "nothing").RemoveDirectoryAsync(missingOk: true);
            var e1 = await Record.ExceptionAsync(() => (root / "nothing").UnlinkAsync());
            var e2 = await Record.ExceptionAsync(() => (root / "d").RemoveDirectoryAsync(missingOk: true)); // not empty
            await (root / "d/f").UnlinkAsync(missingOk: true);
            await (root / "d").RemoveDirectoryAsync(missingOk: true);
            return $"{e1?.GetType().Name} {e2 is IOException && e2 is not FileNotFoundException} {await (root / "d").ExistsAsync()}";
        }));
        Assert.Equal("FileNotFoundException True False", r);
    }

    [Fact]
    public void ReadDirectoryEntries_reports_kinds_without_following_links()
    {
        using var s = new FsSandbox();
        s.MakeDir("d/sub");
        s.WriteFile("d/file", "x");
        s.Link("d/link", "file");
        var entries = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            return await (root / "d").ReadDirectoryEntriesAsync();
        }));
        Assert.Equal(
            [new DirectoryEntry("file", FileKind.RegularFile), new DirectoryEntry("link", FileKind.SymbolicLink), new DirectoryEntry("sub", FileKind.Directory)],
            entries);
    }

    [Fact]
    public void ChangeMode_and_ChangeOwner_apply_to_the_file_and_a_refused_chown_is_UnauthorizedAccess()
    {
        using var s = new FsSandbox();
        s.WriteFile("f", "x");
        s.Link("l", "f");
        bool portable = false;
        var r = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            await (root / "l").ChangeModeAsync(UnixFileMode.UserRead | UnixFileMode.UserWrite); // through the link
            var mode = (await (root / "f").StatAsync()).Permissions;
            portable = root.Directory.Handle.IsPortable;
            if (portable)
            {
                // The portable layer (macOS, Windows, EIOSHARP_FS=portable) has no chown: refused, as documented (PortableFs).
                await Assert.ThrowsAsync<PlatformNotSupportedException>(() => (root / "f").ChangeOwnerAsync(-1, -1));
                return (mode, refused: "portable: no chown");
            }

            var st = await (root / "f").StatAsync();
            await (root / "f").ChangeOwnerAsync((int)st.Uid, (int)st.Gid); // to itself: always allowed
            await (root / "f").ChangeOwnerAsync(-1, -1);
            string refused = "privileged";
            if (Environment.UserName != "root" && GetUid() != 0)
            {
                var e = await Record.ExceptionAsync(() => (root / "f").ChangeOwnerAsync(0, -1));
                refused = e?.GetType().Name ?? "allowed";
            }
            else
            {
                // As root the kernel allows giving the file away: check it took effect.
                await (root / "f").ChangeOwnerAsync(12345, 23456);
                var after = await (root / "f").StatAsync();
                refused = $"{after.Uid}:{after.Gid}";
            }

            return (mode, refused);
        }));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, r.mode);
        Assert.Contains(r.refused, portable ? ["portable: no chown"] : new[] { "12345:23456", nameof(UnauthorizedAccessException) });
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getuid")]
    private static extern uint GetUid();

    [Fact]
    public void WithOpen_in_out_dir_and_WithLines_close_what_they_opened_also_when_the_body_throws()
    {
        using var s = new FsSandbox();
        s.MakeDir("d");
        var r = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            FileWriter? w = null;
            await (root / "f.txt").WithOpenWriteAsync(FileCreate.IfMissing(Perm644), async f =>
            {
                w = f;
                await f.WriteAsync(Encoding.UTF8.GetBytes("one\r\ntwo\nthree"));
                return 0;
            });
            FileReader? rd = null;
            var e = await Record.ExceptionAsync(() => (root / "f.txt").WithOpenReadAsync<int>(f => { rd = f; throw new InvalidTimeZoneException("boom"); }));
            var lines = await (root / "f.txt").WithLinesAsync(async ls =>
            {
                var all = new List<string>();
                await foreach (var l in ls)
                {
                    all.Add(l);
                }

                return all;
            });
            var names = await (root / "d").WithOpenSubtreeAsync(async d =>
            {
                await (d / "inner").SaveAsync("i", FileCreate.IfMissing(Perm644));
                return await d.ReadDirectoryAsync();
            });
            return $"{w!.IsClosed} {rd!.IsClosed} {e?.Message} [{string.Join(",", lines)}] [{string.Join(",", names)}]";
        }));
        Assert.Equal("True True boom [one,two,three] [inner]", r);
    }

    [Fact]
    public void Split_and_Name_follow_Eio_Path_split()
    {
        EioMain.Run(env =>
        {
            string Show(EioPath p) => p.Split() is { } x ? $"{x.Parent.RelativePath}|{x.Name}" : "none";
            Assert.Equal("none", Show(env.Cwd));
            Assert.Equal("none", Show(env.Fs / "/"));
            Assert.Equal("|foo", Show(env.Cwd / "foo"));
            Assert.Equal("foo|bar", Show(env.Cwd / "foo/bar"));
            Assert.Equal("foo|bar", Show(env.Cwd / "foo/bar/"));
            Assert.Equal("/|foo", Show(env.Fs / "/foo"));
            Assert.Equal("/a|b", Show(env.Fs / "/a//b"));
            Assert.Equal("a|..", Show(env.Cwd / "a/.."));
            Assert.Equal("bar", (env.Cwd / "foo" / "bar").Name);
            Assert.Equal("", env.Cwd.Name);
            return Task.CompletedTask;
        });
    }

    [Fact]
    public void Seek_moves_the_sequential_position_of_readers_and_writers()
    {
        using var s = new FsSandbox();
        var r = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            var w = await (root / "f").OpenWriteAsync(sw, FileCreate.IfMissing(Perm644));
            await w.WriteAsync("0123456789"u8.ToArray());
            Assert.Equal(2, w.Seek(2, SeekOrigin.Begin));
            await w.WriteAsync("ab"u8.ToArray());
            Assert.Equal(8, w.Seek(-2, SeekOrigin.End));
            await w.WriteAsync("XY"u8.ToArray());
            Assert.Throws<IOException>(() => w.Seek(-1, SeekOrigin.Begin));
            var rd = await (root / "f").OpenReadAsync(sw);
            Assert.Equal(6, rd.Seek(6, SeekOrigin.Current));
            var b = new byte[10];
            int n = await rd.ReadAsync(b);
            Assert.Equal(5, rd.Seek(-5, SeekOrigin.Current));
            int m = await rd.ReadAsync(b.AsMemory(n));
            // pread/pwrite at offsets are unaffected by the position
            await w.WriteAtAsync(0, "Z"u8.ToArray());
            var one = new byte[1];
            await rd.ReadAtAsync(0, one);
            return Encoding.ASCII.GetString(b, 0, n + m) + " " + (char)one[0] + " " + Encoding.ASCII.GetString(await (root / "f").LoadAsync());
        }));
        Assert.Equal("67XY567XY Z Z1ab4567XY", r);
    }

    [Fact]
    public void Rename_moves_between_directories_of_one_capability_and_mkdirs_accepts_an_existing_directory()
    {
        using var s = new FsSandbox();
        s.MakeDir("a");
        s.MakeDir("b");
        s.WriteFile("a/x", "moved");
        var r = EioMain.Run(env => Switch.RunAsync(async sw =>
        {
            var root = await (env.Fs / s.Root).OpenSubtreeAsync(sw);
            await (root / "a/x").RenameAsync(root / "b/y");
            await (root / "c/d").MakeDirectoriesAsync(Perm755);
            await (root / "c/d").MakeDirectoriesAsync(Perm755, existsOk: true);
            var again = await Record.ExceptionAsync(() => (root / "c/d").MakeDirectoriesAsync(Perm755));
            return $"{await (root / "b/y").LoadStringAsync()} {await (root / "a/x").ExistsAsync()} {FsErrors.IsAlreadyExists(again!)}";
        }));
        Assert.Equal("moved False True", r);
    }
}
