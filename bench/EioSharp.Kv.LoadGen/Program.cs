using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv.LoadGen;

/// <summary>
/// Load generator for the feature benchmarks of EioSharp.Kv against redis-server (bench/kv-features.sh). Each workload
/// prints one line <c>RESULT workload=... ops=... seconds=... ops_per_s=...</c> (an "op" is defined per workload below).
/// <list type="bullet">
/// <item><c>pubsub</c>: <c>--subscribers</c> connections SUBSCRIBE one channel; one publisher sends <c>--messages</c>
/// PUBLISH in batches of <c>--pipeline</c> (1 = wait for each reply). op = one message delivered to one subscriber; the
/// clock stops when every subscriber has received every message (checked byte for byte on the first frame, by length
/// for the rest).</item>
/// <item><c>pingpong</c>: two clients; A: LPUSH ping, BLPOP pong 0; B: BLPOP ping 0, LPUSH pong. op = one round trip.</item>
/// <item><c>stream</c>: XGROUP CREATE ... MKSTREAM; <c>--producers</c> clients XADD <c>--messages</c> in total (one reply
/// awaited per XADD); <c>--consumers</c> clients loop XREADGROUP GROUP g cN COUNT <c>--count</c> BLOCK 1000 STREAMS s &gt;
/// then XACK the ids they got. op = one message added, read and acknowledged; the clock stops at the last XACK. Also
/// prints the load generator's own CPU time per op (all its threads, from the clock's start to the threads' end) and the
/// XREADGROUP replies with entries per op.</item>
/// </list>
/// Common options: <c>--host</c> (127.0.0.1), <c>--port</c>, <c>--timeout</c> seconds (120; exit code 1 when exceeded),
/// <c>--client eio|threads</c> for pingpong and stream (<see cref="Options.Client"/>; both print <c>client=</c> and
/// <c>client_cpu_us_per_op</c>, the load generator's own CPU per op over the measured stretch).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: EioSharp.Kv.LoadGen pubsub|pingpong|stream --port N [options]");
            return 2;
        }

        var o = Options.Parse(args.AsSpan(1));
        var watchdog = new Thread(() =>
        {
            Thread.Sleep(TimeSpan.FromSeconds(o.Int("timeout", 120)));
            Console.Error.WriteLine($"{args[0]}: timed out");
            Environment.Exit(1);
        }) { IsBackground = true };
        watchdog.Start();
        try
        {
            string result = args[0] switch
            {
                "pubsub" => PubSub(o),
                "pingpong" => PingPong(o),
                "stream" => Stream(o),
                _ => throw new ArgumentException($"unknown workload '{args[0]}'"),
            };
            Console.WriteLine(result);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or SocketException or EndOfStreamException)
        {
            Console.Error.WriteLine($"{args[0]}: {e.Message}");
            return 1;
        }
    }

    private static string Result(string workload, long ops, TimeSpan elapsed, string extra = "") =>
        string.Create(CultureInfo.InvariantCulture,
            $"RESULT workload={workload} ops={ops} seconds={elapsed.TotalSeconds:F3} ops_per_s={ops / elapsed.TotalSeconds:F0}{extra}");

    /// <summary>The client fields of a result: the client kind and the load generator's CPU µs per op (all threads).</summary>
    private static string ClientFields(string client, double cpuUs, long ops) =>
        string.Create(CultureInfo.InvariantCulture, $" client={client} client_cpu_us_per_op={cpuUs / ops:F2}");

    private static string UniqueName(string prefix) => $"{prefix}:{Environment.ProcessId}:{Stopwatch.GetTimestamp()}";

    private static string PubSub(Options o)
    {
        int subscribers = o.Int("subscribers", 100);
        int messages = o.Int("messages", 20_000);
        int pipeline = o.Int("pipeline", 1);
        string payload = new('x', o.Int("payload", 16));
        string channel = UniqueName("bench-chan");
        // RESP2 message frame: *3 $7 message $<len> channel $<len> payload
        byte[] frame = Encoding.UTF8.GetBytes(
            $"*3\r\n$7\r\nmessage\r\n${channel.Length}\r\n{channel}\r\n${payload.Length}\r\n{payload}\r\n");
        long expectedBytes = (long)frame.Length * messages;

        var subs = new List<RespConnection>();
        for (int i = 0; i < subscribers; i++)
        {
            var c = new RespConnection(o.Host, o.Port);
            c.Append("SUBSCRIBE", channel);
            c.Flush();
            if (c.ReadReply() is not List<object?> { Count: 3 } confirm || (string?)confirm[0] != "subscribe")
            {
                throw new InvalidDataException("unexpected SUBSCRIBE reply");
            }

            subs.Add(c);
        }

        using var publisher = new RespConnection(o.Host, o.Port);
        byte[] publish = RespConnection.Encode("PUBLISH", channel, payload);
        var readers = subs.Select(s => Task.Run(() => DrainAsync(s.Socket, frame, expectedBytes))).ToArray();
        var clock = Stopwatch.StartNew();
        for (int sent = 0; sent < messages;)
        {
            int batch = Math.Min(pipeline, messages - sent);
            for (int i = 0; i < batch; i++)
            {
                publisher.AppendRaw(publish);
            }

            publisher.Flush();
            for (int i = 0; i < batch; i++)
            {
                long receivers = publisher.ReadInteger();
                if (receivers != subscribers)
                {
                    throw new InvalidDataException($"PUBLISH reached {receivers} subscribers, expected {subscribers}");
                }
            }

            sent += batch;
        }

        var publishTime = clock.Elapsed;
        Task.WaitAll(readers);
        var elapsed = clock.Elapsed;
        foreach (var s in subs)
        {
            s.Dispose();
        }

        return Result("pubsub", (long)messages * subscribers, elapsed,
            string.Create(CultureInfo.InvariantCulture,
                $" publishes_per_s={messages / publishTime.TotalSeconds:F0} subscribers={subscribers} pipeline={pipeline}"));
    }

    /// <summary>Reads a subscriber's socket until <paramref name="expectedBytes"/> arrived; the first frame must match.</summary>
    private static async Task DrainAsync(Socket socket, byte[] frame, long expectedBytes)
    {
        var buffer = new byte[64 * 1024];
        var first = new byte[frame.Length];
        long got = 0;
        while (got < expectedBytes)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0)
            {
                throw new EndOfStreamException("a subscriber was disconnected");
            }

            if (got < first.Length)
            {
                int take = (int)Math.Min(n, first.Length - got);
                Buffer.BlockCopy(buffer, 0, first, (int)got, take);
                if (got + take == first.Length && !first.AsSpan().SequenceEqual(frame))
                {
                    throw new InvalidDataException("unexpected message frame: " + Encoding.UTF8.GetString(first));
                }
            }

            got += n;
        }

        if (got != expectedBytes)
        {
            throw new InvalidDataException($"a subscriber received {got} bytes, expected {expectedBytes}");
        }
    }

    private static string PingPong(Options o)
    {
        int rounds = o.Int("rounds", 20_000);
        string ping = UniqueName("bench-ping"), pong = UniqueName("bench-pong");
        if (o.Client == "eio")
        {
            var (took, cpuUs) = FiberWorkloads.PingPong(o.Host, o.Port, rounds, ping, pong);
            return Result("pingpong", rounds, took, ClientFields("eio", cpuUs, rounds));
        }

        using var a = new RespConnection(o.Host, o.Port);
        using var b = new RespConnection(o.Host, o.Port);
        byte[] pushPing = RespConnection.Encode("LPUSH", ping, "x");
        byte[] popPong = RespConnection.Encode("BLPOP", pong, "0");
        byte[] pushPong = RespConnection.Encode("LPUSH", pong, "x");
        byte[] popPing = RespConnection.Encode("BLPOP", ping, "0");
        Exception? failure = null;
        TimeSpan cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        var responder = new Thread(() =>
        {
            try
            {
                for (int i = 0; i < rounds; i++)
                {
                    b.AppendRaw(popPing);
                    b.Flush();
                    ExpectPopped(b.ReadReply(), ping);
                    b.AppendRaw(pushPong);
                    b.Flush();
                    b.ReadInteger();
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        var clock = Stopwatch.StartNew();
        responder.Start();
        for (int i = 0; i < rounds; i++)
        {
            a.AppendRaw(pushPing);
            a.Flush();
            a.ReadInteger();
            a.AppendRaw(popPong);
            a.Flush();
            ExpectPopped(a.ReadReply(), pong);
        }

        responder.Join();
        var elapsed = clock.Elapsed;
        double threadsCpuUs = (Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalMicroseconds;
        if (failure is not null)
        {
            throw new InvalidDataException("responder failed: " + failure.Message);
        }

        return Result("pingpong", rounds, elapsed, ClientFields("threads", threadsCpuUs, rounds));
    }

    private static void ExpectPopped(object? reply, string key)
    {
        if (reply is not List<object?> { Count: 2 } kv || (string?)kv[0] != key || (string?)kv[1] != "x")
        {
            throw new InvalidDataException("unexpected BLPOP reply");
        }
    }

    private static string Stream(Options o)
    {
        int messages = o.Int("messages", 20_000);
        int producers = o.Int("producers", 2);
        int consumers = o.Int("consumers", 2);
        int count = o.Int("count", 10);
        string key = UniqueName("bench-stream");
        if (o.Client == "eio")
        {
            var (took, fiberCpuUs, fiberReads) = FiberWorkloads.Stream(o.Host, o.Port, messages, producers, consumers, count, key);
            using (var cleanup = new RespConnection(o.Host, o.Port))
            {
                cleanup.Call("DEL", key);
            }

            return Result("stream", messages, took,
                string.Create(CultureInfo.InvariantCulture,
                    $" producers={producers} consumers={consumers} count={count}{ClientFields("eio", fiberCpuUs, messages)} reads_per_op={(double)fiberReads / messages:F3}"));
        }

        using (var setup = new RespConnection(o.Host, o.Port))
        {
            if ((string?)setup.Call("XGROUP", "CREATE", key, "g", "$", "MKSTREAM") != "OK")
            {
                throw new InvalidDataException("XGROUP CREATE failed");
            }
        }

        long acked = 0;
        long done = 0; // Stopwatch ticks when the last message was acknowledged
        long reads = 0; // XREADGROUP replies with entries
        Exception? failure = null;
        TimeSpan cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var threads = new List<Thread>();
        for (int p = 0; p < producers; p++)
        {
            int share = messages / producers + (p < messages % producers ? 1 : 0);
            threads.Add(new Thread(() =>
            {
                try
                {
                    using var c = new RespConnection(o.Host, o.Port);
                    byte[] xadd = RespConnection.Encode("XADD", key, "*", "job", "payload-0123456789");
                    for (int i = 0; i < share; i++)
                    {
                        c.AppendRaw(xadd);
                        c.Flush();
                        if (c.ReadReply() is not string)
                        {
                            throw new InvalidDataException("unexpected XADD reply");
                        }
                    }
                }
                catch (Exception e)
                {
                    failure ??= e;
                }
            }));
        }

        for (int k = 0; k < consumers; k++)
        {
            string consumer = "c" + k.ToString(CultureInfo.InvariantCulture);
            threads.Add(new Thread(() =>
            {
                try
                {
                    using var c = new RespConnection(o.Host, o.Port);
                    byte[] read = RespConnection.Encode("XREADGROUP", "GROUP", "g", consumer, "COUNT",
                        count.ToString(CultureInfo.InvariantCulture), "BLOCK", "1000", "STREAMS", key, ">");
                    var ack = new List<string>(count + 3);
                    while (Interlocked.Read(ref acked) < messages && failure is null)
                    {
                        c.AppendRaw(read);
                        c.Flush();
                        if (c.ReadReply() is not List<object?> streams)
                        {
                            continue; // BLOCK timed out (nil)
                        }

                        Interlocked.Increment(ref reads);
                        ack.Clear();
                        ack.AddRange(["XACK", key, "g"]);
                        var entries = (List<object?>)((List<object?>)streams[0]!)[1]!;
                        foreach (List<object?> entry in entries.Cast<List<object?>>())
                        {
                            ack.Add((string)entry[0]!);
                        }

                        long n = (long)c.Call([.. ack])!;
                        if (n != entries.Count)
                        {
                            throw new InvalidDataException($"XACK acknowledged {n} of {entries.Count}");
                        }

                        if (Interlocked.Add(ref acked, n) == messages)
                        {
                            Interlocked.Exchange(ref done, clock.Elapsed.Ticks);
                        }
                    }
                }
                catch (Exception e)
                {
                    failure ??= e;
                }
            }));
        }

        foreach (var t in threads)
        {
            t.Start();
        }

        foreach (var t in threads)
        {
            t.Join();
        }

        double cpuUs = (Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalMicroseconds;
        if (failure is not null)
        {
            throw new InvalidDataException("a stream client failed: " + failure.Message);
        }

        using (var cleanup = new RespConnection(o.Host, o.Port))
        {
            cleanup.Call("DEL", key);
        }

        return Result("stream", messages, TimeSpan.FromTicks(done),
            string.Create(CultureInfo.InvariantCulture,
                $" producers={producers} consumers={consumers} count={count}{ClientFields("threads", cpuUs, messages)} reads_per_op={(double)reads / messages:F3}"));
    }

    internal sealed class Options
    {
        private readonly Dictionary<string, string> _values = [];

        public string Host => _values.GetValueOrDefault("host", "127.0.0.1");

        public int Port => Int("port", 6379);

        /// <summary><c>--client eio</c> (default: fibers of one EioSharp domain) or <c>threads</c> (a thread per client,
        /// blocking .NET sockets: the generator of sessions 20-31); pubsub always uses its own clients.</summary>
        public string Client => _values.GetValueOrDefault("client", "eio") switch
        {
            "eio" => "eio",
            "threads" => "threads",
            _ => throw new ArgumentException("--client is eio or threads"),
        };

        public int Int(string name, int fallback) =>
            _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        public static Options Parse(ReadOnlySpan<string> args)
        {
            var o = new Options();
            for (int i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                {
                    throw new ArgumentException($"bad option '{args[i]}' (options are --name value)");
                }

                o._values[args[i][2..]] = args[++i];
            }

            return o;
        }
    }
}
