using System.Text;

namespace EioSharp.Kv;

/// <summary>SHUTDOWN's final RDB save, made before the server starts to stop, as Redis's prepareForShutdown: when the
/// save fails, SHUTDOWN without FORCE answers <c>-ERR Errors trying to SHUTDOWN. Check logs.</c> and the server keeps
/// running; with FORCE it exits anyway.</summary>
/// <remarks>The save runs on the store owner in a round of its own (after what the connection sent before), so that the
/// file has every write acknowledged before SHUTDOWN. The save at exit (<see cref="RdbPersistence.SaveAtExit"/>) is then
/// skipped unless another client wrote in between (it saves again; a failure then is logged, the server exits).</remarks>
internal static class KvShutdownSave
{
    /// <summary>Runs SHUTDOWN's save when one is due (not NOSAVE; SAVE, or save points set).</summary>
    /// <returns>True when SHUTDOWN was answered here (the save failed without FORCE: the server keeps running); false
    /// when the command goes on as usual (nothing to save, the save succeeded, FORCE, or arguments the usual path refuses).</returns>
    public static async Task<bool> RunAsync(KvServerContext ctx, KvConnectionState state, KvCommand command, RespWriter reply, Action<string> log)
    {
        if (ctx.Store?.Rdb is not { } rdb || ctx.Admin is null)
        {
            return false;
        }

        bool noSave = false, save = false, force = false;
        for (int i = 1; i < command.Count; i++)
        {
            string a = Encoding.ASCII.GetString(command[i]).ToUpperInvariant();
            switch (a)
            {
                case "NOSAVE":
                    noSave = true;
                    break;
                case "SAVE":
                    save = true;
                    break;
                case "FORCE":
                    force = true;
                    break;
                case "NOW":
                    break;
                default:
                    return false; // ABORT, or a syntax error: the usual path answers
            }
        }

        if (noSave || !(save || ctx.Live.Current.Save.Length > 0) || state.InTransaction)
        {
            return false;
        }

        bool ok = false;
        var scratch = new RespWriter(new System.Buffers.ArrayBufferWriter<byte>(16));
        await KvDebugCommand.RunOnStoreAsync(ctx, state, scratch, (store, _, _) =>
        {
            log("Saving the final RDB snapshot before exiting.");
            ok = rdb.SaveNow(store, ctx.Clock.Now.ToUnixTimeMilliseconds());
            if (ok)
            {
                rdb.SavedForShutdown(store);
            }
        });
        if (ok)
        {
            return false;
        }

        if (force)
        {
            log("Error trying to save the DB. Exit anyway.");
            rdb.ShutdownSave = false; // already tried: exit without another attempt
            return false;
        }

        log("Error trying to save the DB, can't exit.");
        log("Errors trying to shut down the server. Check the logs for more information.");
        reply.WriteError("ERR Errors trying to SHUTDOWN. Check logs.");
        return true;
    }
}
