using System.Net;
using System.Net.Sockets;
using EioSharp.Backends.Uring;
using EioSharp.Net;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// io_uring's multishot accept (issue 15): one SQE serves many connections on a domain; cancellation, a listener closed with
/// connections queued, the unclaimed-connection limit, a listener shared by two domains, and no descriptor leaked.
/// io_uring only: the other backends have no multishot request (their accept is covered by NetConformanceTests).
/// In the FdCount collection (no parallel test class) because of the /proc/self/fd counts.
/// </summary>
[Collection("FdCount")]
public class UringMultishotAcceptTests
{
    private static UringListenerTransport Uring(ListeningSocket listener) => Assert.IsType<UringListenerTransport>(listener.Transport);

    /// <summary>Yields (letting the ring reap) until <paramref name="done"/> or 10 s.</summary>
    private static async Task UntilAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!done() && DateTime.UtcNow < deadline)
        {
            await Fiber.YieldAsync();
        }
    }

    [SkippableFact]
    public void OneArmedRequestAcceptsManyConnectionsWithTheirPeers()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        var (accepted, arms, armed) = Run(async env =>
        {
            int ok = 0;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0, backlog: 256);
                for (int i = 0; i < 200; i++)
                {
                    var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                    var (server, peer) = await listener.AcceptAsync(sw);
                    Assert.Equal(client.LocalEndPoint, peer);
                    await client.WriteAsync("x"u8.ToArray());
                    var b = new byte[1];
                    ok += await server.ReadAsync(b) == 1 && b[0] == (byte)'x' ? 1 : 0;
                    client.Close();
                    server.Close();
                }

                var m = Uring(listener).MultishotOfCurrentDomain();
                Assert.NotNull(m);
                ok = ok * 1000 + m.Arms;
                ok = ok * 10 + (m.IsArmed ? 1 : 0);
            });
            return (ok / 10000, ok / 10 % 1000, ok % 10 == 1);
        });
        Assert.Equal(200, accepted);
        Assert.True(armed);

        // One SQE for the 200 connections (re-armed only if the kernel ended the request, which it has no reason to here).
        Assert.InRange(arms, 1, 3);
    }

    [SkippableFact]
    public void UnixStreamListenerAcceptsThroughTheMultishotRequest()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        string path = Path.Combine(Path.GetTempPath(), $"eio-h63-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        try
        {
            string got = Run(async env =>
            {
                string s = "";
                await Switch.RunAsync(async sw =>
                {
                    var listener = env.Net.Listen(sw, new UnixDomainSocketEndPoint(path));
                    for (int i = 0; i < 3; i++)
                    {
                        var client = await env.Net.ConnectAsync(sw, new UnixDomainSocketEndPoint(path));
                        var (server, _) = await listener.AcceptAsync(sw);
                        await server.WriteAsync("u"u8.ToArray());
                        var b = new byte[1];
                        s += await client.ReadAsync(b) == 1 ? "u" : "?";
                    }

                    s += Uring(listener).MultishotOfCurrentDomain() is { Arms: >= 1 } ? "+multishot" : "+oneshot";
                });
                return s;
            });
            Assert.Equal("uuu+multishot", got);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [SkippableFact]
    public void CancellingTheLastWaitingAcceptDisarmsTheRequestAndTheNextAcceptGetsTheConnection()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        string outcome = Run(async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                await Assert.ThrowsAsync<TimeoutException>(() =>
                    env.MonoClock.WithTimeoutAsync(TimeSpan.FromMilliseconds(5), async () => await listener.AcceptAsync(sw)));
                var m = Uring(listener).MultishotOfCurrentDomain()!;
                await UntilAsync(() => !m.IsArmed);
                log.Add(m.IsArmed ? "still armed" : "disarmed");

                // A connection made while nothing is armed waits in the kernel's backlog; the next accept re-arms and gets it.
                var client = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (server, peer) = await listener.AcceptAsync(sw);
                log.Add(Equals(peer, client.LocalEndPoint) ? "accepted" : "wrong peer");
                log.Add($"arms={m.Arms}");
            });
            return string.Join(",", log);
        });
        Assert.Equal("disarmed,accepted,arms=2", outcome);
    }

    [SkippableFact]
    public void UnclaimedConnectionsStopTheRequestAtTheLimitAndAreAcceptedLater()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        int extra = 8;
        var (unclaimedWhenStopped, armedAfter, served) = Run(async env =>
        {
            int unclaimed = 0, servedCount = 0;
            bool armed = true;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0, backlog: 128);
                var first = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                _ = await listener.AcceptAsync(sw); // arms the request; nobody accepts for a while now
                var m = Uring(listener).MultishotOfCurrentDomain()!;
                var clients = new List<StreamSocket>();
                for (int i = 0; i < UringMultishotAccept.MaxUnclaimed + extra; i++)
                {
                    clients.Add(await env.Net.ConnectAsync(sw, listener.ListeningEndPoint));
                }

                await UntilAsync(() => !m.IsArmed && m.Unclaimed >= UringMultishotAccept.MaxUnclaimed);
                unclaimed = m.Unclaimed;
                armed = m.IsArmed;

                // Every client's connection is accepted in the end: the queued ones first, then the backlog's.
                var seen = new HashSet<EndPoint>();
                for (int i = 0; i < clients.Count; i++)
                {
                    var (_, peer) = await listener.AcceptAsync(sw);
                    seen.Add(peer);
                }

                servedCount = clients.Count(c => seen.Contains(c.LocalEndPoint!));
            });
            return (unclaimed, armed, servedCount);
        });
        Assert.False(armedAfter);
        Assert.InRange(unclaimedWhenStopped, UringMultishotAccept.MaxUnclaimed, UringMultishotAccept.MaxUnclaimed + extra);
        Assert.Equal(UringMultishotAccept.MaxUnclaimed + extra, served);
    }

    [SkippableFact]
    public void ClosingTheListenerClosesTheQueuedConnectionsAndLeaksNoDescriptor()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        Skip.IfNot(Directory.Exists("/proc/self/fd"), "needs /proc/self/fd");
        var (before, after, eofs) = Run(async env =>
        {
            async Task<int> RoundAsync()
            {
                int closedByServer = 0;
                await Switch.RunAsync(async sw =>
                {
                    var listener = env.Net.Listen(sw, Loopback0, backlog: 64);
                    var c0 = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                    var (s0, _) = await listener.AcceptAsync(sw);
                    var m = Uring(listener).MultishotOfCurrentDomain()!;
                    var clients = new List<StreamSocket>();
                    for (int i = 0; i < 5; i++)
                    {
                        clients.Add(await env.Net.ConnectAsync(sw, listener.ListeningEndPoint));
                    }

                    await UntilAsync(() => m.Unclaimed == 5);
                    Assert.Equal(5, m.Unclaimed);
                    listener.Close();
                    await UntilAsync(() => !m.IsArmed && m.Unclaimed == 0);
                    Assert.False(m.IsArmed);
                    foreach (var c in clients)
                    {
                        var b = new byte[1];
                        try
                        {
                            closedByServer += await c.ReadAsync(b) == 0 ? 1 : 0;
                        }
                        catch (NetException e) when (e.SocketError == SocketError.ConnectionReset)
                        {
                            closedByServer++;
                        }

                        c.Close();
                    }

                    c0.Close();
                    s0.Close();
                });
                return closedByServer;
            }

            await RoundAsync(); // warm-up: lazily opened runtime descriptors
            int fdsBefore = OpenFds();
            int closed = 0;
            for (int i = 0; i < 50; i++)
            {
                closed += await RoundAsync();
            }

            return (fdsBefore, OpenFds(), closed);
        });
        Assert.Equal(250, eofs);
        Assert.InRange(after, 0, before + 8);
    }

    [SkippableFact]
    public void ASecondDomainAcceptingTurnsTheListenerBackToOneSqePerAccept()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        string outcome = Run(async env =>
        {
            var log = new List<string>();
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var c1 = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                _ = await listener.AcceptAsync(sw);
                var mine = Uring(listener).MultishotOfCurrentDomain()!;
                log.Add(mine.IsArmed ? "armed here" : "not armed");

                var endpoint = listener.ListeningEndPoint;
                var other = env.DomainManager.RunAsync(async () =>
                {
                    await Switch.RunAsync(async inner =>
                    {
                        var (conn, _) = await listener.AcceptAsync(inner);
                        conn.Close();
                    });
                    return Uring(listener).MultishotOfCurrentDomain() is null ? "other: one-shot" : "other: multishot";
                });

                await UntilAsync(() => !mine.IsArmed);
                log.Add(mine.IsArmed ? "still armed" : "disarmed");
                var c2 = await env.Net.ConnectAsync(sw, endpoint);
                log.Add(await other);
                var c3 = await env.Net.ConnectAsync(sw, endpoint);
                var (s3, peer) = await listener.AcceptAsync(sw);
                log.Add(Equals(peer, c3.LocalEndPoint) ? "here: accepted" : "here: wrong peer");
                log.Add($"arms={mine.Arms}");
            });
            return string.Join(",", log);
        });
        Assert.Equal("armed here,disarmed,other: one-shot,here: accepted,arms=1", outcome);
    }

    [SkippableFact]
    public void TenThousandCancelledAcceptsRacingConnectionsLoseAndLeakNoDescriptor()
    {
        Skip.If(UringPoller.MultishotAcceptDisabled, "multishot accept is turned off");
        Skip.IfNot(Directory.Exists("/proc/self/fd"), "needs /proc/self/fd");
        var (before, after, connected, accepted) = Run(async env =>
        {
            int connects = 0, accepts = 0;
            async Task RoundsAsync(int count)
            {
                await Switch.RunAsync(async sw =>
                {
                    var listener = env.Net.Listen(sw, Loopback0, backlog: 512);
                    var clients = new List<StreamSocket>();
                    for (int i = 0; i < count; i++)
                    {
                        try
                        {
                            await Switch.RunAsync(async inner =>
                            {
                                Fiber.Fork(inner, async () =>
                                {
                                    var (conn, _) = await listener.AcceptAsync(sw);
                                    accepts++;
                                    conn.Close();
                                });
                                if (i % 100 == 0)
                                {
                                    // Now and then a connection races the cancellation: accepted, or queued for a later accept.
                                    clients.Add(await env.Net.ConnectAsync(sw, listener.ListeningEndPoint));
                                    connects++;
                                }

                                await Fiber.YieldAsync();
                                inner.Fail(new OperationCanceledException("stop"));
                            });
                        }
                        catch (OperationCanceledException)
                        {
                        }
                    }

                    // No connection was lost: the ones not accepted by a cancelled fiber are still there to accept.
                    while (accepts < connects)
                    {
                        var (conn, _) = await listener.AcceptAsync(sw);
                        accepts++;
                        conn.Close();
                    }

                    foreach (var c in clients)
                    {
                        c.Close();
                    }

                    listener.Close();
                });
            }

            await RoundsAsync(200);
            int fdsBefore = OpenFds();
            connects = accepts = 0;
            await RoundsAsync(10_000);
            await Fiber.YieldAsync();
            return (fdsBefore, OpenFds(), connects, accepts);
        });
        Assert.Equal(100, connected);
        Assert.Equal(connected, accepted);
        Assert.InRange(after, 0, before + 8);
    }
}
