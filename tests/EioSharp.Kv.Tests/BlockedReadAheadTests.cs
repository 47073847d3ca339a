using System.Text;
using EioSharp.IO;
using EioSharp.Sync;
using static EioSharp.Kv.Tests.SessionTestRequests;

namespace EioSharp.Kv.Tests;

/// <summary>A connection whose blocking command waits keeps reading its socket with a read of its own fiber
/// (<see cref="ReadAhead"/>, session 23, h144: no watcher fiber): what the client sends meanwhile runs after the blocked
/// command, in order; the read left pending when the command completes is the connection's next read; a client that
/// closes while blocked is unblocked at once. Over in-memory flows on one domain (its scheduler is deterministic: the
/// waits below count rounds, not time).</summary>
public sealed class BlockedReadAheadTests
{
    // What one flow was sent, its writes joined (the two connections' writes interleave in an order that depends on
    // which fiber the scheduler runs first; each connection's own are in order).
    private static string Of(List<string> writes, string name) =>
        string.Concat(writes.Where(w => w.StartsWith(name + ":", StringComparison.Ordinal)).Select(w => w[(name.Length + 1)..]));

    [Fact]
    public void Commands_sent_while_blocked_and_after_the_serve_run_in_order()
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new RecordingFlow("blocked", writes);
            var pusher = new RecordingFlow("pusher", writes);
            await Fiber.BothAsync(
                () => Fiber.BothAsync(() => server.ServeAsync(blocked), () => server.ServeAsync(pusher, port: 40001)),
                async () =>
                {
                    for (int round = 0; round < 5; round++)
                    {
                        int reads = blocked.Reads;
                        blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                        await UntilAsync(() => server.Stats.BlockedClients == 1);

                        // Sent while blocked: read by the blocked connection's own read (the read is taken now, before the
                        // serve), kept, and run after the blocked command.
                        blocked.Input.TryAdd(Resp("ECHO", "during" + round));
                        await UntilAsync(() => blocked.Reads == reads + 2);
                        Assert.Equal(1, server.Stats.BlockedClients);
                        writes.Clear();
                        pusher.Input.TryAdd(Resp("LPUSH", "q", "v" + round));
                        string served = $"*2\r\n$1\r\nq\r\n$2\r\nv{round}\r\n$7\r\nduring{round}\r\n";
                        await UntilAsync(() => Of(writes, "blocked").Length >= served.Length && Of(writes, "pusher").Length > 0);
                        Assert.Equal(served, Of(writes, "blocked"));
                        Assert.Equal(":1\r\n", Of(writes, "pusher"));

                        // The read the wait left pending is the connection's next read.
                        blocked.Input.TryAdd(Resp("ECHO", "after" + round));
                        await UntilAsync(() => Of(writes, "blocked").Length > served.Length);
                        Assert.Equal(served + $"$6\r\nafter{round}\r\n", Of(writes, "blocked"));
                    }

                    blocked.Input.TryAdd([]);
                    pusher.Input.TryAdd([]);
                });
            Assert.Equal(0, server.Stats.BlockedClients);
        });
    }

    [Fact]
    public void A_read_that_completes_between_the_serve_and_the_next_read_does_not_disturb_the_next_block()
    {
        // The push and the next command arrive together: the blocked connection's pending read may complete after its
        // command was served and before it reads again (its read event then waits in the queue, stale, and the next
        // block must skip it, neither ending early nor taking it for a closed client).
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new RecordingFlow("blocked", writes);
            var pusher = new RecordingFlow("pusher", writes);
            await Fiber.BothAsync(
                () => Fiber.BothAsync(() => server.ServeAsync(blocked), () => server.ServeAsync(pusher, port: 40001)),
                async () =>
                {
                    string expected = string.Empty;
                    for (int round = 0; round < 5; round++)
                    {
                        blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                        await UntilAsync(() => server.Stats.BlockedClients == 1);
                        pusher.Input.TryAdd(Resp("LPUSH", "q", "v" + round));
                        blocked.Input.TryAdd(Resp("ECHO", "next" + round));
                        expected += $"*2\r\n$1\r\nq\r\n$2\r\nv{round}\r\n$5\r\nnext{round}\r\n";
                        await UntilAsync(() => Of(writes, "blocked").Length >= expected.Length);
                        Assert.Equal(expected, Of(writes, "blocked"));
                    }

                    Assert.Equal(string.Concat(Enumerable.Repeat(":1\r\n", 5)), Of(writes, "pusher"));
                    blocked.Input.TryAdd([]);
                    pusher.Input.TryAdd([]);
                });
        });
    }

    [Fact]
    public void A_client_that_closes_while_blocked_is_unblocked_and_a_later_push_keeps_its_element()
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new RecordingFlow("blocked", writes);
            var pusher = new RecordingFlow("pusher", writes);
            await Fiber.BothAsync(
                () => Fiber.BothAsync(
                    async () =>
                    {
                        try
                        {
                            await server.ServeAsync(blocked);
                        }
                        catch (Exception)
                        {
                            // The session ends with the client gone (as a connection reset ends it in the server).
                        }
                    },
                    () => server.ServeAsync(pusher, port: 40001)),
                async () =>
                {
                    blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                    await UntilAsync(() => server.Stats.BlockedClients == 1);
                    blocked.Input.TryAdd([]); // the client closes while blocked
                    await UntilAsync(() => server.Stats.BlockedClients == 0);
                    pusher.Input.TryAdd(Resp("LPUSH", "q", "kept"));
                    pusher.Input.TryAdd(Resp("LLEN", "q"));
                    await UntilAsync(() => Of(writes, "pusher").Length >= 8);
                    Assert.Equal(":1\r\n:1\r\n", Of(writes, "pusher"));
                    Assert.Equal(string.Empty, Of(writes, "blocked"));
                    pusher.Input.TryAdd([]);
                });
        });
    }

    [Fact]
    public void Quit_sent_while_blocked_ends_the_connection_after_the_blocked_reply()
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new RecordingFlow("blocked", writes);
            var pusher = new RecordingFlow("pusher", writes);
            bool ended = false;
            await Fiber.BothAsync(
                () => Fiber.BothAsync(
                    async () =>
                    {
                        await server.ServeAsync(blocked);
                        ended = true; // with its read left pending (cancelled as the session ends)
                    },
                    () => server.ServeAsync(pusher, port: 40001)),
                async () =>
                {
                    blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                    await UntilAsync(() => server.Stats.BlockedClients == 1);
                    blocked.Input.TryAdd(Resp("QUIT"));
                    await UntilAsync(() => blocked.Reads == 2);
                    pusher.Input.TryAdd(Resp("LPUSH", "q", "v"));
                    await UntilAsync(() => ended && Of(writes, "pusher").Length > 0);
                    Assert.Equal("*2\r\n$1\r\nq\r\n$1\r\nv\r\n+OK\r\n", Of(writes, "blocked"));
                    Assert.Equal(":1\r\n", Of(writes, "pusher"));
                    pusher.Input.TryAdd([]);
                });
        });
    }
}
