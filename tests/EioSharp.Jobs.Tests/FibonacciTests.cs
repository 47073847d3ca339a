namespace EioSharp.Jobs.Tests;

public class FibonacciTests
{
    [Theory]
    [InlineData(0, 0L)]
    [InlineData(1, 1L)]
    [InlineData(2, 1L)]
    [InlineData(10, 55L)]
    [InlineData(32, 2178309L)]
    [InlineData(40, 102334155L)]
    [InlineData(41, 165580141L)]
    [InlineData(60, 1548008755920L)]
    [InlineData(92, 7540113804746346429L)]
    public void Known_values(int n, long expected) => Assert.Equal(expected, Fibonacci.Compute(n));

    [Fact]
    public void Recursive_and_linear_agree_at_the_boundary()
    {
        // 40 is the last recursive n, 41 the first linear one: fib 41 = fib 40 + fib 39.
        Assert.Equal(Fibonacci.Compute(41), Fibonacci.Compute(40) + Fibonacci.Compute(39));
    }

    [Fact]
    public void Out_of_range_throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Fibonacci.Compute(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Fibonacci.Compute(93));
    }

    [Fact]
    public void Cheap_means_small_or_linear()
    {
        Assert.True(Fibonacci.IsCheap(20, 20));
        Assert.False(Fibonacci.IsCheap(21, 20));
        Assert.False(Fibonacci.IsCheap(40, 20));
        Assert.True(Fibonacci.IsCheap(41, 20));
        Assert.True(Fibonacci.IsCheap(92, 0));
    }
}
