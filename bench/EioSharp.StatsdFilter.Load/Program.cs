using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

// Open-loop StatsD load generator and upstream sink for bench/statsd-vs-proxyjs.sh (loopback only).
//
//   dotnet EioSharp.StatsdFilter.Load.dll --target-port P --sink-port S [--health-port H] [--rates 10000,20000,...]
//       [--duration 2s] [--senders 4] [--label NAME]
//
// For each rate (lines per second, one line per datagram as sent by an unbuffered StatsD client) it sends
// rate x duration datagrams to 127.0.0.1:P from several source sockets, paced against the clock (open loop: it never
// waits for the proxy), while a sink thread on 127.0.0.1:S counts the "bench." lines the proxy forwards. A rate passes
// when every line arrives. Stops after two consecutive failed rates (or when the generator cannot reach 80% of the
// target) and prints the highest achieved rate of a passing step as "RESULT <label> <lines/s>". --health-port answers the statsd admin "health" command (proxy.js health-checks its nodes).
var options = ParseArgs(args);
int targetPort = int.Parse(options["--target-port"], CultureInfo.InvariantCulture);
int sinkPort = int.Parse(options["--sink-port"], CultureInfo.InvariantCulture);
int senders = int.Parse(options.GetValueOrDefault("--senders", "4"), CultureInfo.InvariantCulture);
double durationSeconds = double.Parse(options.GetValueOrDefault("--duration", "2s").TrimEnd('s'), CultureInfo.InvariantCulture);
string label = options.GetValueOrDefault("--label", "proxy");
int[] rates = options.GetValueOrDefault("--rates", "10000,20000,30000,40000,50000,60000,80000,100000,120000,150000,200000,250000,300000,400000,500000")
    .Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray();

using var cts = new CancellationTokenSource();
if (options.TryGetValue("--health-port", out string? healthPort))
{
    _ = RunHealthServerAsync(int.Parse(healthPort, CultureInfo.InvariantCulture), cts.Token);
}

var sink = new Sink(sinkPort);
var target = new IPEndPoint(IPAddress.Loopback, targetPort);
var sockets = Enumerable.Range(0, senders).Select(_ =>
{
    var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    s.Connect(target);
    return s;
}).ToArray();

// Wait until the proxy forwards (proxy.js first needs a successful health check).
var ready = Stopwatch.StartNew();
while (sink.Lines == 0)
{
    if (ready.Elapsed > TimeSpan.FromSeconds(30))
    {
        Console.Error.WriteLine($"{label}: nothing forwarded within 30 s");
        return 1;
    }

    try
    {
        sockets[0].Send("bench.ready:1|c"u8);
    }
    catch (SocketException)
    {
        // Not listening yet (ICMP refused on the connected socket).
    }

    Thread.Sleep(100);
}

WaitQuiet(sink);
Console.Error.WriteLine($"{label}: warming up");
RunStep(20_000, 2.0, sink, sockets); // JIT tiering, socket buffers

int best = 0;
int failures = 0;
foreach (int rate in rates)
{
    (long sent, long received, double seconds) = RunStep(rate, durationSeconds, sink, sockets);
    bool ok = received == sent;
    double achieved = sent / seconds;
    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{label}: rate {rate,7}/s sent {sent,8} in {seconds:F2}s ({achieved:F0}/s) received {received,8} loss {100.0 * (sent - received) / sent:F3}% {(ok ? "ok" : "LOSS")}"));
    if (ok)
    {
        // The rate that counts is the one achieved: on a loaded machine the generator may fall behind its target.
        best = Math.Max(best, (int)achieved);
        failures = 0;
    }
    else if (++failures == 2)
    {
        break;
    }

    if (achieved < rate * 0.8)
    {
        // The generator itself cannot send faster on this machine: higher targets would not be what they claim.
        Console.Error.WriteLine($"{label}: generator limit reached at {achieved:F0}/s; stopping");
        break;
    }
}

Console.WriteLine($"RESULT {label} {best}");
cts.Cancel();
return 0;

static (long Sent, long Received, double Seconds) RunStep(int rate, double durationSeconds, Sink sink, Socket[] sockets)
{
    long before = sink.Lines;
    long total = (long)(rate * durationSeconds);
    // 1000 distinct metric names, as from a real fleet of clients; one line per datagram; built up front so the
    // generator spends its time in sendto, not formatting.
    byte[][] datagrams = [.. Enumerable.Range(0, 1000).Select(i =>
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"bench.metric{i}:{i % 97}|c|#env:bench")))];
    var clock = Stopwatch.StartNew();
    long sent = 0;
    while (sent < total)
    {
        long due = Math.Min(total, (long)(clock.Elapsed.TotalSeconds * rate) + 1);
        while (sent < due)
        {
            try
            {
                sockets[sent % sockets.Length].Send(datagrams[sent % datagrams.Length]);
            }
            catch (SocketException)
            {
                // ECONNREFUSED from an ICMP error: the line is lost and will show up as loss.
            }

            sent++;
        }

        if (sent < total)
        {
            Thread.Sleep(1);
        }
    }

    double seconds = clock.Elapsed.TotalSeconds;
    WaitQuiet(sink);
    return (sent, sink.Lines - before, seconds);
}

static void WaitQuiet(Sink sink)
{
    // Done when nothing arrived for 500 ms (covers the proxies' batching delays), at most 10 s.
    var limit = Stopwatch.StartNew();
    long last = -1;
    while (limit.Elapsed < TimeSpan.FromSeconds(10))
    {
        long now = sink.Lines;
        if (now == last)
        {
            return;
        }

        last = now;
        Thread.Sleep(500);
    }
}

static async Task RunHealthServerAsync(int port, CancellationToken token)
{
    var listener = new TcpListener(IPAddress.Loopback, port);
    listener.Start();
    while (!token.IsCancellationRequested)
    {
        TcpClient client = await listener.AcceptTcpClientAsync(token);
        _ = Task.Run(async () =>
        {
            using (client)
            {
                var buffer = new byte[256];
                NetworkStream stream = client.GetStream();
                while (await stream.ReadAsync(buffer, token) > 0)
                {
                    await stream.WriteAsync("health: up\n"u8.ToArray(), token);
                }
            }
        }, token);
    }
}

static Dictionary<string, string> ParseArgs(string[] args)
{
    var result = new Dictionary<string, string>();
    for (int i = 0; i + 1 < args.Length; i += 2)
    {
        result[args[i]] = args[i + 1];
    }

    return result;
}

/// <summary>The upstream: counts forwarded "bench." lines on a dedicated thread.</summary>
internal sealed class Sink
{
    private long _lines;

    public Sink(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 4 << 20 };
        socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
        new Thread(() => Receive(socket)) { IsBackground = true, Name = "sink" }.Start();
    }

    public long Lines => Volatile.Read(ref _lines);

    private void Receive(Socket socket)
    {
        var buffer = new byte[65536];
        ReadOnlySpan<byte> prefix = "bench."u8;
        while (true)
        {
            int n = socket.Receive(buffer);
            long count = 0;
            foreach (Range r in buffer.AsSpan(0, n).Split((byte)'\n'))
            {
                if (buffer.AsSpan(r).StartsWith(prefix))
                {
                    count++;
                }
            }

            Interlocked.Add(ref _lines, count);
        }
    }
}
