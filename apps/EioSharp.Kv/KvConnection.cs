using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using EioSharp.IO;
using EioSharp.Net;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Kv;

/// <summary>What every connection handler shares (all safe across domains).</summary>
internal sealed class KvServerContext(KvLiveConfig live, KvServerStats stats, AsyncQueue<StoreRequest> queue, Clock clock)
{
    private long _nextClientId;
    private RespParser _parser = new(live.Current.Limits);

    /// <summary>The pub/sub registry every connection shares (and the store publishes keyspace notifications to).</summary>
    public KvPubSub PubSub { get; init; } = new();

    /// <summary>The configuration in force (a snapshot; CONFIG SET publishes new ones).</summary>
    public KvServerConfig Config => Live.Current;

    /// <summary>The live configuration (CONFIG GET/SET/REWRITE).</summary>
    public KvLiveConfig Live { get; } = live;

    /// <summary>Command and error statistics, slow log, latency monitor.</summary>
    public KvCommandStats? CommandStats { get; init; }

    /// <summary>SHUTDOWN, BGREWRITEAOF, LASTSAVE.</summary>
    public IKvServerAdmin? Admin { get; set; }

    /// <summary>Every connected client (CLIENT LIST/KILL, timeout, MONITOR).</summary>
    public KvClientRegistry Clients { get; init; } = new();

    public KvServerStats Stats { get; } = stats;

    public AsyncQueue<StoreRequest> Queue { get; } = queue;

    public Clock Clock { get; } = clock;

    /// <summary>Who may run DEBUG (<c>--enable-debug-command</c>).</summary>
    public DebugCommandMode DebugCommand { get; init; }

    /// <summary>The network MIGRATE connects through (null: MIGRATE cannot connect).</summary>
    public NetworkCapability? Net { get; init; }

    /// <summary>What the store publishes while it runs a script (-BUSY, SCRIPT KILL); null in tests that have none.</summary>
    public KvScriptMonitor? ScriptMonitor { get; init; }

    /// <summary>The store owner (for <c>DEBUG CRASH-STORE</c>); null in tests that have none.</summary>
    public StoreOwner? Store { get; set; }

    /// <summary>The parser for the limits in force (a new one after CONFIG SET proto-max-bulk-len).</summary>
    public RespParser Parser
    {
        get
        {
            RespParser p = Volatile.Read(ref _parser);
            RespLimits limits = Config.Limits;
            if (!ReferenceEquals(p.Limits, limits) && p.Limits != limits)
            {
                p = new RespParser(limits);
                Volatile.Write(ref _parser, p);
            }

            return p;
        }
    }

    public long NextClientId() => Interlocked.Increment(ref _nextClientId);

    /// <summary>The most buffers of one size <see cref="ConnectionBuffers"/> keeps (so at most this many closed
    /// connections' worth: 1,024 x (16 KiB receive + 2 x 4 KiB reply) = 24 MiB).</summary>
    public const int PooledConnectionBuffers = 1024;

    /// <summary>The receive and reply buffers of the first size of closed connections, handed to new ones (a connect +
    /// PING + close allocated 24 KiB of buffers before): bounded (<see cref="PooledConnectionBuffers"/> of each size;
    /// beyond that a returned buffer is dropped) and safe across domains (a lock per size, taken at connect and close).
    /// A buffer goes back only from a session that ended without one of its buffers in another owner's hands (see
    /// <see cref="KvConnectionSession.ReleaseBuffers"/>).</summary>
    public ArrayPool<byte> ConnectionBuffers { get; init; } =
        ArrayPool<byte>.Create(KvConnectionSession.InitialReadBuffer, PooledConnectionBuffers);

    /// <summary>Where the server's log lines go (standard output or the logfile).</summary>
    public Action<string> Log { get; init; } = Console.Out.WriteLine;
}

