namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The database commands: SELECT, DBSIZE, FLUSHDB, FLUSHALL, MOVE, SWAPDB; WAIT (no replicas) and
    /// RESTORE-ASKING (RESTORE: there is no cluster to ask).</summary>
    internal static readonly KvCommandInfo[] ServerCommands =
    [
        KvCommandTable.Data("select", 2, KvCommandFlags.None, 0, 0, 0, static (s, in c) => s.Select(c)),
        KvCommandTable.Data("dbsize", 1, R, 0, 0, 0, static (s, in c) => c.Reply.WriteInteger(c.Db.Count)),
        KvCommandTable.Data("flushdb", -1, W, 0, 0, 0, static (s, in c) => s.Flush(c, all: false)),
        KvCommandTable.Data("flushall", -1, W, 0, 0, 0, static (s, in c) => s.Flush(c, all: true)),
        KvCommandTable.Data("move", 3, W, 1, 1, 1, static (s, in c) => s.Move(c)),
        KvCommandTable.Data("swapdb", 3, W, 0, 0, 0, static (s, in c) => s.SwapDb(c)),
        KvCommandTable.Data("wait", 3, KvCommandFlags.None, 0, 0, 0, static (s, in c) => s.Wait(c)),
        KvCommandTable.Data("restore-asking", -4, W, 1, 1, 1, static (s, in c) => s.Restore(c)),
    ];

    private static readonly KvBlockServe s_neverServed = static (KvStore _, in Context _) => false;
    private static readonly Action<RespWriter> s_zeroReplicas = static reply => reply.WriteInteger(0);

    // WAIT numreplicas timeout: this server has no replicas, so 0 replicas acknowledged. As Redis's waitCommand: 0 at
    // once when numreplicas <= 0 or the client cannot block (MULTI, scripts); otherwise the client blocks until the
    // timeout (0: forever), CLIENT UNBLOCK or its disconnection, then answers 0.
    private void Wait(in Context ctx)
    {
        if (!RespNumbers.TryParseInt64(ctx[1], out long replicas))
        {
            ctx.Reply.WriteError(KvErrors.NotInteger);
            return;
        }
        if (!TryGetBlockDeadline(ctx, 2, milliseconds: true, out long deadline)) return;
        if (replicas <= 0)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        Block(ctx, [], deadline, s_neverServed, nilIsBulk: false, s_zeroReplicas);
    }

    /// <summary>Parses a database number for SELECT, MOVE and COPY DB; writes the error and returns false when it is not valid.</summary>
    internal bool TryGetDbIndex(in Context ctx, int index, out int db)
    {
        db = 0;
        if (!RespNumbers.TryParseInt64(ctx[index], out long value) || value < int.MinValue || value > int.MaxValue)
        {
            ctx.Reply.WriteError(KvErrors.NotInteger);
            return false;
        }
        if (value < 0 || value >= _dbs.Length)
        {
            ctx.Reply.WriteError(KvErrors.DbIndexOutOfRange);
            return false;
        }
        db = (int)value;
        return true;
    }

    private void Select(in Context ctx)
    {
        if (!TryGetDbIndex(ctx, 1, out int db)) return;
        ctx.Session.Db = db;
        ctx.Reply.WriteOk();
    }

    private void Flush(in Context ctx, bool all)
    {
        if (ctx.Count > 2 || (ctx.Count == 2 && !Is(ctx[1], "ASYNC"u8) && !Is(ctx[1], "SYNC"u8)))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        if (all)
        {
            foreach (KvDatabase db in _dbs)
            {
                TouchWatchedKeysInDb(db.Index); // WATCH (KvStore.Transactions.cs)
                db.Clear();
                DatabaseChanged(db.Index);
            }
        }
        else
        {
            TouchWatchedKeysInDb(ctx.Db.Index); // WATCH (KvStore.Transactions.cs)
            ctx.Db.Clear();
            DatabaseChanged(ctx.Db.Index);
        }
        _pubSub?.Tracking.InvalidateAll(); // CLIENT TRACKING: a null invalidation to every tracking client
        ctx.LogSelf();
        ctx.Reply.WriteOk();
    }

    private void Move(in Context ctx)
    {
        if (!TryGetDbIndex(ctx, 2, out int target)) return;
        if (target == ctx.Db.Index)
        {
            ctx.Reply.WriteError(KvErrors.SameObject);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        KvEntry? e = Lookup(ctx, key);
        KvDatabase dst = _dbs[target];
        if (e is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        // Redis's moveCommand looks the key up in the target database with lookupKeyWrite: an access to a key found there.
        if (Lookup(dst, key, ctx.Now) is { } there)
        {
            Touch(there);
            ctx.Reply.WriteInteger(0);
            return;
        }
        long expireAt = e.ExpireAt;
        DeleteKey(ctx, e);
        CopyEntryMeta(e, AddKey(dst, key, e.Value, expireAt));
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.Generic, "move_from");
        Changed(target, key, KvEventClass.Generic, "move_to");
        ctx.Reply.WriteInteger(1);
    }

    private void SwapDb(in Context ctx)
    {
        if (!RespNumbers.TryParseInt64(ctx[1], out long a) || a < int.MinValue || a > int.MaxValue)
        {
            ctx.Reply.WriteError("ERR invalid first DB index");
            return;
        }
        if (!RespNumbers.TryParseInt64(ctx[2], out long b) || b < int.MinValue || b > int.MaxValue)
        {
            ctx.Reply.WriteError("ERR invalid second DB index");
            return;
        }
        if (a < 0 || a >= _dbs.Length || b < 0 || b >= _dbs.Length)
        {
            ctx.Reply.WriteError(KvErrors.DbIndexOutOfRange);
            return;
        }
        if (a != b)
        {
            TouchWatchedKeysInDb((int)a, (int)b); // WATCH (KvStore.Transactions.cs)
            TouchWatchedKeysInDb((int)b, (int)a);
            _totals.CountsChanged((int)a); // the per-database counts swap (INFO keyspace)
            _totals.CountsChanged((int)b);
            (_dbs[a], _dbs[b]) = (_dbs[b], _dbs[a]);
            _dbs[a].Index = (int)a;
            _dbs[b].Index = (int)b;
            DatabaseChanged((int)a);
            DatabaseChanged((int)b);
        }
        ctx.LogSelf();
        ctx.Reply.WriteOk();
    }
}
