namespace EioSharp.StatsdFilter;

/// <summary>An immutable set of byte strings that can be probed with a span without allocating.</summary>
/// <remarks><b>Thread safety</b>: immutable after construction; safe for concurrent reads.</remarks>
internal sealed class ByteStringSet
{
    private readonly byte[][][] _buckets;
    private readonly int _mask;

    public ByteStringSet(IEnumerable<byte[]> items)
    {
        byte[][] distinct = [.. items.DistinctBy(Convert.ToBase64String)];
        Count = distinct.Length;
        int size = 1;
        while (size < distinct.Length * 2)
        {
            size <<= 1;
        }

        _mask = size - 1;
        var lists = new List<byte[]>[size];
        foreach (byte[] item in distinct)
        {
            int index = Hash(item) & _mask;
            (lists[index] ??= []).Add(item);
        }

        _buckets = new byte[size][][];
        for (int i = 0; i < size; i++)
        {
            _buckets[i] = lists[i] is null ? [] : [.. lists[i]];
        }
    }

    public int Count { get; }

    public bool Contains(ReadOnlySpan<byte> key)
    {
        if (Count == 0)
        {
            return false;
        }

        foreach (byte[] candidate in _buckets[Hash(key) & _mask])
        {
            if (key.SequenceEqual(candidate))
            {
                return true;
            }
        }

        return false;
    }

    private static int Hash(ReadOnlySpan<byte> key)
    {
        var hash = default(HashCode);
        hash.AddBytes(key);
        return hash.ToHashCode();
    }
}
