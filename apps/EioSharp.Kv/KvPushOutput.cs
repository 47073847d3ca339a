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
    private int _slot = -1; // where in _held the reply of the blocked command goes (-1: no blocked reply pending)
    private bool _holdStartedForReply; // holding only because the store is writing a blocked reply
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

    /// <summary>A subscriber's queue reports its memory (used_memory) when it moved by this many bytes since the last
    /// report (<see cref="KvConnectionState.ReportMemory"/>): no shared atomic per small message.</summary>
    internal const long MemoryReportBytes = 4096;

    /// <summary>The connection's state (its CLIENT LIST buffer fields, its part of used_memory).</summary>
    public KvConnectionState State => _state;

    /// <summary>Resolves when the connection went over its output limit and must be closed.</summary>
    public Promise<bool> Killed { get; }

    /// <summary>The chunks the writer fiber sends, in order.</summary>
    public AsyncQueue<byte[]> Queue => _queue;

    public override int Protocol => _state.Protocol;

    /// <summary>Bytes queued and not yet written (tests, CLIENT LIST).</summary>
    public override long PendingBytes
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
        _state.ReportMemory(MemoryReportBytes);
    }

    /// <summary>The connection starts processing a batch: hold pushed messages until its replies are queued.</summary>
    public void BeginBatch()
    {
        lock (_lock) _holding = true;
    }

    /// <summary>The store is about to write the reply of the connection's blocked command (<see cref="KvSession.HoldPushes"/>,
    /// called on the store owner): messages pushed from now on go after that reply (true); or a serve attempt wrote
    /// nothing after all (false).</summary>
    public void HoldForBlockedReply(bool hold)
    {
        lock (_lock)
        {
            if (hold)
            {
                _holdStartedForReply = !_holding;
                _holding = true;
                _slot = _held.Count; // the blocked reply goes between the messages held so far and the later ones
                return;
            }

            _slot = -1;
            if (_holdStartedForReply)
            {
                _holdStartedForReply = false;
                Release();
            }
        }
    }

    /// <summary>The connection's command blocked: queues the replies before it and the messages held while its batch ran
    /// (all of them, or those before the blocked reply's place if the store already served it); messages then flow
    /// while the command waits.</summary>
    public void EndBatchBlocked(ReadOnlySpan<byte> replies)
    {
        byte[]? copy = replies.IsEmpty ? null : replies.ToArray();
        lock (_lock)
        {
            if (_killed) return;
            if (copy is not null)
            {
                if (!Account(copy.Length)) return;
                _queue.TryAdd(copy);
            }
            if (_slot < 0)
            {
                Release();
                return;
            }
            for (int i = 0; i < _slot; i++) _queue.TryAdd(_held[i]);
            _held.RemoveRange(0, _slot);
            _slot = 0;
        }
    }

    /// <summary>The blocked command's reply is back (the connection resumes its batch): queues it after the messages
    /// pushed before the store wrote it and before those pushed since; later messages are held until the batch ends.</summary>
    public void DeliverBlockedReply(ReadOnlySpan<byte> reply)
    {
        byte[]? copy = reply.IsEmpty ? null : reply.ToArray();
        lock (_lock)
        {
            if (_killed) return;
            int slot = _slot < 0 ? _held.Count : _slot;
            for (int i = 0; i < slot; i++) _queue.TryAdd(_held[i]);
            if (copy is not null)
            {
                if (!Account(copy.Length)) return;
                _queue.TryAdd(copy);
            }
            for (int i = slot; i < _held.Count; i++) _queue.TryAdd(_held[i]);
            _held.Clear();
            _slot = -1;
            _holdStartedForReply = false;
            _holding = true; // the rest of the batch's replies go out with EndBatch
        }
    }

    private void Release()
    {
        _holding = false;
        foreach (byte[] m in _held) _queue.TryAdd(m);
        _held.Clear();
    }

    /// <summary>Queues the batch's replies, then the messages held meanwhile.</summary>
    public void EndBatch(ReadOnlySpan<byte> replies)
    {
        byte[]? copy = replies.IsEmpty ? null : replies.ToArray();
        lock (_lock)
        {
            _holding = false;
            _slot = -1;
            _holdStartedForReply = false;
            if (_killed) return;
            if (copy is not null)
            {
                if (!Account(copy.Length)) return;
                _queue.TryAdd(copy);
            }
            foreach (byte[] m in _held) _queue.TryAdd(m);
            _held.Clear();
        }
        _state.ReportMemory(MemoryReportBytes);
    }

    /// <summary>The writer sent <paramref name="bytes"/>.</summary>
    public void OnWritten(long bytes)
    {
        lock (_lock)
        {
            _pending -= bytes;
            if (_pending <= _softLimit) _softSince = -1;
        }
        _state.ReportMemory(MemoryReportBytes);
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
