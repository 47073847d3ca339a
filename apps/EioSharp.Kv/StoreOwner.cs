using System.Buffers;
using System.Runtime.InteropServices;
using EioSharp.Sync;
using EioSharp.Time;

namespace EioSharp.Kv;

/// <summary>A batch of data commands from one connection, with the reply bytes and the promise that releases them.</summary>
/// <remarks>One per connection, reused: a connection has at most one request in flight.</remarks>
internal sealed class StoreRequest
{
    public readonly List<KvCommand> Commands = new(16);
    public readonly ArrayBufferWriter<byte> Reply = new(4096);
    public int Protocol = 2;
    public Resolver<bool>? Done;
}

/// <summary>
/// The single owner of the keyspace (the Eio KV-store design): runs on its own domain, takes requests from a bounded
/// queue, and per round drains every queued request, applies them, appends them to the AOF, fsyncs once (group commit),
/// and only then resolves their promises.
/// </summary>
internal sealed class StoreOwner(KvStore store, AppendOnlyFile? aof, AsyncQueue<StoreRequest> queue, KvServerStats stats,
    KvServerConfig config, Clock clock, MonoClock monoClock, Action<string> log)
{
    private const int MaxRequestsPerRound = 1024; // bounds one group commit; the rest waits for the next round
    private static readonly TimeSpan s_cronInterval = TimeSpan.FromMilliseconds(100); // Redis's default hz 10

    private readonly ArrayBufferWriter<byte> _aofBuffer = new(64 * 1024);
    private readonly List<StoreRequest> _round = new(MaxRequestsPerRound);

    public async Task RunAsync()
    {
        var sink = new AofBufferSink(_aofBuffer);
        try
        {
            await Switch.RunAsync(async sw =>
            {
                Fiber.ForkDaemon(sw, CronAsync, "kv-cron");
                while (true)
                {
                    StoreRequest first;
                    try
                    {
                        first = await queue.TakeAsync();
                    }
                    catch (StreamClosedException)
                    {
                        return; // Shutdown: every request queued before Close has been served.
                    }

                    _round.Clear();
                    _round.Add(first);
                    queue.TryTakeMany(_round, MaxRequestsPerRound - 1);
                    CommitRound(sink);
                }
            }, "kv-store");
        }
        finally
        {
            FailPending(new InvalidOperationException("The store has stopped."));
            if (aof is not null)
            {
                aof.TryFinishRewrite();
                aof.Dispose(); // final fsync, whatever the policy
            }
        }
    }

    private void CommitRound(AofBufferSink sink)
    {
        long now = clock.Now.ToUnixTimeMilliseconds();
        IAofSink? log = aof is null ? null : sink;
        long commands = 0;
        foreach (var request in _round)
        {
            var writer = new RespWriter(request.Reply, request.Protocol);
            store.ExecuteBatch(CollectionsMarshal.AsSpan(request.Commands), now, writer, log);
            commands += request.Commands.Count;
        }

        if (aof is not null && _aofBuffer.WrittenCount > 0)
        {
            try
            {
                aof.Append(_aofBuffer.WrittenSpan);
                if (aof.Policy == FsyncPolicy.Always)
                {
                    aof.Sync();
                }
            }
            catch (IOException ex)
            {
                // Like Redis: writes that cannot be made durable must not be acknowledged. Stop the server.
                var error = new IOException($"Writing the append-only file failed: {ex.Message}", ex);
                foreach (var r in _round)
                {
                    r.Done?.TryResolveError(error);
                }

                throw error;
            }
            finally
            {
                _aofBuffer.ResetWrittenCount();
            }
        }

        stats.OnCommandsProcessed(commands);
        stats.UpdateFrom(store); // before the replies go out, so INFO right after a write sees it
        foreach (var r in _round)
        {
            r.Done!.TryResolve(true);
        }

        _round.Clear();
    }

    /// <summary>Background work every 100 ms: active expiry, INFO numbers, AOF rewrite start and finish.</summary>
    private async Task CronAsync()
    {
        while (true)
        {
            await monoClock.SleepAsync(s_cronInterval);
            long now = clock.Now.ToUnixTimeMilliseconds();
            store.ActiveExpireCycle(now);
            stats.UpdateFrom(store);
            if (aof is not null)
            {
                aof.TryFinishRewrite();
                if (aof.ShouldRewrite(config.AutoAofRewritePercentage, config.AutoAofRewriteMinSize))
                {
                    aof.StartRewrite(store.CreateSnapshot(now));
                }

                stats.AofRewriteInProgress = aof.RewriteInProgress;
                stats.AofRewrites = aof.Rewrites;
                stats.AofCurrentSize = aof.Length;
                stats.AofBaseSize = aof.BaseSize;
                stats.AofFsyncs = aof.Fsyncs;
            }
        }
    }

    private void FailPending(Exception error)
    {
        foreach (var r in _round)
        {
            r.Done?.TryResolveError(error);
        }

        queue.Close();
        while (queue.TryTake(out var r))
        {
            r.Done?.TryResolveError(error);
        }

        _ = log;
    }
}
