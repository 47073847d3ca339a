using System.Buffers;
using System.Text;

namespace EioSharp.Kv;

/// <summary>What <see cref="AofLoader"/> found in an append-only file.</summary>
/// <param name="ValidLength">Bytes from the start of the file that hold complete commands; the file should be truncated to this length when <paramref name="IsTruncated"/>.</param>
/// <param name="CommandCount">Commands replayed.</param>
/// <param name="IsTruncated">True when the file ends with an incomplete command (a torn write): the caller truncates the file to <paramref name="ValidLength"/> and logs a warning.</param>
/// <param name="TotalLength">Bytes read in total.</param>
public readonly record struct AofLoadResult(long ValidLength, long CommandCount, bool IsTruncated, long TotalLength)
{
    /// <summary>The file ends inside a MULTI block (no EXEC): <see cref="ValidLength"/> is the offset of its MULTI and none
    /// of its commands was applied (Redis's "Revert incomplete MULTI/EXEC transaction").</summary>
    public bool TransactionReverted { get; init; }
}

/// <summary>Replays an append-only file into a <see cref="KvStore"/>.</summary>
/// <remarks>
/// <b>Errors</b>: an incomplete command at the very end of the file is a torn write, reported in
/// <see cref="AofLoadResult.IsTruncated"/>; any other framing error, an inline command, or a command
/// that is not a known write command or SELECT of an existing database throws <see cref="AofCorruptException"/> with the byte offset of
/// the command that could not be read.
/// </remarks>
public static class AofLoader
{
    private const int ReadChunkBytes = 64 * 1024; // read size when loading from a stream

    private static readonly RespParser s_defaultParser = new(RespLimits.Default) { MultibulkOnly = true };

    /// <summary>Replays every command in <paramref name="data"/> into <paramref name="store"/>.</summary>
    /// <param name="data">The whole file.</param>
    /// <param name="store">The store to fill (usually empty).</param>
    /// <param name="nowUnixMs">The current time; keys whose absolute expiry has passed end up expired.</param>
    /// <param name="limits">Parser limits; null: <see cref="RespLimits.Default"/>.</param>
    /// <exception cref="AofCorruptException">The file is corrupt before its last command.</exception>
    public static AofLoadResult Load(ReadOnlySpan<byte> data, KvStore store, long nowUnixMs, RespLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        RespParser parser = Parser(limits);
        var reply = new RespWriter(new DiscardBufferWriter());
        var session = new KvSession();
        var tx = new TransactionReplay();
        long count = 0;
        int offset = 0;
        while (offset < data.Length)
        {
            int annotation = AnnotationLength(data[offset..]);
            if (annotation > 0)
            {
                offset += annotation;
                continue;
            }

            if (annotation < 0 || !TryReplayOne(parser, data[offset..], offset, store, session, nowUnixMs, reply, tx, out int used))
                return tx.Open
                    ? new AofLoadResult(tx.StartOffset, count - tx.Commands.Count - 1, IsTruncated: true, data.Length) { TransactionReverted = true }
                    : new AofLoadResult(offset, count, IsTruncated: true, data.Length);
            offset += used;
            count++;
        }
        if (tx.Open) return new AofLoadResult(tx.StartOffset, count - tx.Commands.Count - 1, IsTruncated: true, data.Length) { TransactionReverted = true };
        return new AofLoadResult(offset, count, IsTruncated: false, data.Length);
    }

