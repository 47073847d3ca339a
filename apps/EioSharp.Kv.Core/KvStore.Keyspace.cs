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
        KvCommandTable.Data("copy", -3, W, 1, 2, 1, static (s, in c) => s.Copy(c)),
        KvCommandTable.Data("touch", -2, R, 1, -1, 1, static (s, in c) => s.TouchCommand(c)),
        KvCommandTable.Data("object", -2, R, 2, 2, 1, static (s, in c) => s.ObjectCommand(c)),
        KvCommandTable.Data("memory", -2, R, 0, 0, 0, static (s, in c) => s.MemoryCommand(c)),
        KvCommandTable.Data("dump", 2, R, 1, 1, 1, static (s, in c) => s.Dump(c)),
        KvCommandTable.Data("restore", -4, W, 1, 1, 1, static (s, in c) => s.Restore(c)),
        KvCommandTable.Data("sort", -2, W, 1, 1, 1, static (s, in c) => s.Sort(c, readOnly: false)),
        KvCommandTable.Data("sort_ro", -2, R, 1, 1, 1, static (s, in c) => s.Sort(c, readOnly: true)),
    ];

    private const int EmbstrMaxBytes = 44; // Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT
    private const int SharedIntegers = 10000; // Redis's OBJ_SHARED_INTEGERS: 0..9999 are shared objects (OBJECT REFCOUNT)
    private const int SharedRefcount = int.MaxValue; // Redis's OBJ_SHARED_REFCOUNT
    private const int MemoryKeyOverheadBytes = 24 + 16; // Redis counts the key's sds and a dictEntry; ours: the entry and the key array
    private const int MemoryStringOverheadBytes = 16; // a byte[] header, like Redis's robj
    private const string LfuNotSelected = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
    private const string LfuSelected = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

    private static readonly string[] s_objectHelp =
    [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];

    private static readonly string[] s_memoryHelp =
    [
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];

    /// <summary>Whether an LFU <c>maxmemory-policy</c> is selected: OBJECT FREQ answers, OBJECT IDLETIME refuses (false: the reverse, as with noeviction).</summary>
    internal bool LfuPolicy { get; set; }

    /// <summary>Carries what Redis keeps in the value object (access time, LFU counter, string encoding) to a new entry
    /// holding the same value (RENAME, MOVE, COPY).</summary>
    internal static void CopyEntryMeta(KvEntry from, KvEntry to)
    {
        to.AccessClock = from.AccessClock;
        to.Frequency = from.Frequency;
        to.StringEncoding = from.StringEncoding;
    }

    /// <summary>OBJECT ENCODING's name for a key's value.</summary>
    internal static string EncodingName(KvEntry e)
    {
        if (e.Value is KvObject o) return o.Encoding;
        byte[] s = (byte[])e.Value;
        switch (e.StringEncoding)
        {
            case KvStringEncoding.Raw: return "raw";
            case KvStringEncoding.ByContent when s.Length <= 20 && RespNumbers.TryParseInt64(s, out _): return "int";
            default: return s.Length <= EmbstrMaxBytes ? "embstr" : "raw";
        }
    }

    /// <summary>Writes Redis's reply for a container command (OBJECT, MEMORY) whose subcommand has the wrong number of arguments.</summary>
    private static void SubcommandArity(in Context ctx, string command) =>
        ctx.Reply.WriteError(KvErrors.WrongArity(command + "|" + Encoding.ASCII.GetString(ctx[1]).ToLowerInvariant()));

    private static void WriteHelp(in Context ctx, string[] lines)
    {
        ctx.Reply.WriteArrayHeader(lines.Length);
        foreach (string line in lines) ctx.Reply.WriteSimpleString(line);
    }

    private void Copy(in Context ctx)
    {
        bool replace = false;
        KvDatabase dst = ctx.Db;
        for (int j = 3; j < ctx.Count; j++)
        {
            if (Is(ctx[j], "REPLACE"u8))
            {
                replace = true;
            }
            else if (Is(ctx[j], "DB"u8) && j + 1 < ctx.Count)
            {
                if (!TryGetDbIndex(ctx, ++j, out int db)) return;
                dst = _dbs[db];
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        ReadOnlySpan<byte> key = ctx[1], newKey = ctx[2];
        if (dst == ctx.Db && key.SequenceEqual(newKey))
        {
            ctx.Reply.WriteError(KvErrors.SameObject);
            return;
        }
        KvEntry? e = LookupRead(ctx, key);
        if (e is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        KvEntry? target = Lookup(dst, newKey, ctx.Now);
        if (target is not null)
        {
            Touch(target); // Redis's copyCommand: lookupKeyWrite on the destination (seen when it stays: no REPLACE)
            if (!replace)
            {
                ctx.Reply.WriteInteger(0);
                return;
            }
            dst.Remove(target);
        }
        object value = e.Value is KvObject o ? o.Clone() : e.Value; // strings are never modified in place: shared
        KvEntry copy = AddKey(dst, newKey, value, e.ExpireAt);
        copy.StringEncoding = e.StringEncoding;
        ctx.LogSelf();
        Changed(dst.Index, newKey, KvEventClass.Generic, "copy_to");
        ctx.Reply.WriteInteger(1);
    }

    private void TouchCommand(in Context ctx)
    {
        long n = 0;
        for (int i = 1; i < ctx.Count; i++)
            if (LookupRead(ctx, ctx[i]) is not null) n++;
        ctx.Reply.WriteInteger(n);
    }

    private void ObjectCommand(in Context ctx)
    {
        ReadOnlySpan<byte> sub = ctx[1];
        if (Is(sub, "HELP"u8))
        {
            if (ctx.Count != 2) SubcommandArity(ctx, "object");
            else WriteHelp(ctx, s_objectHelp);
            return;
        }
        bool encoding = Is(sub, "ENCODING"u8), freq = Is(sub, "FREQ"u8), idle = Is(sub, "IDLETIME"u8), refcount = Is(sub, "REFCOUNT"u8);
        if (!(encoding || freq || idle || refcount))
        {
            ctx.Reply.WriteError(KvErrors.UnknownSubcommand(ctx.Command.GetString(1), "object"));
            return;
        }
        if (ctx.Count != 3)
        {
            SubcommandArity(ctx, "object");
            return;
        }
        // Redis's objectCommandLookup: a hit or a miss counted, no access recorded (LOOKUP_NOTOUCH), no keymiss event
        // (LOOKUP_NONOTIFY).
        KvEntry? e = LookupNoTouch(ctx, ctx[2], notifyMiss: false);
        if (e is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        if (encoding)
        {
            ctx.Reply.WriteBulkString(EncodingName(e));
        }
        else if (refcount)
        {
            bool shared = e.Value is byte[] s && EncodingName(e) == "int" && RespNumbers.TryParseInt64(s, out long v) && v is >= 0 and < SharedIntegers;
            ctx.Reply.WriteInteger(shared ? SharedRefcount : 1);
        }
        else if (idle)
        {
            if (LfuPolicy) ctx.Reply.WriteError(LfuSelected);
            else ctx.Reply.WriteInteger(IdleSeconds(e));
        }
        else
        {
            if (!LfuPolicy) ctx.Reply.WriteError(LfuNotSelected);
            else ctx.Reply.WriteInteger(LfuDecrAndReturn(e)); // decayed, as Redis's OBJECT FREQ
        }
    }

    private void MemoryCommand(in Context ctx)
    {
        ReadOnlySpan<byte> sub = ctx[1];
        if (Is(sub, "HELP"u8))
        {
            if (ctx.Count != 2) SubcommandArity(ctx, "memory");
            else WriteHelp(ctx, s_memoryHelp);
            return;
        }
        bool stats = Is(sub, "STATS"u8), doctor = Is(sub, "DOCTOR"u8), malloc = Is(sub, "MALLOC-STATS"u8), purge = Is(sub, "PURGE"u8);
        if (stats || doctor || malloc || purge)
        {
            if (ctx.Count != 2) SubcommandArity(ctx, "memory");
            else if (stats) MemoryStats(ctx); // KvStore.Memory.cs
            else if (doctor) ctx.Reply.WriteVerbatimString(MemoryDoctorReport());
            else if (malloc) ctx.Reply.WriteVerbatimString(MallocStatsReport(ctx.Store._snapshotEpochs));
            else MemoryPurge(ctx);
            return;
        }
        if (!Is(sub, "USAGE"u8))
        {
            ctx.Reply.WriteError(KvErrors.UnknownSubcommand(ctx.Command.GetString(1), "memory"));
            return;
        }
        if (ctx.Count < 3)
        {
            SubcommandArity(ctx, "memory");
            return;
        }
        long samples = 5; // Redis's OBJ_COMPUTE_SIZE_DEF_SAMPLES
        for (int j = 3; j < ctx.Count; j++)
        {
            if (Is(ctx[j], "SAMPLES"u8) && j + 1 < ctx.Count)
            {
                if (!TryGetInt64(ctx, ++j, out samples)) return;
                if (samples < 0)
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
                if (samples == 0) samples = long.MaxValue;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        KvEntry? e = Lookup(ctx.Db, ctx[2], ctx.Now); // Redis's dictFind: no statistics, no access recorded
        if (e is null)
        {
            ctx.Reply.WriteNullBulkString();
            return;
        }
        long bytes = MemoryKeyOverheadBytes + e.Key.Length + e.Value switch
        {
            byte[] s => EncodingName(e) == "int" ? 0 : MemoryStringOverheadBytes + s.Length,
            KvList list => list.EstimateBytes((int)Math.Min(int.MaxValue, samples)),
            KvObject o => o.EstimateBytes(),
            _ => 0,
        };
        ctx.Reply.WriteInteger(bytes);
    }


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
        KvType? type = LiveType(ctx, ctx[1]); // by row, no handle (issue 14); an expired key removed as Lookup does
        // lookupKeyReadWithFlags(LOOKUP_NOTOUCH): a hit or a miss (keymiss event), no access recorded.
        if (type is null) CountMiss(ctx, ctx[1]);
        else KeyspaceHits++;
        ctx.Reply.WriteSimpleString(type is null ? "none" : TypeName(type.Value));
    }

    private void Del(in Context ctx)
    {
        // A live key is removed by row (no KvEntry handle per key, issue 14); a missing or expired one goes through
        // Lookup, which removes an expired key (expired count, notifications) and finds nothing to delete.
        KvDatabase db = ctx.Db;
        Span<bool> small = ctx.Count <= 256 ? stackalloc bool[ctx.Count] : default;
        Span<bool> deleted = ctx.Count <= 256 ? small : new bool[ctx.Count];
        int n = 0;
        for (int i = 1; i < ctx.Count; i++)
        {
            ReadOnlySpan<byte> key = ctx[i];
            int row = db.RowOf(key);
            long expireAt;
            if (row < 0 || ((expireAt = db.ExpireAtOf(row)) >= 0 && ctx.Now > expireAt))
            {
                if (row >= 0) Lookup(ctx, key); // expired: removed as expired, not deleted
                continue;
            }
            db.RemoveRow(row);
            Changed(ctx, key, KvEventClass.Generic, "del");
            deleted[i] = true;
            n++;
        }
        if (n > 0 && ctx.Aof is not null)
        {
            if (n == ctx.Count - 1)
            {
                ctx.Log(ctx.Command);
            }
            else
            {
                // The keys deleted, in argument order (the log's effect), in the store's reused builder.
                KvCommandBuilder logged = LogBuilder().Add(ctx[0]);
                for (int i = 1; i < ctx.Count; i++)
                    if (deleted[i]) logged.Add(ctx[i]);
                ctx.Log(logged.Build());
            }
        }
        ctx.Reply.WriteInteger(n);
    }

    private void Exists(in Context ctx)
    {
        long n = 0;
        KvDatabase db = ctx.Db;
        for (int i = 1; i < ctx.Count; i++)
        {
            // A live key by row (no KvEntry handle per key, issue 14); an expired one through Lookup, which removes it.
            int row = db.RowOf(ctx[i]);
            long expireAt;
            // lookupKeyReadWithFlags(LOOKUP_NOTOUCH): a hit or a miss (keymiss event) per key, no access recorded.
            if (row >= 0 && ((expireAt = db.ExpireAtOf(row)) < 0 || ctx.Now <= expireAt))
            {
                n++;
                KeyspaceHits++;
                continue;
            }
            if (row >= 0) Lookup(db, ctx[i], ctx.Now); // expired: removed as the lookup does
            CountMiss(ctx, ctx[i]);
        }
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
        KvDatabase db = ctx.Db;
        int row = db.RowOf(key); // a live key by row, no KvEntry handle (issue 14)
        long current;
        if (row < 0 || ((current = db.ExpireAtOf(row)) >= 0 && ctx.Now > current))
        {
            if (row >= 0) Lookup(ctx, key); // expired: removed here (expired count, notifications) as the lookup did
            ctx.Reply.WriteInteger(0);
            return;
        }
        TouchRow(db, row); // lookupKeyWrite records the access, whatever the flags then decide
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
            db.RemoveRow(row);
            if (ctx.Aof is not null) ctx.Log(LogBuilder().Add("DEL"u8).Add(key).Build());
            Changed(ctx, key, KvEventClass.Generic, "del");
        }
        else
        {
            db.SetExpireAtRow(row, when);
            if (ctx.Aof is not null) ctx.Log(LogBuilder().Add("PEXPIREAT"u8).Add(key).Add(when).Build());
            Changed(ctx, key, KvEventClass.Generic, "expire");
        }
        ctx.Reply.WriteInteger(1);
    }

    private void ExpireTime(in Context ctx, bool milliseconds)
    {
        // lookupKeyReadWithFlags(LOOKUP_NOTOUCH): a hit or a miss (keymiss event), no access recorded; by row, no
        // handle (issue 14).
        KvDatabase db = ctx.Db;
        int row = db.RowOf(ctx[1]);
        if (row >= 0 && !IsLiveRow(db, row, ctx.Now))
        {
            Lookup(db, ctx[1], ctx.Now); // expired: removed as the lookup does
            row = -1;
        }
        if (row < 0) CountMiss(ctx, ctx[1]);
        else KeyspaceHits++;
        long at = row < 0 ? -2 : ctx.Db.ExpireAtOf(row);
        if (at < 0) ctx.Reply.WriteInteger(at);
        else ctx.Reply.WriteInteger(milliseconds ? at : (at + 500) / 1000);
    }

    private void Ttl(in Context ctx, bool milliseconds)
    {
        KvDatabase db = ctx.Db;
        int row = db.RowOf(ctx[1]);
        long at;
        if (row >= 0 && ((at = db.ExpireAtOf(row)) < 0 || ctx.Now <= at))
        {
            // A live key (the usual case): the hit counted by row (no KvEntry per request, issue 14) and no access
            // recorded (Redis's lookupKeyReadWithFlags(LOOKUP_NOTOUCH)).
            KeyspaceHits++;
            ctx.Reply.WriteInteger(at < 0 ? -1 : milliseconds ? Math.Max(0, at - ctx.Now) : (Math.Max(0, at - ctx.Now) + 500) / 1000);
            return;
        }

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
        KvDatabase db = ctx.Db;
        int row = db.RowOf(ctx[1]); // a live key by row, no KvEntry handle (issue 14)
        long current = row < 0 ? -1 : db.ExpireAtOf(row);
        if (row < 0 || (current >= 0 && ctx.Now > current))
        {
            if (current >= 0) Lookup(ctx, ctx[1]); // expired: removed as the lookup did
            ctx.Reply.WriteInteger(0);
            return;
        }
        TouchRow(db, row); // lookupKeyWrite records the access, with or without a TTL to remove
        if (current < 0)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        db.ClearExpireRow(row);
        ctx.LogSelf();
        Changed(ctx, ctx[1], KvEventClass.Generic, "persist");
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
        CopyEntryMeta(e, AddKey(ctx, destination, e.Value, expireAt));
        ctx.LogSelf();
        Changed(ctx, source, KvEventClass.Generic, "rename_from");
        Changed(ctx, destination, KvEventClass.Generic, "rename_to");
        if (nx) ctx.Reply.WriteInteger(1);
        else ctx.Reply.WriteOk();
    }
    private const string BusyKey = "BUSYKEY Target key name already exists.";
    private const string BadPayload = "ERR DUMP payload version or checksum are wrong";
    private const string BadDataFormat = "ERR Bad data format";

    private void Dump(in Context ctx)
    {
        KvEntry? e = LookupRead(ctx, ctx[1]);
        if (e is null) ctx.Reply.WriteNullBulkString();
        else ctx.Reply.WriteBulkString(KvDump.Serialize(e.Value, RdbCompression));
    }

    private void Restore(in Context ctx)
    {
        bool replace = false, absTtl = false;
        long idle = -1, freq = -1;
        for (int j = 4; j < ctx.Count; j++)
        {
            ReadOnlySpan<byte> opt = ctx[j];
            bool more = j + 1 < ctx.Count;
            if (Is(opt, "REPLACE"u8))
            {
                replace = true;
            }
            else if (Is(opt, "ABSTTL"u8))
            {
                absTtl = true;
            }
            else if (Is(opt, "IDLETIME"u8) && more && freq == -1)
            {
                if (!TryGetInt64(ctx, ++j, out idle)) return;
                if (idle < 0)
                {
                    ctx.Reply.WriteError("ERR Invalid IDLETIME value, must be >= 0");
                    return;
                }
            }
            else if (Is(opt, "FREQ"u8) && more && idle == -1)
            {
                if (!TryGetInt64(ctx, ++j, out freq)) return;
                if (freq is < 0 or > 255)
                {
                    ctx.Reply.WriteError("ERR Invalid FREQ value, must be >= 0 and <= 255");
                    return;
                }
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        ReadOnlySpan<byte> key = ctx[1];
        KvEntry? existing = Lookup(ctx, key);
        if (!replace && existing is not null)
        {
            ctx.Reply.WriteError(BusyKey);
            return;
        }
        if (!TryGetInt64(ctx, 2, out long ttl)) return;
        if (ttl < 0)
        {
            ctx.Reply.WriteError("ERR Invalid TTL value, must be >= 0");
            return;
        }
        ReadOnlySpan<byte> payload = ctx[3];
        if (!KvDump.Verify(payload))
        {
            ctx.Reply.WriteError(BadPayload);
            return;
        }
        if (!KvDump.TryRestore(payload, Limits, Encodings, out object? value, ctx.Now) || value is null)
        {
            ctx.Reply.WriteError(BadDataFormat);
            return;
        }
        if (ttl > 0 && !absTtl)
        {
            if (ttl > long.MaxValue - ctx.Now)
            {
                ctx.Reply.WriteError(KvErrors.InvalidExpireTime(ctx.Name));
                return;
            }
            ttl += ctx.Now;
        }
        if (existing is not null) DeleteKey(ctx, existing);
        if (ttl > 0 && ttl <= ctx.Now)
        {
            // Already expired: nothing is created; a replaced key is deleted, like Redis.
            if (existing is not null)
            {
                ctx.Log("DEL"u8.ToArray(), existing.Key);
                Changed(ctx, key, KvEventClass.Generic, "del");
            }
            ctx.Reply.WriteOk();
            return;
        }
        KvEntry e = AddKey(ctx, key, value, ttl > 0 ? ttl : -1);
        if (idle >= 0) e.AccessClock = unchecked(AccessClock - (uint)Math.Min(idle, uint.MaxValue)); // IdleSeconds subtracts modulo 2^24
        if (freq >= 0) e.Frequency = (byte)freq;
        if (ctx.Aof is not null)
        {
            if (ttl > 0 && !absTtl)
            {
                var args = new byte[ctx.Count + 1][];
                for (int i = 0; i < ctx.Count; i++) args[i] = i == 2 ? Bytes(ttl) : ctx.Command.ToArray(i);
                args[^1] = "ABSTTL"u8.ToArray();
                ctx.Log(args);
            }
            else
            {
                ctx.LogSelf();
            }
        }
        Changed(ctx, key, KvEventClass.Generic, "restore");
        ctx.Reply.WriteOk();
    }
}
