using System.Diagnostics;

namespace EioSharp.Redis.Tests;

/// <summary>A master, a replica and one sentinel on loopback; the client finds the master through the sentinel and follows a failover.</summary>
public sealed class SentinelTests : IDisposable
{
    private readonly RedisServer _master;
    private readonly RedisServer _replica;
    private readonly RedisServer _sentinel;

    public SentinelTests()
    {
        _master = RedisServer.Start();
        _replica = RedisServer.Start("--replicaof", "127.0.0.1", _master.Port.ToString());
        _sentinel = RedisServer.StartSentinel($"sentinel monitor m 127.0.0.1 {_master.Port} 1", "sentinel down-after-milliseconds m 1000",
            "sentinel failover-timeout m 10000");
    }

    public void Dispose()
    {
        _sentinel.Dispose();
        _replica.Dispose();
        _master.Dispose();
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        // The sentinel kills the normal clients of the instances it reconfigures (CLIENT KILL TYPE normal with each
        // SLAVEOF): a poll that lands on that moment sees its connection reset, and just polls again.
        static bool Holds(Func<bool> condition)
        {
            try
            {
                return condition();
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
                return false;
            }
        }

        var sw = Stopwatch.StartNew();
        while (!Holds(condition))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "timed out waiting for " + what);
            Thread.Sleep(200);
        }
    }

    [Fact]
    public void TheClientFindsTheMasterThroughTheSentinelAndFollowsAFailover()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var options = new RedisOptions
                {
                    EndPoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), // ignored: the sentinel decides
                    Sentinel = new RedisSentinelOptions("m", [_sentinel.EndPoint]),
                    ReconnectAttempts = 40,
                    MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
                };
                var client = RedisClient.Create(sw, env, options);
                await client.SetAsync("k1", "before");
                Assert.Contains("before", _master.Call("GET", "k1"));
                WaitFor(() => _replica.Call("GET", "k1").Contains("before", StringComparison.Ordinal), "k1 replicated");

                // The sentinel must have discovered the replica (from the master's INFO, every 10 s) before it can fail over.
                WaitFor(() => _sentinel.Call("SENTINEL", "FAILOVER", "m").StartsWith("+OK", StringComparison.Ordinal), "SENTINEL FAILOVER accepted");
                WaitFor(() => _replica.Call("ROLE").Contains("master", StringComparison.Ordinal) &&
                    _master.Call("ROLE").Contains("slave", StringComparison.Ordinal), "the replica promoted and the master demoted");

                // The first commands may fail (the connection to the demoted master is killed, or READONLY); then the client is on
                // the new master.
                int failures = 0;
                while (true)
                {
                    try
                    {
                        await client.SetAsync("k2", "after");
                        break;
                    }
                    catch (Exception e) when (e is RedisConnectionException || (e is RedisErrorException r && r.Prefix == "READONLY"))
                    {
                        Assert.True(++failures < 20, "the client did not reach the new master: " + e.Message);
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(200));
                    }
                }

                Assert.Contains("after", _replica.Call("GET", "k2"));
                Assert.Equal("after", await client.GetStringAsync("k2"));
                Assert.Equal("before", await client.GetStringAsync("k1"));
            });
        });
    }
}
