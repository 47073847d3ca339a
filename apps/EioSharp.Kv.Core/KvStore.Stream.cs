using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>A parsed XREAD/XREADGROUP: what <see cref="KvStore.TryReadStreams"/> serves (and what a blocked client
/// retries when one of its keys changes).</summary>
/// <remarks>Keys, group and consumer are argument indexes into the command it was parsed from, which is the command
/// every serve runs with (a blocked client's own copy). <see cref="Ids"/> are resolved at parse time: <c>$</c> is the
/// stream's last ID then, <c>&gt;</c> is <see cref="StreamId.Max"/> (entries never delivered to the group). The store
/// parses every call into one reused request and copies it (<see cref="CopyFrom"/>) only when the client blocks, into the
/// request its blocked registration keeps for its uses (<see cref="KvBlockedCommand.StreamRead"/>).</remarks>
internal sealed class StreamReadRequest
{
    public int KeysIndex; // argument index of the first key; the IDs follow the keys
    public int StreamCount;
    public StreamId[] Ids = [];
    public int GroupIndex = -1; // argument index of the group name, the consumer's follows; -1: XREAD
    public long Count; // 0: no limit
    public bool NoAck;
    /// <summary>BLOCK: -1 when not given, 0 to wait forever, else the absolute deadline in Unix ms.</summary>
    public long BlockUntil = -1;

    public bool IsGroup => GroupIndex >= 0;

    /// <summary>Makes this request a copy of <paramref name="other"/> (reusing this one's ID array when it is large enough).</summary>
    public void CopyFrom(StreamReadRequest other)
    {
        if (Ids.Length < other.StreamCount) Ids = new StreamId[Math.Max(other.StreamCount, 4)];
        other.Ids.AsSpan(0, other.StreamCount).CopyTo(Ids);
        KeysIndex = other.KeysIndex;
        StreamCount = other.StreamCount;
        GroupIndex = other.GroupIndex;
        Count = other.Count;
        NoAck = other.NoAck;
        BlockUntil = other.BlockUntil;
    }
}

public sealed partial class KvStore
{
    private const string InvalidStreamId = "ERR Invalid stream ID specified as stream command argument";
    private const string XAddIdTooSmall = "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    private const string XAddIdZero = "ERR The ID specified in XADD must be greater than 0-0";
    private const string XAddExhausted = "ERR The stream has exhausted the last possible ID, unable to add more items";
    private const string XAddTooLarge = "ERR Elements are too large to be stored";
    private const string MaxlenAndMinid = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    private const string MaxlenNegative = "ERR The MAXLEN argument must be >= 0.";
    private const string StreamLimitNegative = "ERR The LIMIT argument must be >= 0.";
    private const string LimitWithoutStrategy = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy";
    private const string XTrimWithoutStrategy = "ERR syntax error, XTRIM must be called with a trimming strategy";
    private const string LimitWithoutApprox = "ERR syntax error, LIMIT cannot be used without the special ~ option";
    private const string InvalidStartInterval = "ERR invalid start ID for the interval";
    private const string InvalidEndInterval = "ERR invalid end ID for the interval";
    private const string XGroupNeedsKey = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
    private const string BusyGroup = "BUSYGROUP Consumer Group name already exists";
    private const string EntriesReadInvalid = "ERR value for ENTRIESREAD must be positive or -1";
    private const string NoSuchKey = "ERR no such key";
    private const string TimeoutNotInteger = "ERR timeout is not an integer or out of range";
    private const string DollarInXReadGroup = "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.";
    private const string GreaterInXRead = "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.";
    private const int XAutoClaimAttemptsFactor = 10; // Redis: PEL entries scanned per COUNT
    private const long XAutoClaimMaxCount = long.MaxValue / 16; // Redis: LONG_MAX / max(sizeof(streamID), attempts factor)
    private const long XAutoClaimAllocatableCount = 1L << 32; // beyond this Redis's transient allocation fails

    /// <summary>The Stream commands.</summary>
    internal static readonly KvCommandInfo[] StreamCommands =
    [
        KvCommandTable.Data("xadd", -5, W, 1, 1, 1, static (s, in c) => s.XAdd(c)),
        KvCommandTable.Data("xlen", 2, R, 1, 1, 1, static (s, in c) => s.XLen(c)),
        KvCommandTable.Data("xrange", -4, R, 1, 1, 1, static (s, in c) => s.XRange(c, reverse: false)),
        KvCommandTable.Data("xrevrange", -4, R, 1, 1, 1, static (s, in c) => s.XRange(c, reverse: true)),
        KvCommandTable.Data("xdel", -3, W, 1, 1, 1, static (s, in c) => s.XDel(c)),
        KvCommandTable.Data("xtrim", -4, W, 1, 1, 1, static (s, in c) => s.XTrim(c)),
        KvCommandTable.Data("xread", -4, R, 0, 0, 0, static (s, in c) => s.XRead(c, group: false)),
        KvCommandTable.Data("xreadgroup", -7, W, 0, 0, 0, static (s, in c) => s.XRead(c, group: true)),
        KvCommandTable.Data("xgroup", -2, W, 0, 0, 0, static (s, in c) => s.XGroup(c)),
        KvCommandTable.Data("xsetid", -3, W, 1, 1, 1, static (s, in c) => s.XSetId(c)),
        KvCommandTable.Data("xack", -4, W, 1, 1, 1, static (s, in c) => s.XAck(c)),
        KvCommandTable.Data("xpending", -3, R, 1, 1, 1, static (s, in c) => s.XPending(c)),
        KvCommandTable.Data("xclaim", -6, W, 1, 1, 1, static (s, in c) => s.XClaim(c)),
        KvCommandTable.Data("xautoclaim", -6, W, 1, 1, 1, static (s, in c) => s.XAutoClaim(c)),
        KvCommandTable.Data("xinfo", -2, R, 0, 0, 0, static (s, in c) => s.XInfo(c)),
    ];

    // ---------------------------------------------------------------- shared helpers

    private static string Text(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

    private static void WriteStreamId(RespWriter reply, StreamId id)
    {
        Span<byte> buffer = stackalloc byte[41];
        id.Ms.TryFormat(buffer, out int n, default, CultureInfo.InvariantCulture);
        buffer[n++] = (byte)'-';
        id.Seq.TryFormat(buffer[n..], out int m, default, CultureInfo.InvariantCulture);
        reply.WriteBulkString(buffer[..(n + m)]);
    }

    private static void WriteStreamEntry(RespWriter reply, StreamEntry e)
    {
        reply.WriteArrayHeader(2);
        WriteStreamId(reply, e.Id);
        reply.WriteArrayHeader(e.Pairs.Length);
        foreach (byte[] b in e.Pairs) reply.WriteBulkString(b);
    }

    private static void WriteStreamEntries(RespWriter reply, List<StreamEntry> entries)
    {
        reply.WriteArrayHeader(entries.Count);
        foreach (StreamEntry e in entries) WriteStreamEntry(reply, e);
    }

    private static bool TryParseStreamId(in Context ctx, ReadOnlySpan<byte> text, ulong missingSeq, bool strict, out StreamId id)
    {
        if (StreamId.TryParse(text, missingSeq, strict, allowSeqStar: false, out id, out _)) return true;
        ctx.Reply.WriteError(InvalidStreamId);
        return false;
    }

    // Redis's streamParseIntervalIDOrReply: "(" makes the bound exclusive (then + and - are invalid).
    private static bool TryParseIntervalId(in Context ctx, int index, ulong missingSeq, out StreamId id, out bool exclusive)
    {
        ReadOnlySpan<byte> a = ctx[index];
        exclusive = a.Length > 1 && a[0] == (byte)'(';
        return exclusive ? TryParseStreamId(ctx, a[1..], missingSeq, strict: true, out id) : TryParseStreamId(ctx, a, missingSeq, strict: false, out id);
    }

    private static bool TryParseRangeStart(in Context ctx, int index, out StreamId start)
    {
        if (!TryParseIntervalId(ctx, index, 0, out start, out bool exclusive)) return false;
        if (exclusive && !start.TryIncrement(out start))
        {
            ctx.Reply.WriteError(InvalidStartInterval);
            return false;
        }
        return true;
    }

    private static bool TryParseRangeEnd(in Context ctx, int index, out StreamId end)
    {
        if (!TryParseIntervalId(ctx, index, ulong.MaxValue, out end, out bool exclusive)) return false;
        if (exclusive && !end.TryDecrement(out end))
        {
            ctx.Reply.WriteError(InvalidEndInterval);
            return false;
        }
        return true;
    }

    private static bool TryGetInt64(in Context ctx, int index, string error, out long value)
    {
        if (RespNumbers.TryParseInt64(ctx[index], out value)) return true;
        ctx.Reply.WriteError(error);
        return false;
    }

    private static string NoGroupForKey(ReadOnlySpan<byte> key, ReadOnlySpan<byte> group) =>
        $"NOGROUP No such key '{Text(key)}' or consumer group '{Text(group)}'";

    private static string NoSuchGroup(ReadOnlySpan<byte> group, ReadOnlySpan<byte> key) =>
        $"NOGROUP No such consumer group '{Text(group)}' for key name '{Text(key)}'";

    private static string SubcommandSyntax(in Context ctx, string command)
    {
        string sub = ctx.Command.GetString(1);
        if (sub.Length > 128) sub = sub[..128];
        return $"ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP.";
    }

    private static List<StreamEntry> TakeEntries(KvStream s, StreamId start, StreamId end, long count, bool reverse = false)
    {
        var list = new List<StreamEntry>();
        s.CollectRange(start, end, count, reverse, list);
        return list;
    }

    private StreamConsumer CreateConsumer(in Context ctx, StreamGroup g, ReadOnlySpan<byte> key, ReadOnlySpan<byte> name, bool log)
    {
        var c = new StreamConsumer(name.ToArray(), ctx.Now);
        g.AddConsumer(c);
        Changed(ctx, key, KvEventClass.Stream, "xgroup-createconsumer");
        // Redis propagates the creation only in some paths (XREADGROUP NOACK); logging it always keeps consumers
        // without pending entries across restarts.
        if (log) ctx.Log("XGROUP"u8.ToArray(), "CREATECONSUMER"u8.ToArray(), key.ToArray(), g.Name, c.Name);
        return c;
    }

    private StreamConsumer ClaimingConsumer(in Context ctx, StreamGroup g, ReadOnlySpan<byte> key, ReadOnlySpan<byte> name)
    {
        StreamConsumer c = g.FindConsumer(name) ?? CreateConsumer(ctx, g, key, name, log: true);
        c.SeenTime = ctx.Now;
        return c;
    }

    // XCLAIM <key> <group> <consumer> 0 <id> TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <group last id>: Redis's
    // streamPropagateXCLAIM, an idempotent record of one pending entry's state.
    private static void LogXClaim(in Context ctx, ReadOnlySpan<byte> key, StreamGroup g, StreamPending p)
    {
        if (ctx.Aof is null) return;
        // Built in the store's reused log buffer (one XCLAIM per delivered entry: no array per argument).
        ctx.Log(ctx.Store.LogBuilder().Add("XCLAIM"u8).Add(key).Add(g.Name).Add(p.Consumer!.Name).Add("0"u8).Add(p.Id)
            .Add("TIME"u8).Add(p.DeliveryTime).Add("RETRYCOUNT"u8).Add(p.DeliveryCount)
            .Add("FORCE"u8).Add("JUSTID"u8).Add("LASTID"u8).Add(g.LastId).Build());
    }

    // XGROUP SETID <key> <group> <last id> ENTRIESREAD <n>: Redis's streamPropagateGroupID.
    private static void LogGroupId(in Context ctx, ReadOnlySpan<byte> key, StreamGroup g)
    {
        if (ctx.Aof is null) return;
        ctx.Log(ctx.Store.LogBuilder().Add("XGROUP"u8).Add("SETID"u8).Add(key).Add(g.Name).Add(g.LastId)
            .Add("ENTRIESREAD"u8).Add(g.EntriesRead).Build());
    }

    // ---------------------------------------------------------------- XADD / XTRIM

    private enum TrimStrategy { None, MaxLen, MinId }

    private struct AddTrimArgs
    {
        public TrimStrategy Strategy;
        public bool Approx;
        public long MaxLen;
        public StreamId MinId;
        public long Limit;
        public int LimitIndex; // index of the LIMIT keyword, 0 when not given
        public int ArgIndex; // index of the MAXLEN/MINID value
        public bool NoMkStream;
        public bool IdGiven;
        public bool SeqGiven;
        public StreamId Id;
    }

    // Redis's streamParseAddOrTrimArgsOrReply: returns the index of the ID (XADD), or -1 after replying an error.
    private int ParseAddOrTrim(in Context ctx, bool xadd, out AddTrimArgs a)
    {
        a = default;
        a.SeqGiven = true;
        bool limitGiven = false;
        int i = 2;
        for (; i < ctx.Count; i++)
        {
            int more = ctx.Count - 1 - i;
            ReadOnlySpan<byte> opt = ctx[i];
            if (xadd && opt.Length == 1 && opt[0] == (byte)'*')
            {
                break;
            }
            else if ((Is(opt, "MAXLEN"u8) || Is(opt, "MINID"u8)) && more > 0)
            {
                bool maxlen = Is(opt, "MAXLEN"u8);
                if (a.Strategy != TrimStrategy.None)
                {
                    ctx.Reply.WriteError(MaxlenAndMinid);
                    return -1;
                }
                a.Approx = false;
                ReadOnlySpan<byte> next = ctx[i + 1];
                if (more >= 2 && next.Length == 1 && next[0] == (byte)'~')
                {
                    a.Approx = true;
                    i++;
                }
                else if (more >= 2 && next.Length == 1 && next[0] == (byte)'=')
                {
                    i++;
                }
                if (maxlen)
                {
                    if (!TryGetInt64(ctx, i + 1, out a.MaxLen)) return -1;
                    if (a.MaxLen < 0)
                    {
                        ctx.Reply.WriteError(MaxlenNegative);
                        return -1;
                    }
                }
                else if (!TryParseStreamId(ctx, ctx[i + 1], 0, strict: true, out a.MinId))
                {
                    return -1;
                }
                i++;
                a.Strategy = maxlen ? TrimStrategy.MaxLen : TrimStrategy.MinId;
                a.ArgIndex = i;
            }
            else if (Is(opt, "LIMIT"u8) && more > 0)
            {
                if (!TryGetInt64(ctx, i + 1, out a.Limit)) return -1;
                if (a.Limit < 0)
                {
                    ctx.Reply.WriteError(StreamLimitNegative);
                    return -1;
                }
                limitGiven = true;
                a.LimitIndex = i;
                i++;
            }
            else if (xadd && Is(opt, "NOMKSTREAM"u8))
            {
                a.NoMkStream = true;
            }
            else if (xadd)
            {
                if (!StreamId.TryParse(opt, 0, strict: true, allowSeqStar: true, out a.Id, out a.SeqGiven))
                {
                    ctx.Reply.WriteError(InvalidStreamId);
                    return -1;
                }
                a.IdGiven = true;
                break;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return -1;
            }
        }
        if (a.Limit != 0 && a.Strategy == TrimStrategy.None)
        {
            ctx.Reply.WriteError(LimitWithoutStrategy);
            return -1;
        }
        if (!xadd && a.Strategy == TrimStrategy.None)
        {
            ctx.Reply.WriteError(XTrimWithoutStrategy);
            return -1;
        }
        if (limitGiven)
        {
            if (!a.Approx)
            {
                ctx.Reply.WriteError(LimitWithoutApprox);
                return -1;
            }
        }
        else
        {
            a.Limit = a.Approx ? 100L * Encodings.StreamNodeMaxEntries : 0; // Redis: at most 100 nodes of work
        }
        return i;
    }

    private long ApplyTrim(KvStream s, in AddTrimArgs a) =>
        s.Trim(a.Strategy == TrimStrategy.MaxLen, a.MaxLen, a.MinId, a.Approx, a.Limit);

    // The logged form of an XADD/XTRIM: approximate trimming becomes exact ("=" and the resulting length or first ID,
    // Redis's streamRewriteApproxSpecifier/streamRewriteTrimArgument) and LIMIT goes (it needs "~"); XADD's generated
    // ID replaces "*" or "ms-*".
    private static KvCommand RewriteAddOrTrim(in Context ctx, KvStream s, in AddTrimArgs a, int idIndex, StreamId id)
    {
        KvCommandBuilder args = ctx.Store.LogBuilder(); // logged at once by the caller
        for (int j = 0; j < ctx.Count; j++)
        {
            if (a.Approx && a.LimitIndex > 0 && (j == a.LimitIndex || j == a.LimitIndex + 1)) continue;
            if (a.Approx && j == a.ArgIndex - 1) args.Add("="u8);
            else if (a.Approx && j == a.ArgIndex)
            {
                if (a.Strategy == TrimStrategy.MaxLen) args.Add(s.Count);
                else args.Add(s.EdgeId(first: true, skipTombstones: false));
            }
            else if (j == idIndex) args.Add(id);
            else args.Add(ctx[j]);
        }
        return args.Build();
    }

    /// <summary>The live stream at <paramref name="key"/> by its row, no <see cref="KvEntry"/> handle: <see
    /// cref="TryFindLive{T}"/> for streams (false, with nothing counted, when missing, expired or of another type).</summary>
    private bool TryFindLiveStream(in Context ctx, ReadOnlySpan<byte> key, bool read, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KvStream? s) =>
        TryFindLive(ctx, key, read, out s);

    /// <summary><see cref="TryLookup{T}"/> for a stream, without a handle when the key holds a live stream
    /// (<see cref="TryFindLiveStream"/>).</summary>
    private bool TryLookupStream(in Context ctx, ReadOnlySpan<byte> key, bool read, out KvStream? s) =>
        TryFindLiveStream(ctx, key, read, out s) || TryLookup(ctx, key, read, out _, out s);

    private void XAdd(in Context ctx)
    {
        int idIndex = ParseAddOrTrim(ctx, xadd: true, out AddTrimArgs a);
        if (idIndex < 0) return;
        int fieldIndex = idIndex + 1;
        if (ctx.Count - fieldIndex < 2 || (ctx.Count - fieldIndex) % 2 == 1)
        {
            ctx.Reply.WriteError(KvErrors.WrongArity("xadd"));
            return;
        }
        if (a.IdGiven && a.SeqGiven && a.Id.IsZero)
        {
            ctx.Reply.WriteError(XAddIdZero);
            return;
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupStream(ctx, key, read: false, out KvStream? s)) return;
        if (s is null)
        {
            if (a.NoMkStream)
            {
                ctx.Reply.WriteNull();
                return;
            }
            s = new KvStream();
            AddKey(ctx, key, s);
        }
        if (s.LastId == StreamId.Max)
        {
            ctx.Reply.WriteError(XAddExhausted);
            return;
        }
        StreamId id;
        if (a.IdGiven)
        {
            if (a.SeqGiven)
            {
                id = a.Id;
            }
            else if (s.LastId.Ms == a.Id.Ms)
            {
                if (s.LastId.Seq == ulong.MaxValue)
                {
                    ctx.Reply.WriteError(XAddTooLarge); // what Redis 7.0 replies when the sequence would overflow
                    return;
                }
                id = new StreamId(s.LastId.Ms, s.LastId.Seq + 1);
            }
            else
            {
                id = a.Id;
            }
        }
        else
        {
            ulong ms = (ulong)Math.Max(0, ctx.Now);
            if (ms > s.LastId.Ms) id = new StreamId(ms, 0);
            else s.LastId.TryIncrement(out id);
        }
        if (id <= s.LastId)
        {
            ctx.Reply.WriteError(XAddIdTooSmall);
            return;
        }
        var pairs = new byte[ctx.Count - fieldIndex][];
        // A field name equal to the last node's master field is shared with it (as Redis's listpack stores such an
        // entry's fields once per node): no array per field for the usual entry with the same fields as the others.
        byte[][]? master = s.Nodes.Count > 0 ? s.Nodes[^1].MasterFields : null;
        for (int j = 0; j < pairs.Length; j++)
        {
            ReadOnlySpan<byte> arg = ctx[fieldIndex + j];
            pairs[j] = j % 2 == 0 && master is not null && j / 2 < master.Length && arg.SequenceEqual(master[j / 2])
                ? master[j / 2]
                : arg.ToArray();
        }
        s.Append(id, pairs, Encodings.StreamNodeMaxEntries, Encodings.StreamNodeMaxBytes);
        WriteStreamId(ctx.Reply, id);
        Changed(ctx, key, KvEventClass.Stream, "xadd");
        if (a.Strategy != TrimStrategy.None && ApplyTrim(s, a) > 0) Changed(ctx, key, KvEventClass.Stream, "xtrim");
        if (ctx.Aof is not null)
        {
            bool rewriteId = !a.IdGiven || !a.SeqGiven;
            if (a.Approx || rewriteId) ctx.Log(RewriteAddOrTrim(ctx, s, a, rewriteId ? idIndex : -1, id));
            else ctx.LogSelf();
        }
    }

    private void XTrim(in Context ctx)
    {
        if (ParseAddOrTrim(ctx, xadd: false, out AddTrimArgs a) < 0) return;
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupStream(ctx, key, read: false, out KvStream? s)) return;
        if (s is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        long deleted = ApplyTrim(s, a);
        if (deleted > 0)
        {
            Changed(ctx, key, KvEventClass.Stream, "xtrim");
            if (a.Approx) ctx.Log(RewriteAddOrTrim(ctx, s, a, -1, default));
            else ctx.LogSelf();
        }
        ctx.Reply.WriteInteger(deleted);
    }

    // ---------------------------------------------------------------- XLEN / XRANGE / XDEL

    private void XLen(in Context ctx)
    {
        if (!TryLookupStream(ctx, ctx[1], read: true, out KvStream? s)) return;
        ctx.Reply.WriteInteger(s?.Count ?? 0);
    }

    private void XRange(in Context ctx, bool reverse)
    {
        int startIndex = reverse ? 3 : 2, endIndex = reverse ? 2 : 3;
        if (!TryParseRangeStart(ctx, startIndex, out StreamId start)) return;
        if (!TryParseRangeEnd(ctx, endIndex, out StreamId end)) return;
        long count = -1;
        for (int j = 4; j < ctx.Count; j++)
        {
            if (Is(ctx[j], "COUNT"u8) && j + 1 < ctx.Count)
            {
                if (!TryGetInt64(ctx, j + 1, out count)) return;
                if (count < 0) count = 0;
                j++;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (!TryLookupStream(ctx, ctx[1], read: true, out KvStream? s)) return;
        if (s is null)
        {
            ctx.Reply.WriteArrayHeader(0);
            return;
        }
        if (count == 0)
        {
            ctx.Reply.WriteNullArray();
            return;
        }
        WriteStreamEntries(ctx.Reply, TakeEntries(s, start, end, count < 0 ? 0 : count, reverse));
    }

    private void XDel(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupStream(ctx, key, read: false, out KvStream? s)) return;
        if (s is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        var ids = new StreamId[ctx.Count - 2];
        for (int j = 2; j < ctx.Count; j++)
        {
            if (!TryParseStreamId(ctx, ctx[j], 0, strict: true, out ids[j - 2])) return;
        }
        long deleted = 0;
        bool first = false;
        foreach (StreamId id in ids)
        {
            if (!s.Delete(id)) continue;
            if (id == s.FirstId) first = true;
            if (id > s.MaxDeletedId) s.MaxDeletedId = id;
            deleted++;
        }
        if (deleted > 0)
        {
            if (s.Count == 0) s.FirstId = StreamId.Zero;
            else if (first) s.FirstId = s.EdgeId(first: true, skipTombstones: true);
            Changed(ctx, key, KvEventClass.Stream, "xdel");
            ctx.LogSelf();
        }
        ctx.Reply.WriteInteger(deleted);
    }

    // ---------------------------------------------------------------- XREAD / XREADGROUP

    private StreamReadRequest? _readRequest; // every XREAD/XREADGROUP is parsed into this one (taken while in use)

    private void XRead(in Context ctx, bool group)
    {
        StreamReadRequest request = _readRequest ?? new StreamReadRequest();
        _readRequest = null; // a read that runs inside another one's serve gets its own
        try
        {
            if (!TryParseStreamRead(ctx, group, request)) return;
            if (TryReadStreams(ctx, request)) return;
            if (request.BlockUntil < 0)
            {
                WriteNilArray(ctx);
                return;
            }
            // BLOCK with nothing to serve now: park until a key changes (KvStore.Blocking.cs retries TryReadStreams
            // with the IDs resolved now: '$' means "after what was last when I blocked"), with a copy of the request.
            BlockRead(ctx, request);
        }
        finally
        {
            _readRequest = request;
        }
    }

    // A blocked XREAD/XREADGROUP's serve: its registration's copy of the parsed request, against its copy of the command.
    private static readonly KvBlockServe s_serveStreamRead = static (s, in c) => s.TryReadStreams(c, c.Session.Blocked!.StreamRead!);

    /// <summary>Blocks an XREAD/XREADGROUP on its keys. The request is copied into the one its registration keeps (reused
    /// with the registration) and the keys are read from the registration's copy of the command, so that a block
    /// allocates no key copies, no request, no closure: a consumer blocks each time it drains its stream.</summary>
    private void BlockRead(in Context ctx, StreamReadRequest request)
    {
        if (!StartBlock(ctx, request.BlockUntil == 0 ? -1 : request.BlockUntil, s_serveStreamRead, nilIsBulk: false, null,
            out KvBlockedCommand? blocked)) return;
        (blocked.StreamRead ??= new StreamReadRequest()).CopyFrom(request);
        for (int i = 0; i < request.StreamCount; i++) AddWaiter(ctx.Session, blocked, ctx.Db.Index, blocked.Command[request.KeysIndex + i]);
    }

    /// <summary>Parses XREAD/XREADGROUP with Redis's checks and order (options, then per stream: type, group, ID);
    /// writes the error and returns false on bad input.</summary>
    internal bool TryParseStreamRead(in Context ctx, bool group, StreamReadRequest request)
    {
        long count = 0, blockUntil = -1;
        bool noAck = false;
        int streamsIndex = 0, streamCount = 0;
        int groupIndex = -1;
        for (int i = 1; i < ctx.Count; i++)
        {
            int more = ctx.Count - i - 1;
            ReadOnlySpan<byte> o = ctx[i];
            if (Is(o, "BLOCK"u8) && more > 0)
            {
                i++;
                if (!TryGetInt64(ctx, i, TimeoutNotInteger, out long timeout)) return false;
                if (timeout < 0)
                {
                    ctx.Reply.WriteError(TimeoutNegative);
                    return false;
                }
                blockUntil = timeout > 0 ? (timeout > long.MaxValue - ctx.Now ? long.MaxValue : ctx.Now + timeout) : 0;
            }
            else if (Is(o, "COUNT"u8) && more > 0)
            {
                i++;
                if (!TryGetInt64(ctx, i, out count)) return false;
                if (count < 0) count = 0;
            }
            else if (Is(o, "STREAMS"u8) && more > 0)
            {
                streamsIndex = i + 1;
                streamCount = ctx.Count - streamsIndex;
                if (streamCount % 2 != 0)
                {
                    // Redis 7.0 names XREAD and '$' for both commands.
                    ctx.Reply.WriteError("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
                    return false;
                }
                streamCount /= 2;
                break;
            }
            else if (Is(o, "GROUP"u8) && more >= 2)
            {
                if (!group)
                {
                    ctx.Reply.WriteError("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
                    return false;
                }
                groupIndex = i + 1;
                i += 2;
            }
            else if (Is(o, "NOACK"u8))
            {
                if (!group)
                {
                    ctx.Reply.WriteError("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
                    return false;
                }
                noAck = true;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return false;
            }
        }
        if (streamsIndex == 0)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return false;
        }
        if (group && groupIndex < 0)
        {
            ctx.Reply.WriteError("ERR Missing GROUP option for XREADGROUP");
            return false;
        }
        if (request.Ids.Length < streamCount) request.Ids = new StreamId[Math.Max(streamCount, 4)];
        StreamId[] ids = request.Ids;
        for (int k = 0; k < streamCount; k++)
        {
            int idIndex = streamsIndex + streamCount + k;
            ReadOnlySpan<byte> key = ctx[streamsIndex + k];
            if (!TryLookupStream(ctx, key, read: true, out KvStream? s)) return false;
            if (groupIndex >= 0 && s?.FindGroup(ctx[groupIndex]) is null)
            {
                ctx.Reply.WriteError($"NOGROUP No such key '{Text(key)}' or consumer group '{Text(ctx[groupIndex])}' in XREADGROUP with GROUP option");
                return false;
            }
            ReadOnlySpan<byte> idText = ctx[idIndex];
            if (idText.SequenceEqual("$"u8))
            {
                if (group)
                {
                    ctx.Reply.WriteError(DollarInXReadGroup);
                    return false;
                }
                ids[k] = s?.LastId ?? StreamId.Zero;
            }
            else if (idText.SequenceEqual(">"u8))
            {
                if (!group)
                {
                    ctx.Reply.WriteError(GreaterInXRead);
                    return false;
                }
                ids[k] = StreamId.Max;
            }
            else if (!TryParseStreamId(ctx, idText, 0, strict: true, out ids[k]))
            {
                return false;
            }
        }
        request.KeysIndex = streamsIndex;
        request.StreamCount = streamCount;
        request.GroupIndex = groupIndex;
        request.Count = count;
        request.NoAck = noAck;
        request.BlockUntil = blockUntil;
        return true;
    }

    /// <summary>Serves an XREAD/XREADGROUP without blocking: writes the reply and returns true when at least one stream
    /// had something to serve (new entries, or the consumer's history); returns false and writes nothing otherwise.</summary>
    /// <remarks>For XREADGROUP this delivers: the group's last ID and read counter advance, pending entries are created
    /// (unless NOACK), and the effects are logged as Redis propagates them (XCLAIM per entry, XGROUP SETID with
    /// ENTRIESREAD, XGROUP CREATECONSUMER). A key that vanished or changed type since parsing is skipped.</remarks>
    internal bool TryReadStreams(in Context ctx, StreamReadRequest request)
    {
        // Streams are served one after the other (a key named twice sees the first read's effects), each into a
        // scratch buffer, since the reply starts with the number of streams served.
        System.Buffers.ArrayBufferWriter<byte>? scratch = null;
        RespWriter? body = null;
        int served = 0;
        try
        {
            return TryReadStreamsInto(ctx, request, ref scratch, ref body, ref served);
        }
        finally
        {
            // Kept for the next read unless it grew large (a big reply); taken while in use, so never shared.
            if (scratch is not null && scratch.Capacity <= 64 * 1024) (_readScratch, _readScratchWriter) = (scratch, body);
        }
    }

    private System.Buffers.ArrayBufferWriter<byte>? _readScratch; // TryReadStreams' buffer and its writer, reused
    private RespWriter? _readScratchWriter;

    private bool TryReadStreamsInto(in Context ctx, StreamReadRequest request, ref System.Buffers.ArrayBufferWriter<byte>? scratch,
        ref RespWriter? body, ref int served)
    {
        for (int i = 0; i < request.StreamCount; i++)
        {
            ReadOnlySpan<byte> key = ctx[request.KeysIndex + i];
            KvStream? s = TryFindLiveStream(ctx, key, read: true, out KvStream? live) ? live : LookupRead(ctx, key)?.Value as KvStream;
            if (s is null) continue;
            StreamId gt = request.Ids[i];
            bool history = false;
            StreamGroup? g = null;
            if (request.IsGroup)
            {
                g = s.FindGroup(ctx[request.GroupIndex]);
                if (g is null) continue;
                if (gt != StreamId.Max) history = true;
                else if (s.Count > 0 && s.LastValidId() > g.LastId) gt = g.LastId;
                else continue;
            }
            else if (s.Count == 0 || s.LastValidId() <= gt)
            {
                continue;
            }
            gt.TryIncrement(out StreamId start);
            if (scratch is null)
            {
                if (_readScratch is not null)
                {
                    (scratch, body) = (_readScratch, _readScratchWriter!);
                    (_readScratch, _readScratchWriter) = (null, null);
                    scratch.ResetWrittenCount();
                    body.Protocol = ctx.Reply.Protocol;
                }
                else
                {
                    scratch = new System.Buffers.ArrayBufferWriter<byte>();
                    body = new RespWriter(scratch, ctx.Reply.Protocol);
                }
            }
            System.Diagnostics.Debug.Assert(body is not null); // set with scratch
            served++;
            if (!body.IsResp3) body.WriteArrayHeader(2);
            body.WriteBulkString(key);
            List<StreamEntry> entries = _readEntries ?? [];
            _readEntries = null; // taken while in use (nothing below runs another read, but a stray reuse would be silent)
            entries.Clear();
            if (g is null)
            {
                s.CollectRange(start, StreamId.Max, request.Count, reverse: false, entries);
                WriteStreamEntries(body, entries);
                ReturnReadEntries(entries);
                continue;
            }
            ReadOnlySpan<byte> consumerName = ctx[request.GroupIndex + 1];
            StreamConsumer c = g.FindConsumer(consumerName) ?? CreateConsumer(ctx, g, key, consumerName, log: true);
            c.SeenTime = ctx.Now;
            if (history)
            {
                ReturnReadEntries(entries);
                ServeHistory(ctx, body, key, s, g, c, start, request.Count);
                continue;
            }
            s.CollectRange(start, StreamId.Max, request.Count, reverse: false, entries);
            body.WriteArrayHeader(entries.Count);
            bool advanced = false;
            foreach (StreamEntry entry in entries)
            {
                WriteStreamEntry(body, entry);
                if (entry.Id > g.LastId)
                {
                    s.AdvanceGroup(g, entry.Id);
                    advanced = true;
                }
                if (request.NoAck) continue;
                StreamPending? p = g.FindPending(entry.Id);
                if (p is null)
                {
                    p = new StreamPending(entry.Id);
                    g.Pel.Add(p);
                }
                else
                {
                    p.Consumer?.Pel.Remove(p); // delivered again after XGROUP SETID: the new consumer owns it
                }
                p.Consumer = c;
                p.DeliveryTime = ctx.Now;
                p.DeliveryCount = 1;
                c.Pel.Add(p);
                LogXClaim(ctx, key, g, p);
            }
            if (entries.Count > 0) Dirty++;
            ReturnReadEntries(entries);
            // Redis 7.0 propagates the group's last ID only after NOACK reads; logging it (with ENTRIESREAD) after every
            // read that advanced it keeps the read counter and lag exact after replay, as later Redis versions do.
            if (advanced) LogGroupId(ctx, key, g);
        }
        if (served == 0) return false;
        if (ctx.Reply.IsResp3) ctx.Reply.WriteMapHeader(served);
        else ctx.Reply.WriteArrayHeader(served);
        ctx.Reply.WriteRaw(scratch!.WrittenSpan);
        return true;
    }

    private List<StreamEntry>? _readEntries; // the entries one stream of an XREAD/XREADGROUP serves, reused

    private void ReturnReadEntries(List<StreamEntry> entries)
    {
        entries.Clear(); // no references kept to entries a later XDEL/XTRIM drops
        if (entries.Capacity <= 1024) _readEntries = entries;
    }

    private void ServeHistory(in Context ctx, RespWriter body, ReadOnlySpan<byte> key, KvStream s, StreamGroup g, StreamConsumer c, StreamId start, long count)
    {
        var history = new List<StreamPending>();
        foreach (StreamPending p in c.Pel.Range(start, StreamId.Max))
        {
            history.Add(p);
            if (count > 0 && history.Count == count) break;
        }
        body.WriteArrayHeader(history.Count);
        foreach (StreamPending p in history)
        {
            StreamEntry? entry = s.Find(p.Id);
            if (entry is null)
            {
                // A pending entry whose message was deleted: its ID with a nil instead of the fields.
                body.WriteArrayHeader(2);
                WriteStreamId(body, p.Id);
                body.WriteNullArray();
                continue;
            }
            WriteStreamEntry(body, entry);
            p.DeliveryTime = ctx.Now;
            p.DeliveryCount++;
            // Not propagated by Redis 7.0 (its replicas keep the old count); logged here so replay keeps it.
            LogXClaim(ctx, key, g, p);
            Dirty++;
        }
    }

    // ---------------------------------------------------------------- XGROUP / XSETID

    private static readonly string[] s_xgroupHelp =
    [
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    ];

    private static readonly string[] s_xinfoHelp =
    [
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ];

    private static void WriteHelp(RespWriter reply, string[] lines)
    {
        reply.WriteArrayHeader(lines.Length);
        foreach (string line in lines) reply.WriteSimpleString(line);
    }

    // Redis 7.0 declares XGROUP and XINFO subcommands in its command table, each with its own arity.
    private static bool TryResolveSubcommand(in Context ctx, string command, (string Name, int Arity)[] table, out string name)
    {
        ReadOnlySpan<byte> sub = ctx[1];
        foreach ((string n, int arity) in table)
        {
            if (!Ascii.EqualsIgnoreCase(sub, n)) continue;
            name = n;
            if (arity >= 0 ? ctx.Count == arity : ctx.Count >= -arity) return true;
            ctx.Reply.WriteError(KvErrors.WrongArity(command + "|" + n));
            return false;
        }
        name = "";
        ctx.Reply.WriteError(KvErrors.UnknownSubcommand(ctx.Command.GetString(1), command));
        return false;
    }

    private static readonly (string, int)[] s_xgroupSubcommands =
        [("create", -5), ("setid", -5), ("destroy", 4), ("createconsumer", 5), ("delconsumer", 5), ("help", 2)];

    private static readonly (string, int)[] s_xinfoSubcommands = [("stream", -3), ("groups", 3), ("consumers", 4), ("help", 2)];

    private void XGroup(in Context ctx)
    {
        if (!TryResolveSubcommand(ctx, "xgroup", s_xgroupSubcommands, out string sub)) return;
        if (sub == "help")
        {
            WriteHelp(ctx.Reply, s_xgroupHelp);
            return;
        }
        bool create = sub == "create", setid = sub == "setid", mkstream = false;
        long entriesRead = StreamGroup.InvalidEntriesRead;
        for (int i = 5; i < ctx.Count;)
        {
            if (create && Is(ctx[i], "MKSTREAM"u8))
            {
                mkstream = true;
                i++;
            }
            else if ((create || setid) && Is(ctx[i], "ENTRIESREAD"u8) && i + 1 < ctx.Count)
            {
                if (!TryGetInt64(ctx, i + 1, out entriesRead)) return;
                if (entriesRead < 0 && entriesRead != StreamGroup.InvalidEntriesRead)
                {
                    ctx.Reply.WriteError(EntriesReadInvalid);
                    return;
                }
                i += 2;
            }
            else
            {
                ctx.Reply.WriteError(SubcommandSyntax(ctx, "XGROUP"));
                return;
            }
        }
        ReadOnlySpan<byte> key = ctx[2], groupName = ctx[3];
        if (!TryLookupStream(ctx, key, read: false, out KvStream? s)) return;
        StreamGroup? g = null;
        if (!mkstream)
        {
            if (s is null)
            {
                ctx.Reply.WriteError(XGroupNeedsKey);
                return;
            }
            g = s.FindGroup(groupName);
            if (g is null && (setid || sub is "createconsumer" or "delconsumer"))
            {
                ctx.Reply.WriteError(NoSuchGroup(groupName, key));
                return;
            }
        }
        switch (sub)
        {
            case "create" when ctx.Count is >= 5 and <= 8:
            {
                StreamId id;
                if (ctx[4].SequenceEqual("$"u8)) id = s?.LastId ?? StreamId.Zero;
                else if (!TryParseStreamId(ctx, ctx[4], 0, strict: true, out id)) return;
                if (s is null)
                {
                    s = new KvStream();
                    AddKey(ctx, key, s);
                }
                if (s.FindGroup(groupName) is not null)
                {
                    ctx.Reply.WriteError(BusyGroup);
                    return;
                }
                byte[] name = groupName.ToArray();
                s.AddGroup(new StreamGroup(name, id, entriesRead));
                Changed(ctx, key, KvEventClass.Stream, "xgroup-create");
                ctx.LogSelf();
                ctx.Reply.WriteOk();
                return;
            }
            case "setid" when ctx.Count is 5 or 7:
            {
                StreamId id;
                if (ctx[4].SequenceEqual("$"u8)) id = s!.LastId;
                else if (!TryParseStreamId(ctx, ctx[4], 0, strict: false, out id)) return;
                g!.LastId = id;
                g.EntriesRead = entriesRead;
                Changed(ctx, key, KvEventClass.Stream, "xgroup-setid");
                ctx.LogSelf();
                ctx.Reply.WriteOk();
                return;
            }
            case "destroy":
                if (g is null)
                {
                    ctx.Reply.WriteInteger(0);
                    return;
                }
                s!.RemoveGroup(g);
                Changed(ctx, key, KvEventClass.Stream, "xgroup-destroy");
                ctx.LogSelf();
                ctx.Reply.WriteInteger(1);
                return;
            case "createconsumer":
                if (g!.FindConsumer(ctx[4]) is not null)
                {
                    ctx.Reply.WriteInteger(0);
                    return;
                }
                CreateConsumer(ctx, g, key, ctx[4], log: false);
                ctx.LogSelf();
                ctx.Reply.WriteInteger(1);
                return;
            case "delconsumer":
            {
                StreamConsumer? c = g!.FindConsumer(ctx[4]);
                long pending = 0;
                if (c is not null)
                {
                    pending = c.Pel.Count;
                    g.RemoveConsumer(c);
                    Changed(ctx, key, KvEventClass.Stream, "xgroup-delconsumer");
                    ctx.LogSelf();
                }
                ctx.Reply.WriteInteger(pending);
                return;
            }
            default:
                ctx.Reply.WriteError(SubcommandSyntax(ctx, "XGROUP"));
                return;
        }
    }

    private void XSetId(in Context ctx)
    {
        if (!TryParseStreamId(ctx, ctx[2], 0, strict: true, out StreamId id)) return;
        long entriesAdded = -1;
        StreamId maxDeleted = StreamId.Zero;
        for (int i = 3; i < ctx.Count;)
        {
            int more = ctx.Count - 1 - i;
            if (Is(ctx[i], "ENTRIESADDED"u8) && more > 0)
            {
                if (!TryGetInt64(ctx, i + 1, out entriesAdded)) return;
                if (entriesAdded < 0)
                {
                    ctx.Reply.WriteError("ERR entries_added must be positive");
                    return;
                }
                i += 2;
            }
            else if (Is(ctx[i], "MAXDELETEDID"u8) && more > 0)
            {
                if (!TryParseStreamId(ctx, ctx[i + 1], 0, strict: true, out maxDeleted)) return;
                if (id < maxDeleted)
                {
                    ctx.Reply.WriteError("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
                    return;
                }
                i += 2;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupStream(ctx, key, read: false, out KvStream? s)) return;
        if (s is null)
        {
            ctx.Reply.WriteError(NoSuchKey);
            return;
        }
        if (s.Count > 0)
        {
            if (id < s.LastValidId())
            {
                ctx.Reply.WriteError("ERR The ID specified in XSETID is smaller than the target stream top item");
                return;
            }
            if (entriesAdded != -1 && s.Count > entriesAdded)
            {
                ctx.Reply.WriteError("ERR The entries_added specified in XSETID is smaller than the target stream length");
                return;
            }
        }
        // (Redis 7.0 does not compare the ID with the current max deleted ID.)
        s.LastId = id;
        if (entriesAdded != -1) s.EntriesAdded = entriesAdded;
        if (!maxDeleted.IsZero) s.MaxDeletedId = maxDeleted;
        Changed(ctx, key, KvEventClass.Stream, "xsetid");
        ctx.LogSelf();
        ctx.Reply.WriteOk();
    }

    // ---------------------------------------------------------------- XACK / XPENDING

    private void XAck(in Context ctx)
    {
        if (!TryLookupStream(ctx, ctx[1], read: true, out KvStream? s)) return;
        StreamGroup? g = s?.FindGroup(ctx[2]);
        if (g is null)
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        Span<StreamId> ids = ctx.Count - 3 <= 64 ? stackalloc StreamId[ctx.Count - 3] : new StreamId[ctx.Count - 3];
        for (int j = 3; j < ctx.Count; j++)
        {
            if (!TryParseStreamId(ctx, ctx[j], 0, strict: true, out ids[j - 3])) return;
        }
        long acknowledged = 0;
        foreach (StreamId id in ids)
        {
            StreamPending? p = g.FindPending(id);
            if (p is null) continue;
            g.RemovePending(p);
            acknowledged++;
        }
        if (acknowledged > 0)
        {
            Dirty += acknowledged;
            ctx.LogSelf();
        }
        ctx.Reply.WriteInteger(acknowledged);
    }

    private void XPending(in Context ctx)
    {
        bool summary = ctx.Count == 3;
        if (ctx.Count != 3 && (ctx.Count < 6 || ctx.Count > 9))
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        StreamId start = default, end = default;
        long count = 0, minIdle = 0;
        int consumerIndex = -1;
        if (ctx.Count >= 6)
        {
            int startIndex = 3;
            if (Is(ctx[3], "IDLE"u8))
            {
                if (!TryGetInt64(ctx, 4, out minIdle)) return;
                if (ctx.Count < 8)
                {
                    ctx.Reply.WriteError(KvErrors.Syntax);
                    return;
                }
                startIndex += 2;
            }
            if (!TryGetInt64(ctx, startIndex + 2, out count)) return;
            if (count < 0) count = 0;
            if (!TryParseRangeStart(ctx, startIndex, out start)) return;
            if (!TryParseRangeEnd(ctx, startIndex + 1, out end)) return;
            if (startIndex + 3 < ctx.Count) consumerIndex = startIndex + 3;
        }
        if (!TryLookupStream(ctx, ctx[1], read: true, out KvStream? s)) return;
        StreamGroup? g = s?.FindGroup(ctx[2]);
        if (g is null)
        {
            ctx.Reply.WriteError(NoGroupForKey(ctx[1], ctx[2]));
            return;
        }
        if (summary)
        {
            ctx.Reply.WriteArrayHeader(4);
            ctx.Reply.WriteInteger(g.Pel.Count);
            if (g.Pel.Count == 0)
            {
                ctx.Reply.WriteNull();
                ctx.Reply.WriteNull();
                ctx.Reply.WriteNullArray();
                return;
            }
            WriteStreamId(ctx.Reply, g.Pel.Min!.Id);
            WriteStreamId(ctx.Reply, g.Pel.Max!.Id);
            int withPending = 0;
            foreach (StreamConsumer c in g.Consumers.Values) if (c.Pel.Count > 0) withPending++;
            ctx.Reply.WriteArrayHeader(withPending);
            foreach (StreamConsumer c in g.Consumers.Values)
            {
                if (c.Pel.Count == 0) continue;
                ctx.Reply.WriteArrayHeader(2);
                ctx.Reply.WriteBulkString(c.Name);
                ctx.Reply.WriteBulkString(Bytes(c.Pel.Count));
            }
            return;
        }
        StreamPel pel = g.Pel;
        if (consumerIndex >= 0)
        {
            StreamConsumer? c = g.FindConsumer(ctx[consumerIndex]);
            if (c is null)
            {
                ctx.Reply.WriteArrayHeader(0);
                return;
            }
            pel = c.Pel;
        }
        var rows = new List<StreamPending>();
        foreach (StreamPending p in pel.Range(start, end))
        {
            if (rows.Count == count) break;
            if (minIdle != 0 && ctx.Now - p.DeliveryTime < minIdle) continue;
            rows.Add(p);
        }
        ctx.Reply.WriteArrayHeader(rows.Count);
        foreach (StreamPending p in rows)
        {
            ctx.Reply.WriteArrayHeader(4);
            WriteStreamId(ctx.Reply, p.Id);
            ctx.Reply.WriteBulkString(p.Consumer!.Name);
            ctx.Reply.WriteInteger(Math.Max(0, ctx.Now - p.DeliveryTime));
            ctx.Reply.WriteInteger(p.DeliveryCount);
        }
    }

    // ---------------------------------------------------------------- XCLAIM / XAUTOCLAIM

    private void XClaim(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryLookupStream(ctx, key, read: true, out KvStream? s)) return;
        StreamGroup? g = s?.FindGroup(ctx[2]);
        if (g is null)
        {
            ctx.Reply.WriteError(NoGroupForKey(key, ctx[2]));
            return;
        }
        if (!TryGetInt64(ctx, 4, "ERR Invalid min-idle-time argument for XCLAIM", out long minIdle)) return;
        if (minIdle < 0) minIdle = 0;
        var ids = new List<StreamId>();
        int j = 5;
        for (; j < ctx.Count; j++)
        {
            if (!StreamId.TryParse(ctx[j], 0, strict: true, allowSeqStar: false, out StreamId id, out _)) break;
            ids.Add(id);
        }
        long deliveryTime = -1, retryCount = -1;
        bool force = false, justId = false;
        StreamId lastId = StreamId.Zero;
        for (; j < ctx.Count; j++)
        {
            int more = ctx.Count - 1 - j;
            ReadOnlySpan<byte> opt = ctx[j];
            if (Is(opt, "FORCE"u8))
            {
                force = true;
            }
            else if (Is(opt, "JUSTID"u8))
            {
                justId = true;
            }
            else if (Is(opt, "IDLE"u8) && more > 0)
            {
                if (!TryGetInt64(ctx, ++j, "ERR Invalid IDLE option argument for XCLAIM", out long idle)) return;
                deliveryTime = ctx.Now - idle;
            }
            else if (Is(opt, "TIME"u8) && more > 0)
            {
                if (!TryGetInt64(ctx, ++j, "ERR Invalid TIME option argument for XCLAIM", out deliveryTime)) return;
            }
            else if (Is(opt, "RETRYCOUNT"u8) && more > 0)
            {
                if (!TryGetInt64(ctx, ++j, "ERR Invalid RETRYCOUNT option argument for XCLAIM", out retryCount)) return;
            }
            else if (Is(opt, "LASTID"u8) && more > 0)
            {
                if (!TryParseStreamId(ctx, ctx[++j], 0, strict: true, out lastId)) return;
            }
            else
            {
                ctx.Reply.WriteError($"ERR Unrecognized XCLAIM option '{Text(opt)}'");
                return;
            }
        }
        bool logLastId = false;
        if (lastId > g.LastId)
        {
            g.LastId = lastId;
            logLastId = true;
        }
        if (deliveryTime != -1)
        {
            // Redis: an IDLE/TIME in the future or before the epoch means now.
            if (deliveryTime < 0 || deliveryTime > ctx.Now) deliveryTime = ctx.Now;
        }
        else
        {
            deliveryTime = ctx.Now;
        }
        StreamConsumer? consumer = null; // Redis 7.0 looks it up (or creates it) at the first claim
        var claimed = new List<(StreamId Id, StreamEntry? Entry)>();
        foreach (StreamId id in ids)
        {
            StreamPending? p = g.FindPending(id);
            StreamEntry? entry = s!.Find(id);
            if (entry is null)
            {
                if (p is not null)
                {
                    LogXClaim(ctx, key, g, p); // replayed where the entry is also gone, it drops the pending entry
                    logLastId = false;
                    g.RemovePending(p);
                    Dirty++;
                }
                continue;
            }
            if (force && p is null)
            {
                p = new StreamPending(id);
                g.Pel.Add(p);
            }
            if (p is null) continue;
            if (p.Consumer is not null && minIdle != 0 && ctx.Now - p.DeliveryTime < minIdle) continue;
            consumer ??= ClaimingConsumer(ctx, g, key, ctx[3]);
            if (p.Consumer != consumer)
            {
                p.Consumer?.Pel.Remove(p);
            }
            p.DeliveryTime = deliveryTime;
            if (retryCount >= 0) p.DeliveryCount = retryCount;
            else if (!justId) p.DeliveryCount++;
            if (p.Consumer != consumer)
            {
                consumer.Pel.Add(p);
                p.Consumer = consumer;
            }
            claimed.Add((id, justId ? null : entry));
            LogXClaim(ctx, key, g, p);
            logLastId = false;
            Dirty++;
        }
        if (logLastId)
        {
            LogGroupId(ctx, key, g);
            Dirty++;
        }
        ctx.Reply.WriteArrayHeader(claimed.Count);
        foreach ((StreamId id, StreamEntry? entry) in claimed)
        {
            if (entry is null) WriteStreamId(ctx.Reply, id);
            else WriteStreamEntry(ctx.Reply, entry);
        }
    }

    private void XAutoClaim(in Context ctx)
    {
        ReadOnlySpan<byte> key = ctx[1];
        if (!TryGetInt64(ctx, 4, "ERR Invalid min-idle-time argument for XAUTOCLAIM", out long minIdle)) return;
        if (minIdle < 0) minIdle = 0;
        if (!TryParseRangeStart(ctx, 5, out StreamId start)) return;
        long count = 100;
        bool justId = false;
        for (int j = 6; j < ctx.Count; j++)
        {
            int more = ctx.Count - 1 - j;
            if (Is(ctx[j], "COUNT"u8) && more > 0)
            {
                if (!RespNumbers.TryParseInt64(ctx[j + 1], out count) || count < 1 || count > XAutoClaimMaxCount)
                {
                    ctx.Reply.WriteError("ERR COUNT must be > 0");
                    return;
                }
                j++;
            }
            else if (Is(ctx[j], "JUSTID"u8))
            {
                justId = true;
            }
            else
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (!TryLookupStream(ctx, key, read: true, out KvStream? s)) return;
        StreamGroup? g = s?.FindGroup(ctx[2]);
        if (g is null)
        {
            ctx.Reply.WriteError(NoGroupForKey(key, ctx[2]));
            return;
        }
        if (count > XAutoClaimAllocatableCount)
        {
            ctx.Reply.WriteError("ERR Insufficient memory, failed allocating transient memory, COUNT too high.");
            return;
        }
        StreamConsumer? consumer = null; // Redis 7.0 looks it up (or creates it) at the first claim
        long attempts = count * XAutoClaimAttemptsFactor;
        var claimed = new List<(StreamId Id, StreamEntry? Entry)>();
        var deletedIds = new List<StreamId>();
        // The PEL entries the scan can reach: at most one per attempt, plus the next one (the cursor).
        var candidates = new List<StreamPending>();
        foreach (StreamPending p in g.Pel.Range(start, StreamId.Max))
        {
            candidates.Add(p);
            if (candidates.Count > attempts) break;
        }
        int position = 0; // the next candidate (Redis's rax iterator)
        while (attempts-- > 0 && count > 0 && position < candidates.Count)
        {
            StreamPending p = candidates[position++];
            StreamEntry? entry = s!.Find(p.Id);
            if (entry is null)
            {
                LogXClaim(ctx, key, g, p);
                g.RemovePending(p);
                Dirty++;
                deletedIds.Add(p.Id);
                count--;
                continue;
            }
            if (minIdle != 0 && ctx.Now - p.DeliveryTime < minIdle) continue;
            consumer ??= ClaimingConsumer(ctx, g, key, ctx[3]);
            if (p.Consumer != consumer)
            {
                p.Consumer?.Pel.Remove(p);
                consumer.Pel.Add(p);
                p.Consumer = consumer;
            }
            p.DeliveryTime = ctx.Now;
            if (!justId) p.DeliveryCount++;
            claimed.Add((p.Id, justId ? null : entry));
            count--;
            LogXClaim(ctx, key, g, p);
            Dirty++;
        }
        StreamId cursor = position < candidates.Count ? candidates[position].Id : StreamId.Zero;
        ctx.Reply.WriteArrayHeader(3);
        WriteStreamId(ctx.Reply, cursor);
        ctx.Reply.WriteArrayHeader(claimed.Count);
        foreach ((StreamId id, StreamEntry? entry) in claimed)
        {
            if (entry is null) WriteStreamId(ctx.Reply, id);
            else WriteStreamEntry(ctx.Reply, entry);
        }
        ctx.Reply.WriteArrayHeader(deletedIds.Count);
        foreach (StreamId id in deletedIds) WriteStreamId(ctx.Reply, id);
    }

    // ---------------------------------------------------------------- XINFO

    private void XInfo(in Context ctx)
    {
        if (!TryResolveSubcommand(ctx, "xinfo", s_xinfoSubcommands, out string sub)) return;
        if (sub == "help")
        {
            WriteHelp(ctx.Reply, s_xinfoHelp);
            return;
        }
        ReadOnlySpan<byte> key = ctx[2];
        if (!TryLookupStream(ctx, key, read: true, out KvStream? s)) return;
        if (s is null)
        {
            ctx.Reply.WriteError(NoSuchKey);
            return;
        }
        RespWriter r = ctx.Reply;
        switch (sub)
        {
            case "consumers":
            {
                StreamGroup? g = s.FindGroup(ctx[3]);
                if (g is null)
                {
                    r.WriteError(NoSuchGroup(ctx[3], key));
                    return;
                }
                r.WriteArrayHeader(g.Consumers.Count);
                foreach (StreamConsumer c in g.Consumers.Values)
                {
                    r.WriteMapHeader(3);
                    r.WriteBulkString("name"u8);
                    r.WriteBulkString(c.Name);
                    r.WriteBulkString("pending"u8);
                    r.WriteInteger(c.Pel.Count);
                    r.WriteBulkString("idle"u8);
                    r.WriteInteger(Math.Max(0, ctx.Now - c.SeenTime));
                }
                return;
            }
            case "groups":
                r.WriteArrayHeader(s.GroupCount);
                if (s.Groups is null) return;
                foreach (StreamGroup g in s.Groups.Values)
                {
                    r.WriteMapHeader(6);
                    r.WriteBulkString("name"u8);
                    r.WriteBulkString(g.Name);
                    r.WriteBulkString("consumers"u8);
                    r.WriteInteger(g.Consumers.Count);
                    r.WriteBulkString("pending"u8);
                    r.WriteInteger(g.Pel.Count);
                    r.WriteBulkString("last-delivered-id"u8);
                    WriteStreamId(r, g.LastId);
                    WriteGroupCounters(r, s, g);
                }
                return;
            default:
                XInfoStream(ctx, s);
                return;
        }
    }

    private static void WriteGroupCounters(RespWriter r, KvStream s, StreamGroup g)
    {
        r.WriteBulkString("entries-read"u8);
        if (g.EntriesRead != StreamGroup.InvalidEntriesRead) r.WriteInteger(g.EntriesRead);
        else r.WriteNull();
        r.WriteBulkString("lag"u8);
        if (s.Lag(g) is long lag) r.WriteInteger(lag);
        else r.WriteNull();
    }

    private static void XInfoStream(in Context ctx, KvStream s)
    {
        bool full = true;
        long count = 10; // Redis's default for FULL, to bound the reply
        int options = ctx.Count - 3;
        if (options == 0)
        {
            full = false;
        }
        else
        {
            if ((options != 1 && options != 3) || !Is(ctx[3], "FULL"u8) || (options == 3 && !Is(ctx[4], "COUNT"u8)))
            {
                ctx.Reply.WriteError(SubcommandSyntax(ctx, "XINFO"));
                return;
            }
            if (options == 3)
            {
                if (!TryGetInt64(ctx, 5, out count)) return;
                if (count < 0) count = 10;
            }
        }
        RespWriter r = ctx.Reply;
        r.WriteMapHeader(full ? 9 : 10);
        r.WriteBulkString("length"u8);
        r.WriteInteger(s.Count);
        r.WriteBulkString("radix-tree-keys"u8);
        r.WriteInteger(s.Nodes.Count);
        r.WriteBulkString("radix-tree-nodes"u8);
        r.WriteInteger(RadixTreeNodes(s));
        r.WriteBulkString("last-generated-id"u8);
        WriteStreamId(r, s.LastId);
        r.WriteBulkString("max-deleted-entry-id"u8);
        WriteStreamId(r, s.MaxDeletedId);
        r.WriteBulkString("entries-added"u8);
        r.WriteInteger(s.EntriesAdded);
        r.WriteBulkString("recorded-first-entry-id"u8);
        WriteStreamId(r, s.FirstId);
        if (!full)
        {
            r.WriteBulkString("groups"u8);
            r.WriteInteger(s.GroupCount);
            r.WriteBulkString("first-entry"u8);
            List<StreamEntry> first = TakeEntries(s, StreamId.Zero, StreamId.Max, 1);
            if (first.Count > 0) WriteStreamEntry(r, first[0]);
            else r.WriteNull();
            r.WriteBulkString("last-entry"u8);
            List<StreamEntry> last = TakeEntries(s, StreamId.Zero, StreamId.Max, 1, reverse: true);
            if (last.Count > 0) WriteStreamEntry(r, last[0]);
            else r.WriteNull();
            return;
        }
        r.WriteBulkString("entries"u8);
        WriteStreamEntries(r, TakeEntries(s, StreamId.Zero, StreamId.Max, count));
        r.WriteBulkString("groups"u8);
        r.WriteArrayHeader(s.GroupCount);
        if (s.Groups is null) return;
        foreach (StreamGroup g in s.Groups.Values)
        {
            r.WriteMapHeader(7);
            r.WriteBulkString("name"u8);
            r.WriteBulkString(g.Name);
            r.WriteBulkString("last-delivered-id"u8);
            WriteStreamId(r, g.LastId);
            WriteGroupCounters(r, s, g);
            r.WriteBulkString("pel-count"u8);
            r.WriteInteger(g.Pel.Count);
            r.WriteBulkString("pending"u8);
            int pelRows = count == 0 ? g.Pel.Count : (int)Math.Min(count, g.Pel.Count);
            r.WriteArrayHeader(pelRows);
            foreach (StreamPending p in g.Pel)
            {
                if (pelRows-- == 0) break;
                r.WriteArrayHeader(4);
                WriteStreamId(r, p.Id);
                r.WriteBulkString(p.Consumer!.Name);
                r.WriteInteger(p.DeliveryTime);
                r.WriteInteger(p.DeliveryCount);
            }
            r.WriteBulkString("consumers"u8);
            r.WriteArrayHeader(g.Consumers.Count);
            foreach (StreamConsumer c in g.Consumers.Values)
            {
                r.WriteMapHeader(4);
                r.WriteBulkString("name"u8);
                r.WriteBulkString(c.Name);
                r.WriteBulkString("seen-time"u8);
                r.WriteInteger(c.SeenTime);
                r.WriteBulkString("pel-count"u8);
                r.WriteInteger(c.Pel.Count);
                r.WriteBulkString("pending"u8);
                int rows = count == 0 ? c.Pel.Count : (int)Math.Min(count, c.Pel.Count);
                r.WriteArrayHeader(rows);
                foreach (StreamPending p in c.Pel)
                {
                    if (rows-- == 0) break;
                    r.WriteArrayHeader(3);
                    WriteStreamId(r, p.Id);
                    r.WriteInteger(p.DeliveryTime);
                    r.WriteInteger(p.DeliveryCount);
                }
            }
        }
    }

    // The node count of Redis's radix tree keyed by the nodes' master IDs (16 bytes, big endian): a compressed trie
    // where each branching point is a node, each run of single-child bytes one compressed node, each key a leaf.
    private static long RadixTreeNodes(KvStream s)
    {
        int n = s.Nodes.Count;
        if (n == 0) return 1;
        var keys = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            var k = new byte[16];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(k, s.Nodes[i].MasterId.Ms);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(8), s.Nodes[i].MasterId.Seq);
            keys[i] = k;
        }
        return CountRaxNodes(keys, 0, n, 0);

        static long CountRaxNodes(byte[][] keys, int from, int to, int depth)
        {
            if (to - from == 1) return depth == 16 ? 1 : 2;
            int prefix = depth;
            while (prefix < 16 && keys[from][prefix] == keys[to - 1][prefix]) prefix++; // keys are sorted
            long nodes = prefix > depth ? 1 : 0;
            nodes++; // the branching node
            int i = from;
            while (i < to)
            {
                int j = i + 1;
                while (j < to && keys[j][prefix] == keys[i][prefix]) j++;
                nodes += CountRaxNodes(keys, i, j, prefix + 1);
                i = j;
            }
            return nodes;
        }
    }
}
