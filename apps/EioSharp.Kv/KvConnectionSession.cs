using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using EioSharp.IO;
using EioSharp.Net;
using EioSharp.Sync;

namespace EioSharp.Kv;

/// <summary>One client connection's session: reads the flow through the library's <see cref="BufferedReader"/>, parses
/// every command already received in place (views over the receive buffer, <see cref="KvCommandArena"/>), runs connection
/// commands here and sends the data commands of the batch to the store owner in one request (one queue hop per batch;
/// the owner's group commit), writes every reply into one output buffer and sends it once per batch.</summary>
/// <remarks>
/// <para><b>Copies</b>: a command whose bytes arrived in one read is not copied: the store reads its arguments from the
/// receive buffer and copies what it keeps (a value: once, into its row). The buffer is read again only once every
/// command of the batch has run (whoever keeps a command longer keeps <see cref="KvCommand.ToOwned"/>). A command split
/// over reads is assembled by <see cref="RespRequestReader"/> (its complete arguments copied once); a large argument
/// (32 KiB and more) is read from the flow straight into its own array (<see cref="BufferedReader.ReadIntoAsync"/>).</para>
/// <para><b>Sockets</b>: none needed. The session runs over any <see cref="IFlowDuplex"/> (a TCP connection in the
/// server; in-memory flows in tests), so pipelining, split frames and ordering are testable without a network.</para>
/// <para><b>Thread safety</b>: one fiber (the connection's); the numbers for CLIENT LIST (<see cref="InputBufferLength"/>
/// ...) are plain reads that another fiber of the same domain may take at any time.</para>
/// </remarks>
internal sealed class KvConnectionSession
{
    /// <summary>The receive buffer's first size in bytes; it grows for a long inline line or a small argument still being
    /// received (up to <see cref="MaxReadBuffer"/>) and goes back to this size once drained.</summary>
    public const int InitialReadBuffer = 16 * 1024;

    /// <summary>The first size of the output buffer and of the request's reply buffer, in bytes.</summary>
    public const int OutputBuffer = 4096;

    /// <summary>The most the receive buffer grows to (an inline line is at most 64 KiB, an argument kept in it under 32 KiB).</summary>
    public const int MaxReadBuffer = 4 * 1024 * 1024;

    /// <summary>The most the receive buffer grows to so that a pipeline that filled it is run as one batch (see
    /// <see cref="StoppedInsidePipeline"/>); a connection whose batches are that large keeps the size.</summary>
    public const int PipelineReadBuffer = 64 * 1024;

    private readonly KvServerContext _ctx;
    private readonly IFlowDuplex _conn;
    private readonly EndPoint _peer;
    private readonly Switch _sw;
    private readonly KvConnectionState _state;
    private readonly KvClientEntry _entry;
    private readonly StoreRequest _request;
    private readonly RespRequestReader _commands;
    private readonly KvCommandArena _arena = new();
    private readonly BufferedReader _reader;
    private readonly ReplyBuffer _output;
    private readonly RespWriter _outWriter;
    private readonly ArrayBufferWriter<byte> _scratch = new(256);
    private readonly RespWriter _scratchWriter;
    private readonly ArrayBufferWriter<byte> _early = new(1); // bytes read while a blocking command waited (pipelined after it)
    private readonly Promise<bool> _killed; // true: CLIENT KILL or timeout; false: the session ended by itself (RunAsync)
    private readonly Resolver<bool> _killer;
    private readonly Func<KvConnection.BlockedReadWatcher> _watcherFactory; // Watcher as a delegate, made once (not per batch)
    private KvPushOutput? _push;
    private KvConnection.BlockedReadWatcher? _watcher; // created at the connection's first blocking wait
    private int _batchConsumed; // the receive buffer's bytes the batch parsed (consumed by EndBatch)
    private long _batchQueryBuffer; // CLIENT LIST qbuf as reported at the batch's end
    private long _batchNowUnixMs; // the clock as the batch last read it (StoreRequest.BatchNowUnixMs)
    private bool _batchPipeline; // the batch held several commands and filled half the initial buffer or more
    private long _batchWaitEpoch; // KvBatchWait: the epoch this connection was last counted in flight
    private int _batchCommands; // the commands the batch read (KvBatchWait: a pipelined batch is not hinted)
    private bool _endedCleanly; // RunAsync returned (client closed, QUIT, protocol error): no batch in the store's hands

