using System.Net;
using EioSharp.IO;
using EioSharp.Net;
using EioSharp.Time;

namespace EioSharp.Redis;

/// <summary>Something that runs Redis commands: a single connection, a pooled client, or a cluster client.</summary>
public interface IRedisCommands
{
    /// <summary>Sends one command and waits for its reply.</summary>
    /// <param name="args">The command name and its arguments: strings (UTF-8), byte arrays, integers, doubles, <see cref="TimeSpan"/> (milliseconds).</param>
    /// <returns>The reply; error replies are thrown, but errors nested in arrays (<c>EXEC</c>) stay replies.</returns>
    /// <exception cref="RedisErrorException">The server answered with an error.</exception>
    /// <exception cref="RedisConnectionException">The connection failed or closed before the reply arrived.</exception>
    /// <exception cref="TimeoutException">The command timeout passed (the reply is then discarded).</exception>
    /// <exception cref="CancelledException">The calling fiber was cancelled (see the implementation for what happens to the connection).</exception>
    Task<RedisReply> ExecuteAsync(params object[] args);
}

/// <summary>One connection to a Redis server, owned by a switch, on which fibers pipeline commands.</summary>
/// <remarks>
/// <para><b>Pipelining</b>: <see cref="ExecuteAsync(object[])"/> writes the command into a <see cref="BufferedWriter"/> and waits
/// for its reply; replies are matched to commands in order by one reader fiber. Commands written by fibers before the writer's
/// flusher runs go out in one socket write (one flush per batch, S26), so many fibers (or <see cref="PipelineAsync"/>) share
/// round trips.</para>
/// <para><b>Cancellation</b>: a fiber cancelled while waiting for a reply gets <see cref="CancelledException"/>. For an ordinary
/// command the reply is read and discarded when it comes, so later commands still get their own replies. For a blocking command
/// (<c>BLPOP</c>, <c>BRPOP</c>, <c>BLMOVE</c>, <c>BLMPOP</c>, <c>BZPOPMIN</c>/<c>MAX</c>, <c>BZMPOP</c>, <c>BRPOPLPUSH</c>,
/// <c>XREAD</c>/<c>XREADGROUP</c> with <c>BLOCK</c>, <c>WAIT</c>, <c>WAITAOF</c>) the connection is closed at once: its reply may
/// never come, and a reply that comes later (an element popped after all) is never read by anyone. Commands pipelined behind it
/// fail with <see cref="RedisConnectionException"/>; use a <see cref="RedisClient"/>, which runs blocking commands on a connection
/// of their own.</para>
/// <para><b>Push messages</b> (RESP3 <c>&gt;</c>, and every reply of a RESP2 connection in subscribed mode) go to the handler given
/// at connect time, never to a command.</para>
/// <para><b>Lifetime</b>: the connection's reader runs as a daemon fiber of the switch given to <see cref="ConnectAsync"/>;
/// the socket is closed when that switch finishes, when <see cref="Close()"/> is called, or when the server closes it.</para>
/// <para><b>Thread safety</b>: use it from fibers of the domain that created it.</para>
/// </remarks>
public sealed class RedisConnection : IRedisCommands
{
    private static readonly HashSet<string> AlwaysBlocking = new(StringComparer.OrdinalIgnoreCase)
    {
        "BLPOP", "BRPOP", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "BRPOPLPUSH", "WAIT", "WAITAOF",
    };

    private readonly Queue<Pending> _pending = new();
    private readonly RedisOptions _options;
    private readonly MonoClock? _clock;
    private readonly Func<RedisReply, ValueTask>? _onPush;
    private Switch? _switch;
    private BufferedWriter? _writer;
    private BufferedReader? _reader;
    private RedisConnectionException? _closed;
    private bool _resp2Subscribed;
    private bool _handshaking;

    private RedisConnection(RedisOptions options, MonoClock? clock, Func<RedisReply, ValueTask>? onPush)
    {
        _options = options;
        _clock = clock;
        _onPush = onPush;
    }

    /// <summary>The options the connection was made with.</summary>
    public RedisOptions Options => _options;

    /// <summary>The protocol negotiated on connect.</summary>
    public RedisProtocol Protocol { get; private set; } = RedisProtocol.Resp2;

    /// <summary>True until the connection is closed or fails.</summary>
    public bool IsAlive => _closed is null;

