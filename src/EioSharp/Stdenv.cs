using EioSharp.Domains;
using EioSharp.Net;
using EioSharp.Time;

namespace EioSharp;

/// <summary>The capabilities a program starts with: everything in the library that reaches the OS is reached from here (S28).</summary>
/// <remarks>
/// Eio: <c>Eio_unix.Stdenv.base</c> (<c>env</c>). Pass only what a function needs (for example just <see cref="MonoClock"/>),
/// so its signature tells what it can touch.
/// </remarks>
public sealed class Stdenv
{
    internal Stdenv(Clock clock, MonoClock monoClock, DomainManager domainManager, string backend, NetworkCapability? net = null)
    {
        _net = net;
        Clock = clock;
        MonoClock = monoClock;
        DomainManager = domainManager;
        Backend = backend;
    }

    /// <summary>The wall clock (time of day).</summary>
    /// <remarks>Eio: <c>env#clock</c>.</remarks>
    public Clock Clock { get; }

    /// <summary>The monotonic clock, for intervals and timeouts.</summary>
    /// <remarks>Eio: <c>env#mono_clock</c>.</remarks>
    public MonoClock MonoClock { get; }

    /// <summary>Starts new domains (OS threads with their own scheduler) for parallelism.</summary>
    /// <remarks>Eio: <c>env#domain_mgr</c>.</remarks>
    public DomainManager DomainManager { get; }

    private readonly NetworkCapability? _net;

    /// <summary>The network: listening, connecting, datagrams and name lookup.</summary>
    /// <exception cref="NotSupportedException">The backend has no network (the mock backend: use a mock network).</exception>
    /// <remarks>Eio: <c>env#net</c>.</remarks>
    public NetworkCapability Net => _net ?? throw new NotSupportedException($"The {Backend} backend has no real network.");

    /// <summary>The name of the backend in use (<c>portable</c> or <c>mock</c>).</summary>
    public string Backend { get; }
}
