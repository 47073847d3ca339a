using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>What only the server process can do for an operator command (SHUTDOWN, BGREWRITEAOF, LASTSAVE).</summary>
public interface IKvServerAdmin
{
    /// <summary>Starts a graceful shutdown (in-flight commands finish, the AOF is fsynced, the process exits 0).</summary>
    /// <returns>Null when the shutdown started; otherwise the error reply.</returns>
    string? Shutdown(bool noSave, bool save, bool now, bool force);

    /// <summary>Asks for an AOF rewrite; null when it was started or scheduled, otherwise the error reply.</summary>
    string? RewriteAppendOnlyFile();

    /// <summary>LASTSAVE: when the data set was last made durable as a whole (start, or the last AOF rewrite), Unix seconds.</summary>
    long LastSaveUnixSeconds { get; }
}

/// <summary>The connection a session belongs to (for SLOWLOG entries made on the store owner).</summary>
public sealed partial class KvSession
{
    /// <summary>The connection's state, or null for sessions without one (AOF loading, tests).</summary>
    public KvConnectionState? Connection { get; internal set; }
}

/// <summary>The connection's operator commands: CLIENT, MONITOR, TIME, LASTSAVE, ROLE, SHUTDOWN, BGREWRITEAOF, SLOWLOG, LATENCY.</summary>
public sealed partial class KvConnectionState
{
    private bool _replyOff;
    private bool _skipNext;
    private bool _discardCurrent;

    /// <summary>The server's client registry (CLIENT LIST/KILL/PAUSE, MONITOR); null in tests without one.</summary>
    public KvClientRegistry? Clients
    {
        get => _clients;
        internal set
        {
            _clients = value;
            // CLIENT TRACKING REDIRECT finds its target through the registry.
            if (value is { } registry) PubSub.Tracking.ResolveClient ??= id => registry.Find(id)?.State;
        }
    }

    private KvClientRegistry? _clients;

    /// <summary>This connection's entry in <see cref="Clients"/>.</summary>
    public KvClientEntry? Entry { get; internal set; }

    /// <summary>The server's operator hooks; null: SHUTDOWN and BGREWRITEAOF answer that they are not available.</summary>
    public IKvServerAdmin? Admin { get; set; }

    /// <summary>Command, error and latency statistics and the slow log, shared by the server; null: not kept.</summary>
    public KvCommandStats? CommandStats { get; set; }

    /// <summary>Whether this connection ran MONITOR.</summary>
    public bool IsMonitor { get; private set; }

    /// <summary>CLIENT NO-EVICT.</summary>
    public bool NoEvict { get; private set; }

    /// <summary>The full name of the last command run (<c>cmd=</c> of CLIENT LIST).</summary>
    public string LastCommandName { get; private set; } = "NULL";

    /// <summary>CLIENT REPLY OFF or SKIP is in force: the server must process commands one at a time and drop the replies
    /// for which <see cref="DiscardReply"/> is true.</summary>
    public bool ReplyControlActive => _replyOff || _skipNext || _discardCurrent;

    /// <summary>The reply of the command just processed must not be sent (CLIENT REPLY OFF, or the command after SKIP).</summary>
    public bool DiscardReply => _discardCurrent;

    private void BeginCommandForReplyControl()
    {
        _discardCurrent = _replyOff || _skipNext;
        _skipNext = false;
    }

    /// <summary>RESET: the operator state of the connection (monitor, reply mode, no-evict).</summary>
    private void ResetAdminState()
    {
        if (IsMonitor) Clients?.RemoveMonitor(this);
        IsMonitor = false;
        _replyOff = _skipNext = _discardCurrent = false;
        NoEvict = false;
    }

