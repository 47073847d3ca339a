using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace EioSharp.Jobs.LoadGen;

/// <summary>
/// Open-loop load generator for EioSharp.Jobs ("mixed-fib"): Poisson arrivals at a target rate over 32 connections,
/// 95% <c>FIB 10</c> and 5% <c>FIB 32</c> in the tagged form. Latency is measured from each request's SCHEDULED send time,
/// so a stalled server (or a late generator) cannot hide queueing delay (no coordinated omission).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        Options o;
        try
        {
            o = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        var ep = new IPEndPoint(IPAddress.Parse(o.Host), o.Port);
        double capacity = o.Capacity;
        if (o.CalibrateSeconds > 0)
        {
            capacity = Calibrate(ep, o);
            Console.WriteLine(Inv($"CAPACITY heavy_per_s={capacity:F1} n={o.HeavyN} seconds={o.CalibrateSeconds}"));
        }

        foreach (var level in o.Levels)
        {
            if (level != "idle" && capacity <= 0)
            {
                Console.Error.WriteLine("A load level needs --capacity or --calibrate.");
                return 2;
            }

            var r = RunLevel(ep, o, level, capacity);
            Console.WriteLine(r);
            Thread.Sleep(500); // let the server settle between levels
        }

        return 0;
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Heavy capacity: closed loop, a few connections each keeping one FIB heavy-n in flight (never BUSY: fewer than the queue).</summary>
    private static double Calibrate(IPEndPoint ep, Options o)
    {
        const int loops = 4;
        long start = Stopwatch.GetTimestamp();
        long from = start + (long)(1.0 * Stopwatch.Frequency);
        long to = from + (long)(o.CalibrateSeconds * Stopwatch.Frequency);
        long ok = 0;
        var threads = Enumerable.Range(0, loops).Select(k => new Thread(() =>
        {
            using var s = Connect(ep);
            using var reader = new StreamReader(new NetworkStream(s, ownsSocket: false), Encoding.ASCII);
            byte[] req = Encoding.ASCII.GetBytes($"{k} FIB {o.HeavyN}\n");
            while (true)
            {
                s.Send(req);
                string line = reader.ReadLine() ?? throw new IOException("server closed the connection");
                long now = Stopwatch.GetTimestamp();
                if (line.Contains(" OK ", StringComparison.Ordinal) && now >= from && now < to)
                {
                    Interlocked.Increment(ref ok);
                }

                if (now >= to)
                {
                    return;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return ok / o.CalibrateSeconds;
    }

    private static Socket Connect(IPEndPoint ep)
    {
        var s = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Connect(ep);
        return s;
    }

    private static string RunLevel(IPEndPoint ep, Options o, string level, double capacity)
    {
        bool idle = level == "idle";
        double factor = idle ? 0 : double.Parse(level, CultureInfo.InvariantCulture);
        double rate = idle ? o.IdleRate : factor * capacity / o.HeavyFraction;
        double heavyFraction = idle ? 0 : o.HeavyFraction;
        double total = o.Warmup + o.Duration;

        // The schedule: Poisson arrivals (exponential gaps), each cheap or heavy at random, fixed before the run.
        var rng = new Random(o.Seed);
        var gaps = new List<double>();
        var heavyFlags = new List<bool>();
        for (double t = 0; ;)
        {
            t += -Math.Log(1.0 - rng.NextDouble()) / rate;
            if (t >= total)
            {
                break;
            }

            gaps.Add(t);
            heavyFlags.Add(rng.NextDouble() < heavyFraction);
        }

        int n = gaps.Count;
        var run = new Run(n);
        var conns = Enumerable.Range(0, o.Connections).Select(_ => Connect(ep)).ToArray();
        using var control = Connect(ep);
        using var controlReader = new StreamReader(new NetworkStream(control, ownsSocket: false), Encoding.ASCII);
        string Ask(string line)
        {
            control.Send(Encoding.ASCII.GetBytes(line + "\n"));
            return controlReader.ReadLine() ?? throw new IOException("server closed the control connection");
        }

        var receivers = conns.Select(c => Task.Run(() => ReceiveAsync(c, run))).ToArray();
        var before = ParseStats(Ask("STATS RESET"));

        long t0 = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        for (int i = 0; i < n; i++)
        {
            run.Scheduled[i] = t0 + (long)(gaps[i] * Stopwatch.Frequency);
            run.Heavy[i] = heavyFlags[i];
        }

        long measureFrom = t0 + (long)(o.Warmup * Stopwatch.Frequency);
        long measureTo = t0 + (long)(total * Stopwatch.Frequency);

        var sender = new Thread(() => Send(conns, run, o)) { Priority = ThreadPriority.AboveNormal, Name = "sender" };
        sender.Start();
        sender.Join();
        var after = ParseStats(Ask("STATS"));

        // Drain: wait for every reply (bounded).
        long drainDeadline = Stopwatch.GetTimestamp() + (long)(o.DrainSeconds * Stopwatch.Frequency);
        while (Volatile.Read(ref run.Answered) < n && Stopwatch.GetTimestamp() < drainDeadline)
        {
            Thread.Sleep(20);
        }

        foreach (var c in conns)
        {
            c.Dispose();
        }

        Task.WaitAll(receivers.Select(r => r.ContinueWith(_ => { }, TaskScheduler.Default)).ToArray());
        Interlocked.MemoryBarrier();

        // Statistics over the requests scheduled after the warm-up.
        var cheapLat = new List<long>();
        var sendLate = new List<long>();
        int sent = 0, heavySent = 0, heavyOk = 0, heavyOkInWindow = 0, busy = 0, errors = 0, lost = 0, cheapBusy = 0;
        for (int i = 0; i < n; i++)
        {
            if (run.Scheduled[i] < measureFrom)
            {
                continue;
            }

            sent++;
            sendLate.Add(run.SentAt[i] - run.Scheduled[i]);
            switch (run.Status[i])
            {
                case Run.Ok:
                    if (run.Heavy[i])
                    {
                        heavyOk++;
                    }
                    else
                    {
                        cheapLat.Add(run.Done[i] - run.Scheduled[i]);
                    }

                    break;
                case Run.Busy:
                    busy++;
                    cheapBusy += run.Heavy[i] ? 0 : 1;
                    break;
                case Run.Err:
                    errors++;
                    break;
                default:
                    lost++;
                    break;
            }

            if (run.Heavy[i])
            {
                heavySent++;
            }
        }

        // Heavy throughput: heavy completions whose reply arrived inside the measured window (a backlog drained later does not count).
        for (int i = 0; i < n; i++)
        {
            if (run.Heavy[i] && run.Status[i] == Run.Ok && run.Done[i] >= measureFrom && run.Done[i] < measureTo)
            {
                heavyOkInWindow++;
            }
        }

        cheapLat.Sort();
        sendLate.Sort();
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
        double P(List<long> xs, double q) => xs.Count == 0 ? double.NaN : Us(xs[Math.Clamp((int)Math.Ceiling(q * xs.Count) - 1, 0, xs.Count - 1)]);
        double heavyPerS = heavyOkInWindow / o.Duration;
        long D(string key) => after.GetValueOrDefault(key) - before.GetValueOrDefault(key);
        return Inv($"RESULT label={o.Label} level={level} rate={rate:F0} sent={sent} cheap_ok={cheapLat.Count} ") +
            Inv($"cheap_p50_us={P(cheapLat, 0.5):F0} cheap_p99_us={P(cheapLat, 0.99):F0} cheap_p999_us={P(cheapLat, 0.999):F0} cheap_max_us={P(cheapLat, 1.0):F0} ") +
            Inv($"heavy_sent={heavySent} heavy_ok={heavyOk} heavy_per_s={heavyPerS:F1} heavy_pct_cap={(capacity > 0 ? 100 * heavyPerS / capacity : 0):F0} ") +
            Inv($"busy={busy} cheap_busy={cheapBusy} err={errors} lost={lost} server_busy_delta={D("busy")} server_heavy_delta={D("heavy")} ") +
            Inv($"lag_p50_us={after.GetValueOrDefault("lag_p50_us")} lag_p99_us={after.GetValueOrDefault("lag_p99_us")} lag_max_us={after.GetValueOrDefault("lag_max_us")} ") +
            Inv($"send_late_p99_us={P(sendLate, 0.99):F0}");
    }

    private static Dictionary<string, long> ParseStats(string line)
    {
        var d = new Dictionary<string, long>();
        foreach (var part in line.Split(' '))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && long.TryParse(part.AsSpan(eq + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v))
            {
                d[part[..eq]] = v;
            }
        }

        return d;
    }

    /// <summary>Sends each request at its scheduled time (sleeping on the monotonic clock until then), round-robin over the connections.</summary>
    private static void Send(Socket[] conns, Run run, Options o)
    {
        Span<byte> buf = stackalloc byte[64];
        byte[] cheapTail = Encoding.ASCII.GetBytes($" FIB {o.CheapN}\n");
        byte[] heavyTail = Encoding.ASCII.GetBytes($" FIB {o.HeavyN}\n");
        for (int i = 0; i < run.Scheduled.Length; i++)
        {
            PreciseSleep.Until(run.Scheduled[i]);
            i.TryFormat(buf, out int len, default, CultureInfo.InvariantCulture);
            var tail = run.Heavy[i] ? heavyTail : cheapTail;
            tail.CopyTo(buf[len..]);
            len += tail.Length;
            run.SentAt[i] = Stopwatch.GetTimestamp();
            conns[i % conns.Length].Send(buf[..len]);
        }
    }

    private static async Task ReceiveAsync(Socket s, Run run)
    {
        var buffer = new byte[64 * 1024];
        int filled = 0;
        try
        {
            while (true)
            {
                int got = await s.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                if (got == 0)
                {
                    return;
                }

                long now = Stopwatch.GetTimestamp();
                filled += got;
                int start = 0;
                while (true)
                {
                    int nl = Array.IndexOf(buffer, (byte)'\n', start, filled - start);
                    if (nl < 0)
                    {
                        break;
                    }

                    Record(run, buffer.AsSpan(start, nl - start), now);
                    start = nl + 1;
                }

                Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                filled -= start;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // closed at the end of the run
        }
    }

    /// <summary>Parses <c>&lt;id&gt; OK r</c> / <c>&lt;id&gt; BUSY</c> / <c>&lt;id&gt; ERR m</c>.</summary>
    private static void Record(Run run, ReadOnlySpan<byte> line, long now)
    {
        int sp = line.IndexOf((byte)' ');
        if (sp <= 0 || !int.TryParse(line[..sp], NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= run.Done.Length)
        {
            return;
        }

        byte kind = line.Length > sp + 1 ? line[sp + 1] : (byte)0;
        run.Status[id] = kind switch { (byte)'O' => Run.Ok, (byte)'B' => Run.Busy, _ => Run.Err };
        run.Done[id] = now;
        Interlocked.Increment(ref run.Answered);
    }

    private sealed class Run(int n)
    {
        public const byte Ok = 1, Busy = 2, Err = 3;
        public readonly long[] Scheduled = new long[n];
        public readonly long[] SentAt = new long[n];
        public readonly long[] Done = new long[n];
        public readonly byte[] Status = new byte[n];
        public readonly bool[] Heavy = new bool[n];
        public int Answered;
    }
}

/// <summary>Sleeps until a <see cref="Stopwatch"/> timestamp with microsecond precision (clock_nanosleep on the monotonic clock).</summary>
internal static partial class PreciseSleep
{
    private const int ClockMonotonic = 1;
    private const int TimerAbsTime = 1;
    private static readonly bool s_native = CheckNative();

    public static void Until(long timestamp)
    {
        if (Stopwatch.GetTimestamp() >= timestamp)
        {
            return;
        }

        if (s_native)
        {
            var ts = new Timespec { Sec = timestamp / 1_000_000_000, Nsec = timestamp % 1_000_000_000 };
            while (ClockNanosleep(ClockMonotonic, TimerAbsTime, ref ts, IntPtr.Zero) == 4 /* EINTR */)
            {
            }
        }
        else
        {
            while (Stopwatch.GetTimestamp() < timestamp)
            {
                Thread.Sleep(1);
            }
        }
    }

    /// <summary>True when Stopwatch timestamps are CLOCK_MONOTONIC nanoseconds (Linux), so they can be passed to clock_nanosleep.</summary>
    private static bool CheckNative()
    {
        if (!OperatingSystem.IsLinux() || Stopwatch.Frequency != 1_000_000_000)
        {
            return false;
        }

        try
        {
            ClockGettime(ClockMonotonic, out var ts);
            long mono = ts.Sec * 1_000_000_000 + ts.Nsec;
            return Math.Abs(mono - Stopwatch.GetTimestamp()) < 10_000_000;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    private static partial int ClockNanosleep(int clock, int flags, ref Timespec request, IntPtr remain);

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGettime(int clock, out Timespec ts);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Sec;
        public long Nsec;
    }
}

internal sealed record Options
{
    public string Host { get; init; } = "127.0.0.1";

    public int Port { get; init; } = 8080;

    public int Connections { get; init; } = 32;

    public double Duration { get; init; } = 10;

    public double Warmup { get; init; } = 1;

    public double DrainSeconds { get; init; } = 60;

    public double HeavyFraction { get; init; } = 0.05;

    public int CheapN { get; init; } = 10;

    public int HeavyN { get; init; } = 32;

    public double CalibrateSeconds { get; init; }

    public double Capacity { get; init; }

    public double IdleRate { get; init; } = 200;

    public string[] Levels { get; init; } = ["idle", "0.5", "0.9", "1.2"];

    public string Label { get; init; } = "server";

    public int Seed { get; init; } = 42;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string V() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {name} needs a value.");
            double D() => double.Parse(V(), CultureInfo.InvariantCulture);
            int I() => int.Parse(V(), CultureInfo.InvariantCulture);
            o = name switch
            {
                "--host" => o with { Host = V() },
                "--port" => o with { Port = I() },
                "--connections" => o with { Connections = I() },
                "--duration" => o with { Duration = D() },
                "--warmup" => o with { Warmup = D() },
                "--drain" => o with { DrainSeconds = D() },
                "--heavy-fraction" => o with { HeavyFraction = D() },
                "--cheap-n" => o with { CheapN = I() },
                "--heavy-n" => o with { HeavyN = I() },
                "--calibrate" => o with { CalibrateSeconds = D() },
                "--capacity" => o with { Capacity = D() },
                "--idle-rate" => o with { IdleRate = D() },
                "--levels" => o with { Levels = V().Split(',', StringSplitOptions.RemoveEmptyEntries) },
                "--label" => o with { Label = V() },
                "--seed" => o with { Seed = I() },
                _ => throw new ArgumentException(
                    $"Unknown option '{name}'. Options: --host --port --connections 32 --duration 10 --warmup 1 --drain 60 --heavy-fraction 0.05 " +
                    "--cheap-n 10 --heavy-n 32 --calibrate SECONDS | --capacity HEAVY_PER_S --idle-rate 200 --levels idle,0.5,0.9,1.2 --label NAME --seed 42"),
            };
        }

        return o;
    }
}
