namespace EioSharp.Kv;

public sealed partial class KvStore
{
    // Redis's texts (hyperloglog.c, 7.0); both replace the usual ERR prefix.
    private const string HllWrongTypeError = "WRONGTYPE Key is not a valid HyperLogLog string value.";
    private const string HllCorruptError = "INVALIDOBJ Corrupted HLL object detected";

    /// <summary>The HyperLogLog commands (values are Redis-format HLL strings, see <see cref="HyperLogLog"/>).</summary>
    /// <remarks>PFCOUNT is flagged write: like Redis, which propagates it, it may store the recomputed cardinality
    /// in the string's header, and AOF replay (which runs only write commands) must do the same.</remarks>
    internal static readonly KvCommandInfo[] HyperLogLogCommands =
    [
        KvCommandTable.Data("pfadd", -2, W, 1, 1, 1, static (s, in c) => s.PfAdd(c)),
        KvCommandTable.Data("pfcount", -2, W, 1, -1, 1, static (s, in c) => s.PfCount(c)),
        KvCommandTable.Data("pfmerge", -2, W, 1, -1, 1, static (s, in c) => s.PfMerge(c)),
        KvCommandTable.Data("pfdebug", 3, W, 2, 2, 1, static (s, in c) => s.PfDebug(c)),
    ];

    /// <summary>Finds a key that must hold an HLL string: writes Redis's error and returns false for another type or a
    /// string that is not an HLL.</summary>
    private bool TryLookupHll(in Context ctx, ReadOnlySpan<byte> key, bool read, out KvEntry? e)
    {
        if (!TryLookupString(ctx, key, read, out e)) return false;
        if (e is null || HyperLogLog.IsValid(Str(e))) return true;
        ctx.Reply.WriteError(HllWrongTypeError);
        e = null;
        return false;
    }

