using System.Collections.Concurrent;
using System.Globalization;
using EioSharp.Kv.EndToEnd.Differential;

namespace EioSharp.Kv.EndToEnd;

/// <summary>SIGKILL under <c>--appendfsync always</c> during stream consumer-group traffic (XADD, XREADGROUP, XACK, XCLAIM
/// from several clients) and transactions (MULTI/EXEC with INCR, RPUSH, SET and XADD). Every operation whose reply a
/// client received is tracked; after the restart each acknowledged XADD/XACK/EXEC is there, no transaction is half
/// applied, and XPENDING / XINFO GROUPS / XINFO CONSUMERS agree with each other and with what was acknowledged.</summary>
public sealed class StreamCrashTests
{
    private const int Consumers = 3;
    private static readonly TimeSpan LoadTime = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxLoadTime = TimeSpan.FromSeconds(60);

    private static string Id(long n) => n.ToString(CultureInfo.InvariantCulture) + "-0";

    [Fact]
    public void Acknowledged_stream_group_operations_and_transactions_survive_a_SIGKILL()
    {
        using var dir = new TempDir();
        var added = new ConcurrentDictionary<string, bool>(); // XADD replied
        var delivered = new ConcurrentDictionary<string, string>(); // id -> consumer, XREADGROUP replied
        var acked = new ConcurrentDictionary<string, bool>(); // XACK replied (the id was in the PEL or already acked)
        var ackInFlight = new ConcurrentDictionary<string, bool>(); // XACK sent, reply maybe never received
        var execs = new ConcurrentBag<long>(); // EXEC replied
        long lastExecSent = 0;
        int claims = 0;
        var errors = new ConcurrentBag<Exception>();
        bool EnoughTraffic() => added.Count > 50 && acked.Count > 10 && execs.Count > 10 && Volatile.Read(ref claims) > 0;

        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always"))
        {
            using (var setup = new RespConnection(server.Port))
            {
                Assert.Equal("+OK", setup.Call("XGROUP", "CREATE", "st", "g", "$", "MKSTREAM").ToString());
            }

            using var stop = new CancellationTokenSource();
            var workers = new List<Thread>();
            void Worker(Action<RespConnection> body) => workers.Add(new Thread(() =>
            {
                try
                {
                    using var c = new RespConnection(server.Port, 10_000);
                    while (!stop.IsCancellationRequested) body(c);
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or EndOfStreamException or ObjectDisposedException)
                {
                    // The server was killed.
                }
                catch (Exception e)
                {
                    errors.Add(e); // a wrong reply before the kill
                }
            }));

            long next = 0;
            Worker(c =>
            {
                string id = Id(Interlocked.Increment(ref next));
                Resp reply = c.Call("XADD", "st", id, "n", id);
                Assert.Equal("$" + id, reply.Kind + reply.Text);
                added[id] = true;
            });
            for (int i = 0; i < Consumers; i++)
            {
                string me = "c" + i;
                var rnd = new Random(i);
                Worker(c =>
                {
                    Resp read = c.Call("XREADGROUP", "GROUP", "g", me, "COUNT", "5", "STREAMS", "st", ">");
                    var ids = new List<string>();
                    if (read.Items is { Count: > 0 })
                    {
                        foreach (Resp entry in read.Items[0].Items![1].Items!)
                        {
                            ids.Add(entry.Items![0].Text!);
                            delivered[entry.Items[0].Text!] = me;
                        }
                    }
                    if (rnd.Next(4) == 0 && !delivered.IsEmpty)
                    {
                        // Claim an entry another consumer may still hold.
                        // One snapshot: the keys and their count must come from the same moment (other consumers add).
                        string[] known = [.. delivered.Keys];
                        string victim = known[rnd.Next(known.Length)];
                        Resp claimed = c.Call("XCLAIM", "st", "g", me, "0", victim, "JUSTID");
                        Assert.Equal('*', claimed.Kind);
                        Interlocked.Increment(ref claims);
                    }
                    // Acknowledge most of what was read, keep some pending.
                    var toAck = ids.Where(_ => rnd.Next(3) != 0).ToList();
                    if (toAck.Count == 0) return;
                    foreach (string id in toAck) ackInFlight[id] = true;
                    Resp ack = c.Call(["XACK", "st", "g", .. toAck]);
                    Assert.Equal(':', ack.Kind);
                    foreach (string id in toAck) acked[id] = true;
                });
            }
            Worker(c =>
            {
                long n = Interlocked.Increment(ref lastExecSent);
                string text = n.ToString(CultureInfo.InvariantCulture);
                List<Resp> replies = c.Pipeline([["MULTI"], ["INCR", "tx:count"], ["RPUSH", "tx:log", text], ["SET", "tx:last", text], ["XADD", "tx:stream", Id(n), "n", text], ["EXEC"]]);
                Assert.Equal('*', replies[5].Kind);
                Assert.Equal(4, replies[5].Items!.Count);
                execs.Add(n);
            });

            foreach (Thread t in workers) t.Start();
            // At least LoadTime of traffic, and until every kind of operation has happened often enough to mean something
            // (fsync always on a loaded machine can be slow): bounded by MaxLoadTime.
            var loading = System.Diagnostics.Stopwatch.StartNew();
            Thread.Sleep(LoadTime);
            while (loading.Elapsed < MaxLoadTime && !EnoughTraffic() && errors.IsEmpty)
            {
                Thread.Sleep(100);
            }
            server.Kill(); // SIGKILL, mid-traffic
            stop.Cancel();
            foreach (Thread t in workers) Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a worker did not stop after the kill");
        }

        Assert.Empty(errors);
        Assert.True(EnoughTraffic(),
            $"too little traffic: {added.Count} XADDs, {acked.Count} XACKs, {execs.Count} EXECs, {claims} XCLAIMs");

        using (var server = KvServerProcess.StartIn(dir.DataDir))
        using (var c = new RespConnection(server.Port))
        {
            // Every acknowledged XADD is in the stream.
            var inStream = c.Call("XRANGE", "st", "-", "+").Items!.Select(e => e.Items![0].Text!).ToHashSet();
            var lostAdds = added.Keys.Where(id => !inStream.Contains(id)).ToList();
            Assert.True(lostAdds.Count == 0, "acknowledged XADDs lost: " + string.Join(" ", lostAdds));

            // The PEL: nothing acknowledged is pending; what is pending was delivered (or was in the one XREADGROUP per
            // consumer whose reply the kill cut off); every delivered, unacknowledged entry is still pending.
            List<Resp> pel = c.Call("XPENDING", "st", "g", "-", "+", "100000").Items!.ToList();
            var pending = pel.ToDictionary(e => e.Items![0].Text!, e => e.Items![1].Text!);
            var pendingAcked = pending.Keys.Where(acked.ContainsKey).ToList();
            Assert.True(pendingAcked.Count == 0, "acknowledged XACKs lost (still pending): " + string.Join(" ", pendingAcked));
            Assert.True(pending.Keys.Count(id => !delivered.ContainsKey(id)) <= Consumers * 5,
                "entries pending that no acknowledged XREADGROUP delivered: " + string.Join(" ", pending.Keys.Where(id => !delivered.ContainsKey(id))));
            var lostDeliveries = delivered.Keys.Where(id => !acked.ContainsKey(id) && !ackInFlight.ContainsKey(id) && !pending.ContainsKey(id)).ToList();
            Assert.True(lostDeliveries.Count == 0, "delivered, unacknowledged entries no longer pending: " + string.Join(" ", lostDeliveries));
            Assert.All(pending.Keys, id => Assert.Contains(id, inStream));

            // XPENDING summary, XINFO GROUPS and XINFO CONSUMERS agree with the extended XPENDING.
            Resp summary = c.Call("XPENDING", "st", "g");
            Assert.Equal(pending.Count.ToString(CultureInfo.InvariantCulture), summary.Items![0].Text);
            var perConsumer = pending.Values.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
            if (pending.Count > 0)
            {
                var summaryCounts = summary.Items[3].Items!.ToDictionary(e => e.Items![0].Text!, e => int.Parse(e.Items![1].Text!, CultureInfo.InvariantCulture));
                Assert.Equal(perConsumer.OrderBy(p => p.Key), summaryCounts.OrderBy(p => p.Key));
            }
            Resp group = c.Call("XINFO", "GROUPS", "st").Items!.Single();
            var groupFields = Fields(group);
            Assert.Equal(pending.Count.ToString(CultureInfo.InvariantCulture), groupFields["pending"]);
            string lastDelivered = groupFields["last-delivered-id"];
            Assert.All(delivered.Keys, id => Assert.True(Compare(id, lastDelivered) <= 0, $"{id} delivered after last-delivered-id {lastDelivered}"));
            foreach (Resp consumer in c.Call("XINFO", "CONSUMERS", "st", "g").Items!)
            {
                var f = Fields(consumer);
                Assert.Equal(perConsumer.GetValueOrDefault(f["name"]).ToString(CultureInfo.InvariantCulture), f["pending"]);
            }

            // Transactions: all or nothing, every acknowledged EXEC present, in order, none half applied.
            var log = c.Call("LRANGE", "tx:log", "0", "-1").Strings.Select(s => long.Parse(s!, CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(Enumerable.Range(1, log.Count).Select(i => (long)i), log);
            Assert.Equal(log.Count.ToString(CultureInfo.InvariantCulture), c.Call("GET", "tx:count").Text ?? "0");
            Assert.Equal(":" + log.Count, c.Call("XLEN", "tx:stream").ToString());
            Assert.Equal(log.Count == 0 ? "$nil" : $"$\"{log[^1]}\"", c.Call("GET", "tx:last").ToString());
            Assert.All(execs, n => Assert.True(n <= log.Count, $"acknowledged EXEC {n} lost (log has {log.Count})"));
            Assert.True(log.Count <= Volatile.Read(ref lastExecSent));
        }
    }

    private static Dictionary<string, string> Fields(Resp map)
    {
        var d = new Dictionary<string, string>();
        for (int i = 0; i + 1 < map.Items!.Count; i += 2) d[map.Items[i].Text!] = map.Items[i + 1].Text ?? "nil";
        return d;
    }

    private static int Compare(string a, string b)
    {
        static (long, long) P(string s)
        {
            int dash = s.IndexOf('-');
            return (long.Parse(s[..dash], CultureInfo.InvariantCulture), long.Parse(s[(dash + 1)..], CultureInfo.InvariantCulture));
        }
        return P(a).CompareTo(P(b));
    }
}
