using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The sliced CRC-64/Jones (<see cref="KvDump.Crc64"/>) against redis's check value and the byte-at-a-time form.</summary>
public class Crc64Tests
{
    [Fact]
    public void Check_value_is_redis_crc64s()
    {
        // redis's crc64.c self test: crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca.
        Assert.Equal(0xe9c6d914c4b8d9caUL, KvDump.Crc64("123456789"u8));
        Assert.Equal(0xe9c6d914c4b8d9caUL, KvDump.Crc64Bytewise("123456789"u8));
        Assert.Equal(0UL, KvDump.Crc64([]));
    }

    [Fact]
    public void Sliced_equals_bytewise_for_every_length_and_alignment_and_in_pieces()
    {
        var r = new Random(14);
        byte[] data = new byte[4096 + 17];
        r.NextBytes(data);
        for (int start = 0; start < 9; start++)
        {
            for (int length = 0; length <= 300; length++)
            {
                ReadOnlySpan<byte> s = data.AsSpan(start, length);
                Assert.Equal(KvDump.Crc64Bytewise(s), KvDump.Crc64(s));
                Assert.Equal(KvDump.Crc64Bytewise(s, 0x0123456789abcdefUL), KvDump.Crc64(s, 0x0123456789abcdefUL));
            }
        }

        // Continued over pieces of any size (RdbWriter checksums chunk by chunk, the loader buffer by buffer).
        ulong whole = KvDump.Crc64Bytewise(data);
        for (int piece = 1; piece <= 33; piece++)
        {
            ulong crc = 0;
            for (int p = 0; p < data.Length; p += piece)
            {
                crc = KvDump.Crc64(data.AsSpan(p, Math.Min(piece, data.Length - p)), crc);
            }

            Assert.Equal(whole, crc);
        }
    }

    [Fact]
    public void Folded_equals_the_table_for_many_random_inputs_lengths_alignments_and_initial_values()
    {
        Assert.True(System.Runtime.Intrinsics.X86.Pclmulqdq.IsSupported, "this machine has no PCLMULQDQ: the folded CRC is not tested");
        var r = new Random(119);
        byte[] data = new byte[70_000];
        int folded = 0;
        for (int i = 0; i < 3000; i++)
        {
            // Lengths around the fold's steps (16-byte blocks, 64-byte rounds, the 128-byte threshold) and long ones.
            int length = i < 1500 ? r.Next(0, 600) : r.Next(0, data.Length - 64);
            int start = r.Next(0, 64);
            r.NextBytes(data.AsSpan(start, length));
            ulong initial = i % 3 == 0 ? 0 : (ulong)r.NextInt64() ^ ((ulong)r.Next() << 63);
            ReadOnlySpan<byte> s = data.AsSpan(start, length);
            ulong expected = KvDump.Crc64Sliced(s, initial);
            Assert.Equal(expected, KvDump.Crc64(s, initial));
            if (length >= 64)
            {
                int blocks = length & ~15;
                Assert.Equal(KvDump.Crc64Sliced(s[..blocks], initial), KvDump.Crc64Folded(s[..blocks], initial));
                folded++;
            }
        }

        Assert.True(folded > 2000, $"{folded} inputs folded");
        // Every byte value in every position of a block matters (a single bit flipped anywhere changes the folded CRC as the table's).
        byte[] one = new byte[256];
        for (int bit = 0; bit < one.Length * 8; bit += 7)
        {
            one.AsSpan().Clear();
            one[bit / 8] = (byte)(1 << (bit % 8));
            Assert.Equal(KvDump.Crc64Bytewise(one), KvDump.Crc64Folded(one, 0));
        }
    }

    [Fact]
    public void Wide_fold_equals_the_table_for_many_random_inputs_lengths_alignments_and_initial_values()
    {
        // §223: the 512-bit fold (VPCLMULQDQ with AVX-512); a machine without it uses the 128-bit fold, tested above.
        if (!System.Runtime.Intrinsics.X86.Pclmulqdq.V512.IsSupported) return;
        var r = new Random(223);
        byte[] data = new byte[70_000];
        for (int i = 0; i < 3000; i++)
        {
            // Lengths around the wide fold's steps (16-byte blocks, 64-byte pieces, 256-byte rounds) and long ones.
            int length = i < 2000 ? r.Next(KvDump.WideFoldMinBytes, 1200) & ~15 : r.Next(KvDump.WideFoldMinBytes, data.Length - 64) & ~15;
            int start = r.Next(0, 64);
            r.NextBytes(data.AsSpan(start, length));
            ulong initial = i % 3 == 0 ? 0 : (ulong)r.NextInt64() ^ ((ulong)r.Next() << 63);
            ReadOnlySpan<byte> s = data.AsSpan(start, length);
            Assert.Equal(KvDump.Crc64Sliced(s, initial), KvDump.Crc64FoldedWide(s, initial));
            Assert.Equal(KvDump.Crc64Sliced(s, initial), KvDump.Crc64(s, initial));
            Assert.Equal(KvDump.Crc64Sliced(s[..^5], initial), KvDump.Crc64(s[..^5], initial)); // a tail through the table
        }

        byte[] one = new byte[1024];
        for (int bit = 0; bit < one.Length * 8; bit += 5)
        {
            one.AsSpan().Clear();
            one[bit / 8] = (byte)(1 << (bit % 8));
            Assert.Equal(KvDump.Crc64Bytewise(one), KvDump.Crc64FoldedWide(one, 0));
        }
    }
}
