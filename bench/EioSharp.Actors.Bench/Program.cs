using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Serialization;
using EioSharp;
using EioSharp.Actors.Redis;
using EioSharp.Redis;
using Switch = EioSharp.Switch;

// Usage: EioSharp.Actors.Bench [messages=20000] [runs=3] [calls=2000]
// Starts its own redis-server on a free loopback port; every measurement runs against it in the same process run; prints medians.
int messages = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
int runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
int calls = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2_000;
const int Concurrency = 64;
// ACK_BATCH=n sets ActorSystemOptions.AckBatch (default: the option's default).
int ackBatch = int.TryParse(Environment.GetEnvironmentVariable("ACK_BATCH"), out int ab) ? ab : 64;

int port;
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    port = ((IPEndPoint)l.LocalEndpoint).Port;
    l.Stop();
}

string dir = Directory.CreateTempSubdirectory("eioactors-bench").FullName;
var psi = new ProcessStartInfo("redis-server") { UseShellExecute = false, RedirectStandardOutput = true };
foreach (string a in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir })
{
    psi.ArgumentList.Add(a);
}

using var server = Process.Start(psi)!;
server.BeginOutputReadLine();
Thread.Sleep(300);
var endpoint = new IPEndPoint(IPAddress.Loopback, port);
var results = new Dictionary<string, List<double>>();
void Record(string name, double value) => (results.TryGetValue(name, out var l) ? l : results[name] = []).Add(value);

// CPU time (user+system) of this process and of redis-server, in microseconds: load-independent cost per message.
double ServerCpuUs()
{
    string stat = File.ReadAllText($"/proc/{server.Id}/stat");
    var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
    return (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) * 1e6 / 100; // USER_HZ 100
}

double ClientCpuUs() => Process.GetCurrentProcess().TotalProcessorTime.TotalMicroseconds;

