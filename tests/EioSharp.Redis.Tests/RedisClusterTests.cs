using System.Diagnostics;
using System.Net;
using System.Text;
using EioSharp.Actors.Redis;

namespace EioSharp.Redis.Tests;

/// <summary>A 3-master Redis Cluster on loopback (redis-server --cluster-enabled yes + redis-cli --cluster create).</summary>
public sealed class RedisClusterTests : IDisposable
{
    private readonly RedisServer[] _nodes;

    public RedisClusterTests()
    {
        _nodes = new RedisServer[3];
        try
        {
            for (int i = 0; i < 3; i++)
            {
                _nodes[i] = RedisServer.Start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000");
            }

            var create = Run("redis-cli", ["--cluster", "create", .. _nodes.Select(n => "127.0.0.1:" + n.Port), "--cluster-replicas", "0", "--cluster-yes"]);
            Assert.True(create.Code == 0, create.Output);
            var sw = Stopwatch.StartNew();
            while (!_nodes.All(n => n.Call("CLUSTER", "INFO").Contains("cluster_state:ok", StringComparison.Ordinal)))
            {
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "the cluster did not reach state ok");
                Thread.Sleep(100);
            }
        }
        catch
        {
            // xUnit does not call Dispose when the constructor throws: stop the nodes started so far, or their
            // redis-server processes outlive the test run.
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var n in _nodes)
        {
            n?.Dispose();
        }
    }

    private static (int Code, string Output) Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "timed out: " + file);
        return (p.ExitCode, output);
    }

    private static string NodeId(RedisServer n) => n.Call("CLUSTER", "MYID").Split("\r\n")[1];

    [Fact]
    public void HashSlotsMatchTheServer()
    {
        foreach (string key in new[] { "foo", "bar", "{user1}:a", "user1", "a{}b", "{}x", "mailbox:a17" })
        {
            string server = _nodes[0].Call("CLUSTER", "KEYSLOT", key);
            Assert.Equal(":" + RedisClusterClient.HashSlot(key) + "\r\n", server);
        }
    }

    [Fact]
    public void CommandsAreRoutedByKeySlotAndCrossSlotIsRefused()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var cluster = RedisClusterClient.Create(sw, env, new RedisOptions(), _nodes[1].EndPoint);
                for (int i = 0; i < 300; i++)
                {
                    await cluster.SetAsync("key" + i, "v" + i);
                }

                for (int i = 0; i < 300; i++)
                {
                    Assert.Equal("v" + i, await cluster.GetStringAsync("key" + i));
                }

                // Every node holds some of them (so routing really spread them).
                Assert.All(_nodes, n => Assert.NotEqual(":0\r\n", n.Call("DBSIZE")));
                Assert.Equal(0, cluster.MovedRedirections);
                var e = await Assert.ThrowsAsync<RedisErrorException>(() => cluster.ExecuteAsync("MGET", "key1", "key2"));
                Assert.Equal("CROSSSLOT", e.Prefix);
                await cluster.ExecuteAsync("MSET", "{t}a", "1", "{t}b", "2");
                Assert.Equal("1,2", string.Join(",", (await cluster.ExecuteAsync("MGET", "{t}a", "{t}b")).Elements.Select(r => r.Text)));
                // Streams for actors partitioned by slot: a mailbox per key.
                await cluster.StreamAddAsync("mailbox:{a1}", [new("p", "x")]);
                Assert.Equal(1, await cluster.StreamLengthAsync("mailbox:{a1}"));
            });
        });
    }

    /// <summary>Actors partitioned over the cluster's masters by the slot of their mailbox: two nodes, each running actors whose
    /// mailboxes live on different masters (and two sharing a hash tag, so one read), exchange casts and calls both ways.</summary>
    [Fact]
    public void ActorsOnTwoNodesExchangeCastsAndCallsAcrossMasters()
    {
        string[] onN1 = ["c0", "c1", "c2", "c3", "c4", "c5"];
        string[] onN2 = ["{g}x", "{g}y", "d0", "d1"];
        string Owner(string actor)
        {
            string slot = RedisClusterClient.HashSlot(ActorSystem.Ref(actor).MailboxKey).ToString();
            return _nodes.Single(n => n.Call("CLUSTER", "COUNTKEYSINSLOT", slot) != ":0\r\n").Port.ToString();
        }

        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                ActorSystemOptions Options(string node) => SampleActors.Options(node, 0, TimeSpan.FromSeconds(3)) with { ClusterSeeds = [_nodes[2].EndPoint] };
                ActorSystem? n1 = null, n2 = null;
                n1 = await ActorSystem.StartAsync(sw, env, Options("n1"), SampleActors.Counter(() => n1!, env, TimeSpan.Zero));
                n2 = await ActorSystem.StartAsync(sw, env, Options("n2"), SampleActors.Counter(() => n2!, env, TimeSpan.Zero));
                Assert.IsType<RedisClusterClient>(n1.Redis);
                foreach (string a in onN1)
                {
                    Assert.True((await n1.SpawnAsync(a, "counter")).Created);
                }

                foreach (string a in onN2)
                {
                    Assert.True((await n2.SpawnAsync(a, "counter")).Created);
                }

                // The mailboxes (created by SpawnAsync) are spread over all three masters; the hash-tagged pair shares one.
                var masters = onN1.Concat(onN2).Select(Owner).ToList();
                Assert.Equal(3, masters.Distinct().Count());
                Assert.Equal(Owner("{g}x"), Owner("{g}y"));

                for (int i = 0; i < 10; i++)
                {
                    foreach (string a in onN1)
                    {
                        await n2.CastAsync(ActorSystem.Ref(a), new Work(i));
                    }

                    foreach (string a in onN2)
                    {
                        await n1.CastAsync(ActorSystem.Ref(a), new Work(100 + i));
                    }
                }

                foreach (string a in onN1)
                {
                    var pong = await n2.CallAsync<Ping, Pong>(ActorSystem.Ref(a), new Ping(1), TimeSpan.FromSeconds(20));
                    Assert.Equal(("n1", a, 10L), (pong.Node, pong.Actor, pong.Handled));
                }

                foreach (string a in onN2)
                {
                    var pong = await n1.CallAsync<Ping, Pong>(ActorSystem.Ref(a), new Ping(2), TimeSpan.FromSeconds(20));
                    Assert.Equal(("n2", a, 10L), (pong.Node, pong.Actor, pong.Handled));
                }

                // Every message was acknowledged (nothing left pending in any mailbox, on any master).
                foreach (string a in onN1.Concat(onN2))
                {
                    var mailbox = ActorSystem.Ref(a).MailboxKey;
                    for (int k = 0; k < 50 && (await n1.Redis.StreamPendingAsync(mailbox, "actors")).Count > 0; k++)
                    {
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(20));
                    }

                    Assert.Empty(await n1.Redis.StreamPendingAsync(mailbox, "actors"));
                }

            });
        });
    }

    /// <summary>Failover on the cluster: node n1 stops (its switch ends: no handover, its heartbeat lapses); n2 takes over its
    /// actors (compare-and-set of the owner, XAUTOCLAIM of their mailboxes, on whichever master holds each), its monitors get
    /// NodeDown, and the messages cast while n1 was gone are handled on n2.</summary>
    [Fact]
    public void ActorsOfAStoppedNodeAreTakenOverOnTheCluster()
    {
        string[] onN1 = ["e0", "e1", "e2", "e3", "e4"];
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                ActorSystemOptions Options(string node) => SampleActors.Options(node, 0, TimeSpan.FromSeconds(2)) with { ClusterSeeds = [_nodes[1].EndPoint] };
                ActorSystem? n2 = null;
                n2 = await ActorSystem.StartAsync(sw, env, Options("n2"), SampleActors.Counter(() => n2!, env, TimeSpan.Zero));
                var (stop, stopper) = Promise.Create<bool>();
                var (started, starter) = Promise.Create<bool>();
                Fiber.Fork(sw, () => Switch.RunAsync(async sw1 =>
                {
                    ActorSystem? n1 = null;
                    n1 = await ActorSystem.StartAsync(sw1, env, Options("n1"), SampleActors.Counter(() => n1!, env, TimeSpan.Zero));
                    foreach (string a in onN1)
                    {
                        Assert.True((await n1.SpawnAsync(a, "counter")).Created);
                    }

                    starter.TryResolve(true);
                    await stop.AwaitAsync();
                }));
                await started.AwaitAsync();
                foreach (string a in onN1)
                {
                    await n2.MonitorAsync(ActorSystem.Ref(a));
                    await n2.CastAsync(ActorSystem.Ref(a), new Work(1));
                    Assert.Equal("n1", (await n2.CallAsync<Ping, Pong>(ActorSystem.Ref(a), new Ping(1), TimeSpan.FromSeconds(20))).Node);
                }

                stopper.TryResolve(true); // n1's fibers end; its heartbeat key expires after 2 s
                foreach (string a in onN1)
                {
                    for (int i = 0; i < 5; i++)
                    {
                        await n2.CastAsync(ActorSystem.Ref(a), new Work(10 + i));
                    }
                }

                var downs = new List<ActorDown>();
                while (downs.Count < onN1.Length)
                {
                    downs.Add(await env.MonoClock.WithTimeoutAsync(TimeSpan.FromSeconds(30), async () => await n2.Downs.TakeAsync()));
                }

                Assert.Equal(onN1, downs.Select(d => d.Actor.Name).OrderBy(n => n));
                Assert.All(downs, d => Assert.Equal((RemoteExitKind.NodeDown, "n1", "n2"), (d.Kind, d.Text, d.Node)));
                foreach (string a in onN1)
                {
                    var pong = await n2.CallAsync<Ping, Pong>(ActorSystem.Ref(a), new Ping(2), TimeSpan.FromSeconds(20));
                    // The new incarnation handled exactly the 5 casts sent after the stop: everything before was acknowledged
                    // (the call's reply carried the acknowledgements).
                    Assert.Equal(("n2", a, 5L), (pong.Node, pong.Actor, pong.Handled));
                    Assert.Equal("n2", await n2.Redis.GetStringAsync("owner:" + a));
                }

                Assert.Equal(onN1.Length, n2.TakenOver);
            });
        });
    }

    [Fact]
    public void RedirectionsWhileASlotIsMigrated()
    {
        const string key = "migrating-key";
        int slot = RedisClusterClient.HashSlot(key);
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var cluster = RedisClusterClient.Create(sw, env, new RedisOptions(), _nodes[0].EndPoint);
                await cluster.SetAsync(key, "before");
                var source = _nodes.Single(n => n.Call("CLUSTER", "COUNTKEYSINSLOT", slot.ToString()) == ":1\r\n");
                var target = _nodes.First(n => n != source);
                string sourceId = NodeId(source), targetId = NodeId(target);

                // Start the migration: the key moves to the target; the source answers ASK for it.
                Assert.StartsWith("+OK", target.Call("CLUSTER", "SETSLOT", slot.ToString(), "IMPORTING", sourceId));
                Assert.StartsWith("+OK", source.Call("CLUSTER", "SETSLOT", slot.ToString(), "MIGRATING", targetId));
                Assert.StartsWith("+OK", source.Call("MIGRATE", "127.0.0.1", target.Port.ToString(), key, "0", "5000"));
                Assert.Equal("before", await cluster.GetStringAsync(key));
                Assert.True(cluster.AskRedirections >= 1);
                await cluster.SetAsync(key, "during"); // new writes of a migrated key go to the target (ASK)
                Assert.True(cluster.AskRedirections >= 2);

                // Finish it: every node assigns the slot to the target; the source now answers MOVED.
                foreach (var n in _nodes)
                {
                    Assert.StartsWith("+OK", n.Call("CLUSTER", "SETSLOT", slot.ToString(), "NODE", targetId));
                }

                Assert.Contains("during", target.Call("GET", key)); // the write went to the target
                int movedBefore = cluster.MovedRedirections;
                Assert.Equal("during", await cluster.GetStringAsync(key));
                Assert.Equal(movedBefore + 1, cluster.MovedRedirections);
                Assert.Equal("during", await cluster.GetStringAsync(key)); // the map was refreshed: no more redirections
                Assert.Equal(movedBefore + 1, cluster.MovedRedirections);
            });
        });
    }
}
