namespace EioSharp.Jobs;

/// <summary>The work: Fibonacci numbers, computed the slow (CPU-heavy) way where that is feasible.</summary>
internal static class Fibonacci
{
    /// <summary>The largest n whose Fibonacci number fits in a signed 64-bit integer (fib 92 = 7540113804746346429).</summary>
    public const int MaxN = 92;

    /// <summary>
    /// Up to this n the naive doubly-recursive algorithm is used: it is the CPU-heavy work the server exists to offload
    /// (fib 32 is about 7 million calls). Beyond it the naive algorithm would take minutes to centuries, so the exact
    /// linear algorithm is used instead.
    /// </summary>
    public const int RecursiveLimit = 40;

    /// <summary>Computes fib(n) for 0 &lt;= n &lt;= <see cref="MaxN"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">n is negative or above <see cref="MaxN"/>.</exception>
    public static long Compute(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(n, MaxN);
        return n <= RecursiveLimit ? Recursive(n) : Linear(n);
    }

    /// <summary>An estimate of the relative cost of <see cref="Compute"/> (number of calls for the naive algorithm).</summary>
    public static bool IsCheap(int n, int inlineMax) => n <= inlineMax || n > RecursiveLimit;

    private static long Recursive(int n) => n < 2 ? n : Recursive(n - 1) + Recursive(n - 2);

    private static long Linear(int n)
    {
        if (n == 0)
        {
            return 0;
        }

        long a = 0, b = 1;
        for (int i = 1; i < n; i++)
        {
            (a, b) = (b, checked(a + b));
        }

        return b;
    }
}
