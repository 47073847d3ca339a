using System.Net;
using System.Net.Sockets;
using EioSharp.Domains;
using EioSharp.IO;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Net;

/// <summary>A socket listening for stream connections, owned by a switch.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.listening_socket</c>.
/// <para><b>Thread safety</b>: accept loops on several domains may share one listening socket (see
/// <see cref="RunServerAsync(Func{StreamSocket, EndPoint, Task}, Action{Exception}, int, DomainManager?, int, Promise{bool}?)"/>); closing it never pulls the OS socket from under an accept in flight (S29).</para>
/// </remarks>
public sealed class ListeningSocket : IClosable
{
    private readonly ListenerTransport _transport;
    private readonly ReleaseHook? _hook;
    private readonly Domain _ownerDomain;

    internal ListeningSocket(Switch sw, Socket socket)
        : this(sw, new SocketListenerTransport(socket))
    {
    }

    internal ListeningSocket(Switch sw, ListenerTransport transport)
    {
        _transport = transport;
        _ownerDomain = sw.Domain;
        _hook = sw.OnRelease(Close);
    }

    /// <summary>The address the socket is bound to (with the real port when port 0 was asked for).</summary>
    public EndPoint ListeningEndPoint => _transport.ListeningEndPoint;

    /// <summary>The transport under this socket (tests and benchmarks).</summary>
    internal ListenerTransport Transport => _transport;

    /// <summary>True once closed.</summary>
    public bool IsClosed => _transport.IsClosed;

    /// <summary>Sets a socket option (see <see cref="SocketOptions"/>).</summary>
    /// <typeparam name="T">The option's value type.</typeparam>
    /// <param name="option">The option, for example <see cref="SocketOptions.KeepAlive"/>.</param>
    /// <param name="value">The value.</param>
    /// <exception cref="NetException">The kernel refused (the option does not apply to this socket, or the value is invalid).</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <exception cref="NotSupportedException">This socket's backend has no options (a scripted mock socket keeps them in a table).</exception>
    /// <remarks>Eio: <c>Eio.Net.setsockopt</c>. A system call on the calling thread; never suspends.</remarks>
    public void SetOption<T>(SocketOption<T> option, T value)
    {
        ArgumentNullException.ThrowIfNull(option);
        var (v, e) = option.Encode(value);
        _transport.Options.Set(option, v, e);
    }

    /// <summary>Reads a socket option (see <see cref="SocketOptions"/>).</summary>
    /// <typeparam name="T">The option's value type.</typeparam>
    /// <param name="option">The option.</param>
    /// <returns>The kernel's value (which may differ from the value set: Linux doubles buffer sizes).</returns>
    /// <exception cref="NetException">The option does not apply to this socket.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    /// <exception cref="NotSupportedException">This socket's backend has no options.</exception>
    /// <remarks>Eio: <c>Eio.Net.getsockopt</c>. A system call on the calling thread; never suspends.</remarks>
    public T GetOption<T>(SocketOption<T> option)
    {
        ArgumentNullException.ThrowIfNull(option);
        return option.Decode(_transport.Options.Get(option));
    }

    /// <summary>Waits for a connection and returns it, owned by <paramref name="sw"/>.</summary>
    /// <param name="sw">The switch that will own the connection (on the calling domain).</param>
    /// <returns>The connection and the peer's address.</returns>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <exception cref="NetException">Accepting failed.</exception>
    /// <exception cref="ObjectDisposedException">The listening socket is closed.</exception>
    /// <remarks>Eio: <c>Net.accept ~sw</c>.</remarks>
    public async ValueTask<(StreamSocket Connection, EndPoint Peer)> AcceptAsync(Switch sw)
    {
        ArgumentNullException.ThrowIfNull(sw);
        sw.Check();
        var (connection, peer) = await _transport.AcceptAsync();
        return (new StreamSocket(sw, connection), peer);
    }

    /// <summary>The first wait after an accept failed for lack of resources; each further failure doubles it, up to <see cref="MaxAcceptBackoff"/>.</summary>
    public static readonly TimeSpan MinAcceptBackoff = TimeSpan.FromMilliseconds(5);

    /// <summary>The longest wait between two accepts that failed for lack of resources (as Go's <c>net/http</c> server).</summary>
    public static readonly TimeSpan MaxAcceptBackoff = TimeSpan.FromSeconds(1);

    /// <summary>While accepts keep failing for lack of resources, at most one report per this interval goes to <c>onError</c>.</summary>
    public static readonly TimeSpan AcceptFailureReportInterval = TimeSpan.FromSeconds(10);

