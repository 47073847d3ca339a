namespace EioSharp.Benchmarks;

/// <summary>The growth step shared by the floor benchmarks' run-queue rings (<see cref="PromiseFloor"/>,
/// <see cref="YieldFloor"/>, and YieldFloor's action loop): a power-of-two array indexed by free-running head and tail counters.</summary>
internal static class FloorRing
{
    /// <summary>Doubles <paramref name="items"/>, copying the queued items (head to tail) to the start of the new array.</summary>
    public static void Grow<T>(ref T[] items, ref int head, ref int tail)
    {
        var grown = new T[items.Length * 2];
        for (int i = 0; i < items.Length; i++)
        {
            grown[i] = items[(head + i) & (items.Length - 1)];
        }

        tail -= head;
        head = 0;
        items = grown;
    }
}
