using System.Globalization;
using System.Net;
using EioSharp.Net;

namespace EioSharp.StatsdFilter;

/// <summary>The StatsD filtering proxy: N domains, each with M UDP receive fibers (and optionally TCP connections), filtering and re-batching lines to the upstream.</summary>
/// <remarks>
/// <para>
/// <b>Layout</b>: the main domain is domain 0; <see cref="StatsdFilterOptions.Threads"/> - 1 more domains are started
/// with <see cref="Stdenv.DomainManager"/>. Every domain has its own <see cref="UpstreamSender"/> (batcher and connected
/// UDP socket) and <see cref="LineProcessor"/>, so the hot path shares nothing between domains but the sharded
/// counters. The UDP socket is either shared by all domains or, with <see cref="StatsdFilterOptions.ReusePort"/>, one
/// SO_REUSEPORT socket per domain. With TCP, each domain runs an accept loop on the one listening socket.
/// </para>
/// <para>
/// <b>Stop</b>: when <c>stop</c> resolves, receive loops and TCP connections are cancelled, each domain sends its
/// partial batch and waits for its sends, the final self-metrics are sent, and <see cref="RunAsync"/> returns.
/// </para>
/// </remarks>
internal sealed class StatsdFilterServer(Stdenv env, StatsdFilterOptions options, Promise<bool> stop, TextWriter output)
{
    /// <summary>The requested kernel receive buffer (SO_RCVBUF) of each UDP socket, in bytes; the kernel caps it at <c>net.core.rmem_max</c>.</summary>
    public const int SocketReceiveBufferBytes = 8 * 1024 * 1024;

    /// <summary>Half the longest time a line may wait in a partial batch while datagrams keep arriving.</summary>
    public static readonly TimeSpan BatchTick = TimeSpan.FromMilliseconds(10);

    /// <summary>How often the upstream host name is resolved again.</summary>
    public static readonly TimeSpan ResolveInterval = TimeSpan.FromSeconds(30);

    /// <summary>The most TCP connections handled at once, per domain.</summary>
    public const int MaxTcpConnectionsPerDomain = 1024;

    private readonly UpstreamTarget _upstream = new(options.TargetHost, options.TargetPort);

    public FilterStatistics Statistics { get; } = new(options.Threads);

