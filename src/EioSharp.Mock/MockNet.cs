using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.IO;
using EioSharp.Net;

namespace EioSharp.Mock;

/// <summary>A scripted network for the mock backend: every call is traced, and its results come from queued actions.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Net</c> (<c>Eio_mock.Net.make "mocknet"</c>). Pass it to the code under test, or make it the
/// environment's network with <c>MockMain.Run(env =&gt; ..., net: mocknet)</c> (then <see cref="Stdenv.Net"/> returns it).
/// Script results with <see cref="OnListen"/>, <see cref="OnConnect"/>, <see cref="OnDatagramSocket"/> and
/// <see cref="OnGetAddrInfo"/> (actions from <see cref="MockAction"/>: <c>Return</c>, <c>Raise</c>, <c>AwaitPromise</c>...);
/// connections are <see cref="MockFlow"/>s, scripted and traced as usual. Trace lines, through <see cref="TraceLog"/>:
/// <c>+mocknet: listen on tcp:127.0.0.1:80</c>, <c>+mocknet: connect to tcp:127.0.0.1:80</c>,
/// <c>+mocknet: datagram_socket udp:127.0.0.1:8125</c>, <c>+mocknet: getaddrinfo ~service:80 example.com</c> (addresses
/// printed like Eio's <c>Sockaddr.pp</c>; the label replaces <c>mocknet</c>).
/// <para><b>Errors</b>: an operation with no action queued throws <see cref="InvalidOperationException"/>
/// (<c>Mock connect handler not configured</c>), as in Eio. <see cref="NetworkCapability.Listen"/> and
/// <see cref="NetworkCapability.OpenDatagram"/> are synchronous, so their actions must finish at once (<c>Return</c>,
/// <c>Raise</c>). A name lookup scripted to return no address throws <see cref="NetException"/> naming the host (S30).</para>
/// <para><b>Scheduling</b>: everything runs in the calling fiber on the mock domain; no thread is involved, so runs are
/// deterministic and virtual time applies.</para>
/// <para><b>Thread safety</b>: not thread-safe; use from the mock domain.</para>
/// </remarks>
public sealed class MockNet : NetworkCapability
{
    private readonly MockActionQueue<MockListeningSocket> _listen = new();
    private readonly MockActionQueue<MockFlow> _connect = new();
    private readonly MockActionQueue<MockDatagramSocket> _datagram = new();
    private readonly MockActionQueue<IPAddress[]> _getaddrinfo = new();
    private readonly MockActionQueue<(string Host, string Service)> _getnameinfo = new();

    /// <summary>Creates a mock network.</summary>
    /// <param name="label">The name used in trace lines.</param>
    /// <exception cref="ArgumentNullException"><paramref name="label"/> is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.make</c>.</remarks>
    public MockNet(string label = "mocknet")
    {
        Label = label ?? throw new ArgumentNullException(nameof(label));
    }

    /// <summary>The name used in trace lines.</summary>
    public string Label { get; }

    /// <summary>Queues results for the next calls to <see cref="NetworkCapability.Listen"/>.</summary>
    /// <param name="actions">One action per call: <c>Return(listeningSocket)</c> or <c>Raise(exception)</c>; each
    /// <see cref="MockListeningSocket"/> should be returned by one listen only.</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.on_listen</c>.</remarks>
    public void OnListen(params MockAction<MockListeningSocket>[] actions) => _listen.Enqueue(actions);

    /// <summary>Queues results for the next calls to <see cref="NetworkCapability.ConnectAsync(Switch, EndPoint, IReadOnlyList{SocketOptionSetting}?)"/>.</summary>
    /// <param name="actions">One action per call: <c>Return(flow)</c> (the connection's data, scripted on the flow),
    /// <c>Raise(new NetException(..., SocketError.ConnectionRefused))</c>, <c>AwaitPromise(p)</c>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.on_connect</c>.</remarks>
    public void OnConnect(params MockAction<MockFlow>[] actions) => _connect.Enqueue(actions);

