namespace EioSharp.Kv;

/// <summary>Gives memory back to the system after large buffers or values were dropped (a 500 MB SET, GET or DEL).</summary>
/// <remarks>
/// The runtime collects the large-object heap only when allocation pressure asks for it, so after a 500 MB value passed
/// through (or was deleted) the process would keep that memory resident, possibly for ever when little is allocated
/// afterwards. The server notes the large buffers it drops (<see cref="Note"/>: reply and AOF buffers shrinking back)
/// and the store's cron reports the dataset size (<see cref="MaybeCollect"/>); once at least
/// <see cref="Threshold"/> bytes (and a quarter of the heap) were released since the last time, it asks for a full, compacting collection that
/// returns free memory to the system (<see cref="GCCollectionMode.Aggressive"/>). It runs on the store's cron, at most
/// once a second, and only after such large releases, so ordinary traffic never pays for it.
/// <para><b>Thread safety</b>: <see cref="Note"/> from any thread; <see cref="MaybeCollect"/> from the store owner only.</para>
/// </remarks>
internal static class MemoryReturn
{
    /// <summary>Bytes released before a collection is asked for: 64 MiB.</summary>
    public const long Threshold = 64L << 20;

    private static long s_released;
    private static long s_datasetPeak;
    private static long s_lastCollectMs;

    /// <summary>Records that a buffer of <paramref name="bytes"/> was dropped.</summary>
    public static void Note(long bytes) => Interlocked.Add(ref s_released, bytes);

    /// <summary>Called by the store's cron with the dataset size (bytes); collects when enough was released.</summary>
    /// <returns>True when a collection ran.</returns>
    public static bool MaybeCollect(long datasetBytes)
    {
        if (datasetBytes > s_datasetPeak)
        {
            s_datasetPeak = datasetBytes;
        }

        long released = Volatile.Read(ref s_released) + (s_datasetPeak - datasetBytes);
        long now = Environment.TickCount64;
        if (released < Threshold || now - s_lastCollectMs < 1000)
        {
            return false;
        }

        // On a large heap, only for a release that is a good part of it: a full collection costs about the heap's size,
        // so its cost stays proportional to the memory it gives back (a cache deleting 64 MB a second out of 10 GB must
        // not pay a full collection every second).
        if (released < GC.GetTotalMemory(forceFullCollection: false) / 4)
        {
            return false;
        }

        s_lastCollectMs = now;
        Interlocked.Exchange(ref s_released, 0);
        s_datasetPeak = datasetBytes;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        KvNativeHeap.Trim();
        return true;
    }
}
