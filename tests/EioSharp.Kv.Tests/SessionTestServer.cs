using System.Buffers;
using EioSharp.IO;
using EioSharp.Sync;

namespace EioSharp.Kv.Tests;

/// <summary>A duplex flow whose reads return the given chunks one per read, then end of input; writes are kept in
/// <see cref="Sink"/>.</summary>
internal sealed class ChunkFlow(params IEnumerable<byte[]> chunks) : IFlowDuplex
{
    private readonly BufferSource _source = new(chunks.Select(c => (ReadOnlyMemory<byte>)c).ToArray());

    public BufferSink Sink { get; } = new();

    public ValueTask<int> ReadAsync(Memory<byte> buffer) => _source.ReadAsync(buffer);

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => Sink.WriteAsync(data);

    public ValueTask ShutdownAsync(ShutdownCommand command) => ValueTask.CompletedTask;

    public void Close()
    {
    }
}

/// <summary>A duplex flow whose reads wait for chunks the test adds to <see cref="Input"/> (an empty chunk: end of
/// input); writes are kept in <see cref="Sink"/>.</summary>
internal sealed class QueueFlow : IFlowDuplex
{
    public AsyncQueue<byte[]> Input { get; } = new(AsyncQueue<byte[]>.Unbounded);

    public BufferSink Sink { get; } = new();

    public async ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        byte[] chunk = await Input.TakeAsync();
        chunk.CopyTo(buffer);
        return chunk.Length;
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data) => Sink.WriteAsync(data);

    public ValueTask ShutdownAsync(ShutdownCommand command) => ValueTask.CompletedTask;

    public void Close()
    {
    }
}

/// <summary>A Kv server without sockets for the connection-session tests: a real store owner (no AOF) on the run's
/// domain, fed by its queue, and the server context sessions are served against.</summary>
internal sealed record SessionTestServer(KvServerContext Context, StoreOwner Owner, KvServerStats Stats)
{
    /// <summary>Runs <paramref name="body"/> in an <see cref="EioMain.Run(Func{Stdenv, Task})"/> with the store owner
    /// started; closes its queue afterwards (the owner serves what is queued, then stops). <paramref name="inline"/> false:
    /// every batch goes through the queue (<see cref="StoreOwner.InlineRounds"/>); <paramref name="buffers"/>: the
    /// connections' buffer pool (<see cref="KvServerContext.ConnectionBuffers"/>), the server's own when null.</summary>
    public static void Run(Func<SessionTestServer, Task> body, bool inline = true, ArrayPool<byte>? buffers = null)
    {
        EioMain.Run(async env =>
        {
            var config = new KvServerConfig();
            var live = new KvLiveConfig(config);
            var stats = new KvServerStats { StartTimeUnixMs = env.Clock.Now.ToUnixTimeMilliseconds() };
            var store = new KvStore(config.Limits, databases: config.Databases, encodings: config.Encodings);
            var queue = new AsyncQueue<StoreRequest>(64);
            var ctx = buffers is null
                ? new KvServerContext(live, stats, queue, env.Clock) { ScriptMonitor = store.ScriptMonitor }
                : new KvServerContext(live, stats, queue, env.Clock) { ScriptMonitor = store.ScriptMonitor, ConnectionBuffers = buffers };

            var owner = new StoreOwner(store, null, queue, stats, live, env.Clock, env.MonoClock, _ => { }) { InlineRounds = inline };
            ctx.Store = owner;
            await Switch.RunAsync(async sw =>
            {
                var (ready, readyResolver) = Promise.Create<bool>();
                Fiber.Fork(sw, () => owner.RunSupervisedAsync(() => readyResolver.TryResolve(true)), "kv-store");
                await ready.AwaitAsync();
                try
                {
                    await body(new SessionTestServer(ctx, owner, stats));
                }
                finally
                {
                    queue.Close();
                }
            });
        });
    }

    /// <summary>Serves one connection over <paramref name="flow"/> to its end in a switch of its own (a
    /// <see cref="KvConnectionSession"/> from a client at 127.0.0.1:<paramref name="port"/>); returns the flow.</summary>
    public async Task<T> ServeAsync<T>(T flow, int port = 40000)
        where T : IFlowDuplex
    {
        await Switch.RunAsync(csw =>
            new KvConnectionSession(Context, flow, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port), "127.0.0.1:6379", csw).RunAsync());
        return flow;
    }
}

/// <summary>A duplex flow fed by the test through <see cref="Input"/> (an empty chunk: end of input) whose writes are
/// recorded, in the order they happen across flows, as "name:bytes" in the shared list; <see cref="Reads"/> counts the
/// chunks taken.</summary>
internal sealed class RecordingFlow(string name, List<string> writes) : IFlowDuplex
{
    public AsyncQueue<byte[]> Input { get; } = new(AsyncQueue<byte[]>.Unbounded);

    public int Reads { get; private set; }

    public async ValueTask<int> ReadAsync(Memory<byte> buffer)
    {
        byte[] chunk = await Input.TakeAsync();
        Reads++;
        chunk.CopyTo(buffer);
        return chunk.Length;
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        writes.Add(name + ":" + System.Text.Encoding.UTF8.GetString(data.Span));
        return ValueTask.CompletedTask;
    }

    public ValueTask ShutdownAsync(ShutdownCommand command) => ValueTask.CompletedTask;

    public void Close()
    {
    }
}

/// <summary>Helpers of the session tests over in-memory flows.</summary>
internal static class SessionTestRequests
{
    /// <summary>A RESP array of bulk strings: the request a client sends for <paramref name="args"/>.</summary>
    public static byte[] Resp(params string[] args)
    {
        var sb = new System.Text.StringBuilder().Append('*').Append(args.Length).Append("\r\n");
        foreach (string a in args)
        {
            sb.Append('$').Append(System.Text.Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        return System.Text.Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Yields until <paramref name="condition"/> holds (the one-domain scheduler is deterministic: this counts
    /// rounds, not time); fails after 100,000 rounds.</summary>
    public static async Task UntilAsync(Func<bool> condition)
    {
        for (int i = 0; !condition(); i++)
        {
            Assert.True(i < 100_000, "the condition never held");
            await Fiber.YieldAsync();
        }
    }
}
