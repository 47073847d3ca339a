using System.Text;
using EioSharp.IO;

namespace EioSharp.Jobs.Tests;

public class LineReaderTests
{
    private sealed class ChunkSource(params string[] chunks) : IFlowSource
    {
        private int _next;

        public ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            if (_next == chunks.Length)
            {
                return ValueTask.FromResult(0);
            }

            var bytes = Encoding.ASCII.GetBytes(chunks[_next++]);
            Assert.True(bytes.Length <= buffer.Length);
            bytes.CopyTo(buffer);
            return ValueTask.FromResult(bytes.Length);
        }
    }

    private static async Task<List<string>> ReadAll(LineReader r)
    {
        var lines = new List<string>();
        while (await r.ReadLineAsync() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }

    [Fact]
    public async Task Splits_lines_across_reads_with_lf_and_crlf()
    {
        var r = new LineReader(new ChunkSource("a FI", "B 1\r\n2", "0\nPI", "NG\n\nlast"), 256);
        Assert.Equal(["a FIB 1", "20", "PING", "", "last"], await ReadAll(r));
    }

    [Fact]
    public async Task Line_at_the_limit_is_accepted_one_longer_is_refused()
    {
        var ok = new LineReader(new ChunkSource(new string('x', 10) + "\r\n"), 10);
        Assert.Equal([new string('x', 10)], await ReadAll(ok));

        var tooLong = new LineReader(new ChunkSource(new string('x', 11) + "\n"), 10);
        await Assert.ThrowsAsync<InvalidDataException>(async () => await tooLong.ReadLineAsync());
    }

    [Fact]
    public async Task Endless_line_without_newline_is_refused_without_growing()
    {
        var chunks = Enumerable.Repeat(new string('y', 1000), 100).ToArray();
        var r = new LineReader(new ChunkSource(chunks), 256);
        await Assert.ThrowsAsync<InvalidDataException>(async () => await r.ReadLineAsync());
    }
}
