using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace EioSharp.Kv;

/// <summary>What the server knows of one connected client, for CLIENT LIST/KILL, <c>timeout</c> and MONITOR.</summary>
/// <remarks><b>Thread safety</b>: fields written by the client's own connection are read (slightly stale) by others.</remarks>
public sealed class KvClientEntry
{
    private long _lastInteractionMs;
    private int _killed;

    /// <summary>Creates the entry of a connection.</summary>
    /// <param name="state">The connection's state.</param>
    /// <param name="createdUnixMs">When it connected.</param>
    /// <param name="kill">Closes the connection (from any domain); called at most once.</param>
    public KvClientEntry(KvConnectionState state, long createdUnixMs, Action kill)
    {
        ArgumentNullException.ThrowIfNull(state);
        State = state;
        CreatedUnixMs = createdUnixMs;
        _lastInteractionMs = createdUnixMs;
        KillAction = kill;
    }

    /// <summary>The connection's state.</summary>
    public KvConnectionState State { get; }

    /// <summary>When the client connected, Unix ms.</summary>
    public long CreatedUnixMs { get; }

    /// <summary>The local address the client connected to (<c>laddr</c>).</summary>
    public string LocalAddress { get; init; } = "?";

    private Action KillAction { get; }

    /// <summary>The last time the client sent something, Unix ms (<c>idle</c>, <c>timeout</c>).</summary>
    public long LastInteractionUnixMs
    {
        get => Volatile.Read(ref _lastInteractionMs);
        set => Volatile.Write(ref _lastInteractionMs, value);
    }

    /// <summary>Whether a blocking command of this client waits (exempt from <c>timeout</c>, flag <c>b</c>).</summary>
    public bool Blocked { get; set; }

    /// <summary>Whether the client was killed.</summary>
    public bool IsKilled => Volatile.Read(ref _killed) != 0;

    /// <summary>Closes the connection (CLIENT KILL, timeout); true the first time.</summary>
    public bool Kill()
    {
        if (Interlocked.Exchange(ref _killed, 1) != 0) return false;
        KillAction();
        return true;
    }
}

/// <summary>Every connected client of the server, the pause state (CLIENT PAUSE) and the monitors (MONITOR).</summary>
/// <remarks><b>Thread safety</b>: every member may be called from any domain.</remarks>
public sealed class KvClientRegistry
{
    private readonly ConcurrentDictionary<long, KvClientEntry> _clients = new();
    private readonly object _monitorLock = new();
    private KvConnectionState[] _monitors = [];
    private long _pauseUntilMs;
    private int _pauseAll; // 1: ALL, 0: WRITE

    /// <summary>Adds a connected client.</summary>
    public void Add(KvClientEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _clients[entry.State.ClientId] = entry;
        entry.State.Clients = this;
        entry.State.Entry = entry;
    }

    /// <summary>Removes a client that disconnected.</summary>
    public void Remove(KvClientEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        _clients.TryRemove(entry.State.ClientId, out _);
        RemoveMonitor(entry.State);
    }

    /// <summary>The clients, by id.</summary>
    public List<KvClientEntry> Snapshot() => [.. _clients.Values.OrderBy(e => e.State.ClientId)];

    /// <summary>The client with id <paramref name="id"/>, or null.</summary>
    public KvClientEntry? Find(long id) => _clients.GetValueOrDefault(id);

    /// <summary>Number of connected clients.</summary>
    public int Count => _clients.Count;

    /// <summary>Kills the clients idle longer than <paramref name="timeoutSeconds"/> (not blocked, not subscribed, not monitors);
    /// returns how many.</summary>
    public int KillIdle(long nowUnixMs, int timeoutSeconds)
    {
        if (timeoutSeconds <= 0) return 0;
        int killed = 0;
        foreach (KvClientEntry e in _clients.Values)
        {
            if (e.Blocked || e.State.IsSubscribed || e.State.IsMonitor) continue;
            if (nowUnixMs - e.LastInteractionUnixMs > timeoutSeconds * 1000L && e.Kill()) killed++;
        }
        return killed;
    }

