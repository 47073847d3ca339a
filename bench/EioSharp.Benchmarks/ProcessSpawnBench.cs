using System.Diagnostics;
using EioSharp.Processes;

namespace EioSharp.Benchmarks;

/// <summary>
/// Spawn + wait of <c>/bin/true</c>, sequentially: EioSharp's <see cref="ProcessManager.RunAsync"/> vs
/// <see cref="System.Diagnostics.Process"/> (<c>Start</c> + <c>WaitForExitAsync</c>). Not a BenchmarkDotNet class (a spawn is
/// milliseconds and the host is shared): rounds alternate between the two, and the report gives the median wall time and
/// the median CPU time of this process (all its threads) per spawn, and their ratio EioSharp / Process; also the median
/// number of voluntary context switches of this process's threads per spawn (from /proc/self/task/*/status: a thread
/// hop to hand a child's exit over shows there as one more sleep and wake-up per spawn, whatever the load).
/// Run: <c>dotnet run -c Release --project bench/EioSharp.Benchmarks -- process-spawn [spawnsPerRound] [rounds]</c>.
/// </summary>
public static class ProcessSpawnBench
{
    public static void Run(int perRound, int rounds)
    {
        var eioWall = new List<double>();
        var eioCpu = new List<double>();
        var dotnetWall = new List<double>();
        var dotnetCpu = new List<double>();
        var eioSwitches = new List<double>();
        var dotnetSwitches = new List<double>();
        Measure(perRound / 10, Eio, null, null, null); // warm-up
        Measure(perRound / 10, DotNet, null, null, null);
        for (int r = 0; r < rounds; r++)
        {
            Measure(perRound, Eio, eioWall, eioCpu, eioSwitches);
            Measure(perRound, DotNet, dotnetWall, dotnetCpu, dotnetSwitches);
        }

        double ew = Median(eioWall), ec = Median(eioCpu), dw = Median(dotnetWall), dc = Median(dotnetCpu);
        Console.WriteLine($"spawn+wait /bin/true, {perRound} per round, {rounds} rounds (medians)");
        Console.WriteLine($"  EioSharp ProcessManager.RunAsync : wall {ew:F1} us/spawn, parent CPU {ec:F1} us/spawn");
        Console.WriteLine($"  System.Diagnostics.Process       : wall {dw:F1} us/spawn, parent CPU {dc:F1} us/spawn");
        Console.WriteLine($"  ratio EioSharp/Process           : wall {ew / dw:F2}x, CPU {ec / dc:F2}x");
        Console.WriteLine($"  voluntary context switches/spawn : EioSharp {Median(eioSwitches):F2}, Process {Median(dotnetSwitches):F2}");
    }

    private static void Eio(int n) => EioMain.Run(async env =>
    {
        var mgr = env.ProcessManager;
        for (int i = 0; i < n; i++)
        {
            await mgr.RunAsync(["/bin/true"]);
        }
    });

    private static void DotNet(int n) => Task.Run(async () =>
    {
        for (int i = 0; i < n; i++)
        {
            using var p = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false })!;
            await p.WaitForExitAsync();
            if (p.ExitCode != 0)
            {
                throw new InvalidOperationException("true failed");
            }
        }
    }).GetAwaiter().GetResult();

    private static void Measure(int n, Action<int> body, List<double>? wall, List<double>? cpu, List<double>? switches)
    {
        var self = Process.GetCurrentProcess();
        self.Refresh();
        var cpu0 = self.TotalProcessorTime;
        long sw0 = VoluntarySwitches();
        long t0 = Stopwatch.GetTimestamp();
        body(n);
        var elapsed = Stopwatch.GetElapsedTime(t0);
        long sw1 = VoluntarySwitches();
        self.Refresh();
        var cpu1 = self.TotalProcessorTime;
        wall?.Add(elapsed.TotalMicroseconds / n);
        cpu?.Add((cpu1 - cpu0).TotalMicroseconds / n);
        switches?.Add((double)(sw1 - sw0) / n);
    }

    // The voluntary context switches of this process's live threads (a thread that exited in between takes its count along,
    // so a round that starts threads can read low; the rounds compared here start none after the warm-up).
    private static long VoluntarySwitches()
    {
        long total = 0;
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        total += long.Parse(line.AsSpan("voluntary_ctxt_switches:".Length).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                    }
                }
            }
            catch (IOException)
            {
                // The thread ended while being read.
            }
        }

        return total;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s[s.Length / 2];
    }
}
