using System.Text;
using EioSharp.IO;
using EioSharp.Sync;

namespace EioSharp.Kv.Tests;

/// <summary>A push that serves a blocked client (LPUSH completing a BLPOP) lets that client's reply go out before its
/// own, as Redis writes the clients a command served before the client that sent it (issue 12, session 22): in the
/// BLPOP/LPUSH ping-pong the served client's next request is what the round trip waits for.</summary>
public sealed class ServedFirstTests
{
    private static byte[] Resp(params string[] args)
    {
        var sb = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>A flow fed by the test (an empty chunk: end of input) whose writes are recorded, in the order they happen
    /// across flows, as "name:bytes".</summary>
    private sealed class RecordingFlow(string name, List<string> writes) : IFlowDuplex
    {
        public AsyncQueue<byte[]> Input { get; } = new(AsyncQueue<byte[]>.Unbounded);

        public async ValueTask<int> ReadAsync(Memory<byte> buffer)
        {
            byte[] chunk = await Input.TakeAsync();
            chunk.CopyTo(buffer);
            return chunk.Length;
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
        {
            writes.Add(name + ":" + Encoding.UTF8.GetString(data.Span));
            return ValueTask.CompletedTask;
        }

        public ValueTask ShutdownAsync(ShutdownCommand command) => ValueTask.CompletedTask;

        public void Close()
        {
        }
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        for (int i = 0; !condition(); i++)
        {
            Assert.True(i < 100_000, "the condition never held");
            await Fiber.YieldAsync();
        }
    }

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
