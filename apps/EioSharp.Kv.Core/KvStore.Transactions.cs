namespace EioSharp.Kv;

/// <summary>A transaction the connection queued (MULTI ... EXEC), handed to the store with its EXEC.</summary>
internal sealed class KvTransaction
{
    /// <summary>The queued commands, in order (names and arities already checked).</summary>
    public List<KvCommand> Commands { get; } = [];

    /// <summary>A command was rejected while queuing: EXEC answers EXECABORT and applies nothing.</summary>
    public bool Aborted { get; set; }

    /// <summary>CLIENT LIST <c>multi-mem</c>, as Redis 7.0's <c>mstate.argv_len_sums</c>: for every queued command, the
    /// length of its arguments plus one pointer (8 bytes) per argument. Written by the connection, read from any domain.</summary>
    public long ArgvBytes => Volatile.Read(ref _argvBytes);

    private long _argvBytes;

    /// <summary>Queues <paramref name="command"/> (an owned copy) and counts it in <see cref="ArgvBytes"/>.</summary>
    public void Queue(KvCommand command)
    {
        long bytes = 8L * command.Count;
        for (int i = 0; i < command.Count; i++) bytes += command[i].Length;
        Commands.Add(command);
        Volatile.Write(ref _argvBytes, _argvBytes + bytes);
    }
}

public sealed partial class KvSession
{
    // ---- owned by the connection while no request is in flight; read by the store during the request ----

    /// <summary>Transactions whose EXEC is on its way to the store, in order (a pipeline may hold several).</summary>
    internal readonly Queue<KvTransaction> PendingExecs = new();

    /// <summary>Runs a connection command (PING, ECHO, PUBLISH...) queued in a transaction, on the store owner, while
    /// the connection waits for the EXEC's reply (so nothing else touches the connection state then).</summary>
    internal Action<KvCommand, RespWriter>? RunConnectionCommand;

    // ---- owned by the store ----

    /// <summary>The keys this session WATCHes (db, key, whether the key had already expired at WATCH time).</summary>
    internal List<(int Db, byte[] Key, bool ExpiredAtWatch)>? Watched;

    /// <summary>A watched key was modified since WATCH: the next EXEC fails.</summary>
    internal bool WatchDirty;

    /// <summary>The store that registered <see cref="Watched"/> (after a store restart the watches are lost: EXEC fails).</summary>
    internal KvStore? WatchStore;

    /// <summary>Whether the session watches any key (read by the connection at disconnect, when no request is in flight).</summary>
    public bool HasWatchedKeys => Watched is { Count: > 0 };
}

public sealed partial class KvStore
{
    private const string ExecAbortError = "EXECABORT Transaction discarded because of previous errors.";

    private static readonly KvCommand s_multi = KvCommand.Create("MULTI");
    private static readonly KvCommand s_exec = KvCommand.Create("EXEC");

    private Dictionary<byte[], List<KvSession>>?[]? _watchedKeys; // per database number (SWAPDB does not move watches)
    private int _watchedCount;
    private KvPubSub? _pubSub;

    /// <summary>The store side of transactions: EXEC, DISCARD, WATCH, UNWATCH, RESET (the connection queues MULTI's commands
    /// and routes these here; see <see cref="KvConnectionState"/>).</summary>
    internal static readonly KvCommandInfo[] TransactionCommands =
    [
        KvCommandTable.Data("exec", 1, KvCommandFlags.None, 0, 0, 0, static (s, in c) => s.Exec(c)),
        KvCommandTable.Data("discard", 1, KvCommandFlags.None, 0, 0, 0, static (s, in c) => { s.Unwatch(c.Session); c.Reply.WriteOk(); }),
        KvCommandTable.Data("watch", -2, KvCommandFlags.None, 1, -1, 1, static (s, in c) => s.Watch(c)),
        KvCommandTable.Data("unwatch", 1, KvCommandFlags.None, 0, 0, 0, static (s, in c) => { s.Unwatch(c.Session); c.Reply.WriteOk(); }),
        KvCommandTable.Data("reset", 1, KvCommandFlags.NoAuth, 0, 0, 0, static (s, in c) =>
        {
            s.Unwatch(c.Session);
            c.Session.Db = 0;
            c.Reply.WriteSimpleString("RESET");
        }),
    ];

