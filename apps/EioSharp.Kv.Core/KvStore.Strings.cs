using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const KvCommandFlags W = KvCommandFlags.Write;
    private const KvCommandFlags R = KvCommandFlags.ReadOnly;

    /// <summary>The string commands.</summary>
    internal static readonly KvCommandInfo[] StringCommands =
    [
        KvCommandTable.Data("get", 2, R, 1, 1, 1, static (s, in c) => s.Get(c)),
        KvCommandTable.Data("getex", -2, W, 1, 1, 1, static (s, in c) => s.GetEx(c)),
        KvCommandTable.Data("set", -3, W, 1, 1, 1, static (s, in c) => s.Set(c)),
        KvCommandTable.Data("setnx", 3, W, 1, 1, 1, static (s, in c) => s.SetNx(c)),
        KvCommandTable.Data("setex", 4, W, 1, 1, 1, static (s, in c) => s.SetEx(c, seconds: true)),
        KvCommandTable.Data("psetex", 4, W, 1, 1, 1, static (s, in c) => s.SetEx(c, seconds: false)),
        KvCommandTable.Data("getset", 3, W, 1, 1, 1, static (s, in c) => s.GetSet(c)),
        KvCommandTable.Data("getdel", 2, W, 1, 1, 1, static (s, in c) => s.GetDel(c)),
        KvCommandTable.Data("mget", -2, R, 1, -1, 1, static (s, in c) => s.MGet(c)),
        KvCommandTable.Data("mset", -3, W, 1, -1, 2, static (s, in c) => s.MSet(c, nx: false)),
        KvCommandTable.Data("msetnx", -3, W, 1, -1, 2, static (s, in c) => s.MSet(c, nx: true)),
        KvCommandTable.Data("incr", 2, W, 1, 1, 1, static (s, in c) => s.IncrBy(c, 1, fromArgument: false)),
        KvCommandTable.Data("decr", 2, W, 1, 1, 1, static (s, in c) => s.IncrBy(c, -1, fromArgument: false)),
        KvCommandTable.Data("incrby", 3, W, 1, 1, 1, static (s, in c) => s.IncrBy(c, 1, fromArgument: true)),
        KvCommandTable.Data("decrby", 3, W, 1, 1, 1, static (s, in c) => s.IncrBy(c, -1, fromArgument: true)),
        KvCommandTable.Data("incrbyfloat", 3, W, 1, 1, 1, static (s, in c) => s.IncrByFloat(c)),
        KvCommandTable.Data("append", 3, W, 1, 1, 1, static (s, in c) => s.Append(c)),
        KvCommandTable.Data("strlen", 2, R, 1, 1, 1, static (s, in c) => s.StrLen(c)),
        KvCommandTable.Data("getrange", 4, R, 1, 1, 1, static (s, in c) => s.GetRange(c)),
        KvCommandTable.Data("substr", 4, R, 1, 1, 1, static (s, in c) => s.GetRange(c)),
        KvCommandTable.Data("setrange", 4, W, 1, 1, 1, static (s, in c) => s.SetRange(c)),
    ];

    private static bool Is(ReadOnlySpan<byte> arg, ReadOnlySpan<byte> upperName) => Ascii.EqualsIgnoreCase(arg, upperName);

    private static byte[] Str(KvEntry e) => (byte[])e.Value;

    private void Get(in Context ctx)
    {
        // A live string key by row (the steady state of a GET load): LookupRead's hit, the access recorded through the
        // row (TouchRow), the value in place (packed in its page or a long string's own array): no KvEntry
        // per request (issue 14). A missing, expired or other-type key: the general path's counts and replies.
        if (!TryReadString(ctx, ctx[1], read: true, out bool exists, out ReadOnlySpan<byte> value)) return;
        if (!exists) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(value);
    }

    private void GetEx(in Context ctx)
    {
        // Redis's order: the options' shape, then the key (nil, WRONGTYPE), then the expire value.
        long expireAt = -1, unit = 1;
        bool persist = false, relative = false;
        int expireIndex = -1;
        for (int j = 2; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            bool hasNext = j + 1 < ctx.Count;
            if (Is(opt, "PERSIST"u8) && expireIndex < 0)
            {
                persist = true;
            }
            else if (!persist && expireIndex < 0 && hasNext && (Is(opt, "EX"u8) || Is(opt, "PX"u8) || Is(opt, "EXAT"u8) || Is(opt, "PXAT"u8)))
            {
                unit = Is(opt, "EX"u8) || Is(opt, "EXAT"u8) ? 1000 : 1;
                relative = Is(opt, "EX"u8) || Is(opt, "PX"u8);
                expireIndex = ++j;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        bool hasExpire = expireIndex >= 0;
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupString(ctx, key, read: true, out KvEntry? e)) return;
        if (e is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        if (hasExpire && !TryGetExpireAt(ctx, expireIndex, unit, relative, out expireAt)) return;
        if (hasExpire)
        {
            if (expireAt <= ctx.Now)
            {
                DeleteKey(ctx, e);
                ctx.Log("DEL"u8.ToArray(), e.Key);
                Changed(ctx, key, KvEventClass.Generic, "del");
            }
            else
            {
                ctx.Db.SetExpire(e, expireAt);
                ctx.Log("PEXPIREAT"u8.ToArray(), e.Key, Bytes(expireAt));
                Changed(ctx, key, KvEventClass.Generic, "expire");
            }
        }
        else if (persist && e.ExpireAt >= 0)
        {
            ctx.Db.SetExpire(e, -1);
            ctx.Log("PERSIST"u8.ToArray(), e.Key);
            Changed(ctx, key, KvEventClass.Generic, "persist");
        }
        ctx.Reply.WriteBulkString(e.StringSpan); // unchanged (a removed handle keeps its value)
    }

    private void Set(in Context ctx)
    {
        if (ctx.Count == 3 && !ctx.Command.HasOwnArray(2)) // a large argument's own array is adopted below, not copied
        {
            SetPlain(ctx); // KvStore.StringFastPath.cs
            return;
        }

        bool nx = false, xx = false, get = false, keepTtl = false;
        int expireIndex = -1;
        long unit = 1;
        bool relative = false;
        for (int j = 3; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            bool hasNext = j + 1 < ctx.Count;
            bool hasExpire = expireIndex >= 0;
            if (Is(opt, "NX"u8) && !xx) nx = true;
            else if (Is(opt, "XX"u8) && !nx) xx = true;
            else if (Is(opt, "GET"u8)) get = true;
            else if (Is(opt, "KEEPTTL"u8) && !hasExpire) keepTtl = true;
            else if (!keepTtl && !hasExpire && hasNext && (Is(opt, "EX"u8) || Is(opt, "PX"u8) || Is(opt, "EXAT"u8) || Is(opt, "PXAT"u8)))
            {
                unit = Is(opt, "EX"u8) || Is(opt, "EXAT"u8) ? 1000 : 1;
                relative = Is(opt, "EX"u8) || Is(opt, "PX"u8);
                expireIndex = ++j;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        long expireAt = -1;
        if (expireIndex >= 0 && !TryGetExpireAt(ctx, expireIndex, unit, relative, out expireAt)) return;

        ReadOnlySpan<byte> key = ctx[1];
        KvEntry? e;
        if (get)
        {
            if (!TryLookupString(ctx, key, read: true, out e)) return;
            if (e is not null) Touch(e); // Redis reads (getGenericCommand), then looks the key up for the write: two accesses
        }
        else
        {
            e = Lookup(ctx, key);
        }
        // Only SET ... GET takes the old value (a reference: that key's next write allocates); without GET the value is
        // written in place when it has the old one's length (SetString).
        byte[]? old = get && e is not null && e.IsString ? (byte[])e.Value : null; // null for another type
        if ((nx && e is not null) || (xx && e is null))
        {
            if (old is not null) ctx.Reply.WriteBulkString(old);
            else ctx.Reply.WriteNullBulkString();
            return;
        }
        SetString(ctx, key, e, 2, expireAt, keepTtl); // KvStore.StringFastPath.cs
        if (ctx.Aof is not null)
        {
            bool plain = ctx.Count == 3;
            ctx.Log(plain ? ctx.Command : SetCommand(key, ctx[2], expireAt, keepTtl && expireAt < 0));
        }
        Changed(ctx, key, KvEventClass.String, "set");
        if (expireAt >= 0) Changed(ctx, key, KvEventClass.Generic, "expire");
        if (get)
        {
            if (old is null) ctx.Reply.WriteNullBulkString();
            else ctx.Reply.WriteBulkString(old);
        }
        else
        {
            ctx.Reply.WriteOk();
        }
    }

    // Redis's getExpireMillisecondsOrReply: positive, no overflow, made absolute.
    private static bool TryGetExpireAt(in Context ctx, int index, long unit, bool relative, out long expireAt)
    {
        expireAt = -1;
        if (!TryGetInt64(ctx, index, out long value)) return false;
        if (value <= 0 || (unit == 1000 && value > long.MaxValue / 1000))
        {
            ctx.Reply.WriteError(KvErrors.InvalidExpireTime(ctx.Name));
            return false;
        }
        value *= unit;
        if (relative)
        {
            if (value > long.MaxValue - ctx.Now)
            {
                ctx.Reply.WriteError(KvErrors.InvalidExpireTime(ctx.Name));
                return false;
            }
            value += ctx.Now;
        }
        expireAt = value;
        return true;
    }

    private void SetNx(in Context ctx)
    {
        if (Lookup(ctx, ctx[1]) is not null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        SetString(ctx, ctx[1], null, 2, -1, keepTtl: false);
        ctx.LogSelf();
        Changed(ctx, ctx[1], KvEventClass.String, "set");
        ctx.Reply.WriteInteger(1);
    }

    private void SetEx(in Context ctx, bool seconds)
    {
        if (!TryGetExpireAt(ctx, 2, seconds ? 1000 : 1, relative: true, out long expireAt)) return;
        ReadOnlySpan<byte> key = ctx[1];
        SetString(ctx, key, Lookup(ctx, key), 3, expireAt, keepTtl: false);
        if (ctx.Aof is not null) ctx.Log(SetCommand(key, ctx[3], expireAt, keepTtl: false));
        Changed(ctx, key, KvEventClass.String, "set");
        Changed(ctx, key, KvEventClass.Generic, "expire");
        ctx.Reply.WriteOk();
    }

    private void GetSet(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupString(ctx, key, read: true, out KvEntry? e)) return;
        if (e is not null) Touch(e); // getGenericCommand's access, then setKey's lookupKeyWrite: two, as in Redis
        byte[]? old = (byte[]?)e?.Value;
        byte[] value = ctx.Command.ToSharedArray(2);
        SetKey(ctx, key, e, value, -1, keepTtl: false);
        if (ctx.Aof is not null) ctx.Log(SetCommand(key, value, -1, keepTtl: false));
        Changed(ctx, key, KvEventClass.String, "set");
        if (old is null) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(old);
    }

    private void GetDel(in Context ctx)
    {
        if (!TryLookupString(ctx, ctx[1], read: true, out KvEntry? e)) return;
        if (e is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        DeleteKey(ctx, e);
        ctx.Log("DEL"u8.ToArray(), e.Key);
        Changed(ctx, e.Key, KvEventClass.Generic, "del");
        ctx.Reply.WriteBulkString(e.StringSpan); // the removed handle keeps its value
    }

    private void MGet(in Context ctx)
    {
        ctx.Reply.WriteArrayHeader(ctx.Count - 1);
        KvDatabase db = ctx.Db;
        for (int i = 1; i < ctx.Count; i++)
        {
            // A live key by row (a hit, of any type, as LookupRead counts it), no handle per key (issue 14); a missing or
            // expired one through LookupRead (expiry, miss), which finds nothing.
            int row = LiveRow(ctx, ctx[i], read: true);
            if (row < 0)
            {
                LookupRead(ctx, ctx[i]);
                ctx.Reply.WriteNullBulkString();
                continue;
            }
            object item = db.ItemAt(row);
            if (item is not KvKeyedValue kv) ctx.Reply.WriteBulkString(KvDatabase.PackedValue((byte[])item, db.PosAt(row))); // in place
            else if (kv.Value is byte[] s) ctx.Reply.WriteBulkString(s);
            else ctx.Reply.WriteNullBulkString(); // another type: nil, as Redis
        }
    }

    private void MSet(in Context ctx, bool nx)
    {
        if (ctx.Count % 2 == 0)
        {
            ctx.Reply.WriteError(KvErrors.WrongArity(ctx.Name));
            return;
        }
        KvDatabase db = ctx.Db;
        if (nx)
        {
            for (int i = 1; i < ctx.Count; i += 2)
            {
                int row = db.RowOf(ctx[i]); // a live key by row; an expired one through Lookup, which removes it
                if (row >= 0 && (IsLiveRow(db, row, ctx.Now) || Lookup(ctx, ctx[i]) is not null))
                {
                    TouchRow(db, row); // lookupKeyWrite found it: the access is recorded
                    ctx.Reply.WriteInteger(0);
                    return;
                }
            }
        }
        for (int i = 1; i < ctx.Count; i += 2)
        {
            ReadOnlySpan<byte> key = ctx[i];
            int row;
            if (!ctx.Command.HasOwnArray(i + 1) && ctx[i + 1].Length <= KvDatabase.PackedValueMaxBytes &&
                (row = db.RowOf(key)) >= 0 && IsLiveRow(db, row, ctx.Now))
            {
                // A live key and a short value: SetString's effects by row, as SET's fast path (no KvEntry per key).
                TouchRow(db, row); // setKey's lookupKeyWrite records the access
                db.ReplacePackedStringRow(row, ctx[i + 1]);
                db.ClearExpireRow(row);
            }
            else
            {
                SetString(ctx, key, Lookup(ctx, key), i + 1, -1, keepTtl: false);
            }
        }
        ctx.LogSelf();
        for (int i = 1; i < ctx.Count; i += 2) Changed(ctx, ctx[i], KvEventClass.String, "set");
        if (nx) ctx.Reply.WriteInteger(1);
        else ctx.Reply.WriteOk();
    }

    private void IncrBy(in Context ctx, long sign, bool fromArgument)
    {
        long increment = 1;
        if (fromArgument && !TryGetInt64(ctx, 2, out increment)) return;
        if (sign < 0)
        {
            if (increment == long.MinValue)
            {
                ctx.Reply.WriteError(KvErrors.DecrementOverflow);
                return;
            }
            increment = -increment;
        }
        ReadOnlySpan<byte> key = ctx[1];
        KvDatabase db = ctx.Db;
        KvEntry? e = null;
        long current = 0;
        int row = db.RowOf(key);
        long expireAt;
        bool packedRow = row >= 0 && ((expireAt = db.ExpireAtOf(row)) < 0 || ctx.Now <= expireAt) && db.ItemAt(row) is byte[];
        if (packedRow)
        {
            // A live key holding a packed string (the steady state of an INCR load): read by row, no KvEntry handle;
            // the access recorded (lookupKeyWrite).
            TouchRow(db, row);
            if (!RespNumbers.TryParseInt64(KvDatabase.PackedValue((byte[])db.ItemAt(row), db.PosAt(row)), out current))
            {
                ctx.Reply.WriteError(KvErrors.NotInteger);
                return;
            }
        }
        else
        {
            if (!TryLookupString(ctx, key, read: false, out e)) return;
            if (e is not null && !RespNumbers.TryParseInt64(e.StringSpan, out current))
            {
                ctx.Reply.WriteError(KvErrors.NotInteger);
                return;
            }
        }
        if ((increment < 0 && current < 0 && increment < long.MinValue - current) ||
            (increment > 0 && current > 0 && increment > long.MaxValue - current))
        {
            ctx.Reply.WriteError(KvErrors.Overflow);
            return;
        }
        long result = current + increment;
        if (!packedRow && e is null)
        {
            SetKey(ctx, key, e, Bytes(result), -1, keepTtl: true);
        }
        else
        {
            // The key holds a string: the new digits go into its packed row, in place when the length is the same (no
            // string, no array per INCR); as SetKey with the digits' array, the TTL kept.
            Span<byte> digits = stackalloc byte[20];
            result.TryFormat(digits, out int written, provider: CultureInfo.InvariantCulture);
            if (packedRow) db.ReplacePackedStringRow(row, digits[..written]);
            else db.ReplacePackedString(e!, digits[..written]);
        }
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.String, "incrby");
        ctx.Reply.WriteInteger(result);
    }

    private void IncrByFloat(in Context ctx)
    {
        // Redis's order: the key's type, then both numbers (strtold: x87 long double), then the sum's finiteness.
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupString(ctx, key, read: false, out KvEntry? e)) return;
        LongDouble current = default;
        if ((e is not null && !LongDouble.TryParse(e.StringSpan, out current)) || !LongDouble.TryParse(ctx[2], out LongDouble increment))
        {
            ctx.Reply.WriteError(KvErrors.NotFloat);
            return;
        }
        LongDouble result = current + increment;
        if (result.IsInfinity || result.IsNaN)
        {
            ctx.Reply.WriteError(KvErrors.NaNOrInfinity);
            return;
        }
        string text = result.ToHumanString();
        byte[] value = Encoding.ASCII.GetBytes(text);
        SetKey(ctx, key, e, value, -1, keepTtl: true).StringEncoding = KvStringEncoding.NotInt;
        if (ctx.Aof is not null) ctx.Log(SetCommand(key, value, -1, keepTtl: true));
        Changed(ctx, key, KvEventClass.String, "incrbyfloat");
        ctx.Reply.WriteBulkString(value);
    }


    private void Append(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        ReadOnlySpan<byte> suffix = ctx[2];
        if (!TryLookupString(ctx, key, read: false, out KvEntry? e)) return;
        if (e is null)
        {
            AddKey(ctx, key, suffix.ToArray());
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.String, "append");
            ctx.Reply.WriteInteger(suffix.Length);
            return;
        }
        ReadOnlySpan<byte> current = e.StringSpan;
        long length = (long)current.Length + suffix.Length;
        if (length > Limits.MaxBulkLength || length > Array.MaxLength)
        {
            ctx.Reply.WriteError(KvErrors.StringTooLong);
            return;
        }
        if (suffix.Length > 0)
        {
            var value = new byte[length];
            current.CopyTo(value);
            suffix.CopyTo(value.AsSpan(current.Length));
            SetKey(ctx, key, e, value, -1, keepTtl: true);
        }
        e.StringEncoding = KvStringEncoding.Raw; // Redis unshares the value as a raw string, even for an empty suffix
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.String, "append");
        ctx.Reply.WriteInteger(length);
    }

    private void StrLen(in Context ctx)
    {
        if (!TryReadString(ctx, ctx[1], read: true, out bool exists, out ReadOnlySpan<byte> value)) return;
        ctx.Reply.WriteInteger(exists ? value.Length : 0);
    }

    private void GetRange(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long start) || !TryGetInt64(ctx, 3, out long end)) return;
        if (!TryReadString(ctx, ctx[1], read: true, out bool exists, out ReadOnlySpan<byte> value)) return;
        if (!exists)
        {
            ctx.Reply.WriteBulkString([]);
            return;
        }
        long length = value.Length;
        if (start < 0 && end < 0 && start > end)
        {
            ctx.Reply.WriteBulkString([]);
            return;
        }
        if (start < 0) start = length + start;
        if (end < 0) end = length + end;
        if (start < 0) start = 0;
        if (end < 0) end = 0;
        if (end >= length) end = length - 1;
        if (start > end || length == 0)
        {
            ctx.Reply.WriteBulkString([]);
            return;
        }
        ctx.Reply.WriteBulkString(value.Slice((int)start, (int)(end - start + 1)));
    }

    private void SetRange(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long offset)) return;
        if (offset < 0)
        {
            ctx.Reply.WriteError(KvErrors.OffsetOutOfRange);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        ReadOnlySpan<byte> patch = ctx[3];
        if (!TryLookupString(ctx, key, read: false, out KvEntry? e)) return;
        int currentLength = e is null ? 0 : e.StringSpan.Length;
        if (patch.Length == 0)
        {
            // Nothing to write: no key is created and nothing is logged.
            ctx.Reply.WriteInteger(currentLength);
            return;
        }
        if (offset > Limits.MaxBulkLength - patch.Length || offset > Array.MaxLength - patch.Length)
        {
            ctx.Reply.WriteError(KvErrors.StringTooLong);
            return;
        }
        var value = new byte[Math.Max(currentLength, offset + patch.Length)];
        if (e is not null) e.StringSpan.CopyTo(value);
        patch.CopyTo(value.AsSpan((int)offset));
        SetKey(ctx, key, e, value, -1, keepTtl: true).StringEncoding = KvStringEncoding.Raw;
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.String, "setrange");
        ctx.Reply.WriteInteger(value.Length);
    }
}