    /// <summary>Queues results for the next calls to <see cref="NetworkCapability.OpenDatagram"/>.</summary>
    /// <param name="actions">One action per call: <c>Return(datagramSocket)</c> or <c>Raise(exception)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.on_datagram_socket</c>.</remarks>
    public void OnDatagramSocket(params MockAction<MockDatagramSocket>[] actions) => _datagram.Enqueue(actions);

    /// <summary>Queues results for the next calls to <see cref="NetworkCapability.GetAddrInfoAsync(string, int)"/>.</summary>
    /// <param name="actions">One action per call: <c>Return(new[] { IPAddress.Loopback })</c> (the port asked for is added to
    /// each address), <c>Raise(exception)</c>, <c>AwaitPromise(p)</c>... An empty array makes the lookup throw (S30).</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.on_getaddrinfo</c>.</remarks>
    public void OnGetAddrInfo(params MockAction<IPAddress[]>[] actions) => _getaddrinfo.Enqueue(actions);

    /// <inheritdoc/>
    /// <remarks>Traces <c>label: listen on tcp:...</c>, then performs the next <see cref="OnListen"/> action. The socket's
    /// <see cref="ListeningSocket.ListeningEndPoint"/> is <paramref name="endpoint"/> as given (port 0 stays 0).</remarks>
    /// <exception cref="InvalidOperationException">No listen action is queued, or the action would wait.</exception>
    public override ListeningSocket Listen(Switch sw, EndPoint endpoint, int backlog = 128, bool reuseAddress = true, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        TraceLog.Line($"{Label}: listen on {MockAddress.Format(endpoint, "tcp")}");
        var socket = _listen.RunSynchronously("listen", "Listen");
        var transport = new MockListenerTransport(socket, endpoint);
        transport.Options.Apply(options);
        return new ListeningSocket(sw, transport);
    }

    /// <inheritdoc/>
    /// <remarks>Traces <c>label: connect to tcp:...</c>, then performs the next <see cref="OnConnect"/> action; the flow it
    /// returns becomes the connection (closed with <paramref name="sw"/>; its <see cref="StreamSocket.RemoteEndPoint"/> is
    /// <paramref name="endpoint"/>, its <see cref="StreamSocket.LocalEndPoint"/> is null).</remarks>
    /// <exception cref="InvalidOperationException">No connect action is queued.</exception>
    public override async Task<StreamSocket> ConnectAsync(Switch sw, EndPoint endpoint, IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        Fiber.Check();
        TraceLog.Line($"{Label}: connect to {MockAddress.Format(endpoint, "tcp")}");
        var flow = await _connect.Next("connect");
        var transport = new MockStreamTransport(flow, null, endpoint);
        transport.Options.Apply(options);
        return new StreamSocket(sw, transport);
    }

