using System.Buffers;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>A connection that receives pub/sub messages (the server's connection, or a test double).</summary>
/// <remarks>
/// <b>Thread safety</b>: <see cref="Push"/> is called by publishers on any domain (other connections, the store owner
/// for keyspace notifications) and must neither block nor throw; it owns the bounding of the connection's output.
/// The subscription sets are guarded by the registry's lock.
/// </remarks>
public abstract class KvSubscriber
{
    internal readonly HashSet<byte[]> Channels = new(ByteArrayComparer.Instance);
    internal readonly HashSet<byte[]> Patterns = new(ByteArrayComparer.Instance);
    internal readonly HashSet<byte[]> ShardChannels = new(ByteArrayComparer.Instance);

    /// <summary>The RESP version messages are encoded for (2: arrays, 3: push types).</summary>
    public abstract int Protocol { get; }

    /// <summary>Delivers one encoded message (the bytes are not modified afterwards and may be shared with other subscribers).</summary>
    public abstract void Push(byte[] message);

    /// <summary>Bytes delivered and not yet written to the client (CLIENT LIST omem, output limits); 0 if not tracked.</summary>
    public virtual long PendingBytes => 0;
}

/// <summary>The pub/sub registry shared by all domains: channels, patterns and shard channels to subscribers, PUBLISH,
/// and keyspace notifications (<c>notify-keyspace-events</c>).</summary>
/// <remarks>
/// <b>Thread safety</b>: every member is safe to call from any domain; one lock guards the maps (held only to change or
/// read them, never while a message is delivered).
/// <para><b>Limits</b>: a client holds at most <see cref="MaxSubscriptionsPerClient"/> subscriptions (channels, patterns
/// and shard channels together); a pattern's length is bounded by the protocol's bulk length limit like any argument.</para>
/// </remarks>
public sealed class KvPubSub
{
    /// <summary>The most subscriptions one client may hold (channels + patterns + shard channels): bounds the memory and
    /// the pattern-matching cost one client can impose on every PUBLISH.</summary>
    public const int MaxSubscriptionsPerClient = 65_536;

    /// <summary>Client-side caching: the tracking table and its invalidation messages (CLIENT TRACKING).</summary>
    public KvTracking Tracking { get; } = new();

    /// <summary>The error a client gets past <see cref="MaxSubscriptionsPerClient"/>.</summary>
    public static readonly string TooManySubscriptions =
        $"ERR too many subscriptions for this client (the limit is {MaxSubscriptionsPerClient.ToString(CultureInfo.InvariantCulture)})";

    private readonly object _lock = new();
    private readonly Dictionary<byte[], HashSet<KvSubscriber>> _channels = new(ByteArrayComparer.Instance);
    private readonly Dictionary<byte[], HashSet<KvSubscriber>> _shardChannels = new(ByteArrayComparer.Instance);
    private readonly Dictionary<byte[], HashSet<KvSubscriber>> _patterns = new(ByteArrayComparer.Instance);
    private volatile int _notifyFlags;
    private volatile int _subscriptions; // all subscriptions: a fast "nobody listens" check for notifications

    /// <summary>Whether anyone is subscribed to anything (a volatile read): <see cref="NotifyKeyspaceEvent"/> does
    /// nothing when not, so the store tests this inline before calling it (§221).</summary>
    internal bool HasSubscriptions => _subscriptions != 0;

    /// <summary>The <c>notify-keyspace-events</c> classes in force (<see cref="KvNotifyFlags"/>); 0: none (the default).</summary>
    public int NotifyFlags
    {
        get => _notifyFlags;
        set => _notifyFlags = value;
    }

    /// <summary>Subscribes <paramref name="subscriber"/> to a channel (<paramref name="kind"/>: channel, pattern or shard channel).</summary>
    /// <returns>True if it was not subscribed yet; false if it was (or the limit is reached: see <paramref name="limited"/>).</returns>
    public bool Subscribe(KvSubscriber subscriber, KvSubscriptionKind kind, ReadOnlySpan<byte> name, out bool limited)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        lock (_lock)
        {
            var own = Own(subscriber, kind);
            limited = false;
            if (own.GetAlternateLookup<ReadOnlySpan<byte>>().Contains(name)) return false;
            if (subscriber.Channels.Count + subscriber.Patterns.Count + subscriber.ShardChannels.Count >= MaxSubscriptionsPerClient)
            {
                limited = true;
                return false;
            }
            byte[] key = name.ToArray();
            own.Add(key);
            var map = Map(kind);
            if (!map.TryGetValue(key, out var set)) map[key] = set = [];
            set.Add(subscriber);
            _subscriptions++;
            return true;
        }
    }

    /// <summary>Unsubscribes <paramref name="subscriber"/> from one channel, pattern or shard channel.</summary>
    /// <returns>True if it was subscribed.</returns>
    public bool Unsubscribe(KvSubscriber subscriber, KvSubscriptionKind kind, ReadOnlySpan<byte> name)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        lock (_lock)
        {
            var own = Own(subscriber, kind);
            if (!own.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(name, out byte[]? key)) return false;
            own.Remove(key);
            var map = Map(kind);
            if (map.TryGetValue(key, out var set))
            {
                set.Remove(subscriber);
                if (set.Count == 0) map.Remove(key);
            }
            _subscriptions--;
            return true;
        }
    }

    /// <summary>The names <paramref name="subscriber"/> is subscribed to (a copy).</summary>
    public byte[][] SubscriptionsOf(KvSubscriber subscriber, KvSubscriptionKind kind)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        lock (_lock) return [.. Own(subscriber, kind)];
    }

    /// <summary>Whether <paramref name="subscriber"/> is subscribed to <paramref name="channel"/> (under the lock).</summary>
    internal bool IsSubscribedTo(KvSubscriber subscriber, byte[] channel)
    {
        lock (_lock) return subscriber.Channels.Contains(channel);
    }

    /// <summary>Channels + patterns of <paramref name="subscriber"/> (the count SUBSCRIBE and PSUBSCRIBE replies report).</summary>
    public int CountOf(KvSubscriber subscriber)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        lock (_lock) return subscriber.Channels.Count + subscriber.Patterns.Count;
    }

    /// <summary>Shard channels of <paramref name="subscriber"/> (the count SSUBSCRIBE replies report).</summary>
    public int ShardCountOf(KvSubscriber subscriber)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        lock (_lock) return subscriber.ShardChannels.Count;
    }

    /// <summary>Removes every subscription of <paramref name="subscriber"/> (disconnect, RESET, output limit).</summary>
    public void RemoveAll(KvSubscriber subscriber)
    {
        ArgumentNullException.ThrowIfNull(subscriber);
        lock (_lock)
        {
            foreach (KvSubscriptionKind kind in (ReadOnlySpan<KvSubscriptionKind>)[KvSubscriptionKind.Channel, KvSubscriptionKind.Pattern, KvSubscriptionKind.ShardChannel])
            {
                var own = Own(subscriber, kind);
                var map = Map(kind);
                foreach (byte[] key in own)
                {
                    if (map.TryGetValue(key, out var set))
                    {
                        set.Remove(subscriber);
                        if (set.Count == 0) map.Remove(key);
                    }
                    _subscriptions--;
                }
                own.Clear();
            }
        }
    }

    /// <summary>PUBLISH: delivers <paramref name="message"/> to the channel's subscribers and to every matching pattern's.</summary>
    /// <returns>The number of deliveries (a client subscribed to the channel and to two matching patterns counts 3), like Redis.</returns>
    public int Publish(ReadOnlySpan<byte> channel, ReadOnlySpan<byte> message) => Publish(channel, message, null, null);

    /// <summary>PUBLISH by a connection that may itself be subscribed (RESP3): its own copy of the message is written
    /// into <paramref name="selfReply"/>, before the PUBLISH reply, as Redis does.</summary>
    /// <param name="channel">The channel.</param>
    /// <param name="message">The message.</param>
    /// <param name="self">The publishing connection's subscriber, or null.</param>
    /// <param name="selfReply">Where the publishing connection's reply is being written.</param>
    public int Publish(ReadOnlySpan<byte> channel, ReadOnlySpan<byte> message, KvSubscriber? self, RespWriter? selfReply)
    {
        if (_subscriptions == 0) return 0;
        List<KvSubscriber>? direct = null;
        List<(KvSubscriber Subscriber, byte[] Pattern)>? matched = null;
        lock (_lock)
        {
            if (_channels.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(channel, out var set)) direct = [.. set];
            foreach (var (pattern, subscribers) in _patterns)
            {
                if (!GlobPattern.IsMatch(pattern, channel)) continue;
                matched ??= [];
                foreach (KvSubscriber s in subscribers) matched.Add((s, pattern));
            }
        }
        int receivers = 0;
        if (direct is not null)
        {
            byte[]?[] encoded = new byte[2][];
            foreach (KvSubscriber s in direct)
            {
                int p = s.Protocol == 3 ? 1 : 0;
                byte[] m = encoded[p] ??= Encode(p == 1, "message"u8, default, channel, message, withPattern: false);
                if (selfReply is not null && ReferenceEquals(s, self)) selfReply.WriteRaw(m);
                else s.Push(m);
                receivers++;
            }
        }
        if (matched is not null)
        {
            foreach (var (s, pattern) in matched)
            {
                byte[] m = Encode(s.Protocol == 3, "pmessage"u8, pattern, channel, message, withPattern: true);
                if (selfReply is not null && ReferenceEquals(s, self)) selfReply.WriteRaw(m);
                else s.Push(m);
                receivers++;
            }
        }
        return receivers;
    }

    /// <summary>SPUBLISH (the non-cluster equivalent): delivers to the shard channel's subscribers only.</summary>
    public int ShardPublish(ReadOnlySpan<byte> channel, ReadOnlySpan<byte> message)
    {
        if (_subscriptions == 0) return 0;
        List<KvSubscriber>? direct = null;
        lock (_lock)
        {
            if (_shardChannels.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(channel, out var set)) direct = [.. set];
        }
        if (direct is null) return 0;
        byte[]?[] encoded = new byte[2][];
        foreach (KvSubscriber s in direct)
        {
            int p = s.Protocol == 3 ? 1 : 0;
            s.Push(encoded[p] ??= Encode(p == 1, "smessage"u8, default, channel, message, withPattern: false));
        }
        return direct.Count;
    }

    /// <summary>Active channels (with at least one subscriber) matching <paramref name="pattern"/> (all when null): PUBSUB CHANNELS / SHARDCHANNELS.</summary>
    public byte[][] ActiveChannels(ReadOnlySpan<byte> pattern, bool matchAll, bool shard)
    {
        lock (_lock)
        {
            var list = new List<byte[]>();
            foreach (byte[] channel in (shard ? _shardChannels : _channels).Keys)
            {
                if (matchAll || GlobPattern.IsMatch(pattern, channel)) list.Add(channel);
            }
            return [.. list];
        }
    }

    /// <summary>Subscribers of one channel: PUBSUB NUMSUB / SHARDNUMSUB.</summary>
    public int SubscriberCount(ReadOnlySpan<byte> channel, bool shard)
    {
        lock (_lock)
        {
            return (shard ? _shardChannels : _channels).GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(channel, out var set) ? set.Count : 0;
        }
    }

    /// <summary>Distinct patterns subscribed to: PUBSUB NUMPAT.</summary>
    public int PatternCount
    {
        get
        {
            lock (_lock) return _patterns.Count;
        }
    }

    /// <summary>Publishes the keyspace notifications of one event, as Redis's <c>notifyKeyspaceEvent</c>.</summary>
    /// <param name="flag">The event's class (<see cref="KvNotifyFlags"/>).</param>
    /// <param name="eventName">The event (<c>set</c>, <c>del</c>, <c>expired</c>...).</param>
    /// <param name="key">The key.</param>
    /// <param name="db">The database.</param>
    public void NotifyKeyspaceEvent(int flag, string eventName, ReadOnlySpan<byte> key, int db)
    {
        int flags = _notifyFlags;
        if ((flags & flag) == 0 || _subscriptions == 0) return;
        byte[] ev = Encoding.ASCII.GetBytes(eventName);
        string prefix = db.ToString(CultureInfo.InvariantCulture);
        if ((flags & KvNotifyFlags.Keyspace) != 0)
        {
            byte[] channel = [.. Encoding.ASCII.GetBytes("__keyspace@" + prefix + "__:"), .. key];
            Publish(channel, ev);
        }
        if ((flags & KvNotifyFlags.Keyevent) != 0)
        {
            byte[] channel = [.. Encoding.ASCII.GetBytes("__keyevent@" + prefix + "__:"), .. ev];
            Publish(channel, key);
        }
    }

    /// <summary>Encodes a subscribe-family confirmation (<c>subscribe</c>, <c>unsubscribe</c>...) for <paramref name="writer"/>'s protocol.</summary>
    /// <param name="writer">Where it goes.</param>
    /// <param name="kind">The reply's first element.</param>
    /// <param name="name">The channel or pattern; null writes a nil (UNSUBSCRIBE with nothing to unsubscribe).</param>
    /// <param name="count">The client's subscription count after the operation.</param>
    public static void WriteConfirmation(RespWriter writer, string kind, byte[]? name, long count)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteRaw(writer.IsResp3 ? ">3\r\n"u8 : "*3\r\n"u8);
        writer.WriteBulkString(kind);
        if (name is null)
        {
            if (writer.IsResp3) writer.WriteRaw("_\r\n"u8);
            else writer.WriteNullBulkString();
        }
        else writer.WriteBulkString(name);
        writer.WriteInteger(count);
    }

    private static byte[] Encode(bool resp3, ReadOnlySpan<byte> kind, ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> channel, ReadOnlySpan<byte> message, bool withPattern)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + pattern.Length + channel.Length + message.Length);
        var w = new RespWriter(buffer, resp3 ? 3 : 2);
        w.WriteRaw(resp3 ? (withPattern ? ">4\r\n"u8 : ">3\r\n"u8) : (withPattern ? "*4\r\n"u8 : "*3\r\n"u8));
        w.WriteBulkString(kind);
        if (withPattern) w.WriteBulkString(pattern);
        w.WriteBulkString(channel);
        w.WriteBulkString(message);
        return buffer.WrittenSpan.ToArray();
    }

    private static HashSet<byte[]> Own(KvSubscriber s, KvSubscriptionKind kind) => kind switch
    {
        KvSubscriptionKind.Channel => s.Channels,
        KvSubscriptionKind.Pattern => s.Patterns,
        _ => s.ShardChannels,
    };

    private Dictionary<byte[], HashSet<KvSubscriber>> Map(KvSubscriptionKind kind) => kind switch
    {
        KvSubscriptionKind.Channel => _channels,
        KvSubscriptionKind.Pattern => _patterns,
        _ => _shardChannels,
    };
}

