using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

public sealed class PubSubTests
{
    private static string Message(string channel, string message) =>
        $"*3\r\n$7\r\nmessage\r\n${channel.Length}\r\n{channel}\r\n${message.Length}\r\n{message}\r\n";

    [Fact]
    public void Subscribe_publish_and_pattern_counts()
    {
        var t = new TwoClients();
        Assert.Equal("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n", t.A.Run("SUBSCRIBE", "a", "b"));
        Assert.Equal("*3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:3\r\n", t.A.Run("PSUBSCRIBE", "a*"));
        Assert.Equal(":2\r\n", t.B.Run("PUBLISH", "a", "hi")); // channel + pattern
        Assert.Equal(":0\r\n", t.B.Run("PUBLISH", "zzz", "hi"));
        Assert.Equal([Message("a", "hi"), "*4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$2\r\nhi\r\n"], t.A.Subscriber!.Messages);
        Assert.Equal("*4\r\n$1\r\na\r\n:1\r\n$1\r\nz\r\n:0\r\n", t.B.Run("PUBSUB", "NUMSUB", "a", "z"));
        Assert.Equal(":1\r\n", t.B.Run("PUBSUB", "NUMPAT"));
        Assert.Equal("*1\r\n$1\r\nb\r\n", t.B.Run("PUBSUB", "CHANNELS", "b*"));
    }

