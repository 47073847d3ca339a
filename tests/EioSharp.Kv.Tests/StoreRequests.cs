using System.Text;
using EioSharp.Sync;

namespace EioSharp.Kv.Tests;

/// <summary>Requests for tests that queue work to a store owner directly (no connection): HeldRoundTests and
/// DeferredAofWriteTests.</summary>
internal static class StoreRequests
{
    /// <summary>A command from its arguments as UTF-8 text.</summary>
    public static KvCommand Cmd(params string[] args) => KvCommand.Create(args.Select(Encoding.UTF8.GetBytes).ToArray());

    /// <summary>A request carrying <paramref name="commands"/>.</summary>
    public static StoreRequest Request(params KvCommand[] commands)
    {
        var r = new StoreRequest();
        r.Commands.AddRange(commands);
        return r;
    }

    /// <summary>The request's reply bytes as text.</summary>
    public static string ReplyText(StoreRequest r) => Encoding.UTF8.GetString(r.Reply.WrittenSpan);

    /// <summary>Runs <paramref name="body"/> against a real store owner with an AOF (policy <paramref name="fsync"/>) in a
    /// fresh directory (deleted afterwards), requests queued directly (no connection); returns the incremental AOF's text
    /// after the owner stopped.</summary>
    /// <param name="dirPrefix">The temporary directory's name prefix.</param>
    /// <param name="inlineRounds">StoreOwner.InlineRounds (its default: true).</param>
    /// <param name="holdRounds">StoreOwner.HoldRounds (its default: true).</param>
    /// <param name="deferAofWrites">StoreOwner.DeferAofWrites (its default: false).</param>
    /// <param name="body">The test, given the owner, its queue, the AOF and the environment; the queue is closed after it.</param>
    /// <param name="fsync">appendfsync.</param>
    /// <param name="options">The run's options (null: EioMain.Run's defaults).</param>
    /// <param name="yieldBeforeBody">Yield once after the owner is ready, so that its loop waits for its first request.</param>
    public static string RunOwner(string dirPrefix, bool inlineRounds, bool holdRounds, bool deferAofWrites,
        Func<StoreOwner, AsyncQueue<StoreRequest>, AppendOnlyFile, Stdenv, Task> body, string fsync, EioOptions? options,
        bool yieldBeforeBody)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"{dirPrefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            Func<Stdenv, Task> main = async env =>
            {
                var config = new KvServerConfig { Directory = dir, AppendOnly = true, AppendFsync = fsync };
                var live = new KvLiveConfig(config);
                var stats = new KvServerStats { StartTimeUnixMs = env.Clock.Now.ToUnixTimeMilliseconds() };
                var store = new KvStore(config.Limits, databases: config.Databases, encodings: config.Encodings);
                var queue = new AsyncQueue<StoreRequest>(64);
                await Switch.RunAsync(async sw =>
                {
                    var aof = await AppendOnlyFile.OpenAndLoadAsync(AofPaths.From(env.Fs, config), sw, AppendOnlyFile.ParsePolicy(fsync),
                        () => live.Current, store, env.Clock.Now.ToUnixTimeMilliseconds(), config.Limits, _ => { });
                    var owner = new StoreOwner(store, aof, queue, stats, live, env.Clock, env.MonoClock, _ => { })
                    {
                        InlineRounds = inlineRounds,
                        HoldRounds = holdRounds,
                        DeferAofWrites = deferAofWrites,
                        Fs = env.Fs,
                    };
                    var (ready, readyResolver) = Promise.Create<bool>();
                    Fiber.Fork(sw, () => owner.RunSupervisedAsync(() => readyResolver.TryResolve(true)), "kv-store");
                    await ready.AwaitAsync();
                    if (yieldBeforeBody) await Fiber.YieldAsync();
                    try
                    {
                        await body(owner, queue, aof, env);
                    }
                    finally
                    {
                        queue.Close();
                    }
                });
            };
            if (options is null) EioMain.Run(main);
            else EioMain.Run(main, options);
            string incr = Directory.GetFiles(Path.Combine(dir, "appendonlydir"), "*.incr.aof").Single();
            return File.ReadAllText(incr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
