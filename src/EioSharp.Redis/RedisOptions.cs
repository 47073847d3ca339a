using System.Net;

namespace EioSharp.Redis;

/// <summary>The RESP protocol version a connection speaks.</summary>
public enum RedisProtocol
{
    /// <summary>RESP2 (no <c>HELLO</c>; <c>AUTH</c> and <c>CLIENT SETNAME</c> sent as commands).</summary>
    Resp2 = 2,

    /// <summary>RESP3 (<c>HELLO 3</c> on connect; push messages out of band).</summary>
    Resp3 = 3,
}

/// <summary>How to reach and set up a Redis server; read once when a connection is made.</summary>
public sealed record RedisOptions
{
    /// <summary>The server's address; default 127.0.0.1:6379. Ignored when <see cref="Sentinel"/> is set.</summary>
    public EndPoint EndPoint { get; init; } = new IPEndPoint(IPAddress.Loopback, 6379);

    /// <summary>Find the master through Redis Sentinel instead of <see cref="EndPoint"/>; null (the default) connects to
    /// <see cref="EndPoint"/>.</summary>
    public RedisSentinelOptions? Sentinel { get; init; }

    /// <summary>The protocol to negotiate; default <see cref="RedisProtocol.Resp3"/>.</summary>
    public RedisProtocol Protocol { get; init; } = RedisProtocol.Resp3;

    /// <summary>The ACL user for <c>AUTH</c>/<c>HELLO ... AUTH</c>; null with a password means <c>default</c>.</summary>
    public string? User { get; init; }

    /// <summary>The password; null sends no <c>AUTH</c>.</summary>
    public string? Password { get; init; }

    /// <summary>The connection name set with <c>CLIENT SETNAME</c> (or <c>HELLO ... SETNAME</c>); null sets none.</summary>
    public string? ClientName { get; init; }

    /// <summary>The database selected with <c>SELECT</c> on connect; 0 sends no <c>SELECT</c>.</summary>
    public int Database { get; init; }

    /// <summary>The time limit for establishing the TCP connection; default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The time limit for a non-blocking command's reply, measured on the client's clock; <see cref="Timeout.InfiniteTimeSpan"/>
    /// (the default) for none. Blocking commands (<c>BLPOP</c>, <c>XREADGROUP ... BLOCK</c>, ...) are not limited by it: give them
    /// their own timeout argument or cancel their fiber.</summary>
    public TimeSpan CommandTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>How many times a client tries to (re)connect before failing a command; default 10.</summary>
    public int ReconnectAttempts { get; init; } = 10;

    /// <summary>The pause after the first failed connection attempt; doubled after each further failure up to <see cref="MaxReconnectDelay"/>; default 50 ms.</summary>
    public TimeSpan ReconnectDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The longest pause between connection attempts; default 2 s.</summary>
    public TimeSpan MaxReconnectDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The most connections the pool holds for exclusive use (blocking commands, transactions); default 16.</summary>
    public int PoolSize { get; init; } = 16;

    /// <summary>The largest reply the reader buffers, in bytes; default 512 MiB + 1 KiB.</summary>
    public int MaxReplySize { get; init; } = RespCodec.MaxBulkLength + 1024;

    /// <summary>How many unread push messages a subscription buffers before the reader waits (TCP back-pressure); default 1024.</summary>
    public int SubscriptionCapacity { get; init; } = 1024;
}

/// <summary>How a <see cref="RedisClient"/> finds its master through Redis Sentinel.</summary>
/// <param name="MasterName">The monitored master's name (<c>sentinel monitor NAME ...</c>).</param>
/// <param name="Sentinels">The sentinels, asked in order until one answers.</param>
/// <remarks>Before every connection (the first and each reconnection) the client asks a sentinel
/// <c>SENTINEL get-master-addr-by-name</c> (RESP2, no authentication), connects there, and checks with <c>ROLE</c> that the server
/// is a master; a server still a replica, or no sentinel answering, counts as a failed attempt (retried with the backoff of
/// <see cref="RedisOptions.ReconnectDelay"/>). After a failover Sentinel closes the clients of the demoted master
/// (<c>CLIENT KILL TYPE normal</c>), so the next command reconnects to the new one; a command already written to the old
/// master when it was demoted fails (<see cref="RedisConnectionException"/>, or <c>READONLY</c>, which also drops the
/// connection). Not supported by <see cref="RedisClusterClient"/> (a cluster fails over by itself).</remarks>
public sealed record RedisSentinelOptions(string MasterName, IReadOnlyList<EndPoint> Sentinels);