/// <summary>Serves one client connection: parse every complete command already buffered, run connection commands here
/// and data commands on the store owner (one queue hop per batch), reply in order, flush once.</summary>
internal static class KvConnection
{
    private const int FlushAt = 64 * 1024; // pending output at least this large is sent before more commands are run
    private const int DirectWriteAt = 64 * 1024; // a batch reply at least this large goes to the socket without a copy
    internal const int MaxInputWhileBlocked = 1024 * 1024; // pipelined input kept while a blocking command waits
    private static readonly TimeSpan ShutdownReplyGrace = TimeSpan.FromSeconds(2); // at shutdown, for replies already committed

    /// <summary>Serves one accepted connection until it closes.</summary>
    /// <param name="ctx">What every connection shares.</param>
    /// <param name="conn">The connection.</param>
    /// <param name="peer">The client's address.</param>
    /// <param name="unixSocket">The path of the Unix socket the client came through (Redis's <c>unixsocket</c>); null for TCP.</param>
    public static async Task HandleAsync(KvServerContext ctx, StreamSocket conn, EndPoint peer, string? unixSocket = null)
    {
        var stats = ctx.Stats;
        stats.OnClientConnected();
        try
        {
            if (stats.ConnectedClients > ctx.Config.MaxClients)
            {
                stats.OnConnectionRejected();
                await conn.WriteAsync("-ERR max number of clients reached\r\n"u8.ToArray());
                return;
            }

            if (ctx.Config.ProtectedMode && !ctx.Config.RequiresAuthentication && !IsLoopback(peer))
            {
                // Redis's protected mode (networking.c, clientAcceptHandler): no password, and the client is not local.
                stats.OnConnectionRejected();
                await conn.WriteAsync(ProtectedModeError);
                return;
            }

            await ServeAsync(ctx, conn, peer, unixSocket);
        }
        catch (Exception ex) when (ex is NetException or ObjectDisposedException or ClientGoneException or ClientKilledException ||
                                   (ex is MultipleException m && m.InnerExceptions.All(e => e is ClientKilledException or CancelledException)))
        {
            // The client went away (reset, broken pipe): this connection only.
        }
        catch (Exception ex) when (IsOutputLimit(ex))
        {
            // A subscriber that does not read went over client-output-buffer-limit: disconnected (and counted).
        }
        finally
        {
            stats.OnClientDisconnected();
        }
    }

    /// <summary>Redis 7's reply to a non-loopback client in protected mode (networking.c), sent before closing.</summary>
    internal static readonly byte[] ProtectedModeError =
        ("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. " +
         "In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to " +
         "Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET " +
         "protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however " +
         "MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. " +
         "2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected " +
         "mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it " +
         "with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to " +
         "do one of the above things in order for the server to start accepting connections from the outside.\r\n")
        .Select(c => (byte)c).ToArray();

    /// <summary>Whether a peer is on the loopback interface (Redis's connIsLocal: 127.0.0.0/8, ::1, IPv4-mapped loopback).</summary>
    internal static bool IsLoopback(EndPoint peer) => peer switch
    {
        IPEndPoint ip => IPAddress.IsLoopback(ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address),
        _ => true, // a Unix socket
    };

    private static bool IsOutputLimit(Exception ex) =>
        ex is OutputBufferLimitExceededException || (ex is MultipleException m && m.InnerExceptions.Any(IsOutputLimit));

    private static Task ServeAsync(KvServerContext ctx, StreamSocket conn, EndPoint peer, string? unixSocket) =>
        ServeSessionAsync(ctx, conn, peer, conn.LocalEndPoint?.ToString() ?? "?", unixSocket);

