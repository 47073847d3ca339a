using System.Buffers;

namespace EioSharp.Kv;

/// <summary>A connection's blocking command waiting for data (BLPOP and the like), as the store keeps it.</summary>
/// <remarks>Created by <see cref="KvStore"/> when a blocking command finds nothing to serve; the server keeps the
/// connection's request parked until <see cref="KvStore.TakeUnblocked()"/> hands the session back.</remarks>
public sealed class KvBlockedCommand
{
    internal KvBlockedCommand(KvCommand command, RespWriter reply, (int Db, byte[] Key)[] keys, long deadlineUnixMs, long sequence, KvBlockServe serve)
    {
        Command = command.ToOwned(); // kept until served: a view over the receive buffer would be overwritten
        Reply = reply;
        Keys = keys;
        DeadlineUnixMs = deadlineUnixMs;
        Sequence = sequence;
        Serve = serve;
    }

    /// <summary>The blocking command.</summary>
    public KvCommand Command { get; }

    /// <summary>Where its reply goes once it is served, times out or is unblocked.</summary>
    internal RespWriter Reply { get; }

    /// <summary>The keys it waits on, with their database.</summary>
    internal (int Db, byte[] Key)[] Keys { get; }

    /// <summary>When it times out, in Unix milliseconds; -1: never.</summary>
    public long DeadlineUnixMs { get; }

    internal long Sequence { get; }

    internal KvBlockServe Serve { get; }

    /// <summary>Writes the reply when the command times out or CLIENT UNBLOCK ... TIMEOUT ends it (null: a nil array,
    /// as the blocking pops answer; WAIT answers the number of replicas that acknowledged, 0).</summary>
    internal Action<RespWriter>? TimeoutReply { get; init; }

    /// <summary>How it ended (null while it waits).</summary>
    public KvUnblockReason? Outcome { get; internal set; }
}

/// <summary>Why a blocked command stopped waiting.</summary>
public enum KvUnblockReason
{
    /// <summary>Data arrived and it was served.</summary>
    Served,
    /// <summary>Its timeout passed (nil reply).</summary>
    TimedOut,
    /// <summary>CLIENT UNBLOCK ... TIMEOUT (nil reply) or ERROR (-UNBLOCKED error).</summary>
    Unblocked,
    /// <summary>The connection went away; nothing was served on its behalf.</summary>
    Cancelled,
}

/// <summary>Tries to serve a blocking command now; returns false (having written nothing and changed nothing) when there is nothing to serve.</summary>
internal delegate bool KvBlockServe(KvStore store, in KvStore.Context ctx);

public sealed partial class KvStore
{
    private const string TimeoutNotFloat = "ERR timeout is not a float or out of range";
    private const string TimeoutNegative = "ERR timeout is negative";

    private readonly Dictionary<BlockKey, LinkedList<KvSession>> _blockedKeys = new(BlockKeyComparer.Instance);
    private readonly List<BlockKey> _readyKeys = [];
    private readonly HashSet<BlockKey> _readySet = new(BlockKeyComparer.Instance);
    private readonly List<KvSession> _unblocked = [];
    private readonly Dictionary<long, KvSession> _blockedByClientId = [];
    private long _blockSequence;
    private int _depth; // commands running: 1 for a client's command, more while it runs others (EXEC, scripts, blocking commands serving themselves)

    /// <summary>The blocking commands.</summary>
    internal static readonly KvCommandInfo[] BlockingCommands =
    [
        KvCommandTable.Data("blpop", -3, W, 1, -2, 1, static (s, in c) => s.BlockingPop(c, left: true)),
        KvCommandTable.Data("brpop", -3, W, 1, -2, 1, static (s, in c) => s.BlockingPop(c, left: false)),
        KvCommandTable.Data("brpoplpush", 4, W, 1, 2, 1, static (s, in c) => s.BlockingMove(c, "RPOPLPUSH", 3)),
        KvCommandTable.Data("blmove", 6, W, 1, 2, 1, static (s, in c) => s.BlockingMove(c, "LMOVE", 5)),
        KvCommandTable.Data("blmpop", -5, W, 0, 0, 0, static (s, in c) => s.BlockingMultiPop(c, "LMPOP")),
        KvCommandTable.Data("bzpopmin", -3, W, 1, -2, 1, static (s, in c) => s.BlockingZPop(c, "ZPOPMIN")),
        KvCommandTable.Data("bzpopmax", -3, W, 1, -2, 1, static (s, in c) => s.BlockingZPop(c, "ZPOPMAX")),
        KvCommandTable.Data("bzmpop", -5, W, 0, 0, 0, static (s, in c) => s.BlockingMultiPop(c, "ZMPOP")),
    ];