/// <summary>What a subscription is to.</summary>
public enum KvSubscriptionKind
{
    /// <summary>SUBSCRIBE.</summary>
    Channel,
    /// <summary>PSUBSCRIBE.</summary>
    Pattern,
    /// <summary>SSUBSCRIBE.</summary>
    ShardChannel,
}

/// <summary>The classes of <c>notify-keyspace-events</c> (Redis's NOTIFY_* bits) and their letters.</summary>
public static class KvNotifyFlags
{
    /// <summary>'K': publish on <c>__keyspace@db__:key</c>.</summary>
    public const int Keyspace = 1 << 0;
    /// <summary>'E': publish on <c>__keyevent@db__:event</c>.</summary>
    public const int Keyevent = 1 << 1;
    /// <summary>'g'.</summary>
    public const int Generic = 1 << 2;
    /// <summary>'$'.</summary>
    public const int String = 1 << 3;
    /// <summary>'l'.</summary>
    public const int List = 1 << 4;
    /// <summary>'s'.</summary>
    public const int Set = 1 << 5;
    /// <summary>'h'.</summary>
    public const int Hash = 1 << 6;
    /// <summary>'z'.</summary>
    public const int ZSet = 1 << 7;
    /// <summary>'x'.</summary>
    public const int Expired = 1 << 8;
    /// <summary>'e'.</summary>
    public const int Evicted = 1 << 9;
    /// <summary>'t'.</summary>
    public const int Stream = 1 << 10;
    /// <summary>'m' (not part of 'A').</summary>
    public const int KeyMiss = 1 << 11;
    /// <summary>'d' (module key types).</summary>
    public const int Module = 1 << 12;
    /// <summary>'n' (not part of 'A').</summary>
    public const int New = 1 << 13;
    /// <summary>'A': g$lshzxetd.</summary>
    public const int All = Generic | String | List | Set | Hash | ZSet | Expired | Evicted | Stream | Module;