try
{
    for (int run = 0; run < runs; run++)
    {
        EioMain.Run(async env =>
        {
            await Switch.RunAsync(async sw =>
            {
                var client = RedisClient.Create(sw, env, new RedisOptions { EndPoint = endpoint });
                await client.ExecuteAsync("FLUSHALL");

                // 1. Raw XADD with this client: 64 fibers pipelining on one connection.
                var t = Stopwatch.StartNew();
                await Fiber.IterAsync(Enumerable.Range(0, messages).ToArray(), i => client.StreamAddAsync("raw", [new("p", "x")]), Concurrency);
                Record("XADD, EioSharp.Redis (msg/s)", messages / t.Elapsed.TotalSeconds);

                // 2. Raw XADD + XREADGROUP/XACK consumer: end-to-end stream throughput.
                await client.StreamCreateGroupAsync("raw2", "g");
                t.Restart();
                double c0 = ClientCpuUs(), s0 = ServerCpuUs();
                var producer = Fiber.ForkPromise(sw, async () =>
                {
                    await Fiber.IterAsync(Enumerable.Range(0, messages).ToArray(), i => client.StreamAddAsync("raw2", [new("p", "x")]), Concurrency);
                    return true;
                });
                int consumed = 0;
                while (consumed < messages)
                {
                    var got = await client.StreamReadGroupAsync("raw2", "g", "c", 500, TimeSpan.FromMilliseconds(100));
                    if (got.Count > 0)
                    {
                        await client.StreamAckAsync("raw2", "g", got.Select(e => e.Id).ToArray());
                        consumed += got.Count;
                    }
                }

                await producer.AwaitAsync();
                Record("XADD + XREADGROUP/XACK, EioSharp.Redis (msg/s)", messages / t.Elapsed.TotalSeconds);
                Record("XADD + XREADGROUP/XACK, client CPU per msg (us)", (ClientCpuUs() - c0) / messages);
                Record("XADD + XREADGROUP/XACK, redis-server CPU per msg (us)", (ServerCpuUs() - s0) / messages);

                // 3. Actors: node "a" casts to an actor on node "b" (two ActorSystems, two clients, through redis-server).
                var options = (string node) => new ActorSystemOptions
                {
                    NodeId = node, Redis = new RedisOptions { EndPoint = endpoint }, Serializer = new JsonActorSerializer(BenchJson.Default),
                    AckBatch = ackBatch,
                };
                var sink = new ActorKind("sink", self =>
                {
                    long handled = 0;
                    return m =>
                    {
                        if (m.TypeName == nameof(Count))
                        {
                            return Task.FromResult<ActorReply?>(m.Reply(new Count(handled)));
                        }

                        handled++;
                        return Task.FromResult<ActorReply?>(null);
                    };
                });
                var b = await ActorSystem.StartAsync(sw, env, options("b"), sink);
                var a = await ActorSystem.StartAsync(sw, env, options("a"));
                var (target, _) = await b.SpawnAsync("sink", "sink");
                t.Restart();
                c0 = ClientCpuUs();
                s0 = ServerCpuUs();
                await Fiber.IterAsync(Enumerable.Range(0, messages).ToArray(), i => a.CastAsync(target, new Msg(i)), Concurrency);
                while ((await a.CallAsync<Count, Count>(target, new Count(0), TimeSpan.FromSeconds(60))).N < messages)
                {
                }

                Record("actor cast a->b, handled (msg/s)", messages / t.Elapsed.TotalSeconds);
                Record("actor cast a->b, client CPU per msg (us)", (ClientCpuUs() - c0) / messages);
                Record("actor cast a->b, redis-server CPU per msg (us)", (ServerCpuUs() - s0) / messages);

                // 4. Call round trip a->b->a, sequential.
                var lat = new List<double>(calls);
                for (int i = 0; i < calls; i++)
                {
                    var c = Stopwatch.StartNew();
                    await a.CallAsync<Count, Count>(target, new Count(0), TimeSpan.FromSeconds(10));
                    lat.Add(c.Elapsed.TotalMicroseconds);
                }

                lat.Sort();
                Record("actor call round trip, median (us)", lat[lat.Count / 2]);
                Record("actor call round trip, p99 (us)", lat[(int)(lat.Count * 0.99)]);
                var ping = new List<double>(calls);
                for (int i = 0; i < calls; i++)
                {
                    var c = Stopwatch.StartNew();
                    await client.ExecuteAsync("PING");
                    ping.Add(c.Elapsed.TotalMicroseconds);
                }

                ping.Sort();
                Record("PING round trip, EioSharp.Redis, median (us)", ping[ping.Count / 2]);
            });
        });

        // 5. StackExchange.Redis doing the same XADD loop (64 concurrent tasks on its multiplexer).
        using (var mux = StackExchange.Redis.ConnectionMultiplexer.Connect($"127.0.0.1:{port}"))
        {
            var db = mux.GetDatabase();
            var t = Stopwatch.StartNew();
            var tasks = new List<Task>(Concurrency);
            int next = -1;
            for (int w = 0; w < Concurrency; w++)
            {
                tasks.Add(Task.Run(async () =>
                {
                    while (Interlocked.Increment(ref next) < messages)
                    {
                        await db.StreamAddAsync("serawxadd", "p", "x");
                    }
                }));
            }

            Task.WaitAll([.. tasks]);
            Record("XADD, StackExchange.Redis (msg/s)", messages / t.Elapsed.TotalSeconds);
            var ping = new List<double>(calls);
            for (int i = 0; i < calls; i++)
            {
                var c = Stopwatch.StartNew();
                db.Ping();
                ping.Add(c.Elapsed.TotalMicroseconds);
            }

            ping.Sort();
            Record("PING round trip, StackExchange.Redis sync, median (us)", ping[ping.Count / 2]);
        }
    }
}
finally
{
    server.Kill();
    server.WaitForExit(5000);
    Directory.Delete(dir, true);
}

Console.WriteLine($"messages={messages} runs={runs} calls={calls} concurrency={Concurrency} ackBatch={ackBatch} (medians of the runs)");
foreach (var (name, values) in results)
{
    values.Sort();
    Console.WriteLine($"| {name} | {values[values.Count / 2]:F0} | {string.Join(" ", values.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))} |");
}

public sealed record Msg(int Seq);

public sealed record Count(long N);

[JsonSerializable(typeof(Msg))]
[JsonSerializable(typeof(Count))]
public sealed partial class BenchJson : JsonSerializerContext;
