using System.IO.Pipelines;
using System.Text;
using EioSharp.IO;
using EioSharp.Mock;
using static EioSharp.Mock.MockAction;
using static EioSharp.Tests.IO.IOTestKit;

namespace EioSharp.Tests.IO;

/// <summary>Eio's flow tests, restated: copy, exact reads, in-memory flows, Stream adapters, close (S29).</summary>
public class FlowTests
{
    [Fact]
    public void CopyMovesEverythingFromChunkedAndMemorySources()
    {
        MockMain.Run(async _ =>
        {
            var sink = new BufferSink();
            Assert.Equal(11, await new StringSource("hello world").CopyToAsync(sink));
            Assert.Equal(1, sink.WriteCalls);
            var chunked = new CountingSource(OneBytePerRead("abc"));
            Assert.Equal(3, await chunked.CopyToAsync(sink));
            Assert.Equal("hello worldabc", sink.ToString());
            Assert.Equal(4, chunked.Reads);
            Assert.Equal(0, await Flow.Null.CopyToAsync(sink));
        });
    }

    [Fact]
    public void CopyFromAMockFlowIsTraced()
    {
        var t = MockMain.Trace(async _ =>
        {
            var src = new MockFlow("src");
            var dst = new MockFlow("dst");
            src.OnRead(Return("foo"), Return("bar"));
            await src.CopyToAsync(dst);
        });
        Assert.Equal("""
            +src: read "foo"
            +dst: wrote "foo"
            +src: read "bar"
            +dst: wrote "bar"

            """, t);
    }

    [Fact]
    public void ReadExactlyWaitsForEveryByteOrFailsAtEndOfInput()
    {
        MockMain.Run(async _ =>
        {
            var buf = new byte[4];
            await OneBytePerRead("abcdef").ReadExactlyAsync(buf);
            Assert.Equal("abcd", Encoding.ASCII.GetString(buf));
            await Assert.ThrowsAsync<EndOfStreamException>(() => new StringSource("ab").ReadExactlyAsync(buf).AsTask());
        });
    }

    [Fact]
    public void BufferSourceReturnsOneChunkPerReadAndTracksRemaining()
    {
        var s = new BufferSource([new byte[] { 1, 2 }, Array.Empty<byte>(), new byte[] { 3 }]);
        Assert.Equal(3, s.Remaining);
        var buf = new byte[10];
        Assert.Equal(2, s.Read(buf));
        Assert.Equal(1, s.Read(buf));
        Assert.Equal(0, s.Read(buf));
        Assert.Equal(0, s.Remaining);
    }

    [Fact]
    public void NullFlowIsEmptyAndDiscards()
    {
        MockMain.Run(async _ =>
        {
            Assert.Equal(0, await Flow.Null.ReadAsync(new byte[4]));
            await Flow.Null.WriteStringAsync("gone");
            await Flow.Null.ShutdownAsync(ShutdownCommand.All);
            Flow.Null.Close();
            Flow.Null.Close();
        });
    }

    [Fact]
    public void AsStreamWorksWithStreamReaderAndStreamWriter()
    {
        MockMain.Run(async _ =>
        {
            using var reader = new StreamReader(new StringSource("line one\nline two\n").AsStream());
            Assert.Equal("line one", await reader.ReadLineAsync());
            Assert.Equal("line two\n", await reader.ReadToEndAsync());

            var sink = new BufferSink();
            await using (var writer = new StreamWriter(sink.AsStream()))
            {
                await writer.WriteAsync("written through a stream");
            }

            Assert.Equal("written through a stream", sink.ToString());
        });
    }

    [Fact]
    public void AsStreamRefusesSynchronousReadsAndWrites()
    {
        var s = new StringSource("x").AsStream();
        Assert.True(s.CanRead);
        Assert.False(s.CanWrite);
        Assert.False(s.CanSeek);
        Assert.Throws<NotSupportedException>(() => s.ReadByte());
        Assert.Throws<NotSupportedException>(() => new BufferSink().AsStream().WriteByte(1));
    }

