namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>CLIENT TRACKING (client-side caching) differential against redis-server 7.0: a tracking client and a writer on
/// each server, in lockstep; everything the tracking client (or its RESP2 redirect target) receives up to a PING marker
/// is compared, pushes included.</summary>
/// <remarks>Not covered on purpose: a client invalidating its own key without NOLOOP (Redis 7.0 orders that push against
/// the command's reply in a way this server's separate push path does not reproduce).</remarks>
public sealed class TrackingDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    private sealed class Side(RespConnection tracker, RespConnection writer) : IDisposable
    {
        public RespConnection Tracker { get; } = tracker;
        public RespConnection Writer { get; } = writer;

        public void Dispose()
        {
            Tracker.Dispose();
            Writer.Dispose();
        }
    }

    /// <summary>Reads everything up to the reply to a PING sent now (a push, a message or replies before it).</summary>
    private static List<string> Drain(RespConnection c, bool subscribed = false)
    {
        c.Send(RespConnection.Encode(["PING"]));
        var items = new List<string>();
        while (true)
        {
            Resp r = c.Read();
            if (!subscribed && r.Kind == '+' && r.Text == "PONG") return items;
            if (subscribed && r.Items is { Count: 2 } p && p[0].Text == "pong") return items;
            items.Add(r.ToString());
        }
    }

    private static void Same(List<string> r, List<string> k, string label) =>
        Assert.True(r.SequenceEqual(k), $"{label}\n  redis-server: {string.Join(" | ", r)}\n  EioSharp.Kv:  {string.Join(" | ", k)}");

    private static void Same(Side r, Side k, bool tracker, params string[] args)
    {
        Resp a = (tracker ? r.Tracker : r.Writer).Call(args), b = (tracker ? k.Tracker : k.Writer).Call(args);
        Assert.True(a.ToString() == b.ToString(), $"{string.Join(' ', args)}\n  redis-server: {a}\n  EioSharp.Kv:  {b}");
    }

    [Fact]
    public void Resp3_tracking_invalidations_match_redis()
    {
        using var r = new Side(new RespConnection(servers.Redis.Port), new RespConnection(servers.Redis.Port));
        using var k = new Side(new RespConnection(servers.Kv.Port), new RespConnection(servers.Kv.Port));
        void T(params string[] a) => Same(r, k, true, a);
        void W(params string[] a) => Same(r, k, false, a);
        void Check(string label) => Same(Drain(r.Tracker), Drain(k.Tracker), label);
        W("FLUSHALL");
        Assert.False(r.Tracker.Call("HELLO", "3").IsError);
        Assert.False(k.Tracker.Call("HELLO", "3").IsError);
        Check("after HELLO 3");
        T("CLIENT", "TRACKINGINFO");
        T("CLIENT", "GETREDIR");
        T("CLIENT", "CACHING", "YES");
        T("CLIENT", "TRACKING", "ON", "PREFIX", "a");
        T("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT");
        T("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN");
        T("CLIENT", "TRACKING", "ON", "REDIRECT", "999999");
        T("CLIENT", "TRACKING", "MAYBE");
        T("CLIENT", "TRACKING", "ON", "NOSUCHOPTION");
        T("CLIENT", "TRACKING", "ON");
        T("CLIENT", "TRACKINGINFO");
        T("CLIENT", "GETREDIR");
        T("CLIENT", "TRACKING", "ON", "BCAST");
        W("SET", "k1", "v");
        T("GET", "k1");
        T("MGET", "k2", "k3");
        T("HGET", "h", "f");
        T("SET", "unrelated", "x");
        Check("reads");
        W("SET", "k1", "x");
        Check("SET k1");
        W("DEL", "k2", "k3");
        Check("DEL k2 k3");
        W("HSET", "h", "f", "v");
        W("SET", "k1", "again"); // k1 already invalidated and not read since: no message
        Check("HSET h, SET k1 again");
        T("GET", "k1");
        W("FLUSHALL");
        Check("FLUSHALL");
        W("SET", "k1", "after-flush"); // the table was emptied by the flush
        Check("after flush");
        // Expiry of a key read.
        W("SET", "e1", "v", "PX", "100");
        T("GET", "e1");
        Thread.Sleep(400);
        W("GET", "e1");
        Check("expired e1");
        // OPTIN: only reads after CLIENT CACHING YES are tracked.
        T("CLIENT", "TRACKING", "OFF");
        T("CLIENT", "TRACKING", "ON", "OPTIN");
        T("CLIENT", "CACHING", "NO");
        T("GET", "o1");
        T("CLIENT", "CACHING", "YES");
        T("CLIENT", "TRACKINGINFO");
        T("GET", "o2");
        T("CLIENT", "TRACKINGINFO");
        W("SET", "o1", "x");
        W("SET", "o2", "x");
        Check("OPTIN");
        T("CLIENT", "TRACKING", "ON", "OPTOUT");
        // NOLOOP: own writes are not reported.
        T("CLIENT", "TRACKING", "OFF");
        T("CLIENT", "TRACKING", "ON", "NOLOOP");
        T("GET", "n1");
        T("SET", "n1", "mine");
        Check("NOLOOP own write");
        T("GET", "n1");
        W("SET", "n1", "theirs");
        Check("NOLOOP other's write");
        // BCAST with prefixes.
        T("CLIENT", "TRACKING", "OFF");
        T("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:", "PREFIX", "p:x");
        T("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:", "PREFIX", "q:");
        T("CLIENT", "TRACKINGINFO");
        W("SET", "p:1", "x");
        W("SET", "z", "x");
        W("SET", "q:2", "x");
        Check("BCAST prefixes");
        T("CLIENT", "TRACKING", "ON");
        T("CLIENT", "TRACKING", "OFF");
        W("SET", "p:1", "y");
        Check("after OFF");
    }

    [Fact]
    public void Resp2_redirect_to_invalidate_channel_matches_redis()
    {
        using var r = new Side(new RespConnection(servers.Redis.Port), new RespConnection(servers.Redis.Port));
        using var k = new Side(new RespConnection(servers.Kv.Port), new RespConnection(servers.Kv.Port));
        using var rSub = new RespConnection(servers.Redis.Port);
        using var kSub = new RespConnection(servers.Kv.Port);
        string rId = rSub.Call("CLIENT", "ID").Text!, kId = kSub.Call("CLIENT", "ID").Text!;
        Assert.Equal(rSub.Call("SUBSCRIBE", "__redis__:invalidate").ToString(), kSub.Call("SUBSCRIBE", "__redis__:invalidate").ToString());
        Assert.Equal(r.Tracker.Call("CLIENT", "TRACKING", "ON", "REDIRECT", rId).ToString(), k.Tracker.Call("CLIENT", "TRACKING", "ON", "REDIRECT", kId).ToString());
        Assert.Equal(r.Tracker.Call("CLIENT", "GETREDIR").Text == rId, k.Tracker.Call("CLIENT", "GETREDIR").Text == kId);
        Same(r, k, true, "GET", "r1");
        Same(r, k, true, "MGET", "r2", "r3");
        Same(r, k, false, "MSET", "r1", "1", "r3", "3");
        Same(Drain(rSub, subscribed: true), Drain(kSub, subscribed: true), "redirected invalidations");
        Same(r, k, true, "GET", "r1");
        Same(r, k, false, "FLUSHDB");
        Same(Drain(rSub, subscribed: true), Drain(kSub, subscribed: true), "redirected flush");
        Same(Drain(r.Tracker), Drain(k.Tracker), "nothing on the RESP2 tracking client itself");
    }

    private static string TrackingInfo(RespConnection c)
    {
        string text = c.Call("INFO", "everything").Text!;
        return string.Join(' ', text.Split("\r\n").Where(l => l.StartsWith("tracking_", StringComparison.Ordinal)));
    }

    /// <summary>Issue 13: BCAST invalidations are batched per round as Redis batches them per event loop iteration (one
    /// message per prefix with the keys in byte order, a NOLOOP client's own keys left out); INFO's tracking fields.</summary>
    [Fact]
    public void Bcast_batches_and_tracking_info_fields_match_redis()
    {
        using var r = new Side(new RespConnection(servers.Redis.Port), new RespConnection(servers.Redis.Port));
        using var k = new Side(new RespConnection(servers.Kv.Port), new RespConnection(servers.Kv.Port));
        using var rOther = new RespConnection(servers.Redis.Port);
        using var kOther = new RespConnection(servers.Kv.Port);
        void T(params string[] a) => Same(r, k, true, a);
        void W(params string[] a) => Same(r, k, false, a);
        void Check(string label) => Same(Drain(r.Tracker), Drain(k.Tracker), label);
        void Info(string label) => Assert.True(TrackingInfo(r.Writer) == TrackingInfo(k.Writer), $"{label}\n  redis-server: {TrackingInfo(r.Writer)}\n  EioSharp.Kv:  {TrackingInfo(k.Writer)}");
        W("FLUSHALL");
        Info("before");
        Assert.False(r.Tracker.Call("HELLO", "3").IsError);
        Assert.False(k.Tracker.Call("HELLO", "3").IsError);
        Check("after HELLO 3");
        T("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b", "NOLOOP");
        Info("one BCAST client, two prefixes");
        W("MSET", "a2", "1", "a1", "2", "b1", "3", "c1", "4");
        Check("MSET: one message per prefix");
        W("DEL", "a1", "a2", "zz");
        Check("DEL of two keys");
        T("SET", "a3", "own");
        W("SET", "a4", "other");
        Check("NOLOOP: the client's own key left out");
        T("CLIENT", "TRACKING", "OFF");
        Info("off again");

        // Default mode: keys and items of the tracking table.
        Assert.Equal("+OK", r.Writer.Call("CLIENT", "TRACKING", "ON").ToString());
        Assert.Equal("+OK", k.Writer.Call("CLIENT", "TRACKING", "ON").ToString());
        Assert.Equal("+OK", rOther.Call("CLIENT", "TRACKING", "ON", "BCAST").ToString());
        Assert.Equal("+OK", kOther.Call("CLIENT", "TRACKING", "ON", "BCAST").ToString());
        W("GET", "k1");
        W("GET", "k2");
        Same(r, k, true, "GET", "k1");
        Info("default mode: two keys, three items, one prefix (the empty one)");
    }
}