    /// <summary>Commands written whose replies have not arrived yet (abandoned ones included).</summary>
    public int PendingCount => _pending.Count;

    /// <summary>The server's address.</summary>
    public EndPoint? RemoteEndPoint { get; private set; }

    /// <summary>Connects, negotiates the protocol and runs <c>AUTH</c>/<c>HELLO</c>/<c>CLIENT SETNAME</c>/<c>SELECT</c> as the options say.</summary>
    /// <param name="sw">Owns the connection (its reader is a daemon fiber of this switch).</param>
    /// <param name="net">The network capability (<c>env.Net</c>).</param>
    /// <param name="options">Where and how to connect.</param>
    /// <param name="clock">The clock for <see cref="RedisOptions.CommandTimeout"/>; null when no timeout is used.</param>
    /// <param name="onPush">Receives push messages on the reader fiber, which reads nothing more until it returns
    /// (back-pressure); null drops them.</param>
    /// <param name="endPoint">Overrides <see cref="RedisOptions.EndPoint"/> (cluster nodes).</param>
    /// <returns>The ready connection.</returns>
    /// <exception cref="RedisErrorException">The server refused the handshake (wrong password, unknown database, no RESP3).</exception>
    /// <exception cref="IOException">The TCP connection failed.</exception>
    /// <exception cref="TimeoutException">The connection was not established within <see cref="RedisOptions.ConnectTimeout"/>.</exception>
    /// <exception cref="CancelledException">The caller was cancelled.</exception>
    public static async Task<RedisConnection> ConnectAsync(Switch sw, NetworkCapability net, RedisOptions options, MonoClock? clock = null,
        Func<RedisReply, ValueTask>? onPush = null, EndPoint? endPoint = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(options);
        var conn = new RedisConnection(options, clock, onPush);
        var (ready, readyResolver) = Promise.Create<bool>();
        var target = endPoint ?? options.EndPoint;
        Fiber.ForkDaemon(sw, async () =>
        {
            try
            {
                await Switch.RunAsync(async csw =>
                {
                    var socket = await net.ConnectAsync(csw, target, options.ConnectTimeout);
                    socket.NoDelay = true;
                    conn._switch = csw;
                    conn.RemoteEndPoint = target;
                    conn._writer = new BufferedWriter(socket, csw, 1024 * 1024);
                    conn._reader = new BufferedReader(socket, options.MaxReplySize, 16 * 1024);
                    readyResolver.Resolve(true);
                    await conn.ReadLoopAsync();
                }, "redis connection " + target);
                conn.MarkClosed(new RedisConnectionException($"The connection to {target} was closed."));
            }
            catch (Exception e)
            {
                // The connection's end is reported to its pending commands, not to the owning switch.
                var error = e switch
                {
                    RedisConnectionException r => r,
                    CancelledException when conn._closed is not null => conn._closed,
                    CancelledException c => new RedisConnectionException($"The connection to {target} was cancelled.", c),
                    _ => new RedisConnectionException($"The connection to {target} failed: {e.Message}", e),
                };
                conn.MarkClosed(error);
                readyResolver.TryResolveError(e is CancelledException ? error : e);
            }
        }, "redis connection " + target);
        await ready.AwaitAsync();
        try
        {
            // The handshake is bounded by the connect timeout, not by the command timeout (which may be far shorter).
            conn._handshaking = true;
            if (clock is null)
            {
                await conn.HandshakeAsync();
            }
            else
            {
                await clock.WithTimeoutAsync(options.ConnectTimeout, conn.HandshakeAsync);
            }

            conn._handshaking = false;
        }
        catch
        {
            conn.Close();
            throw;
        }

        return conn;
    }

    private async Task HandshakeAsync()
    {
        if (_options.Protocol == RedisProtocol.Resp3)
        {
            var hello = new List<object> { "HELLO", "3" };
            if (_options.Password is not null)
            {
                hello.AddRange(["AUTH", _options.User ?? "default", _options.Password]);
            }

            if (_options.ClientName is not null)
            {
                hello.AddRange(["SETNAME", _options.ClientName]);
            }

            await ExecuteAsync([.. hello]);
            Protocol = RedisProtocol.Resp3;
        }
        else
        {
            if (_options.Password is not null)
            {
                await (_options.User is null ? ExecuteAsync("AUTH", _options.Password) : ExecuteAsync("AUTH", _options.User, _options.Password));
            }

            if (_options.ClientName is not null)
            {
                await ExecuteAsync("CLIENT", "SETNAME", _options.ClientName);
            }
        }

        if (_options.Database != 0)
        {
            await ExecuteAsync("SELECT", _options.Database);
        }
    }