    /// <summary>Number of connections blocked on keys (INFO blocked_clients).</summary>
    public int BlockedClients => _blockedByClientId.Count;

    /// <summary>The earliest deadline of a blocked command in Unix ms, or -1 when none has one.</summary>
    public long NextBlockDeadline
    {
        get
        {
            long next = -1;
            foreach (KvSession s in _blockedByClientId.Values)
            {
                long d = s.Blocked!.DeadlineUnixMs;
                if (d >= 0 && (next < 0 || d < next)) next = d;
            }
            return next;
        }
    }

    /// <summary>Sessions whose blocked command ended (served, timed out, unblocked) since the last call, in that order.
    /// The caller continues each one's pipelined commands and releases its reply after the AOF commit.</summary>
    public List<KvSession> TakeUnblocked()
    {
        if (_unblocked.Count == 0) return [];
        var list = new List<KvSession>(_unblocked);
        _unblocked.Clear();
        return list;
    }

    /// <summary>As <see cref="TakeUnblocked()"/>, appending to <paramref name="into"/> (the store owner's reused list)
    /// instead of allocating one per call.</summary>
    /// <returns>True when any session was appended.</returns>
    public bool TakeUnblocked(List<KvSession> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (_unblocked.Count == 0) return false;
        into.AddRange(_unblocked);
        _unblocked.Clear();
        return true;
    }

    /// <summary>Times out every blocked command whose deadline is at or before <paramref name="nowUnixMs"/> (nil reply).</summary>
    /// <returns>How many timed out; their sessions are returned by <see cref="TakeUnblocked()"/>.</returns>
    public int ExpireBlocked(long nowUnixMs)
    {
        List<KvSession>? due = null;
        foreach (KvSession s in _blockedByClientId.Values)
        {
            long d = s.Blocked!.DeadlineUnixMs;
            if (d >= 0 && d <= nowUnixMs) (due ??= []).Add(s);
        }
        if (due is null) return 0;
        due.Sort((a, b) => a.Blocked!.Sequence.CompareTo(b.Blocked!.Sequence));
        foreach (KvSession s in due) EndBlock(s, KvUnblockReason.TimedOut, null);
        return due.Count;
    }

