using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private static bool Is(ReadOnlySpan<byte> arg, ReadOnlySpan<byte> upperName) => Ascii.EqualsIgnoreCase(arg, upperName);

    private void Flush(in Context ctx)
    {
        if (ctx.Count > 2 || (ctx.Count == 2 && !Is(ctx[1], "ASYNC"u8) && !Is(ctx[1], "SYNC"u8)))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        Clear();
        ctx.LogSelf();
        ctx.Reply.WriteOk();
    }

    private void Get(in Context ctx)
    {
        Entry? e = LookupRead(ctx[1], ctx.Now);
        if (e is null) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(e.Value);
    }

    private void Set(in Context ctx)
    {
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
        Entry? e = get ? LookupRead(key, ctx.Now) : Lookup(key, ctx.Now);
        byte[]? old = e?.Value;
        if ((nx && e is not null) || (xx && e is null))
        {
            if (get && old is not null) ctx.Reply.WriteBulkString(old);
            else ctx.Reply.WriteNullBulkString();
            return;
        }
        byte[] value = ctx.Command.ToArray(2);
        Store(key, e, value, expireAt, keepTtl);
        if (ctx.Aof is not null)
        {
            bool plain = ctx.Count == 3;
            ctx.Log(plain ? ctx.Command : SetCommand(key, value, expireAt, keepTtl && expireAt < 0));
        }
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
        if (Lookup(ctx[1], ctx.Now) is not null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        Store(ctx[1], null, ctx.Command.ToArray(2), -1, keepTtl: false);
        ctx.LogSelf();
        ctx.Reply.WriteInteger(1);
    }

    private void SetEx(in Context ctx, bool seconds)
    {
        if (!TryGetExpireAt(ctx, 2, seconds ? 1000 : 1, relative: true, out long expireAt)) return;
        ReadOnlySpan<byte> key = ctx[1];
        byte[] value = ctx.Command.ToArray(3);
        Store(key, Lookup(key, ctx.Now), value, expireAt, keepTtl: false);
        if (ctx.Aof is not null) ctx.Log(SetCommand(key, value, expireAt, keepTtl: false));
        ctx.Reply.WriteOk();
    }

    private void GetSet(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        Entry? e = LookupRead(key, ctx.Now);
        byte[]? old = e?.Value;
        byte[] value = ctx.Command.ToArray(2);
        Store(key, e, value, -1, keepTtl: false);
        if (ctx.Aof is not null) ctx.Log(SetCommand(key, value, -1, keepTtl: false));
        if (old is null) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(old);
    }

    private void GetDel(in Context ctx)
    {
        Entry? e = LookupRead(ctx[1], ctx.Now);
        if (e is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        Remove(e);
        if (ctx.Aof is not null) ctx.Log(KvCommand.Create("DEL"u8.ToArray(), e.Key));
        ctx.Reply.WriteBulkString(e.Value);
    }

    private void MGet(in Context ctx)
    {
        ctx.Reply.WriteArrayHeader(ctx.Count - 1);
        for (int i = 1; i < ctx.Count; i++)
        {
            Entry? e = LookupRead(ctx[i], ctx.Now);
            if (e is null) ctx.Reply.WriteNullBulkString();
            else ctx.Reply.WriteBulkString(e.Value);
        }
    }

    private void MSet(in Context ctx, bool nx)
    {
        if (ctx.Count % 2 == 0)
        {
            ctx.Reply.WriteError(KvErrors.WrongArity(ctx.Name));
            return;
        }
        if (nx)
        {
            for (int i = 1; i < ctx.Count; i += 2)
            {
                if (Lookup(ctx[i], ctx.Now) is not null)
                {
                    ctx.Reply.WriteInteger(0);
                    return;
                }
            }
        }
        for (int i = 1; i < ctx.Count; i += 2)
            Store(ctx[i], Lookup(ctx[i], ctx.Now), ctx.Command.ToArray(i + 1), -1, keepTtl: false);
        ctx.LogSelf();
        if (nx) ctx.Reply.WriteInteger(1);
        else ctx.Reply.WriteOk();
    }

    private void Del(in Context ctx)
    {
        List<byte[]>? deleted = null;
        for (int i = 1; i < ctx.Count; i++)
        {
            Entry? e = Lookup(ctx[i], ctx.Now);
            if (e is null) continue;
            Remove(e);
            (deleted ??= [(byte[])[.. ctx[0]]]).Add(e.Key);
        }
        if (deleted is not null && ctx.Aof is not null)
            ctx.Log(deleted.Count == ctx.Count ? ctx.Command : KvCommand.Create(deleted.ToArray()));
        ctx.Reply.WriteInteger(deleted is null ? 0 : deleted.Count - 1);
    }

    private void Exists(in Context ctx)
    {
        long n = 0;
        for (int i = 1; i < ctx.Count; i++)
            if (Lookup(ctx[i], ctx.Now) is not null) n++;
        ctx.Reply.WriteInteger(n);
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
        Entry? e = Lookup(key, ctx.Now);
        long current = 0;
        if (e is not null && !RespNumbers.TryParseInt64(e.Value, out current))
        {
            ctx.Reply.WriteError(KvErrors.NotInteger);
            return;
        }
        if ((increment < 0 && current < 0 && increment < long.MinValue - current) ||
            (increment > 0 && current > 0 && increment > long.MaxValue - current))
        {
            ctx.Reply.WriteError(KvErrors.Overflow);
            return;
        }
        long result = current + increment;
        Store(key, e, Bytes(result), -1, keepTtl: true);
        ctx.LogSelf();
        ctx.Reply.WriteInteger(result);
    }

    private void IncrByFloat(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!RespNumbers.TryParseDouble(ctx[2], out double increment))
        {
            ctx.Reply.WriteError(KvErrors.NotFloat);
            return;
        }
        Entry? e = Lookup(key, ctx.Now);
        double current = 0;
        if (e is not null && !RespNumbers.TryParseDouble(e.Value, out current))
        {
            ctx.Reply.WriteError(KvErrors.NotFloat);
            return;
        }
        string text;
        // Redis adds in long double and prints 17 decimals, so 0.1 + 0.2 shows as 0.3. Decimal
        // arithmetic gives the same human result when both numbers fit; double is the fallback.
        decimal currentDecimal = 0;
        if ((e is null || RespNumbers.TryParseDecimal(e.Value, out currentDecimal)) &&
            RespNumbers.TryParseDecimal(ctx[2], out decimal incrementDecimal) &&
            TryAddDecimal(currentDecimal, incrementDecimal, out decimal sum))
        {
            text = RespNumbers.FormatHuman(sum);
        }
        else
        {
            double result = current + increment;
            if (double.IsNaN(result) || double.IsInfinity(result))
            {
                ctx.Reply.WriteError(KvErrors.NaNOrInfinity);
                return;
            }
            text = RespNumbers.FormatHuman(result);
        }
        byte[] value = Encoding.ASCII.GetBytes(text);
        Store(key, e, value, -1, keepTtl: true);
        if (ctx.Aof is not null) ctx.Log(SetCommand(key, value, -1, keepTtl: true));
        ctx.Reply.WriteBulkString(value);
    }

    private static bool TryAddDecimal(decimal a, decimal b, out decimal sum)
    {
        try
        {
            sum = a + b;
            return true;
        }
        catch (OverflowException)
        {
            sum = 0;
            return false;
        }
    }

    private void Append(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        ReadOnlySpan<byte> suffix = ctx[2];
        Entry? e = Lookup(key, ctx.Now);
        if (e is null)
        {
            Store(key, null, suffix.ToArray(), -1, keepTtl: false);
            ctx.LogSelf();
            ctx.Reply.WriteInteger(suffix.Length);
            return;
        }
        long length = (long)e.Value.Length + suffix.Length;
        if (length > Limits.MaxBulkLength || length > Array.MaxLength)
        {
            ctx.Reply.WriteError(KvErrors.StringTooLong);
            return;
        }
        if (suffix.Length > 0)
        {
            var value = new byte[length];
            e.Value.CopyTo(value, 0);
            suffix.CopyTo(value.AsSpan(e.Value.Length));
            Store(key, e, value, -1, keepTtl: true);
        }
        ctx.LogSelf();
        ctx.Reply.WriteInteger(length);
    }

    private void StrLen(in Context ctx)
    {
        Entry? e = LookupRead(ctx[1], ctx.Now);
        ctx.Reply.WriteInteger(e?.Value.Length ?? 0);
    }

    private void GetRange(in Context ctx)
    {
        if (!TryGetInt64(ctx, 2, out long start) || !TryGetInt64(ctx, 3, out long end)) return;
        Entry? e = LookupRead(ctx[1], ctx.Now);
        if (e is null)
        {
            ctx.Reply.WriteBulkString([]);
            return;
        }
        long length = e.Value.Length;
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
        ctx.Reply.WriteBulkString(e.Value.AsSpan((int)start, (int)(end - start + 1)));
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
        Entry? e = Lookup(key, ctx.Now);
        int currentLength = e?.Value.Length ?? 0;
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
        e?.Value.CopyTo(value, 0);
        patch.CopyTo(value.AsSpan((int)offset));
        Store(key, e, value, -1, keepTtl: true);
        ctx.LogSelf();
        ctx.Reply.WriteInteger(value.Length);
    }

    [Flags]
    private enum ExpireFlags { None = 0, Nx = 1, Xx = 2, Gt = 4, Lt = 8 }

    private void Expire(in Context ctx, long unit, bool relative)
    {
        ExpireFlags flags = ExpireFlags.None;
        for (int j = 3; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            if (Is(opt, "NX"u8)) flags |= ExpireFlags.Nx;
            else if (Is(opt, "XX"u8)) flags |= ExpireFlags.Xx;
            else if (Is(opt, "GT"u8)) flags |= ExpireFlags.Gt;
            else if (Is(opt, "LT"u8)) flags |= ExpireFlags.Lt;
            else
            {
                ctx.Reply.WriteError(KvErrors.UnsupportedOption(ctx.Command.GetString(j)));
                return;
            }
        }
        if ((flags & ExpireFlags.Nx) != 0 && (flags & (ExpireFlags.Xx | ExpireFlags.Gt | ExpireFlags.Lt)) != 0)
        {
            ctx.Reply.WriteError(KvErrors.ExpireNxAndOthers);
            return;
        }
        if ((flags & ExpireFlags.Gt) != 0 && (flags & ExpireFlags.Lt) != 0)
        {
            ctx.Reply.WriteError(KvErrors.ExpireGtAndLt);
            return;
        }
        if (!TryGetInt64(ctx, 2, out long when)) return;
        if (unit == 1000)
        {
            if (when > long.MaxValue / 1000 || when < long.MinValue / 1000)
            {
                ctx.Reply.WriteError(KvErrors.InvalidExpireTime(ctx.Name));
                return;
            }
            when *= 1000;
        }
        long basetime = relative ? ctx.Now : 0;
        if (when > long.MaxValue - basetime)
        {
            ctx.Reply.WriteError(KvErrors.InvalidExpireTime(ctx.Name));
            return;
        }
        when += basetime;

        ReadOnlySpan<byte> key = ctx[1];
        Entry? e = Lookup(key, ctx.Now);
        if (e is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        long current = e.ExpireAt;
        if (((flags & ExpireFlags.Nx) != 0 && current != -1) ||
            ((flags & ExpireFlags.Xx) != 0 && current == -1) ||
            ((flags & ExpireFlags.Gt) != 0 && (when <= current || current == -1)) ||
            ((flags & ExpireFlags.Lt) != 0 && current != -1 && when >= current))
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        if (when <= ctx.Now)
        {
            // Already expired: delete now and log a DEL, like Redis.
            Remove(e);
            if (ctx.Aof is not null) ctx.Log(KvCommand.Create("DEL"u8.ToArray(), e.Key));
        }
        else
        {
            SetExpire(e, when);
            if (ctx.Aof is not null) ctx.Log(KvCommand.Create("PEXPIREAT"u8.ToArray(), e.Key, Bytes(when)));
        }
        ctx.Reply.WriteInteger(1);
    }

    private void ExpireTime(in Context ctx, bool milliseconds)
    {
        Entry? e = Lookup(ctx[1], ctx.Now);
        if (e is null) ctx.Reply.WriteInteger(-2);
        else if (e.ExpireAt < 0) ctx.Reply.WriteInteger(-1);
        else ctx.Reply.WriteInteger(milliseconds ? e.ExpireAt : (e.ExpireAt + 500) / 1000);
    }

    private void Ttl(in Context ctx, bool milliseconds)
    {
        Entry? e = LookupRead(ctx[1], ctx.Now);
        if (e is null)
        {
            ctx.Reply.WriteInteger(-2);
            return;
        }
        if (e.ExpireAt < 0)
        {
            ctx.Reply.WriteInteger(-1);
            return;
        }
        long ttl = Math.Max(0, e.ExpireAt - ctx.Now);
        ctx.Reply.WriteInteger(milliseconds ? ttl : (ttl + 500) / 1000);
    }

    private void Persist(in Context ctx)
    {
        Entry? e = Lookup(ctx[1], ctx.Now);
        if (e is null || e.ExpireAt < 0)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        SetExpire(e, -1);
        ctx.LogSelf();
        ctx.Reply.WriteInteger(1);
    }

    private void Keys(in Context ctx)
    {
        ReadOnlySpan<byte> pattern = ctx[1];
        bool all = GlobPattern.MatchesAll(pattern);
        var keys = new List<byte[]>();
        for (int i = 0; i < _slotCount; i++)
        {
            Entry? e = _slots[i];
            if (e is null || IsExpired(e, ctx.Now)) continue;
            if (all || GlobPattern.IsMatch(pattern, e.Key)) keys.Add(e.Key);
        }
        ctx.Reply.WriteArrayHeader(keys.Count);
        foreach (byte[] key in keys) ctx.Reply.WriteBulkString(key);
    }

    /// <summary>Redis's cursor parsing (<c>strtoul</c>): optional sign (a negative cursor wraps), digits, no spaces, up to 2^64-1.</summary>
    private static bool TryParseScanCursor(ReadOnlySpan<byte> text, out ulong cursor)
    {
        cursor = 0;
        bool negative = false;
        if (text.Length > 0 && (text[0] == '-' || text[0] == '+'))
        {
            negative = text[0] == '-';
            text = text[1..];
            if (text.IsEmpty) return false;
        }
        foreach (byte b in text)
        {
            if (b is < (byte)'0' or > (byte)'9') return false;
            ulong digit = (ulong)(b - '0');
            if (cursor > (ulong.MaxValue - digit) / 10) return false; // ERANGE
            cursor = cursor * 10 + digit;
        }
        if (negative) cursor = unchecked(0UL - cursor);
        return true;
    }

    private void Scan(in Context ctx)
    {
        if (!TryParseScanCursor(ctx[1], out ulong cursor))
        {
            ctx.Reply.WriteError(KvErrors.InvalidCursor);
            return;
        }
        long count = 10;
        byte[]? pattern = null;
        bool typeMismatch = false;
        for (int j = 2; j < ctx.Count; j += 2)
        {
            if (j + 1 >= ctx.Count)
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
            ReadOnlySpan<byte> opt = ctx[j];
            if (Is(opt, "COUNT"u8))
            {
                if (!TryGetInt64(ctx, j + 1, out count)) return;
                if (count < 1)
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
            }
            else if (Is(opt, "MATCH"u8))
            {
                pattern = ctx.Command.ToArray(j + 1);
                if (GlobPattern.MatchesAll(pattern)) pattern = null;
            }
            else if (Is(opt, "TYPE"u8))
            {
                typeMismatch = !Is(ctx[j + 1], "STRING"u8);
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }

        long mask = (1L << ScanCursorIndexBits) - 1;
        long index = (long)cursor & mask;
        long epoch = (long)cursor >> ScanCursorIndexBits;
        if (cursor != 0 && epoch != _epoch) index = 0; // the table was compacted: restart (duplicates allowed, no misses)
        var keys = new List<byte[]>();
        long examined = 0, visited = 0;
        long maxVisited = Math.Max(count, count * 10); // bounds work on a sparse table
        while (index < _slotCount && examined < count && visited < maxVisited)
        {
            Entry? e = _slots[index++];
            visited++;
            if (e is null) continue;
            examined++;
            if (IsExpired(e, ctx.Now))
            {
                Remove(e);
                ExpiredKeys++;
                continue;
            }
            if (typeMismatch) continue;
            if (pattern is null || GlobPattern.IsMatch(pattern, e.Key)) keys.Add(e.Key);
        }
        long next = index >= _slotCount ? 0 : (_epoch << ScanCursorIndexBits) | index;
        ctx.Reply.WriteArrayHeader(2);
        ctx.Reply.WriteBulkString(next.ToString(CultureInfo.InvariantCulture));
        ctx.Reply.WriteArrayHeader(keys.Count);
        foreach (byte[] key in keys) ctx.Reply.WriteBulkString(key);
    }

    private void RandomKey(in Context ctx)
    {
        for (int attempt = 0; attempt < 100 && _map.Count > 0; attempt++)
        {
            Entry? e;
            do e = _slots[_random.Next(_slotCount)];
            while (e is null);
            if (IsExpired(e, ctx.Now) && attempt < 99)
            {
                Remove(e);
                ExpiredKeys++;
                continue;
            }
            ctx.Reply.WriteBulkString(e.Key);
            return;
        }
        ctx.Reply.WriteNullBulkString();
    }

    private void Rename(in Context ctx, bool nx)
    {
        ReadOnlySpan<byte> source = ctx[1];
        ReadOnlySpan<byte> destination = ctx[2];
        Entry? e = Lookup(source, ctx.Now);
        if (e is null)
        {
            ctx.Reply.WriteError(KvErrors.NoSuchKey);
            return;
        }
        if (source.SequenceEqual(destination))
        {
            if (nx) ctx.Reply.WriteInteger(0);
            else ctx.Reply.WriteOk();
            return;
        }
        Entry? target = Lookup(destination, ctx.Now);
        if (target is not null)
        {
            if (nx)
            {
                ctx.Reply.WriteInteger(0);
                return;
            }
            Remove(target);
        }
        long expireAt = e.ExpireAt;
        Remove(e);
        Store(destination, null, e.Value, expireAt, keepTtl: false);
        ctx.LogSelf();
        if (nx) ctx.Reply.WriteInteger(1);
        else ctx.Reply.WriteOk();
    }
}
