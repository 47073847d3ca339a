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

    /// <summary>Session 27 (h164): a served client whose flow takes bytes without suspending (<see cref="IImmediateWrite"/>,
    /// as a socket with io_uring write-behind) gets its reply from the round that served it, before the pusher's, and its
    /// fiber goes on with the client's next request as after a completion.</summary>
    [Fact]
    public void The_served_reply_is_sent_by_the_serving_round_and_the_client_goes_on()
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new ImmediateRecordingFlow("blocked", writes);
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
                        await UntilAsync(() => writes.Count == 2);
                        Assert.Equal([$"blocked(now):*2\r\n$1\r\nq\r\n$2\r\nv{round}\r\n", "pusher::1\r\n"], writes);
                        Assert.Equal(0, server.Stats.BlockedClients);

                        // The served client's next request is read and answered as usual.
                        blocked.Input.TryAdd(Resp("LLEN", "q"));
                        await UntilAsync(() => writes.Count == 3);
                        Assert.Equal("blocked::0\r\n", writes[2]);
                        writes.Clear();
                    }

                    Assert.Equal(3, blocked.ImmediateWrites);
                    blocked.Input.TryAdd([]);
                    pusher.Input.TryAdd([]);
                });
        });
    }

    /// <summary>The serving round sends only a reply that is the whole of the request's: a command pipelined after the
    /// blocking one, or a flow that refuses the immediate write, gets its replies from its own fiber, in order.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_pipelined_command_or_a_refused_write_goes_through_the_clients_fiber(bool pipelined)
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new ImmediateRecordingFlow("blocked", writes) { AcceptImmediate = pipelined };
            var pusher = new RecordingFlow("pusher", writes);
            await Fiber.BothAsync(
                () => Fiber.BothAsync(() => server.ServeAsync(blocked), () => server.ServeAsync(pusher, port: 40001)),
                async () =>
                {
                    blocked.Input.TryAdd(pipelined ? [.. Resp("BLPOP", "q", "0"), .. Resp("PING")] : Resp("BLPOP", "q", "0"));
                    await UntilAsync(() => server.Stats.BlockedClients == 1);
                    pusher.Input.TryAdd(Resp("LPUSH", "q", "v"));
                    await UntilAsync(() => writes.Count == 2);
                    string reply = "*2\r\n$1\r\nq\r\n$1\r\nv\r\n" + (pipelined ? "+PONG\r\n" : "");
                    Assert.Equal(["blocked:" + reply, "pusher::1\r\n"], writes);
                    Assert.Equal(0, blocked.ImmediateWrites);
                    blocked.Input.TryAdd([]);
                    pusher.Input.TryAdd([]);
                });
        });
    }

    /// <summary>A client that closes its connection after its reply was sent by the serving round ends cleanly: nothing
    /// is left blocked, and the list keeps only what was not popped.</summary>
    [Fact]
    public void A_client_closing_after_its_reply_was_sent_by_the_round_ends_cleanly()
    {
        SessionTestServer.Run(async server =>
        {
            var writes = new List<string>();
            var blocked = new ImmediateRecordingFlow("blocked", writes);
            var pusher = new RecordingFlow("pusher", writes);
            await Fiber.BothAsync(
                () => Fiber.BothAsync(() => server.ServeAsync(blocked), () => server.ServeAsync(pusher, port: 40001)),
                async () =>
                {
                    blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                    await UntilAsync(() => server.Stats.BlockedClients == 1);
                    pusher.Input.TryAdd(Resp("RPUSH", "q", "a", "b"));
                    await UntilAsync(() => writes.Count == 2);
                    blocked.Input.TryAdd([]); // the client goes away
                    pusher.Input.TryAdd(Resp("LRANGE", "q", "0", "-1"));
                    await UntilAsync(() => writes.Count == 3);
                    Assert.Equal(["blocked(now):*2\r\n$1\r\nq\r\n$1\r\na\r\n", "pusher::2\r\n", "pusher:*1\r\n$1\r\nb\r\n"], writes);
                    Assert.Equal(0, server.Stats.BlockedClients);
                    pusher.Input.TryAdd([]);
                });
        });
    }
}

/// <summary>A <see cref="RecordingFlow"/> that also takes immediate writes (<see cref="IImmediateWrite"/>, recorded as
/// <c>name(now):</c>) while <see cref="AcceptImmediate"/> is true.</summary>
internal sealed class ImmediateRecordingFlow(string name, List<string> writes) : IFlowDuplex, IImmediateWrite
{
    public AsyncQueue<byte[]> Input { get; } = new(AsyncQueue<byte[]>.Unbounded);

    public bool AcceptImmediate { get; init; } = true;

    public int ImmediateWrites { get; private set; }

    public bool TryWrite(ReadOnlySpan<byte> data)
    {
        if (!AcceptImmediate)
        {
            return false;
        }

        ImmediateWrites++;
        writes.Add(name + "(now):" + Encoding.UTF8.GetString(data));
        return true;
    }

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
