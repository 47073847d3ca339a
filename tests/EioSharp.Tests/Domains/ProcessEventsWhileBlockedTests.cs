using EioSharp.Sync;

namespace EioSharp.Tests.Domains;

/// <summary><see cref="Domain.ProcessEventsWhileBlocked"/>: a synchronous computation that holds its domain lets the
/// other fibers of the domain run (Redis's processEventsWhileBlocked), never nests, and does nothing off a domain.</summary>
public class ProcessEventsWhileBlockedTests
{
    [Fact]
    public void Other_fibers_of_the_domain_run_inside_a_long_synchronous_item_and_calls_do_not_nest()
    {
        Assert.Equal(0, Domain.ProcessEventsWhileBlocked()); // not on a domain: nothing

        var log = EioMain.Run(async env =>
        {
            var log = new List<string>();
            var queue = new AsyncQueue<int>(16);
            var (done, doneResolver) = Promise.Create<bool>();
            int nestedCalls = -1;
            await Switch.RunAsync(async sw =>
            {
                Fiber.Fork(sw, async () =>
                {
                    while (true)
                    {
                        int n = await queue.TakeAsync();
                        log.Add($"consumer {n}");
                        nestedCalls = Domain.ProcessEventsWhileBlocked(); // from inside a nested item: returns 0
                        if (n == 3)
                        {
                            doneResolver.TryResolve(true);
                            return;
                        }
                    }
                });

                // A synchronous loop that never suspends: it feeds the consumer and lets it run from inside.
                for (int i = 1; i <= 3; i++)
                {
                    queue.TryAdd(i);
                    log.Add($"producer {i}");
                    while (!log.Contains($"consumer {i}"))
                    {
                        Domain.ProcessEventsWhileBlocked();
                    }
                }

                Assert.True(done.IsResolved);
                await done.AwaitAsync();
            });
            Assert.Equal(0, nestedCalls);
            return log;
        });

        Assert.Equal(["producer 1", "consumer 1", "producer 2", "consumer 2", "producer 3", "consumer 3"], log);
    }
}
