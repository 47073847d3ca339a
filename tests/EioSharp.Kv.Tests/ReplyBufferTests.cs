using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary><see cref="ReplyBuffer"/>'s shrinking: a reply buffer gives a large array back after use; the AOF buffer of
/// the store owner keeps its array across rounds (up to <see cref="ReplyBuffer.KeepCapacity"/>) until a smaller bound is
/// asked for (issue 14: a round of pipelined 1 KB SETs no longer regrows and drops about 1 MB every round).</summary>
public class ReplyBufferTests
{
    private static void Fill(ReplyBuffer buffer, int bytes)
    {
        var chunk = new byte[4096];
        for (int left = bytes; left > 0; left -= chunk.Length)
        {
            int n = Math.Min(left, chunk.Length);
            chunk.AsSpan(0, n).CopyTo(buffer.GetSpan(n));
            buffer.Advance(n);
        }
    }

    [Fact]
    public void A_reply_buffer_gives_a_large_array_back_once_empty()
    {
        var buffer = new ReplyBuffer(4096);
        Fill(buffer, 1 << 20);
        Assert.True(buffer.Capacity >= 1 << 20);
        buffer.Shrink();
        Assert.True(buffer.Capacity >= 1 << 20); // not while it holds bytes
        buffer.ResetWrittenCount();
        buffer.Shrink();
        Assert.Equal(4096, buffer.Capacity);
    }

    [Fact]
    public void A_buffer_with_a_keep_capacity_keeps_its_array_across_uses_until_asked_for_less()
    {
        var buffer = new ReplyBuffer(64 * 1024) { KeepCapacity = 16 << 20 };
        Fill(buffer, 900 * 1024);
        int grown = buffer.Capacity;
        Assert.True(grown >= 900 * 1024);
        for (int round = 0; round < 3; round++)
        {
            buffer.ResetWrittenCount();
            buffer.Shrink();
            Assert.Equal(grown, buffer.Capacity); // the same array: no regrowth next round
            Fill(buffer, 900 * 1024);
            Assert.Equal(grown, buffer.Capacity);
            Assert.Equal(900 * 1024, buffer.WrittenCount);
        }

        buffer.ResetWrittenCount();
        buffer.Shrink(ReplyBuffer.ShrinkAbove); // the cron, once rounds no longer fill it
        Assert.Equal(64 * 1024, buffer.Capacity);

        Fill(buffer, 20 << 20); // over the keep capacity: given back after use, as any reply buffer
        buffer.ResetWrittenCount();
        buffer.Shrink();
        Assert.Equal(64 * 1024, buffer.Capacity);
    }

    [Fact]
    public void Shrink_never_grows_a_buffer_smaller_than_its_first_size()
    {
        var buffer = new ReplyBuffer(512 * 1024);
        buffer.Shrink(ReplyBuffer.ShrinkAbove);
        Assert.Equal(512 * 1024, buffer.Capacity);
    }
}