    /// <summary>Whether an accept failed because the process or system ran out of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM), which closing connections frees: the server should wait and retry, not stop.</summary>
    /// <param name="error">The socket error of the failed accept.</param>
    /// <returns><see langword="true"/> for <see cref="SocketError.TooManyOpenSockets"/> (EMFILE, ENFILE) and <see cref="SocketError.NoBufferSpaceAvailable"/> (ENOBUFS, ENOMEM).</returns>
    public static bool IsTransientAcceptError(SocketError error) => error is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable;

    /// <summary>File descriptors <see cref="ConnectionCapacity"/> keeps free beyond those already open: for sockets and
    /// files opened later, and for the .NET runtime, which needs two descriptors (a pipe) for every thread it starts.</summary>
    /// <remarks>Redis keeps 32 in all (<c>CONFIG_MIN_RESERVED_FDS</c>); a .NET process holds some 70 before its first
    /// connection (about two per runtime thread) and starts threads at any time (thread-pool workers, timers, blocking
    /// offloads), and a thread the runtime cannot start is an <see cref="OutOfMemoryException"/> that usually ends the
    /// process, so the headroom is larger and comes on top of what is open.</remarks>
    public const int DescriptorReserve = 64;

    /// <summary>The most connections a server should hold at once so that connections never exhaust the process's file
    /// descriptors: the soft <c>RLIMIT_NOFILE</c>, less the descriptors open now, less <paramref name="reserve"/>. Call it once
    /// the server is set up (listening) and pass it as <c>maxConnections</c> to <see cref="RunServerAsync(Func{StreamSocket, EndPoint, Task}, Action{Exception}, int, DomainManager?, int, Promise{bool}?)"/>: further clients
    /// then wait in the kernel's backlog until a connection closes, instead of taking the descriptors the runtime needs to
    /// start a thread.</summary>
    /// <param name="reserve">Descriptors left free beyond those open now (default <see cref="DescriptorReserve"/>); not negative.</param>
    /// <returns>At least 1; <see cref="int.MaxValue"/> when the limit is unknown (not Linux) or unlimited.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reserve"/> is negative.</exception>
    /// <remarks>[ext] Not in Eio. Reads the limit and counts <c>/proc/self/fd</c> on each call.</remarks>
    public static int ConnectionCapacity(int reserve = DescriptorReserve)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(reserve);
        if (!OperatingSystem.IsLinux() || GetRLimit(RlimitNofile, out RLimit limit) != 0 || limit.Current >= int.MaxValue)
        {
            return int.MaxValue;
        }

        long open;
        try
        {
            open = Directory.EnumerateFileSystemEntries("/proc/self/fd").LongCount() - 1; // less the one listing the directory
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            open = 0;
        }

