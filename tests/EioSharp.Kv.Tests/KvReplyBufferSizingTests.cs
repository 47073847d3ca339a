using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>CLIENT LIST rbs/rbp: Redis 7.0's reply buffer policy (clientsCronResizeOutputBuffer, a tick every 100 ms) over
/// the bytes written, with the sequence redis-server 7.0.15 shows (ClientBuffersDiffTests compares the servers end to end).</summary>
public class KvReplyBufferSizingTests
{
    [Fact]
    public void A_new_client_is_shrunk_to_1_kib_and_a_full_buffer_doubles_up_to_16_kib()
    {
        var b = new KvReplyBufferSizing(0);
        Assert.Equal((1024L, 0L), b.Read(1000)); // Redis: the peak reset at the first tick, 1 KiB at the second

        b.OnRepliesWritten(300, 1100);
        Assert.Equal((1024L, 300L), b.Read(1200));
        b.OnRepliesWritten(10_007, 1300); // fills it: the rest would be in the reply list
        Assert.Equal((2048L, 1024L), b.Read(1400)); // as redis-server after GET of a 10,000-byte value
        b.OnRepliesWritten(100_000, 1500);
        Assert.Equal((4096L, 2048L), b.Read(1600));
        b.OnRepliesWritten(100_000, 1700);
        b.OnRepliesWritten(100_000, 1800);
        b.OnRepliesWritten(100_000, 1900);
        Assert.Equal((16384L, 16384L), b.Read(2000)); // never above PROTO_REPLY_CHUNK_BYTES
        b.OnRepliesWritten(100_000, 2100);
        Assert.Equal((16384L, 16384L), b.Read(2200));
    }

    [Fact]
    public void The_peak_is_reset_every_5_s_and_a_buffer_under_half_used_shrinks_to_peak_plus_one()
    {
        var b = new KvReplyBufferSizing(0);
        Assert.Equal((1024L, 0L), b.Read(300)); // peak reset at 100 (then every 5 s: 5100, 10100...)
        for (long t = 350; t < 900; t += 100) b.OnRepliesWritten(100_000, t);
        Assert.Equal((16384L, 16384L), b.Read(5000));
        b.OnRepliesWritten(3000, 5150); // after the reset at 5100: the peak is this batch
        Assert.Equal((3001L, 3000L), b.Read(5250)); // 3000 < 8192: max(1 KiB, peak + 1) at the tick of 5200
        Assert.Equal((3001L, 3000L), b.Read(10_099));
        Assert.Equal((3001L, 0L), b.Read(10_100)); // reset at 10100
        Assert.Equal((1024L, 0L), b.Read(10_200)); // idle: back to 1 KiB
        Assert.Equal((1024L, 0L), b.Read(3_600_000)); // an hour idle (skipped, not ticked through)
        b.OnRepliesWritten(500, 3_600_050);
        Assert.Equal((1024L, 500L), b.Read(3_600_060));
    }
}
