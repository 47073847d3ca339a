using System.Runtime.Versioning;
using EioSharp.Fs;

namespace EioSharp.Tests.Fs;

/// <summary>
/// The filesystem layer chosen by value (issue 15): <see cref="EioOptions.FileSystem"/> belongs to the run, so two runs in
/// one process may differ, and every root, subtree and open file made in a run keeps its layer. The precedence rule
/// (value, then <c>EIOSHARP_FS</c>, then the platform) and the invalid values are in <see cref="NativeFsConformance"/>'s
/// <c>TheLayerIsChosenByValueThenVariableThenPlatform</c> / <c>AnUnknownOrImpossibleChoiceIsAnError</c>.
/// </summary>
[SupportedOSPlatform("linux")]
public class FileSystemChoiceTests
{
    // Every run here is on the portable backend (a specific backend wins over EIOSHARP_BACKEND): on io_uring the file's
    // fstat would be a ring STATX, with inode numbers whatever the layer.

    /// <summary>What one run saw: the layer of each object, and two behaviours that differ between the layers.</summary>
    private sealed record Seen(bool Fs, bool Cwd, bool Subtree, bool Reader, bool Writer, bool HasInode, string Chown);

    private static Task<Seen> ObserveAsync(Stdenv env, string root) => Switch.RunAsync(async sw =>
    {
        var dir = await (env.Fs / root).OpenSubtreeAsync(sw);
        var w = await (dir / "f.txt").OpenWriteAsync(sw, FileCreate.OrTruncate(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        await w.WriteAsync("layer"u8.ToArray());
        await w.SyncAsync();
        var r = await (dir / "f.txt").OpenReadAsync(sw);
        // The portable backend's fstat runs NativeFs.Stat(handle, file.IsPortable): .NET's metadata has no inode numbers.
        bool hasInode = (await r.StatAsync()).Inode != 0;
        string chown;
        try
        {
            await (dir / "f.txt").ChangeOwnerAsync(-1, -1); // no change: allowed natively; the portable layer has no chown
            chown = "done";
        }
        catch (PlatformNotSupportedException)
        {
            chown = "refused";
        }

        return new Seen(env.Fs.Directory.Handle.IsPortable, env.Cwd.Directory.Handle.IsPortable, dir.Directory.Handle.IsPortable,
            r.IsPortable, w.IsPortable, hasInode, chown);
    });

    private static readonly Seen Native = new(false, false, false, false, false, true, "done");
    private static readonly Seen Portable = new(true, true, true, true, true, false, "refused");

    [Fact]
    public void TwoRunsInOneProcessUseEachItsOwnLayer()
    {
        using var s = new FsSandbox();
        Seen Run(EioFileSystem fs) => EioMain.Run(env => ObserveAsync(env, s.Root), new EioOptions { Backend = EioBackend.Portable, FileSystem = fs });

        Assert.Equal(Native, Run(EioFileSystem.Native));
        Assert.Equal(Portable, Run(EioFileSystem.Portable));
        Assert.Equal(Native, Run(EioFileSystem.Native));
    }

    [Fact]
    public async Task TwoConcurrentRunsOnTwoThreadsKeepTheirLayers()
    {
        using var s1 = new FsSandbox();
        using var s2 = new FsSandbox();
        using var bothStarted = new Barrier(2);
        Seen RunOn(EioFileSystem fs, string root) => EioMain.Run(env =>
        {
            bothStarted.SignalAndWait(TimeSpan.FromSeconds(30)); // both runs exist before either looks at its layer
            return ObserveAsync(env, root);
        }, new EioOptions { Backend = EioBackend.Portable, FileSystem = fs });

        var portable = Task.Factory.StartNew(() => RunOn(EioFileSystem.Portable, s1.Root), TaskCreationOptions.LongRunning);
        var native = Task.Factory.StartNew(() => RunOn(EioFileSystem.Native, s2.Root), TaskCreationOptions.LongRunning);
        Assert.Equal(Portable, await portable);
        Assert.Equal(Native, await native);
    }

    [Fact]
    public void AnUnspecifiedLayerIsTheEnvironmentOverrideOrTheNativeDefault()
    {
        // scripts/test.sh runs this class twice: without EIOSHARP_FS (native, Linux's default) and with
        // EIOSHARP_FS=portable, where a run that leaves the choice open must get the portable layer.
        bool overridden = string.Equals(Environment.GetEnvironmentVariable("EIOSHARP_FS")?.Trim(), "portable", StringComparison.OrdinalIgnoreCase);
        using var s = new FsSandbox();
        var expected = overridden ? Portable : Native;
        Assert.Equal(expected, EioMain.Run(env => ObserveAsync(env, s.Root), new EioOptions { Backend = EioBackend.Portable }));
        Assert.Equal(expected, EioMain.Run(env => ObserveAsync(env, s.Root), new EioOptions { Backend = EioBackend.Portable, FileSystem = EioFileSystem.Auto }));
    }

    [Fact]
    public void TheBackendsInternalEntryTakesTheLayerByValue()
    {
        using var s = new FsSandbox();
        Assert.Equal(Portable, EioMain.Run(EioBackend.Portable, env => ObserveAsync(env, s.Root), fileSystem: EioFileSystem.Portable));
        Assert.Equal(Native, EioMain.Run(EioBackend.Portable, env => ObserveAsync(env, s.Root), fileSystem: EioFileSystem.Native));
    }

    [SkippableFact]
    public void AFifoIsAFifoNativelyAndUnknownWithoutALengthOnThePortableLayer()
    {
        using var s = new FsSandbox();
        using (var mk = System.Diagnostics.Process.Start("mkfifo", s.InRoot("fifo")))
        {
            mk.WaitForExit();
            Skip.If(mk.ExitCode != 0, "mkfifo failed");
        }

        // O_RDWR: a FIFO opens without waiting for the other end. Before, the portable fstat threw NotSupportedException
        // (RandomAccess.GetLength of an unseekable handle), so a portable run's first write to a FIFO failed.
        using var portableDir = DirectoryHandle.OpenRoot(s.Root, PathResolution.Portable);
        using (var f = NativeFs.Open(portableDir, "fifo", OpenFlags.ReadWrite))
        {
            var st = NativeFs.Stat(f, portable: true);
            Assert.Equal((FileKind.Unknown, 0L), (st.Kind, st.Size));
        }

        using (var f = NativeFs.Open(s.Dir, "fifo", OpenFlags.ReadWrite))
        {
            Assert.Equal(FileKind.Fifo, NativeFs.Stat(f).Kind);
        }
    }
}
