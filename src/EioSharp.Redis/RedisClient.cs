using System.Net;
using EioSharp.Net;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Redis;

/// <summary>A Redis client for fibers: one shared pipelined connection for ordinary commands, a pool of exclusive
/// connections for blocking commands and transactions, reconnection with exponential backoff.</summary>
/// <remarks>
/// <para><b>Routing</b>: <see cref="ExecuteAsync(object[])"/> sends ordinary commands on the shared connection, where the
/// commands of all fibers are pipelined; blocking commands (see <see cref="RedisConnection"/>) go to a pooled connection of their
/// own, so their cancellation closes only that connection and the next command on the pool gets its own reply.</para>
/// <para><b>Reconnect</b>: when the shared connection is found closed, the next command reconnects, retrying up to
/// <see cref="RedisOptions.ReconnectAttempts"/> times with a pause starting at <see cref="RedisOptions.ReconnectDelay"/> and
/// doubling up to <see cref="RedisOptions.MaxReconnectDelay"/>, measured on the client's clock. A command that was already
/// written when its connection failed is not retried (the server may have run it): it fails with
/// <see cref="RedisConnectionException"/>.</para>
/// <para><b>Lifetime</b>: every connection belongs to the switch given to <see cref="Create(Switch, Stdenv, RedisOptions)"/>.</para>
/// <para><b>Thread safety</b>: use it from fibers of the domain that created it.</para>
/// </remarks>
public sealed class RedisClient : IRedisCommands
{
    private readonly Switch _switch;
    private readonly NetworkCapability _net;
    private readonly MonoClock _clock;
    private readonly ResourcePool<RedisConnection> _pool;
    private RedisConnection? _shared;
    private Promise<RedisConnection>? _connecting;

    private RedisClient(Switch sw, NetworkCapability net, MonoClock clock, RedisOptions options)
    {
        _switch = sw;
        _net = net;
        _clock = clock;
        Options = options;
        _pool = new ResourcePool<RedisConnection>(options.PoolSize, () => ConnectWithBackoffAsync(null),
            c => Task.FromResult(c.IsAlive), c =>
            {
                c.Close();
                return Task.CompletedTask;
            });
    }

    /// <summary>The options every connection is made with.</summary>
    public RedisOptions Options { get; }

    /// <summary>How many connections the client has opened so far (the shared one, pooled ones, subscriptions, reconnects).</summary>
    public int ConnectionsOpened { get; private set; }

