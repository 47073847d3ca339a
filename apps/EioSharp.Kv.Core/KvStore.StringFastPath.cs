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
        KvDatabase db = ctx.Db;
        int row = -1;
        long expireAt;
        bool ownArray = ctx.Command.HasOwnArray(2);
        if (!ownArray && (row = RowOfKey(ctx, key)) >= 0 && ((expireAt = db.ExpireAtOf(row)) < 0 || ctx.Now <= expireAt))
        {
            // A live key (the steady state of a SET load): SetString's effects, by row (no KvEntry handle per request;
            // in place when the length is the same), for a short value (packed) and a long one (its own array) alike.
            ReadOnlySpan<byte> value = ctx[2];
            TouchRow(db, row); // setKey's lookupKeyWrite records the access (rationale: a key only written is not evicted first)
            if (value.Length <= KvDatabase.PackedValueMaxBytes) db.ReplacePackedStringRow(row, value);
            else db.ReplaceLongStringRow(row, value);
            db.ClearExpireRow(row);
        }
        else if (!ownArray && row < 0)
        {
            // No row for the key, live or expired (a new key: a fresh server's SET load, -r 100000, is mostly these):
            // SetString's effects for a missing entry without its two lookups that would find nothing again (Lookup and
            // the stale-entry check; session 36, h203): one probe before the insert, as Redis's lookupKeyWrite + dbAdd.
            ReadOnlySpan<byte> value = ctx[2];
            OnKeyAdded(db, key, value.Length <= KvDatabase.PackedValueMaxBytes ? db.AddPackedString(key, value, -1) : db.AddLongString(key, value, -1));
        }
        else
        {
            SetString(ctx, key, Lookup(ctx, key), 2, -1, keepTtl: false);
        }

        if (ctx.Aof is not null) ctx.Log(ctx.Command);
        Changed(ctx, key, KvEventClass.String, "set");
        ctx.Reply.WriteOk();
    }

    /// <summary>Sets <paramref name="key"/> to the string argument <paramref name="valueIndex"/> of the command whatever
    /// the key held (as <see cref="SetKey"/>): the value is copied once from the command into the packed row or the row's
    /// own array, or overwritten in place when the key holds a string of the same length nobody else holds
    /// (<see cref="KvDatabase.ReplaceLongString"/>); a large argument received into an array of its own is adopted
    /// without a copy (never in place: the command may still hold it).</summary>
    /// <param name="ctx">The command.</param>
    /// <param name="key">The key.</param>
    /// <param name="e">The live entry for the key (any type), or null.</param>
    /// <param name="valueIndex">The argument holding the value.</param>
    /// <param name="expireAt">The new expiry (-1: none), unless <paramref name="keepTtl"/>.</param>
    /// <param name="keepTtl">Keep the key's current expiry.</param>
    private KvEntry SetString(in Context ctx, ReadOnlySpan<byte> key, KvEntry? e, int valueIndex, long expireAt, bool keepTtl)
    {
        if (ctx.Command.HasOwnArray(valueIndex)) return SetKey(ctx, key, e, ctx.Command.ToSharedArray(valueIndex), expireAt, keepTtl);
        ReadOnlySpan<byte> value = ctx[valueIndex];
        bool packed = value.Length <= KvDatabase.PackedValueMaxBytes;
        KvDatabase db = ctx.Db;
        if (e is null)
        {
            if (db.Lookup.TryGetValue(key, out KvEntry? stale)) db.Remove(stale); // an expired entry nobody removed yet
            return OnKeyAdded(db, key, packed ? db.AddPackedString(key, value, expireAt) : db.AddLongString(key, value, expireAt));
        }
        if (packed) db.ReplacePackedString(e, value);
        else db.ReplaceLongString(e, value);
        if (!keepTtl) db.SetExpire(e, expireAt);
        return e;
    }

    /// <summary>SET key value [PXAT ms | KEEPTTL], the form SET, SETEX and PSETEX are logged in, built from spans (one
    /// copy of the value, into the command).</summary>
    private static KvCommand SetCommand(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long expireAt, bool keepTtl)
    {
        Span<byte> number = stackalloc byte[20];
        ReadOnlySpan<byte> option = default;
        scoped ReadOnlySpan<byte> argument = default;
        int count = 3;
        if (expireAt >= 0)
        {
            option = "PXAT"u8;
            expireAt.TryFormat(number, out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
            argument = number[..written];
            count = 5;
        }
        else if (keepTtl)
        {
            option = "KEEPTTL"u8;
            count = 4;
        }
        return KvCommand.Create(count, "SET"u8, key, value, option, argument);
    }
}
