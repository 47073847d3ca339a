using BenchmarkDotNet.Running;

namespace EioSharp.Benchmarks;

/// <summary>Runs the benchmarks named on the command line (BenchmarkDotNet's switcher: <c>--filter '*Fork*'</c>).</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
