namespace EioSharp.Kv;

/// <summary>CLIENT LIST / CLIENT INFO <c>rbs</c> and <c>rbp</c>: the size of Redis's per-client reply buffer (<c>c->buf</c>)
/// and its peak use, following Redis 7.0's policy over this client's real stream of replies.</summary>
/// <remarks>
/// <para>In Redis 7.0 <c>rbs</c> is the usable size of the fixed reply buffer (16 KiB when the client connects) and
/// <c>rbp</c> the most of it a batch of replies used since the last reset (networking.c <c>_addReplyToBuffer</c>: replies
/// that do not fit go to the reply list, counted in <c>oll</c>/<c>omem</c>). server.c <c>clientsCronResizeOutputBuffer</c>,
/// every cron tick: a buffer whose peak is under half of it shrinks to <c>max(1 KiB, peak + 1)</c>; one whose peak filled
/// it doubles, up to 16 KiB; every 5 s (reply-buffer-peak-reset-time) the peak is reset to what the buffer holds (0 for a
/// client whose replies are written). A new client's reset time is in seconds while the check is in milliseconds, so its
/// first tick resets at once: an idle client is at 1 KiB about 0.2 s after it connects.</para>
/// <para>EioSharp.Kv writes replies from a buffer of another shape (no fixed part; its real size is counted in
/// <c>tot-mem</c>), so these two fields are the sizes Redis's policy gives to the bytes this
/// client was actually sent: <see cref="OnRepliesWritten"/> is told each write. The cron's ticks (every 100 ms, hz 10)
/// are applied when the fields are read or a write is noted (<see cref="Advance"/>), each as it would have run then.</para>
/// <para>Thread safety: the connection notes its writes on its fiber, CLIENT LIST reads from another domain: a lock.</para>
/// </remarks>
public sealed class KvReplyBufferSizing
{
    /// <summary>Redis's PROTO_REPLY_CHUNK_BYTES: the size at connect and the largest the buffer grows to (bytes).</summary>
    public const int ChunkBytes = 16 * 1024;

    /// <summary>Redis's PROTO_REPLY_MIN_BYTES: the smallest the buffer shrinks to (bytes).</summary>
    public const int MinBytes = 1024;

    /// <summary>Redis's reply-buffer-peak-reset-time default (milliseconds).</summary>
    public const long PeakResetMs = 5000;

    /// <summary>Redis's clientsCron period for one client with few clients connected (hz 10: every tick), in milliseconds.</summary>
    public const long TickMs = 100;

    private readonly Lock _lock = new();
    private long _size = ChunkBytes, _peak = ChunkBytes; // as Redis's createClient: peak = usable size
    private long _lastTickMs, _lastResetMs = long.MinValue / 2; // Redis 7.0 stores seconds there: the first tick resets

    /// <summary>A client connected at <paramref name="createdMs"/> (a monotonic millisecond clock, the one given to every
    /// later call).</summary>
    public KvReplyBufferSizing(long createdMs)
    {
        _lastTickMs = createdMs;
    }

    /// <summary>Applies the cron ticks (every <see cref="TickMs"/>) up to <paramref name="nowMs"/>, each as Redis's
    /// clientsCronResizeOutputBuffer: a buffer whose peak is under half of it shrinks to <c>max(1 KiB, peak + 1)</c>, else
    /// one whose peak filled it doubles (to 16 KiB at most); then, each <see cref="PeakResetMs"/>, the peak is reset.</summary>
    public void Advance(long nowMs)
    {
        lock (_lock)
        {
            AdvanceLocked(nowMs);
        }
    }

    private void AdvanceLocked(long nowMs)
    {
        while (_lastTickMs + TickMs <= nowMs)
        {
            long t = _lastTickMs + TickMs;
            if (_size / 2 >= MinBytes && _peak < _size / 2)
            {
                _size = Math.Max(MinBytes, _peak + 1);
            }
            else if (_size * 2 < ChunkBytes * 2 && _peak == _size)
            {
                _size = Math.Min(ChunkBytes, _size * 2);
            }

            if (t - _lastResetMs >= PeakResetMs)
            {
                _peak = 0; // what the buffer holds between batches: the replies were written
                _lastResetMs = t;
            }

            Volatile.Write(ref _lastTickMs, t); // after _size and _peak (OnRepliesWritten's unlocked check)
            if (_size == MinBytes && _peak == 0)
            {
                // Idle at the smallest size: later ticks change nothing but the reset time; skip to the last one.
                long ticks = (nowMs - _lastTickMs) / TickMs;
                Volatile.Write(ref _lastTickMs, _lastTickMs + (ticks * TickMs));
                _lastResetMs += (_lastTickMs - _lastResetMs) / PeakResetMs * PeakResetMs;
                break;
            }
        }
    }

    /// <summary>Records a batch of <paramref name="bytes"/> reply bytes handed to the socket at <paramref name="nowMs"/>:
    /// the part that fits is what Redis's buffer would have held (<c>rbp</c> is its maximum since the last reset).</summary>
    public void OnRepliesWritten(long bytes, long nowMs)
    {
        // The steady state (no cron tick due, the peak already as large): nothing would change, so no lock (~80
        // instructions of every request, session 26). _lastTickMs is written last and released (AdvanceLocked): a reader
        // that sees a tick sees its reset peak. Seeing the tick before it instead orders this write before that tick,
        // as a write a moment earlier would have been.
        if (nowMs < Volatile.Read(ref _lastTickMs) + TickMs && Math.Min(bytes, Volatile.Read(ref _size)) <= Volatile.Read(ref _peak))
        {
            return;
        }

        lock (_lock)
        {
            AdvanceLocked(nowMs);
            _peak = Math.Max(_peak, Math.Min(bytes, _size));
        }
    }

    /// <summary>The fields at <paramref name="nowMs"/>: <c>rbs</c> (buffer size, bytes) and <c>rbp</c> (peak, bytes).</summary>
    public (long Size, long Peak) Read(long nowMs)
    {
        lock (_lock)
        {
            AdvanceLocked(nowMs);
            return (_size, _peak);
        }
    }
}
