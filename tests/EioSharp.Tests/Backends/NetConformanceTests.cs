using System.Net;
using System.Net.Sockets;
using System.Text;
using EioSharp.Backends;
using EioSharp.Net;

namespace EioSharp.Tests.Backends;

[CollectionDefinition("FdCount", DisableParallelization = true)]
public class FdCountCollection
{
}

/// <summary>
/// The shared conformance suite for <c>env.Net</c> (issue 15), run against every real backend. A backend that cannot run
/// here is skipped with the reason (never silently replaced by its fallback). The mock backend's network is scripted
/// (<c>MockNet</c>), so it has its own suite (MockNetTests) rather than these loopback tests.
/// Runs alone (no parallel test class) so that the /proc/self/fd counts see only its own descriptors.
/// </summary>
[Collection("FdCount")]
public class NetConformanceTests
{
    private static readonly IPEndPoint Loopback0 = new(IPAddress.Loopback, 0);

    public static TheoryData<EioBackend> Backends => new() { EioBackend.Portable, EioBackend.Epoll, EioBackend.Uring };

    private static T Run<T>(EioBackend backend, Func<Stdenv, Task<T>> main) => RunOn(backend, main);

    /// <summary>Runs <paramref name="main"/> on <paramref name="backend"/> with <paramref name="tuning"/> (null: the
    /// defaults), or skips (with the reason) when the machine cannot run it.</summary>
    internal static T RunOn<T>(EioBackend backend, Func<Stdenv, Task<T>> main, EioBackendOptions? tuning = null)
    {
        string? unavailable = backend switch
        {
            EioBackend.Epoll => EpollBackend.TryCreate(EioBackendOptions.Default, out string? e) is null ? e : null,
            EioBackend.Uring => UringBackend.TryCreate(EioBackendOptions.Default, out string? e) is null ? e : null,
            _ => null,
        };
        Skip.If(unavailable is not null, $"the {backend} backend is unavailable here: {unavailable}");
        return EioMain.Run(backend, async env =>
        {
            Assert.Equal(backend.ToString().ToLowerInvariant(), env.Backend);
            return await main(env);
        }, tuning);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void TcpEchoOf16ByteLinesRoundTrips(EioBackend backend)
    {
        int ok = Run(backend, async env =>
        {
            int good = 0;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, peer) = await listener.AcceptAsync(sw);
                Assert.Equal(client.LocalEndPoint, peer);
                Fiber.Fork(sw, async () =>
                {
                    var b = new byte[64];
                    int n;
                    while ((n = await server.ReadAsync(b)) > 0)
                    {
                        await server.WriteAsync(b.AsMemory(0, n));
                    }

                    server.Close();
                });
                var line = new byte[16];
                var back = new byte[16];
                for (int i = 0; i < 200; i++)
                {
                    Encoding.ASCII.GetBytes($"line {i,10}\n").CopyTo(line, 0);
                    await client.WriteAsync(line);
                    int got = 0;
                    while (got < 16)
                    {
                        got += await client.ReadAsync(back.AsMemory(got));
                    }

                    good += back.AsSpan().SequenceEqual(line) ? 1 : 0;
                }

                await client.ShutdownAsync(EioSharp.IO.ShutdownCommand.Send);
                Assert.Equal(0, await client.ReadAsync(back)); // the server closed after our EOF
            });
            return good;
        });
        Assert.Equal(200, ok);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void ConnectToAClosedPortIsRefused(EioBackend backend)
    {
        // Bound and never listening, and held until the connect is done: nothing listens there, and no other socket
        // (a parallel test, another process, the connect's own ephemeral port) can take the port meanwhile.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(Loopback0);
        var closed = probe.LocalEndPoint!;
        Assert.Equal(SocketError.ConnectionRefused, ConnectError(backend, closed));
    }

    /// <summary>Connects to <paramref name="endpoint"/> on <paramref name="backend"/>: the <see cref="NetException"/>'s socket error, or Success.</summary>
    internal static SocketError ConnectError(EioBackend backend, EndPoint endpoint) => RunOn(backend, async env =>
    {
        try
        {
            await Switch.RunAsync(async sw => await env.Net.ConnectAsync(sw, endpoint));
            return SocketError.Success;
        }
        catch (NetException e)
        {
            return e.SocketError;
        }
    });

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void CancellingAcceptLeavesTheListenerUsable(EioBackend backend)
    {
        string outcome = Run(backend, async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                for (int i = 0; i < 3; i++)
                {
                    await Assert.ThrowsAsync<TimeoutException>(() =>
                        env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(5), async () => await listener.AcceptAsync(sw)));
                }

                log.Add("cancelled");
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                await client.WriteAsync("hi"u8.ToArray());
                var b = new byte[2];
                int n = await server.ReadAsync(b);
                log.Add(Encoding.ASCII.GetString(b, 0, n));
            });
            return string.Join(",", log);
        });
        Assert.Equal("cancelled,hi", outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void CancelledReadsWriteNoBufferAndLoseNoData(EioBackend backend)
    {
        string outcome = Run(backend, async env =>
        {
            string result = "";
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                result = await CancelledReceivesLoseNothingAsync(env, m => server.ReadAsync(m), d => client.WriteAsync(d));
            });
            return result;
        });
        Assert.Equal("payload!|########", outcome);
    }

    /// <summary>
    /// Cancels 50 receives (1 ms time limits) into one buffer, then fills that buffer with '#', sends "payload!" and receives
    /// it: returns "received|cancelled buffer". Once the cancelled receives have returned, the kernel must not write into
    /// their buffer, nor eat the data.
    /// </summary>
    internal static async Task<string> CancelledReceivesLoseNothingAsync(
        Stdenv env, Func<Memory<byte>, ValueTask<int>> receive, Func<ReadOnlyMemory<byte>, ValueTask> send)
    {
        var cancelled = new byte[8];
        for (int i = 0; i < 50; i++)
        {
            await Assert.ThrowsAsync<TimeoutException>(() =>
                env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(1), async () => await receive(cancelled)));
        }

        Array.Fill(cancelled, (byte)'#');
        await send("payload!"u8.ToArray());
        var buf = new byte[8];
        int got = 0;
        while (got < 8)
        {
            got += await receive(buf.AsMemory(got));
        }

        return Encoding.ASCII.GetString(buf) + "|" + Encoding.ASCII.GetString(cancelled);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void CancellingABlockedWriteReturnsAndTheSocketCloses(EioBackend backend)
    {
        string outcome = Run(backend, async env =>
        {
            string result = "";
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, _) = await listener.AcceptAsync(sw);
                var big = new byte[64 << 20]; // far more than the socket buffers: the peer never reads, so the write blocks
                var e = await Record.ExceptionAsync(() =>
                    env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(200), async () => await client.WriteAsync(big)));
                result = e?.GetType().Name ?? "completed";
                client.Close();
                server.Close();
            });
            return result;
        });
        Assert.Equal(nameof(TimeoutException), outcome);
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void TenThousandCancelledOperationsLeakNoFileDescriptor(EioBackend backend)
    {
        Skip.IfNot(Directory.Exists("/proc/self/fd"), "needs /proc/self/fd");
        (int before, int after) = Run(backend, async env =>
        {
            async Task CancelManyAsync(int count)
            {
                await Switch.RunAsync(async sw =>
                {
                    var listener = env.Net.Listen(sw, Loopback0);
                    var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                    var (server, _) = await listener.AcceptAsync(sw);
                    var buf = new byte[16];
                    for (int i = 0; i < count; i++)
                    {
                        try
                        {
                            await Switch.RunAsync(async inner =>
                            {
                                Fiber.Fork(inner, async () => await server.ReadAsync(buf));
                                if (i % 10 == 0)
                                {
                                    Fiber.Fork(inner, async () => await listener.AcceptAsync(inner));
                                }

                                await Fiber.YieldAsync();
                                inner.Fail(new OperationCanceledException("stop"));
                            });
                        }
                        catch (OperationCanceledException)
                        {
                        }
                    }

                    // Still a working connection afterwards.
                    await client.WriteAsync("ok"u8.ToArray());
                    Assert.Equal(2, await server.ReadAsync(buf));
                });
            }

            await CancelManyAsync(100); // warm-up: lazily opened runtime descriptors
            int fdsBefore = Directory.GetFiles("/proc/self/fd").Length;
            await CancelManyAsync(10_000);
            int fdsAfter = Directory.GetFiles("/proc/self/fd").Length;
            return (fdsBefore, fdsAfter);
        });

        // Exact equality is not promised (the runtime may open a descriptor of its own meanwhile); a leak per operation
        // would show as thousands.
        Assert.InRange(after, 0, before + 8);
    }
}
