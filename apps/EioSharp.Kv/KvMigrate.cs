using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using EioSharp.IO;
using EioSharp.Net;

namespace EioSharp.Kv;

/// <summary>MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password] [AUTH2 username password]
/// [KEYS key ...]: moves keys to another server with RESTORE, over the library's network, as Redis 7.0's
/// migrateCommand does.</summary>
/// <remarks>
/// <para>Three steps, so that the transfer blocks only this client: (1) on the store owner, the keys' DUMP payloads and
/// times to live are read (<see cref="KvStore.MigrateSnapshot"/>; all keys missing: <c>+NOKEY</c>); (2) on this
/// connection's fiber, a new connection to the target (one per call: Redis caches them for 10 s) gets
/// <c>AUTH</c>/<c>AUTH2</c>, <c>SELECT db</c> and one <c>RESTORE key ttl payload [REPLACE]</c> per key, and their
/// replies are read, each step bounded by <c>timeout</c> milliseconds (0 or less: 1000, as Redis); (3) without COPY, on
/// the store owner, the acknowledged keys are deleted as one DEL (<see cref="KvStore.MigrateDelete"/>), unless another
/// client changed one meanwhile: that key keeps its new value here.</para>
/// <para>Errors as Redis: the target's first error as <c>-ERR Target instance replied with error: ...</c> (keys
/// acknowledged before it are still deleted); <c>-IOERR error or timeout connecting to the client</c> when the
/// connection is not made in time, <c>-IOERR error or timeout writing to target instance</c> when it is refused or a
/// write fails (redis-server 7.0.15 answers this for a refused port: its connect does not wait for the refusal),
/// <c>-IOERR error or timeout reading to target instance</c> when a reply does not come in time. A socket error that is
/// not a timeout, before any key was acknowledged, is retried once on a new connection, as Redis does.</para>
/// <para>The payload is this server's DUMP format (<see cref="KvDump"/>): the target must be an EioSharp.Kv server
/// (redis-server answers RESTORE with its checksum error, reported as above).</para>
/// </remarks>
internal static class KvMigrate
{
    private const string ConnectError = "IOERR error or timeout connecting to the client";

    public static async Task RunAsync(KvServerContext ctx, KvConnectionState state, KvCommand command, RespWriter reply)
    {
        reply.Protocol = state.Protocol;
        if (KvMigrateOptions.Parse(command, out string? error) is not { } options)
        {
            reply.WriteError(error!);
            return;
        }
        IReadOnlyList<byte[]> keys = options.Keys;

        // (1) The keys' payloads, read on the store owner.
        IReadOnlyList<KvMigrateItem> items = [];
        if (!await OnStoreAsync(ctx, state, reply, (store, _, _) => items = store.MigrateSnapshot(state.Session, keys, ctx.Clock.Now.ToUnixTimeMilliseconds()))) return;
        if (items.Count == 0)
        {
            reply.WriteSimpleString("NOKEY");
            return;
        }

        // (2) The transfer, on this connection's fiber only.
        string host = command.GetString(1), port = command.GetString(2);
        byte[] request = options.BuildRequest(items);
        TimeSpan timeout = options.Timeout;
        Outcome outcome = new([], null, null, false);
        for (int attempt = 0; attempt < 2; attempt++)
        {
            outcome = await TransferAsync(ctx, host, port, request, items.Count, options.Password is not null, timeout);
            // Redis retries once on a socket error that is not a timeout, when no key was acknowledged yet.
            if (outcome.IoError is null || outcome.TimedOut || outcome.TargetError is not null || outcome.Acknowledged.Count > 0) break;
        }

        // (3) The acknowledged keys leave this server (unless COPY).
        if (!options.Copy && outcome.Acknowledged.Count > 0)
        {
            KvMigrateItem[] moved = [.. outcome.Acknowledged.Select(i => items[i])];
            var scratch = new ArrayBufferWriter<byte>(64);
            if (!await OnStoreAsync(ctx, state, new RespWriter(scratch), (store, _, aof) => store.MigrateDelete(state.Session, moved, ctx.Clock.Now.ToUnixTimeMilliseconds(), aof)))
            {
                reply.WriteRaw(scratch.WrittenSpan);
                return;
            }
        }
        if (outcome.TargetError is { } targetError) reply.WriteError("ERR Target instance replied with error: " + targetError);
        else if (outcome.IoError is { } ioError) reply.WriteError(ioError);
        else reply.WriteOk();
    }

