using System.Diagnostics;
using System.Globalization;

namespace EioSharp.Tests.Stress;

/// <summary>Random nested switches with forks, daemons, races, failures and cancellations, on two real domains.</summary>
/// <remarks>
/// Runs for <c>EIOSHARP_STRESS_SECONDS</c> seconds (default 10). Checks after every switch: no fiber forked on it is still
/// running (S1), the switch is finished with no fibers, and the exception it threw contains exactly the failures injected
/// below it (S2, S3: none lost, none invented; cancellations only when no failure was injected).
/// </remarks>
public class SwitchStressTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Stress")]
    public void Stress_RandomNestedSwitchesLoseNothing() => Run(main => EioMain.Run(main));

    /// <summary>The same on the mock backend (session 13): one domain, virtual time (the sleeps jump the clock), and its
    /// domain manager runs the second loop as a fiber of the same domain; the run still lasts
    /// <c>EIOSHARP_STRESS_SECONDS</c> of real time.</summary>
    [Fact]
    [Trait("Category", "Stress")]
    public void Stress_RandomNestedSwitchesLoseNothing_Mock()
    {
        s_virtualTime = true;
        try
        {
            Run(main => EioSharp.Mock.MockMain.Run(main));
        }
        finally
        {
            s_virtualTime = false;
        }
    }

    private static bool s_virtualTime; // the mock run: daemons sleep instead of yielding (tests of this class run one at a time)

    private void Run(Func<Func<Stdenv, Task<long>>, long> runner)
    {
        var seconds = double.Parse(Environment.GetEnvironmentVariable("EIOSHARP_STRESS_SECONDS") ?? "10", CultureInfo.InvariantCulture);
        var deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        int seed = Environment.TickCount;
        long trees = runner(async env =>
        {
            var other = env.DomainManager.RunAsync(() => LoopAsync(env, new Random(seed + 1), deadline), "stress-2");
            long mine = await LoopAsync(env, new Random(seed), deadline);
            return mine + await other;
        });
        output.WriteLine($"seed {seed}: {trees} switch trees in {seconds} s");
        Assert.True(trees > 0, $"seed {seed}: no tree ran");
    }

    private static async Task<long> LoopAsync(Stdenv env, Random rng, long deadline)
    {
        long n = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var leaves = new List<Exception>();
            try
            {
                await TreeAsync(env, rng, 0, leaves);
            }
            catch (LeafFailure)
            {
            }
            catch (MultipleException)
            {
            }
            catch (CancelledException)
            {
                // The tree cancelled its own switch (choice 7) and nothing failed.
            }

            n++;
        }

        return n;
    }

    /// <summary>Runs one random switch; adds the failures it lets escape to <paramref name="escaped"/> and rethrows them.</summary>
    private static async Task TreeAsync(Stdenv env, Random rng, int depth, List<Exception> escaped)
    {
        var injected = new List<Exception>();
        int alive = 0;
        Switch? sw = null;
        Exception? thrown = null;
        try
        {
            await Switch.RunAsync(async s =>
            {
                sw = s;
                int forks = rng.Next(1, 6);
                for (int i = 0; i < forks; i++)
                {
                    int choice = rng.Next(12);
                    if (choice == 8)
                    {
                        Fiber.ForkDaemon(s, async () =>
                        {
                            alive++;
                            try
                            {
                                while (true)
                                {
                                    if (s_virtualTime)
                                    {
                                        // Virtual time moves only when no fiber can run: a daemon that only yields would
                                        // hold the mock's clock still, and its sleeping siblings would never wake.
                                        await env.MonoClock.SleepAsync(TimeSpan.FromTicks(1));
                                    }
                                    else
                                    {
                                        await Fiber.YieldAsync();
                                    }
                                }
                            }
                            finally
                            {
                                alive--;
                            }
                        });
                        continue;
                    }

                    Fiber.Fork(s, async () =>
                    {
                        alive++;
                        try
                        {
                            await ChildAsync(env, rng, depth, choice, s, injected);
                        }
                        finally
                        {
                            alive--;
                        }
                    });
                }

                await SomeWorkAsync(env, rng);
            });
        }
        catch (Exception ex)
        {
            thrown = ex;
        }

        Assert.Equal(0, alive);
        Assert.True(sw!.IsFinished);
        Assert.Equal(0, sw.FiberCount);
        var real = Flatten(thrown).Where(e => e is not CancelledException).ToList();
        Assert.Equal(injected.Count, real.Count);
        foreach (var e in injected)
        {
            Assert.Contains(e, real);
        }

        if (thrown is not null)
        {
            escaped.AddRange(real);
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(thrown);
        }
    }

    private static async Task ChildAsync(Stdenv env, Random rng, int depth, int choice, Switch s, List<Exception> injected)
    {
        switch (choice)
        {
            case < 4:
                await SomeWorkAsync(env, rng);
                break;
            case < 6 when depth < 4:
                // A nested switch: whatever escapes it fails this switch too, so it counts as injected here.
                var escaped = new List<Exception>();
                try
                {
                    await TreeAsync(env, rng, depth + 1, escaped);
                }
                finally
                {
                    injected.AddRange(escaped);
                }

                break;
            case 6:
                await SomeWorkAsync(env, rng);
                var failure = new LeafFailure();
                injected.Add(failure);
                throw failure;
            case 7:
                await SomeWorkAsync(env, rng);
                s.CancelContext.Cancel(new OperationCanceledException("stress cancel"));
                break;
            case 9:
                await Fiber.FirstAsync(
                    async () => await SomeWorkAsync(env, rng),
                    async () => await SomeWorkAsync(env, rng));
                break;
            case 10:
                var p = Fiber.ForkPromise<int>(s, async () =>
                {
                    await SomeWorkAsync(env, rng);
                    throw new LeafFailure(); // isolated in the promise (S9): not injected
                });
                try
                {
                    await p.AwaitAsync();
                }
                catch (LeafFailure)
                {
                }

                break;
            default:
                await Cancel.ProtectAsync(async () => await Fiber.YieldAsync());
                break;
        }
    }

    private static async Task SomeWorkAsync(Stdenv env, Random rng)
    {
        switch (rng.Next(4))
        {
            case 0:
                break;
            case 1:
                await Fiber.YieldAsync();
                break;
            case 2:
                await env.MonoClock.SleepAsync(TimeSpan.FromTicks(rng.Next(0, 5000)));
                break;
            default:
                for (int i = rng.Next(1, 4); i > 0; i--)
                {
                    await Fiber.YieldAsync();
                }

                break;
        }
    }

    private static IEnumerable<Exception> Flatten(Exception? e) => e switch
    {
        null => [],
        MultipleException m => m.InnerExceptions.SelectMany(Flatten),
        _ => [e],
    };

    private sealed class LeafFailure() : Exception("leaf failure");
}
