using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Supervision;

/// <summary>A fiber that owns a state and handles messages from a bounded mailbox one at a time: the .NET form of a <c>gen_server</c>.</summary>
/// <typeparam name="TState">The state, owned by the actor's fiber: only the handler sees it, so it needs no locks.</typeparam>
/// <typeparam name="TMsg">The message type. A message that wants an answer carries a <see cref="Reply{T}"/> (see <see cref="CallAsync{TReply}(Func{Reply{TReply}, TMsg}, TimeSpan)"/>).</typeparam>
/// <remarks>
/// Erlang: <c>gen_server</c> (<c>init/1</c>, <c>handle_call/3</c>, <c>handle_cast/2</c>).
/// <para><b>Lifetime</b>: the <see cref="Actor{TState, TMsg}"/> object is a handle: its mailbox outlives the runs of the actor. Each run
/// (<see cref="RunAsync(ChildContext?)"/>, typically as a supervised child made by <see cref="ToChildSpec(RestartType, TimeSpan?)"/>) calls
/// the init function for a fresh state, signals ready, then handles messages until cancelled. So a restart gives fresh state, and messages
/// sent while the actor is down wait in the mailbox for the next run (unlike Erlang, where the mailbox dies with the process).
/// Do not run two runs of one actor at once: they would share the mailbox.</para>
/// <para><b>Errors</b>: an exception from the handler ends the run (a supervisor then restarts it); the call being handled, if any, gets
/// <see cref="ActorFailedException"/>. The message that crashed the actor is not handled again.</para>
/// <para><b>Thread safety</b>: <see cref="CallAsync{TReply}(Func{Reply{TReply}, TMsg}, TimeSpan)"/>, <see cref="Cast(TMsg)"/> and
/// <see cref="CastAsync(TMsg)"/> may be used from fibers on any domain; the handler always runs on the actor's fiber.</para>
/// </remarks>
public sealed class Actor<TState, TMsg>
{
    private readonly ClockBase _clock;
    private readonly Func<Task<TState>> _init;
    private readonly Func<TState, TMsg, ValueTask<TState>> _handle;
    private readonly AsyncQueue<Envelope> _mailbox;

