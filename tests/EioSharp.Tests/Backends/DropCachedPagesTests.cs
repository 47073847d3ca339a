using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using EioSharp.Backends;
using EioSharp.Fs;
using EioSharp.Tests.Fs;
using Xunit.Abstractions;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="FileWriter.DropCachedPagesAsync"/> on every backend with a filesystem (the mock has none): a written and
/// synced file's pages leave the page cache (counted with <c>mincore</c> over a mapping of the file) and its contents are
/// unchanged; a range is dropped and the rest stays; a closed file throws (§218).
/// </summary>
[SupportedOSPlatform("linux")]
public class DropCachedPagesTests(ITestOutputHelper output)
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static readonly UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const int Length = 4 << 20;

    [DllImport("libc", SetLastError = true)]
    private static extern int mincore(nint address, nuint length, byte[] vector);

    /// <summary>The pages of the file's first <paramref name="length"/> bytes that are in the page cache (a read-only
    /// mapping, never touched, asked with <c>mincore</c>), and those of them in its first half.</summary>
    private static (int All, int FirstHalf) Resident(string path, int length)
    {
        int page = Environment.SystemPageSize;
        using var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        var vector = new byte[(length + page - 1) / page];
        nint at = view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (nint)view.PointerOffset;
        Assert.Equal(0, mincore(at, (nuint)length, vector));
        int all = vector.Count(v => (v & 1) != 0);
        int firstHalf = vector.Take(vector.Length / 2).Count(v => (v & 1) != 0);
        return (all, firstHalf);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void A_synced_files_pages_leave_the_page_cache_and_its_contents_stay(EioBackend backend)
    {
        var data = new byte[Length];
        new Random(218).NextBytes(data);
        string? format = null;
        ((int, int) before, bool tookRange, (int, int) afterRange, bool tookAll, (int, int) after, byte[] back, bool threw) =
            FsSandbox.RunOn(backend, async (_, root, s) =>
            {
                format = new DriveInfo(s.Root).DriveFormat;
                (int, int) before = default, afterRange = default, after = default;
                bool tookRange = false, tookAll = false, threw = false;
                await Switch.RunAsync(async sw =>
                {
                    var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                    w.WriteAt(0, data);
                    await w.DataSyncAsync();
                    before = Resident(s.InRoot("log"), Length);
                    tookRange = await w.DropCachedPagesAsync(0, Length / 2); // the first half only
                    afterRange = Resident(s.InRoot("log"), Length);
                    tookAll = await w.DropCachedPagesAsync(0, 0); // 0: to the end
                    after = Resident(s.InRoot("log"), Length);
                    w.Close();
                    try
                    {
                        await w.DropCachedPagesAsync(0, 0);
                    }
                    catch (ObjectDisposedException)
                    {
                        threw = true;
                    }
                });
                return (before, tookRange, afterRange, tookAll, after, File.ReadAllBytes(s.InRoot("log")), threw);
            });

        output.WriteLine($"{backend} ({format}): resident pages (all, first half) before {before}, after the first half's drop {afterRange}, after all {after}");
        Assert.True(tookRange);
        Assert.True(tookAll);
        Assert.True(threw);
        Assert.True(back.AsSpan().SequenceEqual(data));
        Skip.If(format is "tmpfs" or "ramfs", $"the sandbox is on {format}, whose pages are the file: nothing to drop");
        int pages = Length / Environment.SystemPageSize;
        Assert.True(before.Item1 > pages / 2, $"a file just written is mostly cached ({before.Item1} of {pages} pages)");
        Assert.Equal(0, afterRange.Item2); // the first half dropped
        Assert.True(afterRange.Item1 - afterRange.Item2 >= before.Item1 - before.Item2 - 1, "the second half stays");
        Assert.Equal(0, after.Item1);
    }
}
