using System.Buffers;

namespace EioSharp.Kv;

/// <summary>A connection's blocking command waiting for data (BLPOP and the like), as the store keeps it.</summary>
/// <remarks>Taken by <see cref="KvStore"/> from its pool of registrations when a blocking command finds nothing to serve;
/// the server keeps the connection's request parked until <see cref="KvStore.TakeUnblocked()"/> hands the session back.
/// A registration is recycled once its command ended (served, timed out, unblocked or cancelled): its properties describe
/// the blocked command only while it is <see cref="KvSession.Blocked"/>. Each use has a new <see cref="Sequence"/> (a
/// generation): a waiter node or a reference from an earlier use never matches it, so a stale registration is never
/// served. Thread safety: none (the store owner).</remarks>
public sealed class KvBlockedCommand
{
    private const int KeepNodes = 16; // a pooled registration keeps at most this many waiter nodes (BLPOP k1 ... k16)

    private readonly KvCommandBuilder _copy = new(); // the command's copy (a view over a receive buffer is overwritten), reused
    private KvStore.BlockNode[] _nodes = [];

    internal KvBlockedCommand()
    {
        Command = null!;
        Reply = null!;
        Serve = null!;
    }

    /// <summary>Starts a use of this registration for <paramref name="command"/> (copied when it is a view over a receive
    /// buffer; an owned command is immutable and kept as it is).</summary>
    internal void Start(KvCommand command, RespWriter reply, long deadlineUnixMs, long sequence, KvBlockServe serve, Action<RespWriter>? timeoutReply)
    {
        if (command.IsView)
        {
            _copy.Start();
            for (int i = 0; i < command.Count; i++) _copy.Add(command[i]);
            KvCommand copy = _copy.Build();
            copy.ShareInfo(command); // resolved already: no second table lookup
            Command = copy;
        }
        else
        {
            Command = command;
        }
        Reply = reply;
        DeadlineUnixMs = deadlineUnixMs;
        Sequence = sequence;
        Serve = serve;
        TimeoutReply = timeoutReply;
        Outcome = null;
        NodeCount = 0;
    }

    /// <summary>Ends a use: drops the references it held (the registration goes back to the store's pool).</summary>
    internal void Clear()
    {
        _copy.Start(); // gives back a large argument's buffer
        Command = null!;
        Reply = null!;
        Serve = null!;
        TimeoutReply = null;
        for (int i = 0; i < NodeCount; i++) _nodes[i].Clear();
        if (_nodes.Length > KeepNodes) _nodes = [];
        NodeCount = 0;
    }

    /// <summary>The blocking command (valid while it waits).</summary>
    public KvCommand Command { get; private set; }

    /// <summary>Where its reply goes once it is served, times out or is unblocked.</summary>
    internal RespWriter Reply { get; private set; }

    /// <summary>When it times out, in Unix milliseconds; -1: never.</summary>
    public long DeadlineUnixMs { get; private set; }

    /// <summary>The generation of this use: the store's block counter when it blocked (orders timeouts; first blocked,
    /// first served).</summary>
    internal long Sequence { get; private set; }

    internal KvBlockServe Serve { get; private set; }

    /// <summary>A blocked XREAD/XREADGROUP's parsed request (set by the store when it blocks one; kept with the
    /// registration and overwritten by its next such use, so a block allocates no request).</summary>
    internal StreamReadRequest? StreamRead { get; set; }

    /// <summary>Writes the reply when the command times out or CLIENT UNBLOCK ... TIMEOUT ends it (null: a nil array,
    /// as the blocking pops answer; WAIT answers the number of replicas that acknowledged, 0).</summary>
    internal Action<RespWriter>? TimeoutReply { get; private set; }

    /// <summary>How it ended (null while it waits; valid until the registration is used again).</summary>
    public KvUnblockReason? Outcome { get; internal set; }

    /// <summary>Number of keys it waits on (its nodes in the keys' waiter lists: <see cref="Node"/>).</summary>
    internal int NodeCount { get; private set; }