    [Fact]
    public void Resp2_subscribed_mode_allows_only_subscription_commands_ping_quit_and_reset()
    {
        var t = new TwoClients();
        t.A.Run("SUBSCRIBE", "a");
        Assert.Equal("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            t.A.Run("GET", "x"));
        Assert.Equal("-ERR Can't execute 'pubsub|numsub': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            t.A.Run("PUBSUB", "NUMSUB"));
        Assert.Equal("*2\r\n$4\r\npong\r\n$0\r\n\r\n", t.A.Run("PING"));
        Assert.Equal("*2\r\n$4\r\npong\r\n$1\r\nx\r\n", t.A.Run("PING", "x"));
        Assert.Equal("*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:1\r\n", t.A.Run("PUNSUBSCRIBE"));
        Assert.Equal("*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n", t.A.Run("UNSUBSCRIBE"));
        Assert.Equal("$-1\r\n", t.A.Run("GET", "x")); // out of subscribed mode
    }

    [Fact]
    public void Resp3_clients_get_push_messages_and_may_run_commands()
    {
        var t = new TwoClients();
        t.A.Run("HELLO", "3");
        Assert.Equal(">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", t.A.Run("SUBSCRIBE", "a"));
        Assert.Equal("_\r\n", t.A.Run("GET", "x"));
        // Its own message comes before the PUBLISH reply, as in Redis.
        Assert.Equal(">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n:1\r\n", t.A.Run("PUBLISH", "a", "hi"));
        t.B.Run("PUBLISH", "a", "yo");
        Assert.Equal([">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nyo\r\n"], t.A.Subscriber!.Messages);
    }

    [Fact]
    public void Reset_unsubscribes_discards_multi_and_returns_to_resp2_and_db_0()
    {
        var t = new TwoClients();
        t.A.Run("HELLO", "3");
        t.A.Run("SELECT", "3");
        t.A.Run("SUBSCRIBE", "a");
        t.A.Run("MULTI");
        Assert.Equal("+RESET\r\n", t.A.Run("RESET"));
        Assert.Equal(2, t.A.State.Protocol);
        Assert.Equal(0, t.A.State.Session.Db);
        Assert.False(t.A.State.InTransaction);
        Assert.Equal(":0\r\n", t.B.Run("PUBLISH", "a", "x"));
    }

    [Theory]
    [InlineData("KEA", "AKE")]
    [InlineData("mnKgx", "gxnKm")]
    [InlineData("g$lshzxetd", "A")]
    [InlineData("E", "E")]
    [InlineData("", "")]
    public void Notify_flags_parse_and_format_like_redis(string input, string shown)
    {
        Assert.True(KvNotifyFlags.TryParse(System.Text.Encoding.ASCII.GetBytes(input), out int flags));
        Assert.Equal(shown, KvNotifyFlags.Format(flags));
    }

    [Fact]
    public void Config_set_notify_keyspace_events_validates_like_redis()
    {
        var t = new TwoClients();
        Assert.Equal("-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n",
            t.A.Run("CONFIG", "SET", "notify-keyspace-events", "Q"));
        Assert.Equal("+OK\r\n", t.A.Run("CONFIG", "SET", "notify-keyspace-events", "KEA"));
        Assert.Equal("*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n", t.A.Run("CONFIG", "GET", "notify-keyspace-events"));
    }

    [Fact]
    public void Keyspace_and_keyevent_notifications_come_from_the_stores_changes()
    {
        var t = new TwoClients();
        t.PubSub.NotifyFlags = KvNotifyFlags.Keyspace | KvNotifyFlags.Keyevent | KvNotifyFlags.All;
        t.A.Run("PSUBSCRIBE", "__key*__:*");
        t.B.Run("SET", "k", "v");
        t.B.Run("SELECT", "2");
        t.B.Run("SET", "k", "v", "PX", "10");
        t.Now += 100;
        t.B.Run("GET", "k"); // lazy expiry
        string[] expected =
        [
            "__keyspace@0__:k set", "__keyevent@0__:set k",
            "__keyspace@2__:k set", "__keyevent@2__:set k",
            "__keyspace@2__:k expire", "__keyevent@2__:expire k", // SET with PX also reports expire, as Redis
            "__keyspace@2__:k expired", "__keyevent@2__:expired k",
        ];
        Assert.Equal(expected, t.A.Subscriber!.Messages.Select(Flatten));

        t.A.Subscriber.Messages.Clear();
        t.PubSub.NotifyFlags = KvNotifyFlags.Keyevent | KvNotifyFlags.String; // no 'g': DEL is not reported
        t.B.Run("SET", "k", "v");
        t.B.Run("DEL", "k");
        Assert.Equal(["__keyevent@2__:set k"], t.A.Subscriber.Messages.Select(Flatten));
    }

    [Fact]
    public void New_key_and_key_miss_events_are_published_when_asked_for()
    {
        var t = new TwoClients();
        t.PubSub.NotifyFlags = KvNotifyFlags.Keyevent | KvNotifyFlags.New | KvNotifyFlags.KeyMiss | KvNotifyFlags.String;
        t.A.Run("PSUBSCRIBE", "__keyevent@0__:*");
        t.B.Run("GET", "k");
        t.B.Run("SET", "k", "v");
        t.B.Run("SET", "k", "w"); // not new
        Assert.Equal(["__keyevent@0__:keymiss k", "__keyevent@0__:new k", "__keyevent@0__:set k", "__keyevent@0__:set k"],
            t.A.Subscriber!.Messages.Select(Flatten));
    }

    // "*4 pmessage pattern channel payload" -> "channel payload"
    private static string Flatten(string m)
    {
        string[] lines = m.Split("\r\n");
        return lines[6] + " " + lines[8];
    }

    [Fact]
    public void Subscriptions_per_client_are_bounded()
    {
        var pubSub = new KvPubSub();
        var state = new KvConnectionState(1, new KvServerConfig(), new KvServerStats(), pubSub);
        var s = new ListSubscriber(state);
        for (int i = 0; i < KvPubSub.MaxSubscriptionsPerClient; i++) Assert.True(pubSub.Subscribe(s, KvSubscriptionKind.Channel, BitConverter.GetBytes(i), out _));
        Assert.False(pubSub.Subscribe(s, KvSubscriptionKind.Pattern, "p*"u8, out bool limited));
        Assert.True(limited);
        pubSub.RemoveAll(s);
        Assert.Equal(0, pubSub.CountOf(s));
        Assert.Empty(pubSub.ActiveChannels(default, matchAll: true, shard: false));
    }
}
