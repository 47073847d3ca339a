using System.Buffers;
using System.Net;
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
}

/// <summary>Serves one client connection: parse every complete command already buffered, run connection commands here
/// and data commands on the store owner (one queue hop per batch), reply in order, flush once.</summary>
internal static class KvConnection
{
    private const int InitialReadBuffer = 16 * 1024; // grows (doubling) only for commands larger than this
    private const int MaxInputWhileBlocked = 1024 * 1024; // pipelined input kept while a blocking command waits
    private static readonly TimeSpan ShutdownReplyGrace = TimeSpan.FromSeconds(2); // at shutdown, for replies already committed

    public static async Task HandleAsync(KvServerContext ctx, StreamSocket conn, EndPoint peer)
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

            await ServeAsync(ctx, conn, peer);
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

    private static bool IsOutputLimit(Exception ex) =>
        ex is OutputBufferLimitExceededException || (ex is MultipleException m && m.InnerExceptions.Any(IsOutputLimit));

    private static Task ServeAsync(KvServerContext ctx, StreamSocket conn, EndPoint peer) =>
        Switch.RunAsync(sw => ServeAsync(ctx, conn, peer, sw), "kv-connection");

    /// <summary>The writer of a connection that has subscribed: sends the queued chunks (replies and messages) in order.</summary>
    private static async Task WritePushesAsync(KvServerContext ctx, StreamSocket conn, KvPushOutput output)
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

