// Startup hook for bench/alloc-by-type.sh: counts the runtime's GCAllocationTick events per allocated type. The runtime
// raises one tick per ~100 KB allocated on a thread (the type is the one whose allocation crossed the threshold), so the
// tick counts are a sample proportional to bytes allocated per type. Cumulative counts are written every 2 s and at exit
// to $EIOSHARP_ALLOC_TYPES_OUT (atomically: a temp file renamed over it), so a caller can copy the file at the start and
// end of a phase and diff the two.
using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

internal static class StartupHook
{
    private static AllocationTickListener? s_listener;

    public static void Initialize()
    {
        var path = Environment.GetEnvironmentVariable("EIOSHARP_ALLOC_TYPES_OUT") ?? "/tmp/alloc-types.txt";
        var listener = new AllocationTickListener();
        s_listener = listener;
        var writer = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(2000);
                Write(listener, path);
            }
        }) { IsBackground = true, Name = "alloc-types writer" };
        writer.Start();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Write(listener, path);
    }

    private static void Write(AllocationTickListener listener, string path)
    {
        lock (listener)
        {
            var rows = listener.Ticks.ToArray().OrderByDescending(kv => kv.Value);
            using (var w = new StreamWriter(path + ".tmp"))
            {
                w.WriteLine($"# ticks={listener.Total} sampled_bytes={listener.SampledBytes} total_allocated_bytes={GC.GetTotalAllocatedBytes()}");
                foreach (var kv in rows) w.WriteLine($"{kv.Value}\t{kv.Key}");
            }
            File.Move(path + ".tmp", path, overwrite: true);
        }
    }
}

internal sealed class AllocationTickListener : EventListener
{
    public readonly ConcurrentDictionary<string, long> Ticks = new();
    public long Total;
    public long SampledBytes;

    protected override void OnEventSourceCreated(EventSource source)
    {
        // Keyword 0x1 = GC; GCAllocationTick is raised at Verbose level.
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null) return;
        int t = e.PayloadNames.IndexOf("TypeName");
        int a = e.PayloadNames.IndexOf("AllocationAmount64");
        string name = (t >= 0 ? e.Payload![t] as string : null) ?? "?";
        Interlocked.Increment(ref Total);
        if (a >= 0 && e.Payload![a] is ulong amount) Interlocked.Add(ref SampledBytes, (long)amount);
        Ticks.AddOrUpdate(name, 1, static (_, v) => v + 1);
    }
}
