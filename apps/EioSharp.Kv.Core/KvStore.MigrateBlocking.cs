using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv;

public sealed partial class KvStore
{
    private const string MigrateConnectError = "IOERR error or timeout connecting to the client";
    private const string MigrateWriteError = "IOERR error or timeout writing to target instance";
    private const string MigrateReadError = "IOERR error or timeout reading to target instance";

    /// <summary>What the target answered: the indexes of the keys it acknowledged, its first error, or the I/O error.</summary>
    private sealed record MigrateOutcome(List<int> Acknowledged, string? TargetError, string? IoError, bool TimedOut);

    /// <summary>MIGRATE run entirely on the store owner, as redis-server runs it: queued in MULTI (inside EXEC) or
    /// called from a script (<c>redis.call('migrate', ...)</c>). The keys' payloads are read, sent to the target over a
    /// blocking socket bounded by the command's timeout (milliseconds; 0 or less: 1000) for the connection, the write
    /// and each reply line, and without COPY the acknowledged keys are deleted as one <c>DEL</c> logged to
    /// <paramref name="aof"/> (inside EXEC: the transaction's MULTI block). The store owner does nothing else
    /// meanwhile, as redis-server blocks its event loop: MIGRATE to this server itself answers
    /// <c>-IOERR error or timeout reading to target instance</c> after the timeout (its RESTOREs wait in the queue and
    /// run afterwards, where an existing key is BUSYKEY), never a deadlock. The replies and errors are those of the
    /// fiber path (<c>KvMigrate</c> in the server), so both paths answer as Redis's migrateCommand.</summary>
    /// <param name="session">The migrating connection (its selected database).</param>
    /// <param name="command">The MIGRATE command (arity already checked).</param>
    /// <param name="nowUnixMs">The current time in Unix milliseconds.</param>
    /// <param name="reply">Where the reply is written.</param>
    /// <param name="aof">The AOF sink the DEL goes to (null: none).</param>
    internal void MigrateBlocking(KvSession session, KvCommand command, long nowUnixMs, RespWriter reply, IAofSink? aof)
    {
        if (KvMigrateOptions.Parse(command, out string? error) is not { } options)
        {
            reply.WriteError(error!);
            return;
        }
        IReadOnlyList<KvMigrateItem> items = MigrateSnapshot(session, options.Keys, nowUnixMs);
        if (items.Count == 0)
        {
            reply.WriteSimpleString("NOKEY");
            return;
        }
        byte[] request = options.BuildRequest(items);
        TimeSpan timeout = options.Timeout;
        MigrateOutcome outcome = new([], null, null, false);
        for (int attempt = 0; attempt < 2; attempt++)
        {
            outcome = TransferBlocking(command.GetString(1), command.GetString(2), request, items.Count, options.Password is not null, timeout);
            // Redis retries once on a socket error that is not a timeout, when no key was acknowledged yet.
            if (outcome.IoError is null || outcome.TimedOut || outcome.TargetError is not null || outcome.Acknowledged.Count > 0) break;
            if (outcome.IoError == MigrateConnectError) break; // Redis answers a failed connect at once
        }
        if (!options.Copy && outcome.Acknowledged.Count > 0)
        {
            KvMigrateItem[] moved = [.. outcome.Acknowledged.Select(i => items[i])];
            MigrateDelete(session, moved, nowUnixMs, aof);
        }
        if (outcome.TargetError is { } targetError) reply.WriteError("ERR Target instance replied with error: " + targetError);
        else if (outcome.IoError is { } ioError) reply.WriteError(ioError);
        else reply.WriteOk();
    }

