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
        "OBJECT <key>",
        "    Show low level info about the key and associated value.",
        "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
        "    Rewrite the dataset as AOF commands, empty the keyspace and replay them (Redis saves and reloads its RDB);",
        "    unless NOSAVE, also start a rewrite of the append-only file on disk. MERGE with NOFLUSH: nothing to do.",
        "SET-ACTIVE-EXPIRE <0|1>",
        "    Setting it to 0 disables expiring keys in background when they are not accessed (otherwise the Redis behavior).",
        "SLEEP <seconds>",
        "    Stop the store owner (and the connections on its domain) for <seconds>; decimals allowed.",
        "FIBERS [JSON]",
        "    Return the live tree of domains, switches and fibers: what each fiber is suspended on and for how long (text or JSON).",
        "TRACE START <file>|STOP",
        "    Start streaming a fiber trace (Chrome Trace Event JSON) to <file> on the server's machine, or stop it; STOP returns the file.",
        "HELP",
        "    Print this help.",
    ];

    public static bool Is(KvCommand command) => Ascii.EqualsIgnoreCase(command.Name, "debug"u8);

    /// <summary>C's atof: the leading number of the text, 0 when there is none.</summary>
    private static double ParseDouble(ReadOnlySpan<byte> text)
    {
        string s = Encoding.ASCII.GetString(text).Trim();
        int end = 0;
        while (end < s.Length && (char.IsAsciiDigit(s[end]) || s[end] is '.' or '-' or '+' or 'e' or 'E'))
        {
            end++;
        }

        for (; end > 0; end--)
        {
            if (double.TryParse(s.AsSpan(0, end), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v))
            {
                return v;
            }
        }

        return 0;
    }

    /// <summary>Runs <paramref name="work"/> on the store owner, in a round of its own after what the connection sent
    /// before (already answered), and copies its reply.</summary>
    internal static async Task RunOnStoreAsync(KvServerContext ctx, KvConnectionState state, RespWriter reply, Action<KvStore, RespWriter, IAofSink?> work)
    {
        var request = new StoreRequest { Protocol = state.Protocol, Session = state.Session, Direct = work };
        var (done, resolver) = EioSharp.Promise.Create<bool>();
        request.Done = resolver;
        try
        {
            await ctx.Queue.AddAsync(request);
            await done.AwaitAsync();
            reply.WriteRaw(request.Reply.WrittenSpan);
        }
        catch (StoreRestartedException ex)
        {
            reply.WriteError(ex.ReplyError);
        }
    }

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
        else if (Ascii.EqualsIgnoreCase(sub, "sleep"u8) && command.Count == 3)
        {
            // Redis: usleep on the main thread, every client waits. Here: the store owner's thread sleeps (Thread.Sleep is
            // the point: the keyspace and the connections sharing its domain stop), so every data command waits.
            double seconds = ParseDouble(command[2]);
            long ms = seconds > 0 ? (long)Math.Min(seconds * 1000, int.MaxValue) : 0;
            await RunOnStoreAsync(ctx, state, reply, (_, w, _) =>
            {
                if (ms > 0)
                {
                    Thread.Sleep((int)ms);
                }

                w.WriteOk();
            });
        }
        else if (Ascii.EqualsIgnoreCase(sub, "object"u8) && command.Count == 3)
        {
            byte[] key = command.ToArray(2);
            long now = ctx.Clock.Now.ToUnixTimeMilliseconds();
            await RunOnStoreAsync(ctx, state, reply, (store, w, _) => store.DebugObject(state.Session, key, now, w));
        }
        else if (Ascii.EqualsIgnoreCase(sub, "set-active-expire"u8) && command.Count == 3)
        {
            bool on = ParseDouble(command[2]) != 0; // Redis: atoi
            await RunOnStoreAsync(ctx, state, reply, (store, w, _) =>
            {
                store.ActiveExpireEnabled = on;
                w.WriteOk();
            });
        }
        else if (Ascii.EqualsIgnoreCase(sub, "reload"u8))
        {
            bool merge = false, noflush = false, nosave = false;
            for (int i = 2; i < command.Count; i++)
            {
                if (Ascii.EqualsIgnoreCase(command[i], "merge"u8)) merge = true;
                else if (Ascii.EqualsIgnoreCase(command[i], "noflush"u8)) noflush = true;
                else if (Ascii.EqualsIgnoreCase(command[i], "nosave"u8)) nosave = true;
                else
                {
                    reply.WriteError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
                    return;
                }
            }

            long now = ctx.Clock.Now.ToUnixTimeMilliseconds();
            await RunOnStoreAsync(ctx, state, reply, (store, w, _) =>
            {
                if (noflush && !merge && store.Count > 0)
                {
                    // Redis loads the file on top of the keyspace and fails on the first key that exists.
                    w.WriteError("ERR Error trying to load the RDB dump, check server logs.");
                    return;
                }

                if (!noflush)
                {
                    store.ReloadFromRewrite(now);
                }

                if (!nosave && ctx.Config.AppendOnly)
                {
                    ctx.Store?.RequestRewrite(); // the file on disk too, as Redis's reload saves its RDB first
                }

                w.WriteOk();
            });
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
