using System.Text;
using EioSharp.IO;
using EioSharp.Sync;
using static EioSharp.Kv.Tests.SessionTestRequests;

namespace EioSharp.Kv.Tests;

/// <summary>A push that serves a blocked client (LPUSH completing a BLPOP) lets that client's reply go out before its
/// own, as Redis writes the clients a command served before the client that sent it (issue 12, session 22): in the
/// BLPOP/LPUSH ping-pong the served client's next request is what the round trip waits for.</summary>
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
}
