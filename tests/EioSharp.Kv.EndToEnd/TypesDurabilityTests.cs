using System.Collections.Concurrent;
using System.Globalization;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Crash safety for every type: acknowledged writes of strings, hashes, lists, sets, sorted sets and streams, in
/// several databases, survive SIGKILL under appendfsync always, also while background AOF rewrites run.</summary>
public sealed class TypesDurabilityTests
{
    private static readonly string[] s_types = ["string", "hash", "list", "set", "zset", "stream"];

    private static string S(long v) => v.ToString(CultureInfo.InvariantCulture);

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // with background rewrites going on all the time (a 16 KiB threshold)
    public void Acknowledged_writes_of_every_type_survive_SIGKILL(bool rewrites)
    {
        using var dir = new TempDir();
        string[] serverArgs = rewrites
            ? ["--appendfsync", "always", "--auto-aof-rewrite-min-size", "16kb", "--auto-aof-rewrite-percentage", "50"]
            : ["--appendfsync", "always"];
        // acked[type] = the highest i whose write was acknowledged (writes of one writer are sequential).
        var acked = new ConcurrentDictionary<string, long>();
        using (var server = KvServerProcess.StartIn(dir.DataDir, serverArgs))
        {
            int port = server.Port;
            using var started = new CountdownEvent(s_types.Length);
            var writers = s_types.Select((type, w) => new Thread(() =>
            {
                bool signalled = false;
                try
                {
                    using var c = new RespConnection(port);
                    string db = S(w % 3); // databases 0, 1 and 2
                    if (c.Call("SELECT", db).Text != "OK") return;
                    for (long i = 1; ; i++)
                    {
                        string[] cmd = type switch
                        {
                            "string" => ["SET", $"str:{i}", S(i)],
                            "hash" => ["HSET", "hash", $"f{i}", S(i)],
                            "list" => ["RPUSH", "list", S(i)],
                            "set" => ["SADD", "set", S(i)],
                            "zset" => ["ZADD", "zset", S(i), $"m{i}"],
                            _ => ["XADD", "stream", $"{i}-1", "n", S(i)],
                        };
                        Resp r = c.Call(cmd);
                        if (r.IsError) throw new InvalidOperationException($"{string.Join(' ', cmd)}: {r}");
                        acked[type] = i;
                        if (i == 20 && !signalled)
                        {
                            signalled = true;
                            started.Signal();
                        }
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or EndOfStreamException)
                {
                    // The server died under us: expected.
                }
                finally
                {
                    if (!signalled) started.Signal();
                }
            })).ToList();
            writers.ForEach(t => t.Start());
            Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the writers did not get going");
            Thread.Sleep(1500); // load in full swing (and rewrites, when enabled)
            server.Kill(); // SIGKILL, mid-write
            writers.ForEach(t => t.Join(TimeSpan.FromSeconds(20)));
        }

        Assert.Equal(s_types.Length, acked.Count);
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        using (var c = new RespConnection(server.Port))
        {
            foreach ((string type, int w) in s_types.Select((t, w) => (t, w)))
            {
                long n = acked[type];
                Assert.Equal("OK", c.Call("SELECT", S(w % 3)).Text);
                switch (type)
                {
                    case "string":
                        for (long i = 1; i <= n; i++) Assert.Equal(S(i), c.Call("GET", $"str:{i}").Text);
                        break;
                    case "hash":
                        Assert.True(long.Parse(c.Call("HLEN", "hash").Text!, CultureInfo.InvariantCulture) >= n, $"hash: {n} fields acknowledged");
                        Assert.Equal(S(n), c.Call("HGET", "hash", $"f{n}").Text);
                        break;
                    case "list":
                        var items = c.Call("LRANGE", "list", "0", "-1").Strings.ToList();
                        Assert.True(items.Count >= n, $"list: {n} pushes acknowledged, {items.Count} after restart");
                        for (int i = 0; i < items.Count; i++) Assert.Equal(S(i + 1), items[i]); // in order, no gap
                        break;
                    case "set":
                        Assert.True(long.Parse(c.Call("SCARD", "set").Text!, CultureInfo.InvariantCulture) >= n);
                        Assert.Equal("1", c.Call("SISMEMBER", "set", S(n)).Text);
                        break;
                    case "zset":
                        Assert.True(long.Parse(c.Call("ZCARD", "zset").Text!, CultureInfo.InvariantCulture) >= n);
                        Assert.Equal(S(n), c.Call("ZSCORE", "zset", $"m{n}").Text);
                        break;
                    default:
                        Assert.True(long.Parse(c.Call("XLEN", "stream").Text!, CultureInfo.InvariantCulture) >= n);
                        Assert.Single(c.Call("XRANGE", "stream", $"{n}-1", $"{n}-1").Items!);
                        break;
                }
            }
        }

        var check = Tools.CheckAof(dir.AofPath);
        Assert.True(check.ExitCode == 0, "redis-check-aof: " + check.Output);
    }
}
