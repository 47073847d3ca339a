using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.Kv.EndToEnd.Differential;
using StackExchange.Redis;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Transactions and pub/sub through StackExchange.Redis, a subscriber that never reads, and a crash during
/// transactions under appendfsync always.</summary>
public sealed class TransactionPubSubEndToEndTests
{
    private static ConnectionMultiplexer Connect(KvServerProcess server) =>
        ConnectionMultiplexer.Connect($"127.0.0.1:{server.Port},allowAdmin=true,abortConnect=true,connectTimeout=10000,syncTimeout=10000");

    [Fact]
    public async Task CreateTransaction_with_conditions_commits_or_aborts()
    {
        using var server = KvServerProcess.Start("--domains", "2");
        using var mux = Connect(server);
        IDatabase db = mux.GetDatabase();
        db.StringSet("tx:k", "1");

        ITransaction ok = db.CreateTransaction();
        ok.AddCondition(Condition.StringEqual("tx:k", "1"));
        Task<bool> set = ok.StringSetAsync("tx:k", "2");
        Task<long> incr = ok.StringIncrementAsync("tx:n");
        Assert.True(await ok.ExecuteAsync());
        Assert.True(await set);
        Assert.Equal(1, await incr);
        Assert.Equal("2", db.StringGet("tx:k"));

        ITransaction fails = db.CreateTransaction();
        fails.AddCondition(Condition.StringEqual("tx:k", "1"));
        _ = fails.StringSetAsync("tx:k", "3");
        _ = fails.StringIncrementAsync("tx:n");
        Assert.False(fails.Execute());
        Assert.Equal("2", db.StringGet("tx:k"));
        Assert.Equal("1", db.StringGet("tx:n"));

        ITransaction missing = db.CreateTransaction();
        missing.AddCondition(Condition.KeyNotExists("tx:absent"));
        _ = missing.StringSetAsync("tx:other", "x");
        Assert.True(await missing.ExecuteAsync());
        Assert.Equal("x", db.StringGet("tx:other"));
    }

    [Fact]
    public void LockTake_LockExtend_LockRelease()
    {
        using var server = KvServerProcess.Start("--domains", "2");
        using var mux = Connect(server);
        IDatabase db = mux.GetDatabase();
        Assert.True(db.LockTake("lock", "me", TimeSpan.FromSeconds(30)));
        Assert.False(db.LockTake("lock", "other", TimeSpan.FromSeconds(30)));
        Assert.True(db.LockExtend("lock", "me", TimeSpan.FromSeconds(60)));
        Assert.False(db.LockExtend("lock", "other", TimeSpan.FromSeconds(60)));
        Assert.True(db.KeyTimeToLive("lock") > TimeSpan.FromSeconds(30));
        Assert.False(db.LockRelease("lock", "other"));
        Assert.Equal("me", db.LockQuery("lock"));
        Assert.True(db.LockRelease("lock", "me"));
        Assert.True(db.LockQuery("lock").IsNull);
    }

