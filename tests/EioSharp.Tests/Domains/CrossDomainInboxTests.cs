namespace EioSharp.Tests.Domains;

/// <summary>A domain's inbox from other threads (issue 20, h192): the items of one poster run in the order it posted them,
/// however they are carried (written for a one-item mailbox in the inbox line beside the queue, §190, measured and
/// reverted; they hold for the queue alone and for any such split of the inbox).</summary>
public class CrossDomainInboxTests
{
    // The domain is held inside a work item while one thread posts ten items (with a mailbox, the first would go there and
    // the other nine queue behind it). All ten are counted as queued, and run in the posted order when released.
    [Fact]
    public void PostsToABusyDomainRunInOrderThroughTheMailboxAndTheQueue()
    {
        var order = new List<int>();
        RunDomain((domain, ctx) =>
        {
            using var inside = new ManualResetEventSlim(false);
            using var release = new ManualResetEventSlim(false);
            ctx.Post(_ =>
            {
                inside.Set();
                release.Wait();
            }, null);
            Assert.True(inside.Wait(TimeSpan.FromSeconds(60)), "the domain did not run the holding item");
            for (int i = 0; i < 10; i++)
            {
                ctx.Post(s => order.Add((int)s!), i);
            }

            Assert.Equal(10, domain.RunQueueLength);
            release.Set();
            using var done = new ManualResetEventSlim(false);
            ctx.Post(_ => done.Set(), null); // runs after the ten
            Assert.True(done.Wait(TimeSpan.FromSeconds(60)), "the domain did not run the posts");
        });
        Assert.Equal(Enumerable.Range(0, 10), order);
    }

    // §211: an item that came through the mailbox (the first post to an idle domain) holds its domain while the same
    // thread posts five more (counted once each, whether the mailbox was emptied when its item was taken or is emptied
    // only when the round ends, as §211's measured and reverted version did); a nested drain inside that item
    // (ProcessEventsWhileBlocked) runs them in order, and the posts after it are taken (through the mailbox again) and
    // run in order: nothing lost, nothing run twice.
    [Fact]
    public void PostsWhileAMailboxItemRunsQueueBehindItAndANestedDrainRunsThem()
    {
        var order = new List<int>();
        int nested = -1;
        RunDomain((domain, ctx) =>
        {
            using var inside = new ManualResetEventSlim(false);
            using var release = new ManualResetEventSlim(false);
            WaitUntil(() => domain.RunQueueLength == 0); // idle: the next post goes to the mailbox
            ctx.Post(_ =>
            {
                inside.Set();
                release.Wait();
                nested = Domain.ProcessEventsWhileBlocked();
            }, null);
            Assert.True(inside.Wait(TimeSpan.FromSeconds(60)), "the domain did not run the holding item");
            for (int i = 0; i < 5; i++)
            {
                ctx.Post(s => order.Add((int)s!), i);
            }

            Assert.Equal(5, domain.RunQueueLength);
            release.Set();
            WaitUntil(() => Volatile.Read(ref nested) >= 0);
            for (int i = 5; i < 10; i++)
            {
                using var ran = new ManualResetEventSlim(false);
                ctx.Post(s =>
                {
                    order.Add((int)s!);
                    ran.Set();
                }, i);
                Assert.True(ran.Wait(TimeSpan.FromSeconds(60)), "a post after the nested drain did not run");
            }
        });
        Assert.Equal(5, nested);
        Assert.Equal(Enumerable.Range(0, 10), order);
    }

