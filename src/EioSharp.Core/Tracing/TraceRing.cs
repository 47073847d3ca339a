namespace EioSharp.Tracing;

/// <summary>A fixed-size ring of trace events with one writer (a domain's thread, or writers serialised by a lock) and one
/// reader that may run concurrently on another thread.</summary>
/// <remarks>The writer never waits: when the ring is full it overwrites the oldest event (a flight recorder). A reader
/// that falls behind by more than the capacity loses the overwritten events and is told how many. A slot read while
/// the writer overwrites it is detected (the write count is re-read after the copy) and counted as lost.</remarks>
internal sealed class TraceRing
{
    private readonly TraceEvent[] _slots;
    private readonly int _mask;
    private long _written;

    public TraceRing(int domainId, string name, int capacity)
    {
        int size = 1;
        while (size < capacity)
        {
            size <<= 1;
        }

        _slots = new TraceEvent[size];
        _mask = size - 1;
        DomainId = domainId;
        Name = name;
    }

    public int DomainId { get; }

    public string Name { get; }

    public int Capacity => _slots.Length;

    /// <summary>The number of events ever written.</summary>
    public long Written => Volatile.Read(ref _written);

    /// <summary>The session this ring belongs to (rings are replaced when a new session starts).</summary>
    public int Generation { get; init; }

    public void Write(in TraceEvent e)
    {
        long i = _written;
        _slots[i & _mask] = e;
        Volatile.Write(ref _written, i + 1);
    }

    /// <summary>Copies the events written since <paramref name="cursor"/> into <paramref name="into"/> and advances the cursor.</summary>
    /// <returns>The number of events lost (overwritten before they could be read).</returns>
    public long ReadFrom(ref long cursor, List<TraceEvent> into)
    {
        long end = Volatile.Read(ref _written);
        long lost = 0;
        if (end - cursor > _slots.Length)
        {
            lost += end - _slots.Length - cursor;
            cursor = end - _slots.Length;
        }

        int start = into.Count;
        for (long i = cursor; i < end; i++)
        {
            into.Add(_slots[i & _mask]);
        }

        // Slots the writer may have overwritten while we copied them are dropped.
        long after = Volatile.Read(ref _written);
        long firstSafe = after - _slots.Length + 1; // the write at index `after` may be under way
        if (firstSafe > cursor)
        {
            int bad = (int)Math.Min(firstSafe - cursor, end - cursor);
            into.RemoveRange(start, bad);
            lost += bad;
        }

        cursor = end;
        return lost;
    }
}