    /// <summary>Closes the connection: pending commands fail with <see cref="RedisConnectionException"/>; later commands throw it.</summary>
    /// <remarks>Idempotent (S29). The reader fiber is cancelled and the socket closed as the connection's own switch finishes.</remarks>
    public void Close() => Close(new RedisConnectionException("The connection was closed by the client."));

    private void Close(RedisConnectionException reason)
    {
        MarkClosed(reason);
        if (_switch is { IsFinished: false } sw)
        {
            _writer?.Abort();
            sw.CancelContext.Cancel(reason);
        }
    }

    private void MarkClosed(RedisConnectionException reason)
    {
        _closed ??= reason;
        while (_pending.TryDequeue(out var p))
        {
            p.Resolver.TryResolveError(_closed);
        }
    }

    /// <summary>Sends one command and waits for its reply.</summary>
    /// <param name="args">The command name and arguments (see <see cref="IRedisCommands.ExecuteAsync(object[])"/>).</param>
    /// <returns>The reply (error replies are thrown).</returns>
    /// <exception cref="RedisErrorException">The server answered with an error.</exception>
    /// <exception cref="RedisConnectionException">The connection is closed or failed before the reply.</exception>
    /// <exception cref="TimeoutException"><see cref="RedisOptions.CommandTimeout"/> passed (non-blocking commands only).</exception>
    /// <exception cref="CancelledException">The fiber was cancelled; see the class remarks for what happens to the connection.</exception>
    /// <exception cref="InvalidOperationException">A RESP2 connection in subscribed mode was given a command other than (P|S)(UN)SUBSCRIBE.</exception>
    public async Task<RedisReply> ExecuteAsync(params object[] args)
    {
        var reply = await SendAsync(args);
        return reply.ThrowIfError();
    }

    /// <summary>Sends several commands in one write and waits for all replies; error replies are returned, not thrown.</summary>
    /// <param name="commands">The commands, each a name with arguments.</param>
    /// <returns>The replies in command order.</returns>
    /// <exception cref="RedisConnectionException">The connection failed before every reply arrived.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled (pending replies are discarded when they arrive).</exception>
    public async Task<RedisReply[]> PipelineAsync(IReadOnlyList<object[]> commands)
    {
        ArgumentNullException.ThrowIfNull(commands);
        var promises = new Promise<RedisReply>[commands.Count];
        var entries = new Pending[commands.Count];
        for (int i = 0; i < commands.Count; i++)
        {
            (promises[i], entries[i]) = Write(commands[i]);
        }

        var replies = new RedisReply[commands.Count];
        try
        {
            for (int i = 0; i < commands.Count; i++)
            {
                replies[i] = await promises[i].AwaitAsync();
            }
        }
        catch (CancelledException)
        {
            foreach (var e in entries)
            {
                Abandon(e);
            }

            throw;
        }

        return replies;
    }

    /// <summary>Sends a command without interpreting error replies.</summary>
    /// <param name="args">The command.</param>
    /// <returns>The reply, errors included.</returns>
    /// <exception cref="RedisConnectionException">The connection failed before the reply.</exception>
    /// <exception cref="TimeoutException">The command timeout passed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    public async Task<RedisReply> SendAsync(params object[] args)
    {
        var (promise, entry) = Write(args);
        try
        {
            if (entry.Blocking || _handshaking || _clock is null || _options.CommandTimeout == Timeout.InfiniteTimeSpan)
            {
                return await promise.AwaitAsync();
            }

            return await _clock.WithTimeoutAsync(_options.CommandTimeout, async () => await promise.AwaitAsync());
        }
        catch (Exception e) when (e is CancelledException or TimeoutException)
        {
            Abandon(entry);
            throw;
        }
    }

