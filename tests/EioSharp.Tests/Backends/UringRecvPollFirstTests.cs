using EioSharp.Backends.Uring;
using EioSharp.IO;
using static EioSharp.Tests.Backends.UringSockets;

namespace EioSharp.Tests.Backends;

/// <summary>
/// <see cref="EioBackendOptions.UringRecvPollFirst"/> (session 31, h180, issue 14): a socket read whose previous read came
/// back short is submitted with IORING_RECVSEND_POLL_FIRST (the kernel waits for data before it tries the receive). Checked
/// by the ring's count of such reads and by the bytes: a request/response loop against a peer thread stays correct, and
/// every read after the first (each one short) polls first; off, none does; a read after a full one does not. In the
/// FdCount collection with the other io_uring tests that read the ring's counters.
/// </summary>
[Collection("FdCount")]
public class UringRecvPollFirstTests
{
    private static readonly EioBackendOptions PollFirst = new() { UringWriteBehind = true, UringRecvPollFirst = true };

    // A peer thread sends `rounds` 4-byte requests, each after the 8-byte reply to the previous one; the server reads each
    // request into a 64-byte buffer (a short read) and replies. Returns whether both sides saw the right bytes, the reads
    // that polled first, and whether the ring has DEFER_TASKRUN.
    private static (bool Ok, long PollFirsts, bool Deferred) RequestResponse(EioBackendOptions options, int rounds) =>
        Run(async env =>
        {
            (bool, long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                UringPoller? ring = null;
                long pollFirsts0 = 0;
                bool served = await ServeRequestResponseAsync(env, sw, rounds, 3, r => (ring, pollFirsts0) = (r, r.RecvPollFirsts));
                result = (served, ring!.RecvPollFirsts - pollFirsts0, ring.DeferTaskRun);
            });
            return result;
        }, options);

    [SkippableFact]
    public void WithTheOptionOffNoReadPollsFirst()
    {
        var (ok, pollFirsts, _) = RequestResponse(WriteBehind, 50);
        Assert.True(ok);
        Assert.Equal(0, pollFirsts);
    }

    [SkippableFact]
    public void EveryReadAfterAShortOnePollsFirstAndTheLoopStaysCorrect()
    {
        const int rounds = 300;
        var (ok, pollFirsts, deferred) = RequestResponse(PollFirst, rounds);
        Assert.True(ok);
        if (!deferred)
        {
            Assert.Equal(0, pollFirsts); // the flag needs DEFER_TASKRUN's kernel (6.1+): ignored without it
            return;
        }

        // Each request is read short (4 bytes into 64), so every read after the first polls first; a request split in two
        // reads (never seen on loopback) would add reads, never take one away.
        Assert.True(pollFirsts >= rounds - 1, $"reads that polled first over {rounds} requests: {pollFirsts}");
    }

    [SkippableFact]
    public void AReadAfterAFullOneTriesAtOnce()
    {
        var (ok, pollFirsts, deferred) = Run(async env =>
        {
            (bool, long, bool) result = default;
            await Switch.RunAsync(async sw =>
            {
                var (client, server) = await PairAsync(env, sw);
                var ring = UringOp.CurrentRing();
                long pollFirsts0 = ring.RecvPollFirsts;
                await client.WriteAsync(new byte[16]);
                await client.FlushAsync();
                var buf = new byte[8];
                int first = await server.ReadAsync(buf); // 8 of 16: full
                long afterFirst = ring.RecvPollFirsts - pollFirsts0;
                int second = await server.ReadAsync(buf); // tried at once: the other 8, full again
                long afterSecond = ring.RecvPollFirsts - pollFirsts0;
                await client.WriteAsync(new byte[3]);
                await client.FlushAsync();
                int third = await server.ReadAsync(buf); // after a full read: tried at once, 3 bytes (short)
                long afterThird = ring.RecvPollFirsts - pollFirsts0;
                var pending = server.ReadAsync(buf); // after a short read: polls first, then the data comes
                await client.WriteAsync(new byte[5]);
                await client.FlushAsync();
                int fourth = await pending;
                long afterFourth = ring.RecvPollFirsts - pollFirsts0;
                bool good = first == 8 && second == 8 && third == 3 && fourth == 5 && afterFirst == 0 && afterSecond == 0 && afterThird == 0;
                result = (good, afterFourth, ring.DeferTaskRun);
            });
            return result;
        }, PollFirst);
        Assert.True(ok);
        Assert.Equal(deferred ? 1 : 0, pollFirsts); // without DEFER_TASKRUN (kernel < 6.1) the option is ignored
    }
}
