using System.Globalization;
using System.Net;
using EioSharp.Domains;
using EioSharp.Net;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Jobs;

/// <summary>Where heavy Fibonacci jobs run.</summary>
internal enum JobsMode
{
    /// <summary>On an <see cref="ExecutorPool"/> of worker domains with a bounded queue (BUSY when full): the design under test.</summary>
    Pool,

    /// <summary>On the I/O domain itself: the naive baseline the seed warns against.</summary>
    Inline,

    /// <summary>On the .NET thread pool with <c>Task.Run</c>, unbounded: idiomatic .NET.</summary>
    ThreadPool,
}

/// <summary>Server options.</summary>
internal sealed record JobsOptions
{
    public int Port { get; init; } = 8080;

    /// <summary>A file to stream the fiber trace to (<c>--trace</c>), or null.</summary>
    public string? TraceFile { get; init; }

    /// <summary>The EioSharp backend (<c>--backend</c>; default <see cref="EioBackend.Auto"/>, the best available).</summary>
    public EioBackend Backend { get; init; } = EioBackend.Auto;

    public string Bind { get; init; } = "127.0.0.1";

    public int Workers { get; init; } = Math.Max(1, Environment.ProcessorCount - 1);

    public int Queue { get; init; } = 64;

    public JobsMode Mode { get; init; } = JobsMode.Pool;

    /// <summary>Requests with n at most this run inline on the I/O domain in every mode (fib 20 is about 20,000 calls: microseconds).</summary>
    public int InlineMax { get; init; } = 20;

    public int MaxConnections { get; init; } = 10_000;

    /// <summary>Most id-tagged requests of one connection in flight at once; reading pauses beyond it.</summary>
    public int MaxInFlightPerConnection { get; init; } = 128;

    /// <summary>On stop, how long requests already read may still finish and be answered before everything is cancelled.</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>Counters, safe across domains.</summary>
internal sealed class JobsStats
{
    private readonly long[] _lagSamples = new long[16384];
    private long _lagCount;
    public long Completed;
    public long Busy;
    public long Errors;
    public long Heavy;

    public void AddLag(TimeSpan lag)
    {
        long i = Interlocked.Increment(ref _lagCount) - 1;
        _lagSamples[i % _lagSamples.Length] = lag.Ticks;
    }

    public string Format()
    {
        long count = Math.Min(Volatile.Read(ref _lagCount), _lagSamples.Length);
        var samples = _lagSamples.AsSpan(0, (int)count).ToArray();
        Array.Sort(samples);
        double P(double q) => samples.Length == 0 ? 0 : samples[Math.Min(samples.Length - 1, (int)(q * samples.Length))] / 10.0;
        return string.Create(CultureInfo.InvariantCulture,
            $"STATS completed={Volatile.Read(ref Completed)} heavy={Volatile.Read(ref Heavy)} busy={Volatile.Read(ref Busy)} errors={Volatile.Read(ref Errors)} lag_p50_us={P(0.5):F0} lag_p99_us={P(0.99):F0} lag_max_us={(samples.Length == 0 ? 0 : samples[^1] / 10.0):F0}\n");
    }

    public void ResetLag() => Interlocked.Exchange(ref _lagCount, 0);
}

/// <summary>The CPU job server (the Eio multicore job-processor design): the I/O domain parses and replies; heavy work runs elsewhere.</summary>
internal static class JobsServer
{
    private static readonly TimeSpan s_lagProbe = TimeSpan.FromMilliseconds(1);

