using System.Buffers;
using System.Text;
using EioSharp.IO;
using EioSharp.Mock;
using static EioSharp.Mock.MockAction;

namespace EioSharp.Tests.IO;

/// <summary>Eio's buf_write tests, restated (S26).</summary>
public class BufferedWriterTests
{
    [Fact]
    public void S26_WritesBeforeTheFiberSuspendsBecomeOneSinkWrite()
    {
        var sink = new BufferSink();
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(sink, async w =>
            {
                w.WriteString("a");
                w.Write("b"u8);
                w.WriteByte((byte)'c');
                var span = w.GetSpan(2);
                span[0] = (byte)'d';
                span[1] = (byte)'e';
                w.Advance(2);
                Encoding.UTF8.GetBytes("f", (IBufferWriter<byte>)w);
                Assert.Equal(0, sink.WriteCalls);
                await Fiber.YieldAsync();
                Assert.Equal(1, sink.WriteCalls);
                w.WriteString("g");
                w.WriteString("h");
            });
        });
        Assert.Equal(2, sink.WriteCalls);
        Assert.Equal("abcdefgh", sink.ToString());
    }

    [Fact]
    public void S26_CoalescingTranscript()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            await BufferedWriter.WithFlowAsync(flow, async w =>
            {
                w.WriteString("GET / HTTP/1.1\r\n");
                w.WriteString("Host: example.com\r\n");
                TraceLog.Line("yielding");
                await Fiber.YieldAsync();
                w.WriteString("\r\n");
                TraceLog.Line("returning");
            });
            TraceLog.Line("with_flow returned");
        });
        Assert.Equal("""
            +yielding
            +flow: wrote "GET / HTTP/1.1\r\nHost: example.com\r\n"
            +returning
            +flow: wrote "\r\n"
            +with_flow returned

            """, t);
    }

    [Fact]
    public void S26_WithFlowFlushesBeforeItReturns()
    {
        var sink = new BufferSink();
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(sink, w =>
            {
                w.WriteString("never explicitly flushed");
                return Task.CompletedTask;
            });
            Assert.Equal("never explicitly flushed", sink.ToString());
        });
    }

    [Fact]
    public void S26_FlushWaitsForTheSink()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var (p, r) = Promise.Create<bool>();
            flow.OnWrite(AwaitPromise(p));
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    TraceLog.Line("releasing the sink");
                    r.Resolve(true);
                });
                await BufferedWriter.WithFlowAsync(flow, async w =>
                {
                    w.WriteString("slow");
                    TraceLog.Line("flushing");
                    await w.FlushAsync();
                    TraceLog.Line("flushed");
                });
                TraceLog.Line("with_flow returned");
            });
        });
        Assert.Equal("""
            +flushing
            +releasing the sink
            +flow: wrote "slow"
            +flushed
            +with_flow returned

            """, t);
    }

    [Fact]
    public void S26_FlushAfterAbortThrows()
    {
        var sink = new BufferSink();
        MockMain.Run(async _ =>
        {
            await Switch.RunAsync(async sw =>
            {
                var w = new BufferedWriter(sink, sw);
                w.WriteString("lost");
                w.Abort();
                w.Abort();
                Assert.True(w.IsAborted);
                await Assert.ThrowsAsync<ObjectDisposedException>(() => w.FlushAsync().AsTask());
                Assert.Throws<ObjectDisposedException>(() => w.WriteString("x"));
                Assert.Throws<ObjectDisposedException>(() => w.GetSpan());
                await Fiber.YieldAsync();
            });
        });
        Assert.Equal(0, sink.WriteCalls);
    }

    [Fact]
    public void S26_AbortFailsAPendingFlush()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var (p, _) = Promise.Create<bool>();
            flow.OnWrite(AwaitPromise(p));
            await Switch.RunAsync(async sw =>
            {
                var w = new BufferedWriter(flow, sw);
                w.WriteString("first");
                await Fiber.YieldAsync(); // the flusher takes "first" and blocks in the sink
                w.WriteString("second");
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    TraceLog.Line("aborting");
                    w.Abort();
                });
                try
                {
                    await w.FlushAsync();
                }
                catch (ObjectDisposedException ex)
                {
                    TraceLog.Line("flush: " + ex.GetType().Name);
                }
            });
            TraceLog.Line("switch finished (the blocked flusher daemon was cancelled)");
        });
        Assert.Equal("""
            +aborting
            +flush: ObjectDisposedException
            +switch finished (the blocked flusher daemon was cancelled)

            """, t);
    }

    [Fact]
    public void SinkFailureFailsTheSwitchAndFlush()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            flow.OnWrite(Raise(new IOException("connection reset")));
            await BufferedWriter.WithFlowAsync(flow, async w =>
            {
                w.WriteString("x");
                try
                {
                    await w.FlushAsync();
                }
                catch (IOException ex)
                {
                    TraceLog.Line("flush: " + ex.Message);
                    throw;
                }
            });
        });
        Assert.Equal("""
            +flush: connection reset
            Exception: IOException: connection reset

            """, t);
    }

    [Fact]
    public void WriteAsyncAppliesBackPressure()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var (p, r) = Promise.Create<bool>();
            flow.OnWrite(AwaitPromise(p));
            await Switch.RunAsync(async sw =>
            {
                var w = new BufferedWriter(flow, sw, maxBufferedSize: 4);
                await w.WriteAsync("ab"u8.ToArray());
                TraceLog.Line($"under the limit: pending {w.PendingCount}");
                await Fiber.YieldAsync(); // the flusher takes "ab" and blocks
                Fiber.Fork(sw, async () =>
                {
                    await Fiber.YieldAsync();
                    TraceLog.Line("sink released");
                    r.Resolve(true);
                });
                await w.WriteAsync("cdefg"u8.ToArray());
                TraceLog.Line($"writer resumed: pending {w.PendingCount}");
                await w.FlushAsync();
            });
        });
        Assert.Equal("""
            +under the limit: pending 2
            +sink released
            +flow: wrote "ab"
            +flow: wrote "cdefg"
            +writer resumed: pending 0

            """, t);
    }

    [Fact]
    public void FlushWithNothingPendingCompletesSynchronously()
    {
        MockMain.Run(async _ =>
        {
            await BufferedWriter.WithFlowAsync(new BufferSink(), w =>
            {
                Assert.True(w.FlushAsync().IsCompletedSuccessfully);
                return Task.CompletedTask;
            });
        });
    }

    [Fact]
    public void FlushAfterTheSwitchEndedWritesDirectly()
    {
        var sink = new BufferSink();
        MockMain.Run(async _ =>
        {
            BufferedWriter? w = null;
            await Switch.RunAsync(sw =>
            {
                w = new BufferedWriter(sink, sw);
                return Task.CompletedTask;
            });
            w!.WriteString("late");
            await w.FlushAsync();
        });
        Assert.Equal("late", sink.ToString());
    }
}
