using System.Net;
using System.Text;
using EioSharp.Supervision;

namespace EioSharp.Kv;

/// <summary>Redis's DEBUG command, reduced to fault injection (<c>DEBUG CRASH-STORE</c>), fiber diagnostics (<c>DEBUG FIBERS</c>,
/// <c>DEBUG TRACE START|STOP</c>) and <c>DEBUG HELP</c>.</summary>
/// <remarks>Allowed only with <c>--enable-debug-command yes</c> (or <c>local</c>, from a loopback connection); otherwise
/// DEBUG answers Redis's refusal. Handled on the connection, not in the command table: it needs the server (the store's
/// supervisor), which the protocol layer does not know.</remarks>
internal static class KvDebugCommand
{
    public const string NotAllowed = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", " +
        "you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

    private static readonly string[] s_help =
    [
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CRASH-STORE [BEFORE-APPEND|AFTER-APPEND]",
        "    Crash the store owner (the single owner of the keyspace) as if it had thrown: its supervisor restarts it,",
        "    and the new owner reloads the keyspace from the append-only file. Queued commands are served by the new owner.",
        "    Without argument the crash happens now, between rounds. BEFORE-APPEND: the next round of commands crashes after",
        "    applying them in memory, before appending them to the AOF (they get 'not executed' errors). AFTER-APPEND: it",
        "    crashes after appending them, before replying (they get 'outcome unknown' errors; they did take effect).",
        "FAIL-FSYNC <count>",
        "    Make the next <count> background fsyncs of the append-only file (appendfsync everysec) fail with EIO: writes are",
        "    refused with -MISCONF until an fsync succeeds again.",
        "FIBERS [JSON]",
        "    Return the live tree of domains, switches and fibers: what each fiber is suspended on and for how long (text or JSON).",
        "TRACE START <file>|STOP",
        "    Start streaming a fiber trace (Chrome Trace Event JSON) to <file> on the server's machine, or stop it; STOP returns the file.",
        "HELP",
        "    Print this help.",
    ];

    public static bool Is(KvCommand command) => Ascii.EqualsIgnoreCase(command.Name, "debug"u8);

    public static async Task RunAsync(KvServerContext ctx, KvConnectionState state, EndPoint peer, KvCommand command, RespWriter reply)
    {
        reply.Protocol = state.Protocol;
        if (!state.IsAuthenticated)
        {
            reply.WriteError(KvErrors.NoAuth);
            return;
        }

        bool allowed = ctx.DebugCommand switch
        {
            DebugCommandMode.Yes => true,
            DebugCommandMode.Local => peer is IPEndPoint ip && IPAddress.IsLoopback(ip.Address),
            _ => false,
        };
        if (!allowed)
        {
            reply.WriteError(NotAllowed);
            return;
        }

        if (command.Count < 2)
        {
            reply.WriteError(KvErrors.WrongArity("debug"));
            return;
        }

        if (ctx.ScriptMonitor is { IsBusy: true } monitor)
        {
            reply.WriteError(monitor.BusyError); // as Redis: DEBUG is not among the commands allowed while a script is busy
            return;
        }

        var sub = command[1];
        if (Ascii.EqualsIgnoreCase(sub, "help"u8) && command.Count == 2)
        {
            reply.WriteArrayHeader(s_help.Length);
            foreach (string line in s_help)
            {
                reply.WriteSimpleString(line);
            }
        }
        else if (Ascii.EqualsIgnoreCase(sub, "fibers"u8) && command.Count <= 3)
        {
            if (command.Count == 3 && !Ascii.EqualsIgnoreCase(command[2], "json"u8))
            {
                reply.WriteError("ERR syntax error");
                return;
            }

            reply.WriteBulkString(command.Count == 3 ? EioDiagnostics.DumpTreeJson() : EioDiagnostics.DumpTree());
        }
        else if (Ascii.EqualsIgnoreCase(sub, "trace"u8) && command.Count >= 3)
        {
            if (Ascii.EqualsIgnoreCase(command[2], "start"u8) && command.Count == 4)
            {
                try
                {
                    EioSharp.Tracing.EioTrace.Start(command.GetString(3));
                    reply.WriteOk();
                }
                catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
                {
                    reply.WriteError("ERR " + e.Message);
                }
            }
            else if (Ascii.EqualsIgnoreCase(command[2], "stop"u8) && command.Count == 3)
            {
                // Stopping drains the rings and closes the file: done on a system thread, not on the connection's domain.
                string? file = await EioSharp.Domains.Systhread.RunAsync(() => EioSharp.Tracing.EioTrace.Stop());
                if (file is null)
                {
                    reply.WriteError("ERR no trace is running");
                }
                else
                {
                    reply.WriteBulkString(file);
                }
            }
            else
            {
                reply.WriteError("ERR syntax error");
            }
        }
        else if (Ascii.EqualsIgnoreCase(sub, "crash-store"u8) && command.Count <= 3)
        {
            if (ctx.Store is null)
            {
                reply.WriteError("ERR no store owner to crash");
                return;
            }

            if (command.Count == 3)
            {
                if (Ascii.EqualsIgnoreCase(command[2], "before-append"u8))
                {
                    ctx.Store.ArmRoundCrash(InjectedRoundCrash.BeforeAppend);
                }
                else if (Ascii.EqualsIgnoreCase(command[2], "after-append"u8))
                {
                    ctx.Store.ArmRoundCrash(InjectedRoundCrash.AfterAppend);
                }
                else
                {
                    reply.WriteError("ERR syntax error");
                    return;
                }

                reply.WriteOk();
                return;
            }

            try
            {
                bool crashed = await ctx.Store.CrashAsync(new StoreCrashInjectedException("crash injected by DEBUG CRASH-STORE"));
                if (crashed)
                {
                    reply.WriteOk();
                }
                else
                {
                    reply.WriteError("ERR the store owner is not running (it is being restarted)");
                }
            }
            catch (SupervisorNotRunningException)
            {
                reply.WriteError("ERR the store owner's supervisor is not running");
            }
        }
        else if (Ascii.EqualsIgnoreCase(sub, "fail-fsync"u8) && command.Count == 3)
        {
            if (!RespNumbers.TryParseInt64(command[2], out long count) || count < 0 || count > int.MaxValue)
            {
                reply.WriteError(KvErrors.NotInteger);
                return;
            }

            AppendOnlyFile.InjectFsyncFailures((int)count);
            reply.WriteOk();
        }
        else
        {
            reply.WriteError($"ERR unknown subcommand or wrong number of arguments for '{command.GetString(1)}'. Try DEBUG HELP.");
        }
    }
}