    public static async Task RunAsync(Stdenv env, JobsOptions options, Promise<bool> stop, Action<string> log, Action<EndPoint>? onListening = null)
    {
        var stats = new JobsStats();
        var address = IPAddress.TryParse(options.Bind, out var ip) ? ip : (await env.Net.GetAddrInfoAsync(options.Bind, 0))[0].Address;
        await Switch.RunAsync(async sw =>
        {
            var listener = env.Net.Listen(sw, new IPEndPoint(address, options.Port), backlog: 511);
            var pool = options.Mode == JobsMode.Pool ? new ExecutorPool(sw, options.Workers, env.DomainManager, options.Queue) : null;
            Fiber.ForkDaemon(sw, () => MeasureLoopLagAsync(env.MonoClock, stats), "loop-lag");
            log($"EioSharp.Jobs ready: listening on {listener.ListeningEndPoint}, mode {options.Mode.ToString().ToLowerInvariant()}" +
                (pool is null ? string.Empty : $", {options.Workers} worker domain(s), queue {options.Queue}") + $", backend {env.Backend}.");
            onListening?.Invoke(listener.ListeningEndPoint);

            // Connections must never take the last file descriptors: the runtime needs two for every thread it starts (the
            // thread pool starts them at any time), and a thread it cannot start ends the process ("Out of memory.";
            // docs/rationale.md). Clients over the limit wait in the kernel's backlog until a connection closes.
            int capacity = ListeningSocket.ConnectionCapacity();
            int maxConnections = Math.Min(options.MaxConnections, capacity);
            if (maxConnections < options.MaxConnections)
            {
                log($"WARNING: at most {maxConnections} connection(s) instead of {options.MaxConnections}: the file-descriptor limit less those open and " +
                    $"{ListeningSocket.DescriptorReserve} kept for the runtime allows {capacity}; raise it with ulimit -n.");
            }

            int open = 0;
            long fullReportedAt = long.MinValue;
            async Task CountedAsync(StreamSocket conn)
            {
                int now = Interlocked.Increment(ref open);
                try
                {
                    // At most one line per 10 s while clients wait for a free slot.
                    long ms = Environment.TickCount64;
                    long last = Interlocked.Read(ref fullReportedAt);
                    if (now >= maxConnections && (last == long.MinValue || ms - last >= 10_000)
                        && Interlocked.CompareExchange(ref fullReportedAt, ms, last) == last)
                    {
                        log($"WARNING: connection limit reached ({now} open); further clients wait until one closes (reported at most every 10s).");
                    }

                    await HandleAsync(conn, options, pool, stats, stop);
                }
                finally
                {
                    Interlocked.Decrement(ref open);
                }
            }

            // Graceful stop: accepting stops at once; each connection stops reading, answers the requests it already read and
            // closes; after the grace period whatever is left is cancelled.
            await Fiber.FirstAsync(
                () => listener.RunServerAsync(
                    (conn, peer) => CountedAsync(conn),
                    ex => log(ListeningSocket.PeerOf(ex) is { } peer ? $"WARNING: connection from {peer}: {ex.Message}" : $"WARNING: {ex.Message}"),
                    maxConnections: maxConnections,
                    stop: stop),
                async () =>
                {
                    await stop.AwaitAsync();
                    await env.MonoClock.SleepAsync(options.StopGrace);
                    log("WARNING: stop grace period over; cancelling the remaining connections.");
                });
        }, "jobs-server");
        log("EioSharp.Jobs stopped.");
    }

    /// <summary>How late the I/O domain runs a fiber that asked to sleep 1 ms: the "loop lag" a blocked loop would show.</summary>
    private static async Task MeasureLoopLagAsync(MonoClock clock, JobsStats stats)
    {
        while (true)
        {
            var before = clock.Now;
            await clock.SleepAsync(s_lagProbe);
            var lag = clock.Now - before - s_lagProbe;
            stats.AddLag(lag < TimeSpan.Zero ? TimeSpan.Zero : lag);
        }
    }

    private static async Task HandleAsync(StreamSocket conn, JobsOptions options, ExecutorPool? pool, JobsStats stats, Promise<bool> stop)
    {
        var replies = new AsyncQueue<string>(options.MaxInFlightPerConnection * 2);
        var inFlight = new FiberSemaphore(options.MaxInFlightPerConnection);
        try
        {
            await Switch.RunAsync(async sw =>
            {
                // The writer is an ordinary fiber, not a daemon: it ends once the queue is closed and drained, so replies to
                // requests read before the client's end of input (e.g. `echo 30 | nc`) are all written before the close.
                Fiber.Fork(sw, () => WriteRepliesAsync(conn, replies), "replies");
                await Switch.RunAsync(
                    jobs => Fiber.FirstAsync(
                        () => ReadRequestsAsync(jobs, conn, options, pool, stats, replies, inFlight),
                        async () => await stop.AwaitAsync()).AsTask(),
                    "jobs-connection");
                replies.Close();
            }, "jobs-connection-writer");
        }
        catch (Exception ex) when (IsDisconnect(ex))
        {
            // The client went away.
        }
    }

    /// <summary>True for the errors a client that went away causes (possibly both the reader and the writer saw it).</summary>
    private static bool IsDisconnect(Exception ex) => ex switch
    {
        NetException or ObjectDisposedException => true,
        MultipleException m => m.InnerExceptions.All(e => IsDisconnect(e) || e is CancelledException),
        _ => false,
    };