    /// <summary>Replays every command read from <paramref name="stream"/> into <paramref name="store"/>.</summary>
    /// <remarks>Reads synchronously in 64 KiB chunks; a command is parsed once it is complete in the buffer.</remarks>
    /// <exception cref="AofCorruptException">The file is corrupt before its last command.</exception>
    public static AofLoadResult Load(Stream stream, KvStore store, long nowUnixMs, RespLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(store);
        RespParser parser = Parser(limits);
        var reply = new RespWriter(new DiscardBufferWriter());
        var session = new KvSession();
        var tx = new TransactionReplay();
        byte[] buffer = new byte[ReadChunkBytes];
        int start = 0, end = 0;
        long baseOffset = 0, count = 0;
        bool eof = false;
        while (true)
        {
            // Replay everything complete in the buffer.
            while (start < end)
            {
                int annotation = AnnotationLength(buffer.AsSpan(start, end - start));
                if (annotation > 0)
                {
                    start += annotation;
                    continue;
                }

                if (annotation < 0) break;
                if (!TryReplayOne(parser, buffer.AsSpan(start, end - start), baseOffset + start, store, session, nowUnixMs, reply, tx, out int used)) break;
                start += used;
                count++;
            }
            if (eof)
            {
                long valid = baseOffset + start;
                if (tx.Open) return new AofLoadResult(tx.StartOffset, count - tx.Commands.Count - 1, IsTruncated: true, baseOffset + end) { TransactionReverted = true };
                return new AofLoadResult(valid, count, IsTruncated: start < end, baseOffset + end);
            }
            // Make room: move the incomplete tail to the front, grow when the tail fills the buffer.
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                baseOffset += start;
                end -= start;
                start = 0;
            }
            if (end == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(Array.MaxLength, buffer.Length * 2L));
            int n = stream.Read(buffer, end, buffer.Length - end);
            if (n == 0) eof = true;
            end += n;
        }
    }

    /// <summary>An annotation line (<c>#TS:1700000000\r\n</c>, written under <c>aof-timestamp-enabled</c>) at the start of
    /// <paramref name="data"/>: its length with the newline; 0 when <paramref name="data"/> does not start with <c>#</c>;
    /// -1 when the line is incomplete (a torn tail). Redis skips such lines wherever a command may start.</summary>
    public static int AnnotationLength(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || data[0] != (byte)'#') return 0;
        int nl = data.IndexOf((byte)'\n');
        return nl < 0 ? -1 : nl + 1;
    }

    private static RespParser Parser(RespLimits? limits) =>
        limits is null ? s_defaultParser : new RespParser(limits) { MultibulkOnly = true };

    /// <summary>A MULTI ... EXEC block being read: its commands are applied only once its EXEC is read, so that a torn
    /// tail (MULTI without EXEC at the end of the file) is dropped whole and the file truncated at its MULTI.</summary>
    private sealed class TransactionReplay
    {
        public bool Open;
        public long StartOffset;
        public readonly List<KvCommand> Commands = [];
    }

    private static bool TryReplayOne(RespParser parser, ReadOnlySpan<byte> data, long offset, KvStore store, KvSession session, long now, RespWriter reply, TransactionReplay tx, out int used)
    {
        KvCommand? command;
        try
        {
            if (!parser.TryParseCommand(data, out used, out command)) return false;
        }
        catch (RespProtocolException ex)
        {
            throw new AofCorruptException(offset, ex.Message, ex);
        }
        if (command.Count == 1 && Ascii.EqualsIgnoreCase(command[0], "MULTI"u8))
        {
            if (tx.Open) throw new AofCorruptException(offset, "MULTI inside a MULTI block (a transaction without its EXEC)");
            tx.Open = true;
            tx.StartOffset = offset;
            return true;
        }
        if (command.Count == 1 && Ascii.EqualsIgnoreCase(command[0], "EXEC"u8))
        {
            if (!tx.Open) throw new AofCorruptException(offset, "EXEC without MULTI");
            foreach (KvCommand queued in tx.Commands) store.Execute(session, queued, now, reply, aof: null);
            tx.Commands.Clear();
            tx.Open = false;
            return true;
        }
        KvCommandInfo? info = command.Info;
        bool select = info is not null && info.Name == "select";
        if (info is null || (!info.IsWrite && (info.Flags & KvCommandFlags.Script) == 0 && !select) || info.Handler is null)
            throw new AofCorruptException(offset, $"unknown command '{command.GetString(0)}'");
        if (select && !(command.Count == 2 && RespNumbers.TryParseInt64(command[1], out long db) && db >= 0 && db < store.DatabaseCount))
            throw new AofCorruptException(offset, $"SELECT of a database this server does not have ({command}; databases {store.DatabaseCount})");
        if (tx.Open) tx.Commands.Add(command);
        else store.Execute(session, command, now, reply, aof: null);
        return true;
    }

    private sealed class DiscardBufferWriter : IBufferWriter<byte>
    {
        private byte[] _buffer = new byte[256];

        public void Advance(int count) { }

        public Memory<byte> GetMemory(int sizeHint = 0) => Ensure(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0) => Ensure(sizeHint);

        private byte[] Ensure(int sizeHint)
        {
            if (sizeHint > _buffer.Length) _buffer = new byte[sizeHint];
            return _buffer;
        }
    }
}

