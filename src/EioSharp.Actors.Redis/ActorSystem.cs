using System.Globalization;
using System.Net;
using System.Text;
using EioSharp.Redis;
using EioSharp.Supervision;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Actors.Redis;

/// <summary>Settings of one node; read once by <see cref="ActorSystem.StartAsync"/>.</summary>
public sealed record ActorSystemOptions
{
    /// <summary>The node's id, unique among live nodes (a restarted process may reuse it once its old heartbeat expired).</summary>
    public required string NodeId { get; init; }

    /// <summary>How Redis is reached (the actor layer uses its own client: a shared pipelined connection plus pooled ones for its blocking reads).</summary>
    public required RedisOptions Redis { get; init; }

    /// <summary>How long a node's heartbeat key lives; a node is down when it has expired. Default 3 s.</summary>
    public TimeSpan HeartbeatTtl { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How often the heartbeat is renewed and other nodes are checked. Default a third of <see cref="HeartbeatTtl"/>.</summary>
    public TimeSpan? HeartbeatInterval { get; init; }

    /// <summary>The mailbox bound in entries; default 100,000.</summary>
    public long MailboxCapacity { get; init; } = 100_000;

    /// <summary>What a full mailbox does; default <see cref="MailboxOverflow.Reject"/> (nothing is lost).</summary>
    public MailboxOverflow Overflow { get; init; } = MailboxOverflow.Reject;

    /// <summary>The most entries read from each mailbox per <c>XREADGROUP</c>; also bounds what a node holds unacknowledged per actor. Default 64.</summary>
    public int ReadBatch { get; init; } = 64;

    /// <summary>The payload serializer.</summary>
    public required IActorSerializer Serializer { get; init; }

    /// <summary>The most handled messages of one actor acknowledged together (one <c>XACK</c>); default 64. An actor acknowledges
    /// when this many are handled, when its queue is empty (nothing more read for it), before a call's reply (in the same write)
    /// and when it crashes or is stopped. A node killed in between leaves up to this many handled messages per actor
    /// unacknowledged: they are handled again after the failover. 1 acknowledges each message before handling the next.</summary>
    public int AckBatch { get; init; } = 64;

    /// <summary>Some nodes of a Redis Cluster: when set, the node talks to the cluster through a <see cref="RedisClusterClient"/>
    /// (<see cref="RedisOptions.EndPoint"/> is then ignored) and actors are partitioned over its masters by the hash slot of their
    /// mailbox key. Null (the default): one Redis server at <see cref="RedisOptions.EndPoint"/>.</summary>
    /// <remarks>A node reads its mailboxes with one <c>XREADGROUP</c> per hash slot (a multi-key command must stay in one slot);
    /// actors named with a common hash tag (<c>{orders}a</c>, <c>{orders}b</c>) share a slot and so one read. See docs/distributed.md.</remarks>
    public IReadOnlyList<EndPoint>? ClusterSeeds { get; init; }
}

/// <summary>One node of a distributed actor system whose mailboxes are Redis Streams.</summary>
/// <remarks>
/// <para><b>Model</b>: an actor is a name; its mailbox is the stream <c>mailbox:{name}</c>, read by the consumer group <c>actors</c>
/// where each node is a consumer. Exactly one live node owns an actor (<c>owner:{name}</c>) and runs its handler, one message at a
/// time. Any node (or any Redis client writing the envelope fields) can send to it.</para>
/// <para><b>Delivery</b>: at least once. A message is acknowledged (<c>XACK</c>) only after its handler returned; a crash of the
/// handler restarts the actor (per its <see cref="ActorKind.Restart"/>) and the unacknowledged messages are delivered again; the
/// death of the node hands the actor to a surviving node, which claims the pending messages (<c>XAUTOCLAIM</c>). Duplicates are
/// possible for messages whose handler ran but whose <c>XACK</c> had not reached Redis: at most one per actor on a dead node.
/// Order is the stream's order for one actor while it lives on one node; across a failover, redelivered messages come before newer
/// ones but after any the new owner already started (no global order).</para>
/// <para><b>Liveness</b>: each node renews <c>node:{id}</c> (a key with a TTL) every <see cref="ActorSystemOptions.HeartbeatInterval"/>
/// and checks the others; the actors of a node whose key expired are shared among the survivors (by a stable hash of the name), each
/// taking its share with an atomic compare-and-set of <c>owner:{name}</c>.</para>
/// <para><b>Lifetime</b>: everything runs in fibers of the switch given to <see cref="StartAsync"/>.</para>
/// <para><b>Thread safety</b>: use it from fibers of the domain that created it.</para>
/// Erlang/OTP: a distributed node with registered names, <c>gen_server:cast/call</c> and <c>erlang:monitor/2</c>; see docs/distributed.md.
/// </remarks>
public sealed class ActorSystem
{
    private const string Group = "actors";