        return (int)Math.Max(1, (long)limit.Current - open - reserve);
    }

    private const int RlimitNofile = 7; // Linux

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static extern int GetRLimit(int resource, out RLimit limit);

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    /// <summary>The key under which a handler exception given to <c>onError</c> carries the peer's <see cref="EndPoint"/> in <see cref="Exception.Data"/>.</summary>
    public const string PeerDataKey = "EioSharp.Peer";

    /// <summary>The peer whose connection handler threw <paramref name="error"/>, as recorded by the accept loop (S23).</summary>
    /// <param name="error">An exception given to <c>onError</c>.</param>
    /// <returns>The peer's address, or null if <paramref name="error"/> did not come from a connection handler.</returns>
    /// <remarks>Eio adds this as context ("handling connection from ...") with <c>Exn.add_context</c>; .NET exceptions keep
    /// their message and type, so the address goes into <see cref="Exception.Data"/>.</remarks>
    public static EndPoint? PeerOf(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error.Data[PeerDataKey] as EndPoint;
    }

    /// <summary>Accepts one connection and handles it in a new fiber on <paramref name="sw"/>.</summary>
    /// <param name="sw">The switch that owns the handler fiber and the connection.</param>
    /// <param name="handler">Handles the connection; the connection is closed when it returns or throws.</param>
    /// <param name="onError">Receives the handler's exceptions as thrown (never cancellation), with the peer's address in
    /// <see cref="Exception.Data"/> (<see cref="PeerOf"/>, S23),
    /// and reports of accepts failing for lack of resources (see <see cref="RunServerAsync(Func{StreamSocket, EndPoint, Task}, Action{Exception}, int, DomainManager?, int, Promise{bool}?)"/>).</param>
    /// <returns>An awaitable that completes once the connection is accepted and the handler started.</returns>
    /// <exception cref="CancelledException">Cancelled while waiting for a connection.</exception>
    /// <exception cref="NetException">Accepting failed for another reason than lack of resources.</exception>
    /// <remarks>Eio: <c>Net.accept_fork</c>. An accept that fails for lack of resources (<see cref="IsTransientAcceptError"/>:
    /// out of file descriptors or kernel memory) is retried after a back-off, as in <see cref="RunServerAsync(Func{StreamSocket, EndPoint, Task}, Action{Exception}, int, DomainManager?, int, Promise{bool}?)"/>.</remarks>
    public async ValueTask AcceptForkAsync(Switch sw, Func<StreamSocket, EndPoint, Task> handler, Action<Exception> onError)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(onError);
        var backoff = new AcceptBackoff(onError);
        while (true)
        {
            StreamSocket conn;
            EndPoint peer;
            try
            {
                (conn, peer) = await AcceptAsync(sw);
            }
            catch (NetException e) when (IsTransientAcceptError(e.SocketError))
            {
                await backoff.WaitAsync(e);
                continue;
            }

            Fiber.Fork(sw, () => HandleAsync(conn, peer, handler, onError, null));
            return;
        }
    }

    /// <summary>The state of one accept loop's back-off after accepts failed for lack of resources.</summary>
    private sealed class AcceptBackoff(Action<Exception> onError)
    {
        private TimeSpan _delay;
        private long _failures;
        private long _lastReportTicks = long.MinValue;

        /// <summary>Counts the failure, reports it if none was reported within the interval, and sleeps the current delay.</summary>
        public async ValueTask WaitAsync(NetException e)
        {
            _delay = _delay == TimeSpan.Zero ? MinAcceptBackoff : TimeSpan.FromTicks(Math.Min(_delay.Ticks * 2, MaxAcceptBackoff.Ticks));
            _failures++;
            long now = Domain.Current!.Now;
            if (_lastReportTicks == long.MinValue || now - _lastReportTicks >= AcceptFailureReportInterval.Ticks)
            {
                _lastReportTicks = now;
                onError(new NetException(
                    $"accept failed {_failures} time(s) for lack of resources ({e.SocketError}: {e.Message}); " +
                    $"still serving, retrying with back-off up to {MaxAcceptBackoff.TotalSeconds:0.###}s (reported at most every {AcceptFailureReportInterval.TotalSeconds:0}s)",
                    e.SocketError,
                    e));
                _failures = 0;
            }

            await ClockBase.SleepOnCurrentDomainAsync(_delay);
        }

        /// <summary>An accept succeeded: the next failure starts from the shortest delay again.</summary>
        public void Reset() => _delay = TimeSpan.Zero;
    }

    private static async Task HandleAsync(StreamSocket conn, EndPoint peer, Func<StreamSocket, EndPoint, Task> handler, Action<Exception> onError, FiberSemaphore? slots)
    {
        try
        {
            // The handler starts in a work item of its own, not inside the accept loop's (Fork runs a child at once): the
            // loop first goes back to waiting for the next connection (re-arms the epoll listener's one-shot readiness,
            // issues the Portable backend's next .NET accept). A handler that then holds the domain synchronously (a Lua
            // script past busy-reply-threshold, calling Domain.ProcessEventsWhileBlocked) leaves the accept loop able to
            // take the next client in the nested rounds; inline, it held the loop mid-iteration and no client was accepted.
            await Fiber.YieldAsync();
            await handler(conn, peer);
        }
        catch (CancelledException)
        {
            throw;
        }
        catch (Exception ex)
        {
            ex.Data[PeerDataKey] = peer; // Eio passes the original exception (Exn.add_context only annotates it)
            onError(ex);
        }
        finally
        {
            conn.Close();
            slots?.Release();
        }
    }

    /// <summary>Runs a server: accepts connections in a loop and handles each in its own fiber.</summary>
    /// <param name="handler">Handles one connection; must be thread-safe when <paramref name="additionalDomains"/> &gt; 0.
    /// The connection is closed when it returns.</param>
    /// <param name="onError">Receives handler exceptions as thrown (never cancellation), with the peer's address in <see cref="PeerOf"/>; and, at
    /// most once per <see cref="AcceptFailureReportInterval"/> per accept loop, a <see cref="NetException"/> reporting accepts that
    /// failed for lack of resources.</param>
    /// <param name="maxConnections">The most connections handled at once across all domains (one shared semaphore, taken
    /// before accept and released when the handler ends, S20). Must be positive.</param>
    /// <param name="domainManager">Starts the additional domains; required when <paramref name="additionalDomains"/> &gt; 0.</param>
    /// <param name="additionalDomains">How many more domains run their own accept loop on this socket (n + 1 loops in total, S21).</param>
    /// <param name="stop">When resolved, accepting stops, in-flight connections are awaited, and this returns (S22).</param>
    /// <returns>A task that completes after a graceful stop.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxConnections"/> &lt;= 0 or <paramref name="additionalDomains"/> &lt; 0.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="additionalDomains"/> &gt; 0 without a domain manager.</exception>
    /// <exception cref="CancelledException">The caller was cancelled: accepting stops and connections are aborted.</exception>
    /// <remarks>
    /// Eio: <c>Net.run_server</c>.
    /// <para>
    /// <b>Errors</b>: an accept that fails because the process or the system ran out of file descriptors or kernel memory
    /// (EMFILE, ENFILE, ENOBUFS, ENOMEM; <see cref="IsTransientAcceptError"/>) does not stop the server: the loop waits
    /// <see cref="MinAcceptBackoff"/>, doubling up to <see cref="MaxAcceptBackoff"/> while the failures continue, and tries
    /// again, so it serves again as soon as connections close. Connections the kernel queued meanwhile wait in the backlog.
    /// A peer that reset its connection before the accept is skipped. Any other accept error stops the server.
    /// </para>
    /// <para>
    /// <b>Scheduling</b>: each connection's handler runs in a fiber of its own that starts after the accept loop has gone
    /// back to waiting for the next connection (one yield, not at once inside the loop's work item as a plain fork would
    /// run it), so a handler that holds its domain (e.g. in <see cref="Domain.ProcessEventsWhileBlocked"/>) cannot keep the
    /// server from accepting other clients.
    /// </para>
    /// </remarks>
    public async Task RunServerAsync(
        Func<StreamSocket, EndPoint, Task> handler,
        Action<Exception> onError,
        int maxConnections = int.MaxValue,
        DomainManager? domainManager = null,
        int additionalDomains = 0,
        Promise<bool>? stop = null) =>
        await RunServerAsync(new ServerListeners([this]), handler, onError, maxConnections, domainManager, additionalDomains, stop); // it validates the arguments

    /// <summary>Runs a server on a set of listening sockets that may change while it runs (<see cref="ServerListeners"/>):
    /// accepts connections on each of them in a loop on every domain, and handles each connection in its own fiber.</summary>
    /// <param name="listeners">The sockets; a socket added while the server runs is accepted on by every domain, a socket
    /// retired stops being accepted on and is closed, while the connections it gave keep running.</param>
    /// <param name="handler">Handles one connection; must be thread-safe when <paramref name="additionalDomains"/> &gt; 0.
    /// The connection is closed when it returns.</param>
    /// <param name="onError">As in <see cref="RunServerAsync(Func{StreamSocket, EndPoint, Task}, Action{Exception}, int, DomainManager?, int, Promise{bool}?)"/>.</param>
    /// <param name="maxConnections">The most connections handled at once across all domains and all sockets (one shared
    /// semaphore, taken before accept and released when the handler ends, S20). Must be positive.</param>
    /// <param name="domainManager">Starts the additional domains; required when <paramref name="additionalDomains"/> &gt; 0.</param>
    /// <param name="additionalDomains">How many more domains run their own accept loops (n + 1 per socket in total, S21).</param>
    /// <param name="stop">When resolved, accepting stops on every socket, in-flight connections are awaited, and this returns (S22).</param>
    /// <returns>A task that completes after a graceful stop.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="listeners"/>, <paramref name="handler"/> or
    /// <paramref name="onError"/> is null, or <paramref name="additionalDomains"/> &gt; 0 without a domain manager.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxConnections"/> &lt;= 0 or <paramref name="additionalDomains"/> &lt; 0.</exception>
    /// <exception cref="InvalidOperationException">Another server is running on <paramref name="listeners"/>.</exception>
    /// <exception cref="CancelledException">The caller was cancelled: accepting stops and connections are aborted.</exception>
    /// <exception cref="NetException">Accepting on a socket failed for another reason than those below (the server stops).</exception>
    /// <remarks>
    /// [ext] Eio's <c>Net.run_server</c> over several sockets. Each domain runs one switch for its connections (the
    /// server's switch on that domain, where <see cref="ServerListeners.Replace"/> opens sockets) and one accept loop per
    /// socket; retiring a socket cancels its loops only. Accept errors are handled as in the one-socket overload (back-off
    /// on lack of resources, a peer that reset skipped); an accept failing because its socket was retired ends that
    /// socket's loop quietly.
    /// </remarks>
    public static async Task RunServerAsync(
        ServerListeners listeners,
        Func<StreamSocket, EndPoint, Task> handler,
        Action<Exception> onError,
        int maxConnections = int.MaxValue,
        DomainManager? domainManager = null,
        int additionalDomains = 0,
        Promise<bool>? stop = null)
    {
        ArgumentNullException.ThrowIfNull(listeners);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(onError);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxConnections, 0);
        ArgumentOutOfRangeException.ThrowIfNegative(additionalDomains);
        if (additionalDomains > 0)
        {
            ArgumentNullException.ThrowIfNull(domainManager);
        }

        var slots = new FiberSemaphore(maxConnections);

        async Task AcceptOnAsync(ServerListeners.Entry entry, Switch connections)
        {
            var socket = entry.Socket;
            var backoff = new AcceptBackoff(onError);
            while (!entry.IsRetired)
            {
                await slots.AcquireAsync();
                StreamSocket conn;
                EndPoint peer;
                try
                {
                    (conn, peer) = await socket.AcceptAsync(connections);
                    backoff.Reset();
                }
                catch (NetException e) when (e.SocketError is SocketError.ConnectionAborted or SocketError.ConnectionReset)
                {
                    slots.Release();
                    continue; // The peer gave up before we accepted: not a server failure.
                }
                catch (NetException e) when (IsTransientAcceptError(e.SocketError) && !entry.IsRetired)
                {
                    // Out of file descriptors or kernel memory: closing connections frees them, so wait and retry.
                    slots.Release();
                    await backoff.WaitAsync(e);
                    continue;
                }
                catch (Exception e) when (entry.IsRetired && e is NetException or ObjectDisposedException)
                {
                    slots.Release();
                    return; // Retired: the kernel stopped listening (EINVAL) or the socket is closed.
                }
                catch
                {
                    slots.Release();
                    throw;
                }

                Fiber.Fork(connections, () => HandleAsync(conn, peer, handler, onError, slots));
            }
        }

        async Task DomainLoopAsync()
        {
            await Switch.RunAsync(async connections =>
            {
                var domain = Domain.Current!;
                listeners.RegisterDomain(domain, connections);
                try
                {
                    async Task AcceptingAsync()
                    {
                        await Switch.RunAsync(async accepting =>
                        {
                            var started = new HashSet<ServerListeners.Entry>();
                            while (true)
                            {
                                var (entries, changed) = listeners.Snapshot();
                                foreach (var entry in entries)
                                {
                                    if (started.Add(entry) && entry.TryJoin())
                                    {
                                        // One accept loop per domain on every socket: a transport whose accept strategy
                                        // depends on it (io_uring's multishot accept: one-shot when shared) adapts.
                                        entry.Socket.Transport.ExpectAcceptLoops(additionalDomains + 1);
                                        Fiber.Fork(accepting, async () =>
                                        {
                                            try
                                            {
                                                await Fiber.FirstAsync(() => AcceptOnAsync(entry, connections), async () => await entry.Retired.Promise.AwaitAsync());
                                            }
                                            finally
                                            {
                                                entry.Leave();
                                            }
                                        }, "server-accept");
                                    }
                                }

                                started.RemoveWhere(e => e.IsRetired);
                                await changed.AwaitAsync();
                            }
                        }, "server-accepting");
                    }

                    if (stop is null)
                    {
                        await AcceptingAsync();
                    }
                    else
                    {
                        await Fiber.FirstAsync(AcceptingAsync, async () => await stop.AwaitAsync());
                    }
                }
                finally
                {
                    listeners.UnregisterDomain(domain);
                }
            }, "server-connections");
        }

        listeners.BeginRun();
        try
        {
            await Switch.RunAsync(async sw =>
            {
                for (int i = 0; i < additionalDomains; i++)
                {
                    Fiber.Fork(sw, () => domainManager!.RunAsync(DomainLoopAsync, $"server-{i + 1}"));
                }

                await DomainLoopAsync();
            }, "server");
        }
        finally
        {
            listeners.EndRun();
        }
    }

    /// <summary>Makes the kernel stop listening at once (new connections refused); the socket stays open until closed.</summary>
    internal void StopListening() => _transport.StopListening();

    /// <inheritdoc/>
    public void Close()
    {
        if (_transport.Close() && _hook is not null && ReferenceEquals(Domain.Current, _ownerDomain))
        {
            _hook.Remove();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"ListeningSocket {ListeningEndPoint}";
}