    /// <summary>Creates the session of a connection (registered in <see cref="KvServerContext.Clients"/> until
    /// <see cref="RunAsync"/> ends).</summary>
    /// <param name="ctx">What every connection shares.</param>
    /// <param name="conn">The connection.</param>
    /// <param name="peer">The client's address (for a Unix socket client: the socket's path).</param>
    /// <param name="localAddress">The address the client connected to (CLIENT LIST laddr).</param>
    /// <param name="sw">The connection's switch.</param>
    /// <param name="unixSocket">The Unix socket's path when the client came through <c>unixsocket</c> (CLIENT LIST:
    /// <c>addr=path:0 laddr=path:0 flags=U</c>, as Redis); null for TCP.</param>
    public KvConnectionSession(KvServerContext ctx, IFlowDuplex conn, EndPoint peer, string localAddress, Switch sw, string? unixSocket = null)
    {
        _ctx = ctx;
        _conn = conn;
        _peer = peer;
        _sw = sw;
        _state = new KvConnectionState(ctx.NextClientId(), ctx.Live, ctx.Stats, ctx.PubSub)
        {
            RemoteAddress = unixSocket is null ? peer.ToString() ?? "?" : unixSocket + ":0", Admin = ctx.Admin, CommandStats = ctx.CommandStats,
            ScriptMonitor = ctx.ScriptMonitor, IsUnixSocket = unixSocket is not null,
            UnsentOutput = conn is StreamSocket socket ? () => socket.UnsentBytes : null, // io_uring write-behind bytes
        };

        // CLIENT KILL and timeout close the connection from any domain: the kill promise fails the switch.
        var (killed, killer) = Promise.Create<bool>();
        _killed = killed;
        _killer = killer;
        _entry = new KvClientEntry(_state, ctx.Clock.Now.ToUnixTimeMilliseconds(), () => killer.TryResolve(true))
        {
            LocalAddress = unixSocket is null ? localAddress : unixSocket + ":0",
        };
        _request = new StoreRequest(ctx.ConnectionBuffers) { Session = _state.Session };
        _output = new ReplyBuffer(OutputBuffer, ctx.ConnectionBuffers);
        _commands = new RespRequestReader(ctx.Parser) { Arena = _arena };
        _reader = new BufferedReader(new SessionSource(this), MaxReadBuffer, InitialReadBuffer, ctx.ConnectionBuffers);
        _outWriter = new RespWriter(_output);
        _scratchWriter = new RespWriter(_scratch);
        _watcherFactory = Watcher;
    }

    /// <summary>The connection's protocol state (authentication, database, subscriptions...).</summary>
    public KvConnectionState State => _state;

    /// <summary>Bytes received and not yet run: the receive buffer's unparsed bytes, the arguments kept of a command
    /// still being received, and bytes read while a blocking command waited (CLIENT LIST <c>qbuf</c>).</summary>
    public long InputBufferLength => _reader.BufferedCount + _commands.BufferedBytes + _early.WrittenCount;

    /// <summary>Free bytes of the receive buffer (CLIENT LIST <c>qbuf-free</c>).</summary>
    public long InputBufferFree => _reader.Capacity - _reader.BufferedCount;

    /// <summary>Reply bytes waiting in the output buffer, not yet sent (CLIENT LIST <c>obl</c>).</summary>
    public long OutputBufferLength => _output.WrittenCount + _request.Reply.WrittenCount;

    /// <summary>Reply chunks queued behind the output buffer: a subscribed connection's pushed messages and replies not
    /// yet written (CLIENT LIST <c>oll</c>).</summary>
    public long PendingReplies => _push?.Queue.Count ?? 0;

    /// <summary>Bytes of those queued chunks (with <see cref="OutputBufferLength"/>: part of CLIENT LIST <c>omem</c>).</summary>
    public long PendingReplyBytes => _push?.PendingBytes ?? 0;

    /// <summary>Memory the session's buffers take: receive buffer, kept arguments, output buffers and queued pushes
    /// (CLIENT LIST <c>tot-mem</c>, without the fixed per-connection cost).</summary>
    public long MemoryBytes => _reader.Capacity + _commands.BufferedBytes + _early.Capacity + _output.Capacity +
                               _request.Reply.Capacity + PendingReplyBytes;

