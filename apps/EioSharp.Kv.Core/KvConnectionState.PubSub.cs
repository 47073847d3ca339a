using System.Text;

namespace EioSharp.Kv;

/// <summary>Transactions (the MULTI queue) and pub/sub (subscriptions, subscribed mode, PUBLISH, PUBSUB) on the connection.</summary>
/// <remarks>
/// <b>Transactions</b>: after MULTI every command whose name, arity and authentication pass is queued (<c>+QUEUED</c>);
/// one that fails poisons the transaction (EXEC answers EXECABORT and applies nothing). EXEC hands the queue to the
/// store as part of the connection's request (<see cref="KvSession"/>), where the owner runs it without interleaving
/// another client's command. WATCH, UNWATCH, DISCARD, EXEC and RESET run in the store (watches live there).
/// <para><b>Pub/sub</b>: subscriptions are kept in the shared <see cref="KvPubSub"/>; messages reach the connection
/// through its <see cref="Subscriber"/>, which the server creates (<see cref="SubscriberFactory"/>) on the first
/// subscription.</para>
/// </remarks>
public sealed partial class KvConnectionState
{
    private const string SubscribedModeAllowed = "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context";

    /// <summary>The connection commands of transactions and pub/sub (the store side is <c>KvStore.TransactionCommands</c>).</summary>
    internal static readonly KvCommandInfo[] PubSubCommands =
    [
        new(KvCommandId.Multi, "multi", 1, KvCommandFlags.Connection, 0, 0, 0),
        new(KvCommandId.Subscribe, "subscribe", -2, KvCommandFlags.Connection, 0, 0, 0),
        new(KvCommandId.Unsubscribe, "unsubscribe", -1, KvCommandFlags.Connection, 0, 0, 0),
        new(KvCommandId.PSubscribe, "psubscribe", -2, KvCommandFlags.Connection, 0, 0, 0),
        new(KvCommandId.PUnsubscribe, "punsubscribe", -1, KvCommandFlags.Connection, 0, 0, 0),
        new(KvCommandId.SSubscribe, "ssubscribe", -2, KvCommandFlags.Connection, 1, -1, 1),
        new(KvCommandId.SUnsubscribe, "sunsubscribe", -1, KvCommandFlags.Connection, 1, -1, 1),
        new(KvCommandId.Publish, "publish", 3, KvCommandFlags.Connection, 0, 0, 0),
        new(KvCommandId.SPublish, "spublish", 3, KvCommandFlags.Connection, 1, 1, 1),
        new(KvCommandId.PubSub, "pubsub", -2, KvCommandFlags.Connection, 0, 0, 0),
    ];

    private KvTransaction? _transaction; // non-null between MULTI and EXEC/DISCARD
    private long _now;
    private bool _inExec; // running a queued connection command on the store owner

    /// <summary>The pub/sub registry (shared by every connection of the server).</summary>
    public KvPubSub PubSub { get; }

    /// <summary>Creates this connection's <see cref="KvSubscriber"/> on its first subscription (set by the server); null:
    /// SUBSCRIBE answers an error.</summary>
    public Func<KvConnectionState, KvSubscriber>? SubscriberFactory { get; set; }

    /// <summary>This connection as a subscriber, once it has subscribed (null before).</summary>
    public KvSubscriber? Subscriber { get; private set; }

    /// <summary>Whether MULTI is open.</summary>
    public bool InTransaction => _transaction is not null;

    /// <summary>Whether the connection holds any subscription (RESP2: subscribed mode).</summary>
    public bool IsSubscribed => Subscriber is { } s && (PubSub.CountOf(s) + PubSub.ShardCountOf(s)) > 0;

    /// <summary>Drops every subscription (disconnect); safe to call more than once.</summary>
    public void RemoveSubscriptions()
    {
        DisableTracking(); // Redis's RESET and freeClient turn tracking off too
        if (Subscriber is { } s) PubSub.RemoveAll(s);
    }

    /// <summary>The store could not run the request (it restarted): transactions handed to it are gone.</summary>
    public void OnRequestFailed() => Session.PendingExecs.Clear();

    private void FlagTransaction()
    {
        if (_transaction is not null) _transaction.Aborted = true;
    }

    private static bool IsTransactionControl(KvCommandInfo info) =>
        info.Id is KvCommandId.Multi or KvCommandId.Quit || info.Name is "exec" or "discard" or "watch" or "reset";

    private static bool IsAllowedInSubscribedMode(KvCommandInfo info) =>
        info.Id is KvCommandId.Subscribe or KvCommandId.Unsubscribe or KvCommandId.PSubscribe or KvCommandId.PUnsubscribe
            or KvCommandId.SSubscribe or KvCommandId.SUnsubscribe or KvCommandId.Ping or KvCommandId.Quit || info.Name == "reset";