    /// <summary>The pub/sub registry keyspace notifications go to (<c>notify-keyspace-events</c>); null: none.</summary>
    public KvPubSub? PubSub
    {
        get => _pubSub;
        set => _pubSub = value;
    }

    /// <summary>Number of (session, key) watches held (tests, INFO).</summary>
    public int WatchedKeyCount => _watchedCount;

    private void Watch(in Context ctx)
    {
        KvSession session = ctx.Session;
        int db = ctx.Db.Index;
        _watchedKeys ??= new Dictionary<byte[], List<KvSession>>?[_dbs.Length];
        var map = _watchedKeys[db] ??= new Dictionary<byte[], List<KvSession>>(ByteArrayComparer.Instance);
        for (int i = 1; i < ctx.Count; i++)
        {
            ReadOnlySpan<byte> key = ctx[i];
            session.Watched ??= [];
            if (session.Watched.Count > 0 && !ReferenceEquals(session.WatchStore, this)) session.WatchDirty = true; // watched in a store that restarted
            session.WatchStore = this;
            bool already = false;
            foreach (var w in session.Watched)
            {
                if (w.Db == db && key.SequenceEqual(w.Key))
                {
                    already = true;
                    break;
                }
            }
            if (already) continue;
            // Redis 7: a key that had already expired at WATCH time is not a change when it is later found expired.
            bool expired = ctx.Db.Lookup.TryGetValue(key, out KvEntry? e) && IsExpired(e, ctx.Now);
            byte[] copy = key.ToArray();
            session.Watched.Add((db, copy, expired));
            if (!map.TryGetValue(copy, out var sessions)) map[copy] = sessions = new List<KvSession>(1);
            sessions.Add(session);
            _watchedCount++;
        }
        ctx.Reply.WriteOk();
    }

    /// <summary>Forgets every key <paramref name="session"/> watches and clears its dirty flag (EXEC, DISCARD, UNWATCH, RESET, disconnect).</summary>
    internal void Unwatch(KvSession session)
    {
        session.WatchDirty = false;
        if (session.Watched is not { Count: > 0 } watched) return;
        if (_watchedKeys is null || !ReferenceEquals(session.WatchStore, this))
        {
            watched.Clear(); // registered in a store that has since restarted: nothing to remove here
            return;
        }
        foreach (var (db, key, _) in watched)
        {
            var map = _watchedKeys[db];
            if (map is null || !map.TryGetValue(key, out var sessions)) continue;
            sessions.Remove(session);
            if (sessions.Count == 0) map.Remove(key);
            _watchedCount--;
        }
        watched.Clear();
    }

    /// <summary>Marks the sessions watching <paramref name="key"/> of database <paramref name="db"/> dirty.</summary>
    private void TouchWatchedKey(int db, ReadOnlySpan<byte> key)
    {
        if (_watchedCount == 0 || _watchedKeys?[db] is not { } map) return;
        if (!map.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(key, out var sessions)) return;
        foreach (KvSession s in sessions) s.WatchDirty = true;
    }

    /// <summary>Before FLUSHDB/FLUSHALL empties <paramref name="db"/> (and before SWAPDB exchanges it with
    /// <paramref name="other"/>): marks dirty the watchers of every watched key that exists in either, like Redis's
    /// touchAllWatchedKeysInDb.</summary>
    internal void TouchWatchedKeysInDb(int db, int other = -1)
    {
        if (_watchedCount == 0 || _watchedKeys?[db] is not { } map) return;
        foreach (var (key, sessions) in map)
        {
            if (_dbs[db].Lookup.ContainsKey(key) || (other >= 0 && _dbs[other].Lookup.ContainsKey(key)))
            {
                foreach (KvSession s in sessions) s.WatchDirty = true;
            }
        }
    }

    /// <summary>Called for every change a command reports (<see cref="Changed(in Context, ReadOnlySpan{byte}, KvEventClass, string)"/>):
    /// WATCH and keyspace notifications.</summary>
    /// <remarks>Each hook's "nothing to do" test is made here, inline, before its call (§221).</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void OnChangedForTransactionsAndPubSub(int db, ReadOnlySpan<byte> key, KvEventClass eventClass, string eventName)
    {
        if (_watchedCount != 0) TouchWatchedKey(db, key);
        if (_pubSub is not { } pubSub) return;
        if (pubSub.HasSubscriptions) pubSub.NotifyKeyspaceEvent(KvNotifyFlags.FromEventClass(eventClass), eventName, key, db);
        if (pubSub.Tracking.AnyClient) pubSub.Tracking.InvalidateKey(key, TrackingSourceClientId); // CLIENT TRACKING
    }

