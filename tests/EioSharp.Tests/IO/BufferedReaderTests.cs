using System.Buffers;
using System.Text;
using EioSharp.IO;
using EioSharp.Mock;
using static EioSharp.Tests.IO.IOTestKit;

namespace EioSharp.Tests.IO;

/// <summary>Eio's buf_read tests, restated (S25).</summary>
public class BufferedReaderTests
{
    private static T Run<T>(Func<Task<T>> body) => MockMain.Run(_ => body());

    private static void Run(Func<Task> body) => MockMain.Run(_ => body());

    /// <summary>A parser that uses every reader operation; its transcript must not depend on how the input is split.</summary>
    private static async Task<string> ParseEverything(BufferedReader r)
    {
        var parts = new List<string>();
        await r.ExpectAsync("GET ");
        parts.Add(Encoding.UTF8.GetString(await r.TakeWhileAsync(b => b != (byte)' ')));
        parts.Add(((char)await r.AnyCharAsync()).ToString());
        parts.Add(await r.ReadLineAsync());
        parts.Add(await r.ReadLineAsync());
        parts.Add(await r.ReadLineAsync());
        parts.Add(Encoding.UTF8.GetString((await r.ReadLineMemoryAsync()).Span));
        parts.Add(((char)await r.PeekByteAsync()).ToString());
        parts.Add(await r.TakeStringAsync(4));
        await r.SkipWhileAsync(b => b is >= (byte)'0' and <= (byte)'9');
        await r.ExpectAsync((byte)'-');
        await r.EnsureAsync(2);
        parts.Add(Encoding.UTF8.GetString(r.Buffered[..2]));
        r.Consume(1);
        await r.SkipAsync(1);
        parts.Add(Encoding.UTF8.GetString(await r.TakeAsync(2)));
        parts.Add(await r.TakeAllStringAsync());
        parts.Add((await r.AtEndOfInputAsync()).ToString());
        await r.EndOfInputAsync();
        parts.Add(r.BytesConsumed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return string.Join("|", parts);
    }

    private const string Everything = "GET /x HTTP/1.1\r\nHost: a\n\r\nraw\nbody12345-tail-end";
    private const string EverythingParsed = "/x| |HTTP/1.1|Host: a||raw|b|body|ta|il|-end|True|49";

    [Fact]
    public void EveryOperationGivesTheSameResultAtEverySplit()
    {
        foreach (var (name, make) in AllSplits(Everything))
        {
            foreach (int maxSize in new[] { 20, 4096 })
            {
                var got = Run(() => ParseEverything(new BufferedReader(make(), maxSize, initialSize: 1)));
                Assert.True(EverythingParsed == got, $"{name}, maxSize {maxSize}: {got}");
            }
        }
    }

    [Fact]
    public void LinesEndWithLfOrCrLfAndALoneCrStays()
    {
        foreach (var (name, make) in AllSplits("a\r\nb\nc\rd\r\n\ne"))
        {
            var lines = Run(async () =>
            {
                var r = new BufferedReader(make(), 64, initialSize: 2);
                var list = new List<string>();
                await foreach (var line in r.ReadLinesAsync())
                {
                    list.Add(line);
                }

                return list;
            });
            Assert.True(lines.SequenceEqual(["a", "b", "c\rd", "", "e"]), name + ": " + string.Join(",", lines));
        }
    }

    [Fact]
    public void TryReadLineWithFillIsTheZeroCopyProtocolLoop()
    {
        foreach (var (name, make) in AllSplits("SET k 1\r\nGET k\r\n"))
        {
            var got = Run(async () =>
            {
                var r = new BufferedReader(make(), 16, initialSize: 1);
                var seen = new List<string>();
                while (true)
                {
                    if (r.TryReadLine(out var line))
                    {
                        seen.Add(Encoding.ASCII.GetString(line));
                        continue;
                    }

                    if (!await r.FillAsync())
                    {
                        break;
                    }
                }

                return string.Join(",", seen);
            });
            Assert.True(got == "SET k 1,GET k", name + ": " + got);
        }
    }

    [Fact]
    public void S25_LineLongerThanMaxSizeThrowsWithoutAllocatingPastIt()
    {
        foreach (int chunk in new[] { 1, 7, 1000 })
        {
            Run(async () =>
            {
                var source = new RepeatSource((byte)'x', chunk);
                var r = new BufferedReader(source, maxSize: 64, initialSize: 8);
                await Assert.ThrowsAsync<BufferLimitExceededException>(() => r.ReadLineAsync().AsTask());
                Assert.True(r.Capacity <= 64, $"capacity {r.Capacity}");
                Assert.Equal(64, r.BufferedCount);
                Assert.True(source.Delivered <= 64);
            });
        }
    }

    [Fact]
    public void S25_LineAndTerminatorThatFitExactlyAreRead()
    {
        var line = new string('y', 63);
        var got = Run(() => new BufferedReader(OneBytePerRead(line + "\nz"), 64, 4).ReadLineAsync().AsTask());
        Assert.Equal(line, got);
    }

    [Fact]
    public void S25_TakeMoreThanMaxSizeThrowsBeforeReading()
    {
        Run(async () =>
        {
            var source = new CountingSource(new StringSource(new string('a', 200)));
            var r = new BufferedReader(source, 64);
            await Assert.ThrowsAsync<BufferLimitExceededException>(() => r.TakeAsync(65).AsTask());
            await Assert.ThrowsAsync<BufferLimitExceededException>(() => r.EnsureAsync(65).AsTask());
            Assert.Equal(0, source.Reads);
            Assert.Equal(64, (await r.TakeAsync(64)).Length);
        });
    }

    [Fact]
    public void S25_TakeAllAndTakeWhileOverTheLimitThrow()
    {
        Run(async () =>
        {
            var r = new BufferedReader(new StringSource(new string('a', 100)), 32, 4);
            await Assert.ThrowsAsync<BufferLimitExceededException>(() => r.TakeAllAsync().AsTask());
            Assert.True(r.Capacity <= 32);
            var r2 = new BufferedReader(new StringSource(new string('a', 100)), 32, 4);
            await Assert.ThrowsAsync<BufferLimitExceededException>(() => r2.TakeWhileAsync(b => b == (byte)'a').AsTask());
            Assert.True(r2.Capacity <= 32);
        });
    }

    [Fact]
    public void S25_SkippingStreamsThroughWithoutGrowing()
    {
        Run(async () =>
        {
            var r = new BufferedReader(new RepeatSource((byte)'z', 5), maxSize: 16, initialSize: 16);
            await r.SkipAsync(100_000);
            Assert.Equal(100_000, r.BytesConsumed);
            Assert.Equal(16, r.Capacity);

            var r2 = new BufferedReader(new StringSource(new string(' ', 10_000) + "x"), maxSize: 16, initialSize: 16);
            await r2.SkipWhileAsync(b => b == (byte)' ');
            Assert.Equal((byte)'x', await r2.AnyCharAsync());
            Assert.Equal(16, r2.Capacity);
        });
    }

    [Fact]
    public void S25_ParseTurnsFormatEndOfInputAndLimitErrorsIntoMessages()
    {
        var results = Run(async () => new[]
        {
            (await BufferedReader.ParseAsync("abc\n", r => r.ReadLineAsync())).ToString(),
            (await BufferedReader.ParseAsync("ab", async r => { await r.ExpectAsync((byte)'x'); return 0; })).ToString(),
            (await BufferedReader.ParseAsync("ab", async r => { await r.ExpectAsync("ac"); return 0; })).ToString(),
            (await BufferedReader.ParseAsync("ab", r => r.TakeStringAsync(3))).ToString(),
            (await BufferedReader.ParseAsync("a\nbcdef\n", async r => await r.ReadLineAsync() + await r.ReadLineAsync(), maxSize: 4)).ToString(),
            (await BufferedReader.ParseAsync("ab\nc", r => r.ReadLineAsync())).ToString(),
            (await BufferedReader.ParseAsync(new StringSource("12"), r => r.TakeStringAsync(2), maxSize: 2)).ToString(),
        });
        Assert.Equal(
            [
                "Ok abc",
                "Error Expected 'x' but got 'a'",
                "Error Expected \"ac\" but got \"ab\"",
                "Error Unexpected end-of-file at offset 0",
                "Error Buffer size limit exceeded when reading at offset 2",
                "Error Unexpected data after parsing (at offset 3)",
                "Ok 12",
            ],
            results);
    }

    [Fact]
    public void S25_ParseResultValueThrowsTheMessageOnFailure()
    {
        var result = Run(() => BufferedReader.ParseAsync("", r => r.AnyCharAsync()).AsTask());
        Assert.False(result.IsSuccess);
        var ex = Assert.Throws<InvalidOperationException>(() => result.Value);
        Assert.Equal("Unexpected end-of-file at offset 0", ex.Message);
        Assert.False(result.TryGetValue(out _));
    }

    [Fact]
    public void EndOfInputCases()
    {
        Run(async () =>
        {
            var empty = new BufferedReader(new StringSource(""), 8);
            await Assert.ThrowsAsync<EndOfStreamException>(() => empty.ReadLineAsync().AsTask());
            await Assert.ThrowsAsync<EndOfStreamException>(() => empty.AnyCharAsync().AsTask());
            Assert.Equal(-1, await empty.PeekByteAsync());
            Assert.True(await empty.AtEndOfInputAsync());
            await empty.EndOfInputAsync();
            Assert.Empty(await empty.TakeAllAsync());
            Assert.Empty(await empty.TakeWhileAsync(_ => true));
            await empty.SkipWhileAsync(_ => true);

            var r = new BufferedReader(new StringSource("a\nbc"), 8);
            Assert.Equal("a", await r.ReadLineAsync());
            Assert.Equal("bc", await r.ReadLineAsync());
            await Assert.ThrowsAsync<EndOfStreamException>(() => r.ReadLineAsync().AsTask());

            var t = new BufferedReader(new StringSource("abc"), 8);
            await Assert.ThrowsAsync<EndOfStreamException>(() => t.TakeAsync(5).AsTask());
            Assert.Equal(3, t.BufferedCount);
            await Assert.ThrowsAsync<FormatException>(() => t.EndOfInputAsync().AsTask());
            await Assert.ThrowsAsync<EndOfStreamException>(() => t.SkipAsync(4).AsTask());
            Assert.Equal(3, t.BytesConsumed);

            var nl = new BufferedReader(new StringSource("x\n"), 8);
            Assert.Equal("x", await nl.ReadLineAsync());
            Assert.True(await nl.AtEndOfInputAsync());
        });
    }

    /// <summary>A source that suspends the fiber (a yield) before each read of at most <paramref name="chunk"/> bytes.</summary>
    private sealed class YieldingSource(byte[] data, int chunk) : IFlowSource
    {
        private int _pos;

        public async ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            await Fiber.YieldAsync();
            int n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _pos);
            data.AsSpan(_pos, n).CopyTo(buffer.Span);
            _pos += n;
            return n;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AnyCharReadsEveryByteValueAcrossRefillsThenEndOfInput(bool suspending)
    {
        // Every byte value three times, delivered 7 bytes per read into a 16-byte buffer: most calls take the inlined fast
        // path, each refill the slow one (completed synchronously, or after a real suspension).
        var data = Enumerable.Range(0, 3 * 256).Select(i => (byte)(i % 256)).ToArray();
        var (got, end) = Run(async () =>
        {
            IFlowSource source = suspending
                ? new YieldingSource(data, 7)
                : new BufferSource(data.Chunk(7).Select(c => (ReadOnlyMemory<byte>)c));
            var r = new BufferedReader(source, 16);
            var bytes = new List<byte>();
            for (int i = 0; i < data.Length; i++)
            {
                bytes.Add(await r.AnyCharAsync());
            }

            var e = await Assert.ThrowsAsync<EndOfStreamException>(async () => await r.AnyCharAsync());
            return (bytes.ToArray(), e);
        });
        Assert.Equal(data, got);
        Assert.NotNull(end);
    }

    [Fact]
    public void S13_AnyCharWaitingForDataIsCancelledAndTheReaderGoesOnAfterwards()
    {
        // Two bytes arrive, then the source waits on a promise that is never resolved: the third AnyCharAsync suspends in
        // the refill until the race's other branch wins and cancels it. Nothing was committed, so the reader goes on.
        var (log, consumed) = Run(async () =>
        {
            var flow = new MockFlow("in");
            var (never, _) = Promise.Create<string>();
            flow.OnRead(MockAction.Return("ab"), MockAction.AwaitPromise(never));
            var r = new BufferedReader(flow, 16);
            var log = new List<string> { ((char)await r.AnyCharAsync()).ToString(), ((char)await r.AnyCharAsync()).ToString() };
            await Fiber.FirstAsync(
                async () =>
                {
                    try
                    {
                        log.Add(((char)await r.AnyCharAsync()).ToString());
                    }
                    catch (CancelledException)
                    {
                        log.Add("cancelled");
                        throw;
                    }
                },
                async () =>
                {
                    await Fiber.YieldAsync();
                    log.Add("other");
                });
            flow.OnRead(MockAction.Return("c"));
            log.Add(((char)await r.AnyCharAsync()).ToString());
            var end = await Assert.ThrowsAsync<EndOfStreamException>(async () => await r.AnyCharAsync());
            log.Add(end.GetType().Name);
            return (log, r.BytesConsumed);
        });
        Assert.Equal(["a", "b", "other", "cancelled", "c", "EndOfStreamException"], log);
        Assert.Equal(3, consumed);
    }

    [Fact]
    public void AnyCharRefillsThatCompleteSynchronouslyDoNotAllocate()
    {
        Run(async () =>
        {
            // A source that never suspends: the slow path (one per refill) hands back a cached completed task.
            var r = new BufferedReader(new RepeatSource((byte)'z', 3), 8);
            for (int i = 0; i < 100; i++)
            {
                await r.AnyCharAsync(); // warm-up: the cached task for 'z' exists
            }

            var meter = new AllocationMeter(); // the fewest bytes over warm rounds
            while (meter.NextRound())
            {
                long sum = 0;
                meter.Start();
                for (int i = 0; i < 3000; i++)
                {
                    var vt = r.AnyCharAsync();
                    if (!vt.IsCompletedSuccessfully)
                    {
                        throw new InvalidOperationException("not synchronous");
                    }

                    sum += vt.Result;
                }

                meter.Stop();
                Assert.Equal(3000L * 'z', sum);
            }

            Assert.Equal(0, meter.Fewest); // 1,000 refills a round
        });
    }

    [Fact]
    public void BufferedOperationsCompleteSynchronouslyWithoutAllocating()
    {
        Run(async () =>
        {
            var data = Bytes(new string('q', 1000) + "line\r\n" + "next\n");
            var meter = new AllocationMeter(); // a fresh reader a round; the fewest bytes over warm rounds
            while (meter.NextRound())
            {
                var r = new BufferedReader(new BufferSource(data), 4096);
                await r.EnsureAsync(data.Length);
                meter.Start();
                int sum = 0;
                for (int i = 0; i < 1000; i++)
                {
                    var vt = r.AnyCharAsync();
                    if (!vt.IsCompletedSuccessfully)
                    {
                        throw new InvalidOperationException("not synchronous");
                    }

                    sum += vt.Result;
                }

                bool line = r.TryReadLine(out var span);
                int len = span.Length;
                var peek = r.PeekByteAsync();
                var ensure = r.EnsureAsync(3);
                var memory = r.ReadLineMemoryAsync();
                meter.Stop();
                Assert.Equal(1000 * 'q', sum);
                Assert.True(line);
                Assert.Equal(4, len);
                Assert.True(peek.IsCompletedSuccessfully && ensure.IsCompletedSuccessfully && memory.IsCompletedSuccessfully);
                Assert.Equal("next", Encoding.ASCII.GetString(memory.Result.Span));
            }

            Assert.Equal(0, meter.Fewest);
        });
    }

    [Fact]
    public void ConsumeRejectsMoreThanBuffered()
    {
        Run(async () =>
        {
            var r = new BufferedReader(new StringSource("ab"), 8);
            await r.EnsureAsync(2);
            Assert.Throws<ArgumentOutOfRangeException>(() => r.Consume(3));
            r.Consume(2);
            Assert.Equal(2, r.BytesConsumed);
        });
    }

    [Fact]
    public void ReadsFromAMockFlowAreTraced()
    {
        var t = MockMain.Trace(async _ =>
        {
            var flow = new MockFlow();
            flow.OnRead(MockAction.Return("hel"), MockAction.Return("lo\r\nwor"), MockAction.Return("ld\n"));
            var r = new BufferedReader(flow, 64);
            TraceLog.Line(await r.ReadLineAsync());
            TraceLog.Line(await r.ReadLineAsync());
            TraceLog.Line((await r.AtEndOfInputAsync()).ToString());
        });
        Assert.Equal("""
            +flow: read "hel"
            +flow: read "lo\r\nwor"
            +hello
            +flow: read "ld\n"
            +world
            +True

            """, t);
    }
    [Fact]
    public void ReadIntoTakesBufferedBytesFirstThenReadsTheSourceDirectly()
    {
        var got = Run(async () =>
        {
            var source = new BufferSource(new ReadOnlyMemory<byte>[] { "hd:0123"u8.ToArray(), "456789"u8.ToArray(), "!"u8.ToArray() });
            var r = new BufferedReader(source, 64, initialSize: 8);
            await r.EnsureAsync(3);
            r.Consume(3); // "hd:" was a header; "0123" stays buffered
            var payload = new byte[10];
            int a = await r.ReadIntoAsync(payload); // the buffered part only
            int b = await r.ReadIntoAsync(payload.AsMemory(a)); // then straight from the source
            long consumed = r.BytesConsumed;
            int capacity = r.Capacity;
            byte last = await r.AnyCharAsync(); // the reader goes on after the direct read
            int end = await r.ReadIntoAsync(new byte[4]);
            return $"{a},{b},{Encoding.ASCII.GetString(payload)},{consumed},{capacity},{(char)last},{end}";
        });
        Assert.Equal("4,6,0123456789,13,8,!,0", got);
    }

    [Fact]
    public void ReadIntoRejectsAnEmptyDestination() =>
        Run(async () =>
        {
            var r = new BufferedReader(new BufferSource("abc"u8.ToArray()), 16);
            await Assert.ThrowsAsync<ArgumentException>(async () => await r.ReadIntoAsync(Memory<byte>.Empty));
        });

    [Fact]
    public void TrimExcessGivesBackAGrownBufferKeepingWhatIsBuffered()
    {
        var got = Run(async () =>
        {
            var r = new BufferedReader(new BufferSource(Encoding.ASCII.GetBytes(new string('x', 100) + "\ntail")), 1024, initialSize: 8);
            string line = await r.ReadLineAsync(); // grows the buffer past 100 bytes
            int grown = r.Capacity;
            r.TrimExcess(8); // "tail" (4 bytes, maybe not all read yet) fits: back to 8
            int trimmed = r.Capacity;
            r.TrimExcess(2); // more is buffered than 2 bytes would hold: unchanged, unless nothing is buffered
            string rest = Encoding.ASCII.GetString(await r.TakeAllAsync());
            return $"{line.Length},{grown > 100},{trimmed},{rest}";
        });
        Assert.Equal("100,True,8,tail", got);
    }

    /// <summary>An <see cref="ArrayPool{T}"/> that records what it hands out and gets back (arrays of exactly the asked size).</summary>
    private sealed class RecordingPool : ArrayPool<byte>
    {
        public readonly List<byte[]> Rented = [];
        public readonly List<byte[]> Returned = [];

        public override byte[] Rent(int minimumLength)
        {
            var a = new byte[minimumLength];
            Rented.Add(a);
            return a;
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            Assert.DoesNotContain(Returned, r => ReferenceEquals(r, array)); // never twice
            Returned.Add(array);
        }
    }

    [Fact]
    public void A_pooled_reader_returns_its_first_buffer_on_release_and_can_no_longer_be_read()
    {
        var pool = new RecordingPool();
        var got = Run(async () =>
        {
            var r = new BufferedReader(new BufferSource("PING\r\nrest"u8.ToArray()), 1024, 16, pool);
            string line = await r.ReadLineAsync();
            byte[] first = pool.Rented.Single();
            r.Release();
            r.Release(); // the second time: nothing
            var afterRelease = $"{r.BufferedCount},{r.Capacity},{r.Buffered.Length}";
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await r.FillAsync());
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await r.ReadIntoAsync(new byte[4]));
            return $"{line},{ReferenceEquals(pool.Returned.Single(), first)},{first.Length},{afterRelease}";
        });
        Assert.Equal("PING,True,16,0,0,0", got);
    }

    [Fact]
    public void A_pooled_reader_that_grew_leaves_the_grown_buffer_out_of_the_pool_and_trims_back_into_a_rented_one()
    {
        var pool = new RecordingPool();
        var got = Run(async () =>
        {
            var r = new BufferedReader(new BufferSource(Encoding.ASCII.GetBytes(new string('x', 100) + "\n")), 1024, 16, pool);
            var grownReader = new BufferedReader(new BufferSource(Encoding.ASCII.GetBytes(new string('y', 100) + "\n")), 1024, 16, pool);
            await r.ReadLineAsync(); // grows past 16 bytes: the rented array is dropped, not returned while views may hold it
            await grownReader.ReadLineAsync();
            int returnedWhileGrowing = pool.Returned.Count;
            r.TrimExcess(16); // back to the first size: rented again
            r.Release(); // returns the re-rented array
            grownReader.Release(); // still grown: nothing goes back
            return $"{returnedWhileGrowing},{pool.Rented.Count},{pool.Returned.Count},{ReferenceEquals(pool.Returned.Single(), pool.Rented[2])}";
        });
        Assert.Equal("0,3,1,True", got);
    }
}