    // Three threads post 20,000 numbered items each while the domain runs them (and sometimes a short busy item): every
    // poster's items run in its order while the domain drains, and none is lost or run twice.
    [Fact]
    public void ConcurrentPostersItemsRunInEachPostersOrder()
    {
        const int Posters = 3, PerPoster = 20_000;
        var last = new int[Posters];
        Array.Fill(last, -1);
        int outOfOrder = 0, ran = 0;
        RunDomain((domain, ctx) =>
        {
            var threads = Enumerable.Range(0, Posters).Select(p => new Thread(() =>
            {
                for (int i = 0; i < PerPoster; i++)
                {
                    int n = i;
                    ctx.Post(_ =>
                    {
                        if (last[p] != n - 1)
                        {
                            outOfOrder++;
                        }

                        last[p] = n;
                        Volatile.Write(ref ran, ran + 1);
                        if ((n & 1023) == 0)
                        {
                            Thread.SpinWait(200); // a busier item now and then: posts pile up while it runs
                        }
                    }, null);
                    if ((i & 255) == 0)
                    {
                        Thread.Yield();
                    }
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => Assert.True(t.Join(TimeSpan.FromSeconds(120)), "a poster did not finish"));
            WaitUntil(() => Volatile.Read(ref ran) == Posters * PerPoster);
        });
        Assert.Equal(0, outOfOrder);
        Assert.All(last, l => Assert.Equal(PerPoster - 1, l));
    }

    // A fiber suspended on a promise is woken from another thread between that thread's posts (issue 20, h204: the round's
    // drain queues the waiter itself where the posted wake-up was): the fiber runs after the posts made before the
    // resolution and before the ones made after it.
    [Fact]
    public void AWakeUpFromAnotherThreadRunsInItsPostersOrder()
    {
        var order = new List<string>();
        var p = Promise.Create<int>();
        var finish = Promise.Create<bool>();
        RunFiber(
            async () =>
            {
                int v = await p.Promise.AwaitAsync();
                order.Add("W" + v);
                await finish.Promise.AwaitAsync();
            },
            (domain, ctx) =>
            {
                using var inside = new ManualResetEventSlim(false);
                using var release = new ManualResetEventSlim(false);
                ctx.Post(_ =>
                {
                    inside.Set(); // the main fiber has suspended on the promise before this item runs
                    release.Wait();
                }, null);
                Assert.True(inside.Wait(TimeSpan.FromSeconds(60)), "the domain did not run the holding item");
                for (int i = 0; i < 10; i++)
                {
                    if (i == 5)
                    {
                        p.Resolver.Resolve(7);
                    }

                    ctx.Post(s => order.Add(((int)s!).ToString(System.Globalization.CultureInfo.InvariantCulture)), i);
                }

                release.Set();
                using var done = new ManualResetEventSlim(false);
                ctx.Post(_ => done.Set(), null);
                Assert.True(done.Wait(TimeSpan.FromSeconds(60)), "the domain did not run the posts");
                finish.Resolver.Resolve(true);
            });
        Assert.Equal(["0", "1", "2", "3", "4", "W7", "5", "6", "7", "8", "9"], order);
    }

    // The promise is resolved from another thread after the fiber took its ValueTask but before it awaits it, so the wake-up
    // reaches the domain's drain with no continuation registered (h204: the drain marks the use completed and queues
    // nothing); the later await finds the value at once.
    [Fact]
    public void AWakeUpFromAnotherThreadBeforeTheAwaitIsNotLost()
    {
        var p = Promise.Create<int>();
        using var resolveNow = new ManualResetEventSlim(false);
        using var resolved = new ManualResetEventSlim(false);
        int got = 0;
        var resolver = new Thread(() =>
        {
            resolveNow.Wait();
            p.Resolver.Resolve(7);
            resolved.Set();
        });
        resolver.Start();
        RunFiber(
            async () =>
            {
                var pending = p.Promise.AwaitAsync();
                Assert.False(pending.IsCompleted);
                resolveNow.Set();
                Assert.True(resolved.Wait(TimeSpan.FromSeconds(60)), "the resolver did not resolve");
                await Fiber.YieldAsync(); // the next round drains the posted wake-up before this fiber awaits
                got = await pending;
            },
            (domain, ctx) => { });
        Assert.True(resolver.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal(7, got);
    }

    /// <summary>Runs <paramref name="main"/> as the main fiber of a real domain on a thread of its own, calls
    /// <paramref name="test"/> on the calling thread with the domain and its own synchronization context once the fiber has
    /// started, then waits for the domain to end (the fiber's end ends it).</summary>
    private static void RunFiber(Func<Task> main, Action<Domain, SynchronizationContext> test)
    {
        var domain = Domain.CreateReal("inbox-test");
        using var started = new ManualResetEventSlim(false);
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                domain.RunMain(async root =>
                {
                    started.Set();
                    await main();
                    return true;
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(started.Wait(TimeSpan.FromSeconds(60)), "the domain did not start");
        test(domain, domain.SyncContext);
        Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "the domain did not finish");
        Assert.Null(failure);
    }

    /// <summary>Runs a real domain on a thread of its own, calls <paramref name="test"/> on the calling thread with the domain
    /// and its synchronization context, then ends the domain.</summary>
    private static void RunDomain(Action<Domain, SynchronizationContext> test)
    {
        var domain = Domain.CreateReal("inbox-test");
        using var started = new ManualResetEventSlim(false);
        SynchronizationContext? ctx = null;
        var finish = Promise.Create<bool>();
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                domain.RunMain(async root =>
                {
                    ctx = SynchronizationContext.Current;
                    started.Set();
                    return await finish.Promise.AwaitAsync();
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(started.Wait(TimeSpan.FromSeconds(60)), "the domain did not start");
        try
        {
            test(domain, ctx!);
        }
        finally
        {
            finish.Resolver.Resolve(true);
            Assert.True(thread.Join(TimeSpan.FromSeconds(60)), "the domain did not finish");
        }

        Assert.Null(failure);
    }

    private static void WaitUntil(Func<bool> condition)
    {
        long deadline = Environment.TickCount64 + 60_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "the domain did not get there within a minute");
            Thread.Sleep(1);
        }
    }
}
