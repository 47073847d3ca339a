using System.Text;
using EioSharp.Time;

namespace EioSharp.Redis.Tests;

public sealed class RedisClientTests : IDisposable
{
    private readonly RedisServer _server = RedisServer.Start();

    public void Dispose() => _server.Dispose();

    private RedisOptions Options(RedisProtocol protocol = RedisProtocol.Resp3) =>
        new() { EndPoint = _server.EndPoint, Protocol = protocol, ClientName = "eio-test" };

    [Theory]
    [InlineData(RedisProtocol.Resp2)]
    [InlineData(RedisProtocol.Resp3)]
    public void PipelinedCommandsOfManyFibersGetTheirOwnRepliesInOrder(RedisProtocol protocol)
    {
        var (replies, pipelined, name) = EioMain.Run(async env =>
        {
            return await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options(protocol));
                // 500 fibers, each SET then GET its own key: every GET must see its own value.
                var got = await Fiber.MapAsync(Enumerable.Range(0, 500).ToArray(), async i =>
                {
                    await client.SetAsync("k" + i, "v" + i);
                    return await client.GetStringAsync("k" + i);
                });
                var batch = await client.PipelineAsync(Enumerable.Range(0, 1000).Select(i => new object[] { "ECHO", "e" + i }).ToArray());
                string? name = (await client.ExecuteAsync("CLIENT", "GETNAME")).Text;
                return (got, batch, name);
            });
        });
        Assert.Equal(Enumerable.Range(0, 500).Select(i => "v" + i), replies);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => "e" + i), pipelined.Select(r => r.Text));
        Assert.Equal("eio-test", name);
    }

    [Fact]
    public void ErrorRepliesAreThrownAndTheConnectionStaysUsable()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options());
                await client.ExecuteAsync("SET", "s", "x");
                var e = await Assert.ThrowsAsync<RedisErrorException>(() => client.ExecuteAsync("LPUSH", "s", "y"));
                Assert.Equal("WRONGTYPE", e.Prefix);
                Assert.Equal("x", await client.GetStringAsync("s"));
            });
        });
    }

    [Fact]
    public void HandshakeAuthenticatesAndSelectsTheDatabase()
    {
        _server.Call("CONFIG", "SET", "requirepass", "sesame");
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                foreach (var protocol in new[] { RedisProtocol.Resp2, RedisProtocol.Resp3 })
                {
                    var client = RedisClient.Create(sw, env, Options(protocol) with { Password = "sesame", Database = 3 });
                    await client.SetAsync("db3key", "here");
                    Assert.Equal(3, (await client.ExecuteAsync("CLIENT", "INFO")).Text!.Split(' ').Single(f => f.StartsWith("db=", StringComparison.Ordinal)) switch
                    {
                        "db=3" => 3,
                        var other => throw new InvalidOperationException(other),
                    });
                }

                var wrong = RedisClient.Create(sw, env, Options() with { Password = "nope" });
                await Assert.ThrowsAsync<RedisErrorException>(() => wrong.ExecuteAsync("PING"));
            });
        });
    }

    [Fact]
    public void Resp3PushMessagesAreDeliveredBesideCommandRepliesOnTheSameConnection()
    {
        var (messages, pong, value) = EioMain.Run(async env =>
        {
            return await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options());
                var sub = await client.SubscribeAsync(sw);
                Assert.Equal(2, await sub.SubscribeAsync("news", "sport"));
                Assert.Equal(RedisProtocol.Resp3, sub.Connection.Protocol);
                for (int i = 0; i < 50; i++)
                {
                    await client.PublishAsync(i % 2 == 0 ? "news" : "sport", "m" + i);
                }

                // Commands on the subscribed RESP3 connection get their own replies while pushes keep arriving.
                string? pong = (await sub.Connection.ExecuteAsync("PING")).Text;
                await client.SetAsync("x", "42");
                string? value = (await sub.Connection.ExecuteAsync("GET", "x")).Text;
                var got = new List<string>();
                await foreach (var m in sub.ReadAllAsync())
                {
                    got.Add(m.Channel + ":" + m.PayloadText);
                    if (got.Count == 50)
                    {
                        break;
                    }
                }

                sub.Close();
                return (got, pong, value);
            });
        });
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (i % 2 == 0 ? "news" : "sport") + ":m" + i), messages);
        Assert.Equal("PONG", pong);
        Assert.Equal("42", value);
    }

    [Fact]
    public void Resp2SubscriptionAndPatternMessages()
    {
        var messages = EioMain.Run(async env =>
        {
            return await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options(RedisProtocol.Resp2));
                var sub = await client.SubscribeAsync(sw);
                await sub.SubscribeAsync("a");
                Assert.Equal(2, await sub.PatternSubscribeAsync("b.*"));
                await Assert.ThrowsAsync<InvalidOperationException>(() => sub.Connection.ExecuteAsync("GET", "x"));
                await client.PublishAsync("a", "1");
                await client.PublishAsync("b.x", "2");
                var first = await sub.Messages.TakeAsync();
                var second = await sub.Messages.TakeAsync();
                return new[] { first, second };
            });
        });
        Assert.Equal(("message", "a", (string?)null, "1"), (messages[0].Kind, messages[0].Channel, messages[0].Pattern, messages[0].PayloadText));
        Assert.Equal(("pmessage", "b.x", (string?)"b.*", "2"), (messages[1].Kind, messages[1].Channel, messages[1].Pattern, messages[1].PayloadText));
    }

    [Fact]
    public void CancelledBlockingCommandAbandonsItsConnectionAndTheNextCommandOnThePoolGetsItsOwnReply()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options() with { PoolSize = 1 });
                // BLPOP forever, cancelled by a timeout of the library's clock.
                var r = await env.MonoClock.TryWithTimeoutAsync(TimeSpan.FromMilliseconds(300), () => client.ExecuteAsync("BLPOP", "q", 0));
                Assert.True(r.IsTimedOut);
                // The server sees the abandoned connection go: no client stays blocked on q.
                Assert.True(await PollAsync(env, () => _server.Call("INFO", "clients").Contains("blocked_clients:0", StringComparison.Ordinal)));
                await client.ExecuteAsync("RPUSH", "q", "x");
                // The pool (size 1) hands out a new connection: it gets its own replies, and the element was not eaten.
                Assert.Equal("pong", await client.UseConnectionAsync(async c => (await c.ExecuteAsync("ECHO", "pong")).Text));
                var popped = await client.ExecuteAsync("BLPOP", "q", 1);
                Assert.Equal("x", popped[1].Text);

                // XREADGROUP ... BLOCK the same way, on a connection used directly: it is closed.
                await client.StreamCreateGroupAsync("s", "g");
                var direct = await client.ConnectAsync(sw);
                var t = await env.MonoClock.TryWithTimeoutAsync(TimeSpan.FromMilliseconds(200),
                    () => direct.StreamReadGroupAsync("s", "g", "c1", block: TimeSpan.Zero));
                Assert.True(t.IsTimedOut);
                Assert.False(direct.IsAlive);
                await Assert.ThrowsAsync<RedisConnectionException>(() => direct.ExecuteAsync("PING"));
                // Once the server has seen the close (an entry added before that would go to c1's pending list, unread:
                // what the actor layer's XAUTOCLAIM is for), new entries go to the next reader.
                Assert.True(await PollAsync(env, () => _server.Call("INFO", "clients").Contains("blocked_clients:0", StringComparison.Ordinal)));
                await client.StreamAddAsync("s", [new("f", "v")]);
                Assert.Single(await client.StreamReadGroupAsync("s", "g", "c2"));
            });
        });
    }

    [Fact]
    public void CancelledOrdinaryCommandKeepsTheConnectionAndItsReplyIsDiscarded()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var conn = await RedisConnection.ConnectAsync(sw, env.Net, Options(), env.MonoClock);
                var slow = "local i = 0 while i < 3000000 do i = i + 1 end return 'slow'";
                var r = await env.MonoClock.TryWithTimeoutAsync(TimeSpan.FromMilliseconds(1), () => conn.ExecuteAsync("EVAL", slow, 0));
                Assert.True(r.IsTimedOut);
                Assert.True(conn.IsAlive);
                Assert.Equal("mine", (await conn.ExecuteAsync("ECHO", "mine")).Text);
                Assert.Equal(0, conn.PendingCount);
            });
        });
    }

    [Fact]
    public void CommandTimeoutUsesTheClientClock()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options() with { CommandTimeout = TimeSpan.FromMilliseconds(1) });
                var slow = "local i = 0 while i < 3000000 do i = i + 1 end return 'slow'";
                await Assert.ThrowsAsync<TimeoutException>(() => client.ExecuteAsync("EVAL", slow, 0));
            });
        });
    }

    [Fact]
    public void ClientReconnectsAfterTheServerRestarts()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, Options() with { ReconnectDelay = TimeSpan.FromMilliseconds(20) });
                await client.SetAsync("a", "1");
                Assert.Equal(1, client.ConnectionsOpened);
                _server.Kill();
                // The command in flight (or the first after the crash) fails: it may or may not have run.
                await Assert.ThrowsAnyAsync<RedisConnectionException>(() => client.ExecuteAsync("GET", "a"));
                _server.Run();
                await client.SetAsync("b", "2");
                Assert.Equal("2", await client.GetStringAsync("b"));
                Assert.Equal(2, client.ConnectionsOpened);
            });
        });
    }

    [Fact]
    public void StreamHelpersRoundTrip()
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                foreach (var protocol in new[] { RedisProtocol.Resp2, RedisProtocol.Resp3 })
                {
                    var client = RedisClient.Create(sw, env, Options(protocol));
                    string key = "st" + (int)protocol;
                    Assert.True(await client.StreamCreateGroupAsync(key, "g"));
                    Assert.False(await client.StreamCreateGroupAsync(key, "g"));
                    string id = await client.StreamAddAsync(key, [new("a", "1"), new("b", Encoding.UTF8.GetBytes("2"))], maxLength: 1000);
                    var read = await client.StreamReadGroupAsync(key, "g", "c1", block: TimeSpan.FromMilliseconds(100));
                    Assert.Equal(id, Assert.Single(read).Id);
                    Assert.Equal("1", read[0].Text("a"));
                    Assert.Equal("2", read[0].Text("b"));
                    var pending = await client.StreamPendingAsync(key, "g");
                    Assert.Equal(("c1", 1L), (Assert.Single(pending).Consumer, pending[0].DeliveryCount));
                    var claimed = await client.StreamAutoClaimAsync(key, "g", "c2", TimeSpan.Zero);
                    Assert.Equal(id, Assert.Single(claimed.Entries).Id);
                    Assert.Equal(1, await client.StreamAckAsync(key, "g", id));
                    Assert.Empty(await client.StreamPendingAsync(key, "g"));
                    Assert.Empty(await client.StreamReadGroupAsync(key, "g", "c1", block: TimeSpan.FromMilliseconds(10)));
                }
            });
        });
    }

    private static async Task<bool> PollAsync(Stdenv env, Func<bool> condition)
    {
        for (int i = 0; i < 250; i++)
        {
            if (condition())
            {
                return true;
            }

            await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(20));
        }

        return false;
    }
}
