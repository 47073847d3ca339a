using System.Net;

namespace EioSharp.Kv;

/// <summary>The commands of a standalone master without replicas and with cluster support disabled, answered as
/// redis-server 7.0.15 answers them there: CLUSTER, READONLY, READWRITE, ASKING, MODULE, REPLICAOF/SLAVEOF, SYNC,
/// PSYNC, REPLCONF, FAILOVER; and LOLWUT and PFSELFTEST.</summary>
/// <remarks>EioSharp.Kv does not replicate (docs/kv.md): REPLICAOF NO ONE is accepted (the server is already a
/// master), REPLICAOF host port, SYNC and PSYNC answer an error that says so. It cannot load Redis modules (they are
/// native code for redis-server's module API): MODULE LIST is empty, MODULE LOAD/LOADEX answer Redis's error for a
/// file that does not load.</remarks>
public sealed partial class KvConnectionState
{
    private const string ClusterDisabled = "ERR This instance has cluster support disabled";

    /// <summary>The error of REPLICAOF host port, SYNC and PSYNC.</summary>
    internal const string NoReplication = "ERR EioSharp.Kv does not replicate: it is always a master without replicas " +
        "(only REPLICAOF NO ONE is accepted)";

    private const string ModuleNotAllowed = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", " +
        "you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

    /// <summary>Runs the commands of this file; false when <paramref name="info"/> is not one of them.</summary>
    private bool TryReplicationCommand(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        if (TryStatelessCommand(info, command, reply)) return true;
        switch (info.Id)
        {
            case KvCommandId.Module:
                ModuleCommand(info, command, reply);
                return true;
            case KvCommandId.ReplicaOf:
                ReplicaOf(command, reply);
                return true;
            case KvCommandId.Sync or KvCommandId.PSync:
                reply.WriteError(NoReplication);
                return true;
            case KvCommandId.ReplConf:
                ReplConf(command, reply);
                return true;
            case KvCommandId.Failover:
                Failover(command, reply);
                return true;
            case KvCommandId.Lolwut:
                KvLolwut.Run(command, reply, _config.Version);
                return true;
            case KvCommandId.Debug:
                // Run by the server (KvDebugCommand); here only when queued in MULTI or without a server.
                reply.WriteError("ERR DEBUG is not supported inside MULTI/EXEC in EioSharp.Kv");
                return true;
            case KvCommandId.Migrate:
                // Run by the server (KvMigrate) or, queued in MULTI, by EXEC on the store owner (KvStore.MigrateBlocking).
                reply.WriteError("ERR MIGRATE needs a server connection in EioSharp.Kv");
                return true;
            default:
                return false;
        }
    }

    /// <summary>The Redis version this server reports (INFO redis_version, LOLWUT's last line), for LOLWUT in scripts.</summary>
    internal string ServerVersion => _config.Version;

