using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.Backends;
using EioSharp.Net;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The conformance suite for the rest of <c>env.Net</c> (issue 15): UDP and Unix-domain (stream and datagram) sockets, run
/// against every real backend, each checking that the backend serves the socket itself (epoll and io_uring no longer fall
/// back to the portable transports for them). Same rules as <see cref="NetConformanceTests"/>.
/// </summary>
[Collection("FdCount")]
public class NetConformanceSocketKindsTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    public static TheoryData<EioBackend> Backends => NetConformanceTests.Backends;

    private static T Run<T>(EioBackend backend, Func<Stdenv, Task<T>> main) => NetConformanceTests.RunOn(backend, main);

    /// <summary>The transport family each backend must use ("Socket" = portable, "Epoll", "Uring").</summary>
    private static void AssertServedBy(EioBackend backend, object transport)
    {
        string expected = backend switch
        {
            EioBackend.Epoll => "Epoll",
            EioBackend.Uring => "Uring",
            _ => "Socket",
        };
        Assert.StartsWith(expected, transport.GetType().Name);
    }

    private static string TempSocketPath() => Path.Combine(Path.GetTempPath(), $"eio-{Guid.NewGuid():N}"[..20] + ".sock");

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void UdpSendToReceiveFromAndConnectedSendRoundTrip(EioBackend backend)
    {
        string outcome = Run(backend, async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var a = env.Net.OpenDatagram(sw, Loopback0);
                var b = env.Net.OpenDatagram(sw, Loopback0);
                AssertServedBy(backend, a.Transport);
                var buf = new byte[64];
                for (int i = 0; i < 50; i++)
                {
                    await a.SendToAsync(b.LocalEndPoint!, Encoding.ASCII.GetBytes($"ping {i}"));
                    var (n, sender) = await b.ReceiveFromAsync(buf);
                    Assert.Equal(a.LocalEndPoint, sender);
                    await b.SendToAsync(sender, buf.AsMemory(0, n));
                    var (m, from) = await a.ReceiveFromAsync(buf);
                    Assert.Equal(b.LocalEndPoint, from);
                    if (i % 10 == 0)
                    {
                        log.Add(Encoding.ASCII.GetString(buf, 0, m));
                    }
                }

                // Connected: send/receive without addresses; a longer datagram is truncated to the buffer.
                a.Connect(b.LocalEndPoint!);
                b.Connect(a.LocalEndPoint!);
                await a.SendAsync("connected"u8.ToArray());
                int k = await b.ReceiveAsync(buf);
                log.Add(Encoding.ASCII.GetString(buf, 0, k));
                await b.SendAsync(new byte[100]);
                log.Add((await a.ReceiveAsync(new byte[10])).ToString());
            });
            return string.Join(",", log);
        });
        Assert.Equal("ping 0,ping 10,ping 20,ping 30,ping 40,connected,10", outcome);
    }

    // Several fibers receiving from one datagram socket at once, by ReceiveFromAsync and ReceiveAsync (the StatsD proxy's
    // receive fibers share one socket), as
    // .NET's sockets and io_uring allow: every datagram reaches exactly one of them. Session 19: epoll refused the second
    // waiter ("Another fiber is already reading from this socket."), which aborted the proxy on --backend epoll.
    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void SeveralFibersReceiveFromOneDatagramSocketAtOnce(EioBackend backend)
    {
        const int Receivers = 3, Datagrams = 60;
        var got = Run(backend, async env =>
        {
            var received = new List<string>();
            try
            {
                await Switch.RunAsync(async sw =>
                {
                    var a = env.Net.OpenDatagram(sw, Loopback0);
                    var b = env.Net.OpenDatagram(sw, Loopback0);
                    AssertServedBy(backend, b.Transport);
                    b.Connect(a.LocalEndPoint!); // so that connected receives (ReceiveAsync) take part too
                    for (int r = 0; r < Receivers; r++)
                    {
                        bool connected = r % 2 == 1;
                        Fiber.Fork(sw, async () =>
                        {
                            var buf = new byte[64];
                            while (true)
                            {
                                int n = connected ? await b.ReceiveAsync(buf) : (await b.ReceiveFromAsync(buf)).Length;
                                received.Add(Encoding.ASCII.GetString(buf, 0, n));
                            }
                        });
                    }

                    await Fiber.YieldAsync(); // every receiver waits before the first datagram is sent
                    for (int i = 0; i < Datagrams; i++)
                    {
                        await a.SendToAsync(b.LocalEndPoint!, Encoding.ASCII.GetBytes($"d{i}"));
                        if (i % 7 == 0)
                        {
                            await Fiber.YieldAsync();
                        }
                    }

                    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
                    while (received.Count < Datagrams && DateTime.UtcNow < deadline)
                    {
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(2));
                    }

                    sw.Fail(new OperationCanceledException("done")); // stops the receivers
                });
            }
            catch (OperationCanceledException)
            {
            }

            return received;
        });
        Assert.Equal(Enumerable.Range(0, Datagrams).Select(i => $"d{i}").Order(), got.Order());
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void CancelledDatagramReceivesWriteNoBufferAndLoseNoDatagram(EioBackend backend)
    {
        string outcome = Run(backend, async env =>
        {
            string result = "";
            await Switch.RunAsync(async sw =>
            {
                var a = env.Net.OpenDatagram(sw, Loopback0);
                var b = env.Net.OpenDatagram(sw, Loopback0);
                result = await NetConformanceTests.CancelledReceivesLoseNothingAsync(
                    env, async m => (await b.ReceiveFromAsync(m)).Length, d => a.SendToAsync(b.LocalEndPoint!, d));
            });
            return result;
        });
        Assert.Equal("payload!|########", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void UnixStreamEchoRoundTripsAndAStaleSocketFileIsReplaced(EioBackend backend)
    {
        string path = TempSocketPath();
        try
        {
            string outcome = Run(backend, async env =>
            {
                var log = new List<string>();
                for (int round = 0; round < 2; round++)
                {
                    // Round 2 listens on the file round 1 left behind (stale: nobody listens there any more).
                    await Switch.RunAsync(async sw =>
                    {
                        var ep = new UnixDomainSocketEndPoint(path);
                        var listener = env.Net.Listen(sw, ep);
                        var client = await env.Net.ConnectAsync(sw, ep);
                        var (server, peer) = await listener.AcceptAsync(sw);
                        AssertServedBy(backend, client.Transport);
                        Assert.IsType<UnixDomainSocketEndPoint>(peer);
                        Assert.Equal(path, server.LocalEndPoint?.ToString());
                        Fiber.Fork(sw, async () =>
                        {
                            var b = new byte[64];
                            int n;
                            while ((n = await server.ReadAsync(b)) > 0)
                            {
                                await server.WriteAsync(b.AsMemory(0, n));
                            }

                            server.Close();
                        });
                        var back = new byte[16];
                        for (int i = 0; i < 20; i++)
                        {
                            var line = Encoding.ASCII.GetBytes($"unix {i,10}\n");
                            await client.WriteAsync(line);
                            int got = 0;
                            while (got < line.Length)
                            {
                                got += await client.ReadAsync(back.AsMemory(got));
                            }

                            Assert.Equal(line, back[..got]);
                        }

                        await client.ShutdownAsync(EioSharp.IO.ShutdownCommand.Send);
                        log.Add($"eof {await client.ReadAsync(back)}");
                        listener.Close();
                    });
                }

                return string.Join(",", log);
            });
            Assert.Equal("eof 0,eof 0", outcome);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void UnixDatagramsCarryTheSendersPath(EioBackend backend)
    {
        string pathA = TempSocketPath(), pathB = TempSocketPath();
        try
        {
            string outcome = Run(backend, async env =>
            {
                string result = "";
                await Switch.RunAsync(async sw =>
                {
                    var a = env.Net.OpenDatagram(sw, new UnixDomainSocketEndPoint(pathA));
                    var b = env.Net.OpenDatagram(sw, new UnixDomainSocketEndPoint(pathB));
                    AssertServedBy(backend, b.Transport);
                    await a.SendToAsync(new UnixDomainSocketEndPoint(pathB), "hello"u8.ToArray());
                    var buf = new byte[16];
                    var (n, sender) = await b.ReceiveFromAsync(buf);
                    await b.SendToAsync(sender, buf.AsMemory(0, n));
                    var (m, from) = await a.ReceiveFromAsync(buf);
                    result = $"{Encoding.ASCII.GetString(buf, 0, m)} from {(from.ToString() == pathB ? "B" : from.ToString())}, sender {(sender.ToString() == pathA ? "A" : sender.ToString())}";
                });
                return result;
            });
            Assert.Equal("hello from B, sender A", outcome);
        }
        finally
        {
            File.Delete(pathA);
            File.Delete(pathB);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void ConnectToAUnixPathNobodyListensOnFails(EioBackend backend)
    {
        string path = TempSocketPath();
        Assert.NotEqual(SocketError.Success, NetConformanceTests.ConnectError(backend, new UnixDomainSocketEndPoint(path)));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void AQueuedDatagramIsReceivedAtOnce(EioBackend backend)
    {
        // Servers rely on it (the StatsD proxy's drain at shutdown: the first receive that would wait means the queue is
        // empty). On loopback a datagram is in the receiver's queue once SendTo has returned.
        string outcome = Run(backend, async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var a = env.Net.OpenDatagram(sw, Loopback0);
                var b = env.Net.OpenDatagram(sw, Loopback0);
                var buf = new byte[16];
                await a.SendToAsync(b.LocalEndPoint!, "one"u8.ToArray());
                var from = b.ReceiveFromAsync(buf);
                log.Add($"from {from.IsCompleted} {(await from).Length}");
                await a.SendToAsync(b.LocalEndPoint!, "two!"u8.ToArray());
                var plain = b.ReceiveAsync(buf);
                log.Add($"plain {plain.IsCompleted} {await plain}");
            });
            return string.Join(",", log);
        });
        Assert.Equal("from True 3,plain True 4", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void AConnectedUdpSendReportsThePeersPortUnreachable(EioBackend backend)
    {
        // Held, never read and connected elsewhere: Linux answers datagrams to this port with ICMP "port unreachable",
        // which a connected UDP socket reports as ECONNREFUSED on a later send (the StatsD proxy counts them as send errors).
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        holder.Bind(Loopback0);
        holder.Connect(new IPEndPoint(IPAddress.Loopback, 9));
        var down = holder.LocalEndPoint!;
        var error = Run(backend, async env =>
        {
            SocketError result = SocketError.Success;
            await Switch.RunAsync(async sw =>
            {
                var s = env.Net.OpenDatagram(sw, Loopback0);
                s.Connect(down);
                for (int i = 0; i < 200 && result == SocketError.Success; i++)
                {
                    try
                    {
                        await s.SendAsync("x"u8.ToArray());
                        await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(5));
                    }
                    catch (NetException e)
                    {
                        result = e.SocketError;
                    }
                }
            });
            return result;
        });
        Assert.Equal(SocketError.ConnectionRefused, error);
    }

    [SkippableFact]
    public void IoUringOperationsAreReusedInSteadyState()
    {
        // Runs alone (the FdCount collection): no other test creates io_uring operations meanwhile.
        long created = Run(EioBackend.Uring, async env =>
        {
            long before = 0;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                var buf = new byte[16];
                for (int i = 0; i < 1100; i++)
                {
                    if (i == 100)
                    {
                        before = EioSharp.Backends.Uring.UringOp.Created; // after the warm-up
                    }

                    await client.WriteAsync(buf);
                    int got = 0;
                    while (got < 16)
                    {
                        got += await server.ReadAsync(buf.AsMemory(got));
                    }
                }
            });
            return EioSharp.Backends.Uring.UringOp.Created - before;
        });
        Assert.Equal(0, created);
    }
}
