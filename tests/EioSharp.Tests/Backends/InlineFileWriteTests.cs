using System.Runtime.Versioning;
using EioSharp.Backends;
using EioSharp.Backends.Native;
using EioSharp.Backends.Uring;
using EioSharp.Fs;
using EioSharp.Tests.Fs;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="InlineFileWrites"/> (issue 15, branch h115): on io_uring and epoll a write of at most
/// <see cref="EioBackendOptions.InlineWriteMaxBytes"/> to a regular file is a blocking <c>pwrite</c> on the domain (no io-wq or thread
/// pool hand-off); a device's write, a larger write, and every write on the portable backend keep their old path. In the
/// FdCount collection: alone, so that the process-wide counters and the size limit set here see only this class.
/// </summary>
[Collection("FdCount")]
[SupportedOSPlatform("linux")]
public class InlineFileWriteTests
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static readonly UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static T InSandbox<T>(EioBackend backend, Func<Stdenv, EioPath, FsSandbox, Task<T>> body) => FsSandbox.RunOn(backend, body);

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void SmallWritesOfRegularFilesAreInlineOnTheNativeBackends(EioBackend backend)
    {
        (long small, long large, long ringOps, string contents) = InSandbox(backend, async (_, root, s) =>
        {
            long small = 0, large = 0, ringOps = 0;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                long before = InlineFileWrites.Count, ops = UringFiles.Operations;
                await w.WriteAsync("hello, "u8.ToArray());
                await w.WriteAtAndSyncAsync(7, "inline"u8.ToArray(), dataOnly: true);
                small = InlineFileWrites.Count - before;
                ringOps = UringFiles.Operations - ops; // io_uring: only the fdatasync

                before = InlineFileWrites.Count;
                var big = new byte[EioBackendOptions.Default.InlineWriteMaxBytes + 1];
                Array.Fill(big, (byte)'z');
                await w.WriteAtAsync(13, big);
                await w.WriteAtAndSyncAsync(13 + big.Length, big);
                large = InlineFileWrites.Count - before;
            });
            var bytes = File.ReadAllBytes(s.InRoot("log"));
            return (small, large, ringOps, System.Text.Encoding.ASCII.GetString(bytes, 0, 13) + $" {bytes.Length} {bytes[^1]}");
        });

        Assert.Equal($"hello, inline {13 + (2 * (EioBackendOptions.Default.InlineWriteMaxBytes + 1))} {(int)'z'}", contents);
        Assert.Equal(backend == EioBackend.Portable ? 0 : 2, small);
        Assert.Equal(0, large);
        if (backend == EioBackend.Uring)
        {
            Assert.Equal(1, ringOps);
        }
    }

    /// <summary>A device is not a regular file: a write to one may block for long (a FIFO may wait for a reader; only io_uring
    /// writes FIFOs at all, the other backends' RandomAccess refuses them), so it never blocks the domain.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void WritesToADeviceAreNotInline(EioBackend backend)
    {
        Skip.IfNot(File.Exists("/dev/null"), "needs /dev/null");
        long inline = NetConformanceTests.RunOn(backend, async env =>
        {
            long inline = -1;
            await Switch.RunAsync(async sw =>
            {
                var devNull = await (env.Fs / "/dev/null").OpenWriteAsync(sw, FileCreate.Never);
                long before = InlineFileWrites.Count;
                await devNull.WriteAtAsync(0, "nothing"u8.ToArray());
                await devNull.WriteAsync("more"u8.ToArray());
                inline = InlineFileWrites.Count - before;
            });
            return inline;
        });
        Assert.Equal(0, inline);
    }

    /// <summary>With the limit at 0 (<see cref="EioBackendOptions.InlineWriteMaxBytes"/>, <c>EIOSHARP_INLINE_WRITE_MAX=0</c>)
    /// io_uring links a WRITE to its FSYNC again.</summary>
    [SkippableFact]
    public void WithTheLimitAtZeroIoUringLinksTheWriteToItsSync()
    {
        {
            (long linked, long inline, string contents) = FsSandbox.RunOn(EioBackend.Uring, async (_, root, s) =>
            {
                long linked = UringFiles.LinkedWriteSyncs, inline = InlineFileWrites.Count;
                await Switch.RunAsync(async sw =>
                {
                    var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                    await w.WriteAtAndSyncAsync(0, "linked"u8.ToArray());
                    await w.WriteAtAsync(6, "!"u8.ToArray());
                });
                return (UringFiles.LinkedWriteSyncs - linked, InlineFileWrites.Count - inline, File.ReadAllText(s.InRoot("log")));
            }, tuning: new EioBackendOptions { InlineWriteMaxBytes = 0 });
            Assert.Equal("linked!", contents);
            Assert.Equal(1, linked);
            Assert.Equal(0, inline);
        }
    }
}
