using System.Runtime.InteropServices;
using System.Text;
using EioSharp.IO;
using EioSharp.Mock;

namespace EioSharp.Tests.IO;

/// <summary>Buf_write's control and low-level items: pause/unpause, schedule_bigstring, await_batch/shift, serialize.</summary>
public class BufferedWriterBatchTests
{
    private static string Text(IReadOnlyList<ReadOnlyMemory<byte>> batch) =>
        string.Join("|", batch.Select(b => Encoding.UTF8.GetString(b.Span)));

    [Fact]
    public void PauseCollectsWritesAcrossSuspensionsUntilUnpause()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            await BufferedWriter.WithFlowAsync(flow, async w =>
            {
                w.Pause();
                Assert.True(w.IsPaused);
                w.WriteString("a");
                await Fiber.YieldAsync();
                TraceLog.Line("yielded once, paused");
                w.WriteString("b");
                await Fiber.YieldAsync();
                TraceLog.Line("unpausing");
                w.Unpause();
                await Fiber.YieldAsync();
                TraceLog.Line("returning");
            });
        });
        Assert.Equal("""
            +yielded once, paused
            +unpausing
            +flow: wrote "ab"
            +returning

            """, t);
    }

    [Fact]
    public void FlushAndCloseUnpauseAndPauseAfterCloseIsIgnored()
    {
        var sink = new BufferSink();
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(sink, async w =>
            {
                w.Pause();
                w.WriteString("x");
                await w.FlushAsync();
                Assert.False(w.IsPaused);
                Assert.Equal("x", sink.ToString());
                w.Pause();
                w.Close();
                Assert.False(w.IsPaused);
                w.Pause();
                Assert.False(w.IsPaused);
            });
        });
    }

    [Fact]
    public void ScheduledBuffersReachTheSinkUncopiedAndInOrder()
    {
        var sink = new RecordingSink();
        var big = Encoding.ASCII.GetBytes(new string('B', 10_000));
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(sink, w =>
            {
                w.WriteString("a");
                w.ScheduleBuffer(big);
                w.WriteString("c");
                w.ScheduleBuffer(ReadOnlyMemory<byte>.Empty);
                Assert.Equal(10_002, w.PendingCount);
                return Task.CompletedTask;
            });
        });
        Assert.Equal(["a", new string('B', 10_000), "c"], sink.Writes.Select(m => Encoding.ASCII.GetString(m.Span)));
        Assert.True(MemoryMarshal.TryGetArray(sink.Writes[1], out var segment));
        Assert.Same(big, segment.Array);
    }

    [Fact]
    public void ABufferGrowingAfterASealedSliceKeepsTheOrder()
    {
        var sink = new BufferSink();
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(sink, w =>
            {
                w.WriteString("head-");
                w.ScheduleBuffer("mid-"u8.ToArray());
                w.WriteString(new string('t', 20_000)); // grows the 4 KiB buffer past the sealed "head-"
                return Task.CompletedTask;
            });
        });
        Assert.Equal("head-mid-" + new string('t', 20_000), sink.ToString());
    }

    [Fact]
    public void LowLevelWriterHandsOutBatchesUntilShifted()
    {
        MockMain.Run(async _ =>
        {
            var w = new BufferedWriter(initialSize: 16);
            Assert.True(w.IsLowLevel);
            w.WriteString("hello");
            w.ScheduleBuffer(" world"u8.ToArray());
            w.WriteString("!");
            Assert.Equal("hello| world|!", Text(await w.AwaitBatchAsync()));
            Assert.Equal("hello| world|!", Text(await w.AwaitBatchAsync())); // not consumed until shifted
            w.Shift(3);
            Assert.Equal("lo| world|!", Text(await w.AwaitBatchAsync()));
            Assert.Throws<ArgumentOutOfRangeException>(() => w.Shift(10));
            Assert.Throws<ArgumentOutOfRangeException>(() => w.Shift(-1));
            w.Shift(9);
            Assert.Equal(0, w.PendingCount);
            Assert.True(w.FlushAsync().IsCompletedSuccessfully);
            w.Close();
            await Assert.ThrowsAsync<EndOfStreamException>(async () => await w.AwaitBatchAsync());
        });
    }

    [Fact]
    public void AwaitBatchWaitsForAWriteAndWhilePaused()
    {
        var t = MockMain.Trace(async _ =>
        {
            var w = new BufferedWriter();
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    TraceLog.Line("consumer waits");
                    var batch = await w.AwaitBatchAsync();
                    TraceLog.Line($"consumer got {Text(batch)}");
                    w.Shift(batch.Sum(b => b.Length));
                    await Assert.ThrowsAsync<EndOfStreamException>(async () => await w.AwaitBatchAsync());
                    TraceLog.Line("consumer saw the end");
                });
                await Fiber.YieldAsync();
                w.Pause();
                w.WriteString("one");
                await Fiber.YieldAsync();
                TraceLog.Line("producer unpauses");
                w.WriteString("two");
                w.Unpause();
                TraceLog.Line("producer flushes");
                await w.FlushAsync();
                TraceLog.Line("flushed");
                w.Close();
            });
        });
        Assert.Equal("""
            +consumer waits
            +producer unpauses
            +producer flushes
            +consumer got onetwo
            +flushed
            +consumer saw the end

            """, t);
    }

    [Fact]
    public void SerializeCallsWritevWithPartialWritesUntilClosed()
    {
        MockMain.Run(async _ =>
        {
            var w = new BufferedWriter(initialSize: 8);
            var output = new StringBuilder();
            var calls = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var done = Fiber.ForkPromise(sw, () => w.SerializeAsync(batch =>
                {
                    // Writes at most 4 bytes per call, as a socket with a small send buffer would.
                    calls.Add(Text(batch));
                    var first = batch[0];
                    int n = Math.Min(4, first.Length);
                    output.Append(Encoding.UTF8.GetString(first.Span[..n]));
                    return new ValueTask<int>(n);
                }));
                w.WriteString("abcdef");
                w.ScheduleBuffer("XYZ"u8.ToArray());
                await w.FlushAsync();
                w.Close();
                Assert.True(await done.AwaitAsync());
            });
            Assert.Equal("abcdefXYZ", output.ToString());
            Assert.Equal(["abcdef|XYZ", "ef|XYZ", "XYZ"], calls);
        });
    }

    [Fact]
    public void SerializeStopsWhenTheDestinationIsClosed()
    {
        MockMain.Run(async _ =>
        {
            var w = new BufferedWriter();
            w.WriteString("lost");
            Assert.False(await w.SerializeAsync(_ => new ValueTask<int>(-1)));
            Assert.True(w.IsClosed);
            Assert.Equal(0, w.PendingCount);
            Assert.Throws<InvalidOperationException>(() => w.WriteString("more"));
        });
    }

    [Fact]
    public void SerializeToStringClosesAndReturnsEverythingPending()
    {
        MockMain.Run(_ =>
        {
            var w = new BufferedWriter(initialSize: 4);
            w.WriteString("héllo ");
            w.ScheduleBuffer("big "u8.ToArray());
            w.WriteUInt16BigEndian(0x4142);
            Assert.Equal("héllo big AB", w.SerializeToString());
            Assert.True(w.IsClosed);
            Assert.Equal(0, w.PendingCount);
            Assert.Equal("", w.SerializeToString());
            Assert.Throws<InvalidOperationException>(() => w.WriteString("x"));

            var bytes = new BufferedWriter();
            bytes.WriteByte(0xFF);
            Assert.Equal([0xFF], bytes.SerializeToArray());
            return Task.CompletedTask;
        });
    }

    [Fact]
    public void TheLowLevelOperationsRefuseAWriterWithAFlusher()
    {
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(new BufferSink(), async w =>
            {
                Assert.False(w.IsLowLevel);
                await Assert.ThrowsAsync<InvalidOperationException>(async () => await w.AwaitBatchAsync());
                Assert.Throws<InvalidOperationException>(() => w.Shift(0));
                Assert.Throws<InvalidOperationException>(() => w.SerializeToString());
            });
        });
    }

    private sealed class RecordingSink : IFlowSink
    {
        public List<ReadOnlyMemory<byte>> Writes { get; } = [];

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
        {
            Writes.Add(data);
            return ValueTask.CompletedTask;
        }
    }
}
