namespace EioSharp.Kv;

// The string fast path (issue 14): plain SET and GET touch no intermediate array, and a plain SET of a value of the
// same length as the key's current one overwrites it in place (KvDatabase.Strings.cs says when that is safe).
public sealed partial class KvStore
{
    /// <summary>SET key value (no options) with a value received in the command's buffer (a value of at most
    /// <see cref="KvDatabase.PackedValueMaxBytes"/> bytes goes into the packed row, a longer one into an array of the
    /// row's own): the value is copied once, from the command into the row, or overwritten in place. Same effects as
    /// the general path.</summary>
    private void SetPlain(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        ReadOnlySpan<byte> value = ctx[2];
        bool packed = value.Length <= KvDatabase.PackedValueMaxBytes;
        KvEntry? e = Lookup(ctx, key);
        if (e is null)
        {
            KvDatabase db = ctx.Db;
            if (db.Lookup.TryGetValue(key, out KvEntry? stale)) db.Remove(stale); // an expired entry nobody removed yet
            OnKeyAdded(db, key, packed ? db.AddPackedString(key, value, -1) : db.AddLongString(key, value, -1));
        }
        else
        {
            if (packed) ctx.Db.ReplacePackedString(e, value);
            else ctx.Db.ReplaceLongString(e, value);
            ctx.Db.SetExpire(e, -1);
        }

        if (ctx.Aof is not null) ctx.Log(ctx.Command);
        Changed(ctx, key, KvEventClass.String, "set");
        ctx.Reply.WriteOk();
    }
}