    /// <summary>Runs a connection's session in a switch of its own, then gives its buffers back to
    /// <see cref="KvServerContext.ConnectionBuffers"/> (<see cref="KvConnectionSession.ReleaseBuffers"/>).</summary>
    /// <remarks>The session's loop runs as a fiber forked on the connection's switch, not as the switch's body: a switch
    /// body runs in the switch's inner frame, which the kernel carries in an <see cref="AsyncLocal{T}"/>, so each of the
    /// body's awaits captured that non-default execution context and each resume switched it in and out
    /// (<c>ExecutionContext.RunInternal</c> restoring a changed context, twice per resume). A forked fiber finds its frame
    /// through its synchronization context and runs in the default context (rationale §90): same cancellation (the
    /// switch's), same failure (the switch records it and cancels the daemons), one fiber more per connection.</remarks>
    internal static async Task ServeSessionAsync(KvServerContext ctx, IFlowDuplex conn, EndPoint peer, string localAddress, string? unixSocket = null)
    {
        KvConnectionSession? session = null;
        await Switch.RunAsync(sw =>
        {
            session = new KvConnectionSession(ctx, conn, peer, localAddress, sw, unixSocket);
            Fiber.Fork(sw, session.RunAsync, "kv-connection-loop");
            return Task.CompletedTask;
        }, "kv-connection");

        // Every fiber of the connection has finished (the switch is over): its buffers can go to the next connection.
        session?.ReleaseBuffers();
    }

    /// <summary>The writer of a connection that has subscribed: sends the queued chunks (replies and messages) in order.</summary>
    internal static async Task WritePushesAsync(KvServerContext ctx, IFlowSink conn, KvPushOutput output)
    {
        var chunks = new List<byte[]>(64);
        var joined = new ArrayBufferWriter<byte>(16 * 1024);
        while (true)
        {
            byte[] first;
            try
            {
                first = await output.Queue.TakeAsync();
            }
            catch (StreamClosedException)
            {
                return; // killed: the connection is being closed
            }

            chunks.Clear();
            chunks.Add(first);
            output.Queue.TryTakeMany(chunks, 255);
            ReadOnlyMemory<byte> data;
            if (chunks.Count == 1)
            {
                data = first;
            }
            else
            {
                joined.ResetWrittenCount();
                foreach (byte[] c in chunks)
                {
                    joined.Write(c);
                }

                data = joined.WrittenMemory;
            }

            // CLIENT LIST rbs/rbp: a subscriber's replies and pushed messages fill Redis's reply buffer alike.
            output.State.ReplyBufferSizing.OnRepliesWritten(data.Length, Environment.TickCount64);
            await conn.WriteAsync(data);
            ctx.Stats.OnNetworkTraffic(0, data.Length);
            output.OnWritten(data.Length);
        }
    }

    /// <summary>WATCH, UNWATCH, DISCARD and RESET while a script is busy: Redis answers them at once (they are allowed while
    /// busy); their store part (watches, SELECT 0) is queued behind the script without waiting for it. False when the
    /// command is another one, or the queue is full (then it waits like any other).</summary>
    internal static bool TrySendWhileBusy(KvServerContext ctx, KvConnectionState state, KvCommand command, RespWriter reply)
    {
        string name = command.Info!.Name;
        if (name is not ("watch" or "unwatch" or "discard" or "reset"))
        {
            return false;
        }

        var request = new StoreRequest { Session = state.Session, Protocol = state.Protocol };
        request.Commands.Add(command);
        request.Done = Promise.Create<bool>().Resolver; // nobody waits: the reply is known
        try
        {
            if (!ctx.Queue.TryAdd(request))
            {
                return false;
            }
        }
        catch (StreamClosedException)
        {
            return false;
        }

        if (name == "reset")
        {
            reply.WriteSimpleString("RESET");
        }
        else
        {
            reply.WriteOk();
        }

        return true;
    }

    /// <summary>QUIT from a subscribed connection: let the writer send the +OK before the connection closes.</summary>
    internal static async Task WaitDrainedAsync(KvServerContext ctx, KvPushOutput push)
    {
        var deadline = ctx.Clock.Now + ShutdownReplyGrace;
        while (push.PendingBytes > 0 && ctx.Clock.Now < deadline)
        {
            await ctx.Clock.SleepAsync(TimeSpan.FromMilliseconds(1));
        }
    }

