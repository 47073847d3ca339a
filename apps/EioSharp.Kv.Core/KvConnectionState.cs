using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace EioSharp.Kv;

/// <summary>What the server does with a command after <see cref="KvConnectionState.Process"/>.</summary>
public enum KvDispatch
{
    /// <summary>The reply has been written; nothing else to do.</summary>
    Replied,
    /// <summary>Nothing written: send the command to the store owner (<see cref="KvStore.Execute(KvSession, KvCommand, long, RespWriter, IAofSink)"/>).</summary>
    Store,
    /// <summary>The reply has been written (QUIT): flush it, then close the connection.</summary>
    Close,
    /// <summary>Nothing written: the server runs the command itself (MIGRATE: network I/O, outside the store).</summary>
    Server,
}

/// <summary>Per-connection state and the commands answered on the connection itself.</summary>
/// <remarks>
/// Handles PING, ECHO, QUIT, HELLO, AUTH, SELECT, CLIENT, COMMAND, CONFIG and INFO, checks the
/// command name, arity and authentication of every command, and tells the caller to forward data
/// commands to the store. Pure logic: no sockets, no clock (the caller passes the time).
/// <para><b>Thread safety</b>: one instance per connection, used by that connection's fiber only.</para>
/// </remarks>
public sealed partial class KvConnectionState
{
    private const int MaxClientNameLength = 1024; // generous; names are shown in CLIENT LIST lines

    private readonly KvLiveConfig _live;
    private readonly KvServerStats _stats;

    // The configuration in force (CONFIG SET changes it at run time); a snapshot per read.
    private KvServerConfig _config => _live.Current;

    /// <summary>Creates the state of a new connection.</summary>
    /// <param name="clientId">Unique id (CLIENT ID, HELLO).</param>
    /// <param name="config">Server settings.</param>
    /// <param name="stats">Server statistics for INFO.</param>
    /// <param name="pubSub">The server's pub/sub registry; null: a private one (tests).</param>
    public KvConnectionState(long clientId, KvServerConfig config, KvServerStats stats, KvPubSub? pubSub = null)
        : this(clientId, new KvLiveConfig(config ?? throw new ArgumentNullException(nameof(config))), stats, pubSub)
    {
    }

