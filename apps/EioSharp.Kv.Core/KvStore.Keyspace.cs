using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    /// <summary>The generic key commands.</summary>
    internal static readonly KvCommandInfo[] KeyspaceCommands =
    [
        KvCommandTable.Data("del", -2, W, 1, -1, 1, static (s, in c) => s.Del(c)),
        KvCommandTable.Data("unlink", -2, W, 1, -1, 1, static (s, in c) => s.Del(c)),
        KvCommandTable.Data("exists", -2, R, 1, -1, 1, static (s, in c) => s.Exists(c)),
        KvCommandTable.Data("type", 2, R, 1, 1, 1, static (s, in c) => s.TypeCommand(c)),
        KvCommandTable.Data("expire", -3, W, 1, 1, 1, static (s, in c) => s.Expire(c, 1000, relative: true)),
        KvCommandTable.Data("pexpire", -3, W, 1, 1, 1, static (s, in c) => s.Expire(c, 1, relative: true)),
        KvCommandTable.Data("expireat", -3, W, 1, 1, 1, static (s, in c) => s.Expire(c, 1000, relative: false)),
        KvCommandTable.Data("pexpireat", -3, W, 1, 1, 1, static (s, in c) => s.Expire(c, 1, relative: false)),
        KvCommandTable.Data("expiretime", 2, R, 1, 1, 1, static (s, in c) => s.ExpireTime(c, milliseconds: false)),
        KvCommandTable.Data("pexpiretime", 2, R, 1, 1, 1, static (s, in c) => s.ExpireTime(c, milliseconds: true)),
        KvCommandTable.Data("ttl", 2, R, 1, 1, 1, static (s, in c) => s.Ttl(c, milliseconds: false)),
        KvCommandTable.Data("pttl", 2, R, 1, 1, 1, static (s, in c) => s.Ttl(c, milliseconds: true)),
        KvCommandTable.Data("persist", 2, W, 1, 1, 1, static (s, in c) => s.Persist(c)),
        KvCommandTable.Data("keys", 2, R, 0, 0, 0, static (s, in c) => s.Keys(c)),
        KvCommandTable.Data("scan", -2, R, 0, 0, 0, static (s, in c) => s.Scan(c)),
        KvCommandTable.Data("randomkey", 1, R, 0, 0, 0, static (s, in c) => s.RandomKey(c)),
        KvCommandTable.Data("rename", 3, W, 1, 2, 1, static (s, in c) => s.Rename(c, nx: false)),
        KvCommandTable.Data("renamenx", 3, W, 1, 2, 1, static (s, in c) => s.Rename(c, nx: true)),
    ];

    /// <summary>TYPE's name of a type.</summary>
    internal static string TypeName(KvType type) => type switch
    {
        KvType.String => "string",
        KvType.List => "list",
        KvType.Set => "set",
        KvType.ZSet => "zset",
        KvType.Hash => "hash",
        _ => "stream",
    };

    private void TypeCommand(in Context ctx)
    {
        KvEntry? e = Lookup(ctx, ctx[1]);
        ctx.Reply.WriteSimpleString(e is null ? "none" : TypeName(e.Type));
    }

    private void Del(in Context ctx)
    {
        List<byte[]>? deleted = null;
        for (int i = 1; i < ctx.Count; i++)
        {
            KvEntry? e = Lookup(ctx, ctx[i]);
            if (e is null) continue;
            DeleteKey(ctx, e);
            Changed(ctx, e.Key, KvEventClass.Generic, "del");
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
            if (Lookup(ctx, ctx[i]) is not null) n++;
        ctx.Reply.WriteInteger(n);
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
        KvEntry? e = Lookup(ctx, key);
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
            DeleteKey(ctx, e);
            ctx.Log("DEL"u8.ToArray(), e.Key);
            Changed(ctx, e.Key, KvEventClass.Generic, "del");
        }
        else
        {
            ctx.Db.SetExpire(e, when);
            ctx.Log("PEXPIREAT"u8.ToArray(), e.Key, Bytes(when));
            Changed(ctx, e.Key, KvEventClass.Generic, "expire");
        }
        ctx.Reply.WriteInteger(1);
    }

    private void ExpireTime(in Context ctx, bool milliseconds)
    {
        KvEntry? e = Lookup(ctx, ctx[1]);
        if (e is null) ctx.Reply.WriteInteger(-2);
        else if (e.ExpireAt < 0) ctx.Reply.WriteInteger(-1);
        else ctx.Reply.WriteInteger(milliseconds ? e.ExpireAt : (e.ExpireAt + 500) / 1000);
    }

    private void Ttl(in Context ctx, bool milliseconds)
    {
        KvEntry? e = LookupRead(ctx, ctx[1]);
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
        KvEntry? e = Lookup(ctx, ctx[1]);
        if (e is null || e.ExpireAt < 0)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        ctx.Db.SetExpire(e, -1);
        ctx.LogSelf();
        Changed(ctx, e.Key, KvEventClass.Generic, "persist");
        ctx.Reply.WriteInteger(1);
    }

    private void Keys(in Context ctx)
    {
        ReadOnlySpan<byte> pattern = ctx[1];
        bool all = GlobPattern.MatchesAll(pattern);
        var keys = new List<byte[]>();
        KvDatabase db = ctx.Db;
        for (int i = 0; i < db.SlotCount; i++)
        {
            KvEntry? e = db.Slots[i];
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
        string? type = null;
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
                type = Encoding.ASCII.GetString(ctx[j + 1]).ToLowerInvariant();
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }

        KvDatabase db = ctx.Db;
        long mask = (1L << KvDatabase.ScanCursorIndexBits) - 1;
        long index = (long)cursor & mask;
        long epoch = (long)cursor >> KvDatabase.ScanCursorIndexBits;
        if (cursor != 0 && epoch != db.Epoch) index = 0; // the table was compacted: restart (duplicates allowed, no misses)
        var keys = new List<byte[]>();
        long examined = 0, visited = 0;
        long maxVisited = Math.Max(count, count * 10); // bounds work on a sparse table
        while (index < db.SlotCount && examined < count && visited < maxVisited)
        {
            KvEntry? e = db.Slots[index++];
            visited++;
            if (e is null) continue;
            examined++;
            if (IsExpired(e, ctx.Now))
            {
                ExpireNow(db, e);
                continue;
            }
            if (type is not null && TypeName(e.Type) != type) continue;
            if (pattern is null || GlobPattern.IsMatch(pattern, e.Key)) keys.Add(e.Key);
        }
        long next = index >= db.SlotCount ? 0 : (db.Epoch << KvDatabase.ScanCursorIndexBits) | index;
        ctx.Reply.WriteArrayHeader(2);
        ctx.Reply.WriteBulkString(next.ToString(CultureInfo.InvariantCulture));
        ctx.Reply.WriteArrayHeader(keys.Count);
        foreach (byte[] key in keys) ctx.Reply.WriteBulkString(key);
    }

    private void RandomKey(in Context ctx)
    {
        KvDatabase db = ctx.Db;
        for (int attempt = 0; attempt < 100 && db.Count > 0; attempt++)
        {
            KvEntry? e;
            do e = db.Slots[_random.Next(db.SlotCount)];
            while (e is null);
            if (IsExpired(e, ctx.Now) && attempt < 99)
            {
                ExpireNow(db, e);
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
        KvEntry? e = Lookup(ctx, source);
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
        KvEntry? target = Lookup(ctx, destination);
        if (target is not null)
        {
            if (nx)
            {
                ctx.Reply.WriteInteger(0);
                return;
            }
            DeleteKey(ctx, target);
        }
        long expireAt = e.ExpireAt;
        DeleteKey(ctx, e);
        AddKey(ctx, destination, e.Value, expireAt);
        ctx.LogSelf();
        Changed(ctx, source, KvEventClass.Generic, "rename_from");
        Changed(ctx, destination, KvEventClass.Generic, "rename_to");
        if (nx) ctx.Reply.WriteInteger(1);
        else ctx.Reply.WriteOk();
    }
}
