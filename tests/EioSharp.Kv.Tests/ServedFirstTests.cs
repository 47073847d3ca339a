using System.Text;
using EioSharp.IO;
using EioSharp.Sync;
using static EioSharp.Kv.Tests.SessionTestRequests;

namespace EioSharp.Kv.Tests;

/// <summary>A push that serves a blocked client (LPUSH completing a BLPOP) lets that client's reply go out before its
/// own, as Redis writes the clients a command served before the client that sent it (issue 12, session 22): in the
/// BLPOP/LPUSH ping-pong the served client's next request is what the round trip waits for. A served stream reader is
/// the exception (§174): the XADD that served it is answered first.</summary>
public sealed class ServedFirstTests
{
    [Fact]
    public void The_served_clients_reply_is_written_before_the_pushers()
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
                    for (int round = 0; round < 3; round++)
                    {
                        blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                        await UntilAsync(() => server.Stats.BlockedClients == 1);
                        pusher.Input.TryAdd(Resp("LPUSH", "q", "v" + round));
                        await UntilAsync(() => writes.Count == 2 * (round + 1));
                        Assert.Equal([$"blocked:*2\r\n$1\r\nq\r\n$2\r\nv{round}\r\n", "pusher::1\r\n"], writes[^2..]);

                        // A push that serves nobody is answered as before.
                        pusher.Input.TryAdd(Resp("RPUSH", "other", "x"));
                        await UntilAsync(() => writes.Count == 2 * (round + 1) + 1);
                        Assert.Equal($"pusher::{round + 1}\r\n", writes[^1]);
                        writes.RemoveAt(writes.Count - 1);
                    }

                    blocked.Input.TryAdd([]);
                    pusher.Input.TryAdd([]);
                });
        });
    }

    /// <summary>An XADD that serves a blocked XREADGROUP is answered first, then the reader (§174): the producer's next
    /// XADD is what a job queue's throughput waits for, and its reader takes what arrives meanwhile with its next read.
    /// A BLPOP served after it is still written before its pusher.</summary>
    [Fact]
    public void An_xadd_that_serves_a_blocked_stream_reader_is_answered_before_the_reader()
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var reader = new RecordingFlow("reader", writes);
            var producer = new RecordingFlow("producer", writes);
            await Fiber.BothAsync(
                () => Fiber.BothAsync(() => server.ServeAsync(reader), () => server.ServeAsync(producer, port: 40001)),
                async () =>
                {
                    producer.Input.TryAdd(Resp("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"));
                    await UntilAsync(() => writes.Count == 1);
                    writes.Clear();
                    for (int round = 1; round <= 3; round++)
                    {
                        reader.Input.TryAdd(Resp("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"));
                        await UntilAsync(() => server.Stats.BlockedClients == 1);
                        producer.Input.TryAdd(Resp("XADD", "s", $"{round}-1", "f", "v"));
                        await UntilAsync(() => writes.Count == 2);
                        Assert.Equal(
                            [$"producer:$3\r\n{round}-1\r\n",
                             $"reader:*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n{round}-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"],
                            writes);
                        writes.Clear();

                        // The same connections with a list: the served BLPOP still goes first.
                        reader.Input.TryAdd(Resp("BLPOP", "q", "0"));
                        await UntilAsync(() => server.Stats.BlockedClients == 1);
                        producer.Input.TryAdd(Resp("LPUSH", "q", "x"));
                        await UntilAsync(() => writes.Count == 2);
                        Assert.Equal(["reader:*2\r\n$1\r\nq\r\n$1\r\nx\r\n", "producer::1\r\n"], writes);
                        writes.Clear();
                    }

                    reader.Input.TryAdd([]);
                    producer.Input.TryAdd([]);
                });
        });
    }
}