    /// <summary>COMMAND GETKEYS: the positions of the key arguments of a command line (name first), from the table's
    /// first/last/step, and for the commands whose keys move (numkeys, STREAMS) as Redis's getkeys procedures.</summary>
    /// <returns>Null with the positions, or Redis's error text.</returns>
    public static string? GetKeys(IReadOnlyList<byte[]> args, out List<int>? positions)
    {
        ArgumentNullException.ThrowIfNull(args);
        positions = null;
        KvCommandInfo? info = KvCommandTable.Find(args[0]);
        if (info is null) return "ERR Invalid command specified";
        if (!info.AcceptsArgumentCount(args.Count)) return "ERR Invalid number of arguments specified for command";
        var keys = new List<int>();
        int NumKeys(int at, int first)
        {
            if (at >= args.Count || !RespNumbers.TryParseInt64(args[at], out long n) || n < 0 || first + n > args.Count) return -1;
            for (int i = 0; i < n; i++) keys.Add(first + i);
            return (int)n;
        }
        switch (info.Name)
        {
            case "eval" or "evalsha" or "eval_ro" or "evalsha_ro" or "fcall" or "fcall_ro":
                NumKeys(2, 3);
                break;
            case "zunion" or "zinter" or "zdiff" or "sintercard" or "zintercard" or "lmpop" or "zmpop":
                NumKeys(1, 2);
                break;
            case "zunionstore" or "zinterstore" or "zdiffstore":
                keys.Add(1);
                NumKeys(2, 3);
                break;
            case "blmpop" or "bzmpop":
                NumKeys(2, 3);
                break;
            case "xread" or "xreadgroup":
                for (int i = 1; i < args.Count; i++)
                {
                    if (!Ascii.EqualsIgnoreCase(args[i], "STREAMS"u8)) continue;
                    int rest = args.Count - i - 1;
                    if (rest % 2 == 0)
                    {
                        for (int k = 0; k < rest / 2; k++) keys.Add(i + 1 + k);
                    }
                    break;
                }
                break;
            default:
                if (info.FirstKey > 0)
                {
                    int last = info.LastKey < 0 ? args.Count + info.LastKey : Math.Min(info.LastKey, args.Count - 1);
                    for (int i = info.FirstKey; i <= last; i += Math.Max(1, info.KeyStep)) keys.Add(i);
                }
                break;
        }
        if (keys.Count == 0) return "ERR The command has no key arguments";
        positions = keys;
        return null;
    }

    /// <summary>Commands Redis flags <c>loading</c>: allowed while the AOF is replayed (the others get -LOADING).</summary>
    private static bool AllowedWhileLoading(KvCommandInfo info, KvCommand command) => info.Id switch
    {
        KvCommandId.Info or KvCommandId.Config or KvCommandId.Hello or KvCommandId.Auth or KvCommandId.Shutdown or KvCommandId.Command
            or KvCommandId.Time or KvCommandId.Role or KvCommandId.Monitor or KvCommandId.SlowLog or KvCommandId.Latency
            or KvCommandId.LastSave or KvCommandId.Quit => true,
        KvCommandId.Client => !(command.Count >= 2 && Is(command[1], "UNBLOCK"u8)),
        _ => false,
    };

    /// <summary>Commands an operator uses that never reach MONITOR (Redis: admin commands and AUTH/HELLO).</summary>
    private static bool SkipsMonitor(KvCommandInfo info) => info.Id is KvCommandId.Config or KvCommandId.Monitor or KvCommandId.Shutdown
        or KvCommandId.SlowLog or KvCommandId.Latency or KvCommandId.BgRewriteAof or KvCommandId.Auth or KvCommandId.Hello;

    /// <summary>Before a valid command runs: feeds monitors and remembers its name.</summary>
    private void OnCommandAccepted(KvCommandInfo info, KvCommand command, long nowUnixMs)
    {
        LastCommandName = info.Id == KvCommandId.Data ? info.Name : (command.Count >= 2 && info.Id is KvCommandId.Client or KvCommandId.Config
            or KvCommandId.SlowLog or KvCommandId.Latency ? info.Name + "|" + command.GetString(1).ToLowerInvariant() : info.Name);
        if (Entry is { } e) e.LastInteractionUnixMs = nowUnixMs;
        if (Clients is { HasMonitors: true } registry && !SkipsMonitor(info)) registry.Feed(this, command, Session.Db, nowUnixMs * 1000);
    }