    private static string FullName(KvCommandInfo info, KvCommand command)
    {
        if (command.Count >= 2 && info.Name is "pubsub" or "config" or "client" or "command" or "object" or "memory" or "script"
                or "function" or "xinfo" or "xgroup" or "acl" or "cluster")
        {
            return info.Name + "|" + command.GetString(1).ToLowerInvariant();
        }
        return info.Name;
    }

    /// <summary>MULTI, EXEC, DISCARD, WATCH, UNWATCH and RESET: the connection's part.</summary>
    private bool TryTransactionControl(KvCommandInfo info, RespWriter reply, out KvDispatch dispatch)
    {
        dispatch = KvDispatch.Replied;
        if (info.Id == KvCommandId.Multi)
        {
            if (_transaction is not null) reply.WriteError("ERR MULTI calls can not be nested");
            else
            {
                _transaction = new KvTransaction();
                reply.WriteOk();
            }
            return true;
        }
        // The names below are 4, 5 and 7 characters long: any other length is none of them (a test of the length before
        // the string compares, which every command paid: ~49 instructions a SET, §221).
        if (info.Name.Length is not (4 or 5 or 7)) return false;
        switch (info.Name)
        {
            case "exec":
                if (_transaction is null) reply.WriteError("ERR EXEC without MULTI");
                else
                {
                    Session.PendingExecs.Enqueue(_transaction);
                    _transaction = null;
                    dispatch = KvDispatch.Store;
                }
                return true;
            case "discard":
                if (_transaction is null) reply.WriteError("ERR DISCARD without MULTI");
                else
                {
                    _transaction = null;
                    dispatch = KvDispatch.Store; // the store unwatches and answers +OK
                }
                return true;
            case "watch":
                if (_transaction is not null) reply.WriteError("ERR WATCH inside MULTI is not allowed");
                else dispatch = KvDispatch.Store;
                return true;
            case "reset":
                // Redis's clearClientConnectionState: the connection's part here, unwatch and SELECT 0 in the store.
                _transaction = null;
                RemoveSubscriptions();
                Protocol = 2;
                reply.Protocol = 2;
                Name = null;
                ResetUser();
                ResetAdminState();
                dispatch = KvDispatch.Store;
                return true;
            default:
                return false;
        }
    }

    /// <summary>Runs a connection command that was queued in a transaction, while its EXEC executes on the store owner.</summary>
    private void RunQueuedConnectionCommand(KvCommand command, RespWriter reply)
    {
        KvCommandInfo? info = command.Info;
        if (info is null)
        {
            reply.WriteError(KvErrors.UnknownCommand(command));
            return;
        }
        _inExec = true;
        try
        {
            // QUIT inside MULTI answers +OK; unlike Redis the connection stays open.
            ExecuteConnectionCommand(info, command, reply, _now);
        }
        finally
        {
            _inExec = false;
        }
    }

    private KvSubscriber? EnsureSubscriber()
    {
        // Inside EXEC (on the store owner) only the subscriber created when the command was queued may be used.
        if (Subscriber is null && SubscriberFactory is { } factory && !_inExec) Subscriber = factory(this);
        return Subscriber;
    }

    private bool TryPubSubCommand(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        switch (info.Id)
        {
            case KvCommandId.Subscribe: Subscribe(command, reply, KvSubscriptionKind.Channel, "subscribe"); return true;
            case KvCommandId.PSubscribe: Subscribe(command, reply, KvSubscriptionKind.Pattern, "psubscribe"); return true;
            case KvCommandId.SSubscribe: Subscribe(command, reply, KvSubscriptionKind.ShardChannel, "ssubscribe"); return true;
            case KvCommandId.Unsubscribe: Unsubscribe(command, reply, KvSubscriptionKind.Channel, "unsubscribe"); return true;
            case KvCommandId.PUnsubscribe: Unsubscribe(command, reply, KvSubscriptionKind.Pattern, "punsubscribe"); return true;
            case KvCommandId.SUnsubscribe: Unsubscribe(command, reply, KvSubscriptionKind.ShardChannel, "sunsubscribe"); return true;
            case KvCommandId.Publish: reply.WriteInteger(PubSub.Publish(command[1], command[2], Subscriber, reply)); return true;
            case KvCommandId.SPublish: reply.WriteInteger(PubSub.ShardPublish(command[1], command[2])); return true;
            case KvCommandId.PubSub: PubSubCommand(command, reply); return true;
            default: return false;
        }
    }

