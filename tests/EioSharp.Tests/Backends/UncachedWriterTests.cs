using System.Globalization;
using System.Runtime.Versioning;
using EioSharp.Backends;
using EioSharp.Fs;
using EioSharp.Tests.Fs;
using Xunit.Abstractions;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="FileWriter.OpenUncached"/> on every backend with a filesystem (the mock has none): pieces of every size
/// written past the page cache (<c>O_DIRECT</c> set on the descriptor while it writes, cleared by
/// <see cref="UncachedWriter.Complete"/>), the file byte for byte the pieces and exactly as long; the fallback through the
/// page cache for an unaligned start.
/// </summary>
[SupportedOSPlatform("linux")]
public class UncachedWriterTests(ITestOutputHelper output)
{
    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static readonly UnixFileMode Rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    // The descriptor's status flags as the kernel reports them (/proc/self/fdinfo: "flags:" in octal).
    private static int Flags(FileWriter w)
    {
        int fd = (int)w.FileHandle.DangerousGetHandle();
        string line = File.ReadAllLines($"/proc/self/fdinfo/{fd}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
        return Convert.ToInt32(line["flags:".Length..].Trim(), 8);
    }

    private static byte[] Piece(int i, Random random)
    {
        var p = new byte[i % 7 == 0 ? 70_000 + random.Next(5000) : random.Next(1, 9000)];
        random.NextBytes(p);
        return p;
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Pieces_of_every_size_are_written_past_the_page_cache_and_the_file_ends_at_the_last_byte(EioBackend backend)
    {
        var expected = new MemoryStream();
        (bool direct, bool flagWhileWriting, bool flagAfter, long end, byte[] file) = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            bool direct = false, flagWhileWriting = false, flagAfter = true;
            long end = 0;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "base").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                var random = new Random(14);
                using (UncachedWriter u = w.OpenUncached(0, 64 * 1024))
                {
                    Assert.Equal(64 * 1024, u.BufferBytes);
                    for (int i = 0; i < 120; i++)
                    {
                        byte[] p = Piece(i, random);
                        u.Write(p);
                        expected.Write(p);
                        Assert.Equal(expected.Length, u.Position);
                        if (i == 60)
                        {
                            flagWhileWriting = (Flags(w) & LinuxInterop.ODirect) != 0;
                        }
                    }

                    Assert.True(u.WrittenPosition <= u.Position && u.WrittenPosition % UncachedWriter.Alignment == 0);
                    direct = u.IsDirect;
                    end = u.Complete();
                    flagAfter = (Flags(w) & LinuxInterop.ODirect) != 0;
                    Assert.Throws<InvalidOperationException>(() => u.Write([1]));
                }

                w.Sync();
                w.Close();
            });
            return (direct, flagWhileWriting, flagAfter, end, File.ReadAllBytes(s.InRoot("base")));
        });

        output.WriteLine($"{backend}: direct {direct}, O_DIRECT while writing {flagWhileWriting}, after {flagAfter}, {end} bytes");
        Assert.True(direct); // every backend's files are native Linux descriptors (the sandbox is on a disk filesystem)
        Assert.Equal(direct, flagWhileWriting);
        Assert.False(flagAfter);
        Assert.Equal(expected.Length, end);
        Assert.Equal(expected.ToArray(), file);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void An_unaligned_start_writes_through_the_page_cache_after_what_is_there(EioBackend backend)
    {
        byte[] head = "0123456789"u8.ToArray();
        var data = new byte[300_000];
        new Random(7).NextBytes(data);
        (bool direct, byte[] file) = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            bool direct = true;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "f").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                w.WriteAt(0, head);
                using UncachedWriter u = w.OpenUncached(head.Length, 8192);
                direct = u.IsDirect;
                u.Write(data.AsSpan(0, 100_000));
                u.Write(data.AsSpan(100_000));
                Assert.Equal(head.Length + data.Length, u.Complete());
                w.Close();
            });
            return (direct, File.ReadAllBytes(s.InRoot("f")));
        });

        Assert.False(direct);
        Assert.Equal(head.Concat(data).ToArray(), file);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{backend}: {file.Length} bytes"));
    }

    /// <summary>Bytes given from an aligned address while nothing is buffered are written straight from the caller's
    /// buffer (their whole blocks: no copy into the writer's, h208); the rest of such a piece and every later piece while
    /// something is buffered are copied as before; the file is byte for byte the pieces.</summary>
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Whole_blocks_from_an_aligned_buffer_are_written_without_a_copy(EioBackend backend)
    {
        const int A = UncachedWriter.Alignment;
        byte[] pinned = GC.AllocateUninitializedArray<byte>((1 << 20) + 16 * A, pinned: true);
        nint address = System.Runtime.CompilerServices.Unsafe.ByteOffset(
            ref System.Runtime.CompilerServices.Unsafe.NullRef<byte>(), ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(pinned));
        int start = (int)((A - (address & (A - 1))) & (A - 1));
        new Random(9).NextBytes(pinned);
        var expected = new MemoryStream();
        (bool direct, long copied, byte[] file) = FsSandbox.RunOn(backend, async (_, root, s) =>
        {
            bool direct = false;
            long copied = 0;
            await Switch.RunAsync(async sw =>
            {
                var w = await (root / "aligned").OpenWriteAsync(sw, FileCreate.OrTruncate(Rw));
                using (UncachedWriter u = w.OpenUncached(0, 64 * 1024))
                {
                    void Give(int offset, int length)
                    {
                        ReadOnlySpan<byte> piece = pinned.AsSpan(start + offset, length);
                        u.Write(piece);
                        expected.Write(piece);
                        Assert.Equal(expected.Length, u.Position);
                    }

                    Give(0, 1 << 19); // aligned, nothing buffered: straight
                    Give(0, 2 * A + 100); // the same, then 100 bytes copied
                    Give(0, A); // something is buffered: copied
                    direct = u.IsDirect;
                    copied = u.BytesCopied;
                    u.Complete();
                }

                w.Sync();
                w.Close();
            });
            return (direct, copied, File.ReadAllBytes(s.InRoot("aligned")));
        });

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{backend}: direct {direct}, copied {copied} of {expected.Length}"));
        Assert.True(direct);
        Assert.Equal(100 + A, copied);
        Assert.Equal(expected.ToArray(), file);
    }
}