    /// <summary>Sends the pending data commands to the store owner and appends their replies to <paramref name="output"/>.</summary>
    /// <remarks>Replies are streamed: a large batch reply goes to the socket directly (when <paramref name="direct"/>: the
    /// connection is not subscribed) instead of being copied into <paramref name="output"/>, and pending output over
    /// <see cref="FlushAt"/> is sent at once. A batch whose replies went over the client's output limit
    /// (<see cref="KvServerConfig.EffectiveReplyLimit"/>) disconnects the client (<see cref="OutputBufferLimitExceededException"/>).</remarks>
    internal static async ValueTask SubmitAsync(KvServerContext ctx, IFlowSink conn, StoreRequest request, KvConnectionState state,
        ReplyBuffer output, ArrayBufferWriter<byte> early, bool direct, Func<BlockedReadWatcher> watcher)
    {
        if (request.Commands.Count == 0)
        {
            return;
        }

        AsyncQueue<StoreOutcome>? outcomes = BeginSubmit(ctx, request);
        if (outcomes is not null)
        {
            await ctx.Queue.AddAsync(request);
        }

        await FinishSubmitAsync(ctx, conn, request, state, output, early, direct, watcher, outcomes, null);
    }

    /// <summary>The first part of <see cref="SubmitAsync"/>, for a caller that awaits the store itself (the connection's
    /// own frame: <see cref="KvConnectionSession.RunAsync"/>, so that no async frame of a callee waits for the store on
    /// every batch): null when the batch is to run inline (then call <see cref="FinishSubmitAsync"/> at once, with no
    /// await between); otherwise the request's reusable outcome queue, armed (<see cref="StoreRequest.ArmOutcome"/>: no
    /// promise per batch), and the caller adds the request to <see cref="KvServerContext.Queue"/> before it waits. Call
    /// only with commands to run.</summary>
    internal static AsyncQueue<StoreOutcome>? BeginSubmit(KvServerContext ctx, StoreRequest request)
    {
        request.Reply.ResetWrittenCount();
        if (ctx.Store is { } owner && owner.CanRunInline(request))
        {
            return null;
        }

        // The store loop is on another domain, or busy: the seed's hop (the queue, then the store's answer: once a promise
        // per batch, now the connection's one outcome queue, which allocates nothing per batch).
        return request.ArmOutcome();
    }

