using System.Runtime.Versioning;
using System.Text;
using EioSharp.Backends;
using EioSharp.Fs;
using EioSharp.Mock;
using EioSharp.Tests.Fs;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The shared conformance suite for <c>env.Fs</c> (issue 15), one class run per backend as <see cref="NetConformanceTests"/>:
/// the same file and directory cases on portable, epoll and io_uring (a backend the machine cannot run is skipped with the
/// reason), each in a fresh confined subtree whose sentinel outside must stay untouched. The mock backend takes part where
/// its contract applies: its <c>env.Fs</c> refuses (real file operations complete outside virtual time).
/// </summary>
[SupportedOSPlatform("linux")]
public class FsConformanceTests
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static T InSandbox<T>(EioBackend backend, Func<EioPath, Switch, FsSandbox, Task<T>> body)
    {
        using var s = new FsSandbox();
        var result = NetConformanceTests.RunOn(backend, env =>
            Switch.RunAsync(async sw => await body(await (env.Fs / s.Root).OpenSubtreeAsync(sw), sw, s)));
        Assert.Equal(FsSandbox.SentinelContents, File.ReadAllText(s.Sentinel));
        return result;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void WriteSyncAndReadBackAtOffsets(EioBackend backend)
    {
        string outcome = InSandbox(backend, async (root, sw, _) =>
        {
            var f = root / "data.bin";
            var w = await f.OpenWriteAsync(sw, FileCreate.Exclusive(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            for (int i = 0; i < 100; i++)
            {
                await w.WriteAsync(Encoding.ASCII.GetBytes($"{i:D4}"));
            }

            await w.WriteAtAsync(8, "XXXX"u8.ToArray());
            await w.SyncAsync();
            await w.DataSyncAsync();
            w.Close();

            var r = await f.OpenReadAsync(sw);
            var head = new byte[12];
            await r.ReadExactlyAtAsync(0, head);
            var tail = new byte[4];
            await r.ReadExactlyAtAsync(396, tail);
            long size = (await r.StatAsync()).Size;
            r.Close();
            return $"{Encoding.ASCII.GetString(head)}|{Encoding.ASCII.GetString(tail)}|{size}";
        });
        Assert.Equal("00000001XXXX|0099|400", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void DirectoriesListRenameAndRemove(EioBackend backend)
    {
        string outcome = InSandbox(backend, async (root, sw, _) =>
        {
            var perm = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            await (root / "a" / "b").MakeDirectoriesAsync(perm);
            await (root / "a" / "one.txt").SaveAsync("1", FileCreate.Exclusive(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            await (root / "a" / "one.txt").RenameAsync(root / "a" / "b" / "two.txt");
            var list = string.Join(",", (await (root / "a").ReadDirectoryAsync()).Order()) + "/" +
                       string.Join(",", await (root / "a" / "b").ReadDirectoryAsync());
            string moved = await (root / "a" / "b" / "two.txt").LoadStringAsync();
            await (root / "a" / "b" / "two.txt").UnlinkAsync();
            await (root / "a" / "b").RemoveDirectoryAsync();
            bool gone = !await (root / "a" / "b").ExistsAsync();
            return $"{list} {moved} {gone}";
        });
        Assert.Equal("b/two.txt 1 True", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void EscapesFromTheSubtreeAreRefused(EioBackend backend)
    {
        string outcome = InSandbox(backend, async (root, sw, s) =>
        {
            var log = new List<string>();
            s.MakeDir("a");
            s.Link("out", s.Outside);
            foreach (string escape in new[] { "../outside/sentinel", "a/../../outside/sentinel", s.Sentinel, "out/sentinel" })
            {
                var e = await Record.ExceptionAsync(() => (root / escape).SaveAsync("pwned", FileCreate.OrTruncate(UnixFileMode.UserRead | UnixFileMode.UserWrite)));
                log.Add(e is FsPermissionException ? "refused" : e?.GetType().Name ?? "allowed");

                // Opening (IORING_OP_OPENAT2 on io_uring) is refused the same way, for writing and for reading.
                e = await Record.ExceptionAsync(() => (root / escape).OpenWriteAsync(sw, FileCreate.OrTruncate(UnixFileMode.UserRead | UnixFileMode.UserWrite)));
                log.Add(e is FsPermissionException ? "refused" : e?.GetType().Name ?? "allowed");
                e = await Record.ExceptionAsync(() => (root / escape).OpenReadAsync(sw));
                log.Add(e is FsPermissionException ? "refused" : e?.GetType().Name ?? "allowed");
            }

            return string.Join(",", log);
        });
        Assert.Equal(string.Join(",", Enumerable.Repeat("refused", 12)), outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void MissingFilesAndClosedFilesFailAsDocumented(EioBackend backend)
    {
        string outcome = InSandbox(backend, async (root, sw, _) =>
        {
            var missing = await Record.ExceptionAsync(() => (root / "nope").LoadStringAsync());
            await (root / "f").SaveAsync("x", FileCreate.Exclusive(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            var r = await (root / "f").OpenReadAsync(sw);
            r.Close();
            var closed = await Record.ExceptionAsync(async () => await r.ReadAsync(new byte[1]));
            var openMissing = await Record.ExceptionAsync(() => (root / "nope").OpenReadAsync(sw));
            var openInMissingDir = await Record.ExceptionAsync(() => (root / "no" / "f").OpenReadAsync(sw));
            var exists = await Record.ExceptionAsync(() => (root / "f").OpenWriteAsync(sw, FileCreate.Exclusive(UnixFileMode.UserRead)));
            await (root / "d").MakeDirectoryAsync(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            // Linux opens a directory for reading and fails the read with EISDIR; the portable layer (.NET's file APIs, what
            // macOS and Windows use) refuses already at the open, with the same error.
            var readDir = await Record.ExceptionAsync(async () =>
            {
                var dir = await (root / "d").OpenReadAsync(sw);
                await dir.ReadAsync(new byte[1]);
            });
            return $"{missing?.GetType().Name} {closed?.GetType().Name} {openMissing?.GetType().Name} {openInMissingDir?.GetType().Name} " +
                   $"{exists?.GetType().Name}:{FsErrors.IsAlreadyExists(exists!)} {readDir?.GetType().Name}:{readDir?.HResult}";
        });
        Assert.Equal(
            "FileNotFoundException ObjectDisposedException FileNotFoundException DirectoryNotFoundException IOException:True IOException:21", outcome);
    }

    [Fact]
    public void TheMockBackendRefusesTheFileSystem()
    {
        // The mock's contract (MockMain): env.Fs and env.Cwd throw, since real file operations would complete on other
        // threads, outside virtual time.
        string outcome = MockMain.Run(env => Task.FromResult(
            $"{Record.Exception(() => env.Fs)?.GetType().Name} {Record.Exception(() => env.Cwd)?.GetType().Name}"));
        Assert.Equal("NotSupportedException NotSupportedException", outcome);
    }
}