    public async Task RunAsync()
    {
        await Switch.RunAsync(async sw =>
        {
            NetworkCapability net = env.Net;
            string? resolveError = await _upstream.ResolveAsync(net);
            if (resolveError is not null)
            {
                await output.WriteLineAsync($"statsd-filter: warning: upstream not resolved yet ({resolveError}); counting send errors until it is");
            }

            var udpSockets = new DatagramSocket[options.ReusePort ? options.Threads : 1];
            udpSockets[0] = OpenUdp(sw, new IPEndPoint(options.BindAddress, options.ListenPort));
            var bound = (IPEndPoint)udpSockets[0].LocalEndPoint!;
            for (int i = 1; i < udpSockets.Length; i++)
            {
                udpSockets[i] = OpenUdp(sw, bound);
            }

            ListeningSocket? listener = options.Tcp ? net.Listen(sw, bound, backlog: 1024) : null;

            string metricsText = options.MetricsInterval > TimeSpan.Zero
                ? string.Create(CultureInfo.InvariantCulture, $"metrics every {options.MetricsInterval.TotalSeconds}s as {options.MetricsPrefix}.*")
                : "metrics off";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"statsd-filter: listening on udp {bound}{(listener is null ? "" : $" and tcp {listener.ListeningEndPoint}")}, " +
                $"upstream {_upstream}, {options.Rules.Rules.Count} rules{(options.Rules.IsAllowlist ? " (allowlist)" : "")}, " +
                $"{options.Threads} domains x {options.Fibers} receive fibers ({(options.ReusePort ? "SO_REUSEPORT sockets" : "shared socket")}), " +
                $"mtu {options.Mtu}, {metricsText}"));
            await output.FlushAsync();

            var metrics = new UpstreamSender(sw, net, _upstream, Statistics, 0, options.Mtu, countForwarded: false);
            if (options.MetricsInterval > TimeSpan.Zero)
            {
                Fiber.ForkDaemon(sw, () => EmitMetricsPeriodicallyAsync(metrics), "metrics");
            }

            Fiber.ForkDaemon(sw, ResolvePeriodicallyAsync, "resolve");

            var domains = new List<Func<Task>>();
            for (int i = 0; i < options.Threads; i++)
            {
                int index = i;
                DatagramSocket socket = udpSockets[index % udpSockets.Length];
                domains.Add(index == 0
                    ? () => RunDomainAsync(0, socket, listener)
                    : () => env.DomainManager.RunAsync(() => RunDomainAsync(index, socket, listener), $"statsd-{index}"));
            }

            await Fiber.AllAsync(domains);

            if (options.MetricsInterval > TimeSpan.Zero)
            {
                EmitMetrics(metrics);
                await metrics.FlushAsync();
            }
        }, "statsd-filter");
    }

    private DatagramSocket OpenUdp(Switch sw, IPEndPoint endpoint)
    {
        DatagramSocket socket = env.Net.OpenDatagram(sw, endpoint, reuseAddress: options.ReusePort, reusePort: options.ReusePort);
        socket.SetReceiveBufferSize(SocketReceiveBufferBytes);
        return socket;
    }

    private async Task RunDomainAsync(int index, DatagramSocket udp, ListeningSocket? listener)
    {
        await Switch.RunAsync(async sw =>
        {
            var sender = new UpstreamSender(sw, env.Net, _upstream, Statistics, index, options.Mtu);
            var processor = new LineProcessor(sender, options.Rules, Statistics, index, options.Verbose);
            Fiber.ForkDaemon(sw, () => sender.RunBatchTimerAsync(env.MonoClock, BatchTick), "batch-timer");

            var work = new List<Func<Task>>
            {
                () => Fiber.FirstAsync(
                    () => Fiber.AllAsync(Enumerable.Range(0, options.Fibers).Select(_ => (Func<Task>)(() => ReceiveLoopAsync(udp, processor)))),
                    async () => await stop.AwaitAsync()),
            };
            if (listener is not null)
            {
                work.Add(() => listener.RunServerAsync(
                    (conn, peer) => HandleTcpAsync(conn, processor),
                    e => TraceLog.Line($"statsd-filter: tcp connection failed: {e.Message}"),
                    maxConnections: MaxTcpConnectionsPerDomain,
                    stop: stop));
            }

            await Fiber.AllAsync(work);

            // Stopped: send what is left of this domain's batch before the domain ends.
            await sender.FlushAsync();
        }, $"domain-{index}");
    }

    private static async Task ReceiveLoopAsync(DatagramSocket udp, LineProcessor processor)
    {
        UpstreamSender sender = processor.Sender;
        byte[] buffer = GC.AllocateUninitializedArray<byte>(StatsdLineSplitter.DatagramReceiveBufferSize, pinned: true);
        while (true)
        {
            ValueTask<int> receive = udp.ReceiveAsync(buffer);
            if (!receive.IsCompleted && !sender.IsEmpty)
            {
                // Nothing more is waiting on the socket: the loop is going idle, so send the partial batch now.
                await sender.FlushAsync();
            }

            int length = await receive;
            // A UDP payload is at most 65,527 bytes, so only a datagram too large for the buffer fills it completely.
            processor.ProcessDatagram(buffer.AsSpan(0, length), truncated: length == buffer.Length);
            if (sender.HasPendingSends)
            {
                await sender.CompletePendingAsync();
            }
        }
    }

    private async Task HandleTcpAsync(StreamSocket conn, LineProcessor processor)
    {
        UpstreamSender sender = processor.Sender;
        var framer = new StatsdTcpLineFramer();
        long truncatedSeen = 0;

        void Drain(bool final)
        {
            while (framer.TryReadLine(out ReadOnlySpan<byte> line))
            {
                processor.ProcessLine(line);
            }

            if (final && framer.TryReadFinalLine(out ReadOnlySpan<byte> last))
            {
                processor.ProcessLine(last);
            }

            processor.AddTruncated(framer.TruncatedLines - truncatedSeen);
            truncatedSeen = framer.TruncatedLines;
            processor.Publish();
        }

        async Task ReadLoopAsync()
        {
            while (true)
            {
                ValueTask<int> read = conn.ReadAsync(framer.GetReadBuffer());
                if (!read.IsCompleted && !sender.IsEmpty)
                {
                    await sender.FlushAsync();
                }

                int n;
                try
                {
                    n = await read;
                }
                catch (NetException)
                {
                    // Reset by the client: what was buffered of an unterminated line is dropped.
                    return;
                }

                if (n == 0)
                {
                    Drain(final: true);
                    return;
                }

                framer.Advance(n);
                Drain(final: false);
                if (sender.HasPendingSends)
                {
                    await sender.CompletePendingAsync();
                }
            }
        }

        // Clients keep StatsD connections open: stop ends them instead of waiting for the client to close.
        await Fiber.FirstAsync(ReadLoopAsync, async () => await stop.AwaitAsync());
    }

    private async Task EmitMetricsPeriodicallyAsync(UpstreamSender metrics)
    {
        TimeSpan next = env.MonoClock.Now + options.MetricsInterval;
        while (true)
        {
            await env.MonoClock.SleepUntilAsync(next);
            next += options.MetricsInterval;
            EmitMetrics(metrics);
            await metrics.FlushAsync();
        }
    }

    private void EmitMetrics(UpstreamSender metrics)
    {
        string lines = Statistics.FormatDeltaLines(options.MetricsPrefix);
        foreach (string line in lines.Split('\n'))
        {
            metrics.Append(System.Text.Encoding.UTF8.GetBytes(line));
        }
    }

    private async Task ResolvePeriodicallyAsync()
    {
        bool failing = _upstream.Current is null;
        while (true)
        {
            // Retry quickly while the name has never resolved; afterwards follow DNS changes slowly.
            await env.MonoClock.SleepAsync(_upstream.Current is null ? TimeSpan.FromSeconds(1) : ResolveInterval);
            UpstreamAddress? before = _upstream.Current;
            string? error = await _upstream.ResolveAsync(env.Net);
            if (error is not null && !failing)
            {
                TraceLog.Line($"statsd-filter: warning: cannot resolve upstream: {error}");
            }
            else if (error is null && !ReferenceEquals(before, _upstream.Current))
            {
                TraceLog.Line($"statsd-filter: upstream is now {_upstream}");
            }

            failing = error is not null;
        }
    }
}
