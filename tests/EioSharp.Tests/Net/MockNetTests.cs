using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.IO;
using EioSharp.Mock;
using EioSharp.Net;
using static EioSharp.Mock.MockAction;

namespace EioSharp.Tests.Net;

/// <summary>Eio's mock network tests (tests/mocks.md "Networks"), restated: servers and clients against a scripted network.</summary>
public class MockNetTests
{
    private static readonly EndPoint Port80 = new IPEndPoint(IPAddress.Loopback, 80);
    private static readonly EndPoint Client1 = new IPEndPoint(IPAddress.Loopback, 37568);
    private static readonly EndPoint Client2 = new IPEndPoint(IPAddress.Loopback, 37569);

    private static Task EchoAsync(StreamSocket conn, EndPoint peer) => conn.CopyToAsync(conn).AsTask();

    [Fact]
    public void EchoServerHandlesAScriptedConnection()
    {
        // Eio: the echo_server example of tests/mocks.md, with accept_fork.
        var net = new MockNet("mocknet");
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                var connection = new MockFlow("connection");
                listening.OnAccept(Return((connection, Client1)));
                connection.OnRead(Return("foo"), Return("bar"));
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80, backlog: 5);
                    await socket.AcceptForkAsync(sw, EchoAsync, ex => TraceLog.Line("Error handling connection: " + ex.Message));
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +tcp/80: accepted connection from tcp:127.0.0.1:37568
            +connection: read "foo"
            +connection: wrote "foo"
            +connection: read "bar"
            +connection: wrote "bar"
            +connection: closed
            +tcp/80: closed

