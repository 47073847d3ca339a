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

    /// <summary>The buffer keeps its array's length in a field of its own (so that the per-request <c>Shrink</c> does not
    /// read the array): it follows the array through growth, <see cref="ReplyBuffer.Reserve"/>, a swap and a release.</summary>
    [Fact]
    public void Capacity_follows_the_array_through_growth_swap_and_release()
    {
        var pool = System.Buffers.ArrayPool<byte>.Create(4096, 16);
        var request = new ReplyBuffer(4096, pool);
        var output = new ReplyBuffer(4096, pool);
        Assert.Equal(4096, request.Capacity);

        Fill(request, 1 << 20); // a large reply: grown past ShrinkAbove
        int grown = request.Capacity;
        Assert.True(grown >= 1 << 20);
        Assert.Equal(request.WrittenSpan.Length, request.WrittenCount);

        output.SwapContents(request); // the large reply becomes the output; the request gets the small array
        Assert.Equal(grown, output.Capacity);
        Assert.Equal(4096, request.Capacity);
        request.Shrink(); // small and empty: kept
        Assert.Equal(4096, request.Capacity);
        output.Shrink(); // not while it holds the reply
        Assert.Equal(grown, output.Capacity);

        output.ResetWrittenCount();
        output.Shrink(); // sent: back to the first size
        Assert.Equal(4096, output.Capacity);
        Fill(output, 4096); // the new array is the buffer's: a full first-size write needs no growth
        Assert.Equal(4096, output.Capacity);
        Assert.Throws<ArgumentOutOfRangeException>(() => output.Advance(1)); // full: the capacity field bounds Advance

        request.Reserve(10_000);
        Assert.Equal(10_000, request.Capacity); // more than a doubling: exactly what is needed
        Assert.Equal(10_000, request.GetSpan(10_000).Length);

        request.Release();
        Assert.Equal(0, request.Capacity);
        Fill(request, 100); // a write after the release allocates
        Assert.True(request.Capacity >= 100);
        Assert.Equal(100, request.WrittenCount);
    }
}
