namespace EioSharp.Kv.EndToEnd.Differential;
public sealed class ZDumpTests
{
    [Fact]
    public void Dump()
    {
        var m = typeof(ZSetDiffTests).GetMethod("Next", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        var c = new DiffContext(new Random(int.Parse(Environment.GetEnvironmentVariable("ZSEED") ?? "2")));
        var lines = new List<string>();
        for (int i = 0; i < 12000; i++) lines.Add(string.Join("\u0001", ((DiffCommand)m.Invoke(null, [c])!).Args));
        File.WriteAllLines("/tmp/zsetgeo-cmds.txt", lines);
    }
}