    private KvDispatch AdminCommand(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        switch (info.Id)
        {
            case KvCommandId.Monitor:
                if (Clients is null || EnsureSubscriber() is null)
                {
                    reply.WriteError("ERR MONITOR is not available on this connection");
                    break;
                }
                IsMonitor = true;
                Clients.AddMonitor(this);
                reply.WriteOk();
                break;
            case KvCommandId.Time:
                // Microseconds: the one clock read of this layer (the caller's time has millisecond precision).
                long micros = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;
                reply.WriteArrayHeader(2);
                reply.WriteBulkString((micros / 1_000_000).ToString(CultureInfo.InvariantCulture));
                reply.WriteBulkString((micros % 1_000_000).ToString(CultureInfo.InvariantCulture));
                break;
            case KvCommandId.LastSave:
                reply.WriteInteger(Admin?.LastSaveUnixSeconds ?? _stats.StartTimeUnixMs / 1000);
                break;
            case KvCommandId.Role:
                reply.WriteArrayHeader(3);
                reply.WriteBulkString("master");
                reply.WriteInteger(0);
                reply.WriteArrayHeader(0);
                break;
            case KvCommandId.Shutdown:
                return Shutdown(command, reply);
            case KvCommandId.BgRewriteAof:
                if (Admin?.RewriteAppendOnlyFile() is { } error) reply.WriteError(error);
                else if (Admin is null) reply.WriteError("ERR BGREWRITEAOF is not available");
                else reply.WriteSimpleString(_inExec
                    ? "Background append only file rewriting scheduled" // as Redis under server.in_exec: the cron starts it
                    : "Background append only file rewriting started");
                break;
            case KvCommandId.SlowLog:
                SlowLogCommand(command, reply);
                break;
            case KvCommandId.Latency:
                LatencyCommand(command, reply);
                break;
            default:
                reply.WriteError(KvErrors.UnknownCommand(command));
                break;
        }
        return KvDispatch.Replied;
    }

    private KvDispatch Shutdown(KvCommand command, RespWriter reply)
    {
        bool noSave = false, save = false, now = false, force = false, abort = false;
        for (int i = 1; i < command.Count; i++)
        {
            ReadOnlySpan<byte> a = command[i];
            if (Is(a, "NOSAVE"u8)) noSave = true;
            else if (Is(a, "SAVE"u8)) save = true;
            else if (Is(a, "NOW"u8)) now = true;
            else if (Is(a, "FORCE"u8)) force = true;
            else if (Is(a, "ABORT"u8)) abort = true;
            else
            {
                reply.WriteError(KvErrors.Syntax);
                return KvDispatch.Replied;
            }
        }
        if ((abort && command.Count != 2) || (noSave && save))
        {
            reply.WriteError(KvErrors.Syntax);
            return KvDispatch.Replied;
        }
        if (abort)
        {
            reply.WriteError("ERR No shutdown in progress.");
            return KvDispatch.Replied;
        }
        if (Admin is null)
        {
            reply.WriteError("ERR SHUTDOWN is not available");
            return KvDispatch.Replied;
        }
        if (Admin.Shutdown(noSave, save, now, force) is { } error)
        {
            reply.WriteError(error);
            return KvDispatch.Replied;
        }
        return KvDispatch.Close; // as Redis: no reply, the connection closes with the server
    }

