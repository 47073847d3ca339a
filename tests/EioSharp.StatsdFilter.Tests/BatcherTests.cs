using static EioSharp.StatsdFilter.Tests.TestUtil;

namespace EioSharp.StatsdFilter.Tests;

public class BatcherTests
{
    /// <summary>Runs the documented forwarding loop and returns the datagrams.</summary>
    private static List<string> Batch(int mtu, params string[] lines)
    {
        var batcher = new DatagramBatcher(mtu);
        var datagrams = new List<string>();
        foreach (string line in lines)
        {
            if (!batcher.TryAppend(B(line)))
            {
                datagrams.Add(S(batcher.Flush().Span));
                Assert.True(batcher.TryAppend(B(line)));
            }
        }

        if (!batcher.IsEmpty)
        {
            datagrams.Add(S(batcher.Flush().Span));
        }

        return datagrams;
    }

    [Fact]
    public void Default_mtu_is_1432() => Assert.Equal(1432, new DatagramBatcher().Mtu);

    [Fact]
    public void Lines_are_joined_by_newline_byte_for_byte()
    {
        Assert.Equal(["a:1|c\nb:2|g|#t:x\n_e{1,1}:t|x"], Batch(1432, "a:1|c", "b:2|g|#t:x", "_e{1,1}:t|x"));
    }

    [Fact]
    public void Exactly_mtu_fits_one_more_byte_does_not()
    {
        // "aaaa" + "\n" + "bbbb" = 9 bytes.
        Assert.Equal(["aaaa\nbbbb"], Batch(9, "aaaa", "bbbb"));
        Assert.Equal(["aaaa", "bbbb"], Batch(8, "aaaa", "bbbb"));
        Assert.Equal(["aaaa\nbbbb", "cccc"], Batch(13, "aaaa", "bbbb", "cccc"));
        Assert.Equal(["aaaa\nbbbb\ncccc"], Batch(14, "aaaa", "bbbb", "cccc"));
    }

    [Fact]
    public void Line_of_exactly_mtu_is_alone()
    {
        Assert.Equal(["a", "12345", "b"], Batch(5, "a", "12345", "b"));
    }

    [Fact]
    public void Line_longer_than_mtu_is_sent_alone()
    {
        string big = new('x', 3000);
        Assert.Equal(["a", big, "b\nc"], Batch(1432, "a", big, "b", "c"));
        Assert.Equal([big, big], Batch(1432, big, big));
    }

    [Fact]
    public void Empty_lines_and_empty_flushes()
    {
        var batcher = new DatagramBatcher(10);
        Assert.True(batcher.TryAppend([]));
        Assert.True(batcher.IsEmpty);
        Assert.True(batcher.Flush().IsEmpty);
        Assert.True(batcher.TryAppend(B("x")));
        Assert.Equal(1, batcher.LineCount);
        Assert.Equal(1, batcher.Length);
        Assert.Equal("x", S(batcher.Flush().Span));
        Assert.True(batcher.Flush().IsEmpty);
        Assert.Equal(0, batcher.Length);
    }

    [Fact]
    public void Random_batches_never_exceed_mtu_and_preserve_lines()
    {
        var random = new Random(1234);
        for (int round = 0; round < 200; round++)
        {
            int mtu = random.Next(1, 200);
            string[] lines = Enumerable.Range(0, random.Next(1, 60))
                .Select(i => new string((char)('a' + (i % 26)), random.Next(1, 250)))
                .ToArray();
            List<string> datagrams = Batch(mtu, lines);
            foreach (string datagram in datagrams)
            {
                Assert.True(datagram.Length <= mtu || !datagram.Contains('\n'), $"mtu {mtu}: {datagram.Length}");
            }

            Assert.Equal(lines, datagrams.SelectMany(d => d.Split('\n')));
        }
    }

    [Fact]
    public void Appending_does_not_allocate()
    {
        var batcher = new DatagramBatcher();
        byte[] line = B("some.metric:1|c|#a:b");
        batcher.TryAppend(line);
        batcher.Flush();
        // The fewest bytes of 10,000 appends over warm rounds (one round's count can hold the runtime's own allocations).
        long allocated = AllocationMeter.Measure(() =>
        {
            for (int i = 0; i < 10_000; i++)
            {
                if (!batcher.TryAppend(line))
                {
                    batcher.Flush();
                    batcher.TryAppend(line);
                }
            }
        });

        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65508)]
    public void Invalid_mtu_throws(int mtu) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DatagramBatcher(mtu));
}