    /// <summary>The rest of <see cref="SubmitAsync"/>: runs the batch inline (<paramref name="outcomes"/> null) or takes the
    /// store's answer (<paramref name="taken"/> when the caller took it already, else from <paramref name="outcomes"/>),
    /// then appends the replies to <paramref name="output"/>. Completes without suspending (no async frame allocated)
    /// when the answer was taken already, the batch did not block and no reply goes to the socket from here: the usual case.
    /// (The connection's main loop, <see cref="KvConnectionSession.RunAsync"/>, does the blocked wait in its own frame
    /// instead: see <see cref="TakeAnswer"/>.)</summary>
    internal static async ValueTask FinishSubmitAsync(KvServerContext ctx, IFlowSink conn, StoreRequest request, KvConnectionState state,
        ReplyBuffer output, ArrayBufferWriter<byte> early, bool direct, Func<BlockedReadWatcher> watcher,
        AsyncQueue<StoreOutcome>? outcomes, StoreOutcome? taken)
    {
        AsyncQueue<StoreOutcome>? pending = taken is null ? outcomes : null; // an answer still to take
        try
        {
            // Inline: the store is on this domain and idle, so the batch runs here, now (no queue hop, no promise).
            bool finished;
            if (outcomes is null)
            {
                finished = ctx.Store!.RunInline(request);
            }
            else
            {
                StoreOutcome outcome = taken ?? await outcomes.TakeAsync();
                pending = null;
                if (outcome.Error is { } error)
                {
                    ExceptionDispatchInfo.Throw(error); // as a promise resolved with the error rethrows it
                }

                finished = outcome.Finished;
            }

            if (!finished)
            {
                // Parked on a blocking command (BLPOP...): the wait is awaited here, in this frame, not in an async method
                // of its own. A nested async method that suspends completes through a post to the fiber's context (a
                // fresh delegate and adapter, 160 B, and a run-queue hop more, per block); the waits below are on the
                // library's own sources, which resume this frame from the run queue with nothing allocated.
                // (KvConnectionSession.RunAsync has the same loop in its own frame: this method's frame, allocated when
                // it suspends, is only paid by the rarer submit points.)
                if (StartBlockedWait(request, output))
                {
                    await conn.WriteAsync(output.WrittenMemory);
                    output.ResetWrittenCount();
                }

                var blockedWatcher = watcher();
                bool gone = false; // the store signals the completion into watcher.Events (StoreRequest.SignalCompletion)
                while (true)
                {
                    if (early.WrittenCount < MaxInputWhileBlocked)
                    {
                        blockedWatcher.StartRead(); // no-op while a read is pending; over the limit TCP flow control holds the rest back
                    }

                    var e = await blockedWatcher.Events.TakeAsync();
                    if (e.Completion)
                    {
                        e.Error?.Throw();
                        break;
                    }

                    int read = blockedWatcher.OnReadEvent(e, early);
                    if (read == 0)
                    {
                        gone = true;
                        break;
                    }
                }

                if (EndBlockedWait(ctx, request, output, gone))
                {
                    return;
                }
            }
        }
        catch (StoreRestartedException ex)
        {
            OnStoreRestarted(state, request, ex);
        }
        catch (CancelledException)
        {
            // Shutting down: the store will still execute and commit this batch; deliver the replies before leaving,
            // but give up after a grace period so that a client that stopped reading cannot hold up the shutdown.
            await DeliverWhileShuttingDownAsync(ctx, conn, request, output, pending);
            request.Commands.Clear();
            throw;
        }

        await CompleteSubmitAsync(ctx, conn, request, state, output, direct);
    }

    /// <summary>The answer of a batch whose answer is known without waiting: run inline (<paramref name="outcomes"/>
    /// null) or <paramref name="taken"/> from the outcome queue. True: every command ran (then call
    /// <see cref="CompleteSubmitAsync"/>); false: the request is parked on a blocking command, and the caller waits for
    /// its completion in its own frame (<see cref="StartBlockedWait"/>, the watcher's events, <see cref="EndBlockedWait"/>),
    /// as <see cref="FinishSubmitAsync"/> does. A store that restarted gives every command its error reply (true).</summary>
    internal static bool TakeAnswer(KvServerContext ctx, StoreRequest request, KvConnectionState state, AsyncQueue<StoreOutcome>? outcomes, StoreOutcome? taken)
    {
        try
        {
            if (outcomes is null)
            {
                return ctx.Store!.RunInline(request);
            }

            StoreOutcome outcome = taken!.Value;
            if (outcome.Error is { } error)
            {
                ExceptionDispatchInfo.Throw(error); // as a promise resolved with the error rethrows it
            }

            return outcome.Finished;
        }
        catch (StoreRestartedException ex)
        {
            OnStoreRestarted(state, request, ex);
            return true;
        }
    }

    /// <summary>The store owner crashed with this request in its round (or is gone): one error reply per command.</summary>
    internal static void OnStoreRestarted(KvConnectionState state, StoreRequest request, StoreRestartedException ex)
    {
        state.OnRequestFailed();
        request.Reply.ResetWrittenCount();
        var writer = new RespWriter(request.Reply, request.Protocol);
        for (int i = 0; i < request.Commands.Count; i++)
        {
            writer.WriteError(ex.ReplyError);
        }
    }