    private int CountFor(KvSubscriptionKind kind, KvSubscriber? s) =>
        s is null ? 0 : kind == KvSubscriptionKind.ShardChannel ? PubSub.ShardCountOf(s) : PubSub.CountOf(s);

    private void Subscribe(KvCommand command, RespWriter reply, KvSubscriptionKind kind, string name)
    {
        KvSubscriber? s = EnsureSubscriber();
        if (s is null)
        {
            reply.WriteError("ERR pub/sub is not available on this connection");
            return;
        }
        for (int i = 1; i < command.Count; i++)
        {
            PubSub.Subscribe(s, kind, command[i], out bool limited);
            if (limited)
            {
                reply.WriteError(KvPubSub.TooManySubscriptions);
                return;
            }
            KvPubSub.WriteConfirmation(reply, name, command.ToArray(i), CountFor(kind, s));
        }
    }

    private void Unsubscribe(KvCommand command, RespWriter reply, KvSubscriptionKind kind, string name)
    {
        KvSubscriber? s = Subscriber;
        if (command.Count == 1)
        {
            byte[][] all = s is null ? [] : PubSub.SubscriptionsOf(s, kind);
            if (all.Length == 0)
            {
                KvPubSub.WriteConfirmation(reply, name, null, CountFor(kind, s));
                return;
            }
            foreach (byte[] channel in all)
            {
                PubSub.Unsubscribe(s!, kind, channel);
                KvPubSub.WriteConfirmation(reply, name, channel, CountFor(kind, s));
            }
            return;
        }
        for (int i = 1; i < command.Count; i++)
        {
            if (s is not null) PubSub.Unsubscribe(s, kind, command[i]);
            KvPubSub.WriteConfirmation(reply, name, command.ToArray(i), CountFor(kind, s));
        }
    }

    private void PubSubCommand(KvCommand command, RespWriter reply)
    {
        ReadOnlySpan<byte> sub = command[1];
        int n = command.Count;
        bool shardChannels = Is(sub, "SHARDCHANNELS"u8);
        if (Is(sub, "CHANNELS"u8) || shardChannels)
        {
            if (n > 3)
            {
                reply.WriteError(KvErrors.WrongArity(shardChannels ? "pubsub|shardchannels" : "pubsub|channels"));
                return;
            }
            byte[][] channels = PubSub.ActiveChannels(n == 3 ? command[2] : default, matchAll: n == 2, shard: shardChannels);
            reply.WriteArrayHeader(channels.Length);
            foreach (byte[] c in channels) reply.WriteBulkString(c);
        }
        else if (Is(sub, "NUMSUB"u8) || Is(sub, "SHARDNUMSUB"u8))
        {
            bool shard = Is(sub, "SHARDNUMSUB"u8);
            reply.WriteArrayHeader((n - 2) * 2);
            for (int i = 2; i < n; i++)
            {
                reply.WriteBulkString(command[i]);
                reply.WriteInteger(PubSub.SubscriberCount(command[i], shard));
            }
        }
        else if (Is(sub, "NUMPAT"u8))
        {
            if (n != 2) reply.WriteError(KvErrors.WrongArity("pubsub|numpat"));
            else reply.WriteInteger(PubSub.PatternCount);
        }
        else if (Is(sub, "HELP"u8))
        {
            WriteHelp(reply, "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]", "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT", "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]", "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]", "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]", "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP", "    Print this help.");
        }
        else
        {
            reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "pubsub"));
        }
    }

    /// <summary>CONFIG SET: <c>notify-keyspace-events</c> only (the other parameters are fixed at start).</summary>
    private void ConfigSet(KvCommand command, RespWriter reply)
    {
        if (command.Count < 4 || command.Count % 2 != 0)
        {
            reply.WriteError(KvErrors.WrongArity("config|set"));
            return;
        }
        var pairs = new List<(string, string)>();
        for (int i = 2; i < command.Count; i += 2) pairs.Add((command.GetString(i), command.GetString(i + 1)));
        string? error = _live.TrySet(pairs);
        if (error is not null)
        {
            reply.WriteError(error);
            return;
        }
        // notify-keyspace-events lives in the pub/sub registry the store publishes through.
        PubSub.NotifyFlags = ParseNotifyKeyspaceEvents(_config.NotifyKeyspaceEvents) ?? 0;
        reply.WriteOk();
    }

    /// <summary>Parses a <c>notify-keyspace-events</c> value (for the command line); null when a letter is invalid.</summary>
    public static int? ParseNotifyKeyspaceEvents(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return KvNotifyFlags.TryParse(Encoding.ASCII.GetBytes(value), out int flags) ? flags : null;
    }
}
