using BenchmarkDotNet.Running;

namespace EioSharp.Benchmarks;

/// <summary>Runs the benchmarks named on the command line (BenchmarkDotNet's switcher: <c>--filter '*Fork*'</c>).</summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "process-spawn")
        {
            ProcessSpawnBench.Run(args.Length > 1 ? int.Parse(args[1]) : 300, args.Length > 2 ? int.Parse(args[2]) : 5);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