    private void SlowLogCommand(KvCommand command, RespWriter reply)
    {
        ReadOnlySpan<byte> sub = command[1];
        KvCommandStats stats = CommandStats ??= new KvCommandStats();
        if (Is(sub, "GET"u8) && command.Count <= 3)
        {
            long count = 10;
            if (command.Count == 3 && (!RespNumbers.TryParseInt64(command[2], out count) || count < -1))
            {
                reply.WriteError("ERR count should be greater than or equal to -1");
                return;
            }
            List<KvSlowLogEntry> entries = stats.SlowLog(count);
            reply.WriteArrayHeader(entries.Count);
            foreach (KvSlowLogEntry e in entries)
            {
                reply.WriteArrayHeader(6);
                reply.WriteInteger(e.Id);
                reply.WriteInteger(e.UnixSeconds);
                reply.WriteInteger(e.Micros);
                reply.WriteArrayHeader(e.Args.Count);
                foreach (byte[] a in e.Args) reply.WriteBulkString(a);
                reply.WriteBulkString(e.ClientAddress);
                reply.WriteBulkString(e.ClientName);
            }
        }
        else if (Is(sub, "LEN"u8) && command.Count == 2) reply.WriteInteger(stats.SlowLogLength);
        else if (Is(sub, "RESET"u8) && command.Count == 2)
        {
            stats.ResetSlowLog();
            reply.WriteOk();
        }
        else if (Is(sub, "HELP"u8) && command.Count == 2)
        {
            WriteHelp(reply, "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:", "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name", "LEN", "    Return the length of the slowlog.", "RESET", "    Reset the slowlog.", "HELP", "    Print this help.");
        }
        else reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "slowlog"));
    }

    private void LatencyCommand(KvCommand command, RespWriter reply)
    {
        ReadOnlySpan<byte> sub = command[1];
        KvCommandStats stats = CommandStats ??= new KvCommandStats();
        if (Is(sub, "LATEST"u8) && command.Count == 2)
        {
            var latest = stats.LatencyLatest();
            reply.WriteArrayHeader(latest.Count);
            foreach (var (name, at, last, max) in latest)
            {
                reply.WriteArrayHeader(4);
                reply.WriteBulkString(name);
                reply.WriteInteger(at);
                reply.WriteInteger(last);
                reply.WriteInteger(max);
            }
        }
        else if (Is(sub, "HISTORY"u8) && command.Count == 3)
        {
            var history = stats.LatencyHistory(command.GetString(2));
            reply.WriteArrayHeader(history.Count);
            foreach (var (at, ms) in history)
            {
                reply.WriteArrayHeader(2);
                reply.WriteInteger(at);
                reply.WriteInteger(ms);
            }
        }
        else if (Is(sub, "RESET"u8))
        {
            var events = new List<string>();
            for (int i = 2; i < command.Count; i++) events.Add(command.GetString(i));
            reply.WriteInteger(stats.ResetLatency(events));
        }
        else if (Is(sub, "HELP"u8) && command.Count == 2)
        {
            WriteHelp(reply, "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "HISTORY <event>", "    Return time-latency samples for the <event> class.",
                "LATEST", "    Return the latest latency samples for all events.",
                "RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)", "HELP", "    Print this help.");
        }
        else reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "latency"));
    }

    private KvDispatch Client(KvCommand command, RespWriter reply)
    {
        if (TryTrackingSubcommand(command, reply)) return KvDispatch.Replied; // KvConnectionState.Tracking.cs
        ReadOnlySpan<byte> sub = command[1];
        int n = command.Count;
        string? arityName = null;
        if (Is(sub, "ID"u8))
        {
            if (n != 2) arityName = "client|id";
            else reply.WriteInteger(ClientId);
        }
        else if (Is(sub, "SETNAME"u8))
        {
            if (n != 3) arityName = "client|setname";
            else if (TrySetName(command[2], reply)) reply.WriteOk();
        }
        else if (Is(sub, "GETNAME"u8))
        {
            if (n != 2) arityName = "client|getname";
            else if (Name is null) reply.WriteNullBulkString();
            else reply.WriteBulkString(Name);
        }
        else if (Is(sub, "SETINFO"u8))
        {
            if (n != 4) arityName = "client|setinfo";
            else if (Is(command[2], "LIB-NAME"u8) || Is(command[2], "LIB-VER"u8))
            {
                foreach (byte b in command[3])
                {
                    if (b < '!' || b > '~')
                    {
                        // Redis 7.2's clientSetinfoCommand names the attribute as the client spelled it.
                        reply.WriteError($"ERR {command.GetString(2)} cannot contain spaces, newlines or special characters.");
                        return KvDispatch.Replied;
                    }
                }
                string? value = command[3].Length == 0 ? null : command.GetString(3); // an empty value clears it
                if (Is(command[2], "LIB-NAME"u8)) LibraryName = value;
                else LibraryVersion = value;
                reply.WriteOk();
            }
            else reply.WriteError($"ERR Unrecognized option '{command.GetString(2)}'");
        }
        else if (Is(sub, "INFO"u8))
        {
            if (n != 2) arityName = "client|info";
            else
            {
                _listingCommand = command;
                try { reply.WriteVerbatimString(ClientInfoLine(Entry) + "\n"); }
                finally { _listingCommand = null; }
            }
        }
        else if (Is(sub, "LIST"u8))
        {
            ClientList(command, reply);
        }
        else if (Is(sub, "KILL"u8))
        {
            if (n < 3) arityName = "client|kill";
            else return ClientKill(command, reply);
        }
        else if (Is(sub, "PAUSE"u8))
        {
            if (n is not (3 or 4)) arityName = "client|pause";
            else ClientPause(command, reply);
        }
        else if (Is(sub, "UNPAUSE"u8))
        {
            if (n != 2) arityName = "client|unpause";
            else
            {
                Clients?.Unpause();
                reply.WriteOk();
            }
        }
        else if (Is(sub, "NO-EVICT"u8) || Is(sub, "NO-TOUCH"u8))
        {
            if (n != 3) arityName = "client|" + command.GetString(1).ToLowerInvariant();
            else if (Is(command[2], "ON"u8) || Is(command[2], "OFF"u8))
            {
                if (Is(sub, "NO-EVICT"u8)) NoEvict = Is(command[2], "ON"u8);
                reply.WriteOk();
            }
            else reply.WriteError(KvErrors.Syntax);
        }
        else if (Is(sub, "REPLY"u8))
        {
            if (n != 3) arityName = "client|reply";
            else if (Is(command[2], "ON"u8))
            {
                _replyOff = false;
                _discardCurrent = false;
                reply.WriteOk();
            }
            else if (Is(command[2], "OFF"u8)) _replyOff = _discardCurrent = true; // no reply, nor any after it
            else if (Is(command[2], "SKIP"u8)) _skipNext = _discardCurrent = true; // no reply, nor for the next command
            else reply.WriteError(KvErrors.Syntax);
        }
        else if (Is(sub, "HELP"u8))
        {
            WriteHelp(reply, "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME", "ID", "INFO", "KILL <ip:port>", "KILL <option> <value> [<option> <value> [...]]",
                "    ID <client-id>, TYPE (NORMAL|MASTER|REPLICA|PUBSUB), USER <username>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO), MAXAGE <seconds>",
                "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <client-id> ...]", "NO-EVICT (ON|OFF)", "NO-TOUCH (ON|OFF)",
                "PAUSE <timeout> [WRITE|ALL]", "REPLY (ON|OFF|SKIP)", "SETINFO <LIB-NAME|LIB-VER> <value>", "SETNAME <name>",
                "UNBLOCK <client-id> [TIMEOUT|ERROR]", "UNPAUSE", "HELP");
        }
        else
        {
            reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "client"));
        }
        if (arityName is not null) reply.WriteError(KvErrors.WrongArity(arityName));
        return KvDispatch.Replied;
    }

    private IEnumerable<KvClientEntry> AllClients() =>
        Clients?.Snapshot() ?? (IEnumerable<KvClientEntry>)[Entry ?? new KvClientEntry(this, _stats.StartTimeUnixMs, static () => { })];

    private void ClientList(KvCommand command, RespWriter reply)
    {
        IEnumerable<KvClientEntry> clients = AllClients();
        if (command.Count > 2)
        {
            if (Is(command[2], "TYPE"u8) && command.Count == 4)
            {
                string? type = TypeFilter(command[3]);
                if (type is null)
                {
                    reply.WriteError($"ERR Unknown client type '{command.GetString(3)}'");
                    return;
                }
                clients = clients.Where(c => ClientType(c.State) == type);
            }
            else if (Is(command[2], "ID"u8) && command.Count >= 4)
            {
                var ids = new HashSet<long>();
                for (int i = 3; i < command.Count; i++)
                {
                    if (!RespNumbers.TryParseInt64(command[i], out long id) || id <= 0)
                    {
                        reply.WriteError("ERR Invalid client ID");
                        return;
                    }
                    ids.Add(id);
                }
                clients = clients.Where(c => ids.Contains(c.State.ClientId));
            }
            else
            {
                reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        var sb = new StringBuilder();
        _listingCommand = command;
        try
        {
            foreach (KvClientEntry c in clients) sb.Append(c.State.ClientInfoLine(c)).Append('\n');
        }
        finally
        {
            _listingCommand = null;
        }
        reply.WriteVerbatimString(sb.ToString());
    }

    private static string? TypeFilter(ReadOnlySpan<byte> type) =>
        Is(type, "NORMAL"u8) ? "normal" : Is(type, "PUBSUB"u8) ? "pubsub" : Is(type, "MASTER"u8) ? "master"
        : Is(type, "REPLICA"u8) || Is(type, "SLAVE"u8) ? "replica" : null;

    private static string ClientType(KvConnectionState s) => s.IsSubscribed ? "pubsub" : "normal";

    private KvDispatch ClientKill(KvCommand command, RespWriter reply)
    {
        IEnumerable<KvClientEntry> all = AllClients();
        if (command.Count == 3)
        {
            // Old form: CLIENT KILL addr:port.
            string addr = command.GetString(2);
            KvClientEntry? target = all.FirstOrDefault(c => c.State.RemoteAddress == addr);
            if (target is null)
            {
                reply.WriteError("ERR No such client");
                return KvDispatch.Replied;
            }
            reply.WriteOk();
            if (target.State == this) return KvDispatch.Close;
            target.Kill();
            return KvDispatch.Replied;
        }
        if ((command.Count - 2) % 2 != 0)
        {
            reply.WriteError(KvErrors.Syntax);
            return KvDispatch.Replied;
        }
        bool skipMe = true;
        var filters = new List<Func<KvClientEntry, bool>>();
        for (int i = 2; i < command.Count; i += 2)
        {
            ReadOnlySpan<byte> option = command[i];
            string value = command.GetString(i + 1);
            if (Is(option, "ID"u8))
            {
                if (!RespNumbers.TryParseInt64(command[i + 1], out long id) || id <= 0)
                {
                    reply.WriteError("ERR client-id should be greater than 0");
                    return KvDispatch.Replied;
                }
                filters.Add(c => c.State.ClientId == id);
            }
            else if (Is(option, "TYPE"u8))
            {
                string? type = TypeFilter(command[i + 1]);
                if (type is null)
                {
                    reply.WriteError($"ERR Unknown client type '{value}'");
                    return KvDispatch.Replied;
                }
                filters.Add(c => ClientType(c.State) == type);
            }
            else if (Is(option, "ADDR"u8)) filters.Add(c => c.State.RemoteAddress == value);
            else if (Is(option, "LADDR"u8)) filters.Add(c => c.LocalAddress == value);
            else if (Is(option, "USER"u8))
            {
                if (Acl.Find(value) is null)
                {
                    reply.WriteError($"ERR No such user '{value}'");
                    return KvDispatch.Replied;
                }
                filters.Add(c => c.State.User.Name == value);
            }
            else if (Is(option, "SKIPME"u8))
            {
                if (Is(command[i + 1], "YES"u8)) skipMe = true;
                else if (Is(command[i + 1], "NO"u8)) skipMe = false;
                else
                {
                    reply.WriteError(KvErrors.Syntax);
                    return KvDispatch.Replied;
                }
            }
            else if (Is(option, "MAXAGE"u8))
            {
                if (!RespNumbers.TryParseInt64(command[i + 1], out long maxAge))
                {
                    reply.WriteError(KvErrors.Syntax);
                    return KvDispatch.Replied;
                }
                filters.Add(c => (_now - c.CreatedUnixMs) / 1000 >= maxAge);
            }
            else
            {
                reply.WriteError(KvErrors.Syntax);
                return KvDispatch.Replied;
            }
        }
        long killed = 0;
        bool self = false;
        foreach (KvClientEntry c in all)
        {
            if (!filters.All(f => f(c))) continue;
            if (c.State == this)
            {
                if (skipMe) continue;
                self = true;
                killed++;
                continue;
            }
            if (c.Kill()) killed++;
        }
        reply.WriteInteger(killed);
        return self ? KvDispatch.Close : KvDispatch.Replied;
    }

    private void ClientPause(KvCommand command, RespWriter reply)
    {
        if (!RespNumbers.TryParseInt64(command[2], out long ms))
        {
            reply.WriteError("ERR timeout is not an integer or out of range");
            return;
        }
        if (ms < 0)
        {
            reply.WriteError("ERR timeout is negative");
            return;
        }
        bool all = true;
        if (command.Count == 4)
        {
            if (Is(command[3], "WRITE"u8)) all = false;
            else if (!Is(command[3], "ALL"u8))
            {
                reply.WriteError("ERR CLIENT PAUSE mode must be WRITE or ALL");
                return;
            }
        }
        Clients?.Pause(_now + ms, all);
        reply.WriteOk();
    }

    /// <summary>This client's CLIENT LIST / CLIENT INFO line (Redis 7.2's fields; buffers as <see cref="BufferFields"/>).</summary>
    internal string ClientInfoLine(KvClientEntry? entry)
    {
        long age = entry is null ? 0 : Math.Max(0, _now - entry.CreatedUnixMs) / 1000;
        long idle = entry is null ? 0 : Math.Max(0, _now - entry.LastInteractionUnixMs) / 1000;
        var flags = new StringBuilder();
        if (IsMonitor) flags.Append('O');
        if (IsSubscribed) flags.Append('P');
        if (InTransaction) flags.Append('x');
        if (entry is { Blocked: true }) flags.Append('b');
        if (IsUnixSocket) flags.Append('U');
        if (NoEvict) flags.Append('e');
        if (flags.Length == 0) flags.Append('N');
        int subs = Subscriber is { } s ? PubSub.CountOf(s) : 0;
        int shardSubs = Subscriber is { } s2 ? PubSub.ShardCountOf(s2) : 0;
        (string buffers, bool writing) = BufferFields();
        return string.Create(CultureInfo.InvariantCulture,
            $"id={ClientId} addr={RemoteAddress} laddr={entry?.LocalAddress ?? "?"} fd=-1 name={Name ?? ""} age={age} idle={idle} flags={flags} " +
            $"db={Session.Db} sub={subs} psub=0 ssub={shardSubs} multi={(_transaction is { } tx ? tx.Commands.Count : -1)} {buffers} " +
            $"events={(writing ? "rw" : "r")} cmd={LastCommandName} user={User.Name} redir=-1 resp={Protocol} " +
            $"lib-name={LibraryName ?? ""} lib-ver={LibraryVersion ?? ""}");
    }
}