    /// <summary>Creates an actor (not yet running).</summary>
    /// <param name="name">The actor's name (child id, reports, errors).</param>
    /// <param name="clock">The clock for call timeouts (a capability: pass <c>env.MonoClock</c>).</param>
    /// <param name="init">Makes the initial state; runs at the start of every run, before the actor is ready. Erlang: <c>init/1</c>.</param>
    /// <param name="handle">Handles one message and returns the new state. Erlang: <c>handle_call</c>/<c>handle_cast</c>. It may suspend;
    /// the next message waits until it returns.</param>
    /// <param name="mailboxCapacity">The most messages waiting in the mailbox (at least 1; <see cref="AsyncQueue{T}.Unbounded"/> for no bound).</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    /// <exception cref="ArgumentNullException">A delegate or the clock is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mailboxCapacity"/> is less than 1.</exception>
    public Actor(string name, ClockBase clock, Func<Task<TState>> init, Func<TState, TMsg, ValueTask<TState>> handle, int mailboxCapacity = 64)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(clock);
        ArgumentNullException.ThrowIfNull(init);
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentOutOfRangeException.ThrowIfLessThan(mailboxCapacity, 1);
        Name = name;
        _clock = clock;
        _init = init;
        _handle = handle;
        _mailbox = new AsyncQueue<Envelope>(mailboxCapacity);
    }

    /// <summary>The actor's name.</summary>
    public string Name { get; }

    /// <summary>The mailbox's capacity, in messages.</summary>
    public int MailboxCapacity => _mailbox.Capacity;

    /// <summary>The number of messages waiting in the mailbox now.</summary>
    public int PendingMessages => _mailbox.Count;

    /// <summary>Runs the actor on the calling fiber: makes its state, signals ready, and handles messages until cancelled.</summary>
    /// <param name="context">The supervised child's context (its <see cref="ChildContext.Ready"/> is called after init), or null when run directly.</param>
    /// <returns>A task that ends only with an exception: cancellation, or the handler's or init's failure.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled (the normal way to stop an actor).</exception>
    /// <exception cref="Exception">What init or the handler threw.</exception>
    /// <remarks>Erlang: the <c>gen_server</c> loop. <b>Cancellation</b>: a cancelled actor stops between messages, or inside a handler at its
    /// next suspension point (the call being handled then gets <see cref="ActorFailedException"/>).</remarks>
    public async Task RunAsync(ChildContext? context = null)
    {
        var state = await _init();
        context?.Ready();
        while (true)
        {
            var envelope = await _mailbox.TakeAsync();
            try
            {
                state = await _handle(state, envelope.Message);
            }
            catch (Exception ex)
            {
                envelope.Reply?.Fail(new ActorFailedException(Name, ex));
                throw;
            }
        }
    }

    /// <summary>Makes the child specification that runs this actor under a supervisor.</summary>
    /// <param name="restart">The restart type (default <see cref="RestartType.Permanent"/>).</param>
    /// <param name="shutdownTimeout">The shutdown timeout (default <see cref="ChildSpec.DefaultWorkerShutdown"/>).</param>
    /// <returns>A worker child whose id is <see cref="Name"/> and whose every run starts from a fresh state.</returns>
    public ChildSpec ToChildSpec(RestartType restart = RestartType.Permanent, TimeSpan? shutdownTimeout = null) =>
        new(Name, RunAsync) { Restart = restart, ShutdownTimeout = shutdownTimeout ?? ChildSpec.DefaultWorkerShutdown };

    /// <summary>Sends a request and waits for its reply, for at most <paramref name="timeout"/>.</summary>
    /// <typeparam name="TReply">The reply type.</typeparam>
    /// <param name="request">Builds the message from the reply handle it must carry; the handler answers with <see cref="Reply{T}.Send(T)"/>.</param>
    /// <param name="timeout">The limit for the whole call: waiting for mailbox space and for the reply. <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <returns>The reply.</returns>
    /// <exception cref="TimeoutException">No reply within <paramref name="timeout"/>. The message may still be handled later; its reply is then dropped.</exception>
    /// <exception cref="ActorFailedException">The actor ended while handling this message.</exception>
    /// <exception cref="Exception">What the handler passed to <see cref="Reply{T}.Fail(Exception)"/>.</exception>
    /// <exception cref="CancelledException">The caller was cancelled.</exception>
    /// <remarks>Erlang: <c>gen_server:call(Server, Request, Timeout)</c>. If the actor is not running (for example between a crash and its
    /// restart) the message waits in the mailbox and the call is answered by the next run, or times out.</remarks>
    public Task<TReply> CallAsync<TReply>(Func<Reply<TReply>, TMsg> request, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (promise, resolver) = EioSharp.Promise.Create<TReply>();
        var reply = new Reply<TReply>(resolver);
        var envelope = new Envelope(request(reply), reply);
        return CallCoreAsync(envelope, promise, timeout);
    }

    private async Task<TReply> CallCoreAsync<TReply>(Envelope envelope, Promise<TReply> reply, TimeSpan timeout)
    {
        var r = await _clock.TryWithTimeoutAsync(timeout, async () =>
        {
            await _mailbox.AddAsync(envelope);
            return await reply.AwaitAsync();
        });
        if (r.IsTimedOut)
        {
            throw new TimeoutException($"Actor '{Name}' did not reply within {timeout.TotalSeconds}s.");
        }

        return r.Value;
    }

    /// <summary>Sends a message without waiting for an answer; fails at once if the mailbox is full.</summary>
    /// <param name="message">The message.</param>
    /// <exception cref="MailboxFullException">The mailbox is full: the message was not sent (load shedding; use <see cref="CastAsync(TMsg)"/> to wait instead).</exception>
    /// <remarks>Erlang: <c>gen_server:cast</c>. Never suspends; may be called outside fibers.</remarks>
    public void Cast(TMsg message)
    {
        if (!TryCast(message))
        {
            throw new MailboxFullException(Name, MailboxCapacity);
        }
    }

    /// <summary>Sends a message without waiting for an answer if there is room in the mailbox.</summary>
    /// <param name="message">The message.</param>
    /// <returns>False if the mailbox was full (the message was not sent).</returns>
    public bool TryCast(TMsg message) => _mailbox.TryAdd(new Envelope(message, null));

    /// <summary>Sends a message without waiting for an answer, waiting for room while the mailbox is full (backpressure).</summary>
    /// <param name="message">The message.</param>
    /// <returns>An awaitable that completes once the message is in the mailbox.</returns>
    /// <exception cref="CancelledException">The caller was cancelled while waiting; the message was not sent.</exception>
    public ValueTask CastAsync(TMsg message) => _mailbox.AddAsync(new Envelope(message, null));

    /// <inheritdoc/>
    public override string ToString() => $"Actor {Name}";

    private readonly record struct Envelope(TMsg Message, IReplySink? Reply);
}

/// <summary>What an actor needs to fail a pending call when it ends.</summary>
internal interface IReplySink
{
    void Fail(Exception error);
}

/// <summary>The handle an actor uses to answer one call.</summary>
/// <typeparam name="T">The reply type.</typeparam>
/// <remarks>Erlang: the <c>From</c> of <c>handle_call</c> with <c>gen_server:reply</c>. The handler may keep it and answer later (after
/// handling other messages); an answer after the caller timed out is dropped.
/// <para><b>Thread safety</b>: may be used from any fiber or thread.</para></remarks>
public sealed class Reply<T> : IReplySink
{
    private readonly Resolver<T> _resolver;

    internal Reply(Resolver<T> resolver) => _resolver = resolver;

    /// <summary>True once the call has been answered.</summary>
    public bool IsSent => _resolver.Promise.IsResolved;

    /// <summary>Answers the call.</summary>
    /// <param name="value">The reply.</param>
    /// <exception cref="InvalidOperationException">The call was already answered.</exception>
    public void Send(T value) => _resolver.Resolve(value);

    /// <summary>Answers the call with an error, thrown to the caller.</summary>
    /// <param name="error">The exception.</param>
    /// <exception cref="InvalidOperationException">The call was already answered.</exception>
    public void Fail(Exception error) => _resolver.ResolveError(error);

    void IReplySink.Fail(Exception error) => _resolver.TryResolveError(error);
}