    [Fact]
    public async Task Subscribe_pattern_subscribe_and_publish_counts()
    {
        using var server = KvServerProcess.Start("--domains", "2");
        using var mux = Connect(server);
        using var publisherMux = Connect(server);
        ISubscriber sub = mux.GetSubscriber();
        var got = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var gotPattern = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await sub.SubscribeAsync(RedisChannel.Literal("news"), (_, m) => got.TrySetResult(m!));
        await sub.SubscribeAsync(RedisChannel.Pattern("news.*"), (c, m) => gotPattern.TrySetResult(c + "=" + m));

        ISubscriber pub = publisherMux.GetSubscriber();
        Assert.Equal(1, await pub.PublishAsync(RedisChannel.Literal("news"), "hello"));
        Assert.Equal(1, await pub.PublishAsync(RedisChannel.Literal("news.sport"), "goal"));
        Assert.Equal(0, await pub.PublishAsync(RedisChannel.Literal("nobody"), "x"));
        Assert.Equal("hello", await got.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("news.sport=goal", await gotPattern.Task.WaitAsync(TimeSpan.FromSeconds(10)));

        await sub.UnsubscribeAsync(RedisChannel.Literal("news"));
        Assert.Equal(0, await pub.PublishAsync(RedisChannel.Literal("news"), "again"));
    }

    private static long RssBytes(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return 0;
    }

    [Fact]
    public void A_subscriber_that_never_reads_is_disconnected_and_publishers_are_not_blocked()
    {
        using var server = KvServerProcess.Start("--domains", "2");
        using var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        slow.Connect(IPAddress.Loopback, server.Port);
        slow.Send(RespConnection.Encode(["SUBSCRIBE", "firehose"]));
        using var publisher = new RespConnection(server.Port);
        // Wait until the subscription is registered.
        var wait = Stopwatch.StartNew();
        while (publisher.Call("PUBSUB", "NUMSUB", "firehose").Items![1].Text != "1")
        {
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(10), "the subscription never appeared");
            Thread.Sleep(10);
        }
        long rssBefore = RssBytes(server.Pid);

        string payload = new('x', 64 * 1024);
        var publishTime = Stopwatch.StartNew();
        long delivered = 0;
        for (int i = 0; i < 50 * 16; i += 16) // 50 MB in 64 KB messages, 16 per pipeline
        {
            var batch = Enumerable.Range(0, 16).Select(_ => new[] { "PUBLISH", "firehose", payload }).ToList();
            foreach (Resp r in publisher.Pipeline(batch)) delivered += long.Parse(r.Text!, CultureInfo.InvariantCulture);
        }
        publishTime.Stop();
        long rssAfter = RssBytes(server.Pid);

        Assert.True(publishTime.Elapsed < TimeSpan.FromSeconds(30), $"publishing 50 MB took {publishTime.Elapsed}");
        Assert.True(delivered < 800, $"every message was accepted for a subscriber that never reads ({delivered})");
        Assert.True(rssAfter - rssBefore < 150L * 1024 * 1024, $"RSS grew from {rssBefore} to {rssAfter}");
        string info = publisher.Call("INFO", "stats").Text!;
        Assert.Contains("client_output_buffer_limit_disconnections:1", info);
        Assert.Equal("0", publisher.Call("PUBSUB", "NUMSUB", "firehose").Items![1].Text);

        // The subscriber's connection was closed: draining it ends with end-of-stream (or a reset).
        slow.ReceiveTimeout = 10_000;
        var buffer = new byte[1 << 16];
        try
        {
            while (slow.Receive(buffer) > 0)
            {
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }

    [Fact]
    public async Task Sigkill_during_transactions_under_appendfsync_always_leaves_only_whole_transactions()
    {
        using var dir = new TempDir();
        long acknowledged = 0;
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--domains", "2"))
        {
            using var stop = new CancellationTokenSource();
            var workers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
            {
                try
                {
                    using var c = new RespConnection(server.Port, 5000);
                    while (!stop.IsCancellationRequested)
                    {
                        List<Resp> replies = c.Pipeline([["MULTI"], ["INCR", "a"], ["APPEND", "log", "x"], ["INCR", "b"], ["EXEC"]]);
                        if (replies[4].Items is { Count: 3 }) Interlocked.Increment(ref acknowledged);
                    }
                }
                catch (Exception e) when (e is SocketException or IOException or EndOfStreamException)
                {
                    // The server was killed under us.
                }
            })).ToArray();
            // Kill once transactions are flowing (a loaded machine may need a while for the first fsynced EXECs).
            var flowing = Stopwatch.StartNew();
            while (Interlocked.Read(ref acknowledged) < 20 && flowing.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(50);
            }

            await Task.Delay(500);
            server.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(20));
        }

        Assert.True(acknowledged > 0, "no EXEC was acknowledged before the kill");
        using var restarted = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always");
        using var check = new RespConnection(restarted.Port);
        long a = long.Parse(check.Call("GET", "a").Text!, CultureInfo.InvariantCulture);
        long b = long.Parse(check.Call("GET", "b").Text!, CultureInfo.InvariantCulture);
        long len = long.Parse(check.Call("STRLEN", "log").Text!, CultureInfo.InvariantCulture);
        Assert.Equal(a, b);
        Assert.Equal(a, len);
        Assert.True(a >= Interlocked.Read(ref acknowledged), $"{acknowledged} EXECs were acknowledged but only {a} survived");
    }
}