    /// <summary>One transfer over a blocking socket, as Redis's connBlockingConnect/connSyncWrite/connSyncReadLine:
    /// a non-blocking connect waited for until the socket is writable (a refused port is writable with an error, so
    /// it fails as a write, as on redis-server), the request written with a send timeout, then one reply line per
    /// command, each within <paramref name="timeout"/>.</summary>
    private static MigrateOutcome TransferBlocking(string host, string portText, byte[] request, int keyCount, bool auth, TimeSpan timeout)
    {
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            return new MigrateOutcome([], null, MigrateConnectError, false);
        }
        IPAddress address;
        try
        {
            // Redis resolves with a blocking getaddrinfo as well (anetTcpGenericConnect).
            address = IPAddress.TryParse(host, out IPAddress? literal) ? literal : Dns.GetHostAddresses(host)[0];
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException or IndexOutOfRangeException)
        {
            return new MigrateOutcome([], null, MigrateConnectError, false);
        }

        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        int timeoutMs = (int)Math.Min(timeout.TotalMilliseconds, int.MaxValue);
        try
        {
            socket.NoDelay = true;
            socket.Blocking = false;
            try
            {
                socket.Connect(new IPEndPoint(address, port));
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.AlreadyInProgress)
            {
                var write = new List<Socket> { socket };
                var error = new List<Socket> { socket };
                Socket.Select(null, write, error, timeout);
                if (write.Count == 0 && error.Count == 0) return new MigrateOutcome([], null, MigrateConnectError, true);
                if (socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int err && err != 0)
                {
                    return new MigrateOutcome([], null, MigrateWriteError, false); // refused: the write fails (as Redis)
                }
            }
            socket.Blocking = true;
        }
        catch (SocketException)
        {
            return new MigrateOutcome([], null, MigrateWriteError, false);
        }

        try
        {
            socket.SendTimeout = timeoutMs;
            int sent = 0;
            while (sent < request.Length) sent += socket.Send(request, sent, request.Length - sent, SocketFlags.None);
        }
        catch (SocketException ex)
        {
            return new MigrateOutcome([], null, MigrateWriteError, ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock);
        }

        var reader = new BlockingLineReader(socket, timeoutMs);
        string? authError = null, selectError = null, targetError = null;
        var acknowledged = new List<int>();
        try
        {
            if (auth && reader.ReadLine() is { } authLine && authLine.StartsWith('-')) authError = authLine[1..];
            if (reader.ReadLine() is { } selectLine && selectLine.StartsWith('-')) selectError = selectLine[1..];
            for (int j = 0; j < keyCount; j++)
            {
                string line = reader.ReadLine();
                if (authError is not null || selectError is not null || line.StartsWith('-')) targetError ??= authError ?? selectError ?? line[1..];
                else acknowledged.Add(j); // as Redis: deleted here even after another key's error
            }
        }
        catch (SocketException ex)
        {
            return new MigrateOutcome(acknowledged, targetError, targetError is null ? MigrateReadError : null,
                ex.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock);
        }
        catch (IOException)
        {
            return new MigrateOutcome(acknowledged, targetError, targetError is null ? MigrateReadError : null, false);
        }
        return new MigrateOutcome(acknowledged, targetError, null, false);
    }

    /// <summary>Reads CRLF-terminated lines from a blocking socket, each within a timeout (milliseconds).</summary>
    private sealed class BlockingLineReader(Socket socket, int timeoutMs)
    {
        private const int MaxLine = 1024 * 1024;
        private readonly byte[] _buffer = new byte[4096];
        private int _start, _end;

        /// <summary>The next line without its CRLF. Throws <see cref="SocketException"/> (TimedOut) when it does not
        /// come within the timeout, <see cref="IOException"/> at end of stream or for a line over 1 MB.</summary>
        public string ReadLine()
        {
            long deadline = Environment.TickCount64 + timeoutMs;
            var line = new List<byte>();
            while (true)
            {
                int nl = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (nl >= 0)
                {
                    line.AddRange(_buffer.AsSpan(_start, nl - _start));
                    _start = nl + 1;
                    return Encoding.UTF8.GetString([.. line]).TrimEnd('\r');
                }
                line.AddRange(_buffer.AsSpan(_start, _end - _start));
                _start = _end = 0;
                if (line.Count > MaxLine) throw new IOException("reply line too long");
                long left = deadline - Environment.TickCount64;
                if (left <= 0) throw new SocketException((int)SocketError.TimedOut);
                socket.ReceiveTimeout = (int)Math.Min(left, int.MaxValue);
                int n = socket.Receive(_buffer, 0, _buffer.Length, SocketFlags.None);
                if (n == 0) throw new IOException("the target closed the connection");
                _end = n;
            }
        }
    }
}