    /// <summary>Creates the state of a new connection of a server whose configuration changes at run time.</summary>
    /// <param name="clientId">Unique id (CLIENT ID, HELLO).</param>
    /// <param name="config">The server's live configuration (CONFIG GET/SET/REWRITE act on it).</param>
    /// <param name="stats">Server statistics for INFO.</param>
    /// <param name="pubSub">The server's pub/sub registry; null: a private one (tests).</param>
    public KvConnectionState(long clientId, KvLiveConfig config, KvServerStats stats, KvPubSub? pubSub = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stats);
        ClientId = clientId;
        Session = new KvSession { ClientId = clientId };
        Session.Connection = this;
        _live = config;
        _stats = stats;
        ResetUser();
        PubSub = pubSub ?? new KvPubSub();
        Session.RunConnectionCommand = RunQueuedConnectionCommand;
    }

    /// <summary>What the store keeps for this connection (the selected database); read it only while no request is in flight.</summary>
    public KvSession Session { get; }

    /// <summary>The client id.</summary>
    public long ClientId { get; }

    /// <summary>Name set by CLIENT SETNAME or HELLO SETNAME; null when none.</summary>
    public string? Name { get; private set; }

    /// <summary>RESP version the client speaks: 2, or 3 after HELLO 3. Replies to this client, including store replies, use it.</summary>
    public int Protocol { get; private set; } = 2;

    /// <summary>Whether the client may run commands (always true when no password is configured).</summary>
    public bool IsAuthenticated { get; private set; }

    /// <summary>Library name from CLIENT SETINFO LIB-NAME.</summary>
    public string? LibraryName { get; private set; }

    /// <summary>Library version from CLIENT SETINFO LIB-VER.</summary>
    public string? LibraryVersion { get; private set; }

    /// <summary>Remote address shown by CLIENT INFO (set by the server).</summary>
    public string RemoteAddress { get; set; } = "?";

    /// <summary>The client came through the Unix socket (Redis's <c>unixsocket</c>; CLIENT LIST flag <c>U</c>).</summary>
    public bool IsUnixSocket { get; init; }

    /// <summary>Where <paramref name="command"/> runs (same as <see cref="KvCommandTable.Route"/>).</summary>
    public static KvRoute Route(KvCommand command) => KvCommandTable.Route(command);

    /// <summary>Writes a protocol error reply (<c>-ERR Protocol error: ...</c>); the server then closes the connection.</summary>
    public static void WriteProtocolError(RespWriter reply, RespProtocolException exception)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(exception);
        reply.WriteError("ERR " + exception.Message);
    }

    /// <summary>Checks and, for connection commands, executes <paramref name="command"/>.</summary>
    /// <param name="command">The parsed command.</param>
    /// <param name="reply">The connection's writer; its <see cref="RespWriter.Protocol"/> is set to <see cref="Protocol"/>.</param>
    /// <param name="nowUnixMs">The current time (INFO uptime).</param>
    /// <returns><see cref="KvDispatch.Store"/> when the caller must forward the command to the store (nothing written);
    /// otherwise the reply has been written.</returns>
    public KvDispatch Process(KvCommand command, RespWriter reply, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(reply);
        reply.Protocol = Protocol;
        _now = nowUnixMs;
        if (ReplyControlActive) BeginCommandForReplyControl();
        KvCommandInfo? info = command.Info;
        if (info is null)
        {
            reply.WriteError(KvErrors.UnknownCommand(command));
            CommandStats?.RecordRejected(null, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (!info.AcceptsArgumentCount(command.Count))
        {
            reply.WriteError(KvErrors.WrongArity(info.Name));
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (command.Count >= 2 && KvRedisCommands.Lookup(command, info) is { Parent: not null } subcommand && !AcceptsArity(subcommand.Arity, command.Count))
        {
            // As Redis's processCommand: a known subcommand's own arity, before authentication and ACL.
            reply.WriteError(KvErrors.WrongArity(subcommand.FullName));
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (AuthRequired && (info.Flags & KvCommandFlags.NoAuth) == 0)
        {
            reply.WriteError(KvErrors.NoAuth);
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (User.Deleted)
        {
            // ACL DELUSER / ACL LOAD removed this connection's user: Redis closes such connections.
            ResetUser();
            return KvDispatch.Close;
        }
        if (_transaction is not null && KvRedisCommands.Lookup(command, info) is { NoMulti: true })
        {
            // Redis's processCommand: a command flagged no-multi in its table (SYNC, PSYNC, SHUTDOWN, SAVE in 7.0.15) is
            // refused at queue time, before the ACL and maxmemory checks, and the transaction is flagged (EXECABORT).
            reply.WriteError("ERR Command not allowed inside a transaction");
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (!AclAllows(info, command, reply))
        {
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (_transaction is not null && info.Name is not ("exec" or "discard" or "quit" or "reset") && OverMaxMemory())
        {
            // Redis's processCommand: over maxmemory, nothing is queued in MULTI (queuing takes memory); EXEC then aborts.
            reply.WriteError(KvStore.OomError);
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        string? diskError = _stats.AofLastWriteOk && _stats.RdbLastBgSaveOk ? null : _stats.DiskWriteError(_config);
        if (diskError is not null && info.Name == "exec" && _transaction is not null && !_transaction.Aborted
            && _transaction.Commands.Exists(c => (c.Info is { } q && IsDiskWrite(q, c)) || IsWriteScript(c)))
        {
            // Redis 7.0: an EXEC whose queued commands write is a write command; its rejection aborts the transaction
            // (execCommandAbort: discarded, keys unwatched) with the disk error as the reason.
            reply.WriteError("EXECABORT Transaction discarded because of: " + diskError);
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            _transaction = null;
            Session.UnwatchAtNextRequest = true;
            return KvDispatch.Replied;
        }
        if (diskError is not null && (IsDiskWrite(info, command) || info.Id == KvCommandId.Ping))
        {
            // As Redis while the AOF cannot be written or fsynced, or a BGSAVE failed with stop-writes-on-bgsave-error:
            // writes (and PING) are refused, reads go on.
            reply.WriteError(diskError);
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (_config.RefusesWritesForReplicas && RefuseForReplicas(info, command, reply)) return KvDispatch.Replied; // h50
        if (_stats.Loading && !AllowedWhileLoading(info, command))
        {
            reply.WriteError(KvErrors.Loading);
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            FlagTransaction();
            return KvDispatch.Replied;
        }
        OnCommandAccepted(info, command, nowUnixMs);
        if (Protocol == 2 && Subscriber is not null && !IsAllowedInSubscribedMode(info) && IsSubscribed)
        {
            reply.WriteError($"ERR Can't execute '{FullName(info, command)}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
            FlagTransaction();
            return KvDispatch.Replied;
        }
        if (ScriptMonitor is { IsBusy: true } monitor && !IsAllowedWhileBusy(info, command))
        {
            AnswerWhileBusy(monitor, info, command, reply);
            return KvDispatch.Replied;
        }
        if (_transaction is not null && !IsTransactionControl(info))
        {
            // A subscription queued in MULTI runs on the store owner: create the subscriber here, on the connection.
            if (info.Id is KvCommandId.Subscribe or KvCommandId.PSubscribe or KvCommandId.SSubscribe) EnsureSubscriber();
            _transaction.Queue(command.ToOwned()); // kept past the batch: a view would be overwritten; counted in multi-mem
            reply.WriteSimpleString("QUEUED");
            return KvDispatch.Replied;
        }
        TrackBeforeExecute(info, command); // CLIENT TRACKING: keys read (KvConnectionState.Tracking.cs)
        if (TryTransactionControl(info, reply, out KvDispatch dispatch)) return dispatch;
        if (info.Route == KvRoute.Store) return KvDispatch.Store;
        if (info.Id == KvCommandId.Client && command.Count >= 2 && Is(command[1], "UNBLOCK"u8)) return KvDispatch.Store; // the store knows who is blocked
        if (CommandStats is not { } stats) return ExecuteConnectionCommand(info, command, reply, nowUnixMs);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        long errors = reply.ErrorCount;
        KvDispatch result = ExecuteConnectionCommand(info, command, reply, nowUnixMs);
        long micros = (long)System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        stats.Record(LastCommandName, command, micros, reply.ErrorCount != errors ? reply.LastError : null, _config, nowUnixMs, RemoteAddress, Name);
        return result;
    }

    /// <summary>Whether Redis flags the command write for its disk-error check: scripts are decided by the store from
    /// their flags (a script without a shebang may write; it is stopped at its first write), FUNCTION only for the
    /// subcommands that change the libraries.</summary>
    private static bool IsDiskWrite(KvCommandInfo info, KvCommand command)
    {
        if (!info.IsWrite) return false; // EVAL/EVALSHA/FCALL are may_replicate, not write: decided by the store
        if (info.Name == "function")
        {
            return command.Count >= 2 && (Is(command[1], "LOAD"u8) || Is(command[1], "DELETE"u8) || Is(command[1], "FLUSH"u8) || Is(command[1], "RESTORE"u8));
        }
        return true;
    }

    /// <summary>min-replicas-to-write (h50): with no replicas, Redis's processCommand refuses a write command with
    /// -NOREPLICAS (flagging a transaction it is queued in), and an EXEC whose queued commands write aborts the transaction.
    /// Scripts are refused by the store (<see cref="KvStore.WritesDeniedError"/>).</summary>
    private bool RefuseForReplicas(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        if (info.Name == "exec" && _transaction is not null && !_transaction.Aborted
            && _transaction.Commands.Exists(c => (c.Info is { } q && IsDiskWrite(q, c)) || IsWriteScript(c)))
        {
            reply.WriteError("EXECABORT Transaction discarded because of: " + KvServerConfig.NoReplicasError);
            CommandStats?.RecordRejected(info.Name, reply.LastError!);
            _transaction = null;
            Session.UnwatchAtNextRequest = true;
            return true;
        }
        if (!IsDiskWrite(info, command)) return false;
        reply.WriteError(KvServerConfig.NoReplicasError);
        CommandStats?.RecordRejected(info.Name, reply.LastError!);
        FlagTransaction();
        return true;
    }

    /// <summary>An EVAL queued in MULTI whose body declares flags without no-writes (Redis counts it as a write command).</summary>
    private static bool IsWriteScript(KvCommand command)
    {
        if (command.Info?.Name is not ("eval" or "eval_ro") || command.Count < 2) return false;
        ReadOnlySpan<byte> body = command[1];
        if (!body.StartsWith("#!"u8)) return false;
        int end = body.IndexOf((byte)'\n');
        ReadOnlySpan<byte> shebang = end < 0 ? body : body[..end];
        return shebang.IndexOf("no-writes"u8) < 0;
    }

    /// <summary>Whether used memory (as INFO reports it) is over maxmemory with nothing the store could evict: under
    /// noeviction whenever it is over, under an evicting policy when the store's last attempt failed.</summary>
    private bool OverMaxMemory()
    {
        KvServerConfig c = _config;
        return c.MaxMemory > 0 && _stats.UsedMemory > c.MaxMemory
            && (string.Equals(c.MaxMemoryPolicy, "noeviction", StringComparison.OrdinalIgnoreCase) || _stats.EvictionFailed);
    }

    /// <summary>What the store publishes about a running script: while one is past busy-reply-threshold, this connection
    /// answers <c>-BUSY</c> itself (and takes SCRIPT KILL / FUNCTION KILL); null: no scripts (tests).</summary>
    public KvScriptMonitor? ScriptMonitor { get; init; }

    /// <summary>Commands Redis 7.0 runs while a script is busy (its CMD_ALLOW_BUSY flag; SHUTDOWN only with NOSAVE).
    /// Checked after the name, arity, authentication and subscribed-mode checks, as Redis's processCommand does.</summary>
    private bool IsAllowedWhileBusy(KvCommandInfo info, KvCommand command)
    {
        switch (info.Name)
        {
            case "auth" or "hello" or "multi" or "discard" or "watch" or "unwatch" or "quit" or "reset":
                return true;
            case "script" or "function":
                // SCRIPT KILL / FUNCTION KILL: answered here at once, unless queued in MULTI (Redis queues them).
                return _transaction is not null && command.Count == 2 && Is(command[1], "KILL"u8);
            case "shutdown":
                for (int i = 1; i < command.Count; i++) if (Is(command[i], "NOSAVE"u8)) return true;
                return false;
            default:
                return false;
        }
    }

    /// <summary>A command not allowed while a script is busy: <c>-BUSY</c> (which poisons an open transaction), EXEC
    /// aborts its transaction, SCRIPT KILL / FUNCTION KILL act.</summary>
    private void AnswerWhileBusy(KvScriptMonitor monitor, KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        if (info.Name == "exec")
        {
            // Redis's rejectCommand on EXEC: execCommandAbort (the transaction is discarded and the keys unwatched).
            reply.WriteError("EXECABORT Transaction discarded because of: " + monitor.BusyError);
            _transaction = null;
            Session.UnwatchAtNextRequest = true;
            return;
        }
        monitor.AnswerWhileBusy(command, reply);
        FlagTransaction();
    }

    /// <summary>Runs a command handled on the connection (its name, arity and authentication already checked).</summary>
    private KvDispatch ExecuteConnectionCommand(KvCommandInfo info, KvCommand command, RespWriter reply, long nowUnixMs)
    {
        switch (info.Id)
        {
            case KvCommandId.Ping:
                if (command.Count > 2) reply.WriteError(KvErrors.WrongArity("ping"));
                else if (reply.Protocol == 2 && IsSubscribed)
                {
                    // RESP2 subscribed mode: PING answers like a message, ["pong", argument or ""].
                    reply.WriteArrayHeader(2);
                    reply.WriteBulkString("pong"u8);
                    reply.WriteBulkString(command.Count == 2 ? command[1] : []);
                }
                else if (command.Count == 2) reply.WriteBulkString(command[1]);
                else reply.WriteSimpleString("PONG");
                break;
            case KvCommandId.Echo:
                reply.WriteBulkString(command[1]);
                break;
            case KvCommandId.Quit:
                reply.WriteOk();
                return KvDispatch.Close;
            case KvCommandId.Hello: Hello(command, reply); break;
            case KvCommandId.Auth: Auth(command, reply); break;
            case KvCommandId.Client: return Client(command, reply);
            case KvCommandId.Monitor or KvCommandId.Time or KvCommandId.LastSave or KvCommandId.Role or KvCommandId.Shutdown
                or KvCommandId.BgRewriteAof or KvCommandId.SlowLog or KvCommandId.Latency:
                return AdminCommand(info, command, reply);
            case KvCommandId.Command: CommandCommand(command, reply); break;
            case KvCommandId.Acl: return AclCommand(command, reply);
            case KvCommandId.Config: Config(command, reply); break;
            case KvCommandId.Info: Info(command, reply, nowUnixMs); break;
            case KvCommandId.Migrate when !_inExec: return KvDispatch.Server;
            default:
                if (!TryPubSubCommand(info, command, reply) && !TryReplicationCommand(info, command, reply)) reply.WriteError(KvErrors.UnknownCommand(command));
                break;
        }
        return KvDispatch.Replied;
    }

    private static bool Is(ReadOnlySpan<byte> arg, ReadOnlySpan<byte> name) => Ascii.EqualsIgnoreCase(arg, name);

    private void Hello(KvCommand command, RespWriter reply)
    {
        long version = 0;
        int next = 1;
        if (command.Count >= 2)
        {
            if (!RespNumbers.TryParseInt64(command[1], out version))
            {
                reply.WriteError("ERR Protocol version is not an integer or out of range");
                return;
            }
            next = 2;
            if (version is < 2 or > 3)
            {
                reply.WriteError("NOPROTO unsupported protocol version");
                return;
            }
        }
        int userIndex = -1, nameIndex = -1;
        for (int j = next; j < command.Count; j++)
        {
            int more = command.Count - 1 - j;
            if (Is(command[j], "AUTH"u8) && more >= 2)
            {
                userIndex = j + 1;
                j += 2;
            }
            else if (Is(command[j], "SETNAME"u8) && more >= 1)
            {
                nameIndex = j + 1;
                j++;
            }
            else
            {
                reply.WriteError($"ERR Syntax error in HELLO option '{command.GetString(j)}'");
                return;
            }
        }
        if (userIndex >= 0)
        {
            if (!TryAuthenticate(command.GetString(userIndex), command[userIndex + 1], command.GetString(0)))
            {
                reply.WriteError(KvErrors.WrongPass);
                return;
            }
        }
        if (!IsAuthenticated)
        {
            reply.WriteError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            return;
        }
        if (nameIndex >= 0 && !TrySetName(command[nameIndex], reply)) return;
        if (version != 0)
        {
            Protocol = (int)version;
            reply.Protocol = Protocol;
        }
        reply.WriteMapHeader(7);
        reply.WriteBulkString("server");
        reply.WriteBulkString(_config.ServerName);
        reply.WriteBulkString("version");
        reply.WriteBulkString(_config.Version);
        reply.WriteBulkString("proto");
        reply.WriteInteger(Protocol);
        reply.WriteBulkString("id");
        reply.WriteInteger(ClientId);
        reply.WriteBulkString("mode");
        reply.WriteBulkString("standalone");
        reply.WriteBulkString("role");
        reply.WriteBulkString("master");
        reply.WriteBulkString("modules");
        reply.WriteArrayHeader(0);
    }

    private bool TrySetName(ReadOnlySpan<byte> name, RespWriter reply)
    {
        foreach (byte b in name)
        {
            if (b < '!' || b > '~')
            {
                reply.WriteError("ERR Client names cannot contain spaces, newlines or special characters.");
                return false;
            }
        }
        if (name.Length > MaxClientNameLength)
        {
            reply.WriteError("ERR Client names cannot contain spaces, newlines or special characters.");
            return false;
        }
        Name = name.Length == 0 ? null : Encoding.ASCII.GetString(name);
        return true;
    }

    private static void WriteHelp(RespWriter reply, params string[] lines)
    {
        reply.WriteArrayHeader(lines.Length);
        foreach (string line in lines) reply.WriteSimpleString(line);
    }

    private void Config(KvCommand command, RespWriter reply)
    {
        ReadOnlySpan<byte> sub = command[1];
        if (Is(sub, "GET"u8))
        {
            if (command.Count < 3)
            {
                reply.WriteError(KvErrors.WrongArity("config|get"));
                return;
            }
            var patterns = new List<byte[]>();
            for (int i = 2; i < command.Count; i++) patterns.Add(command[i].ToArray());
            List<KeyValuePair<string, string>> matched = _live.Get(patterns);
            reply.WriteMapHeader(matched.Count);
            foreach (KeyValuePair<string, string> p in matched)
            {
                reply.WriteBulkString(p.Key);
                reply.WriteBulkString(p.Value);
            }
        }
        else if (Is(sub, "SET"u8))
        {
            ConfigSet(command, reply);
        }
        else if (Is(sub, "RESETSTAT"u8))
        {
            if (command.Count != 2)
            {
                reply.WriteError(KvErrors.WrongArity("config|resetstat"));
                return;
            }
            _stats.ResetStats();
            reply.WriteOk();
        }
        else if (Is(sub, "REWRITE"u8))
        {
            if (command.Count != 2)
            {
                reply.WriteError(KvErrors.WrongArity("config|rewrite"));
                return;
            }
            if (_live.Rewrite() is { } error) reply.WriteError(error);
            else reply.WriteOk();
        }
        else if (Is(sub, "HELP"u8))
        {
            WriteHelp(reply, "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
                "RESETSTAT", "    Reset statistics reported by the INFO command.",
                "REWRITE", "    Rewrite the configuration file.",
                "HELP", "    Print this help.");
        }
        else
        {
            reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "config"));
        }
    }

    // As redis-server 7.0.15 (INFO without arguments): modules is empty and cluster says cluster_enabled:0 here.
    private static readonly string[] s_defaultSections = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules", "errorstats", "cluster", "keyspace"];
    private static readonly string[] s_allSections = [.. s_defaultSections, "commandstats", "latencystats"];

    private void Info(KvCommand command, RespWriter reply, long nowUnixMs)
    {
        var wanted = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (command.Count == 1) wanted.UnionWith(s_defaultSections);
        for (int i = 1; i < command.Count; i++)
        {
            string s = command.GetString(i);
            if (s.Equals("all", StringComparison.OrdinalIgnoreCase) || s.Equals("everything", StringComparison.OrdinalIgnoreCase))
                wanted.UnionWith(s_allSections);
            else if (s.Equals("default", StringComparison.OrdinalIgnoreCase))
                wanted.UnionWith(s_defaultSections);
            else wanted.Add(s);
        }
        reply.WriteVerbatimString(BuildInfo(wanted, nowUnixMs));
    }

    /// <summary>Builds the INFO text for the given sections, in Redis's <c># Section</c> / <c>key:value\r\n</c> format.</summary>
    public string BuildInfo(IReadOnlySet<string> sections, long nowUnixMs)
    {
        ArgumentNullException.ThrowIfNull(sections);
        var sb = new StringBuilder();
        int count = 0;
        void Section(string name)
        {
            if (count++ > 0) sb.Append("\r\n");
            sb.Append("# ").Append(name).Append("\r\n");
        }
        void Line(string key, object value) => sb.Append(key).Append(':').Append(Convert.ToString(value, CultureInfo.InvariantCulture)).Append("\r\n");

        KvServerStats s = _stats;
        if (sections.Contains("server"))
        {
            long uptime = Math.Max(0, nowUnixMs - s.StartTimeUnixMs) / 1000;
            Section("Server");
            Line("redis_version", _config.Version);
            Line("redis_mode", "standalone");
            Line("os", RuntimeInformation.OSDescription);
            Line("arch_bits", IntPtr.Size * 8);
            Line("eio_backend", _config.Backend);
            Line("dotnet_version", Environment.Version.ToString());
            Line("process_id", s.ProcessId);
            Line("run_id", RunId);
            Line("tcp_port", _config.Port);
            Line("server_time_usec", nowUnixMs * 1000);
            Line("uptime_in_seconds", uptime);
            Line("uptime_in_days", uptime / 86400);
            Line("hz", _config.Hz);
            Line("configured_hz", _config.Hz);
            Line("executable", Environment.ProcessPath ?? "");
            Line("config_file", _live.ConfigFile ?? "");
        }
        if (sections.Contains("clients"))
        {
            Section("Clients");
            Line("connected_clients", s.ConnectedClients);
            Line("maxclients", _config.MaxClients);
            Line("blocked_clients", s.BlockedClients);
            Line("tracking_clients", Tracking.ClientCount);
            Line("pubsub_clients", Clients?.Snapshot().Count(c => c.State.IsSubscribed) ?? 0);
        }
        if (sections.Contains("memory"))
        {
            // used_memory is our own accounting (KvStore.UsedBytes: keys, values and per-key overhead, plus the clients'
            // buffers, KvServerStats.ClientMemoryBytes), not the .NET heap; the heap and the process RSS are reported apart.
            long overhead = s.ClientMemoryBytes;
            long used = s.UsedMemory;
            long peak = s.ObserveMemoryPeak(used);
            long rss = Environment.WorkingSet;
            Section("Memory");
            Line("used_memory", used);
            Line("used_memory_human", HumanBytes(used));
            Line("used_memory_rss", rss);
            Line("used_memory_rss_human", HumanBytes(rss));
            Line("used_memory_peak", peak);
            Line("used_memory_peak_human", HumanBytes(peak));
            Line("used_memory_overhead", overhead);
            Line("used_memory_dataset", s.DatasetBytes);
            Line("used_memory_gc_heap", GC.GetTotalMemory(false));
            Line("maxmemory", _config.MaxMemory);
            Line("maxmemory_human", HumanBytes(_config.MaxMemory));
            Line("maxmemory_policy", _config.MaxMemoryPolicy);
            Line("mem_fragmentation_ratio", (used == 0 ? 0 : (double)rss / used).ToString("0.00", CultureInfo.InvariantCulture));
            Line("mem_clients_normal", overhead);
            Line("mem_allocator", "dotnet-gc");
        }
        if (sections.Contains("persistence"))
        {
            Section("Persistence");
            Line("loading", s.Loading ? 1 : 0);
            Line("rdb_changes_since_last_save", s.ChangesSinceLastSave);
            Line("rdb_bgsave_in_progress", s.RdbBgSaveInProgress ? 1 : 0);
            Line("rdb_last_save_time", s.LastSaveUnixSeconds);
            Line("rdb_last_bgsave_status", s.RdbLastBgSaveOk ? "ok" : "err");
            Line("rdb_last_bgsave_time_sec", s.RdbLastBgSaveSeconds);
            Line("rdb_current_bgsave_time_sec", s.RdbCurrentBgSaveSeconds);
            Line("rdb_saves", s.RdbSaves);
            Line("rdb_last_cow_size", 0);
            Line("rdb_last_load_keys_expired", s.RdbLastLoadKeysExpired);
            Line("rdb_last_load_keys_loaded", s.RdbLastLoadKeysLoaded);
            Line("aof_enabled", _config.AppendOnly ? 1 : 0);
            Line("aof_rewrite_in_progress", s.AofRewriteInProgress ? 1 : 0);
            Line("aof_rewrite_scheduled", s.AofRewriteScheduled ? 1 : 0);
            Line("aof_last_bgrewrite_status", s.AofLastBgRewriteOk ? "ok" : "err");
            Line("aof_rewrites", s.AofRewrites);
            Line("aof_last_write_status", s.AofLastWriteOk ? "ok" : "err");
            Line("aof_current_size", s.AofCurrentSize);
            Line("aof_base_size", s.AofBaseSize);
            Line("aof_fsync_policy", _config.AppendFsync);
            Line("aof_fsyncs", s.AofFsyncs);
            if (s.AofAlwaysHintedRounds > 0)
            {
                Line("aof_always_hinted_rounds", s.AofAlwaysHintedRounds);
                Line("aof_always_hint_misses", s.AofAlwaysHintMisses);
                Line("aof_always_overlap_rounds", s.AofAlwaysOverlapRounds);
                Line("aof_always_guard_probes", s.AofAlwaysGuardProbes);
                Line("aof_always_guard_switches", s.AofAlwaysGuardSwitches);
                Line("aof_always_timed_rounds", s.AofAlwaysTimedRounds);
                Line("aof_always_round_us", s.AofAlwaysRoundMicros);
                Line("aof_always_fsync_us", s.AofAlwaysFsyncMicros);
                Line("aof_always_timed_waits", s.AofAlwaysTimedWaits);
                Line("aof_always_wait_us", s.AofAlwaysWaitMicros);
            }
        }
        if (sections.Contains("stats"))
        {
            Section("Stats");
            Line("total_connections_received", s.TotalConnectionsReceived);
            Line("total_commands_processed", s.TotalCommandsProcessed);
            Line("total_net_input_bytes", s.TotalNetInputBytes);
            Line("total_net_output_bytes", s.TotalNetOutputBytes);
            Line("rejected_connections", s.RejectedConnections);
            Line("pubsub_channels", PubSub.ActiveChannels(default, matchAll: true, shard: false).Length);
            Line("pubsub_patterns", PubSub.PatternCount);
            Line("client_output_buffer_limit_disconnections", s.ClientOutputBufferLimitDisconnections);
            Line("expired_keys", s.ExpiredKeys);
            Line("keyspace_hits", s.KeyspaceHits);
            Line("keyspace_misses", s.KeyspaceMisses);
            Line("evicted_keys", s.EvictedKeys);
            Line("evicted_clients", s.EvictedClients);
            Line("tracking_total_keys", Tracking.KeyCount);
            Line("tracking_total_items", Tracking.ItemCount);
            Line("tracking_total_prefixes", Tracking.PrefixCount);
            Line("total_error_replies", CommandStats?.TotalErrorReplies ?? 0);
        }
        if (sections.Contains("replication"))
        {
            Section("Replication");
            Line("role", "master");
            Line("connected_slaves", 0);
            Line("master_failover_state", "no-failover");
            Line("master_replid", RunId);
            Line("master_replid2", "0000000000000000000000000000000000000000");
            Line("master_repl_offset", 0);
            Line("second_repl_offset", -1);
            Line("repl_backlog_active", 0);
            Line("repl_backlog_size", 1048576);
            Line("repl_backlog_first_byte_offset", 0);
            Line("repl_backlog_histlen", 0);
        }
        if (sections.Contains("cpu"))
        {
            using var self = System.Diagnostics.Process.GetCurrentProcess();
            Section("CPU");
            Line("used_cpu_sys", self.PrivilegedProcessorTime.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture));
            Line("used_cpu_user", self.UserProcessorTime.TotalSeconds.ToString("0.000000", CultureInfo.InvariantCulture));
        }
        if (sections.Contains("modules"))
        {
            Section("Modules"); // no modules: the header only, as Redis without any loaded
        }
        if (sections.Contains("commandstats"))
        {
            Section("Commandstats");
            sb.Append(CommandStats?.CommandStatsText());
        }
        if (sections.Contains("errorstats"))
        {
            Section("Errorstats");
            sb.Append(CommandStats?.ErrorStatsText());
        }
        if (sections.Contains("latencystats"))
        {
            Section("Latencystats");
            sb.Append(CommandStats?.LatencyStatsText(_config));
        }
        if (sections.Contains("cluster"))
        {
            Section("Cluster");
            Line("cluster_enabled", 0);
        }
        if (sections.Contains("keyspace"))
        {
            Section("Keyspace");
            var perDb = s.KeysPerDatabase;
            for (int db = 0; db < perDb.Length; db++)
            {
                (long keys, long expires) = perDb[db];
                if (keys > 0) sb.Append(CultureInfo.InvariantCulture, $"db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>This process's run id (INFO run_id, master_replid): 40 hex characters, new at each start.</summary>
    /// <remarks>From <see cref="Random.Shared"/> (seeded by the OS), not the cryptographic generator: an identifier, not
    /// a secret, and the cryptographic generator loads OpenSSL's libcrypto, ~3.4 MB of RSS for the first client of
    /// every server (docs/kv.md, "Memory").</remarks>
    private static readonly string RunId = NewRunId();

    private static string NewRunId()
    {
        Span<byte> bytes = stackalloc byte[20];
        Random.Shared.NextBytes(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    private static string HumanBytes(long bytes)
    {
        string[] units = ["B", "K", "M", "G", "T"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes.ToString(CultureInfo.InvariantCulture) + "B" : v.ToString("0.00", CultureInfo.InvariantCulture) + units[u];
    }
}
