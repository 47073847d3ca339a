using System.Runtime.InteropServices;

namespace EioSharp.Kv;

/// <summary>Gives the free pages of the C heap (glibc's malloc arenas) back to the system: <c>malloc_trim(0)</c>.</summary>
/// <remarks>
/// <para>The .NET runtime allocates its own native memory with <c>malloc</c>: the JIT's arenas for each method it
/// compiles, type-loader and tiering bookkeeping, thread start-up. glibc keeps what was freed in its arenas and returns
/// only the free top of the main heap, so after start-up and after the first requests (when most methods are compiled,
/// then recompiled at tier 1) the JIT build of the server kept 6-7 MB of freed C heap resident (1M 16-byte keys: 130 MB
/// RSS before, 124 MB after one trim; docs/BENCHMARKS.md, Session 14). <c>malloc_trim(0)</c> walks every arena and
/// releases its free pages (MADV_DONTNEED), not only the top.</para>
/// <para>The server calls <see cref="Trim"/> where it already pays for a full, compacting garbage collection that returns
/// memory (its idle compaction, <c>MemoryReturn</c>, MEMORY PURGE, the collection before serving), so the trim runs at
/// most once a second and never on the request path. Its cost is a walk of the arenas' free lists (well under a
/// millisecond at these sizes).</para>
/// <para>On a C library without <c>malloc_trim</c> (musl) the first call finds no entry point and every later call
/// does nothing.</para>
/// <para><b>Thread safety</b>: any thread (glibc locks each arena while trimming it).</para>
/// </remarks>
public static class KvNativeHeap
{
    private static int s_unavailable;
    private static long s_trims;

    /// <summary>Number of completed <c>malloc_trim</c> calls since the process started (MEMORY MALLOC-STATS, tests).</summary>
    public static long Trims => Volatile.Read(ref s_trims);

    /// <summary>Releases the C heap's free pages to the system (glibc <c>malloc_trim(0)</c>).</summary>
    /// <returns>True when the C library released memory; false when it had none to release or has no
    /// <c>malloc_trim</c>. Never throws.</returns>
    public static bool Trim()
    {
        if (Volatile.Read(ref s_unavailable) != 0) return false;
        try
        {
            bool released = malloc_trim(0) != 0;
            Interlocked.Increment(ref s_trims);
            return released;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            Volatile.Write(ref s_unavailable, 1);
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);
}
