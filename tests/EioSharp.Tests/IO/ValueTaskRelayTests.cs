using EioSharp.IO;

namespace EioSharp.Tests.IO;

/// <summary>The library's reusable relay (used by BufferedReader's fill and the KV session's pending read).</summary>
public class ValueTaskRelayTests
{
    private sealed class Doubler : ValueTaskRelay<int, int>
    {
        public int Completions;

        public ValueTask<int> Start(ValueTask<int> pending) => StartRelay(pending);

        protected override int Complete(int result)
        {
            Completions++;
            return result * 2;
        }
    }

    [Fact]
    public async Task ResultsAreConvertedOncePerWaitAndTheRelayIsReused()
    {
        var relay = new Doubler();
        for (int i = 1; i <= 100; i++)
        {
            var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            var vt = relay.Start(new ValueTask<int>(tcs.Task));
            Assert.False(vt.IsCompleted);
            tcs.SetResult(i);
            Assert.Equal(2 * i, await vt);
        }

        Assert.Equal(100, relay.Completions);
    }

    [Fact]
    public async Task ASecondAwaitOfTheSameTaskThrows()
    {
        var relay = new Doubler();
        var vt = relay.Start(new ValueTask<int>(21));
        Assert.Equal(42, await vt);
        Assert.Throws<InvalidOperationException>(() => vt.GetAwaiter().GetResult());
        Assert.Equal(1, relay.Completions);
    }

    [Fact]
    public async Task AFaultedOperationRethrowsWithoutCompleting()
    {
        var relay = new Doubler();
        var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var vt = relay.Start(new ValueTask<int>(tcs.Task));
        tcs.SetException(new IOException("boom"));
        var e = await Assert.ThrowsAsync<IOException>(async () => await vt);
        Assert.Equal("boom", e.Message);
        Assert.Equal(0, relay.Completions);
        Assert.Equal(4, await relay.Start(new ValueTask<int>(2))); // usable again after a fault
    }
}
