namespace EioSharp.Kv;

/// <summary>What SAVE and BGSAVE need from the server: writing the RDB file (<c>dir/dbfilename</c>) through its file capability.</summary>
/// <remarks>Called on the store owner, inside a round (the store is not changing meanwhile).</remarks>
public interface IKvRdbSaver
{
    /// <summary>SAVE: writes the whole keyspace to the RDB file now, before returning (the store waits, as Redis's SAVE
    /// blocks the server), atomically (temporary file, fsync, rename, directory fsync).</summary>
    /// <param name="store">The keyspace.</param>
    /// <param name="nowUnixMs">The time of the save (keys expired by then are left out).</param>
    /// <returns>Null when the file was written; otherwise Redis's error reply text (without '-').</returns>
    string? Save(KvStore store, long nowUnixMs);

    /// <summary>BGSAVE [SCHEDULE]: takes a consistent snapshot now and writes it in the background (Redis's fork snapshot:
    /// the state at the time of the command; writes after it are not in the file).</summary>
    /// <param name="store">The keyspace.</param>
    /// <param name="nowUnixMs">The time of the snapshot.</param>
    /// <param name="schedule">SCHEDULE: while an AOF rewrite runs, start it when the rewrite has finished instead of refusing.
    /// Also true inside EXEC: as Redis's bgsaveCommand under <c>server.in_exec</c>, a BGSAVE queued in MULTI is always
    /// scheduled (started by the next cron tick), never started in the middle of the transaction.</param>
    /// <returns>The reply: a status (<c>+Background saving started</c>, <c>+Background saving scheduled</c>) or an error,
    /// with its leading '+' or '-'.</returns>
    /// <param name="inExec">Run by EXEC: scheduled even when no AOF rewrite runs (<c>+Background saving scheduled</c>).</param>
    string BackgroundSave(KvStore store, long nowUnixMs, bool schedule, bool inExec);
}

public sealed partial class KvStore
{
    /// <summary>SAVE and BGSAVE: they run on the store owner, in order with the data commands.</summary>
    internal static readonly KvCommandInfo[] RdbCommands =
    [
        KvCommandTable.Data("save", 1, KvCommandFlags.None, 0, 0, 0, static (s, in c) => s.SaveCommand(c)),
        KvCommandTable.Data("bgsave", -1, KvCommandFlags.None, 0, 0, 0, static (s, in c) => s.BgSaveCommand(c)),
    ];

    /// <summary>Redis's <c>rdbcompression</c> for DUMP and DEBUG OBJECT's serializedlength (the server sets it from its
    /// configuration before each round): strings over 20 bytes LZF-compressed when that saves at least 4 bytes.</summary>
    public bool RdbCompression { get; set; } = true;

    /// <summary>The server's RDB writer (SAVE, BGSAVE); null: those commands answer that there is none.</summary>
    public IKvRdbSaver? RdbSaver { get; set; }

    private void SaveCommand(in Context ctx)
    {
        if (RdbSaver is not { } saver)
        {
            ctx.Reply.WriteError("ERR SAVE is not available on this server");
            return;
        }
        if (saver.Save(this, ctx.Now) is { } error) ctx.Reply.WriteError(error);
        else ctx.Reply.WriteOk();
    }

    private void BgSaveCommand(in Context ctx)
    {
        bool schedule = false;
        if (ctx.Count > 1)
        {
            if (ctx.Count == 2 && Is(ctx[1], "SCHEDULE"u8)) schedule = true;
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (RdbSaver is not { } saver)
        {
            ctx.Reply.WriteError("ERR BGSAVE is not available on this server");
            return;
        }
        string reply = saver.BackgroundSave(this, ctx.Now, schedule, inExec: _depth > 1); // BGSAVE is noscript: > 1 is EXEC
        if (reply.StartsWith('-')) ctx.Reply.WriteError(reply[1..]);
        else ctx.Reply.WriteSimpleString(reply[1..]);
    }
}