    private void PfAdd(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupHll(ctx, key, read: false, out KvEntry? e)) return;
        bool created = e is null;
        var hll = new HyperLogLog.Buffer(created ? HyperLogLog.CreateEmpty() : Str(e!), extra: 16);
        int updated = created ? 1 : 0;
        for (int j = 2; j < ctx.Count; j++)
        {
            int result = HyperLogLog.Add(hll, ctx[j]);
            if (result == 1)
            {
                updated++;
            }
            else if (result < 0)
            {
                // Redis changes the string in place, so registers raised by earlier elements stay even though the
                // command fails; keep them too (no event, as in Redis) and log the bytes so that replay agrees.
                if (updated > 0 && !created)
                {
                    byte[] partial = hll.ToArray();
                    SetKey(ctx, key, e, partial, -1, keepTtl: true);
                    if (ctx.Aof is not null) ctx.Log(SetCommand(key, partial, -1, keepTtl: true));
                }
                ctx.Reply.WriteError(HllCorruptError);
                return;
            }
        }
        if (updated > 0)
        {
            HyperLogLog.InvalidateCache(hll.Data);
            SetKey(ctx, key, e, hll.ToArray(), -1, keepTtl: true);
            ctx.LogSelf();
            Changed(ctx, key, KvEventClass.String, "pfadd");
        }
        ctx.Reply.WriteInteger(updated > 0 ? 1 : 0);
    }

    private void PfCount(in Context ctx)
    {
        if (ctx.Count > 2)
        {
            // The cardinality of the union, through a temporary of raw registers; nothing is written.
            Span<byte> max = stackalloc byte[HyperLogLog.Registers];
            max.Clear();
            for (int j = 1; j < ctx.Count; j++)
            {
                if (!TryLookupHll(ctx, ctx[j], read: true, out KvEntry? source)) return;
                if (source is null) continue;
                if (!HyperLogLog.Merge(max, Str(source)))
                {
                    ctx.Reply.WriteError(HllCorruptError);
                    return;
                }
            }
            ctx.Reply.WriteInteger((long)HyperLogLog.CountRaw(max));
            return;
        }

        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupHll(ctx, key, read: true, out KvEntry? e)) return;
        if (e is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        byte[] value = Str(e);
        if (HyperLogLog.IsCacheValid(value))
        {
            ctx.Reply.WriteInteger((long)HyperLogLog.GetCachedCount(value));
            return;
        }
        if (!HyperLogLog.TryCount(value, out ulong count))
        {
            ctx.Reply.WriteError(HllCorruptError);
            return;
        }
        // Redis stores the fresh count in the header and propagates the command; a signal for WATCH, no keyspace event.
        byte[] cached = (byte[])value.Clone();
        HyperLogLog.SetCachedCount(cached, count);
        SetKey(ctx, key, e, cached, -1, keepTtl: true);
        ctx.LogSelf();
        Changed(ctx, key, KvEventClass.None, "pfcount");
        ctx.Reply.WriteInteger((long)count);
    }

    private void PfMerge(in Context ctx)
    {
        var max = new byte[HyperLogLog.Registers];
        bool useDense = false;
        for (int j = 1; j < ctx.Count; j++)
        {
            if (!TryLookupHll(ctx, ctx[j], read: true, out KvEntry? source)) return;
            if (source is null) continue;
            byte[] value = Str(source);
            if (value[4] == HyperLogLog.Dense) useDense = true; // a dense input makes the target dense at once
            if (!HyperLogLog.Merge(max, value))
            {
                ctx.Reply.WriteError(HllCorruptError);
                return;
            }
        }
        ReadOnlySpan<byte> key = ctx[1];
        KvEntry? e = Lookup(ctx, key); // checked above as the first source
        var hll = new HyperLogLog.Buffer(e is null ? HyperLogLog.CreateEmpty() : Str(e), extra: 16);
        if (useDense && !HyperLogLog.SparseToDense(hll))
        {
            ctx.Reply.WriteError(HllCorruptError);
            return;
        }
        for (int j = 0; j < HyperLogLog.Registers; j++)
        {
            if (max[j] == 0) continue;
            if (hll.Encoding == HyperLogLog.Dense) HyperLogLog.DenseSet(hll.Data.AsSpan(HyperLogLog.HeaderSize, HyperLogLog.DenseSize - HyperLogLog.HeaderSize), j, max[j]);
            else HyperLogLog.SparseSet(hll, j, max[j]);
        }
        HyperLogLog.InvalidateCache(hll.Data);
        SetKey(ctx, key, e, hll.ToArray(), -1, keepTtl: true);
        ctx.LogSelf();
        // Redis sends a pfadd event for PFMERGE too.
        Changed(ctx, key, KvEventClass.String, "pfadd");
        ctx.Reply.WriteOk();
    }

    /// <summary>PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's debugging view of an HLL (GETREG and TODENSE turn a
    /// sparse HLL dense, a logged change).</summary>
    private void PfDebug(in Context ctx)
    {
        ReadOnlySpan<byte> sub = ctx[1];
        ReadOnlySpan<byte> key = ctx[2];
        KvEntry? e = Lookup(ctx, key);
        if (e is null)
        {
            ctx.Reply.WriteError("ERR The specified key does not exist");
            return;
        }
        if (e.Value is not byte[])
        {
            ctx.Reply.WriteError(KvErrors.WrongType);
            return;
        }
        byte[] value = Str(e);
        if (!HyperLogLog.IsValid(value))
        {
            ctx.Reply.WriteError(HllWrongTypeError);
            return;
        }
        bool getReg = Is(sub, "GETREG"u8), toDense = Is(sub, "TODENSE"u8);
        if (getReg || toDense)
        {
            bool converted = false;
            if (value[4] == HyperLogLog.Sparse)
            {
                var hll = new HyperLogLog.Buffer(value);
                if (!HyperLogLog.SparseToDense(hll))
                {
                    ctx.Reply.WriteError(HllCorruptError);
                    return;
                }
                value = hll.ToArray();
                SetKey(ctx, key, e, value, -1, keepTtl: true);
                ctx.LogSelf();
                Changed(ctx, key, KvEventClass.None, "pfdebug"); // Redis: dirty, no event
                converted = true;
            }
            if (toDense)
            {
                ctx.Reply.WriteInteger(converted ? 1 : 0);
                return;
            }
            ReadOnlySpan<byte> registers = value.AsSpan(HyperLogLog.HeaderSize);
            ctx.Reply.WriteArrayHeader(HyperLogLog.Registers);
            for (int j = 0; j < HyperLogLog.Registers; j++) ctx.Reply.WriteInteger(HyperLogLog.GetDenseRegister(registers, j));
        }
        else if (Is(sub, "DECODE"u8))
        {
            if (value[4] != HyperLogLog.Sparse)
            {
                ctx.Reply.WriteError("ERR HLL encoding is not sparse");
                return;
            }
            ctx.Reply.WriteBulkString(HyperLogLog.DecodeSparse(value));
        }
        else if (Is(sub, "ENCODING"u8))
        {
            ctx.Reply.WriteSimpleString(value[4] == HyperLogLog.Dense ? "dense" : "sparse");
        }
        else
        {
            ctx.Reply.WriteError($"ERR Unknown PFDEBUG subcommand '{ctx.Command.GetString(1)}'");
        }
    }
}
