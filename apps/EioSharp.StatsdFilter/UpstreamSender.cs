using System.Net;
using System.Net.Sockets;
using EioSharp.Net;
using EioSharp.Time;

namespace EioSharp.StatsdFilter;

/// <summary>Batches lines into datagrams of at most the MTU and sends them to the upstream over a connected UDP socket.</summary>
/// <remarks>
/// <para>
/// <b>Sending</b>: a full batch is sent at once from <see cref="Append"/>; the caller sends a partial batch with
/// <see cref="StartFlush"/> when its receive loop goes idle, and <see cref="RunBatchTimerAsync"/> sends any batch
/// that stayed partial for more than two ticks, so no line waits indefinitely. UDP sends normally complete
/// synchronously; a send that has to wait keeps its batcher (whose memory it is sending) in the pending list, and
/// the sender continues with a spare batcher. The caller awaits the pending sends with
/// <see cref="CompletePendingAsync"/> before it receives more.
/// </para>
/// <para>
/// <b>Memory</b>: at most <see cref="MaxPendingSends"/> sends wait at once; beyond that a batch is dropped and counted
/// in <see cref="FilterCounter.SendErrors"/>, so a slow upstream never makes the proxy buffer without bound.
/// </para>
/// <para>
/// <b>Errors</b>: a failed send (for example <see cref="SocketError.ConnectionRefused"/> after the upstream sent an
/// ICMP "port unreachable" for an earlier datagram: the socket is connected so Linux reports it), an unresolved
/// upstream, or a socket that cannot be opened is counted in <see cref="FilterCounter.SendErrors"/> (one per datagram)
/// and never stops ingest. Cancellation is not caught.
/// </para>
/// <para>
/// <b>Owner</b>: the sender's socket belongs to the switch given to <see cref="AttachTo"/>: one run of the domain's
/// supervised <c>forwarder</c> child (see <see cref="StatsdFilterServer"/>). When that run ends (a crash, or the
/// supervisor stopping it) the switch closes the socket and <see cref="Detach"/> forgets it; the batch itself belongs
/// to the sender, so ingest keeps appending lines, and the next run opens a fresh socket. While no owner is attached,
/// <see cref="StartFlush"/> leaves a partial batch for the next run (whose batch timer sends it); a batch that is full
/// (or sent while the owner is being cancelled and no socket is open) is dropped and counted in
/// <see cref="FilterCounter.SendErrors"/>.
/// </para>
/// <para>
/// <b>Upstream changes</b>: before each send the sender compares <see cref="UpstreamTarget.Current"/>'s version with
/// the one its socket is connected to and reconnects (or reopens, if the address family changed).
/// </para>
/// <para><b>Thread safety</b>: not thread-safe; one sender per domain, used only from fibers of that domain.</para>
/// </remarks>
internal sealed class UpstreamSender
{
    /// <summary>The most sends that may wait for the kernel at once; each holds one MTU-sized buffer.</summary>
    public const int MaxPendingSends = 64;

    private readonly NetworkCapability _net;
    private readonly UpstreamTarget _target;
    private readonly FilterStatistics _statistics;
    private readonly int _shard;
    private readonly bool _countForwarded;
    private readonly Stack<DatagramBatcher> _spare = new();
    private readonly List<PendingSend> _pending = [];
    private DatagramBatcher _batcher;
    private Switch? _owner;
    private DatagramSocket? _socket;
    private AddressFamily _socketFamily;
    private int _socketVersion;
    private long _batchSequence;

    /// <summary>Creates a sender; it sends nothing until <see cref="AttachTo"/> gives it a switch to own its socket.</summary>
    /// <param name="net">Opens the sockets.</param>
    /// <param name="target">Where datagrams go.</param>
    /// <param name="statistics">Counts forwarded lines and send errors.</param>
    /// <param name="shard">The statistics shard of the calling domain.</param>
    /// <param name="mtu">The largest datagram, in bytes.</param>
    /// <param name="countForwarded">Whether sent lines count as <see cref="FilterCounter.Forwarded"/> (false for self-metrics).</param>
    public UpstreamSender(NetworkCapability net, UpstreamTarget target, FilterStatistics statistics, int shard, int mtu, bool countForwarded = true)
    {
        _net = net;
        _target = target;
        _statistics = statistics;
        _shard = shard;
        _countForwarded = countForwarded;
        _batcher = new DatagramBatcher(mtu);
    }

    /// <summary>Makes <paramref name="owner"/> (a switch of the calling domain) own the sockets the sender opens from now on.</summary>
    /// <param name="owner">Closes the sender's socket when it finishes.</param>
    /// <remarks>Opens the socket now (if the upstream is resolved), so that a run that crashes can still send its last batch:
    /// no socket can be opened on a cancelled switch.</remarks>
    public void AttachTo(Switch owner)
    {
        _owner = owner;
        _socket = null; // a previous owner closes (or has closed) its own socket
        GetSocket();
    }