    /// <summary>What the target answered: the indexes of the keys it acknowledged, its first error, or the I/O error.</summary>
    private sealed record Outcome(List<int> Acknowledged, string? TargetError, string? IoError, bool TimedOut);

    private static async Task<Outcome> TransferAsync(KvServerContext ctx, string host, string port, byte[] request, int keyCount, bool auth, TimeSpan timeout)
    {
        if (ctx.Net is not { } net) return new Outcome([], null, ConnectError, false);
        return await Switch.RunAsync(async sw =>
        {
            StreamSocket socket;
            try
            {
                if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int portNumber) || portNumber > 65535)
                {
                    return new Outcome([], null, ConnectError, false);
                }
                IPAddress address = IPAddress.TryParse(host, out IPAddress? literal)
                    ? literal
                    : (await ctx.Clock.WithTimeoutAsync(timeout, () => net.GetAddrInfoAsync(host, port)))[0].Address;
                socket = await ctx.Clock.WithTimeoutAsync(timeout, () => net.ConnectAsync(sw, new IPEndPoint(address, portNumber)));
            }
            catch (TimeoutException)
            {
                return new Outcome([], null, ConnectError, true);
            }
            catch (Exception ex) when (ex is NetException or IOException or ArgumentException or System.Net.Sockets.SocketException)
            {
                // As redis-server 7.0.15 answers for a refused connection (its connect does not wait for the refusal).
                return new Outcome([], null, "IOERR error or timeout writing to target instance", false);
            }

            try
            {
                await ctx.Clock.WithTimeoutAsync(timeout, async () => await socket.WriteAsync(request));
            }
            catch (Exception ex) when (ex is TimeoutException or NetException or IOException)
            {
                return new Outcome([], null, "IOERR error or timeout writing to target instance", ex is TimeoutException);
            }

            var reader = new BufferedReader(socket, 1024 * 1024, 4096);
            string? authError = null, selectError = null, targetError = null;
            var acknowledged = new List<int>();
            try
            {
                if (auth && await ReadLineAsync(ctx, reader, timeout) is { } authLine && authLine.StartsWith('-')) authError = authLine[1..];
                if (await ReadLineAsync(ctx, reader, timeout) is { } selectLine && selectLine.StartsWith('-')) selectError = selectLine[1..];
                for (int j = 0; j < keyCount; j++)
                {
                    string line = await ReadLineAsync(ctx, reader, timeout);
                    if (authError is not null || selectError is not null || line.StartsWith('-'))
                    {
                        targetError ??= authError ?? selectError ?? line[1..];
                    }
                    else
                    {
                        acknowledged.Add(j); // as Redis: deleted here even after another key's error
                    }
                }
            }
            catch (Exception ex) when (ex is TimeoutException or NetException or IOException or EndOfStreamException or BufferLimitExceededException)
            {
                return new Outcome(acknowledged, targetError, targetError is null ? "IOERR error or timeout reading to target instance" : null, ex is TimeoutException);
            }
            return new Outcome(acknowledged, targetError, null, false);
        }, "kv-migrate");
    }

    private static async Task<string> ReadLineAsync(KvServerContext ctx, BufferedReader reader, TimeSpan timeout) =>
        await ctx.Clock.WithTimeoutAsync(timeout, async () => Encoding.UTF8.GetString((await reader.ReadLineMemoryAsync()).Span).TrimEnd('\r'));

    /// <summary>Runs <paramref name="work"/> on the store owner in a round of its own; false (the error written) when
    /// the store restarted meanwhile.</summary>
    private static async Task<bool> OnStoreAsync(KvServerContext ctx, KvConnectionState state, RespWriter reply, Action<KvStore, RespWriter, IAofSink?> work)
    {
        var request = new StoreRequest { Protocol = state.Protocol, Session = state.Session, Direct = work };
        var (done, resolver) = Promise.Create<bool>();
        request.Done = resolver;
        try
        {
            await ctx.Queue.AddAsync(request);
            await done.AwaitAsync();
            return true;
        }
        catch (StoreRestartedException ex)
        {
            reply.WriteError(ex.ReplyError);
            return false;
        }
    }
}
