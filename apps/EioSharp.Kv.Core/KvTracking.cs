using System.Buffers;
using System.Text;

namespace EioSharp.Kv;

/// <summary>Client-side caching (Redis 7.0's tracking.c): which clients read which keys (default mode) or which key
/// prefixes they follow (BCAST), and the invalidation messages sent when those keys change, expire, are evicted or flushed.</summary>
/// <remarks>
/// Messages: to a RESP3 client (or a RESP3 redirect target) the push <c>&gt;2 invalidate [keys]</c>; to a RESP2 redirect
/// target subscribed to <c>__redis__:invalidate</c> a pub/sub message on that channel; FLUSHALL / FLUSHDB send a null
/// instead of the key array. Default mode: a message goes out at once for each key. BCAST: as Redis, the keys changed are
/// collected per prefix and sent by <see cref="FlushBroadcasts"/> (the store owner calls it once per round, Redis's
/// beforeSleep): one message per prefix and client with the keys in byte order, a NOLOOP client's own keys left out.
/// <para><b>Thread safety</b>: any member from any domain; one lock guards the tables; messages are delivered outside it.</para>
/// </remarks>
public sealed class KvTracking
{
    /// <summary>The pub/sub channel a RESP2 redirect target subscribes to.</summary>
    public const string InvalidateChannel = "__redis__:invalidate";

    private static readonly byte[] s_invalidateChannel = Encoding.ASCII.GetBytes(InvalidateChannel);
    private readonly object _lock = new();
    private readonly Dictionary<byte[], HashSet<long>> _table = new(ByteArrayComparer.Instance);
    private readonly Dictionary<long, KvTrackingClient> _clients = [];
    private readonly SortedDictionary<byte[], BcastPrefix> _prefixes = new(ByteOrder.Instance); // Redis's PrefixTable

    // Whether any client has tracking on (_clients.Count > 0), written under the lock, read without it: a write that nobody
    // tracks (the usual case) costs InvalidateKey one volatile read instead of taking the lock (issue 14). A client enables
    // tracking (and remembers keys) before the commands whose changes it must hear of reach the store, so the store's
    // read follows the write.
    private volatile bool _anyClient;

    /// <summary>A BCAST prefix: the clients following it, and the keys changed since the last flush (with the client
    /// whose command changed each, 0: none).</summary>
    private sealed class BcastPrefix
    {
        public readonly SortedDictionary<long, KvTrackingClient> Clients = [];
        public readonly SortedDictionary<byte[], long> Keys = new(ByteOrder.Instance);
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }

    /// <summary>INFO tracking_total_items: the client ids remembered for all keys of the default-mode table.</summary>
    public long ItemCount
    {
        get
        {
            lock (_lock)
            {
                long n = 0;
                foreach (HashSet<long> ids in _table.Values) n += ids.Count;
                return n;
            }
        }
    }

    /// <summary>INFO tracking_total_prefixes: the distinct prefixes BCAST clients follow.</summary>
    public int PrefixCount
    {
        get
        {
            lock (_lock) return _prefixes.Count;
        }
    }

    /// <summary>Resolves a client id to its connection (the server's registry); null: redirects go nowhere.</summary>
    public Func<long, KvConnectionState?>? ResolveClient { get; set; }

    /// <summary>Number of clients with tracking on.</summary>
    public int ClientCount
    {
        get
        {
            lock (_lock) return _clients.Count;
        }
    }

    /// <summary>Number of keys in the tracking table (INFO tracking_total_keys).</summary>
    public int KeyCount
    {
        get
        {
            lock (_lock) return _table.Count;
        }
    }

    internal void Enable(KvTrackingClient client)
    {
        lock (_lock)
        {
            if (_clients.Remove(client.ClientId, out KvTrackingClient? old)) Unregister(old);
            _clients[client.ClientId] = client;
            _anyClient = true;
            if (!client.Bcast) return;
            foreach (byte[] prefix in client.Prefixes)
            {
                if (!_prefixes.TryGetValue(prefix, out BcastPrefix? bp)) _prefixes[prefix] = bp = new BcastPrefix();
                bp.Clients[client.ClientId] = client;
            }
        }
    }

    internal void Disable(long clientId)
    {
        lock (_lock)
        {
            if (!_clients.Remove(clientId, out KvTrackingClient? old)) return;
            _anyClient = _clients.Count > 0;
            Unregister(old);
            // As Redis, the default-mode table keeps the id; a later invalidation for it finds no client and is dropped.
        }
    }

    private void Unregister(KvTrackingClient client)
    {
        if (!client.Bcast) return;
        foreach (byte[] prefix in client.Prefixes)
        {
            if (!_prefixes.TryGetValue(prefix, out BcastPrefix? bp)) continue;
            bp.Clients.Remove(client.ClientId);
            if (bp.Clients.Count == 0) _prefixes.Remove(prefix); // with its pending keys, as Redis
        }
    }

    internal KvTrackingClient? Find(long clientId)
    {
        lock (_lock) return _clients.GetValueOrDefault(clientId);
    }

    /// <summary>Remembers that client <paramref name="clientId"/> read <paramref name="keys"/> (default mode).</summary>
    internal void Remember(long clientId, IEnumerable<byte[]> keys)
    {
        lock (_lock)
        {
            foreach (byte[] key in keys)
            {
                if (!_table.TryGetValue(key, out HashSet<long>? ids)) _table[key] = ids = [];
                ids.Add(clientId);
            }
        }
    }