    /// <summary>Node <paramref name="i"/> (below <see cref="NodeCount"/>).</summary>
    internal KvStore.BlockNode Node(int i) => _nodes[i];

    /// <summary>The next node, for one more key (reused from an earlier use when there is one).</summary>
    internal KvStore.BlockNode AddNode()
    {
        if (NodeCount == _nodes.Length) Array.Resize(ref _nodes, Math.Max(2, _nodes.Length * 2));
        KvStore.BlockNode node = _nodes[NodeCount] ??= new KvStore.BlockNode();
        NodeCount++;
        return node;
    }
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

    // The three sets share this store's comparer, which remembers the last key it hashed (KeyHashMemo).
    private readonly Dictionary<BlockKey, BlockWaiters> _blockedKeys; // keys with waiters (made in the constructor: InitBlocking)
    // Waiter lists whose last waiter left, kept by key (up to IdleWaitersKept, keys up to IdleKeyBytes): a key blocked on
    // again (each BLPOP/LPUSH ping-pong round) takes its list back instead of a new list and a copy of the key.
    private readonly Dictionary<BlockKey, BlockWaiters> _idleWaiters;
    private readonly Stack<KvBlockedCommand> _freeBlocked = new(); // ended registrations, reused (up to BlockedKept)
    private const int IdleWaitersKept = 64, IdleKeyBytes = 256, BlockedKept = 256;
    private readonly List<BlockKey> _readyKeys = [];
    private readonly HashSet<BlockKey> _readySet;
    private readonly List<KvSession> _unblocked = [];
    private readonly Dictionary<long, KvSession> _blockedByClientId = [];
    private long _blockSequence;
    private int _depth; // commands running: 1 for a client's command, more while it runs others (EXEC, scripts, blocking commands serving themselves)