    private KvConnection.BlockedReadWatcher Watcher() => _watcher ??= new KvConnection.BlockedReadWatcher(_conn, _request.BlockEvents!);

    private bool Direct => _push is null;

    private ValueTask SubmitAsync() =>
        KvConnection.SubmitAsync(_ctx, _conn, _request, _state, _output, _early, direct: Direct, _watcherFactory);

    /// <summary>Serves the connection until the client closes it, QUIT, a protocol error, or the switch ends.</summary>
    public async Task RunAsync()
    {
        var ctx = _ctx;
        ctx.Clients.Add(_entry);
        _state.ReportQueryBuffer(0, _reader.Capacity, 0); // counted in used_memory from the start (an idle client too)
        var killed = _killed;
        Fiber.ForkDaemon(_sw, async () =>
        {
            // False: the session ended by itself and said so on its way out (the finally below), so that this daemon ends
            // as a normal return. Left to the switch's cancellation of its daemons, its await threw a CancelledException
            // and the fiber's end threw it again: two exceptions thrown and caught at every connection's end.
            if (await killed.AwaitAsync())
            {
                throw new KvConnection.ClientKilledException();
            }
        }, "kv-connection-kill");
        _state.SubscriberFactory = s =>
        {
            // First subscription: from now on every write goes through the ordered, bounded outbound queue, also the
            // replies of a blocking command (the store holds pushes from the moment it writes that reply).
            var output = new KvPushOutput(s, ctx.Config, ctx.Stats);
            _push = output;
            _request.Push = output;
            _state.Session.HoldPushes = output.HoldForBlockedReply;
            Fiber.ForkDaemon(_sw, () => KvConnection.WritePushesAsync(ctx, _conn, output), "kv-connection-writer");
            Fiber.ForkDaemon(_sw, async () =>
            {
                await output.Killed.AwaitAsync();
                throw new OutputBufferLimitExceededException("client-output-buffer-limit (pubsub) exceeded");
            }, "kv-connection-limit");
            return output;
        };

        try
        {
            while (true)
            {
                int n;
                if (_reader.BufferedCount == 0 && _commands.DirectTarget is { IsEmpty: false } direct)
                {
                    // The rest of a large argument: straight into its own array (the receive buffer does not grow to its size).
                    n = await _reader.ReadIntoAsync(direct);
                    if (n == 0)
                    {
                        _endedCleanly = true;
                        return;
                    }

                    _commands.AdvanceDirect(n);
                    _state.ReportQueryBuffer(_commands.PartialArgumentBytes, _reader.Capacity, _commands.ArgumentBytes, _commands.PartialArgumentCapacity);
                    ctx.Stats.OnNetworkTraffic(n, 0);
                    continue;
                }

                int before = _reader.BufferedCount;
                if (!await _reader.FillAsync())
                {
                    _endedCleanly = true;
                    return;
                }

                if (StoppedInsidePipeline())
                {
                    await ReadRestOfPipelineAsync(); // rare: no async frame of its own on the usual path
                }

                n = _reader.BufferedCount - before;
                ValueTask<bool> batch = RunBatchAsync(); // completes without suspending unless a command needed a wait of its own
                bool sameStep = batch.IsCompletedSuccessfully; // nothing awaited since the batch read the clock
                bool close = await batch;
                if (_request.Commands.Count > 0)
                {
                    // The batch's data commands: the wait for the store (the queue hop) is awaited here, in this fiber's
                    // frame (allocated once per connection); in an async callee it cost that callee's frame and the
                    // continuation of the await on it, every batch (about 500 B per SET under an AOF).
                    AsyncQueue<StoreOutcome>? outcomes = KvConnection.BeginSubmit(ctx, _request); // null: run inline, no wait
                    if (outcomes is null && sameStep)
                    {
                        // The inline round (FinishSubmitAsync, at once) runs at the batch's clock reading: nothing was
                        // awaited since it was taken (the usual case).
                        _request.BatchNowUnixMs = _batchNowUnixMs;
                    }

                    StoreOutcome? taken = null;
                    if (outcomes is not null)
                    {
                        await ctx.Queue.AddAsync(_request);
                        try
                        {
                            taken = await outcomes.TakeAsync();
                        }
                        catch (CancelledException)
                        {
                            // Handled by FinishSubmitAsync, which waits for the answer again (the replies delivered
                            // while shutting down), as SubmitAsync does.
                        }
                    }

                    if (outcomes is not null && taken is null)
                    {
                        // Cancelled while waiting (shutting down): the answer is still to take.
                        await KvConnection.FinishSubmitAsync(ctx, _conn, _request, _state, _output, _early, Direct, _watcherFactory, outcomes, taken);
                    }
                    else
                    {
                        bool done = false;
                        if (!KvConnection.TakeAnswer(ctx, _request, _state, outcomes, taken))
                        {
                            // Parked on a blocking command (BLPOP...): the wait is awaited here, in this fiber's frame (as
                            // FinishSubmitAsync does for the other submit points). An async callee that suspends costs its
                            // own frame (~190 B) and, completing, a continuation posted to the fiber's context and a
                            // run-queue hop: twice per BLPOP/LPUSH ping-pong round trip. The waits here are on the
                            // library's own sources, which resume this frame from the run queue with nothing allocated.
                            _request.ServedParked = false; // (this batch's replies wait for its own blocked command)
                            try
                            {
                                if (KvConnection.StartBlockedWait(_request, _output))
                                {
                                    await _conn.WriteAsync(_output.WrittenMemory);
                                    _output.ResetWrittenCount();
                                }

                                var watcher = Watcher();
                                bool gone = false; // the store signals the completion into watcher.Events (StoreRequest.SignalCompletion)
                                while (true)
                                {
                                    if (_early.WrittenCount < KvConnection.MaxInputWhileBlocked)
                                    {
                                        watcher.StartRead(); // no-op while a read is pending; over the limit TCP flow control holds the rest back
                                    }

                                    var e = await watcher.Events.TakeAsync();
                                    if (e.Completion)
                                    {
                                        e.Error?.Throw();
                                        break;
                                    }

                                    int read = watcher.OnReadEvent(e, _early); // -1: a stale event (see OnReadEvent)
                                    if (read == 0)
                                    {
                                        gone = true;
                                        break;
                                    }
                                }

                                done = KvConnection.EndBlockedWait(ctx, _request, _output, gone);
                            }
                            catch (StoreRestartedException ex)
                            {
                                KvConnection.OnStoreRestarted(_state, _request, ex);
                            }
                            catch (CancelledException)
                            {
                                // Shutting down: deliver the replies before leaving (as FinishSubmitAsync does).
                                await KvConnection.DeliverWhileShuttingDownAsync(ctx, _conn, _request, _output, null);
                                _request.Commands.Clear();
                                throw;
                            }
                        }

                        if (!done)
                        {
                            // Completes without suspending unless the reply is large.
                            await KvConnection.CompleteSubmitAsync(ctx, _conn, _request, _state, _output, Direct);
                        }
                    }
                }

                if (EndBatch(close))
                {
                    await KvConnection.WaitDrainedAsync(ctx, _push!);
                }

                if (_request.ServedParked)
                {
                    // The batch's round served a blocked client (this LPUSH completed its BLPOP): its fiber, queued by the
                    // round, sends its reply before this one sends ours, as Redis writes the clients a command served
                    // before the client that sent it (beforeSleep's clients_pending_write, newest first). On io_uring
                    // both sends reach the kernel in one submission, in queue order, and each wakes its client: the
                    // served client, whose next request the BLPOP/LPUSH ping-pong waits for, is woken first.
                    _request.ServedParked = false;
                    if (_push is null && _output.WrittenCount > 0)
                    {
                        await Fiber.YieldAsync();
                    }
                }

                if (_push is null && _output.WrittenCount > 0)
                {
                    // The batch's replies, sent here rather than in RunBatchAsync: this fiber's frame is allocated once
                    // per connection, an async call's frame once per call that waits (every socket write does).
                    int length = _output.WrittenCount;
                    ctx.Stats.OnNetworkTraffic(0, length);
                    if (length > KvConnectionState.ReplyChunkBytes)
                    {
                        KvConnection.StartCountedWrite(_state, length); // CLIENT LIST obl/omem while it waits
                        try
                        {
                            await _conn.WriteAsync(_output.WrittenMemory);
                        }
                        finally
                        {
                            _state.OutputPendingBytes = 0;
                        }
                    }
                    else
                    {
                        // Replies that fit Redis's reply chunk, the usual case: shown as pending output (and reported in
                        // used_memory, twice) only when the write waits. One that the socket took at once was never
                        // pending, as in Redis, where they sit in the client's fixed buffer (counted whether full or
                        // not) until written; this saved two compare-exchanges and adds per request (session 26).
                        _state.ReplyBufferSizing.OnRepliesWritten(length, Environment.TickCount64); // CLIENT LIST rbs/rbp
                        ValueTask write = _conn.WriteAsync(_output.WrittenMemory);
                        if (write.IsCompletedSuccessfully)
                        {
                            await write; // (its result taken: a pooled source is reset by it)
                        }
                        else
                        {
                            _state.OutputPendingBytes = length; // CLIENT LIST obl/omem while it waits
                            try
                            {
                                await write;
                            }
                            finally
                            {
                                _state.OutputPendingBytes = 0;
                            }
                        }
                    }

                    _output.ResetWrittenCount();
                    KvBatchWait.OnBatch(ref _batchWaitEpoch, _batchCommands, ctx); // the domain's next sleep: wait for company (many in flight)
                }

                _output.Shrink();
                _request.Reply.Shrink();
                ctx.Stats.OnNetworkTraffic(n, 0); // counted as the old loop did, when the batch is done
                if (close)
                {
                    _endedCleanly = true;
                    return;
                }
            }
        }
        finally
        {
            _killer.TryResolve(false); // the kill daemon ends without being cancelled (a kill that came first stays a kill)
            _watcher?.Cancel(); // a read a blocking wait left pending (QUIT pipelined after BLPOP) must not keep the socket open
            _state.ReleaseMemory(); // its part of used_memory goes with it
            ctx.Clients.Remove(_entry);
            _state.RemoveSubscriptions();
            if (_state.Session.HasWatchedKeys)
            {
                // Forget this connection's watches in the store (fire and forget: nobody waits for the reply).
                var unwatch = new StoreRequest { Session = _state.Session };
                unwatch.Commands.Add(KvCommand.Create("UNWATCH"));
                unwatch.Done = Promise.Create<bool>().Resolver;
                try
                {
                    ctx.Queue.TryAdd(unwatch);
                }
                catch (StreamClosedException)
                {
                    // Shutting down: the store is going away anyway.
                }
            }
        }
    }