    /// <summary>client-output-buffer-limit, normal class (Redis's checkClientOutputBufferLimits): closes each client that is
    /// not subscribed (the pubsub class is enforced by its output queue) whose output not yet written
    /// (<see cref="KvConnectionState.PendingOutputBytes"/>) is over the hard limit, or has been over the soft limit for more
    /// than its seconds (checked at each call: the server calls it every second). Returns the clients closed.</summary>
    public int CheckOutputLimits(long nowUnixMs, KvServerConfig config, KvServerStats stats, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stats);
        long hard = config.NormalOutputHardLimit, soft = config.NormalOutputSoftLimit, seconds = config.NormalOutputSoftSeconds;
        int killed = 0;
        foreach (KvClientEntry e in _clients.Values)
        {
            KvConnectionState s = e.State;
            if (s.Subscriber is not null || s.IsMonitor) continue;
            long pending = s.PendingOutputBytes;
            bool over = hard > 0 && pending >= hard;
            if (soft > 0 && pending >= soft)
            {
                if (s.OutputSoftLimitSinceMs == 0) s.OutputSoftLimitSinceMs = nowUnixMs;
                else if ((nowUnixMs - s.OutputSoftLimitSinceMs) / 1000 > seconds) over = true;
            }
            else
            {
                s.OutputSoftLimitSinceMs = 0;
            }
            if (over && e.Kill())
            {
                killed++;
                stats.OnOutputBufferLimitDisconnection();
                log?.Invoke($"Client id={s.ClientId} addr={s.RemoteAddress} closed for overcoming of output buffer limits ({pending} bytes pending).");
            }
        }
        return killed;
    }

    /// <summary>Where <see cref="EvictClients"/> logs when called without a log (the server's log; null: nowhere).</summary>
    public Action<string>? Log { get; set; }

    private int _evicting; // 1 while EvictClients runs: one pass at a time, the others leave it to that one

    /// <summary>Redis 7.0's client eviction (<c>maxmemory-clients</c>, networking.c evictClients): while the memory of
    /// all clients (<see cref="KvServerStats.ClientMemoryBytes"/>) is at or over <see cref="KvServerConfig.ClientEvictionLimit"/>,
    /// disconnects the evictable client using the most memory (its CLIENT LIST <c>tot-mem</c>,
    /// <see cref="KvConnectionState.MemoryBytes"/>), counting each in <c>evicted_clients</c> and logging it as Redis does
    /// ("Evicting client: ..."). Clients with CLIENT NO-EVICT on are never evicted, but their memory counts toward the
    /// limit, as in Redis; when only they are left over the limit, Redis's warning is logged. The client calling it may
    /// evict itself (Redis's processCommand does too). Redis keeps clients in buckets of powers of two and evicts from the
    /// largest bucket; this takes the largest client first. Clients already killed are counted as gone. Returns the
    /// clients evicted; does nothing (0) when client eviction is off or another call is evicting. Safe from any domain.</summary>
    public int EvictClients(KvServerConfig config, KvServerStats stats, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stats);
        long limit = config.ClientEvictionLimit;
        if (limit == 0 || stats.ClientMemoryBytes < limit) return 0;
        if (Interlocked.Exchange(ref _evicting, 1) != 0) return 0;
        log ??= Log;
        try
        {
            long total = stats.ClientMemoryBytes;
            var candidates = new List<(KvClientEntry Entry, long Memory)>();
            foreach (KvClientEntry e in _clients.Values)
            {
                long memory = e.State.MemoryBytes;
                if (e.IsKilled) total -= memory; // closing: its memory goes when its connection ends
                else if (!e.State.NoEvict) candidates.Add((e, memory));
            }
            candidates.Sort((a, b) => b.Memory.CompareTo(a.Memory));
            int evicted = 0;
            foreach (var (entry, memory) in candidates)
            {
                if (total < limit) break;
                string info = entry.State.ClientInfoLine(entry);
                if (!entry.Kill()) continue;
                total -= memory;
                evicted++;
                stats.OnClientEvicted();
                log?.Invoke("Evicting client: " + info);
            }
            if (total >= limit) log?.Invoke("Over client maxmemory after evicting all evictable clients");
            return evicted;
        }
        finally
        {
            Volatile.Write(ref _evicting, 0);
        }
    }

    /// <summary>CLIENT PAUSE: until <paramref name="untilUnixMs"/>, commands (all, or only writes) of every client wait.</summary>
    public void Pause(long untilUnixMs, bool all)
    {
        Volatile.Write(ref _pauseAll, all ? 1 : 0);
        Volatile.Write(ref _pauseUntilMs, untilUnixMs);
    }

    /// <summary>CLIENT UNPAUSE.</summary>
    public void Unpause() => Volatile.Write(ref _pauseUntilMs, 0);

    /// <summary>Whether <paramref name="info"/> must wait at <paramref name="nowUnixMs"/> (CLIENT PAUSE in force).</summary>
    public bool IsPaused(KvCommandInfo? info, long nowUnixMs)
    {
        if (nowUnixMs >= Volatile.Read(ref _pauseUntilMs)) return false;
        if (info is null) return false;
        if (Volatile.Read(ref _pauseAll) == 1) return info.Id != KvCommandId.Client; // CLIENT UNPAUSE must get through
        return info.IsWrite || (info.Flags & KvCommandFlags.Script) != 0 || info.Name is "publish" or "spublish";
    }

    /// <summary>Whether anyone runs MONITOR (checked before formatting a line).</summary>
    public bool HasMonitors => Volatile.Read(ref _monitors).Length > 0;

    internal void AddMonitor(KvConnectionState state)
    {
        lock (_monitorLock)
        {
            if (!_monitors.Contains(state)) _monitors = [.. _monitors, state];
        }
    }

    internal void RemoveMonitor(KvConnectionState state)
    {
        lock (_monitorLock) _monitors = [.. _monitors.Where(m => m != state)];
    }

    /// <summary>Sends <paramref name="command"/> of <paramref name="from"/> to every monitor, in Redis's format:
    /// <c>+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"</c>.</summary>
    public void Feed(KvConnectionState from, KvCommand command, int db, long nowMicros)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(command);
        KvConnectionState[] monitors = Volatile.Read(ref _monitors);
        if (monitors.Length == 0) return;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{nowMicros / 1_000_000}.{nowMicros % 1_000_000:D6} [{db} {from.RemoteAddress}]");
        for (int i = 0; i < command.Count; i++)
        {
            sb.Append(' ');
            AppendRepr(sb, command[i]);
        }
        string line = sb.ToString();
        foreach (KvConnectionState m in monitors)
        {
            if (m == from || m.Subscriber is not { } s) continue;
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(line.Length + 8);
            new RespWriter(buffer, s.Protocol).WriteSimpleString(line);
            s.Push(buffer.WrittenSpan.ToArray());
        }
    }

    /// <summary>Redis's <c>sdscatrepr</c>: a quoted string with <c>\n \r \t \a \b \\ \"</c> and <c>\xHH</c> escapes.</summary>
    public static void AppendRepr(StringBuilder sb, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(sb);
        sb.Append('"');
        foreach (byte b in value)
        {
            switch (b)
            {
                case (byte)'\\': sb.Append("\\\\"); break;
                case (byte)'"': sb.Append("\\\""); break;
                case (byte)'\n': sb.Append("\\n"); break;
                case (byte)'\r': sb.Append("\\r"); break;
                case (byte)'\t': sb.Append("\\t"); break;
                case 7: sb.Append("\\a"); break;
                case 8: sb.Append("\\b"); break;
                default:
                    if (b >= 0x20 && b < 0x7f) sb.Append((char)b);
                    else sb.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
                    break;
            }
        }
        sb.Append('"');
    }
}
