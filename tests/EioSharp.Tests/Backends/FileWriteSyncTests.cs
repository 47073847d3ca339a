using System.Runtime.Versioning;
using EioSharp.Backends;
using EioSharp.Backends.Native;
using EioSharp.Backends.Uring;
using EioSharp.Fs;
using EioSharp.Tests.Fs;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="FileWriter.WriteAtAndSyncAsync"/> on every backend (issue 15): on io_uring an IORING_OP_WRITE linked
/// (IOSQE_IO_LINK) to an IORING_OP_FSYNC, elsewhere one job on the blocking offload. The data lands where asked, an
/// error of the write (the link then cancels the fsync in the kernel) is reported as the write's own error, and a fiber
/// cancelled during the pair returns only once the kernel is done with its buffer, leaking no descriptor over 10,000
/// cancelled pairs. In the FdCount collection: alone, so that the /proc/self/fd counts see only this class.
/// </summary>
[Collection("FdCount")]
[SupportedOSPlatform("linux")]
public class FileWriteSyncTests
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static readonly UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static T InSandbox<T>(EioBackend backend, Func<Stdenv, EioPath, FsSandbox, Task<T>> body) => FsSandbox.RunOn(backend, body);

    private static byte[] Block(int i, int size) => Enumerable.Repeat((byte)('a' + (i % 26)), size).ToArray();

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void WriteAtAndSyncWritesEveryBlockWhereAsked(EioBackend backend)
    {
        long linkedBefore = UringFiles.LinkedWriteSyncs, inlineBefore = InlineFileWrites.Count;
        (byte[] contents, long size) = InSandbox(backend, async (_, root, s) =>
        {
            long size = 0;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                for (int i = 0; i < 40; i++)
                {
                    // Blocks of 1..40 KiB back to back (a large one is written by the kernel in one go or in parts:
                    // a short write breaks the link and the rest is written and synced again), fsync and fdatasync mixed.
                    int len = (i + 1) * 1024;
                    await w.WriteAtAndSyncAsync(size, Block(i, len), dataOnly: i % 2 == 1);
                    size += len;
                }

                await w.WriteAtAndSyncAsync(size, ReadOnlyMemory<byte>.Empty); // nothing to write: only the sync
                Assert.Equal(size, (await w.StatAsync()).Size);
            });
            return (File.ReadAllBytes(s.InRoot("log")), size);
        });

        Assert.Equal(size, contents.Length);
        long offset = 0;
        for (int i = 0; i < 40; i++)
        {
            int len = (i + 1) * 1024;
            Assert.True(contents.AsSpan((int)offset, len).SequenceEqual(Block(i, len)), $"block {i} at {offset}");
            offset += len;
        }

        if (backend != EioBackend.Portable)
        {
            // io_uring and epoll: every block (at most 40 KiB) was a blocking pwrite on the domain (InlineFileWrites), then
            // the sync; io_uring links a WRITE to its FSYNC only for larger writes (InlineFileWriteTests).
            Assert.True(InlineFileWrites.Count - inlineBefore >= 40, $"{InlineFileWrites.Count - inlineBefore} inline writes");
        }

        if (backend == EioBackend.Uring)
        {
            Assert.Equal(0, UringFiles.LinkedWriteSyncs - linkedBefore);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void WriteAtAndSyncInAppendModeAppends(EioBackend backend)
    {
        string contents = InSandbox(backend, async (_, root, s) =>
        {
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "append").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw), append: true);
                await w.WriteAtAndSyncAsync(0, "first,"u8.ToArray());
                await w.WriteAtAndSyncAsync(0, "second"u8.ToArray(), dataOnly: true);
            });
            return File.ReadAllText(s.InRoot("append"));
        });
        Assert.Equal("first,second", contents);
    }

    /// <summary>/dev/full fails every write with ENOSPC: on io_uring the linked fsync is then cancelled by the kernel, and
    /// the caller sees the write's error, not the cancellation of the fsync.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void AFailedWriteReportsItsOwnError(EioBackend backend)
    {
        Skip.IfNot(File.Exists("/dev/full"), "needs /dev/full");
        int errno = NetConformanceTests.RunOn(backend, async env =>
        {
            int result = 0;
            await Switch.RunAsync(async sw =>
            {
                var full = await (env.Fs / "/dev/full").OpenWriteAsync(sw, FileCreate.Never);
                var e = await Assert.ThrowsAnyAsync<IOException>(async () => await full.WriteAtAndSyncAsync(0, new byte[100]));
                result = e.HResult & 0xFFFF;
            });
            return result;
        });
        Assert.Equal(28, errno); // ENOSPC
    }

    /// <summary>
    /// 2,000 pairs cancelled at random points (before submission, in flight, after the write): each returns either done or
    /// cancelled, and once it has returned its buffer is overwritten with '#'. The file must then hold no '#': the kernel
    /// read no buffer after its operation returned. Blocks hold only their own letter or zeros (not written).
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void CancelledWriteSyncsReadNoBufferAfterReturning(EioBackend backend)
    {
        const int Count = 2000, Size = 4096;
        (int done, int cancelled, byte[] contents) = InSandbox(backend, async (env, root, s) =>
        {
            int done = 0, cancelled = 0;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                for (int i = 0; i < Count; i++)
                {
                    var buf = Block(i, Size);
                    bool finished = false;
                    try
                    {
                        await Switch.RunAsync(async inner =>
                        {
                            Fiber.Fork(inner, async () =>
                            {
                                await w.WriteAtAndSyncAsync((long)i * Size, buf, dataOnly: i % 2 == 0);
                                finished = true;
                            });
                            if (i % 3 != 0)
                            {
                                await Fiber.YieldAsync();
                            }

                            if (i % 3 == 2)
                            {
                                await Fiber.YieldAsync();
                            }

                            inner.Fail(new OperationCanceledException("stop"));
                        });
                    }
                    catch (OperationCanceledException)
                    {
                    }

                    if (finished)
                    {
                        done++;
                    }
                    else
                    {
                        cancelled++;
                    }

                    Array.Fill(buf, (byte)'#');
                    if (i % 100 == 0)
                    {
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
                    }
                }

                await w.SyncAsync(); // still a working file
            });
            return (done, cancelled, File.ReadAllBytes(s.InRoot("log")));
        });

        Assert.Equal(Count, done + cancelled);
        Assert.DoesNotContain((byte)'#', contents);
        for (int i = 0; i < contents.Length / Size; i++)
        {
            var block = contents.AsSpan(i * Size, Size);
            // Each byte is a hole's zero (not written) or the block's own letter.
            Assert.True(block.IndexOfAnyExcept((byte)0, (byte)('a' + (i % 26))) < 0, $"block {i}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void TenThousandCancelledWriteSyncsLeakNoFileDescriptor(EioBackend backend)
    {
        Skip.IfNot(Directory.Exists("/proc/self/fd"), "needs /proc/self/fd");
        (int before, int after) = InSandbox(backend, async (_, root, _) =>
        {
            async Task CancelManyAsync(int count)
            {
                await Switch.RunAsync(async sw =>
                {
                    var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                    var buf = new byte[512];
                    for (int i = 0; i < count; i++)
                    {
                        try
                        {
                            await Switch.RunAsync(async inner =>
                            {
                                Fiber.Fork(inner, async () => await w.WriteAtAndSyncAsync(i % 64 * 512L, buf, dataOnly: i % 2 == 0));
                                if (i % 10 == 0)
                                {
                                    // An open that completes anyway hands its descriptor to the inner switch, which closes it.
                                    Fiber.Fork(inner, async () => await (root / "log").OpenReadAsync(inner));
                                }

                                if (i % 3 == 0)
                                {
                                    await Fiber.YieldAsync();
                                }

                                inner.Fail(new OperationCanceledException("stop"));
                            });
                        }
                        catch (OperationCanceledException)
                        {
                        }
                    }

                    await w.WriteAtAndSyncAsync(0, "ok"u8.ToArray()); // still a working file
                });
            }

            await CancelManyAsync(100); // warm-up: lazily opened runtime descriptors
            int fdsBefore = Directory.GetFiles("/proc/self/fd").Length;
            await CancelManyAsync(10_000);
            int fdsAfter = Directory.GetFiles("/proc/self/fd").Length;
            return (fdsBefore, fdsAfter);
        });

        // Exact equality is not promised (the runtime may open a descriptor of its own meanwhile); a leak per operation
        // would show as hundreds or thousands.
        Assert.InRange(after, 0, before + 8);
    }
}