    [Fact]
    public void AsStreamOverAMockFlowWaitsForAPromise()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var (p, r) = Promise.Create<string>();
            flow.OnRead(AwaitPromise(p));
            await Fiber.BothAsync(
                async () =>
                {
                    await using var stream = flow.AsStream();
                    var buf = new byte[16];
                    int n = await stream.ReadAsync(buf);
                    TraceLog.Line("got " + Encoding.ASCII.GetString(buf, 0, n));
                },
                async () =>
                {
                    TraceLog.Line("resolving");
                    await Fiber.YieldAsync();
                    r.Resolve("late");
                });
        });
        Assert.Equal("""
            +resolving
            +flow: read "late"
            +got late
            +flow: closed

            """, t);
    }

    [Fact]
    public void AsStreamServesStreamReaderThatHopsToTheThreadPool()
    {
        var lines = EioMain.Run(async env =>
        {
            var flow = new MockFlow();
            var (p1, r1) = Promise.Create<string>();
            var (p2, r2) = Promise.Create<string>();
            flow.OnRead(AwaitPromise(p1), AwaitPromise(p2));
            var got = new List<string?>();
            await Fiber.BothAsync(
                async () =>
                {
                    using var reader = new StreamReader(flow.AsStream());
                    got.Add(await reader.ReadLineAsync());
                    got.Add(await reader.ReadLineAsync());
                },
                async () =>
                {
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(5));
                    r1.Resolve("first line\nsec");
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(5));
                    r2.Resolve("ond line\n");
                });
            return got;
        });
        Assert.Equal(["first line", "second line"], lines);
    }

    [Fact]
    public void AsStreamServesStreamReaderAndStreamWriterOnTheMockBackend()
    {
        // StreamReader and StreamWriter await with ConfigureAwait(false); their continuations must stay on the mock domain
        // (no thread-pool hop), or the idle domain would report a deadlock while the reader waits for its promise.
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var (p1, r1) = Promise.Create<string>();
            var (p2, r2) = Promise.Create<string>();
            var (w1, wr1) = Promise.Create<bool>();
            flow.OnRead(AwaitPromise(p1), AwaitPromise(p2));
            flow.OnWrite(AwaitPromise(w1));
            await Fiber.BothAsync(
                async () =>
                {
                    await using var stream = flow.AsStream();
                    using var reader = new StreamReader(stream, leaveOpen: true);
                    TraceLog.Line("line: " + await reader.ReadLineAsync());
                    TraceLog.Line("line: " + await reader.ReadLineAsync());
                    TraceLog.Line("end: " + (await reader.ReadLineAsync() is null));
                    await using var writer = new StreamWriter(stream, leaveOpen: true);
                    await writer.WriteAsync("reply\n");
                    await writer.FlushAsync();
                    TraceLog.Line("flushed");
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    TraceLog.Line("resolving first");
                    r1.Resolve("first line\nsec");
                    await Fiber.YieldAsync();
                    TraceLog.Line("resolving second");
                    r2.Resolve("ond line\n");
                    for (int i = 0; i < 10; i++)
                    {
                        await Fiber.YieldAsync();
                    }

                    TraceLog.Line("accepting write");
                    wr1.Resolve(true);
                });
        });
        Assert.Equal("""
            +resolving first
            +flow: read "first line\nsec"
            +resolving second
            +line: first line
            +flow: read "ond line\n"
            +line: second line
            +end: True
            +accepting write
            +flow: wrote "reply\n"
            +flushed
            +flow: closed

            """, t);
    }

    [Fact]
    public void S29_CloseIsIdempotent()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            var stream = flow.AsStream();
            stream.Dispose();
            stream.Dispose();
            flow.Close();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => flow.ReadAsync(new byte[1]).AsTask());

            var ms = new CountingDisposeStream();
            var wrapped = Flow.FromStream(ms);
            wrapped.Close();
            wrapped.Close();
            TraceLog.Line($"stream disposed {ms.Disposals} time(s)");
            await Assert.ThrowsAsync<ObjectDisposedException>(() => wrapped.ReadAsync(new byte[1]).AsTask());
        });
        Assert.Equal("""
            +flow: closed
            +stream disposed 1 time(s)

            """, t);
    }

    [Fact]
    public void FromStreamReadsAndWritesAMemoryStream()
    {
        MockMain.Run(async _ =>
        {
            var ms = new MemoryStream();
            var flow = Flow.FromStream(ms, ownsStream: false);
            await flow.WriteStringAsync("one\ntwo\n");
            await flow.ShutdownAsync(ShutdownCommand.Send);
            ms.Position = 0;
            var r = new BufferedReader(flow, 64);
            Assert.Equal("one", await r.ReadLineAsync());
            Assert.Equal("two", await r.ReadLineAsync());
            Assert.True(await r.AtEndOfInputAsync());
        });
    }

    [Fact]
    public void FromStreamAwaitsRealAsyncStreamsOnTheFibersDomain()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, string.Concat(Enumerable.Range(0, 2000).Select(i => $"line {i}\n")));
            var (count, sameThread) = EioMain.Run(async env =>
            {
                int thread = Environment.CurrentManagedThreadId;
                var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 16, FileOptions.Asynchronous);
                var flow = Flow.FromStream(fs);
                var r = new BufferedReader(flow, 1024, 64);
                int n = 0;
                bool same = true;
                await foreach (var line in r.ReadLinesAsync())
                {
                    same &= Environment.CurrentManagedThreadId == thread && line == $"line {n}";
                    n++;
                }

                flow.Close();
                return (n, same);
            });
            Assert.Equal(2000, count);
            Assert.True(sameThread);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FromStreamReadIsCancelledByTheFiber()
    {
        var outcome = EioMain.Run(async env =>
        {
            var pipe = new Pipe();
            var flow = Flow.FromStream(pipe.Reader.AsStream());
            string result = await Fiber.FirstAsync(
                async () =>
                {
                    await flow.ReadAsync(new byte[8]);
                    return "read";
                },
                async () =>
                {
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(20));
                    return "timeout";
                });
            return result;
        });
        Assert.Equal("timeout", outcome);
    }

    private sealed class CountingDisposeStream : MemoryStream
    {
        public int Disposals { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposals++;
            base.Dispose(disposing);
        }
    }
}
