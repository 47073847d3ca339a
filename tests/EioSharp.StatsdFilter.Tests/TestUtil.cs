using System.Text;

namespace EioSharp.StatsdFilter.Tests;

internal static class TestUtil
{
    public static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    public static string S(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

    public static List<string> SplitDatagram(string payload)
    {
        var lines = new List<string>();
        foreach (ReadOnlySpan<byte> line in StatsdLineSplitter.SplitDatagram(B(payload)))
        {
            lines.Add(S(line));
        }

        return lines;
    }

    /// <summary>Feeds the stream to a framer in chunks of the given sizes (cycled), collecting lines.</summary>
    public static List<string> Frame(StatsdTcpLineFramer framer, byte[] stream, IReadOnlyList<int> chunkSizes, bool endOfStream = true)
    {
        var lines = new List<string>();
        int offset = 0;
        int chunk = 0;
        while (offset < stream.Length)
        {
            Memory<byte> buffer = framer.GetReadBuffer();
            int n = Math.Min(Math.Min(chunkSizes[chunk++ % chunkSizes.Count], buffer.Length), stream.Length - offset);
            stream.AsSpan(offset, n).CopyTo(buffer.Span);
            framer.Advance(n);
            offset += n;
            while (framer.TryReadLine(out ReadOnlySpan<byte> line))
            {
                lines.Add(S(line));
            }
        }

        if (endOfStream && framer.TryReadFinalLine(out ReadOnlySpan<byte> last))
        {
            lines.Add(S(last));
        }

        return lines;
    }
}
