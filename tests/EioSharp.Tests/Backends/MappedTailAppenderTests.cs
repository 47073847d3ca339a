using System.Runtime.Versioning;
using EioSharp.Backends;
using EioSharp.Fs;
using EioSharp.Tests.Fs;
using Xunit.Abstractions;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="FileWriter.OpenMappedTail"/> on every backend with a filesystem (the mock has none): appends stored into a
/// <c>fallocate</c>d <c>MAP_SHARED</c> mapping of the file's tail, chunk after chunk, read back through another descriptor
/// (in the page cache at once, and after <c>fdatasync</c>), the file cut to its logical length at close (the appender's
/// or the writer's), <see cref="MappedTailAppender.Truncate"/>, the <c>pwrite</c> fallback (chunk 0, append mode), and a
/// full disk found at a chunk's reservation as ENOSPC (on a small tmpfs, as root).
/// </summary>
[SupportedOSPlatform("linux")]
public class MappedTailAppenderTests(ITestOutputHelper output)
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static readonly UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const int Chunk = 64 * 1024;

    /// <summary>Record <paramref name="i"/>: 1..4,000 bytes of one letter, ending in '\n' (as a log's record).</summary>
    private static byte[] Record(int i)
    {
        int len = 1 + (i * 7919 % 4000);
        var r = Enumerable.Repeat((byte)('a' + (i % 26)), len).ToArray();
        r[^1] = (byte)'\n';
        return r;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void AppendsAcrossChunksReadBackAndCloseToTheLogicalLength(EioBackend backend)
    {
        var expected = new MemoryStream();
        (bool mapped, long extensions, long sizeWhileOpen, long lengthWhileOpen, bool visibleAtOnce, bool visibleAfterSync, byte[] closed) =
            FsSandbox.RunOn(backend, async (_, root, s) =>
            {
                bool mapped = false, visibleAtOnce = true, visibleAfterSync = false;
                long extensions = 0, sizeWhileOpen = 0, lengthWhileOpen = 0;
                await Switch.RunAsync(async sw =>
                {
                    var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                    var tail = w.OpenMappedTail(0, Chunk);
                    tail.MaxStoreBytes = Chunk; // every record but the long one stored through the mapping
                    for (int i = 0; i < 200; i++)
                    {
                        byte[] r = i == 100 ? new byte[Chunk + 10] : Record(i); // one longer than a chunk: a pwrite
                        if (i == 100)
                        {
                            r.AsSpan().Fill((byte)'L');
                        }

                        tail.Append(r);
                        expected.Write(r);
                        if (i % 50 == 0)
                        {
                            // Another descriptor sees the bytes at once (the same page cache as a pwrite).
                            byte[] seen = ReadPrefix(s.InRoot("log"), expected.Length);
                            visibleAtOnce &= seen.AsSpan().SequenceEqual(expected.ToArray());
                        }
                    }

                    w.DataSync();
                    visibleAfterSync = ReadPrefix(s.InRoot("log"), expected.Length).AsSpan().SequenceEqual(expected.ToArray());
                    mapped = tail.IsMapped;
                    extensions = tail.Extensions;
                    lengthWhileOpen = tail.Length;
                    sizeWhileOpen = new FileInfo(s.InRoot("log")).Length;
                    tail.Close();
                    Assert.Equal(tail.Length, (await w.StatAsync()).Size);
                });
                return (mapped, extensions, sizeWhileOpen, lengthWhileOpen, visibleAtOnce, visibleAfterSync, File.ReadAllBytes(s.InRoot("log")));
            });

        output.WriteLine($"{backend}: mapped {mapped}, {extensions} chunks, size while open {sizeWhileOpen}, length {lengthWhileOpen}");
        Assert.True(mapped);
        Assert.True(extensions > 3, $"{extensions} chunks for {lengthWhileOpen} bytes in {Chunk}-byte chunks");
        Assert.Equal(expected.Length, lengthWhileOpen);
        Assert.True(sizeWhileOpen > lengthWhileOpen, $"the reservation ahead: size {sizeWhileOpen}, length {lengthWhileOpen}");
        Assert.True(visibleAtOnce);
        Assert.True(visibleAfterSync);
        Assert.Equal(expected.ToArray(), closed);
    }

    /// <summary>The same appends by the pwrite fallback (chunk 0) and through the mapping give the same file, and closing
    /// the writer (here: its switch finishing) closes its appender first, cutting the file.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void TheFallbackWritesTheSameFileAndTheWritersCloseCutsTheTail(EioBackend backend)
    {
        (byte[] viaMap, byte[] viaPwrite, bool fallbackMapped, bool appendModeMapped) = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            bool fallbackMapped = true, appendModeMapped = true;
            foreach ((string name, int chunk) in new[] { ("map", Chunk), ("pwrite", 0) })
            {
                await Switch.RunAsync(async sw =>
                {
                    var w = await (root / name).OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                    var tail = w.OpenMappedTail(0, chunk);
                    for (int i = 0; i < 120; i++)
                    {
                        tail.Append(Record(i));
                    }

                    tail.Truncate(tail.Length - Record(119).Length); // the last record cut off again
                    tail.Append("end\n"u8);
                    if (chunk == 0)
                    {
                        fallbackMapped = tail.IsMapped;
                    }

                    // The switch closes the writer, which closes the appender: no tail.Close() here.
                });
            }

            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "appended").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw), append: true);
                using var tail = w.OpenMappedTail(0);
                tail.Append("x\n"u8);
                appendModeMapped = tail.IsMapped;
            });
            return (File.ReadAllBytes(s.InRoot("map")), File.ReadAllBytes(s.InRoot("pwrite")), fallbackMapped, appendModeMapped);
        });

        Assert.False(fallbackMapped);
        Assert.False(appendModeMapped);
        var expected = new MemoryStream();
        for (int i = 0; i < 119; i++)
        {
            expected.Write(Record(i));
        }

        expected.Write("end\n"u8);
        Assert.Equal(expected.ToArray(), viaPwrite);
        Assert.Equal(expected.ToArray(), viaMap);
    }

    /// <summary>Appends longer than <see cref="MappedTailAppender.MaxStoreBytes"/> are pwrites into the same region; a
    /// mapping is made only for the short ones.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void LongAppendsArePwrites(EioBackend backend)
    {
        (long extensionsLong, long extensionsShort, byte[] contents) = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            long extensionsLong = -1, extensionsShort = -1;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                using var tail = w.OpenMappedTail(0, Chunk);
                tail.MaxStoreBytes = 100;
                tail.Append(new byte[1000]);
                tail.Append(Record(1)[..101]);
                extensionsLong = tail.Extensions;
                tail.Append("short\n"u8);
                extensionsShort = tail.Extensions;
            });
            return (extensionsLong, extensionsShort, File.ReadAllBytes(s.InRoot("log")));
        });
        Assert.Equal(0, extensionsLong);
        Assert.Equal(1, extensionsShort);
        Assert.Equal([.. new byte[1000], .. Record(1)[..101], .. "short\n"u8.ToArray()], contents);
    }

    /// <summary>A pwrite append that goes past the reserved region first reserves the next chunk (ReserveForWrites, the
    /// default): the file grows by a chunk at a time while open, with no mapping made, and is cut to the appended bytes at
    /// close; without it the file grows by each write. An append longer than a chunk reserves up to its end.
    /// On a backend whose files cannot be mapped (portable) nothing is reserved.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void LongAppendsReserveTheNextChunkBeforeTheirPwrite(EioBackend backend)
    {
        var r = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            bool mapped = false;
            long[] reservedSizes = new long[3], plainSizes = new long[2];
            long extensions = -1;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                using var tail = w.OpenMappedTail(0, Chunk);
                tail.MaxStoreBytes = 100;
                mapped = tail.IsMapped;
                tail.Append(Record(1)[..1000]);
                reservedSizes[0] = new FileInfo(s.InRoot("log")).Length;
                tail.Append(new byte[Chunk - 1000 + 10]); // crosses the chunk's end: the next one is reserved
                reservedSizes[1] = new FileInfo(s.InRoot("log")).Length;
                tail.Append(new byte[Chunk + 1]); // longer than a chunk: reserved up to its end
                reservedSizes[2] = new FileInfo(s.InRoot("log")).Length;
                extensions = tail.Extensions;
                var plain = await (root / "plain").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                using var plainTail = plain.OpenMappedTail(0, Chunk);
                plainTail.MaxStoreBytes = 100;
                plainTail.ReserveForWrites = false;
                plainTail.Append(Record(1)[..1000]);
                plainSizes[0] = new FileInfo(s.InRoot("plain")).Length;
                plainTail.Append(Record(2)[..1000]);
                plainSizes[1] = new FileInfo(s.InRoot("plain")).Length;
            });
            return (mapped, reservedSizes, plainSizes, extensions, File.ReadAllBytes(s.InRoot("log")), File.ReadAllBytes(s.InRoot("plain")));
        });
        long page = Environment.SystemPageSize;
        output.WriteLine($"mapped {r.mapped}, sizes while open {string.Join(", ", r.reservedSizes)}, unreserved {string.Join(", ", r.plainSizes)}");
        Assert.Equal(0, r.extensions); // no store: nothing was mapped
        if (r.mapped)
        {
            Assert.Equal([Chunk, Chunk + page, 2 * Chunk + page], r.reservedSizes); // from the page holding the length, whole pages
        }
        else
        {
            Assert.Equal([1000, Chunk + 10, 2 * Chunk + 11], r.reservedSizes);
        }

        Assert.Equal([1000, 2000], r.plainSizes);
        Assert.Equal([.. Record(1)[..1000], .. new byte[Chunk - 1000 + 10], .. new byte[Chunk + 1]], r.Item5);
        Assert.Equal([.. Record(1)[..1000], .. Record(2)[..1000]], r.Item6);
    }

    /// <summary><see cref="MappedTailAppender.ZeroFillAhead"/>: every append is a pwrite into zeros written ahead (a
    /// chunk at a time, on a system thread), the file reads as the appends followed by zeros only while open (what a
    /// crash leaves, which a log's reader cuts), a truncation and a re-append in between work, and the close cuts the
    /// file to the appended bytes. On a backend whose files cannot be mapped (portable) the mode stays off (plain
    /// pwrites, the same file).</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void ZeroFillAheadAppendsIntoWrittenZerosAndClosesToTheLogicalLength(EioBackend backend)
    {
        var expected = new MemoryStream();
        var r = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            bool mapped = false, zeroFill = false, zerosPastLength = true, prefixOk = true;
            long extensions = -1, length = 0;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                var tail = w.OpenMappedTail(0, Chunk);
                tail.ZeroFillAhead = true;
                mapped = tail.IsMapped;
                zeroFill = tail.ZeroFillAhead;
                for (int i = 0; i < 300; i++)
                {
                    byte[] rec = Record(i);
                    tail.Append(rec);
                    expected.Write(rec);
                    if (i % 60 == 59)
                    {
                        w.DataSync();
                        byte[] all = File.ReadAllBytes(s.InRoot("log"));
                        prefixOk &= all.Length >= expected.Length && all.AsSpan(0, (int)expected.Length).SequenceEqual(expected.ToArray());
                        zerosPastLength &= all.AsSpan((int)Math.Min(all.Length, expected.Length)).IndexOfAnyExcept((byte)0) < 0;
                    }

                    if (i == 150)
                    {
                        tail.Truncate(tail.Length - rec.Length); // cut off again, then the same record once more
                        tail.Append(rec);
                    }
                }

                extensions = tail.Extensions;
                length = tail.Length;
                tail.Close();
            });
            return (mapped, zeroFill, zerosPastLength, prefixOk, extensions, length, File.ReadAllBytes(s.InRoot("log")));
        });
        output.WriteLine($"{backend}: mapped {r.mapped}, zero fill {r.zeroFill}, {r.extensions} fills for {r.length} bytes in {Chunk}-byte chunks");
        Assert.Equal(r.mapped, r.zeroFill);
        Assert.True(r.prefixOk);
        Assert.True(r.zerosPastLength);
        Assert.Equal(expected.Length, r.length);
        Assert.Equal(expected.ToArray(), r.Item7);
        if (r.mapped)
        {
            Assert.True(r.extensions > 3, $"{r.extensions} fills for {r.length} bytes");
        }
        else
        {
            Assert.Equal(0, r.extensions);
        }
    }

    /// <summary>Opened at the end of a file that has content: appends go after it; a second appender is refused while
    /// one is open; a closed appender throws.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void AppendsAfterExistingContent(EioBackend backend)
    {
        string contents = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "log").OpenWriteAsync(sw, FileCreate.Never);
                var tail = w.OpenMappedTail((await w.StatAsync()).Size);
                Assert.Throws<InvalidOperationException>(() => w.OpenMappedTail(0));
                tail.Append("two\n"u8);
                tail.Close();
                Assert.Throws<ObjectDisposedException>(() => tail.Append("three\n"u8));
                using var again = w.OpenMappedTail(tail.Length);
                again.Append("three\n"u8);
            });
            return File.ReadAllText(s.InRoot("log"));
        }, s => s.WriteFile("log", "one\n"));
        Assert.Equal("one\ntwo\nthree\n", contents);
    }

    /// <summary>Appends <paramref name="record"/> (at most 1000 times) until an append fails with an
    /// <see cref="IOException"/>: its errno (0 when none failed), the length after the last acknowledged append, and
    /// the appender's length after the failure.</summary>
    private static (int Errno, long Acked, long LengthAfter) AppendUntilFull(MappedTailAppender tail, byte[] record)
    {
        long acked = 0;
        for (int i = 0; i < 1000; i++)
        {
            try
            {
                tail.Append(record);
                acked = tail.Length;
            }
            catch (IOException e)
            {
                return (e.HResult & 0xFFFF, acked, tail.Length);
            }
        }

        return (0, acked, 0);
    }

    /// <summary>A full disk is found when a chunk is reserved: <see cref="MappedTailAppender.Append"/> throws ENOSPC and
    /// writes nothing; what was appended before is all there; once space is freed appends go on. On a 1 MiB tmpfs the
    /// test mounts (as the KV's disk-full end-to-end test does), so only as root.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void AFullDiskIsFoundAtTheReservationAsEnospc(EioBackend backend)
    {
        using var tmpfs = SmallTmpfs.Mount("1m", output);
        string mount = tmpfs.Path;
        tmpfs.Fill(512 * 1024);
        (int errno, long acked, long lengthAfter, byte[] contents, bool resumed) = NetConformanceTests.RunOn(backend, async env =>
        {
            int errno = 0;
            long acked = 0, lengthAfter = 0;
            bool resumed = false;
            await Switch.RunAsync(async sw =>
            {
                var w = await (env.Fs / Path.Combine(mount, "log")).OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                var tail = w.OpenMappedTail(0, 256 * 1024);
                byte[] record = new byte[3000];
                record.AsSpan().Fill((byte)'r');
                record[^1] = (byte)'\n';
                (errno, acked, lengthAfter) = AppendUntilFull(tail, record);

                tmpfs.FreeFillerAndWaitForSpace(256 * 1024); // space again (bounded wait; names who holds the filler)
                tail.Append(record);
                resumed = tail.Length == acked + record.Length;
                tail.Truncate(acked); // so that the file is the acknowledged appends only
                tail.Close();
            });
            return (errno, acked, lengthAfter, File.ReadAllBytes(Path.Combine(mount, "log")), resumed);
        });

        output.WriteLine($"{backend}: {acked} bytes appended before errno {errno}");
        Assert.Equal(28, errno); // ENOSPC
        Assert.True(acked > 0);
        Assert.Equal(acked, lengthAfter);
        Assert.Equal(acked, contents.Length);
        Assert.True(contents.All(b => b is (byte)'r' or (byte)'\n'));
        Assert.True(resumed);
    }

    /// <summary><see cref="MappedTailAppender.ZeroFillAhead"/> on a disk that fills up (§210, the KV's <c>always</c>
    /// default): the fills fail at some point, the appends go on into the zeros already written and then past the end,
    /// where the full disk fails one with ENOSPC as without the mode; what was appended before is all there, the
    /// truncation of the failed append re-enables the fills, and once space is freed appends and fills go on. On a 1 MiB
    /// tmpfs the test mounts, so only as root; the portable backend's files cannot be mapped (the mode is off there, the
    /// same results).</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void ZeroFillAheadOnAFullDiskFailsAnAppendAsEnospcAndFillsAgainOnceThereIsRoom(EioBackend backend)
    {
        using var tmpfs = SmallTmpfs.Mount("1m", output);
        string mount = tmpfs.Path;
        tmpfs.Fill(512 * 1024);
        var r = NetConformanceTests.RunOn(backend, async env =>
        {
            int errno = 0;
            long acked = 0, lengthAfter = 0, fillsBefore = 0, fillsAfter = 0, sizeOpen = 0;
            bool zeroFill = false, resumed = false;
            byte[] record = new byte[3000];
            record.AsSpan().Fill((byte)'r');
            record[^1] = (byte)'\n';
            await Switch.RunAsync(async sw =>
            {
                var w = await (env.Fs / Path.Combine(mount, "log")).OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                var tail = w.OpenMappedTail(0, 128 * 1024);
                tail.ZeroFillAhead = true;
                zeroFill = tail.ZeroFillAhead;
                (errno, acked, lengthAfter) = AppendUntilFull(tail, record);

                tail.Truncate(acked); // what a log writer does after a failed append (the KV's AppendOnlyFile)
                fillsBefore = tail.Extensions;
                tmpfs.FreeFillerAndWaitForSpace(256 * 1024); // space again
                for (int i = 0; i < 10; i++)
                {
                    tail.Append(record);
                }

                resumed = tail.Length == acked + 10 * record.Length;
                fillsAfter = tail.Extensions;
                var filled = System.Diagnostics.Stopwatch.StartNew(); // the fill's zeros past the data, while open
                while ((sizeOpen = new FileInfo(Path.Combine(mount, "log")).Length) <= tail.Length && filled.Elapsed < TimeSpan.FromSeconds(10))
                {
                    Thread.Sleep(5);
                }

                tail.Truncate(acked); // so that the file is the appends before the full disk only
                tail.Close();
            });
            return (errno, acked, lengthAfter, File.ReadAllBytes(Path.Combine(mount, "log")), resumed, zeroFill, fillsBefore, fillsAfter, sizeOpen);
        });

        output.WriteLine($"{backend}: zero fill {r.zeroFill}, {r.acked} bytes appended before errno {r.errno}, fills {r.fillsBefore} then {r.fillsAfter}, size while open {r.sizeOpen}");
        Assert.Equal(28, r.errno); // ENOSPC
        Assert.True(r.acked > 0);
        Assert.Equal(r.acked, r.lengthAfter);
        Assert.Equal(r.acked, r.Item4.Length);
        Assert.True(r.Item4.All(b => b is (byte)'r' or (byte)'\n'));
        Assert.True(r.resumed);
        if (r.zeroFill)
        {
            Assert.True(r.fillsBefore >= 1);
            Assert.True(r.fillsAfter > r.fillsBefore, $"no fill after the truncation: {r.fillsBefore} -> {r.fillsAfter}");
            Assert.True(r.sizeOpen > r.acked + 10 * 3000, $"no zeros past the appends once there was room: {r.sizeOpen}");
        }
    }

    private static byte[] ReadPrefix(string path, long length)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var buffer = new byte[length];
        f.ReadExactly(buffer);
        return buffer;
    }
}
