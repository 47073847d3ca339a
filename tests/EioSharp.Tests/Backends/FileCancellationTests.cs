using System.Runtime.Versioning;
using System.Text;
using EioSharp.Backends;
using EioSharp.Backends.Uring;
using EioSharp.Fs;
using EioSharp.Tests.Fs;

namespace EioSharp.Tests.Backends;

/// <summary>
/// Cancellation of file operations on every backend (issue 15; the network's are in <see cref="NetConformanceTests"/>):
/// a fiber cancelled during a file read, an fsync or an open loses no completion, finds its buffer untouched once the
/// cancelled read has returned, and leaks no descriptor over 10,000 cancelled operations. Also that io_uring does the file
/// I/O on its ring, and falls back per operation when the kernel lacks an opcode. In the FdCount collection: alone, so that
/// the /proc/self/fd counts and the process-wide opcode mask see only this class.
/// </summary>
[Collection("FdCount")]
[SupportedOSPlatform("linux")]
public class FileCancellationTests
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private const int FileSize = 1 << 20;

    private static T InSandbox<T>(EioBackend backend, Func<Stdenv, EioPath, FsSandbox, Task<T>> body) =>
        FsSandbox.RunOn(backend, body, s =>
        {
            var data = new byte[FileSize];
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = (byte)('a' + (i % 26));
            }

            File.WriteAllBytes(s.InRoot("data"), data);
        });

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void CancelledFileReadsLoseNoDataAndWriteNoBufferAfterReturning(EioBackend backend)
    {
        string outcome = InSandbox(backend, async (env, root, _) =>
        {
            int completed = 0, cancelled = 0, bad = 0;
            await Switch.RunAsync(async sw =>
            {
                var file = await (root / "data").OpenReadAsync(sw);
                for (int i = 0; i < 500; i++)
                {
                    var buf = new byte[64 << 10];
                    long offset = (i * 4096L) % (FileSize - buf.Length);
                    int n = -1;
                    try
                    {
                        await Switch.RunAsync(async inner =>
                        {
                            Fiber.Fork(inner, async () => n = await file.ReadAtAsync(offset, buf));
                            if (i % 2 == 0)
                            {
                                await Fiber.YieldAsync();
                            }

                            inner.Fail(new OperationCanceledException("stop"));
                        });
                    }
                    catch (OperationCanceledException)
                    {
                    }

                    if (n >= 0)
                    {
                        // The read won the race: its result is kept (no completion lost) and the bytes are the file's.
                        completed++;
                        for (int k = 0; k < n; k++)
                        {
                            if (buf[k] != (byte)('a' + ((offset + k) % 26)))
                            {
                                bad++;
                                break;
                            }
                        }
                    }
                    else
                    {
                        // Cancelled: once it has returned, nothing may write into the buffer any more.
                        cancelled++;
                        Array.Fill(buf, (byte)'#');
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(i % 50 == 0 ? 2 : 0));
                        await Fiber.YieldAsync();
                        if (buf.Any(b => b != (byte)'#'))
                        {
                            bad++;
                        }
                    }
                }

                // The file is still usable.
                var tail = new byte[3];
                await file.ReadExactlyAtAsync(26, tail);
                Assert.Equal("abc", Encoding.ASCII.GetString(tail));
            });
            return $"{completed + cancelled} bad={bad}";
        });
        Assert.Equal("500 bad=0", outcome);
    }

    /// <summary>
    /// io_uring only: a read of a regular file in the page cache completes at submission (the test above then sees no
    /// cancelled read on the ring), so here the reads wait on a FIFO: 50 reads cancelled in flight (1 ms time limits,
    /// IORING_OP_ASYNC_CANCEL) must leave their buffer untouched after returning and eat none of the data written after.
    /// The other backends are left out on purpose: there a started file read is not interrupted (it would wait for data).
    /// </summary>
    [SkippableFact]
    public void IoUringCancelsFileReadsInFlightWithoutWritingTheirBuffer()
    {
        string outcome = InSandbox(EioBackend.Uring, async (env, root, s) =>
        {
            using (var mk = System.Diagnostics.Process.Start("mkfifo", s.InRoot("fifo")))
            {
                mk.WaitForExit();
                Skip.If(mk.ExitCode != 0, "mkfifo failed");
            }

            string result = "";
            await Switch.RunAsync(async sw =>
            {
                // O_RDWR first (does not wait for a reader), then O_RDONLY (a writer exists, so it does not wait either).
                var writer = await (root / "fifo").OpenWriteAsync(sw, FileCreate.Never);
                var reader = await (root / "fifo").OpenReadAsync(sw);
                long before = UringFiles.Operations;
                result = await NetConformanceTests.CancelledReceivesLoseNothingAsync(
                    env, m => reader.ReadAtAsync(0, m), d => writer.WriteAtAsync(0, d));
                Assert.True(UringFiles.Operations - before >= 52, "the reads and the write went through the ring");
            });
            return result;
        });
        Assert.Equal("payload!|########", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void TenThousandCancelledFileOperationsLeakNoFileDescriptor(EioBackend backend)
    {
        Skip.IfNot(Directory.Exists("/proc/self/fd"), "needs /proc/self/fd");
        (int before, int after) = InSandbox(backend, async (env, root, _) =>
        {
            async Task CancelManyAsync(int count)
            {
                await Switch.RunAsync(async sw =>
                {
                    var reader = await (root / "data").OpenReadAsync(sw);
                    var writer = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(UnixFileMode.UserRead | UnixFileMode.UserWrite));
                    await writer.WriteAsync("x"u8.ToArray());
                    var buf = new byte[4096];
                    for (int i = 0; i < count; i++)
                    {
                        try
                        {
                            await Switch.RunAsync(async inner =>
                            {
                                Fiber.Fork(inner, async () => await reader.ReadAtAsync(i * 16 % FileSize, buf));
                                Fiber.Fork(inner, async () => await (i % 2 == 0 ? writer.SyncAsync() : writer.DataSyncAsync()));
                                if (i % 10 == 0)
                                {
                                    // An open that completes anyway hands its descriptor to the inner switch, which closes it.
                                    Fiber.Fork(inner, async () =>
                                    {
                                        await (root / "data").OpenReadAsync(inner);
                                    });
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

                    // Still working files afterwards.
                    await writer.WriteAtAsync(1, "y"u8.ToArray());
                    await writer.SyncAsync();
                    Assert.Equal(2, (await writer.StatAsync()).Size);
                    Assert.Equal(4, await reader.ReadAtAsync(0, buf.AsMemory(0, 4)));
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

    private static async Task<string> WriteSyncReadStatAsync(EioPath root)
    {
        string result = "";
        await Switch.RunAsync(async sw =>
        {
            var w = await (root / "ring.bin").OpenWriteAsync(sw, FileCreate.OrTruncate(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            await w.WriteAsync("hello, "u8.ToArray());
            await w.WriteAsync("ring"u8.ToArray());
            await w.DataSyncAsync();
            await w.SyncAsync();
            var r = await (root / "ring.bin").OpenReadAsync(sw);
            var b = new byte[11];
            await r.ReadExactlyAtAsync(0, b);
            result = $"{Encoding.ASCII.GetString(b)} {(await r.StatAsync()).Size}";
        });
        return result;
    }

    private static readonly byte[] FileOpcodes =
        [Sys.IORING_OP_READ, Sys.IORING_OP_WRITE, Sys.IORING_OP_FSYNC, Sys.IORING_OP_STATX, Sys.IORING_OP_OPENAT2, Sys.IORING_OP_CLOSE];

    [SkippableFact]
    public void IoUringDoesFileIoOnTheRingAndFallsBackPerOpcode()
    {
        bool portable = false;
        (string onRing, long ringOps, string fallback, long fallbackOps, string readOnly, long readOnlyOps) = InSandbox(EioBackend.Uring, async (_, root, _) =>
        {
            portable = root.Directory.Handle.IsPortable;
            long before = UringFiles.Operations;
            string onRing = await WriteSyncReadStatAsync(root);
            long ringOps = UringFiles.Operations - before;

            // As if the kernel's probe lacked every file opcode: everything falls back to the portable code.
            foreach (byte op in FileOpcodes)
            {
                UringPoller.MaskOpcodeForTests(op, true);
            }

            string fallback;
            long fallbackOps;
            string readOnly;
            long readOnlyOps;
            try
            {
                before = UringFiles.Operations;
                fallback = await WriteSyncReadStatAsync(root);
                fallbackOps = UringFiles.Operations - before;

                // Only READ available: only the read goes to the ring.
                UringPoller.MaskOpcodeForTests(Sys.IORING_OP_READ, false);
                before = UringFiles.Operations;
                readOnly = await WriteSyncReadStatAsync(root);
                readOnlyOps = UringFiles.Operations - before;
            }
            finally
            {
                foreach (byte op in FileOpcodes)
                {
                    UringPoller.MaskOpcodeForTests(op, false);
                }
            }

            return (onRing, ringOps, fallback, fallbackOps, readOnly, readOnlyOps);
        });

        Assert.Equal("hello, ring 11", onRing);
        // 2 opens, 2 syncs, 1 read, 1 statx, 2 closes (when the switch ends); the 2 small writes of the regular file are
        // blocking pwrites on the domain (InlineFileWrites, InlineFileWriteTests); the portable filesystem layer
        // (EIOSHARP_FS=portable) opens through .NET, never through the ring's openat2.
        Assert.Equal(portable ? 6 : 8, ringOps);
        Assert.Equal("hello, ring 11", fallback);
        Assert.Equal(0, fallbackOps);
        Assert.Equal("hello, ring 11", readOnly);
        Assert.Equal(1, readOnlyOps);
    }
}
