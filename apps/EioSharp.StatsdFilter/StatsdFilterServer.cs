using System.Globalization;
using System.Net;
using EioSharp.Net;
using EioSharp.Supervision;

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
/// <b>Supervision</b>: the forwarding side of each domain runs under its own OneForOne <see cref="Supervisor"/>
/// (<c>forward-N</c>, on that domain): a permanent <c>forwarder</c> child owns the domain sender's socket and runs its
/// batch timer, and domain 0's supervisor also has a permanent <c>metrics</c> child, the self-metrics emitter. Ingest
/// (receive loops, TCP connections) is not supervised and keeps running while a child restarts; the batch lives in the
/// <see cref="UpstreamSender"/>, so only a socket and a timer are lost in a crash. More than
/// <see cref="MaxForwarderRestarts"/> restarts within <see cref="ForwarderRestartPeriod"/> make the supervisor give up
/// with <see cref="RestartIntensityExceededException"/>, which fails its domain and so the whole server. Reports go to
/// <see cref="TraceLog"/> (standard error); starts and stops are logged only after start-up and before shutdown.
/// </para>
/// <para>
/// <b>Stop</b>: when <c>stop</c> resolves, receive loops and TCP connections are cancelled, each domain processes the
/// datagrams the kernel already queued on its ingest socket (nothing sent before the stop is lost), sends its
/// partial batch and waits for its sends, stops its supervisor, the final self-metrics are sent, and
/// <see cref="RunAsync"/> returns.
/// </para>
/// </remarks>
internal sealed class StatsdFilterServer(Stdenv env, StatsdFilterOptions options, Promise<bool> stop, TextWriter output)
{
    /// <summary>The requested kernel receive buffer (SO_RCVBUF) of each UDP socket, in bytes; the kernel caps it at <c>net.core.rmem_max</c>.</summary>
    public const int SocketReceiveBufferBytes = 8 * 1024 * 1024;

    /// <summary>Half the longest time a line may wait in a partial batch while datagrams keep arriving.</summary>
    public static readonly TimeSpan BatchTick = TimeSpan.FromMilliseconds(10);

    /// <summary>The longest a graceful stop spends processing datagrams already queued on the ingest socket (a sender that keeps sending must not hold up the stop).</summary>
    public static readonly TimeSpan StopDrainBudget = TimeSpan.FromSeconds(2);

    /// <summary>How often the upstream host name is resolved again.</summary>
    public static readonly TimeSpan ResolveInterval = TimeSpan.FromSeconds(30);

    /// <summary>The most TCP connections handled at once, per domain (lower when the file-descriptor limit asks for it:
    /// see <see cref="ListeningSocket.ConnectionCapacity"/>).</summary>
    public const int MaxTcpConnectionsPerDomain = 1024;

    /// <summary>While TCP clients wait because every connection slot is taken, at most one log line per this interval.</summary>
    public static readonly TimeSpan ConnectionLimitReportInterval = TimeSpan.FromSeconds(10);

    private int _tcpConnectionsPerDomain = MaxTcpConnectionsPerDomain;
    private int _tcpOpen;
    private long _tcpFullReportedAt = long.MinValue;

    /// <summary>The restart intensity of each domain's forwarding supervisor: at most this many restarts within <see cref="ForwarderRestartPeriod"/>.</summary>
    public const int MaxForwarderRestarts = 10;

    /// <summary>The window of <see cref="MaxForwarderRestarts"/>.</summary>
    public static readonly TimeSpan ForwarderRestartPeriod = TimeSpan.FromSeconds(10);

    /// <summary>How long a stopped forwarder or emitter may take to send its last batch.</summary>
    public static readonly TimeSpan ForwarderShutdownTimeout = TimeSpan.FromSeconds(5);

