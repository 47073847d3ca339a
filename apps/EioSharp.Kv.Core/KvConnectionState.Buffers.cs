using System.Globalization;

namespace EioSharp.Kv;

/// <summary>CLIENT LIST / CLIENT INFO buffer fields (qbuf, qbuf-free, argv-mem, multi-mem, rbs, rbp, obl, oll, omem, tot-mem) and the normal
/// class of client-output-buffer-limit: the connection reports its read buffer and the output it is writing here (plain
/// fields, read from any domain), the client registry's cron checks the limits (<see cref="KvClientRegistry.CheckOutputLimits"/>).</summary>
public sealed partial class KvConnectionState
{
    /// <summary>Redis's reply chunk (PROTO_REPLY_CHUNK_BYTES): the fixed buffer (obl) and the size of a reply-list node (oll).</summary>
    public const int ReplyChunkBytes = 16 * 1024;

    /// <summary>What one client costs beside its buffers, counted in tot-mem (this state, its session, its fiber).</summary>
    public const int ClientStateBytes = 2048;

    private long _queryBufferBytes, _queryBufferCapacity, _partialArgvBytes, _outputPendingBytes, _receivingBytes;
    private KvCommand? _listingCommand; // CLIENT LIST / INFO being executed: its own arguments are argv-mem, as in Redis

    /// <summary>The connection's read buffer after each parse: <paramref name="unparsed"/> bytes not yet parsed (qbuf) of
    /// <paramref name="capacity"/> (qbuf-free is the rest), and <paramref name="partialArgvBytes"/> bytes of the
    /// arguments of an incomplete command kept by the request reader (argv-mem); <paramref name="receivingBytes"/> the array
    /// allocated for a large argument being received (in tot-mem, as Redis's query buffer sized for a big bulk). Call on
    /// the connection's fiber.</summary>
    public void ReportQueryBuffer(long unparsed, long capacity, long partialArgvBytes, long receivingBytes = 0)
    {
        Volatile.Write(ref _receivingBytes, receivingBytes);
        Volatile.Write(ref _queryBufferBytes, unparsed);
        Volatile.Write(ref _queryBufferCapacity, capacity);
        Volatile.Write(ref _partialArgvBytes, partialArgvBytes);
        ReportMemory();
    }

    private const long MemoryReleased = long.MinValue;
    private long _reportedMemory; // this client's part of KvServerStats.ClientMemoryBytes; MemoryReleased once closed

    /// <summary>This client's memory as CLIENT LIST <c>tot-mem</c> counts it (without the arguments of a CLIENT LIST being
    /// run): read buffer capacity, kept arguments, queued MULTI commands, pending output and <see cref="ClientStateBytes"/>.</summary>
    public long MemoryBytes =>
        Volatile.Read(ref _queryBufferCapacity) + Volatile.Read(ref _receivingBytes) + Volatile.Read(ref _partialArgvBytes) +
        (Volatile.Read(ref _transaction)?.ArgvBytes ?? 0) + OutputPendingBytes + (Subscriber?.PendingBytes ?? 0) + ClientStateBytes;
    // (Not UnsentOutput: used_memory is brought up to date only when the connection reports, and a write-behind send
    // nearly always ends within the round, so counting it at the report would leave every reply's size counted.)

    /// <summary>Brings this client's part of used_memory (<see cref="KvServerStats.ClientMemoryBytes"/>) up to its
    /// <see cref="MemoryBytes"/>, when it moved by at least <paramref name="minChange"/> bytes: one atomic add of the
    /// difference, nothing when it did not change (no scan of the other clients). Safe from any domain; does nothing
    /// after <see cref="ReleaseMemory"/>.</summary>
    public void ReportMemory(long minChange = 1)
    {
        long total = MemoryBytes;
        while (true)
        {
            long old = Volatile.Read(ref _reportedMemory);
            if (old == MemoryReleased || Math.Abs(total - old) < minChange) return;
            if (Interlocked.CompareExchange(ref _reportedMemory, total, old) == old)
            {
                _stats.OnClientMemoryChanged(total - old);
                if (total > old) EvictClientsIfOver();
                return;
            }
        }
    }

