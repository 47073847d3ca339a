using System.Security.Cryptography;

namespace EioSharp.Kv;

/// <summary>ACL on the connection: the user, AUTH / HELLO AUTH, the per-command check and the ACL command (Redis 7.0's
/// acl.c; see <see cref="KvAcl"/>).</summary>
public sealed partial class KvConnectionState
{
    private KvAclUser? _user;

    /// <summary>The server's ACL (held by the live configuration, which keeps the default user's password in step with
    /// requirepass).</summary>
    public KvAcl Acl => _live.Acl;

    /// <summary>The user this connection runs as (the default user until AUTH / HELLO AUTH).</summary>
    public KvAclUser User => _user ??= Acl.Default;

    private bool AuthRequired => !IsAuthenticated && Acl.AuthRequired;

    /// <summary>RESET / start: back to the default user, authenticated when it needs no password (Redis's
    /// clearClientConnectionState).</summary>
    private void ResetUser()
    {
        _user = Acl.Default;
        IsAuthenticated = Acl.Default.NoPassEnabled;
    }

    /// <summary>Checks the ACL for a command that passed the name, arity and authentication checks; writes -NOPERM and
    /// returns false when denied (Redis's processCommand).</summary>
    private bool AclAllows(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        KvAclUser user = User;
        AclSelector root = user.State.Root;
        if (root is { AllCommands: true, AllKeys: true, AllChannels: true }) return true;
        RedisCommandSpec? cmd = KvRedisCommands.Lookup(command, info) ?? KvRedisCommands.Lookup(info.Name);
        if (cmd is null) return true; // not a Redis command: no ACL rule can name it
        (KvAclDenial denial, int pos) = user.State.Check(cmd, command, AclKeyFinder);
        if (denial == KvAclDenial.None) return true;
        Acl.AddLog(denial, _transaction is not null ? "multi" : "toplevel",
            denial == KvAclDenial.Command ? cmd.FullName : command.GetString(pos), user.Name, ClientInfoLine(Entry), _now);
        string error = denial switch
        {
            KvAclDenial.Command => $"NOPERM this user has no permissions to run the '{cmd.FullName}' command",
            KvAclDenial.Key => "NOPERM this user has no permissions to access one of the keys used as arguments",
            _ => "NOPERM this user has no permissions to access one of the channels used as arguments",
        };
        if (info.Name == "exec")
        {
            // Redis's rejectCommand on EXEC: execCommandAbort (with or without MULTI), the transaction discarded.
            reply.WriteError("EXECABORT Transaction discarded because of: " + error);
            _transaction = null;
            Session.UnwatchAtNextRequest = true;
        }
        else reply.WriteError(error);
        return false;
    }

    /// <summary>The key positions of a command whose key specs are incomplete (SORT, MIGRATE...): COMMAND GETKEYS's finder.</summary>
    internal static List<int>? AclKeyFinder(KvCommand command)
    {
        var args = new List<byte[]>(command.Count);
        for (int i = 0; i < command.Count; i++) args.Add(command.ToArray(i));
        return GetKeys(args, out List<int>? positions) is null ? positions : null;
    }

    /// <summary>The check redis.call makes in a script (Redis's scriptVerifyACL): null, or the error (without "ERR ").</summary>
    /// <summary>Whether <paramref name="caller"/>'s user may run every command on every key and channel, so that
    /// <see cref="ScriptAclError"/> finds nothing to refuse (a script checks once per run: its user cannot change
    /// while it runs, AUTH and ACL being refused inside scripts).</summary>
    internal static bool ScriptAclUnrestricted(KvSession caller)
        => caller.Connection is not { } conn || conn.User.State.Root is { AllCommands: true, AllKeys: true, AllChannels: true };

    internal static string? ScriptAclError(KvSession caller, KvCommand command, long nowMs)
    {
        if (caller.Connection is not { } conn) return null;
        KvAclUser user = conn.User;
        AclSelector root = user.State.Root;
        if (root is { AllCommands: true, AllKeys: true, AllChannels: true }) return null;
        RedisCommandSpec? cmd = KvRedisCommands.Lookup(command);
        if (cmd is null) return null;
        (KvAclDenial denial, int pos) = user.State.Check(cmd, command, AclKeyFinder);
        if (denial == KvAclDenial.None) return null;
        conn.Acl.AddLog(denial, "lua", denial == KvAclDenial.Command ? cmd.FullName : command.GetString(pos), user.Name, conn.ClientInfoLine(conn.Entry), nowMs);
        return "The user executing the script " + denial switch
        {
            KvAclDenial.Command => "can't run this command or subcommand",
            KvAclDenial.Key => "can't access at least one of the keys mentioned in the command arguments",
            _ => "can't publish to the channel mentioned in the command",
        };
    }