    // owner:{name} changes from ARGV[1] to ARGV[2] only if it still holds ARGV[1].
    private const string CompareAndSetScript =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0";

    // XADD with the Reject policy: refuse when the stream holds ARGV[1] entries or more.
    private const string BoundedAddScript =
        "if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return redis.error_reply('MAILBOXFULL') end " +
        "return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))";

    private readonly Switch _switch;
    private readonly MonoClock _clock;
    private readonly ActorSystemOptions _options;
    private readonly Dictionary<string, ActorKind> _kinds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LocalActor> _local = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Resolver<StreamEntry>> _calls = new(StringComparer.Ordinal);
    private readonly AsyncQueue<ActorDown> _downs = new(AsyncQueue<ActorDown>.Unbounded);
    private readonly TimeSpan _interval;
    private long _nextCorrelation;

    // Mailbox read groups with a running reader fiber: one per hash slot on a cluster, the single group 0 on one server.
    private readonly HashSet<int> _readers = [];
    private readonly bool _cluster;
    // EVALSHA of the bounded add: the script's text is not sent nor hashed by Redis per cast; NOSCRIPT (a server that has not
    // seen it yet, a restarted one, another cluster master) falls back to EVAL, which caches it there.
    private static readonly string BoundedAddSha =
        Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(Encoding.UTF8.GetBytes(BoundedAddScript)));

    private ActorSystem(Switch sw, IRedisCommands redis, MonoClock clock, ActorSystemOptions options)
    {
        _cluster = redis is RedisClusterClient;
        _switch = sw;
        Redis = redis;
        _clock = clock;
        _options = options;
        _interval = options.HeartbeatInterval ?? options.HeartbeatTtl / 3;
    }

    /// <summary>This node's id.</summary>
    public string NodeId => _options.NodeId;

    /// <summary>The node's Redis client (usable for the application's own commands): a <see cref="RedisClient"/>, or a
    /// <see cref="RedisClusterClient"/> when <see cref="ActorSystemOptions.ClusterSeeds"/> is set.</summary>
    public IRedisCommands Redis { get; }

    /// <summary>Notifications of monitored actors going down (see <see cref="MonitorAsync"/>), oldest first.</summary>
    public AsyncQueue<ActorDown> Downs => _downs;

    /// <summary>The actors this node runs now.</summary>
    public IReadOnlyCollection<string> LocalActors => _local.Keys;

    /// <summary>Actors this node took over from dead nodes since it started.</summary>
    public int TakenOver { get; private set; }

    /// <summary>Starts a node: registers it, starts its heartbeat, its mailbox reader, its inbox (replies, monitor notifications) reader and its failure detector.</summary>
    /// <param name="sw">Owns the node's fibers and connections; the node stops (without handing over its actors: they fail over) when it finishes.</param>
    /// <param name="env">Provides the network and the monotonic clock.</param>
    /// <param name="options">The node's settings.</param>
    /// <param name="kinds">The actor kinds this node can run (every node should know every kind, so any node can take over any actor).</param>
    /// <returns>The running node.</returns>
    /// <exception cref="RedisConnectionException">Redis cannot be reached.</exception>
    public static async Task<ActorSystem> StartAsync(Switch sw, Stdenv env, ActorSystemOptions options, params ActorKind[] kinds)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        // Pooled connections carry the blocking reads (one per read group on a cluster, see ClusterSeeds).
        IRedisCommands redis = options.ClusterSeeds is { Count: > 0 } seeds
            ? RedisClusterClient.Create(sw, env, options.Redis with { PoolSize = Math.Max(options.Redis.PoolSize, 16) }, [.. seeds])
            : RedisClient.Create(sw, env.Net, env.MonoClock, options.Redis with { PoolSize = Math.Max(options.Redis.PoolSize, 4) });
        var system = new ActorSystem(sw, redis, env.MonoClock, options);
        foreach (var k in kinds)
        {
            system._kinds[k.Kind] = k;
        }