    /// <summary>Whether any client has tracking on (a volatile read): <see cref="InvalidateKey"/> does nothing when not,
    /// so the store tests this inline before calling it (§221).</summary>
    internal bool AnyClient => _anyClient;

    /// <summary>A key changed, expired or was evicted: tells the clients that read it (and forgets them for this key) and
    /// the BCAST clients following a prefix of it. <paramref name="sourceClientId"/> is the client whose command changed
    /// it (0: none, as for expiry and eviction): NOLOOP clients are not told about their own changes.</summary>
    public void InvalidateKey(ReadOnlySpan<byte> key, long sourceClientId = 0)
    {
        if (!_anyClient) return; // nobody tracks: no lock (the tables hold nothing a change could concern)
        List<KvTrackingClient>? targets = null;
        byte[]? keyBytes = null;
        lock (_lock)
        {
            if (_clients.Count == 0) return;
            if (_table.Remove(key.ToArray(), out HashSet<long>? ids))
            {
                foreach (long id in ids)
                {
                    if (_clients.TryGetValue(id, out KvTrackingClient? c) && !c.Bcast && !(c.NoLoop && id == sourceClientId)) (targets ??= []).Add(c);
                }
            }
            foreach ((byte[] prefix, BcastPrefix bp) in _prefixes)
            {
                if (key.StartsWith(prefix)) bp.Keys[keyBytes ??= key.ToArray()] = sourceClientId; // sent by FlushBroadcasts
            }
        }
        if (targets is null) return;
        keyBytes ??= key.ToArray();
        foreach (KvTrackingClient c in targets) Send(c, [keyBytes]);
    }

    /// <summary>Sends the BCAST invalidations collected since the last call (Redis's trackingBroadcastInvalidationMessages):
    /// for each prefix with changed keys, one message to each of its clients with those keys in byte order (a NOLOOP client
    /// without the keys its own commands changed; no message when none is left). Call once per round of the store.</summary>
    public void FlushBroadcasts()
    {
        if (!_anyClient) return; // no BCAST client: no prefix, nothing collected (once per round, without the lock)
        List<(KvTrackingClient Client, List<byte[]> Keys)>? messages = null;
        lock (_lock)
        {
            foreach (BcastPrefix bp in _prefixes.Values)
            {
                if (bp.Keys.Count == 0) continue;
                foreach (KvTrackingClient c in bp.Clients.Values)
                {
                    var keys = new List<byte[]>(bp.Keys.Count);
                    foreach ((byte[] key, long source) in bp.Keys)
                    {
                        if (!(c.NoLoop && source == c.ClientId)) keys.Add(key);
                    }
                    if (keys.Count > 0) (messages ??= []).Add((c, keys));
                }
                bp.Keys.Clear();
            }
        }
        if (messages is null) return;
        foreach ((KvTrackingClient c, List<byte[]> keys) in messages) Send(c, keys);
    }

    /// <summary>FLUSHALL / FLUSHDB: every tracking client gets a null invalidation and the table is emptied (Redis's
    /// trackingInvalidateKeysOnFlush).</summary>
    public void InvalidateAll()
    {
        List<KvTrackingClient> targets;
        lock (_lock)
        {
            if (_clients.Count == 0)
            {
                _table.Clear();
                return;
            }
            targets = [.. _clients.Values];
            _table.Clear();
        }
        foreach (KvTrackingClient c in targets) Send(c, null);
    }

    private void Send(KvTrackingClient client, List<byte[]>? keys)
    {
        KvConnectionState? target = client.Redirect == 0 ? client.Self : ResolveClient?.Invoke(client.Redirect);
        if (target is null) return;
        KvSubscriber? sub = target.Subscriber;
        if (sub is null) return;
        var payload = new System.Buffers.ArrayBufferWriter<byte>(64);
        if (target.Protocol == 3) payload.Write(">2\r\n$10\r\ninvalidate\r\n"u8);
        else
        {
            if (!target.PubSub.IsSubscribedTo(sub, s_invalidateChannel)) return;
            payload.Write(Encoding.ASCII.GetBytes("*3\r\n$7\r\nmessage\r\n$20\r\n" + InvalidateChannel + "\r\n"));
        }
        if (keys is null)
        {
            // The null of a flush follows the tracking client's protocol (Redis's shared.null[c->resp]).
            payload.Write(client.Self.Protocol == 3 ? "_\r\n"u8 : "$-1\r\n"u8);
        }
        else
        {
            payload.Write(Encoding.ASCII.GetBytes("*" + keys.Count + "\r\n"));
            foreach (byte[] key in keys)
            {
                payload.Write(Encoding.ASCII.GetBytes("$" + key.Length + "\r\n"));
                payload.Write(key);
                payload.Write("\r\n"u8);
            }
        }
        sub.Push(payload.WrittenSpan.ToArray());
    }
}

/// <summary>One client's tracking options (CLIENT TRACKING ON ...).</summary>
internal sealed class KvTrackingClient
{
    public required long ClientId { get; init; }
    public required KvConnectionState Self { get; init; }
    public long Redirect { get; init; }
    public bool Bcast { get; init; }
    public bool OptIn { get; init; }
    public bool OptOut { get; init; }
    public bool NoLoop { get; init; }
    public List<byte[]> Prefixes { get; init; } = [];
}