    /// <summary>Redis's error for a bad letter (config.c / notify.c of redis 7.0).</summary>
    public const string InvalidClassError = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

    /// <summary>Parses Redis's letters; false on an unknown letter.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out int flags)
    {
        flags = 0;
        foreach (byte c in text)
        {
            switch ((char)c)
            {
                case 'A': flags |= All; break;
                case 'g': flags |= Generic; break;
                case '$': flags |= String; break;
                case 'l': flags |= List; break;
                case 's': flags |= Set; break;
                case 'h': flags |= Hash; break;
                case 'z': flags |= ZSet; break;
                case 'x': flags |= Expired; break;
                case 'e': flags |= Evicted; break;
                case 'K': flags |= Keyspace; break;
                case 'E': flags |= Keyevent; break;
                case 't': flags |= Stream; break;
                case 'm': flags |= KeyMiss; break;
                case 'd': flags |= Module; break;
                case 'n': flags |= New; break;
                default:
                    flags = 0;
                    return false;
            }
        }
        return true;
    }

    /// <summary>Formats flags as CONFIG GET shows them (Redis's keyspaceEventsFlagsToString).</summary>
    public static string Format(int flags)
    {
        var sb = new StringBuilder();
        if ((flags & All) == All) sb.Append('A');
        else
        {
            if ((flags & Generic) != 0) sb.Append('g');
            if ((flags & String) != 0) sb.Append('$');
            if ((flags & List) != 0) sb.Append('l');
            if ((flags & Set) != 0) sb.Append('s');
            if ((flags & Hash) != 0) sb.Append('h');
            if ((flags & ZSet) != 0) sb.Append('z');
            if ((flags & Expired) != 0) sb.Append('x');
            if ((flags & Evicted) != 0) sb.Append('e');
            if ((flags & Stream) != 0) sb.Append('t');
            if ((flags & Module) != 0) sb.Append('d');
            if ((flags & New) != 0) sb.Append('n');
        }
        if ((flags & Keyspace) != 0) sb.Append('K');
        if ((flags & Keyevent) != 0) sb.Append('E');
        if ((flags & KeyMiss) != 0) sb.Append('m');
        return sb.ToString();
    }

    /// <summary>The flag of a store event class.</summary>
    public static int FromEventClass(KvEventClass eventClass) => eventClass switch
    {
        KvEventClass.Generic => Generic,
        KvEventClass.String => String,
        KvEventClass.List => List,
        KvEventClass.Set => Set,
        KvEventClass.Hash => Hash,
        KvEventClass.ZSet => ZSet,
        KvEventClass.Expired => Expired,
        KvEventClass.Evicted => Evicted,
        KvEventClass.Stream => Stream,
        KvEventClass.KeyMiss => KeyMiss,
        KvEventClass.New => New,
        _ => 0,
    };
}
