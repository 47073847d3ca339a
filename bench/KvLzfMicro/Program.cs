// Microbenchmark (issue 14, h136): CPU ns per call of RdbBlobs.LzfCompress (public static of an internal class, by reflection) in
// the EioSharp.Kv.Core.dll given, on redis-benchmark's 1 KB value and random bytes (given up) and on compressible values
// (a text, and 300 random bytes followed by a repeating pattern).
//   dotnet bench/KvLzfMicro/bin/Release/net10.0/KvLzfMicro.dll /tmp/s21-base/scriptbench/EioSharp.Kv.Core.dll 200000 [benchmark-1k]
using System.Diagnostics;
using System.Reflection;
var asm = Assembly.LoadFrom(args[0]);
var t = asm.GetType("EioSharp.Kv.RdbBlobs")!;
var st = t.GetNestedType("LzfState", BindingFlags.NonPublic | BindingFlags.Public)!;
var m = t.GetMethod("LzfCompress", BindingFlags.Public | BindingFlags.Static)!;
var run = typeof(B).GetMethod("Run")!.MakeGenericMethod(st);
byte[] bench = new byte[1024]; uint lcg = 1234;
for (int j = 0; j < bench.Length; j++) { lcg = lcg * 1103515245 + 12345; bench[j] = (byte)('0' + ((lcg >> 16) & 63)); }
byte[] text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 200).Select(i => "word" + (i * 7919 % 97) + " ")))[..1024];
var rnd = new Random(1); byte[] tail = new byte[1024]; rnd.NextBytes(tail); for (int j = 300; j < 1024; j++) tail[j] = (byte)(j % 7);
byte[] random = new byte[1024]; rnd.NextBytes(random);
int iters = args.Length > 1 ? int.Parse(args[1]) : 200000;
foreach (var (name, v) in new[] { ("benchmark-1k", bench), ("random-1k", random), ("text-1k", text), ("random-then-repeats-1k", tail) })
{ if (args.Length > 2 && name != args[2]) continue;
    object state = Activator.CreateInstance(st, true)!;
    var res = ((double ns, int len))run.Invoke(null, [m.CreateDelegate(typeof(Lzf<>).MakeGenericType(st)), state, v, iters])!;
    Console.WriteLine($"{name} ns_per_call={res.ns:F1} out_len={res.len}");
}
public delegate int Lzf<TS>(ReadOnlySpan<byte> input, Span<byte> output, TS state);
public static class B
{
    public static (double, int) Run<TS>(Delegate d, object state, byte[] v, int iters)
    {
        var f = (Lzf<TS>)d; var s = (TS)state; byte[] o = new byte[v.Length - 4]; int len = 0;
        for (int i = 0; i < iters / 4; i++) len = f(v, o, s); // warm-up (tier-1)
        Thread.Sleep(300);
        for (int i = 0; i < iters / 4; i++) len = f(v, o, s);
        var t0 = Process.GetCurrentProcess().TotalProcessorTime;
        for (int i = 0; i < iters; i++) len = f(v, o, s);
        var t1 = Process.GetCurrentProcess().TotalProcessorTime;
        return ((t1 - t0).TotalNanoseconds / iters, len);
    }
}