    /// <summary>Creates a client; no connection is made until the first command.</summary>
    /// <param name="sw">Owns every connection of the client.</param>
    /// <param name="net">The network capability (<c>env.Net</c>).</param>
    /// <param name="clock">The clock for timeouts and backoff (<c>env.MonoClock</c>).</param>
    /// <param name="options">Where and how to connect.</param>
    /// <returns>The client.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static RedisClient Create(Switch sw, NetworkCapability net, MonoClock clock, RedisOptions options)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(options);
        return new RedisClient(sw, net, clock, options);
    }

    /// <summary>Creates a client from the standard environment.</summary>
    /// <param name="sw">Owns every connection.</param>
    /// <param name="env">Provides <c>Net</c> and <c>MonoClock</c>.</param>
    /// <param name="options">Where and how to connect.</param>
    /// <returns>The client.</returns>
    public static RedisClient Create(Switch sw, Stdenv env, RedisOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        return Create(sw, env.Net, env.MonoClock, options);
    }

    /// <summary>Runs a command: ordinary commands on the shared pipelined connection, blocking ones on a pooled connection.</summary>
    /// <param name="args">The command name and arguments.</param>
    /// <returns>The reply (error replies are thrown).</returns>
    /// <exception cref="RedisErrorException">The server answered with an error.</exception>
    /// <exception cref="RedisConnectionException">No connection could be made, or it failed before the reply.</exception>
    /// <exception cref="TimeoutException"><see cref="RedisOptions.CommandTimeout"/> passed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled; a blocking command's connection is then closed and dropped from the pool.</exception>
    public async Task<RedisReply> ExecuteAsync(params object[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string name = args.Length == 0 ? "" : args[0] as string ?? System.Text.Encoding.UTF8.GetString(RespCodec.ToBytes(args[0]));
        if (RedisConnection.MayBlock(name) && RedisConnection.IsBlocking(name, Array.ConvertAll(args, RespCodec.ToBytes)))
        {
            return await UseConnectionAsync(c => c.ExecuteAsync(args));
        }

        var conn = await GetSharedAsync();
        try
        {
            return await conn.ExecuteAsync(args);
        }
        catch (RedisErrorException e) when (e.Prefix == "READONLY" && Options.Sentinel is not null)
        {
            conn.Close(); // a demoted master: the next command reconnects through the sentinels
            throw;
        }
    }

    /// <summary>Sends several commands on the shared connection in one write; error replies are returned, not thrown.</summary>
    /// <param name="commands">The commands.</param>
    /// <returns>The replies in order.</returns>
    /// <exception cref="RedisConnectionException">The connection failed before every reply arrived.</exception>
    public async Task<RedisReply[]> PipelineAsync(IReadOnlyList<object[]> commands) => await (await GetSharedAsync()).PipelineAsync(commands);

    /// <summary>Lends an exclusive pooled connection to <paramref name="body"/> (transactions, blocking commands, <c>WATCH</c>).</summary>
    /// <typeparam name="T">The body's result.</typeparam>
    /// <param name="body">Uses the connection; must not keep it.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled; the connection is closed and not reused.</exception>
    /// <remarks>If the body throws (cancellation included) the connection is closed instead of returned to the pool, so no
    /// reply or transaction state is left on it for the next user. Eio: <c>Pool.use</c>.</remarks>
    public Task<T> UseConnectionAsync<T>(Func<RedisConnection, Task<T>> body) => _pool.UseAsync(body);

    /// <summary>Opens a pub/sub subscription on a connection of its own, owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">Owns the subscription's connection.</param>
    /// <returns>The subscription, subscribed to nothing yet.</returns>
    /// <exception cref="RedisConnectionException">No connection could be made.</exception>
    public async Task<RedisSubscription> SubscribeAsync(Switch sw)
    {
        var sub = new RedisSubscription(Options.SubscriptionCapacity);
        sub.Attach(await ConnectWithBackoffAsync(sub.OnPush, sw));
        sw.OnRelease(sub.Close);
        return sub;
    }

    /// <summary>Opens a connection that is not pooled or shared, owned by <paramref name="sw"/>, retrying with backoff.</summary>
    /// <param name="sw">Owns the connection.</param>
    /// <param name="onPush">Receives push messages; the connection reads nothing more until it returns.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="RedisConnectionException">Every attempt failed.</exception>
    public Task<RedisConnection> ConnectAsync(Switch sw, Func<RedisReply, ValueTask>? onPush = null) => ConnectWithBackoffAsync(onPush, sw);

    private async Task<RedisConnection> GetSharedAsync()
    {
        while (true)
        {
            if (_shared is { IsAlive: true } live)
            {
                return live;
            }

            if (_connecting is { } inProgress)
            {
                await inProgress.AwaitAsync();
                continue;
            }

            var (promise, resolver) = Promise.Create<RedisConnection>();
            _connecting = promise;
            try
            {
                _shared = await ConnectWithBackoffAsync(null);
                resolver.Resolve(_shared);
                return _shared;
            }
            catch (Exception e)
            {
                resolver.TryResolveError(e);
                throw;
            }
            finally
            {
                _connecting = null;
            }
        }
    }

    /// <summary>Asks the sentinels, in order, for the master's address.</summary>
    /// <exception cref="IOException">No sentinel answered with an address.</exception>
    private async Task<EndPoint> ResolveMasterAsync(RedisSentinelOptions sentinel)
    {
        Exception? last = null;
        foreach (var s in sentinel.Sentinels)
        {
            try
            {
                var reply = await Switch.RunAsync(async ssw =>
                {
                    var conn = await RedisConnection.ConnectAsync(ssw, _net,
                        new RedisOptions { EndPoint = s, Protocol = RedisProtocol.Resp2, ConnectTimeout = Options.ConnectTimeout }, _clock);
                    try
                    {
                        return await conn.ExecuteAsync("SENTINEL", "get-master-addr-by-name", sentinel.MasterName);
                    }
                    finally
                    {
                        conn.Close();
                    }
                }, "redis sentinel " + s);
                if (reply.Elements.Count == 2)
                {
                    return new IPEndPoint(IPAddress.Parse(reply[0].Text!), int.Parse(reply[1].Text!, System.Globalization.CultureInfo.InvariantCulture));
                }

                last = new IOException($"Sentinel {s} does not know the master {sentinel.MasterName}.");
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or RedisConnectionException or RedisErrorException)
            {
                last = e;
            }
        }

        throw new IOException($"No sentinel gave the address of {sentinel.MasterName}.", last);
    }

    private async Task<RedisConnection> ConnectWithBackoffAsync(Func<RedisReply, ValueTask>? onPush, Switch? sw = null)
    {
        var delay = Options.ReconnectDelay;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                EndPoint? target = Options.Sentinel is { } sentinel ? await ResolveMasterAsync(sentinel) : null;
                var c = await RedisConnection.ConnectAsync(sw ?? _switch, _net, Options, _clock, onPush, target);
                if (Options.Sentinel is not null)
                {
                    var role = await c.ExecuteAsync("ROLE");
                    if (role.Elements.Count == 0 || role[0].Text != "master")
                    {
                        c.Close();
                        throw new IOException($"{target} is not a master (yet).");
                    }
                }

                ConnectionsOpened++;
                return c;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException && attempt < Options.ReconnectAttempts)
            {
                await _clock.SleepAsync(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Options.MaxReconnectDelay.Ticks));
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException)
            {
                throw new RedisConnectionException($"Could not connect to {Options.EndPoint} after {attempt} attempts: {e.Message}", e);
            }
        }
    }
}