    /// <inheritdoc/>
    /// <remarks>Traces <c>label: datagram_socket udp:...</c>, then performs the next <see cref="OnDatagramSocket"/> action.</remarks>
    /// <exception cref="InvalidOperationException">No datagram socket action is queued, or the action would wait.</exception>
    public override DatagramSocket OpenDatagram(Switch sw, EndPoint endpoint, bool reuseAddress = false, bool reusePort = false,
        IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoint);
        sw.Check();
        TraceLog.Line($"{Label}: datagram_socket {MockAddress.Format(endpoint, "udp")}");
        var socket = _datagram.RunSynchronously("datagram_socket", "OpenDatagram");
        var transport = new MockDatagramTransport(socket, endpoint);
        transport.Options.Apply(options);
        return new DatagramSocket(sw, transport);
    }

    /// <inheritdoc/>
    /// <remarks>Traces <c>label: getaddrinfo ~service:PORT HOST</c>, then performs the next <see cref="OnGetAddrInfo"/>
    /// action (also for literal addresses, as in Eio).</remarks>
    /// <exception cref="InvalidOperationException">No getaddrinfo action is queued.</exception>
    public override async Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        Fiber.Check();
        TraceLog.Line($"{Label}: getaddrinfo ~service:{port} {host}");
        var addresses = await _getaddrinfo.Next("getaddrinfo");
        if (addresses is null || addresses.Length == 0)
        {
            throw new NetException($"getaddrinfo {host}: no addresses found", SocketError.HostNotFound);
        }

        return addresses.Select(a => new IPEndPoint(a, port)).ToArray();
    }

    /// <summary>Queues results for the next calls to <see cref="GetNameInfoAsync"/>.</summary>
    /// <param name="actions">One action per call: <c>Return(("host", "http"))</c>, <c>Raise(exception)</c>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.on_getnameinfo</c>.</remarks>
    public void OnGetNameInfo(params MockAction<(string Host, string Service)>[] actions) => _getnameinfo.Enqueue(actions);

    /// <inheritdoc/>
    /// <remarks>Traces <c>label: getnameinfo ADDRESS</c>, then performs the next <see cref="OnGetNameInfo"/> action (no real
    /// resolver is asked).</remarks>
    /// <exception cref="InvalidOperationException">No getnameinfo action is queued.</exception>
    public override async Task<(string Host, string Service)> GetNameInfoAsync(EndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        Fiber.Check();
        TraceLog.Line($"{Label}: getnameinfo {MockAddress.Format(endpoint, "tcp")}");
        return await _getnameinfo.Next("getnameinfo");
    }

    /// <inheritdoc/>
    public override string ToString() => $"MockNet {Label}";
}

/// <summary>A scripted listening socket: what <see cref="MockNet.OnListen"/> hands to a listen, and where accepted connections are queued.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Net.listening_socket</c>. Accepting performs the actions queued by <see cref="OnAccept"/> in order and
/// traces <c>label: accepted connection from tcp:...</c>; closing traces <c>label: closed</c> (once, S29).
/// <para><b>[ext]</b> With no action queued, an accept waits (cancellably) until <see cref="OnAccept"/> queues one, as a
/// real socket waits for a client (Eio's mock fails with "not configured" instead). A server left waiting with nothing
/// else to run is reported by the mock backend as <see cref="DeadlockDetectedException"/>: stop it (for example with the
/// <c>stop</c> promise of <see cref="ListeningSocket.RunServerAsync(Func{StreamSocket, System.Net.EndPoint, Task}, Action{Exception}, int, EioSharp.Domains.DomainManager?, int, Promise{bool}?)"/>) once the scripted clients are served.</para>
/// <para><b>Thread safety</b>: not thread-safe; use from the mock domain.</para>
/// </remarks>
public sealed class MockListeningSocket
{
    private readonly MockActionQueue<(MockFlow Flow, EndPoint Peer)> _accepts = new();

    /// <summary>Creates a scripted listening socket.</summary>
    /// <param name="label">The name used in trace lines (Eio's tests use names such as <c>tcp/80</c>).</param>
    /// <exception cref="ArgumentNullException"><paramref name="label"/> is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.listening_socket</c>.</remarks>
    public MockListeningSocket(string label = "listening-socket")
    {
        Label = label ?? throw new ArgumentNullException(nameof(label));
    }

    /// <summary>The name used in trace lines.</summary>
    public string Label { get; }

    /// <summary>Queues results for the next accepts (after those already queued), waking an accept that is waiting.</summary>
    /// <param name="actions">One action per accept: <c>Return((flow, peer))</c> with <c>EndPoint peer</c> (the flow becomes
    /// the connection, owned by the accepting switch), <c>Raise(exception)</c>, <c>AwaitPromise(p)</c>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    /// <remarks>Eio: <c>Eio_mock.Net.on_accept</c>.</remarks>
    public void OnAccept(params MockAction<(MockFlow Flow, EndPoint Peer)>[] actions) => _accepts.Enqueue(actions);

    internal ValueTask<(MockFlow Flow, EndPoint Peer)> NextAcceptAsync() => _accepts.NextOrWaitAsync();

    /// <inheritdoc/>
    public override string ToString() => $"MockListeningSocket {Label}";
}