    /// <summary>Forgets the owner and its socket (the owner closes it); until the next <see cref="AttachTo"/>, batches are counted as send errors.</summary>
    public void Detach()
    {
        _owner = null;
        _socket = null;
    }

    /// <summary>Whether no line is waiting in the current batch.</summary>
    public bool IsEmpty => _batcher.IsEmpty;

    /// <summary>Whether sends are waiting to be completed with <see cref="CompletePendingAsync"/>.</summary>
    public bool HasPendingSends => _pending.Count > 0;

    /// <summary>Appends a line to the current batch, sending the batch first if the line does not fit.</summary>
    public void Append(ReadOnlySpan<byte> line)
    {
        if (!_batcher.TryAppend(line))
        {
            Send(full: true);
            _batcher.TryAppend(line);
        }
    }

    /// <summary>Starts sending the current batch, if any; completes synchronously in the usual case.</summary>
    /// <remarks>While no owner is attached (the forwarder is restarting) the batch stays for the next run.</remarks>
    public void StartFlush() => Send(full: false);

    private void Send(bool full)
    {
        int lines = _batcher.LineCount;
        if (lines == 0 || (_owner is null && !full))
        {
            return;
        }

        _batchSequence++;
        DatagramSocket? socket = _pending.Count < MaxPendingSends ? GetSocket() : null;
        ReadOnlyMemory<byte> datagram = _batcher.Flush();
        if (socket is null)
        {
            CountError();
            return;
        }

        ValueTask send;
        try
        {
            send = socket.SendAsync(datagram);
            if (send.IsCompleted)
            {
                send.GetAwaiter().GetResult();
                CountSent(lines);
                return;
            }
        }
        catch (Exception e) when (e is NetException or ObjectDisposedException)
        {
            CountError();
            return;
        }

        _pending.Add(new PendingSend(send, _batcher, lines));
        _batcher = _spare.Count > 0 ? _spare.Pop() : new DatagramBatcher(_batcher.Mtu);
    }

    /// <summary>Waits for the sends that could not complete at once, counting their outcome.</summary>
    public async ValueTask CompletePendingAsync()
    {
        while (_pending.Count > 0)
        {
            PendingSend[] sends = [.. _pending];
            _pending.Clear();
            foreach (PendingSend p in sends)
            {
                try
                {
                    await p.Send;
                    CountSent(p.Lines);
                }
                catch (Exception e) when (e is NetException or ObjectDisposedException)
                {
                    CountError();
                }
                finally
                {
                    _spare.Push(p.Batcher);
                }
            }
        }
    }

    /// <summary>Sends the current batch and waits for every pending send.</summary>
    public ValueTask FlushAsync()
    {
        StartFlush();
        return _pending.Count == 0 ? ValueTask.CompletedTask : CompletePendingAsync();
    }

    /// <summary>Sends a batch that stayed partial for two ticks; runs until cancelled.</summary>
    /// <param name="clock">The clock to tick on.</param>
    /// <param name="tick">Half the longest time a line may wait in a partial batch.</param>
    public async Task RunBatchTimerAsync(MonoClock clock, TimeSpan tick)
    {
        long seen = -1;
        while (true)
        {
            await clock.SleepAsync(tick);
            if (_batcher.IsEmpty)
            {
                seen = -1;
            }
            else if (seen == _batchSequence)
            {
                await FlushAsync();
                seen = -1;
            }
            else
            {
                seen = _batchSequence;
            }
        }
    }

    private DatagramSocket? GetSocket()
    {
        UpstreamAddress? address = _target.Current;
        if (address is null)
        {
            return null;
        }

        if (_socket is not null && _socketVersion == address.Version)
        {
            return _socket;
        }

        try
        {
            AddressFamily family = address.EndPoint.AddressFamily;
            if (_socket is null || _socketFamily != family)
            {
                _socket?.Close();
                _socket = null;
                if (_owner is null || _owner.CancelContext.IsCancelled || _owner.IsFinished)
                {
                    // The forwarder is down or going down (crashed, or being stopped): no new socket until it is back.
                    return null;
                }

                var local = new IPEndPoint(family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
                _socket = _net.OpenDatagram(_owner, local);
                _socketFamily = family;
            }

            _socket.Connect(address.EndPoint);
            _socketVersion = address.Version;
            return _socket;
        }
        catch (Exception e) when (e is NetException or ObjectDisposedException)
        {
            _socket?.Close();
            _socket = null;
            return null;
        }
    }

    private void CountSent(int lines)
    {
        if (_countForwarded)
        {
            _statistics.Add(FilterCounter.Forwarded, lines, _shard);
        }
    }

    private void CountError() => _statistics.Increment(FilterCounter.SendErrors, _shard);

    private readonly record struct PendingSend(ValueTask Send, DatagramBatcher Batcher, int Lines);
}
