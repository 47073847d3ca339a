using System.Text;
using EioSharp.Redis;
using EioSharp.Supervision;

namespace EioSharp.Actors.Redis;

/// <summary>The address of a named actor: location-transparent (any node, or any Redis client, can send to it) and serialisable as its name.</summary>
/// <param name="Name">The actor's name; its mailbox is the stream <c>mailbox:{Name}</c>.</param>
public readonly record struct ActorRef(string Name)
{
    /// <summary>The mailbox stream's key.</summary>
    public string MailboxKey => "mailbox:" + Name;

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Why a remote actor ended, as delivered to monitors.</summary>
public enum RemoteExitKind
{
    /// <summary>Stopped on purpose (<see cref="ActorSystem.StopAsync"/>) or a temporary actor's handler finished.</summary>
    Normal,

    /// <summary>Its handler threw; <see cref="ActorDown.Text"/> holds the error text.</summary>
    Crashed,

    /// <summary>The node that ran it stopped sending heartbeats (killed, partitioned, or stopped without handing over).</summary>
    NodeDown,
}

/// <summary>A monitor's notification: the actor is down (Erlang's <c>{'DOWN', Ref, process, Pid, Reason}</c>).</summary>
/// <param name="Actor">The actor.</param>
/// <param name="Kind">Why.</param>
/// <param name="Text">The error text (crash) or the dead node's id (node down); empty for normal.</param>
/// <param name="Node">The node that reports it.</param>
public sealed record ActorDown(ActorRef Actor, RemoteExitKind Kind, string Text, string Node);

/// <summary>What happens when a mailbox is full.</summary>
public enum MailboxOverflow
{
    /// <summary><c>XADD ... MAXLEN ~ n</c>: the oldest entries are trimmed, <b>even unacknowledged ones</b> (Redis streams trim
    /// pending entries too): bounded memory, but a backlog over the bound loses its oldest messages.</summary>
    DropOldest,

    /// <summary>The send is refused with <see cref="MailboxFullException"/> when the stream holds the bound or more (checked
    /// and appended atomically by a script): no message is lost, the sender sees the back-pressure.</summary>
    Reject,
}

/// <summary>A send was refused because the mailbox held <see cref="ActorSystemOptions.MailboxCapacity"/> entries (policy <see cref="MailboxOverflow.Reject"/>).</summary>
public sealed class MailboxFullException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="actor">The actor.</param>
    public MailboxFullException(string actor)
        : base($"The mailbox of {actor} is full.") => Actor = actor;

    /// <summary>The actor whose mailbox is full.</summary>
    public string Actor { get; }
}

/// <summary>One message as a handler sees it.</summary>
/// <remarks>Delivery is at least once: the same <see cref="Id"/> can arrive again (after a crash, a restart or a failover), with a
/// higher <see cref="DeliveryCount"/>; handlers that must not repeat an effect use the id to make it idempotent.</remarks>
public sealed class ActorMessage
{
    private readonly IActorSerializer _serializer;

    internal ActorMessage(ActorRef self, StreamEntry entry, long deliveryCount, IActorSerializer serializer)
    {
        Self = self;
        Id = entry.Id;
        DeliveryCount = deliveryCount;
        _serializer = serializer;
        TypeName = entry.Text("t") ?? "";
        Version = int.TryParse(entry.Text("v"), out int v) ? v : 1;
        Payload = entry["p"] ?? [];
        ReplyTo = entry.Text("r");
        CorrelationId = entry.Text("c");
        Sender = entry.Text("from");
    }

    /// <summary>The actor the message was sent to.</summary>
    public ActorRef Self { get; }

    /// <summary>The stream entry id (unique per mailbox, increasing): use it for idempotency.</summary>
    public string Id { get; }

    /// <summary>How many times Redis delivered the message to a consumer (1 the first time): Redis's counter, which also counts a
    /// re-read from the pending history after a local restart of a message the crashed incarnation had not started.</summary>
    public long DeliveryCount { get; }

    /// <summary>The payload's type name as the sender wrote it.</summary>
    public string TypeName { get; }

    /// <summary>The payload's version as the sender wrote it (1 if none).</summary>
    public int Version { get; }

    /// <summary>The payload bytes.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The sending node's id, if the sender was an <see cref="ActorSystem"/>.</summary>
    public string? Sender { get; }

    /// <summary>True for a <see cref="ActorSystem.CallAsync{TRequest, TReply}"/>: the handler's reply is sent back.</summary>
    public bool IsCall => ReplyTo is not null && CorrelationId is not null;

    internal string? ReplyTo { get; }

    internal string? CorrelationId { get; }

    /// <summary>Deserializes the payload.</summary>
    /// <typeparam name="T">The expected type.</typeparam>
    /// <returns>The value.</returns>
    public T Body<T>() => _serializer.Deserialize<T>(Payload.Span);

    /// <summary>Builds the reply to a call.</summary>
    /// <typeparam name="T">The reply type.</typeparam>
    /// <param name="value">The reply.</param>
    /// <returns>A reply for the handler to return.</returns>
    public ActorReply Reply<T>(T value) => new(_serializer.TypeName(typeof(T)), _serializer.Serialize(value));

    /// <inheritdoc/>
    public override string ToString() => $"{Self} {Id} {TypeName} v{Version} (delivery {DeliveryCount}) {Encoding.UTF8.GetString(Payload.Span)}";
}

/// <summary>A handler's reply to a call: a type name and the serialised bytes.</summary>
/// <param name="TypeName">The payload type name.</param>
/// <param name="Payload">The bytes.</param>
public sealed record ActorReply(string TypeName, byte[] Payload);

/// <summary>An actor's message handler; returns a reply for calls (ignored for casts) or null.</summary>
/// <param name="message">The message.</param>
/// <returns>The reply or null.</returns>
public delegate Task<ActorReply?> ActorBehavior(ActorMessage message);

/// <summary>A kind of actor: how each incarnation is created and when it is restarted (an OTP child spec for named actors).</summary>
/// <param name="Kind">The kind's name, stored with each actor so any node can restart it.</param>
/// <param name="Create">Creates an incarnation's behaviour (state lives in its closure) for the actor's name; called at every (re)start.</param>
public sealed record ActorKind(string Kind, Func<ActorRef, ActorBehavior> Create)
{
    /// <summary>When a crashed actor is restarted: <see cref="RestartType.Permanent"/> and <see cref="RestartType.Transient"/>
    /// restart after a crash; <see cref="RestartType.Temporary"/> ends the actor (its mailbox stays).</summary>
    public RestartType Restart { get; init; } = RestartType.Permanent;

    /// <summary>The pause before a restart after a crash (a crash loop does not spin); default 100 ms.</summary>
    public TimeSpan RestartDelay { get; init; } = TimeSpan.FromMilliseconds(100);
}
