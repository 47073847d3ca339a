using System.Runtime.Versioning;
using System.Text;
using EioSharp.Fs;

namespace EioSharp.Tests.Fs;

/// <summary>Files and directory operations through <see cref="EioPath"/>, on the real backend in a temporary subtree.</summary>
[SupportedOSPlatform("linux")]
public sealed class FileTests
{
    private static readonly UnixFileMode Perm600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static readonly UnixFileMode Perm644 = Perm600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static readonly UnixFileMode Perm755 = Perm644 | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Runs <paramref name="body"/> on the real backend with a confined subtree of a fresh sandbox.</summary>
    private static void InSandbox(Func<FsSandbox, EioPath, Switch, Task> body)
    {
        using var s = new FsSandbox();
        EioMain.Run(env => Switch.RunAsync(async sw => await body(s, await (env.Fs / s.Root).OpenSubtreeAsync(sw), sw)));
        Assert.Equal(FsSandbox.SentinelContents, File.ReadAllText(s.Sentinel));
    }

    private static async Task<string> ReadAllAsync(FileReader r)
    {
        var sb = new StringBuilder();
        var buffer = new byte[3];
        int n;
        while ((n = await r.ReadAsync(buffer)) > 0)
        {
            sb.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }

        return sb.ToString();
    }

    [Fact]
    public void CreateModes() => InSandbox(async (s, root, sw) =>
    {
        var f = root / "f.txt";
        await Assert.ThrowsAsync<FileNotFoundException>(() => f.OpenWriteAsync(sw, FileCreate.Never));
        await Assert.ThrowsAsync<FileNotFoundException>(() => f.SaveAsync("x", FileCreate.Never));
        Assert.False(await f.ExistsAsync());

        // Exclusive creates with the given permissions.
        await f.SaveAsync("hello world", FileCreate.Exclusive(Perm600));
        Assert.Equal(Perm600, (await f.StatAsync()).Permissions);
        var again = await Assert.ThrowsAsync<IOException>(() => f.SaveAsync("x", FileCreate.Exclusive(Perm600)));
        Assert.True(FsErrors.IsAlreadyExists(again));
        Assert.Equal(FsErrors.AlreadyExistsErrno, again.HResult);

        // IfMissing and Never keep the rest of an existing file (Eio's behaviour); OrTruncate replaces it.
        await f.SaveAsync("HELLO", FileCreate.IfMissing(Perm644));
        Assert.Equal("HELLO world", await f.LoadStringAsync());
        await f.SaveAsync("J", FileCreate.Never);
        Assert.Equal("JELLO world", await f.LoadStringAsync());
        await f.SaveAsync("bye", FileCreate.OrTruncate(Perm644));
        Assert.Equal("bye", await f.LoadStringAsync());
        Assert.Equal(Perm600, (await f.StatAsync()).Permissions);

        await (root / "g.txt").SaveAsync("new", FileCreate.OrTruncate(Perm644));
        Assert.Equal("new", File.ReadAllText(s.InRoot("g.txt")));
        Assert.True(FileCreate.Never == default);
    });

