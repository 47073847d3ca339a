using System.Text;
using EioSharp.IO;
using EioSharp.Mock;

namespace EioSharp.Tests.IO;

/// <summary>Eio's Buf_read / Buf_write items added in issue 16: BE/LE integers, take_while1, skip_while1, seq, of_string,
/// as_flow, printf.</summary>
public class BufferItemTests
{
    [Fact]
    public void Binary_integers_round_trip_through_writer_and_reader_in_both_byte_orders()
    {
        var r = MockMain.Run(async env =>
        {
            var sink = new BufferSink();
            await BufferedWriter.WithFlowAsync(sink, w =>
            {
                w.WriteUInt8(0xAB);
                w.WriteUInt16BigEndian(0x0102);
                w.WriteUInt16LittleEndian(0x0102);
                w.WriteUInt32BigEndian(0xDEADBEEF);
                w.WriteInt32LittleEndian(-2);
                w.WriteUInt48BigEndian(0x0102_0304_0506);
                w.WriteUInt48LittleEndian(0x0102_0304_0506);
                w.WriteUInt64BigEndian(ulong.MaxValue - 1);
                w.WriteInt64LittleEndian(long.MinValue);
                w.WriteDoubleBigEndian(1.5);
                w.WriteSingleLittleEndian(-0.25f);
                w.WriteFormat("{0}-{1:F1}", 7, 2.5);
                return Task.CompletedTask;
            });
            var bytes = sink.ToArray();
            string head = Convert.ToHexString(bytes, 0, 5);
            // Slice the reader over a source that hands out 3 bytes at a time, so every read crosses a refill.
            var rd = new BufferedReader(new ChunkedSource(bytes, 3), 64);
            var values = new List<string>
            {
                (await rd.ReadUInt8Async()).ToString("X"),
                (await rd.ReadUInt16BigEndianAsync()).ToString("X"),
                (await rd.ReadUInt16LittleEndianAsync()).ToString("X"),
                (await rd.ReadUInt32BigEndianAsync()).ToString("X"),
                (await rd.ReadInt32LittleEndianAsync()).ToString(),
                (await rd.ReadUInt48BigEndianAsync()).ToString("X"),
                (await rd.ReadUInt48LittleEndianAsync()).ToString("X"),
                (await rd.ReadUInt64BigEndianAsync()).ToString("X"),
                (await rd.ReadInt64LittleEndianAsync()).ToString(),
                (await rd.ReadDoubleBigEndianAsync()).ToString(System.Globalization.CultureInfo.InvariantCulture),
                (await rd.ReadSingleLittleEndianAsync()).ToString(System.Globalization.CultureInfo.InvariantCulture),
                await rd.TakeAllStringAsync(),
            };
            var end = await Record.ExceptionAsync(async () => await rd.ReadUInt16BigEndianAsync());
            return head + " " + string.Join(" ", values) + " " + end?.GetType().Name;
        });
        Assert.Equal("AB01020201 AB 102 102 DEADBEEF -2 10203040506 10203040506 FFFFFFFFFFFFFFFE -9223372036854775808 1.5 -0.25 7-2.5 EndOfStreamException", r);
    }

    [Fact]
    public void TakeWhile1_and_SkipWhile1_need_one_match_and_Seq_parses_until_end_of_input()
    {
        var r = MockMain.Run(async env =>
        {
            var rd = BufferedReader.OfString("12 345  6");
            var items = new List<string>();
            await foreach (var n in rd.ReadSequenceAsync(async x =>
            {
                var digits = Encoding.ASCII.GetString(await x.TakeWhile1Async(b => char.IsAsciiDigit((char)b)));
                if (!await x.AtEndOfInputAsync())
                {
                    await x.SkipWhile1Async(b => b == ' ');
                }

                return digits;
            }))
            {
                items.Add(n);
            }

            var rd2 = BufferedReader.OfString("x1");
            var e1 = await Record.ExceptionAsync(async () => await rd2.TakeWhile1Async(b => char.IsAsciiDigit((char)b)));
            var e2 = await Record.ExceptionAsync(async () => await rd2.SkipWhile1Async(b => b == ' '));
            var e3 = await Record.ExceptionAsync(async () => await BufferedReader.OfString("").TakeWhile1Async(_ => true));
            return $"{string.Join(",", items)} {e1?.GetType().Name} {e2?.GetType().Name} {e3?.GetType().Name} {(char)await rd2.AnyCharAsync()}";
        });
        Assert.Equal("12,345,6 FormatException FormatException FormatException x", r);
    }

    [Fact]
    public void AsFlow_hands_out_the_buffered_bytes_then_the_rest_of_the_source()
    {
        var r = MockMain.Run(async env =>
        {
            var rd = new BufferedReader(new ChunkedSource(Encoding.ASCII.GetBytes("HEADER\nbody part one, body part two"), 10), 64);
            string header = await rd.ReadLineAsync();
            var sink = new BufferSink();
            await rd.AsFlow().CopyToAsync(sink);
            return header + "|" + Encoding.ASCII.GetString(sink.ToArray());
        });
        Assert.Equal("HEADER|body part one, body part two", r);
    }

    [Fact]
    public void Close_refuses_later_writes_and_still_flushes_what_was_written()
    {
        var r = MockMain.Run(async env =>
        {
            var sink = new BufferSink();
            string refused = "";
            await BufferedWriter.WithFlowAsync(sink, w =>
            {
                w.WriteString("kept");
                w.Close();
                w.Close();
                refused = $"{w.IsClosed} {Record.Exception(() => w.WriteString("lost"))?.GetType().Name} {Record.Exception(() => w.Write([]))?.GetType().Name}";
                return Task.CompletedTask;
            });
            return refused + " " + Encoding.ASCII.GetString(sink.ToArray());
        });
        Assert.Equal("True InvalidOperationException InvalidOperationException kept", r);
    }

    /// <summary>A source that returns at most <c>chunk</c> bytes per read.</summary>
    private sealed class ChunkedSource(byte[] data, int chunk) : IFlowSource
    {
        private int _offset;

        public ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            int n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _offset);
            data.AsSpan(_offset, n).CopyTo(buffer.Span);
            _offset += n;
            return new ValueTask<int>(n);
        }
    }
}
