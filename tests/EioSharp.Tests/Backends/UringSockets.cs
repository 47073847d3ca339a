using System.Net;
using System.Net.Sockets;
using EioSharp.Backends;
using EioSharp.Backends.Uring;
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

    /// <summary>The server side of <see cref="StartRequestResponsePeer"/>'s loop, on the calling io_uring domain: listens on
    /// <see cref="Loopback0"/>, starts the peer, accepts it, calls <paramref name="accepted"/> with the domain's ring (to
    /// read its counters before the first request), then answers <paramref name="rounds"/> 4-byte requests, each read into a
    /// 64-byte buffer (a short read) until its 4 bytes are there, with the 8-byte reply (the number and the number times
    /// <paramref name="factor"/>), flushes, joins the peer and closes the connection. True when both sides saw the right
    /// bytes (every request read as exactly 4 bytes). Shared by the ring's wait tests (<see cref="UringRingTimerTests"/>,
    /// <see cref="UringRecvPollFirstTests"/>, <see cref="UringIdleSpinTests"/>), which read the ring's counters around it.</summary>
    public static async Task<bool> ServeRequestResponseAsync(Stdenv env, Switch sw, int rounds, int factor, Action<UringPoller>? accepted = null)
    {
        var listener = env.Net.Listen(sw, Loopback0);
        var peer = StartRequestResponsePeer((IPEndPoint)listener.ListeningEndPoint, rounds, factor);
        var (server, _) = await listener.AcceptAsync(sw);
        accepted?.Invoke(UringOp.CurrentRing());
        var buf = new byte[64];
        bool serverOk = true;
        for (int i = 0; i < rounds && serverOk; i++)
        {
            int got = 0;
            while (got < 4)
            {
                int n = await server.ReadAsync(buf.AsMemory(got));
                if (n == 0)
                {
                    serverOk = false;
                    break;
                }

                got += n;
            }

            int v = BitConverter.ToInt32(buf, 0);
            serverOk &= got == 4 && v == i;
            var reply = new byte[8];
            BitConverter.TryWriteBytes(reply.AsSpan(0, 4), v);
            BitConverter.TryWriteBytes(reply.AsSpan(4, 4), v * factor);
            await server.WriteAsync(reply);
        }

        await server.FlushAsync();
        bool clientOk = peer();
        server.Close();
        return clientOk && serverOk;
    }

    /// <summary>Starts a peer thread for a request/response loop: it connects to <paramref name="endpoint"/> and sends
    /// <paramref name="rounds"/> 4-byte requests (the round's number), each after reading the 8-byte reply to the previous
    /// one, which must be the number and the number times <paramref name="factor"/>. The returned function joins the thread
    /// and says whether every reply was right (false too when the connection failed or closed early).</summary>
    public static Func<bool> StartRequestResponsePeer(IPEndPoint endpoint, int rounds, int factor)
    {
        bool ok = false;
        var thread = new Thread(() =>
        {
            try
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 10000 };
                s.Connect(endpoint);
                var reply = new byte[8];
                bool good = true;
                for (int i = 0; i < rounds; i++)
                {
                    s.Send(BitConverter.GetBytes(i));
                    int got = 0;
                    while (got < 8)
                    {
                        int n = s.Receive(reply, got, 8 - got, SocketFlags.None);
                        if (n == 0)
                        {
                            return;
                        }

                        got += n;
                    }

                    good &= BitConverter.ToInt32(reply, 0) == i && BitConverter.ToInt32(reply, 4) == i * factor;
                }

                ok = good;
            }
            catch (SocketException)
            {
                // ok stays false
            }
        })
        { IsBackground = true };
        thread.Start();
        return () =>
        {
            thread.Join();
            return ok;
        };
    }
}
