using System.Net;
using System.Net.Sockets;
using EioSharp.Time;

namespace EioSharp.Net;

// Connecting by name: service names, Happy Eyeballs over the resolved addresses, getnameinfo. Built only on the abstract
// members (ConnectAsync, GetAddrInfoAsync), so every backend and the mock get it unchanged.
public abstract partial class NetworkCapability
{
    /// <summary>How long an attempt runs before the next address is tried alongside it (RFC 8305's recommended 250 ms).</summary>
    public static readonly TimeSpan DefaultAttemptDelay = TimeSpan.FromMilliseconds(250);

    /// <summary>Resolves <paramref name="host"/>, connects to one of its addresses (Happy Eyeballs), runs <paramref name="body"/>
    /// with the connection and closes it.</summary>
    /// <typeparam name="T">The body's result.</typeparam>
    /// <param name="host">A host name or literal address.</param>
    /// <param name="service">A port number ("6379") or a TCP service name from the services database ("http").</param>
    /// <param name="body">Uses the connection; it is closed when the body returns or throws.</param>
    /// <param name="timeout">Limit for each connection attempt (null: none); an attempt that times out counts as failed.</param>
    /// <param name="attemptDelay">Stagger between attempts (default <see cref="DefaultAttemptDelay"/>).</param>
    /// <param name="options">Socket options set on every attempt before it connects.</param>
    /// <returns>The body's result.</returns>
    /// <exception cref="NetException">The name did not resolve, or every address failed (the message names each failure;
    /// <see cref="Exception.InnerException"/> holds them).</exception>
    /// <exception cref="ArgumentException">The service name is unknown.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <remarks>Eio: <c>Net.with_tcp_connect ?timeout ~host ~service</c>. The order of attempts and the stagger are
    /// <see cref="ConnectAnyAsync"/>'s.</remarks>
    public async Task<T> WithTcpConnectAsync<T>(string host, string service, Func<StreamSocket, Task<T>> body, TimeSpan? timeout = null,
        TimeSpan? attemptDelay = null, IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var addresses = await GetAddrInfoAsync(host, service);
        return await Switch.RunAsync(async sw =>
        {
            var connection = await ConnectAnyAsync(sw, addresses, timeout, attemptDelay, options);
            try
            {
                return await body(connection);
            }
            finally
            {
                connection.Close();
            }
        });
    }

    /// <summary>As <see cref="WithTcpConnectAsync{T}"/>, for a body without a result.</summary>
    /// <param name="host">A host name or literal address.</param>
    /// <param name="service">A port number or a TCP service name.</param>
    /// <param name="body">Uses the connection.</param>
    /// <param name="timeout">Limit for each connection attempt.</param>
    /// <returns>A task that completes when the body has and the connection is closed.</returns>
    /// <remarks>Eio: <c>Net.with_tcp_connect</c>.</remarks>
    public Task WithTcpConnectAsync(string host, string service, Func<StreamSocket, Task> body, TimeSpan? timeout = null) =>
        WithTcpConnectAsync<bool>(host, service, async s => { await body(s); return true; }, timeout);

    /// <summary>Connects to the first of <paramref name="endpoints"/> that accepts, trying them Happy-Eyeballs style.</summary>
    /// <param name="sw">Owns the winning connection.</param>
    /// <param name="endpoints">The candidates (usually from <see cref="GetAddrInfoAsync(string, string)"/>), at least one.</param>
    /// <param name="timeout">Limit for each attempt (null: none).</param>
    /// <param name="attemptDelay">Stagger between attempts (default <see cref="DefaultAttemptDelay"/>; zero starts all at once).</param>
    /// <param name="options">Socket options set on every attempt before it connects.</param>
    /// <returns>The first connection made.</returns>
    /// <exception cref="NetException">Every attempt failed.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled.</exception>
    /// <remarks>
    /// Eio: the connection loop of <c>Net.with_tcp_connect</c>, with RFC 8305's ordering and stagger. Addresses are interleaved
    /// by family, starting with the family of the first (so an unreachable IPv6 route does not hold up IPv4). Attempt
    /// <c>i + 1</c> starts when attempt <c>i</c> fails or <paramref name="attemptDelay"/> after it started, whichever is first.
    /// The first attempt to connect wins: the others are cancelled, and one that connected in the same instant is closed,
    /// so exactly one connection is returned and none is left open. <b>Scheduling</b>: the attempts are fibers of the calling
    /// domain; the stagger uses the domain's timers (virtual time on the mock backend).
    /// </remarks>
    public async Task<StreamSocket> ConnectAnyAsync(Switch sw, IReadOnlyList<EndPoint> endpoints, TimeSpan? timeout = null,
        TimeSpan? attemptDelay = null, IReadOnlyList<SocketOptionSetting>? options = null)
    {
        ArgumentNullException.ThrowIfNull(sw);
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.Count == 0)
        {
            throw new ArgumentException("No addresses to connect to.", nameof(endpoints));
        }

