using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using EioSharp.Net;

namespace EioSharp.Benchmarks.Net;

/// <summary>
/// Loopback echo: 50 client connections each send a 16-byte line and wait for it to come back, 200 times per
/// invocation (10,000 round trips). The same client drives an EioSharp server (RunServerAsync on one domain) and a plain
/// .NET Socket server (a Task per connection on the thread pool): the ratio is EioSharp's time over the baseline's.
/// <c>EioSharpEpollServer</c> and <c>EioSharpUringServer</c> are the same EioSharp server on the epoll and io_uring backends
/// (<see cref="EioOptions.Backend"/>).
/// </summary>
[SimpleJob(warmupCount: 3, iterationCount: 10)]
[MemoryDiagnoser]
public class EchoServerBenchmarks
{
    private const int Connections = 50;
    private const int RoundTrips = 200;
    private static readonly byte[] Line = "0123456789abcde\n"u8.ToArray();

    private readonly List<Thread> _eioThreads = [];
    private readonly List<Resolver<bool>> _eioStops = [];
    private Socket? _baselineListener;
    private CancellationTokenSource? _baselineStop;
    private Socket[] _eioClients = [];
    private Socket[] _epollClients = [];
    private Socket[] _uringClients = [];
    private Socket[] _baselineClients = [];

    [GlobalSetup]
    public void Setup()
    {
        var eioEndpoint = StartEioServer(EioBackend.Portable);
        var epollEndpoint = StartEioServer(EioBackend.Epoll);
        var uringEndpoint = StartEioServer(EioBackend.Uring);

        _baselineListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _baselineListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _baselineListener.Listen(512);
        _baselineStop = new CancellationTokenSource();
        _ = BaselineAcceptLoopAsync(_baselineListener, _baselineStop.Token);

        _eioClients = ConnectAll(eioEndpoint);
        _epollClients = ConnectAll(epollEndpoint);
        _uringClients = ConnectAll(uringEndpoint);
        _baselineClients = ConnectAll(_baselineListener.LocalEndPoint!);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var c in _eioClients.Concat(_epollClients).Concat(_uringClients).Concat(_baselineClients))
        {
            c.Dispose();
        }

        _eioStops.ForEach(s => s.TryResolve(true));
        _eioThreads.ForEach(t => t.Join(TimeSpan.FromSeconds(5)));
        _baselineStop?.Cancel();
        _baselineListener?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Connections * RoundTrips)]
    public Task PlainSocketServer() => DriveAsync(_baselineClients);

    [Benchmark(OperationsPerInvoke = Connections * RoundTrips)]
    public Task EioSharpServer() => DriveAsync(_eioClients);

    [Benchmark(OperationsPerInvoke = Connections * RoundTrips)]
    public Task EioSharpEpollServer() => DriveAsync(_epollClients);

    [Benchmark(OperationsPerInvoke = Connections * RoundTrips)]
    public Task EioSharpUringServer() => DriveAsync(_uringClients);

    /// <summary>Starts an EioSharp echo server on its own thread on <paramref name="backend"/>.</summary>
    private EndPoint StartEioServer(EioBackend backend)
    {
        var ready = new ManualResetEventSlim();
        EndPoint? endpoint = null;
        var thread = new Thread(() => EioMain.Run(async env =>
        {
            var (stop, stopper) = Promise.Create<bool>();
            lock (_eioStops)
            {
                _eioStops.Add(stopper);
            }

            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, new IPEndPoint(IPAddress.Loopback, 0), backlog: 512);
                endpoint = listener.ListeningEndPoint;
                ready.Set();
                await listener.RunServerAsync(EioEchoAsync, _ => { }, stop: stop);
            });
        }, new EioOptions { Backend = backend })) { IsBackground = true };
        thread.Start();
        ready.Wait();
        _eioThreads.Add(thread);
        return endpoint!;
    }

    private static Socket[] ConnectAll(EndPoint endpoint)
    {
        var clients = new Socket[Connections];
        for (int i = 0; i < Connections; i++)
        {
            clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            clients[i].Connect(endpoint);
        }

        return clients;
    }

    private static Task DriveAsync(Socket[] clients) => Task.WhenAll(clients.Select(c => Task.Run(() => ClientLoopAsync(c))));

    private static async Task ClientLoopAsync(Socket c)
    {
        var buf = new byte[Line.Length];
        for (int i = 0; i < RoundTrips; i++)
        {
            await c.SendAsync(Line, SocketFlags.None);
            int got = 0;
            while (got < buf.Length)
            {
                int n = await c.ReceiveAsync(buf.AsMemory(got), SocketFlags.None);
                if (n == 0)
                {
                    throw new IOException("server closed");
                }

                got += n;
            }
        }
    }

    private static async Task EioEchoAsync(StreamSocket conn, EndPoint peer)
    {
        var buf = new byte[4096];
        int n;
        while ((n = await conn.ReadAsync(buf)) > 0)
        {
            await conn.WriteAsync(buf.AsMemory(0, n));
        }
    }

    private static async Task BaselineAcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket c;
            try
            {
                c = await listener.AcceptAsync(ct);
            }
            catch (Exception)
            {
                return;
            }

            c.NoDelay = true;
            _ = Task.Run(async () =>
            {
                using (c)
                {
                    var buf = new byte[4096];
                    try
                    {
                        int n;
                        while ((n = await c.ReceiveAsync(buf, SocketFlags.None, ct)) > 0)
                        {
                            await c.SendAsync(buf.AsMemory(0, n), SocketFlags.None, ct);
                        }
                    }
                    catch (Exception)
                    {
                        // client went away or shutdown
                    }
                }
            }, ct);
        }
    }
}