    /// <summary><c>maxmemory-clients</c>: when this client's memory grew and all clients' memory is at or over the limit,
    /// the registry evicts the largest clients (Redis checks before each command and before each sleep; here at each
    /// growth reported, so a client filling its buffers is stopped as it goes). One read of the configuration when off.</summary>
    private void EvictClientsIfOver()
    {
        KvServerConfig config = _config;
        if (config.MaxMemoryClients == 0 || _clients is not { } clients) return;
        long limit = config.ClientEvictionLimit;
        if (limit != 0 && _stats.ClientMemoryBytes >= limit) clients.EvictClients(config, _stats);
    }

    /// <summary>The connection is closed: removes its part of used_memory, for good.</summary>
    public void ReleaseMemory()
    {
        long old = Interlocked.Exchange(ref _reportedMemory, MemoryReleased);
        if (old != MemoryReleased && old != 0) _stats.OnClientMemoryChanged(-old);
    }

    /// <summary>CLIENT LIST <c>rbs</c>/<c>rbp</c>: Redis's reply buffer policy over this client's replies; the connection
    /// tells it each write (<see cref="KvReplyBufferSizing.OnRepliesWritten"/>, on <see cref="Environment.TickCount64"/>).</summary>
    public KvReplyBufferSizing ReplyBufferSizing { get; } = new(Environment.TickCount64);

    /// <summary>Bytes the connection is writing to the socket now (its replies not yet taken by the kernel), 0 when none;
    /// set by the connection around each write. A subscriber's queued output is its <see cref="KvSubscriber.PendingBytes"/>.</summary>
    public long OutputPendingBytes
    {
        get => Volatile.Read(ref _outputPendingBytes);
        set
        {
            Volatile.Write(ref _outputPendingBytes, value);
            ReportMemory();
        }
    }

    /// <summary>All output of this client not yet written: the write in progress, the bytes a finished write left to the
    /// socket to send (<see cref="UnsentOutput"/>) and, once subscribed, the queued pushes.</summary>
    public long PendingOutputBytes => OutputPendingBytes + (UnsentOutput?.Invoke() ?? 0) + (Subscriber?.PendingBytes ?? 0);

    /// <summary>Bytes the connection's socket has accepted from a finished write and not yet handed to the kernel (io_uring
    /// write-behind sends: <c>StreamSocket.UnsentBytes</c>), read live by CLIENT LIST obl/omem and the output buffer
    /// limits; null when the connection's writes end only once the kernel holds their bytes. Any thread.</summary>
    public Func<long>? UnsentOutput { get; init; }

    /// <summary>When the client's pending output went over the soft limit (Unix ms; 0: it is under it), for
    /// <see cref="KvClientRegistry.CheckOutputLimits"/>.</summary>
    internal long OutputSoftLimitSinceMs { get; set; }

    /// <summary>The buffer fields of the CLIENT LIST line, from <c>qbuf</c> to <c>tot-mem</c>, and whether output is pending
    /// (events=rw). Output not yet written is shown as Redis holds it: the first 16 KB in the fixed buffer (obl), the rest
    /// in 16 KB list nodes (oll, omem).</summary>
    private (string Fields, bool Writing) BufferFields()
    {
        long qbuf = Volatile.Read(ref _queryBufferBytes);
        long qcap = Volatile.Read(ref _queryBufferCapacity);
        long argv = Volatile.Read(ref _partialArgvBytes);
        if (_listingCommand is { } self)
        {
            argv = 0;
            for (int i = 0; i < self.Count; i++) argv += self[i].Length;
        }
        long pending = PendingOutputBytes;
        long obl = Math.Min(pending, ReplyChunkBytes);
        long omem = pending - obl;
        long oll = (omem + ReplyChunkBytes - 1) / ReplyChunkBytes;
        long multi = Volatile.Read(ref _transaction)?.ArgvBytes ?? 0; // the reference may change under a reader on another domain: read once
        long total = qcap + Volatile.Read(ref _receivingBytes) + argv + multi + pending + ClientStateBytes;
        (long rbs, long rbp) = ReplyBufferSizing.Read(Environment.TickCount64);
        return (string.Create(CultureInfo.InvariantCulture,
            $"qbuf={qbuf} qbuf-free={Math.Max(0, qcap - qbuf)} argv-mem={argv} multi-mem={multi} rbs={rbs} rbp={rbp} obl={obl} oll={oll} omem={omem} tot-mem={total}"),
            pending > 0);
    }
}