    /// <summary>The commands of this file that need no connection: CLUSTER, READONLY, READWRITE, ASKING and
    /// PFSELFTEST (a script may call them, as in Redis: they are not flagged noscript).</summary>
    internal static bool TryStatelessCommand(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        switch (info.Id)
        {
            case KvCommandId.Cluster:
                // Redis: every CLUSTER subcommand (also HELP) answers the same error without cluster-enabled; an unknown
                // one is refused by name first (processCommand).
                if (KvRedisCommands.Lookup(command, info) is null) reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "CLUSTER"));
                else reply.WriteError(ClusterDisabled);
                return true;
            case KvCommandId.ReadOnly or KvCommandId.ReadWrite or KvCommandId.Asking:
                reply.WriteError(ClusterDisabled);
                return true;
            case KvCommandId.PfSelfTest:
                if (HyperLogLog.SelfTest(Random.Shared) is { } failure) reply.WriteError("TESTFAILED " + failure);
                else reply.WriteOk();
                return true;
            default:
                return false;
        }
    }

    private void ModuleCommand(KvCommandInfo info, KvCommand command, RespWriter reply)
    {
        ReadOnlySpan<byte> sub = command[1];
        if (KvRedisCommands.Lookup(command, info) is null)
        {
            reply.WriteError(KvErrors.UnknownSubcommand(command.GetString(1), "MODULE"));
            return;
        }
        if (Is(sub, "HELP"u8))
        {
            WriteHelp(reply, "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LIST",
                "    Return a list of loaded modules.",
                "LOAD <path> [<arg> ...]",
                "    Load a module library from <path>, passing to it any optional arguments.",
                "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
                "    Load a module library from <path>, while passing it module configurations and optional arguments.",
                "UNLOAD <name>",
                "    Unload a module.",
                "HELP",
                "    Prints this help.");
            return;
        }
        if (Is(sub, "LIST"u8))
        {
            reply.WriteArrayHeader(0); // no module is ever loaded
            return;
        }
        // LOAD, LOADEX, UNLOAD: Redis's protected commands (enable-module-command, default no).
        if (!ProtectedActionAllowed(_config.EnableModuleCommand))
        {
            reply.WriteError(ModuleNotAllowed);
            return;
        }
        if (Is(sub, "UNLOAD"u8)) reply.WriteError("ERR Error unloading module: no such module with that name");
        else reply.WriteError("ERR Error loading the extension. Please check the server logs."); // a Redis module never loads here
    }

    /// <summary>Redis's allowProtectedAction: "yes", or "local" for a loopback (or Unix socket) client.</summary>
    private bool ProtectedActionAllowed(string setting)
    {
        if (string.Equals(setting, "yes", StringComparison.OrdinalIgnoreCase)) return true;
        if (!string.Equals(setting, "local", StringComparison.OrdinalIgnoreCase)) return false;
        string address = RemoteAddress;
        int colon = address.LastIndexOf(':');
        string host = (colon > 0 ? address[..colon] : address).Trim('[', ']');
        return host.Length == 0 || host == "?" || address.StartsWith('/') || (IPAddress.TryParse(host, out IPAddress? ip) && IPAddress.IsLoopback(ip));
    }

    private static void ReplicaOf(KvCommand command, RespWriter reply)
    {
        if (Is(command[1], "NO"u8) && Is(command[2], "ONE"u8))
        {
            reply.WriteOk(); // already a master: nothing to do, as Redis without a master
            return;
        }
        if (!RespNumbers.TryParseInt64(command[2], out long port) || port is < 0 or > 65535)
        {
            reply.WriteError("ERR Invalid master port");
            return;
        }
        reply.WriteError(NoReplication);
    }

    // REPLCONF from a client that is not a replica link, as Redis's replconfCommand: pairs of option and value; ACK
    // and GETACK are not answered at all.
    private static void ReplConf(KvCommand command, RespWriter reply)
    {
        if (command.Count % 2 == 0)
        {
            reply.WriteError(KvErrors.Syntax);
            return;
        }
        for (int i = 1; i < command.Count; i += 2)
        {
            ReadOnlySpan<byte> option = command[i];
            if (Is(option, "listening-port"u8))
            {
                if (!RespNumbers.TryParseInt64(command[i + 1], out _))
                {
                    reply.WriteError(KvErrors.NotInteger);
                    return;
                }
            }
            else if (Is(option, "ip-address"u8))
            {
                if (command[i + 1].Length >= 256) // Redis's NET_HOST_STR_LEN
                {
                    reply.WriteError($"ERR REPLCONF ip-address provided by replica instance is too long: {command[i + 1].Length} bytes");
                    return;
                }
            }
            else if (Is(option, "capa"u8))
            {
                // capabilities are ignored
            }
            else if (Is(option, "ack"u8) || Is(option, "getack"u8))
            {
                return; // only meaningful on a replica link: no reply
            }
            else if (Is(option, "rdb-only"u8))
            {
                if (!RespNumbers.TryParseInt64(command[i + 1], out long v))
                {
                    reply.WriteError(KvErrors.NotInteger);
                    return;
                }
                if (v is < 0 or > 1)
                {
                    reply.WriteError("ERR value is out of range, value must between 0 and 1"); // sic, Redis 7.0's text
                    return;
                }
            }
            else
            {
                reply.WriteError("ERR Unrecognized REPLCONF option: " + command.GetString(i));
                return;
            }
        }
        reply.WriteOk();
    }

    // FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms], as Redis's failoverCommand on a master without replicas.
    private static void Failover(KvCommand command, RespWriter reply)
    {
        if (command.Count == 2 && Is(command[1], "ABORT"u8))
        {
            reply.WriteError("ERR No failover in progress.");
            return;
        }
        long timeout = 0;
        bool force = false, to = false;
        for (int i = 1; i < command.Count; i++)
        {
            if (Is(command[i], "TIMEOUT"u8) && i + 1 < command.Count && timeout == 0)
            {
                if (!RespNumbers.TryParseInt64(command[i + 1], out timeout))
                {
                    reply.WriteError(KvErrors.NotInteger);
                    return;
                }
                if (timeout <= 0)
                {
                    reply.WriteError("ERR FAILOVER timeout must be greater than 0");
                    return;
                }
                i++;
            }
            else if (Is(command[i], "TO"u8) && i + 2 < command.Count && !to)
            {
                if (!RespNumbers.TryParseInt64(command[i + 2], out _))
                {
                    reply.WriteError(KvErrors.NotInteger);
                    return;
                }
                to = true;
                i += 2;
            }
            else if (Is(command[i], "FORCE"u8) && !force) force = true;
            else
            {
                reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        reply.WriteError("ERR FAILOVER requires connected replicas.");
    }
}