    /// <summary>Writes a command whose replies arrive as push messages (<c>SUBSCRIBE</c> and its kin): no reply is awaited.</summary>
    /// <param name="args">The command.</param>
    /// <exception cref="RedisConnectionException">The connection is closed.</exception>
    internal void WriteNoReply(object[] args)
    {
        ThrowIfClosed();
        if (Protocol == RedisProtocol.Resp2)
        {
            _resp2Subscribed = true;
        }

        RespCodec.WriteCommand(_writer!, Array.ConvertAll(args, RespCodec.ToBytes));
    }

    private void Abandon(Pending entry)
    {
        if (entry.Resolver.Promise.IsResolved)
        {
            return;
        }

        entry.Abandoned = true;
        if (entry.Blocking)
        {
            Close(new RedisConnectionException($"The connection was abandoned: a blocking {entry.Name} was cancelled while waiting for its reply."));
        }
    }

    private void ThrowIfClosed()
    {
        if (_closed is not null)
        {
            throw new RedisConnectionException(_closed.Message, _closed);
        }
    }

    private (Promise<RedisReply>, Pending) Write(object[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0)
        {
            throw new ArgumentException("A command needs at least its name.", nameof(args));
        }

        ThrowIfClosed();
        var bytes = Array.ConvertAll(args, RespCodec.ToBytes);
        string name = System.Text.Encoding.UTF8.GetString(bytes[0]);
        if (_resp2Subscribed)
        {
            throw new InvalidOperationException($"{name} cannot run on a RESP2 connection in subscribed mode (use RESP3, or another connection).");
        }

        var (promise, resolver) = Promise.Create<RedisReply>();
        var entry = new Pending(resolver, name, IsBlocking(name, bytes));
        RespCodec.WriteCommand(_writer!, bytes);
        _pending.Enqueue(entry);
        return (promise, entry);
    }

    /// <summary>Whether a command of this name can be blocking (a cheap check before <see cref="IsBlocking"/>).</summary>
    /// <param name="name">The command name.</param>
    /// <returns>True for the blocking commands and XREAD/XREADGROUP.</returns>
    internal static bool MayBlock(string name) => AlwaysBlocking.Contains(name)
        || name.Equals("XREAD", StringComparison.OrdinalIgnoreCase) || name.Equals("XREADGROUP", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether a command may wait on the server indefinitely (its cancellation then abandons the connection).</summary>
    /// <param name="name">The command name.</param>
    /// <param name="args">All arguments, name first.</param>
    /// <returns>True for the blocking commands listed in the class remarks.</returns>
    internal static bool IsBlocking(string name, IReadOnlyList<byte[]> args)
    {
        if (AlwaysBlocking.Contains(name))
        {
            return true;
        }

        if (name.Equals("XREAD", StringComparison.OrdinalIgnoreCase) || name.Equals("XREADGROUP", StringComparison.OrdinalIgnoreCase))
        {
            for (int i = 1; i < args.Count; i++)
            {
                if (args[i].Length == 5 && System.Text.Encoding.ASCII.GetString(args[i]).Equals("BLOCK", StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }

                if (args[i].Length == 7 && System.Text.Encoding.ASCII.GetString(args[i]).Equals("STREAMS", StringComparison.OrdinalIgnoreCase))
                {
                    return false;
                }
            }
        }

        return false;
    }

    private async Task ReadLoopAsync()
    {
        var reader = _reader!;
        while (true)
        {
            while (RespCodec.TryParse(reader.Buffered, out var reply, out int consumed))
            {
                reader.Consume(consumed);
                if (reply.Kind == RedisReplyKind.Push || _resp2Subscribed)
                {
                    if (_onPush is not null)
                    {
                        await _onPush(reply);
                    }

                    continue;
                }

                Dispatch(reply);
            }

            if (!await reader.FillAsync())
            {
                throw new RedisConnectionException($"The server at {RemoteEndPoint} closed the connection.");
            }
        }
    }

    private void Dispatch(RedisReply reply)
    {
        if (!_pending.TryDequeue(out var entry))
        {
            throw new RedisConnectionException($"The server sent a reply no command waits for: {reply}.");
        }

        if (!entry.Abandoned)
        {
            entry.Resolver.TryResolve(reply);
        }
    }

    private sealed class Pending(Resolver<RedisReply> resolver, string name, bool blocking)
    {
        public Resolver<RedisReply> Resolver { get; } = resolver;

        public string Name { get; } = name;

        public bool Blocking { get; } = blocking;

        public bool Abandoned { get; set; }
    }
}