    /// <summary>A key expired (lazily or actively): keyspace notification <c>expired</c>. Like Redis 7.0 it does not
    /// touch watchers: EXEC instead checks whether a watched key has expired since WATCH.</summary>
    private void OnExpiredForPubSub(int db, ReadOnlySpan<byte> key)
    {
        _pubSub?.NotifyKeyspaceEvent(KvNotifyFlags.Expired, "expired", key, db);
        _pubSub?.Tracking.InvalidateKey(key); // CLIENT TRACKING: an expired key is invalidated (no source client)
    }

    /// <summary>The client whose command is running (CLIENT TRACKING NOLOOP); set by <see cref="Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/>.</summary>
    internal long TrackingSourceClientId;

    /// <summary>For eviction (maxmemory): tells the clients tracking <paramref name="key"/> that it is gone, as Redis's
    /// evict path does (signalModifiedKey). Call it once per evicted key.</summary>
    internal void InvalidateEvictedKey(ReadOnlySpan<byte> key) => _pubSub?.Tracking.InvalidateKey(key);

    private bool IsWatchDirty(KvSession session, long now)
    {
        if (session.WatchDirty) return true;
        if (session.Watched is not { Count: > 0 }) return false;
        if (!ReferenceEquals(session.WatchStore, this)) return true; // the store restarted since WATCH: be safe, abort
        foreach (var (db, key, expiredAtWatch) in session.Watched)
        {
            if (expiredAtWatch) continue;
            if (_dbs[db].Lookup.TryGetValue(key, out KvEntry? e) && IsExpired(e, now)) return true;
        }
        return false;
    }

    private void Exec(in Context ctx)
    {
        KvSession session = ctx.Session;
        if (!session.PendingExecs.TryDequeue(out KvTransaction? tx))
        {
            ctx.Reply.WriteError("ERR EXEC without MULTI");
            return;
        }
        if (tx.Aborted)
        {
            Unwatch(session);
            ctx.Reply.WriteError(ExecAbortError);
            return;
        }
        if (IsWatchDirty(session, ctx.Now))
        {
            Unwatch(session);
            ctx.Reply.WriteNullArray();
            return;
        }
        Unwatch(session);

        // The commands log into a list; if any changed data they go to the AOF as one MULTI ... EXEC block, so that a
        // torn tail never replays half a transaction. SELECTs are emitted relative to the real log's database.
        IAofSink? aof = ctx.Aof;
        AofListSink? collected = null;
        if (aof is not null)
        {
            if (!ReferenceEquals(aof, _aofSinkSeen))
            {
                _aofSinkSeen = aof;
                _aofDb = -1;
            }
            collected = new AofListSink();
            _aofSinkSeen = collected;
        }
        RespWriter reply = ctx.Reply;
        reply.WriteArrayHeader(tx.Commands.Count);
        _depth++; // the queued commands are not top-level: a blocking one (BLPOP, WAIT) answers at once, as in Redis
        try
        {
            foreach (KvCommand command in tx.Commands)
            {
                if (KvConnectionState.ExecAclError(session, command, ctx.Now) is { } aclError)
                {
                    reply.WriteError(aclError); // the rules changed since it was queued (Redis 7.0's execCommand)
                    continue;
                }
                if (command.Info?.Id == KvCommandId.Migrate)
                {
                    // As redis-server: the transfer blocks the store owner (KvStore.MigrateBlocking); its DEL joins the block.
                    MigrateBlocking(session, command, ctx.Now, reply, collected);
                    continue;
                }
                if (command.Info?.Handler is null && session.RunConnectionCommand is { } run)
                {
                    run(command, reply);
                    continue;
                }
                Execute(session, command, ctx.Now, reply, collected);
            }
        }
        finally
        {
            _depth--;
            if (aof is not null)
            {
                _aofSinkSeen = aof;
                if (collected!.Commands.Count > 0)
                {
                    aof.Append(s_multi);
                    foreach (KvCommand logged in collected.Commands) aof.Append(logged);
                    aof.Append(s_exec);
                }
            }
        }
    }
}
