using System.Net;
using System.Net.Sockets;
using EioSharp.Backends.Uring;
using EioSharp.Net;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// io_uring write-behind sends that post no completion (session 22, h141, issue 14): on a kernel with
/// IORING_FEAT_CQE_SKIP the first send of a write-behind write carries IOSQE_CQE_SKIP_SUCCESS with MSG_DONTWAIT |
/// MSG_WAITALL, so it either sends every byte in the entry that submits it and posts nothing, or fails and posts its
/// completion (a short count, -EAGAIN, an error). The ring confirms the silent ones after that entry. Checked here: the
/// sends post no completion and the bytes arrive in order; a failed one is reported; a socket that fills up gets the rest
/// by an ordinary send; with the skip off (as on an older kernel) every send posts; and a request/response loop against
/// a peer on another thread costs one io_uring_enter per round trip (the reply's send, the next receive and the wait in
/// one call). In the FdCount collection because it switches process-wide settings other io_uring tests read.
/// </summary>
[Collection("FdCount")]
public class UringSkippedSendTests
{
    // Write-behind is off by default: every run here turns it on (RunWriteBehind).

    private static async Task<byte[]> ReadAtLeastAsync(StreamSocket s, int count)
    {
        var all = new MemoryStream();
        var buf = new byte[70_000];
        while (all.Length < count)
        {
            int n = await s.ReadAsync(buf);
            if (n == 0)
            {
                break;
            }

            all.Write(buf, 0, n);
        }

        return all.ToArray();
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)((i * 7) + seed);
        }

        return data;
    }

    // Writes of 10 bytes, each in its own round (a 1 ms sleep between: a sleep's wait ends with the ring timer's expiry,
    // §208, which is not counted here), the peer not reading until the end. Returns the completions reaped (but the ring
    // timer's) and skipped sends confirmed over the writes, and whether the bytes arrived whole and in order.
    private static (long Completions, long Confirmed, bool Whole) QuietWrites(int writes)
    {
        return RunWriteBehind(async env =>
        {
            (long, long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                var (client, server) = await PairAsync(env, sw);
                var ring = UringOp.CurrentRing();
                var expected = new MemoryStream();
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(5)); // the connection's own completions reaped
                long completions0 = ring.CompletionsReaped - ring.RingTimerCompletions, confirmed0 = ring.SkippedSendsConfirmed;
                for (int i = 0; i < writes; i++)
                {
                    var data = Pattern(10, i);
                    await server.WriteAsync(data);
                    expected.Write(data);
                    await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(1));
                }

                await server.FlushAsync();
                long completions = ring.CompletionsReaped - ring.RingTimerCompletions - completions0;
                long confirmed = ring.SkippedSendsConfirmed - confirmed0;
                var got = await ReadAtLeastAsync(client, (int)expected.Length);
                result = (completions, confirmed, got.AsSpan().SequenceEqual(expected.ToArray()));
            });
            return result;
        });
    }

    [SkippableFact]
    public void WriteBehindSendsPostNoCompletionAndArriveInOrder()
    {
        Skip.IfNot(KernelSkips(), "the kernel lacks IORING_FEAT_CQE_SKIP");
        var (completions, confirmed, whole) = QuietWrites(50);
        Assert.True(whole);
        Assert.Equal(50, confirmed);
        Assert.True(completions < 5, $"{completions} completions reaped over 50 skipped sends");
    }

    [SkippableFact]
    public void WithTheSkipOffEverySendPostsItsCompletion()
    {
        UringPoller.CqeSkipDisabled = true;
        try
        {
            var (completions, confirmed, whole) = QuietWrites(50);
            Assert.True(whole);
            Assert.Equal(0, confirmed);
            Assert.True(completions >= 50, $"{completions} completions reaped over 50 sends");
        }
        finally
        {
            UringPoller.CqeSkipDisabled = false;
        }
    }

    private static bool KernelSkips() => RunWriteBehind(env => Task.FromResult(UringOp.CurrentRing().CqeSkipWorks));

    [SkippableFact]
    public void ASkippedSendThatFailsIsReportedByTheNextFlushAndWrite()
    {
        Skip.IfNot(KernelSkips(), "the kernel lacks IORING_FEAT_CQE_SKIP");
        var (firstOk, flushError, nextError, confirmed) = RunWriteBehind(async env =>
        {
            bool ok = false;
            Exception? flush = null, next = null;
            long confirmedDelta = -1;
            await Switch.RunAsync(async sw =>
            {
                var (client, server) = await PairAsync(env, sw);
                var ring = UringOp.CurrentRing();
                await server.WriteAsync(new byte[] { 1, 2, 3 });
                await server.FlushAsync();
                client.Close(); // unread data: the kernel resets the connection (RST)
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(50));

                long confirmed0 = ring.SkippedSendsConfirmed;
                await server.WriteAsync(new byte[] { 4, 5, 6 }); // a skipped send, which fails at submission
                ok = true;
                try
                {
                    await server.FlushAsync();
                }
                catch (NetException e)
                {
                    flush = e;
                }

                confirmedDelta = ring.SkippedSendsConfirmed - confirmed0;
                try
                {
                    await server.WriteAsync(new byte[] { 7 });
                }
                catch (NetException e)
                {
                    next = e;
                }
            });
            return (ok, flush, next, confirmedDelta);
        });
        Assert.True(firstOk);
        Assert.NotNull(flushError);
        Assert.NotNull(nextError);
        Assert.Equal(0, confirmed); // not taken for a success
    }

    [SkippableFact]
    public void ASocketThatFillsUpGetsTheRestByAnOrdinarySendAndLaterWritesStayInOrder()
    {
        var (parked, whole) = RunWriteBehind(async env =>
        {
            long unsent = -1;
            bool ok = false;
            await Switch.RunAsync(async sw =>
            {
                // Small buffers, the peer not reading yet: the skipped send takes what fits and fails with the count.
                var listener = env.Net.Listen(sw, Loopback0);
                listener.SetOption(SocketOptions.ReceiveBufferSize, 4096);
                var writer = await env.Net.ConnectAsync(sw, listener.ListeningEndPoint);
                var (reader, _) = await listener.AcceptAsync(sw);
                writer.SetOption(SocketOptions.SendBufferSize, 4096);
                var first = Pattern(UringStreamTransport.WriteBehindMaxBytes, 3);
                var second = Pattern(1000, 4);
                await writer.WriteAsync(first);
                await env.MonoClock.SleepAsync(TimeSpan.FromMilliseconds(50));
                unsent = writer.UnsentBytes;
                var reading = Fiber.ForkPromise(sw, () => ReadAtLeastAsync(reader, first.Length + second.Length));
                await writer.WriteAsync(second); // waits for the rest of the first
                await writer.FlushAsync();
                ok = (await reading.AwaitAsync()).AsSpan().SequenceEqual([.. first, .. second]);
            });
            return (unsent, ok);
        });
        Assert.True(parked > 0 && parked < UringStreamTransport.WriteBehindMaxBytes, $"unsent after the first try: {parked}");
        Assert.True(whole);
    }

    // A request/response loop: the server (a fiber on an io_uring domain, write-behind on) reads 4 bytes and answers 4;
    // the client is a blocking socket on a thread of its own, as a remote client would be. Returns io_uring_enter calls
    // per round trip on the server's ring, and the pre-pass skips.
    // With splitReply, the reply is two writes whenever the pre-pass is backing off, and Backoffs is the count of those.
    private static (double EntersPerRoundTrip, long Backoffs, bool Ok) PingPong(int roundTrips, bool splitReply = false)
    {
        return RunWriteBehind(async env =>
        {
            (double, long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                var listener = env.Net.Listen(sw, Loopback0);
                var endpoint = (IPEndPoint)listener.ListeningEndPoint;
                bool clientOk = false;
                var thread = new Thread(() =>
                {
                    try
                    {
                        Client();
                    }
                    catch (SocketException)
                    {
                        // A stall: the receive timed out (clientOk stays false).
                    }
                })
                { IsBackground = true };

                void Client()
                {
                    using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 5000 };
                    s.Connect(endpoint);
                    var buf = new byte[4];
                    bool good = true;
                    for (int i = 0; i < roundTrips + 10; i++)
                    {
                        s.Send("ping"u8);
                        int got = 0;
                        while (got < 4)
                        {
                            int n = s.Receive(buf, got, 4 - got, SocketFlags.None);
                            if (n == 0)
                            {
                                return;
                            }

                            got += n;
                        }

                        good &= buf.AsSpan().SequenceEqual("pong"u8);
                    }

                    clientOk = good;
                }

                thread.Start();
                var (server, _) = await listener.AcceptAsync(sw);
                var ring = UringOp.CurrentRing();
                var buf = new byte[16];
                long enters0 = 0, backoffs0 = 0;
                bool serverOk = true;
                int splits = 0;
                try
                {
                    // A stall (a write waiting for a sleep that nothing ends) fails on time instead of hanging the run.
                    await env.MonoClock.WithTimeoutAsync(TimeSpan.FromSeconds(10), async () =>
                    {
                        for (int i = 0; i < roundTrips + 10; i++)
                        {
                            if (i == 10)
                            {
                                enters0 = ring.Enters; // after a warm-up (the pre-pass has backed off by then)
                                backoffs0 = ring.IdlePrePassBackoffs;
                            }

                            int got = 0;
                            while (got < 4)
                            {
                                int n = await server.ReadAsync(buf.AsMemory(got, 4 - got));
                                if (n == 0)
                                {
                                    serverOk = false;
                                    return;
                                }

                                got += n;
                            }

                            if (splitReply && ring.PrePassBackingOff)
                            {
                                // Two writes in one round while the pre-pass backs off (so the next entry is a sleep): the
                                // second waits for the first, a skipped send not yet submitted.
                                splits++;
                                await server.WriteAsync("po"u8.ToArray());
                                await server.WriteAsync("ng"u8.ToArray());
                            }
                            else
                            {
                                await server.WriteAsync("pong"u8.ToArray());
                            }
                        }
                    });
                }
                catch (TimeoutException)
                {
                    serverOk = false;
                }

                double perRoundTrip = (double)(ring.Enters - enters0) / roundTrips;
                long backoffs = ring.IdlePrePassBackoffs - backoffs0;
                await server.FlushAsync();
                server.Close();
                thread.Join();
                result = (perRoundTrip, splitReply ? splits : backoffs, clientOk && serverOk);
            });
            return result;
        });
    }

    [SkippableFact]
    public void ARequestResponseLoopCostsOneEntryPerRoundTrip()
    {
        Skip.IfNot(KernelSkips(), "the kernel lacks IORING_FEAT_CQE_SKIP");
        var (enters, backoffs, ok) = PingPong(200);
        Assert.True(ok);
        Assert.True(enters < 1.3, $"io_uring_enter per round trip: {enters:F2}");
        Assert.True(backoffs > 100, $"pre-passes skipped: {backoffs}");
    }

    // The same loop with sends that post their completion: the send's completion ends the wait that submitted it (or the
    // pre-pass submits it), and the domain enters again to wait for the next request: two entries per round trip.
    [SkippableFact]
    public void WithoutTheSkipTheSameLoopCostsTwoEntriesPerRoundTrip()
    {
        UringPoller.CqeSkipDisabled = true;
        try
        {
            var (enters, _, ok) = PingPong(200);
            Assert.True(ok);
            Assert.True(enters > 1.7, $"io_uring_enter per round trip: {enters:F2}");
        }
        finally
        {
            UringPoller.CqeSkipDisabled = false;
        }
    }

    // Two writes to one socket in the same round, with the pre-pass backing off: the second finds the first, a skipped
    // send still queued, and submits it rather than waiting for the sleeping entry (which would end only with the peer's
    // next request, and the peer waits for the whole reply). A split round's wait is a pre-pass hit (it resets the
    // backoff), so the single-write rounds between build the backoff up again.
    [SkippableFact]
    public void ASecondWriteInTheSameRoundDoesNotWaitForTheSleep()
    {
        Skip.IfNot(KernelSkips(), "the kernel lacks IORING_FEAT_CQE_SKIP");
        var (_, splits, ok) = PingPong(200, splitReply: true);
        Assert.True(ok, "the exchange stalled");
        Assert.True(splits >= 5, $"replies split while the pre-pass backed off: {splits}");
    }
}