/// <summary>A scripted datagram socket: what <see cref="MockNet.OnDatagramSocket"/> hands to <see cref="NetworkCapability.OpenDatagram"/>.</summary>
/// <remarks>
/// Eio: <c>Eio_mock.Net.on_datagram_socket</c> returns the socket; scripting its traffic is <b>[ext]</b> (Eio's mock has no
/// scripted datagram socket). Receives perform the actions queued by <see cref="OnReceive"/> (each returns one datagram, as
/// text sent as UTF-8, and its sender; with none queued a receive waits, cancellably, until one is queued) and trace
/// <c>label: received "..." from udp:...</c>; a datagram longer than the buffer is truncated, as with UDP. Sends perform
/// the actions queued by <see cref="OnSend"/> (none queued: accept) and trace <c>label: sent "..." to udp:...</c>.
/// <see cref="DatagramSocket.Connect"/> traces <c>label: connect to udp:...</c>; closing traces <c>label: closed</c> once (S29).
/// <para><b>Thread safety</b>: not thread-safe; use from the mock domain.</para>
/// </remarks>
public sealed class MockDatagramSocket
{
    private readonly MockActionQueue<(string Data, EndPoint Sender)> _receives = new();
    private readonly Queue<MockEffect> _sends = new();

    /// <summary>Creates a scripted datagram socket.</summary>
    /// <param name="label">The name used in trace lines.</param>
    /// <exception cref="ArgumentNullException"><paramref name="label"/> is null.</exception>
    public MockDatagramSocket(string label = "udp")
    {
        Label = label ?? throw new ArgumentNullException(nameof(label));
    }

    /// <summary>The name used in trace lines.</summary>
    public string Label { get; }

    /// <summary>Queues datagrams for the next receives (after those already queued), waking a receive that is waiting.</summary>
    /// <param name="actions">One action per receive: <c>Return(("payload", sender))</c> with <c>EndPoint sender</c>,
    /// <c>Raise(exception)</c>, <c>AwaitPromise(p)</c>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    public void OnReceive(params MockAction<(string Data, EndPoint Sender)>[] actions) => _receives.Enqueue(actions);

    /// <summary>Queues actions for the next sends (after those already queued).</summary>
    /// <param name="actions">One action per send: <see cref="MockAction.Ok"/>, <see cref="MockAction.Raise(Exception)"/>, <c>AwaitPromise(p)</c>...</param>
    /// <exception cref="ArgumentNullException"><paramref name="actions"/> or one of its items is null.</exception>
    public void OnSend(params MockEffect[] actions)
    {
        ArgumentNullException.ThrowIfNull(actions);
        foreach (var a in actions)
        {
            _sends.Enqueue(a ?? throw new ArgumentNullException(nameof(actions)));
        }
    }

    internal ValueTask<(string Data, EndPoint Sender)> NextReceiveAsync() => _receives.NextOrWaitAsync();

    internal ValueTask NextSendAsync() => _sends.TryDequeue(out var a) ? a.Run() : ValueTask.CompletedTask;

    /// <inheritdoc/>
    public override string ToString() => $"MockDatagramSocket {Label}";
}

/// <summary>Prints addresses like Eio's <c>Eio.Net.Sockaddr.pp</c>: <c>tcp:127.0.0.1:80</c>, <c>udp:[::1]:53</c>, <c>unix:/path</c>.</summary>
internal static class MockAddress
{
    public static string Format(EndPoint endpoint, string protocol) => endpoint switch
    {
        IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"{protocol}:[{ip.Address}]:{ip.Port}",
        IPEndPoint ip => $"{protocol}:{ip.Address}:{ip.Port}",
        UnixDomainSocketEndPoint unix => $"unix:{unix}",
        _ => endpoint.ToString() ?? endpoint.GetType().Name,
    };
}

/// <summary>A connection over a <see cref="MockFlow"/>.</summary>
internal sealed class MockStreamTransport(MockFlow flow, EndPoint? local, EndPoint? remote) : StreamTransport
{
    private bool _closed;

    public override EndPoint? RemoteEndPoint => remote;

    public override EndPoint? LocalEndPoint => local;