    /// <summary>Gives the receive and output buffers back to <see cref="KvServerContext.ConnectionBuffers"/> (those of
    /// the first size; grown ones are left to the garbage collector), once <see cref="RunAsync"/> returned and every fiber
    /// of the connection's switch has finished. Only after a clean end (the client closed, QUIT, a protocol error) of a
    /// connection that never subscribed: then no batch is in the store owner's hands (a parked blocking command, a
    /// request being answered while shutting down keep the request's reply buffer) and no writer fiber sends from them.
    /// After any other end (killed, reset, cancelled) the buffers are left to the garbage collector, as before.</summary>
    internal void ReleaseBuffers()
    {
        if (!_endedCleanly || _push is not null || _request.Parked)
        {
            return;
        }

        _reader.Release();
        _output.Release();
        _request.Reply.Release();
    }

    /// <summary>Whether the read that filled the receive buffer stopped in the middle of a command (its last byte is not
    /// the <c>\n</c> every request ends with), so that the client sent more than the buffer held: then
    /// <see cref="ReadRestOfPipelineAsync"/> grows the buffer (up to <see cref="PipelineReadBuffer"/>) and reads the rest
    /// before the batch runs, so that a pipeline (16 SETs of 1 KB: 17 KB) is one batch (one round, one reply write)
    /// rather than two, and the command cut in two is not assembled apart. Waiting there is waiting for bytes the client
    /// has started to send; a buffer that ends at a line end is run as it is (the client may be waiting for those replies).</summary>
    private bool StoppedInsidePipeline() =>
        _reader.BufferedCount == _reader.Capacity && _reader.Capacity < PipelineReadBuffer &&
        _reader.Buffered[^1] != (byte)'\n' && EndsInSmallArgument(_reader.Buffered);