    private readonly UpstreamTarget _upstream = new(options.TargetHost, options.TargetPort);
    private UpstreamSender? _metrics;
    private volatile Supervisor? _mainSupervisor;

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
            if (listener is not null)
            {
                // Connections must never take the last file descriptors: the runtime needs two for every thread it starts,
                // and a thread it cannot start ends the process ("Out of memory."; docs/rationale.md). Clients over the
                // limit wait in the kernel's backlog until a connection closes.
                int capacity = ListeningSocket.ConnectionCapacity();
                _tcpConnectionsPerDomain = Math.Max(1, Math.Min(MaxTcpConnectionsPerDomain, capacity / options.Threads));
                if (_tcpConnectionsPerDomain < MaxTcpConnectionsPerDomain)
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"statsd-filter: tcp: at most {_tcpConnectionsPerDomain} connection(s) per domain: the file-descriptor limit less those " +
                        $"open and {ListeningSocket.DescriptorReserve} kept for the runtime allows {capacity}; raise it with ulimit -n"));
                }
            }

            string metricsText = options.MetricsInterval > TimeSpan.Zero
                ? string.Create(CultureInfo.InvariantCulture, $"metrics every {options.MetricsInterval.TotalSeconds}s as {options.MetricsPrefix}.*")
                : "metrics off";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"statsd-filter: listening on udp {bound}{(listener is null ? "" : $" and tcp {listener.ListeningEndPoint}")}, " +
                $"upstream {_upstream}, {options.Rules.Rules.Count} rules{(options.Rules.IsAllowlist ? " (allowlist)" : "")}, " +
                $"{options.Threads} domains x {options.Fibers} receive fibers ({(options.ReusePort ? "SO_REUSEPORT sockets" : "shared socket")}), " +
                $"mtu {options.Mtu}, {metricsText}"));
            await output.FlushAsync();

            // The periodic emitter is a child of domain 0's supervisor (see RunDomainAsync).
            var metrics = _metrics = new UpstreamSender(net, _upstream, Statistics, 0, options.Mtu, countForwarded: false);

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
                // The emitter stopped with domain 0's supervisor: the final delta is sent from here.
                metrics.AttachTo(sw);
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
            var sender = new UpstreamSender(env.Net, _upstream, Statistics, index, options.Mtu);
            var children = new List<ChildSpec> { SenderChild("forwarder", sender, () => sender.RunBatchTimerAsync(env.MonoClock, BatchTick)) };
            if (index == 0 && options.MetricsInterval > TimeSpan.Zero)
            {
                UpstreamSender metrics = _metrics!;
                children.Add(SenderChild("metrics", metrics, () => EmitMetricsPeriodicallyAsync(metrics)));
            }

            bool running = false;
            var spec = new SupervisorSpec($"forward-{index}", RestartStrategy.OneForOne, children)
            {
                MaxRestarts = MaxForwarderRestarts,
                Period = ForwarderRestartPeriod,
                OnReport = r =>
                {
                    if (running || r.Kind is not (SupervisorReportKind.Started or SupervisorReportKind.Stopped))
                    {
                        TraceLog.Line($"statsd-filter: supervisor {r}");
                    }
                },
            };

            // A fiber of this domain's switch: if the supervisor gives up, it fails the switch, and so the server.
            Supervisor supervisor = await Supervisor.StartAsync(sw, spec, env.MonoClock);
            running = true;
            if (index == 0)
            {
                _mainSupervisor = supervisor;
            }

            Action<string>? debugCommand = options.DebugCommands ? command => RunDebugCommand(sw, supervisor, command) : null;
            var processor = new LineProcessor(sender, options.Rules, Statistics, index, options.Verbose, debugCommand);

            var work = new List<Func<Task>>
            {
                () => Fiber.FirstAsync(
                    () => Fiber.AllAsync(Enumerable.Range(0, options.Fibers).Select(_ => (Func<Task>)(() => ReceiveLoopAsync(udp, processor)))),
                    async () => await stop.AwaitAsync()).AsTask(),
            };
            if (listener is not null)
            {
                work.Add(() => listener.RunServerAsync(
                    (conn, peer) => CountedTcpAsync(conn, processor),
                    e => TraceLog.Line(ListeningSocket.PeerOf(e) is { } peer ? $"statsd-filter: tcp: connection from {peer}: {e.Message}" : $"statsd-filter: tcp: {e.Message}"),
                    maxConnections: _tcpConnectionsPerDomain,
                    stop: stop));
            }

            await Fiber.AllAsync(work);

            // A planned stop loses nothing that already arrived: process what the kernel queued on the ingest socket.
            await DrainAsync(udp, processor);

            // Stopped: send what is left of this domain's batch, then stop the forwarder (and emitter) before the domain ends.
            await sender.FlushAsync();
            running = false;
            await supervisor.StopAsync();
        }, $"domain-{index}");
    }

    /// <summary>A permanent child that owns <paramref name="sender"/>'s socket for one run and runs <paramref name="loop"/> until cancelled.</summary>
    /// <remarks>When the run ends (crash or stop) it sends what is batched while its socket is still open, then detaches:
    /// lines appended meanwhile wait in the batch for the next run.</remarks>
    internal static ChildSpec SenderChild(string id, UpstreamSender sender, Func<Task> loop) => new(id, async ctx =>
    {
        sender.AttachTo(ctx.Switch);
        try
        {
            ctx.Ready();
            await loop();
        }
        finally
        {
            try
            {
                await Cancel.ProtectAsync(async () => await sender.FlushAsync());
            }
            finally
            {
                sender.Detach();
            }
        }
    })
    {
        Restart = RestartType.Permanent,
        ShutdownTimeout = ForwarderShutdownTimeout,
    };

    /// <summary>Runs a <c>_debug.*</c> command received with <c>--enable-debug-commands</c> (fault injection for tests).</summary>
    private void RunDebugCommand(Switch sw, Supervisor domainSupervisor, string command)
    {
        (Supervisor? supervisor, string? child) = command switch
        {
            "_debug.crash_forwarder" => (domainSupervisor, "forwarder"),
            "_debug.crash_metrics" => (_mainSupervisor, "metrics"),
            _ => (null, null),
        };
        if (child is null)
        {
            TraceLog.Line($"statsd-filter: debug: unknown command {command} (known: _debug.crash_forwarder, _debug.crash_metrics)");
            return;
        }

        if (supervisor is null)
        {
            TraceLog.Line($"statsd-filter: debug: {command}: the supervisor of {child} has not started yet");
            return;
        }

        TraceLog.Line($"statsd-filter: debug: {command}: crashing {supervisor.Name}/{child}");
        Fiber.Fork(
            sw,
            async () =>
            {
                try
                {
                    if (!await supervisor.CrashChildAsync(child, new InjectedCrashException($"crash injected by {command}")))
                    {
                        TraceLog.Line($"statsd-filter: debug: {supervisor.Name}/{child} is not running");
                    }
                }
                catch (SupervisorNotRunningException)
                {
                    // Shutting down.
                }
            },
            "debug-command");
    }

    /// <summary>After a stop, processes the datagrams already queued on <paramref name="udp"/>, then returns.</summary>
    /// <remarks>
    /// A receive that completes at once takes a queued datagram; the first receive that would wait means the queue is
    /// empty: the yielding fiber then wins the race and cancels it. A sender that keeps sending could keep the queue
    /// non-empty, so the drain also stops after <see cref="StopDrainBudget"/>. With several domains on one shared socket
    /// each drains concurrently; each datagram is taken by exactly one of them.
    /// </remarks>
    private async Task DrainAsync(DatagramSocket udp, LineProcessor processor)
    {
        UpstreamSender sender = processor.Sender;
        byte[] buffer = GC.AllocateUninitializedArray<byte>(StatsdLineSplitter.DatagramReceiveBufferSize, pinned: true);
        TimeSpan deadline = env.MonoClock.Now + StopDrainBudget;
        await Fiber.FirstAsync(
            async () =>
            {
                while (env.MonoClock.Now < deadline)
                {
                    int length = await udp.ReceiveAsync(buffer);
                    processor.ProcessDatagram(buffer.AsSpan(0, length), truncated: length == buffer.Length);
                    if (sender.HasPendingSends)
                    {
                        await sender.CompletePendingAsync();
                    }
                }
            },
            async () => await Fiber.YieldAsync());
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

    /// <summary>Serves one TCP connection, and says so (at most once per interval) when it took the last connection slot.</summary>
    private async Task CountedTcpAsync(StreamSocket conn, LineProcessor processor)
    {
        int open = Interlocked.Increment(ref _tcpOpen);
        try
        {
            int limit = _tcpConnectionsPerDomain * options.Threads;
            long now = Environment.TickCount64;
            long last = Interlocked.Read(ref _tcpFullReportedAt);
            if (open >= limit && (last == long.MinValue || now - last >= (long)ConnectionLimitReportInterval.TotalMilliseconds)
                && Interlocked.CompareExchange(ref _tcpFullReportedAt, now, last) == last)
            {
                TraceLog.Line(string.Create(CultureInfo.InvariantCulture,
                    $"statsd-filter: tcp: connection limit reached ({open} open); further clients wait until one closes " +
                    $"(reported at most every {ConnectionLimitReportInterval.TotalSeconds:0}s)"));
            }

            await HandleTcpAsync(conn, processor);
        }
        finally
        {
            Interlocked.Decrement(ref _tcpOpen);
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
            // The delta has been taken from the counters: a stop arriving now must not cancel its send (it would be
            // lost: the final delta at shutdown only covers what came after it).
            await Cancel.ProtectAsync(() => metrics.FlushAsync().AsTask());
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

/// <summary>The failure a <c>_debug.crash_*</c> command injects into a supervised child.</summary>
internal sealed class InjectedCrashException(string message) : Exception(message);