    /// <summary>Stops waiting for a connection that went away: nothing is served on its behalf.</summary>
    /// <returns>True if it was blocked.</returns>
    public bool CancelBlocked(KvSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.Blocked is null) return false;
        KvBlockedCommand b = session.Blocked;
        RemoveBlocked(session);
        b.Outcome = KvUnblockReason.Cancelled;
        return true;
    }

    // CLIENT UNBLOCK client-id [TIMEOUT|ERROR]
    private void ClientUnblock(in Context ctx)
    {
        if (ctx.Count is < 3 or > 4)
        {
            ctx.Reply.WriteError(KvErrors.WrongArity("client|unblock"));
            return;
        }
        bool error = false;
        if (ctx.Count == 4)
        {
            if (Is(ctx[3], "ERROR"u8)) error = true;
            else if (!Is(ctx[3], "TIMEOUT"u8))
            {
                ctx.Reply.WriteError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
                return;
            }
        }
        if (!RespNumbers.TryParseInt64(ctx[2], out long id))
        {
            ctx.Reply.WriteError(KvErrors.NotInteger);
            return;
        }
        if (!_blockedByClientId.TryGetValue(id, out KvSession? target))
        {
            ctx.Reply.WriteInteger(0);
            return;
        }
        EndBlock(target, KvUnblockReason.Unblocked, error ? "UNBLOCKED client unblocked via CLIENT UNBLOCK" : null);
        ctx.Reply.WriteInteger(1);
    }

    /// <summary>Parses a blocking timeout in seconds (BLPOP...) into an absolute deadline (-1: wait forever).</summary>
    private static bool TryGetBlockDeadline(in Context ctx, int index, bool milliseconds, out long deadline)
    {
        // Redis's getTimeoutFromObjectOrReply: seconds as a (long) double, milliseconds as an integer; ceil; then
        // "negative" only if the rounded value is; 0 waits forever.
        deadline = -1;
        long ms;
        if (milliseconds)
        {
            if (!RespNumbers.TryParseInt64(ctx[index], out ms))
            {
                ctx.Reply.WriteError("ERR timeout is not an integer or out of range");
                return false;
            }
        }
        else
        {
            if (!RespNumbers.TryParseDouble(ctx[index], out double seconds) || double.IsNaN(seconds) || double.IsInfinity(seconds))
            {
                ctx.Reply.WriteError(TimeoutNotFloat);
                return false;
            }
            double value = Math.Ceiling(seconds * 1000.0);
            if (value > long.MaxValue || value < long.MinValue)
            {
                ctx.Reply.WriteError("ERR timeout is out of range");
                return false;
            }
            ms = (long)value;
        }
        if (ms < 0)
        {
            ctx.Reply.WriteError(TimeoutNegative);
            return false;
        }
        if (ms > 0)
        {
            if (ms > long.MaxValue - ctx.Now)
            {
                ctx.Reply.WriteError("ERR timeout is out of range");
                return false;
            }
            deadline = ctx.Now + ms;
        }
        return true;
    }

    /// <summary>Runs <paramref name="args"/> as a nested command of this session and returns its reply bytes (null when
    /// the reply is a nil, which means nothing was served).</summary>
    private byte[]? RunNested(in Context ctx, params byte[][] args) =>
        RunNestedInto(ctx, args, out ReadOnlySpan<byte> reply) ? reply.ToArray() : null;

    private ArrayBufferWriter<byte>? _nestedReply; // RunNestedInto's buffer and its writer, reused (taken while in use: never shared)
    private RespWriter? _nestedWriter;
    private KvCommandBuilder? _nestedBuilder; // the nested command of a blocked pop's serve, reused (taken while in use)

    /// <summary>Runs <paramref name="args"/> as a nested command; false when its reply is a nil (nothing was served).
    /// <paramref name="reply"/> is valid until the next nested command runs.</summary>
    private bool RunNestedInto(in Context ctx, byte[][] args, out ReadOnlySpan<byte> reply) =>
        RunNestedInto(ctx, KvCommand.Create(args), out reply);

    /// <summary>Runs <paramref name="command"/> as a nested command of this session; false when its reply is a nil.
    /// <paramref name="reply"/> is valid until the next nested command runs.</summary>
    private bool RunNestedInto(in Context ctx, KvCommand command, out ReadOnlySpan<byte> reply)
    {
        ArrayBufferWriter<byte> buffer = _nestedReply ?? new ArrayBufferWriter<byte>(64);
        RespWriter writer = _nestedWriter ?? new RespWriter(buffer, ctx.Reply.Protocol);
        _nestedReply = null; // a nested command that itself runs one gets a buffer of its own
        _nestedWriter = null;
        buffer.ResetWrittenCount();
        writer.Protocol = ctx.Reply.Protocol;
        try
        {
            if (command.Info?.Handler is not { } handler)
            {
                ctx.Reply.WriteError(KvErrors.UnknownCommand(command));
                reply = [];
                return true; // served with an error (the command family is missing)
            }
            _depth++;
            try
            {
                handler(this, new Context(this, ctx.Db, ctx.Session, command, ctx.Now, writer, ctx.Aof, command.Info.Name));
            }
            finally
            {
                _depth--;
            }
            reply = buffer.WrittenSpan;
            return !(reply.SequenceEqual("*-1\r\n"u8) || reply.SequenceEqual("$-1\r\n"u8) || reply.SequenceEqual("_\r\n"u8));
        }
        finally
        {
            // The reply span stays valid: nothing writes to the buffer before the next nested command.
            if (buffer.Capacity <= 4096) (_nestedReply, _nestedWriter) = (buffer, writer);
        }
    }

    private bool CanBlock(in Context ctx) => _depth == 1 && !ctx.Session.NoBlock; // a top-level command (not in EXEC or a script)

    private void WriteNilArray(in Context ctx)
    {
        if (ctx.Reply.IsResp3) ctx.Reply.WriteNull();
        else ctx.Reply.WriteNullArray();
    }

    /// <summary>Serves now when it can; otherwise blocks (or answers nil inside MULTI/scripts).</summary>
    private void BlockOrServe(in Context ctx, (int, byte[])[] keys, long deadline, KvBlockServe serve, bool nilIsBulk)
    {
        if (serve(this, ctx)) return;
        Block(ctx, keys, deadline, serve, nilIsBulk);
    }

    /// <summary>Blocks after <paramref name="serve"/> found nothing (or answers nil inside MULTI/scripts).</summary>
    private void Block(in Context ctx, (int, byte[])[] keys, long deadline, KvBlockServe serve, bool nilIsBulk, Action<RespWriter>? timeoutReply = null)
    {
        if (!CanBlock(ctx))
        {
            if (timeoutReply is not null) timeoutReply(ctx.Reply);
            else if (nilIsBulk) ctx.Reply.WriteNullBulkString();
            else WriteNilArray(ctx);
            return;
        }
        var blocked = new KvBlockedCommand(ctx.Command, ctx.Reply, keys, deadline, ++_blockSequence, serve) { TimeoutReply = timeoutReply };
        ctx.Session.Blocked = blocked;
        _blockedByClientId[ctx.Session.ClientId] = ctx.Session;
        foreach ((int db, byte[] key) in keys)
        {
            var k = new BlockKey(db, key);
            if (!_blockedKeys.TryGetValue(k, out LinkedList<KvSession>? list)) _blockedKeys[k] = list = new LinkedList<KvSession>();
            if (!list.Contains(ctx.Session)) list.AddLast(ctx.Session);
        }
    }

    private (int, byte[])[] KeysOf(in Context ctx, int first, int lastExclusive)
    {
        var keys = new (int, byte[])[lastExclusive - first];
        for (int i = first; i < lastExclusive; i++) keys[i - first] = (ctx.Db.Index, ctx.Command.ToArray(i));
        return keys;
    }

    // BLPOP/BRPOP key [key ...] timeout
    private void BlockingPop(in Context ctx, bool left)
    {
        if (!TryGetBlockDeadline(ctx, ctx.Count - 1, milliseconds: false, out long deadline)) return;
        for (int i = 1; i < ctx.Count - 1; i++)
        {
            if (LiveType(ctx, ctx[i]) is { } type && type != KvType.List)
            {
                ctx.Reply.WriteError(KvErrors.WrongType);
                return;
            }
        }
        KvBlockServe serve = left ? s_serveBlpop : s_serveBrpop;
        if (serve(this, ctx)) return; // served at once: no key list to build
        Block(ctx, KeysOf(ctx, 1, ctx.Count - 1), deadline, serve, nilIsBulk: false);
    }

    private static readonly byte[] s_lpop = "LPOP"u8.ToArray(), s_rpop = "RPOP"u8.ToArray();
    private static readonly KvBlockServe s_serveBlpop = static (s, in c) => ServeListPop(s, c, s_lpop);
    private static readonly KvBlockServe s_serveBrpop = static (s, in c) => ServeListPop(s, c, s_rpop);

    // BLPOP/BRPOP's serve: LPOP/RPOP (run as a nested command: notifications, AOF effect) on the first non-empty key.
    private static bool ServeListPop(KvStore s, in Context c, byte[] pop)
    {
        for (int i = 1; i < c.Count - 1; i++)
        {
            if (s.LiveType(c, c[i]) != KvType.List) continue; // no handle per try
            // The LPOP/RPOP is built in a reused buffer (no arrays, no command object per pop); taken while it runs.
            // (An exception leaves it taken: the next serve makes a new one.)
            KvCommandBuilder builder = s._nestedBuilder ?? new KvCommandBuilder();
            s._nestedBuilder = null;
            bool popped = s.RunNestedInto(c, builder.Start().Add(pop).Add(c[i]).Build(), out ReadOnlySpan<byte> value);
            s._nestedBuilder = builder;
            if (!popped) continue;
            c.Reply.WriteArrayHeader(2);
            c.Reply.WriteBulkString(c[i]);
            c.Reply.WriteRaw(value);
            return true;
        }
        return false;
    }

    // BRPOPLPUSH source destination timeout / BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
    private void BlockingMove(in Context ctx, string nonBlocking, int timeoutIndex)
    {
        if (timeoutIndex == 5)
        {
            bool Side(ReadOnlySpan<byte> a) => Is(a, "LEFT"u8) || Is(a, "RIGHT"u8);
            if (!Side(ctx[3]) || !Side(ctx[4]))
            {
                ctx.Reply.WriteError(KvErrors.Syntax);
                return;
            }
        }
        if (!TryGetBlockDeadline(ctx, timeoutIndex, milliseconds: false, out long deadline)) return;
        KvEntry? src = Lookup(ctx, ctx[1]);
        if (src is not null && src.Type != KvType.List)
        {
            ctx.Reply.WriteError(KvErrors.WrongType);
            return;
        }
        byte[][] args = timeoutIndex == 5
            ? [System.Text.Encoding.ASCII.GetBytes(nonBlocking), ctx.Command.ToArray(1), ctx.Command.ToArray(2), ctx.Command.ToArray(3), ctx.Command.ToArray(4)]
            : [System.Text.Encoding.ASCII.GetBytes(nonBlocking), ctx.Command.ToArray(1), ctx.Command.ToArray(2)];
        BlockOrServe(ctx, KeysOf(ctx, 1, 2), deadline, (KvStore s, in Context c) =>
        {
            KvEntry? e = s.Lookup(c, c[1]);
            if (e is null || e.Type != KvType.List) return false;
            byte[]? value = s.RunNested(c, args);
            if (value is null) return false;
            c.Reply.WriteRaw(value);
            return true;
        }, nilIsBulk: true);
    }

    // BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count] / BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
    private void BlockingMultiPop(in Context ctx, string nonBlocking)
    {
        if (!TryGetBlockDeadline(ctx, 1, milliseconds: false, out long deadline)) return;
        // Validate the rest by running the non-blocking command's checks on an empty database view: simplest is to
        // parse numkeys here and let the nested command report the other errors.
        if (!RespNumbers.TryParseInt64(ctx[2], out long numkeys) || numkeys <= 0)
        {
            ctx.Reply.WriteError("ERR numkeys should be greater than 0");
            return;
        }
        if (numkeys > ctx.Count - 3)
        {
            ctx.Reply.WriteError(KvErrors.Syntax);
            return;
        }
        var args = new byte[ctx.Count - 1][];
        args[0] = System.Text.Encoding.ASCII.GetBytes(nonBlocking);
        for (int i = 2; i < ctx.Count; i++) args[i - 1] = ctx.Command.ToArray(i);
        // A first run reports syntax errors and WRONGTYPE exactly as the non-blocking command does.
        byte[]? first = RunNested(ctx, args);
        if (first is not null)
        {
            ctx.Reply.WriteRaw(first);
            return;
        }
        BlockOrServe(ctx, KeysOf(ctx, 3, 3 + (int)numkeys), deadline, (KvStore s, in Context c) =>
        {
            byte[]? value = s.RunNested(c, args);
            if (value is null) return false;
            c.Reply.WriteRaw(value);
            return true;
        }, nilIsBulk: false);
    }

    // BZPOPMIN/BZPOPMAX key [key ...] timeout
    private void BlockingZPop(in Context ctx, string nonBlocking)
    {
        if (!TryGetBlockDeadline(ctx, ctx.Count - 1, milliseconds: false, out long deadline)) return;
        for (int i = 1; i < ctx.Count - 1; i++)
        {
            KvEntry? e = Lookup(ctx, ctx[i]);
            if (e is not null && e.Type != KvType.ZSet)
            {
                ctx.Reply.WriteError(KvErrors.WrongType);
                return;
            }
        }
        byte[] pop = System.Text.Encoding.ASCII.GetBytes(nonBlocking);
        BlockOrServe(ctx, KeysOf(ctx, 1, ctx.Count - 1), deadline, (KvStore s, in Context c) =>
        {
            for (int i = 1; i < c.Count - 1; i++)
            {
                KvEntry? e = s.Lookup(c, c[i]);
                if (e is null || e.Type != KvType.ZSet) continue;
                byte[]? value = s.RunNested(c, pop, c.Command.ToArray(i));
                if (value is null || value.AsSpan().SequenceEqual("*0\r\n"u8)) continue;
                // ZPOPMIN's reply is [member, score]; BZPOPMIN's is [key, member, score].
                int header = value.AsSpan().IndexOf("\r\n"u8) + 2;
                c.Reply.WriteArrayHeader(3);
                c.Reply.WriteBulkString(c[i]);
                c.Reply.WriteRaw(value.AsSpan(header));
                return true;
            }
            return false;
        }, nilIsBulk: false);
    }

    /// <summary>Marks a key as possibly able to serve blocked clients (called on every change).</summary>
    private void SignalReady(int db, ReadOnlySpan<byte> key)
    {
        if (_blockedKeys.Count == 0) return;
        // Looked up by span (no copy of the key per write while clients are blocked); the ready key is the waiters' own.
        if (!_blockedKeys.GetAlternateLookup<BlockKeySpan>().TryGetValue(new BlockKeySpan(db, key), out BlockKey k, out _)) return;
        if (_readySet.Add(k)) _readyKeys.Add(k);
    }

    /// <summary>Serves blocked clients whose keys got data, first blocked first served per key, until no key is ready
    /// (a served BLMOVE may make its destination ready). Called after each top-level command.</summary>
    private void HandleReadyKeys(long now, IAofSink? aof)
    {
        while (_readyKeys.Count > 0)
        {
            BlockKey k = _readyKeys[0];
            _readyKeys.RemoveAt(0);
            _readySet.Remove(k);
            if (!_blockedKeys.TryGetValue(k, out LinkedList<KvSession>? waiters)) continue;
            LinkedListNode<KvSession>? node = waiters.First;
            while (node is not null)
            {
                LinkedListNode<KvSession>? nextNode = node.Next;
                KvSession s = node.Value;
                KvBlockedCommand b = s.Blocked!;
                if (s.Closed)
                {
                    CancelBlocked(s);
                }
                else
                {
                    int sessionDb = s.Db;
                    s.Db = k.Db;
                    var ctx = new Context(this, _dbs[k.Db], s, b.Command, now, b.Reply, aof, b.Command.Info!.Name);
                    bool served = false;
                    s.HoldPushes?.Invoke(true); // pushes caused by the serve (notifications) come after its reply
                    _depth++;
                    try
                    {
                        served = b.Serve(this, ctx);
                    }
                    finally
                    {
                        _depth--;
                        s.Db = sessionDb;
                        if (!served) s.HoldPushes?.Invoke(false);
                    }
                    if (served) EndBlock(s, KvUnblockReason.Served, null);
                }
                if (!_blockedKeys.ContainsKey(k)) break; // the list of waiters went away with the last one
                node = nextNode;
            }
        }
    }

    private void EndBlock(KvSession session, KvUnblockReason reason, string? error)
    {
        KvBlockedCommand b = session.Blocked!;
        RemoveBlocked(session);
        b.Outcome = reason;
        if (reason != KvUnblockReason.Served)
        {
            session.HoldPushes?.Invoke(true);
            if (error is not null) b.Reply.WriteError(error);
            else if (b.TimeoutReply is { } timeoutReply) timeoutReply(b.Reply);
            else WriteNilArrayTo(b.Reply);
        }
        _unblocked.Add(session);
    }

    private static void WriteNilArrayTo(RespWriter reply)
    {
        // Redis answers a timed-out blocking command with a null array (also BLMOVE/BRPOPLPUSH), null in RESP3.
        if (reply.IsResp3) reply.WriteNull();
        else reply.WriteNullArray();
    }

    private void RemoveBlocked(KvSession session)
    {
        KvBlockedCommand b = session.Blocked!;
        foreach ((int db, byte[] key) in b.Keys)
        {
            var k = new BlockKey(db, key);
            if (_blockedKeys.TryGetValue(k, out LinkedList<KvSession>? list))
            {
                list.Remove(session);
                if (list.Count == 0) _blockedKeys.Remove(k);
            }
        }
        _blockedByClientId.Remove(session.ClientId);
        session.Blocked = null;
    }

    private readonly record struct BlockKey(int Db, byte[] Key);

    private readonly ref struct BlockKeySpan(int db, ReadOnlySpan<byte> key)
    {
        public int Db { get; } = db;
        public ReadOnlySpan<byte> Key { get; } = key;
    }

    private sealed class BlockKeyComparer : IEqualityComparer<BlockKey>, IAlternateEqualityComparer<BlockKeySpan, BlockKey>
    {
        public static readonly BlockKeyComparer Instance = new();

        public bool Equals(BlockKey x, BlockKey y) => x.Db == y.Db && x.Key.AsSpan().SequenceEqual(y.Key);

        public int GetHashCode(BlockKey obj) => HashCode.Combine(obj.Db, ByteArrayComparer.Instance.GetHashCode(obj.Key));

        public bool Equals(BlockKeySpan alternate, BlockKey other) => alternate.Db == other.Db && alternate.Key.SequenceEqual(other.Key);

        public int GetHashCode(BlockKeySpan alternate) => HashCode.Combine(alternate.Db, ByteArrayComparer.Instance.GetHashCode(alternate.Key));

        public BlockKey Create(BlockKeySpan alternate) => new(alternate.Db, alternate.Key.ToArray());
    }
}
