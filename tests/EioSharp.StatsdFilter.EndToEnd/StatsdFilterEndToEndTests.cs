using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace EioSharp.StatsdFilter.EndToEnd;

/// <summary>The proxy as a process on loopback, driven by the npm hot-shots client, with a UDP socket as the upstream.</summary>
public partial class StatsdFilterEndToEndTests
{
    private const string Blocklist = @"blocked.*,tag:env:dev,regex:secret\.";
    private const string MetricsPrefix = "statsd_filter";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>An oracle written independently of FilterRules: the name is the event title, the service-check name, or the text before ':'.</summary>
    private static bool IsBlocked(string line)
    {
        string name = line.StartsWith("_e{", StringComparison.Ordinal) ? line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Split('|')[0]
            : line.StartsWith("_sc|", StringComparison.Ordinal) ? line.Split('|')[1]
            : line[..line.IndexOf(':', StringComparison.Ordinal)];
        string[] tags = line.Split('|').Where(f => f.StartsWith('#')).SelectMany(f => f[1..].Split(',')).ToArray();
        return name.StartsWith("blocked.", StringComparison.Ordinal) || name.StartsWith("secret.", StringComparison.Ordinal) || tags.Contains("env:dev");
    }

    private static List<string> Sorted(IEnumerable<string> lines) => [.. lines.Order(StringComparer.Ordinal)];

