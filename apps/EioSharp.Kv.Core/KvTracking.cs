using System.Text;

namespace EioSharp.Kv;

/// <summary>Client-side caching (Redis 7.0's tracking.c): which clients read which keys (default mode) or which key
/// prefixes they follow (BCAST), and the invalidation messages sent when those keys change, expire, are evicted or flushed.</summary>
/// <remarks>
/// Messages: to a RESP3 client (or a RESP3 redirect target) the push <c>&gt;2 invalidate [keys]</c>; to a RESP2 redirect
/// target subscribed to <c>__redis__:invalidate</c> a pub/sub message on that channel; FLUSHALL / FLUSHDB send a null
/// instead of the key array. A message goes out at once for each key (Redis batches BCAST keys until its event loop
/// sleeps: a command changing several keys sends one message per key here).
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
        lock (_lock) _clients[client.ClientId] = client;
    }

    internal void Disable(long clientId)
    {
        lock (_lock)
        {
            if (!_clients.Remove(clientId)) return;
            // As Redis, the default-mode table keeps the id; a later invalidation for it finds no client and is dropped.
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

    /// <summary>A key changed, expired or was evicted: tells the clients that read it (and forgets them for this key) and
    /// the BCAST clients following a prefix of it. <paramref name="sourceClientId"/> is the client whose command changed
    /// it (0: none, as for expiry and eviction): NOLOOP clients are not told about their own changes.</summary>
    public void InvalidateKey(ReadOnlySpan<byte> key, long sourceClientId = 0)
    {
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
            foreach (KvTrackingClient c in _clients.Values)
            {
                if (!c.Bcast || (c.NoLoop && c.ClientId == sourceClientId)) continue;
                foreach (byte[] prefix in c.Prefixes)
                {
                    if (key.StartsWith(prefix))
                    {
                        (targets ??= []).Add(c);
                        break;
                    }
                }
            }
        }
        if (targets is null) return;
        keyBytes = key.ToArray();
        foreach (KvTrackingClient c in targets) Send(c, keyBytes);
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

    private void Send(KvTrackingClient client, byte[]? key)
    {
        KvConnectionState? target = client.Redirect == 0 ? client.Self : ResolveClient?.Invoke(client.Redirect);
        if (target is null) return;
        KvSubscriber? sub = target.Subscriber;
        if (sub is null) return;
        var sb = new StringBuilder();
        // The null of a flush follows the tracking client's protocol (Redis's shared.null[c->resp]).
        string nullReply = client.Self.Protocol == 3 ? "_\r\n" : "$-1\r\n";
        string payload = key is null ? nullReply : "*1\r\n$" + key.Length + "\r\n";
        byte[] head, tail = key is null ? [] : "\r\n"u8.ToArray();
        if (target.Protocol == 3)
        {
            head = Encoding.ASCII.GetBytes(">2\r\n$10\r\ninvalidate\r\n" + payload);
        }
        else
        {
            if (!target.PubSub.IsSubscribedTo(sub, s_invalidateChannel)) return;
            head = Encoding.ASCII.GetBytes("*3\r\n$7\r\nmessage\r\n$20\r\n" + InvalidateChannel + "\r\n" + payload);
        }
        byte[] message = new byte[head.Length + (key?.Length ?? 0) + tail.Length];
        head.CopyTo(message, 0);
        key?.CopyTo(message, head.Length);
        tail.CopyTo(message, head.Length + (key?.Length ?? 0));
        sub.Push(message);
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
