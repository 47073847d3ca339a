using System.Net;
using System.Net.Sockets;
using EioSharp.Domains;
using EioSharp.IO;
using EioSharp.Sync;

namespace EioSharp.Net;

/// <summary>A socket listening for stream connections, owned by a switch.</summary>
/// <remarks>
/// Eio: <c>Eio.Net.listening_socket</c>.
/// <para><b>Thread safety</b>: accept loops on several domains may share one listening socket (see
/// <see cref="RunServerAsync"/>); closing it never pulls the OS socket from under an accept in flight (S29).</para>
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

    /// <summary>True once closed.</summary>
    public bool IsClosed => _transport.IsClosed;

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

    /// <summary>Accepts one connection and handles it in a new fiber on <paramref name="sw"/>.</summary>
    /// <param name="sw">The switch that owns the handler fiber and the connection.</param>
    /// <param name="handler">Handles the connection; the connection is closed when it returns or throws.</param>
    /// <param name="onError">Receives the handler's exceptions (never cancellation), wrapped with the peer's address in the message (S23).</param>
    /// <returns>An awaitable that completes once the connection is accepted and the handler started.</returns>
    /// <exception cref="CancelledException">Cancelled while waiting for a connection.</exception>
    /// <remarks>Eio: <c>Net.accept_fork</c>.</remarks>
    public async ValueTask AcceptForkAsync(Switch sw, Func<StreamSocket, EndPoint, Task> handler, Action<Exception> onError)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(onError);
        var (conn, peer) = await AcceptAsync(sw);
        Fiber.Fork(sw, () => HandleAsync(conn, peer, handler, onError, null));
    }

    private static async Task HandleAsync(StreamSocket conn, EndPoint peer, Func<StreamSocket, EndPoint, Task> handler, Action<Exception> onError, FiberSemaphore? slots)
    {
        try
        {
            await handler(conn, peer);
        }
        catch (CancelledException)
        {
            throw;
        }
        catch (Exception ex)
        {
            onError(new ConnectionHandlerException(peer, ex));
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
    /// <param name="onError">Receives handler exceptions (never cancellation), with the peer's address in the message.</param>
    /// <param name="maxConnections">The most connections handled at once across all domains (one shared semaphore, taken
    /// before accept and released when the handler ends, S20). Must be positive.</param>
    /// <param name="domainManager">Starts the additional domains; required when <paramref name="additionalDomains"/> &gt; 0.</param>
    /// <param name="additionalDomains">How many more domains run their own accept loop on this socket (n + 1 loops in total, S21).</param>
    /// <param name="stop">When resolved, accepting stops, in-flight connections are awaited, and this returns (S22).</param>
    /// <returns>A task that completes after a graceful stop.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxConnections"/> &lt;= 0 or <paramref name="additionalDomains"/> &lt; 0.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="additionalDomains"/> &gt; 0 without a domain manager.</exception>
    /// <exception cref="CancelledException">The caller was cancelled: accepting stops and connections are aborted.</exception>
    /// <remarks>Eio: <c>Net.run_server</c>.</remarks>
    public async Task RunServerAsync(
        Func<StreamSocket, EndPoint, Task> handler,
        Action<Exception> onError,
        int maxConnections = int.MaxValue,
        DomainManager? domainManager = null,
        int additionalDomains = 0,
        Promise<bool>? stop = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(onError);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxConnections, 0);
        ArgumentOutOfRangeException.ThrowIfNegative(additionalDomains);
        if (additionalDomains > 0)
        {
            ArgumentNullException.ThrowIfNull(domainManager);
        }

        var slots = new FiberSemaphore(maxConnections);

        async Task AcceptLoopAsync()
        {
            await Switch.RunAsync(async connections =>
            {
                async Task AcceptingAsync()
                {
                    while (true)
                    {
                        await slots.AcquireAsync();
                        StreamSocket conn;
                        EndPoint peer;
                        try
                        {
                            (conn, peer) = await AcceptAsync(connections);
                        }
                        catch (NetException e) when (e.SocketError is SocketError.ConnectionAborted or SocketError.ConnectionReset)
                        {
                            slots.Release();
                            continue; // The peer gave up before we accepted: not a server failure.
                        }
                        catch
                        {
                            slots.Release();
                            throw;
                        }

                        Fiber.Fork(connections, () => HandleAsync(conn, peer, handler, onError, slots));
                    }
                }

                if (stop is null)
                {
                    await AcceptingAsync();
                }
                else
                {
                    await Fiber.FirstAsync(AcceptingAsync, async () => await stop.AwaitAsync());
                }
            }, "server-connections");
        }

        await Switch.RunAsync(async sw =>
        {
            for (int i = 0; i < additionalDomains; i++)
            {
                Fiber.Fork(sw, () => domainManager!.RunAsync(AcceptLoopAsync, $"server-{i + 1}"));
            }

            await AcceptLoopAsync();
        }, "server");
    }

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

/// <summary>A connection handler failed; the message names the peer (S23).</summary>
public sealed class ConnectionHandlerException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="peer">The peer's address.</param>
    /// <param name="inner">What the handler threw.</param>
    public ConnectionHandlerException(EndPoint peer, Exception inner)
        : base($"Error handling connection from {peer}: {inner.Message}", inner)
    {
        Peer = peer;
    }

    /// <summary>The peer's address.</summary>
    public EndPoint Peer { get; }
}