    /// <summary>The end of a submit whose commands all ran: appends the replies to <paramref name="output"/> (or sends a
    /// large one directly, or flushes a large output); disconnects a client over its output limit. Completes without
    /// suspending unless it writes to the socket.</summary>
    internal static ValueTask CompleteSubmitAsync(KvServerContext ctx, IFlowSink conn, StoreRequest request, KvConnectionState state,
        ReplyBuffer output, bool direct)
    {
        // The usual batch (replies under 64 KiB, within the limit) without an async method: its builder, state machine
        // and the execution context's capture cost ~70 instructions per batch (session 26). Same steps, same order.
        if (request.Reply.Overflowed || (direct && output.WrittenCount == 0 && request.Reply.WrittenCount >= DirectWriteAt) ||
            (direct && output.WrittenCount + request.Reply.WrittenCount >= FlushAt))
        {
            return CompleteSubmitSlowAsync(ctx, conn, request, state, output, direct);
        }

        request.Commands.Clear();
        if (output.WrittenCount == 0)
        {
            output.SwapContents(request.Reply); // the batch's replies become the output: no copy
        }
        else
        {
            output.Write(request.Reply.WrittenSpan);
        }

        return default;
    }

    private static async ValueTask CompleteSubmitSlowAsync(KvServerContext ctx, IFlowSink conn, StoreRequest request, KvConnectionState state,
        ReplyBuffer output, bool direct)
    {
        request.Commands.Clear();
        if (request.Reply.Overflowed)
        {
            ctx.Stats.OnOutputBufferLimitDisconnection();
            ctx.Log($"Client id={state.Session.ClientId} " +
                $"addr={state.RemoteAddress} scheduled to be closed ASAP for overcoming of output buffer limits " +
                $"(pending replies over {ctx.Config.EffectiveReplyLimit} bytes).");
            request.Reply.ResetWrittenCount();
            request.Reply.Shrink();
            throw new OutputBufferLimitExceededException("client-output-buffer-limit (normal) exceeded");
        }

        if (direct && output.WrittenCount == 0 && request.Reply.WrittenCount >= DirectWriteAt)
        {
            // A large reply: sent from the request's buffer, not copied into the connection's first.
            ctx.Stats.OnNetworkTraffic(0, request.Reply.WrittenCount);
            await WriteCountedAsync(conn, state, request.Reply.WrittenMemory);
            request.Reply.ResetWrittenCount();
            request.Reply.Shrink();
            return;
        }

        if (output.WrittenCount == 0)
        {
            output.SwapContents(request.Reply); // the batch's replies become the output: no copy
        }
        else
        {
            output.Write(request.Reply.WrittenSpan);
        }

        if (direct && output.WrittenCount >= FlushAt)
        {
            ctx.Stats.OnNetworkTraffic(0, output.WrittenCount);
            await WriteCountedAsync(conn, state, output.WrittenMemory);
            output.ResetWrittenCount();
            output.Shrink();
        }
    }

    // SubmitAsync's shutdown path, in a method of its own: the lambdas capture the parameters, and a closure over them in
    // SubmitAsync itself was allocated at every call (two display classes per batch), not only when shutting down.
    // pending: the batch's answer not taken yet (the store will still give it).
    internal static ValueTask DeliverWhileShuttingDownAsync(KvServerContext ctx, IFlowSink conn, StoreRequest request,
        ReplyBuffer output, AsyncQueue<StoreOutcome>? pending) =>
        new(Cancel.ProtectAsync(async () =>
        {
            if (pending is not null)
            {
                await pending.TakeAsync();
            }

            output.Write(request.Reply.WrittenSpan);
            await ctx.Clock.TryWithTimeoutAsync(ShutdownReplyGrace, async () =>
            {
                await conn.WriteAsync(output.WrittenMemory);
                return true;
            });
            output.ResetWrittenCount();
        }));