    /// <summary>The blocking commands.</summary>
    internal static readonly KvCommandInfo[] BlockingCommands =
    [
        KvCommandTable.Data("blpop", -3, W, 1, -2, 1, static (s, in c) => s.BlockingPop(c, left: true)),
        KvCommandTable.Data("brpop", -3, W, 1, -2, 1, static (s, in c) => s.BlockingPop(c, left: false)),
        KvCommandTable.Data("brpoplpush", 4, W, 1, 2, 1, static (s, in c) => s.BlockingMove(c, lmove: false)),
        KvCommandTable.Data("blmove", 6, W, 1, 2, 1, static (s, in c) => s.BlockingMove(c, lmove: true)),
        KvCommandTable.Data("blmpop", -5, W, 0, 0, 0, static (s, in c) => s.BlockingMultiPop(c, list: true)),
        KvCommandTable.Data("bzpopmin", -3, W, 1, -2, 1, static (s, in c) => s.BlockingZPop(c, min: true)),
        KvCommandTable.Data("bzpopmax", -3, W, 1, -2, 1, static (s, in c) => s.BlockingZPop(c, min: false)),
        KvCommandTable.Data("bzmpop", -5, W, 0, 0, 0, static (s, in c) => s.BlockingMultiPop(c, list: false)),
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
        Recycle(b);
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

    /// <summary>Serves now when it can; otherwise blocks on the keys that are arguments <paramref name="firstKey"/> to
    /// <paramref name="keyEnd"/> (exclusive) of the command (or answers nil inside MULTI/scripts).</summary>
    private void BlockOrServe(in Context ctx, int firstKey, int keyEnd, long deadline, KvBlockServe serve, bool nilIsBulk)
    {
        if (serve(this, ctx)) return;
        Block(ctx, firstKey, keyEnd, deadline, serve, nilIsBulk);
    }

    /// <summary>Blocks after <paramref name="serve"/> found nothing on the keys that are arguments <paramref name="firstKey"/>
    /// to <paramref name="keyEnd"/> (exclusive) of the command, in the session's database (or answers nil inside
    /// MULTI/scripts). Nothing is allocated for a key blocked on before (see <see cref="_idleWaiters"/>).</summary>
    private void Block(in Context ctx, int firstKey, int keyEnd, long deadline, KvBlockServe serve, bool nilIsBulk, Action<RespWriter>? timeoutReply = null)
    {
        if (!StartBlock(ctx, deadline, serve, nilIsBulk, timeoutReply, out KvBlockedCommand? blocked)) return;
        // The keys are read from the registration's copy of the command (the same arguments).
        for (int i = firstKey; i < keyEnd; i++) AddWaiter(ctx.Session, blocked, ctx.Db.Index, blocked.Command[i]);
    }

    /// <summary>Blocks after <paramref name="serve"/> found nothing, waiting on <paramref name="keys"/> (or answers nil
    /// inside MULTI/scripts).</summary>
    private void Block(in Context ctx, (int Db, byte[] Key)[] keys, long deadline, KvBlockServe serve, bool nilIsBulk, Action<RespWriter>? timeoutReply = null)
    {
        if (!StartBlock(ctx, deadline, serve, nilIsBulk, timeoutReply, out KvBlockedCommand? blocked)) return;
        foreach ((int db, byte[] key) in keys) AddWaiter(ctx.Session, blocked, db, key);
    }

    /// <summary>The part of a block common to its forms: nil when the command cannot block, else a registration taken
    /// from the pool (a new generation) for the session.</summary>
    private bool StartBlock(in Context ctx, long deadline, KvBlockServe serve, bool nilIsBulk, Action<RespWriter>? timeoutReply,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out KvBlockedCommand? blocked)
    {
        if (!CanBlock(ctx))
        {
            if (timeoutReply is not null) timeoutReply(ctx.Reply);
            else if (nilIsBulk) ctx.Reply.WriteNullBulkString();
            else WriteNilArray(ctx);
            blocked = null;
            return false;
        }
        blocked = _freeBlocked.TryPop(out KvBlockedCommand? free) ? free : new KvBlockedCommand();
        blocked.Start(ctx.Command, ctx.Reply, deadline, ++_blockSequence, serve, timeoutReply);
        ctx.Session.Blocked = blocked;
        _blockedByClientId[ctx.Session.ClientId] = ctx.Session;
        return true;
    }

    /// <summary>Appends <paramref name="session"/> to the waiters of (<paramref name="db"/>, <paramref name="key"/>), once
    /// (BLPOP k k 0 waits once on k), with a node of its registration.</summary>
    private void AddWaiter(KvSession session, KvBlockedCommand blocked, int db, ReadOnlySpan<byte> key)
    {
        var span = new BlockKeySpan(db, key);
        if (!_blockedKeys.GetAlternateLookup<BlockKeySpan>().TryGetValue(span, out BlockWaiters? waiters))
        {
            if (_idleWaiters.GetAlternateLookup<BlockKeySpan>().Remove(span, out BlockKey idleKey, out BlockWaiters? idle))
            {
                waiters = idle; // the key's list from an earlier block: no new list, no copy of the key
                _blockedKeys.Add(idleKey, waiters);
            }
            else
            {
                var k = new BlockKey(db, key.ToArray(), ((BlockKeyComparer)_blockedKeys.Comparer).Hash(db, key));
                waiters = new BlockWaiters(k);
                _blockedKeys.Add(k, waiters);
            }
        }
        else if (waiters.Tail is { } tail && ReferenceEquals(tail.Session, session) && tail.Sequence == blocked.Sequence)
        {
            return; // the same key twice in the command: it waits once (nobody else blocks while this command does)
        }
        waiters.Append(blocked.AddNode(), session, blocked.Sequence);
    }

    // BLPOP/BRPOP key [key ...] timeout
    private void BlockingPop(in Context ctx, bool left)
    {
        if (!TryGetBlockDeadline(ctx, ctx.Count - 1, milliseconds: false, out long deadline)) return;
        // Redis's blockingPopGenericCommand: the keys in order, up to the first list (never empty: served from it, and
        // its LPOP/RPOP records the one access); a key of another type before it is looked up (an access) and refused.
        bool anyList = false;
        for (int i = 1; i < ctx.Count - 1; i++)
        {
            KvType? type = LiveType(ctx, ctx[i]);
            if (type == KvType.List)
            {
                anyList = true;
                break;
            }
            if (type is not null)
            {
                LiveType(ctx, ctx[i], touch: true);
                ctx.Reply.WriteError(KvErrors.WrongType);
                return;
            }
        }
        KvBlockServe serve = left ? s_serveBlpop : s_serveBrpop;
        // No key holds a list (each was looked up just now, an expired one removed): the serve would look every key up
        // again to find nothing, so it blocks at once (the ping-pong's blocking BLPOP: one lookup of its key, not two).
        if (anyList) BlockOrServe(ctx, 1, ctx.Count - 1, deadline, serve, nilIsBulk: false);
        else Block(ctx, 1, ctx.Count - 1, deadline, serve, nilIsBulk: false);
    }

    private static readonly KvBlockServe s_serveBlpop = static (s, in c) => ServeListPop(s, c, left: true);
    private static readonly KvBlockServe s_serveBrpop = static (s, in c) => ServeListPop(s, c, left: false);

    // BLPOP/BRPOP's serve: on the first key holding a list, the pop LPOP/RPOP key does, run directly rather than as a
    // nested command (no LPOP command built, looked up in the command table and dispatched; its element written
    // straight into the reply instead of a nested buffer, then copied): the same lookup (TryFindLive, a write's access,
    // as LPOP's TryLookupValue) and the same effects (TryPopList: the AOF's LPOP/RPOP, the lpop/rpop and del events,
    // WATCH and the keys made ready), as Redis's serveClientBlockedOnList pops and propagates LPOP/RPOP itself.
    private static bool ServeListPop(KvStore s, in Context c, bool left)
    {
        for (int i = 1; i < c.Count - 1; i++)
        {
            ReadOnlySpan<byte> key = c[i];
            // One lookup per try: a live list (its access recorded, as LPOP's lookup) is served; a missing key, another
            // type or an empty list is skipped; an expired key is removed (notifications) as LiveType does.
            if (!s.TryFindLiveList(c, key, out KvList? list) || list.Count == 0) continue;
            c.Reply.WriteArrayHeader(2);
            c.Reply.WriteBulkString(key);
            s.TryPopList(c, key, left, count: 0, withKey: false, list); // the element as a bulk string
            return true;
        }
        return false;
    }

    // The serves of BLMOVE, BRPOPLPUSH, BLMPOP, BZMPOP and BZPOPMIN/MAX: static, reading their arguments from the command
    // being served (the blocked registration's copy), so that a call allocates no closure and no argument arrays.
    private static readonly byte[] s_lmove = "LMOVE"u8.ToArray(), s_rpoplpush = "RPOPLPUSH"u8.ToArray(), s_lmpop = "LMPOP"u8.ToArray(),
        s_zmpop = "ZMPOP"u8.ToArray(), s_zpopmin = "ZPOPMIN"u8.ToArray(), s_zpopmax = "ZPOPMAX"u8.ToArray();
    private static readonly KvBlockServe s_serveLmove = static (s, in c) => ServeMove(s, c, s_lmove);
    private static readonly KvBlockServe s_serveRpoplpush = static (s, in c) => ServeMove(s, c, s_rpoplpush);
    private static readonly KvBlockServe s_serveLmpop = static (s, in c) => s.ServeNested(c, s_lmpop, 2, c.Count);
    private static readonly KvBlockServe s_serveZmpop = ServeZmpop;
    private static readonly KvBlockServe s_serveZpopmin = static (s, in c) => ServeZPop(s, c, s_zpopmin);
    private static readonly KvBlockServe s_serveZpopmax = static (s, in c) => ServeZPop(s, c, s_zpopmax);

    /// <summary>Runs <paramref name="name"/> with the arguments <paramref name="first"/> to <paramref name="end"/>
    /// (exclusive) of the command being served as a nested command, built in the store's reused builder; when its reply
    /// is not a nil, writes it as the reply and returns true.</summary>
    private bool ServeNested(in Context c, byte[] name, int first, int end) => ServeNested(c, name, first, end, out _);

    /// <summary>As <see cref="ServeNested(in Context, byte[], int, int)"/>; <paramref name="error"/>: the reply written
    /// was an error.</summary>
    private bool ServeNested(in Context c, byte[] name, int first, int end, out bool error)
    {
        KvCommandBuilder builder = _nestedBuilder ?? new KvCommandBuilder(); // taken while it runs (see ServeListPop)
        _nestedBuilder = null;
        builder.Start().Add(name);
        for (int i = first; i < end; i++) builder.Add(c[i]);
        bool served = RunNestedInto(c, builder.Build(), out ReadOnlySpan<byte> value);
        _nestedBuilder = builder;
        error = served && (value.IsEmpty || value[0] == (byte)'-'); // empty: RunNestedInto wrote an error itself
        if (served) c.Reply.WriteRaw(value);
        return served;
    }

    // BZMPOP's serve: ZMPOP timeout-less. Redis looks the sorted set up before ZMPOP does (blockingGenericZpopCommand,
    // or handleClientsBlockedOnKeys after blocking): a second access to the set served from, the first existing key in
    // order (ZMPOP serves from it, or refuses its type itself); recorded after the pop (gone if emptied: nothing to see).
    private static bool ServeZmpop(KvStore s, in Context c)
    {
        int first = -1;
        if (RespNumbers.TryParseInt64(c[2], out long numkeys) && numkeys > 0 && numkeys <= c.Count - 3)
        {
            for (int i = 3; i < 3 + (int)numkeys && first < 0; i++)
                if (s.LiveType(c, c[i]) is { } type) first = type == KvType.ZSet ? i : int.MaxValue;
        }
        if (!s.ServeNested(c, s_zmpop, 2, c.Count, out bool error)) return false;
        if (first is >= 0 and < int.MaxValue && !error) s.LiveType(c, c[first], touch: true);
        return true;
    }

    // BLMOVE/BRPOPLPUSH's serve: LMOVE src dst LEFT|RIGHT LEFT|RIGHT / RPOPLPUSH src dst (the arguments before the timeout).
    private static bool ServeMove(KvStore s, in Context c, byte[] name)
    {
        if (s.LiveType(c, c[1]) != KvType.List) return false;
        return s.ServeNested(c, name, 1, c.Count - 1);
    }

    // BZPOPMIN/BZPOPMAX's serve: ZPOPMIN/ZPOPMAX on the first non-empty sorted set; the reply gets the key in front.
    private static bool ServeZPop(KvStore s, in Context c, byte[] pop)
    {
        for (int i = 1; i < c.Count - 1; i++)
        {
            if (s.LiveType(c, c[i]) != KvType.ZSet) continue;
            // Redis looks the sorted set up before ZPOPMIN/MAX does (an access each): blockingGenericZpopCommand on the
            // first try, handleClientsBlockedOnKeys when served after blocking (there once per ready key, not per client).
            s.LiveType(c, c[i], touch: true);
            KvCommandBuilder builder = s._nestedBuilder ?? new KvCommandBuilder();
            s._nestedBuilder = null;
            bool popped = s.RunNestedInto(c, builder.Start().Add(pop).Add(c[i]).Build(), out ReadOnlySpan<byte> value);
            s._nestedBuilder = builder;
            if (!popped || value.SequenceEqual("*0\r\n"u8)) continue;
            // ZPOPMIN's reply is [member, score]; BZPOPMIN's is [key, member, score].
            int header = value.IndexOf("\r\n"u8) + 2;
            c.Reply.WriteArrayHeader(3);
            c.Reply.WriteBulkString(c[i]);
            c.Reply.WriteRaw(value[header..]);
            return true;
        }
        return false;
    }

    // BRPOPLPUSH source destination timeout / BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
    private void BlockingMove(in Context ctx, bool lmove)
    {
        int timeoutIndex = lmove ? 5 : 3;
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
        // Redis's blmoveGenericCommand looks the source up (an access) before LMOVE looks it up again.
        if (LiveType(ctx, ctx[1], touch: true) is { } type && type != KvType.List)
        {
            ctx.Reply.WriteError(KvErrors.WrongType);
            return;
        }
        BlockOrServe(ctx, 1, 2, deadline, lmove ? s_serveLmove : s_serveRpoplpush, nilIsBulk: true);
    }

    // BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count] / BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
    private void BlockingMultiPop(in Context ctx, bool list)
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
        // A first run (LMPOP/ZMPOP with the arguments after the timeout) reports syntax errors and WRONGTYPE exactly as the
        // non-blocking command does, or serves.
        if (list ? ServeNested(ctx, s_lmpop, 2, ctx.Count) : ServeZmpop(this, ctx)) return;
        Block(ctx, 3, 3 + (int)numkeys, deadline, list ? s_serveLmpop : s_serveZmpop, nilIsBulk: false);
    }

