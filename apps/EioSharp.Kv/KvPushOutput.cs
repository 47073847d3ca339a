using EioSharp.Sync;

namespace EioSharp.Kv;

/// <summary>The connection was disconnected because its pending output went over client-output-buffer-limit (pubsub class).</summary>
internal sealed class OutputBufferLimitExceededException(string message) : Exception(message);

/// <summary>The outbound side of a connection that has subscribed: one ordered queue of byte chunks (replies and pushed
/// messages) drained by the connection's writer fiber, with the connection's output bounded.</summary>
/// <remarks>
/// <b>Order</b>: while the connection processes a batch of commands (<see cref="BeginBatch"/> .. <see cref="EndBatch"/>),
/// messages published to it are held and queued after the batch's replies, so a message never overtakes a reply already
/// begun (in particular the SUBSCRIBE confirmation comes before the channel's first message); between batches they
/// are queued at once, and the writer sends them while the connection waits for input.
/// <para><b>Bounds</b>: bytes queued and not yet written count against the pubsub class of client-output-buffer-limit
/// (hard: at once; soft: when over it for longer than the soft period). Over it the connection is killed:
/// nothing more is queued, the queue is closed, <see cref="Killed"/> resolves (the connection's fiber then fails its
/// switch, which cancels its read and its writer), and the disconnection is counted. Publishers never wait.</para>
/// <para><b>Thread safety</b>: <see cref="Push"/> is called from any domain; one lock guards the counters and the hold.</para>
/// </remarks>
internal sealed class KvPushOutput : KvSubscriber
{
    private readonly object _lock = new();
    private readonly KvConnectionState _state;
    private readonly KvServerStats _stats;
    private readonly long _hardLimit;
    private readonly long _softLimit;
    private readonly long _softMs;
    private readonly AsyncQueue<byte[]> _queue = new(AsyncQueue<byte[]>.Unbounded); // bounded in bytes by the limits
    private readonly List<byte[]> _held = [];
    private readonly Resolver<bool> _kill;
    private bool _holding = true; // created while the connection processes the SUBSCRIBE's batch
    private bool _killed;
    private long _pending; // bytes queued or held, not yet written
    private long _softSince = -1; // Environment.TickCount64 when the output went over the soft limit; -1: under it

    public KvPushOutput(KvConnectionState state, KvServerConfig config, KvServerStats stats)
    {
        _state = state;
        _stats = stats;
        _hardLimit = config.PubSubOutputHardLimit;
        _softLimit = config.PubSubOutputSoftLimit;
        _softMs = (long)config.PubSubOutputSoftSeconds.TotalMilliseconds;
        (Killed, _kill) = Promise.Create<bool>();
    }

    /// <summary>Resolves when the connection went over its output limit and must be closed.</summary>
    public Promise<bool> Killed { get; }

    /// <summary>The chunks the writer fiber sends, in order.</summary>
    public AsyncQueue<byte[]> Queue => _queue;

    public override int Protocol => _state.Protocol;

    /// <summary>Bytes queued and not yet written (tests, CLIENT LIST).</summary>
    public long PendingBytes
    {
        get
        {
            lock (_lock) return _pending;
        }
    }

    public override void Push(byte[] message)
    {
        lock (_lock)
        {
            if (_killed || !Account(message.Length)) return;
            if (_holding) _held.Add(message);
            else _queue.TryAdd(message);
        }
    }

    /// <summary>The connection starts processing a batch: hold pushed messages until its replies are queued.</summary>
    public void BeginBatch()
    {
        lock (_lock) _holding = true;
    }

    /// <summary>Queues the batch's replies, then the messages held meanwhile.</summary>
    public void EndBatch(ReadOnlySpan<byte> replies)
    {
        byte[]? copy = replies.IsEmpty ? null : replies.ToArray();
        lock (_lock)
        {
            _holding = false;
            if (_killed) return;
            if (copy is not null)
            {
                if (!Account(copy.Length)) return;
                _queue.TryAdd(copy);
            }
            foreach (byte[] m in _held) _queue.TryAdd(m);
            _held.Clear();
        }
    }

    /// <summary>The writer sent <paramref name="bytes"/>.</summary>
    public void OnWritten(long bytes)
    {
        lock (_lock)
        {
            _pending -= bytes;
            if (_pending <= _softLimit) _softSince = -1;
        }
    }

    private bool Account(int bytes)
    {
        _pending += bytes;
        bool over = _hardLimit > 0 && _pending > _hardLimit;
        if (!over && _softLimit > 0 && _pending > _softLimit)
        {
            long now = Environment.TickCount64;
            if (_softSince < 0) _softSince = now;
            else if (now - _softSince > _softMs) over = true;
        }
        if (!over) return true;
        _killed = true;
        _held.Clear();
        _queue.Close();
        _stats.OnOutputBufferLimitDisconnection();
        _kill.TryResolve(true);
        return false;
    }
}
