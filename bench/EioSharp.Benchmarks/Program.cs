using System.Diagnostics;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace EioSharp.Benchmarks;

/// <summary>Runs the benchmarks named on the command line (BenchmarkDotNet's switcher: <c>--filter '*Fork*'</c>).</summary>
/// <remarks>
/// <c>loop CLASS METHOD WARMUP COUNT [Prop=Value...]</c> runs one benchmark method directly, without BenchmarkDotNet
/// (its [GlobalSetup] first, WARMUP untimed calls, then COUNT timed ones) and prints the process CPU time and wall time
/// per operation, and the bytes allocated per operation (all threads): for instruction counts under
/// <c>valgrind --tool=callgrind</c>, CPU time on a loaded machine
/// (bench/trace-overhead.sh).
/// </remarks>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "process-spawn")
        {
            ProcessSpawnBench.Run(args.Length > 1 ? int.Parse(args[1]) : 300, args.Length > 2 ? int.Parse(args[2]) : 5);
            return;
        }

        if (args.Length > 0 && args[0] is "echo-server" or "echo-client" or "churn-client" or "file-sync")
        {
            Environment.Exit(Net.BackendProcesses.Run(args));
        }

        if (args.Length >= 5 && args[0] == "loop")
        {
            Loop(args[1], args[2], int.Parse(args[3]), int.Parse(args[4]), args[5..]);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }

    private static void Loop(string typeName, string methodName, int warmup, int count, string[] props)
    {
        var type = typeof(Program).Assembly.GetTypes().Single(t => t.Name == typeName);
        object bench = Activator.CreateInstance(type)!;
        foreach (var p in props)
        {
            var kv = p.Split('=', 2);
            var prop = type.GetProperty(kv[0])!;
            prop.SetValue(bench, Convert.ChangeType(kv[1], prop.PropertyType, System.Globalization.CultureInfo.InvariantCulture));
        }

        foreach (var m in type.GetMethods().Where(m => m.GetCustomAttribute<GlobalSetupAttribute>() is not null))
        {
            m.Invoke(bench, null);
        }

        var method = type.GetMethod(methodName)!;
        Action run = method.ReturnType == typeof(void)
            ? (Action)Delegate.CreateDelegate(typeof(Action), bench, method)
            : () =>
            {
                // A benchmark returning a task (or a value): wait for the task, drop the value.
                if (method.Invoke(bench, null) is Task t)
                {
                    t.GetAwaiter().GetResult();
                }
            };
        int opsPerInvoke = method.GetCustomAttribute<BenchmarkAttribute>()?.OperationsPerInvoke ?? 1;
        for (int i = 0; i < warmup; i++)
        {
            run();
        }

        if (Environment.GetEnvironmentVariable("EIOSHARP_BENCH_GC_AFTER_WARMUP") == "1")
        {
            // One collection before the counted calls (h94): until a process's first collection the GC write barrier
            // takes a shorter path, so a variant that collected during its warm-up (tracing on: its rings' arrays) and
            // one that never did (tracing off, a row that allocates nothing) would count the same kernel code differently.
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        using var allocTypes = Environment.GetEnvironmentVariable("EIOSHARP_BENCH_ALLOC_TYPES") == "1" ? new AllocationSampler() : null;
        var proc = Process.GetCurrentProcess();
        proc.Refresh();
        var cpu0 = proc.TotalProcessorTime;
        long gc0 = GC.CollectionCount(0), gc1 = GC.CollectionCount(1), gc2 = GC.CollectionCount(2);
        long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        // With EIOSHARP_BENCH_PER_CALL=1 each timed call's wall time per operation goes to standard error too (h196: whether
        // a process's calls differ, e.g. the cross-domain round trip's modes, per call or per process).
        bool perCall = Environment.GetEnvironmentVariable("EIOSHARP_BENCH_PER_CALL") == "1";
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            long callStart = perCall ? Stopwatch.GetTimestamp() : 0;
            run();
            if (perCall)
            {
                Console.Error.WriteLine(FormattableString.Invariant($"call {i} wall_ns_per_op={Stopwatch.GetElapsedTime(callStart).TotalNanoseconds / opsPerInvoke:F1}"));
            }
        }

        sw.Stop();
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
        proc.Refresh();
        double ops = (double)count * opsPerInvoke;
        Console.WriteLine(
            $"{typeName}.{methodName} {string.Join(",", props)} ops={ops} cpu_ns_per_op={(proc.TotalProcessorTime - cpu0).TotalNanoseconds / ops:F1} " +
            $"wall_ns_per_op={sw.Elapsed.TotalNanoseconds / ops:F1} alloc_b_per_op={allocated / ops:F1} gc0={GC.CollectionCount(0) - gc0} gc1={GC.CollectionCount(1) - gc1} gc2={GC.CollectionCount(2) - gc2}");
        allocTypes?.Print(ops);
    }

    /// <summary>With <c>EIOSHARP_BENCH_ALLOC_TYPES=1</c>, the loop driver also prints which types the timed calls allocated:
    /// the runtime's <c>GCAllocationTick</c> events (one per ~100 KB allocated, naming the type of the object that crossed the
    /// mark), so each type's share is a sample, scaled to bytes per operation. For finding what to remove, not for exact figures
    /// (those are <c>alloc_b_per_op</c>).</summary>
    private sealed class AllocationSampler : System.Diagnostics.Tracing.EventListener
    {
        private readonly Dictionary<string, long> _bytes = new();
        private readonly object _lock = new();
        private long _total;

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1); // GC
            }
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null)
            {
                return;
            }

            int ti = e.PayloadNames.IndexOf("TypeName"), ai = e.PayloadNames.IndexOf("AllocationAmount64");
            if (ti < 0 || ai < 0)
            {
                return;
            }

            string type = e.Payload![ti] as string ?? "?";
            long amount = Convert.ToInt64(e.Payload[ai], System.Globalization.CultureInfo.InvariantCulture);
            lock (_lock)
            {
                _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
                _total += amount;
            }
        }

        internal void Print(double ops)
        {
            lock (_lock)
            {
                foreach (var (type, bytes) in _bytes.OrderByDescending(kv => kv.Value).Take(25))
                {
                    Console.WriteLine($"  alloc_sample {bytes / ops,8:F1} B/op {100.0 * bytes / Math.Max(1, _total),5:F1}%  {type}");
                }
            }
        }
    }
}