    // BZPOPMIN/BZPOPMAX key [key ...] timeout
    private void BlockingZPop(in Context ctx, bool min)
    {
        if (!TryGetBlockDeadline(ctx, ctx.Count - 1, milliseconds: false, out long deadline)) return;
        // Redis's blockingGenericZpopCommand: the keys in order up to the first sorted set (never empty: served from it,
        // ServeZPop records its lookup) or a key of another type, looked up (an access) and refused.
        for (int i = 1; i < ctx.Count - 1; i++)
        {
            KvType? type = LiveType(ctx, ctx[i]);
            if (type == KvType.ZSet) break;
            if (type is not null)
            {
                LiveType(ctx, ctx[i], touch: true);
                ctx.Reply.WriteError(KvErrors.WrongType);
                return;
            }
        }
        BlockOrServe(ctx, 1, ctx.Count - 1, deadline, min ? s_serveZpopmin : s_serveZpopmax, nilIsBulk: false);
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
            if (!_blockedKeys.TryGetValue(k, out BlockWaiters? waiters)) continue;
            BlockNode? node = waiters.Head;
            while (node is not null)
            {
                BlockNode? nextNode = node.Next;
                long nextSequence = nextNode?.Sequence ?? 0;
                KvSession s = node.Session!;
                KvBlockedCommand? b = s.Blocked;
                if (b is null || b.Sequence != node.Sequence)
                {
                    // Not reached while every end of a block unlinks its nodes (RemoveBlocked): should a node of an
                    // ended registration still be linked, it is dropped, never served (its generation is not the
                    // session's current block).
                    System.Diagnostics.Debug.Fail("a waiter of an ended blocked command was still linked");
                    UnlinkWaiter(node);
                }
                else if (s.Closed)
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
                if (waiters.Count == 0) break; // the last waiter went (the list is idle now)
                // The next waiter, unless it left meanwhile (its node then went back with its registration).
                if (nextNode is null || nextNode.List != waiters || nextNode.Sequence != nextSequence) break;
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
        Recycle(b);
    }

    private static void WriteNilArrayTo(RespWriter reply)
    {
        // Redis answers a timed-out blocking command with a null array (also BLMOVE/BRPOPLPUSH), null in RESP3.
        if (reply.IsResp3) reply.WriteNull();
        else reply.WriteNullArray();
    }

    /// <summary>Unlinks the session's blocked command from its keys' waiter lists (a list left empty goes idle, kept for
    /// the key's next block) and from the blocked clients.</summary>
    private void RemoveBlocked(KvSession session)
    {
        KvBlockedCommand b = session.Blocked!;
        for (int i = 0; i < b.NodeCount; i++) UnlinkWaiter(b.Node(i));
        _blockedByClientId.Remove(session.ClientId);
        session.Blocked = null;
    }

    private void UnlinkWaiter(BlockNode node)
    {
        if (node.List is not { } waiters) return;
        waiters.Unlink(node);
        if (waiters.Count == 0)
        {
            _blockedKeys.Remove(waiters.Key);
            if (waiters.Key.Key.Length <= IdleKeyBytes && _idleWaiters.Count < IdleWaitersKept) _idleWaiters.TryAdd(waiters.Key, waiters);
        }
    }

    /// <summary>An ended registration goes back to the pool (its outcome set, its reply written).</summary>
    private void Recycle(KvBlockedCommand b)
    {
        b.Clear();
        if (_freeBlocked.Count < BlockedKept) _freeBlocked.Push(b);
    }

    /// <summary>A blocked-on key with its database and its hash, computed once when the key's waiter list is made: the
    /// ready set and the waiter dictionary hash it again on every write, serve and end of a block otherwise (a quarter of
    /// a ping-pong round trip's instructions went to HashCode before, callgrind).</summary>
    internal readonly record struct BlockKey(int Db, byte[] Key, int Hash);

    /// <summary>The blocked commands waiting on one key, first blocked first (an intrusive list of their registrations'
    /// nodes: nothing allocated per block).</summary>
    internal sealed class BlockWaiters(BlockKey key)
    {
        public BlockKey Key { get; } = key;
        public BlockNode? Head { get; private set; }
        public BlockNode? Tail { get; private set; }
        public int Count { get; private set; }

        public void Append(BlockNode node, KvSession session, long sequence)
        {
            node.Session = session;
            node.Sequence = sequence;
            node.List = this;
            node.Prev = Tail;
            node.Next = null;
            if (Tail is null) Head = node;
            else Tail.Next = node;
            Tail = node;
            Count++;
        }

        public void Unlink(BlockNode node)
        {
            if (node.Prev is null) Head = node.Next;
            else node.Prev.Next = node.Next;
            if (node.Next is null) Tail = node.Prev;
            else node.Next.Prev = node.Prev;
            node.Clear();
            Count--;
        }
    }

    /// <summary>One blocked command in one key's <see cref="BlockWaiters"/>; owned by its <see cref="KvBlockedCommand"/>
    /// and reused with it. <see cref="Sequence"/> is the registration's generation when it was linked.</summary>
    internal sealed class BlockNode
    {
        internal KvSession? Session;
        internal long Sequence;
        internal BlockWaiters? List; // while linked, else null
        internal BlockNode? Prev, Next;

        internal void Clear()
        {
            Session = null;
            List = null;
            Prev = Next = null;
            Sequence = 0;
        }
    }

    private readonly ref struct BlockKeySpan(int db, ReadOnlySpan<byte> key)
    {
        public int Db { get; } = db;
        public ReadOnlySpan<byte> Key { get; } = key;
    }

    /// <summary>Compares blocked-on keys; looks them up by span (<see cref="BlockKeySpan"/>) with the key bytes' hash
    /// remembered from the last lookup (a write signals its key, then the serve and the end of the block look it up again).
    /// One per store (its memo is the store owner's).</summary>
    private sealed class BlockKeyComparer : IEqualityComparer<BlockKey>, IAlternateEqualityComparer<BlockKeySpan, BlockKey>
    {
        private readonly KeyHashMemo _memo = new();

        public bool Equals(BlockKey x, BlockKey y) => x.Hash == y.Hash && x.Db == y.Db && x.Key.AsSpan().SequenceEqual(y.Key);

        public int GetHashCode(BlockKey obj) => obj.Hash;

        public bool Equals(BlockKeySpan alternate, BlockKey other) => alternate.Db == other.Db && alternate.Key.SequenceEqual(other.Key);

        public int GetHashCode(BlockKeySpan alternate) => Hash(alternate.Db, alternate.Key);

        public int Hash(int db, ReadOnlySpan<byte> key) => HashCode.Combine(db, _memo.Hash(key));

        public BlockKey Create(BlockKeySpan alternate) => new(alternate.Db, alternate.Key.ToArray(), Hash(alternate.Db, alternate.Key));
    }
}