            await conn.WriteAsync(data);
            ctx.Stats.OnNetworkTraffic(0, data.Length);
            output.OnWritten(data.Length);
        }
    }

    private static async Task ServeAsync(KvServerContext ctx, StreamSocket conn, EndPoint peer, Switch sw)
    {
        var state = new KvConnectionState(ctx.NextClientId(), ctx.Live, ctx.Stats, ctx.PubSub)
        {
            RemoteAddress = peer.ToString() ?? "?", Admin = ctx.Admin, CommandStats = ctx.CommandStats,
        };

        // CLIENT KILL and timeout close the connection from any domain: the kill promise fails this switch.
        var (killed, killer) = Promise.Create<bool>();
        var entry = new KvClientEntry(state, ctx.Clock.Now.ToUnixTimeMilliseconds(), () => killer.TryResolve(true))
        {
            LocalAddress = conn.LocalEndPoint?.ToString() ?? "?",
        };
        ctx.Clients.Add(entry);
        Fiber.ForkDaemon(sw, async () =>
        {
            await killed.AwaitAsync();
            throw new ClientKilledException();
        }, "kv-connection-kill");
        KvPushOutput? push = null;
        state.SubscriberFactory = s =>
        {
            // First subscription: from now on every write goes through the ordered, bounded outbound queue.
            push = new KvPushOutput(s, ctx.Config, ctx.Stats);
            var output = push;
            Fiber.ForkDaemon(sw, () => WritePushesAsync(ctx, conn, output), "kv-connection-writer");
            Fiber.ForkDaemon(sw, async () =>
            {
                await output.Killed.AwaitAsync();
                throw new OutputBufferLimitExceededException("client-output-buffer-limit (pubsub) exceeded");
            }, "kv-connection-limit");
            return push;
        };
        var parser = ctx.Parser;
        var output = new ArrayBufferWriter<byte>(4096);
        var outWriter = new RespWriter(output);
        var scratch = new ArrayBufferWriter<byte>(256);
        var scratchWriter = new RespWriter(scratch);
        var request = new StoreRequest { Session = state.Session };
        var early = new ArrayBufferWriter<byte>(1); // bytes read while a blocking command waited (pipelined after it)
        byte[] buffer = ArrayPool<byte>.Shared.Rent(InitialReadBuffer);
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                if (end == buffer.Length)
                {
                    if (start > 0)
                    {
                        Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                        end -= start;
                        start = 0;
                    }
                    else
                    {
                        // One incomplete command fills the buffer: grow it. The parser has already checked the sizes the
                        // command announced against the limits, so this growth is bounded by them.
                        var bigger = ArrayPool<byte>.Shared.Rent(checked(buffer.Length * 2));
                        Buffer.BlockCopy(buffer, 0, bigger, 0, end);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                }

                int n;
                if (early.WrittenCount > 0)
                {
                    n = Math.Min(early.WrittenCount, buffer.Length - end);
                    early.WrittenSpan[..n].CopyTo(buffer.AsSpan(end));
                    byte[] rest = early.WrittenSpan[n..].ToArray();
                    early.ResetWrittenCount();
                    early.Write(rest);
                }
                else
                {
                    n = await conn.ReadAsync(buffer.AsMemory(end));
                }

                if (n == 0)
                {
                    return;
                }

                end += n;
                push?.BeginBatch();
                bool close = false;
                long nowUnixMs = ctx.Clock.Now.ToUnixTimeMilliseconds(); // one clock read per batch of commands
                while (start < end)
                {
                    KvCommand? command;
                    int consumed;
                    try
                    {
                        bool complete = parser.TryParseCommand(buffer.AsSpan(start, end - start), out consumed, out command);
                        start += consumed; // the parser may consume (skip) bytes even when no command is complete yet
                        if (!complete || command is null)
                        {
                            break;
                        }
                    }
                    catch (RespProtocolException ex)
                    {
                        // Answer what came before, then the protocol error, then close this connection only.
                        await SubmitAsync(ctx, conn, request, state, output, early);
                        KvConnectionState.WriteProtocolError(outWriter, ex);
                        close = true;
                        start = end;
                        break;
                    }

                    if (command.Info is null && KvDebugCommand.Is(command))
                    {
                        // Server-level: answer what came before first, so that replies stay in order.
                        await SubmitAsync(ctx, conn, request, state, output, early);
                        await KvDebugCommand.RunAsync(ctx, state, peer, command, outWriter);
                        continue;
                    }

                    // Scripting: while a script has been running longer than busy-reply-threshold the store owner reads no
                    // queue; answer here (-BUSY, or SCRIPT KILL / FUNCTION KILL) instead of waiting behind it.
                    if (ctx.ScriptMonitor is { IsBusy: true } monitor && command.Info?.Route == KvRoute.Store)
                    {
                        await SubmitAsync(ctx, conn, request, state, output, early);
                        monitor.AnswerWhileBusy(command, outWriter);
                        continue;
                    }

                    // CLIENT PAUSE: commands it covers wait here (the ones before them are answered first).
                    if (ctx.Clients.IsPaused(command.Info, nowUnixMs))
                    {
                        await SubmitAsync(ctx, conn, request, state, output, early);
                        while (ctx.Clients.IsPaused(command.Info, ctx.Clock.Now.ToUnixTimeMilliseconds()))
                        {
                            await ctx.Clock.SleepAsync(TimeSpan.FromMilliseconds(10));
                        }

                        nowUnixMs = ctx.Clock.Now.ToUnixTimeMilliseconds();
                    }

                    // CLIENT REPLY OFF|SKIP: one command at a time, its reply rendered apart and dropped when it must be.
                    if (state.ReplyControlActive)
                    {
                        await SubmitAsync(ctx, conn, request, state, output, early);
                        scratch.ResetWrittenCount();
                        var one = state.Process(command, scratchWriter, nowUnixMs);
                        bool discard = state.DiscardReply;
                        if (one == KvDispatch.Store)
                        {
                            request.Protocol = state.Protocol;
                            request.Commands.Add(command);
                            await SubmitAsync(ctx, conn, request, state, scratch, early);
                        }

                        if (!discard)
                        {
                            output.Write(scratch.WrittenSpan);
                        }

                        if (one == KvDispatch.Close)
                        {
                            close = true;
                            start = end;
                            break;
                        }

                        continue;
                    }

                    if (request.Commands.Count == 0)
                    {
                        var dispatch = state.Process(command, outWriter, nowUnixMs);
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
                            start = end;
                            break;
                        }

                        continue;
                    }

                    // A batch is pending: replies must stay in order, so render into scratch first.
                    scratch.ResetWrittenCount();
                    var d = state.Process(command, scratchWriter, nowUnixMs);
                    if (d == KvDispatch.Store)
                    {
                        request.Commands.Add(command);
                        continue;
                    }

                    await SubmitAsync(ctx, conn, request, state, output, early);
                    output.Write(scratch.WrittenSpan);
                    if (d == KvDispatch.Close)
                    {
                        close = true;
                        start = end;
                        break;
                    }
                }

                if (start == end)
                {
                    start = end = 0;
                }

                await SubmitAsync(ctx, conn, request, state, output, early);
                if (push is not null)
                {
                    // Subscribed: the writer fiber sends, in order with the pushed messages.
                    ctx.Stats.OnNetworkTraffic(n, 0);
                    push.EndBatch(output.WrittenSpan);
                    output.ResetWrittenCount();
                    if (close)
                    {
                        await WaitDrainedAsync(ctx, push);
                    }
                }
                else if (output.WrittenCount > 0)
                {
                    ctx.Stats.OnNetworkTraffic(n, output.WrittenCount);
                    await conn.WriteAsync(output.WrittenMemory);
                    output.ResetWrittenCount();
                }
                else
                {
                    ctx.Stats.OnNetworkTraffic(n, 0);
                }

                if (close)
                {
                    return;
                }
            }
        }
        finally
        {
            ctx.Clients.Remove(entry);
            ArrayPool<byte>.Shared.Return(buffer);
            state.RemoveSubscriptions();
            if (state.Session.HasWatchedKeys)
            {
                // Forget this connection's watches in the store (fire and forget: nobody waits for the reply).
                var unwatch = new StoreRequest { Session = state.Session };
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

    /// <summary>QUIT from a subscribed connection: let the writer send the +OK before the connection closes.</summary>
    private static async Task WaitDrainedAsync(KvServerContext ctx, KvPushOutput push)
    {
        var deadline = ctx.Clock.Now + ShutdownReplyGrace;
        while (push.PendingBytes > 0 && ctx.Clock.Now < deadline)
        {
            await ctx.Clock.SleepAsync(TimeSpan.FromMilliseconds(1));
        }
    }

    /// <summary>Sends the pending data commands to the store owner and appends their replies to <paramref name="output"/>.</summary>
    private static async ValueTask SubmitAsync(KvServerContext ctx, StreamSocket conn, StoreRequest request, KvConnectionState state,
        ArrayBufferWriter<byte> output, ArrayBufferWriter<byte> early)
    {
        if (request.Commands.Count == 0)
        {
            return;
        }

        request.Reply.ResetWrittenCount();
        var (done, resolver) = Promise.Create<bool>();
        request.Done = resolver;
        await ctx.Queue.AddAsync(request);
        try
        {
            if (!await done.AwaitAsync())
            {
                await WaitWhileBlockedAsync(ctx, conn, request, output, early);
            }
        }
        catch (StoreRestartedException ex)
        {
            state.OnRequestFailed();
            // The store owner crashed with this request in its round (or is gone): one error reply per command.
            request.Reply.ResetWrittenCount();
            var writer = new RespWriter(request.Reply, request.Protocol);
            for (int i = 0; i < request.Commands.Count; i++)
            {
                writer.WriteError(ex.ReplyError);
            }
        }
        catch (CancelledException)
        {
            // Shutting down: the store will still execute and commit this batch; deliver the replies before leaving,
            // but give up after a grace period so that a client that stopped reading cannot hold up the shutdown.
            await Cancel.ProtectAsync(async () =>
            {
                await done.AwaitAsync();
                output.Write(request.Reply.WrittenSpan);
                await ctx.Clock.TryWithTimeoutAsync(ShutdownReplyGrace, async () =>
                {
                    await conn.WriteAsync(output.WrittenMemory);
                    return true;
                });
                output.ResetWrittenCount();
            });
            request.Commands.Clear();
            throw;
        }

        output.Write(request.Reply.WrittenSpan);
        request.Commands.Clear();
    }

    /// <summary>The request is parked on a blocking command (BLPOP...): sends the replies before it, then waits for the
    /// rest while watching the socket, so that a client that goes away is unblocked at once (nothing is served for it).
    /// Bytes the client sends meanwhile are kept in <paramref name="early"/> for after the wait.</summary>
    private static async Task WaitWhileBlockedAsync(KvServerContext ctx, StreamSocket conn, StoreRequest request,
        ArrayBufferWriter<byte> output, ArrayBufferWriter<byte> early)
    {
        output.Write(request.EarlyReply);
        request.EarlyReply = null;
        if (output.WrittenCount > 0)
        {
            await conn.WriteAsync(output.WrittenMemory);
            output.ResetWrittenCount();
        }

        var completion = request.Completion!;
        if (request.Session.Connection?.Entry is { } blockedEntry)
        {
            blockedEntry.Blocked = true; // exempt from timeout; flag b in CLIENT LIST
        }

        bool gone = await Fiber.FirstAsync(
            async () =>
            {
                await completion.AwaitAsync();
                return false;
            },
            async () =>
            {
                byte[] chunk = new byte[4096];
                while (true)
                {
                    int n = await conn.ReadAsync(chunk);
                    if (n == 0)
                    {
                        return true;
                    }

                    early.Write(chunk.AsSpan(0, n));
                    if (early.WrittenCount >= MaxInputWhileBlocked)
                    {
                        // Enough kept: stop reading (TCP flow control holds the rest back) and just wait.
                        await completion.AwaitAsync();
                        return false;
                    }
                }
            });
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
    private sealed class ClientKilledException : Exception;

    /// <summary>The client closed the connection while its blocking command waited.</summary>
    private sealed class ClientGoneException : Exception;
}
