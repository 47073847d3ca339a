using System.Net;
using System.Net.Sockets;
using EioSharp.Net;

namespace EioSharp.StatsdFilter;

/// <summary>The upstream StatsD server's current address, resolved with <c>GetAddrInfo</c> and shared by every domain.</summary>
/// <remarks>
/// <para>
/// Each successful resolution that changes the address publishes a new <see cref="UpstreamAddress"/> with a higher
/// <see cref="UpstreamAddress.Version"/>; senders compare the version before each send and reconnect when it moved.
/// An IPv4 address is preferred (the StatsD daemons listen on <c>udp4</c> by default).
/// </para>
/// <para><b>Thread safety</b>: <see cref="Current"/> may be read from any domain; <see cref="ResolveAsync"/> runs on one fiber at a time.</para>
/// </remarks>
internal sealed class UpstreamTarget(string host, int port)
{
    private volatile UpstreamAddress? _current;

    public string Host { get; } = host;

    public int Port { get; } = port;

    /// <summary>The address to send to, or <see langword="null"/> while the host has never resolved.</summary>
    public UpstreamAddress? Current => _current;

    /// <summary>Resolves the host and publishes the address if it changed.</summary>
    /// <returns><see langword="null"/> on success, else the error message (the previous address stays in use).</returns>
    public async Task<string?> ResolveAsync(NetworkCapability net)
    {
        IReadOnlyList<IPEndPoint> addresses;
        try
        {
            addresses = await net.GetAddrInfoAsync(Host, Port);
        }
        catch (NetException e)
        {
            return e.Message;
        }

        IPEndPoint chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses[0];
        UpstreamAddress? old = _current;
        if (old is null || !old.EndPoint.Equals(chosen))
        {
            _current = new UpstreamAddress(chosen, (old?.Version ?? 0) + 1);
        }

        return null;
    }

    public override string ToString() => _current is { } a ? $"{Host}:{Port} ({a.EndPoint})" : $"{Host}:{Port} (unresolved)";
}

/// <summary>One resolution of the upstream.</summary>
/// <param name="EndPoint">The address datagrams go to.</param>
/// <param name="Version">Increases each time the address changes.</param>
internal sealed record UpstreamAddress(IPEndPoint EndPoint, int Version);