    [Fact]
    public async Task HotShots_over_udp_and_tcp_reaches_the_upstream_filtered_and_unchanged()
    {
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--blocklist", Blocklist, "--tcp", "--threads", "2", "--metrics-interval", "300ms", "--metrics-prefix", MetricsPrefix);

        var sent = new List<string>();
        sent.AddRange(await HotShots.SendAsync(filter.UdpPort, "udp", 0, "udp"));          // one line per datagram
        sent.AddRange(await HotShots.SendAsync(filter.UdpPort, "udp", 512, "udpbuffered")); // several lines per datagram
        sent.AddRange(await HotShots.SendAsync(filter.UdpPort, "tcp", 0, "tcp"));           // newline-framed stream
        List<string> kept = [.. sent.Where(l => !IsBlocked(l))];
        Assert.True(kept.Count > 150 && kept.Count < sent.Count, $"{kept.Count} of {sent.Count} lines kept");
        Assert.Contains(sent, l => l.StartsWith("_e{", StringComparison.Ordinal) && !IsBlocked(l));
        Assert.Contains(sent, l => l.StartsWith("_sc|kept.service|1|", StringComparison.Ordinal) && l.Contains("|m:slow | degraded", StringComparison.Ordinal));

        List<string> Forwarded() => [.. upstream.Lines.Where(l => !l.StartsWith(MetricsPrefix + ".", StringComparison.Ordinal))];
        bool arrived = await Poll.UntilAsync(() => Forwarded().Count >= kept.Count, Patience);
        Assert.True(arrived, $"only {Forwarded().Count} of {kept.Count} kept lines arrived.\nstderr:\n{filter.StandardError}");

        // A TCP client that stays connected must not hold up the shutdown.
        using var idle = new TcpClient();
        await idle.ConnectAsync(IPAddress.Loopback, filter.UdpPort);
        await idle.GetStream().WriteAsync(Encoding.ASCII.GetBytes("kept.open:1|c\n"));
        Assert.True(await Poll.UntilAsync(() => Forwarded().Contains("kept.open:1|c"), Patience));
        kept.Add("kept.open:1|c");

        Assert.Equal(Sorted(kept), Sorted(Forwarded()));
        Assert.All(upstream.Datagrams, d => Assert.True(Encoding.UTF8.GetByteCount(d) <= 1432, $"datagram of {d.Length} bytes"));

        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();
        Assert.Equal(sent.Count + 1, summary["received"]);
        Assert.Equal(kept.Count, summary["forwarded"]);
        Assert.Equal(sent.Count + 1 - kept.Count, summary["dropped_blocked"]);
        Assert.Equal(0, summary["dropped_malformed"]);
        Assert.Equal(0, summary["send_errors"]);

        // Self-metrics: the periodic deltas plus the final one sent at shutdown add up to the totals.
        long Sum(string counter) => upstream.Lines
            .Where(l => l.StartsWith($"{MetricsPrefix}.{counter}:", StringComparison.Ordinal) && l.EndsWith("|c", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..^2], CultureInfo.InvariantCulture));
        Assert.True(await Poll.UntilAsync(() => Sum("received") == summary["received"], Patience), $"self-metrics received={Sum("received")}");
        Assert.Equal(summary["forwarded"], Sum("forwarded"));
        Assert.Equal(summary["dropped_blocked"], Sum("dropped_blocked"));
        Assert.Equal(0, Sum("send_errors"));
    }

    [Fact]
    public async Task Malformed_and_over_long_lines_are_counted_and_dropped()
    {
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--tcp", "--threads", "1", "--metrics-interval", "0");
        using (var udp = new UdpClient())
        {
            // Without --enable-debug-commands, a _debug.* line is an ordinary metric.
            await udp.SendAsync(Encoding.ASCII.GetBytes("good.a:1|c\nno-colon\nbad.type:1|x\r\ngood.b:2|g\n_debug.crash_forwarder:1|c"), new IPEndPoint(IPAddress.Loopback, filter.UdpPort));
        }

        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, filter.UdpPort);
            string longLine = "long.line:" + new string('1', 9000) + "|c";
            await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes($"good.c:3|ms\n{longLine}\ngood.d:4|h"));
        }

        Assert.True(await Poll.UntilAsync(() => upstream.Lines.Count >= 5, Patience), string.Join(" / ", upstream.Lines));
        Assert.Equal(["_debug.crash_forwarder:1|c", "good.a:1|c", "good.b:2|g", "good.c:3|ms", "good.d:4|h"], Sorted(upstream.Lines));
        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();
        Assert.Equal(7, summary["received"]);
        Assert.Equal(2, summary["dropped_malformed"]);
        Assert.Equal(1, summary["truncated"]);
        Assert.Equal(5, summary["forwarded"]);
        Assert.DoesNotContain("supervisor", filter.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upstream_down_counts_send_errors_and_ingest_continues()
    {
        // Hold the upstream port while it is "down", so that no other socket (tests run in parallel; the proxy's own
        // ephemeral sender) can take it: a UDP socket connected elsewhere matches no datagram from the proxy, so Linux
        // still answers each with ICMP "port unreachable", exactly as for a port nobody holds.
        var holder = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)holder.LocalEndPoint!).Port;
        holder.Connect(new IPEndPoint(IPAddress.Loopback, 9));

        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", port.ToString(CultureInfo.InvariantCulture),
            "--threads", "1", "--metrics-interval", "0");
        var proxy = new IPEndPoint(IPAddress.Loopback, filter.UdpPort);
        using var client = new UdpClient();
        int sentCount = 0;

        // Nothing listens upstream: each datagram draws an ICMP "port unreachable", reported on the next send.
        for (int i = 0; i < 40; i++)
        {
            await client.SendAsync(Encoding.ASCII.GetBytes($"down.{i}:1|c"), proxy);
            sentCount++;
            await Task.Delay(10);
        }

        // Wait until the proxy has seen a send fail before the upstream comes back: a loaded proxy may otherwise handle
        // every "down" line only after the upstream is back, and then no send fails. SIGUSR1 prints the running totals;
        // each poll sends one more "down" line, because the ICMP error of one datagram fails the *next* send.
        long SendErrorsSoFar()
        {
            MatchCollection stats = RunningStats().Matches(filter.StandardOutput);
            return stats.Count == 0 ? 0 : long.Parse(stats[^1].Groups[1].Value, CultureInfo.InvariantCulture);
        }

        bool failing = await Poll.UntilAsync(() =>
        {
            if (SendErrorsSoFar() > 0)
            {
                return true;
            }

            client.Send(Encoding.ASCII.GetBytes($"down.{sentCount}:1|c"), proxy);
            sentCount++;
            filter.Process.Signal(10); // SIGUSR1
            return false;
        }, Patience);
        Assert.True(failing, $"no send failed while the upstream was down.\nstdout:\n{filter.StandardOutput}\nstderr:\n{filter.StandardError}");
        int downCount = sentCount;

        // The upstream comes back: lines flow again, so ingest never stopped.
        holder.Dispose();
        using var upstream = new UdpCapture(port);
        bool flowing = await Poll.UntilAsync(() =>
        {
            client.Send(Encoding.ASCII.GetBytes($"up.{sentCount}:1|c"), proxy);
            sentCount++;
            return upstream.Lines.Any(l => l.StartsWith("up.", StringComparison.Ordinal));
        }, Patience);
        Assert.True(flowing, $"no line reached the restarted upstream.\nstderr:\n{filter.StandardError}");

        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();

        // Guaranteed: on loopback a datagram is in the proxy's socket queue once Send returns, and a graceful stop
        // processes what is queued, so every line sent before SIGTERM is received (the flake this replaced: a datagram
        // still queued at shutdown was never counted).
        Assert.Equal(sentCount, summary["received"]);
        Assert.True(summary["send_errors"] > 0, filter.StandardOutput);
        Assert.True(summary["forwarded"] >= 1, filter.StandardOutput);
        Assert.Equal(0, summary["dropped_blocked"] + summary["dropped_malformed"]);

        // "forwarded" counts lines the kernel accepted; while nothing listened, a send that the kernel accepted was still
        // lost (the ICMP error fails the next send), so the upstream saw at most that many. Which "down." lines were lost
        // is not guaranteed (a loaded proxy may handle the last ones after the upstream is back), only that some were.
        // The totals SIGUSR1 printed on the way are the same counters: the final summary is at least as large.
        Assert.InRange(upstream.Lines.Count, 1, summary["forwarded"]);
        Assert.True(upstream.Lines.Count(l => l.StartsWith("down.", StringComparison.Ordinal)) < downCount);
    }

    [Fact]
    public async Task Seed_environment_configuration_drops_lines_starting_with_a_blocklist_entry()
    {
        // The seed's exact configuration, as environment variables only: each blocklist entry is a literal line prefix.
        using var upstream = new UdpCapture();
        var environment = new Dictionary<string, string>
        {
            ["num_threads"] = "1",
            ["listen_port"] = "0",
            ["target_host"] = "127.0.0.1",
            ["target_port"] = upstream.Port.ToString(CultureInfo.InvariantCulture),
            ["blocklist"] = "foo,bar",
        };
        using FilterProcess filter = await FilterProcess.StartAsync(environment, "--metrics-interval", "0");
        string[] lines = ["foo.x:1|c", "bar.y:3|g", "foobar:1|c", "xfoo:1|c", "keep:1|c", "foo:2|ms", "barn.z:1|c", "xbar:1|c"];
        using (var udp = new UdpClient())
        {
            foreach (string line in lines)
            {
                await udp.SendAsync(Encoding.ASCII.GetBytes(line), new IPEndPoint(IPAddress.Loopback, filter.UdpPort));
            }
        }

        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();
        Assert.Equal(lines.Length, summary["received"]);
        Assert.Equal(5, summary["dropped_blocked"]);
        Assert.True(await Poll.UntilAsync(() => upstream.Lines.Count >= 3, Patience), string.Join(" / ", upstream.Lines));
        Assert.Equal(["keep:1|c", "xbar:1|c", "xfoo:1|c"], Sorted(upstream.Lines));
    }

    [Fact]
    public async Task Catastrophic_regex_and_a_flood_of_matching_shaped_lines_do_not_delay_other_metrics()
    {
        // (a+)+b on a name of n a's takes 2^n steps on a backtracking engine; before NonBacktracking each such line
        // cost the 100 ms match timeout, so a small flood delayed every other metric by seconds.
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--blocklist", "regex:(a+)+b", "--threads", "1", "--metrics-interval", "0");
        var proxy = new IPEndPoint(IPAddress.Loopback, filter.UdpPort);
        string evil = new('a', 40);
        byte[] floodDatagram = Encoding.ASCII.GetBytes(string.Join('\n', Enumerable.Repeat($"{evil}:1|c", 20)));

        using var flooder = new UdpClient();
        using var prober = new UdpClient();
        var latencies = new List<TimeSpan>();
        for (int round = 0; round < 20; round++)
        {
            for (int i = 0; i < 25; i++)
            {
                await flooder.SendAsync(floodDatagram, proxy);
            }

            string probe = $"probe.{round}:1|c";
            long sentAt = Stopwatch.GetTimestamp();
            await prober.SendAsync(Encoding.ASCII.GetBytes(probe), proxy);
            Assert.True(await Poll.UntilAsync(() => upstream.ArrivalOf(probe) is not null, Patience), $"{probe} never arrived");
            latencies.Add(Stopwatch.GetElapsedTime(sentAt, upstream.ArrivalOf(probe)!.Value));
        }

        // 10,000 matching-shaped lines went through: with a backtracking engine that is 1,000 s of timeouts, and the first
        // probe alone waits behind 500 of them (50 s). The bound is half of one forwarding interval of a StatsD server (its
        // default 10 s flush interval), which leaves room for a CI machine loaded by parallel builds.
        TimeSpan worst = latencies.Max();
        Assert.True(worst < TimeSpan.FromSeconds(5), $"a probe waited {worst.TotalMilliseconds:F0} ms; all: {string.Join(", ", latencies.Select(l => l.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture)))}");
        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();
        Assert.Equal(20 * 25 * 20 + 20, summary["received"]);
        Assert.Equal(0, summary["dropped_blocked"]);
    }

    [Fact]
    public async Task Regex_timeouts_drop_the_line_and_are_counted_apart()
    {
        // A backreference keeps the pattern on the backtracking engine (100 ms match timeout); on 40 a's and an x it
        // cannot finish in time: the line is dropped (fail closed) and counted in regex_timeouts as well as dropped_blocked.
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--blocklist", @"regex:(a)\1*(a+)+$,blocked", "--threads", "1", "--metrics-interval", "0");
        string evil = new string('a', 40) + "x:1|c";
        string[] lines = [evil, "keep:1|c", evil, "blocked:1|c", evil];
        using (var udp = new UdpClient())
        {
            foreach (string line in lines)
            {
                await udp.SendAsync(Encoding.ASCII.GetBytes(line), new IPEndPoint(IPAddress.Loopback, filter.UdpPort));
            }
        }

        Assert.True(await Poll.UntilAsync(() => upstream.Lines.Count >= 1, Patience), string.Join(" / ", upstream.Lines));
        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();
        Assert.Equal(5, summary["received"]);
        Assert.Equal(4, summary["dropped_blocked"]);
        Assert.Equal(3, summary["regex_timeouts"]);
        Assert.Equal(["keep:1|c"], upstream.Lines);
    }

    [Fact]
    public async Task Forwarder_crash_is_restarted_by_its_supervisor_and_service_continues()
    {
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--blocklist", Blocklist, "--threads", "1", "--metrics-interval", "0", "--enable-debug-commands");

        // Before the crash: kept lines arrive upstream.
        List<string> sent = await HotShots.SendAsync(filter.UdpPort, "udp", 512, "before");
        List<string> kept = [.. sent.Where(l => !IsBlocked(l))];
        Assert.True(await Poll.UntilAsync(() => upstream.Lines.Count >= kept.Count, Patience), $"only {upstream.Lines.Count} of {kept.Count} lines arrived");
        Assert.DoesNotContain("restarting", filter.StandardError, StringComparison.Ordinal);

        // Inject a crash of the forwarder through the ingest socket; its supervisor restarts it and says so.
        using (var udp = new UdpClient())
        {
            await udp.SendAsync(Encoding.ASCII.GetBytes("_debug.crash_forwarder:1|c"), new IPEndPoint(IPAddress.Loopback, filter.UdpPort));
        }

        bool restarted = await Poll.UntilAsync(
            () => filter.StandardError.Contains("supervisor forward-0: forwarder exited (failed: InjectedCrashException: crash injected by _debug.crash_forwarder)", StringComparison.Ordinal)
                && filter.StandardError.Contains("supervisor forward-0: restarting forwarder", StringComparison.Ordinal)
                && filter.StandardError.Contains("supervisor forward-0: forwarder started", StringComparison.Ordinal),
            Patience);
        Assert.True(restarted, $"no restart in the log.\nstderr:\n{filter.StandardError}");

        // After the restart: service continued, over UDP and TCP, and lines arrive unchanged.
        List<string> after = await HotShots.SendAsync(filter.UdpPort, "udp", 512, "after");
        sent.AddRange(after);
        kept.AddRange(after.Where(l => !IsBlocked(l)));
        Assert.True(await Poll.UntilAsync(() => upstream.Lines.Count >= kept.Count, Patience), $"only {upstream.Lines.Count} of {kept.Count} lines arrived after the restart.\nstderr:\n{filter.StandardError}");
        Assert.Equal(Sorted(kept), Sorted(upstream.Lines));

        Assert.Equal(0, await filter.TerminateAsync(Patience));
        Dictionary<string, long> summary = filter.Summary();
        Assert.Equal(sent.Count, summary["received"]); // the debug command is not a metric
        Assert.Equal(kept.Count, summary["forwarded"]);
        Assert.Equal(0, summary["send_errors"]);
    }

    [Fact]
    public async Task Forwarder_crashing_too_often_stops_the_proxy_with_an_error()
    {
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--threads", "1", "--metrics-interval", "0", "--enable-debug-commands");
        var proxy = new IPEndPoint(IPAddress.Loopback, filter.UdpPort);
        using var udp = new UdpClient();

        // More than 10 restarts within 10 s: the supervisor gives up, and the proxy stops. A command that arrives while the
        // forwarder restarts crashes nothing, so crash it until the proxy stops (not a fixed number of times: a loaded
        // proxy may take a burst of commands during one restart).
        var deadline = DateTime.UtcNow + Patience;
        while (!filter.HasExited && DateTime.UtcNow < deadline)
        {
            await udp.SendAsync(Encoding.ASCII.GetBytes("_debug.crash_forwarder:1|c"), proxy);
            await Task.Delay(30);
        }

        Assert.Equal(3, await filter.WaitForExitAsync(Patience));
        Assert.Contains("supervisor forward-0: restart intensity exceeded; shutting down", filter.StandardError, StringComparison.Ordinal);
        Assert.Contains("statsd-filter: fatal: Supervisor 'forward-0': more than 10 restart(s) within 10s", filter.StandardError, StringComparison.Ordinal);
        Assert.True(filter.StandardError.Split("restarting forwarder").Length - 1 >= 10, filter.StandardError);
    }

    // With --listen-port 0 and --tcp the proxy listens on TCP on the number the kernel gave its UDP socket, which another
    // socket may hold: FilterProcess then starts it again, on the strength of the proxy's last line. That line was missing
    // when the test kit saw the exit before it had read the output (3 starts in 100 under load): the start failed instead
    // (the likely cause of ci48's failure of Malformed_and_over_long_lines_are_counted_and_dropped on io_uring).
    [Fact]
    public void A_tcp_port_in_use_fails_the_start_with_the_reason()
    {
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        holder.Listen();
        string port = ((IPEndPoint)holder.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture);
        ServerStartInfo info = FilterProcess.StartInfo(
            null, null, "--listen-port", port, "--target-host", "127.0.0.1", "--target-port", "9", "--tcp", "--threads", "1", "--metrics-interval", "0");

        var e = Assert.Throws<InvalidOperationException>(() => ServerProcess.Start(info));
        Assert.Contains("Address already in use", e.Message, StringComparison.Ordinal); // the TCP listen's (or, rarely, the UDP bind's)
    }

    /// <summary>The running totals the proxy prints on SIGUSR1: <c>statsd-filter: stats: received=... send_errors=N ...</c>.</summary>
    [GeneratedRegex(@"^statsd-filter: stats: received=.* send_errors=(\d+)", RegexOptions.Multiline)]
    private static partial Regex RunningStats();
}

