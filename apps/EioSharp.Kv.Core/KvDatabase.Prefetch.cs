using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace EioSharp.Kv;

// Group prefetching of a pipelined batch's keys (issue 14, h146): a lookup is a chain of dependent loads (the bucket, the
// row, the row's item, the item's key and value arrays), each a cache miss when the keyspace is larger than the cache
// (the 1 KB -P16 SET row: 100k keys, ~110 MB of values). KvStore.PrefetchKeys walks the batch's keys one level at a
// time, issuing one prefetch per key per level, so the misses of the batch's keys overlap instead of queueing behind
// each other command by command (Chen, Ailamaki, Gibbons, Mowry: "Improving Hash Join Performance through
// Prefetching", group prefetching). Only hints: nothing here changes the table or reads past what a lookup reads.
internal sealed partial class KvDatabase
{
    /// <summary>The bucket of <paramref name="hash"/>, prefetched (level 1).</summary>
    internal unsafe void PrefetchBucket(int hash)
    {
        int[] buckets = _buckets;
        Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(buckets), hash & (buckets.Length - 1))));
    }

    /// <summary>The first row of <paramref name="hash"/>'s chain, prefetched (level 2: reads the bucket).</summary>
    internal unsafe void PrefetchRow(int hash)
    {
        int row = FirstRow(hash);
        if (row >= 0) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_rows), row)));
    }

    /// <summary>The item of the first row of <paramref name="hash"/>'s chain (a <see cref="KvKeyedValue"/>, or the
    /// record of a packed string in its page), prefetched (level 3: reads the bucket and the row).</summary>
    internal unsafe void PrefetchItem(int hash)
    {
        int row = FirstRow(hash);
        if (row < 0) return;
        ref Row r = ref _rows[row];
        switch (r.Item)
        {
            case byte[] page:
                if ((uint)r.Pos < (uint)page.Length) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(page), r.Pos)));
                break;
            case KvKeyedValue kv:
                Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.As<RawObject>(kv).Data));
                break;
        }
    }

    /// <summary>The key array and the start of the string value array of a <see cref="KvKeyedValue"/> in the first row of
    /// <paramref name="hash"/>'s chain, prefetched (level 4: reads the bucket, the row and the item); a packed record
    /// has both in the line level 3 fetched.</summary>
    internal unsafe void PrefetchItemData(int hash)
    {
        int row = FirstRow(hash);
        if (row < 0 || _rows[row].Item is not KvKeyedValue kv) return;
        Sse.Prefetch0(Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(kv.Key)));
        if (kv.Value is byte[] value && value.Length > 0)
        {
            ref byte start = ref MemoryMarshal.GetArrayDataReference(value);
            int lines = Math.Min(value.Length, PrefetchValueBytes);
            for (int at = 0; at < lines; at += 64) Sse.Prefetch0(Unsafe.AsPointer(ref Unsafe.Add(ref start, at)));
        }
    }

    /// <summary>How much of a long string value level 4 prefetches: a 1 KB value whole (ScriptBench set-batch, 1 KB SETs
    /// in batches of 16: 256 bytes 0.607-0.656 us a SET, the whole value 0.563-0.647, none 0.584; without the prefetch
    /// 1.019-1.150); beyond it the hardware's stream prefetcher follows the copy.</summary>
    internal static int PrefetchValueBytes = 1024;

    private int FirstRow(int hash)
    {
        int[] buckets = _buckets;
        int row = buckets[hash & (buckets.Length - 1)] - 1;
        return (uint)row < (uint)_rows.Length ? row : -1;
    }

    // An object's first field, for its address (the layout trick of RuntimeHelpers.GetRawData).
    private sealed class RawObject
    {
#pragma warning disable CS0649 // never assigned: only its address is taken
        public byte Data;
#pragma warning restore CS0649
    }
}