            """, t);
    }

    [Fact]
    public void S22_RunServerServesTwoScriptedClientsThenStopsGracefully()
    {
        // Each handler is forked and starts once the accept loop has gone back to its next accept (rationale §123: a
        // handler that held its domain must not keep the loop from accepting), so both scripted accepts happen first; then
        // client1 is served completely (its scripted read finishes at once) before client2. The loop then waits for a
        // third client until the stop promise is resolved at 5 s of virtual time.
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                var c1 = new MockFlow("client1");
                var c2 = new MockFlow("client2");
                c1.OnRead(Return("one\n"));
                c2.OnRead(Return("two\n"), YieldThen(Return("three\n")));
                listening.OnAccept(Return((c1, Client1)), Return((c2, Client2)));
                var (stop, stopper) = Promise.Create<bool>();
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    Fiber.Fork(sw, async () =>
                    {
                        await socket.RunServerAsync(EchoAsync, ex => TraceLog.Line("error: " + ex.Message), stop: stop);
                        TraceLog.Line($"server stopped at {env.MonoClock.Now.TotalSeconds}s");
                    });
                    await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(5));
                    TraceLog.Line($"stopping at {env.MonoClock.Now.TotalSeconds}s");
                    stopper.Resolve(true);
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +tcp/80: accepted connection from tcp:127.0.0.1:37568
            +tcp/80: accepted connection from tcp:127.0.0.1:37569
            +client1: read "one\n"
            +client1: wrote "one\n"
            +client1: closed
            +client2: read "two\n"
            +client2: wrote "two\n"
            +client2: read "three\n"
            +client2: wrote "three\n"
            +client2: closed
            +stopping at 5s
            +server stopped at 5s
            +tcp/80: closed

            """, t);
    }

    [Fact]
    public void S22_GracefulStopWaitsForTheConnectionInFlight()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                var slow = new MockFlow("slow");
                listening.OnAccept(Return((slow, Client1)));
                var (stop, stopper) = Promise.Create<bool>();
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    Fiber.Fork(sw, async () =>
                    {
                        await socket.RunServerAsync(
                            async (conn, peer) =>
                            {
                                await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(10));
                                await conn.WriteStringAsync($"done at {env.MonoClock.Now.TotalSeconds}s");
                            },
                            ex => TraceLog.Line("error: " + ex.Message),
                            stop: stop);
                        TraceLog.Line($"server stopped at {env.MonoClock.Now.TotalSeconds}s");
                    });
                    await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                    TraceLog.Line("stopping");
                    stopper.Resolve(true);
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +tcp/80: accepted connection from tcp:127.0.0.1:37568
            +stopping
            +slow: wrote "done at 10s"
            +slow: closed
            +server stopped at 10s
            +tcp/80: closed

            """, t);
    }

    [Fact]
    public void S23_HandlerErrorGoesToOnErrorWithThePeerAddress()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                var conn = new MockFlow("conn");
                conn.OnRead(Raise(new IOException("connection reset")));
                listening.OnAccept(Return((conn, Client1)));
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    await socket.AcceptForkAsync(sw, EchoAsync, ex => TraceLog.Line($"onError: {ex.GetType().Name}: {ex.Message} (peer {ListeningSocket.PeerOf(ex)})"));
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +tcp/80: accepted connection from tcp:127.0.0.1:37568
            +onError: IOException: connection reset (peer 127.0.0.1:37568)
            +conn: closed
            +tcp/80: closed

            """, t);
    }

    [Fact]
    public void RunServerBacksOffWhenAcceptRunsOutOfFileDescriptorsAndKeepsServing()
    {
        // EMFILE/ENFILE/ENOBUFS/ENOMEM are transient: the loop waits 5 ms, doubling up to 1 s, reports once per 10 s, and
        // serves the next connection. Here four accepts fail (waits 5+10+20+40 = 75 ms), then a client is served (the back-off
        // starts again from 5 ms), then eighteen more fail: the waits reach the 1 s cap, and the 18th failure, at 10,350 ms,
        // is the first more than 10 s after the first report, so it is reported with the 21 failures since.
        var net = new MockNet();
        static NetException OutOfFds() => new("accept: Too many open files", SocketError.TooManyOpenSockets);
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                var c1 = new MockFlow("client1");
                c1.OnRead(Return("one\n"));
                static MockAction<(MockFlow, EndPoint)> Fail() => Raise(OutOfFds());
                listening.OnAccept([.. Enumerable.Range(0, 4).Select(_ => Fail()), Return((c1, Client1)), .. Enumerable.Range(0, 18).Select(_ => Fail())]);
                var (stop, stopper) = Promise.Create<bool>();
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    Fiber.Fork(sw, async () =>
                    {
                        await socket.RunServerAsync(
                            async (conn, peer) =>
                            {
                                TraceLog.Line($"serving at {env.MonoClock.Now.TotalMilliseconds}ms");
                                await EchoAsync(conn, peer);
                            },
                            ex => TraceLog.Line($"onError at {env.MonoClock.Now.TotalMilliseconds}ms: {ex.Message}"),
                            stop: stop);
                        TraceLog.Line("server stopped");
                    });
                    await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(30));
                    stopper.Resolve(true);
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +onError at 0ms: accept failed 1 time(s) for lack of resources (TooManyOpenSockets: accept: Too many open files); still serving, retrying with back-off up to 1s (reported at most every 10s)
            +tcp/80: accepted connection from tcp:127.0.0.1:37568
            +serving at 75ms
            +client1: read "one\n"
            +client1: wrote "one\n"
            +client1: closed
            +onError at 10350ms: accept failed 21 time(s) for lack of resources (TooManyOpenSockets: accept: Too many open files); still serving, retrying with back-off up to 1s (reported at most every 10s)
            +server stopped
            +tcp/80: closed

            """, t);
    }

    [Fact]
    public void AnUnscriptedAcceptWaitsAndIsReportedAsADeadlock()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                net.OnListen(Return(new MockListeningSocket("tcp/80")));
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    await socket.AcceptAsync(sw);
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            Exception: DeadlockDetectedException: Deadlock detected: the run queue is empty, no timer is pending and the main fiber has not finished.

            """, t);
    }

    [Fact]
    public void AcceptWaitsForLaterScriptingAndIsCancellable()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    await Fiber.BothAsync(
                        async () =>
                        {
                            var (conn, peer) = await socket.AcceptAsync(sw);
                            TraceLog.Line($"got {peer}");
                        },
                        async () =>
                        {
                            await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                            TraceLog.Line("client arrives");
                            listening.OnAccept(Return((new MockFlow("late"), Client1)));
                        });
                    var r = await env.MonoClock.TryWithTimeoutAsync(TimeSpan.FromSeconds(2), async () => await socket.AcceptAsync(sw));
                    TraceLog.Line($"second accept timed out: {r.IsTimedOut}");
                });
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +client arrives
            +tcp/80: accepted connection from tcp:127.0.0.1:37568
            +got 127.0.0.1:37568
            +second accept timed out: True
            +late: closed
            +tcp/80: closed

            """, t);
    }

    [Fact]
    public void ClientConnectsAndExchangesLines()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var server = new MockFlow("server");
                server.OnRead(Return("+OK hello\r\n"), Return("+OK bye\r\n"));
                net.OnConnect(Return(server));
                await Switch.RunAsync(async sw =>
                {
                    var conn = await env.Net.ConnectAsync(sw, Port80);
                    TraceLog.Line($"connected to {conn.RemoteEndPoint}");
                    var reader = new BufferedReader(conn, 64);
                    TraceLog.Line("greeting: " + await reader.ReadLineAsync());
                    await conn.WriteStringAsync("QUIT\r\n");
                    TraceLog.Line("reply: " + await reader.ReadLineAsync());
                    await conn.ShutdownAsync(ShutdownCommand.Send);
                });
            },
            net);
        Assert.Equal("""
            +mocknet: connect to tcp:127.0.0.1:80
            +connected to 127.0.0.1:80
            +server: read "+OK hello\r\n"
            +greeting: +OK hello
            +server: wrote "QUIT\r\n"
            +server: read "+OK bye\r\n"
            +reply: +OK bye
            +server: shutdown send
            +server: closed

            """, t);
    }

    [Fact]
    public void StreamReaderOverAConnectionWaitsForScriptedData()
    {
        // .NET readers await with ConfigureAwait(false); over AsStream they still run on the mock domain (no deadlock).
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var server = new MockFlow("server");
                var (p, r) = Promise.Create<string>();
                server.OnRead(AwaitPromise(p));
                net.OnConnect(Return(server));
                await Switch.RunAsync(async sw =>
                {
                    var conn = await env.Net.ConnectAsync(sw, Port80);
                    await Fiber.BothAsync(
                        async () =>
                        {
                            using var reader = new StreamReader(conn.AsStream(ownsFlow: false));
                            TraceLog.Line("line: " + await reader.ReadLineAsync());
                            TraceLog.Line("line: " + await reader.ReadLineAsync());
                        },
                        async () =>
                        {
                            await env.MonoClock.SleepAsync(TimeSpan.FromSeconds(1));
                            TraceLog.Line("server replies");
                            r.Resolve("hello\nworld\n");
                        });
                });
            },
            net);
        Assert.Equal("""
            +mocknet: connect to tcp:127.0.0.1:80
            +server replies
            +server: read "hello\nworld\n"
            +line: hello
            +line: world
            +server: closed

            """, t);
    }

    [Fact]
    public void ConnectRefusedIsScriptedWithRaise()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                net.OnConnect(Raise(new NetException("connect to 127.0.0.1:80: Connection refused", SocketError.ConnectionRefused)));
                await Switch.RunAsync(async sw =>
                {
                    try
                    {
                        await env.Net.ConnectAsync(sw, Port80);
                    }
                    catch (NetException e)
                    {
                        TraceLog.Line($"{e.SocketError}: {e.Message}");
                    }

                    await env.Net.ConnectAsync(sw, Port80);
                });
            },
            net);
        Assert.Equal("""
            +mocknet: connect to tcp:127.0.0.1:80
            +ConnectionRefused: connect to 127.0.0.1:80: Connection refused
            +mocknet: connect to tcp:127.0.0.1:80
            Exception: InvalidOperationException: Mock connect handler not configured

            """, t);
    }

    [Fact]
    public void S30_GetAddrInfoReturnsScriptedAddressesAndNeverAnEmptyList()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                net.OnGetAddrInfo(Return(new[] { IPAddress.Parse("192.0.2.1"), IPAddress.IPv6Loopback }), Return(Array.Empty<IPAddress>()));
                var addrs = await env.Net.GetAddrInfoAsync("example.com", 443);
                TraceLog.Line("got " + string.Join(", ", addrs.Select(a => a.ToString())));
                try
                {
                    await env.Net.GetAddrInfoAsync("nowhere.invalid", 80);
                }
                catch (NetException e)
                {
                    TraceLog.Line($"{e.SocketError}: {e.Message}");
                }
            },
            net);
        Assert.Equal("""
            +mocknet: getaddrinfo ~service:443 example.com
            +got 192.0.2.1:443, [::1]:443
            +mocknet: getaddrinfo ~service:80 nowhere.invalid
            +HostNotFound: getaddrinfo nowhere.invalid: no addresses found

            """, t);
    }

    [Fact]
    public void DatagramSendsAndReceivesAreScripted()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var udp = new MockDatagramSocket("udp/8125");
                net.OnDatagramSocket(Return(udp));
                EndPoint sender = new IPEndPoint(IPAddress.Loopback, 5000);
                udp.OnReceive(Return(("gorets:1|c", sender)), Return(("a longer datagram", sender)));
                udp.OnSend(Ok(), Raise(new NetException("send: Connection refused", SocketError.ConnectionRefused)));
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.OpenDatagram(sw, new IPEndPoint(IPAddress.Loopback, 8125));
                    var buf = new byte[8];
                    var (n, from) = await socket.ReceiveFromAsync(buf);
                    TraceLog.Line($"got {n} bytes from {from}");
                    TraceLog.Line($"truncated to {await socket.ReceiveAsync(buf)} bytes");
                    await socket.SendToAsync(from, Encoding.ASCII.GetBytes("ack"));
                    socket.Connect(new IPEndPoint(IPAddress.Loopback, 9000));
                    try
                    {
                        await socket.SendAsync(Encoding.ASCII.GetBytes("lost"));
                    }
                    catch (NetException e)
                    {
                        TraceLog.Line(e.Message);
                    }

                    socket.Close();
                    socket.Close();
                });
            },
            net);
        Assert.Equal("""
            +mocknet: datagram_socket udp:127.0.0.1:8125
            +udp/8125: received "gorets:1" from udp:127.0.0.1:5000
            +got 8 bytes from 127.0.0.1:5000
            +udp/8125: received "a longer" from udp:127.0.0.1:5000
            +truncated to 8 bytes
            +udp/8125: sent "ack" to udp:127.0.0.1:5000
            +udp/8125: connect to udp:127.0.0.1:9000
            +send: Connection refused
            +udp/8125: closed

            """, t);
    }

    [Fact]
    public void S29_ClosingMockSocketsIsIdempotent()
    {
        var net = new MockNet();
        var t = MockMain.Trace(
            async env =>
            {
                var listening = new MockListeningSocket("tcp/80");
                net.OnListen(Return(listening));
                var flow = new MockFlow("conn");
                net.OnConnect(Return(flow));
                await Switch.RunAsync(async sw =>
                {
                    var socket = env.Net.Listen(sw, Port80);
                    socket.Close();
                    socket.Close();
                    TraceLog.Line($"listener closed: {socket.IsClosed}");
                    await Assert.ThrowsAsync<ObjectDisposedException>(async () => await socket.AcceptAsync(sw));
                    var conn = await env.Net.ConnectAsync(sw, Port80);
                    conn.Close();
                    conn.Close();
                    TraceLog.Line($"connection closed: {conn.IsClosed}");
                });
                TraceLog.Line("switch finished");
            },
            net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            +tcp/80: closed
            +listener closed: True
            +mocknet: connect to tcp:127.0.0.1:80
            +conn: closed
            +connection closed: True
            +switch finished

            """, t);
    }

    [Fact]
    public void EnvNetWithoutAMockNetIsNotSupported()
    {
        var t = MockMain.Trace(env =>
        {
            _ = env.Net;
            return Task.CompletedTask;
        });
        Assert.Equal("""
            Exception: NotSupportedException: The mock backend has no real network.

            """, t);
    }

    [Fact]
    public void ListenActionsMustFinishAtOnce()
    {
        var net = new MockNet();
        var (p, _) = Promise.Create<MockListeningSocket>();
        net.OnListen(AwaitPromise(p));
        var t = MockMain.Trace(env => Switch.RunAsync(sw => { env.Net.Listen(sw, Port80); return Task.CompletedTask; }), net);
        Assert.Equal("""
            +mocknet: listen on tcp:127.0.0.1:80
            Exception: InvalidOperationException: Listen is synchronous: script it with actions that finish at once (Return, Raise), not ones that wait.

            """, t);
    }
}