    private async ValueTask ReadRestOfPipelineAsync()
    {
        do
        {
            if (!await _reader.FillAsync())
            {
                return; // the end of the stream: run what is complete; the next fill reports the end
            }
        }
        while (StoppedInsidePipeline());
    }

    /// <summary>Whether the last bulk header of <paramref name="received"/> (<c>$len</c>, after a line end) announces an argument
    /// smaller than <see cref="RespRequestReader.LargeArgumentThreshold"/>: a large one is read straight into its own array
    /// (the buffer does not grow for it). Only a guess (an argument's bytes may look like a header): either way is correct.</summary>
    private static bool EndsInSmallArgument(ReadOnlySpan<byte> received)
    {
        int header = received.LastIndexOf("\r\n$"u8);
        if (header < 0)
        {
            return false;
        }

        long length = 0;
        for (int i = header + 3; i < received.Length && received[i] != (byte)'\r'; i++)
        {
            if (!char.IsAsciiDigit((char)received[i]) || (length = (length * 10) + (received[i] - '0')) >= RespRequestReader.LargeArgumentThreshold)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Runs every command whose bytes are received; the replies are left in <see cref="_output"/> for
    /// <see cref="RunAsync"/> to send (once; a subscribed connection's go to its ordered output here). True: close the connection.</summary>
    private async ValueTask<bool> RunBatchAsync()
    {
        var ctx = _ctx;
        var state = _state;
        var request = _request;
        if (!MemoryMarshal.TryGetArray(_reader.BufferedMemory, out ArraySegment<byte> received))
        {
            throw new InvalidOperationException("The receive buffer is not an array.");
        }

        // Every view of the previous batch is done (its commands ran): the arena now points into this buffer.
        _arena.Reset(received.Array!);
        int pos = 0;
        int length = received.Count;
        _push?.BeginBatch();
        bool close = false;
        long nowUnixMs = ctx.Clock.Now.ToUnixTimeMilliseconds(); // one clock read per batch of commands
        int commandsRead = 0;
        while (pos < length)
        {
            KvCommand? command;
            try
            {
                _commands.Unauthenticated = !state.IsAuthenticated; // Redis's lower limits until AUTH
                bool complete = _commands.TryRead(received.AsSpan(pos, length - pos), received.Offset + pos, out int consumed, out command);
                pos += consumed; // the parser may consume (skip) bytes even when no command is complete yet
                if (!complete || command is null)
                {
                    break;
                }

                commandsRead++;
            }
            catch (RespProtocolException ex)
            {
                // Answer what came before, then the protocol error, then close this connection only.
                await SubmitAsync();
                KvConnectionState.WriteProtocolError(_outWriter, ex);
                close = true;
                pos = length;
                break;
            }

            // The table entry once (each Info read was a volatile read and a type check, five per command here).
            KvCommandInfo? info = command.Info;
            KvCommandId id = info?.Id ?? KvCommandId.Data; // Data: none of the ids tested below
            if (id == KvCommandId.Debug)
            {
                // Server-level: answer what came before first, so that replies stay in order.
                await SubmitAsync();
                await KvDebugCommand.RunAsync(ctx, state, _peer, command, _outWriter);
                continue;
            }

            if (id == KvCommandId.Shutdown)
            {
                // The final RDB save first, on the store owner: if it fails, SHUTDOWN is refused (Redis's prepareForShutdown).
                await SubmitAsync();
                if (await KvShutdownSave.RunAsync(ctx, state, command, _outWriter, ctx.Log))
                {
                    continue;
                }
            }

            if (id == KvCommandId.Migrate)
            {
                // Network I/O: the replies before it are sent first; it waits on this connection only (KvMigrate).
                await SubmitAsync();
                var migrate = state.Process(command, _outWriter, nowUnixMs);
                if (migrate == KvDispatch.Server)
                {
                    await KvMigrate.RunAsync(ctx, state, command.ToOwned(), _outWriter);
                    nowUnixMs = ctx.Clock.Now.ToUnixTimeMilliseconds();
                }
                else if (migrate == KvDispatch.Close)
                {
                    close = true;
                    pos = length;
                    break;
                }

                continue;
            }

            if (request.Commands.Count > 0 && id is KvCommandId.Publish or KvCommandId.SPublish)
            {
                // PUBLISH runs here, on the connection: the writes pipelined before it must have happened first
                // (a subscriber sees their notifications, or the value they pushed, before the message).
                await SubmitAsync();
            }

            // CLIENT PAUSE: commands it covers wait here (the ones before them are answered first).
            if (ctx.Clients.IsPaused(info, nowUnixMs))
            {
                await SubmitAsync();
                while (ctx.Clients.IsPaused(info, ctx.Clock.Now.ToUnixTimeMilliseconds()))
                {
                    await ctx.Clock.SleepAsync(TimeSpan.FromMilliseconds(10));
                }

                nowUnixMs = ctx.Clock.Now.ToUnixTimeMilliseconds();
            }

            // CLIENT REPLY OFF|SKIP: one command at a time, its reply rendered apart and dropped when it must be.
            if (state.ReplyControlActive)
            {
                await SubmitAsync();
                var oneReply = new ReplyBuffer(256);
                var oneWriter = new RespWriter(oneReply);
                var one = state.Process(command, oneWriter, nowUnixMs);
                bool discard = state.DiscardReply;
                if (one == KvDispatch.Store)
                {
                    request.Protocol = state.Protocol;
                    request.Commands.Add(command);
                    await KvConnection.SubmitAsync(ctx, _conn, request, state, oneReply, _early, direct: false, _watcherFactory);
                }

                if (!discard)
                {
                    _output.Write(oneReply.WrittenSpan);
                }

                if (one == KvDispatch.Close)
                {
                    close = true;
                    pos = length;
                    break;
                }

                continue;
            }

            if (request.Commands.Count == 0)
            {
                // Scripting: while a script runs past busy-reply-threshold, Process answers -BUSY (or takes SCRIPT KILL)
                // here instead of waiting behind the script.
                var dispatch = state.Process(command, _outWriter, nowUnixMs);
                if (dispatch == KvDispatch.Store && ctx.ScriptMonitor is { IsBusy: true } &&
                    KvConnection.TrySendWhileBusy(ctx, state, command.ToOwned(), _outWriter))
                {
                    continue;
                }

                if (dispatch == KvDispatch.Store)
                {
                    // The batch answers in the protocol of its first command's time: a HELLO later in the same
                    // read (processed before the batch is submitted) must not change these replies.
                    request.Protocol = state.Protocol;
                    request.Commands.Add(command);
                }
                else if (dispatch == KvDispatch.Close)
                {
                    close = true;
                    pos = length;
                    break;
                }

                continue;
            }

            // A batch is pending: replies must stay in order, so render into scratch first.
            _scratch.ResetWrittenCount();
            var d = state.Process(command, _scratchWriter, nowUnixMs);
            if (d == KvDispatch.Store)
            {
                request.Commands.Add(command);
                continue;
            }

            await SubmitAsync();
            _output.Write(_scratch.WrittenSpan);
            if (d == KvDispatch.Close)
            {
                close = true;
                pos = length;
                break;
            }
        }

        // CLIENT LIST qbuf, qbuf-free, argv-mem as Redis counts them: the $n header of an argument still being received is
        // consumed for Redis (only its data is in qbuf), and so is a large argument's data received so far.
        long queryBuffer = length - pos - _commands.PendingHeaderLength + _commands.PartialArgumentBytes;
        state.ReportQueryBuffer(queryBuffer, _reader.Capacity, _commands.ArgumentBytes, _commands.PartialArgumentCapacity);
        // The batch's last data commands (most batches: all of them) are left in _request: RunAsync submits them in its
        // own frame, then calls EndBatch.
        _batchConsumed = pos;
        _batchNowUnixMs = nowUnixMs;
        _batchQueryBuffer = queryBuffer;
        _batchPipeline = commandsRead > 1 && length > InitialReadBuffer / 2;
        _batchCommands = commandsRead;
        return close;
    }

    /// <summary>The end of a batch, after its last submit: the receive buffer's bytes of the batch are consumed, the buffer
    /// trimmed, a subscribed connection's replies handed to its ordered output. True: wait until that output is drained
    /// (the connection closes).</summary>
    private bool EndBatch(bool close)
    {
        _reader.Consume(_batchConsumed); // the views of this batch are done with: the buffer may be compacted and read into
        // A buffer grown for a pipeline of several commands is kept (up to PipelineReadBuffer) for the next one; grown
        // for one long command, it is given back at once (Redis shrinks an idle client's query buffer in clientsCron).
        bool pipeline = _batchPipeline && _reader.Capacity <= PipelineReadBuffer;
        if (_reader.BufferedCount == 0 && !pipeline)
        {
            _reader.TrimExcess(InitialReadBuffer); // grown for a long line: give it back (kept for large pipelines)
            _state.ReportQueryBuffer(_batchQueryBuffer, _reader.Capacity, _commands.ArgumentBytes, _commands.PartialArgumentCapacity); // qbuf-free after it
        }

        if (_push is { } push)
        {
            // Subscribed: the writer fiber sends, in order with the pushed messages.
            push.EndBatch(_output.WrittenSpan);
            _output.ResetWrittenCount();
            return close;
        }

        // A normal client's replies are sent by the caller (RunAsync), then the buffers shrunk.
        return false;
    }

    /// <summary>The receive side as the reader sees it: bytes read while a blocking command waited come first (and a read
    /// the wait left pending is taken), then the connection itself.</summary>
    /// <remarks>No async method here: a read that waits is either the connection's own or the pending read of the
    /// blocked-read watcher, awaited through one reused <see cref="PendingReadSource"/> (an async method awaited by the
    /// reader resumed it through a post to the fiber's context: a delegate, an adapter and a run-queue hop per block).</remarks>
    private sealed class SessionSource(KvConnectionSession session) : IFlowSource
    {
        private PendingReadSource? _pendingRead;

        public ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            if (session._early.WrittenCount > 0)
            {
                return new ValueTask<int>(TakeEarly(buffer.Span));
            }

            if (session._watcher is not { ReadPending: true } watcher)
            {
                return session._conn.ReadAsync(buffer); // the usual case: no blocking command ran
            }

            // The read a blocking wait left pending: taken at once when it has completed, else awaited (its completion
            // resumes this fiber directly). A read event it may have left in the watcher's queue is skipped by the next wait.
            if (watcher.TryTakeRead(session._early, out int n))
            {
                return new ValueTask<int>(n == 0 ? 0 : TakeEarly(buffer.Span));
            }

            return (_pendingRead ??= new PendingReadSource(this)).Start(watcher.TakeReadAsync(), buffer);
        }

        /// <summary>The pending read's bytes go through the early buffer (0: the read found the end of the stream).</summary>
        private int OnPendingRead(int n, Span<byte> buffer)
        {
            if (n == 0)
            {
                return 0;
            }

            var chunk = session._watcher!.Chunk(n);
            if (n <= buffer.Length)
            {
                chunk.CopyTo(buffer); // the usual case: the client's next request, straight into the receive buffer
                return n;
            }

            session._early.Write(chunk);
            return TakeEarly(buffer);
        }

        private int TakeEarly(Span<byte> buffer)
        {
            var early = session._early;
            int n = Math.Min(early.WrittenCount, buffer.Length);
            early.WrittenSpan[..n].CopyTo(buffer);
            if (n == early.WrittenCount)
            {
                early.ResetWrittenCount();
            }
            else
            {
                byte[] rest = early.WrittenSpan[n..].ToArray();
                early.ResetWrittenCount();
                early.Write(rest);
            }

            return n;
        }

        /// <summary>The pending read as the reader's <see cref="ValueTask{TResult}"/>: relays the watcher's read
        /// (<see cref="ReadAhead.TakeAsync"/>, resumed by the read's completion) and copies its bytes when the reader takes the result
        /// (the library's <see cref="ValueTaskRelay{TPending, TResult}"/>: a second await fails).</summary>
        private sealed class PendingReadSource(SessionSource source) : ValueTaskRelay<int, int>
        {
            private Memory<byte> _buffer;

            public ValueTask<int> Start(ValueTask<int> pending, Memory<byte> buffer)
            {
                _buffer = buffer;
                return StartRelay(pending);
            }

            protected override int Complete(int result)
            {
                var buffer = _buffer;
                _buffer = default;
                return source.OnPendingRead(result, buffer.Span);
            }
        }
    }
}