/// <summary>Compacts the log: writes the current contents of a store as a minimal AOF.</summary>
/// <remarks>
/// Each database starts with <c>SELECT n</c>; string keys without expiry are written in MSET batches, string keys with
/// one as <c>SET key value PXAT ms</c>; other types as the commands of <see cref="KvObject.WriteRewrite"/> followed by
/// <c>PEXPIREAT</c> when they have an expiry. For a background rewrite, take <see cref="KvStore.CreateSnapshot"/> on the
/// owner and pass the snapshot to <see cref="Write(IReadOnlyList{KvSnapshotEntry}, IBufferWriter{byte})"/> on another
/// thread; commands executed meanwhile must be appended to the new file as well (after
/// <see cref="KvStore.ResetAofDatabase"/>, so that they start with their SELECT).
/// </remarks>
public static class AofRewriter
{
    private const int MSetBatchKeys = 64; // like Redis's AOF_REWRITE_ITEMS_PER_CMD: bounded command size

    /// <summary>Writes the store's live keys as AOF commands.</summary>
    public static void Write(KvStore store, long nowUnixMs, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(store);
        using KvSnapshotLease snapshot = store.CreateSnapshotLease(nowUnixMs); // written before this returns
        Write(snapshot.Entries, output);
    }

    /// <summary>Writes a snapshot (in database order) as AOF commands.</summary>
    public static void Write(IReadOnlyList<KvSnapshotEntry> snapshot, IBufferWriter<byte> output) => Write(snapshot, output, -1);

    /// <summary>Writes a part of a snapshot as AOF commands; <paramref name="currentDb"/> is the database the output is
    /// already in (-1: unknown). Returns the database the output ends in.</summary>
    public static int Write(IReadOnlyList<KvSnapshotEntry> snapshot, IBufferWriter<byte> output, int currentDb)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(output);
        var batch = new List<KvSnapshotEntry>(MSetBatchKeys);
        foreach (KvSnapshotEntry entry in snapshot)
        {
            if (entry.Db != currentDb)
            {
                Flush(batch, output);
                AofWriter.WriteArrayHeader(output, 2);
                AofWriter.WriteBulkString(output, "SELECT"u8);
                AofWriter.WriteBulkString(output, entry.Db);
                currentDb = entry.Db;
            }
            if (entry.Value is KvObject value)
            {
                value.WriteRewrite(entry.Key, output);
                if (entry.ExpireAtUnixMs >= 0)
                {
                    AofWriter.WriteArrayHeader(output, 3);
                    AofWriter.WriteBulkString(output, "PEXPIREAT"u8);
                    AofWriter.WriteBulkString(output, entry.Key);
                    AofWriter.WriteBulkString(output, entry.ExpireAtUnixMs);
                }
                continue;
            }
            if (entry.ExpireAtUnixMs >= 0)
            {
                AofWriter.WriteArrayHeader(output, 5);
                AofWriter.WriteBulkString(output, "SET"u8);
                AofWriter.WriteBulkString(output, entry.Key);
                AofWriter.WriteBulkString(output, (byte[])entry.Value);
                AofWriter.WriteBulkString(output, "PXAT"u8);
                AofWriter.WriteBulkString(output, entry.ExpireAtUnixMs);
                continue;
            }
            batch.Add(entry);
            if (batch.Count == MSetBatchKeys) Flush(batch, output);
        }
        Flush(batch, output);
        return currentDb;
    }

    private static void Flush(List<KvSnapshotEntry> batch, IBufferWriter<byte> output)
    {
        if (batch.Count == 0) return;
        AofWriter.WriteArrayHeader(output, 1 + batch.Count * 2);
        AofWriter.WriteBulkString(output, "MSET"u8);
        foreach (KvSnapshotEntry entry in batch)
        {
            AofWriter.WriteBulkString(output, entry.Key);
            AofWriter.WriteBulkString(output, (byte[])entry.Value);
        }
        batch.Clear();
    }
}
