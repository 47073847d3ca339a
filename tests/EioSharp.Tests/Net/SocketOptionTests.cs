using System.Net;
using System.Net.Sockets;
using EioSharp.Backends;
using EioSharp.Mock;
using EioSharp.Net;
using static EioSharp.Mock.MockAction;

namespace EioSharp.Tests.Net;

/// <summary>Socket options (Eio's <c>Net.Sockopt</c>), connecting by name with Happy Eyeballs (<c>Net.with_tcp_connect</c>),
/// service names and <c>getnameinfo</c>, on every real backend (loopback only) and on the mock.</summary>
public class SocketOptionTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    public static TheoryData<EioBackend> Backends => new() { EioBackend.Portable, EioBackend.Epoll, EioBackend.Uring };

    private static T Run<T>(EioBackend backend, Func<Stdenv, Task<T>> main)
    {
        string? unavailable = backend switch
        {
            EioBackend.Epoll => EpollBackend.TryCreate(EioBackendOptions.Default, out string? e) is null ? e : null,
            EioBackend.Uring => UringBackend.TryCreate(EioBackendOptions.Default, out string? e) is null ? e : null,
            _ => null,
        };
        Skip.If(unavailable is not null, $"the {backend} backend is unavailable here: {unavailable}");
        return EioMain.Run(backend, main);
    }

    private static bool HaveIPv6()
    {
        try
        {
            using var s = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Options_set_on_a_connection_read_back_on_both_ends(EioBackend backend)
    {
        var seen = Run(backend, async env =>
        {
            var r = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                foreach (var s in new[] { client, server })
                {
                    Assert.True(s.GetOption(SocketOptions.NoDelay)); // the default for TCP connections
                    Assert.False(s.GetOption(SocketOptions.KeepAlive));
                    s.SetOption(SocketOptions.KeepAlive, true);
                    s.SetOption(SocketOptions.TcpKeepIdle, TimeSpan.FromSeconds(42));
                    s.SetOption(SocketOptions.TcpKeepInterval, TimeSpan.FromSeconds(7));
                    s.SetOption(SocketOptions.TcpKeepCount, 3);
                    s.SetOption(SocketOptions.NoDelay, false);
                    s.SetOption(SocketOptions.Linger, TimeSpan.FromSeconds(5));
                    s.SetOption(SocketOptions.IPTimeToLive, 17);
                    s.SetOption(SocketOptions.ReceiveBufferSize, 65536);
                    s.SetOption(SocketOptions.SendBufferSize, 32768);
                    r.Add(string.Join(",",
                        s.GetOption(SocketOptions.KeepAlive), s.GetOption(SocketOptions.TcpKeepIdle).TotalSeconds,
                        s.GetOption(SocketOptions.TcpKeepInterval).TotalSeconds, s.GetOption(SocketOptions.TcpKeepCount),
                        s.GetOption(SocketOptions.NoDelay), s.GetOption(SocketOptions.Linger), s.GetOption(SocketOptions.IPTimeToLive)));
                    // Linux doubles the buffer sizes it reports; at least what was asked.
                    Assert.True(s.GetOption(SocketOptions.ReceiveBufferSize) >= 65536);
                    Assert.True(s.GetOption(SocketOptions.SendBufferSize) >= 32768);
                    s.SetOption(SocketOptions.Linger, null);
                    Assert.Null(s.GetOption(SocketOptions.Linger));
                    Assert.Equal(NoDelayOf(s), s.GetOption(SocketOptions.NoDelay));
                }
            });
            return r;
        });
        Assert.Equal(["True,42,7,3,False,00:00:05,17", "True,42,7,3,False,00:00:05,17"], seen);
    }

    private static bool NoDelayOf(StreamSocket s) => s.NoDelay;

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Options_given_to_connect_are_set_before_connecting(EioBackend backend)
    {
        var (noDelay, keepAlive, rcvbuf) = Run(backend, async env =>
        {
            (bool, bool, int) r = default;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint,
                    [SocketOptions.NoDelay.With(false), SocketOptions.KeepAlive.With(true), SocketOptions.ReceiveBufferSize.With(100_000)]);
                r = (client.GetOption(SocketOptions.NoDelay), client.GetOption(SocketOptions.KeepAlive),
                    client.GetOption(SocketOptions.ReceiveBufferSize));
            });
            return r;
        });
        Assert.False(noDelay); // the option given wins over the NODELAY default
        Assert.True(keepAlive);
        Assert.True(rcvbuf >= 100_000);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void ReusePort_given_to_listen_lets_two_listeners_share_a_port_and_is_refused_without(EioBackend backend)
    {
        var outcome = Run(backend, async env =>
        {
            string r = "";
            await Switch.RunAsync(async sw =>
            {
                var reuse = new[] { SocketOptions.ReusePort.With(true) };
                var a = env.Net.Listen(sw, Loopback0, reuseAddress: false, options: reuse);
                Assert.True(a.GetOption(SocketOptions.ReusePort));
                var b = env.Net.Listen(sw, a.ListeningEndPoint, reuseAddress: false, options: reuse);
                r += b.GetOption(SocketOptions.ReusePort) + " ";
                var e = Assert.Throws<NetException>(() => env.Net.Listen(sw, a.ListeningEndPoint, reuseAddress: false));
                r += e.SocketError;
                await Task.CompletedTask;
            });
            return r;
        });
        Assert.Equal("True AddressAlreadyInUse", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void IPv6Only_is_set_before_bind_on_an_IPv6_listener(EioBackend backend)
    {
        Skip.IfNot(HaveIPv6(), "no IPv6 loopback here");
        var (v6only, accepted) = Run(backend, async env =>
        {
            (bool, bool) r = default;
            await Switch.RunAsync(async sw =>
            {
                var l = env.Net.Listen(sw, new IPEndPoint(IPAddress.IPv6Loopback, 0), options: [SocketOptions.IPv6Only.With(true)]);
                var c = await env.Net.ConnectAsync(sw, l.ListeningEndPoint);
                var (s, _) = await l.AcceptAsync(sw);
                r = (l.GetOption(SocketOptions.IPv6Only), s.RemoteEndPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 });
                c.Close();
            });
            return r;
        });
        Assert.True(v6only);
        Assert.True(accepted);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void A_TCP_option_on_a_datagram_socket_fails_and_a_closed_socket_throws_ObjectDisposed(EioBackend backend)
    {
        var r = Run(backend, async env =>
        {
            var sb = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var d = env.Net.OpenDatagram(sw, Loopback0, options: [SocketOptions.ReceiveBufferSize.With(50_000), SocketOptions.IPTimeToLive.With(3)]);
                sb.Add($"ttl={d.GetOption(SocketOptions.IPTimeToLive)} rcv>={d.GetOption(SocketOptions.ReceiveBufferSize) >= 50_000}");
                sb.Add(Assert.Throws<NetException>(() => d.SetOption(SocketOptions.NoDelay, true)).Message.Contains("TCP_NODELAY").ToString());
                var listener = env.Net.Listen(sw, Loopback0);
                var c = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                c.Close();
                Assert.Throws<ObjectDisposedException>(() => c.SetOption(SocketOptions.KeepAlive, true));
                Assert.Throws<ArgumentOutOfRangeException>(() => SocketOptions.SendBufferSize.With(-1));
            });
            return sb;
        });
        Assert.Equal(["ttl=3 rcv>=True", "True"], r);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void WithTcpConnect_by_name_and_service_number_reaches_a_loopback_server_and_closes_the_connection(EioBackend backend)
    {
        var (reply, closed) = Run(backend, async env =>
        {
            (string, bool) r = default;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                int port = ((IPEndPoint)listener.ListeningEndPoint).Port;
                Fiber.Fork(sw, async () =>
                {
                    var (s, _) = await listener.AcceptAsync(sw);
                    await s.WriteAsync("hello"u8.ToArray());
                    s.Close();
                });
                StreamSocket? kept = null;
                string got = await env.Net.WithTcpConnectAsync("localhost", port.ToString(), async conn =>
                {
                    kept = conn;
                    var b = new byte[16];
                    int n = await conn.ReadAsync(b);
                    return System.Text.Encoding.ASCII.GetString(b, 0, n);
                });
                r = (got, kept!.IsClosed);
            });
            return r;
        });
        Assert.Equal("hello", reply);
        Assert.True(closed);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void ConnectAny_skips_a_refused_address_and_reports_all_failures_when_none_connect(EioBackend backend)
    {
        var r = Run(backend, async env =>
        {
            var lines = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                // A bound, never-listening socket: connecting to its port is refused, and the port stays ours.
                using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                holder.Bind(Loopback0);
                var refused = (IPEndPoint)holder.LocalEndPoint!;
                var listener = env.Net.Listen(sw, Loopback0);
                var c = await env.Net.ConnectAnyAsync(sw, [refused, listener.ListeningEndPoint], attemptDelay: TimeSpan.FromSeconds(30));
                lines.Add(c.RemoteEndPoint!.Equals(listener.ListeningEndPoint).ToString());
                var e = await Assert.ThrowsAsync<NetException>(() => env.Net.ConnectAnyAsync(sw, [refused, refused]));
                lines.Add(e.SocketError.ToString());
                lines.Add(((AggregateException)e.InnerException!).InnerExceptions.Count.ToString());
            });
            return lines;
        });
        Assert.Equal(["True", "ConnectionRefused", "2"], r);
    }

    [Fact]
    public void Happy_eyeballs_interleaves_families_starting_with_the_first()
    {
        EndPoint a6 = new IPEndPoint(IPAddress.Parse("::1"), 1), b6 = new IPEndPoint(IPAddress.Parse("::2"), 1);
        EndPoint a4 = new IPEndPoint(IPAddress.Parse("127.0.0.1"), 1), b4 = new IPEndPoint(IPAddress.Parse("127.0.0.2"), 1);
        Assert.Equal([a6, a4, b6, b4], NetworkCapability.HappyEyeballsOrder([a6, b6, a4, b4]));
        Assert.Equal([a4, a6, b4], NetworkCapability.HappyEyeballsOrder([a4, b4, a6]));
    }

    [Fact]
    public void Happy_eyeballs_starts_the_next_attempt_after_the_stagger_and_cancels_the_slow_one()
    {
        // Eio: Net.with_tcp_connect; mock network and virtual time: the IPv6 attempt hangs, IPv4 starts 250 ms later and
        // wins, the IPv6 attempt is cancelled and the winner is closed when the body ends.
        var net = new MockNet("net");
        var (never, _) = Promise.Create<MockFlow>();
        var t = MockMain.Trace(
            async env =>
            {
                net.OnGetAddrInfo(Return(new[] { IPAddress.IPv6Loopback, IPAddress.Loopback }));
                var flow = new MockFlow("v4");
                flow.OnRead(Return("hi"));
                net.OnConnect(
                    MockAction.Run(async () =>
                    {
                        try
                        {
                            return await never.AwaitAsync();
                        }
                        catch (CancelledException)
                        {
                            TraceLog.Line($"v6 attempt cancelled at {env.MonoClock.Now.TotalMilliseconds} ms");
                            throw;
                        }
                    }),
                    Return(flow));
                string got = await env.Net.WithTcpConnectAsync("example", "http", async conn =>
                {
                    TraceLog.Line($"connected at {env.MonoClock.Now.TotalMilliseconds} ms to {conn.RemoteEndPoint}");
                    var b = new byte[8];
                    int n = await conn.ReadAsync(b);
                    return System.Text.Encoding.ASCII.GetString(b, 0, n);
                });
                TraceLog.Line("got " + got);
            },
            net);
        Assert.Equal("""
            +net: getaddrinfo ~service:80 example
            +net: connect to tcp:[::1]:80
            +net: connect to tcp:127.0.0.1:80
            +v6 attempt cancelled at 250 ms
            +connected at 250 ms to 127.0.0.1:80
            +v4: read "hi"
            +v4: closed
            +got hi

            """, t);
    }

    [Fact]
    public void Mock_sockets_keep_their_options_in_a_table()
    {
        var net = new MockNet("net");
        var t = MockMain.Trace(
            async env =>
            {
                net.OnConnect(Return(new MockFlow("c")));
                await Switch.RunAsync(async sw =>
                {
                    var c = await env.Net.ConnectAsync(sw, new IPEndPoint(IPAddress.Loopback, 1), [SocketOptions.TcpKeepCount.With(9)]);
                    c.SetOption(SocketOptions.Linger, TimeSpan.Zero);
                    TraceLog.Line($"keepcnt={c.GetOption(SocketOptions.TcpKeepCount)} linger={c.GetOption(SocketOptions.Linger)} keepalive={c.GetOption(SocketOptions.KeepAlive)}");
                });
            },
            net);
        Assert.Equal("""
            +net: connect to tcp:127.0.0.1:1
            +keepcnt=9 linger=00:00:00 keepalive=False
            +c: closed

            """, t);
    }

    [Fact]
    public void Mock_getnameinfo_is_scripted()
    {
        var net = new MockNet("net");
        var t = MockMain.Trace(
            async env =>
            {
                net.OnGetNameInfo(Return(("example.org", "http")));
                var (host, service) = await env.Net.GetNameInfoAsync(new IPEndPoint(IPAddress.Loopback, 80));
                TraceLog.Line($"{host} {service}");
            },
            net);
        Assert.Equal("""
            +net: getnameinfo tcp:127.0.0.1:80
            +example.org http

            """, t);
    }

    [Fact]
    public void Service_names_resolve_from_the_services_database()
    {
        Assert.Equal(80, NetworkCapability.ServicePort("http"));
        Assert.Equal(80, NetworkCapability.ServicePort("www"));
        Assert.Equal(6379, NetworkCapability.ServicePort("6379"));
        Assert.Throws<ArgumentException>(() => NetworkCapability.ServicePort("no-such-service"));
        Assert.Throws<ArgumentException>(() => NetworkCapability.ServicePort("70000"));
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void GetNameInfo_names_the_loopback_host_and_the_service(EioBackend backend)
    {
        var (host, service, unnamed) = Run(backend, async env =>
        {
            var (h, s) = await env.Net.GetNameInfoAsync(new IPEndPoint(IPAddress.Loopback, 80));
            var (_, u) = await env.Net.GetNameInfoAsync(new IPEndPoint(IPAddress.Loopback, 3));
            return (h, s, u);
        });
        Assert.Equal("localhost", host); // /etc/hosts maps 127.0.0.1 to localhost
        Assert.Equal("http", service);
        Assert.Equal("3", unnamed); // no name in the services database: the number
    }
}