    private static async Task ReadRequestsAsync(
        Switch sw, StreamSocket conn, JobsOptions options, ExecutorPool? pool, JobsStats stats, AsyncQueue<string> replies, FiberSemaphore inFlight)
    {
        var reader = new LineReader(conn, JobsProtocol.MaxLineLength);
        while (true)
        {
            string? line;
            try
            {
                line = await reader.ReadLineAsync();
            }
            catch (InvalidDataException e)
            {
                await replies.AddAsync($"Error: {e.Message}\n");
                return;
            }

            if (line is null)
            {
                return;
            }

            if (line.Length == 0)
            {
                continue;
            }

            var request = JobsProtocol.Parse(line);
            switch (request.Kind)
            {
                case JobsRequestKind.Ping:
                    await replies.AddAsync(request.Id is null ? "PONG\n" : $"{request.Id} PONG\n");
                    break;
                case JobsRequestKind.Stats:
                    await replies.AddAsync(stats.Format());
                    break;
                case JobsRequestKind.StatsReset:
                    var snapshot = stats.Format();
                    stats.ResetLag();
                    await replies.AddAsync(snapshot);
                    break;
                case JobsRequestKind.Invalid:
                    Interlocked.Increment(ref stats.Errors);
                    await replies.AddAsync(JobsProtocol.Fail(request, request.Error!));
                    break;
                default:
                    if (request.Id is null || Fibonacci.IsCheap(request.N, options.InlineMax))
                    {
                        // The seed form is answered in order; a cheap tagged request is answered at once, without a fiber of its own.
                        await replies.AddAsync(await RunJobAsync(request, options, pool, stats));
                    }
                    else
                    {
                        await inFlight.AcquireAsync();
                        Fiber.Fork(sw, async () =>
                        {
                            try
                            {
                                await replies.AddAsync(await RunJobAsync(request, options, pool, stats));
                            }
                            finally
                            {
                                inFlight.Release();
                            }
                        });
                    }

                    break;
            }
        }
    }

    private static async Task<string> RunJobAsync(JobsRequest request, JobsOptions options, ExecutorPool? pool, JobsStats stats)
    {
        try
        {
            return await ComputeAsync(request, options, pool, stats);
        }
        catch (Exception ex) when (ex is not CancelledException)
        {
            Interlocked.Increment(ref stats.Errors);
            return JobsProtocol.Fail(request, ex.Message);
        }
    }

    private static async Task<string> ComputeAsync(JobsRequest request, JobsOptions options, ExecutorPool? pool, JobsStats stats)
    {
        int n = request.N;
        long value;
        if (options.Mode == JobsMode.Inline || Fibonacci.IsCheap(n, options.InlineMax))
        {
            value = Fibonacci.Compute(n);
        }
        else if (options.Mode == JobsMode.ThreadPool)
        {
            value = await Task.Run(() => Fibonacci.Compute(n));
            Interlocked.Increment(ref stats.Heavy);
        }
        else
        {
            var result = await pool!.TrySubmitAsync(() => Task.FromResult(Fibonacci.Compute(n)), weight: 1.0);
            if (result.Status == SubmitStatus.Rejected)
            {
                Interlocked.Increment(ref stats.Busy);
                return JobsProtocol.Busy(request);
            }

            if (result.Status == SubmitStatus.Failed)
            {
                Interlocked.Increment(ref stats.Errors);
                return JobsProtocol.Fail(request, result.Error!.Message);
            }

            value = result.Value;
            Interlocked.Increment(ref stats.Heavy);
        }

        Interlocked.Increment(ref stats.Completed);
        return JobsProtocol.Ok(request, value);
    }

    /// <summary>Writes queued replies, coalescing whatever is queued into one write, until the queue is closed and drained.</summary>
    private static async Task WriteRepliesAsync(StreamSocket conn, AsyncQueue<string> replies)
    {
        var batch = new List<string>();
        byte[] buffer = new byte[4096];
        while (true)
        {
            try
            {
                batch.Add(await replies.TakeAsync());
            }
            catch (StreamClosedException)
            {
                return;
            }

            replies.TryTakeMany(batch);
            int length = 0;
            foreach (var r in batch)
            {
                if (buffer.Length - length < r.Length)
                {
                    Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + r.Length));
                }

                length += System.Text.Encoding.ASCII.GetBytes(r, buffer.AsSpan(length));
            }

            batch.Clear();
            await conn.WriteAsync(buffer.AsMemory(0, length));
        }
    }
}