    /// <summary>The blocking forms (for a log appended between rounds, or work already on a system thread) do what the
    /// async forms do, and a durable replacement (write, sync, rename over, sync the directory) leaves the new contents.</summary>
    [Fact]
    public void BlockingFormsAndDurableReplace() => InSandbox(async (s, root, sw) =>
    {
        var log = root / "log";
        var w = await log.OpenWriteAsync(sw, FileCreate.IfMissing(Perm644));
        w.WriteAt(0, "hello world"u8);
        w.WriteAt(5, "_"u8);
        w.Sync();
        w.WriteAt(11, "!"u8); // grows the file: fdatasync makes the new size durable too
        w.DataSync();
        Assert.Equal(12, (await w.StatAsync()).Size);
        w.SetLength(11);
        var buffer = new byte[32];
        Assert.Equal("hello_world", Encoding.UTF8.GetString(buffer, 0, w.ReadAt(0, buffer)));
        Assert.Equal(0, w.ReadAt(100, buffer)); // past the end
        w.SetLength(5);
        Assert.Equal(5, (await w.StatAsync()).Size);
        Assert.Throws<ArgumentOutOfRangeException>(() => w.WriteAt(-1, "x"u8));
        Assert.Throws<ArgumentOutOfRangeException>(() => w.SetLength(-1));

        var temp = root / "log.tmp";
        var t = await temp.OpenWriteAsync(sw, FileCreate.OrTruncate(Perm644));
        t.WriteAt(0, "compacted"u8);
        t.Sync();
        temp.Rename(log); // replaces the old file atomically; both handles stay valid
        root.SyncDirectory();
        await root.SyncDirectoryAsync();
        Assert.Equal("compacted", await log.LoadStringAsync());
        Assert.False(await temp.ExistsAsync());
        Assert.Equal("hello", Encoding.UTF8.GetString(buffer, 0, w.ReadAt(0, buffer))); // the unlinked old file, still open
        Assert.Throws<FileNotFoundException>(() => temp.Rename(log));
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => (root / "missing").SyncDirectoryAsync());

        w.Close();
        Assert.Throws<ObjectDisposedException>(() => w.WriteAt(0, "x"u8));
        Assert.Throws<ObjectDisposedException>(() => w.Sync());
        Assert.Throws<ObjectDisposedException>(() => w.DataSync());
        Assert.Throws<ObjectDisposedException>(() => w.ReadAt(0, buffer));
        Assert.Throws<ObjectDisposedException>(() => w.SetLength(0));
        t.Close();
    });

    /// <summary>Replace (async and blocking) swaps the whole file for the new contents through a synced temporary file:
    /// an existing file is replaced and gets the given permissions (less the umask), no temporary file is left, a symlink at
    /// the name is replaced rather than followed, a failure leaves the old file as it was, and a confined path cannot leave
    /// its directory. Load (blocking) reads what LoadAsync reads.</summary>
    [Fact]
    public void ReplaceIsAtomicAndLeavesNoTemporaryFile() => InSandbox(async (s, root, sw) =>
    {
        var conf = root / "sub" / "kv.conf";
        await (root / "sub").MakeDirectoryAsync(Perm755);
        await conf.SaveAsync("old contents, longer than the new ones", FileCreate.Exclusive(Perm600));
        await conf.ReplaceAsync("new"u8.ToArray(), Perm644);
        Assert.Equal("new", await conf.LoadStringAsync());
        Assert.Equal(["kv.conf"], await (root / "sub").ReadDirectoryAsync());
        var umask = File.GetUnixFileMode(s.InRoot("sub")) ^ Perm755; // the directory was made 0755 less the umask
        Assert.Equal(Perm644 & ~umask, (await conf.StatAsync()).Permissions);

        conf.Replace("blocking"u8, Perm600);
        Assert.Equal("blocking", Encoding.UTF8.GetString(conf.Load()));
        Assert.Equal(Perm600 & ~umask, (await conf.StatAsync()).Permissions);
        await (root / "created").ReplaceAsync("a new file"u8.ToArray(), Perm644); // no old file: created
        Assert.Equal("a new file", await (root / "created").LoadStringAsync());

        // A symlink at the name is replaced by the file (rename), its target is not written.
        await (root / "target").SaveAsync("target", FileCreate.Exclusive(Perm644));
        await (root / "link").SymLinkAsync("target");
        (root / "link").Replace("replaced"u8, Perm644);
        Assert.Equal("target", await (root / "target").LoadStringAsync());
        Assert.Equal(FileKind.RegularFile, (await (root / "link").StatAsync(followSymlinks: false)).Kind);

        // A directory at the name: the rename fails, nothing is left behind.
        await (root / "dir").MakeDirectoryAsync(Perm755);
        await Assert.ThrowsAsync<IOException>(() => (root / "dir").ReplaceAsync("x"u8.ToArray(), Perm644));
        Assert.Equal(FileKind.Directory, (await (root / "dir").StatAsync()).Kind);
        Assert.DoesNotContain(await root.ReadDirectoryAsync(), n => n.Contains(".tmp-", StringComparison.Ordinal));

        // Confinement, a missing parent, and a path naming a directory.
        await Assert.ThrowsAsync<FsPermissionException>(() => (root / "../outside/sentinel").ReplaceAsync("x"u8.ToArray(), Perm644));
        Assert.Throws<FsPermissionException>(() => (root / "../outside/sentinel").Replace("x"u8, Perm644));
        Assert.Throws<FsPermissionException>(() => (root / "../outside/sentinel").Load());
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => (root / "missing" / "f").ReplaceAsync("x"u8.ToArray(), Perm644));
        Assert.Throws<ArgumentException>(() => root.Replace("x"u8, Perm644));
        Assert.Throws<ArgumentException>(() => (root / "sub/").Replace("x"u8, Perm644));
        Assert.Throws<FileNotFoundException>(() => (root / "nothing").Load());
        var tooLarge = Assert.Throws<IOException>(() => conf.Load(maxSize: 3));
        Assert.True(FsErrors.IsFileTooLarge(tooLarge));
        Assert.Equal(["blocking"], new[] { Encoding.UTF8.GetString(conf.Load(maxSize: 8)) });
    });

    [Fact]
    public void AppendWritesAtTheEndWhateverTheOffset() => InSandbox(async (s, root, sw) =>
    {
        var f = root / "log";
        await f.SaveAsync("ab", FileCreate.Exclusive(Perm644));
        await f.SaveAsync("cd", FileCreate.Never, append: true);
        var w = await f.OpenWriteAsync(sw, FileCreate.Never, append: true);
        Assert.True(w.IsAppend);
        await w.WriteAsync("ef"u8.ToArray());
        await w.WriteAtAsync(0, "X"u8.ToArray());
        w.Close();
        Assert.Equal("abcdefX", await f.LoadStringAsync());
    });

    [Fact]
    public void SequentialAndPositionalReadsAndWrites() => InSandbox(async (s, root, sw) =>
    {
        var f = root / "data.bin";
        var w = await f.OpenWriteAsync(sw, FileCreate.Exclusive(Perm644));
        await w.WriteAsync("hello"u8.ToArray());
        await w.WriteAsync(" world"u8.ToArray());
        Assert.Equal(11, w.Position);
        await w.WriteAtAsync(0, "J"u8.ToArray());
        await w.WriteAtAsync(14, "!"u8.ToArray()); // leaves a hole of zeros
        Assert.Equal(11, w.Position);
        Assert.Equal(15, (await w.StatAsync()).Size);

        // The writer is read-write, like Eio's open_out.
        var four = new byte[4];
        await w.ReadExactlyAtAsync(1, four);
        Assert.Equal("ello", Encoding.ASCII.GetString(four));
        await w.SyncAsync();
        await w.DataSyncAsync();
        await w.SetLengthAsync(11);
        Assert.Equal(11, (await w.StatAsync()).Size);
        w.Close();

        var r = await f.OpenReadAsync(sw);
        Assert.Equal("Jello world", await ReadAllAsync(r));
        Assert.Equal(11, r.Position);
        Assert.Equal(0, await r.ReadAsync(new byte[8]));

        var buffer = new byte[5];
        Assert.Equal(5, await r.ReadAtAsync(6, buffer));
        Assert.Equal("world", Encoding.ASCII.GetString(buffer));
        Assert.Equal(2, await r.ReadAtAsync(9, buffer));
        Assert.Equal(0, await r.ReadAtAsync(11, buffer));
        Assert.Equal(0, await r.ReadAtAsync(1000, buffer));
        await Assert.ThrowsAsync<EndOfStreamException>(async () => await r.ReadExactlyAtAsync(8, buffer));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await r.ReadAtAsync(-1, buffer));

        var stat = await r.StatAsync();
        Assert.Equal(FileKind.RegularFile, stat.Kind);
        Assert.Equal(11, stat.Size);
        Assert.Equal(11, (await f.StatAsync()).Size);
    });

    [Fact]
    public void LoadAndSaveRespectMaxSize() => InSandbox(async (s, root, sw) =>
    {
        var f = root / "blob";
        var data = new byte[100];
        Random.Shared.NextBytes(data);
        await f.SaveAsync(data, FileCreate.Exclusive(Perm644));
        Assert.Equal(data, await f.LoadAsync(100));
        Assert.Equal(data, await f.LoadAsync());
        var tooBig = await Assert.ThrowsAsync<IOException>(() => f.LoadAsync(99));
        Assert.True(FsErrors.IsFileTooLarge(tooBig));
        Assert.Contains("blob", tooBig.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => f.LoadAsync(-1));

        var empty = root / "empty";
        await empty.SaveAsync(ReadOnlyMemory<byte>.Empty, FileCreate.Exclusive(Perm644));
        Assert.Empty(await empty.LoadAsync(0));
        await Assert.ThrowsAsync<IOException>(() => f.LoadAsync(0));
        await Assert.ThrowsAsync<FileNotFoundException>(() => (root / "missing").LoadAsync());
        await Assert.ThrowsAsync<IOException>(() => root.LoadAsync());
    });

    [Fact]
    public void LoadReadsFilesThatReportSizeZero()
    {
        // /proc files have st_size 0 but contents: the limit still applies while reading.
        EioMain.Run(async env =>
        {
            var status = env.Fs / "/proc/self/status";
            Assert.Contains("Pid:", await status.LoadStringAsync(1 << 20), StringComparison.Ordinal);
            var ex = await Assert.ThrowsAsync<IOException>(() => status.LoadAsync(10));
            Assert.True(FsErrors.IsFileTooLarge(ex));
        });
    }

    [Fact]
    public void DirectoryOperations() => InSandbox(async (s, root, sw) =>
    {
        await (root / "b").MakeDirectoryAsync(Perm755);
        await (root / "a.txt").SaveAsync("a", FileCreate.Exclusive(Perm644));
        await (root / "c" / "d" / "e").MakeDirectoriesAsync(Perm755);
        Assert.Equal(["a.txt", "b", "c"], await root.ReadDirectoryAsync());
        Assert.Equal(["d"], await (root / "c").ReadDirectoryAsync());
        Assert.True(Directory.Exists(s.InRoot("c/d/e")));

        Assert.True(FsErrors.IsAlreadyExists(await Assert.ThrowsAsync<IOException>(() => (root / "b").MakeDirectoryAsync(Perm755))));
        Assert.True(FsErrors.IsAlreadyExists(await Assert.ThrowsAsync<IOException>(() => (root / "c/d/e").MakeDirectoriesAsync(Perm755))));
        await (root / "c/d/e").MakeDirectoriesAsync(Perm755, existsOk: true);
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => (root / "x/y").MakeDirectoryAsync(Perm755));
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => (root / "a.txt/y").MakeDirectoriesAsync(Perm755));

        Assert.True(await (root / "b").IsDirectoryAsync());
        Assert.False(await (root / "a.txt").IsDirectoryAsync());
        Assert.True(await (root / "a.txt").IsFileAsync());
        Assert.False(await (root / "nope").IsFileAsync());
        Assert.False(await (root / "nope/deeper").ExistsAsync());
        Assert.Equal(FileKind.Directory, (await (root / "c").StatAsync()).Kind);

        // Symlinks: stat follows by default; ExistsAsync(false) sees a dangling link.
        await (root / "link").SymLinkAsync("a.txt");
        await (root / "dangling").SymLinkAsync("nowhere");
        Assert.Equal("a.txt", await (root / "link").ReadLinkAsync());
        Assert.Equal(FileKind.SymbolicLink, (await (root / "link").StatAsync(followSymlinks: false)).Kind);
        Assert.Equal(FileKind.RegularFile, (await (root / "link").StatAsync()).Kind);
        Assert.False(await (root / "dangling").ExistsAsync());
        Assert.True(await (root / "dangling").ExistsAsync(followSymlinks: false));

        // Rename within the subtree and into another capability.
        await (root / "a.txt").RenameAsync(root / "b" / "moved.txt");
        Assert.False(await (root / "a.txt").ExistsAsync());
        Assert.Equal("a", await (root / "b/moved.txt").LoadStringAsync());
        var b = await (root / "b").OpenSubtreeAsync(sw);
        await (b / "moved.txt").RenameAsync(root / "back.txt");
        Assert.Equal("a", File.ReadAllText(s.InRoot("back.txt")));
        await Assert.ThrowsAsync<FileNotFoundException>(() => (root / "a.txt").RenameAsync(root / "z"));

        // Unlink removes the link, not its target; rmdir wants an empty directory.
        await (root / "link").UnlinkAsync();
        Assert.True(await (root / "back.txt").ExistsAsync());
        await Assert.ThrowsAsync<FileNotFoundException>(() => (root / "link").UnlinkAsync());
        await Assert.ThrowsAsync<IOException>(() => (root / "c").UnlinkAsync());
        var notEmpty = await Assert.ThrowsAsync<IOException>(() => (root / "c").RemoveDirectoryAsync());
        Assert.False(notEmpty is FileNotFoundException);
        await (root / "c/d/e").RemoveDirectoryAsync();
        await (root / "c/d").RemoveDirectoryAsync();
        await (root / "c").RemoveDirectoryAsync();
        Assert.Equal(["b", "back.txt", "dangling"], await root.ReadDirectoryAsync());
    });

    // ------------------------------------------------------------------ S29

    [Fact]
    public void S29_CloseIsIdempotentAndRemovesTheHook() => InSandbox(async (s, root, sw) =>
    {
        await (root / "f").SaveAsync("x", FileCreate.Exclusive(Perm644));
        var r = await (root / "f").OpenReadAsync(sw);
        Assert.False(r.IsClosed);
        r.Close();
        Assert.True(r.IsClosed);
        Assert.False(r.Hook!.Remove()); // the early close already removed it
        r.Close();
        Assert.True(r.IsClosed);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await r.ReadAsync(new byte[1]));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => r.StatAsync());
        Assert.Contains("(closed)", r.ToString(), StringComparison.Ordinal);

        var w = await (root / "f").OpenWriteAsync(sw, FileCreate.Never);
        w.Close();
        w.Close();
        Assert.False(w.Hook!.Remove());
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await w.WriteAsync(new byte[1]));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => w.SyncAsync());

        // A closed subtree: idempotent, and later operations are refused.
        var sub = await root.OpenSubtreeAsync(sw);
        sub.Close();
        Assert.False(sub.Directory.Hook!.Remove());
        sub.Close();
        Assert.True(sub.IsClosed);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => (sub / "f").LoadAsync());
        Assert.Equal("x", await (root / "f").LoadStringAsync()); // the parent is unaffected
    });

    [Fact]
    public void S29_SwitchClosesItsFilesAndSubtrees() => InSandbox(async (s, root, outer) =>
    {
        await (root / "f").SaveAsync("x", FileCreate.Exclusive(Perm644));
        FileReader? r = null;
        FileWriter? w = null;
        EioPath? sub = null;
        await Switch.RunAsync(async sw =>
        {
            r = await (root / "f").OpenReadAsync(sw);
            w = await (root / "f").OpenWriteAsync(sw, FileCreate.Never);
            sub = await root.OpenSubtreeAsync(sw);
            Assert.False(r.IsClosed || w.IsClosed || sub.IsClosed);
        });
        Assert.True(r!.IsClosed);
        Assert.True(w!.IsClosed);
        Assert.True(sub!.IsClosed);
        Assert.False(root.IsClosed);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await r.ReadAtAsync(0, new byte[1]));

        // Opening with a finished switch closes the file again at once and throws (S7).
        Switch? finished = null;
        await Switch.RunAsync(sw => { finished = sw; return Task.CompletedTask; });
        await Assert.ThrowsAsync<InvalidOperationException>(() => (root / "f").OpenReadAsync(finished!));
        await Assert.ThrowsAsync<InvalidOperationException>(() => root.OpenSubtreeAsync(finished!));
    });

    [Fact]
    public void S29_CloseDoesNotBreakAReadInFlightOnAnotherFiber() => InSandbox(async (s, root, sw) =>
    {
        var data = new byte[1 << 20];
        Random.Shared.NextBytes(data);
        await (root / "big").SaveAsync(data, FileCreate.Exclusive(Perm644));
        var r = await (root / "big").OpenReadAsync(sw);
        var buffer = new byte[data.Length];
        var read = r.ReadAtAsync(0, buffer).AsTask();
        r.Close();

        // Either the read finished with the data, or it was refused as closed; never a read of a reused descriptor.
        try
        {
            int n = await read;
            Assert.Equal(data.AsSpan(0, n).ToArray(), buffer.AsSpan(0, n).ToArray());
        }
        catch (ObjectDisposedException)
        {
        }
    });

    [Fact]
    public void S29_ClosingEnvRootsDoesNothing()
    {
        EioMain.Run(async env =>
        {
            env.Cwd.Close();
            (env.Fs / "x").Close();
            Assert.False(env.Cwd.IsClosed);
            Assert.True(await env.Cwd.IsDirectoryAsync());
            Assert.True(await (env.Fs / "/").IsDirectoryAsync());
        });
    }

    // ------------------------------------------------------------------ cancellation

    [Fact]
    public void S13_CancelledFiberFileOperationsThrowAtTheirStart() => InSandbox(async (s, root, sw) =>
    {
        await (root / "f").SaveAsync("x", FileCreate.Exclusive(Perm644));
        var w = await (root / "f").OpenWriteAsync(sw, FileCreate.Never);
        var r = await (root / "f").OpenReadAsync(sw);
        var reason = new InvalidOperationException("stop");
        var operations = new (string Name, Func<Task> Run)[]
        {
            ("save", () => (root / "new").SaveAsync("x", FileCreate.IfMissing(Perm644))),
            ("mkdir", () => (root / "newdir").MakeDirectoryAsync(Perm755)),
            ("unlink", () => (root / "f").UnlinkAsync()),
            ("rename", () => (root / "f").RenameAsync(root / "g")),
            ("open write", () => (root / "new").OpenWriteAsync(sw, FileCreate.IfMissing(Perm644))),
            ("open subtree", () => root.OpenSubtreeAsync(sw)),
            ("load", () => (root / "f").LoadAsync()),
            ("stat", () => (root / "f").StatAsync()),
            ("write at", () => w.WriteAtAsync(0, "y"u8.ToArray()).AsTask()),
            ("write", () => w.WriteAsync("y"u8.ToArray()).AsTask()),
            ("set length", () => w.SetLengthAsync(0)),
            ("sync", () => w.SyncAsync()),
            ("read", () => r.ReadAsync(new byte[1]).AsTask()),
            ("read at", () => r.ReadAtAsync(0, new byte[1]).AsTask()),
            ("file stat", () => r.StatAsync()),
        };

        foreach (var (name, run) in operations)
        {
            var ex = await Record.ExceptionAsync(() => Cancel.SubAsync(async c =>
            {
                c.Cancel(reason);
                await run();
            }));
            Assert.True(ex is CancelledException, $"{name}: expected CancelledException, got {ex?.GetType().Name ?? "success"}");
            Assert.Same(reason, ((CancelledException)ex!).Reason);
        }

        // Nothing happened.
        Assert.Equal(["f"], await root.ReadDirectoryAsync());
        Assert.Equal("x", await (root / "f").LoadStringAsync());
        Assert.Equal(0, r.Position);
        Assert.Equal(0, w.Position);
    });
}
