using System.Text;
using EioSharp.IO;

namespace EioSharp.Tests.IO;

/// <summary>Sources that split input at chosen places, for checking parsers at every byte boundary.</summary>
internal static class IOTestKit
{
    public static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>One byte per read.</summary>
    public static BufferSource OneBytePerRead(string s) =>
        new(Bytes(s).Select(b => (ReadOnlyMemory<byte>)new[] { b }));

    /// <summary>Two reads: bytes [0, at) then [at, end).</summary>
    public static BufferSource SplitAt(string s, int at)
    {
        var b = Bytes(s);
        return new BufferSource([b.AsMemory(0, at), b.AsMemory(at)]);
    }

    /// <summary>Every way of delivering <paramref name="s"/>: whole, one byte per read, and split at each position.</summary>
    public static IEnumerable<(string Name, Func<IFlowSource> Make)> AllSplits(string s)
    {
        yield return ("whole", () => new StringSource(s));
        yield return ("one byte per read", () => OneBytePerRead(s));
        for (int i = 0; i <= Bytes(s).Length; i++)
        {
            int at = i;
            yield return ($"split at {at}", () => SplitAt(s, at));
        }
    }
}

/// <summary>A source that counts reads.</summary>
internal sealed class CountingSource(IFlowSource inner) : IFlowSource
{
    public int Reads { get; private set; }

    public ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        Reads++;
        return inner.ReadAsync(buffer);
    }
}

/// <summary>An endless source of one repeated byte, in reads of at most <paramref name="chunk"/> bytes.</summary>
internal sealed class RepeatSource(byte value, int chunk = int.MaxValue) : IFlowSource
{
    public long Delivered { get; private set; }

    public ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        int n = Math.Min(chunk, buffer.Length);
        buffer.Span[..n].Fill(value);
        Delivered += n;
        return new ValueTask<int>(n);
    }
}