        var delay = attemptDelay ?? DefaultAttemptDelay;
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero, nameof(attemptDelay));
        var ordered = HappyEyeballsOrder(endpoints);
        var errors = new Exception?[ordered.Count];
        StreamSocket? winner = null;
        var won = new ConnectionWonException();
        try
        {
            await Switch.RunAsync(async attempts =>
            {
                for (int i = 0; i < ordered.Count; i++)
                {
                    var (finished, finish) = Promise.Create<bool>();
                    int index = i;
                    Fiber.Fork(attempts, async () =>
                    {
                        try
                        {
                            var connection = timeout is { } t
                                ? await SystemMonoClock.Instance.WithTimeoutAsync(t, () => ConnectAsync(sw, ordered[index], options))
                                : await ConnectAsync(sw, ordered[index], options);
                            if (winner is null)
                            {
                                winner = connection;
                                attempts.Fail(won);
                            }
                            else
                            {
                                connection.Close();
                            }
                        }
                        catch (Exception e) when (e is not CancelledException)
                        {
                            errors[index] = e;
                        }
                        finally
                        {
                            finish.Resolve(true);
                        }
                    }, "connect " + ordered[index]);
                    if (index + 1 < ordered.Count)
                    {
                        await Fiber.FirstAsync(
                            async () => await finished.AwaitAsync(),
                            async () =>
                            {
                                await ClockBase.SleepOnCurrentDomainAsync(delay);
                                return true;
                            });
                    }
                }
            }, "happy-eyeballs");
        }
        catch (ConnectionWonException) when (winner is not null)
        {
        }
        catch when (winner is not null)
        {
            // Cancelled (or failed) around the win: the caller gets the exception, so the connection must not leak.
            winner.Close();
            throw;
        }

        if (winner is not null)
        {
            return winner;
        }

        var failures = errors.Where(e => e is not null).Cast<Exception>().ToArray();
        if (failures.Length == 1 && failures[0] is NetException single)
        {
            throw single;
        }

        var code = failures.OfType<NetException>().Select(e => e.SocketError).FirstOrDefault(SocketError.HostUnreachable);
        throw new NetException(
            $"connect: all {ordered.Count} addresses failed ({string.Join("; ", failures.Select(e => e.Message))})",
            code, new AggregateException(failures));
    }

    /// <summary>Orders addresses as RFC 8305 section 4: alternate families, starting with the first address's.</summary>
    /// <param name="endpoints">The addresses in resolver order.</param>
    /// <returns>The interleaved order (stable within each family).</returns>
    internal static IReadOnlyList<EndPoint> HappyEyeballsOrder(IReadOnlyList<EndPoint> endpoints)
    {
        var first = endpoints[0].AddressFamily;
        var preferred = endpoints.Where(e => e.AddressFamily == first).ToList();
        var other = endpoints.Where(e => e.AddressFamily != first).ToList();
        var result = new List<EndPoint>(endpoints.Count);
        for (int i = 0; i < Math.Max(preferred.Count, other.Count); i++)
        {
            if (i < preferred.Count)
            {
                result.Add(preferred[i]);
            }

            if (i < other.Count)
            {
                result.Add(other[i]);
            }
        }

        return result;
    }

    /// <summary>Resolves <paramref name="host"/> with a service given by name or number.</summary>
    /// <param name="host">A host name or literal address.</param>
    /// <param name="service">A port number ("8080") or a TCP service name ("http", looked up in <c>/etc/services</c>).</param>
    /// <returns>At least one address (S30).</returns>
    /// <exception cref="ArgumentException">The service is neither a port number nor a known name.</exception>
    /// <exception cref="NetException">The name could not be resolved.</exception>
    /// <remarks>Eio: <c>Net.getaddrinfo ~service</c>.</remarks>
    public Task<IReadOnlyList<IPEndPoint>> GetAddrInfoAsync(string host, string service) => GetAddrInfoAsync(host, ServicePort(service));

    /// <summary>The port of a TCP service given by number or name.</summary>
    /// <param name="service">"80" or "http".</param>
    /// <returns>The port.</returns>
    /// <exception cref="ArgumentException">Unknown service name, or a number outside 0..65535.</exception>
    /// <remarks>Eio: the <c>~service</c> lookup of <c>Net.getaddrinfo</c> (<c>getservbyname(3)</c>).</remarks>
    public static int ServicePort(string service)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        if (int.TryParse(service, out int port))
        {
            return port is >= 0 and <= 65535 ? port : throw new ArgumentException($"Port out of range: {service}", nameof(service));
        }

        foreach (var (name, aliases, p) in Services.Value)
        {
            if (name == service || aliases.Contains(service))
            {
                return p;
            }
        }

        throw new ArgumentException($"Unknown TCP service: {service}", nameof(service));
    }

    /// <summary>Finds the host and service names of an address.</summary>
    /// <param name="endpoint">An <see cref="IPEndPoint"/>.</param>
    /// <returns>The host name (the numeric address when it has none) and the TCP service name (the number when unnamed).</returns>
    /// <exception cref="ArgumentException">Not an IP endpoint.</exception>
    /// <exception cref="CancelledException">The fiber was cancelled while waiting.</exception>
    /// <remarks>Eio: <c>Net.getnameinfo</c>. The reverse lookup runs on .NET's resolver (the hosts file, then DNS); the
    /// fiber waits without blocking its domain.</remarks>
    public virtual async Task<(string Host, string Service)> GetNameInfoAsync(EndPoint endpoint)
    {
        if (endpoint is not IPEndPoint ip)
        {
            throw new ArgumentException("getnameinfo needs an IP endpoint.", nameof(endpoint));
        }

        var frame = FiberFrame.Require();
        frame.Cancel.ThrowIfCancelled();
        string host;
        try
        {
            host = (await Dns.GetHostEntryAsync(ip.Address.ToString(), frame.Cancel.Token)).HostName;
        }
        catch (Exception e) when (SocketIo.IsSocketError(e) && !frame.Cancel.IsCancelled)
        {
            host = ip.Address.ToString();
        }
        catch (Exception e) when (SocketIo.IsSocketError(e))
        {
            throw SocketIo.Map(e, frame, $"getnameinfo {ip}");
        }

        string service = ip.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (name, _, p) in Services.Value)
        {
            if (p == ip.Port)
            {
                service = name;
                break;
            }
        }

        return (host, service);
    }

    private static readonly Lazy<List<(string Name, string[] Aliases, int Port)>> Services = new(LoadServices);

    private static List<(string, string[], int)> LoadServices()
    {
        var result = new List<(string, string[], int)>();
        try
        {
            if (File.Exists("/etc/services"))
            {
                foreach (var raw in File.ReadLines("/etc/services"))
                {
                    var line = raw.Split('#')[0];
                    var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                    if (parts.Length >= 2 && parts[1].EndsWith("/tcp", StringComparison.Ordinal) &&
                        int.TryParse(parts[1].AsSpan(0, parts[1].Length - 4), out int port))
                    {
                        result.Add((parts[0], parts[2..], port));
                    }
                }
            }
        }
        catch (IOException)
        {
            // Unreadable services file: the built-in names below still resolve.
        }

        if (result.Count == 0)
        {
            result.AddRange([("ftp", [], 21), ("ssh", [], 22), ("smtp", [], 25), ("domain", [], 53), ("http", ["www"], 80),
                ("https", [], 443), ("redis", [], 6379)]);
        }

        return result;
    }

    /// <summary>Ends the attempts' switch once one connected (never escapes <see cref="ConnectAnyAsync"/>).</summary>
    private sealed class ConnectionWonException() : Exception("connected");
}
