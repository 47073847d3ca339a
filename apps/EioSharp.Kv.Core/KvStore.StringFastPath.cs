namespace EioSharp.Kv;

// The string fast path (issue 14): plain SET with a short value and GET touch no intermediate array.
public sealed partial class KvStore
{
    /// <summary>SET key value (no options) with a value of at most <see cref="KvDatabase.PackedValueMaxBytes"/> bytes:
    /// the value is copied once, from the command into the packed row. Same effects as the general path.</summary>
    private void SetPlainShort(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        KvEntry? e = Lookup(ctx, key);
        if (e is null)
        {
            KvDatabase db = ctx.Db;
            if (db.Lookup.TryGetValue(key, out KvEntry? stale)) db.Remove(stale); // an expired entry nobody removed yet
            OnKeyAdded(db, key, db.AddPackedString(key, ctx[2], -1));
        }
        else
        {
            ctx.Db.ReplacePackedString(e, ctx[2]);
            ctx.Db.SetExpire(e, -1);
        }

        if (ctx.Aof is not null) ctx.Log(ctx.Command);
        Changed(ctx, key, KvEventClass.String, "set");
        ctx.Reply.WriteOk();
    }
}