        await redis.DeleteAsync(system.InboxKey(options.NodeId));
        await redis.SetAsync(NodeKey(options.NodeId), "alive", options.HeartbeatTtl);
        if (kinds.Length > 0)
        {
            // Only nodes that can run actors take part in placement and failover (a client-only node just sends and monitors).
            await redis.ExecuteAsync("SADD", "nodes", options.NodeId);
        }

        Fiber.ForkDaemon(sw, system.HeartbeatLoopAsync, "actors heartbeat");
        if (kinds.Length > 0)
        {
            Fiber.ForkDaemon(sw, system.FailureDetectorLoopAsync, "actors failure detector");
        }

        Fiber.ForkDaemon(sw, system.InboxLoopAsync, "actors inbox");
        return system;
    }

    private static string NodeKey(string node) => "node:" + node;

    private static string NodeActorsKey(string node) => "node-actors:" + node;

    private static string OwnerKey(string name) => "owner:" + name;

    private string InboxKey(string node) => "inbox:" + node;

    /// <summary>A reference to a named actor (which need not exist yet: messages wait in its mailbox).</summary>
    /// <param name="name">The name.</param>
    /// <returns>The reference.</returns>
    public static ActorRef Ref(string name) => new(name);

    /// <summary>Creates a named actor of a registered kind on this node, unless it already exists somewhere.</summary>
    /// <param name="name">The actor's name.</param>
    /// <param name="kind">The kind (registered on this node).</param>
    /// <returns>The reference, and whether this call created it.</returns>
    /// <exception cref="ArgumentException"><paramref name="kind"/> is not registered on this node.</exception>
    public async Task<(ActorRef Ref, bool Created)> SpawnAsync(string name, string kind)
    {
        if (!_kinds.ContainsKey(kind))
        {
            throw new ArgumentException($"The actor kind {kind} is not registered on node {NodeId}.", nameof(kind));
        }

        var actor = Ref(name);
        await Redis.StreamCreateGroupAsync(actor.MailboxKey, Group);
        await Redis.ExecuteAsync("HSET", "actor-kinds", name, kind);
        if (!await Redis.SetAsync(OwnerKey(name), NodeId, onlyIfNotExists: true))
        {
            return (actor, false);
        }

        await Redis.ExecuteAsync("SADD", NodeActorsKey(NodeId), name);
        StartLocal(name, kind);
        return (actor, true);
    }

    /// <summary>Sends a message without waiting for its handling (Erlang <c>gen_server:cast</c>).</summary>
    /// <typeparam name="T">The payload type (known to the serializer).</typeparam>
    /// <param name="to">The actor.</param>
    /// <param name="message">The payload.</param>
    /// <param name="version">The payload's version, for handlers reading several shapes.</param>
    /// <returns>The message's id in the mailbox, once Redis has stored it (the message then survives any node's death).</returns>
    /// <exception cref="MailboxFullException">The mailbox is full (policy <see cref="MailboxOverflow.Reject"/>).</exception>
    /// <exception cref="RedisConnectionException">Redis could not be reached; the message may or may not have been stored.</exception>
    public Task<string> CastAsync<T>(ActorRef to, T message, int version = 1) => SendAsync(to, message, version, null);

    /// <summary>Sends a request and waits for the handler's reply (Erlang <c>gen_server:call</c>).</summary>
    /// <typeparam name="TRequest">The request type.</typeparam>
    /// <typeparam name="TReply">The reply type.</typeparam>
    /// <param name="to">The actor.</param>
    /// <param name="request">The request.</param>
    /// <param name="timeout">How long to wait for the reply, on the node's clock.</param>
    /// <param name="version">The request's version.</param>
    /// <returns>The reply.</returns>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>. The request stays in the mailbox and may still be
    /// handled (a late reply is dropped).</exception>
    /// <exception cref="MailboxFullException">The mailbox is full.</exception>
    public async Task<TReply> CallAsync<TRequest, TReply>(ActorRef to, TRequest request, TimeSpan timeout, int version = 1)
    {
        string correlation = NodeId + "/" + (++_nextCorrelation).ToString(CultureInfo.InvariantCulture);
        var (promise, resolver) = Promise.Create<StreamEntry>();
        _calls[correlation] = resolver;
        try
        {
            await SendAsync(to, request, version, correlation);
            var reply = await _clock.WithTimeoutAsync(timeout, async () => await promise.AwaitAsync());
            return _options.Serializer.Deserialize<TReply>(reply["p"]);
        }
        finally
        {
            _calls.Remove(correlation);
        }
    }

    /// <summary>Asks to be told (in <see cref="Downs"/>) when the actor goes down: crashes, is stopped, or its node dies.</summary>
    /// <param name="actor">The actor.</param>
    /// <returns>A task that completes once the monitor is registered in Redis.</returns>
    /// <remarks>Erlang: <c>erlang:monitor(process, Name)</c>. A monitor fires once; monitor again to keep watching.</remarks>
    public async Task MonitorAsync(ActorRef actor) => await Redis.ExecuteAsync("SADD", "monitors:" + actor.Name, NodeId);

    /// <summary>Stops an actor this node runs: its monitors get <see cref="RemoteExitKind.Normal"/>, its ownership is released and its
    /// mailbox kept (a later <see cref="SpawnAsync"/> on any node resumes it).</summary>
    /// <param name="actor">The actor.</param>
    /// <returns>True if it ran here.</returns>
    public async Task<bool> StopAsync(ActorRef actor)
    {
        if (!_local.Remove(actor.Name, out var local))
        {
            return false;
        }

        local.Stop();
        await Redis.DeleteAsync(OwnerKey(actor.Name));
        await Redis.ExecuteAsync("SREM", NodeActorsKey(NodeId), actor.Name);
        await NotifyDownAsync(actor.Name, RemoteExitKind.Normal, "");
        return true;
    }

    private async Task<string> SendAsync<T>(ActorRef to, T message, int version, string? correlation)
    {
        var fields = new List<object>
        {
            "t", _options.Serializer.TypeName(typeof(T)), "v", version, "from", NodeId, "p", _options.Serializer.Serialize(message),
        };
        if (correlation is not null)
        {
            fields.AddRange(["r", InboxKey(NodeId), "c", correlation]);
        }

        if (_options.Overflow == MailboxOverflow.DropOldest)
        {
            return (await Redis.ExecuteAsync(["XADD", to.MailboxKey, "MAXLEN", "~", _options.MailboxCapacity, "*", .. fields])).Text!;
        }

        try
        {
            try
            {
                return (await Redis.ExecuteAsync(["EVALSHA", BoundedAddSha, 1, to.MailboxKey, _options.MailboxCapacity, .. fields])).Text!;
            }
            catch (RedisErrorException e) when (e.Prefix == "NOSCRIPT")
            {
                return (await Redis.ExecuteAsync(["EVAL", BoundedAddScript, 1, to.MailboxKey, _options.MailboxCapacity, .. fields])).Text!;
            }
        }
        catch (RedisErrorException e) when (e.Message.Contains("MAILBOXFULL", StringComparison.Ordinal))
        {
            throw new MailboxFullException(to.Name);
        }
    }

    private void StartLocal(string name, string kind)
    {
        if (_local.ContainsKey(name))
        {
            return;
        }

        var local = new LocalActor(this, Ref(name), _kinds[kind]);
        _local[name] = local;
        Fiber.ForkDaemon(_switch, local.RunAsync, "actor " + name);
        if (_readers.Add(local.ReadGroup))
        {
            int group = local.ReadGroup;
            Fiber.ForkDaemon(_switch, () => MailboxLoopAsync(group), "actors mailboxes " + group);
        }
    }

    private int ReadGroupOf(ActorRef actor) => _cluster ? RedisClusterClient.HashSlot(actor.MailboxKey) : 0;

    private Task<RedisReply[]> PipelineAsync(IReadOnlyList<object[]> commands) => Redis switch
    {
        RedisClient c => c.PipelineAsync(commands),
        RedisClusterClient c => c.PipelineAsync(commands),
        _ => throw new InvalidOperationException("unknown client"),
    };

    private async Task NotifyDownAsync(string name, RemoteExitKind kind, string text)
    {
        var watchers = await Redis.ExecuteAsync("SMEMBERS", "monitors:" + name);
        if (watchers.Elements.Count == 0)
        {
            return;
        }

        await Redis.DeleteAsync("monitors:" + name);
        foreach (var w in watchers.Elements)
        {
            await Redis.ExecuteAsync("XADD", InboxKey(w.Text!), "MAXLEN", "~", 10_000, "*", "kind", "down", "actor", name,
                "reason", kind.ToString(), "text", text, "node", NodeId);
        }
    }

    // The heartbeat has a fiber of its own: failure detection and takeovers (many round trips) must never delay it, or a busy
    // survivor would look dead to the others.
    private async Task HeartbeatLoopAsync()
    {
        while (true)
        {
            try
            {
                await Redis.SetAsync(NodeKey(NodeId), "alive", _options.HeartbeatTtl);
            }
            catch (RedisConnectionException)
            {
                // Redis unreachable: the client reconnects on the next round; the node's actors may meanwhile fail over.
            }

            await _clock.SleepAsync(_interval);
        }
    }

    private async Task FailureDetectorLoopAsync()
    {
        while (true)
        {
            await _clock.SleepAsync(_interval);
            try
            {
                await CheckOwnershipAsync();
                await DetectFailuresAsync();
                await ClaimStrayPendingAsync();
            }
            catch (RedisConnectionException)
            {
            }
        }
    }

    /// <summary>Fencing: an actor whose ownership moved to another node (this node was presumed dead: its heartbeat lapsed while it
    /// still ran) is stopped here, without notifying monitors (the new owner did).</summary>
    private async Task CheckOwnershipAsync()
    {
        var names = _local.Keys.ToList();
        if (names.Count == 0)
        {
            return;
        }

        var owners = await PipelineAsync(names.Select(n => new object[] { "GET", OwnerKey(n) }).ToArray());
        for (int i = 0; i < names.Count; i++)
        {
            if (owners[i].Text != NodeId && _local.Remove(names[i], out var lost))
            {
                LostOwnership++;
                lost.Stop();
            }
        }
    }

    /// <summary>Entries of this node's mailboxes pending at another consumer for longer than the heartbeat TTL (read by a node that
    /// was presumed dead and fenced, or that read them just before it lost the actor) are claimed (<c>XCLAIM</c>) and handed to the
    /// local actor, so no stored message stays unhandled in a foreign pending list.</summary>
    private async Task ClaimStrayPendingAsync()
    {
        foreach (var actor in _local.Values.ToList())
        {
            var pending = await Redis.StreamPendingAsync(actor.Ref.MailboxKey, Group, 256);
            var stray = pending.Where(p => p.Consumer != NodeId && p.Idle >= _options.HeartbeatTtl).ToList();
            if (stray.Count == 0)
            {
                continue;
            }

            var claimed = await Redis.ExecuteAsync(["XCLAIM", actor.Ref.MailboxKey, Group, NodeId, (long)_options.HeartbeatTtl.TotalMilliseconds,
                .. stray.Select(p => (object)p.Id)]);
            var counts = stray.ToDictionary(p => p.Id, p => p.DeliveryCount + 1);
            foreach (var e in claimed.Elements)
            {
                if (e.IsNull || e.Elements.Count < 2 || e[1].IsNull)
                {
                    continue;
                }

                var fields = new List<KeyValuePair<string, byte[]>>();
                for (int i = 0; i + 1 < e[1].Elements.Count; i += 2)
                {
                    fields.Add(new(e[1][i].Text!, e[1][i + 1].Bytes ?? []));
                }

                StrayClaimed++;
                actor.Deliver(new StreamEntry(e[0].Text!, fields), counts.GetValueOrDefault(e[0].Text!, 2));
            }
        }
    }

    /// <summary>Messages this node claimed from other consumers' pending lists outside a takeover (see the failure detector).</summary>
    public int StrayClaimed { get; private set; }

    /// <summary>Actors this node stopped because another node took them over while this one was presumed dead.</summary>
    public int LostOwnership { get; private set; }

    private async Task DetectFailuresAsync()
    {
        var nodes = (await Redis.ExecuteAsync("SMEMBERS", "nodes")).Elements.Select(e => e.Text!).OrderBy(n => n, StringComparer.Ordinal).ToList();
        var checks = await PipelineAsync(nodes.Select(n => new object[] { "EXISTS", NodeKey(n) }).ToArray());
        var alive = new List<string>();
        var dead = new List<string>();
        for (int i = 0; i < nodes.Count; i++)
        {
            (checks[i].Integer == 1 || nodes[i] == NodeId ? alive : dead).Add(nodes[i]);
        }

        int me = alive.IndexOf(NodeId);
        foreach (string d in dead)
        {
            var orphans = (await Redis.ExecuteAsync("SMEMBERS", NodeActorsKey(d))).Elements.Select(e => e.Text!).ToList();
            foreach (string name in orphans)
            {
                if (StableHash(name) % (uint)alive.Count != (uint)me)
                {
                    continue;
                }

                await TakeOverAsync(d, name);
            }

            if (orphans.Count == 0 || (await Redis.ExecuteAsync("SCARD", NodeActorsKey(d))).Integer == 0)
            {
                await Redis.ExecuteAsync("SREM", "nodes", d);
            }
        }
    }

    private async Task TakeOverAsync(string deadNode, string name)
    {
        if ((await Redis.ExecuteAsync("EVAL", CompareAndSetScript, 1, OwnerKey(name), deadNode, NodeId)).Integer != 1)
        {
            // Someone else took it, or it was stopped: drop it from the dead node's list if it is no longer the owner.
            await Redis.ExecuteAsync("SREM", NodeActorsKey(deadNode), name);
            return;
        }

        await Redis.ExecuteAsync("SADD", NodeActorsKey(NodeId), name);
        await Redis.ExecuteAsync("SREM", NodeActorsKey(deadNode), name);
        // Claim every pending message of the mailbox: only the dead owner held any.
        string start = "0-0";
        do
        {
            var claim = await Redis.StreamAutoClaimAsync(Ref(name).MailboxKey, Group, NodeId, TimeSpan.Zero, start, 1000);
            start = claim.NextStart;
        }
        while (start != "0-0");
        await NotifyDownAsync(name, RemoteExitKind.NodeDown, deadNode);
        string kind = (await Redis.ExecuteAsync("HGET", "actor-kinds", name)).Text ?? "";
        if (_kinds.ContainsKey(kind))
        {
            TakenOver++;
            StartLocal(name, kind);
        }
    }

    /// <summary>FNV-1a over the UTF-8 name: the same on every node (string.GetHashCode is randomised per process).</summary>
    private static uint StableHash(string s)
    {
        uint h = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(s))
        {
            h = (h ^ b) * 16777619;
        }

        return h;
    }

    private async Task InboxLoopAsync()
    {
        string last = "0-0";
        while (true)
        {
            RedisReply reply;
            try
            {
                reply = await Redis.ExecuteAsync("XREAD", "COUNT", 256, "BLOCK", 1000, "STREAMS", InboxKey(NodeId), last);
            }
            catch (RedisConnectionException)
            {
                await _clock.SleepAsync(_interval);
                continue;
            }

            if (reply.IsNull)
            {
                continue;
            }

            var entries = reply.Kind == RedisReplyKind.Map ? reply[1] : reply[0][1];
            foreach (var e in entries.Elements)
            {
                last = e[0].Text!;
                var fields = new List<KeyValuePair<string, byte[]>>();
                for (int i = 0; i + 1 < e[1].Elements.Count; i += 2)
                {
                    fields.Add(new(e[1][i].Text!, e[1][i + 1].Bytes ?? []));
                }

                var entry = new StreamEntry(last, fields);
                if (entry.Text("kind") == "reply" && _calls.Remove(entry.Text("c") ?? "", out var resolver))
                {
                    resolver.TryResolve(entry);
                }
                else if (entry.Text("kind") == "down")
                {
                    _downs.TryAdd(new ActorDown(Ref(entry.Text("actor")!), Enum.Parse<RemoteExitKind>(entry.Text("reason")!),
                        entry.Text("text") ?? "", entry.Text("node") ?? ""));
                }
            }
        }
    }

    /// <summary>Reads the mailboxes of the local actors of one read group (all of them on one server; those of one hash slot on a
    /// cluster, where a multi-key <c>XREADGROUP</c> must stay in one slot) with one blocking <c>XREADGROUP</c> at a time; ends when
    /// the group has no local actor left (<see cref="StartLocal"/> starts it again).</summary>
    private async Task MailboxLoopAsync(int group)
    {
        while (true)
        {
            var members = _local.Values.Where(a => a.ReadGroup == group).ToList();
            if (members.Count == 0)
            {
                _readers.Remove(group);
                return;
            }

            var keys = members.Where(a => !a.Full).Select(a => a.Ref.MailboxKey).ToList();
            if (keys.Count == 0)
            {
                await _clock.SleepAsync(TimeSpan.FromMilliseconds(5));
                continue;
            }

            List<(string Key, StreamEntry Entry)> got;
            try
            {
                got = await Redis.StreamReadGroupManyAsync(keys, Group, NodeId, _options.ReadBatch, TimeSpan.FromMilliseconds(200));
            }
            catch (RedisErrorException e) when (e.Prefix is "NOGROUP" or "UNBLOCKED")
            {
                // A mailbox (or its group) was deleted, possibly while the read was blocked (Redis 7 answers UNBLOCKED):
                // recreate the groups; messages sent from now on are read.
                foreach (string k in keys)
                {
                    await Redis.StreamCreateGroupAsync(k, Group);
                }

                continue;
            }
            catch (RedisConnectionException)
            {
                await _clock.SleepAsync(_interval);
                continue;
            }

            foreach (var (key, entry) in got)
            {
                if (_local.TryGetValue(key["mailbox:".Length..], out var actor))
                {
                    actor.Deliver(entry);
                }
            }
        }
    }

    private sealed class LocalActor(ActorSystem system, ActorRef self, ActorKind kind)
    {
        private readonly AsyncQueue<(StreamEntry Entry, long DeliveryCount)> _queue = new(AsyncQueue<(StreamEntry, long)>.Unbounded);

        // Ids handled from the pending history by the current incarnation; the same entries may also be in the queue.
        private readonly HashSet<string> _historyHandled = new(StringComparer.Ordinal);

        // Handled, not yet acknowledged (see ActorSystemOptions.AckBatch).
        private readonly List<object> _unacked = [];
        private bool _stopped;
        private Switch? _incarnation;

        public ActorRef Ref => self;

        public int ReadGroup { get; } = system.ReadGroupOf(self);

        // The node reader stops reading a mailbox while its actor holds a full batch unhandled (the in-flight window).
        public bool Full => _queue.Count >= system._options.ReadBatch;

        public void Deliver(StreamEntry entry, long deliveryCount = 1) => _queue.TryAdd((entry, deliveryCount));

        public void Stop()
        {
            _stopped = true;
            _incarnation?.CancelContext.Cancel(new OperationCanceledException("actor stopped"));
        }

        public async Task RunAsync()
        {
            while (!_stopped)
            {
                var exit = await ExitReason.CaptureAsync(() => Switch.RunAsync(async sw =>
                {
                    _incarnation = sw;
                    var behavior = kind.Create(self);
                    await RedeliverPendingAsync(behavior);
                    while (true)
                    {
                        var (entry, count) = await _queue.TakeAsync();
                        if (_historyHandled.Remove(entry.Id))
                        {
                            continue; // already handled from the pending history of this incarnation
                        }

                        await HandleAsync(behavior, entry, count);
                    }
                }, "actor " + self.Name));
                if (Fiber.IsCancelled)
                {
                    return;
                }

                // The handled messages of the ended incarnation are acknowledged (the crashed one is not among them).
                try
                {
                    await FlushAcksAsync(null);
                }
                catch (Exception e) when (e is RedisConnectionException or RedisErrorException)
                {
                    _unacked.Clear(); // they will be delivered again
                }

                if (_stopped)
                {
                    return;
                }

                await system.NotifyDownAsync(self.Name, RemoteExitKind.Crashed, exit.Error?.Message ?? exit.ToString());
                if (kind.Restart == RestartType.Temporary)
                {
                    system._local.Remove(self.Name);
                    await system.Redis.DeleteAsync(OwnerKey(self.Name));
                    await system.Redis.ExecuteAsync("SREM", NodeActorsKey(system.NodeId), self.Name);
                    return;
                }

                await system._clock.SleepAsync(kind.RestartDelay);
            }
        }

        // Messages delivered to this node but not acknowledged (a crashed incarnation's, or claimed from a dead node), oldest first.
        private async Task RedeliverPendingAsync(ActorBehavior behavior)
        {
            _historyHandled.Clear();
            string after = "0-0";
            while (true)
            {
                var pending = await system.Redis.StreamPendingAsync(self.MailboxKey, Group, 256, system.NodeId);
                var counts = pending.ToDictionary(p => p.Id, p => p.DeliveryCount);
                var history = await system.Redis.StreamReadGroupAsync(self.MailboxKey, Group, system.NodeId, 256, id: after);
                if (history.Count == 0)
                {
                    return;
                }

                foreach (var entry in history)
                {
                    after = entry.Id;
                    _historyHandled.Add(entry.Id);

                    if (entry.Fields.Count == 0)
                    {
                        _unacked.Add(entry.Id); // trimmed while pending
                        continue;
                    }

                    await HandleAsync(behavior, entry, (counts.TryGetValue(entry.Id, out long c) ? c : 1) + 1);
                }
            }
        }

        private async Task HandleAsync(ActorBehavior behavior, StreamEntry entry, long deliveryCount)
        {
            var message = new ActorMessage(self, entry, deliveryCount, system._options.Serializer);
            var reply = await behavior(message);
            _unacked.Add(entry.Id);
            if (message.IsCall)
            {
                var r = reply ?? new ActorReply("null", "null"u8.ToArray());
                await FlushAcksAsync(["XADD", message.ReplyTo!, "MAXLEN", "~", 10_000, "*", "kind", "reply", "c", message.CorrelationId!,
                    "t", r.TypeName, "p", r.Payload]);
            }
            else if (_unacked.Count >= system._options.AckBatch || _queue.Count == 0)
            {
                await FlushAcksAsync(null);
            }
        }

        // One XACK for the handled messages, in one write with the command before it (a call's reply), if any.
        private async Task FlushAcksAsync(object[]? before)
        {
            if (_unacked.Count == 0 && before is null)
            {
                return;
            }

            var commands = new List<object[]>(2);
            if (before is not null)
            {
                commands.Add(before);
            }

            if (_unacked.Count > 0)
            {
                commands.Add(["XACK", self.MailboxKey, Group, .. _unacked]);
            }

            var replies = commands.Count == 1 ? [await system.Redis.ExecuteAsync(commands[0])] : await system.PipelineAsync(commands);
            _unacked.Clear();
            if (replies.FirstOrDefault(r => r.IsError) is { } error)
            {
                throw new RedisErrorException(error.Text ?? "error");
            }
        }
    }
}
