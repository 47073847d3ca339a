using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.Kv;

/// <summary>The TCP listening sockets of the server (Redis's <c>bind</c> and <c>port</c>), opened at start and replaced at run
/// time by CONFIG SET port / CONFIG SET bind through the library's <see cref="ServerListeners"/>: the new sockets are bound
/// first, and only if all of them are the old ones are closed; the connected clients stay connected.</summary>
internal sealed class KvTcpListeners(NetworkCapability net, int backlog, Action<string> log)
{
    /// <summary>The sockets the TCP server accepts on.</summary>
    public ServerListeners Listeners { get; } = new([]);

    /// <summary>One word of a bind value: the address (null: a host name, resolved only at start) and whether it is
    /// optional (Redis's <c>-</c> prefix: skipped when the address is not available on this machine).</summary>
    internal readonly record struct BindAddress(string Text, IPAddress? Address, bool Optional);

    /// <summary>The words of a bind value, as Redis: <c>*</c> is every IPv4 address, <c>::*</c> every IPv6 address, a
    /// leading <c>-</c> makes the address optional, and an empty value means <c>* -::*</c>.</summary>
    internal static List<BindAddress> Parse(string bind)
    {
        string[] words = bind.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0)
        {
            words = ["*", "-::*"];
        }

        var result = new List<BindAddress>(words.Length);
        foreach (string word in words)
        {
            bool optional = word.StartsWith('-');
            string text = optional ? word[1..] : word;
            IPAddress? address = text switch
            {
                "*" => IPAddress.Any,
                "::*" => IPAddress.IPv6Any,
                _ => IPAddress.TryParse(text, out var a) ? a : null,
            };
            result.Add(new(text, address, optional));
        }

        return result;
    }

    /// <summary>As Redis's anetTcpServer: an optional address is skipped for these errors (the address or its family is
    /// not available here).</summary>
    private static bool Skippable(NetException e) => e.SocketError is SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported
        or SocketError.ProtocolFamilyNotSupported or SocketError.ProtocolNotSupported or SocketError.SocketNotSupported or SocketError.ProtocolOption;

    /// <summary>Opens one socket; null for an optional address that is not available. Logs Redis's warning when it fails.</summary>
    private ListeningSocket? Open(Switch sw, IPAddress address, string text, bool optional, int port)
    {
        try
        {
            // IPV6_V6ONLY as Redis, so that * and ::* can both be bound on one port.
            IReadOnlyList<SocketOptionSetting>? options = address.AddressFamily == AddressFamily.InterNetworkV6 ? [SocketOptions.IPv6Only.With(true)] : null;
            return net.Listen(sw, new IPEndPoint(address, port), backlog: backlog, options: options);
        }
        catch (NetException e) when (optional && Skippable(e))
        {
            return null;
        }
        catch (NetException e)
        {
            log($"Warning: Could not create server TCP listening socket {text}:{port}: bind: {e.InnerException?.Message ?? e.Message}");
            throw;
        }
    }

    /// <summary>At start: opens a socket per bind address on <paramref name="port"/> (0: a free port, chosen for the first
    /// address; the test harness starts the server so), host names resolved; adds them to <see cref="Listeners"/>.</summary>
    /// <returns>The first socket's address.</returns>
    /// <exception cref="NetException">An address could not be bound.</exception>
    /// <exception cref="KvStartupException">No address could be bound (all optional and unavailable).</exception>
    public async Task<EndPoint> OpenAtStartAsync(Stdenv env, Switch sw, string bind, int port)
    {
        foreach (var b in Parse(bind))
        {
            IPAddress address = b.Address ?? (await env.Net.GetAddrInfoAsync(b.Text, 0))[0].Address;
            if (Open(sw, address, b.Text, b.Optional, port) is { } socket)
            {
                Listeners.Add(socket);
                if (port == 0)
                {
                    port = ((IPEndPoint)socket.ListeningEndPoint).Port; // every address on the same free port
                }
            }
        }

        return Listeners.Current.Count > 0 ? Listeners.Current[0].ListeningEndPoint : throw new KvStartupException("Failed listening on port " + port + " (tcp), aborting.");
    }

    /// <summary>CONFIG SET port / bind (<see cref="KvLiveConfig.ApplyingNames"/>, on the connection's domain, before the new
    /// configuration is published), as Redis 7.0's apply functions: the first of <c>bind</c> (applied whenever named) and
    /// <c>port</c> (when changed) in the SET decides. bind: the old sockets are closed first, then the new addresses bound
    /// (on the new port), and if one cannot be, the old addresses are bound again. port: the new sockets are bound first,
    /// then the old ones closed. Port 0 closes the TCP listeners, as Redis. The kernel refuses connections to a closed
    /// socket before the reply is sent; connected clients stay connected.</summary>
    /// <exception cref="KvConfigException">Redis's error: "Failed to bind to specified addresses." (bind) or
    /// "Unable to listen on this port. Check server logs." (port), naming that argument.</exception>
    public void Apply(KvServerConfig old, KvServerConfig next, IReadOnlyList<string> names)
    {
        string? argument = names.FirstOrDefault(n => n == "bind" || (n == "port" && old.Port != next.Port));
        if (argument is null)
        {
            return;
        }

        bool bind = argument == "bind";
        try
        {
            Listeners.Replace(Openers(next), retireFirst: bind);
        }
        catch (Exception e) when (e is NetException or InvalidOperationException)
        {
            if (bind)
            {
                log("Failed to bind");
            }

            log($"Failed applying new configuration. Possibly related to new {argument} setting. Restoring previous settings.");
            if (bind)
            {
                try
                {
                    Listeners.Replace(Openers(old), retireFirst: true);
                }
                catch (Exception restore) when (restore is NetException or InvalidOperationException)
                {
                    // Redis exits here ("Failed restoring failed CONFIG SET command. Exiting."); the server keeps its
                    // other clients and its Unix socket, and a later CONFIG SET bind can listen again.
                    log($"WARNING: Failed restoring the previous bind addresses ({restore.Message}): not listening on TCP until CONFIG SET bind or port succeeds.");
                }
            }

            throw new KvConfigException(bind ? "Failed to bind to specified addresses." : "Unable to listen on this port. Check server logs.", e)
            {
                Argument = argument,
            };
        }
    }

    /// <summary>The openers of the sockets of <paramref name="config"/> (none for port 0).</summary>
    private List<Func<Switch, ListeningSocket?>> Openers(KvServerConfig config)
    {
        var openers = new List<Func<Switch, ListeningSocket?>>();
        if (config.Port == 0)
        {
            return openers;
        }

        foreach (var b in Parse(config.Bind))
        {
            if (b.Address is not { } address)
            {
                // A host name: not resolved at run time (the reply would wait for the resolver). Redis resolves it;
                // EioSharp.Kv accepts host names only at start (docs/kv.md).
                openers.Add(_ =>
                {
                    log($"Warning: Could not create server TCP listening socket {b.Text}:{config.Port}: bind: host names are resolved only at start");
                    return b.Optional ? null : throw new NetException($"bind: {b.Text} is a host name", SocketError.HostNotFound);
                });
                continue;
            }

            openers.Add(sw => Open(sw, address, b.Text, b.Optional, config.Port));
        }

        return openers;
    }
}
