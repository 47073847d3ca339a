using System.Net;
using EioSharp.Backends;
using EioSharp.Net;

namespace EioSharp.Tests.Backends;

/// <summary>
/// The shared fixture of the io_uring socket tests (<see cref="UringWriteBehindTests"/>, <see cref="UringSkippedSendTests"/>,
/// <see cref="UringMultishotAcceptTests"/>, <see cref="UringMultishotRecvTests"/>): a body run on an io_uring <see cref="Stdenv"/>
/// (skipped where the machine has none), a connected loopback pair, and the process's open descriptors. Use it with
/// <c>using static EioSharp.Tests.Backends.UringSockets;</c>.
/// </summary>
internal static class UringSockets
{
    /// <summary>The backend tuning with write-behind sends on (off by default since session 14).</summary>
    public static readonly EioBackendOptions WriteBehind = new() { UringWriteBehind = true };

    /// <summary>127.0.0.1, port 0: a listener on a port the kernel picks.</summary>
    public static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    /// <summary>Runs <paramref name="main"/> on io_uring with <paramref name="tuning"/> (null: the defaults), or skips when the machine cannot.</summary>
    public static T Run<T>(Func<Stdenv, Task<T>> main, EioBackendOptions? tuning = null) =>
        NetConformanceTests.RunOn(EioBackend.Uring, main, tuning);

    /// <summary>Runs <paramref name="main"/> on io_uring with <see cref="WriteBehind"/>, or skips when the machine cannot.</summary>
    public static T RunWriteBehind<T>(Func<Stdenv, Task<T>> main) => Run(main, WriteBehind);

    /// <summary>The number of descriptors open in this process (/proc/self/fd, the listing's own included).</summary>
    public static int OpenFds() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>Connects a client to <paramref name="listener"/> and accepts it: both ends belong to <paramref name="sw"/>.</summary>
    public static async Task<(StreamSocket Client, StreamSocket Server)> PairAsync(Stdenv env, Switch sw, ListeningSocket listener)
    {
        var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
        var (server, _) = await listener.AcceptAsync(sw);
        return (client, server);
    }

    /// <summary>A connected pair through a new listener on <see cref="Loopback0"/> (all three belong to <paramref name="sw"/>).</summary>
    public static Task<(StreamSocket Client, StreamSocket Server)> PairAsync(Stdenv env, Switch sw) =>
        PairAsync(env, sw, env.Net.Listen(sw, Loopback0));
}
