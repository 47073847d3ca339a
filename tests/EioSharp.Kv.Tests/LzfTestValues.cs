using System.Text;

namespace EioSharp.Kv.Tests;

/// <summary>String values for the RDB writer's LZF tests: random bytes (incompressible: LZF gives up, as on
/// redis-benchmark's values) and repeated text (compresses well).</summary>
internal static class LzfTestValues
{
    /// <summary><paramref name="length"/> random bytes from <paramref name="random"/>.</summary>
    public static byte[] RandomValue(Random random, int length = 1024)
    {
        var v = new byte[length];
        random.NextBytes(v);
        return v;
    }

    /// <summary><paramref name="length"/> bytes of text repeating a phrase that names <paramref name="seed"/>.</summary>
    public static byte[] TextValue(int seed, int length = 1024) =>
        Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat($"value {seed} of a key, ", length)))[..length];
}