    /// <summary>Writes a normal (not subscribed) client's output, shown meanwhile as its pending output (CLIENT LIST
    /// obl/oll/omem, client-output-buffer-limit normal: <see cref="KvConnectionState.OutputPendingBytes"/>; issue 13).</summary>
    internal static async ValueTask WriteCountedAsync(IFlowSink conn, KvConnectionState state, ReadOnlyMemory<byte> data)
    {
        StartCountedWrite(state, data.Length);
        try
        {
            await conn.WriteAsync(data);
        }
        finally
        {
            state.OutputPendingBytes = 0;
        }
    }

    /// <summary>The bookkeeping of <see cref="WriteCountedAsync"/> before the write (the caller that awaits the write
    /// itself, to save an async frame per reply, sets <see cref="KvConnectionState.OutputPendingBytes"/> to 0 after it).</summary>
    internal static void StartCountedWrite(KvConnectionState state, int length)
    {
        state.OutputPendingBytes = length;
        state.ReplyBufferSizing.OnRepliesWritten(length, Environment.TickCount64); // CLIENT LIST rbs/rbp
    }

    /// <summary>The request is parked on a blocking command (BLPOP...): takes the replies before it (<see
    /// cref="StoreRequest.EarlyReply"/>) into <paramref name="output"/> and marks the client blocked. The caller
    /// (<see cref="SubmitAsync"/>) then sends <paramref name="output"/> when this returns true, and waits for the rest of
    /// the request while watching the socket (its <see cref="BlockedReadWatcher"/>), so that a client that goes away is
    /// unblocked at once (nothing is served for it); bytes the client sends meanwhile are kept in its early buffer for
    /// after the wait.</summary>
    /// <remarks>The watcher's read is not cancelled when the command completes (a cancelled read costs exceptions on
    /// every wake-up): the connection's next read takes its result instead.</remarks>
    internal static bool StartBlockedWait(StoreRequest request, ReplyBuffer output)
    {
        output.Write(request.EarlyReply);
        request.EarlyReply = null;
        bool send = false;
        if (request.Push is { } push)
        {
            // Subscribed: the replies before the blocking command go through the ordered output, then the messages held
            // while the batch ran; messages flow while the command waits, until the store writes its reply.
            push.EndBatchBlocked(output.WrittenSpan);
            output.ResetWrittenCount();
        }
        else
        {
            send = output.WrittenCount > 0;
        }

        if (request.Session.Connection?.Entry is { } blockedEntry)
        {
            blockedEntry.Blocked = true; // exempt from timeout; flag b in CLIENT LIST
        }

        return send;
    }

    /// <summary>The blocked wait ended: the command completed, or (<paramref name="gone"/>) the client closed the
    /// connection, whose blocked command the store is told to cancel (then <see cref="ClientGoneException"/>).</summary>
    /// <returns>True when the submit is done: a subscribed connection's blocked reply went between its pushed messages
    /// and the replies after it into <paramref name="output"/> (do not call <see cref="CompleteSubmitAsync"/>); false:
    /// complete the submit as for a batch that did not block.</returns>
    internal static bool EndBlockedWait(KvServerContext ctx, StoreRequest request, ReplyBuffer output, bool gone)
    {
        CancelIfGone(ctx, request, gone);
        if (request.Push is { } push && request.BlockedReplyEnd >= 0)
        {
            // Subscribed: the blocked reply goes between the messages pushed before and after the store wrote it;
            // the replies of the commands pipelined after it follow with the batch.
            push.DeliverBlockedReply(request.Reply.WrittenSpan[..request.BlockedReplyEnd]);
            output.Write(request.Reply.WrittenSpan[request.BlockedReplyEnd..]);
            request.Commands.Clear();
            return true;
        }

        return false;
    }

    private static void CancelIfGone(KvServerContext ctx, StoreRequest request, bool gone)
    {
        if (request.Session.Connection?.Entry is { } unblockedEntry)
        {
            unblockedEntry.Blocked = false;
        }

        if (gone)
        {
            request.Session.Closed = true;
            var cancel = new StoreRequest { Session = request.Session, CancelBlock = true };
            (_, cancel.Done) = Promise.Create<bool>();
            ctx.Queue.TryAdd(cancel); // best effort: the owner also sweeps closed sessions and never serves them
            throw new ClientGoneException();
        }
    }