    public override bool IsClosed => _closed;

    public override bool NoDelay { get; set; } = true;

    public override SocketOptionTarget Options { get; } = new TableSocketOptions();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer) => flow.ReadAsync(buffer);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> data) => flow.WriteAsync(data);

    public override ValueTask ShutdownAsync(ShutdownCommand command) => flow.ShutdownAsync(command);

    public override bool Close()
    {
        if (_closed)
        {
            return false;
        }

        _closed = true;
        flow.Close();
        return true;
    }
}

/// <summary>A listening socket whose connections come from a <see cref="MockListeningSocket"/>'s script.</summary>
internal sealed class MockListenerTransport(MockListeningSocket script, EndPoint endpoint) : ListenerTransport
{
    private bool _closed;

    public override EndPoint ListeningEndPoint => endpoint;

    public override SocketOptionTarget Options { get; } = new TableSocketOptions();

    public override bool IsClosed => _closed;

    public override async ValueTask<(StreamTransport Connection, EndPoint Peer)> AcceptAsync()
    {
        ObjectDisposedException.ThrowIf(_closed, script);
        Fiber.Check();
        var (flow, peer) = await script.NextAcceptAsync();
        ArgumentNullException.ThrowIfNull(flow);
        ArgumentNullException.ThrowIfNull(peer);
        TraceLog.Line($"{script.Label}: accepted connection from {MockAddress.Format(peer, "tcp")}");
        return (new MockStreamTransport(flow, endpoint, peer), peer);
    }

    public override bool Close()
    {
        if (_closed)
        {
            return false;
        }

        _closed = true;
        TraceLog.Line($"{script.Label}: closed");
        return true;
    }
}

/// <summary>A datagram socket whose traffic comes from a <see cref="MockDatagramSocket"/>'s script.</summary>
internal sealed class MockDatagramTransport(MockDatagramSocket script, EndPoint local) : DatagramTransport
{
    private EndPoint? _connected;
    private bool _closed;

    public override EndPoint? LocalEndPoint => local;

    public override SocketOptionTarget Options { get; } = new TableSocketOptions();

    public override async ValueTask SendToAsync(EndPoint destination, ReadOnlyMemory<byte> datagram)
    {
        Start();
        await script.NextSendAsync();
        TraceLog.Line($"{script.Label}: sent {OCamlQuote.String(datagram.Span)} to {MockAddress.Format(destination, "udp")}");
    }

    public override void Connect(EndPoint destination)
    {
        ObjectDisposedException.ThrowIf(_closed, script);
        TraceLog.Line($"{script.Label}: connect to {MockAddress.Format(destination, "udp")}");
        _connected = destination;
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> datagram)
    {
        ObjectDisposedException.ThrowIf(_closed, script);
        var destination = _connected ?? throw new NetException("send: the socket is not connected", SocketError.NotConnected);
        return SendToAsync(destination, datagram);
    }

    public override async ValueTask<(int Length, EndPoint Sender)> ReceiveFromAsync(Memory<byte> buffer)
    {
        Start();
        var (data, sender) = await script.NextReceiveAsync();
        var bytes = Encoding.UTF8.GetBytes(data ?? string.Empty);
        int n = Math.Min(bytes.Length, buffer.Length);
        bytes.AsSpan(0, n).CopyTo(buffer.Span);
        TraceLog.Line($"{script.Label}: received {OCamlQuote.String(bytes.AsSpan(0, n))} from {MockAddress.Format(sender, "udp")}");
        return (n, sender);
    }

    public override async ValueTask<int> ReceiveAsync(Memory<byte> buffer) => (await ReceiveFromAsync(buffer)).Length;

    public override void SetReceiveBufferSize(int bytes)
    {
    }

    public override bool Close()
    {
        if (_closed)
        {
            return false;
        }

        _closed = true;
        TraceLog.Line($"{script.Label}: closed");
        return true;
    }

    private void Start()
    {
        ObjectDisposedException.ThrowIf(_closed, script);
        Fiber.Check();
    }
}