/// <summary>The proxy under a low RLIMIT_NOFILE: TCP connections stop short of the limit, so the runtime keeps the descriptors
/// it needs (a thread it cannot start ends the process with "Out of memory."), and waiting clients are served once others leave.</summary>
public class StatsdFilterFileDescriptorTests
{
    private const int Limit = 200;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    // Once quarantined: the proxy died with "Out of memory." when connections took every descriptor and the runtime then
    // failed to start a thread (its pipe2 got EMFILE). Reproduced by holding the descriptors for a minute; see docs/rationale.md.
    [Fact]
    public async Task Out_of_file_descriptors_tcp_stops_short_of_the_limit_logs_and_serves_again_once_clients_leave()
    {
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            null,
            Limit,
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture),
            "--tcp", "--threads", "1", "--metrics-interval", "0");

        // Each client sends one line on TCP; it is served once its line reaches the upstream.
        using var clients = FdExhaustion.Exhaust(
            filter.UdpPort,
            (socket, i) => socket.Send(Encoding.ASCII.GetBytes($"fd.{i}:1|c\n")),
            (socket, i) => Poll.Until(() => upstream.ArrivalOf($"fd.{i}:1|c") is not null, TimeSpan.FromSeconds(2)),
            exhausted: () => filter.StandardError.Contains("connection limit reached", StringComparison.Ordinal),
            maxClients: Limit,
            answerTimeout: TimeSpan.FromSeconds(2));
        Assert.True(clients.Stuck is not null, $"all {clients.Served.Count} clients were served under a limit of {Limit} descriptors");
        int stuck = clients.Served.Count;

        // Exactly the announced capacity is served (the limit less the descriptors open at start and the runtime's reserve
        // of 64); the accept loop never ran out (no EMFILE).
        Match announced = Regex.Match(filter.StandardOutput + filter.StandardError, @"at most (\d+) connection\(s\) per domain");
        Assert.True(announced.Success, filter.StandardOutput + filter.StandardError);
        int capacity = int.Parse(announced.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(capacity, 1, Limit - 64 - 10);
        Assert.Equal(capacity, stuck);
        Assert.Contains($"connection limit reached ({capacity} open)", filter.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("lack of resources", filter.StandardError, StringComparison.Ordinal);
        Assert.False(filter.HasExited, filter.StandardError);

        // UDP ingest never stopped.
        using (var udp = new UdpClient())
        {
            await udp.SendAsync(Encoding.ASCII.GetBytes("udp.during:1|c"), new IPEndPoint(IPAddress.Loopback, filter.UdpPort));
        }

        Assert.True(await Poll.UntilAsync(() => upstream.ArrivalOf("udp.during:1|c") is not null, Patience));

        // Clients leave: the waiting client is accepted and its line forwarded; a new client is served too.
        clients.CloseServed(10);
        Assert.True(await Poll.UntilAsync(() => upstream.ArrivalOf($"fd.{stuck}:1|c") is not null, Patience), filter.StandardError);
        using (var fresh = new TcpClient())
        {
            await fresh.ConnectAsync(IPAddress.Loopback, filter.UdpPort);
            await fresh.GetStream().WriteAsync(Encoding.ASCII.GetBytes("fresh:1|c\n"));
            Assert.True(await Poll.UntilAsync(() => upstream.ArrivalOf("fresh:1|c") is not null, Patience));
        }

        clients.Dispose();
        Assert.Equal(0, await filter.TerminateAsync(Patience));
    }

    // Issue 15: the proxy runs on the backend asked for. scripts/test.sh runs this project once more per backend with
    // EIOSHARP_BACKEND set (it overrides the proxy's default --backend auto); without it, auto takes io_uring or epoll on
    // Linux x64. The ready output names the backend in use; a run that silently fell back would fail here.
    [Fact]
    public async Task The_proxy_runs_on_the_backend_asked_for()
    {
        string? asked = Environment.GetEnvironmentVariable("EIOSHARP_BACKEND")?.Trim().ToLowerInvariant() switch
        {
            null or "" or "auto" => null,
            "io_uring" or "io-uring" => "uring",
            var name => name,
        };
        using var upstream = new UdpCapture();
        using FilterProcess filter = await FilterProcess.StartAsync(
            "--listen-port", "0", "--target-host", "127.0.0.1", "--target-port", upstream.Port.ToString(CultureInfo.InvariantCulture));
        bool said = await Poll.UntilAsync(() => filter.StandardOutput.Contains("statsd-filter: EioSharp backend: ", StringComparison.Ordinal), Patience);
        Assert.True(said, $"no backend line in:\n{filter.StandardOutput}");
        string used = Regex.Match(filter.StandardOutput, "statsd-filter: EioSharp backend: (\\w+)").Groups[1].Value;
        if (asked is not null)
        {
            Assert.Equal(asked, used);
        }
        else if (OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64)
        {
            Assert.Contains(used, new[] { "uring", "epoll" });
        }

        Assert.Equal(0, await filter.TerminateAsync(Patience));
    }
}