    /// <summary>CLIENT KILL or timeout closed the connection.</summary>
    internal sealed class ClientKilledException : Exception;

    /// <summary>The client closed the connection while its blocking command waited.</summary>
    private sealed class ClientGoneException : Exception;

    /// <summary>One wake-up of a blocked connection: its blocked command completed, or the watcher's read returned.</summary>
    internal readonly record struct WatchEvent(bool Completion, int Bytes, ExceptionDispatchInfo? Error);

    /// <summary>Watches the socket of a connection whose blocking command waits (created at its first block): the
    /// connection's own fiber starts a read into the watcher's chunk (<see cref="ReadAhead"/>: no fiber of its own) and
    /// goes on waiting for <see cref="Events"/>; a read that completes meanwhile adds a read event there, and the
    /// command's completion (which the store owner adds itself: <see cref="StoreRequest.SignalCompletion"/>) arrives in the
    /// same queue. A read still pending when the command completes is not cancelled: the connection's next read takes its
    /// result (<see cref="ReadPending"/>), resumed by the read's own completion.</summary>
    /// <remarks>Session 23 (h144): a daemon fiber held the read before, which cost three runs of the scheduler per block
    /// (the fiber started its read, got its result, and its event woke the connection).</remarks>
    internal sealed class BlockedReadWatcher
    {
        private static readonly WatchEvent ReadEvent = new(false, 0, null);
        private readonly byte[] _chunk = new byte[4096];
        private readonly ReadAhead _read;

        /// <summary>A watcher of <paramref name="conn"/>; <paramref name="events"/> is the connection's request's
        /// <see cref="StoreRequest.BlockEvents"/>.</summary>
        public BlockedReadWatcher(IFlowSource conn, AsyncQueue<WatchEvent> events)
        {
            Events = events;
            _read = new ReadAhead(conn, () => events.TryAdd(ReadEvent));
        }

        public AsyncQueue<WatchEvent> Events { get; }

        /// <summary>A read was started and its result not yet taken.</summary>
        public bool ReadPending => _read.IsPending;

        /// <summary>Starts a read unless one is pending (called by the connection's fiber: the read is its own).</summary>
        public void StartRead()
        {
            if (!_read.IsPending && _read.Start(_chunk))
            {
                Events.TryAdd(ReadEvent); // completed at once: reported as one that completed later
            }
        }

        /// <summary>Appends a read event's bytes to <paramref name="into"/>; returns them (0: the client closed; -1: the
        /// event is stale, its read's result was taken already by the connection's next read).</summary>
        public int OnReadEvent(WatchEvent e, ArrayBufferWriter<byte> into)
        {
            e.Error?.Throw();
            if (!_read.TryTake(out int n))
            {
                return -1;
            }

            into.Write(_chunk.AsSpan(0, n));
            return n;
        }

        /// <summary>The pending read's result when it has completed (its bytes appended to <paramref name="into"/>, as
        /// <see cref="OnReadEvent"/>); false while it is in flight.</summary>
        public bool TryTakeRead(ArrayBufferWriter<byte> into, out int n)
        {
            if (!_read.TryTake(out n))
            {
                return false;
            }

            into.Write(_chunk.AsSpan(0, n));
            return true;
        }

        /// <summary>The pending read's byte count when it completes (its bytes then in <see cref="Chunk"/>).</summary>
        public ValueTask<int> TakeReadAsync() => _read.TakeAsync();

        /// <summary>Where the pending read's bytes are.</summary>
        public ReadOnlySpan<byte> Chunk(int n) => _chunk.AsSpan(0, n);

        /// <summary>Cancels a read in flight (the connection ends: the read must not hold the socket open).</summary>
        public void Cancel() => _read.Cancel();
    }
}
