using static EioSharp.Tests.Core.Scenario;
using static EioSharp.Tests.Core.SwitchTests;

namespace EioSharp.Tests.Core;

/// <summary>Eio's tests/promise.md (S19).</summary>
public class PromiseTests
{
    // A promise is resolved once: Resolve twice throws, TryResolve returns false, and every awaiter gets the value.
    [Theory, BothBackends]
    public void S19_ResolvedOnceAndSeenByEveryAwaiter(Backend b) => Expect(b, """
        +w1 waiting
        +w2 waiting
        +resolved=True peek=1
        +again: InvalidOperationException: The promise is already resolved.
        +try again=False
        +w1 got 1
        +w2 got 1

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            await Switch.RunAsync(async sw =>
            {
                for (int i = 1; i <= 2; i++)
                {
                    string name = $"w{i}";
                    Fiber.Fork(sw, async () =>
                    {
                        TraceLog.Line($"{name} waiting");
                        TraceLog.Line($"{name} got {await p.AwaitAsync()}");
                    });
                }

                r.Resolve(1);
                TraceLog.Line($"resolved={p.IsResolved} peek={(p.TryPeek(out var v) ? v : -1)}");
                await Describe("again", () =>
                {
                    r.Resolve(2);
                    return Task.CompletedTask;
                });
                TraceLog.Line($"try again={r.TryResolve(3)}");
            });
        });

    // Awaiting a resolved promise returns at once without a cancellation check; awaiting an unresolved one is cancellable.
    [Theory, BothBackends]
    public void S19_ResolvedPromiseSkipsCancellationCheck(Backend b) => Expect(b, """
        +resolved in cancelled fiber = 3
        +unresolved: Cancelled: TestFailure: c
        +sub: ok
        +promise still unresolved=True

        """, async env =>
        {
            var done = Promise.CreateResolved(3);
            var (pending, _) = Promise.Create<int>();
            await Describe("sub", () => Cancel.SubAsync(async c =>
            {
                c.Cancel(new TestFailure("c"));
                TraceLog.Line($"resolved in cancelled fiber = {await done.AwaitAsync()}");
                await Describe("unresolved", async () => await pending.AwaitAsync());
            }));
            TraceLog.Line($"promise still unresolved={!pending.IsResolved}");
        });

    // A failed promise rethrows the same exception object to every awaiter.
    [Theory, BothBackends]
    public void S19_FailureIsRethrownToEveryAwaiter(Backend b) => Expect(b, """
        +a: TestFailure: broken
        +b: TestFailure: broken
        +same object=True
        +peek=False

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            var errors = new List<Exception>();
            await Switch.RunAsync(async sw =>
            {
                foreach (var name in new[] { "a", "b" })
                {
                    Fiber.Fork(sw, async () =>
                    {
                        try
                        {
                            await p.AwaitAsync();
                        }
                        catch (TestFailure ex)
                        {
                            errors.Add(ex);
                            TraceLog.Line($"{name}: {Mock.MockMain.Describe(ex)}");
                        }
                    });
                }

                r.ResolveError(new TestFailure("broken"));
                await Task.CompletedTask;
            });
            TraceLog.Line($"same object={ReferenceEquals(errors[0], errors[1])}");
            TraceLog.Line($"peek={p.TryPeek(out _)}");
        });

    // A promise resolved from another domain (or a plain thread) wakes the awaiter on its own domain.
    [Theory, BothBackends]
    public void S19_ResolveFromAnotherThreadResumesOnOwnDomain(Backend b) => Expect(b, """
        +got 11 on the same thread=True

        """, async env =>
        {
            var (p, r) = Promise.Create<int>();
            int thread = Environment.CurrentManagedThreadId;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, () => env.DomainManager.RunAsync(async () =>
                {
                    await Fiber.YieldAsync();
                    r.Resolve(11);
                }));
                int v = await p.AwaitAsync();
                TraceLog.Line($"got {v} on the same thread={Environment.CurrentManagedThreadId == thread}");
            });
        });

    // A resolver is a view over its promise (a value type): copies resolve the same promise and are equal; a default one
    // resolves nothing and says so.
    [Fact]
    public void ResolverIsAViewOverItsPromise()
    {
        var (p, r) = Promise.Create<int>();
        var copy = r;
        Assert.Same(p, copy.Promise);
        Assert.True(copy == r);
        Assert.Equal(r.GetHashCode(), copy.GetHashCode());
        Assert.False(r == Promise.Create<int>().Resolver);
        Assert.True(copy.TryResolve(5));
        Assert.False(r.TryResolve(6));
        Assert.True(p.TryPeek(out int v) && v == 5);

        var none = default(Resolver<int>);
        Assert.NotEqual(r, none);
        Assert.Contains("Promise.Create", Assert.Throws<InvalidOperationException>(() => none.Promise).Message);
        Assert.Throws<InvalidOperationException>(() => none.Resolve(1));
        Assert.Throws<InvalidOperationException>(() => none.TryResolve(1));
        Assert.Throws<InvalidOperationException>(() => none.ResolveError(new FormatException()));
        Assert.Throws<InvalidOperationException>(() => none.TryResolveError(new FormatException()));
        Assert.Throws<ArgumentNullException>(() => r.TryResolveError(null!));
    }
}
