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
}
