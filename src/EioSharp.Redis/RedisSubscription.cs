using System.Runtime.CompilerServices;
using EioSharp.Sync;

namespace EioSharp.Redis;

/// <summary>A message delivered to a subscription.</summary>
/// <param name="Kind"><c>message</c>, <c>pmessage</c> or <c>smessage</c>.</param>
/// <param name="Channel">The channel it was published to.</param>
/// <param name="Pattern">The matching pattern for <c>pmessage</c>; null otherwise.</param>
/// <param name="Payload">The published bytes.</param>
public sealed record RedisPubSubMessage(string Kind, string Channel, string? Pattern, byte[] Payload)
{
    /// <summary>The payload as UTF-8 text.</summary>
    public string PayloadText => System.Text.Encoding.UTF8.GetString(Payload);
}

/// <summary>A pub/sub subscription on a connection of its own; messages arrive in an <see cref="AsyncQueue{T}"/>.</summary>
/// <remarks>
/// <para>On RESP3 the connection also runs ordinary commands (<see cref="Connection"/>); on RESP2 it is in subscribed mode and
/// takes only (un)subscribe commands.</para>
/// <para><b>Back-pressure</b>: when <see cref="RedisOptions.SubscriptionCapacity"/> messages are unread, the connection stops
/// reading (the server buffers, up to its client-output-buffer-limit for pub/sub, then disconnects the client). So a fiber
/// that waits in <see cref="SubscribeAsync"/> must not be the only reader of <see cref="Messages"/> while it is full.</para>
/// <para><b>Lifetime</b>: closed with the switch given to <see cref="RedisClient.SubscribeAsync"/> or by <see cref="Close"/>;
/// <see cref="Messages"/> is then closed, so readers see the end.</para>
/// </remarks>
public sealed class RedisSubscription
{
    private readonly AsyncQueue<RedisPubSubMessage> _messages;
    private readonly Queue<Resolver<long>> _confirmations = new();
    private RedisConnection? _connection;

    internal RedisSubscription(int capacity) => _messages = new AsyncQueue<RedisPubSubMessage>(capacity);

    /// <summary>The received messages, oldest first.</summary>
    public AsyncQueue<RedisPubSubMessage> Messages => _messages;

    /// <summary>The subscription's connection.</summary>
    public RedisConnection Connection => _connection ?? throw new InvalidOperationException("Not connected.");

    /// <summary>Push messages other than pub/sub ones (for example client tracking invalidations), counted.</summary>
    public int OtherPushes { get; private set; }

    internal void Attach(RedisConnection connection) => _connection = connection;

    /// <summary>Subscribes to channels and waits for the server's confirmations.</summary>
    /// <param name="channels">Channel names.</param>
    /// <returns>The number of subscriptions after the last confirmation.</returns>
    /// <exception cref="RedisConnectionException">The connection failed.</exception>
    public Task<long> SubscribeAsync(params string[] channels) => SendAsync("SUBSCRIBE", channels);

    /// <summary>Subscribes to glob patterns (<c>PSUBSCRIBE</c>) and waits for the confirmations.</summary>
    /// <param name="patterns">The patterns.</param>
    /// <returns>The number of subscriptions after the last confirmation.</returns>
    /// <exception cref="RedisConnectionException">The connection failed.</exception>
    public Task<long> PatternSubscribeAsync(params string[] patterns) => SendAsync("PSUBSCRIBE", patterns);

    /// <summary>Unsubscribes from channels (all with none given); does not wait for confirmations.</summary>
    /// <param name="channels">The channels.</param>
    public void Unsubscribe(params string[] channels) => Connection.WriteNoReply(["UNSUBSCRIBE", .. channels]);

    /// <summary>Reads messages until the subscription is closed.</summary>
    /// <param name="cancellationToken">Ignored: cancel the reading fiber instead.</param>
    /// <returns>The messages as they arrive.</returns>
    /// <exception cref="CancelledException">The reading fiber was cancelled.</exception>
    public async IAsyncEnumerable<RedisPubSubMessage> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            RedisPubSubMessage m;
            try
            {
                m = await _messages.TakeAsync();
            }
            catch (StreamClosedException)
            {
                yield break;
            }

            yield return m;
        }
    }

    /// <summary>Closes the connection and the message queue.</summary>
    public void Close()
    {
        _connection?.Close();
        if (!_messages.IsClosed)
        {
            _messages.Close();
        }

        while (_confirmations.TryDequeue(out var r))
        {
            r.TryResolveError(new RedisConnectionException("The subscription was closed."));
        }
    }

    private async Task<long> SendAsync(string command, string[] names)
    {
        ArgumentOutOfRangeException.ThrowIfZero(names.Length);
        var promises = new List<Promise<long>>();
        foreach (string _ in names)
        {
            var (p, r) = Promise.Create<long>();
            _confirmations.Enqueue(r);
            promises.Add(p);
        }

        Connection.WriteNoReply([command, .. names]);
        long count = 0;
        foreach (var p in promises)
        {
            count = await p.AwaitAsync();
        }

        return count;
    }

    internal async ValueTask OnPush(RedisReply push)
    {
        if (push.Elements.Count < 3)
        {
            OtherPushes++;
            return;
        }

        string kind = push[0].Text ?? "";
        switch (kind.ToLowerInvariant())
        {
            case "message" or "smessage":
                await DeliverAsync(new RedisPubSubMessage(kind, push[1].Text ?? "", null, push[2].Bytes ?? []));
                break;
            case "pmessage" when push.Elements.Count >= 4:
                await DeliverAsync(new RedisPubSubMessage(kind, push[2].Text ?? "", push[1].Text, push[3].Bytes ?? []));
                break;
            case "subscribe" or "psubscribe" or "ssubscribe":
                if (_confirmations.TryDequeue(out var r))
                {
                    r.TryResolve(push[2].Integer);
                }

                break;
            case "unsubscribe" or "punsubscribe" or "sunsubscribe":
                break;
            default:
                OtherPushes++;
                break;
        }
    }

    private async ValueTask DeliverAsync(RedisPubSubMessage message)
    {
        try
        {
            await _messages.AddAsync(message);
        }
        catch (StreamClosedException)
        {
            // Closed by the user: the message has no reader.
        }
    }
}