    private bool TryAuthenticate(string userName, ReadOnlySpan<byte> password, string commandName)
    {
        if (Acl.Authenticate(userName, password) is { } user)
        {
            _user = user;
            IsAuthenticated = true;
            return true;
        }
        Acl.AddLog(KvAclDenial.Auth, _transaction is not null ? "multi" : "toplevel", commandName, userName, ClientInfoLine(Entry), _now);
        return false;
    }

    private void Auth(KvCommand command, RespWriter reply)
    {
        if (command.Count > 3)
        {
            reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (command.Count == 2 && Acl.Default.State.NoPass)
        {
            reply.WriteError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return;
        }
        bool ok = command.Count == 2
            ? TryAuthenticate("default", command[1], command.GetString(0))
            : TryAuthenticate(command.GetString(1), command[2], command.GetString(0));
        if (ok) reply.WriteOk();
        else reply.WriteError(KvErrors.WrongPass);
    }

    /// <summary>Closes connections authenticated as users that ACL DELUSER or ACL LOAD removed (Redis frees them).</summary>
    /// <summary>Redis 7.0's ACLKillPubsubClientsIfNeeded: after ACL SETUSER or ACL LOAD, closes every client of
    /// <paramref name="user"/> (every user when null) subscribed to a channel, shard channel or pattern its rules no longer
    /// allow. Returns whether this client is one of them (it is closed after its reply).</summary>
    internal bool KillRevokedSubscribers(KvAclUser? user)
    {
        bool self = false;
        if (Clients is not { } registry) return false;
        foreach (KvClientEntry c in registry.Snapshot())
        {
            KvConnectionState other = c.State;
            if ((user is not null && !ReferenceEquals(other.User, user)) || other.Subscriber is not { } subscriber) continue;
            AclUserState rules = other.User.State;
            if (rules.Root.AllChannels) continue;
            bool revoked = false;
            foreach (KvSubscriptionKind kind in new[] { KvSubscriptionKind.Channel, KvSubscriptionKind.ShardChannel, KvSubscriptionKind.Pattern })
            {
                foreach (byte[] name in other.PubSub.SubscriptionsOf(subscriber, kind))
                {
                    if (!rules.AllowsChannel(name, kind == KvSubscriptionKind.Pattern)) revoked = true;
                }
            }
            if (!revoked) continue;
            if (ReferenceEquals(other, this)) self = true;
            else c.Kill();
        }
        return self;
    }

    /// <summary>Redis 7.0's check in EXEC: ACL rules are checked again for each queued command when it runs (they may have
    /// changed since it was queued); null, or the error that replaces its reply (and an ACL LOG entry, context multi).</summary>
    internal static string? ExecAclError(KvSession session, KvCommand command, long nowMs)
    {
        if (session.Connection is not { } conn) return null;
        KvAclUser user = conn.User;
        if (user.State.Root is { AllCommands: true, AllKeys: true, AllChannels: true }) return null;
        RedisCommandSpec? cmd = KvRedisCommands.Lookup(command);
        if (cmd is null) return null;
        (KvAclDenial denial, int pos) = user.State.Check(cmd, command, AclKeyFinder);
        if (denial == KvAclDenial.None) return null;
        conn.Acl.AddLog(denial, "multi", denial == KvAclDenial.Command ? cmd.FullName : command.GetString(pos), user.Name, conn.ClientInfoLine(conn.Entry), nowMs);
        return "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. " +
            "This command is no longer allowed for the following reason: " + denial switch
            {
                KvAclDenial.Command => "no permission to execute the command or subcommand",
                KvAclDenial.Key => "no permission to touch the specified keys",
                KvAclDenial.Channel => "no permission to access one of the channels used as arguments",
                _ => "no permission",
            };
    }

    private bool KillDeletedUsersClients()
    {
        bool self = false;
        if (Clients is { } registry)
        {
            foreach (KvClientEntry c in registry.Snapshot())
            {
                if (!c.State.User.Deleted) continue;
                if (ReferenceEquals(c.State, this)) self = true;
                else c.Kill();
            }
        }
        if (User.Deleted)
        {
            self = true;
            _user = Acl.Default;
            IsAuthenticated = false;
        }
        return self;
    }

    private KvDispatch AclCommand(KvCommand command, RespWriter reply)
    {
        string sub = command.GetString(1).ToLowerInvariant();
        RedisCommandSpec? spec = KvRedisCommands.Lookup("acl|" + sub);
        if (spec is null || !AcceptsArity(spec.Arity, command.Count))
        {
            if (spec is null) reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "ACL"));
            else reply.WriteError(KvErrors.WrongArity("acl|" + sub));
            return KvDispatch.Replied;
        }
        KvAcl acl = Acl;
        switch (sub)
        {
            case "setuser":
            {
                var rules = new List<string>();
                for (int i = 3; i < command.Count; i++) rules.Add(command.GetString(i));
                if (acl.SetUser(command.GetString(2), rules, out KvAclUser? changed) is { } error)
                {
                    reply.WriteError(error);
                    return KvDispatch.Replied;
                }
                reply.WriteOk();
                return KillRevokedSubscribers(changed) ? KvDispatch.Close : KvDispatch.Replied;
            }
            case "deluser":
            {
                var names = new List<string>();
                for (int i = 2; i < command.Count; i++)
                {
                    string n = command.GetString(i);
                    if (n == "default")
                    {
                        reply.WriteError("ERR The 'default' user cannot be removed");
                        return KvDispatch.Replied;
                    }
                    names.Add(n);
                }
                reply.WriteInteger(acl.DeleteUsers(names));
                return KillDeletedUsersClients() ? KvDispatch.Close : KvDispatch.Replied;
            }
            case "getuser":
            {
                if (acl.Find(command.GetString(2)) is not { } u)
                {
                    reply.WriteNull();
                    return KvDispatch.Replied;
                }
                AclUserState s = u.State;
                reply.WriteMapHeader(6);
                reply.WriteBulkString("flags");
                var flags = new List<string> { s.Enabled ? "on" : "off" };
                if (s.NoPass) flags.Add("nopass");
                if (s.Sanitize == 2) flags.Add("skip-sanitize-payload");
                if (s.Sanitize == 1) flags.Add("sanitize-payload");
                reply.WriteSetHeader(flags.Count);
                foreach (string f in flags) reply.WriteBulkString(f);
                reply.WriteBulkString("passwords");
                reply.WriteArrayHeader(s.Passwords.Count);
                foreach (string p in s.Passwords) reply.WriteBulkString(p);
                reply.WriteBulkString("commands");
                reply.WriteBulkString(s.Root.DescribeCommandRules());
                reply.WriteBulkString("keys");
                reply.WriteBulkString(s.Root.DescribeKeys());
                reply.WriteBulkString("channels");
                reply.WriteBulkString(s.Root.DescribeChannels());
                reply.WriteBulkString("selectors");
                reply.WriteArrayHeader(s.Selectors.Count);
                foreach (AclSelector x in s.Selectors)
                {
                    reply.WriteMapHeader(3);
                    reply.WriteBulkString("commands");
                    reply.WriteBulkString(x.DescribeCommandRules());
                    reply.WriteBulkString("keys");
                    reply.WriteBulkString(x.DescribeKeys());
                    reply.WriteBulkString("channels");
                    reply.WriteBulkString(x.DescribeChannels());
                }
                return KvDispatch.Replied;
            }
            case "list" or "users":
            {
                List<KvAclUser> users = acl.Users();
                reply.WriteArrayHeader(users.Count);
                foreach (KvAclUser u in users) reply.WriteBulkString(sub == "users" ? u.Name : KvAcl.Describe(u));
                return KvDispatch.Replied;
            }
            case "whoami":
                reply.WriteBulkString(User.Name);
                return KvDispatch.Replied;
            case "load" or "save" when acl.AclFile is null:
                reply.WriteError("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.");
                return KvDispatch.Replied;
            case "load":
            {
                string? error = _live.LoadAclFile();
                if (error is not null)
                {
                    reply.WriteError("ERR " + error);
                    return KvDispatch.Replied;
                }
                reply.WriteOk();
                bool closeSelf = KillDeletedUsersClients();
                return KillRevokedSubscribers(null) || closeSelf ? KvDispatch.Close : KvDispatch.Replied;
            }
            case "save":
                if (_live.SaveAclFile() is null) reply.WriteOk();
                else reply.WriteError("ERR There was an error trying to save the ACLs. Please check the server logs for more information");
                return KvDispatch.Replied;
            case "cat":
            {
                if (command.Count == 2)
                {
                    reply.WriteArrayHeader(KvRedisCommands.Categories.Length);
                    foreach (string c in KvRedisCommands.Categories) reply.WriteBulkString(c);
                    return KvDispatch.Replied;
                }
                int category = KvRedisCommands.CategoryIndex(command.GetString(2));
                if (category < 0)
                {
                    string name = command.GetString(2);
                    reply.WriteError($"ERR Unknown category '{(name.Length > 128 ? name[..128] : name)}'");
                    return KvDispatch.Replied;
                }
                var names = KvRedisCommands.All.Where(c => (c.Categories & (1UL << category)) != 0).Select(c => c.FullName).ToList();
                reply.WriteArrayHeader(names.Count);
                foreach (string n in names) reply.WriteBulkString(n);
                return KvDispatch.Replied;
            }
            case "genpass":
            {
                long bits = 256;
                if (command.Count == 3 && !RespNumbers.TryParseInt64(command[2], out bits))
                {
                    reply.WriteError(KvErrors.NotInteger);
                    return KvDispatch.Replied;
                }
                if (bits <= 0 || bits > 4096)
                {
                    reply.WriteError("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
                    return KvDispatch.Replied;
                }
                int chars = (int)((bits + 3) / 4);
                reply.WriteBulkString(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes((chars + 1) / 2))[..chars]);
                return KvDispatch.Replied;
            }
            case "log":
            {
                long count = 10;
                if (command.Count == 3)
                {
                    if (Is(command[2], "RESET"u8))
                    {
                        acl.ResetLog();
                        reply.WriteOk();
                        return KvDispatch.Replied;
                    }
                    if (!RespNumbers.TryParseInt64(command[2], out count))
                    {
                        reply.WriteError(KvErrors.NotInteger);
                        return KvDispatch.Replied;
                    }
                    if (count < 0) count = 0;
                }
                List<KvAclLogEntry> entries = acl.Log((int)Math.Min(count, int.MaxValue));
                reply.WriteArrayHeader(entries.Count);
                foreach (KvAclLogEntry e in entries)
                {
                    reply.WriteMapHeader(7);
                    reply.WriteBulkString("count");
                    reply.WriteInteger(e.Count);
                    reply.WriteBulkString("reason");
                    reply.WriteBulkString(e.Reason switch { KvAclDenial.Command => "command", KvAclDenial.Key => "key", KvAclDenial.Channel => "channel", _ => "auth" });
                    reply.WriteBulkString("context");
                    reply.WriteBulkString(e.Context);
                    reply.WriteBulkString("object");
                    reply.WriteBulkString(e.Object);
                    reply.WriteBulkString("username");
                    reply.WriteBulkString(e.Username);
                    reply.WriteBulkString("age-seconds");
                    reply.WriteDouble((_now - e.TimeMs) / 1000.0);
                    reply.WriteBulkString("client-info");
                    reply.WriteBulkString(e.ClientInfo);
                }
                return KvDispatch.Replied;
            }
            case "dryrun":
            {
                string userName = command.GetString(2);
                if (acl.Find(userName) is not { } u)
                {
                    reply.WriteError($"ERR User '{userName}' not found");
                    return KvDispatch.Replied;
                }
                var args = new byte[command.Count - 3][];
                for (int i = 3; i < command.Count; i++) args[i - 3] = command.ToArray(i);
                KvCommand inner = KvCommand.Create(args);
                RedisCommandSpec? cmd = KvRedisCommands.Lookup(inner);
                if (cmd is null)
                {
                    reply.WriteError($"ERR Command '{command.GetString(3)}' not found");
                    return KvDispatch.Replied;
                }
                if (!AcceptsArity(cmd.Arity, inner.Count))
                {
                    reply.WriteError($"ERR wrong number of arguments for '{cmd.FullName}' command");
                    return KvDispatch.Replied;
                }
                (KvAclDenial denial, int pos) = u.State.Check(cmd, inner, AclKeyFinder);
                if (denial == KvAclDenial.None) reply.WriteOk();
                else reply.WriteBulkString(denial switch
                {
                    KvAclDenial.Command => $"This user has no permissions to run the '{cmd.FullName}' command",
                    KvAclDenial.Key => $"This user has no permissions to access the '{inner.GetString(pos)}' key",
                    _ => $"This user has no permissions to access the '{inner.GetString(pos)}' channel",
                });
                return KvDispatch.Replied;
            }
            case "help":
                WriteHelp(reply, "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "CAT [<category>]",
                    "    List all commands that belong to <category>, or all command categories",
                    "    when no category is specified.",
                    "DELUSER <username> [<username> ...]",
                    "    Delete a list of users.",
                    "DRYRUN <username> <command> [<arg> ...]",
                    "    Returns whether the user can execute the given command without executing the command.",
                    "GETUSER <username>",
                    "    Get the user's details.",
                    "GENPASS [<bits>]",
                    "    Generate a secure 256-bit user password. The optional `bits` argument can",
                    "    be used to specify a different size.",
                    "LIST",
                    "    Show users details in config file format.",
                    "LOAD",
                    "    Reload users from the ACL file.",
                    "LOG [<count> | RESET]",
                    "    Show the ACL log entries.",
                    "SAVE",
                    "    Save the current config to the ACL file.",
                    "SETUSER <username> <attribute> [<attribute> ...]",
                    "    Create or modify a user with the specified attributes.",
                    "USERS",
                    "    List all the registered usernames.",
                    "WHOAMI",
                    "    Return the current connection username.",
                    "HELP",
                    "    Prints this help.");
                return KvDispatch.Replied;
            default:
                reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "ACL"));
                return KvDispatch.Replied;
        }
    }

    private static bool AcceptsArity(int arity, int count) => arity >= 0 ? count == arity : count >= -arity;
}
